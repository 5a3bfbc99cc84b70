//! What the run saw (every answer, per buyer) and the invariant check made from it afterwards.

use crate::scenarios::SaleStatus;
use futures::StreamExt;
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    fmt,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Mutex,
    },
};

/// Users whose purchase is cross-checked against `GET /api/sale/user/{id}` after the run.
const VERIFY_AT_MOST: usize = 2_000;

pub struct Ledger {
    buyers: usize,
    prefix: String,
    next: AtomicUsize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Buyer → order number, from every PURCHASED answer.
    purchased: HashMap<String, i64>,
    /// Final answers by code.
    codes: BTreeMap<String, usize>,
    /// Buyers whose last answer was a 503 or a transport error: outcome unknown.
    unanswered: usize,
    violations: Vec<String>,
    /// With a waiting room: each buyer's place in the queue, whether they bought, and when
    /// their admission expired (RFC 3339 UTC, ms: it sorts as text).
    places: HashMap<String, Place>,
}

impl Ledger {
    pub fn new(buyers: usize, prefix: String) -> Self {
        Self {
            buyers,
            prefix,
            next: AtomicUsize::new(0),
            state: Mutex::new(State::default()),
        }
    }

    /// The next distinct buyer of this run, until `--buyers` have been handed out.
    pub fn next_buyer(&self) -> Option<String> {
        let index = self.next.fetch_add(1, Ordering::Relaxed);
        (index < self.buyers).then(|| format!("{}-{index}", self.prefix))
    }

    fn attempted(&self) -> usize {
        self.next.load(Ordering::Relaxed).min(self.buyers)
    }

    /// Records a buyer's final answer (`None`: no answer, or 503).
    pub fn record(&self, buyer: &str, code: Option<&str>, order_number: Option<i64>) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let Some(code) = code else {
            state.unanswered += 1;
            return;
        };
        *state.codes.entry(code.to_owned()).or_default() += 1;
        if code == "PURCHASED" {
            let order = order_number.unwrap_or(-1);
            if let Some(previous) = state.purchased.insert(buyer.to_owned(), order) {
                if previous != order {
                    state.violations.push(format!(
                        "{buyer} was sold two units: orders {previous} and {order}"
                    ));
                }
            }
        }
    }

    /// Records where a buyer stood in the waiting room when their turn came (or the sale sold
    /// out), and whether they bought.
    pub fn record_place(&self, buyer: &str, place: Place) {
        if let Ok(mut state) = self.state.lock() {
            state.places.insert(buyer.to_owned(), place);
        }
    }

    /// Checks SPEC §1 for this run: sold = min(S, buyers), no buyer twice, remaining + buyers =
    /// total (as remaining_after + this run's buyers = remaining_before), and that Redis (through
    /// the API) holds what the answers said.
    pub async fn check(
        &self,
        http: &reqwest::Client,
        host: &str,
        before: &SaleStatus,
        after: &SaleStatus,
    ) -> Report {
        let (purchased, codes, unanswered, mut violations, places) = match self.state.lock() {
            Ok(state) => (
                state.purchased.clone(),
                state.codes.clone(),
                state.unanswered,
                state.violations.clone(),
                state.places.clone(),
            ),
            Err(_) => return Report::failed("ledger lock poisoned"),
        };
        let attempted = self.attempted();
        let sold = before.remaining_stock - after.remaining_stock;
        let buyers = purchased.len() as i64;
        let mut checks = Vec::new();

        checks.push(Check::new(
            "never oversold",
            after.remaining_stock >= 0 && after.total_stock == before.total_stock,
            format!(
                "remaining {} of {}",
                after.remaining_stock, after.total_stock
            ),
        ));
        let orders: HashSet<i64> = purchased.values().copied().collect();
        checks.push(Check::new(
            "no buyer twice",
            violations.is_empty() && orders.len() == purchased.len(),
            format!(
                "{} buyers, {} distinct order numbers",
                purchased.len(),
                orders.len()
            ),
        ));
        checks.push(Check::new(
            "remaining + buyers = total",
            sold == buyers,
            format!(
                "remaining after {} + this run's buyers {buyers} = remaining before {}",
                after.remaining_stock, before.remaining_stock
            ),
        ));
        let window_open = before.status == "active" || before.status == "sold_out";
        let expected = if window_open {
            before.remaining_stock.min(attempted as i64)
        } else {
            0
        };
        checks.push(if unanswered == 0 {
            Check::new(
                "sold = min(S, buyers)",
                sold == expected,
                format!(
                    "sold {sold}, S {}, buyers {attempted}",
                    before.remaining_stock
                ),
            )
        } else {
            // A buyer left without an answer may or may not hold a unit: only the bound holds.
            Check::new(
                "sold ≤ min(S, buyers)",
                sold <= expected,
                format!("sold {sold}, bound {expected}; {unanswered} buyers without an answer"),
            )
        });

        if !places.is_empty() {
            // What the service promises: admissions in place order (an admission's expiry is
            // the moment its place was reached plus the room's admission time).
            let mut admitted: Vec<&Place> = places
                .values()
                .filter(|p| p.position > 0 && p.admission_expires.is_some())
                .collect();
            admitted.sort_by_key(|p| p.position);
            let in_order = admitted
                .windows(2)
                .all(|pair| pair[0].admission_expires <= pair[1].admission_expires);
            checks.push(Check::new(
                "admitted in place order",
                in_order,
                format!("{} admissions", admitted.len()),
            ));
            // What follows when every buyer buys the moment its turn comes: the buyers are the
            // first places. A buyer slower than 1 / admitPerSecond (polling instead of the
            // stream, a loaded client) can be overtaken, so this is reported, not required.
            let last_bought = places
                .values()
                .filter(|p| p.bought)
                .map(|p| p.position)
                .max();
            let first_left = places
                .values()
                .filter(|p| !p.bought && p.position > 0)
                .map(|p| p.position)
                .min();
            let first_places = match (last_bought, first_left) {
                (Some(bought), Some(left)) => bought < left,
                _ => true,
            };
            let bought = places.values().filter(|p| p.bought).count();
            checks.push(Check::info(
                "buyers = the first places",
                first_places,
                format!(
                    "{bought} buyers, last place bought {last_bought:?}, first place that did not buy {first_left:?}"
                ),
            ));
        }

        let sample: Vec<(String, i64)> = purchased.into_iter().take(VERIFY_AT_MOST).collect();
        let checked = sample.len();
        let mismatches: Vec<String> = futures::stream::iter(sample)
            .map(|(user, order)| async move {
                let url = format!("{host}/api/sale/user/{user}");
                let body: Option<serde_json::Value> = match http.get(&url).send().await {
                    Ok(reply) => reply.json().await.ok(),
                    Err(_) => None,
                };
                let held = body.as_ref().and_then(|b| b["orderNumber"].as_i64());
                (held != Some(order))
                    .then(|| format!("{user}: answered order {order}, API says {held:?}"))
            })
            .buffer_unordered(32)
            .filter_map(|mismatch| async move { mismatch })
            .collect()
            .await;
        checks.push(Check::new(
            "every PURCHASED is in Redis",
            mismatches.is_empty(),
            format!("{checked} buyers checked through GET /api/sale/user"),
        ));
        violations.extend(mismatches.into_iter().take(10));

        Report {
            checks,
            codes,
            violations,
        }
    }
}

