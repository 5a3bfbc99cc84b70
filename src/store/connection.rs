//! One Redis connection as a flash sale needs it (timeouts, redirections, reconnection), the
//! store's set of them, and the supervisor that keeps each one working.

use super::StoreError;
use fred::{
    prelude::*,
    types::config::{Config, Options},
};
use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex, PoisonError, RwLock,
    },
    time::Duration,
};
use tokio::time::Instant;

/// When one store call gives up (`REDIS_TIMEOUT_MS` after it began). Each of its commands
/// carries fred's own timeout, ending a little before its caller is answered 503: fred marks
/// a command whose timeout fired and never writes it afterwards, so a call that gave up while
/// Redis was unreachable is not sent once Redis is back (the buyer was told "not now"). A
/// command future dropped by an outer timeout instead would stay in fred's queue unmarked and
/// run whenever the connection returned (seen: a purchase made a second after its 503).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Deadline {
    /// fred drops a command of this call not yet written by then.
    send_by: Instant,
    /// The caller is answered (503 when nothing came) by then.
    answer_by: Instant,
}

impl Deadline {
    /// `timeout` from now.
    pub(super) fn after(timeout: Duration) -> Self {
        let now = Instant::now();
        // Room for fred's timer to fire (millisecond ticks) before the caller's does.
        let margin = (timeout / 10).min(Duration::from_millis(20));
        Self {
            send_by: now + (timeout - margin),
            answer_by: now + timeout,
        }
    }

    /// When the caller is answered.
    pub(super) fn answer_by(self) -> Instant {
        self.answer_by
    }

    /// When waiting for a connection stops.
    pub(super) fn send_by(self) -> Instant {
        self.send_by
    }

    /// Options for a command sent now: fred's timeout ends at `send_by`. None left: the command
    /// is not sent at all (fred takes a zero timeout as none).
    pub(super) fn options(self) -> Result<Options, StoreError> {
        let left = self.send_by.saturating_duration_since(Instant::now());
        if left < Duration::from_millis(1) {
            return Err(StoreError::deadline_passed());
        }
        Ok(Options {
            timeout: Some(left),
            ..Options::default()
        })
    }
}

/// Whether Redis did not run a command because its slot moved or is moving: redirected (MOVED
/// or ASK, which fred reports as too many redirections) or `TRYAGAIN` (its keys are split
/// between two nodes mid-move). Sending it again is safe.
pub(super) fn slot_moving(err: &Error) -> bool {
    (*err.kind() == ErrorKind::Routing && err.details().starts_with("Too many redirections"))
        || err.details().starts_with("TRYAGAIN")
}

/// How long the store waits before sending such a command again: long enough for a slot being
/// moved to move a few more keys, short against `REDIS_TIMEOUT_MS`.
const SLOT_MOVING_PAUSE: Duration = Duration::from_millis(10);

/// Sends a command (`send`, given fred's options for the deadline) until Redis runs it: again
/// after a pause while its slot is moving ([`slot_moving`]). The outer error is the deadline
/// passing first; the inner, fred's answer, for the caller to read (`NOSCRIPT`, …).
pub(super) async fn send_while_slot_moves<T, Fut>(
    deadline: Deadline,
    send: impl Fn(Options) -> Fut,
) -> Result<Result<T, Error>, StoreError>
where
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    loop {
        match send(deadline.options()?).await {
            Err(err) if slot_moving(&err) => tokio::time::sleep(SLOT_MOVING_PAUSE).await,
            answer => return Ok(answer),
        }
    }
}

/// One connection with the settings that matter for a flash sale.
pub(super) fn client(config: Config, timeout: Duration) -> Client {
    let perf = PerformanceConfig {
        // fred's default is no timeout at all: a frozen Redis would hang every handler.
        default_command_timeout: timeout,
        ..PerformanceConfig::default()
    };
    let mut connection = ConnectionConfig {
        connection_timeout: timeout,
        internal_command_timeout: timeout,
        // In-flight commands are re-sent after a reconnect; purchase.lua is safe to run twice
        // (request tokens), which is what makes this default safe to keep.
        max_command_attempts: 3,
        // fred does not follow MOVED or ASK itself: a redirected command fails at once (after
        // a MOVED, with the slot map read again) and the store sends it again while its
        // deadline lasts ([`send_while_slot_moves`]). fred 10.1 follows an ASK by sending `ASKING` on a
        // connection that may have commands in flight and taking the next reply as
        // `ASKING`'s: one command then gets another's reply (seen: a purchase answered `OK`),
        // and a command redirected too often ends the connection task ("Max attempts
        // reached"; see [`supervise`]).
        max_redirections: 0,
        ..ConnectionConfig::default()
    };
    // A connection that stops answering is torn down and reconnected, instead of every later
    // command on it timing out.
    connection.unresponsive.max_timeout = Some(timeout.max(Duration::from_millis(500)));
    connection.unresponsive.interval = (timeout / 4).max(Duration::from_millis(50));
    // Retry forever, 50 ms doubling up to 2 s: a flash sale cannot wait 30 s for Redis.
    let policy = ReconnectPolicy::new_exponential(0, 50, 2_000, 2);
    Client::new(config, Some(perf), Some(connection), Some(policy))
}

