//! The exchange's configuration: a TOML file (optional) with environment
//! overrides, checked by `validate` with messages that name the bad value.

use std::fmt;
use std::path::{Path, PathBuf};

use cluster::{EngineConfig, KafkaConfig};
use gateway::{GatewayConfig, GatewayConfigError};
use pipeline::RuntimeConfig;
use proto::{PairConfig, PairSpec, SpecError, Symbol};
use serde::Deserialize;

/// Why the configuration cannot be read or is refused; the message names the
/// bad value and where it came from.
#[derive(Debug)]
pub enum ConfigError {
    /// The config file cannot be read.
    Read(PathBuf, std::io::Error),
    /// The config file is not valid TOML for [`Config`].
    ParseFile(PathBuf, toml::de::Error),
    /// `EXCHANGE_CONFIG_TOML` is not valid TOML for [`Config`].
    ParseInline(toml::de::Error),
    /// `DATABASE_URL` cannot take `DATABASE_PASSWORD`: what it lacks.
    DatabaseUrl(&'static str),
    /// `listen` is not a socket address.
    Listen(String, std::net::AddrParseError),
    /// `db_connections` is zero.
    DbConnections,
    /// A bound of the `runtime` section.
    Runtime(pipeline::ConfigError),
    /// A bound of the `gateway` section.
    Gateway(GatewayConfigError),
    /// The `kafka` or `engine` section, or the pairs' partitions.
    Cluster(cluster::ClusterError),
    /// A pair's table: its symbol, a decimal, its STP mode, its values
    /// together, or its fee rates.
    Spec(SpecError),
    /// A pair is listed twice, or two pairs have one name once their dash
    /// is dropped (as Binance's API writes symbols).
    DuplicatePair(Symbol),
    /// No pairs are configured.
    NoPairs,
    /// Distributed mode needs the pair's partition.
    NoPartition(String),
    /// The `accounts` section (the message names the key and value).
    Accounts(String),
    /// A pair listed at runtime whose stored table no longer reads.
    Listed(Symbol, String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read(p, e) => write!(f, "cannot read config {}: {e}", p.display()),
            ConfigError::ParseFile(p, e) => write!(f, "config {}: {e}", p.display()),
            ConfigError::ParseInline(e) => write!(f, "EXCHANGE_CONFIG_TOML: {e}"),
            ConfigError::DatabaseUrl(what) => write!(f, "DATABASE_URL: {what}"),
            ConfigError::Listen(v, e) => write!(f, "listen {v:?}: {e}"),
            ConfigError::DbConnections => f.write_str("db_connections must be greater than zero"),
            ConfigError::Runtime(e) => write!(f, "{e}"),
            ConfigError::Cluster(e) => write!(f, "{e}"),
            ConfigError::Gateway(e) => e.fmt(f),
            ConfigError::Spec(e) => e.fmt(f),
            ConfigError::DuplicatePair(s) => write!(
                f,
                "pairs: {s} is listed twice, or has the name of another pair without its dash"
            ),
            ConfigError::NoPairs => f.write_str("pairs: at least one pair is needed"),
            ConfigError::NoPartition(pair) => {
                write!(f, "pair {pair}: partition is needed in distributed mode")
            }
            ConfigError::Accounts(m) => f.write_str(m),
            ConfigError::Listed(pair, e) => write!(f, "listed pair {pair}: its stored table: {e}"),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Read(_, e) => Some(e),
            ConfigError::ParseFile(_, e) | ConfigError::ParseInline(e) => Some(e),
            ConfigError::Listen(_, e) => Some(e),
            ConfigError::Gateway(e) => Some(e),
            ConfigError::Spec(e) => Some(e),
            _ => None,
        }
    }
}

