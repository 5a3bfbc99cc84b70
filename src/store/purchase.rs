//! The purchase: `lua/purchase.lua` in one round trip, with the purchases of one sale that
//! arrive while a call for it is in flight decided together by the next call (group commit);
//! once a sale is sold out, `lua/sold_out.lua` refuses its purchases first, at a fraction of the
//! cost, and once it vouched for the sale's buyers this store knows, new users are refused here
//! without Redis; with `PURCHASE_WAIT_REPLICAS` the script and `WAIT` in one pipeline on one
//! connection.

use super::{
    connection::{send_while_slot_moves, slot_moving},
    keys::SaleKeys,
    scripts::{BatchReply, PurchaseBatch, PurchaseEntry, ScriptCall, SoldOutBatch, SoldOutReply},
    Deadline, ReplicaWait, Store, StoreError, UserAttemptLimit,
};
use crate::domain::{Code, PurchaseOutcome, RequestToken, SaleId, UserId};
use fred::{
    bytes_utils::Str,
    prelude::*,
    types::{config::Options, ClusterHash},
};
use std::{
    borrow::Cow,
    collections::{HashMap, HashSet},
    sync::{
        atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};
use tokio::sync::oneshot;

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

/// The purchases of each sale this store (one HTTP worker's) is deciding: the sale's
/// `buyerBuckets` as last read, whether it was last seen sold out, and the purchases waiting
/// for the call in flight.
#[derive(Default)]
pub(super) struct Lanes {
    /// The most purchases one call decides; 1 = every purchase alone.
    max: usize,
    lanes: Mutex<HashMap<SaleId, Arc<Lane>>>,
}

/// Idle lanes are dropped once this many sales have one (ids that name no sale cost nothing
/// for long).
const MOST_LANES: usize = 10_000;

struct Lane {
    keys: SaleKeys,
    sale_id: Str,
    /// The sale's `buyerBuckets` as the script last answered it (0: not yet known).
    buckets: AtomicU32,
    /// The sale's calls must carry the attempt counters and hold secrets (the script answered
    /// a lean call `Full`): until the sale's `buyerBuckets` is seen to change (a new sale).
    full: AtomicBool,
    /// A purchase of this sale was last refused for want of stock: purchases go to
    /// `lua/sold_out.lua` first, until it finds the stock back (or the sale changed).
    sold_out: AtomicBool,
    /// The sale's buyers, fetched once it was seen sold out, and the fingerprint they match.
    known: Mutex<Option<Arc<KnownBuyers>>>,
    /// A fetch of the buyers is under way.
    fetching: AtomicBool,
    /// New users are refused here, without Redis, until then: `lua/sold_out.lua` vouched for
    /// the known buyers (README, "Refused without Redis").
    local: Mutex<Option<Local>>,
    /// Refusals answered here, not yet added to the sale's `refused` count.
    local_refused: AtomicU64,
    /// The task that counts them and vouches again runs ([`Store::keep_local`]).
    keeping: AtomicBool,
    /// Purchases waiting for `lua/purchase.lua`.
    decide: Mutex<Queue>,
    /// Purchases waiting for `lua/sold_out.lua`.
    refuse: Mutex<Queue>,
}

/// The users holding a buyer record in a sold-out sale, as fetched after `lua/sold_out.lua`
/// answered `fingerprint`: while the script finds the same fingerprint, no buyer record was
/// written since, so a user not among them holds nothing and is refused without reading their
/// bucket (README, "Known buyers").
struct KnownBuyers {
    fingerprint: Str,
    users: HashSet<Box<str>>,
}

/// A sold-out sale whose new users this store refuses alone: `lua/sold_out.lua` found the known
/// buyers' fingerprint unchanged and closed the sale's gate for [`GATE_MS`], so until the gate
/// lapses no unit is sold and no user outside `known` can come to hold one. `until` is
/// [`LOCAL_FOR`] after the call was sent, short of the gate by more than any clock's drift.
struct Local {
    known: Arc<KnownBuyers>,
    until: Instant,
    /// The refusal every such purchase gets (the script's group answer: `SOLD_OUT`, 0 left).
    answer: PurchaseOutcome,
}

/// How long `lua/sold_out.lua` closes a sale's gate when it vouches: the most a restock or a
/// released hold waits before it sells (the 100 ms).
const GATE_MS: u64 = 100;

/// How long after sending the vouching call a store refuses alone: less than [`GATE_MS`].
const LOCAL_FOR: Duration = Duration::from_millis(80);

/// How often, while it refuses alone, a store adds its refusals to the sale's count and has
/// the script vouch again (well within [`LOCAL_FOR`], so a busy sale never lapses to Redis).
const KEEP_EVERY: Duration = Duration::from_millis(40);

/// How a purchase of a sale with known buyers is sent to `lua/sold_out.lua`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sifted {
    /// Among the known buyers: not sent, straight on to `purchase.lua`.
    Member,
    /// Counted only: one unit, no admission, the attempt limit off (answered alike).
    Group,
    /// Sent as a line (with its attempt counter when the limit is on).
    Asked,
}

