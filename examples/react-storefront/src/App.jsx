// One sale's storefront on useSale: live stock, Buy with a pending state, every answer in words,
// a checkout hold counting down with Cancel, and the waiting room's place. Configured by the
// URL (?api=…&sale=…&user=…) or VITE_FLASHSALE_URL / VITE_SALE_ID; by default the service on
// port 8080 of the host this page came from, so a phone on the same network works too.
import { useState } from 'react';
import { useSale } from '@flashsale/react';

const params = new URLSearchParams(window.location.search);
const api = params.get('api') || import.meta.env.VITE_FLASHSALE_URL || `http://${window.location.hostname}:8080`;
const saleId = params.get('sale') || import.meta.env.VITE_SALE_ID || 'default';
const retries = params.has('retries') ? Number(params.get('retries')) : undefined;

function initialBuyer() {
  const saved = params.get('user') || window.localStorage.getItem('buyer');
  if (saved) return saved;
  const buyer = `buyer-${Math.floor(Math.random() * 1e9)}`;
  window.localStorage.setItem('buyer', buyer);
  return buyer;
}

const clock = (seconds) => `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`;

/** What a purchase's answer means, in words. */
function says(result) {
  switch (result.code) {
    case 'PURCHASED':
      return `Order #${result.orderNumber}: it's yours.`;
    case 'ALREADY_PURCHASED':
      return `You already bought this (order #${result.orderNumber}).`;
    case 'RESERVED':
      return `Reserved: order #${result.orderNumber}, ${result.quantity} unit(s).`;
    case 'ALREADY_RESERVED':
      return `You already have order #${result.orderNumber} reserved: pay for it to keep it.`;
    case 'SOLD_OUT':
      return result.heldStock > 0
        ? `Sold out for now: ${result.heldStock} unit(s) in checkouts may come back.`
        : 'Sold out.';
    case 'NOT_ADMITTED':
      return 'Not your turn yet: join the queue.';
    default:
      return result.message;
  }
}

export function App() {
  const [buyer, setBuyer] = useState(initialBuyer);
  const sale = useSale(saleId, { baseUrl: api, retries });
  const { status, live, gone, pending, result, error, hold, queue } = sale;
  const room = status?.waitingRoom;
  const mustQueue = Boolean(room) && queue?.state !== 'admitted';
  const canBuy = status?.status === 'active' && !pending && !mustQueue;

  return (
    <main>
      <h1>{status ? status.productName : 'Loading…'}</h1>
      {gone && <p role="alert">This sale does not exist.</p>}
      {status && (
        <p>
          <span data-testid="stock">{status.remainingStock}</span> of {status.totalStock} left
          {status.heldStock > 0 && <span data-testid="held"> ({status.heldStock} in checkouts)</span>}
          {' · '}
          <span data-testid="sale-status">{status.status}</span>
        </p>
      )}
      <p data-testid="live">{live === 'stream' ? 'Live' : live === 'polling' ? 'Updating every second' : 'Connecting…'}</p>
      <label>
        Buyer <input data-testid="buyer" value={buyer} onChange={(e) => setBuyer(e.target.value)} />
      </label>
      {room && !queue && (
        <button type="button" data-testid="join" disabled={pending} onClick={() => sale.join(buyer)}>
          Join the queue
        </button>
      )}
      {queue && (
        <p data-testid="queue">
          {queue.state === 'admitted'
            ? `It's your turn (place ${queue.position}): buy now.`
            : queue.state === 'pre_queue'
              ? 'You are in: your place is drawn at the start.'
              : queue.state === 'sold_out'
                ? 'Sold out: the queue has closed.'
                : `Place ${queue.position}: ${queue.ahead} ahead of you.`}
        </p>
      )}
      <button type="button" data-testid="buy" disabled={!canBuy} onClick={() => sale.buy({ userId: buyer })}>
        {pending ? 'Buying…' : 'Buy'}
      </button>
      {hold && (
        <p data-testid="hold">
          {hold.secondsLeft > 0
            ? `Reserved: pay within ${clock(hold.secondsLeft)}`
            : 'Your hold expired: the units went back on sale.'}{' '}
          {hold.reservationToken && hold.secondsLeft > 0 && (
            <button type="button" data-testid="cancel" onClick={() => sale.cancel()}>
              Cancel
            </button>
          )}
        </p>
      )}
      <p role="status" data-testid="message">
        {error ? error.message : result ? says(result) : ''}
      </p>
      <p data-testid="context" hidden>
        {String(window.isSecureContext)}
      </p>
    </main>
  );
}
