//! The purchase: `lua/purchase.lua` in one round trip, and with `PURCHASE_WAIT_REPLICAS` the
//! script and `WAIT` in one pipeline on one connection.

use super::{
    keys::SaleKeys,
    scripts::{Purchase, ScriptCall},
    ReplicaWait, Store, StoreError, UserAttemptLimit,
};
use crate::domain::{PurchaseOutcome, RequestToken, SaleId, UserId};
use fred::{
    bytes_utils::Str,
    prelude::*,
    types::{config::Options, ClusterHash},
};

/// What a buyer asks of a purchase beyond who they are: units, and the admission they hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ask {
    /// 1 to the sale's `maxPerBuyer`.
    pub quantity: u32,
    /// With the waiting room on, the expiry of the admission the route verified; 0 without.
    pub admission_expires_ms: i64,
}

impl Ask {
    /// One unit, no admission.
    pub const ONE: Self = Self {
        quantity: 1,
        admission_expires_ms: 0,
    };
}

impl Store {
    /// Runs `lua/purchase.lua`: the whole decision, one round trip.
    pub async fn purchase(
        &self,
        sale: &SaleId,
        user: UserId,
        token: RequestToken,
        limit: UserAttemptLimit,
        request_id: &str,
        ask: Ask,
    ) -> Result<PurchaseOutcome, StoreError> {
        // Owned strings become `Str` without a copy.
        let call = Purchase {
            keys: SaleKeys::new(sale),
            sale_id: Str::from(sale.as_str()),
            user: Str::from(user.into_string()),
            token: Str::from(token.into_string()),
            limit,
            request_id: Str::from(request_id),
            waits: self.replica_wait.is_some(),
            quantity: ask.quantity,
            admission_expires_ms: ask.admission_expires_ms,
            // 128 random bits: the secret half of a hold's reservation token.
            secret: Str::from(uuid::Uuid::new_v4().simple().to_string()),
        };
        match self.replica_wait {
            None => self.eval(call).await,
            // Boxed: off the hot path, and its pipeline future is as large as the rest.
            Some(wait) => {
                self.bounded(Box::pin(self.purchase_and_wait(call, wait)))
                    .await
            }
        }
    }

    /// The purchase script and `WAIT` in one pipeline on one connection, so `WAIT` covers the
    /// script's write even when fred re-sends both after a reconnect (a replayed purchase
    /// writes again, see `lua/purchase.lua`). A `PURCHASED` that too few replicas acknowledged
    /// in time is "not now" (503): the buyer's retry with the same key settles it.
    async fn purchase_and_wait(
        &self,
        call: Purchase,
        wait: ReplicaWait,
    ) -> Result<PurchaseOutcome, StoreError> {
        let client = self.client().await;
        let script = Purchase::script(&self.scripts);
        // WAIT has no key: in a cluster it must go to the node of the sale's slot.
        let slot = fred::util::redis_keyslot(call.keys.config().as_bytes());
        // Both commands go to the node of the sale's slot (WAIT has no key, and a custom
        // EVALSHA's first argument is the script's hash). Neither is re-sent after a lost
        // connection: a WAIT re-sent alone, on a new connection that wrote nothing, would
        // return at once and vouch for a write it never saw (seen in the failover test).
        // The buyer's retry (503) runs both again, and the replayed script writes again.
        let options = Options {
            cluster_hash: Some(ClusterHash::Custom(slot)),
            max_attempts: Some(1),
            ..Options::default()
        };
        let send = || async {
            let (keys, values) = call.keys_and_args();
            let pipeline = client.pipeline();
            let routed = pipeline.with_options(&options);
            let mut evalsha = Vec::with_capacity(2 + keys.len() + values.len());
            evalsha.push(Value::from(script.sha1()));
            evalsha.push(Value::from(keys.len() as i64));
            evalsha.extend(keys.inner().into_iter().map(Value::from));
            evalsha.extend(values);
            let _: () = routed.custom(fred::cmd!("EVALSHA"), evalsha).await?;
            let _: () = routed
                .wait(i64::from(wait.replicas), wait.timeout_ms as i64)
                .await?;
            Ok::<_, fred::error::Error>(pipeline.try_all::<Value>().await)
        };
        let mut replies = send().await?;
        let no_script =
            matches!(replies.first(), Some(Err(err)) if err.details().starts_with("NOSCRIPT"));
        if no_script {
            crate::metrics::script_reload(script.name());
            script.load(client).await?;
            replies = send().await?;
        }
        let mut replies = replies.into_iter();
        let (reply, acked) = match (replies.next(), replies.next()) {
            (Some(reply), Some(acked)) => (reply, acked),
            // The pipeline failed as a whole (a timeout, the connection lost).
            (Some(Err(err)), None) => return Err(err.into()),
            _ => {
                return Err(StoreError::Unexpected(
                    "a pipeline of two answered less".into(),
                ))
            }
        };
        let outcome = Purchase::parse(reply?)?;
        let acked = acked?.as_i64().unwrap_or(0);
        if outcome.is_success() && acked < i64::from(wait.replicas) {
            return Err(StoreError::Unavailable(fred::error::Error::new(
                fred::error::ErrorKind::Timeout,
                format!(
                    "NOREPLICAS {acked} of {} replicas acknowledged the purchase in time",
                    wait.replicas
                ),
            )));
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod future_size {
    use super::*;
    use crate::store::RedisUrl;
    use std::{num::NonZeroUsize, time::Duration};

    /// A purchase's future is moved whole whenever actix or tokio moves the request's future:
    /// fred's command futures held inline made it 16 KB, copied on every move (README,
    /// Benchmarks).
    #[test]
    fn a_purchase_future_stays_small() {
        let url = RedisUrl::parse("redis://127.0.0.1:1").unwrap();
        let store = Store::new(&url, Duration::from_secs(1), NonZeroUsize::MIN);
        let sale = SaleId::parse("sale").unwrap();
        let user = UserId::parse("user".into()).unwrap();
        let limit = UserAttemptLimit {
            limit: 10,
            window_ms: 10_000,
        };
        let purchase = store.purchase(
            &sale,
            user,
            RequestToken::generate(),
            limit,
            "request",
            Ask::ONE,
        );
        let size = std::mem::size_of_val(&purchase);
        assert!(size <= 2048, "a purchase's future is {size} bytes");
    }
}
