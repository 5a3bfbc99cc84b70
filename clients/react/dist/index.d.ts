import { FlashsaleClient, FlashsaleError, type Answer, type ClientOptions, type Hold, type LiveMode, type PurchaseAnswer, type QueueBody, type StatusBody } from '@flashsale/client';
export * from '@flashsale/client';
export interface UseSaleOptions extends Omit<ClientOptions, 'saleId'> {
}
export interface HoldState extends Hold {
    /** Seconds left to pay, on Redis's clock; 0 once the units have gone back. */
    secondsLeft: number;
}
export interface SaleState {
    status: StatusBody | null;
    /** `stream` while events arrive, `polling` while the stream is refused. */
    live: LiveMode;
    /** The sale was deleted. */
    gone: boolean;
    /** A purchase, cancel or join is on its way (retries of a 503 included). */
    pending: boolean;
    /** The last purchase's answer (or the last refusal of a join or cancel). */
    result: PurchaseAnswer | Answer | null;
    /** No answer from the service: the network, or a proxy's reply. `message` is for people. */
    error: FlashsaleError | null;
    hold: HoldState | null;
    /** The buyer's place in the waiting room, live. */
    queue: QueueBody | null;
    buy: (request?: {
        userId?: string;
        quantity?: number;
    }) => Promise<PurchaseAnswer | null>;
    cancel: () => Promise<void>;
    join: (userId?: string) => Promise<QueueBody | null>;
    client: FlashsaleClient;
}
export declare function useSale(saleId: string, options?: UseSaleOptions): SaleState;
