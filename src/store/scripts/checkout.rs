//! The checkout scripts: `order` (read, confirm or cancel one order) and `sweep` (release a
//! sale's expired holds), and the order record they answer with.

use super::{bucketed, int, user_bucket, LuaScript, Reply, ScriptCall, Scripts};
use crate::store::{error::StoreError, keys::SaleKeys, Bucketed, Buckets};
use fred::{prelude::*, types::MultipleKeys};
use serde::Deserialize;

/// What `lua/order.lua` does to the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderAction {
    Read,
    Confirm,
    Cancel,
}

impl OrderAction {
    fn as_str(self) -> &'static str {
        match self {
            OrderAction::Read => "read",
            OrderAction::Confirm => "confirm",
            OrderAction::Cancel => "cancel",
        }
    }
}

/// One step of an order's history.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OrderStep {
    pub state: String,
    /// On Redis's clock (Unix ms).
    pub at: i64,
    #[serde(default)]
    pub reason: Option<String>,
}

/// An order of a checkout sale, as `sale:{ID}:checkouts` keeps it (`lua/prelude.lua`,
/// `read_order`). The tokens it also keeps never leave the store.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OrderRecord {
    #[serde(rename = "n")]
    pub order_number: i64,
    #[serde(rename = "u")]
    pub user_id: String,
    #[serde(rename = "q")]
    pub quantity: i64,
    /// `held`, `confirmed`, `released` or `refund_required`.
    #[serde(rename = "s")]
    pub state: String,
    #[serde(rename = "c")]
    pub created_ms: i64,
    /// 0 when the order never had a hold.
    #[serde(rename = "e")]
    pub hold_expires_ms: i64,
    /// Confirmed after its hold expired.
    #[serde(default)]
    pub late: bool,
    #[serde(rename = "h")]
    pub history: Vec<OrderStep>,
}

/// What `lua/order.lua` answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderChange {
    SaleNotFound,
    OrderNotFound,
    /// Done, or already so.
    Done(OrderRecord),
    /// This payment event was applied before: nothing changed.
    Duplicate(OrderRecord),
    /// A confirm whose units went to someone else (or the buyer ordered again): refund.
    HoldExpired(OrderRecord),
    /// A cancel of a paid order: refused, nothing changed.
    Confirmed(OrderRecord),
}

/// `lua/order.lua`: one order, found by number or (for the buyer) by user.
pub struct OrderCall<'a> {
    pub keys: SaleKeys,
    pub action: OrderAction,
    /// `None`: the buyer's own order, found by `user`.
    pub order_number: Option<u64>,
    pub user: Option<&'a str>,
    /// The reservation token the caller must hold, when it is how the caller proves who it is.
    pub reservation_token: Option<&'a str>,
    pub sale_id: &'a str,
    pub request_id: &'a str,
    /// A payment event's id (Stripe's), applied once.
    pub payment_event: Option<&'a str>,
    /// A user's bucket ([`Store::eval_with_buckets`](crate::store::Store)): the caller's own,
    /// or the one the script asked for (a late payment's buyer).
    pub buckets: Buckets,
}

impl ScriptCall for OrderCall<'_> {
    type Output = Bucketed<OrderChange>;

    fn script(scripts: &Scripts) -> &LuaScript {
        &scripts.order
    }

    fn keys_and_args(&self) -> (MultipleKeys, Vec<Value>) {
        let mut keys = self.keys.checkout();
        keys.push(self.keys.payments());
        let (bucket, count) = user_bucket(&self.keys, &self.buckets);
        keys.push(bucket);
        let mut args = vec![
            Value::from(self.action.as_str()),
            self.order_number.map_or_else(|| Value::from(""), int),
            Value::from(self.user.unwrap_or_default()),
            Value::from(self.reservation_token.unwrap_or_default()),
            Value::from(self.sale_id),
            Value::from(self.request_id),
            Value::from(self.payment_event.unwrap_or_default()),
        ];
        let user = self.buckets.user.as_ref();
        args.push(user.map_or_else(|| Value::from(""), |(user, _)| user.clone().into()));
        args.push(count);
        (keys.into(), args)
    }

    fn parse(reply: Value) -> Result<Bucketed<OrderChange>, StoreError> {
        bucketed("order", reply, Self::change)
    }
}

impl OrderCall<'_> {
    fn change(reply: Value) -> Result<OrderChange, StoreError> {
        let mut reply = Reply::new("order", reply);
        let status = reply.text()?;
        let mut record = || -> Result<OrderRecord, StoreError> {
            let json = reply.text()?;
            serde_json::from_str(&json)
                .map_err(|err| StoreError::bad_data("order", format!("{err}: {json}")))
        };
        Ok(match &*status {
            "SALE_NOT_FOUND" => OrderChange::SaleNotFound,
            "ORDER_NOT_FOUND" => OrderChange::OrderNotFound,
            "OK" => OrderChange::Done(record()?),
            "DUPLICATE" => OrderChange::Duplicate(record()?),
            "HOLD_EXPIRED" => OrderChange::HoldExpired(record()?),
            "ORDER_CONFIRMED" => OrderChange::Confirmed(record()?),
            other => return Err(Reply::unexpected("order", other)),
        })
    }
}

/// What one sweep released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub units: i64,
    /// Holds expired but not released yet (the sweep's bound was reached).
    pub still_due: i64,
}

/// `lua/sweep.lua`: releases up to `limit` expired holds of one sale.
pub struct Sweep<'a> {
    pub keys: SaleKeys,
    pub sale_id: &'a str,
    pub limit: u32,
}

impl ScriptCall for Sweep<'_> {
    type Output = Swept;

    fn script(scripts: &Scripts) -> &LuaScript {
        &scripts.sweep
    }

    fn keys_and_args(&self) -> (MultipleKeys, Vec<Value>) {
        (
            self.keys.checkout().into(),
            vec![Value::from(self.sale_id), int(self.limit)],
        )
    }

    fn parse(reply: Value) -> Result<Swept, StoreError> {
        let mut reply = Reply::new("sweep", reply);
        Ok(Swept {
            units: reply.int()?,
            still_due: reply.int()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SaleId;

    /// Numbers cross to Redis as text: a Redis integer of fifteen nines went out with a NUL
    /// after it (redis-protocol counts its digits with `f64::log10`) and hung the connection.
    #[test]
    fn an_order_number_goes_to_redis_as_its_decimal_text() {
        let scripts = Scripts::new(false);
        for number in [
            1,
            999_999_999_999_999,
            9_999_999_999_999_999,
            i64::MAX as u64,
        ] {
            let call = OrderCall {
                keys: SaleKeys::new(&SaleId::parse("s").unwrap()),
                action: OrderAction::Read,
                order_number: Some(number),
                user: None,
                reservation_token: None,
                sale_id: "s",
                request_id: "r",
                payment_event: None,
                buckets: Buckets {
                    count: 0,
                    user: None,
                },
            };
            let (keys, values) = call.keys_and_args();
            let args = OrderCall::script(&scripts).evalsha_args(keys.inner(), values);
            assert!(
                args.iter().all(|arg| !matches!(arg, Value::Integer(_))),
                "{args:?}"
            );
            assert_eq!(args[1].as_str().unwrap(), "6", "the number of keys");
            assert_eq!(args[9].as_str().unwrap(), number.to_string());
            assert_eq!(args[16].as_str().unwrap(), "0", "no bucket: 0 buyerBuckets");
        }
    }
}
