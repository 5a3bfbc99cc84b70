// The React storefront (built by `npm run build`) in Debian's headless Chromium through
// playwright-core, cross-origin against real flashsale instances and Redis: live stock, buy,
// already bought, sold out; the service stopped (a clear message, then success when it is
// back); the event stream refused (polling takes over); a LAN-style address over plain http (no
// secure context); a checkout hold counting down; a waiting-room place counting down.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdirSync, readFileSync, existsSync } from 'node:fs';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import {
  redis, service, putSale, freePort, isoIn, root, ADMIN_TOKEN, stopAll,
} from '../../../clients/js/test/service.mjs';

const dist = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const shots = resolve(root, 'target/browser');
mkdirSync(shots, { recursive: true });

let browser;
let redisUrl;
let shop; // the storefront's static server
let app; // the main flashsale instance
const stops = [];

/** The built storefront, served as a static site would serve it. */
async function staticSite() {
  assert.ok(existsSync(join(dist, 'index.html')), 'run `npm run build` first');
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css' };
  const port = await freePort();
  const server = createServer((request, response) => {
    const path = new URL(request.url, 'http://x').pathname;
    const file = join(dist, path === '/' ? 'index.html' : path);
    if (!file.startsWith(dist) || !existsSync(file)) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'Content-Type': types[extname(file)] ?? 'application/octet-stream' });
    response.end(readFileSync(file));
  });
  await new Promise((ok) => server.listen(port, '127.0.0.1', ok));
  const close = () => {
    server.closeAllConnections();
    server.close();
  };
  return { port, close };
}

// The storefront is served from shop.lan and 127.0.0.1; the service allows both origins.
const origins = (port) => `http://127.0.0.1:${port},http://shop.lan:${port}`;
const instance = async (env = {}, port) => {
  const started = await service(redisUrl, { CORS_ALLOWED_ORIGINS: origins(shop.port), ...env }, port);
  stops.push(started.stop);
  return started;
};

before(async () => {
  redisUrl = await redis();
  shop = await staticSite();
  app = await instance();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      // A name that is not localhost: the page is on "the LAN", so no secure context.
      '--host-resolver-rules=MAP shop.lan 127.0.0.1, MAP api.lan 127.0.0.1',
    ],
  });
});

after(async () => {
  await browser?.close();
  shop?.close();
  for (const stop of stops) await stop();
  stopAll(); // Redis too
});

async function open(query, { host = '127.0.0.1' } = {}) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`http://${host}:${shop.port}/?${new URLSearchParams(query)}`);
  return page;
}

const text = (page, id) => page.getByTestId(id).textContent();
const until = (page, id, pattern, timeout = 15000) =>
  page.waitForFunction(
    ([id, source]) => new RegExp(source).test(document.querySelector(`[data-testid="${id}"]`)?.textContent ?? ''),
    [id, pattern.source],
    { timeout },
  );

async function buyAs(url, sale, user) {
  const response = await fetch(`${url}/api/sales/${sale}/purchase`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ userId: user }),
  });
  return response.json();
}

