//! The vocabulary of answers: every `code` a client can read (README, Errors) with its HTTP status and
//! message, and the purchase script's answer parsed into a typed [`PurchaseOutcome`].
//!
//! A code is spelled once in Rust (here) and once in Lua (`lua/purchase.lua`); a new outcome is
//! added in those two places and nowhere else.

use actix_web::http::StatusCode;
use serde::Serialize;
use std::time::Duration;

/// Every code a JSON answer can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Code {
    Purchased,
    Reserved,
    AlreadyPurchased,
    AlreadyReserved,
    SoldOut,
    SaleNotStarted,
    SaleEnded,
    RateLimited,
    InvalidRequest,
    Unauthorized,
    Forbidden,
    RequestTimeout,
    PayloadTooLarge,
    UnsupportedMediaType,
    SaleNotFound,
    SaleHasBuyers,
    OrderNotFound,
    HoldExpired,
    OrderConfirmed,
    NotAdmitted,
    QueueNotOpen,
    NoWaitingRoom,
    NotInQueue,
    NotFound,
    MethodNotAllowed,
    ServiceUnavailable,
    InternalError,
}

impl Code {
    /// Every code, in declaration order (the OpenAPI document's unions are built from it).
    pub const ALL: [Code; 27] = [
        Code::Purchased,
        Code::Reserved,
        Code::AlreadyPurchased,
        Code::AlreadyReserved,
        Code::SoldOut,
        Code::SaleNotStarted,
        Code::SaleEnded,
        Code::RateLimited,
        Code::InvalidRequest,
        Code::Unauthorized,
        Code::Forbidden,
        Code::RequestTimeout,
        Code::PayloadTooLarge,
        Code::UnsupportedMediaType,
        Code::SaleNotFound,
        Code::SaleHasBuyers,
        Code::OrderNotFound,
        Code::HoldExpired,
        Code::OrderConfirmed,
        Code::NotAdmitted,
        Code::QueueNotOpen,
        Code::NoWaitingRoom,
        Code::NotInQueue,
        Code::NotFound,
        Code::MethodNotAllowed,
        Code::ServiceUnavailable,
        Code::InternalError,
    ];

