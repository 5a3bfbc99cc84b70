//! The buyer-facing scripts: `purchase`, `sold_out`, `status` and `user`.

use super::{bucketed, flag, int, user_bucket, LuaScript, Reply, ScriptCall, Scripts};
use crate::{
    domain::{
        CheckoutPart, Purchase as Unit, PurchaseOutcome, SaleSnapshot, UserOrder, UserRecord,
    },
    store::{
        error::StoreError,
        keys::{user_hash, SaleKeys},
        settings::UserAttemptLimit,
        Bucketed, Buckets,
    },
};
use fred::{bytes_utils::Str, prelude::*, types::MultipleKeys};

/// One purchase of a batch: who buys, what they ask, and what names its order.
#[derive(Debug, Clone)]
pub struct PurchaseEntry {
    pub user: Str,
    /// The first 32 bits of SHA-1(userId) ([`user_hash`]): picks the buyer's bucket.
    pub user_hash: u32,
    pub token: Str,
    pub request_id: Str,
    /// Units asked for (1 to the sale's `maxPerBuyer`).
    pub quantity: u32,
    /// With the waiting room on: the expiry of the admission the route verified (0: none).
    pub admission_expires_ms: i64,
}

impl PurchaseEntry {
    pub fn new(user: &str, token: Str, request_id: Str, quantity: u32, admission: i64) -> Self {
        Self {
            user_hash: user_hash(user),
            user: Str::from(user),
            token,
            request_id,
            quantity,
            admission_expires_ms: admission,
        }
    }
}

/// `lua/purchase.lua`: the whole decision of a batch of purchases of one sale, in order, each
/// as if alone (a batch of one is a single purchase).
pub struct PurchaseBatch<'a> {
    pub keys: &'a SaleKeys,
    pub sale_id: Str,
    pub limit: UserAttemptLimit,
    /// The caller `WAIT`s for replicas after the script (`PURCHASE_WAIT_REPLICAS`).
    pub waits: bool,
    /// The sale's `buyerBuckets` as this instance last read it (0: not yet known).
    pub buckets: u32,
    /// A lean call: without the purchases' attempt counters and hold secrets, which a sale
    /// needs only with holds, or with the attempt limit on once it could refuse for want of
    /// stock (the script answers [`BatchReply::Full`] then, having written nothing).
    pub lean: bool,
    pub entries: &'a [PurchaseEntry],
}

/// What the purchase script answered a batch.
#[derive(Debug)]
pub enum BatchReply {
    /// One outcome per purchase, in order (an answer that does not parse fails alone).
    Decided(Vec<Result<PurchaseOutcome, StoreError>>),
    /// The sale has this many buyer buckets, not the number the call was built with: nothing
    /// was decided; build the call again.
    Buckets(u32),
    /// A lean call the sale cannot take (it has holds, or the attempt limit may count one of
    /// these purchases): nothing was decided; send the full call.
    Full,
}

/// Fixed KEYS before the first purchase's (`lua/purchase.lua`).
const FIXED_KEYS: usize = 7;

/// `lua/purchase.lua`'s fixed KEYS, in its order (its purchases' keys follow).
pub fn purchase_fixed_keys(keys: &SaleKeys) -> [fred::types::Key; FIXED_KEYS] {
    [
        keys.config(),
        keys.orders(),
        keys.refused(),
        keys.checkouts(),
        keys.expiries(),
        keys.room(),
        keys.gate(),
    ]
}

impl PurchaseEntry {
    /// This purchase as an item of `lua/purchase.lua`'s ARGV[6] ([`put_decide_item`]).
    fn put_decide_item(&self, out: &mut Vec<u8>) {
        put_decide_item(
            out,
            &self.user,
            &self.token,
            &self.request_id,
            self.quantity,
            self.admission_expires_ms,
        );
    }

    /// This purchase as an item of `lua/sold_out.lua`'s ARGV[4] ([`put_refuse_item`]).
    fn put_refuse_item(&self, out: &mut Vec<u8>) {
        put_refuse_item(out, &self.user, self.quantity, self.admission_expires_ms);
    }
}

/// One purchase as `lua/purchase.lua` reads it with `struct.unpack` (format `Bc0Bc0Bc0BBc0`,
/// prelude: unpack_purchases): its userId, request token and request id (may be empty), each
/// a length byte and the text; its quantity, a byte; and the expiry (Unix ms) of its admission
/// as text ("0" without one). Binary rather than lines of text: Lua's `string.gmatch` looked at
/// every character of a line through a character class, 8.1k Redis instructions per purchase
/// against 3.6k for `struct.unpack` (README, Batched decisions).
pub fn put_decide_item(
    out: &mut Vec<u8>,
    user: &str,
    token: &str,
    request_id: &str,
    quantity: u32,
    admission_expires_ms: i64,
) {
    put_text(out, user);
    put_text(out, token);
    put_text(out, request_id);
    put_number_fields(out, quantity, admission_expires_ms);
}

