//! The crate map of ARCHITECTURE.md, checked against `cargo metadata`: each
//! workspace crate may depend only on the workspace crates listed for it
//! (normal and build dependencies; dev-dependencies may link more to test
//! against a running exchange). A new edge has to be added here on purpose,
//! with the reason in ARCHITECTURE.md.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// Each workspace crate and the workspace crates it may link.
const ALLOWED: &[(&str, &[&str])] = &[
    // Deterministic core: no clock, no randomness, no I/O.
    ("proto", &[]),
    ("engine", &["proto"]),
    ("accounts", &["proto"]),
    ("workload", &["proto"]),
    ("benches", &["proto", "engine", "workload"]),
    ("store", &["proto"]),
    // The port: what the gateway sees of a command log.
    ("commandlog", &["proto", "engine", "accounts"]),
    // What both backends share: actor shell, event sink, persister, and
    // the risk stage around an accounts shard.
    (
        "pipeline",
        &["proto", "engine", "accounts", "store", "commandlog"],
    ),
    // The two backends.
    (
        "runtime",
        &[
            "proto",
            "engine",
            "accounts",
            "store",
            "commandlog",
            "pipeline",
        ],
    ),
    (
        "cluster",
        &[
            "proto",
            "engine",
            "accounts",
            "store",
            "commandlog",
            "pipeline",
        ],
    ),
    // Order entry and market data over HTTP: the port and the store's reads.
    (
        "gateway",
        &[
            "proto",
            "engine",
            "accounts",
            "store",
            "commandlog",
            "clientkit",
        ],
    ),
    // Clients.
    ("clientkit", &["proto"]),
    ("client", &["proto", "clientkit"]),
    ("loadtest", &["proto", "workload", "clientkit"]),
    // The direct-Kafka load target: beside the cluster, a client of its topics.
    (
        "kafkaload",
        &[
            "proto",
            "workload",
            "clientkit",
            "loadtest",
            "cluster",
            "gateway",
            "exchange",
        ],
    ),
    // The composition root: every role in one binary. It links `client`
    // because `exchange accounts` and `exchange audit` are clients of a
    // running exchange's admin API, signed as every client signs.
    (
        "exchange",
        &[
            "client",
            "proto",
            "engine",
            "accounts",
            "store",
            "commandlog",
            "pipeline",
            "runtime",
            "cluster",
            "gateway",
        ],
    ),
];

/// Workspace crate -> the workspace crates it links (dev-dependencies aside).
fn workspace_edges() -> BTreeMap<String, BTreeSet<String>> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .args(["--manifest-path", root])
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata is JSON");
    let packages = meta["packages"].as_array().expect("packages");
    let members: BTreeSet<String> = packages
        .iter()
        .filter_map(|p| p["name"].as_str().map(str::to_string))
        .collect();
    packages
        .iter()
        .map(|p| {
            let name = p["name"].as_str().unwrap_or_default().to_string();
            let deps = p["dependencies"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|d| d["kind"].as_str() != Some("dev"))
                .filter_map(|d| d["name"].as_str())
                .filter(|d| members.contains(*d))
                .map(str::to_string)
                .collect();
            (name, deps)
        })
        .collect()
}

#[test]
fn every_crate_links_only_what_the_map_allows() {
    let edges = workspace_edges();
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut wrong = Vec::new();
    for (krate, deps) in &edges {
        let Some(ok) = allowed.get(krate.as_str()) else {
            wrong.push(format!("{krate} is not on the crate map"));
            continue;
        };
        for dep in deps {
            if !ok.contains(&dep.as_str()) {
                wrong.push(format!("{krate} -> {dep}"));
            }
        }
    }
    assert!(wrong.is_empty(), "dependencies outside the map: {wrong:?}");
}

#[test]
fn the_map_names_only_crates_that_exist() {
    let edges = workspace_edges();
    for (krate, deps) in ALLOWED {
        assert!(
            edges.contains_key(*krate),
            "{krate} is on the map but not in the workspace"
        );
        for dep in *deps {
            assert!(
                edges.contains_key(*dep),
                "{krate} may link {dep}, which does not exist"
            );
        }
    }
}
