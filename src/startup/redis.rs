//! Start-up's Redis steps: wait for it, move data of an earlier layout, create the configured
//! sale when it is missing.

use super::StartupError;
use crate::{
    domain::{rfc3339_ms, SaleId, SaleSeed},
    store::{admin::SaleStats, RedisUrl, Store, StoreError},
};
use std::time::{Duration, Instant};

/// Connects and loads the scripts, retrying with back-off for up to `within`: a Redis that is
/// still starting (a deploy brings both up at once) or failing over is waited for, and one that
/// stays away ends start-up with one clear line.
pub(super) async fn wait_for_redis(
    store: &Store,
    url: &RedisUrl,
    within: Duration,
) -> Result<(), StartupError> {
    let started = Instant::now();
    let mut backoff = Duration::from_millis(100);
    store.connect();
    let mut first = true;
    loop {
        // The first try gets its whole REDIS_TIMEOUT_MS; later ones only what is left.
        let left = within.saturating_sub(started.elapsed());
        let attempt = store.load_scripts();
        let result = if first {
            attempt.await
        } else {
            tokio::time::timeout(left, attempt)
                .await
                .unwrap_or_else(|_| {
                    Err(StoreError::timed_out(
                        "no answer before REDIS_STARTUP_TIMEOUT_MS",
                    ))
                })
        };
        first = false;
        let error = match result {
            Ok(()) => return Ok(()),
            Err(err) => err,
        };
        // A certificate the client does not trust stays untrusted: no use waiting for it. fred
        // hands the TLS failure over as text (it formats rustls's error into its own), so the
        // text is all there is to match: `InvalidCertificate(…)` is rustls's variant name.
        let cause = store.last_connection_error();
        let hopeless = cause
            .as_deref()
            .is_some_and(|c| c.contains("InvalidCertificate"));
        if hopeless || started.elapsed() + backoff > within {
            return Err(StartupError::RedisUnreachable {
                url: url.to_string(),
                waited_secs: started.elapsed().as_secs(),
                source: error,
                cause,
            });
        }
        tracing::warn!(redis = %url, error = %error, retry_in_ms = backoff.as_millis() as u64, "Redis not reachable yet; retrying");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// Moves the sales of an earlier layout (only when the stored layout version says so).
pub(super) async fn migrate(store: &Store, sale: &SaleId) -> Result<(), StoreError> {
    for moved in store.migrate(sale).await? {
        tracing::info!(sale_id = %moved, "sale moved to this build's data layout (sold count in its config, buyers in buckets)");
    }
    Ok(())
}

/// Creates the configured sale when it is missing; a sale that exists is left as it is.
pub(super) async fn seed_sale(
    store: &Store,
    sale: &SaleId,
    seed: &SaleSeed,
    window_given: bool,
) -> Result<(), StoreError> {
    if store.create_sale_if_missing(sale, seed).await? {
        tracing::info!(sale_id = %sale, total_stock = seed.total_stock, start = %seed.window.start(), end = %seed.window.end(), "sale created");
    } else {
        tracing::info!(sale_id = %sale, "sale exists already; left as it is");
        if let Some(stored) = store.sale_stats(sale).await? {
            warn_on_differences(sale, seed, &stored, window_given);
        }
    }
    store.index_sale(sale).await
}

/// A changed `SALE_*` never touches a live sale; say so, naming each difference.
fn warn_on_differences(sale: &SaleId, seed: &SaleSeed, stored: &SaleStats, window_given: bool) {
    let (start_ms, end_ms) = (
        seed.window.start().timestamp_millis(),
        seed.window.end().timestamp_millis(),
    );
    let differences = [
        (
            "SALE_PRODUCT_NAME",
            seed.product_name.as_str() != stored.product_name,
            stored.product_name.clone(),
        ),
        (
            "SALE_TOTAL_STOCK",
            seed.total_stock as i64 != stored.total_stock,
            stored.total_stock.to_string(),
        ),
        (
            "SALE_START",
            window_given && start_ms != stored.start_ms,
            rfc3339_ms(stored.start_ms),
        ),
        (
            "SALE_END",
            window_given && end_ms != stored.end_ms,
            rfc3339_ms(stored.end_ms),
        ),
    ];
    for (variable, _, stored_value) in differences.iter().filter(|(_, differs, _)| *differs) {
        tracing::warn!(
            sale_id = %sale,
            variable,
            stored = %stored_value,
            "{variable} differs from the stored sale, which is left as it is; change a live sale \
             with PATCH /api/admin/sales/{sale} (or PUT with ?force=true to replace it)"
        );
    }
}