/// Everything the `exchange` binary reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the gateway listens on (`EXCHANGE_LISTEN`).
    pub listen: String,
    /// Directory of the SQLite store when `database_url` is not set
    /// (`EXCHANGE_DATA_DIR`).
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://...` (`DATABASE_URL`); by default an
    /// SQLite file in `data_dir`.
    pub database_url: Option<String>,
    /// Connections in the store's pool.
    pub db_connections: u32,
    /// Log filter, in `tracing` syntax (`RUST_LOG` overrides).
    pub log: String,
    /// Queue bounds and cadences of the engine side.
    pub runtime: RuntimeConfig,
    /// Bounds and timeouts of the gateway.
    pub gateway: GatewayConfig,
    /// Brokers and topics of the distributed mode.
    pub kafka: KafkaConfig,
    /// Lease cadence of the distributed mode's engines.
    pub engine: EngineConfig,
    /// Balances, pre-trade risk and settlement.
    pub accounts: AccountsSection,
    /// The traded pairs.
    pub pairs: Vec<PairSection>,
}

/// The `[accounts]` section: the risk stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountsSection {
    /// Check every order's worst case against the user's balance before it
    /// reaches its book, and settle every trade. Off, the exchange holds no
    /// money (the mode the knee is compared against).
    pub enabled: bool,
    /// Risk-stage inputs between snapshots of the shard.
    pub snapshot_every: u64,
    /// Risk shards in distributed mode (the `risk` and `risk-events`
    /// topics' partitions). A user's shard is `user_id % shards`, so this is
    /// fixed for the life of the data: changing it would move users to
    /// shards that do not hold their balances. Risk roles move whole shards
    /// between them by lease. The embedded exchange runs one shard.
    pub shards: u16,
    /// Local demos only: what every user is credited, once, the first time
    /// one of their keys is used (asset name to decimal amount). Refused
    /// unless `listen` is a loopback address.
    pub demo_funding: std::collections::BTreeMap<String, String>,
}

impl Default for AccountsSection {
    fn default() -> Self {
        AccountsSection {
            enabled: true,
            snapshot_every: 100_000,
            shards: 1,
            demo_funding: std::collections::BTreeMap::new(),
        }
    }
}

/// What a run without any configuration credits each new user: enough to
/// follow the README's walkthrough.
pub fn demo_funding() -> std::collections::BTreeMap<String, String> {
    [("EUR", "100000"), ("BTC", "10"), ("ETH", "100")]
        .into_iter()
        .map(|(a, v)| (a.to_string(), v.to_string()))
        .collect()
}

/// One pair's table in the file: the shape the admin API lists pairs in.
pub type PairSection = PairSpec;

fn demo_pair(
    symbol: &str,
    price_scale: u8,
    (tick, max_price): (&str, &str),
    (lot, max): (&str, &str),
    (notional, max_notional): (&str, &str),
) -> PairSection {
    PairSection {
        symbol: symbol.into(),
        price_scale,
        qty_scale: 8,
        tick_size: tick.into(),
        lot_size: lot.into(),
        min_qty: lot.into(),
        max_qty: max.into(),
        max_price: Some(max_price.into()),
        min_notional: notional.into(),
        max_notional: Some(max_notional.into()),
        default_stp: proto::default_stp(),
        max_open_orders: proto::DEFAULT_MAX_OPEN_ORDERS,
        partition: None,
        maker_fee_bps: proto::DEFAULT_FEE_BPS,
        taker_fee_bps: proto::DEFAULT_FEE_BPS,
        advanced: proto::AdvancedOrders::ALL,
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("data"),
            database_url: None,
            db_connections: 8,
            log: "info".into(),
            runtime: RuntimeConfig::default(),
            gateway: GatewayConfig::default(),
            kafka: KafkaConfig::default(),
            engine: EngineConfig::default(),
            accounts: AccountsSection::default(),
            pairs: vec![
                demo_pair(
                    "BTC-EUR",
                    2,
                    ("0.01", "10000000"),
                    ("0.00001", "1000"),
                    ("1", "100000000"),
                ),
                demo_pair(
                    "ETH-EUR",
                    2,
                    ("0.01", "1000000"),
                    ("0.0001", "10000"),
                    ("1", "100000000"),
                ),
                // 5 + 3 decimals: BTC counts at 8 here too, as in BTC-EUR,
                // so balances in BTC show Binance's 8 decimals.
                PairSection {
                    qty_scale: 3,
                    ..demo_pair(
                        "ETH-BTC",
                        5,
                        ("0.00001", "100"),
                        ("0.001", "10000"),
                        ("0.0001", "10000"),
                    )
                },
            ],
        }
    }
}