    /// The codes `lua/purchase.lua` may answer, in the order its checks run.
    pub const PURCHASE: [Code; 11] = [
        Code::SaleNotFound,
        Code::Purchased,
        Code::AlreadyPurchased,
        Code::Reserved,
        Code::AlreadyReserved,
        Code::NotAdmitted,
        Code::InvalidRequest,
        Code::SaleNotStarted,
        Code::SaleEnded,
        Code::RateLimited,
        Code::SoldOut,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Code::Purchased => "PURCHASED",
            Code::AlreadyPurchased => "ALREADY_PURCHASED",
            Code::Reserved => "RESERVED",
            Code::AlreadyReserved => "ALREADY_RESERVED",
            Code::OrderNotFound => "ORDER_NOT_FOUND",
            Code::HoldExpired => "HOLD_EXPIRED",
            Code::OrderConfirmed => "ORDER_CONFIRMED",
            Code::NotAdmitted => "NOT_ADMITTED",
            Code::QueueNotOpen => "QUEUE_NOT_OPEN",
            Code::NoWaitingRoom => "NO_WAITING_ROOM",
            Code::NotInQueue => "NOT_IN_QUEUE",
            Code::SoldOut => "SOLD_OUT",
            Code::SaleNotStarted => "SALE_NOT_STARTED",
            Code::SaleEnded => "SALE_ENDED",
            Code::RateLimited => "RATE_LIMITED",
            Code::InvalidRequest => "INVALID_REQUEST",
            Code::Unauthorized => "UNAUTHORIZED",
            Code::Forbidden => "FORBIDDEN",
            Code::RequestTimeout => "REQUEST_TIMEOUT",
            Code::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Code::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Code::SaleNotFound => "SALE_NOT_FOUND",
            Code::SaleHasBuyers => "SALE_HAS_BUYERS",
            Code::NotFound => "NOT_FOUND",
            Code::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Code::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            Code::InternalError => "INTERNAL_ERROR",
        }
    }

    pub const fn status(self) -> StatusCode {
        match self {
            Code::Purchased | Code::Reserved => StatusCode::OK,
            Code::AlreadyPurchased | Code::AlreadyReserved => StatusCode::CONFLICT,
            Code::HoldExpired | Code::OrderConfirmed => StatusCode::CONFLICT,
            Code::OrderNotFound => StatusCode::NOT_FOUND,
            Code::SoldOut | Code::SaleEnded => StatusCode::GONE,
            Code::SaleNotStarted | Code::NotAdmitted | Code::QueueNotOpen => StatusCode::FORBIDDEN,
            Code::NoWaitingRoom | Code::NotInQueue => StatusCode::NOT_FOUND,
            Code::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Code::InvalidRequest => StatusCode::BAD_REQUEST,
            Code::Unauthorized => StatusCode::UNAUTHORIZED,
            Code::Forbidden => StatusCode::FORBIDDEN,
            Code::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Code::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Code::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Code::SaleNotFound | Code::NotFound => StatusCode::NOT_FOUND,
            Code::SaleHasBuyers => StatusCode::CONFLICT,
            Code::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Code::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What a person reads; an error may carry a more specific message of its own.
    pub const fn message(self) -> &'static str {
        match self {
            Code::Purchased => "You got one! Your unit is reserved.",
            Code::AlreadyPurchased => "You have already bought this item.",
            Code::Reserved => "Reserved: pay before the hold expires, or the units go back.",
            Code::AlreadyReserved => "You already hold units of this item; pay or cancel first.",
            Code::OrderNotFound => "No such order.",
            Code::HoldExpired => {
                "The hold expired and its units were sold to someone else: refund the payment."
            }
            Code::OrderConfirmed => "The order is paid and confirmed; it cannot be cancelled.",
            Code::NotAdmitted => {
                "This sale has a waiting room: join the queue and buy with the admission it gives."
            }
            Code::QueueNotOpen => "The waiting room is not open yet.",
            Code::NoWaitingRoom => "This sale has no waiting room.",
            Code::NotInQueue => "You are not in this sale's queue: join it first.",
            Code::SoldOut => "Sold out: no units left.",
            Code::SaleNotStarted => "The sale has not started yet.",
            Code::SaleEnded => "The sale has ended.",
            Code::RateLimited => "Too many attempts; wait and retry.",
            Code::InvalidRequest => "The request was not accepted.",
            Code::Unauthorized => "Sign in first: a valid bearer token is required.",
            Code::Forbidden => "You may act only as the user your token names.",
            Code::RequestTimeout => "The request body did not arrive in time.",
            Code::PayloadTooLarge => "The request body is too large.",
            Code::UnsupportedMediaType => "Content-Type must be application/json.",
            Code::SaleNotFound => "No such sale.",
            Code::SaleHasBuyers => {
                "The sale has buyers; replacing it resets them: repeat with ?force=true."
            }
            Code::NotFound => "No such route.",
            Code::MethodNotAllowed => "Method not allowed on this route.",
            Code::ServiceUnavailable => "The sale is temporarily unavailable; retry shortly.",
            Code::InternalError => "Internal error.",
        }
    }

    /// Whether an answer with this code names the buyer's order.
    pub const fn names_order(self) -> bool {
        matches!(
            self,
            Code::Purchased | Code::AlreadyPurchased | Code::Reserved | Code::AlreadyReserved
        )
    }

    /// The code of a purchase-script answer; `None` for anything the script never says.
    pub fn from_script(code: &str) -> Option<Self> {
        Code::PURCHASE
            .into_iter()
            .find(|known| known.as_str() == code)
    }
}

/// A unit held by a buyer: when it was bought (Redis clock) and in which order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Purchase {
    pub purchase_ms: i64,
    pub order_number: i64,
}

/// What a checkout sale adds to a purchase answer (README, Checkout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutPart {
    /// Units in the buyer's order; for `INVALID_REQUEST`, the sale's `maxPerBuyer`.
    pub quantity: i64,
    /// When a hold expires, on Redis's clock (Unix ms); `None` for a confirmed order.
    pub hold_expires_ms: Option<i64>,
    /// The secret that cancels the hold; only for `RESERVED`.
    pub reservation_token: Option<String>,
    /// Units in checkouts (held, not yet paid) after the decision.
    pub held_stock: i64,
}

/// The purchase script's answer, checked: the code, the stock after the decision, the order the
/// user holds (for `PURCHASED`, `RESERVED` and their `ALREADY_` forms), the wait (for
/// `RATE_LIMITED`) and, on a checkout sale, the order's units and hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseOutcome {
    pub code: Code,
    pub remaining: i64,
    pub purchase: Option<Purchase>,
    pub retry_after: Option<Duration>,
    pub checkout: Option<CheckoutPart>,
}

