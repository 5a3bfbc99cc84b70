//! The configuration read from variables: defaults, every invalid value, each subsystem's rules.

use super::*;
use chrono::Duration as ChronoDuration;

fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    Settings::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

#[test]
fn the_variable_list_is_the_struct_read() {
    let names = variables();
    for name in [
        "HOST",
        "REDIS_URL",
        "SALE_TOTAL_STOCK",
        "LOG_FORMAT",
        "RUST_LOG",
    ] {
        assert!(names.iter().any(|n| n == name), "{name}: {names:?}");
    }
    assert_eq!(names.len(), 56, "{names:?}");
}

#[test]
fn a_waiting_room_needs_its_secret_and_its_rules() {
    let secret = ("WAITING_ROOM_SECRET", "0123456789abcdef0123456789abcdef");
    let off = settings(&[("SALE_TOTAL_STOCK", "10")]).unwrap();
    assert_eq!(off.sale_seed.unwrap().waiting_room, None);
    assert!(off.room_secret.is_none());
    let on = settings(&[
        ("SALE_TOTAL_STOCK", "10"),
        ("SALE_START", "2030-01-01T12:00:00Z"),
        ("SALE_WAITING_ROOM_ADMIT_PER_SECOND", "50"),
        secret,
    ])
    .unwrap();
    let room = on.sale_seed.unwrap().waiting_room.unwrap();
    assert_eq!(room.admit_per_second(), 50);
    assert_eq!(room.admission_ms(), 120_000);
    let start = DateTime::parse_from_rfc3339("2030-01-01T12:00:00Z")
        .unwrap()
        .timestamp_millis();
    assert_eq!(room.opens_ms(), start - 15 * 60 * 1000);
    // The room without the secret names the secret; a short secret is refused.
    let missing = settings(&[("SALE_WAITING_ROOM_ADMIT_PER_SECOND", "50")]).unwrap_err();
    assert!(
        missing.to_string().starts_with("WAITING_ROOM_SECRET:"),
        "{missing}"
    );
    let short = settings(&[("WAITING_ROOM_SECRET", "too-short")]).unwrap_err();
    assert!(
        short.to_string().starts_with("WAITING_ROOM_SECRET:"),
        "{short}"
    );
    for (name, value) in [
        ("SALE_WAITING_ROOM_ADMIT_PER_SECOND", "100001"),
        ("SALE_WAITING_ROOM_ADMISSION_SECONDS", "9"),
        ("SALE_WAITING_ROOM_OPENS_AT", "yesterday"),
    ] {
        let mut vars = vec![secret, (name, value)];
        if name != "SALE_WAITING_ROOM_ADMIT_PER_SECOND" {
            vars.push(("SALE_WAITING_ROOM_ADMIT_PER_SECOND", "5"));
        }
        let err = settings(&vars).unwrap_err();
        assert!(err.to_string().starts_with(name), "{name}={value}: {err}");
    }
    let late = settings(&[
        ("SALE_TOTAL_STOCK", "10"),
        ("SALE_START", "2030-01-01T12:00:00Z"),
        ("SALE_WAITING_ROOM_ADMIT_PER_SECOND", "5"),
        ("SALE_WAITING_ROOM_OPENS_AT", "2030-01-01T12:00:01Z"),
        secret,
    ])
    .unwrap_err();
    assert!(
        late.to_string().starts_with("SALE_WAITING_ROOM_OPENS_AT"),
        "{late}"
    );
}

