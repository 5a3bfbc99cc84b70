//! Checkout beyond the request path (README, Checkout): the sweeper that releases expired holds
//! in every instance, and Stripe's signed events ([`stripe`]).

pub mod stripe;

use crate::{domain::SaleId, store::Store};
use std::time::Duration;
use tokio::task::JoinHandle;

/// How often each instance sweeps: an expired hold is back in stock within about this, even
/// with no purchase traffic (purchases release expired holds of their sale too).
pub const SWEEP_EVERY: Duration = Duration::from_millis(500);

/// The most holds one sweep call releases. A release costs Redis about 26 µs
/// (`loadtest/bench/checkout.sh`), and Redis runs nothing else while a script runs: 100 keep
/// one call near 3 ms, so purchases never wait long behind a sweep.
const SWEEP_BATCH: u32 = 100;

/// The most calls per sale per round (2,000 holds a second per instance), so one sale with a
/// backlog cannot hold up the others; purchases release expired holds of their sale too.
const SWEEP_CALLS_PER_ROUND: u32 = 10;

/// Sweeps every sale with holds every [`SWEEP_EVERY`]. Instances sweeping the same sale at once
/// never release a hold twice (`lua/sweep.lua`). With no sale with holds, each round is one
/// `SMEMBERS` of an empty set.
pub fn spawn_sweeper(store: Store) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(SWEEP_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            sweep_round(&store).await;
        }
    })
}

async fn sweep_round(store: &Store) {
    let sales = match store.sales_with_holds().await {
        Ok(sales) => sales,
        Err(err) => {
            tracing::debug!(error = %err, "sweeper: cannot list the sales with holds");
            return;
        }
    };
    for id in sales {
        let Ok(sale) = SaleId::parse(&id) else {
            tracing::warn!(sale_id = %id, "sweeper: not a sale id; skipped");
            continue;
        };
        for _ in 0..SWEEP_CALLS_PER_ROUND {
            match store.sweep(&sale, SWEEP_BATCH).await {
                Ok(swept) => {
                    if swept.units > 0 {
                        crate::metrics::holds_expired(swept.units);
                        tracing::info!(sale_id = %sale, units = swept.units, "sweeper: expired holds released");
                    }
                    if swept.still_due == 0 {
                        break;
                    }
                }
                Err(err) => {
                    tracing::warn!(sale_id = %sale, error = %err, "sweeper: sweep failed; next round retries");
                    break;
                }
            }
        }
    }
}
