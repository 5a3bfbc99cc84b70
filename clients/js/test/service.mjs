// Real things for the client's tests and the React example's browser test: a redis-server on a
// free port and flashsale instances against it (FLASHSALE_BIN, default target/debug/flashsale),
// each on its own port, stopped when the test process ends.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const bin = process.env.FLASHSALE_BIN
  ? resolve(process.env.FLASHSALE_BIN)
  : resolve(root, 'target/debug/flashsale');
export const ADMIN_TOKEN = 'an-admin-token-for-the-client-tests';
export const ROOM_SECRET = 'a-waiting-room-secret-for-the-client-tests';

const children = new Set();
process.on('exit', () => stopAll());

/** Kills every server started here; call it in `after`, or they keep the test process alive. */
export function stopAll() {
  children.forEach((child) => child.kill('SIGKILL'));
}

export function freePort() {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
    server.on('error', fail);
  });
}

export async function waitFor(check, what, ms = 20000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function start(cmd, args, env = {}) {
  const child = spawn(cmd, args, { env: { PATH: process.env.PATH, ...env }, stdio: 'ignore' });
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

export async function redis() {
  const port = await freePort();
  start('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
  const url = `redis://127.0.0.1:${port}`;
  return url;
}

/**
 * A flashsale instance on `port` (a free one by default); resolves once it is ready. `stop()`
 * kills it and resolves when it has exited, so the same port can be started again.
 */
export async function service(redisUrl, env = {}, port) {
  port ??= await freePort();
  const child = start(bin, [], {
    HOST: '127.0.0.1',
    PORT: String(port),
    REDIS_URL: redisUrl,
    RATE_LIMIT_PER_SECOND: '0',
    LOG_FORMAT: 'json',
    // Every script errs on a key it was not given in KEYS (SPEC §2), as in the Rust tests.
    REDIS_SCRIPT_KEY_CHECK: 'true',
    ADMIN_TOKEN,
    WAITING_ROOM_SECRET: ROOM_SECRET,
    ...env,
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(async () => (await fetch(`${url}/health/ready`)).ok, `flashsale on ${port}`);
  const stop = () =>
    new Promise((ok) => {
      // Exited already (by itself or by a signal): its 'exit' event has been and gone.
      if (child.exitCode !== null || child.signalCode !== null) return ok();
      child.on('exit', () => ok());
      child.kill('SIGKILL');
    });
  return { url, port, child, stop };
}

export const isoIn = (seconds) => new Date(Date.now() + seconds * 1000).toISOString();

/** Creates (or replaces) a sale through the admin API. */
export async function putSale(url, id, sale) {
  const response = await fetch(`${url}/api/admin/sales/${id}`, {
    method: 'PUT',
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ productName: 'Desk lamp', startTime: isoIn(-60), endTime: isoIn(3600), ...sale }),
  });
  if (!response.ok) throw new Error(`PUT sale ${id}: ${response.status} ${await response.text()}`);
  return response.json();
}
