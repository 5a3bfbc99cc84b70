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

/// Users whose purchase is read back one by one (`GET …/user/{id}`) after the run, when the
/// admin API is not available to read them all at once.
const VERIFY_AT_MOST: usize = 2_000;

/// Tries of one read-back answered 429 or 503 before it counts as unread.
const READ_TRIES: usize = 20;

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
    unanswered: HashSet<String>,
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
            state.unanswered.insert(buyer.to_owned());
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

    /// Every buyer of this run that Redis holds (userId → order number), read through the admin
    /// API's buyers export a page at a time.
    async fn admin_buyers(
        &self,
        http: &reqwest::Client,
        host: &str,
        token: &str,
        sale: &str,
    ) -> Result<HashMap<String, i64>, String> {
        let mine = format!("{}-", self.prefix);
        let mut buyers = HashMap::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut url = format!("{host}/api/admin/sales/{sale}/buyers?limit=1000");
            if let Some(cursor) = &cursor {
                url.push_str(&format!("&cursor={cursor}"));
            }
            let reply = http
                .get(&url)
                .bearer_auth(token)
                .send()
                .await
                .map_err(|err| err.to_string())?;
            if !reply.status().is_success() {
                return Err(format!("GET {url} answered {}", reply.status()));
            }
            let page: serde_json::Value = reply.json().await.map_err(|err| err.to_string())?;
            for row in page["buyers"].as_array().into_iter().flatten() {
                if let (Some(user), Some(order)) =
                    (row["userId"].as_str(), row["orderNumber"].as_i64())
                {
                    if user.starts_with(&mine) {
                        buyers.insert(user.to_owned(), order);
                    }
                }
            }
            match page["nextCursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return Ok(buyers),
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
    ///
    /// `admin` (token, sale id): every buyer of the run is then read through the admin API, so
    /// the checks are exact even for buyers whose answer was lost, and no read is rate limited.
    pub async fn check(
        &self,
        http: &reqwest::Client,
        host: &str,
        base: &str,
        admin: Option<(&str, &str)>,
        before: &SaleStatus,
        after: &SaleStatus,
    ) -> Report {
        let (purchased, codes, unanswered_buyers, mut violations, places) = match self.state.lock()
        {
            Ok(state) => (
                state.purchased.clone(),
                state.codes.clone(),
                state.unanswered.clone(),
                state.violations.clone(),
                state.places.clone(),
            ),
            Err(_) => return Report::failed("ledger lock poisoned"),
        };
        let attempted = self.attempted();
        let unanswered = unanswered_buyers.len();
        let sold = before.remaining_stock - after.remaining_stock;
        let buyers = purchased.len() as i64;
        let mut checks = Vec::new();
        // Every buyer of this run that Redis holds, when the admin API can list them.
        let in_redis = match admin {
            Some((token, sale)) => match self.admin_buyers(http, host, token, sale).await {
                Ok(list) => Some(list),
                Err(err) => return Report::failed(&format!("reading the buyers: {err}")),
            },
            None => None,
        };

        // Oversold: a negative count, or more buyers told PURCHASED (or held in Redis) than
        // there were units when the run began.
        let held = in_redis.as_ref().map_or(0, |list| list.len() as i64);
        checks.push(Check::new(
            "never oversold",
            after.remaining_stock >= 0
                && after.total_stock == before.total_stock
                && buyers.max(held) <= before.remaining_stock,
            format!(
                "remaining {} of {}; {} buyers for {} units",
                after.remaining_stock,
                after.total_stock,
                buyers.max(held),
                before.remaining_stock
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
        checks.push(match &in_redis {
            Some(list) => Check::new(
                "remaining + buyers = total",
                sold == list.len() as i64,
                format!(
                    "remaining after {} + this run's buyers in Redis {} = remaining before {}",
                    after.remaining_stock,
                    list.len(),
                    before.remaining_stock
                ),
            ),
            None if unanswered == 0 => Check::new(
                "remaining + buyers = total",
                sold == buyers,
                format!(
                    "remaining after {} + this run's buyers {buyers} = remaining before {}",
                    after.remaining_stock, before.remaining_stock
                ),
            ),
            // A buyer without an answer may hold a unit: the units sold lie between the buyers
            // told PURCHASED and those plus the buyers without an answer.
            None => Check::new(
                "remaining + buyers = total",
                buyers <= sold && sold <= buyers + unanswered as i64,
                format!(
                    "sold {sold}: between {buyers} told PURCHASED and {} with the {unanswered} without an answer",
                    buyers + unanswered as i64
                ),
            ),
        });
        // The buyers who reached the stock: told PURCHASED or SOLD_OUT, or left without an
        // answer. Those refused before it (a per-IP or per-user RATE_LIMITED, a closed window)
        // never competed for a unit, so they do not count towards min(S, buyers).
        let reached = ["PURCHASED", "SOLD_OUT", "ALREADY_PURCHASED"]
            .iter()
            .map(|code| codes.get(*code).copied().unwrap_or(0))
            .sum::<usize>();
        let refused_before = attempted.saturating_sub(reached + unanswered);
        let window_open = before.status == "active" || before.status == "sold_out";
        let contenders = (reached + unanswered) as i64;
        let expected = if window_open {
            before.remaining_stock.min(contenders)
        } else {
            0
        };
        checks.push(if unanswered == 0 {
            Check::new(
                "sold = min(S, buyers)",
                sold == expected,
                format!(
                    "sold {sold}, S {}, buyers who reached the stock {contenders} ({refused_before} refused before it)",
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

        match &in_redis {
            Some(list) => {
                let missing: Vec<String> = purchased
                    .iter()
                    .filter(|(user, order)| list.get(*user) != Some(order))
                    .map(|(user, order)| {
                        format!(
                            "{user}: answered order {order}, Redis has {:?}",
                            list.get(user)
                        )
                    })
                    .collect();
                checks.push(Check::new(
                    "every PURCHASED is in Redis",
                    missing.is_empty(),
                    format!("{} buyers read through the admin API", list.len()),
                ));
                violations.extend(missing.into_iter().take(10));
                // A buyer Redis holds was told PURCHASED, or got no answer at all.
                let untold: Vec<String> = list
                    .keys()
                    .filter(|user| {
                        !purchased.contains_key(*user) && !unanswered_buyers.contains(*user)
                    })
                    .map(|user| format!("{user} holds a unit but was told otherwise"))
                    .collect();
                checks.push(Check::new(
                    "every unit's buyer was told",
                    untold.is_empty(),
                    format!(
                        "{unanswered} buyers without an answer, {} of them bought",
                        list.keys()
                            .filter(|u| unanswered_buyers.contains(*u))
                            .count()
                    ),
                ));
                violations.extend(untold.into_iter().take(10));
            }
            None => {
                let (checked, mismatches, unread) = read_back(
                    http,
                    host,
                    base,
                    purchased.into_iter().take(VERIFY_AT_MOST).collect(),
                )
                .await;
                let detail = format!("{checked} buyers read back through GET {base}/user");
                checks.push(if !mismatches.is_empty() || unread == 0 {
                    Check::new("every PURCHASED is in Redis", mismatches.is_empty(), detail)
                } else {
                    // Unread is not lost: say so, and how to read them all.
                    Check::info(
                        "every PURCHASED is in Redis",
                        false,
                        format!("{detail}; {unread} still refused (429/503) after {READ_TRIES} tries: pass --admin-token"),
                    )
                });
                violations.extend(mismatches.into_iter().take(10));
            }
        }

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

/// Reads each buyer back through the sale's user route, honouring `Retry-After` on 429 and 503
/// (a per-IP limit refuses reads as it refuses purchases). Returns how many were read, the
/// disagreements, and how many could not be read.
async fn read_back(
    http: &reqwest::Client,
    host: &str,
    base: &str,
    sample: Vec<(String, i64)>,
) -> (usize, Vec<String>, usize) {
    let results: Vec<Result<Option<String>, ()>> = futures::stream::iter(sample)
        .map(|(user, order)| async move {
            let url = format!("{host}{base}/user/{user}");
            for _ in 0..READ_TRIES {
                let Ok(reply) = http.get(&url).send().await else {
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                    continue;
                };
                let status = reply.status().as_u16();
                if status == 429 || status == 503 {
                    let wait = reply
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(1)
                        .clamp(1, 5);
                    tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
                    continue;
                }
                let body: serde_json::Value = reply.json().await.unwrap_or_default();
                let held = body["orderNumber"].as_i64();
                return Ok((held != Some(order))
                    .then(|| format!("{user}: answered order {order}, the API says {held:?}")));
            }
            Err(())
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let unread = results.iter().filter(|r| r.is_err()).count();
    let read = results.len() - unread;
    let mismatches: Vec<String> = results
        .into_iter()
        .filter_map(|r| r.ok().flatten())
        .collect();
    (read, mismatches, unread)
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
