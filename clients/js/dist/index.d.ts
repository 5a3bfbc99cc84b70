import type { Answer, Code, OrderView, PurchaseAnswer, QueueBody, StatusBody, UserBody } from './openapi.js';
export type * from './openapi.js';
/** A purchase's answer narrowed to one code: `AnswerOf<'PURCHASED'>['orderNumber']` is a number. */
export type AnswerOf<C extends Code> = Extract<PurchaseAnswer, {
    code: C;
}>;
export interface ClientOptions {
    /** The service, e.g. `https://shop-drop.fly.dev`; `''` for the same origin. */
    baseUrl?: string;
    saleId: string;
    /** Trusted buyers: the shop's JWT for the signed-in buyer (sent as a bearer token). */
    getToken?: () => string | null | undefined | Promise<string | null | undefined>;
    /** How many times a 502/503/504 or a network failure is retried (default 4). */
    retries?: number;
    /** The longest single wait between retries, whatever Retry-After says (default 5,000 ms). */
    maxRetryWaitMs?: number;
    /** Polling interval while the event stream is refused (default 1,000 ms). */
    pollMs?: number;
    fetch?: typeof fetch;
}
/** Why a call has no answer from the service: the network, or a reply that is not its JSON. */
export declare class FlashsaleError extends Error {
    /** `network`: no reply (service down, offline); `http`: a reply that is not the service's. */
    readonly kind: 'network' | 'http';
    /** The HTTP status, for `http`. */
    readonly status?: number;
    constructor(kind: 'network' | 'http', message: string, status?: number);
}
/** The status stream's state: `stream` (live events), `polling` (the stream was refused). */
export type LiveMode = 'connecting' | 'stream' | 'polling';
export interface WatchHandlers<T> {
    onData: (data: T) => void;
    onError?: (error: FlashsaleError | Answer) => void;
    onMode?: (mode: LiveMode) => void;
    /** The sale was deleted (status stream only). */
    onGone?: () => void;
}
/** A checkout hold: pay before `expiresAt` (Redis's clock) or the units go back. */
export interface Hold {
    orderNumber: number;
    quantity: number;
    expiresAt: number;
    /** Cancels the hold (the `Flashsale-Reservation` header); absent on ALREADY_RESERVED. */
    reservationToken?: string;
}
/**
 * A random key for one purchase. `crypto.randomUUID` exists only in secure contexts (https or
 * localhost); `getRandomValues` everywhere, so a phone on `http://192.168.x.y:5173` can buy.
 */
export declare function newIdempotencyKey(): string;
/** Seconds a `Retry-After` header asks for (delta seconds or an HTTP date); `null` if absent. */
export declare function retryAfterMs(header: string | null, now?: number): number | null;
export declare class FlashsaleClient {
    readonly saleId: string;
    private readonly base;
    private readonly options;
    private readonly fetcher;
    /** Redis's clock minus this machine's, from the last `serverTime` seen. */
    private offsetMs;
    constructor(options: ClientOptions);
    /** Now on Redis's clock (ms), as far as this client has seen it. */
    serverNow(): number;
    /** Seconds left on a hold, on Redis's clock (0 once it has expired). */
    secondsLeft(hold: Hold): number;
    status(): Promise<StatusBody>;
    /**
     * Buys. `key` is the Idempotency-Key: keep it until the purchase is settled (the hook does) so
     * that a retry after a lost answer is told what happened instead of buying twice. A 503 that
     * outlasts the retries is answered as SERVICE_UNAVAILABLE; no reply at all throws.
     */
    purchase(request: {
        userId?: string;
        quantity?: number;
        admission?: string | null;
    }, key?: string): Promise<PurchaseAnswer & {
        retryAfterMs: number | null;
    }>;
    /** The hold a RESERVED or ALREADY_RESERVED answer describes. */
    holdOf(answer: PurchaseAnswer): Hold | null;
    /** Gives a hold back (its units return to stock at once). */
    cancel(hold: Hold): Promise<OrderView | Answer>;
    user(userId: string): Promise<UserBody | Answer>;
    /** Joins the waiting room (the same place on every call). */
    join(userId?: string): Promise<QueueBody | Answer>;
    /** Where the buyer stands in the waiting room now. */
    queuePlace(userId?: string): Promise<QueueBody | Answer>;
    /**
     * The sale's status, live: the event stream, and while it is refused (503 at the stream cap,
     * 429, a proxy) or broken, `GET /status` every `pollMs`, with the stream tried again with
     * backoff. Returns a function that stops it all.
     */
    watchStatus(handlers: WatchHandlers<StatusBody>): () => void;
    /**
     * The buyer's place, live: the queue stream named by the join's `ticket`, falling back to
     * polling `GET …/queue/me` (which needs `userId` or a token) while it is refused.
     */
    watchQueue(ticket: string, userId: string | undefined, handlers: WatchHandlers<QueueBody>): () => void;
    private watch;
    private seen;
    /**
     * One call with bounded retries: a network failure or a 502/503/504 is tried again after
     * Retry-After (at most `maxRetryWaitMs`, 1 s when absent), up to `retries` times. The last
     * reply is returned when it is the service's JSON; otherwise a FlashsaleError is thrown.
     */
    private call;
}
/** Whether a sale can be bought from now (for a Buy button). */
export declare function isOpen(status: Pick<StatusBody, 'status'> | null): boolean;