/// One purchase as `lua/sold_out.lua` reads it (format `Bc0BBc0`): its userId, quantity and
/// admission, written as [`put_decide_item`] writes them.
pub fn put_refuse_item(out: &mut Vec<u8>, user: &str, quantity: u32, admission_expires_ms: i64) {
    put_text(out, user);
    put_number_fields(out, quantity, admission_expires_ms);
}

/// The most bytes a text of an item may have: its length is one byte. A userId and a request id
/// have at most 128 (their types check it), a request token 16.
const MAX_ITEM_TEXT: usize = u8::MAX as usize;

/// A text as struct's `Bc0`: its length in one byte, then its bytes. A longer text than
/// [`MAX_ITEM_TEXT`] cannot reach here (see there); it would be cut, never overrun the next.
fn put_text(out: &mut Vec<u8>, text: &str) {
    let bytes = &text.as_bytes()[..text.len().min(MAX_ITEM_TEXT)];
    out.push(bytes.len() as u8);
    out.extend_from_slice(bytes);
}

/// The quantity as one byte (more than 255 units is sent as 255, which every sale refuses as
/// over its `maxPerBuyer`), then the admission's expiry as a decimal text, written in place
/// behind its length byte (at most 19 digits).
fn put_number_fields(out: &mut Vec<u8>, quantity: u32, admission_expires_ms: i64) {
    use std::io::Write;
    out.push(u8::try_from(quantity).unwrap_or(u8::MAX));
    let at = out.len();
    out.push(0);
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{}", admission_expires_ms.max(0));
    out[at] = (out.len() - at - 1) as u8;
}

/// The purchases of a batch as one ARGV item: one value for fred to encode and Redis to parse
/// instead of several per purchase (fred's encoding was 11 % of a purchase's instructions
/// in the service with six per purchase).
fn items(entries: &[PurchaseEntry], put: fn(&PurchaseEntry, &mut Vec<u8>)) -> Value {
    let mut out = Vec::with_capacity(entries.len() * 64);
    for entry in entries {
        put(entry, &mut out);
    }
    Value::Bytes(out.into())
}

impl ScriptCall for PurchaseBatch<'_> {
    type Output = BatchReply;

    fn script(scripts: &Scripts) -> &LuaScript {
        &scripts.purchase
    }

    fn keys_and_args(&self) -> (MultipleKeys, Vec<Value>) {
        let per_entry = if self.lean { 1 } else { 2 };
        let mut keys = Vec::with_capacity(FIXED_KEYS + per_entry * self.entries.len());
        keys.extend(purchase_fixed_keys(self.keys));
        for entry in self.entries {
            keys.push(self.keys.bucket_of(entry.user_hash, self.buckets));
            if !self.lean {
                keys.push(self.keys.attempts(&entry.user));
            }
        }
        // 128 random bits per purchase, 32 hex digits each: the secret half of the reservation
        // token of a hold it places (made here, so a purchase refused by sold_out.lua makes
        // none). A call built again (NOSCRIPT, stale buckets) gets new ones: no hold was placed.
        // A lean call has none (an empty ARGV[7] is what makes it lean to the script).
        let mut secrets = String::new();
        if !self.lean {
            use std::fmt::Write;
            secrets.reserve(32 * self.entries.len());
            for _ in self.entries {
                let _ = write!(secrets, "{:032x}", rand::random::<u128>());
            }
        }
        let args = vec![
            int(self.limit.limit),
            int(self.limit.window_ms),
            Value::String(self.sale_id.clone()),
            flag(self.waits),
            int(self.buckets),
            items(self.entries, PurchaseEntry::put_decide_item),
            Value::String(Str::from(secrets)),
        ];
        (keys.into(), args)
    }

    /// `{buyerBuckets, width, purchaseMs, totalStock, answer…}` with each answer `width` fields
    /// or a new buyer's order number alone, `{buyerBuckets}` alone when the call's number was
    /// stale, or `{buyerBuckets, 0}` when a lean call must be sent in full.
    fn parse(reply: Value) -> Result<BatchReply, StoreError> {
        let mut reply = Reply::new("purchase", reply);
        let buckets = reply.int()?;
        let buckets = u32::try_from(buckets).map_err(|_| Reply::unexpected("purchase", buckets))?;
        if !reply.has_more() {
            return Ok(BatchReply::Buckets(buckets));
        }
        let width = reply.int()?;
        if width == 0 && !reply.has_more() {
            return Ok(BatchReply::Full);
        }
        let (purchase_ms, total) = (reply.int()?, reply.int()?);
        let width = answer_width("purchase", width)?;
        let mut fields = reply.rest();
        let mut outcomes = Vec::with_capacity(fields.len());
        while let Some(first) = fields.next() {
            outcomes.push(match first {
                // A new buyer's purchase of a plain sale (lua/purchase.lua, Returns).
                Value::Integer(order) => PurchaseOutcome::from_reply(
                    ("PURCHASED", total - order, purchase_ms, order, 0),
                    None,
                )
                .map_err(StoreError::Unexpected),
                code => {
                    let answer = std::iter::once(code).chain(fields.by_ref().take(width - 1));
                    parse_answer(Reply::new("purchase", Value::Array(answer.collect())))
                }
            });
        }
        Ok(BatchReply::Decided(outcomes))
    }
}

