//! `kafkaload`: load tests of the distributed engines without HTTP.
//!
//! - `kafkaload run SCENARIO`: a `target = "direct"` scenario, its requests
//!   produced straight into the command log and answered from the events
//!   topic (see `kafkaload::target`).
//! - `kafkaload broker`: the broker's ceiling with the exchange's own Kafka
//!   client settings.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kafkaload::settings::{self, Direct};
use kafkaload::target::KafkaTarget;
use loadtest::scenario::RespType;
use loadtest::{RunOptions, Scenario, SuppliedTarget};

#[derive(Parser)]
#[command(
    name = "kafkaload",
    version,
    about = "Load tests of the Kafka command log and the engines behind it (loopback brokers only)."
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs a `target = "direct"` scenario and writes result.json,
    /// report.html and histograms.
    Run {
        /// The scenario file (e.g. loadtest/scenarios/direct.toml).
        scenario: PathBuf,
        /// Bootstrap brokers, instead of the scenario's `[direct]` ones.
        #[arg(long)]
        brokers: Option<String>,
        /// The cluster's config file, instead of the scenario's.
        #[arg(long)]
        exchange_config: Option<PathBuf>,
        /// An engine's pid (for RSS and CPU).
        #[arg(long)]
        pid: Option<u32>,
        /// The seed, instead of the scenario's.
        #[arg(long)]
        seed: Option<u64>,
        /// Where to write the results; default target/loadtest-results/NAME-UNIXTIME.
        #[arg(long)]
        out: Option<PathBuf>,
        /// No progress lines.
        #[arg(long)]
        quiet: bool,
    },
    /// Measures the local broker's ceiling: commands produced with the
    /// exchange's Kafka settings, then consumed back.
    Broker {
        /// Bootstrap servers (loopback).
        #[arg(long, default_value = "127.0.0.1:9092")]
        brokers: String,
        /// Records to send.
        #[arg(long, default_value_t = 20_000)]
        records: usize,
        /// Sends outstanding at once.
        #[arg(long, default_value_t = 64)]
        in_flight: usize,
    },
}

/// What `run` was asked, besides the scenario file.
struct RunArgs {
    brokers: Option<String>,
    exchange_config: Option<PathBuf>,
    pid: Option<u32>,
    seed: Option<u64>,
    out: Option<PathBuf>,
    quiet: bool,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Cmd::Broker {
            brokers,
            records,
            in_flight,
        } => broker(&brokers, records, in_flight),
        Cmd::Run {
            scenario,
            brokers,
            exchange_config,
            pid,
            seed,
            out,
            quiet,
        } => run(
            &scenario,
            RunArgs {
                brokers,
                exchange_config,
                pid,
                seed,
                out,
                quiet,
            },
        ),
    }
}

fn run(path: &std::path::Path, args: RunArgs) -> ExitCode {
    let mut s = match Scenario::load(path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if args.exchange_config.is_some() {
        s.exchange.config = args.exchange_config;
    }
    if args.pid.is_some() {
        s.exchange.pid = args.pid;
    }
    if let Some(seed) = args.seed {
        s.seed = seed;
    }
    let direct = match Direct::of(&s, args.brokers.as_deref()) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let out_dir = args.out.unwrap_or_else(|| {
        PathBuf::from("target/loadtest-results").join(format!(
            "{}-{}",
            s.name,
            clientkit::now_ms() / 1_000
        ))
    });
    let opts = RunOptions {
        out_dir,
        credentials: None,
        quiet: args.quiet,
    };
    let rt = match loadtest::runner::runtime(&s) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        let (kafka, pairs) = settings::cluster_config(&direct.config, &direct.brokers)?;
        let rules = pairs.iter().map(|(c, _)| settings::rules(c)).collect();
        let target = KafkaTarget::new(&kafka, pairs, s.resp_type == RespType::Result).await?;
        let supplied = SuppliedTarget {
            rules,
            target: Box::new(target),
        };
        Ok::<_, kafkaload::Error>(loadtest::run_supplied(&s, &opts, supplied).await?)
    });
    match result {
        Ok(r) => {
            print!("{}", loadtest::summary(&r));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn broker(brokers: &str, records: usize, in_flight: usize) -> ExitCode {
    // Load goes to loopback addresses only.
    let brokers = match settings::check_brokers(brokers) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(kafkaload::broker::ceiling(&brokers, records, in_flight)) {
        Ok(c) => {
            println!(
                "{} records: produce {:.0}/s, consume {:.0}/s, produce-then-consume {:.0}/s",
                c.records, c.produce_per_sec, c.consume_per_sec, c.combined_per_sec
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
