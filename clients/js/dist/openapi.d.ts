/**
 * The JSON body of every answer: errors, purchase outcomes and both kinds of 429.
 */
export type Answer = {
    code: Code;
    /**
     * Checkout sales: units in unpaid holds, which may come back.
     */
    heldStock?: number | null;
    /**
     * When the hold ends unless the order is confirmed, on Redis's clock (RFC 3339, ms).
     */
    holdExpiresAt?: string | null;
    message: string;
    orderNumber?: number | null;
    purchaseTime?: string | null;
    /**
     * Checkout sales (README, Checkout): the units of the buyer's order.
     */
    quantity?: number | null;
    /**
     * Absent from plain errors; `null` when the stock is unknown (a per-IP 429).
     */
    remainingStock?: number | null;
    /**
     * `RESERVED` only: the secret that cancels this hold (`Flashsale-Reservation` header).
     */
    reservationToken?: string | null;
    success: boolean;
};
/**
 * A page of buyers.
 */
export type BuyerPage = {
    buyers: Array<BuyerRow>;
    /**
     * The `cursor` of the next page; `null` after the last.
     */
    nextCursor?: string | null;
};
/**
 * One buyer, in purchase order.
 */
export type BuyerRow = {
    orderNumber: number;
    purchaseTime: string;
    /**
     * Units in the order (1 unless the sale allows more per buyer).
     */
    quantity: number;
    userId: string;
};
/**
 * Every code a JSON answer can carry.
 */
export type Code = "PURCHASED" | "RESERVED" | "ALREADY_PURCHASED" | "ALREADY_RESERVED" | "SOLD_OUT" | "SALE_NOT_STARTED" | "SALE_ENDED" | "RATE_LIMITED" | "INVALID_REQUEST" | "UNAUTHORIZED" | "FORBIDDEN" | "REQUEST_TIMEOUT" | "PAYLOAD_TOO_LARGE" | "UNSUPPORTED_MEDIA_TYPE" | "SALE_NOT_FOUND" | "SALE_HAS_BUYERS" | "ORDER_NOT_FOUND" | "HOLD_EXPIRED" | "ORDER_CONFIRMED" | "NOT_ADMITTED" | "QUEUE_NOT_OPEN" | "NO_WAITING_ROOM" | "NOT_IN_QUEUE" | "NOT_FOUND" | "METHOD_NOT_ALLOWED" | "SERVICE_UNAVAILABLE" | "INTERNAL_ERROR";
/**
 * A page of dead orders.
 */
export type DeadOrderPage = {
    /**
     * The `cursor` of the next page; `null` after the last.
     */
    nextCursor?: string | null;
    orders: Array<DeadOrderRow>;
};
/**
 * An order whose webhook failed every attempt: the delivery's body fields, and why it died.
 */
export type DeadOrderRow = {
    attempts: number;
    /**
     * Its id in the dead-letter stream: the cursor of the next page.
     */
    deadId: string;
    /**
     * When it was moved there (RFC 3339, ms).
     */
    deadTime: string;
    eventId: string;
    lastError: string;
    orderNumber: number;
    purchaseTime: string;
    quantity: number;
    requestId: string;
    saleId: string;
    /**
     * The event's type, as its delivery carries it (README, Checkout: the order stream).
     */
    type: string;
    userId: string;
};
/**
 * A page of the draw.
 */
export type DrawPage = {
    /**
     * SHA-256 (hex) of the seed, published from the sale's creation.
     */
    drawCommitment: string;
    /**
     * The seed (hex); `null` before the start, when no row is shown either.
     */
    drawSeed?: string | null;
    /**
     * The `offset` of the next page; `null` after the last.
     */
    nextOffset?: number | null;
    /**
     * Buyers who joined before the start.
     */
    preQueued: number;
    /**
     * Pre-queue buyers in draw order, from position `offset + 1`.
     */
    rows: Array<DrawRow>;
};
/**
 * One pre-queue buyer and the place the draw gave them.
 */