test('live stock, buy, already bought, sold out', async () => {
  await putSale(app.url, 'lamps', { totalStock: 2 });
  const ana = await open({ api: app.url, sale: 'lamps', user: 'ana' });
  await until(ana, 'stock', /^2$/);
  await until(ana, 'live', /^Live$/);
  await ana.getByTestId('buy').click();
  await until(ana, 'message', /^Order #1: it's yours\.$/);
  await until(ana, 'stock', /^1$/);
  await ana.getByTestId('buy').click();
  await until(ana, 'message', /^You already bought this \(order #1\)\.$/);

  // Another buyer takes the last unit elsewhere: the stock on this page follows, live.
  assert.equal((await buyAs(app.url, 'lamps', 'ben')).code, 'PURCHASED');
  await until(ana, 'stock', /^0$/);
  await until(ana, 'sale-status', /^sold_out$/);
  const cy = await open({ api: app.url, sale: 'lamps', user: 'cy' });
  await until(cy, 'stock', /^0$/);
  assert.equal(await cy.getByTestId('buy').isDisabled(), true);
  await ana.screenshot({ path: join(shots, 'storefront-bought.png') });
  await ana.context().close();
  await cy.context().close();
});

test('the service stopped: a clear message while it is away, then success when it is back', async () => {
  await putSale(app.url, 'outage', { totalStock: 1 });
  const own = await instance();
  const page = await open({ api: own.url, sale: 'outage', user: 'dee', retries: '3' });
  await until(page, 'stock', /^1$/);
  await own.stop();
  await page.getByTestId('buy').click();
  // Pending while the client retries (three times, a second apart), then a message.
  await until(page, 'buy', /^Buying…$/);
  assert.equal(await text(page, 'message'), '');
  await until(page, 'message', /^The shop cannot be reached/);
  assert.equal((await text(page, 'buy')), 'Buy');
  await page.screenshot({ path: join(shots, 'storefront-away.png') });

  await instance({}, own.port);
  await until(page, 'stock', /^1$/, 30000); // the status comes back by itself
  await page.getByTestId('buy').click();
  await until(page, 'message', /^Order #1: it's yours\.$/);
  await page.context().close();
});

test('the event stream refused: the stock keeps coming by polling', async () => {
  await putSale(app.url, 'nostream', { totalStock: 5 });
  const capped = await instance({ SSE_MAX_STREAMS: '0' });
  const page = await open({ api: capped.url, sale: 'nostream', user: 'eve' });
  await until(page, 'stock', /^5$/);
  await until(page, 'live', /^Updating every second$/);
  assert.equal((await buyAs(capped.url, 'nostream', 'fay')).code, 'PURCHASED');
  await until(page, 'stock', /^4$/);
  await page.getByTestId('buy').click();
  await until(page, 'message', /^Order #2: it's yours\.$/);
  await page.context().close();
});

test('a LAN address over plain http: no secure context, the purchase still works', async () => {
  await putSale(app.url, 'lan', { totalStock: 3 });
  const page = await open({ api: `http://api.lan:${app.port}`, sale: 'lan', user: 'gus' }, { host: 'shop.lan' });
  assert.equal(await page.evaluate(() => window.isSecureContext), false);
  assert.equal(await page.evaluate(() => typeof crypto.randomUUID), 'undefined');
  await until(page, 'stock', /^3$/);
  await page.getByTestId('buy').click();
  await until(page, 'message', /^Order #1: it's yours\.$/);
  await page.context().close();
});

test('a checkout hold counts down and is cancelled', async () => {
  await putSale(app.url, 'held', { totalStock: 2, holdSeconds: 30 });
  const page = await open({ api: app.url, sale: 'held', user: 'hal' });
  await until(page, 'stock', /^2$/);
  await page.getByTestId('buy').click();
  await until(page, 'hold', /^Reserved: pay within 0:(29|30)/);
  const first = Number((await text(page, 'hold')).match(/0:(\d\d)/)[1]);
  await until(page, 'hold', new RegExp(`^Reserved: pay within 0:(${first - 2}|${first - 3})`), 5000);
  await until(page, 'held', /1 in checkouts/);
  await page.screenshot({ path: join(shots, 'storefront-hold.png') });
  await page.getByTestId('cancel').click();
  await until(page, 'stock', /^2$/);
  assert.equal(await page.getByTestId('hold').count(), 0);
  await page.context().close();
});

test('a waiting-room place counts down to the turn, then the buyer buys', async () => {
  // Starts in two seconds, one buyer let in each second; four join before this buyer.
  await putSale(app.url, 'room', {
    totalStock: 10, startTime: isoIn(2), endTime: isoIn(3600),
    waitingRoom: { admitPerSecond: 1, opensAt: isoIn(1) },
  });
  await new Promise((r) => setTimeout(r, 2500));
  for (const user of ['q1', 'q2', 'q3', 'q4']) {
    const joined = await fetch(`${app.url}/api/sales/room/queue`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ userId: user }),
    });
    assert.equal(joined.status, 200);
  }
  const page = await open({ api: app.url, sale: 'room', user: 'ivy' });
  await until(page, 'stock', /^10$/);
  assert.equal(await page.getByTestId('buy').isDisabled(), true);
  await page.getByTestId('join').click();
  await until(page, 'queue', /^Place 5: [1-4] ahead of you\.$/);
  const ahead = Number((await text(page, 'queue')).match(/(\d) ahead/)[1]);
  if (ahead > 1) await until(page, 'queue', new RegExp(`^Place 5: ${ahead - 1} ahead`), 5000);
  await page.screenshot({ path: join(shots, 'storefront-queue.png') });
  await until(page, 'queue', /^It's your turn \(place 5\): buy now\.$/, 10000);
  await page.getByTestId('buy').click();
  await until(page, 'message', /^Order #1: it's yours\.$/);
  const view = await (await fetch(`${app.url}/api/admin/sales/room`, { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } })).json();
  assert.equal(view.waitingRoom.admissionsUsed, 1);
  await page.context().close();
});
