//! `lua/purchase.lua` and `lua/sold_out.lua` called by hand with KEYS and ARGV built as the
//! store builds them, for tests that drive the scripts themselves: a re-sent call, a batch
//! against the same purchases one by one, refusals of a sold-out sale against purchases.

use flashsale::store::{
    keys::{user_hash, SaleKeys},
    scripts::{put_decide_item, put_refuse_item, KEY_CHECK, PURCHASE_SOURCE, SOLD_OUT_SOURCE},
};
use fred::{
    prelude::*,
    types::{scripts::Script, Key},
};

/// A script as the tests' apps run it: `lua/key_check.lua` in front, so a key the script
/// touches that its call did not pass in KEYS is an error.
pub fn checked(source: &str) -> Script {
    Script::from_lua(format!("{KEY_CHECK}\n{source}"))
}

/// One purchase of a hand-built call.
#[derive(Debug, Clone)]
pub struct Buy {
    pub user: String,
    /// The request token (16 hex digits in the service).
    pub token: String,
    pub quantity: u32,
    /// The reservation token's secret, fixed so two runs can be compared (made 32 characters
    /// when sent, as the store's are).
    pub secret: String,
    /// With the waiting room on, the admission's expiry (Unix ms); 0 without.
    pub admission: i64,
}

impl Buy {
    pub fn new(user: &str, token: &str) -> Self {
        Self {
            user: user.to_owned(),
            token: token.to_owned(),
            quantity: 1,
            secret: format!("{token}{token}"),
            admission: 0,
        }
    }

    /// The request id a hand-built call sends for this purchase.
    pub fn request_id(&self) -> String {
        format!("request-{}", self.token)
    }

    /// The reservation token's secret as a hand-built call sends it: 32 characters.
    pub fn sent_secret(&self) -> String {
        format!("{:0>32.32}", self.secret)
    }
}

/// Runs one call of the purchase script for `buys` (in order) of `sale`, with the attempt
/// limit `limit` per `window_ms`, and returns its answers, one per purchase. The sale's
/// buyerBuckets is read first, as the store learns it. The full call: every purchase with its
/// attempt counter and hold secret.
pub async fn purchase_script(
    client: &Client,
    sale: &str,
    buys: &[Buy],
    limit: u32,
    window_ms: u64,
) -> Vec<Value> {
    purchase_call(client, sale, buys, limit, window_ms, false)
        .await
        .expect("a full call is always decided")
}

/// As [`purchase_script`], first as a lean call (no attempt counters, no secrets), then in
/// full when the script asks for it, as the store does. Also whether the lean call decided.
pub async fn purchase_script_lean_first(
    client: &Client,
    sale: &str,
    buys: &[Buy],
    limit: u32,
    window_ms: u64,
) -> (Vec<Value>, bool) {
    match purchase_call(client, sale, buys, limit, window_ms, true).await {
        Some(answers) => (answers, true),
        None => (
            purchase_script(client, sale, buys, limit, window_ms).await,
            false,
        ),
    }
}

/// The KEYS `lua/purchase.lua` takes before the first purchase's, in its order.
pub fn purchase_fixed_keys(keys: &SaleKeys) -> Vec<Key> {
    flashsale::store::scripts::purchase_fixed_keys(keys).to_vec()
}

/// One call of the purchase script; `None` when a lean call was answered `{buyerBuckets, 0}`.
async fn purchase_call(
    client: &Client,
    sale: &str,
    buys: &[Buy],
    limit: u32,
    window_ms: u64,
    lean: bool,
) -> Option<Vec<Value>> {
    let keys = super::keys(sale);
    let buckets: Option<u32> = client.hget(keys.config(), "buyerBuckets").await.unwrap();
    let buckets = buckets.unwrap_or(0);
    let mut all_keys = purchase_fixed_keys(&keys);
    let mut args: Vec<Value> = vec![
        limit.into(),
        (window_ms as i64).into(),
        sale.into(),
        "0".into(),
        buckets.into(),
    ];
    let (mut items, mut secrets) = (Vec::new(), String::new());
    for buy in buys {
        all_keys.push(keys.bucket_of(user_hash(&buy.user), buckets));
        if !lean {
            all_keys.push(keys.attempts(&buy.user));
            secrets += &buy.sent_secret();
        }
        put_decide_item(
            &mut items,
            &buy.user,
            &buy.token,
            &buy.request_id(),
            buy.quantity,
            buy.admission,
        );
    }
    args.extend([Value::Bytes(items.into()), secrets.into()]);
    let script = checked(PURCHASE_SOURCE);
    let reply: Value = script
        .evalsha_with_reload(client, all_keys, args)
        .await
        .unwrap();
    let mut items = reply.into_array().into_iter();
    let answered: i64 = items.next().and_then(|b| b.as_i64()).unwrap();
    assert_eq!(answered, i64::from(buckets), "the sale's buyerBuckets");
    if lean && items.len() == 1 {
        let asked = items.next().and_then(|width| width.as_i64());
        assert_eq!(asked, Some(0), "a lean call refused is {{buyerBuckets, 0}}");
        return None;
    }
    Some(purchase_answers(items))
}