#[test]
fn checkout_rules_and_the_stripe_secret_are_checked() {
    let plain = settings(&[]).unwrap();
    assert_eq!(plain.sale_checkout, CheckoutRules::PLAIN);
    assert!(plain.stripe_secret.is_none());
    let held = settings(&[
        ("SALE_TOTAL_STOCK", "10"),
        ("SALE_HOLD_SECONDS", "300"),
        ("SALE_MAX_PER_BUYER", "3"),
    ])
    .unwrap();
    let rules = held.sale_seed.unwrap().checkout;
    assert_eq!((rules.hold_ms(), rules.units_per_buyer()), (300_000, 3));
    for (name, value) in [
        ("SALE_HOLD_SECONDS", "29"),
        ("SALE_HOLD_SECONDS", "86401"),
        ("SALE_MAX_PER_BUYER", "0"),
        ("SALE_MAX_PER_BUYER", "101"),
        ("STRIPE_WEBHOOK_SECRET", "whsec_short"),
    ] {
        let err = settings(&[(name, value)]).unwrap_err().to_string();
        assert!(err.starts_with(name), "{name}={value}: {err}");
    }
    let stripe = settings(&[("STRIPE_WEBHOOK_SECRET", "whsec_0123456789abcdef")]).unwrap();
    let secret = stripe.stripe_secret.unwrap();
    assert_eq!(secret.expose(), "whsec_0123456789abcdef");
    assert!(!format!("{secret:?}").contains("whsec"), "never shown");
}

#[test]
fn webhooks_need_a_url_a_long_secret_and_a_claim_longer_than_two_timeouts() {
    let redis = ("REDIS_URL", "redis://127.0.0.1:6379");
    let url = ("ORDER_WEBHOOK_URL", "https://shop.example.com/hooks/orders");
    let secret = ("ORDER_WEBHOOK_SECRET", "whsec-0123456789abcdef");
    let on = settings(&[redis, url, secret]).unwrap().webhook.unwrap();
    assert_eq!(on.url.as_str(), "https://shop.example.com/hooks/orders");
    assert_eq!(
        (on.timeout, on.max_attempts, on.claim_idle, on.concurrency),
        (Duration::from_secs(5), 10, Duration::from_secs(60), 16)
    );
    assert!(
        !format!("{on:?}").contains("whsec"),
        "the secret is never shown"
    );
    let with_credentials = settings(&[
        redis,
        secret,
        (
            "ORDER_WEBHOOK_URL",
            "https://hooks:hunter2@shop.example.com/orders?token=s3cret&v=2",
        ),
    ])
    .unwrap()
    .webhook
    .unwrap();
    let shown = format!("{with_credentials:?} {}", with_credentials.url_for_logs());
    assert!(
        !shown.contains("hunter2") && !shown.contains("s3cret"),
        "{shown}"
    );
    assert!(shown.contains("https://hooks:***@shop.example.com/orders?token=***&v=***"));
    assert!(settings(&[redis]).unwrap().webhook.is_none());

    for (vars, message) in [
        (vec![url], "ORDER_WEBHOOK_SECRET: must be set"),
        (
            vec![secret],
            "ORDER_WEBHOOK_SECRET: is set but ORDER_WEBHOOK_URL is not",
        ),
        (
            vec![("ORDER_WEBHOOK_URL", "ftp://x"), secret],
            "ORDER_WEBHOOK_URL: not an http",
        ),
        (
            vec![url, ("ORDER_WEBHOOK_SECRET", "short")],
            "ORDER_WEBHOOK_SECRET: must be at least 16",
        ),
        (
            vec![
                url,
                secret,
                ("ORDER_WEBHOOK_TIMEOUT_MS", "5000"),
                ("ORDER_WEBHOOK_CLAIM_IDLE_MS", "9000"),
            ],
            "ORDER_WEBHOOK_CLAIM_IDLE_MS: must be 10000 to",
        ),
        (
            vec![url, secret, ("ORDER_WEBHOOK_MAX_ATTEMPTS", "0")],
            "ORDER_WEBHOOK_MAX_ATTEMPTS: must be 1 to 100",
        ),
    ] {
        let mut vars = vars;
        vars.push(redis);
        let err = settings(&vars).unwrap_err().to_string();
        assert!(err.starts_with(message), "{err}");
    }
}

