// The demo page in a real headless Chromium (Debian's package, driven through playwright-core;
// nothing is downloaded): at desktop and phone sizes it shows the stock, buys, says "already
// bought", shows sold out, and counts down to an upcoming sale; on a sale with checkout holds
// it counts a hold down on the Redis clock, cancels it, and says when it expired; on a sale with a
// waiting room it joins, counts the place down, buys when admitted, and tells a waiting page the
// drop sold out. Screenshots go to
// target/browser/. Needs redis-server and a built flashsale binary (FLASHSALE_BIN, default
// target/debug/flashsale); CHROMIUM overrides /usr/bin/chromium.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
// Shared with the client's and the storefront's tests.
import { freePort, waitFor } from '../../clients/js/test/service.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = process.env.FLASHSALE_BIN || resolve(root, 'target/debug/flashsale');
const shots = resolve(root, 'target/browser');
mkdirSync(shots, { recursive: true });
const children = [];
let browser;
let base;
let redisUrl;

function start(cmd, args, env = {}) {
  const child = spawn(cmd, args, { env: { PATH: process.env.PATH, ...env }, stdio: 'ignore' });
  children.push(child);
  return child;
}

/** An instance of the service on its own port; resolves once it is ready. */
async function service(env) {
  const port = await freePort();
  const child = start(bin, [], {
    HOST: '127.0.0.1', PORT: String(port), REDIS_URL: redisUrl, RATE_LIMIT_PER_SECOND: '0',
    LOG_FORMAT: 'json', WAITING_ROOM_SECRET: ROOM_SECRET,
    // Every script errs on a key it was not given in KEYS (SPEC §2), as in the Rust tests.
    REDIS_SCRIPT_KEY_CHECK: 'true', ...env,
  });
  await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/health/ready`)).ok, 'flashsale');
  return { url: `http://127.0.0.1:${port}`, child };
}

// Every instance signs and checks waiting-room admissions with the same secret.
const ROOM_SECRET = 'a-waiting-room-secret-for-the-browser';

const inOneHour = () => new Date(Date.now() + 3600e3).toISOString();
const inTwoHours = () => new Date(Date.now() + 7200e3).toISOString();

before(async () => {
  const redisPort = await freePort();
  start('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '',
    '--appendonly', 'no']);
  redisUrl = `redis://127.0.0.1:${redisPort}`;
  // The page's instance seeds the default sale; two short-lived ones seed the others.
  base = (await service({ SALE_TOTAL_STOCK: '3', SALE_PRODUCT_NAME: 'Desk lamp' })).url;
  for (const env of [
    { SALE_ID: 'phone', SALE_TOTAL_STOCK: '3', SALE_PRODUCT_NAME: 'Pocket lamp' },
    { SALE_ID: 'later', SALE_TOTAL_STOCK: '5', SALE_START: inOneHour(), SALE_END: inTwoHours() },
    // The shortest hold a sale allows, so the expiry test waits half a minute.
    { SALE_ID: 'held', SALE_TOTAL_STOCK: '2', SALE_HOLD_SECONDS: '30' },
  ]) {
    (await service(env)).child.kill('SIGTERM');
  }
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  for (const child of children) child.kill('SIGTERM');
});

const sizes = {
  desktop: { viewport: { width: 1280, height: 800 } },
  phone: { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 },
};

async function buyThroughApi(sale, userId) {
  const res = await fetch(`${base}/api/sales/${sale}/purchase`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ userId }),
  });
  return (await res.json()).code;
}

for (const [size, options] of Object.entries(sizes)) {
  const sale = size === 'desktop' ? 'default' : 'phone';
  const path = size === 'desktop' ? '/' : '/?sale=phone';

  test(`${size}: stock, a purchase, already bought, then sold out`, async () => {
    const context = await browser.newContext(options);
    const page = await context.newPage();
    await page.goto(`${base}${path}`);
    await page.locator('#remaining', { hasText: '3 left' }).waitFor();
    assert.equal(await page.locator('#state').textContent(), 'On sale now');
    await page.screenshot({ path: `${shots}/${size}-active.png`, fullPage: true });

    // Keyboard only: the field has a label, Enter submits.
    await page.getByLabel('Your user id').fill(`${size}-buyer@example.com`);
    await page.getByLabel('Your user id').press('Enter');
    await page.locator('#outcome', { hasText: 'Your order number is 1' }).waitFor();
    await page.locator('#remaining', { hasText: '2 left' }).waitFor();

    await page.getByRole('button', { name: 'Buy one' }).click();
    await page.locator('#outcome', { hasText: 'You already bought one (order number 1)' }).waitFor();
    await page.screenshot({ path: `${shots}/${size}-bought.png`, fullPage: true });

    assert.equal(await buyThroughApi(sale, `${size}-other-1`), 'PURCHASED');
    assert.equal(await buyThroughApi(sale, `${size}-other-2`), 'PURCHASED');
    await page.locator('#state', { hasText: 'Sold out' }).waitFor();
    await page.locator('#remaining', { hasText: '0 left' }).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Buy one' }).isDisabled(), true);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth > innerWidth);
    assert.equal(overflow, false, 'no horizontal scrolling');
    await page.screenshot({ path: `${shots}/${size}-sold-out.png`, fullPage: true });
    await context.close();
  });

  test(`${size}: an upcoming sale counts down to its start`, async () => {
    const context = await browser.newContext(options);
    const page = await context.newPage();
    await page.goto(`${base}/?sale=later`);
    await page.locator('#state', { hasText: 'Not started yet' }).waitFor();
    const first = await page.locator('#countdown', { hasText: 'Starts in' }).textContent();
    assert.match(first, /^Starts in (1h 0m 00s|59m \d\ds)$/);
    await page.waitForFunction((before) => document.querySelector('#countdown').textContent !== before, first);
    assert.equal(await page.getByRole('button', { name: 'Buy one' }).isDisabled(), true);
    await page.screenshot({ path: `${shots}/${size}-upcoming.png`, fullPage: true });
    await context.close();
  });
}