/// The answers of a purchase batch's reply after its leading item: the width, the batch's
/// purchaseMs and the sale's totalStock, then each answer `width` fields, or a new buyer's
/// order number alone, which is made the full answer it stands for (PURCHASED at purchaseMs,
/// totalStock - orderNumber left, no wait).
fn purchase_answers(mut items: std::vec::IntoIter<Value>) -> Vec<Value> {
    let mut head = items.by_ref().take(3).map(|item| item.as_i64().unwrap());
    let (width, purchase_ms, total) = (
        head.next().unwrap() as usize,
        head.next().unwrap(),
        head.next().unwrap(),
    );
    let mut answers = Vec::new();
    while let Some(first) = items.next() {
        answers.push(Value::Array(match first {
            Value::Integer(order) => vec![
                "PURCHASED".into(),
                (total - order).into(),
                purchase_ms.into(),
                order.into(),
                0.into(),
            ],
            code => {
                let answer: Vec<Value> = std::iter::once(code)
                    .chain(items.by_ref().take(width - 1))
                    .collect();
                assert_eq!(answer.len(), width, "{width} fields per answer");
                answer
            }
        }));
    }
    answers
}

/// The answers of a batch's flat reply, after its leading item: the width, then that many
/// fields per answer (each answer made an array again).
fn unflatten(mut items: std::vec::IntoIter<Value>) -> Vec<Value> {
    let width = items.next().and_then(|width| width.as_i64()).unwrap();
    let fields: Vec<Value> = items.collect();
    assert_eq!(
        fields.len() % width as usize,
        0,
        "{width} fields per answer"
    );
    fields
        .chunks(width as usize)
        .map(|answer| Value::Array(answer.to_vec()))
        .collect()
}

/// Runs one call of the sold-out script for `buys` of `sale`, as the store calls it for a sale
/// it saw sold out: `None` when the script found the sale not sold out (every purchase goes to
/// the purchase script), else per purchase its refusal, or `None` for one the purchase script
/// must decide.
pub async fn sold_out_script(
    client: &Client,
    sale: &str,
    buys: &[Buy],
    limit: u32,
    window_ms: u64,
) -> Option<Vec<Option<Value>>> {
    let keys = super::keys(sale);
    let buckets: Option<u32> = client.hget(keys.config(), "buyerBuckets").await.unwrap();
    let buckets = buckets.unwrap_or(0);
    let mut all_keys = vec![keys.config(), keys.refused(), keys.expiries(), keys.gate()];
    let mut args: Vec<Value> = vec![limit.into(), (window_ms as i64).into(), buckets.into()];
    let mut items = Vec::new();
    for buy in buys {
        all_keys.push(keys.bucket_of(user_hash(&buy.user), buckets));
        all_keys.push(keys.attempts(&buy.user));
        put_refuse_item(&mut items, &buy.user, buy.quantity, buy.admission);
    }
    args.push(Value::Bytes(items.into()));
    args.push("".into()); // no known buyers: every purchase with its bucket and attempt counter
    args.push(0.into()); // and none counted only
    args.push(buys.len().to_string().into());
    let script = checked(SOLD_OUT_SOURCE);
    let reply: Value = script
        .evalsha_with_reload(client, all_keys, args)
        .await
        .unwrap();
    let mut items = reply.into_array().into_iter();
    match items.next().and_then(|state| state.as_i64()) {
        Some(0) => None,
        Some(1) => Some({
            let _fingerprint = items.next();
            // The group answer (no purchase counted only) comes first.
            unflatten(items)
                .into_iter()
                .skip(1)
                .map(
                    |answer| match answer.clone().into_array()[0].as_str().as_deref() {
                        Some("DECIDE") => None,
                        _ => Some(answer),
                    },
                )
                .collect()
        }),
        other => panic!("sold_out.lua answered {other:?}"),
    }
}
