"""A webhook receiver for loadtest/bench/soak.sh: answers 204 to every order it can verify.

Usage: receiver.py <port> <secret>. Checks each POST's Flashsale-Signature (HMAC-SHA256 of
"t.body" with the secret, README: Webhooks) and answers 401 to one that does not match, so
the service retries it; counts the distinct Flashsale-Event-Id it accepted. GET / answers
"<distinct> <deliveries> <refused>" as text. Standard library only.
"""

import hashlib
import hmac
import http.server
import sys
import threading

SECRET = sys.argv[2].encode()
seen = set()
counts = {"deliveries": 0, "refused": 0}
lock = threading.Lock()


def signed(header, body):
    """Whether a Flashsale-Signature header `t=<seconds>,v1=<hex>` signs this body."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    if "t" not in parts or "v1" not in parts:
        return False
    mac = hmac.new(SECRET, parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(mac, parts["v1"])


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        ok = signed(self.headers.get("Flashsale-Signature", ""), body)
        with lock:
            if ok:
                counts["deliveries"] += 1
                seen.add(self.headers.get("Flashsale-Event-Id", ""))
            else:
                counts["refused"] += 1
        self.send_response(204 if ok else 401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        with lock:
            text = f"{len(seen)} {counts['deliveries']} {counts['refused']}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
