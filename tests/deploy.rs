//! The deployment files agree with the service: Dockerfile, fly.toml and render.yaml are parsed
//! and checked against the configuration the binary really reads, and the binary built with
//! the Dockerfile's flags serves `/health/ready` with the Dockerfile's and fly.toml's settings.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use flashsale::{
    config::{variables, Settings},
    startup::SHUTDOWN_GRACE,
    store::local_server::{free_port, LocalRedisServer},
};
use std::{
    collections::BTreeMap,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

const READY_PATH: &str = "/health/ready";
/// What the platforms check: liveness, so a Redis blip never takes every instance out at once.
const PLATFORM_CHECK_PATH: &str = "/health/live";

fn read(file: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap()
}

/// The Dockerfile's stages, each as its `FROM` line and its instructions (continuations joined).
fn dockerfile_stages() -> Vec<Vec<String>> {
    let joined = read("Dockerfile").replace("\\\n", " ");
    let mut stages: Vec<Vec<String>> = Vec::new();
    for line in joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        if line.starts_with("FROM ") {
            stages.push(Vec::new());
        }
        if let Some(stage) = stages.last_mut() {
            stage.push(line.to_owned());
        }
    }
    stages
}

/// `ENV A=1 B=2` lines of the runtime (last) stage.
fn dockerfile_env() -> BTreeMap<String, String> {
    let runtime = dockerfile_stages().pop().unwrap();
    runtime
        .iter()
        .filter_map(|line| line.strip_prefix("ENV "))
        .flat_map(|pairs| {
            pairs
                .split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .map(|pair| {
            let (key, value) = pair.split_once('=').expect("ENV KEY=VALUE");
            (key.to_owned(), value.trim_matches('"').to_owned())
        })
        .collect()
}

/// The arguments of the builder stage's `cargo build`.
fn dockerfile_cargo_build_args() -> Vec<String> {
    let stages = dockerfile_stages();
    let line = stages
        .iter()
        .flatten()
        .find_map(|line| line.strip_prefix("RUN cargo build "))
        .expect("a RUN cargo build line");
    line.split_whitespace().map(str::to_owned).collect()
}

fn fly() -> toml::Value {
    read("fly.toml").parse().unwrap()
}

fn fly_env() -> BTreeMap<String, String> {
    fly()["env"]
        .as_table()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str().expect("fly [env] values are strings").to_owned(),
            )
        })
        .collect()
}

fn render() -> serde_yaml_ng::Value {
    serde_yaml_ng::from_str(&read("render.yaml")).unwrap()
}

fn render_service(kind: &str) -> serde_yaml_ng::Value {
    render()["services"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|service| service["type"] == kind)
        .unwrap_or_else(|| panic!("render.yaml has a {kind} service"))
        .clone()
}

fn assert_known(source: &str, names: impl IntoIterator<Item = String>) {
    for name in names {
        assert!(
            variables().contains(&name),
            "{source} sets {name}, which flashsale does not read"
        );
    }
}

fn assert_valid_settings(source: &str, mut env: BTreeMap<String, String>) {
    env.entry("REDIS_URL".into())
        .or_insert("redis://redis.internal:6379".into());
    env.entry("ADMIN_TOKEN".into())
        .or_insert("a-generated-secret-of-some-length".into());
    if let Err(err) = Settings::from_vars(env) {
        panic!("{source}'s environment does not validate: {err}");
    }
}

#[test]
fn the_dockerfile_is_multi_stage_cached_slim_and_unprivileged() {
    let stages = dockerfile_stages();
    let all = stages.concat().join("\n");
    assert!(stages.len() >= 3, "multi-stage");
    assert!(
        all.contains("cargo chef prepare") && all.contains("cargo chef cook"),
        "dependency caching"
    );
    let runtime = stages.last().unwrap().join("\n");
    assert!(
        runtime.starts_with("FROM debian:bookworm-slim"),
        "{runtime}"
    );
    assert!(runtime.contains("EXPOSE 8080"));
    let user = runtime
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER line");
    assert!(
        !user.starts_with("root") && !user.starts_with('0'),
        "non-root: {user}"
    );
    let copies: Vec<_> = runtime.lines().filter(|l| l.starts_with("COPY")).collect();
    assert_eq!(
        copies,
        ["COPY --from=builder /app/target/release/flashsale /usr/local/bin/flashsale"]
    );
    let env = dockerfile_env();
    assert_eq!(env["PORT"], "8080");
    assert_known("Dockerfile", env.keys().cloned());
    assert_valid_settings("Dockerfile", env);
    assert!(dockerfile_cargo_build_args().contains(&"--locked".to_owned()));
}

