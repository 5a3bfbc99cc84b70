// The flashsale API in Node/Express + ioredis: the benchmark's peer, written the way a good Node
// engineer would write it. Cluster mode with one worker per core, one ioredis connection per
// worker with auto-pipelining, the very same Lua scripts (../../lua) called by EVALSHA, a 100 ms
// status cache, the same validation, codes and JSON bodies. No per-IP limit (the benchmark turns
// the service's off too).
'use strict';

const cluster = require('node:cluster');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const env = process.env;
const PORT = Number(env.PORT || 8081);
const REDIS_URL = env.REDIS_URL || 'redis://127.0.0.1:6379';
const SALE_ID = env.SALE_ID || 'default';
const WORKERS = Number(env.WORKERS || os.availableParallelism());
const ATTEMPT_LIMIT = Number(env.USER_ATTEMPT_LIMIT ?? 10);
const ATTEMPT_WINDOW_MS = Number(env.USER_ATTEMPT_WINDOW_MS ?? 10000);
// Each script runs as the service sends it: lua/prelude.lua, a newline, then the script.
const LUA_DIR = path.join(__dirname, '..', '..', 'lua');
const LUA = (name) =>
  fs.readFileSync(path.join(LUA_DIR, 'prelude.lua'), 'utf8') + '\n' + fs.readFileSync(path.join(LUA_DIR, name), 'utf8');

const KEYS = {
  config: `sale:{${SALE_ID}}:config`,
  // The prefix of the buyer buckets: scripts are given the bucket itself (bucketOf).
  buyers: `sale:{${SALE_ID}}:buyers`,
  attempts: (user) => `sale:{${SALE_ID}}:rl:${user}`,
  orders: `sale:{${SALE_ID}}:orders`,
  refused: `sale:{${SALE_ID}}:refused`,
  checkouts: `sale:{${SALE_ID}}:checkouts`,
  expiries: `sale:{${SALE_ID}}:expiries`,
  room: `sale:{${SALE_ID}}:room`,
  gate: `sale:{${SALE_ID}}:gate`,
};

// The sale's buyerBuckets as the purchase script last answered it (0: not yet known), and a
// buyer's bucket as flashsale computes it (src/store/keys.rs): the first 32 bits of
// SHA-1(userId) modulo the buckets.
let buckets = 0;
const bucketOf = (user) => `${KEYS.buyers}:${buckets <= 1 ? 0
  : parseInt(crypto.createHash('sha1').update(user).digest('hex').slice(0, 8), 16) % buckets}`;
// One purchase as purchase.lua's ARGV[6] takes it (struct format Bc0Bc0Bc0BBc0, as
// src/store/scripts/sale.rs, put_decide_item, writes it): userId, token and request id, each a
// length byte and its text (all ASCII, at most 128), then one unit and no admission ('0').
const text = (value) => Buffer.concat([Buffer.from([value.length]), Buffer.from(value, 'latin1')]);
const purchaseItem = (userId, token, rid) =>
  Buffer.concat([text(userId), text(token), text(rid), Buffer.from([1]), text('0')]);

function redisClient() {
  const Redis = require('ioredis');
  const redis = new Redis(REDIS_URL, { enableAutoPipelining: true, commandTimeout: 2000, maxRetriesPerRequest: 2 });
  // One purchase per call (a batch of one): Node has no batching of its own; auto-pipelining
  // shares the socket writes.
  redis.defineCommand('purchase', { numberOfKeys: 9, lua: LUA('purchase.lua') });
  redis.defineCommand('saleStatus', { numberOfKeys: 2, lua: LUA('status.lua') });
  redis.defineCommand('saleUser', { numberOfKeys: 3, lua: LUA('user.lua') });
  redis.defineCommand('createSale', { numberOfKeys: 2, lua: LUA('create_sale.lua') });
  return redis;
}

