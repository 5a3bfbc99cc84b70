#!/usr/bin/env python3
"""Signed waiting-room admissions for a bench run, so every request of the room-on target is a
new admitted buyer (loadtest/bench/purchase_room.lua). An admission is what the service signs
(src/queue/sign.rs): "<expiresMs>.<hex HMAC-SHA256(secret, 'admission\\n<sale>\\n<user>\\n<expiresMs>')>".

usage: admissions.py SECRET SALE PREFIX THREADS COUNT OUT_PREFIX
writes OUT_PREFIX-<tid>.txt for tid 1..THREADS, line n the admission of user PREFIX-<tid>-<n>,
the userIds purchase_room.lua sends (purchase.lua's)."""
import hashlib
import hmac
import sys
import time

secret, sale, prefix, threads, count, out = sys.argv[1:7]
expires = str(int(time.time() * 1000) + 3_600_000)
key = hmac.new(secret.encode(), digestmod=hashlib.sha256)
for tid in range(1, int(threads) + 1):
    with open(f"{out}-{tid}.txt", "w") as lines:
        for n in range(1, int(count) + 1):
            mac = key.copy()
            mac.update(f"admission\n{sale}\n{prefix}-{tid}-{n}\n{expires}".encode())
            lines.write(f"{expires}.{mac.hexdigest()}\n")
