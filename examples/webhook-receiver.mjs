// A minimal order-webhook receiver for flashsale (Node ≥ 18, no dependencies): checks the
// Flashsale-Signature header, refuses stale or forged requests, dedupes by event id.
//   ORDER_WEBHOOK_SECRET=... node examples/webhook-receiver.mjs   # listens on 127.0.0.1:9000
import { createServer } from 'node:http';
import { createHmac, timingSafeEqual } from 'node:crypto';

const secret = process.env.ORDER_WEBHOOK_SECRET;
const seen = new Set(); // use your database in production: delivery is at least once

function verify(header, body) {
  const parts = Object.fromEntries((header ?? '').split(',').map((kv) => kv.split('=')));
  const t = Number(parts.t);
  if (!parts.v1 || !Number.isInteger(t) || Math.abs(Date.now() / 1000 - t) > 300) return false;
  const expected = createHmac('sha256', secret).update(`${t}.`).update(body).digest();
  const given = Buffer.from(parts.v1, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

createServer((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const body = Buffer.concat(chunks); // verify the raw bytes, before parsing
    if (!verify(req.headers['flashsale-signature'], body)) {
      res.writeHead(401).end();
      return;
    }
    const order = JSON.parse(body);
    if (!seen.has(order.eventId)) {
      seen.add(order.eventId);
      console.log(order.type, order.saleId, order.orderNumber, order.userId, order.eventId);
    }
    res.writeHead(204).end();
  });
}).listen(9000, '127.0.0.1');
