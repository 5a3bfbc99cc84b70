//! One Redis connection as a flash sale needs it (timeouts, redirections, reconnection), and
//! the supervisor that keeps its connection task running.

use super::StoreError;
use fred::{
    prelude::*,
    types::config::{Config, Options},
};
use std::time::Duration;
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
        // MOVED/ASK redirections are followed a few times while a slot migrates, then the
        // command fails (503 to the client) instead of looping until the timeout.
        max_redirections: 5,
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

/// Runs a client's connection task, starting it again whenever it ends with an error; it
/// returns when the client was closed on purpose (`QUIT`).
///
/// fred's connection task ends for good when its router meets an error it does not retry
/// (seen while Redis Cluster moves a slot: "Max attempts reached"), and every later command on
/// that client would then time out until a restart.
pub(super) async fn supervise(client: Client) {
    const FIRST_BACKOFF: Duration = Duration::from_millis(50);
    let mut backoff = FIRST_BACKOFF;
    loop {
        let started = std::time::Instant::now();
        match client.connect().await {
            Ok(Ok(())) => return,
            Ok(Err(err)) => tracing::warn!(
                error = %err,
                "Redis connection task stopped; starting it again"
            ),
            Err(err) => tracing::warn!(
                error = %err,
                "Redis connection task failed; starting it again"
            ),
        }
        if started.elapsed() > Duration::from_secs(10) {
            backoff = FIRST_BACKOFF;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// Keeps the last error a connection broadcast (fred reports failed connects and reconnects
/// there, not to the commands waiting for them), until the client is dropped.
pub(super) async fn remember_errors(
    mut errors: tokio::sync::broadcast::Receiver<(Error, Option<Server>)>,
    last: std::sync::Arc<std::sync::Mutex<Option<String>>>,
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