/// A waiting-room buyer's place, as the run saw it.
#[derive(Debug, Clone)]
pub struct Place {
    /// 0 when the buyer never got one (the sale sold out first).
    pub position: i64,
    pub bought: bool,
    /// The admission's `admissionExpiresAt`, when the buyer was admitted.
    pub admission_expires: Option<String>,
}

pub struct Check {
    name: &'static str,
    holds: bool,
    /// Reported, never a failure: it depends on the clients as much as on the service.
    informational: bool,
    detail: String,
}

impl Check {
    fn new(name: &'static str, holds: bool, detail: String) -> Self {
        Self {
            name,
            holds,
            informational: false,
            detail,
        }
    }

    fn info(name: &'static str, holds: bool, detail: String) -> Self {
        Self {
            informational: true,
            ..Self::new(name, holds, detail)
        }
    }
}

pub struct Report {
    checks: Vec<Check>,
    codes: BTreeMap<String, usize>,
    violations: Vec<String>,
}

impl Report {
    fn failed(reason: &str) -> Self {
        Self {
            checks: vec![Check::new("ledger", false, reason.to_owned())],
            codes: BTreeMap::new(),
            violations: Vec::new(),
        }
    }

    pub fn holds(&self) -> bool {
        self.checks
            .iter()
            .all(|check| check.holds || check.informational)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "=== flashsale invariants")?;
        writeln!(f, "final answers: {:?}", self.codes)?;
        for check in &self.checks {
            let mark = match (check.holds, check.informational) {
                (true, _) => "ok  ",
                (false, true) => "info",
                (false, false) => "FAIL",
            };
            writeln!(f, "{mark} {:<28} {}", check.name, check.detail)?;
        }
        for violation in &self.violations {
            writeln!(f, "     {violation}")?;
        }
        write!(
            f,
            "{}",
            if self.holds() {
                "INVARIANTS HOLD"
            } else {
                "INVARIANTS VIOLATED"
            }
        )
    }
}