/// `lua/sold_out.lua`: refuses the purchases of a sold-out sale as `purchase.lua` would, at a
/// fraction of its cost, and passes on those it cannot refuse so.
pub struct SoldOutBatch<'a> {
    pub keys: &'a SaleKeys,
    pub limit: UserAttemptLimit,
    /// The sale's `buyerBuckets` as this instance last read it.
    pub buckets: u32,
    /// The fingerprint of the sale's buyers this instance holds: `entries` are then users
    /// not among them, sent without their buckets.
    pub known: Option<&'a str>,
    /// With known buyers and the attempt limit off: how many more purchases, each of one unit
    /// without an admission by a user not among them, are sent as a number only (all answered
    /// alike, by the group answer).
    pub group: usize,
    pub entries: &'a [PurchaseEntry],
    /// With known buyers: vouch for them for this long (ms), closing the sale's gate, so this
    /// instance may refuse new users alone for less than that; 0 = do not.
    pub vouch_ms: u64,
}

/// What the sold-out script answered a batch.
#[derive(Debug)]
pub enum SoldOutReply {
    /// The sale is not sold out as the script judged it: every purchase goes to
    /// `purchase.lua`, and nothing was written.
    NotSoldOut,
    /// The known buyers are out of date (their fingerprint changed): nothing was decided.
    Stale,
    /// Per purchase, in order: its refusal, or `None` for one `purchase.lua` must decide; the
    /// same for every purchase of the group; and the sale's fingerprint as the script read it.
    Refused {
        refusals: Vec<Option<Result<PurchaseOutcome, StoreError>>>,
        group: Option<Result<PurchaseOutcome, StoreError>>,
        fingerprint: Str,
        /// The script vouched for the known buyers: the gate is closed for `vouch_ms`.
        vouched: bool,
    },
}

impl ScriptCall for SoldOutBatch<'_> {
    type Output = SoldOutReply;

    fn script(scripts: &Scripts) -> &LuaScript {
        &scripts.sold_out
    }

    fn keys_and_args(&self) -> (MultipleKeys, Vec<Value>) {
        let mut keys = Vec::with_capacity(4 + 2 * self.entries.len());
        keys.extend([
            self.keys.config(),
            self.keys.refused(),
            self.keys.expiries(),
            self.keys.gate(),
        ]);
        for entry in self.entries {
            if self.known.is_none() {
                keys.push(self.keys.bucket_of(entry.user_hash, self.buckets));
            }
            if self.known.is_none() || self.limit.limit > 0 {
                keys.push(self.keys.attempts(&entry.user));
            }
        }
        let args = vec![
            int(self.limit.limit),
            int(self.limit.window_ms),
            int(self.buckets),
            items(self.entries, PurchaseEntry::put_refuse_item),
            Value::from(self.known.unwrap_or_default()),
            int(self.group),
            int(self.entries.len()),
            int(self.vouch_ms),
        ];
        (keys.into(), args)
    }

    /// `{0}`, `{2, fingerprint}`, or `{1, fingerprint, width, group answer, answer…}` (3 for 1
    /// when it vouched) with each answer `width` fields: `'DECIDE'` and zeros, or a purchase
    /// answer.
    fn parse(reply: Value) -> Result<SoldOutReply, StoreError> {
        let mut reply = Reply::new("sold_out", reply);
        match reply.int()? {
            0 => Ok(SoldOutReply::NotSoldOut),
            2 => Ok(SoldOutReply::Stale),
            state @ (1 | 3) => {
                let fingerprint = reply.text()?;
                let width = reply.int()?;
                let mut refusals = answers("sold_out", width, reply)?.map(|answer| {
                    let answer = Reply::new("sold_out", answer);
                    (!answer.starts_with("DECIDE")).then(|| parse_answer(answer))
                });
                let group = refusals
                    .next()
                    .ok_or_else(|| Reply::unexpected("sold_out", "no group answer"))?;
                Ok(SoldOutReply::Refused {
                    refusals: refusals.collect(),
                    group,
                    fingerprint,
                    vouched: state == 3,
                })
            }
            other => Err(Reply::unexpected("sold_out", other)),
        }
    }
}

