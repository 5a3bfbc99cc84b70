//! Command-line arguments (goose's own parser is not used: these name the drop, not goose).

pub const USAGE: &str =
    "usage: flashsale-load <flash-burst|steady|retry-storm|waiting-room> [options]
  --host URL        the service (default http://127.0.0.1:8080)
  --buyers N        distinct buyers in flash-burst and retry-storm (default 10000)
  --users U         concurrent goose users, i.e. connections (default 64)
  --hatch-rate R    users started per second (default: all at once)
  --run-time SECS   duration of steady (default 30)
  --run-prefix P    prefix of this run's userIds (default: a fresh one per run)
  -- ARGS           the rest goes to goose (e.g. -- --report-file report.html)";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    FlashBurst,
    Steady,
    RetryStorm,
    /// Buyers join the sale's waiting room, wait on the queue stream, buy when admitted.
    WaitingRoom,
}

#[derive(Debug, Clone)]
pub struct Args {
    pub scenario: Scenario,
    pub host: String,
    pub buyers: usize,
    pub users: usize,
    pub hatch_rate: String,
    pub run_time: usize,
    pub run_prefix: String,
    pub goose_args: Vec<String>,
}

impl Args {
    pub fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let scenario = match args.next().as_deref() {
            Some("flash-burst") => Scenario::FlashBurst,
            Some("steady") => Scenario::Steady,
            Some("retry-storm") => Scenario::RetryStorm,
            Some("waiting-room") => Scenario::WaitingRoom,
            other => return Err(format!("unknown scenario {other:?}")),
        };
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let mut parsed = Args {
            scenario,
            host: "http://127.0.0.1:8080".into(),
            buyers: 10_000,
            users: 64,
            hatch_rate: String::new(),
            run_time: 30,
            run_prefix: format!("load{millis:x}"),
            goose_args: Vec::new(),
        };
        while let Some(flag) = args.next() {
            if flag == "--" {
                parsed.goose_args = args.by_ref().collect();
                break;
            }
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let number = || {
                value
                    .parse::<usize>()
                    .map_err(|_| format!("{flag}: not a number: {value}"))
            };
            match flag.as_str() {
                "--host" => parsed.host = value.trim_end_matches('/').to_owned(),
                "--buyers" => parsed.buyers = number()?,
                "--users" => parsed.users = number()?.max(1),
                "--hatch-rate" => parsed.hatch_rate = value,
                "--run-time" => parsed.run_time = number()?,
                "--run-prefix" => parsed.run_prefix = value,
                other => return Err(format!("unknown option {other}")),
            }
        }
        if parsed.hatch_rate.is_empty() {
            parsed.hatch_rate = parsed.users.to_string();
        }
        Ok(parsed)
    }
}