#[test]
fn fly_toml_agrees_with_the_service() {
    let fly = fly();
    let env = fly_env();
    let service = &fly["http_service"];
    assert_eq!(fly["build"]["dockerfile"].as_str(), Some("Dockerfile"));
    assert_known("fly.toml", env.keys().cloned());
    assert_eq!(
        service["internal_port"].as_integer().unwrap().to_string(),
        env["PORT"]
    );
    assert_eq!(env["PORT"], dockerfile_env()["PORT"]);
    assert_eq!(env["CLIENT_IP_HEADER"], "Fly-Client-IP");
    assert_eq!(env["LOG_FORMAT"], "json");
    assert!(
        !env.contains_key("REDIS_URL") && !env.contains_key("ADMIN_TOKEN"),
        "secrets stay out of fly.toml"
    );
    assert!(
        read("fly.toml").contains("METRICS_TOKEN=$(openssl rand -hex 24)"),
        "the set-up sets a metrics token: /metrics is not public"
    );
    // Fly's Prometheus scrapes the private metrics port, which no service exposes.
    let scraped = fly["metrics"]["port"].as_integer().unwrap().to_string();
    assert_eq!(env["METRICS_PORT"], scraped);
    assert_eq!(fly["metrics"]["path"].as_str(), Some("/metrics"));
    assert_ne!(scraped, env["PORT"]);
    assert!(
        fly.get("services").is_none(),
        "only the http_service is public"
    );
    assert_eq!(service["force_https"].as_bool(), Some(true));
    assert_eq!(service["concurrency"]["type"].as_str(), Some("requests"));
    let checks = service["checks"].as_array().unwrap();
    assert!(checks
        .iter()
        .any(|check| check["path"].as_str() == Some(PLATFORM_CHECK_PATH)));
    assert_eq!(fly["kill_signal"].as_str(), Some("SIGTERM"));
    let kill_timeout: u64 = fly["kill_timeout"]
        .as_str()
        .unwrap()
        .trim_end_matches('s')
        .parse()
        .unwrap();
    assert!(
        kill_timeout > SHUTDOWN_GRACE.as_secs(),
        "in-flight purchases get {SHUTDOWN_GRACE:?} to finish"
    );
    let mut merged = dockerfile_env();
    merged.extend(env);
    assert_valid_settings("fly.toml", merged);
}

#[test]
fn render_yaml_agrees_with_the_service() {
    let web = render_service("web");
    let redis = render_service("keyvalue");
    assert_eq!(web["runtime"], "docker");
    assert_eq!(web["healthCheckPath"], PLATFORM_CHECK_PATH);
    let vars = web["envVars"].as_sequence().unwrap();
    let var = |key: &str| {
        vars.iter()
            .find(|v| v["key"] == key)
            .unwrap_or_else(|| panic!("{key} is set"))
            .clone()
    };
    assert_known(
        "render.yaml",
        vars.iter().map(|v| v["key"].as_str().unwrap().to_owned()),
    );
    let from = &var("REDIS_URL")["fromService"];
    assert_eq!(from["type"], "keyvalue");
    assert_eq!(from["name"], redis["name"]);
    assert_eq!(from["property"], "connectionString");
    assert_eq!(var("ADMIN_TOKEN")["generateValue"], true);
    assert_eq!(
        var("METRICS_TOKEN")["generateValue"],
        true,
        "/metrics is not public"
    );
    assert_eq!(
        var("PORT")["value"].as_str(),
        Some(dockerfile_env()["PORT"].as_str())
    );
    assert_eq!(redis["maxmemoryPolicy"], "noeviction");
    assert_eq!(
        redis["ipAllowList"].as_sequence().map(Vec::len),
        Some(0),
        "no public access"
    );
    let mut env = dockerfile_env();
    for v in vars.iter().filter(|v| v["value"].is_string()) {
        env.insert(
            v["key"].as_str().unwrap().into(),
            v["value"].as_str().unwrap().into(),
        );
    }
    assert_valid_settings("render.yaml", env);
}

#[tokio::test]
async fn the_binary_built_with_the_dockerfile_flags_serves_ready_with_its_environment() {
    // Arrange: build as the Dockerfile does, into a target dir of its own so the build does not
    // wait on the lock of the `cargo test` that runs this.
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dockerfile-build");
    let built = Command::new(env!("CARGO"))
        .arg("build")
        .args(dockerfile_cargo_build_args())
        .arg("--target-dir")
        .arg(&target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&built.stderr);
    assert!(
        built.status.success(),
        "cargo build with the Dockerfile's flags failed:\n{log}"
    );
    let redis = LocalRedisServer::start().await.unwrap();
    let port = free_port().unwrap();

    // Act: the Dockerfile's ENV, then fly.toml's [env], then the secrets; only the listen
    // address differs (loopback and a free port, so the test never collides with a dev server).
    let mut child = Command::new(target_dir.join("release/flashsale"))
        .env_clear()
        .envs(dockerfile_env())
        .envs(fly_env())
        .env("REDIS_URL", redis.url())
        .env("ADMIN_TOKEN", "a-generated-secret-of-some-length")
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let ready = loop {
        let reply = reqwest::get(format!("http://127.0.0.1:{port}{READY_PATH}")).await;
        match reply {
            Ok(reply) if reply.status() == 200 => break true,
            _ if Instant::now() > deadline => break false,
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    let _ = child.kill();
    let _ = child.wait();

    // Assert
    assert!(ready, "the release binary did not serve {READY_PATH}");
}

#[test]
fn the_grafana_dashboard_only_charts_metrics_the_service_exports() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana/flashsale.json")).unwrap();
    let exported = read("src/metrics.rs");
    let mut charted = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for name in expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|word| word.starts_with("flashsale_"))
            {
                let base = name
                    .trim_end_matches("_bucket")
                    .trim_end_matches("_sum")
                    .trim_end_matches("_count");
                assert!(
                    exported.contains(&format!("\"{base}\"")),
                    "{name} is not exported"
                );
                charted += 1;
            }
        }
    }
    assert!(charted >= 8, "{charted} series charted");
}

