//! The buyer-facing scripts: `purchase`, `status` and `user`.

use super::{flag, int, LuaScript, Reply, ScriptCall, Scripts};
use crate::{
    domain::{
        CheckoutPart, Purchase as Unit, PurchaseOutcome, SaleSnapshot, UserOrder, UserRecord,
    },
    store::{error::StoreError, keys::SaleKeys, settings::UserAttemptLimit},
};
use fred::{bytes_utils::Str, prelude::*, types::MultipleKeys};

/// `lua/purchase.lua`: the whole decision of one purchase.
pub struct Purchase {
    pub keys: SaleKeys,
    pub sale_id: Str,
    pub user: Str,
    pub token: Str,
    pub limit: UserAttemptLimit,
    pub request_id: Str,
    /// The caller `WAIT`s for replicas after the script (`PURCHASE_WAIT_REPLICAS`).
    pub waits: bool,
    /// Units asked for (1 to the sale's `maxPerBuyer`).
    pub quantity: u32,
    /// A fresh random secret: the reservation token of a hold this purchase places.
    pub secret: Str,
    /// With the waiting room on: the expiry of the admission the route verified (0: none).
    pub admission_expires_ms: i64,
}

impl ScriptCall for Purchase {
    type Output = PurchaseOutcome;

    fn script(scripts: &Scripts) -> &LuaScript {
        &scripts.purchase
    }

    fn keys_and_args(&self) -> (MultipleKeys, Vec<Value>) {
        let keys = vec![
            self.keys.config(),
            self.keys.buyers(),
            self.keys.attempts(&self.user),
            self.keys.orders(),
            self.keys.refused(),
            self.keys.checkouts(),
            self.keys.expiries(),
            self.keys.room(),
        ];
        // `Str` clones share their bytes: the rare second call after a reload copies nothing.
        let args = vec![
            Value::String(self.user.clone()),
            Value::String(self.token.clone()),
            int(self.limit.limit),
            int(self.limit.window_ms),
            Value::String(self.sale_id.clone()),
            Value::String(self.request_id.clone()),
            flag(self.waits),
            int(self.quantity),
            Value::String(self.secret.clone()),
            int(self.admission_expires_ms),
        ];
        (keys.into(), args)
    }

    /// `{code, remainingStock, purchaseMs, orderNumber, retryAfterMs}`, and from a checkout
    /// sale `{…, quantity, holdExpiresMs, reservationToken, heldStock}`.
    fn parse(reply: Value) -> Result<PurchaseOutcome, StoreError> {
        let mut reply = Reply::new("purchase", reply);
        let code = reply.text()?;
        let numbers = (reply.int()?, reply.int()?, reply.int()?, reply.int()?);
        let (remaining, purchase_ms, order_number, retry_after_ms) = numbers;
        let checkout = if reply.has_more() {
            Some(CheckoutPart {
                quantity: reply.int()?,
                hold_expires_ms: Some(reply.int()?),
                reservation_token: Some(reply.text()?.to_string()),
                held_stock: reply.int()?,
            })
        } else {
            None
        };
        PurchaseOutcome::from_reply(
            (&code, remaining, purchase_ms, order_number, retry_after_ms),
            checkout,
        )
        .map_err(StoreError::Unexpected)
    }
}

/// `lua/status.lua`: config, stock and the Redis clock in one read.
pub struct Status {
    pub keys: SaleKeys,
}

impl ScriptCall for Status {
    type Output = Option<SaleSnapshot>;

    fn script(scripts: &Scripts) -> &LuaScript {
        &scripts.status
    }

    fn keys_and_args(&self) -> (MultipleKeys, Vec<Value>) {
        (
            vec![self.keys.config(), self.keys.room()].into(),
            Vec::new(),
        )
    }

    /// nil, or `{productName, totalStock, remainingStock, startMs, endMs, redisNowMs,
    /// heldStock}` and the room's fields when it has one (`Reply::room`).
    fn parse(reply: Value) -> Result<Option<SaleSnapshot>, StoreError> {
        if reply.is_null() {
            return Ok(None);
        }
        let mut reply = Reply::new("status", reply);
        Ok(Some(SaleSnapshot {
            product_name: reply.text()?.to_string(),
            total_stock: reply.int()?,
            remaining_stock: reply.int()?,
            start_ms: reply.int()?,
            end_ms: reply.int()?,
            redis_now_ms: reply.int()?,
            held_stock: reply.int()?,
            room: reply.room()?,
        }))
    }
}

/// `lua/user.lua`: what one user holds; `None` when the sale does not exist.
pub struct User {
    pub keys: SaleKeys,
    pub user: Str,
}

impl ScriptCall for User {
    type Output = Option<UserRecord>;

    fn script(scripts: &Scripts) -> &LuaScript {
        &scripts.user
    }

    fn keys_and_args(&self) -> (MultipleKeys, Vec<Value>) {
        (
            vec![
                self.keys.config(),
                self.keys.buyers(),
                self.keys.checkouts(),
            ]
            .into(),
            vec![Value::String(self.user.clone())],
        )
    }

    /// `{0}` no sale, `{1}` no unit, `{1, purchaseMs, orderNumber}`, and on a checkout sale
    /// `{1, purchaseMs, orderNumber, quantity, holdExpiresMs}`.
    fn parse(reply: Value) -> Result<Option<UserRecord>, StoreError> {
        let numbers: Vec<i64> = reply
            .into_array()
            .iter()
            .map(Value::as_i64)
            .collect::<Option<_>>()
            .ok_or_else(|| StoreError::Unexpected("user.lua answered a non-number".into()))?;
        match numbers.as_slice() {
            [0] => Ok(None),
            [1] => Ok(Some(UserRecord {
                purchase: None,
                checkout: None,
            })),
            [1, purchase_ms, order_number] => Ok(Some(UserRecord {
                purchase: Some(Unit {
                    purchase_ms: *purchase_ms,
                    order_number: *order_number,
                }),
                checkout: None,
            })),
            [1, purchase_ms, order_number, quantity, hold_expires_ms] => Ok(Some(UserRecord {
                purchase: Some(Unit {
                    purchase_ms: *purchase_ms,
                    order_number: *order_number,
                }),
                checkout: Some(UserOrder {
                    quantity: *quantity,
                    hold_expires_ms: (*hold_expires_ms > 0).then_some(*hold_expires_ms),
                }),
            })),
            other => Err(Reply::unexpected("user", other)),
        }
    }
}