/// The raw reply of `lua/purchase.lua`: `{code, remainingStock, purchaseMs, orderNumber,
/// retryAfterMs}` and, from a checkout sale, `{quantity, holdExpiresMs, reservationToken,
/// heldStock}`.
pub type PurchaseReply<'a> = (&'a str, i64, i64, i64, i64);

impl PurchaseOutcome {
    /// The one place a purchase-script reply becomes a typed outcome.
    pub fn from_reply(
        reply: PurchaseReply<'_>,
        checkout: Option<CheckoutPart>,
    ) -> Result<Self, String> {
        let (code, remaining, purchase_ms, order_number, retry_after_ms) = reply;
        let code = Code::from_script(code)
            .ok_or_else(|| format!("purchase.lua answered an unknown code {code:?}"))?;
        let holds_unit = code.names_order();
        if holds_unit && order_number < 1 {
            return Err(format!("purchase.lua answered {code:?} without an order"));
        }
        let checkout = checkout.map(|part| CheckoutPart {
            hold_expires_ms: part.hold_expires_ms.filter(|ms| *ms > 0 && holds_unit),
            reservation_token: part.reservation_token.filter(|token| !token.is_empty()),
            ..part
        });
        Ok(Self {
            code,
            remaining: remaining.max(0),
            purchase: holds_unit.then_some(Purchase {
                purchase_ms,
                order_number,
            }),
            retry_after: (code == Code::RateLimited)
                .then(|| Duration::from_millis(retry_after_ms.max(1) as u64)),
            checkout,
        })
    }

    pub fn is_success(&self) -> bool {
        matches!(self.code, Code::Purchased | Code::Reserved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_purchase_code_round_trips_through_its_spelling() {
        for code in Code::PURCHASE {
            assert_eq!(Code::from_script(code.as_str()), Some(code));
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
        assert_eq!(Code::from_script("INTERNAL_ERROR"), None);
    }

    #[test]
    fn the_lua_script_spells_every_purchase_code() {
        // The refusals for want of stock are spelled once, in the prelude both purchase
        // scripts share.
        let lua = [
            include_str!("../../lua/prelude.lua"),
            include_str!("../../lua/purchase.lua"),
        ]
        .concat();
        for code in Code::PURCHASE {
            assert!(lua.contains(&format!("'{}'", code.as_str())), "{code:?}");
        }
    }

    #[test]
    fn a_reply_becomes_an_outcome_with_its_unit_and_wait() {
        let bought =
            PurchaseOutcome::from_reply(("PURCHASED", 9, 1_700_000_000_000, 3, 0), None).unwrap();
        assert_eq!(bought.code.status(), StatusCode::OK);
        assert_eq!(bought.purchase.map(|p| p.order_number), Some(3));
        assert!(bought.is_success());
        let limited = PurchaseOutcome::from_reply(("RATE_LIMITED", 5, 0, 0, 1500), None).unwrap();
        assert_eq!(limited.retry_after, Some(Duration::from_millis(1500)));
        assert_eq!(limited.purchase, None);
        assert!(PurchaseOutcome::from_reply(("NOPE", 0, 0, 0, 0), None).is_err());
        assert!(PurchaseOutcome::from_reply(("PURCHASED", 0, 0, 0, 0), None).is_err());
        let held = CheckoutPart {
            quantity: 2,
            hold_expires_ms: Some(1_700_000_300_000),
            reservation_token: Some("4.abc".into()),
            held_stock: 2,
        };
        let reserved =
            PurchaseOutcome::from_reply(("RESERVED", 7, 1_700_000_000_000, 4, 0), Some(held))
                .unwrap();
        assert!(reserved.is_success());
        let part = reserved.checkout.unwrap();
        assert_eq!(part.hold_expires_ms, Some(1_700_000_300_000));
        assert_eq!(part.reservation_token.as_deref(), Some("4.abc"));
        let refused = CheckoutPart {
            quantity: 0,
            hold_expires_ms: Some(0),
            reservation_token: Some(String::new()),
            held_stock: 3,
        };
        let sold_out =
            PurchaseOutcome::from_reply(("SOLD_OUT", 0, 0, 0, 0), Some(refused)).unwrap();
        let part = sold_out.checkout.unwrap();
        assert_eq!((part.hold_expires_ms, part.reservation_token), (None, None));
    }
}
