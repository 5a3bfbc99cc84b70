//! The typed records of what Redis holds in streams: an order ([`OrderEntry`]), an order whose
//! webhook died ([`DeadOrder`]) and an order taken for delivery ([`PendingOrder`]). Each is
//! parsed in one place; an entry that does not parse is [`StoreError::BadData`], never a row of
//! zeros.

use super::error::StoreError;

/// The type of the event a plain sale's purchase records.
pub const ORDER_CREATED: &str = "order.created";
use std::collections::HashMap;

/// One order event, as `lua/purchase.lua` and the checkout scripts append it to
/// `sale:{ID}:orders` (and as the webhook scripts copy it to the retry and dead-letter streams):
/// `order.created` (a plain sale's purchase, or a checkout sale's without holds: no `type`
/// field), `order.reserved`, `order.confirmed`, `order.released` or `order.refund_required`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderEntry {
    /// The event's type.
    pub kind: String,
    /// Units in the order (1 on a plain sale).
    pub quantity: i64,
    /// Why: `expired` or `cancelled` (released), `resold` or `reordered` (refund required).
    pub reason: Option<String>,
    /// When the event happened, on Redis's clock (Unix ms): the purchase for `order.created`.
    pub event_ms: i64,
    /// The entry's id in the stream it was read from: the cursor of the next page.
    pub id: String,
    /// The id receivers dedupe on: the order's id in `sale:{ID}:orders`, kept by copies.
    pub event_id: String,
    pub sale_id: String,
    pub user_id: String,
    pub order_number: i64,
    /// When the unit was sold, on Redis's clock (Unix ms).
    pub purchase_ms: i64,
    /// The `X-Request-Id` of the purchase.
    pub request_id: String,
}

/// The fields of one stream entry, taken one by one; a missing or malformed field is bad data.
struct Fields<'a> {
    what: &'static str,
    id: &'a str,
    fields: HashMap<String, String>,
}

impl Fields<'_> {
    fn bad(&self, problem: &str) -> StoreError {
        StoreError::bad_data(self.what, format!("entry {}: {problem}", self.id))
    }

    fn text(&mut self, name: &str) -> Result<String, StoreError> {
        self.fields
            .remove(name)
            .ok_or_else(|| self.bad(&format!("no {name}")))
    }

    fn number(&mut self, name: &str) -> Result<i64, StoreError> {
        let text = self.text(name)?;
        text.parse()
            .map_err(|_| self.bad(&format!("{name} is not a number: {text:?}")))
    }
}

impl OrderEntry {
    /// An entry of an order stream, by its id and fields.
    pub fn parse(id: String, fields: HashMap<String, String>) -> Result<Self, StoreError> {
        let mut fields = Fields {
            what: "order",
            id: &id,
            fields,
        };
        Self::from_fields(&mut fields, id.clone())
    }

    fn from_fields(fields: &mut Fields<'_>, id: String) -> Result<Self, StoreError> {
        let kind = fields
            .fields
            .remove("type")
            .unwrap_or_else(|| ORDER_CREATED.to_owned());
        let quantity = match fields.fields.contains_key("quantity") {
            true => fields.number("quantity")?,
            false => 1,
        };
        let event_ms = match fields.fields.contains_key("at") {
            true => Some(fields.number("at")?),
            false => None,
        };
        let reason = fields.fields.remove("reason");
        let purchase_ms = fields.number("purchaseTime")?;
        let order = Self {
            kind,
            quantity,
            reason,
            event_ms: event_ms.unwrap_or(purchase_ms),
            event_id: fields
                .fields
                .remove("eventId")
                .unwrap_or_else(|| id.clone()),
            sale_id: fields.text("saleId")?,
            user_id: fields.text("userId")?,
            order_number: fields.number("orderNumber")?,
            purchase_ms,
            request_id: fields.text("requestId")?,
            id,
        };
        if order.user_id.is_empty() || order.order_number < 1 || order.quantity < 1 {
            return Err(fields.bad("no buyer, no order number or no units"));
        }
        Ok(order)
    }
}