async function primary() {
  if (env.SALE_TOTAL_STOCK) {
    const redis = redisClient();
    const start = env.SALE_START ? Date.parse(env.SALE_START) : Date.now();
    const end = env.SALE_END ? Date.parse(env.SALE_END) : start + 3600_000;
    await redis.createSale(KEYS.config, KEYS.room, env.SALE_PRODUCT_NAME || 'Flash sale item', env.SALE_TOTAL_STOCK, start, end);
    redis.disconnect();
  }
  for (let i = 0; i < WORKERS; i++) cluster.fork();
  cluster.on('exit', (worker, code) => {
    if (code !== 0) cluster.fork();
  });
}

const USER_ID = /^[A-Za-z0-9._\-@+:|]{1,128}$/;
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const iso = (ms) => new Date(Number(ms)).toISOString();
const error = (res, status, code, message) => res.status(status).json({ success: false, code, message });
const unavailable = (res) => {
  res.set('Retry-After', '1');
  error(res, 503, 'SERVICE_UNAVAILABLE', 'the sale is temporarily unavailable; retry shortly');
};

const OUTCOMES = {
  PURCHASED: [200, 'You got one! Your unit is reserved.'],
  ALREADY_PURCHASED: [409, 'You have already bought this item.'],
  SOLD_OUT: [410, 'Sold out: no units left.'],
  SALE_NOT_STARTED: [403, 'The sale has not started yet.'],
  SALE_ENDED: [410, 'The sale has ended.'],
  RATE_LIMITED: [429, 'Too many attempts; wait and retry.'],
};

