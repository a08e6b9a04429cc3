//! The exchange's configuration: a TOML file (optional) with environment
//! overrides, checked by `validate` with messages that name the bad value.

use std::fmt;
use std::path::{Path, PathBuf};

use cluster::{EngineConfig, KafkaConfig};
use gateway::{GatewayConfig, GatewayConfigError};
use pipeline::RuntimeConfig;
use proto::{
    DecimalError, IdError, PairConfig, PairConfigError, Price, Qty, QuoteQty, StpMode, Symbol,
};
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
    /// A pair's symbol is not `BASE-QUOTE`.
    Symbol(String, IdError),
    /// A pair is listed twice, or two pairs have one name once their dash
    /// is dropped (as Binance's API writes symbols).
    DuplicatePair(Symbol),
    /// No pairs are configured.
    NoPairs,
    /// A pair's decimal field does not parse at the pair's scale.
    Decimal {
        /// The pair.
        pair: Symbol,
        /// The field, as named in the file.
        field: &'static str,
        /// The text given.
        value: String,
        /// Why it does not parse.
        error: DecimalError,
    },
    /// A pair's `default_stp` is not a mode's name.
    DefaultStp(Symbol, String),
    /// A pair's values do not fit together.
    Pair(PairConfigError),
    /// Distributed mode needs the pair's partition.
    NoPartition(String),
    /// A pair's fee rates: maker above taker, or above 10,000 bps.
    Fees(Symbol),
    /// The `accounts` section (the message names the key and value).
    Accounts(String),
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
            ConfigError::Symbol(v, e) => write!(f, "pairs: {v:?}: {e}"),
            ConfigError::DuplicatePair(s) => write!(
                f,
                "pairs: {s} is listed twice, or has the name of another pair without its dash"
            ),
            ConfigError::NoPairs => f.write_str("pairs: at least one pair is needed"),
            ConfigError::Decimal {
                pair,
                field,
                value,
                error,
            } => write!(f, "pair {pair}: {field} {value:?}: {error}"),
            ConfigError::DefaultStp(pair, v) => write!(
                f,
                "pair {pair}: default_stp {v:?}: NONE, EXPIRE_TAKER, EXPIRE_MAKER or EXPIRE_BOTH"
            ),
            ConfigError::Pair(e) => e.fmt(f),
            ConfigError::NoPartition(pair) => {
                write!(f, "pair {pair}: partition is needed in distributed mode")
            }
            ConfigError::Fees(pair) => write!(
                f,
                "pair {pair}: maker_fee_bps must be at most taker_fee_bps, and taker_fee_bps at most 10000"
            ),
            ConfigError::Accounts(m) => f.write_str(m),
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
            ConfigError::Symbol(_, e) => Some(e),
            ConfigError::Decimal { error, .. } => Some(error),
            ConfigError::Pair(e) => Some(e),
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

/// One pair, with decimals as strings at the pair's scales.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairSection {
    /// `BASE-QUOTE`.
    pub symbol: String,
    /// Decimals of prices.
    pub price_scale: u8,
    /// Decimals of quantities.
    pub qty_scale: u8,
    /// Price increment, e.g. `"0.01"`.
    pub tick_size: String,
    /// Quantity increment.
    pub lot_size: String,
    /// Smallest order quantity.
    pub min_qty: String,
    /// Largest order quantity.
    pub max_qty: String,
    /// Largest limit price. Default: the highest price on the tick at which
    /// an order of `max_qty` is still worth at most `proto::MAX_VALUE`
    /// price units, so no value the pair produces overflows.
    #[serde(default)]
    pub max_price: Option<String>,
    /// Smallest order value, in the quote currency.
    pub min_notional: String,
    /// Largest order value (and market buy quote amount), in the quote
    /// currency. Default: no limit below the one `max_price` already sets.
    #[serde(default)]
    pub max_notional: Option<String>,
    /// `NONE`, `EXPIRE_TAKER`, `EXPIRE_MAKER` or `EXPIRE_BOTH`.
    #[serde(default = "default_stp")]
    pub default_stp: String,
    /// Most open orders on the book.
    #[serde(default = "default_max_open")]
    pub max_open_orders: u32,
    /// The pair's partition of both Kafka topics (distributed mode).
    #[serde(default)]
    pub partition: Option<i32>,
    /// Fee charged to the resting side of a trade, in basis points of its
    /// value, paid in the quote asset. At most `taker_fee_bps`.
    #[serde(default = "default_fee_bps")]
    pub maker_fee_bps: u16,
    /// Fee charged to the incoming side, in basis points; at most 10,000.
    #[serde(default = "default_fee_bps")]
    pub taker_fee_bps: u16,
    /// The advanced order types the pair takes (`[pairs.advanced]`:
    /// `conditional`, `trailing`, `iceberg`, `lists`, `good_till_date`).
    /// Default: all.
    #[serde(default)]
    pub advanced: proto::AdvancedOrders,
}

