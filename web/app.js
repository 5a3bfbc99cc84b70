// The demo page: live stock from the sale's event stream, a countdown on the Redis clock, a
// Buy button that sends an Idempotency-Key (one per click, reused when a 503 is retried), and,
// on a sale with checkout holds, the hold's own countdown with a Cancel button; on a sale with a
// waiting room, the queue: join, the place updating live, Buy when admitted (with the admission).
'use strict';

const params = new URLSearchParams(location.search);
const sale = params.get('sale');
const base = sale ? `/api/sales/${encodeURIComponent(sale)}` : '/api/sale';
const $ = (id) => document.getElementById(id);
let current = null; // the last status event
let clockOffset = 0; // Redis clock minus this browser's clock, in ms
let hold = null; // { expiresAt (ms, Redis clock), token or null, orderNumber, quantity }
let place = null; // the buyer's last queue answer, on a sale with a waiting room
let queueEvents = null; // the queue stream, once joined

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
  $('held').textContent = status.heldStock > 0
    ? (status.remainingStock > 0 ? `${status.heldStock} in checkouts`
      : `All units are in checkouts; some may come back.`)
    : '';
  showRoom(status);
  $('buy').disabled = !canBuy();
  tick();
}

// Buy is on while the sale is, and with a waiting room only once it is the buyer's turn.
function canBuy() {
  if (!current || current.status !== 'active') return false;
  return !current.waitingRoom || Boolean(place && place.admission);
}

function showRoom(status) {
  const room = status.waitingRoom;
  $('room').hidden = !room;
  if (!room) return;
  $('draw-text').textContent = room.drawSeed
    ? `Buyers who joined before the start were put in the order of HMAC-SHA256(seed, userId), `
      + `seed ${room.drawSeed}, whose SHA-256 ${room.drawCommitment} was published before the `
      + 'start: anyone can check it.'
    : 'Buyers who join before the start are put in an order drawn at the start from a secret '
      + `seed. Its SHA-256, published now: ${room.drawCommitment}; the seed is shown at the start.`;
  $('buy').textContent = place && place.admission ? 'Buy one now' : 'Buy one';
}

const PLACES = {
  pre_queue: () => 'You are in the queue. Your place is drawn when the sale starts.',
  waiting: (p) => `You are number ${p.position} in line: ${p.ahead} ahead of you, `
    + `about ${clock(p.estimatedWaitSeconds)} to wait.`,
  unlikely: (p) => `You are number ${p.position} in line: ${p.ahead} ahead of you, about `
    + `${clock(p.estimatedWaitSeconds)} to wait. With ${p.remainingStock} left, it is unlikely `
    + 'to reach you.',
  admitted: (p) => `It is your turn! Buy before ${new Date(p.admissionExpiresAt).toLocaleTimeString()}.`,
  expired: () => 'Your turn has passed.',
  sold_out: () => 'Sold out: the queue has closed.',
  ended: () => 'The sale has ended.',
};

function showPlace(next) {
  place = next;
  $('room-text').textContent = (PLACES[next.state] || (() => next.state))(next);
  $('join').hidden = true;
  $('buy').disabled = !canBuy();
  if (current) showRoom(current);
  if (next.state === 'sold_out' || next.state === 'ended') {
    if (queueEvents) queueEvents.close();
  }
}

