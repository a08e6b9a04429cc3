//! Runs the smoke scenario for about two seconds at about 200 requests/s
//! against a real exchange started in this process (port 0, SQLite in a
//! scratch directory), with keys made through the store: over HTTP and
//! over the WebSocket API. And the null scenario against the null exchange.

use std::path::Path;
use std::time::Duration;

use loadtest::Credentials;
use loadtest::scenario::{Keys, TargetKind};
use loadtest::{RunOptions, Scenario};

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_shipped_exchange_config_is_valid() {
    let config = exchange::Config::load(Some(&manifest_dir().join("exchange.toml")))
        .expect("loadtest/exchange.toml parses");
    config.validate().expect("and is valid");
    let g = &config.gateway;
    assert!(g.rate_limit_per_sec >= 1_000_000);
    // Binance's limits, out of the way of the largest runs: 20M requests
    // (max_requests) from one IP and, in the worst case, one user.
    assert!(g.request_weight_per_minute >= 1_000_000_000, "{g:?}");
    assert!(g.orders_per_10s >= 1_000_000_000, "{g:?}");
    assert!(g.orders_per_day >= 1_000_000_000, "{g:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_scenario_against_a_real_exchange() {
    smoke(TargetKind::Http).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_scenario_through_the_websocket_api() {
    smoke(TargetKind::Ws).await;
}

/// The smoke scenario through `target`: every request ends, none fails,
/// cancels, amends and replaces find their orders, and the books stay in
/// sync.
async fn smoke(target: TargetKind) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = exchange::Config {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().join("data"),
        log: "warn".into(),
        ..exchange::Config::default()
    };
    config.gateway.rate_limit_per_sec = 1_000_000;
    config.gateway.rate_limit_burst = 1_000_000;
    // As loadtest/exchange.toml: Binance's defaults leave little room (10
    // users' 400 requests come near 50 orders per account per 10 s, and a
    // depth snapshot weighs 250), and the run must never meet them.
    config.gateway.request_weight_per_minute = 1_000_000_000;
    config.gateway.orders_per_10s = 1_000_000_000;
    config.gateway.orders_per_day = 1_000_000_000;
    let running = exchange::start(&config).await.expect("exchange starts");

    let mut scenario =
        Scenario::load(&manifest_dir().join("scenarios/smoke.toml")).expect("smoke.toml");
    scenario.url =
        loadtest::loopback::check_url(&format!("http://{}", running.addr)).expect("loopback");
    scenario.phases[0].rate = 200;
    scenario.phases[0].duration = Duration::from_secs(2);
    scenario.target = target;
    let mut keys = Vec::new();
    for i in 0..scenario.users.count {
        let k = running
            .store
            .create_api_key(&format!("smoke-{i}"), 1)
            .await
            .expect("key");
        keys.push(Credentials {
            api_key: k.api_key,
            secret: k.secret,
        });
    }
    fund(&running, scenario.users.count).await;
    let out = dir.path().join("results");
    let result = loadtest::run(
        &scenario,
        &RunOptions {
            out_dir: out.clone(),
            credentials: Some(keys),
            quiet: false,
        },
    )
    .await
    .expect("the run completes");
    println!("{}", loadtest::summary(&result));

    let q = &result.requests;
    assert_eq!(q.planned, 400);
    assert_eq!(q.dispatched, 400);
    let ended: u64 = q.outcomes.values().sum();
    assert_eq!(ended, 400, "every request ended: {:?}", q.outcomes);
    assert!(q.outcomes["accepted"] > 200, "{:?}", q.outcomes);
    assert_eq!(q.outcomes["error"], 0, "{:?} {:?}", q.outcomes, q.failures);
    assert_eq!(q.outcomes["timeout"], 0, "{:?}", q.outcomes);
    assert_eq!(q.outcomes["shed"], 0, "{:?}", q.outcomes);
    // Cancels, amends and replaces found resting orders to act on.
    assert!(q.by_kind["cancel"]["accepted"] > 0, "{:?}", q.by_kind);
    assert!(q.by_kind["amend"]["accepted"] > 0, "{:?}", q.by_kind);
    assert!(q.by_kind["replace"]["accepted"] > 0, "{:?}", q.by_kind);

    let depth = result.depth.as_ref().expect("the depth subscriber ran");
    assert_eq!(depth.gaps, 0, "{depth:?}");
    for p in &depth.pairs {
        assert_eq!(p.counts.gaps, 0, "{p:?}");
        assert_eq!(p.book_matches_at_end, Some(true), "{p:?}");
    }
    assert!(
        depth.pairs.iter().any(|p| p.counts.applied > 0),
        "{depth:?}"
    );

    check_engine(&result);

    for f in [
        "result.json",
        "report.html",
        "histograms.hlog",
        "histograms/answered.hgrm",
    ] {
        let path = out.join(f);
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert!(len > 0, "{} was written", path.display());
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("result.json")).expect("read result.json"))
            .expect("result.json is JSON");
    assert_eq!(json["requests"]["planned"], 400);
    assert!(json["definitions"]["event"].is_string());
    let html = std::fs::read_to_string(out.join("report.html")).expect("read report.html");
    assert!(html.contains("<svg"), "charts are inline SVG");
    assert!(html.matches("<svg").count() >= 4);
    assert!(html.contains("Engine backlog"), "the backlog is charted");

    running.shutdown().await;
}