impl Sifted {
    fn of(entry: &PurchaseEntry, known: &KnownBuyers, limit: UserAttemptLimit) -> Self {
        if known.users.contains(&*entry.user) {
            Sifted::Member
        } else if limit.limit == 0 && entry.quantity == 1 && entry.admission_expires_ms == 0 {
            Sifted::Group
        } else {
            Sifted::Asked
        }
    }
}

/// A sale of more buckets than this (about 100 buyers each) keeps being refused by
/// `lua/sold_out.lua` one read per purchase: its buyers are not copied into every worker.
const MOST_KNOWN_BUCKETS: u32 = 1_000;

/// Buckets read by one pipeline while fetching a sale's buyers.
const BUCKETS_PER_FETCH: u32 = 100;

/// Which script a queue of a lane waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Decide,
    Refuse,
}

#[derive(Default)]
struct Queue {
    /// A call for this sale is in flight (its drain task is running).
    busy: bool,
    waiting: Vec<Waiting>,
}

struct Waiting {
    entry: PurchaseEntry,
    answer: Answer,
}

/// Where a waiting purchase's outcome goes, and by when its request gives up.
struct Answer {
    to: oneshot::Sender<Result<PurchaseOutcome, StoreError>>,
    deadline: Deadline,
}

impl Answer {
    /// Hands the outcome over; a request that gave up meanwhile has no one to answer.
    fn send(self, outcome: Result<PurchaseOutcome, StoreError>) {
        let _ = self.to.send(outcome);
    }
}

impl Lanes {
    pub(super) fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            lanes: Mutex::default(),
        }
    }

    fn lane(&self, sale: &SaleId) -> Arc<Lane> {
        let mut lanes = self
            .lanes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(lane) = lanes.get(sale) {
            return lane.clone();
        }
        if lanes.len() >= MOST_LANES {
            lanes.retain(|_, lane| Arc::strong_count(lane) > 1);
        }
        let lane = Arc::new(Lane {
            keys: SaleKeys::new(sale),
            sale_id: Str::from(sale.as_str()),
            buckets: AtomicU32::new(0),
            full: AtomicBool::new(false),
            sold_out: AtomicBool::new(false),
            known: Mutex::default(),
            fetching: AtomicBool::new(false),
            local: Mutex::default(),
            local_refused: AtomicU64::new(0),
            keeping: AtomicBool::new(false),
            decide: Mutex::default(),
            refuse: Mutex::default(),
        });
        lanes.insert(sale.clone(), lane.clone());
        lane
    }
}

impl Lanes {
    /// The sale's `buyerBuckets` as a script last answered it here (1 when none has yet: a
    /// script handed a bucket for another number answers with the right one).
    pub(super) fn buckets(&self, sale: &SaleId) -> u32 {
        self.lane(sale).buckets.load(Ordering::Relaxed).max(1)
    }

    /// A script answered that the sale has `buckets` buyer buckets.
    pub(super) fn saw_buckets(&self, sale: &SaleId, buckets: u32) {
        self.lane(sale).saw_buckets(buckets);
    }
}

impl Lane {
    /// A script answered that the sale has `buckets` buyer buckets: when that is news, another
    /// sale under the same id, which may take lean calls again.
    fn saw_buckets(&self, buckets: u32) {
        if self.buckets.swap(buckets, Ordering::Relaxed) != buckets {
            self.full.store(false, Ordering::Relaxed);
        }
    }