export type DrawRow = {
    position: number;
    userId: string;
};
export type HealthBody = {
    /**
     * Why degraded: Redis near `maxmemory`, an eviction policy, purchases failing.
     */
    reasons: Array<string>;
    redis: string;
    /**
     * `ok`, or `degraded` when Redis is unreachable or any reason below holds.
     */
    status: string;
    uptimeSeconds: number;
    version: string;
};
/**
 * The JSON body of one delivery. It is the same on every attempt; receivers dedupe on
 * `eventId` (also in the `Flashsale-Event-Id` header).
 */
export type OrderEvent = {
    /**
     * The order's id in `sale:{ID}:orders`; the same across re-deliveries and re-drives.
     */
    eventId: string;
    /**
     * When this event happened, by Redis's clock (RFC 3339, ms).
     */
    eventTime: string;
    orderNumber: number;
    /**
     * When the order was placed, by Redis's clock (RFC 3339, ms).
     */
    purchaseTime: string;
    /**
     * Units in the order.
     */
    quantity: number;
    /**
     * `expired` or `cancelled` (released); `resold` or `reordered` (refund required).
     */
    reason?: string | null;
    /**
     * The `X-Request-Id` of the request that caused the event (empty for the sweeper).
     */
    requestId: string;
    saleId: string;
    /**
     * `order.created` (a sale without holds), or a checkout's `order.reserved`,
     * `order.confirmed`, `order.released` or `order.refund_required` (README, Checkout).
     */
    type: string;
    userId: string;
};
/**
 * One step of an order's history.
 */
export type OrderStepView = {
    /**
     * `expired` or `cancelled` for `released`; `resold` or `reordered` for `refund_required`.
     */
    reason?: string | null;
    /**
     * `held`, `confirmed`, `released` or `refund_required`.
     */
    state: string;
    /**
     * On Redis's clock (RFC 3339, ms).
     */
    time: string;
};
/**
 * An order of a checkout sale and its history.
 */
export type OrderView = {
    createdTime: string;
    history: Array<OrderStepView>;
    /**
     * When an unpaid hold ends; absent on an order that never had a hold.
     */
    holdExpiresAt?: string | null;
    /**
     * Confirmed after its hold had expired.
     */
    late: boolean;
    orderNumber: number;
    quantity: number;
    saleId: string;
    /**
     * `held` (waiting for payment), `confirmed` (paid), `released` (expired or cancelled: its
     * units went back to stock) or `refund_required` (paid after its units were sold again).
     */
    state: string;
    userId: string;
};
/**
 * `PATCH` body: any of name and window.
 */
export type PatchBody = {
    /**
     * Now or earlier closes the sale, on Redis's clock; its start never changes.
     */
    endTime?: string | null;
    /**
     * 0 = no holds, or 30–86400; holds already placed keep their expiry.
     */
    holdSeconds?: number | null;
    /**
     * 1–100; orders already placed keep their units.
     */
    maxPerBuyer?: number | null;
    productName?: string | null;
    startTime?: string | null;
    waitingRoom?: null | RoomBody;
};
/**
 * A purchase's answer, by `code`: the codes that carry an order or the stock always carry the fields listed as required.
 */