#[test]
fn compose_yaml_runs_the_service_against_redis_set_up_right_with_prometheus_and_grafana() {
    let compose: serde_yaml_ng::Value = serde_yaml_ng::from_str(&read("compose.yaml")).unwrap();
    let service = |name: &str| compose["services"][name].clone();

    // Redis: AOF fsynced on every write, nothing evicted, no RDB snapshots.
    let redis: Vec<String> = service("redis")["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|arg| arg.as_str().unwrap().to_owned())
        .collect();
    let flag = |name: &str| {
        let at = redis.iter().position(|arg| arg == name).unwrap();
        redis[at + 1].clone()
    };
    assert_eq!(flag("--appendonly"), "yes");
    assert_eq!(flag("--appendfsync"), "always");
    assert_eq!(flag("--maxmemory-policy"), "noeviction");

    // The service: the Dockerfile, its port, an environment it accepts, Redis healthy first.
    let app = service("flashsale");
    assert_eq!(app["build"], ".");
    assert_eq!(app["depends_on"]["redis"]["condition"], "service_healthy");
    let port = &dockerfile_env()["PORT"];
    assert_eq!(app["ports"][0].as_str().unwrap(), format!("{port}:{port}"));
    let env: BTreeMap<String, String> = app["environment"]
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let value = v.as_str().unwrap();
            // `${VAR:?message}`: compose refuses to start without it; any value validates.
            let value = if value.starts_with("${") {
                "a-secret-from-the-shell"
            } else {
                value
            };
            (k.as_str().unwrap().to_owned(), value.to_owned())
        })
        .collect();
    assert_known("compose.yaml", env.keys().cloned());
    assert_eq!(env["REDIS_URL"], "redis://redis:6379");
    assert!(env.contains_key("METRICS_TOKEN"), "/metrics is not public");
    let mut merged = dockerfile_env();
    merged.extend(env);
    assert_valid_settings("compose.yaml", merged);

    // Prometheus scrapes the service with the token, from the file it writes at start.
    let prometheus = service("prometheus");
    let mounted = |svc: &serde_yaml_ng::Value, inside: &str| -> String {
        svc["volumes"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .find_map(|v| {
                let mut parts = v.split(':');
                let host = parts.next()?;
                (parts.next()? == inside).then(|| host.trim_start_matches("./").to_owned())
            })
            .unwrap_or_else(|| panic!("{inside} is mounted"))
    };
    let scrape: serde_yaml_ng::Value = serde_yaml_ng::from_str(&read(&mounted(
        &prometheus,
        "/etc/prometheus/prometheus.yml",
    )))
    .unwrap();
    let job = &scrape["scrape_configs"][0];
    assert_eq!(job["metrics_path"], "/metrics");
    assert_eq!(
        job["static_configs"][0]["targets"][0].as_str().unwrap(),
        format!("flashsale:{port}")
    );
    let token_file = job["authorization"]["credentials_file"].as_str().unwrap();
    let entrypoint = prometheus["entrypoint"][2].as_str().unwrap();
    assert!(
        entrypoint.contains(&format!("> {token_file}")),
        "{entrypoint}"
    );

    // Grafana: the compose Prometheus as its data source, and the dashboard of deploy/grafana.
    let grafana = service("grafana");
    let sources: serde_yaml_ng::Value = serde_yaml_ng::from_str(&read(&format!(
        "{}/prometheus.yml",
        mounted(&grafana, "/etc/grafana/provisioning/datasources")
    )))
    .unwrap();
    assert_eq!(sources["datasources"][0]["type"], "prometheus");
    assert_eq!(sources["datasources"][0]["url"], "http://prometheus:9090");
    let providers: serde_yaml_ng::Value = serde_yaml_ng::from_str(&read(&mounted(
        &grafana,
        "/etc/grafana/provisioning/dashboards/flashsale.yml",
    )))
    .unwrap();
    let folder = providers["providers"][0]["options"]["path"]
        .as_str()
        .unwrap();
    let dashboard = mounted(&grafana, &format!("{folder}/flashsale.json"));
    assert_eq!(dashboard, "deploy/grafana/flashsale.json");
    let json: serde_json::Value = serde_json::from_str(&read(&dashboard)).unwrap();
    assert_eq!(json["uid"], "flashsale-drop");
}
