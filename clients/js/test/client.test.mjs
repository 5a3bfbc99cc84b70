// The client against a running flashsale (real Redis, real HTTP): typed answers, the retry with
// the same Idempotency-Key, holds, the waiting room, the service stopped and back, and against
// real local servers that misbehave the way a proxy does (HTML 502, 503 with Retry-After).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { execFileSync } from 'node:child_process';
import { FlashsaleClient, FlashsaleError, newIdempotencyKey, retryAfterMs } from '../dist/index.js';
import { redis, service, putSale, freePort, isoIn, waitFor, stopAll } from './service.mjs';

let redisUrl;
let app;

before(async () => {
  redisUrl = await redis();
  app = await service(redisUrl);
});
after(async () => {
  await app.stop();
  stopAll();
});

const client = (saleId, options = {}) => new FlashsaleClient({ baseUrl: app.url, saleId, ...options });

test('the generated types are up to date with openapi.json', () => {
  execFileSync(process.execPath, ['scripts/generate.mjs', '--check'], { cwd: new URL('..', import.meta.url) });
});

test('a purchase is typed by code; its retry with the same key gets the same answer', async () => {
  await putSale(app.url, 'lamps', { totalStock: 2 });
  const sale = client('lamps');
  const status = await sale.status();
  assert.equal(status.status, 'active');
  assert.equal(status.remainingStock, 2);

  const key = newIdempotencyKey();
  const bought = await sale.purchase({ userId: 'ana' }, key);
  assert.equal(bought.code, 'PURCHASED');
  assert.equal(typeof bought.orderNumber, 'number');
  const again = await sale.purchase({ userId: 'ana' }, key);
  assert.equal(again.code, 'PURCHASED');
  assert.equal(again.orderNumber, bought.orderNumber);
  const other = await sale.purchase({ userId: 'ana' });
  assert.equal(other.code, 'ALREADY_PURCHASED');
  assert.equal(other.orderNumber, bought.orderNumber);

  assert.equal((await sale.purchase({ userId: 'ben' })).code, 'PURCHASED');
  const late = await sale.purchase({ userId: 'cy' });
  assert.equal(late.code, 'SOLD_OUT');
  assert.equal(late.remainingStock, 0);
  assert.equal(late.success, false);
  assert.deepEqual(await sale.user('ana'), {
    userId: 'ana', hasPurchased: true, orderNumber: bought.orderNumber, purchaseTime: bought.purchaseTime,
  });
  const missing = await sale.purchase({});
  assert.equal(missing.code, 'INVALID_REQUEST');
  const unknown = await client('nope').purchase({ userId: 'ana' });
  assert.equal(unknown.code, 'SALE_NOT_FOUND');
});

test('a hold counts down on the service clock and is cancelled with its token', async () => {
  await putSale(app.url, 'held', { totalStock: 3, holdSeconds: 30, maxPerBuyer: 2 });
  const sale = client('held');
  await sale.status();
  const reserved = await sale.purchase({ userId: 'dee', quantity: 2 });
  assert.equal(reserved.code, 'RESERVED');
  const hold = sale.holdOf(reserved);
  assert.equal(hold.quantity, 2);
  assert.match(hold.reservationToken, /^\d+\.[0-9a-f]{32}$/);
  const left = sale.secondsLeft(hold);
  assert.ok(left >= 28 && left <= 30, `${left}`);
  const elsewhere = await sale.purchase({ userId: 'dee' });
  assert.equal(elsewhere.code, 'ALREADY_RESERVED');
  assert.equal(sale.holdOf(elsewhere).reservationToken, undefined);
  // The status is served from each instance's cache (at most a second old).
  await waitFor(async () => (await sale.status()).heldStock === 2, 'heldStock 2');

  const released = await sale.cancel(hold);
  assert.equal(released.state, 'released');
  await waitFor(async () => {
    const status = await sale.status();
    return status.remainingStock === 3 && status.heldStock === 0;
  }, 'the units back on sale');
});

test('the waiting room: join, place, and the admission sent with the purchase', async () => {
  await putSale(app.url, 'room', { totalStock: 5, waitingRoom: { admitPerSecond: 100 } });
  const sale = client('room');
  const place = await sale.join('eve');
  assert.equal(place.state, 'admitted', JSON.stringify(place));
  assert.equal(place.position, 1);
  assert.ok(place.ticket && place.admission);
  const refused = await sale.purchase({ userId: 'eve' });
  assert.equal(refused.code, 'NOT_ADMITTED');
  const polled = await sale.queuePlace('eve');
  assert.equal(polled.admission, place.admission);
  const bought = await sale.purchase({ userId: 'eve', admission: place.admission });
  assert.equal(bought.code, 'PURCHASED');

  // Node has no EventSource: the watcher polls, and says so.
  const modes = [];
  const seen = await new Promise((resolve, reject) => {
    const stop = sale.watchQueue(place.ticket, 'eve', {
      onData: (data) => {
        stop();
        resolve(data);
      },
      onError: reject,
      onMode: (mode) => modes.push(mode),
    });
  });
  assert.equal(seen.remainingStock, 4);
  assert.deepEqual(modes, ['polling']);
  const notOpen = await putSale(app.url, 'later', {
    totalStock: 1, startTime: isoIn(3600), endTime: isoIn(7200),
    waitingRoom: { admitPerSecond: 1, opensAt: isoIn(1800) },
  });
  assert.equal(notOpen.id ?? 'later', 'later');
  assert.equal((await client('later').join('eve')).code, 'QUEUE_NOT_OPEN');
});