function clock(seconds) {
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`;
}

function showHold() {
  const panel = $('hold');
  if (!hold) { panel.hidden = true; return; }
  panel.hidden = false;
  // Whole seconds left, rounded down and never more than the hold's length: the status's clock
  // may be a little behind Redis's, and a buyer told too little time pays in time.
  const left = Math.max(0, Math.min(hold.length,
    Math.floor((hold.expiresAt - (Date.now() + clockOffset)) / 1000)));
  if (left === 0) {
    $('hold-text').textContent = `Your hold on order ${hold.orderNumber} expired: `
      + 'the units went back on sale.';
    $('cancel').hidden = true;
    hold = null;
    return;
  }
  const units = hold.quantity > 1 ? `${hold.quantity} units` : 'your unit';
  $('hold-text').textContent = `Reserved — pay within ${clock(left)} to keep ${units} (order ${hold.orderNumber}).`;
  $('cancel').hidden = !hold.token;
}

function tick() {
  if (hold) showHold();
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
    case 'RESERVED': return ['Reserved! Pay before the hold runs out.', true];
    case 'ALREADY_RESERVED': return [`You already hold order ${body.orderNumber}: pay or cancel it first.`, true];
    case 'SOLD_OUT': return [body.heldStock > 0
      ? 'Sold out for now: all units are in checkouts, and some may come back.'
      : 'Sorry, it is sold out.', false];
    case 'SALE_NOT_STARTED': return ['The sale has not started yet.', false];
    case 'SALE_ENDED': return ['The sale has ended.', false];
    case 'RATE_LIMITED': return [`Too many attempts. Try again in ${retryAfter || 'a few'} seconds.`, false];
    case 'SERVICE_UNAVAILABLE': return ['The shop is busy. Please try again in a moment.', false];
    case 'NOT_ADMITTED': return ['It is not your turn yet: join the queue and wait to be let in.', false];
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
      const headers = { 'Content-Type': 'application/json', 'Idempotency-Key': key };
      if (place && place.admission) headers['Flashsale-Admission'] = place.admission;
      const res = await fetch(`${base}/purchase`, {
        method: 'POST', headers, body: JSON.stringify({ userId }),
      });
      const body = await res.json();
      const retryAfter = Number(res.headers.get('Retry-After')) || 0;
      if (res.status === 503 && attempt < 2) {
        await new Promise((r) => setTimeout(r, (retryAfter || 1) * 1000));
        continue;
      }
      const [text, good] = describe(res.status, body, retryAfter);
      say(text, good);
      if ((body.code === 'RESERVED' || body.code === 'ALREADY_RESERVED') && body.holdExpiresAt) {
        hold = {
          expiresAt: Date.parse(body.holdExpiresAt),
          length: Math.floor((Date.parse(body.holdExpiresAt) - Date.parse(body.purchaseTime)) / 1000),
          token: body.reservationToken || (hold && hold.orderNumber === body.orderNumber ? hold.token : null),
          orderNumber: body.orderNumber,
          quantity: body.quantity || 1,
        };
        showHold();
      }
      break;
    }
  } catch {
    say('Could not reach the shop. Check your connection and try again.', false);
  } finally {
    $('buy').disabled = !canBuy();
  }
});

$('join').addEventListener('click', async () => {
  const userId = $('user').value.trim();
  if (!$('user').checkValidity() || !userId) {
    say('Enter your user id first (letters, digits and . _ - @ + : only).', false);
    $('user').focus();
    return;
  }
  $('join').disabled = true;
  try {
    const res = await fetch(`${base}/queue`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ userId }),
    });
    const body = await res.json();
    if (!res.ok) { say(body.message || `Could not join (${res.status}).`, false); return; }
    showPlace(body);
    if (body.ticket) {
      queueEvents = new EventSource(`${base}/queue/events?ticket=${encodeURIComponent(body.ticket)}`);
      queueEvents.addEventListener('queue', (e) => showPlace(JSON.parse(e.data)));
    }
  } catch {
    say('Could not reach the shop. Check your connection and try again.', false);
  } finally {
    $('join').disabled = false;
  }
});

$('cancel').addEventListener('click', async () => {
  if (!hold || !hold.token) return;
  $('cancel').disabled = true;
  try {
    const res = await fetch(`${base}/reservation`, {
      method: 'DELETE', headers: { 'Flashsale-Reservation': hold.token },
    });
    const body = await res.json();
    if (res.ok) {
      hold = null;
      showHold();
      say(`Order ${body.orderNumber} cancelled: the units went back on sale.`, true);
    } else {
      say(body.message || `Could not cancel (${res.status}).`, false);
    }
  } catch {
    say('Could not reach the shop. Check your connection and try again.', false);
  } finally {
    $('cancel').disabled = false;
  }
});
