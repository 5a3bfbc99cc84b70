//! flashsale-load: goose scenarios against a flashsale instance, then a check of SPEC §1's
//! invariants from what the run saw and what the API reports afterwards.
//!
//! ```text
//! flashsale-load flash-burst --host http://127.0.0.1:8080 --buyers 100000 --users 64
//! flashsale-load steady      --host https://my-flashsale.fly.dev --run-time 60
//! flashsale-load retry-storm --host http://127.0.0.1:8080 --buyers 5000
//! flashsale-load waiting-room --host http://127.0.0.1:8080 --buyers 3000
//! flashsale-load flash-burst --admin-token $ADMIN_TOKEN --new-sale 1000 --buyers 100000
//! ```
#![forbid(unsafe_code)]

mod args;
mod ledger;
mod scenarios;

use args::{Args, Command, Scenario};
use goose::{config::GooseConfiguration, prelude::*};
use ledger::Ledger;
use std::{process::ExitCode, time::Duration};

#[tokio::main]
async fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(Command::Run(args)) => args,
        Ok(Command::Help) => {
            println!("{}", args::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("{message}\n\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("flashsale-load: {err:?}");
            ExitCode::from(2)
        }
    }
}

/// Runs the scenario; `Ok(false)` when an invariant does not hold.
async fn run(args: Args) -> Result<bool, Box<dyn std::error::Error>> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let base = args.base();
    if let (Some(stock), Some(token), Some(sale)) = (args.new_sale, &args.admin_token, &args.sale) {
        scenarios::create_sale(&http, &args.host, token, sale, stock).await?;
        println!("created sale {sale} with {stock} units for this run");
    }
    let before = scenarios::sale_status(&http, &args.host, &base).await?;
    println!(
        "sale before: status={} total={} remaining={}",
        before.status, before.total_stock, before.remaining_stock
    );
    scenarios::install(
        Ledger::new(args.buyers, args.run_prefix.clone()),
        base.clone(),
    );

    // Anything after `--` goes to goose itself (e.g. `-- --report-file report.html`).
    let configuration = GooseConfiguration::parse_args_default(&args.goose_args)?;
    let mut attack = *GooseAttack::initialize_with_config(configuration)?
        .set_default(GooseDefault::Host, args.host.as_str())?
        .set_default(GooseDefault::Users, args.users)?
        .set_default(GooseDefault::IncreaseRate, args.hatch_rate.as_str())?
        .set_default(GooseDefault::Timeout, "15")?
        // One line per user started is noise here; warnings still show.
        .set_default(GooseDefault::Quiet, 1)?
        // goose's error table would list every SOLD_OUT (410) as an error: the answers by code
        // and by status are in the report and in the invariants below.
        .set_default(GooseDefault::NoErrorSummary, true)?;
    let iterations = args.buyers.div_ceil(args.users);
    attack = match args.scenario {
        Scenario::FlashBurst => *attack
            .register_scenario(scenarios::flash_burst())
            .set_default(GooseDefault::Iterations, iterations)?,
        Scenario::RetryStorm => *attack
            .register_scenario(scenarios::retry_storm())
            .set_default(GooseDefault::Iterations, iterations)?,
        Scenario::WaitingRoom => *attack
            .register_scenario(scenarios::waiting_room())
            .set_default(GooseDefault::Iterations, iterations)?,
        // Every answer counts: a timed run would otherwise forget the answers given before all
        // users had started (runs by iterations never reset).
        Scenario::Steady => *scenarios::steady()
            .into_iter()
            .fold(attack, GooseAttack::register_scenario)
            .set_default(GooseDefault::RunTime, args.run_time)?
            .set_default(GooseDefault::NoResetMetrics, true)?,
    };
    // goose prints its own report once the run ends.
    attack.execute().await?;

    // The status endpoint may be cached for 100 ms; read it once that has passed.
    tokio::time::sleep(Duration::from_millis(250)).await;
    let after = scenarios::sale_status(&http, &args.host, &base).await?;
    let admin = args.admin_token.as_deref().zip(args.sale.as_deref());
    let report = scenarios::ledger()
        .check(&http, &args.host, &base, admin, &before, &after)
        .await;
    println!("{report}");
    Ok(report.holds())
}
