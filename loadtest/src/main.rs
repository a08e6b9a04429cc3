//! `loadtest`: runs a scenario file against a running exchange.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use loadtest::{RunOptions, Scenario};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "loadtest",
    version,
    about = "Open-loop load tests of the exchange (loopback targets only)."
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs a scenario and writes result.json, report.html and histograms.
    Run {
        /// The scenario file (see loadtest/scenarios/).
        scenario: PathBuf,
        /// The exchange's URL, instead of the scenario's.
        #[arg(long)]
        url: Option<String>,
        /// The `exchange` binary that creates the users' keys.
        #[arg(long)]
        exchange_bin: Option<PathBuf>,
        /// The exchange's config file, passed to `keys create`.
        #[arg(long)]
        exchange_config: Option<PathBuf>,
        /// The exchange's pid (for RSS and CPU); found from the port if not given.
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
    /// Serves a target that does no work (exchangeInfo and the WebSocket
    /// API, every request answered at once), to measure the harness:
    /// `loadtest/scenarios/null.toml`.
    NullExchange {
        /// Where to listen (loopback only).
        #[arg(long, default_value = "127.0.0.1:9400")]
        listen: std::net::SocketAddr,
    },
    /// Parses and checks a scenario file, and prints its phases.
    Check {
        /// The scenario file.
        scenario: PathBuf,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Cmd::NullExchange { listen } => match loadtest::null::serve(listen) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Cmd::Check { scenario } => match Scenario::load(&scenario) {
            Ok(s) => {
                let schedule = loadtest::schedule::Schedule::new(s.phases.clone());
                println!(
                    "{}: {} requests over {:.0} s to {} (target {:?})",
                    s.name,
                    schedule.total(),
                    schedule.duration().as_secs_f64(),
                    s.url.base,
                    s.target
                );
                for (i, p) in s.phases.iter().enumerate() {
                    println!(
                        "  {}: {}/s for {:.1} s ({} requests)",
                        p.name,
                        p.rate,
                        p.duration.as_secs_f64(),
                        schedule.phase_count(i)
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Cmd::Run {
            scenario,
            url,
            exchange_bin,
            exchange_config,
            pid,
            seed,
            out,
            quiet,
        } => {
            let mut s = match Scenario::load(&scenario) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            if let Some(u) = url {
                match loadtest::loopback::check_url(&u) {
                    Ok(t) => s.url = t,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::from(2);
                    }
                }
            }
            if exchange_bin.is_some() {
                s.exchange.binary = exchange_bin;
            }
            if exchange_config.is_some() {
                s.exchange.config = exchange_config;
            }
            if pid.is_some() {
                s.exchange.pid = pid;
            }
            if let Some(seed) = seed {
                s.seed = seed;
            }
            let out_dir = out.unwrap_or_else(|| {
                PathBuf::from("target/loadtest-results").join(format!(
                    "{}-{}",
                    s.name,
                    clientkit::now_ms() / 1_000
                ))
            });
            let opts = RunOptions {
                out_dir,
                credentials: None,
                quiet,
            };
            match loadtest::run_blocking(&s, &opts) {
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
    }
}