fn default_fee_bps() -> u16 {
    10
}

fn default_stp() -> String {
    "NONE".into()
}

fn default_max_open() -> u32 {
    1_000_000
}

/// A demo pair: `(tick, max_price)`, `(lot, max_qty)` and
/// `(min_notional, max_notional)`.
/// The highest price on `tick` at which `max_qty` is worth at most
/// [`proto::MAX_VALUE`] price units: the default `max_price`.
fn widest_max_price(tick: Price, max_qty: Qty, qty_scale: u8) -> Price {
    let cap = u128::from(proto::MAX_VALUE);
    let by_value = cap * proto::pow10(qty_scale) / u128::from(max_qty.0.max(1));
    let p = u64::try_from(by_value.min(cap)).unwrap_or(proto::MAX_VALUE);
    Price(p - p % tick.0.max(1))
}

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
        default_stp: default_stp(),
        max_open_orders: default_max_open(),
        partition: None,
        maker_fee_bps: default_fee_bps(),
        taker_fee_bps: default_fee_bps(),
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
            let symbol =
                Symbol::new(&p.symbol).map_err(|e| ConfigError::Symbol(p.symbol.clone(), e))?;
            // Binance's API names pairs without the dash, so `AB-C` and
            // `A-BC` would be one name there.
            if out.iter().any(|o| o.symbol.joined() == symbol.joined()) {
                return Err(ConfigError::DuplicatePair(symbol));
            }
            let field = |name: &'static str, v: &str, scale: u8| {
                proto::parse_decimal(v, scale).map_err(|error| ConfigError::Decimal {
                    pair: symbol,
                    field: name,
                    value: v.to_string(),
                    error,
                })
            };
            let tick_size = Price(field("tick_size", &p.tick_size, p.price_scale)?);
            let max_qty = Qty(field("max_qty", &p.max_qty, p.qty_scale)?);
            let max_price = match &p.max_price {
                Some(v) => Price(field("max_price", v, p.price_scale)?),
                None => widest_max_price(tick_size, max_qty, p.qty_scale),
            };
            let max_notional = match &p.max_notional {
                Some(v) => QuoteQty(field("max_notional", v, p.price_scale)?),
                None => QuoteQty(proto::MAX_VALUE),
            };
            let cfg = PairConfig {
                symbol,
                price_scale: p.price_scale,
                qty_scale: p.qty_scale,
                tick_size,
                lot_size: Qty(field("lot_size", &p.lot_size, p.qty_scale)?),
                min_qty: Qty(field("min_qty", &p.min_qty, p.qty_scale)?),
                max_qty,
                max_price,
                min_notional: QuoteQty(field("min_notional", &p.min_notional, p.price_scale)?),
                max_notional,
                default_stp: StpMode::from_name(&p.default_stp)
                    .ok_or_else(|| ConfigError::DefaultStp(symbol, p.default_stp.clone()))?,
                max_open_orders: p.max_open_orders,
                advanced: p.advanced,
            };
            cfg.validate().map_err(ConfigError::Pair)?;
            out.push(cfg);
        }
        if out.is_empty() {
            return Err(ConfigError::NoPairs);
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
        self.fees()?;
        self.validate_accounts()?;
        Ok(pairs)
    }

    /// The fee rates the gateway reports commission at: the pairs' rates
    /// when accounts are enabled, none otherwise (commission `"0"`).
    pub fn charged_fees(&self) -> Result<Vec<(Symbol, accounts::Fees)>, ConfigError> {
        if self.accounts.enabled {
            self.fees()
        } else {
            Ok(Vec::new())
        }
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

    /// Each pair's fee rates, checked.
    pub fn fees(&self) -> Result<Vec<(Symbol, accounts::Fees)>, ConfigError> {
        self.pairs
            .iter()
            .map(|p| {
                let symbol =
                    Symbol::new(&p.symbol).map_err(|e| ConfigError::Symbol(p.symbol.clone(), e))?;
                if p.maker_fee_bps > p.taker_fee_bps || p.taker_fee_bps > 10_000 {
                    return Err(ConfigError::Fees(symbol));
                }
                let fees = accounts::Fees {
                    maker_bps: p.maker_fee_bps,
                    taker_bps: p.taker_fee_bps,
                };
                Ok((symbol, fees))
            })
            .collect()
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