async function reserveOnPage(page, userId) {
  await page.goto(`${base}/?sale=held`);
  await page.locator('#state', { hasText: 'On sale now' }).waitFor();
  await page.getByLabel('Your user id').fill(userId);
  await page.getByLabel('Your user id').press('Enter');
  await page.locator('#hold-text', { hasText: 'Reserved — pay within' }).waitFor();
}

test('hold: the page counts it down on the Redis clock, and Cancel gives the unit back', async () => {
  const context = await browser.newContext(sizes.desktop);
  const page = await context.newPage();
  await reserveOnPage(page, 'holder-1@example.com');
  const first = await page.locator('#hold-text').textContent();
  assert.match(first, /^Reserved — pay within 0:(2[89]|30) to keep your unit \(order \d+\)\.$/);
  await page.waitForFunction((before) => document.querySelector('#hold-text').textContent !== before, first);
  assert.match(await page.locator('#hold-text').textContent(), /pay within 0:2\d/);
  await page.locator('#remaining', { hasText: '1 left' }).waitFor();
  await page.locator('#held', { hasText: '1 in checkouts' }).waitFor();
  await page.screenshot({ path: `${shots}/hold-reserved.png`, fullPage: true });

  await page.getByRole('button', { name: 'Cancel my hold' }).click();
  await page.locator('#outcome', { hasText: 'cancelled: the units went back on sale' }).waitFor();
  assert.equal(await page.locator('#hold').isHidden(), true);
  await page.locator('#remaining', { hasText: '2 left' }).waitFor();
  assert.equal(await page.locator('#held').textContent(), '');
  await context.close();
});

test('hold: an unpaid hold expires, the page says so and the unit is back on sale', async () => {
  const context = await browser.newContext(sizes.phone);
  const page = await context.newPage();
  await reserveOnPage(page, 'holder-2@example.com');
  await page.locator('#remaining', { hasText: '1 left' }).waitFor();
  await page.locator('#hold-text', { hasText: 'expired: the units went back on sale' })
    .waitFor({ timeout: 40000 });
  assert.equal(await page.getByRole('button', { name: 'Cancel my hold' }).isHidden(), true);
  // The sweeper released it: the live stock shows the unit back within about a second.
  await page.locator('#remaining', { hasText: '2 left' }).waitFor({ timeout: 5000 });
  await page.screenshot({ path: `${shots}/hold-expired.png`, fullPage: true });
  await context.close();
});

test('waiting room: join, the place counts down, buy when admitted; a waiting page hears sold out', async () => {
  // A sale of one unit that starts now and lets one buyer in a second; ten joined before us.
  (await service({ SALE_ID: 'room', SALE_TOTAL_STOCK: '1', SALE_PRODUCT_NAME: 'Queued lamp',
    SALE_WAITING_ROOM_ADMIT_PER_SECOND: '1' })).child.kill('SIGTERM');
  for (let n = 0; n < 10; n++) {
    const res = await fetch(`${base}/api/sales/room/queue`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ userId: `ahead-${n}` }),
    });
    assert.equal(res.status, 200);
  }
  const context = await browser.newContext(sizes.desktop);
  const page = await context.newPage();
  await page.goto(`${base}/?sale=room`);
  await page.locator('#state', { hasText: 'On sale now' }).waitFor();
  assert.equal(await page.locator('#room').isVisible(), true);
  assert.equal(await page.getByRole('button', { name: 'Buy one' }).isDisabled(), true);
  await page.getByLabel('Your user id').fill('queued@example.com');
  await page.getByRole('button', { name: 'Join the queue' }).click();
  const first = await page.locator('#room-text', { hasText: 'You are number 11 in line' }).textContent();
  await page.waitForFunction((before) => document.querySelector('#room-text').textContent !== before, first);
  await page.screenshot({ path: `${shots}/room-waiting.png`, fullPage: true });

  // A second buyer waits behind on a phone.
  const phone = await browser.newContext(sizes.phone);
  const behind = await phone.newPage();
  await behind.goto(`${base}/?sale=room`);
  await behind.getByLabel('Your user id').fill('behind@example.com');
  await behind.getByRole('button', { name: 'Join the queue' }).click();
  await behind.locator('#room-text', { hasText: 'You are number 12 in line' }).waitFor();

  await page.locator('#room-text', { hasText: 'It is your turn!' }).waitFor({ timeout: 20000 });
  await page.getByRole('button', { name: 'Buy one now' }).click();
  await page.locator('#outcome', { hasText: 'Your order number is 1' }).waitFor();
  await page.screenshot({ path: `${shots}/room-bought.png`, fullPage: true });

  await behind.locator('#room-text', { hasText: 'Sold out: the queue has closed.' }).waitFor({ timeout: 5000 });
  assert.equal(await behind.getByRole('button', { name: 'Buy one' }).isDisabled(), true);
  await behind.locator('summary', { hasText: 'How the queue is ordered' }).click();
  await behind.locator('#draw-text', { hasText: 'anyone can check it' }).waitFor();
  await behind.screenshot({ path: `${shots}/room-sold-out.png`, fullPage: true });
  await context.close();
  await phone.close();
});
