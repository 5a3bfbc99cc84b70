// The demo page: live stock from the sale's event stream, a countdown on the Redis clock, and a
// Buy button that sends an Idempotency-Key (one per click, reused when a 503 is retried).
'use strict';

const params = new URLSearchParams(location.search);
const sale = params.get('sale');
const base = sale ? `/api/sales/${encodeURIComponent(sale)}` : '/api/sale';
const $ = (id) => document.getElementById(id);
let current = null; // the last status event
let clockOffset = 0; // Redis clock minus this browser's clock, in ms

const STATES = {
  upcoming: 'Not started yet',
  active: 'On sale now',
  sold_out: 'Sold out',
  ended: 'The sale has ended',
};

function show(status) {
  current = status;
  clockOffset = Date.parse(status.serverTime) - Date.now();
  $('product').textContent = status.productName;
  $('state').textContent = STATES[status.status] || status.status;
  $('remaining').textContent = `${status.remainingStock} left`;
  $('total').textContent = `of ${status.totalStock}`;
  $('buy').disabled = status.status !== 'active';
  tick();
}

function tick() {
  if (!current) return;
  const now = Date.now() + clockOffset;
  const target = current.status === 'upcoming' ? Date.parse(current.startTime)
    : current.status === 'active' ? Date.parse(current.endTime) : null;
  if (target === null) { $('countdown').textContent = ''; return; }
  const left = Math.max(0, Math.round((target - now) / 1000));
  const h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
  const text = `${h ? `${h}h ` : ''}${m}m ${String(s).padStart(2, '0')}s`;
  $('countdown').textContent = current.status === 'upcoming' ? `Starts in ${text}` : `Ends in ${text}`;
}
setInterval(tick, 1000);

const events = new EventSource(`${base}/events`);
events.addEventListener('status', (e) => show(JSON.parse(e.data)));
events.addEventListener('gone', () => { $('state').textContent = 'This sale does not exist.'; });
events.onerror = () => { if (!current) $('state').textContent = 'Reconnecting to the sale…'; };

function say(text, good) {
  const out = $('outcome');
  out.textContent = text;
  out.className = `outcome ${good ? 'good' : 'bad'}`;
}

function describe(status, body, retryAfter) {
  switch (body.code) {
    case 'PURCHASED': return [`You got one! Your order number is ${body.orderNumber}.`, true];
    case 'ALREADY_PURCHASED': return [`You already bought one (order number ${body.orderNumber}).`, true];
    case 'SOLD_OUT': return ['Sorry, it is sold out.', false];
    case 'SALE_NOT_STARTED': return ['The sale has not started yet.', false];
    case 'SALE_ENDED': return ['The sale has ended.', false];
    case 'RATE_LIMITED': return [`Too many attempts. Try again in ${retryAfter || 'a few'} seconds.`, false];
    case 'SERVICE_UNAVAILABLE': return ['The shop is busy. Please try again in a moment.', false];
    case 'INVALID_REQUEST': return ['That user id is not valid: use letters, digits and . _ - @ + : only.', false];
    default: return [body.message || `Something went wrong (${status}).`, false];
  }
}

$('buy-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const userId = $('user').value.trim();
  if (!$('user').checkValidity() || !userId) {
    say('Enter your user id first (letters, digits and . _ - @ + : only).', false);
    $('user').focus();
    return;
  }
  const key = crypto.randomUUID();
  $('buy').disabled = true;
  say('Buying…', true);
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      const res = await fetch(`${base}/purchase`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'Idempotency-Key': key },
        body: JSON.stringify({ userId }),
      });
      const body = await res.json();
      const retryAfter = Number(res.headers.get('Retry-After')) || 0;
      if (res.status === 503 && attempt < 2) {
        await new Promise((r) => setTimeout(r, (retryAfter || 1) * 1000));
        continue;
      }
      const [text, good] = describe(res.status, body, retryAfter);
      say(text, good);
      break;
    }
  } catch {
    say('Could not reach the shop. Check your connection and try again.', false);
  } finally {
    $('buy').disabled = !current || current.status !== 'active';
  }
});