/// The answers of a batch's flat reply (`lua/prelude.lua`, put_answer) after its width (read by
/// the caller): that many fields per answer, each answer read on its own (one that does not
/// parse fails alone).
fn answers(
    script: &'static str,
    width: i64,
    reply: Reply,
) -> Result<impl Iterator<Item = Value>, StoreError> {
    let width = answer_width(script, width)?;
    let mut fields = reply.rest();
    Ok(std::iter::from_fn(move || {
        (fields.len() > 0).then(|| Value::Array(fields.by_ref().take(width).collect()))
    }))
}

/// A batch reply's answer width: at least one field.
fn answer_width(script: &'static str, width: i64) -> Result<usize, StoreError> {
    usize::try_from(width)
        .ok()
        .filter(|width| *width > 0)
        .ok_or_else(|| Reply::unexpected(script, width))
}

/// One purchase's answer: code, remainingStock, purchaseMs, orderNumber, retryAfterMs, and from
/// a checkout sale also quantity, holdExpiresMs, reservationToken, heldStock.
fn parse_answer(mut reply: Reply) -> Result<PurchaseOutcome, StoreError> {
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
pub struct User<'a> {
    pub keys: SaleKeys,
    pub user: &'a str,
    /// The user's bucket ([`Store::eval_with_buckets`](crate::store::Store)).
    pub buckets: Buckets,
}

impl ScriptCall for User<'_> {
    type Output = Bucketed<Option<UserRecord>>;

    fn script(scripts: &Scripts) -> &LuaScript {
        &scripts.user
    }

    fn keys_and_args(&self) -> (MultipleKeys, Vec<Value>) {
        let (bucket, count) = user_bucket(&self.keys, &self.buckets);
        (
            vec![self.keys.config(), bucket, self.keys.checkouts()].into(),
            vec![Value::from(self.user), count],
        )
    }

    /// `{'BUCKETS', buyerBuckets}` another bucket ([`bucketed`]), `{0}` no sale, `{1}` no
    /// unit, `{1, purchaseMs, orderNumber}`, and on a checkout sale `{1, purchaseMs,
    /// orderNumber, quantity, holdExpiresMs}`.
    fn parse(reply: Value) -> Result<Bucketed<Option<UserRecord>>, StoreError> {
        bucketed("user", reply, Self::record)
    }
}

