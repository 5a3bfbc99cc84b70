//! The `flashsale` binary, run as a user runs it, and what it prints.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

/// Polls `GET /health/ready` on a port until it answers 200 (bounded); whether it did.
pub async fn wait_until_ready(port: u16) -> bool {
    let http = reqwest::Client::new();
    for _ in 0..200 {
        let ready = http
            .get(format!("http://127.0.0.1:{port}/health/ready"))
            .send()
            .await;
        if ready.is_ok_and(|reply| reply.status() == 200) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

pub fn flashsale() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_flashsale"));
    // A clean environment: no REDIS_URL, no SALE_* from the developer's shell.
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        // Every script checks that each key it touches is in KEYS.
        .env("REDIS_SCRIPT_KEY_CHECK", "true");
    command
}

/// Reads JSON log lines until `message` appears; returns all lines read.
pub fn wait_for_log(child: &mut Child, message: &str) -> Vec<serde_json::Value> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Keep draining after the caller stops listening, so the child never hits a broken pipe.
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(20)) {
        let json: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("log line is JSON: {line}"));
        let done = json["message"] == message;
        lines.push(json);
        if done {
            return lines;
        }
    }
    panic!("no {message:?} in the log: {lines:?}");
}

/// Everything the child writes to stdout, delivered once it closes (the child exits).
pub fn collect_stdout(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::Read;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut all = String::new();
        let _ = stdout.read_to_string(&mut all);
        let _ = tx.send(all);
    });
    rx
}

pub fn is_alive(pid: u64) -> bool {
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}