    fn queue(&self, step: Step) -> std::sync::MutexGuard<'_, Queue> {
        match step {
            Step::Decide => &self.decide,
            Step::Refuse => &self.refuse,
        }
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn known(&self) -> Option<Arc<KnownBuyers>> {
        self.known
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The buyers this store knows; whatever they were vouched for goes with the old ones.
    fn set_known(&self, known: Option<Arc<KnownBuyers>>) {
        self.set_local(None);
        *self
            .known
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = known;
    }

    fn set_local(&self, local: Option<Local>) {
        *self
            .local
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = local;
    }

    /// `lua/sold_out.lua` found stock (or no sale): purchases go to `purchase.lua` again, and
    /// what this store knew of the sale's buyers is dropped.
    fn found_stock(&self) {
        self.sold_out.store(false, Ordering::Relaxed);
        self.set_known(None);
    }

    /// After `lua/sold_out.lua` answered `Refused` to a call sent at `sent` with the known
    /// buyers `known`: refuse alone for [`LOCAL_FOR`] if it vouched for them, else no longer.
    fn vouched(
        &self,
        known: &Arc<KnownBuyers>,
        sent: Instant,
        vouched: bool,
        fingerprint: &Str,
        group: Option<&Result<PurchaseOutcome, StoreError>>,
    ) {
        let local = match group {
            Some(Ok(answer))
                if vouched && *fingerprint == known.fingerprint && answer.code == Code::SoldOut =>
            {
                Some(Local {
                    known: known.clone(),
                    until: sent + LOCAL_FOR,
                    answer: answer.clone(),
                })
            }
            _ => None,
        };
        self.set_local(local);
    }

    /// The refusal of a purchase this store may answer alone: one unit, no admission, a user
    /// not among the buyers vouched for, before the vouching lapses. Counted for the keeper.
    fn refuse_here(&self, user: &str, ask: Ask) -> Option<PurchaseOutcome> {
        if ask != Ask::ONE || !self.sold_out.load(Ordering::Relaxed) {
            return None;
        }
        let answer = {
            let local = self
                .local
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let local = local.as_ref()?;
            if Instant::now() >= local.until || local.known.users.contains(user) {
                return None;
            }
            local.answer.clone()
        };
        self.local_refused.fetch_add(1, Ordering::Relaxed);
        Some(answer)
    }

    /// Whether a batch's answers show the stock gone: a `SOLD_OUT` at 0 left (after it, nothing
    /// in the same call brings stock back).
    fn learn(&self, outcomes: &[Result<PurchaseOutcome, StoreError>]) {
        let gone = outcomes.iter().any(
            |outcome| matches!(outcome, Ok(outcome) if outcome.code == Code::SoldOut && outcome.remaining == 0),
        );
        if gone {
            self.sold_out.store(true, Ordering::Relaxed);
        }
    }
}

/// A drain task's hold on its lane: when the task is dropped before it finished (the runtime
/// shutting down), the lane is freed and its queued purchases are answered "not now" (dropping
/// their senders), so none waits on a task that is gone.
struct Release {
    lane: Arc<Lane>,
    step: Step,
    /// The task freed the lane itself (under the queue's lock, with nothing waiting): another
    /// drain task may own it already.
    finished: AtomicBool,
}

impl Drop for Release {
    fn drop(&mut self) {
        if !self.finished.load(Ordering::Relaxed) {
            let mut queue = self.lane.queue(self.step);
            queue.busy = false;
            queue.waiting.clear();
        }
    }
}

impl Store {
    /// Decides one purchase with `lua/purchase.lua`. Purchases of the same sale that arrive
    /// while a call for it is in flight wait and are decided together by the next call, up to
    /// `PURCHASE_BATCH_MAX`, in arrival order (group commit); one that finds nothing in flight
    /// is sent at once, so a quiet sale waits for nothing. Once the sale was seen sold out,
    /// `lua/sold_out.lua` refuses them first, the same way, and passes on to `purchase.lua` only
    /// those it cannot refuse. Within `REDIS_TIMEOUT_MS` in all. `token` is the request's, or
    /// `None` for a request without an `Idempotency-Key`: a fresh one is made for it once the
    /// purchase goes to Redis (a refusal without Redis needs none).
    pub async fn purchase(
        &self,
        sale: &SaleId,
        user: UserId,
        token: Option<RequestToken>,
        limit: UserAttemptLimit,
        request_id: &str,
        ask: Ask,
    ) -> Result<PurchaseOutcome, StoreError> {
        let lane = self.lanes.lane(sale);
        if self.local_refusals {
            if let Some(refusal) = lane.refuse_here(user.as_str(), ask) {
                self.keep_local(&lane);
                return Ok(refusal);
            }
        }
        let entry = PurchaseEntry::new(
            user.as_str(),
            Str::from(token.unwrap_or_else(RequestToken::generate).into_string()),
            Str::from(request_id),
            ask.quantity,
            ask.admission_expires_ms,
        );
        let deadline = self.deadline();
        if self.lanes.max == 1 {
            // Batching off: the purchase is its own call (or two), on this task.
            return Self::within(
                deadline,
                Box::pin(self.alone(&lane, limit, entry, deadline)),
            )
            .await;
        }
        let (to, answered) = oneshot::channel();
        let step = if lane.sold_out.load(Ordering::Relaxed) {
            Step::Refuse
        } else {
            Step::Decide
        };
        let answer = Answer { to, deadline };
        self.enqueue(&lane, limit, step, vec![Waiting { entry, answer }]);
        match tokio::time::timeout_at(deadline.answer_by(), answered).await {
            Ok(Ok(outcome)) => outcome,
            // The drain task ended without answering (the runtime is shutting down).
            Ok(Err(_)) => Err(StoreError::timed_out("the purchase was dropped unanswered")),
            // Still waiting, or its call still in flight: the outcome is unknown, as for any
            // call past the timeout, and the buyer's retry with the same key settles it. A
            // call not yet written by now never will be: its commands expired just before.
            Err(_) => Err(StoreError::deadline_passed()),
        }
    }