impl User<'_> {
    fn record(reply: Value) -> Result<Option<UserRecord>, StoreError> {
        let numbers: Vec<i64> = reply
            .into_array()
            .iter()
            .map(Value::as_i64)
            .collect::<Option<_>>()
            .ok_or_else(|| StoreError::Unexpected("user.lua answered a non-number".into()))?;
        Ok(match numbers.as_slice() {
            [0] => None,
            [1] => Some(UserRecord {
                purchase: None,
                checkout: None,
            }),
            [1, purchase_ms, order_number] => Some(UserRecord {
                purchase: Some(Unit {
                    purchase_ms: *purchase_ms,
                    order_number: *order_number,
                }),
                checkout: None,
            }),
            [1, purchase_ms, order_number, quantity, hold_expires_ms] => Some(UserRecord {
                purchase: Some(Unit {
                    purchase_ms: *purchase_ms,
                    order_number: *order_number,
                }),
                checkout: Some(UserOrder {
                    quantity: *quantity,
                    hold_expires_ms: (*hold_expires_ms > 0).then_some(*hold_expires_ms),
                }),
            }),
            other => return Err(Reply::unexpected("user", other)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SaleId;

    #[test]
    fn a_lean_call_carries_no_attempt_counters_and_no_secrets() {
        let keys = SaleKeys::new(&SaleId::parse("s").unwrap());
        let entries: Vec<_> = ["ana", "bo", "cy"]
            .iter()
            .map(|user| PurchaseEntry::new(user, Str::from("0123456789abcdef"), Str::new(), 1, 0))
            .collect();
        for lean in [true, false] {
            let call = PurchaseBatch {
                keys: &keys,
                sale_id: Str::from("s"),
                limit: UserAttemptLimit {
                    limit: 10,
                    window_ms: 60_000,
                },
                waits: false,
                buckets: 1,
                lean,
                entries: &entries,
            };
            let (call_keys, args) = call.keys_and_args();
            let call_keys: Vec<String> = call_keys
                .inner()
                .iter()
                .map(|key| key.as_str().unwrap().to_owned())
                .collect();
            let per_entry = if lean { 1 } else { 2 };
            assert_eq!(call_keys.len(), FIXED_KEYS + per_entry * entries.len());
            let attempts = call_keys.iter().filter(|key| key.contains(":rl:")).count();
            assert_eq!(attempts, if lean { 0 } else { entries.len() });
            let secrets = args[6].as_str().unwrap();
            if lean {
                assert_eq!(secrets, "", "an empty ARGV[7] makes the call lean");
            } else {
                assert_eq!(secrets.len(), 32 * entries.len());
                assert!(secrets.bytes().all(|b| b.is_ascii_hexdigit()));
            }
            // The purchases' items are the same either way.
            let mut expected = Vec::new();
            for user in ["ana", "bo", "cy"] {
                expected.push(user.len() as u8);
                expected.extend_from_slice(user.as_bytes());
                expected.extend_from_slice(b"\x100123456789abcdef\x00\x01\x010");
            }
            assert_eq!(args[5].as_bytes().unwrap(), &expected[..]);
        }
    }

    #[test]
    fn a_new_buyers_order_number_alone_stands_for_the_whole_purchase_answer() {
        let text = |text: &str| Value::String(Str::from(text));
        let n = |number: i64| Value::Integer(number);
        // buyerBuckets 1, width 5, the batch's clock, totalStock 10; then a new buyer (order 4),
        // a retry answered in full, a new buyer (order 5), and an answer cut short.
        let reply = Value::Array(vec![
            n(1),
            n(5),
            n(1_764_000_000_123),
            n(10),
            n(4),
            text("PURCHASED"),
            n(6),
            n(1_764_000_000_001),
            n(2),
            n(0),
            n(5),
            text("SOLD_OUT"),
            n(0),
        ]);
        let BatchReply::Decided(outcomes) = PurchaseBatch::parse(reply).unwrap() else {
            panic!("decided");
        };
        let purchased = |remaining, purchase_ms, order_number| {
            PurchaseOutcome::from_reply(
                ("PURCHASED", remaining, purchase_ms, order_number, 0),
                None,
            )
            .unwrap()
        };
        assert_eq!(outcomes.len(), 4);
        assert_eq!(
            outcomes[0].as_ref().unwrap(),
            &purchased(6, 1_764_000_000_123, 4)
        );
        assert_eq!(
            outcomes[1].as_ref().unwrap(),
            &purchased(6, 1_764_000_000_001, 2)
        );
        assert_eq!(
            outcomes[2].as_ref().unwrap(),
            &purchased(5, 1_764_000_000_123, 5)
        );
        assert!(matches!(outcomes[3], Err(StoreError::Unexpected(_))));

        // A width of 0 with answers after it is no reply purchase.lua gives.
        let bad = Value::Array(vec![n(1), n(0), n(0), n(10), n(4)]);
        assert!(matches!(
            PurchaseBatch::parse(bad),
            Err(StoreError::Unexpected(_))
        ));
    }

    #[test]
    fn an_item_holds_each_text_behind_its_length_and_the_numbers_as_a_byte_and_a_text() {
        // The longest userId and request id there are, and an admission.
        let user = "u".repeat(128);
        let request_id = "r".repeat(128);
        let mut out = Vec::new();
        put_decide_item(
            &mut out,
            &user,
            "0123456789abcdef",
            &request_id,
            3,
            1_764_000_000_123,
        );
        put_refuse_item(&mut out, "bo", 300, -5);

        let mut expected = vec![128];
        expected.extend_from_slice(user.as_bytes());
        expected.extend_from_slice(b"\x100123456789abcdef\x80");
        expected.extend_from_slice(request_id.as_bytes());
        expected.extend_from_slice(b"\x03\x0d1764000000123");
        // More units than a byte holds are sent as 255, which no sale allows; no admission is 0.
        expected.extend_from_slice(b"\x02bo\xff\x010");
        assert_eq!(out, expected);
    }
}
