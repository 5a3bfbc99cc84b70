//! The `flashsale` binary: read the configuration, start logging, serve until a signal; or one
//! of the tools: `flashsale doctor` checks the Redis of `REDIS_URL`, `flashsale token USER` mints
//! a development bearer token, `flashsale openapi` prints the OpenAPI document.

use flashsale::{
    config::Settings,
    domain::UserId,
    routes::openapi::document_json,
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
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("openapi") {
        // The same document whatever the configuration, so no settings are read.
        print!("{}", document_json());
        return ExitCode::SUCCESS;
    }
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(err) => {
            // Logging is not set up yet (its format is part of the configuration): one plain line.
            eprintln!("flashsale: invalid configuration: {err}");
            return ExitCode::from(2);
        }
    };
    match args.first().map(String::as_str) {
        Some("doctor") => return doctor(&settings).await,
        Some("token") => return token(&settings, args.get(1)),
        Some(other) if !other.is_empty() => {
            eprintln!("flashsale: unknown command {other:?} (doctor, token USER, openapi)");
            return ExitCode::from(2);
        }
        _ => {}
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

/// `flashsale token USER`: a bearer token for `USER` that this configuration's
/// `AUTH_JWT_SECRET` accepts for an hour (README, Trusted buyers), for trying a storefront.
fn token(settings: &Settings, user: Option<&String>) -> ExitCode {
    let Some(auth) = &settings.auth else {
        eprintln!(
            "flashsale token: set AUTH_JWT_SECRET (Trusted buyers is off, so no token is needed)"
        );
        return ExitCode::from(2);
    };
    let user = match user.cloned().map(UserId::parse) {
        Some(Ok(user)) => user,
        Some(Err(problem)) => {
            eprintln!("flashsale token: USER: {problem}");
            return ExitCode::from(2);
        }
        None => {
            eprintln!("usage: flashsale token USER");
            return ExitCode::from(2);
        }
    };
    match auth.dev_token(&user, std::time::Duration::from_secs(3600)) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(problem) => {
            eprintln!("flashsale token: {problem}");
            ExitCode::from(2)
        }
    }
}
