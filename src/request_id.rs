//! [`RequestId`]: the id of one request, on its log lines, its order entry and its answer.

use actix_web::dev::ServiceRequest;
use std::{fmt, sync::Arc};

/// The id of one request: the caller's `X-Request-Id` when it is a sensible one (1–128
/// characters from `A–Z a–z 0–9 - _ . :`, so a proxy's or a client's id links their logs to
/// ours), else a new UUID. Echoed in the `x-request-id` response header.
#[derive(Clone, Debug)]
pub struct RequestId(Arc<str>);

impl RequestId {
    pub fn for_request(request: &ServiceRequest) -> Self {
        let incoming = request
            .headers()
            .get("x-request-id")
            .and_then(|value| value.to_str().ok())
            .filter(|id| Self::is_valid(id));
        match incoming {
            Some(id) => Self(Arc::from(id)),
            None => Self(Arc::from(uuid::Uuid::new_v4().to_string())),
        }
    }

    fn is_valid(id: &str) -> bool {
        (1..=128).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id itself, shared rather than copied.
    pub fn shared(&self) -> Arc<str> {
        self.0.clone()
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