    /// Batching off: one purchase, refused by `lua/sold_out.lua` when it can be, else decided.
    async fn alone(
        &self,
        lane: &Arc<Lane>,
        limit: UserAttemptLimit,
        entry: PurchaseEntry,
        deadline: Deadline,
    ) -> Result<PurchaseOutcome, StoreError> {
        let entries = std::slice::from_ref(&entry);
        if lane.sold_out.load(Ordering::Relaxed) {
            if let Some(refusals) = self.sift(lane, limit, entries, deadline).await? {
                if let Some(Some(refusal)) = refusals.into_iter().next() {
                    return refusal;
                }
            }
        }
        let decided = self.decide(lane, limit, entries, deadline).await?;
        lane.learn(&decided);
        decided.into_iter().next().unwrap_or_else(|| {
            Err(StoreError::Unexpected(
                "purchase.lua answered no purchase".into(),
            ))
        })
    }

    /// Queues purchases for one of a lane's scripts, and starts its drain task when none runs.
    fn enqueue(
        &self,
        lane: &Arc<Lane>,
        limit: UserAttemptLimit,
        step: Step,
        waiting: Vec<Waiting>,
    ) {
        if waiting.is_empty() {
            return;
        }
        let lead = {
            let mut queue = lane.queue(step);
            queue.waiting.extend(waiting);
            !std::mem::replace(&mut queue.busy, true)
        };
        if lead {
            // The calls run on a task of their own: a request that goes away (its client
            // disconnected) must not strand the purchases waiting behind it.
            tokio::spawn(self.clone().drain(lane.clone(), limit, step));
        }
    }