test('the service stopped: a purchase waits and retries, then succeeds when it is back', async () => {
  await putSale(app.url, 'outage', { totalStock: 1 });
  const own = await service(redisUrl);
  const sale = new FlashsaleClient({ baseUrl: own.url, saleId: 'outage', retries: 30, maxRetryWaitMs: 200 });
  await own.stop();
  const pending = sale.purchase({ userId: 'fay' });
  await new Promise((r) => setTimeout(r, 1000));
  const back = await service(redisUrl, {}, own.port);
  const answer = await pending;
  assert.equal(answer.code, 'PURCHASED');
  await back.stop();

  // Nothing listening and no retries left: a typed network error with a message to show.
  const down = new FlashsaleClient({ baseUrl: own.url, saleId: 'outage', retries: 1, maxRetryWaitMs: 10 });
  const failure = await down.purchase({ userId: 'gus' }).catch((e) => e);
  assert.ok(failure instanceof FlashsaleError);
  assert.equal(failure.kind, 'network');
  assert.match(failure.message, /cannot be reached/);
});

/** A real local HTTP server that answers each request with the next of `replies`. */
async function scripted(replies) {
  const port = await freePort();
  const seen = [];
  const server = createServer((request, response) => {
    seen.push({ at: Date.now(), key: request.headers['idempotency-key'] });
    const [status, headers, body] = replies[Math.min(seen.length - 1, replies.length - 1)];
    response.writeHead(status, headers);
    response.end(body);
  });
  await new Promise((ok) => server.listen(port, '127.0.0.1', ok));
  const close = () => {
    server.closeAllConnections(); // keep-alive connections would keep the process alive
    server.close();
  };
  return { url: `http://127.0.0.1:${port}`, seen, close };
}

test('503s are retried after Retry-After with the same key; an HTML 502 is a typed error', async () => {
  const json = { 'Content-Type': 'application/json' };
  const busy = [503, { ...json, 'Retry-After': '1' }, '{"success":false,"code":"SERVICE_UNAVAILABLE","message":"busy"}'];
  const ok = [200, json, '{"success":true,"code":"PURCHASED","message":"ok","remainingStock":0,"orderNumber":7,"purchaseTime":"2026-12-03T00:00:00.000Z"}'];
  const flaky = await scripted([busy, busy, ok]);
  const answer = await new FlashsaleClient({ baseUrl: flaky.url, saleId: 's' }).purchase({ userId: 'hal' });
  flaky.close();
  assert.equal(answer.code, 'PURCHASED');
  assert.equal(answer.orderNumber, 7);
  assert.equal(flaky.seen.length, 3);
  assert.equal(new Set(flaky.seen.map((s) => s.key)).size, 1, 'one key for every retry');
  assert.ok(flaky.seen[1].at - flaky.seen[0].at >= 950, 'waited Retry-After');

  // Still busy after the retries: the service's own answer, with its wait.
  const always = await scripted([busy]);
  const tired = await new FlashsaleClient({ baseUrl: always.url, saleId: 's', retries: 1, maxRetryWaitMs: 50 })
    .purchase({ userId: 'hal' });
  always.close();
  assert.equal(tired.code, 'SERVICE_UNAVAILABLE');
  assert.equal(tired.retryAfterMs, 1000);
  assert.equal(always.seen.length, 2);

  // Options forwarded as undefined (as a hook does) keep their defaults: four retries.
  const zero = [503, { ...json, 'Retry-After': '0' }, busy[2]];
  const defaults = await scripted([zero]);
  const forwarded = await new FlashsaleClient({
    baseUrl: defaults.url, saleId: 's', retries: undefined, maxRetryWaitMs: undefined, pollMs: undefined,
  }).purchase({ userId: 'hal' });
  defaults.close();
  assert.equal(forwarded.code, 'SERVICE_UNAVAILABLE');
  assert.equal(defaults.seen.length, 5);

  const proxy = await scripted([[502, { 'Content-Type': 'text/html' }, '<html>Bad Gateway</html>']]);
  const error = await new FlashsaleClient({ baseUrl: proxy.url, saleId: 's', retries: 2, maxRetryWaitMs: 10 })
    .purchase({ userId: 'hal' })
    .catch((e) => e);
  proxy.close();
  assert.ok(error instanceof FlashsaleError);
  assert.equal(error.kind, 'http');
  assert.equal(error.status, 502);
  assert.equal(proxy.seen.length, 3);
});

test('keys without a secure context, and Retry-After in both forms', () => {
  const real = Object.getOwnPropertyDescriptor(globalThis, 'crypto');
  Object.defineProperty(globalThis, 'crypto', {
    configurable: true,
    value: { getRandomValues: (bytes) => real.get.call(globalThis).getRandomValues(bytes) },
  });
  try {
    const keys = new Set(Array.from({ length: 100 }, () => newIdempotencyKey()));
    assert.equal(keys.size, 100);
    for (const key of keys) assert.match(key, /^[0-9a-f]{32}$/);
  } finally {
    Object.defineProperty(globalThis, 'crypto', real);
  }
  assert.equal(retryAfterMs('2'), 2000);
  assert.equal(retryAfterMs(null), null);
  assert.equal(retryAfterMs(new Date(10_000).toUTCString(), 7_000), 3000);
});
