//! [`AppState`]: what every handler can reach, and who the buyer of a request is.

use super::extract::bearer_token;
use crate::{
    auth::Verifier,
    domain::{UserId, UserIdCase},
    error::ApiError,
    live::Live,
    queue::Rooms,
    status_cache::StatusCache,
    store::{Store, UserAttemptLimit},
};
use actix_web::HttpRequest;
use std::time::Instant;

/// What every handler can reach: its worker's store, and this instance's cache and limits.
pub struct AppState {
    pub store: Store,
    pub status_cache: StatusCache,
    pub user_attempts: UserAttemptLimit,
    /// JWT verification; `None` when off.
    pub verifier: Option<Verifier>,
    pub user_id_case: UserIdCase,
    /// The live-status hub: watchers and event-stream slots.
    pub live: Live,
    /// The waiting rooms this instance has read, and its admission signer.
    pub rooms: Rooms,
    pub started: Instant,
}

impl AppState {
    /// The buyer of a request. With verification off, the user the request names (body or
    /// path), which it must name. With it on, the user the bearer token names; a user the
    /// request names as well must be the same one (403 otherwise, revealing nothing).
    pub async fn buyer(
        &self,
        request: &HttpRequest,
        named: Option<UserId>,
    ) -> Result<UserId, ApiError> {
        let named = named.map(|user| self.user_id_case.apply(user));
        let Some(verifier) = &self.verifier else {
            return named.ok_or_else(|| ApiError::invalid("Invalid body: missing field `userId`."));
        };
        let token = bearer_token(request).ok_or(ApiError::Unauthorized {
            invalid_token: false,
        })?;
        // Boxed: a JWKS fetch makes this future large, and it is not every deployment's path.
        let holder = match Box::pin(verifier.verify(token)).await {
            Ok(user) => self.user_id_case.apply(user),
            Err(err) => {
                // The reason helps whoever runs the shop's sign-in; the token itself never
                // reaches the log.
                tracing::info!(reason = %err, "bearer token refused");
                return Err(ApiError::Unauthorized {
                    invalid_token: true,
                });
            }
        };
        match named {
            Some(named) if named != holder => Err(ApiError::Forbidden),
            _ => Ok(holder),
        }
    }
}
