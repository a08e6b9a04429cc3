//! What a direct run needs beyond loadtest's scenario: the brokers (the
//! scenario's `[direct]` table) and the cluster's pairs, partitions and
//! topics (the exchange's own config file, `[exchange] config`).

use std::path::{Path, PathBuf};

use cluster::KafkaConfig;
use loadtest::Scenario;
use loadtest::flow::PairRules;
use loadtest::scenario::TargetKind;
use proto::PairConfig;
use serde::Deserialize;

use crate::Error;

/// The `[direct]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectFile {
    /// Bootstrap brokers, loopback only.
    #[serde(default = "default_brokers")]
    brokers: String,
}

fn default_brokers() -> String {
    "127.0.0.1:9092".into()
}

/// A direct scenario's settings, checked.
#[derive(Debug, Clone)]
pub struct Direct {
    /// The checked bootstrap brokers.
    pub brokers: String,
    /// The cluster's config file.
    pub config: PathBuf,
}

impl Direct {
    /// The settings of `scenario`, which must be a `target = "direct"` one
    /// with `[exchange] config`; `brokers` overrides the file's.
    pub fn of(scenario: &Scenario, brokers: Option<&str>) -> Result<Direct, Error> {
        if scenario.target != TargetKind::Direct {
            return Err(Error::Settings(format!(
                "scenario {}: kafkaload runs target = \"direct\" scenarios (this one is {:?}; \
                 run it with loadtest)",
                scenario.name, scenario.target
            )));
        }
        let f: DirectFile = scenario
            .direct
            .clone()
            .try_into()
            .map_err(|e| Error::Settings(format!("[direct]: {e}")))?;
        let brokers = check_brokers(brokers.unwrap_or(&f.brokers))?;
        let config = scenario.exchange.config.clone().ok_or_else(|| {
            Error::Settings(
                "target = \"direct\" needs [exchange] config: the cluster's config file \
                 names the pairs, their partitions and the topics"
                    .into(),
            )
        })?;
        Ok(Direct { brokers, config })
    }
}

/// `list` (comma-separated `host:port`) with every broker checked to be a
/// loopback address: load goes to this machine only.
pub fn check_brokers(list: &str) -> Result<String, Error> {
    list.split(',')
        .map(|b| {
            loadtest::loopback::check_url(&format!("http://{}", b.trim()))
                .map(|_| b.trim())
                .map_err(|e| Error::Settings(format!("brokers {list:?}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|v| v.join(","))
}

/// The cluster's pairs (with their partitions, in partition order) and
/// topics, from the exchange's own config file, with `brokers` instead of
/// the file's.
pub fn cluster_config(
    path: &Path,
    brokers: &str,
) -> Result<(KafkaConfig, Vec<(PairConfig, i32)>), Error> {
    let bad = |e: &dyn std::fmt::Display| Error::Settings(format!("{}: {e}", path.display()));
    let config = exchange::Config::load(Some(path)).map_err(|e| bad(&e))?;
    let partitions = config.partitions().map_err(|e| bad(&e))?;
    let mut pairs: Vec<(PairConfig, i32)> = partitions.iter().map(|(p, c)| (c, p)).collect();
    pairs.sort_by_key(|(_, p)| *p);
    let kafka = KafkaConfig {
        brokers: brokers.to_string(),
        ..config.kafka
    };
    Ok((kafka, pairs))
}

/// The flow's view of a pair's rules: both its names, as the gateway's
/// `exchangeInfo` would give them.
pub fn rules(config: &PairConfig) -> PairRules {
    PairRules {
        symbol: config.symbol.joined(),
        stream: config.symbol.as_str().to_string(),
        price_scale: config.price_scale,
        qty_scale: config.qty_scale,
        tick: config.tick_size.0,
        lot: config.lot_size.0,
        min_qty: config.min_qty.0,
        max_qty: config.max_qty.0,
        min_notional: config.min_notional.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        [[phases]]
        rate = 100
        duration_s = 2
    "#;

    fn direct(text: &str) -> Result<Direct, Error> {
        let s = Scenario::parse(text, "k").map_err(|e| Error::Settings(e.to_string()))?;
        Direct::of(&s, None)
    }

    #[test]
    fn a_direct_target_needs_the_cluster_config_and_loopback_brokers() {
        let e = direct(&format!("target = \"direct\"\n{MINIMAL}"))
            .expect_err("no config")
            .to_string();
        assert!(e.contains("[exchange] config"), "{e}");
        let with_config = "[exchange]\nconfig = \"cluster.toml\"\n";
        let d = direct(&format!(
            "target = \"direct\"\n{MINIMAL}{with_config}[direct]\nbrokers = \"127.0.0.1:9092\"\n"
        ))
        .expect("valid");
        assert_eq!(d.brokers, "127.0.0.1:9092");
        assert_eq!(d.config, PathBuf::from("cluster.toml"));
        let e = direct(&format!(
            "target = \"direct\"\n{MINIMAL}{with_config}[direct]\nbrokers = \"10.0.0.1:9092\"\n"
        ))
        .expect_err("not loopback")
        .to_string();
        assert!(e.contains("brokers") && e.contains("non-loopback"), "{e}");
        let e = direct(&format!("{MINIMAL}{with_config}"))
            .expect_err("an http scenario")
            .to_string();
        assert!(e.contains("loadtest"), "{e}");
        let e = direct(&format!(
            "target = \"direct\"\n{MINIMAL}{with_config}[direct]\ntopic = \"x\"\n"
        ))
        .expect_err("unknown key")
        .to_string();
        assert!(e.contains("topic"), "{e}");
    }

    #[test]
    fn the_shipped_direct_scenario_runs_here() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../loadtest/scenarios/direct.toml");
        let s = Scenario::load(&path).expect("direct.toml");
        let d = Direct::of(&s, None).expect("a direct scenario");
        assert_eq!(d.brokers, "127.0.0.1:9092");
        assert_eq!(d.config, PathBuf::from("loadtest/cluster.toml"));
        let d = Direct::of(&s, Some("127.0.0.1:19092")).expect("brokers given");
        assert_eq!(d.brokers, "127.0.0.1:19092");
    }

    #[test]
    fn the_shipped_cluster_config_names_the_pairs_in_partition_order() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../loadtest/cluster.toml");
        let (kafka, pairs) = cluster_config(&path, "127.0.0.1:19092").expect("cluster.toml");
        assert_eq!(kafka.brokers, "127.0.0.1:19092");
        assert!(!pairs.is_empty());
        assert!(pairs.windows(2).all(|w| w[0].1 < w[1].1));
        let r = rules(&pairs[0].0);
        assert_eq!(r.stream, pairs[0].0.symbol.as_str());
        assert_eq!(r.symbol, pairs[0].0.symbol.joined());
        assert!(!r.symbol.contains('-'), "{r:?}");
    }
}
