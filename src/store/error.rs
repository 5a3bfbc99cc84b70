//! [`StoreError`]: why a store call failed, in the kinds the HTTP layer tells apart, and how a
//! fred error is sorted into them.

use fred::prelude::*;

/// Why a Redis call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// Redis did not answer in time, could not be reached, or said "not now": the outcome is
    /// unknown, and a retry is safe (README, Guarantees).
    #[error("redis unavailable: {0}")]
    Unavailable(#[source] fred::error::Error),
    /// Redis answered with something this build does not expect (a bug, or a script of another
    /// build).
    #[error("unexpected redis reply: {0}")]
    Unexpected(String),
    /// A record in Redis is not what this build writes (a hand-made or foreign entry). Logged
    /// and counted where it is found ([`StoreError::bad_data`]), never read as zeros.
    #[error("bad data in redis: {what} {detail}")]
    BadData { what: &'static str, detail: String },
}

impl StoreError {
    /// A record that does not parse: logged and counted once, here.
    pub fn bad_data(what: &'static str, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        tracing::error!(record = what, detail = %detail, "bad data in Redis");
        crate::metrics::bad_data(what);
        StoreError::BadData { what, detail }
    }

    /// The error of a call that did not finish within `REDIS_TIMEOUT_MS`.
    pub fn timed_out(what: &'static str) -> Self {
        StoreError::Unavailable(fred::error::Error::new(ErrorKind::Timeout, what))
    }

    /// The error of a call whose deadline (`REDIS_TIMEOUT_MS` from the request) passed.
    pub fn deadline_passed() -> Self {
        Self::timed_out("no answer within REDIS_TIMEOUT_MS")
    }
}

/// Reply prefixes that mean "not now" rather than "wrong": a replica promoted mid-call, a
/// cluster moving a slot, a server loading its data or out of memory, a script running long, or
/// Redis losing its scripts again before the one retry after a reload ran (a second `SCRIPT
/// FLUSH` or restart mid-call; seen in the kill/flush fault test): the script did not run.
const PASSING_STATES: [&str; 9] = [
    "LOADING",
    "READONLY",
    "CLUSTERDOWN",
    "TRYAGAIN",
    "MASTERDOWN",
    "BUSY",
    "OOM",
    "NOREPLICAS",
    "NOSCRIPT",
];

/// fred's own messages, under `ErrorKind::Unknown`, for a command it could not finish: its
/// connection was gone when it was to be written ("Failed to route command.", "Missing expected
/// connection.") or before its reply came ("Missing response."), as when Redis kills the
/// service's connections. The outcome is unknown or nothing was applied: "not now" (503), which
/// the buyer's retry settles, never 500.
const FRED_GAVE_UP: [&str; 6] = [
    "channel closed",
    "Too many failed write attempts",
    "Max attempts reached",
    "Failed to route command",
    "Missing expected connection",
    "Missing response",
];

impl From<fred::error::Error> for StoreError {
    fn from(err: fred::error::Error) -> Self {
        let passing = PASSING_STATES
            .iter()
            .any(|prefix| err.details().starts_with(prefix));
        match err.kind() {
            ErrorKind::Timeout
            | ErrorKind::IO
            | ErrorKind::Canceled
            | ErrorKind::Backpressure
            | ErrorKind::Routing
            | ErrorKind::Cluster => StoreError::Unavailable(err),
            _ if passing => StoreError::Unavailable(err),
            // fred gave up on a command mid-flight (its connection was torn down, as during a
            // failover, or its writes kept failing): the outcome is unknown, not a bug.
            ErrorKind::Unknown
                if FRED_GAVE_UP
                    .iter()
                    .any(|message| err.details().contains(message)) =>
            {
                StoreError::Unavailable(err)
            }
            _ => StoreError::Unexpected(err.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_not_now_reply_is_unavailable_and_anything_else_unexpected() {
        let not_now = [
            "OOM command not allowed when used memory > 'maxmemory'.",
            "LOADING Redis is loading the dataset in memory",
            "BUSY Redis is busy running a script.",
            "READONLY You can't write against a read only replica.",
            "TRYAGAIN Multiple keys request during rehashing of slot",
            "CLUSTERDOWN The cluster is down",
            "MASTERDOWN Link with MASTER is down",
            "NOREPLICAS Not enough good replicas to write.",
            "NOSCRIPT No matching script. Please use EVAL.",
        ];
        for details in not_now {
            let err = fred::error::Error::new(ErrorKind::Unknown, details);
            assert!(
                matches!(StoreError::from(err), StoreError::Unavailable(_)),
                "{details}"
            );
        }
        for kind in [ErrorKind::Timeout, ErrorKind::IO, ErrorKind::Canceled] {
            let err = fred::error::Error::new(kind, "connection reset by peer");
            assert!(matches!(StoreError::from(err), StoreError::Unavailable(_)));
        }
        for details in [
            "Failed to route command.",
            "Missing expected connection.",
            "Missing response.",
        ] {
            let err = fred::error::Error::new(ErrorKind::Unknown, details);
            assert!(
                matches!(StoreError::from(err), StoreError::Unavailable(_)),
                "{details}"
            );
        }
        let bug = fred::error::Error::new(ErrorKind::Unknown, "ERR wrong number of arguments");
        assert!(matches!(StoreError::from(bug), StoreError::Unexpected(_)));
    }
}
