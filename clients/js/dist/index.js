/** Why a call has no answer from the service: the network, or a reply that is not its JSON. */
export class FlashsaleError extends Error {
    constructor(kind, message, status) {
        super(message);
        this.name = 'FlashsaleError';
        this.kind = kind;
        this.status = status;
    }
}
const RETRY_STATUSES = new Set([502, 503, 504]);
/**
 * A random key for one purchase. `crypto.randomUUID` exists only in secure contexts (https or
 * localhost); `getRandomValues` everywhere, so a phone on `http://192.168.x.y:5173` can buy.
 */
export function newIdempotencyKey() {
    const c = globalThis.crypto;
    if (c && typeof c.randomUUID === 'function')
        return c.randomUUID();
    const bytes = new Uint8Array(16);
    if (c && typeof c.getRandomValues === 'function') {
        c.getRandomValues(bytes);
    }
    else {
        for (let i = 0; i < bytes.length; i++)
            bytes[i] = Math.floor(Math.random() * 256);
    }
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
/** Seconds a `Retry-After` header asks for (delta seconds or an HTTP date); `null` if absent. */
export function retryAfterMs(header, now = Date.now()) {
    if (!header)
        return null;
    const seconds = Number(header);
    if (Number.isFinite(seconds))
        return Math.max(0, seconds * 1000);
    const at = Date.parse(header);
    return Number.isNaN(at) ? null : Math.max(0, at - now);
}
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
export class FlashsaleClient {
    constructor(options) {
        /** Redis's clock minus this machine's, from the last `serverTime` seen. */
        this.offsetMs = 0;
        // An option passed as `undefined` (a hook forwarding its own) keeps the default.
        const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
        this.options = { retries: 4, maxRetryWaitMs: 5000, pollMs: 1000, ...given };
        this.saleId = options.saleId;
        this.base = `${(options.baseUrl ?? '').replace(/\/$/, '')}/api/sales/${encodeURIComponent(options.saleId)}`;
        this.fetcher = options.fetch ?? ((...args) => globalThis.fetch(...args));
    }
    /** Now on Redis's clock (ms), as far as this client has seen it. */
    serverNow() {
        return Date.now() + this.offsetMs;
    }
    /** Seconds left on a hold, on Redis's clock (0 once it has expired). */
    secondsLeft(hold) {
        return Math.max(0, Math.floor((hold.expiresAt - this.serverNow()) / 1000));
    }
    async status() {
        const { body, ok } = await this.call('GET', '/status');
        if (!ok)
            throw body;
        this.seen(body);
        return body;
    }
    /**
     * Buys. `key` is the Idempotency-Key: keep it until the purchase is settled (the hook does) so
     * that a retry after a lost answer is told what happened instead of buying twice. A 503 that
     * outlasts the retries is answered as SERVICE_UNAVAILABLE; no reply at all throws.
     */
    async purchase(request, key = newIdempotencyKey()) {
        const headers = { 'Idempotency-Key': key };
        if (request.admission)
            headers['Flashsale-Admission'] = request.admission;
        const body = {};
        if (request.userId)
            body.userId = request.userId;
        if (request.quantity !== undefined)
            body.quantity = request.quantity;
        const reply = await this.call('POST', '/purchase', { headers, body });
        return { ...reply.body, retryAfterMs: reply.retryAfterMs };
    }
    /** The hold a RESERVED or ALREADY_RESERVED answer describes. */
    holdOf(answer) {
        if (answer.code === 'RESERVED') {
            return {
                orderNumber: answer.orderNumber,
                quantity: answer.quantity,
                expiresAt: Date.parse(answer.holdExpiresAt),
                reservationToken: answer.reservationToken,
            };
        }
        if (answer.code === 'ALREADY_RESERVED') {
            return {
                orderNumber: answer.orderNumber,
                quantity: answer.quantity ?? 1,
                expiresAt: Date.parse(answer.holdExpiresAt),
            };
        }
        return null;
    }
    /** Gives a hold back (its units return to stock at once). */
    async cancel(hold) {
        const headers = {};
        if (hold.reservationToken)
            headers['Flashsale-Reservation'] = hold.reservationToken;
        return (await this.call('DELETE', '/reservation', { headers })).body;
    }
    async user(userId) {
        return (await this.call('GET', `/user/${encodeURIComponent(userId)}`)).body;
    }
    /** Joins the waiting room (the same place on every call). */
    async join(userId) {
        const { body } = await this.call('POST', '/queue', { body: userId ? { userId } : {} });
        if ('serverTime' in body)
            this.seen(body);
        return body;
    }
    /** Where the buyer stands in the waiting room now. */
    async queuePlace(userId) {
        const query = userId ? `?userId=${encodeURIComponent(userId)}` : '';
        const { body } = await this.call('GET', `/queue/me${query}`);
        if ('serverTime' in body)
            this.seen(body);
        return body;
    }
    /**
     * The sale's status, live: the event stream, and while it is refused (503 at the stream cap,
     * 429, a proxy) or broken, `GET /status` every `pollMs`, with the stream tried again with
     * backoff. Returns a function that stops it all.
     */
    watchStatus(handlers) {
        return this.watch('/events', 'status', () => this.status(), handlers);
    }
    /**
     * The buyer's place, live: the queue stream named by the join's `ticket`, falling back to
     * polling `GET …/queue/me` (which needs `userId` or a token) while it is refused.
     */
    watchQueue(ticket, userId, handlers) {
        const poll = async () => {
            const body = await this.queuePlace(userId);
            if (!('state' in body))
                throw body;
            return body;
        };
        return this.watch(`/queue/events?ticket=${encodeURIComponent(ticket)}`, 'queue', poll, handlers);
    }
    watch(path, event, poll, handlers) {
        let stopped = false;
        let source = null;
        let pollTimer;
        let retryTimer;
        let backoff = 1000;
        const deliver = (data) => {
            this.seen(data);
            handlers.onData(data);
        };
        const startPolling = () => {
            if (pollTimer !== undefined || stopped)
                return;
            handlers.onMode?.('polling');
            const tick = async () => {
                try {
                    deliver(await poll());
                }
                catch (error) {
                    handlers.onError?.(error);
                }
                if (!stopped && pollTimer !== undefined)
                    pollTimer = setTimeout(tick, this.options.pollMs);
            };
            pollTimer = setTimeout(tick, 0);
        };
        const stopPolling = () => {
            clearTimeout(pollTimer);
            pollTimer = undefined;
        };
        const open = () => {
            if (stopped)
                return;
            const ES = globalThis.EventSource;
            if (!ES) {
                startPolling();
                return;
            }
            handlers.onMode?.(pollTimer === undefined ? 'connecting' : 'polling');
            source = new ES(`${this.base}${path}`);
            source.addEventListener(event, (e) => {
                backoff = 1000;
                stopPolling();
                handlers.onMode?.('stream');
                deliver(JSON.parse(e.data));
            });
            source.addEventListener('gone', () => handlers.onGone?.());
            source.onerror = () => {
                // A refused stream (any status but 200, or not an event stream) is CLOSED and the
                // browser never tries it again; a broken one it retries itself. Either way the data
                // keeps coming by polling until the stream delivers again.
                startPolling();
                if (source && source.readyState === 2) {
                    source.close();
                    source = null;
                    retryTimer = setTimeout(open, backoff);
                    backoff = Math.min(backoff * 2, 30000);
                }
            };
        };
        open();
        return () => {
            stopped = true;
            stopPolling();
            clearTimeout(retryTimer);
            source?.close();
        };
    }
    seen(body) {
        const at = body.serverTime ? Date.parse(body.serverTime) : NaN;
        if (!Number.isNaN(at))
            this.offsetMs = at - Date.now();
    }
    /**
     * One call with bounded retries: a network failure or a 502/503/504 is tried again after
     * Retry-After (at most `maxRetryWaitMs`, 1 s when absent), up to `retries` times. The last
     * reply is returned when it is the service's JSON; otherwise a FlashsaleError is thrown.
     */
    async call(method, path, init = {}) {
        const headers = { Accept: 'application/json', ...init.headers };
        if (init.body !== undefined)
            headers['Content-Type'] = 'application/json';
        const token = this.options.getToken ? await this.options.getToken() : null;
        if (token)
            headers.Authorization = `Bearer ${token}`;
        let failure = null;
        for (let attempt = 0;; attempt++) {
            let wait = null;
            try {
                const response = await this.fetcher(`${this.base}${path}`, {
                    method,
                    headers,
                    body: init.body === undefined ? undefined : JSON.stringify(init.body),
                });
                wait = retryAfterMs(response.headers.get('Retry-After'));
                const body = await readJson(response);
                if (body !== null && !(RETRY_STATUSES.has(response.status) && attempt < this.options.retries)) {
                    return { ok: response.ok, status: response.status, body, retryAfterMs: wait };
                }
                failure =
                    body === null
                        ? new FlashsaleError('http', `The shop answered ${response.status} ${response.statusText || ''}`.trim() +
                            ' without its data (a proxy or the network in between); try again.', response.status)
                        : null;
                if (!RETRY_STATUSES.has(response.status))
                    break;
            }
            catch (error) {
                failure = new FlashsaleError('network', `The shop cannot be reached (${error.message}); check your connection and try again.`);
            }
            if (attempt >= this.options.retries)
                break;
            await sleep(Math.min(wait ?? 1000, this.options.maxRetryWaitMs));
        }
        throw failure ?? new FlashsaleError('http', 'The shop is busy; try again.');
    }
}
/** The reply's JSON when it is the service's (an object with `code`, or any JSON object). */
async function readJson(response) {
    const type = response.headers.get('Content-Type') ?? '';
    if (!type.includes('json')) {
        await response.body?.cancel().catch(() => undefined);
        return null;
    }
    try {
        const body = await response.json();
        return body && typeof body === 'object' ? body : null;
    }
    catch {
        return null;
    }
}
/** Whether a sale can be bought from now (for a Buy button). */
export function isOpen(status) {
    return status?.status === 'active';
}