export type PurchaseAnswer = Answer & {
    code: "PURCHASED";
    orderNumber: number;
    purchaseTime: string;
    remainingStock: number;
} | Answer & {
    code: "RESERVED";
    heldStock: number;
    holdExpiresAt: string;
    orderNumber: number;
    purchaseTime: string;
    quantity: number;
    remainingStock: number;
    reservationToken: string;
} | Answer & {
    code: "ALREADY_PURCHASED";
    orderNumber: number;
    purchaseTime: string;
    remainingStock: number;
} | Answer & {
    code: "ALREADY_RESERVED";
    holdExpiresAt: string;
    orderNumber: number;
    remainingStock: number;
} | Answer & {
    code: "SOLD_OUT";
    remainingStock: number;
} | Answer & {
    code: "SALE_NOT_STARTED" | "SALE_ENDED" | "RATE_LIMITED" | "INVALID_REQUEST" | "UNAUTHORIZED" | "FORBIDDEN" | "REQUEST_TIMEOUT" | "PAYLOAD_TOO_LARGE" | "UNSUPPORTED_MEDIA_TYPE" | "SALE_NOT_FOUND" | "SALE_HAS_BUYERS" | "ORDER_NOT_FOUND" | "HOLD_EXPIRED" | "ORDER_CONFIRMED" | "NOT_ADMITTED" | "QUEUE_NOT_OPEN" | "NO_WAITING_ROOM" | "NOT_IN_QUEUE" | "NOT_FOUND" | "METHOD_NOT_ALLOWED" | "SERVICE_UNAVAILABLE" | "INTERNAL_ERROR";
};
/**
 * The purchase body. `userId` is required unless a bearer token names the buyer.
 */
export type PurchaseRequest = {
    /**
     * Units for this one order (default 1); at most the sale's `maxPerBuyer` (README, Checkout).
     */
    quantity?: number | null;
    /**
     * 1–128 of `A–Z a–z 0–9 . _ - @ + : |`; required unless a bearer token names the buyer.
     */
    userId?: string | null;
};
/**
 * Where a buyer stands, as join, polling and the stream answer it.
 */
export type QueueBody = {
    /**
     * `admitted` only: send it as the `Flashsale-Admission` header of the purchase.
     */
    admission?: string | null;
    admissionExpiresAt?: string | null;
    /**
     * Buyers ahead who have not been let in yet.
     */
    ahead?: number | null;
    estimatedWaitSeconds?: number | null;
    heldStock: number;
    /**
     * 1-based, exact; `null` before the draw.
     */
    position?: number | null;
    remainingStock: number;
    serverTime: string;
    /**
     * `pre_queue` (joined before the start: the place is drawn at the start), `waiting`,
     * `unlikely` (everyone ahead buying would leave nothing), `admitted` (buy now, with
     * `admission`), `expired` (the admission lapsed), `sold_out`, `ended`.
     */
    state: QueueState;
    /**
     * Names the buyer to `GET …/queue/events?ticket=` (join and polling answers only).
     */
    ticket?: string | null;
};
/**
 * The join body. `userId` is required unless a bearer token names the buyer.
 */
export type QueueRequest = {
    /**
     * 1–128 of `A–Z a–z 0–9 . _ - @ + : |`; required unless a bearer token names the buyer.
     */
    userId?: string | null;
};
/**
 * Where a buyer stands in the waiting room (see `QueueBody.state`).
 */
export type QueueState = "pre_queue" | "waiting" | "unlikely" | "admitted" | "expired" | "sold_out" | "ended";
/**
 * What a re-drive did.
 */
export type Redriven = {
    /**
     * Dead orders queued for delivery again, with their `eventId`.
     */
    redriven: number;
    /**
     * Dead orders left.
     */
    remaining: number;
};
/**
 * The totals after a restock.
 */
export type RestockAnswer = {
    remainingStock: number;
    saleId: string;
    totalStock: number;
};
export type RestockBody = {
    units: number;
};
/**
 * A waiting room's settings.
 */
export type RoomBody = {
    /**
     * How long an admission lasts (default 120).
     */
    admissionSeconds?: number | null;
    /**
     * How many buyers at the head of the queue are let in each second (and at the start).
     */
    admitPerSecond: number;
    /**
     * When joining opens, not after the start (default: 15 minutes before it). Joins before
     * the start are ordered by the draw.
     */
    opensAt?: string | null;
};
/**
 * The waiting room's part of the status and the admin view.
 */