    /// Runs a lane's waiting purchases through one of its scripts, a batch per call, until
    /// none wait.
    async fn drain(self, lane: Arc<Lane>, limit: UserAttemptLimit, step: Step) {
        // Should this task end any other way (the runtime shutting down), the lane is freed
        // and the purchases still queued are answered "not now", not left waiting.
        let guard = Release {
            lane,
            step,
            finished: AtomicBool::new(false),
        };
        let lane = &guard.lane;
        loop {
            let (entries, answers): (Vec<PurchaseEntry>, Vec<Answer>) = {
                let mut queue = lane.queue(step);
                // Purchases whose requests gave up (timed out) are not decided: their buyers
                // were told 503, and a retry decides them.
                queue
                    .waiting
                    .retain(|waiting| !waiting.answer.to.is_closed());
                if queue.waiting.is_empty() {
                    queue.busy = false;
                    guard.finished.store(true, Ordering::Relaxed);
                    return;
                }
                let take = queue.waiting.len().min(self.lanes.max);
                queue
                    .waiting
                    .drain(..take)
                    .map(|waiting| (waiting.entry, waiting.answer))
                    .unzip()
            };
            // The batch gives up when its first request does: nothing is sent for a buyer
            // already told 503.
            let Some(deadline) = answers.iter().map(|answer| answer.deadline).min() else {
                continue;
            };
            match step {
                Step::Decide => {
                    crate::metrics::purchase_batch("purchase", entries.len());
                    let decided = self.decide(lane, limit, &entries, deadline).await;
                    if let Ok(outcomes) = &decided {
                        lane.learn(outcomes);
                    }
                    answer_all(answers, decided);
                }
                Step::Refuse => {
                    crate::metrics::purchase_batch("sold_out", entries.len());
                    let passed = match self.sift(lane, limit, &entries, deadline).await {
                        Ok(None) => waiting(entries, answers),
                        Ok(Some(refusals)) => answer_refused(entries, answers, refusals),
                        Err(err) => {
                            answer_all(answers, Err(err));
                            Vec::new()
                        }
                    };
                    // Those the sold-out script could not refuse are decided after the
                    // purchases already queued: nothing they do changes the stock.
                    self.enqueue(lane, limit, Step::Decide, passed);
                }
            }
        }
    }

    /// The purchases of a sale seen sold out, refused where they can be: per purchase, in
    /// order, its refusal or `None` for one `purchase.lua` must decide; `None` in all when the
    /// sale is not sold out (then the lane goes back to `purchase.lua`). Users among the
    /// sale's known buyers go on to `purchase.lua` (a buyer is answered with what they hold);
    /// the others are sent to `lua/sold_out.lua` with the known buyers' fingerprint, so that
    /// while it holds none of their buckets is read. Known buyers the script finds
    /// out of date are dropped and the batch sent again without them.
    async fn sift(
        &self,
        lane: &Arc<Lane>,
        limit: UserAttemptLimit,
        entries: &[PurchaseEntry],
        deadline: Deadline,
    ) -> Result<Option<Vec<Option<Result<PurchaseOutcome, StoreError>>>>, StoreError> {
        let mut known = lane.known();
        loop {
            let sorted: Vec<Sifted> = match &known {
                None => Vec::new(),
                Some(known) => entries
                    .iter()
                    .map(|entry| Sifted::of(entry, known, limit))
                    .collect(),
            };
            let asked: Cow<'_, [PurchaseEntry]> = if sorted.is_empty() {
                Cow::Borrowed(entries)
            } else {
                let asked = entries.iter().zip(&sorted);
                let asked = asked.filter(|(_, sifted)| **sifted == Sifted::Asked);
                Cow::Owned(asked.map(|(entry, _)| entry.clone()).collect())
            };
            let group = sorted.iter().filter(|s| **s == Sifted::Group).count();
            if asked.is_empty() && group == 0 {
                return Ok(Some(entries.iter().map(|_| None).collect()));
            }
            let call = SoldOutBatch {
                keys: &lane.keys,
                limit,
                buckets: lane.buckets.load(Ordering::Relaxed),
                known: known.as_ref().map(|known| &*known.fingerprint),
                group,
                entries: &asked,
                vouch_ms: if self.local_refusals { GATE_MS } else { 0 },
            };
            let sent = Instant::now();
            match self.eval_by(deadline, call).await? {
                SoldOutReply::NotSoldOut => {
                    lane.found_stock();
                    return Ok(None);
                }
                SoldOutReply::Stale => {
                    lane.set_known(None);
                    known = None;
                }
                SoldOutReply::Refused {
                    refusals,
                    group,
                    fingerprint,
                    vouched,
                } => {
                    match &known {
                        None => self.fetch_buyers(lane, fingerprint),
                        Some(known) if self.local_refusals => {
                            lane.vouched(known, sent, vouched, &fingerprint, group.as_ref());
                        }
                        Some(_) => {}
                    }
                    if sorted.is_empty() {
                        return Ok(Some(refusals));
                    }
                    // Back in the batch's order; a short answer leaves the rest unanswered,
                    // which `answer_refused` reports.
                    let mut refusals = refusals.into_iter();
                    let merged = sorted
                        .iter()
                        .map_while(|sifted| match sifted {
                            Sifted::Member => Some(None),
                            Sifted::Group => Some(group.clone()),
                            Sifted::Asked => refusals.next(),
                        })
                        .collect();
                    return Ok(Some(merged));
                }
            }
        }
    }