impl Config {
    /// Reads `path` if given, else the TOML text in `EXCHANGE_CONFIG_TOML`
    /// (for containers), else the defaults; then applies the environment
    /// overrides.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let inline = std::env::var("EXCHANGE_CONFIG_TOML")
            .ok()
            .filter(|t| !t.trim().is_empty());
        let mut cfg = match (path, inline) {
            (Some(p), _) => {
                let text =
                    std::fs::read_to_string(p).map_err(|e| ConfigError::Read(p.into(), e))?;
                toml::from_str(&text).map_err(|e| ConfigError::ParseFile(p.into(), e))?
            }
            (None, Some(text)) => toml::from_str(&text).map_err(ConfigError::ParseInline)?,
            (None, None) => Config {
                accounts: AccountsSection {
                    demo_funding: demo_funding(),
                    ..AccountsSection::default()
                },
                ..Config::default()
            },
        };
        if let Ok(v) = std::env::var("EXCHANGE_LISTEN") {
            cfg.listen = v;
        }
        if let Ok(v) = std::env::var("EXCHANGE_DATA_DIR") {
            cfg.data_dir = PathBuf::from(v);
        }
        if let Ok(v) = std::env::var("DATABASE_URL")
            && !v.is_empty()
        {
            cfg.database_url = Some(v);
        }
        if let Ok(password) = std::env::var("DATABASE_PASSWORD")
            && !password.is_empty()
            && let Some(url) = &cfg.database_url
        {
            cfg.database_url = Some(with_password(url, &password)?);
        }
        if let Ok(v) = std::env::var("KAFKA_BROKERS")
            && !v.is_empty()
        {
            cfg.kafka.brokers = v;
        }
        if let Ok(v) = std::env::var("KAFKA_SECURITY_PROTOCOL")
            && !v.is_empty()
        {
            cfg.kafka.security_protocol = v;
        }
        Ok(cfg)
    }

    /// The pairs with their partitions, checked: distributed mode needs
    /// every pair mapped, partitions 0..n-1 each once.
    pub fn partitions(&self) -> Result<cluster::Partitions, ConfigError> {
        self.kafka.validate().map_err(ConfigError::Cluster)?;
        self.engine.validate().map_err(ConfigError::Cluster)?;
        let configs = self.validate()?;
        let mut mapped = Vec::new();
        for (section, config) in self.pairs.iter().zip(configs) {
            let p = section
                .partition
                .ok_or_else(|| ConfigError::NoPartition(section.symbol.clone()))?;
            mapped.push((config, p));
        }
        cluster::Partitions::new(&mapped).map_err(ConfigError::Cluster)
    }

    /// The store URL: the configured one, or the SQLite file in `data_dir`.
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}",
                self.data_dir.join("exchange.sqlite").display()
            )
        })
    }

    /// The pairs as the engine takes them, each checked.
    pub fn pair_configs(&self) -> Result<Vec<PairConfig>, ConfigError> {
        let mut out: Vec<PairConfig> = Vec::new();
        for p in &self.pairs {
            let cfg = p.config().map_err(ConfigError::Spec)?;
            // Binance's API names pairs without the dash, so `AB-C` and
            // `A-BC` would be one name there.
            if out.iter().any(|o| o.symbol.joined() == cfg.symbol.joined()) {
                return Err(ConfigError::DuplicatePair(cfg.symbol));
            }
            out.push(cfg);
        }
        if out.is_empty() {
            return Err(ConfigError::NoPairs);
        }
        Ok(out)
    }

    /// This config with the pairs listed at runtime after the file's, in
    /// listing order. A pair the file names too is the file's.
    pub fn with_listed(&self, listed: &[store::ListedPair]) -> Result<Config, ConfigError> {
        let mut out = self.clone();
        for l in listed {
            let mut spec: PairSpec = serde_json::from_str(&l.spec)
                .map_err(|e| ConfigError::Listed(l.pair, e.to_string()))?;
            // The row's partition is the one it holds (unique there).
            if l.partition.is_some() {
                spec.partition = l.partition;
            }
            if !self.pairs.iter().any(|p| p.symbol == spec.symbol) {
                out.pairs.push(spec);
            }
        }
        Ok(out)
    }

    /// Checks every value; the message names the first bad one.
    pub fn validate(&self) -> Result<Vec<PairConfig>, ConfigError> {
        self.listen
            .parse::<std::net::SocketAddr>()
            .map_err(|e| ConfigError::Listen(self.listen.clone(), e))?;
        if self.db_connections == 0 {
            return Err(ConfigError::DbConnections);
        }
        self.runtime.validate().map_err(ConfigError::Runtime)?;
        self.gateway.validate().map_err(ConfigError::Gateway)?;
        let pairs = self.pair_configs()?;
        self.validate_accounts()?;
        Ok(pairs)
    }

    /// `accounts.demo_funding` as amounts at each asset's scale, read with
    /// the running risk stage's asset table; empty when there is none.
    pub fn demo_credits(
        &self,
        assets: &[accounts::AssetInfo],
    ) -> Result<Vec<(accounts::AssetId, u128)>, ConfigError> {
        let a = &self.accounts;
        if !a.enabled || a.demo_funding.is_empty() {
            return Ok(Vec::new());
        }
        let entries: Vec<(String, String)> = a
            .demo_funding
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        gateway::parse_demo_funding(&entries, assets)
            .map_err(|e| ConfigError::Accounts(e.to_string()))
    }

    fn validate_accounts(&self) -> Result<(), ConfigError> {
        let a = &self.accounts;
        if a.snapshot_every == 0 {
            return Err(ConfigError::Accounts(
                "accounts.snapshot_every must be at least 1".into(),
            ));
        }
        if a.shards == 0 {
            return Err(ConfigError::Accounts(
                "accounts.shards must be at least 1".into(),
            ));
        }
        if a.demo_funding.is_empty() {
            return Ok(());
        }
        if !a.enabled {
            return Err(ConfigError::Accounts(
                "accounts.demo_funding needs accounts.enabled = true".into(),
            ));
        }
        let loopback = self
            .listen
            .parse::<std::net::SocketAddr>()
            .is_ok_and(|addr| addr.ip().is_loopback());
        if !loopback {
            return Err(ConfigError::Accounts(format!(
                "accounts.demo_funding credits every new user: it is for local demos only, and listen = {:?} is not a loopback address",
                self.listen
            )));
        }
        Ok(())
    }
}

