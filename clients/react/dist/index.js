// useSale: one flashsale sale in a React component, on @flashsale/client. It keeps the live
// status (event stream, polling while the stream is refused), the purchase's pending state,
// answer and error, the checkout hold counting down on Redis's clock, and the waiting-room place.
// One Idempotency-Key per purchase, kept until the purchase is settled: a click after a network
// failure or a 503 is the same purchase, told what happened rather than buying twice.
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { FlashsaleClient, FlashsaleError, newIdempotencyKey, } from '@flashsale/client';
export * from '@flashsale/client';
/** Answers after which the same purchase may be tried again with the same key. */
const UNSETTLED = new Set(['SERVICE_UNAVAILABLE', 'RATE_LIMITED', 'REQUEST_TIMEOUT']);
export function useSale(saleId, options = {}) {
    const { baseUrl, retries, maxRetryWaitMs, pollMs } = options;
    const getToken = useRef(options.getToken);
    getToken.current = options.getToken;
    const client = useMemo(() => new FlashsaleClient({
        saleId,
        baseUrl,
        retries,
        maxRetryWaitMs,
        pollMs,
        fetch: options.fetch,
        getToken: options.getToken ? () => getToken.current?.() : undefined,
    }), 
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [saleId, baseUrl, retries, maxRetryWaitMs, pollMs, Boolean(options.getToken)]);
    const [status, setStatus] = useState(null);
    const [live, setLive] = useState('connecting');
    const [gone, setGone] = useState(false);
    const [pending, setPending] = useState(false);
    const [result, setResult] = useState(null);
    const [error, setError] = useState(null);
    const [hold, setHold] = useState(null);
    const [queue, setQueue] = useState(null);
    const [queueUser, setQueueUser] = useState(undefined);
    const key = useRef(null);
    useEffect(() => client.watchStatus({
        onData: (next) => {
            setGone(false);
            setStatus(next);
        },
        onMode: setLive,
        onGone: () => setGone(true),
    }), [client]);
    // The hold's countdown: recomputed from its end on Redis's clock, so it never drifts.
    const holdKey = hold ? `${hold.orderNumber}:${hold.expiresAt}` : null;
    useEffect(() => {
        if (!holdKey)
            return undefined;
        const tick = () => setHold((current) => current && { ...current, secondsLeft: client.secondsLeft(current) });
        const timer = setInterval(tick, 250);
        return () => clearInterval(timer);
    }, [client, holdKey]);
    const ticket = queue?.ticket ?? null;
    useEffect(() => {
        if (!ticket)
            return undefined;
        return client.watchQueue(ticket, queueUser, {
            onData: (place) => setQueue((current) => ({ ...place, ticket: current?.ticket ?? ticket })),
        });
    }, [client, ticket, queueUser]);
    const admission = queue?.admission ?? null;
    const run = useCallback(async (work) => {
        setPending(true);
        setError(null);
        try {
            return await work();
        }
        catch (failure) {
            if (failure instanceof FlashsaleError) {
                setError(failure);
                return null;
            }
            throw failure;
        }
        finally {
            setPending(false);
        }
    }, []);
    const buy = useCallback((request = {}) => run(async () => {
        key.current ?? (key.current = newIdempotencyKey());
        const answer = await client.purchase({ ...request, admission }, key.current);
        if (!UNSETTLED.has(answer.code))
            key.current = null;
        setResult(answer);
        const held = client.holdOf(answer);
        if (held)
            setHold({ ...held, secondsLeft: client.secondsLeft(held) });
        else if (answer.success)
            setHold(null);
        return answer;
    }), [client, admission, run]);
    const cancel = useCallback(async () => {
        const current = hold;
        if (!current)
            return;
        await run(async () => {
            const answer = await client.cancel(current);
            if ('state' in answer) {
                setHold(null);
                setResult(null);
            }
            else {
                setResult(answer);
            }
        });
    }, [client, hold, run]);
    const join = useCallback((userId) => run(async () => {
        const answer = await client.join(userId);
        if ('state' in answer) {
            setQueueUser(userId);
            setQueue(answer);
            return answer;
        }
        setResult(answer);
        return null;
    }), [client, run]);
    return { status, live, gone, pending, result, error, hold, queue, buy, cancel, join, client };
}