    /// Starts the lane's keeper unless it runs: every [`KEEP_EVERY`] while this store refuses
    /// purchases alone, one `lua/sold_out.lua` call adds those refusals to the sale's count
    /// (as a group: not attempts, README, "Refused without Redis") and vouches for the
    /// known buyers again; it stops after a period with no refusal, and the vouching lapses.
    fn keep_local(&self, lane: &Arc<Lane>) {
        if !lane.keeping.swap(true, Ordering::Relaxed) {
            tokio::spawn(self.clone().keeper(lane.clone()));
        }
    }

    async fn keeper(self, lane: Arc<Lane>) {
        loop {
            tokio::time::sleep(KEEP_EVERY).await;
            let refused = lane.local_refused.swap(0, Ordering::Relaxed);
            if refused == 0 {
                lane.keeping.store(false, Ordering::Relaxed);
                // A refusal counted after the swap, before the flag fell, has no keeper else.
                if lane.local_refused.load(Ordering::Relaxed) == 0
                    || lane.keeping.swap(true, Ordering::Relaxed)
                {
                    return;
                }
                continue;
            }
            if let Err(err) = self.vouch_again(&lane, refused).await {
                // The refusals stay uncounted (their count may have reached Redis); the
                // vouching lapses on its own, and purchases go to Redis again.
                tracing::debug!(error = %err, refused, "counting a sold-out sale's local refusals");
            }
        }
    }

    /// One keeper call: `refused` refusals answered alone counted, the known buyers vouched for
    /// again. When the sale is not sold out or its buyers changed, nothing is vouched for and
    /// the refusals are counted by one `INCRBY`.
    async fn vouch_again(&self, lane: &Arc<Lane>, refused: u64) -> Result<(), StoreError> {
        let known = lane.known();
        if let Some(known) = &known {
            let call = SoldOutBatch {
                keys: &lane.keys,
                limit: UserAttemptLimit {
                    limit: 0,
                    window_ms: 0,
                },
                buckets: lane.buckets.load(Ordering::Relaxed),
                known: Some(&known.fingerprint),
                group: usize::try_from(refused).unwrap_or(usize::MAX),
                entries: &[],
                vouch_ms: GATE_MS,
            };
            let sent = Instant::now();
            match self.eval_by(self.deadline(), call).await? {
                SoldOutReply::Refused {
                    group,
                    fingerprint,
                    vouched,
                    ..
                } => {
                    lane.vouched(known, sent, vouched, &fingerprint, group.as_ref());
                    return Ok(());
                }
                SoldOutReply::NotSoldOut => lane.found_stock(),
                SoldOutReply::Stale => lane.set_known(None),
            }
        } else {
            lane.set_local(None);
        }
        let key = lane.keys.refused();
        self.command(|client| {
            let key = key.clone();
            async move { client.incr_by::<i64, _>(key, refused as i64).await }
        })
        .await?;
        Ok(())
    }

    /// Fetches the buyers of a sale `lua/sold_out.lua` answered with `fingerprint`, in the
    /// background and one fetch at a time per lane, for [`Self::sift`]. Buyers written after
    /// the fingerprint was read change it, so the set is never trusted beyond it.
    fn fetch_buyers(&self, lane: &Arc<Lane>, fingerprint: Str) {
        let buckets = lane.buckets.load(Ordering::Relaxed);
        if buckets > MOST_KNOWN_BUCKETS || lane.fetching.swap(true, Ordering::Relaxed) {
            return;
        }
        let (store, lane) = (self.clone(), lane.clone());
        tokio::spawn(async move {
            match store.buyers(&lane.keys, buckets).await {
                Ok(users) => lane.set_known(Some(Arc::new(KnownBuyers { fingerprint, users }))),
                // Purchases go on as before; the next refused batch tries again.
                Err(err) => tracing::debug!(error = %err, "fetching a sold-out sale's buyers"),
            }
            lane.fetching.store(false, Ordering::Relaxed);
        });
    }

