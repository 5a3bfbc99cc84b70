//! Command-line arguments (goose's own parser is not used: these name the drop, not goose).

pub const USAGE: &str =
    "usage: flashsale-load <flash-burst|steady|retry-storm|waiting-room> [options]
  --host URL        the service (default http://127.0.0.1:8080)
  --buyers N        distinct buyers in flash-burst and retry-storm (default 10000)
  --users U         concurrent goose users, i.e. connections (default 64)
  --hatch-rate R    users started per second (default: all at once)
  --run-time SECS   duration of steady (default 30)
  --run-prefix P    prefix of this run's userIds (default: a fresh one per run)
  --sale ID         the sale to load (default: the service's SALE_ID, through /api/sale)
  --admin-token T   the service's ADMIN_TOKEN: the check then reads the buyers through the admin
                    API (exact even when answers were lost, and past any per-IP limit)
  --new-sale STOCK  create a fresh sale of STOCK units for this run first (needs --admin-token;
                    its id is --sale, or the run prefix)
  -h, --help        this text
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
    pub sale: Option<String>,
    pub admin_token: Option<String>,
    pub new_sale: Option<usize>,
    pub goose_args: Vec<String>,
}

/// What the command line asks for.
pub enum Command {
    Run(Args),
    Help,
}

impl Args {
    /// The routes of the sale under load: `/api/sale` (the service's `SALE_ID`) or
    /// `/api/sales/{sale}`.
    pub fn base(&self) -> String {
        match &self.sale {
            Some(sale) => format!("/api/sales/{sale}"),
            None => "/api/sale".to_owned(),
        }
    }

    pub fn parse(args: impl Iterator<Item = String>) -> Result<Command, String> {
        let mut args = args.peekable();
        if args.peek().is_none() {
            return Err("no scenario given".into());
        }
        let mut args = args.collect::<Vec<_>>().into_iter();
        if args.as_slice().iter().any(|a| a == "-h" || a == "--help") {
            return Ok(Command::Help);
        }
        let scenario = match args.next().as_deref() {
            Some("flash-burst") => Scenario::FlashBurst,
            Some("steady") => Scenario::Steady,
            Some("retry-storm") => Scenario::RetryStorm,
            Some("waiting-room") => Scenario::WaitingRoom,
            other => return Err(format!("unknown scenario {}", other.unwrap_or_default())),
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
            sale: None,
            admin_token: None,
            new_sale: None,
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
                "--sale" => parsed.sale = Some(value),
                "--admin-token" => parsed.admin_token = Some(value),
                "--new-sale" => parsed.new_sale = Some(number()?),
                other => return Err(format!("unknown option {other}")),
            }
        }
        if parsed.hatch_rate.is_empty() {
            parsed.hatch_rate = parsed.users.to_string();
        }
        if parsed.new_sale.is_some() {
            if parsed.admin_token.is_none() {
                return Err("--new-sale needs --admin-token".into());
            }
            parsed.sale.get_or_insert_with(|| parsed.run_prefix.clone());
        }
        if let Some(sale) = &parsed.sale {
            let valid = (1..=64).contains(&sale.len())
                && sale
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !valid {
                return Err(format!("--sale: 1-64 of A-Z a-z 0-9 _ - (got {sale:?})"));
            }
        }
        Ok(Command::Run(parsed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Command, String> {
        Args::parse(line.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn help_is_help_and_unknown_names_are_named() {
        assert!(matches!(parse("--help"), Ok(Command::Help)));
        assert!(matches!(parse("flash-burst -h"), Ok(Command::Help)));
        assert_eq!(parse("bogus").err().unwrap(), "unknown scenario bogus");
        assert!(parse("").is_err());
    }

    #[test]
    fn a_sale_routes_the_run_and_a_new_one_needs_the_token() {
        let Ok(Command::Run(plain)) = parse("flash-burst") else {
            panic!("parses")
        };
        assert_eq!(plain.base(), "/api/sale");
        let Ok(Command::Run(named)) = parse("steady --sale drop-7") else {
            panic!("parses")
        };
        assert_eq!(named.base(), "/api/sales/drop-7");
        assert!(parse("flash-burst --new-sale 10").is_err());
        assert!(parse("flash-burst --sale bad/id").is_err());
        let Ok(Command::Run(fresh)) =
            parse("flash-burst --admin-token t --new-sale 10 --run-prefix r1")
        else {
            panic!("parses")
        };
        assert_eq!(
            (fresh.sale.as_deref(), fresh.new_sale),
            (Some("r1"), Some(10))
        );
    }
}
