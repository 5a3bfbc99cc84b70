//! The `flashsale` binary: read the configuration, start logging, serve until a signal; or,
//! as `flashsale doctor`, check the Redis of `REDIS_URL` and exit.

use flashsale::{
    config::Settings,
    startup::Application,
    store::{doctor::Level, Store},
    telemetry,
};
use std::process::ExitCode;

// Every request allocates a few small buffers (JSON, headers, Redis frames) across threads;
// mimalloc's thread-local free lists serve those cheaper than glibc's malloc, which showed as
// about a tenth of the purchase path's CPU in profiles (README, Benchmarks).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// The HTTP workers are actix-web's own threads; this runtime carries only start-up, accept and
// the background checks. One thread for those measured faster than a work-stealing pool
// (fewer cross-thread wake-ups; README, Benchmarks).
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(err) => {
            // Logging is not set up yet (its format is part of the configuration): one plain line.
            eprintln!("flashsale: invalid configuration: {err}");
            return ExitCode::from(2);
        }
    };
    if std::env::args().nth(1).as_deref() == Some("doctor") {
        return doctor(&settings).await;
    }
    telemetry::init(settings.log_format);

    let application = match Application::build(settings).await {
        Ok(application) => application,
        Err(err) => {
            tracing::error!(error = %err, "start-up failed");
            eprintln!("flashsale: {err}");
            return ExitCode::FAILURE;
        }
    };
    if application.is_local_mode() {
        // The one line a person trying it locally needs; the port is the bound one (PORT=0 too).
        println!("flashsale ready at http://127.0.0.1:{}", application.port());
    }
    match application.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "server stopped with an error");
            ExitCode::FAILURE
        }
    }
}

/// `flashsale doctor`: a few lines on whether the Redis of `REDIS_URL` suits the service
/// (README, What production Redis needs); exit 1 when something blocks it.
async fn doctor(settings: &Settings) -> ExitCode {
    let Some(url) = &settings.redis.url else {
        eprintln!("flashsale doctor: REDIS_URL is unset (local mode starts its own redis-server)");
        return ExitCode::from(2);
    };
    println!("flashsale doctor: {url}");
    let store = Store::new(url, settings.redis.timeout, std::num::NonZeroUsize::MIN);
    store.connect();
    let report = store.doctor(url).await;
    for finding in &report {
        println!("{:<5} {}", finding.level.label(), finding.text);
    }
    let blockers = report.iter().filter(|f| f.level == Level::Blocker).count();
    let warnings = report.iter().filter(|f| f.level == Level::Warn).count();
    println!("{blockers} blocker(s), {warnings} warning(s)");
    if blockers == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