    /// The users holding a buyer record in a sale: `HKEYS` of every bucket, pipelined.
    async fn buyers(&self, keys: &SaleKeys, buckets: u32) -> Result<HashSet<Box<str>>, StoreError> {
        let mut users = HashSet::new();
        let mut first = 0;
        while first < buckets.max(1) {
            let last = (first + BUCKETS_PER_FETCH).min(buckets.max(1));
            let found: Vec<Vec<String>> = self
                .command(|client| async move {
                    let pipeline = client.pipeline();
                    for n in first..last {
                        let _: () = pipeline.hkeys(keys.buyer_bucket(n)).await?;
                    }
                    pipeline.all().await
                })
                .await?;
            users.extend(found.into_iter().flatten().map(String::into_boxed_str));
            first = last;
        }
        Ok(users)
    }

    /// One call of `lua/purchase.lua` for these purchases, within `REDIS_TIMEOUT_MS` in all: a
    /// NOSCRIPT reload, the replica wait and a call built again after the sale's
    /// `buyerBuckets` was found different included.
    async fn decide(
        &self,
        lane: &Lane,
        limit: UserAttemptLimit,
        entries: &[PurchaseEntry],
        deadline: Deadline,
    ) -> Result<Vec<Result<PurchaseOutcome, StoreError>>, StoreError> {
        let work = async {
            // The first call of a sale learns its buckets and whether it takes lean calls; a
            // sale replaced since may have other buckets. Three more are plenty (a sale is not
            // replaced twice in a round trip).
            for _ in 0..4 {
                let call = PurchaseBatch {
                    keys: &lane.keys,
                    sale_id: lane.sale_id.clone(),
                    limit,
                    waits: self.replica_wait.is_some(),
                    buckets: lane.buckets.load(Ordering::Relaxed),
                    lean: !lane.full.load(Ordering::Relaxed),
                    entries,
                };
                let reply = match self.replica_wait {
                    None => {
                        let client = self.client(deadline).await;
                        let reply = PurchaseBatch::script(&self.scripts)
                            .call(&client, deadline, || call.keys_and_args())
                            .await?;
                        PurchaseBatch::parse(reply)?
                    }
                    // Boxed: off the hot path, and its pipeline future is as large as the rest.
                    Some(wait) => Box::pin(self.purchase_and_wait(&call, wait, deadline)).await?,
                };
                match reply {
                    BatchReply::Decided(outcomes) => return Ok(outcomes),
                    BatchReply::Buckets(buckets) => lane.saw_buckets(buckets),
                    BatchReply::Full => lane.full.store(true, Ordering::Relaxed),
                }
            }
            Err(StoreError::Unexpected(
                "purchase.lua kept answering another buyerBuckets".into(),
            ))
        };
        Self::within(deadline, Box::pin(work)).await
    }

