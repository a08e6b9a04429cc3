//! `exchange`: with no arguments, the embedded exchange on 127.0.0.1:8080.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use exchange::Config;
use exchange::roles::Role;
use tracing_subscriber::EnvFilter;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "exchange",
    version,
    about = "A spot exchange: matching engine, gateway and store."
)]
struct Cli {
    /// A TOML config file; without one, the built-in defaults (three demo pairs).
    #[arg(long, short, env = "EXCHANGE_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs the embedded exchange (the default): gateway, engines and store in one process.
    Run,
    /// Manages API keys.
    Keys {
        #[command(subcommand)]
        action: KeysCmd,
    },
    /// Manages operators' admin keys (they sign the admin API, never trade).
    AdminKeys {
        #[command(subcommand)]
        action: AdminKeysCmd,
    },
    /// Deposits, withdrawals and balances, through a running exchange's admin API.
    Accounts {
        #[command(subcommand)]
        action: AccountsCmd,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Audits a running exchange's accounts; exits non-zero when the audit
    /// fails or cannot run.
    Audit {
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Prints the effective configuration's pairs and store, after validation.
    CheckConfig,
    /// Distributed mode: a stateless gateway on the Kafka logs.
    Gateway,
    /// Distributed mode: a matching engine for the pairs whose leases it holds (engines share the pairs by leases in the store).
    Engine,
    /// Distributed mode: stores the event log in the database.
    Persister,
    /// Distributed mode: checks orders against balances and settles trades,
    /// for the risk shards whose leases it holds (with `[accounts] enabled`).
    Risk,
    /// Distributed mode: replays a pair's whole command log from offset zero
    /// and prints the book's position, last seq and state hash.
    Replay {
        /// The pair, e.g. BTC-EUR.
        #[arg(long)]
        pair: String,
    },
    /// Pairs: the store's halts for failures (`halted`, `resume`), and a
    /// pair's market status and rules changed at runtime through a running
    /// exchange's admin API (`status`, `rules`), and new pairs listed
    /// on it (`add`).
    Pairs {
        #[command(subcommand)]
        action: PairsCmd,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Distributed mode: manages the Kafka topics.
    Topics {
        #[command(subcommand)]
        action: TopicsCmd,
    },
}

#[derive(Subcommand)]
enum TopicsCmd {
    /// Creates `orders` and `events` with one partition per pair.
    Create,
}

#[derive(Subcommand)]
enum PairsCmd {
    /// Lists the pairs halted because their events could not be stored, and why.
    Halted,
    /// Lets a halted pair start again: its journal is replayed at the next
    /// start (restart the exchange, or the distributed roles, afterwards).
    Resume {
        /// The pair, e.g. BTC-EUR.
        pair: String,
    },
    /// Sets a pair's market status on a running exchange, at once and
    /// through its log: TRADING, HALT (cancels only) or BREAK (nothing).
    /// Not the store's halts above.
    Status {
        /// The pair, e.g. BTC-EUR.
        pair: String,
        /// TRADING, HALT or BREAK.
        status: String,
    },
    /// Changes a pair's rules or fee rates on a running exchange, at once
    /// and through its log: each rule given; the others keep their values.
    /// Orders already held stay, whatever the new rules say of them, and
    /// keep the rates they were placed with.
    Rules(RulesCli),
    /// Lists a new pair on a running exchange, at once and with an empty
    /// book: FILE holds the pair's table as the config file's `[[pairs]]`
    /// writes it (without the `[[pairs]]` line). Every later start lists
    /// it again; the config file need not change.
    Add {
        /// A TOML file: symbol, price_scale, qty_scale, tick_size, ...
        file: std::path::PathBuf,
    },
}

/// A rules change's arguments: decimals at the pair's scales.
#[derive(Args, Debug)]
struct RulesCli {
    /// The pair, e.g. BTC-EUR.
    pair: String,
    /// Every price a multiple of this.
    #[arg(long)]
    tick_size: Option<String>,
    /// Every quantity a multiple of this (the lot).
    #[arg(long)]
    step_size: Option<String>,
    /// Smallest order quantity.
    #[arg(long)]
    min_qty: Option<String>,
    /// Largest order quantity.
    #[arg(long)]
    max_qty: Option<String>,
    /// Largest limit price.
    #[arg(long)]
    max_price: Option<String>,
    /// Smallest order value.
    #[arg(long)]
    min_notional: Option<String>,
    /// Largest order value.
    #[arg(long)]
    max_notional: Option<String>,
    /// Most orders the book holds.
    #[arg(long)]
    max_open_orders: Option<u32>,
    /// NONE, EXPIRE_TAKER, EXPIRE_MAKER or EXPIRE_BOTH.
    #[arg(long)]
    default_stp: Option<String>,
    /// The maker fee of orders placed from now on, in basis points.
    #[arg(long)]
    maker_fee_bps: Option<u16>,
    /// The taker fee of orders placed from now on, in basis points.
    #[arg(long)]
    taker_fee_bps: Option<u16>,
}

#[derive(Subcommand)]
enum AdminKeysCmd {
    /// Creates an admin key and prints it and its secret once.
    Create {
        /// Who holds it (for the records).
        #[arg(long)]
        name: String,
    },
    /// Revokes an admin key.
    Revoke {
        /// The admin key.
        key: String,
    },
}

/// Where the admin API is and how to sign for it.
#[derive(Args, Debug)]
struct AdminArgs {
    /// The exchange's URL; by default the config's `listen` address.
    #[arg(long, env = "EXCHANGE_URL", global = true)]
    url: Option<String>,
    /// The admin key (`exchange admin-keys create`).
    #[arg(
        long,
        env = "EXCHANGE_ADMIN_KEY",
        hide_env_values = true,
        global = true
    )]
    admin_key: Option<String>,
    /// The admin key's secret.
    #[arg(
        long,
        env = "EXCHANGE_ADMIN_SECRET",
        hide_env_values = true,
        global = true
    )]
    admin_secret: Option<String>,
}