#[test]
fn defaults_match_the_spec() {
    let s = settings(&[("REDIS_URL", "redis://127.0.0.1:6379")]).unwrap();
    assert_eq!(s.port, 8080);
    assert_eq!(s.host.to_string(), "::");
    assert_eq!(s.redis.pool_size.get(), 4);
    assert_eq!(s.redis.timeout, Duration::from_millis(2000));
    assert_eq!(s.sale_id.as_str(), "default");
    assert!(s.sale_seed.is_none());
    let limit = s.ip_rate_limit.unwrap();
    assert_eq!((limit.per_second.get(), limit.burst.get()), (50, 100));
    assert_eq!(
        s.user_attempts,
        UserAttemptLimit {
            limit: 10,
            window_ms: 10_000
        }
    );
    assert_eq!(s.cors, CorsOrigins::None);
    assert_eq!(s.log_format, LogFormat::Json);
    assert!(s.client_ip.header().is_none());
}

#[test]
fn local_mode_logs_for_people_unless_told_otherwise() {
    assert!(settings(&[]).unwrap().redis.url.is_none());
    assert_eq!(settings(&[]).unwrap().log_format, LogFormat::Pretty);
    assert_eq!(
        settings(&[("LOG_FORMAT", "json")]).unwrap().log_format,
        LogFormat::Json
    );
}

#[test]
fn every_invalid_value_names_its_variable() {
    for (name, value) in [
        ("PORT", "eighty"),
        ("PORT", "70000"),
        ("HOST", "not a host"),
        ("REDIS_URL", "http://localhost"),
        ("REDIS_URL", "redis://127.0.0.1:abc"),
        ("REDIS_POOL_SIZE", "0"),
        ("REDIS_TIMEOUT_MS", "5"),
        ("SALE_ID", "bad{id}"),
        ("SALE_TOTAL_STOCK", "-1"),
        ("SALE_TOTAL_STOCK", "1000000001"),
        ("RATE_LIMIT_PER_SECOND", "x"),
        ("USER_ATTEMPT_LIMIT", "1.5"),
        ("CLIENT_IP_HEADER", "bad header"),
        ("CORS_ALLOWED_ORIGINS", "shop.example.com"),
        ("LOG_FORMAT", "xml"),
        ("ADMIN_TOKEN", "short"),
        ("AUTH_JWT_SECRET", "short"),
        ("AUTH_JWT_PUBLIC_KEY", "not a key"),
        ("AUTH_JWKS_URL", "http://idp.example.com/jwks.json"),
        ("AUTH_JWT_ISSUER", "https://idp.example.com/"),
        ("USER_ID_CASE", "upper"),
    ] {
        let err = settings(&[(name, value)]).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{name}: ")),
            "{name}={value}: {err}"
        );
        assert!(!err.contains('\n'), "one line: {err}");
    }
}

#[test]
fn localhost_is_a_host() {
    let s = settings(&[("HOST", "localhost")]).unwrap();
    assert!(s.host.is_loopback(), "{}", s.host);
}

#[test]
fn sale_seed_defaults_to_one_hour_from_now() {
    let now = Utc::now();
    let vars = Vars {
        sale_total_stock: Some(5),
        ..Vars::default()
    };
    let seed = Settings::validate(vars, now).unwrap().sale_seed.unwrap();
    assert_eq!(seed.total_stock, 5);
    assert_eq!(seed.window.start(), now);
    assert_eq!(seed.window.end(), now + ChronoDuration::hours(1));
}

#[test]
fn sale_end_must_follow_start() {
    let err = settings(&[
        ("SALE_TOTAL_STOCK", "5"),
        ("SALE_START", "2030-01-01T10:00:00Z"),
        ("SALE_END", "2030-01-01T09:00:00Z"),
    ])
    .unwrap_err();
    assert!(err.to_string().starts_with("SALE_END"));
}

#[test]
fn sale_fields_without_stock_are_refused() {
    let err = settings(&[("SALE_START", "2030-01-01T10:00:00Z")]).unwrap_err();
    assert!(err.to_string().starts_with("SALE_START"));
}