    /// The purchase script and `WAIT` in one pipeline on one connection, so `WAIT` covers the
    /// script's writes even when fred re-sends both after a reconnect (a replayed purchase
    /// writes again, see `lua/purchase.lua`). A `PURCHASED` that too few replicas acknowledged
    /// in time is "not now" (503): the buyer's retry with the same key settles it.
    async fn purchase_and_wait(
        &self,
        call: &PurchaseBatch<'_>,
        wait: ReplicaWait,
        deadline: Deadline,
    ) -> Result<BatchReply, StoreError> {
        let client = &self.client(deadline).await;
        let script = PurchaseBatch::script(&self.scripts);
        // WAIT has no key: in a cluster it must go to the node of the sale's slot.
        let slot = fred::util::redis_keyslot(call.keys.config().as_bytes());
        // Both commands go to the node of the sale's slot (WAIT has no key, and a custom
        // EVALSHA's first argument is the script's hash). Neither is re-sent after a lost
        // connection: a WAIT re-sent alone, on a new connection that wrote nothing, would
        // return at once and vouch for a write it never saw (seen in the failover test).
        // The buyer's retry (503) runs both again, and the replayed script writes again.
        // fred marks no pipeline as timed out, so one is never queued for a connection being
        // re-made either (fail fast): it could be written after its buyer was told 503.
        // The script not run because its slot is moving (the `WAIT` then vouched for nothing)
        // counts as the pipeline not run: both again, as a lone script call is sent again.
        let send = |options: Options| async move {
            let options = Options {
                cluster_hash: Some(ClusterHash::Custom(slot)),
                max_attempts: Some(1),
                fail_fast: true,
                ..options
            };
            let (keys, values) = call.keys_and_args();
            let pipeline = client.pipeline();
            let routed = pipeline.with_options(&options);
            let evalsha = script.evalsha_args(keys.inner(), values);
            let _: () = routed.custom(fred::cmd!("EVALSHA"), evalsha).await?;
            let _: () = routed
                .wait(i64::from(wait.replicas), wait.timeout_ms as i64)
                .await?;
            let replies = pipeline.try_all::<Value>().await;
            match replies.first() {
                Some(Err(err)) if slot_moving(err) => Err(err.clone()),
                _ => Ok(replies),
            }
        };
        let mut replies = send_while_slot_moves(deadline, send).await??;
        let no_script =
            matches!(replies.first(), Some(Err(err)) if err.details().starts_with("NOSCRIPT"));
        if no_script {
            crate::metrics::script_reload(script.name());
            script.load(client).await?;
            replies = send_while_slot_moves(deadline, send).await??;
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
        let reply = PurchaseBatch::parse(reply?)?;
        let acked = acked?.as_i64().unwrap_or(0);
        let BatchReply::Decided(outcomes) = reply else {
            return Ok(reply);
        };
        if acked >= i64::from(wait.replicas) {
            return Ok(BatchReply::Decided(outcomes));
        }
        let too_few = StoreError::Unavailable(fred::error::Error::new(
            fred::error::ErrorKind::Timeout,
            format!(
                "NOREPLICAS {acked} of {} replicas acknowledged the purchase in time",
                wait.replicas
            ),
        ));
        Ok(BatchReply::Decided(
            outcomes
                .into_iter()
                .map(|outcome| match outcome {
                    Ok(outcome) if outcome.is_success() => Err(too_few.clone()),
                    other => other,
                })
                .collect(),
        ))
    }
}

/// Answers each purchase of a batch with its outcome; a failed call fails each alike (unknown
/// outcome: 503).
fn answer_all(
    answers: Vec<Answer>,
    decided: Result<Vec<Result<PurchaseOutcome, StoreError>>, StoreError>,
) {
    let mut outcomes = decided.map(Vec::into_iter);
    for answer in answers {
        let outcome = match &mut outcomes {
            Ok(outcomes) => outcomes.next().unwrap_or_else(|| {
                Err(StoreError::Unexpected(
                    "a script answered fewer purchases than it was given".into(),
                ))
            }),
            Err(err) => Err(err.clone()),
        };
        // A request that gave up meanwhile has no one to answer.
        answer.send(outcome);
    }
}

/// Answers the purchases `lua/sold_out.lua` refused, and returns those it passed on.
fn answer_refused(
    entries: Vec<PurchaseEntry>,
    answers: Vec<Answer>,
    refusals: Vec<Option<Result<PurchaseOutcome, StoreError>>>,
) -> Vec<Waiting> {
    let mut refusals = refusals.into_iter();
    let mut passed = Vec::new();
    for (entry, answer) in entries.into_iter().zip(answers) {
        match refusals.next() {
            Some(Some(refusal)) => {
                answer.send(refusal);
            }
            Some(None) => passed.push(Waiting { entry, answer }),
            None => {
                answer.send(Err(StoreError::Unexpected(
                    "sold_out.lua answered fewer purchases than it was given".into(),
                )));
            }
        }
    }
    passed
}

/// A batch put back together, to wait for another script.
fn waiting(entries: Vec<PurchaseEntry>, answers: Vec<Answer>) -> Vec<Waiting> {
    entries
        .into_iter()
        .zip(answers)
        .map(|(entry, answer)| Waiting { entry, answer })
        .collect()
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
        let purchase = store.purchase(&sale, user, None, limit, "request", Ask::ONE);
        let size = std::mem::size_of_val(&purchase);
        assert!(size <= 2048, "a purchase's future is {size} bytes");
    }
}