/// A movement's arguments.
#[derive(Args, Debug)]
struct MovementCli {
    /// The user's name.
    #[arg(long)]
    user: String,
    /// The asset, e.g. EUR.
    #[arg(long)]
    asset: String,
    /// The amount, a decimal at most at the asset's scale.
    #[arg(long)]
    amount: String,
    /// Your reference: repeating a movement with the same one changes nothing.
    #[arg(long = "ref")]
    reference: String,
}

#[derive(Subcommand, Debug)]
enum AccountsCmd {
    /// Credits a user's free balance.
    Deposit(MovementCli),
    /// Debits a user's free balance (never what open orders hold).
    Withdraw(MovementCli),
    /// Shows a user's balances.
    Balances {
        /// The user's name.
        #[arg(long)]
        user: String,
    },
}

#[derive(Subcommand)]
enum KeysCmd {
    /// Creates a key for a user (created if new) and prints the key and its secret once.
    Create {
        /// The user's name.
        #[arg(long)]
        user: String,
    },
    /// Revokes a key.
    Revoke {
        /// The API key.
        key: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        match cli.command.unwrap_or(Cmd::Run) {
            Cmd::Run => run(&config).await,
            Cmd::Keys { action } => keys(&config, action).await,
            Cmd::AdminKeys { action } => admin_keys(&config, action).await,
            Cmd::Accounts { action, admin } => accounts(&config, action, admin).await,
            Cmd::Audit { admin } => audit(&config, admin).await,
            Cmd::Pairs { action, admin } => pairs(&config, action, admin).await,
            Cmd::Gateway => role(Role::Gateway, &config).await,
            Cmd::Engine => role(Role::Engine, &config).await,
            Cmd::Persister => role(Role::Persister, &config).await,
            Cmd::Risk => role(Role::Risk, &config).await,
            Cmd::Topics {
                action: TopicsCmd::Create,
            } => exchange::roles::create_topics(&config)
                .await
                .map_err(|e| e.to_string()),
            Cmd::Replay { pair } => replay(&config, &pair).await,
            Cmd::CheckConfig => {
                let pairs = config.validate().map_err(|e| e.to_string())?;
                println!("store: {}", config.database_url());
                if config.accounts.enabled {
                    println!("accounts: on, {} risk shards", config.accounts.shards);
                } else {
                    println!("accounts: off");
                }
                for p in pairs {
                    println!("pair: {p:?}");
                }
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: &Config) -> Result<(), String> {
    let running = exchange::start(config).await.map_err(|e| e.to_string())?;
    println!("exchange listening on http://{}", running.addr);
    println!("  store: {}", config.database_url());
    println!(
        "  pairs: {}",
        config
            .pairs
            .iter()
            .map(|p| p.symbol.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("  create an API key: cargo run --release -- keys create --user alice");
    println!("  stop: Ctrl-C (drains queues, stores fills, snapshots books)");
    shutdown_signal().await;
    println!("stopping...");
    running.shutdown().await;
    Ok(())
}

async fn role(role: Role, config: &Config) -> Result<(), String> {
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    exchange::roles::run(role, config, stop_rx, |addr| {
        println!("{role:?} listening on http://{addr}");
    })
    .await
    .map_err(|e| e.to_string())
}

async fn replay(config: &Config, pair: &str) -> Result<(), String> {
    let partitions = exchange::roles::partitions(config)
        .await
        .map_err(|e| e.to_string())?;
    let symbol = proto::Symbol::new(pair).map_err(|e| format!("--pair {pair:?}: {e}"))?;
    let (partition, pc) = partitions
        .iter()
        .find(|(_, c)| c.symbol == symbol)
        .ok_or_else(|| format!("--pair {pair}: neither configured nor listed"))?;
    let (book, position) = cluster::replay_log(&config.kafka, partition, &pc, |_| {})
        .await
        .map_err(|e| e.to_string())?;
    println!("pair:       {symbol}");
    println!("position:   {position}");
    println!("last seq:   {}", book.last_seq());
    println!("state hash: {:016x}", book.state_hash());
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// The configured store, for the operator commands.
async fn open_store(config: &Config) -> Result<store::Store, String> {
    if config.database_url.is_none() {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| format!("data_dir: {e}"))?;
    }
    store::Store::connect(&config.database_url(), 1)
        .await
        .map_err(|e| e.to_string())
}

async fn pairs(config: &Config, action: PairsCmd, admin: AdminArgs) -> Result<(), String> {
    let answer = match action {
        PairsCmd::Status { pair, status } => {
            let target = admin_target(config, admin)?;
            exchange::operator::pair_status(&target, &pair, &status).await
        }
        PairsCmd::Rules(r) => {
            let target = admin_target(config, admin)?;
            let rules = exchange::operator::PairRules {
                pair: r.pair,
                tick_size: r.tick_size,
                step_size: r.step_size,
                min_qty: r.min_qty,
                max_qty: r.max_qty,
                max_price: r.max_price,
                min_notional: r.min_notional,
                max_notional: r.max_notional,
                max_open_orders: r.max_open_orders,
                default_stp: r.default_stp,
                maker_fee_bps: r.maker_fee_bps,
                taker_fee_bps: r.taker_fee_bps,
            };
            exchange::operator::pair_rules(&target, &rules).await
        }
        PairsCmd::Add { file } => {
            let target = admin_target(config, admin)?;
            let text = std::fs::read_to_string(&file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let spec: proto::PairSpec =
                toml::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
            exchange::operator::add_pair(&target, &spec).await
        }
        other => return store_halts(config, other).await,
    };
    print_json(&answer.map_err(|e| e.to_string())?)
}

/// `pairs halted` and `pairs resume`: the store's halts.
async fn store_halts(config: &Config, action: PairsCmd) -> Result<(), String> {
    let store = open_store(config).await?;
    match action {
        PairsCmd::Halted => {
            let halts = store.halted_pairs().await.map_err(|e| e.to_string())?;
            if halts.is_empty() {
                println!("no pair is halted");
            }
            for h in halts {
                println!("{}\tafter seq {}\t{}", h.pair, h.seq, h.reason);
            }
        }
        PairsCmd::Resume { pair } => {
            let pair = proto::Symbol::new(&pair).map_err(|e| format!("{pair:?}: {e}"))?;
            let found = store.resume_pair(pair).await.map_err(|e| e.to_string())?;
            println!(
                "{}",
                if found {
                    "resumed at the next start"
                } else {
                    "not halted"
                }
            );
        }
        PairsCmd::Status { .. } | PairsCmd::Rules(_) | PairsCmd::Add { .. } => {}
    }
    store.close().await;
    Ok(())
}

async fn keys(config: &Config, action: KeysCmd) -> Result<(), String> {
    let store = open_store(config).await?;
    match action {
        KeysCmd::Create { user } => {
            if user.is_empty() || user.len() > 64 {
                return Err("--user must be 1 to 64 characters".into());
            }
            let key = store
                .create_api_key(&user, gateway::now_ns())
                .await
                .map_err(|e| e.to_string())?;
            println!("user:    {} (id {})", user, key.user);
            println!("api key: {}", key.api_key);
            println!("secret:  {}", key.secret);
            println!("(the secret is shown only now; keep it)");
        }
        KeysCmd::Revoke { key } => {
            let found = store
                .revoke_api_key(&key)
                .await
                .map_err(|e| e.to_string())?;
            println!("{}", if found { "revoked" } else { "no such key" });
        }
    }
    store.close().await;
    Ok(())
}

async fn admin_keys(config: &Config, action: AdminKeysCmd) -> Result<(), String> {
    let store = open_store(config).await?;
    match action {
        AdminKeysCmd::Create { name } => {
            if name.is_empty() || name.len() > 64 {
                return Err("--name must be 1 to 64 characters".into());
            }
            let key = store
                .create_admin_key(&name, gateway::now_ns())
                .await
                .map_err(|e| e.to_string())?;
            println!("name:      {name}");
            println!("admin key: {}", key.admin_key);
            println!("secret:    {}", key.secret);
            println!("(the secret is shown only now; keep it)");
        }
        AdminKeysCmd::Revoke { key } => {
            let found = store
                .revoke_admin_key(&key)
                .await
                .map_err(|e| e.to_string())?;
            println!("{}", if found { "revoked" } else { "no such key" });
        }
    }
    store.close().await;
    Ok(())
}

/// The admin API's address and key, from the flags, the environment or
/// the config.
fn admin_target(config: &Config, a: AdminArgs) -> Result<exchange::operator::AdminTarget, String> {
    let (Some(api_key), Some(secret)) = (a.admin_key, a.admin_secret) else {
        return Err(
            "an admin key is needed: --admin-key and --admin-secret, or EXCHANGE_ADMIN_KEY and EXCHANGE_ADMIN_SECRET (exchange admin-keys create --name NAME)"
                .into(),
        );
    };
    Ok(exchange::operator::AdminTarget {
        url: a
            .url
            .unwrap_or_else(|| exchange::operator::url_for_listen(&config.listen)),
        credentials: client::Credentials { api_key, secret },
    })
}

/// The answer as pretty JSON; an error answer is an error.
fn print_json(a: &client::Answer) -> Result<(), String> {
    println!(
        "{}",
        serde_json::to_string_pretty(&a.body).unwrap_or_default()
    );
    if a.status.is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {}", a.status))
    }
}

async fn accounts(config: &Config, action: AccountsCmd, admin: AdminArgs) -> Result<(), String> {
    use exchange::operator::{MovementArgs, MovementKind};
    let target = admin_target(config, admin)?;
    let movement = |kind, m: MovementCli| MovementArgs {
        kind,
        user: m.user,
        asset: m.asset,
        amount: m.amount,
        reference: m.reference,
    };
    let answer = match action {
        AccountsCmd::Deposit(m) => {
            exchange::operator::movement(&target, &movement(MovementKind::Deposit, m)).await
        }
        AccountsCmd::Withdraw(m) => {
            exchange::operator::movement(&target, &movement(MovementKind::Withdraw, m)).await
        }
        AccountsCmd::Balances { user } => exchange::operator::balances(&target, &user).await,
    }
    .map_err(|e| format!("{}: {e}", target.url))?;
    print_json(&answer)
}

async fn audit(config: &Config, admin: AdminArgs) -> Result<(), String> {
    let target = admin_target(config, admin)?;
    let answer = exchange::operator::audit(&target)
        .await
        .map_err(|e| format!("{}: {e}", target.url))?;
    let (text, passed) = exchange::operator::audit_text(&answer);
    print!("{text}");
    if passed {
        Ok(())
    } else {
        Err("the audit did not pass".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("exchange").chain(args.iter().copied()))
    }

    #[test]
    fn deposit_and_withdraw_take_user_asset_amount_and_ref() {
        let cli = parse(&[
            "accounts",
            "deposit",
            "--user",
            "alice",
            "--asset",
            "EUR",
            "--amount",
            "1000",
            "--ref",
            "wire-1",
            "--url",
            "http://x:1",
            "--admin-key",
            "k",
            "--admin-secret",
            "s",
        ])
        .unwrap();
        let Some(Cmd::Accounts { action, admin }) = cli.command else {
            panic!("not accounts");
        };
        let AccountsCmd::Deposit(m) = action else {
            panic!("not a deposit");
        };
        assert_eq!(
            (
                m.user.as_str(),
                m.asset.as_str(),
                m.amount.as_str(),
                m.reference.as_str()
            ),
            ("alice", "EUR", "1000", "wire-1")
        );
        assert_eq!(admin.url.as_deref(), Some("http://x:1"));
        assert_eq!(admin.admin_key.as_deref(), Some("k"));
        let cli = parse(&[
            "accounts", "withdraw", "--user", "bob", "--asset", "BTC", "--amount", "0.5", "--ref",
            "out-7",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Some(Cmd::Accounts { action: AccountsCmd::Withdraw(ref m), .. }) if m.reference == "out-7"
        ));
        // Every movement field is required.
        assert!(
            parse(&[
                "accounts", "deposit", "--user", "a", "--asset", "EUR", "--amount", "1"
            ])
            .is_err()
        );
        assert!(
            parse(&[
                "accounts", "withdraw", "--user", "a", "--asset", "EUR", "--ref", "r"
            ])
            .is_err()
        );
    }

    #[test]
    fn audit_and_admin_keys_parse() {
        let cli = parse(&["audit", "--admin-key", "k", "--admin-secret", "s"]).unwrap();
        assert!(matches!(cli.command, Some(Cmd::Audit { .. })));
        let cli = parse(&["admin-keys", "create", "--name", "ops"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Cmd::AdminKeys { action: AdminKeysCmd::Create { ref name } }) if name == "ops"
        ));
        assert!(parse(&["admin-keys", "revoke", "abc"]).is_ok());
        assert!(parse(&["audit", "--bogus"]).is_err());
    }

    #[test]
    fn pairs_status_and_rules_parse_beside_the_store_halts() {
        let cli = parse(&["pairs", "status", "BTC-EUR", "HALT", "--admin-key", "k"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Cmd::Pairs { action: PairsCmd::Status { ref pair, ref status }, .. })
                if pair == "BTC-EUR" && status == "HALT"
        ));
        let cli = parse(&[
            "pairs",
            "rules",
            "BTC-EUR",
            "--tick-size",
            "0.05",
            "--max-open-orders",
            "9",
            "--taker-fee-bps",
            "12",
        ])
        .unwrap();
        let Some(Cmd::Pairs {
            action: PairsCmd::Rules(r),
            ..
        }) = cli.command
        else {
            panic!("not a rules change");
        };
        assert_eq!(
            (r.pair.as_str(), r.tick_size.as_deref()),
            ("BTC-EUR", Some("0.05"))
        );
        assert_eq!((r.max_open_orders, r.min_qty), (Some(9), None));
        assert_eq!((r.maker_fee_bps, r.taker_fee_bps), (None, Some(12)));
        // Rates are basis points in a u16: the parser refuses the rest (the
        // exchange then refuses maker above taker or taker above 10000).
        for bad in ["-1", "65536", "1.5", "abc", ""] {
            for flag in ["--maker-fee-bps", "--taker-fee-bps"] {
                let args = ["pairs", "rules", "BTC-EUR", flag, bad];
                assert!(parse(&args).is_err(), "{flag} {bad:?}");
            }
        }
        assert!(parse(&["pairs", "halted"]).is_ok());
        assert!(parse(&["pairs", "resume", "BTC-EUR"]).is_ok());
        assert!(parse(&["pairs", "status", "BTC-EUR"]).is_err());
    }

    #[test]
    fn the_admin_target_needs_a_key_and_defaults_to_listen() {
        let config = Config::default();
        let none = AdminArgs {
            url: None,
            admin_key: None,
            admin_secret: None,
        };
        assert!(admin_target(&config, none).is_err());
        let t = admin_target(
            &config,
            AdminArgs {
                url: None,
                admin_key: Some("k".into()),
                admin_secret: Some("s".into()),
            },
        )
        .unwrap();
        assert_eq!(t.url, "http://127.0.0.1:8080");
    }
}
