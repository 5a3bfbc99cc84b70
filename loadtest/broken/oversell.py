#!/usr/bin/env python3
"""A deliberately broken flash-sale server, for checking that the load tools' verdicts can fail.

It speaks flashsale's sale routes (/api/sale/status, /purchase, /user/{id}) but sells to every
buyer: past the stock it still answers PURCHASED, and its status never shows less than zero left,
as a check-then-decrement race would. A load tool run against it must report the drop broken.

Usage: python3 loadtest/broken/oversell.py PORT [STOCK]   (default stock 100)
"""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(sys.argv[1])
STOCK = int(sys.argv[2]) if len(sys.argv) > 2 else 100
lock = threading.Lock()
orders = {}  # userId -> order number


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/api/sale/status":
            with lock:
                left = max(0, STOCK - len(orders))
            self.answer(200, {"status": "active" if left else "sold_out", "productName": "Broken",
                              "totalStock": STOCK, "remainingStock": left})
        elif self.path.startswith("/api/sale/user/"):
            user = self.path.rsplit("/", 1)[1]
            with lock:
                order = orders.get(user)
            self.answer(200, {"userId": user, "hasPurchased": order is not None, "orderNumber": order})
        else:
            self.answer(404, {"success": False, "code": "NOT_FOUND", "message": "No such route."})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if self.path != "/api/sale/purchase":
            self.answer(404, {"success": False, "code": "NOT_FOUND", "message": "No such route."})
            return
        user = body.get("userId", "")
        with lock:
            order = orders.setdefault(user, len(orders) + 1)  # the bug: no stock check
            left = max(0, STOCK - len(orders))
        self.answer(200, {"success": True, "code": "PURCHASED", "message": "You got one!",
                          "remainingStock": left, "orderNumber": order})


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
