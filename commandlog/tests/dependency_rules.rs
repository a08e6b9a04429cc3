//! The port's dependency rules, checked on the manifests so they stay true:
//! the gateway talks to the port (and the store's read queries), never to a
//! backend; the backends share the pipeline and not each other; the port
//! itself links nothing but the vocabulary, the book's `Depth` and tokio.

use std::path::Path;

/// The normal (not dev, not build) dependencies `crate_dir`'s manifest names.
fn dependencies(crate_dir: &str) -> Vec<String> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(crate_dir)
        .join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
    let mut in_deps = false;
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if in_deps && !line.is_empty() && !line.starts_with('#') {
            let name = line.split(['=', '.', ' ']).next().unwrap_or_default();
            out.push(name.to_string());
        }
    }
    out
}

fn assert_none_of(crate_dir: &str, forbidden: &[&str]) {
    let deps = dependencies(crate_dir);
    for f in forbidden {
        assert!(
            !deps.iter().any(|d| d == f),
            "{crate_dir} must not depend on {f}: {deps:?}"
        );
    }
}

#[test]
fn the_gateway_links_the_port_not_a_backend() {
    assert!(dependencies("gateway").iter().any(|d| d == "commandlog"));
    assert_none_of("gateway", &["runtime", "cluster", "pipeline", "exchange"]);
}

#[test]
fn the_backends_share_the_pipeline_not_each_other() {
    for backend in ["runtime", "cluster"] {
        let deps = dependencies(backend);
        for needed in ["commandlog", "pipeline"] {
            assert!(deps.iter().any(|d| d == needed), "{backend}: {deps:?}");
        }
    }
    assert_none_of("runtime", &["cluster", "gateway"]);
    assert_none_of("cluster", &["runtime", "gateway"]);
    assert_none_of("pipeline", &["runtime", "cluster", "gateway"]);
}

#[test]
fn the_port_links_only_the_vocabulary() {
    let mut deps = dependencies("commandlog");
    deps.sort();
    assert_eq!(deps, ["engine", "proto", "tokio"]);
}
