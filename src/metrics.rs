//! Prometheus metrics: the recorder (the `metrics` crate with its Prometheus exporter, rendered
//! at `GET /metrics`) and one function per thing counted, so call sites name what happened and
//! never a metric string.
//!
//! Labels are bounded: routes are match patterns (`/api/sales/{saleId}/purchase`), never raw
//! paths, and a sale id is a label only for sales that exist.
//!
//! The per-request series keep their handles in a cache of each thread (HTTP workers are
//! threads): after the first request of a kind, counting is an atomic add, with no lock and no
//! lookup shared by all requests. The caches hash with foldhash: their keys are routes, sales
//! and codes the service names, and SipHash cost about 1,000 instructions per request.

use actix_web::http::Method;
use foldhash::HashMap;
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::{cell::RefCell, sync::OnceLock, time::Duration};

/// Series by route pattern, then by method label and status.
type RequestSeries = HashMap<String, HashMap<(&'static str, u16), (Counter, Histogram)>>;

/// A method as a label: the standard ones by name, any other token (a client may send any
/// token up to the head limit) as `OTHER`, so clients cannot grow the series, the per-thread
/// cache or a log line.
pub fn method_label(method: &Method) -> &'static str {
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    KNOWN
        .iter()
        .find(|known| *known == method)
        .map_or("OTHER", |known| known.as_str())
}

thread_local! {
    static REQUESTS: RefCell<RequestSeries> = RefCell::new(HashMap::default());
    /// Counters by sale, then by code.
    static PURCHASES: RefCell<HashMap<String, HashMap<&'static str, Counter>>> =
        RefCell::new(HashMap::default());
    /// Admissions used, by sale.
    static ADMISSIONS_USED: RefCell<HashMap<String, Counter>> = RefCell::new(HashMap::default());
    /// Script calls and the purchases they decided, by script.
    static BATCHES: RefCell<HashMap<&'static str, (Counter, Counter)>> =
        RefCell::new(HashMap::default());
}

/// The series of `key` in a thread's cache, made by `make` the first time. Looked up by `&str`
/// first: once a series exists, nothing is allocated.
fn cached<'a, V>(
    series: &'a mut HashMap<String, V>,
    key: &str,
    make: impl FnOnce() -> V,
) -> Option<&'a mut V> {
    if !series.contains_key(key) {
        series.insert(key.to_owned(), make());
    }
    series.get_mut(key)
}

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder once (tests build many apps in one process) and returns
/// its handle; `None` if another recorder was installed first.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ];
            PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("flashsale_http_request_duration_seconds".to_owned()),
                    &buckets,
                )
                .ok()?
                .install_recorder()
                .ok()
                .inspect(|handle| run_upkeep(handle.clone()))
        })
        .clone()
}

/// How often the recorder's histograms are drained without a scrape.
const UPKEEP_EVERY: Duration = Duration::from_secs(1);

/// Drains the recorder's histograms every `UPKEEP_EVERY` on a thread of its own. The exporter
/// keeps every timing recorded until a scrape or an upkeep folds it into the buckets, and
/// `install_recorder` leaves upkeep to the caller: without it an instance nobody scrapes grows
/// by about 20 bytes a request for ever (1.2 MiB a second at 64,000 purchases a second, README
/// Benchmarks: memory over a minute). A thread rather than a task: the recorder is the
/// process's, installed once, and outlives any one runtime (tests build many apps).
fn run_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".to_owned())
        .spawn(move || loop {
            std::thread::sleep(UPKEEP_EVERY);
            handle.run_upkeep();
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "metrics upkeep not started: timings accumulate until /metrics is scraped");
    }
}

/// One HTTP answer: counted by route, method and status, timed by route.
pub fn http_request(route: &str, method: &Method, status: u16, took: Duration) {
    REQUESTS.with_borrow_mut(|series| {
        let Some(by_method) = cached(series, route, HashMap::default) else {
            return;
        };
        let (count, time) = by_method
            .entry((method_label(method), status))
            .or_insert_with(|| {
                (
                    metrics::counter!(
                        "flashsale_http_requests_total",
                        "route" => route.to_owned(), "method" => method_label(method),
                        "status" => status.to_string()
                    ),
                    metrics::histogram!(
                        "flashsale_http_request_duration_seconds", "route" => route.to_owned()
                    ),
                )
            });
        count.increment(1);
        time.record(took.as_secs_f64());
    });
}

/// One purchase decided by the script.
pub fn purchase(sale: &str, code: &'static str) {
    let sale = if code == "SALE_NOT_FOUND" { "" } else { sale };
    PURCHASES.with_borrow_mut(|series| {
        if let Some(by_code) = cached(series, sale, HashMap::default) {
            by_code
                .entry(code)
                .or_insert_with(|| {
                    metrics::counter!(
                        "flashsale_purchases_total", "sale" => sale.to_owned(), "code" => code
                    )
                })
                .increment(1);
        }
    });
}