export type RoomView = {
    admissionSeconds: number;
    /**
     * Purchases made with an admission.
     */
    admissionsUsed: number;
    admitPerSecond: number;
    admitted: number;
    /**
     * SHA-256 (hex) of the draw's seed, published from the sale's creation.
     */
    drawCommitment: string;
    /**
     * The seed (hex), published once the sale has started; `null` before.
     */
    drawSeed?: string | null;
    opensAt: string;
    /**
     * Buyers who joined before the start: the draw orders them.
     */
    preQueued: number;
    /**
     * Everyone who joined, and of them those let in so far.
     */
    queued: number;
};
/**
 * `PUT` body: the whole sale.
 */
export type SaleBody = {
    endTime: string;
    /**
     * How long a unit is held for an unpaid order: 0 (the default) = no holds, an order is
     * final when placed; otherwise 30–86400 (README, Checkout).
     */
    holdSeconds?: number | null;
    /**
     * The most units one buyer's order may take (default 1).
     */
    maxPerBuyer?: number | null;
    productName: string;
    startTime: string;
    totalStock: number;
    waitingRoom?: null | RoomBody;
};
/**
 * A page of the sales that exist.
 */
export type SaleList = {
    /**
     * The `offset` of the next page; `null` after the last.
     */
    nextOffset?: number | null;
    /**
     * Sale ids, oldest first.
     */
    sales: Array<string>;
};
/**
 * Where a sale stands: `upcoming` before its start, `active`, `sold_out`, `ended` after its end.
 */
export type SaleStatus = "upcoming" | "active" | "sold_out" | "ended";
/**
 * A sale as an operator sees it: config, counters, and whether the numbers add up.
 */
export type SaleView = {
    attemptsRefused: number;
    buyers: number;
    confirmed: number;
    /**
     * remaining + held + confirmed = total (README, Guarantees); on a plain sale also one
     * record and one order-stream entry per buyer.
     */
    consistent: boolean;
    createdTime: string;
    endTime: string;
    /**
     * Units in unpaid holds, units confirmed, units released so far (expired or cancelled).
     */
    held: number;
    /**
     * 0 = no holds (README, Checkout).
     */
    holdSeconds: number;
    maxPerBuyer: number;
    orders: number;
    productName: string;
    released: number;
    remaining: number;
    saleId: string;
    sold: number;
    startTime: string;
    status: string;
    totalStock: number;
    waitingRoom?: null | RoomView;
};
/**
 * The status JSON, also the data of each `status` event of the event stream.
 */
export type StatusBody = {
    endTime: string;
    /**
     * Units in unpaid checkout holds: not in `remainingStock`, and some may come back
     * (README, Checkout); 0 on a sale without holds.
     */
    heldStock: number;
    productName: string;
    remainingStock: number;
    serverTime: string;
    startTime: string;
    status: SaleStatus;
    totalStock: number;
    waitingRoom?: null | RoomView;
};
/**
 * What Stripe is told (it reads only the status; the body is for the shop's dashboard).
 */
export type StripeReceipt = {
    /**
     * This event id was applied before; nothing changed.
     */
    duplicate: boolean;
    /**
     * Set when the event type is not one flashsale acts on.
     */
    ignored?: string | null;
    orderNumber?: number | null;
    received: boolean;
    /**
     * The order's state after the event.
     */
    state?: string | null;
};
export type UserBody = {
    /**
     * The user holds a paid unit (on a sale with holds, a held order is not purchased yet).
     */
    hasPurchased: boolean;
    holdExpiresAt?: string | null;
    orderNumber?: number | null;
    purchaseTime?: string | null;
    /**
     * Checkout sales (README, Checkout): the order's units.
     */
    quantity?: number | null;
    /**
     * Checkout sales: `held` (waiting for payment until `holdExpiresAt`) or `confirmed`.
     */
    state?: string | null;
    userId: string;
};