#[test]
fn secrets_never_show_in_debug() {
    let s = settings(&[
        ("REDIS_URL", "redis://:hunter2@localhost:6379"),
        ("ADMIN_TOKEN", "0123456789abcdef"),
    ])
    .unwrap();
    let debug = format!("{s:?}");
    assert!(
        !debug.contains("hunter2") && !debug.contains("0123456789abcdef"),
        "{debug}"
    );
}

#[test]
fn zero_turns_the_limits_off() {
    let s = settings(&[("RATE_LIMIT_PER_SECOND", "0"), ("USER_ATTEMPT_LIMIT", "0")]).unwrap();
    assert!(s.ip_rate_limit.is_none());
    assert_eq!(s.user_attempts.limit, 0);
}

#[test]
fn cors_origins_parse() {
    assert_eq!(
        settings(&[("CORS_ALLOWED_ORIGINS", "*")]).unwrap().cors,
        CorsOrigins::Any
    );
    assert_eq!(
        settings(&[(
            "CORS_ALLOWED_ORIGINS",
            "https://a.example, http://localhost:3000"
        )])
        .unwrap()
        .cors,
        CorsOrigins::List(vec![
            "https://a.example".into(),
            "http://localhost:3000".into()
        ])
    );
}

#[test]
fn empty_variables_count_as_unset() {
    let s = settings(&[("REDIS_URL", ""), ("PORT", " ")]).unwrap();
    assert!(s.redis.url.is_none());
    assert_eq!(s.port, 8080);
}

#[test]
fn event_streams_stay_below_the_connection_cap() {
    let s = settings(&[]).unwrap();
    assert_eq!(
        (
            s.max_connections,
            s.sse_max_streams,
            s.sse_max_streams_per_client
        ),
        (10_000, 8_000, 32)
    );
    let small = settings(&[("MAX_CONNECTIONS", "8")]).unwrap();
    assert_eq!(small.sse_max_streams, 6);
    for (connections, streams) in [("8", "8"), ("8", "9"), ("10000", "10000")] {
        let err = settings(&[
            ("MAX_CONNECTIONS", connections),
            ("SSE_MAX_STREAMS", streams),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("SSE_MAX_STREAMS: must be below MAX_CONNECTIONS"),
            "{err}"
        );
    }
}

#[test]
fn our_tokens_are_long_and_failed_ones_are_limited() {
    let err = settings(&[("METRICS_TOKEN", "a")]).unwrap_err().to_string();
    assert!(
        err.starts_with("METRICS_TOKEN: must be at least 16 characters"),
        "{err}"
    );
    let s = settings(&[]).unwrap();
    assert_eq!(s.token_failures_per_minute.map(|n| n.get()), Some(10));
    let off = settings(&[("TOKEN_FAILURES_PER_MINUTE", "0")]).unwrap();
    assert!(off.token_failures_per_minute.is_none());
    for (name, value) in [("CLIENT_IP_HOPS", "0"), ("CLIENT_IP_HOPS", "17")] {
        let err = settings(&[(name, value)]).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{name}: ")), "{err}");
    }
}

#[test]
fn a_metrics_port_is_a_port_other_than_port() {
    assert_eq!(settings(&[]).unwrap().metrics_port, None);
    assert_eq!(
        settings(&[("METRICS_PORT", "9091")]).unwrap().metrics_port,
        Some(9091)
    );
    for bad in ["0", "8080", "70000", "nine"] {
        let err = settings(&[("METRICS_PORT", bad)]).unwrap_err().to_string();
        assert!(err.starts_with("METRICS_PORT"), "{bad}: {err}");
    }
}

#[test]
fn local_refusals_are_on_unless_switched_off_and_take_only_a_boolean() {
    assert!(settings(&[]).unwrap().purchase_local_refusals);
    let off = settings(&[("PURCHASE_LOCAL_REFUSALS", "false")]).unwrap();
    assert!(!off.purchase_local_refusals);
    let err = settings(&[("PURCHASE_LOCAL_REFUSALS", "maybe")])
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("PURCHASE_LOCAL_REFUSALS"), "{err}");
}