/// A Redis call that failed: `unavailable` (timeouts, "not now") or `unexpected`.
pub fn redis_error(kind: &'static str) {
    metrics::counter!("flashsale_redis_errors_total", "kind" => kind).increment(1);
}

/// One call of a purchase script (`purchase`, or `sold_out` once the sale is sold out) for
/// `purchases` purchases (batching on): the mean batch is
/// `flashsale_purchase_batched_total / flashsale_purchase_batches_total`.
pub fn purchase_batch(script: &'static str, purchases: usize) {
    BATCHES.with_borrow_mut(|series| {
        let (calls, decided) = series.entry(script).or_insert_with(|| {
            (
                metrics::counter!("flashsale_purchase_batches_total", "script" => script),
                metrics::counter!("flashsale_purchase_batched_total", "script" => script),
            )
        });
        calls.increment(1);
        decided.increment(purchases as u64);
    });
}

/// A script loaded again after `NOSCRIPT`.
pub fn script_reload(script: &'static str) {
    metrics::counter!("flashsale_script_reloads_total", "script" => script).increment(1);
}

/// A sale's remaining stock, as the status cache last read it.
pub fn remaining_stock(sale: &str, remaining: i64) {
    metrics::gauge!("flashsale_remaining_stock", "sale" => sale.to_owned()).set(remaining as f64);
}

/// A request turned away by a rate limit: `ip` (per instance) or `user` (in the script).
pub fn rate_limited(kind: &'static str) {
    metrics::counter!("flashsale_rate_limited_total", "kind" => kind).increment(1);
}

/// An admin request with a missing or wrong token.
pub fn admin_refused() {
    metrics::counter!("flashsale_admin_unauthorized_total").increment(1);
}

/// One attempt to POST an order to the webhook: `ok`, `status` (not 2xx), `timeout`, `error`.
pub fn webhook_attempt(result: &'static str) {
    metrics::counter!("flashsale_webhook_attempts_total", "result" => result).increment(1);
}

/// An order's delivery ended: `delivered` (2xx) or `dead` (moved to the dead-letter stream).
pub fn webhook_delivery(result: &'static str) {
    metrics::counter!("flashsale_webhook_deliveries_total", "result" => result).increment(1);
}

/// Orders not yet delivered, over every sale, and the age of the oldest one.
pub fn webhook_backlog(undelivered: u64, oldest_age: Duration) {
    metrics::gauge!("flashsale_webhook_undelivered_orders").set(undelivered as f64);
    metrics::gauge!("flashsale_webhook_lag_seconds").set(oldest_age.as_secs_f64());
}

/// A record in Redis that this build does not write (README, Metrics): never read as zeros.
pub fn bad_data(record: &'static str) {
    metrics::counter!("flashsale_redis_bad_data_total", "record" => record).increment(1);
}

/// Units whose hold expired and went back to stock by the sweeper (purchases release some too).
pub fn holds_expired(units: i64) {
    metrics::counter!("flashsale_holds_expired_units_total").increment(units.max(0) as u64);
}

/// A join answered by the waiting room (a rejoin counts again: it is a request like any other).
pub fn queue_join(sale: &str, state: &'static str) {
    metrics::counter!("flashsale_queue_joins_total", "sale" => sale.to_owned(), "state" => state)
        .increment(1);
}

/// A purchase that went through with an admission.
pub fn queue_admission_used(sale: &str) {
    ADMISSIONS_USED.with_borrow_mut(|series| {
        let counter = cached(series, sale, || {
            metrics::counter!("flashsale_queue_admissions_used_total", "sale" => sale.to_owned())
        });
        if let Some(counter) = counter {
            counter.increment(1);
        }
    });
}

/// A room's counters as the status cache last read them: who joined, who has been let in.
pub fn queue_counts(sale: &str, queued: i64, admitted: i64) {
    metrics::gauge!("flashsale_queue_joined", "sale" => sale.to_owned()).set(queued as f64);
    metrics::gauge!("flashsale_queue_admitted", "sale" => sale.to_owned()).set(admitted as f64);
    metrics::gauge!("flashsale_queue_waiting", "sale" => sale.to_owned())
        .set((queued - admitted).max(0) as f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names of this process's threads, as Linux lists them.
    fn thread_names() -> Vec<String> {
        std::fs::read_dir("/proc/self/task")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok())
            .map(|name| name.trim().to_owned())
            .collect()
    }

    #[test]
    fn installing_the_recorder_starts_its_upkeep() {
        let handle = install();

        // A new thread carries its creator's name until it has set its own.
        let mut names = thread_names();
        for _ in 0..100 {
            if names.iter().any(|name| name == "metrics-upkeep") {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
            names = thread_names();
        }
        assert!(handle.is_some(), "the recorder was installed");
        assert!(
            names.iter().any(|name| name == "metrics-upkeep"),
            "threads: {names:?}"
        );
    }
}