/// `url` with `password` set (percent-encoded) in its user part: the URL
/// comes from the environment, the password from a secret store.
fn with_password(url: &str, password: &str) -> Result<String, ConfigError> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or(ConfigError::DatabaseUrl("expected scheme://user@host/db"))?;
    let (user, host) = rest.split_once('@').ok_or(ConfigError::DatabaseUrl(
        "a user is needed with DATABASE_PASSWORD",
    ))?;
    let user = user.split(':').next().unwrap_or(user);
    let mut encoded = String::new();
    for b in password.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    Ok(format!("{scheme}://{user}:{encoded}@{host}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::{Price, QuoteQty};

    #[test]
    fn defaults_are_valid() {
        let pairs = Config::default().validate().unwrap();
        assert_eq!(pairs.len(), 3);
        assert_eq!(pairs[0].tick_size, Price(1));
    }

    #[test]
    fn errors_name_the_bad_value() {
        let mut c = Config::default();
        c.pairs[1].tick_size = "0.001".into();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("ETH-EUR") && e.contains("tick_size"), "{e}");
        let mut c = Config::default();
        c.runtime.actor_queue = 0;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("runtime.actor_queue")
        );
        let c = Config {
            listen: "nowhere".into(),
            ..Config::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("nowhere"));
        assert_eq!(
            with_password("postgres://ex@db:5432/ex", "p@ss word").unwrap(),
            "postgres://ex:p%40ss%20word@db:5432/ex"
        );
        let c = Config::default();
        assert!(
            c.partitions()
                .unwrap_err()
                .to_string()
                .contains("partition is needed")
        );
        let mut c = Config::default();
        for (i, p) in c.pairs.iter_mut().enumerate() {
            p.partition = Some(i as i32 % 2);
        }
        assert!(
            c.partitions()
                .unwrap_err()
                .to_string()
                .contains("partition 0")
        );
        let bad: Result<Config, _> = toml::from_str("listne = \"x\"");
        assert!(bad.unwrap_err().to_string().contains("listne"));
    }

    #[test]
    fn spare_partitions_read_as_a_bounded_count() {
        let read = |v: &str| toml::from_str::<Config>(&format!("[kafka]\nspare_partitions = {v}"));
        assert_eq!(read("0").unwrap().kafka.spare_partitions, 0);
        assert_eq!(read("1000").unwrap().kafka.spare_partitions, 1_000);
        assert!(read("1000").unwrap().kafka.validate().is_ok());
        let e = read("1001")
            .unwrap()
            .kafka
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("kafka.spare_partitions"), "{e}");
        // Wrong types and values past a u16 do not read, naming the field.
        for bad in ["-1", "65536", "\"8\"", "1.5", "true"] {
            let e = read(bad).unwrap_err().to_string();
            assert!(e.contains("spare_partitions"), "{bad}: {e}");
        }
    }

    #[test]
    fn risk_shards_and_topics_are_checked() {
        let mut c = Config::default();
        assert_eq!(c.accounts.shards, 1);
        assert_eq!(
            (
                c.kafka.risk_topic.as_str(),
                c.kafka.risk_events_topic.as_str()
            ),
            ("risk", "risk-events")
        );
        c.accounts.shards = 0;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("accounts.shards"), "{e}");
        let mut c = Config::default();
        c.kafka.risk_events_topic = "orders".into();
        let e = c.kafka.validate().unwrap_err().to_string();
        assert!(e.contains("\"orders\"") && e.contains("must differ"), "{e}");
    }

    #[test]
    fn the_lag_bounds_are_checked_per_unit() {
        // Each bound: 0 refused by name, 1 and u64::MAX accepted.
        for key in ["max_pair_lag", "max_pair_lag_records"] {
            for (value, ok) in [("0", false), ("1", true), ("18446744073709551615", true)] {
                let text = format!("[gateway]\n{key} = {value}");
                let parsed: Result<Config, _> = toml::from_str(&text);
                if let Ok(c) = parsed {
                    let checked = c.validate().map(|_| ()).map_err(|e| e.to_string());
                    assert_eq!(checked.is_ok(), ok, "{key} = {value}: {checked:?}");
                    if let Err(e) = checked {
                        assert!(e.contains(key), "{e}");
                    }
                } else {
                    // toml's integers are i64: u64::MAX does not parse.
                    assert_eq!(value, "18446744073709551615", "{key} = {value}");
                }
            }
            // Wrong types and negatives are refused when parsing, naming the key.
            for value in ["\"20000\"", "-1", "1.5", "true"] {
                let text = format!("[gateway]\n{key} = {value}");
                let e = toml::from_str::<Config>(&text).unwrap_err().to_string();
                assert!(e.contains(key), "{key} = {value}: {e}");
            }
        }
    }

    #[test]
    fn the_default_max_price_is_the_widest_that_stays_in_range() {
        let mut c = Config::default();
        c.pairs[0].max_price = None;
        c.pairs[0].max_notional = None;
        let pair = c.validate().unwrap()[0];
        let value = |p: Price| u128::from(p.0) * u128::from(pair.max_qty.0) / 100_000_000;
        assert!(value(pair.max_price) <= u128::from(proto::MAX_VALUE));
        assert!(value(Price(pair.max_price.0 + 1)) > u128::from(proto::MAX_VALUE));
        assert_eq!(pair.max_price.0 % pair.tick_size.0, 0);
        assert_eq!(pair.max_notional, QuoteQty(proto::MAX_VALUE));
        c.pairs[0].max_price = Some("100000000000000000".into());
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("BTC-EUR") && e.contains("max_price"), "{e}");
    }
}
