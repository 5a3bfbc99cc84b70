//! The binary as a user runs it: embedded Redis by default, clean exit, clear start-up errors.

use crate::helpers::{flashsale, is_alive, wait_for_log};
use flashsale::store::local_server::free_port;
use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

#[tokio::test]
async fn without_redis_url_it_serves_a_demo_sale_and_stops_its_redis_on_sigterm() {
    // Arrange
    let port = free_port().unwrap();
    let mut child = flashsale()
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let log = wait_for_log(&mut child, "flashsale listening");
    let redis_pid = log
        .iter()
        .find_map(|line| line["redis_pid"].as_u64())
        .expect("the local-mode line names the redis-server pid");
    assert!(log.iter().any(|line| line["message"]
        .as_str()
        .unwrap_or_default()
        .contains("LOCAL MODE")));
    let http = reqwest::Client::new();

    // Act
    let status: serde_json::Value = http
        .get(format!("http://127.0.0.1:{port}/api/sale/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bought = http
        .post(format!("http://127.0.0.1:{port}/api/sale/purchase"))
        .json(&serde_json::json!({"userId": "demo-user"}))
        .send()
        .await
        .unwrap();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "flashsale did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };

    // Assert
    assert_eq!(status["status"], "active");
    assert_eq!(status["totalStock"], 100);
    assert_eq!(bought.status(), 200);
    assert!(exit.success(), "{exit:?}");
    assert!(
        !is_alive(redis_pid),
        "the embedded redis-server outlived the service"
    );
}

#[tokio::test]
async fn local_mode_logs_for_people_and_prints_where_it_is_ready() {
    // Arrange: no REDIS_URL and no LOG_FORMAT, as on a developer's machine.
    let mut child = flashsale()
        .env("PORT", "0")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();

    // Act: read lines until the ready line (bounded by the reader thread's timeout).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(20)) {
        let done = line.starts_with("flashsale ready at http://127.0.0.1:");
        lines.push(line);
        if done {
            break;
        }
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let _ = child.wait();

    // Assert: the ready line names a port that served, and the log lines are not JSON.
    let ready = lines.last().cloned().unwrap_or_default();
    let port: u16 = ready
        .strip_prefix("flashsale ready at http://127.0.0.1:")
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("no ready line in {lines:?}"));
    assert!(port > 0);
    let logged: Vec<_> = lines.iter().filter(|l| l.contains("LOCAL MODE")).collect();
    assert_eq!(logged.len(), 1, "{lines:?}");
    assert!(serde_json::from_str::<serde_json::Value>(logged[0]).is_err());
}

#[test]
fn an_invalid_variable_stops_start_up_with_one_line_naming_it() {
    let output = flashsale().env("PORT", "eighty").output().unwrap();

    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("PORT"), "{stderr}");
}

#[test]
fn without_redis_server_installed_it_says_how_to_install_it() {
    let empty = tempfile::tempdir().unwrap();
    let output = flashsale()
        .env("PATH", empty.path())
        .env("PORT", "0")
        .output()
        .unwrap();

    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("apt-get install") && stderr.contains("REDIS_URL"),
        "{stderr}"
    );
}

/// The binary in local mode on a free port, `HOST` as given (unset: the default), once it
/// listens; with its port.
fn listening(host: Option<&str>) -> (std::process::Child, u16) {
    let port = free_port().unwrap();
    let mut command = flashsale();
    command
        .env("PORT", port.to_string())
        .env("LOG_FORMAT", "json")
        .stdout(Stdio::piped());
    if let Some(host) = host {
        command.env("HOST", host);
    }
    let mut child = command.spawn().unwrap();
    wait_for_log(&mut child, "flashsale listening");
    (child, port)
}

fn stop(mut child: std::process::Child) {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn every_address_means_ipv4_and_ipv6_both() {
    // Fly.io's private network (a Prometheus scrape) is IPv6; its proxy comes over IPv4.
    let http = reqwest::Client::new();
    for host in [None, Some("0.0.0.0"), Some("::")] {
        let (child, port) = listening(host);
        for url in [
            format!("http://127.0.0.1:{port}/health/live"),
            format!("http://[::1]:{port}/health/live"),
        ] {
            let reply = http.get(&url).send().await;
            assert!(
                reply.as_ref().is_ok_and(|r| r.status() == 200),
                "HOST={host:?}: {url}: {reply:?}"
            );
        }
        stop(child);
    }
    // A specific address is only that one.
    let (child, port) = listening(Some("127.0.0.1"));
    let refused = http
        .get(format!("http://[::1]:{port}/health/live"))
        .send()
        .await;
    assert!(refused.is_err(), "{refused:?}");
    stop(child);
}