/// The engine applied every accepted request, traded, and its backlog was
/// sampled while sending and emptied after the run.
fn check_engine(result: &loadtest::RunResult) {
    let accepted = result.requests.outcomes["accepted"];
    let engine = result.engine.as_ref().expect("metrics scraped");
    assert!(
        engine.commands_total >= accepted,
        "every accepted request is a command: {engine:?}"
    );
    assert!(engine.events_total > engine.commands_total, "{engine:?}");
    assert!(
        engine.counts.events.get("trade").copied().unwrap_or(0) > 0,
        "{engine:?}"
    );
    // The backlog was sampled while sending, and emptied after the run.
    let backlog = &engine.backlog;
    assert!(backlog.samples >= 1, "{backlog:?}");
    assert!(backlog.empty_after_s.is_some(), "{backlog:?}");
    assert!(
        result.timeline.iter().any(|p| p.backlog.is_some()),
        "the time line carries the samples"
    );
}

/// Funds the users as the harness funds those it creates, with an admin
/// key made through the store: the exchange holds money.
async fn fund(running: &exchange::Running, users: usize) {
    let admin = running
        .store
        .create_admin_key("smoke-funding", 1)
        .await
        .expect("admin key");
    let admin = Credentials {
        api_key: admin.admin_key,
        secret: admin.secret,
    };
    let names: Vec<String> = (0..users).map(|i| format!("smoke-{i}")).collect();
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let base = format!("http://{}", running.addr);
    let info: serde_json::Value = http
        .get(format!("{base}/api/v3/exchangeInfo"))
        .send()
        .await
        .expect("exchangeInfo")
        .json()
        .await
        .expect("JSON");
    let assets = loadtest::funding::assets(&info);
    let funded = loadtest::funding::fund(&http, &base, &admin, &names, &assets, "1000000")
        .await
        .expect("funded");
    assert!(
        matches!(funded, loadtest::funding::Funded::Users { deposits, .. } if deposits == names.len() * 3),
        "{funded:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_null_scenario_against_the_null_exchange() {
    let addr = null_exchange().await;

    let mut scenario =
        Scenario::load(&manifest_dir().join("scenarios/null.toml")).expect("null.toml");
    assert_eq!(scenario.target, TargetKind::Ws);
    assert_eq!(scenario.users.keys, Keys::Unchecked);
    scenario.url = loadtest::loopback::check_url(&format!("http://{addr}")).expect("loopback");
    scenario.phases[0].rate = 2_000;
    scenario.phases[0].duration = Duration::from_secs(1);
    let dir = tempfile::tempdir().expect("tempdir");
    let result = loadtest::run(
        &scenario,
        &RunOptions {
            out_dir: dir.path().join("results"),
            credentials: None,
            quiet: true,
        },
    )
    .await
    .expect("the run completes");
    let q = &result.requests;
    assert_eq!(q.planned, 2_000);
    assert_eq!(
        q.outcomes["accepted"], 2_000,
        "{:?} {:?}",
        q.outcomes, q.failures
    );
    // The flow learned the null exchange's order ids: it sent cancels.
    assert!(q.by_kind["cancel"]["accepted"] > 0, "{:?}", q.by_kind);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_websocket_target_answers_a_single_submit_too() {
    use loadtest::target::Target;
    let addr = null_exchange().await;
    let users = [Credentials {
        api_key: "k".into(),
        secret: "s".into(),
    }];
    let target = loadtest::wsapi::WsTarget::new(addr, &users, 1, 4).expect("target");
    let req = loadtest::flow::Request {
        kind: loadtest::flow::Kind::Cancel,
        user: 0,
        pair: 0,
        method: loadtest::flow::Method::Delete,
        path: "/api/v3/order",
        query: "symbol=BTCEUR&orderId=5".into(),
        body: Default::default(),
        follow: loadtest::flow::Follow::Nothing,
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    // Not opened yet: refused, not lost.
    assert!(target.submit(&req, deadline).await.is_err());
    target.warm_up().await.expect("connects and logs on");
    let answer = target.submit(&req, deadline).await.expect("answered");
    assert_eq!(answer.status, 200);
    let body: serde_json::Value = serde_json::from_slice(&answer.body).expect("JSON");
    assert!(body["orderId"].as_u64().is_some(), "{body}");
    // A user the target has no connection for.
    let stranger = loadtest::flow::Request { user: 7, ..req };
    assert!(target.submit(&stranger, deadline).await.is_err());
}

/// A null exchange on a free loopback port, serving in the background.
async fn null_exchange() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(loadtest::null::serve_on(listener));
    addr
}

#[test]
fn the_null_exchange_refuses_a_bad_or_outside_address() {
    for (listen, why) in [
        ("0.0.0.0:9400", "loopback"),
        ("10.0.0.1:9400", "loopback"),
        ("127.0.0.1", "invalid"),
        ("127.0.0.1:65536", "invalid"),
        ("localhost:9400", "invalid"),
        ("", "invalid"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_loadtest"))
            .args(["null-exchange", "--listen", listen])
            .output()
            .expect("runs");
        assert!(!out.status.success(), "{listen:?} was taken");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why), "{listen:?}: {err}");
    }
}