/// An order whose webhook failed every attempt, from `sale:{ID}:orders:dead`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadOrder {
    /// Its id in the dead-letter stream (also the cursor of the next page).
    pub dead_id: String,
    /// When it was moved there: the id's time part (Unix ms).
    pub dead_ms: i64,
    pub order: OrderEntry,
    pub attempts: i64,
    pub last_error: String,
}

impl DeadOrder {
    pub fn parse(id: String, fields: HashMap<String, String>) -> Result<Self, StoreError> {
        let dead_ms = id
            .split_once('-')
            .and_then(|(ms, _)| ms.parse().ok())
            .ok_or_else(|| StoreError::bad_data("dead order", format!("entry id {id:?}")))?;
        let mut fields = Fields {
            what: "dead order",
            id: &id,
            fields,
        };
        let attempts = fields.number("attempts")?;
        let last_error = fields.text("lastError")?;
        if !fields.fields.contains_key("eventId") {
            return Err(fields.bad("no eventId"));
        }
        let order = OrderEntry::from_fields(&mut fields, id.clone())?;
        Ok(Self {
            dead_id: id,
            dead_ms,
            order,
            attempts,
            last_error,
        })
    }
}

/// Which stream an order to deliver came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `sale:{ID}:orders`: the order as the purchase script recorded it.
    Orders,
    /// `sale:{ID}:orders:retry`: a dead order sent back by the admin re-drive.
    Retry,
}

impl Source {
    /// How `lua/webhook_take.lua` numbers the streams.
    pub(super) fn from_number(number: i64) -> Option<Self> {
        match number {
            1 => Some(Source::Orders),
            2 => Some(Source::Retry),
            _ => None,
        }
    }

    fn number(self) -> i64 {
        match self {
            Source::Orders => 1,
            Source::Retry => 2,
        }
    }
}

/// One order taken by the delivery loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingOrder {
    pub source: Source,
    /// Failed attempts recorded so far (by this or an earlier consumer).
    pub attempts: u32,
    /// The order; its `id` is the entry's id in `source`.
    pub order: OrderEntry,
}

impl PendingOrder {
    /// The entry's field in `sale:{ID}:orders:attempts` (ids of the two streams may coincide).
    pub(super) fn attempts_field(&self) -> String {
        format!("{}:{}", self.source.number(), self.order.id)
    }

    pub(super) fn is_retry(&self) -> bool {
        self.source == Source::Retry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const ORDER: [(&str, &str); 5] = [
        ("saleId", "spring"),
        ("userId", "ann"),
        ("orderNumber", "3"),
        ("purchaseTime", "1700000000000"),
        ("requestId", "r-1"),
    ];

    #[test]
    fn an_order_entry_parses_and_its_event_id_is_its_own_id() {
        let order = OrderEntry::parse("17-0".into(), fields(&ORDER)).unwrap();
        assert_eq!(
            (
                order.event_id.as_str(),
                order.user_id.as_str(),
                order.order_number
            ),
            ("17-0", "ann", 3)
        );
    }

    #[test]
    fn a_malformed_entry_is_bad_data_not_zeros() {
        for broken in [
            vec![("orderNumber", "three")],
            vec![("userId", "")],
            vec![("orderNumber", "0")],
        ] {
            let mut pairs = fields(&ORDER);
            for (k, v) in broken {
                pairs.insert(k.into(), v.into());
            }
            let err = OrderEntry::parse("1-0".into(), pairs).unwrap_err();
            assert!(matches!(err, StoreError::BadData { .. }), "{err}");
        }
        let mut missing = fields(&ORDER);
        missing.remove("purchaseTime");
        assert!(OrderEntry::parse("1-0".into(), missing).is_err());
    }

    #[test]
    fn a_dead_order_keeps_the_event_id_and_its_failure() {
        let mut pairs = fields(&ORDER);
        pairs.extend(fields(&[
            ("eventId", "5-0"),
            ("attempts", "10"),
            ("lastError", "receiver answered 500"),
        ]));
        let dead = DeadOrder::parse("1700000000123-0".into(), pairs.clone()).unwrap();
        assert_eq!(
            (dead.dead_ms, dead.order.event_id.as_str(), dead.attempts),
            (1_700_000_000_123, "5-0", 10)
        );
        pairs.remove("eventId");
        assert!(DeadOrder::parse("1-0".into(), pairs).is_err());
    }
}