/// A store's connections, taken in turn. Unlike fred's `Pool`, whose clients are fixed, a
/// client whose connection task ended with an error is replaced by a new one ([`supervise`]).
pub(super) struct Connections {
    clients: Box<[RwLock<Client>]>,
    next: AtomicUsize,
}

impl Connections {
    pub(super) fn new(clients: Vec<Client>) -> Self {
        Self {
            clients: clients.into_iter().map(RwLock::new).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// How many there are.
    pub(super) fn len(&self) -> usize {
        self.clients.len()
    }

    /// The client in place `index` now.
    pub(super) fn get(&self, index: usize) -> Client {
        self.clients[index]
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The next client in turn that is connected right now, or the next in turn when none is
    /// (as fred's `Pool::next_connected`).
    pub(super) fn next_connected(&self) -> Client {
        let first = self.next.fetch_add(1, Ordering::Relaxed);
        for step in 0..self.clients.len() {
            let place = self.clients[(first + step) % self.clients.len()]
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            if place.is_connected() {
                return place.clone();
            }
        }
        self.get(first % self.clients.len())
    }

    fn replace(&self, index: usize, client: Client) {
        *self.clients[index]
            .write()
            .unwrap_or_else(PoisonError::into_inner) = client;
    }
}

/// Runs the connection task of the client in place `index`, and whenever it ends with an error
/// puts a new client (same settings) in its place and runs that one's; it returns when the
/// client was closed on purpose (`QUIT`). Each client's errors are kept in `last_error`.
///
/// fred 10.1's connection task ends for good when its router meets an error it does not
/// retry (seen, while fred followed redirections itself, as "Max attempts reached" for a
/// command redirected back and forth). Starting that task again is not enough: fred cancels
/// the commands still queued for the ended task without taking them off its count of queued
/// commands, and a client that counts commands still to come writes nothing to the socket
/// until 200 more come or the connection is declared unresponsive: every command on it then
/// times out for as long as traffic is light (README, "Redirections are the store's").
pub(super) async fn supervise(
    connections: Arc<Connections>,
    index: usize,
    last_error: Arc<Mutex<Option<String>>>,
) {
    const FIRST_BACKOFF: Duration = Duration::from_millis(50);
    let mut backoff = FIRST_BACKOFF;
    loop {
        let client = connections.get(index);
        tokio::spawn(remember_errors(client.error_rx(), last_error.clone()));
        let started = std::time::Instant::now();
        match client.connect().await {
            Ok(Ok(())) => return,
            Ok(Err(err)) => tracing::warn!(
                error = %err,
                "Redis connection task stopped; starting a new connection"
            ),
            Err(err) => tracing::warn!(
                error = %err,
                "Redis connection task failed; starting a new connection"
            ),
        }
        connections.replace(index, client.clone_new());
        if started.elapsed() > Duration::from_secs(10) {
            backoff = FIRST_BACKOFF;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// Keeps the last error a connection broadcast (fred reports failed connects and reconnects
/// there, not to the commands waiting for them), until the client is dropped.
async fn remember_errors(
    mut errors: tokio::sync::broadcast::Receiver<(Error, Option<Server>)>,
    last: Arc<Mutex<Option<String>>>,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match errors.recv().await {
            Ok((error, _)) => {
                if let Ok(mut slot) = last.lock() {
                    *slot = Some(error.to_string());
                }
            }
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_command_redis_did_not_run_for_a_moving_slot_is_sent_again() {
        let not_run = [
            // fred's answer for a MOVED or ASK it was told not to follow.
            Error::new(ErrorKind::Routing, "Too many redirections."),
            Error::new(
                ErrorKind::Unknown,
                "TRYAGAIN Multiple keys request during rehashing of slot",
            ),
        ];
        for err in &not_run {
            assert!(slot_moving(err), "{err:?}");
        }
        let maybe_run_or_not_a_move = [
            Error::new(ErrorKind::Routing, "Max attempts reached."),
            Error::new(ErrorKind::Timeout, "Request timed out."),
            Error::new(ErrorKind::IO, "Connection closed."),
            Error::new(ErrorKind::Cluster, "CLUSTERDOWN The cluster is down"),
            Error::new(ErrorKind::Unknown, "ERR Error running script"),
        ];
        for err in &maybe_run_or_not_a_move {
            assert!(!slot_moving(err), "{err:?}");
        }
    }
}