function worker() {
  const express = require('express');
  const redis = redisClient();
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');

  let cached = null;
  let refreshing = null;
  async function status() {
    if (cached && Date.now() - cached.at < 100) return cached;
    refreshing ??= redis.saleStatus(KEYS.config, KEYS.room).then((reply) => {
      cached = { reply, at: Date.now() };
      return cached;
    }).finally(() => { refreshing = null; });
    return refreshing;
  }

  app.get('/api/sale/status', async (req, res) => {
    try {
      const { reply, at } = await status();
      if (!reply) return error(res, 404, 'SALE_NOT_FOUND', 'no sale is configured');
      const [productName, totalStock, remaining, startMs, endMs, redisNow] = reply;
      const now = redisNow + (Date.now() - at);
      const state = now < startMs ? 'upcoming' : now >= endMs ? 'ended' : remaining <= 0 ? 'sold_out' : 'active';
      res.json({ status: state, productName, totalStock, remainingStock: Math.max(remaining, 0),
        startTime: iso(startMs), endTime: iso(endMs), serverTime: iso(now) });
    } catch {
      unavailable(res);
    }
  });

  app.post('/api/sale/purchase', express.json({ limit: '4kb' }), async (req, res) => {
    if (!req.is('application/json')) return error(res, 415, 'UNSUPPORTED_MEDIA_TYPE', 'Content-Type must be application/json');
    const userId = req.body?.userId;
    if (typeof userId !== 'string' || !USER_ID.test(userId)) {
      return error(res, 400, 'INVALID_REQUEST', 'userId must be 1 to 128 characters from A-Z a-z 0-9 . _ - @ + :');
    }
    const key = req.get('Idempotency-Key');
    if (key !== undefined && !IDEMPOTENCY_KEY.test(key)) {
      return error(res, 400, 'INVALID_REQUEST', 'Idempotency-Key must be 1 to 255 visible ASCII characters');
    }
    const token = key === undefined
      ? crypto.randomBytes(8).toString('hex')
      : crypto.createHash('sha1').update(key).digest('hex').slice(0, 16);
    let reply;
    try {
      // As flashsale calls it: no WAIT, one unit, a fresh secret for a hold's token, no admission,
      // the buyer's bucket computed here; a reply of the sale's buyerBuckets alone means the
      // bucket was computed with a stale count: again with the right one.
      // The purchase travels as the script's item: userId, token, requestId, quantity and
      // admission, so a client's request id is used only when it has the service's characters.
      const given = req.get('X-Request-Id');
      const rid = given && REQUEST_ID.test(given) ? given : crypto.randomUUID();
      const secret = crypto.randomBytes(16).toString('hex');
      for (let tries = 0; tries < 3; tries++) {
        const answers = await redis.purchase(KEYS.config, KEYS.orders, KEYS.refused,
          KEYS.checkouts, KEYS.expiries, KEYS.room, KEYS.gate, bucketOf(userId), KEYS.attempts(userId),
          ATTEMPT_LIMIT, ATTEMPT_WINDOW_MS, SALE_ID, '0', buckets, purchaseItem(userId, token, rid), secret);
        // {buyerBuckets, width, purchaseMs, totalStock, the answer}, or {buyerBuckets} alone.
        // The answer is `width` fields, or a new buyer's order number alone: PURCHASED at
        // purchaseMs with totalStock - orderNumber left.
        if (answers.length > 1) {
          const [, width, batchMs, total, first] = answers;
          reply = typeof first === 'number'
            ? ['PURCHASED', total - first, batchMs, first, 0]
            : answers.slice(4, 4 + width);
          break;
        }
        buckets = answers[0];
      }
      if (!reply) return unavailable(res);
    } catch {
      return unavailable(res);
    }
    const [code, remaining, purchaseMs, orderNumber, retryAfterMs] = reply;
    if (code === 'SALE_NOT_FOUND') return error(res, 404, 'SALE_NOT_FOUND', 'no sale is configured');
    const [httpStatus, message] = OUTCOMES[code];
    const body = { success: httpStatus === 200, code, message, remainingStock: Math.max(remaining, 0) };
    if (orderNumber > 0) {
      body.purchaseTime = iso(purchaseMs);
      body.orderNumber = orderNumber;
    }
    if (code === 'RATE_LIMITED') res.set('Retry-After', String(Math.max(1, Math.ceil(retryAfterMs / 1000))));
    res.status(httpStatus).json(body);
  });

  app.get('/api/sale/user/:userId', async (req, res) => {
    const { userId } = req.params;
    if (!USER_ID.test(userId)) return error(res, 400, 'INVALID_REQUEST', 'invalid userId');
    try {
      // {2, buyerBuckets}: the bucket was computed with a stale count: again with the right one.
      let reply = await redis.saleUser(KEYS.config, bucketOf(userId), KEYS.checkouts, userId, buckets);
      if (reply[0] === 2) {
        buckets = reply[1];
        reply = await redis.saleUser(KEYS.config, bucketOf(userId), KEYS.checkouts, userId, buckets);
      }
      if (reply[0] === 0) return error(res, 404, 'SALE_NOT_FOUND', 'no sale is configured');
      const bought = reply.length === 3;
      res.json({ userId, hasPurchased: bought, purchaseTime: bought ? iso(reply[1]) : null, orderNumber: bought ? reply[2] : null });
    } catch {
      unavailable(res);
    }
  });

  app.get('/health/live', (req, res) => res.json({ status: 'ok' }));
  app.get('/health/ready', async (req, res) => {
    try {
      await redis.ping();
      res.json({ status: 'ready' });
    } catch {
      unavailable(res);
    }
  });

  app.use((req, res) => error(res, 404, 'NOT_FOUND', 'no such route'));
  app.use((err, req, res, next) => {
    if (err.type === 'entity.too.large') return error(res, 413, 'PAYLOAD_TOO_LARGE', 'request body too large');
    if (err.type === 'entity.parse.failed') return error(res, 400, 'INVALID_REQUEST', 'invalid JSON body');
    error(res, err.status || 500, 'INTERNAL_ERROR', 'internal error');
  });

  app.listen(PORT, '127.0.0.1');
}

if (cluster.isPrimary) {
  primary().catch((err) => {
    console.error(`baseline: ${err.message}`);
    process.exit(1);
  });
} else {
  worker();
}
