//! Distributed mode with the real broker (Tansu), real Postgres and every
//! role in its own process. Skipped (with a note) when the broker binary or
//! Postgres is missing, except under CI=true, where that fails the test.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use client::{Client, Credentials, Method};
use common::money::{BTC_SCALE, EUR_SCALE, balance, balances, from_fills, open_needs};
use futures_util::{SinkExt, StreamExt};
use proto::{Seq, Symbol};
use serde_json::{Value, json};
use store::{Batch, Store};
use tokio_tungstenite::tungstenite::Message;

const BIN: &str = env!("CARGO_BIN_EXE_exchange");

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The pinned broker, installed by `scripts/broker.sh install`.
fn tansu() -> Option<PathBuf> {
    let home = std::env::var("HOME")
        .ok()
        .map(|h| Path::new(&h).join(".cargo/bin/tansu"));
    let found = std::env::var("PATH")
        .ok()
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("tansu"))
                .find(|t| t.is_file())
        })
        .or(home.filter(|h| h.is_file()));
    if found.is_none() {
        assert!(
            !in_ci(),
            "tansu is required in CI: run scripts/broker.sh install"
        );
        eprintln!("SKIPPED: no tansu binary (scripts/broker.sh install builds it)");
    }
    found
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A child process killed when dropped.
struct Proc {
    child: Child,
    addr: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    fn kill_9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the graceful stop.
    fn terminate(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{} did not stop on SIGTERM within 30 s", self.addr);
    }
}

struct Cluster {
    dir: tempfile::TempDir,
    config: PathBuf,
    db: String,
    broker_port: u16,
    tansu: PathBuf,
}

impl Cluster {
    /// A cluster whose engines send idle pairs the passing of time every
    /// `gtd_tick_ms` (0: never, so a test may compare the log with a final
    /// snapshot without a time command landing between the two), with the
    /// risk stage when `accounts`.
    fn new(tansu: PathBuf, db: String, gtd_tick_ms: u64, accounts: bool) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let spare = if accounts { 4 } else { 2 };
        let broker_port = free_port();
        let config = dir.path().join("cluster.toml");
        std::fs::write(
            &config,
            format!(
                r#"
log = "warn,cluster=info"
# Two risk shards: alice and bob (users 1 and 2) are in different ones, so
# every trade between them is settled by both.
[accounts]
enabled = {accounts}
shards = 2
snapshot_every = 30
[kafka]
brokers = "127.0.0.1:{broker_port}"
# Room for listings: without accounts, the listing test takes both, then
# finds none; with, it lists three.
spare_partitions = {spare}
[engine]
lease_ms = 1000
heartbeat_ms = 200
[runtime]
snapshot_every = 150
gtd_tick_ms = {gtd_tick_ms}
# Small enough that a replay fills an actor's queue: the engine pauses that
# partition and resumes it, and the fills must still be exact.
actor_queue = 8
# Two keys send bursts of hundreds of orders from 127.0.0.1: far past
# Binance's 6,000 request weight per IP and minute and 50 orders per
# account and 10 s.
[gateway]
rate_limit_per_sec = 100000
rate_limit_burst = 100000
request_weight_per_minute = 100000000
orders_per_10s = 10000000
orders_per_day = 100000000
max_pair_lag = 1000000
[[pairs]]
symbol = "BTC-EUR"
partition = 0
price_scale = 2
qty_scale = 8
tick_size = "0.01"
lot_size = "0.001"
min_qty = "0.001"
max_qty = "100"
min_notional = "1"
[[pairs]]
symbol = "ETH-EUR"
partition = 1
price_scale = 2
qty_scale = 8
tick_size = "0.01"
lot_size = "0.001"
min_qty = "0.001"
max_qty = "100"
min_notional = "1"
"#
            ),
        )
        .unwrap();
        Cluster {
            dir,
            config,
            db,
            broker_port,
            tansu,
        }
    }

    /// A cluster with its broker running and its topics created, or `None`
    /// (the test is skipped) without the broker binary or Postgres.
    async fn start() -> Option<(Cluster, Proc)> {
        Cluster::start_ticking(0).await
    }

    /// [`Cluster::start`], with time commands every `gtd_tick_ms`.
    async fn start_ticking(gtd_tick_ms: u64) -> Option<(Cluster, Proc)> {
        Cluster::start_with(gtd_tick_ms, true).await
    }

    /// [`Cluster::start_ticking`], with or without the risk stage.
    async fn start_with(gtd_tick_ms: u64, accounts: bool) -> Option<(Cluster, Proc)> {
        let tansu = tansu()?;
        let db = common::fresh_postgres().await?;
        let cluster = Cluster::new(tansu, db, gtd_tick_ms, accounts);
        eprintln!("cluster logs in {}", cluster.dir.path().display());
        let broker = cluster.broker();
        let created = cluster.command(&["topics", "create"]).output().unwrap();
        assert!(created.status.success(), "{created:?}");
        Some((cluster, broker))
    }

    fn broker(&self) -> Proc {
        let log = std::fs::File::create(self.dir.path().join("tansu.log")).unwrap();
        let url = format!("tcp://127.0.0.1:{}", self.broker_port);
        let child = Command::new(&self.tansu)
            .current_dir(self.dir.path())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.broker_port)).is_err() {
            assert!(Instant::now() < deadline, "the broker did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Proc { child, addr: url }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .env("EXCHANGE_CONFIG", &self.config)
            .env("DATABASE_URL", &self.db)
            .env("EXCHANGE_LISTEN", "127.0.0.1:0")
            .env_remove("EXCHANGE_CONFIG_TOML")
            .env_remove("KAFKA_BROKERS");
        c
    }

    /// Starts a role and waits until its /readyz answers 200.
    async fn role(&self, role: &str, name: &str) -> Proc {
        let log = std::fs::File::create(self.dir.path().join(format!("{name}.log"))).unwrap();
        let mut child = self
            .command(&[role])
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut reader = BufReader::new(stdout);
        let mut log = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.path().join(format!("{name}.log")))
            .unwrap();
        // Logs may come before the line with the address: they go to the
        // role's log file, as does the rest of stdout.
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap() > 0 && !line.contains("http://") {
            std::io::Write::write_all(&mut log, line.as_bytes()).unwrap();
            line.clear();
        }
        std::thread::spawn(move || std::io::copy(&mut reader, &mut log));
        let addr = line
            .trim()
            .rsplit("http://")
            .next()
            .filter(|a| a.contains(':'))
            .unwrap_or_else(|| panic!("{name}: no address in {line:?}; see {name}.log"))
            .to_string();
        let proc = Proc { child, addr };
        let http = client::HttpClient::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = http
                .get(format!("http://{}/readyz", proc.addr))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return proc;
            }
            assert!(Instant::now() < deadline, "{name} not ready within 60 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn kafka(&self) -> cluster::KafkaConfig {
        cluster::KafkaConfig {
            brokers: format!("127.0.0.1:{}", self.broker_port),
            ..cluster::KafkaConfig::default()
        }
    }
}

fn signed(url: &str, key: &store::ApiKey) -> Client {
    Client::new(
        url,
        Some(Credentials {
            api_key: key.api_key.clone(),
            secret: key.secret.clone(),
        }),
    )
}

type Trades = std::sync::Arc<std::sync::Mutex<Vec<u64>>>;

/// Collects the trade ids a gateway's stream shows for BTC-EUR.
async fn trade_stream(addr: &str) -> Trades {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .unwrap();
    ws.send(Message::text(
        json!({"method": "SUBSCRIBE", "params": ["btceur@trade"], "id": 1}).to_string(),
    ))
    .await
    .unwrap();
    let trades = Trades::default();
    let sink = trades.clone();
    tokio::spawn(async move {
        while let Some(Ok(msg)) = ws.next().await {
            if let Message::Text(t) = msg
                && let Ok(v) = serde_json::from_str::<Value>(&t)
                && v["e"] == "trade"
            {
                sink.lock().unwrap().push(v["t"].as_u64().unwrap());
            }
        }
    });
    trades
}

/// What `trades` holds once it has `n` ids (or after 30 s).
async fn first_n(trades: &Trades, n: usize) -> Vec<u64> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while trades.lock().unwrap().len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    trades.lock().unwrap().clone()
}

/// The fills an uninterrupted run over the same command log produces, and
/// the book's final state hash and position.
async fn replay(cluster: &Cluster, pair: Symbol) -> (Vec<store::FillRow>, u64, u64) {
    let config = exchange::Config::load(Some(&cluster.config)).unwrap();
    let pc = config
        .pair_configs()
        .unwrap()
        .into_iter()
        .find(|p| p.symbol == pair)
        .unwrap();
    let qty_scale = pc.qty_scale;
    let mut batch = Batch::default();
    let mut last = Seq(0);
    let (book, position) = cluster::replay_log(&cluster.kafka(), 0, &pc, |events| {
        batch.add_events(qty_scale, &mut last, events)
    })
    .await
    .unwrap();
    (batch.fills().to_vec(), book.state_hash(), position)
}

/// The pair's fills in Postgres once there are `n` (or after 90 s).
async fn stored_fills(store: &Store, pair: Symbol, n: usize) -> Vec<store::FillRow> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let stored = store.all_fills(pair).await.unwrap();
        if stored.len() >= n || Instant::now() > deadline {
            return stored;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A seeded stream of BTC-EUR limit orders around one price, so that about
/// half of them trade.
fn crossing_orders(mut seed: u64, n: usize) -> Vec<Value> {
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seed >> 33
    };
    (0..n)
        .map(|_| {
            let side = if next() % 2 == 0 { "BUY" } else { "SELL" };
            let price = 30_000 + (next() % 20) as i64 - 10;
            let qty = 1 + next() % 5;
            json!({"symbol": "BTCEUR", "side": side, "type": "LIMIT", "timeInForce": "GTC",
                   "quantity": format!("0.00{qty}"), "price": format!("{price}.00"),
                   "selfTradePreventionMode": "EXPIRE_TAKER", "newOrderRespType": "ACK"})
        })
        .collect()
}

/// Deposits plenty of EUR and BTC for each user through the gateway's
/// admin API; returns the operator's client.
async fn fund(store: &Store, url: &str, users: &[&str]) -> common::Admin {
    let key = store.create_admin_key("ops", 1).await.unwrap();
    let admin = common::Admin::new(
        url,
        Credentials {
            api_key: key.admin_key,
            secret: key.secret,
        },
    );
    for user in users {
        for (asset, amount) in [("EUR", DEPOSIT_EUR), ("BTC", DEPOSIT_BTC)] {
            let body = json!({"user": user, "asset": asset, "amount": amount.to_string(),
                              "ref": format!("{user}-{asset}")});
            let r = admin.post("/admin/v1/deposit", &body).await;
            assert!(r.status.is_success(), "{:?}", r.body);
        }
    }
    admin
}

const DEPOSIT_EUR: i128 = 1_000_000;
const DEPOSIT_BTC: i128 = 100;

/// Waits until each user's balances equal their deposits moved by exactly
/// their stored fills, and their `locked` what their open orders need (plus
/// `extra_eur_locked`, for orders the store does not list); then asserts it.
async fn money_matches(users: &[(&str, &Client, i128)]) {
    let deposited = (
        DEPOSIT_EUR * 10i128.pow(u32::from(EUR_SCALE)),
        DEPOSIT_BTC * 10i128.pow(u32::from(BTC_SCALE)),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    for (user, c, extra) in users {
        loop {
            let all = balances(c).await;
            let (eur_free, eur_locked) = balance(&all, "EUR", EUR_SCALE);
            let (btc_free, btc_locked) = balance(&all, "BTC", BTC_SCALE);
            let held = (eur_free + eur_locked, btc_free + btc_locked);
            let expected = from_fills(c, deposited.0, deposited.1).await;
            let (eur_needs, btc_needs) = open_needs(c).await;
            let needs = (eur_needs + extra, btc_needs);
            let settled = held == expected && (eur_locked, btc_locked) == needs;
            if settled || Instant::now() > deadline {
                assert_eq!(
                    held, expected,
                    "{user}: balances against deposits and fills"
                );
                assert_eq!(
                    (eur_locked, btc_locked),
                    needs,
                    "{user}: locked against open orders"
                );
                assert_ne!(expected, deposited, "{user} traded");
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Each user's `(EUR, BTC)` balances (free, locked) in the shards replayed
/// from offset zero, as uninterrupted risk roles would hold them; checks
/// that each replayed shard's own audit passes.
async fn replayed_balances(cluster: &Cluster, users: &[proto::UserId]) -> Vec<[(i128, i128); 2]> {
    let config = exchange::Config::load(Some(&cluster.config)).unwrap();
    let pairs = config.pair_configs().unwrap();
    let settings = pipeline::RiskSettings {
        snapshot_every: u64::MAX,
    };
    let metrics = pipeline::PipelineMetrics::register(&prometheus::Registry::new()).unwrap();
    let mut shards = Vec::new();
    for index in 0..config.accounts.shards {
        let id = cluster::ShardId {
            index,
            count: config.accounts.shards,
        };
        let mut core =
            cluster::RiskCore::restore(id, None, &pairs, settings.clone(), metrics.clone())
                .unwrap();
        cluster::replay_risk(&cluster.kafka(), &mut core)
            .await
            .unwrap();
        assert_eq!(core.shard().audit(), Ok(()), "shard {index} replayed");
        shards.push(core);
    }
    users
        .iter()
        .map(|user| {
            let core = shards.iter().find(|c| c.id().holds(*user)).unwrap();
            let assets = core.shard().assets();
            ["EUR", "BTC"].map(|name| {
                let asset = commandlog::asset_by_name(assets, name).unwrap();
                let b = core.shard().balance(*user, asset);
                (b.free as i128, b.locked as i128)
            })
        })
        .collect()
}

/// Produces the first `records` forwarded records of BTC-EUR's command log
/// again, headers and all, as a risk role that lost its lease without
/// knowing it would: the engines must drop every command in them.
async fn forward_again(cluster: &Cluster, records: usize) {
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let kafka = cluster.kafka();
    let consumer: StreamConsumer = kafka.consumer_config("zombie").create().unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(&kafka.orders_topic, 0, rdkafka::Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let producer: FutureProducer = kafka.producer().unwrap();
    let mut sent = 0;
    while sent < records {
        let m = tokio::time::timeout(Duration::from_secs(10), consumer.recv())
            .await
            .expect("forwarded records in the log")
            .unwrap();
        let Some(tag) = m.headers().and_then(|h| {
            h.iter()
                .find(|h| h.key == cluster::RISK_HEADER)
                .and_then(|h| h.value.map(<[u8]>::to_vec))
        }) else {
            continue;
        };
        let again = FutureRecord::<(), [u8]>::to(&kafka.orders_topic)
            .partition(0)
            .payload(m.payload().unwrap())
            .headers(OwnedHeaders::new().insert(Header {
                key: cluster::RISK_HEADER,
                value: Some(&tag),
            }));
        producer.send(again, Duration::from_secs(5)).await.unwrap();
        sent += 1;
    }
}

/// Sends orders through gateway `g3` from both users, and kills it -9
/// while they are in flight.
async fn kill_gateway_under_load(g3: Proc, keys: [&store::ApiKey; 2]) {
    let url = format!("http://{}", g3.addr);
    let clients: Vec<Client> = keys.iter().map(|k| signed(&url, k)).collect();
    let orders = crossing_orders(0x9a7e, 200);
    let load = tokio::spawn(async move {
        let mut answered = 0;
        for chunk in orders.chunks(20) {
            let sends = chunk
                .iter()
                .enumerate()
                .map(|(j, o)| clients[j % 2].place(o));
            for r in futures_util::future::join_all(sends).await {
                answered += usize::from(r.is_ok_and(|r| r.status.is_success()));
            }
        }
        answered
    });
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    g3.kill_9();
    let answered = load.await.unwrap();
    eprintln!("gateway 3 answered {answered} of 200 orders before kill -9");
}

/// Every shard's audit, through the admin API, passes.
async fn audit_passes(admin: &Client) {
    let audit = admin
        .signed(Method::GET, "/admin/v1/audit", "", None)
        .await
        .unwrap();
    assert_eq!(audit.body["passed"], true, "{:?}", audit.body);
}

/// Kills -9 the risk role that runs `shard` now.
async fn kill_risk_owner(roles: &mut [Option<Proc>], shard: u16) {
    let series = format!("risk_shard_owned{{shard=\"{shard}\"}} 1");
    for _ in 0..100 {
        for slot in roles.iter_mut() {
            let Some(p) = slot.as_ref() else { continue };
            let text = reqwest_text(&format!("http://{}/metrics", p.addr)).await;
            if text.lines().any(|l| l == series) {
                slot.take().unwrap().kill_9();
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no risk role reported running shard {shard}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[expect(
    clippy::too_many_lines,
    reason = "one story: a cluster, kill -9, failover, then the same run uninterrupted"
)]
async fn engines_fail_over_and_fills_match_an_uninterrupted_run() {
    let Some((cluster, _broker)) = Cluster::start().await else {
        return;
    };
    let db = cluster.db.clone();

    let persister = cluster.role("persister", "persister").await;
    let engine_a = cluster.role("engine", "engine-a").await;
    let engine_b = cluster.role("engine", "engine-b").await;
    let mut risks = vec![
        Some(cluster.role("risk", "risk-a").await),
        Some(cluster.role("risk", "risk-b").await),
    ];
    let g1 = cluster.role("gateway", "gateway-1").await;
    let g2 = cluster.role("gateway", "gateway-2").await;
    let g3 = cluster.role("gateway", "gateway-3").await;
    let store = Store::connect(&db, 2).await.unwrap();
    let alice = store.create_api_key("alice", 1).await.unwrap();
    let bob = store.create_api_key("bob", 1).await.unwrap();
    let admin = fund(&store, &format!("http://{}", g1.addr), &["alice", "bob"]).await;
    let clients = [
        signed(&format!("http://{}", g1.addr), &alice),
        signed(&format!("http://{}", g2.addr), &bob),
        signed(&format!("http://{}", g2.addr), &alice),
        signed(&format!("http://{}", g1.addr), &bob),
    ];
    let ws1 = trade_stream(&g1.addr).await;
    let ws2 = trade_stream(&g2.addr).await;

    // An order its owner cannot pay for never reaches the book.
    let too_big = common::limit("BUY", "100", "30000.00");
    let r = clients[0].place(&too_big).await.unwrap();
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (400, Some(-2010)),
        "{:?}",
        r.body
    );

    // From here on the store refuses ETH-EUR's order rows: the persister
    // halts that pair alone, and BTC-EUR's load, kills and restarts below
    // must come out exact all the same.
    refuse_eth_orders(&db).await;
    let refused = clients[1].place(&eth_order()).await.unwrap();
    assert_eq!(refused.status.as_u16(), 200, "{:?}", refused.body);
    for g in [&g1, &g2] {
        eth_halted_on(&g.addr).await;
    }

    // A seeded stream of crossing limit orders through both gateways, with
    // the risk role that runs alice's shard killed (and another started),
    // the engine that owns BTC-EUR killed, and the persister killed and
    // restarted in the middle.
    let owner = |addr: &str| {
        let addr = addr.to_string();
        async move {
            let text = reqwest_text(&format!("http://{addr}/metrics")).await;
            text.contains("matching_commands_total{pair=\"BTC-EUR\"")
        }
    };
    let orders = crossing_orders(0x5eed, 400);
    let mut engines = vec![Some(engine_a), Some(engine_b)];
    let mut persister = Some(persister);
    let mut killed_at = None;
    for (i, chunk) in orders.chunks(20).enumerate() {
        let sends = chunk.iter().enumerate().map(|(j, o)| {
            let c = &clients[(i + j) % clients.len()];
            async move { c.place(o).await.unwrap() }
        });
        for answer in futures_util::future::join_all(sends).await {
            assert_eq!(answer.status.as_u16(), 200, "{:?}", answer.body);
        }
        eprintln!("sent {} orders", (i + 1) * 20);
        if i == 3 {
            kill_risk_owner(&mut risks, 1).await;
        }
        if i == 9 {
            risks.push(Some(cluster.role("risk", "risk-c").await));
        }
        if i == 6 {
            // Kill -9 whichever engine owns BTC-EUR now.
            for _ in 0..50 {
                for slot in engines.iter_mut() {
                    let addr = slot.as_ref().unwrap().addr.clone();
                    if killed_at.is_none() && owner(&addr).await {
                        slot.take().unwrap().kill_9();
                        killed_at = Some(Instant::now());
                    }
                }
                if killed_at.is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(killed_at.is_some(), "no engine reported owning BTC-EUR");
        }
        if i == 10 {
            persister.take().unwrap().kill_9();
        }
        if i == 13 {
            persister = Some(cluster.role("persister", "persister-2").await);
        }
    }

    // A third gateway killed -9 with orders in flight: each is answered,
    // or fails at the client, or is in the log all the same; the money
    // checks below hold either way.
    kill_gateway_under_load(g3, [&alice, &bob]).await;

    // A risk role that lost its lease forwards what its successor
    // forwarded already: the engine drops the copies (filled orders would
    // trade again, open ones be rejected and lose their holds).
    forward_again(&cluster, 10).await;

    // Every fill in Postgres is exactly one of the uninterrupted replay's.
    let btc = Symbol::new("BTC-EUR").unwrap();
    let (expected, hash, position) = replay(&cluster, btc).await;
    assert!(
        expected.len() > 50,
        "the load should trade: {}",
        expected.len()
    );
    let stored = stored_fills(&store, btc, expected.len()).await;
    eprintln!("stored {} fills of {}", stored.len(), expected.len());
    let unavailable = killed_at.map(|t| t.elapsed());
    assert_eq!(stored.len(), expected.len(), "fills stored vs replayed");
    assert_eq!(stored, expected, "stored fills differ from the replay");

    // Both gateways' streams show the same trades, each once, in order.
    let trade_ids: Vec<u64> = expected.iter().map(|f| f.seq.0).collect();
    let (s1, s2) = (
        first_n(&ws1, trade_ids.len()).await,
        first_n(&ws2, trade_ids.len()).await,
    );
    assert_eq!(s1, trade_ids, "gateway 1's trade stream");
    assert_eq!(s2, trade_ids, "gateway 2's trade stream");

    // Every user's money is their deposits moved by exactly the stored
    // fills, and their holds are their open orders' (bob's ETH-EUR order is
    // open but not stored: 0.01 at 100 EUR plus the 10 bps taker fee);
    // every shard's audit passes.
    let eth_hold = 10_010_000_000;
    money_matches(&[("alice", &clients[0], 0), ("bob", &clients[1], eth_hold)]).await;
    // ... and exactly what the shards replayed from offset zero hold.
    let replayed = replayed_balances(&cluster, &[alice.user, bob.user]).await;
    for (c, expected) in [&clients[0], &clients[1]].into_iter().zip(replayed) {
        let all = balances(c).await;
        let shown = [
            balance(&all, "EUR", EUR_SCALE),
            balance(&all, "BTC", BTC_SCALE),
        ];
        assert_eq!(shown, expected, "balances against an uninterrupted replay");
    }
    audit_passes(&admin).await;

    // Each gateway sees the persister's progress (another process) and so
    // its persister lag returns to zero; were it stuck, the gateways would
    // shed every order once the events since their start passed the bound.
    for g in [&g1, &g2] {
        let url = format!("http://{}/metrics", g.addr);
        common::eventually(|| {
            let url = url.clone();
            async move {
                let text = reqwest_text(&url).await;
                text.lines()
                    .any(|l| l == "matching_persister_lag_events{pair=\"BTC-EUR\"} 0")
                    .then_some(())
            }
        })
        .await;
    }

    // A key revoked in the store stops working on both gateways within
    // 1 s (both use it just before, so both hold it fresh in their
    // caches); the other key keeps working.
    for c in [&clients[0], &clients[2]] {
        common::works(c).await;
    }
    assert!(store.revoke_api_key(&alice.api_key).await.unwrap());
    let revoked = Instant::now();
    for c in [&clients[0], &clients[2]] {
        let took = common::refused_within_1s(c, revoked).await;
        eprintln!("revoked key refused after {took:?}");
    }
    for c in [&clients[1], &clients[3]] {
        common::works(c).await;
    }

    // ETH-EUR stayed halted through the persister's restart, with nothing
    // of it stored after the refusal; its orders are refused.
    let halts = store.halted_pairs().await.unwrap();
    assert_eq!(halts.len(), 1, "{halts:?}");
    assert_eq!(halts[0].pair.as_str(), "ETH-EUR");
    let r = clients[1].place(&eth_order()).await.unwrap();
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (503, Some(-1009)),
        "{:?}",
        r.body
    );

    // The survivor's replay filled BTC-EUR's queue: the partition was
    // paused and resumed on the way to the exact fills above.
    let survivor = engines.iter().flatten().next().unwrap();
    let metrics = reqwest_text(&format!("http://{}/metrics", survivor.addr)).await;
    let pauses: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("matching_partition_pauses_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(pauses > 0, "no partition was paused:\n{metrics}");

    // A graceful stop snapshots the book; its hash equals the replay's.
    drop((g1, g2));
    for e in engines.into_iter().flatten() {
        e.terminate();
    }
    let snap = store.latest_snapshot(btc).await.unwrap().unwrap();
    assert_eq!(
        snap.position, position,
        "the final snapshot covers the whole log"
    );
    assert_eq!(
        snap.state_hash, hash,
        "live engine and replay from offset zero differ"
    );
    eprintln!(
        "BTC-EUR fills: {}, engine killed {unavailable:?} before the fills converged",
        expected.len()
    );
}

/// Makes the store refuse every new ETH-EUR order row, as a value or
/// constraint the database cannot take would.
async fn refuse_eth_orders(db: &str) {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(db).await.unwrap();
    for sql in [
        "CREATE FUNCTION refuse_eth() RETURNS trigger AS $$ BEGIN \
         RAISE EXCEPTION 'injected failure'; END; $$ LANGUAGE plpgsql",
        "CREATE TRIGGER refuse_eth BEFORE INSERT ON orders FOR EACH ROW \
         WHEN (NEW.pair = 'ETH-EUR') EXECUTE FUNCTION refuse_eth()",
    ] {
        sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
    }
}

fn eth_order() -> Value {
    common::limit_on(common::ETHEUR, "BUY", "0.01", "100")
}

/// Waits until the gateway at `addr` reports ETH-EUR halted by the store.
async fn eth_halted_on(addr: &str) {
    let url = format!("http://{addr}/readyz");
    common::eventually(|| {
        let url = url.clone();
        async move {
            let body: Value = serde_json::from_str(&reqwest_text(&url).await).ok()?;
            let why = body["reasons"]["ETH-EUR"].as_str()?;
            assert!(why.contains("injected failure"), "{body}");
            Some(())
        }
    })
    .await;
}

async fn reqwest_text(url: &str) -> String {
    match client::HttpClient::new().get(url).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Sends `orders` through `clients` in rounds of 20 at once; returns the ids
/// of the orders the gateway acknowledged and the statuses of the others.
async fn send_all(clients: &[Client], orders: &[Value]) -> (Vec<u64>, Vec<u16>) {
    let mut acked = Vec::new();
    let mut refused = Vec::new();
    for chunk in orders.chunks(20) {
        let sends = chunk.iter().enumerate().map(|(j, o)| {
            let c = &clients[j % clients.len()];
            async move { c.place(o).await.unwrap() }
        });
        for answer in futures_util::future::join_all(sends).await {
            match answer.status.as_u16() {
                200 => acked.push(answer.body["orderId"].as_u64().unwrap()),
                s => refused.push(s),
            }
        }
    }
    (acked, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_loses_nothing_acknowledged() {
    let Some((cluster, broker)) = Cluster::start().await else {
        return;
    };
    let db = cluster.db.clone();
    let _persister = cluster.role("persister", "persister").await;
    let engine = cluster.role("engine", "engine").await;
    let _risk = cluster.role("risk", "risk").await;
    let gateway = cluster.role("gateway", "gateway").await;
    let store = Store::connect(&db, 2).await.unwrap();
    let url = format!("http://{}", gateway.addr);
    let clients = [
        signed(&url, &store.create_api_key("alice", 1).await.unwrap()),
        signed(&url, &store.create_api_key("bob", 1).await.unwrap()),
    ];
    let admin = fund(&store, &url, &["alice", "bob"]).await;
    let ws = trade_stream(&gateway.addr).await;
    let orders = crossing_orders(0xb10c, 300);

    // Before: everything is acknowledged.
    let (mut acked, refused) = send_all(&clients, &orders[..100]).await;
    assert!(refused.is_empty(), "before the restart: {refused:?}");

    // Kill -9 the broker with orders in flight; start it again on the same
    // storage two seconds later. Orders sent meanwhile are either
    // acknowledged (the producer retries until the broker is back) or
    // refused; a refused one may or may not be in the log, an acknowledged
    // one must be.
    broker.kill_9();
    let during = {
        let clients = clients.clone();
        let orders = orders[100..200].to_vec();
        tokio::spawn(async move { send_all(&clients, &orders).await })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _broker = cluster.broker();
    let (ids, refused) = during.await.unwrap();
    eprintln!(
        "during the restart: {} acknowledged, refused {refused:?}",
        ids.len()
    );
    acked.extend(ids);

    // After: the gateway, the engine and the persister recovered by
    // themselves; new orders are acknowledged again.
    let deadline = Instant::now() + Duration::from_secs(60);
    for o in &orders[200..] {
        loop {
            let answer = clients[0].place(o).await.unwrap();
            if answer.status.as_u16() == 200 {
                acked.push(answer.body["orderId"].as_u64().unwrap());
                break;
            }
            assert!(
                Instant::now() < deadline,
                "still refused 60 s after the restart: {:?}",
                answer.body
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // Every acknowledged order is in the command log, exactly once.
    let log = cluster::read_log(&cluster.kafka(), 0).await.unwrap();
    let mut logged = std::collections::HashMap::<u64, usize>::new();
    for (_, cmd) in &log {
        if let proto::CommandBody::NewOrder(o) = &cmd.body {
            *logged.entry(o.order_id.0).or_default() += 1;
        }
    }
    for id in &acked {
        assert_eq!(
            logged.get(id),
            Some(&1),
            "acknowledged order {id} in the log"
        );
    }

    // The fills stored and streamed are exactly the replay's.
    let btc = Symbol::new("BTC-EUR").unwrap();
    let (expected, hash, position) = replay(&cluster, btc).await;
    assert!(
        expected.len() > 30,
        "the load should trade: {}",
        expected.len()
    );
    let stored = stored_fills(&store, btc, expected.len()).await;
    assert_eq!(stored, expected, "stored fills differ from the replay");
    let trade_ids: Vec<u64> = expected.iter().map(|f| f.seq.0).collect();
    assert_eq!(
        first_n(&ws, trade_ids.len()).await,
        trade_ids,
        "the gateway's trade stream"
    );
    money_matches(&[("alice", &clients[0], 0), ("bob", &clients[1], 0)]).await;
    audit_passes(&admin).await;
    drop(gateway);
    engine.terminate();
    let snap = store.latest_snapshot(btc).await.unwrap().unwrap();
    assert_eq!(snap.position, position, "the final snapshot covers the log");
    assert_eq!(snap.state_hash, hash, "live engine and replay differ");
    let mut records: Vec<i64> = log
        .iter()
        .map(|(p, _)| cluster::record_offset(*p))
        .collect();
    records.dedup();
    eprintln!(
        "{} orders acknowledged, {} commands logged in {} records, {} fills",
        acked.len(),
        log.len(),
        records.len(),
        expected.len()
    );
}

/// The period of the time commands in the GTD test.
const TICK_MS: u64 = 300;

/// The free and locked EUR of `c`'s account, in units of its scale.
async fn eur(c: &Client) -> (i128, i128) {
    balance(&balances(c).await, "EUR", EUR_SCALE)
}

/// The engine that leases an idle pair produces its `AdvanceTime` commands
/// into the pair's partition of the command log (so they are in the log
/// and replayed), and the risk role passes their expiries on: a GTD order
/// on an idle book expires within two periods of its time, and its hold is
/// released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gtd_order_on_an_idle_book_expires_on_time_and_its_hold_is_released() {
    let Some((cluster, _broker)) = Cluster::start_ticking(TICK_MS).await else {
        return;
    };
    let _persister = cluster.role("persister", "persister").await;
    let engine = cluster.role("engine", "engine").await;
    let _risk = cluster.role("risk", "risk").await;
    let gateway = cluster.role("gateway", "gateway").await;
    let store = Store::connect(&cluster.db, 2).await.unwrap();
    let url = format!("http://{}", gateway.addr);
    let alice = signed(&url, &store.create_api_key("alice", 1).await.unwrap());
    let admin = fund(&store, &url, &["alice"]).await;
    let deposited = DEPOSIT_EUR * 10i128.pow(u32::from(EUR_SCALE));

    // A bid good till two seconds from now, on a book nobody else uses.
    let good_till = common::now_ms() + 2_000;
    let order = json!({"symbol": "BTCEUR", "side": "BUY", "type": "LIMIT",
                       "timeInForce": "GTD", "goodTillDate": good_till.to_string(),
                       "quantity": "0.010", "price": "100.00", "newOrderRespType": "ACK"});
    let r = alice.place(&order).await.unwrap();
    assert_eq!(r.status.as_u16(), 200, "{:?}", r.body);
    let id = r.body["orderId"].as_u64().unwrap();
    let (free, locked) = eur(&alice).await;
    assert!(locked > 0, "the order holds its price: {locked}");
    assert_eq!(free + locked, deposited);

    // It expires by a time command stamped within two periods of its time.
    let expired = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let r = common::query_order(&alice, "BTCEUR", id).await;
            if r.body["status"] == "EXPIRED" {
                return r.body;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("order {id} did not expire"));
    let seen = common::now_ms();
    let at = expired["updateTime"].as_u64().unwrap();
    eprintln!(
        "expired by a command stamped {} ms after its time, seen {} ms after it",
        at.saturating_sub(good_till),
        seen.saturating_sub(good_till)
    );
    assert!(
        at >= good_till,
        "expired at {at}, before its time {good_till}"
    );
    assert!(
        at - good_till <= 2 * TICK_MS,
        "expired {} ms after its time",
        at - good_till
    );
    // Seen through the store: the persister's and the gateway's polls on top.
    assert!(
        seen - good_till <= 2 * TICK_MS + 2_000,
        "{} ms",
        seen - good_till
    );

    // Its hold comes back.
    let released = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let b = eur(&alice).await;
            if b.1 == 0 {
                return b;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the hold released");
    assert_eq!(released, (deposited, 0));
    audit_passes(&admin).await;

    // The time commands are in both pairs' logs (the other pair is idle
    // throughout), stamped by the engine, after the order.
    for partition in [0, 1] {
        let log = cluster::read_log(&cluster.kafka(), partition)
            .await
            .unwrap();
        let times = log
            .iter()
            .filter(|(_, c)| c.body == proto::CommandBody::AdvanceTime)
            .count();
        assert!(times >= 2, "partition {partition}: {times} time commands");
    }
    drop(gateway);
    engine.terminate();
}

/// How many commands the history of the gateway-start test holds:
/// `GATEWAY_START_COMMANDS`, or enough for about a million events (the
/// exchange-core-like flow makes about 1.05 events per command at this length).
fn history_commands() -> usize {
    std::env::var("GATEWAY_START_COMMANDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

/// Appends `n` commands of the exchange-core-like flow on BTC-EUR straight
/// to the command log (no risk stage in this cluster), many records in
/// flight, as gateways under load would.
async fn write_history(cluster: &Cluster, n: usize) {
    let config = exchange::config::Config::load(Some(cluster.config.as_path())).unwrap();
    let partitions = config.partitions().unwrap();
    let btc = partitions
        .iter()
        .find(|(_, c)| c.symbol.as_str() == "BTC-EUR")
        .map(|(_, c)| c)
        .unwrap();
    let writer = cluster::CommandWriter::new(&cluster.kafka(), &partitions).unwrap();
    let mut generator = workload::Generator::new(workload::Mix::ExchangeCore, 7, &btc);
    let commands: Vec<proto::Command> = (0..n).map(|_| generator.next_command()).collect();
    for chunk in commands.chunks(20_000) {
        let writes = chunk.iter().map(|c| {
            let writer = writer.clone();
            async move { writer.write(c).await.unwrap() }
        });
        futures_util::future::join_all(writes).await;
    }
}

/// A gateway's answer to a public GET, as JSON.
async fn public_json(addr: &str, path: &str) -> Value {
    let text = reqwest_text(&format!("http://{addr}{path}")).await;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"))
}

/// Waits until neither the store's last seq of BTC-EUR nor `addr`'s depth
/// view has moved for two seconds; returns that seq.
async fn settled(store: &Store, addr: &str) -> u64 {
    let pair = Symbol::new("BTC-EUR").unwrap();
    let mut last = ((0, 0), Instant::now());
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let stored = store
            .last_seqs()
            .await
            .unwrap()
            .get(&pair)
            .map_or(0, |s| s.0);
        let shown = public_json(addr, "/api/v3/depth?symbol=BTCEUR&limit=1").await["lastUpdateId"]
            .as_u64()
            .unwrap();
        if (stored, shown) != last.0 {
            last = ((stored, shown), Instant::now());
        } else if stored > 0 && last.1.elapsed() > Duration::from_secs(2) {
            return stored;
        }
        assert!(
            Instant::now() < deadline,
            "the history did not settle: {stored}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A depth answer's levels (its `lastUpdateId` is the last update that
/// changed a level, which a view started from a snapshot may place later).
fn levels(depth: &Value) -> (Value, Value) {
    (depth["bids"].clone(), depth["asks"].clone())
}

/// The offset the gateway logged it started BTC-EUR's view from.
fn view_start(cluster: &Cluster, name: &str) -> String {
    let colored = std::fs::read_to_string(cluster.dir.path().join(format!("{name}.log"))).unwrap();
    // Without the terminal's colour codes.
    let mut log = String::with_capacity(colored.len());
    let mut rest = colored.as_str();
    while let Some(at) = rest.find('\u{1b}') {
        log.push_str(&rest[..at]);
        rest = rest[at..].split_once('m').map_or("", |(_, after)| after);
    }
    log.push_str(rest);
    log.lines()
        .find(|l| l.contains("view restored") && l.contains("BTC-EUR"))
        .and_then(|l| l.split("events_from=").nth(1))
        .map(|rest| {
            rest.split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .unwrap_or_else(|| panic!("{name} logged no view start"))
}

/// Reads `addr`'s BTC-EUR diff-depth stream until its last update is
/// `through`, and checks Binance's sync rule against the REST snapshot
/// taken at `from`: the first update spans `from + 1`, each next one
/// starts right after the one before. Returns the number of updates.
async fn depth_stream_in_sync(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    from: u64,
    through: u64,
) -> usize {
    let mut next = None;
    let mut updates = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while next.is_none_or(|n| n <= through) {
        let msg = tokio::time::timeout_at(deadline.into(), ws.next())
            .await
            .expect("the depth stream reached the last update")
            .unwrap()
            .unwrap();
        let Message::Text(text) = msg else { continue };
        let m: Value = serde_json::from_str(&text).unwrap();
        let (first, last) = (m["U"].as_u64().unwrap(), m["u"].as_u64().unwrap());
        if last <= from {
            continue; // before the snapshot: dropped, as Binance says
        }
        match next {
            None => assert!(
                first <= from + 1,
                "gap after the snapshot: {first} > {from} + 1"
            ),
            Some(n) => assert_eq!(first, n, "gap in the depth stream"),
        }
        next = Some(last + 1);
        updates += 1;
    }
    updates
}

/// Places a resting bid through `via` (the first gateway, at `first`) and
/// returns how long after `since` the depth view of `addr` shows it: when
/// a gateway has caught up with the present.
async fn caught_up(via: &Client, first: &str, addr: &str, since: Instant) -> Duration {
    let depth = "/api/v3/depth?symbol=BTCEUR&limit=1";
    let before = public_json(first, depth).await["lastUpdateId"]
        .as_u64()
        .unwrap();
    let bid = json!({"symbol": "BTCEUR", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                     "quantity": "0.020", "price": "90.00", "newOrderRespType": "ACK"});
    let r = via.place(&bid).await.unwrap();
    assert_eq!(r.status.as_u16(), 200, "{:?}", r.body);
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut shown = before;
    while shown <= before {
        assert!(Instant::now() < deadline, "{addr} did not catch up");
        tokio::time::sleep(Duration::from_millis(5)).await;
        shown = public_json(addr, depth).await["lastUpdateId"]
            .as_u64()
            .unwrap();
    }
    since.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_joining_after_a_long_history_serves_within_seconds_the_same_views() {
    let Some((cluster, _broker)) = Cluster::start_with(0, false).await else {
        return;
    };
    let _persister = cluster.role("persister", "persister").await;
    let _engine = cluster.role("engine", "engine").await;
    let first = cluster.role("gateway", "gateway-1").await;
    let store = Store::connect(&cluster.db, 2).await.unwrap();
    let key = store.create_api_key("alice", 1).await.unwrap();
    let alice = signed(&format!("http://{}", first.addr), &key);

    let n = history_commands();
    let writing = Instant::now();
    write_history(&cluster, n).await;
    let written = writing.elapsed();
    let seq = settled(&store, &first.addr).await;
    eprintln!(
        "history: {n} commands, {seq} events, written in {:.1} s, stored in {:.1} s",
        written.as_secs_f64(),
        writing.elapsed().as_secs_f64()
    );

    // The second gateway starts from the snapshot and the offset stored
    // with it, not from the partition's first record.
    let starting = Instant::now();
    let second = cluster.role("gateway", "gateway-2").await;
    let ready = starting.elapsed();
    let depth = "/api/v3/depth?symbol=BTCEUR&limit=5000";
    let expected = levels(&public_json(&first.addr, depth).await);
    loop {
        if levels(&public_json(&second.addr, depth).await) == expected {
            break;
        }
        assert!(
            starting.elapsed() < Duration::from_secs(10),
            "the views differ"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let same = starting.elapsed();
    let current = caught_up(&alice, &first.addr, &second.addr, starting).await;
    eprintln!(
        "second gateway: ready after {:.0} ms, the same depth after {:.0} ms, \
         caught up after {:.0} ms ({seq} events, started at events offset {})",
        ready.as_secs_f64() * 1e3,
        same.as_secs_f64() * 1e3,
        current.as_secs_f64() * 1e3,
        view_start(&cluster, "gateway-2"),
    );
    assert!(
        current < Duration::from_secs(2),
        "{current:?} to serve the same depth and catch up"
    );
    assert_ne!(view_start(&cluster, "gateway-2"), "Offset(0)");
    assert_ne!(view_start(&cluster, "gateway-2"), "Beginning");
    for path in [
        "/api/v3/trades?symbol=BTCEUR&limit=1000",
        "/api/v3/klines?symbol=BTCEUR&interval=1m&limit=1000",
        "/api/v3/klines?symbol=BTCEUR&interval=1d",
        "/api/v3/ticker/price?symbol=BTCEUR",
        "/api/v3/ticker/bookTicker?symbol=BTCEUR",
    ] {
        assert_eq!(
            public_json(&second.addr, path).await,
            public_json(&first.addr, path).await,
            "{path}"
        );
    }

    // Its depth stream follows on from its snapshot without a gap while
    // orders keep coming through it.
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws/btceur@depth@100ms", second.addr))
            .await
            .unwrap();
    let from =
        public_json(&second.addr, "/api/v3/depth?symbol=BTCEUR&limit=1000").await["lastUpdateId"]
            .as_u64()
            .unwrap();
    let via_second = signed(&format!("http://{}", second.addr), &key);
    for o in crossing_orders(0xdeb7, 40) {
        let r = via_second.place(&o).await.unwrap();
        assert_eq!(r.status.as_u16(), 200, "{:?}", r.body);
    }
    let through = settled(&store, &second.addr).await;
    let updates = depth_stream_in_sync(&mut ws, from, through).await;
    assert!(updates > 0);
    assert_eq!(
        public_json(&second.addr, depth).await,
        public_json(&first.addr, depth).await
    );

    // Snapshots without an offset (as before offsets were stored): a
    // gateway reads the whole partition, and comes to the same views.
    let db = sqlx::PgPool::connect(&cluster.db).await.unwrap();
    sqlx::query("UPDATE snapshots SET events_from = NULL")
        .execute(&db)
        .await
        .unwrap();
    let starting = Instant::now();
    let third = cluster.role("gateway", "gateway-3").await;
    let current = caught_up(&alice, &first.addr, &third.addr, starting).await;
    eprintln!(
        "a gateway reading the whole partition caught up after {:.0} ms",
        current.as_secs_f64() * 1e3
    );
    assert_eq!(view_start(&cluster, "gateway-3"), "Beginning");
    assert_eq!(
        levels(&public_json(&third.addr, depth).await),
        levels(&public_json(&first.addr, depth).await)
    );
}

/// `exchangeInfo`'s BTCEUR status and tick size as `url` shows them.
async fn btceur_rules(url: &str) -> (String, String) {
    let a = Client::new(url, None)
        .get("/api/v3/exchangeInfo", "symbol=BTCEUR")
        .await
        .unwrap();
    let s = &a.body["symbols"][0];
    let tick = s["filters"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["filterType"] == "PRICE_FILTER"))
        .map(|f| f["tickSize"].as_str().unwrap_or_default().to_string())
        .unwrap_or_default();
    (s["status"].as_str().unwrap_or_default().to_string(), tick)
}

/// Waits until `url` shows `want` for BTCEUR (its events follower applies
/// the change when the engine's record reaches it).
async fn shows(url: &str, want: (&str, &str)) {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let (status, tick) = btceur_rules(url).await;
            if (status.as_str(), tick.as_str()) == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{url} never showed {want:?}"));
}

/// An operator's halt and tick change through one gateway: sequenced in the
/// pair's `orders` partition, applied by its engine, and seen by another
/// gateway through the events it follows (its orders refused, its cancels
/// taken); an engine restarted from the log keeps them, and so does a
/// gateway started after that restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pair_halted_and_retuned_through_one_gateway_is_so_on_every_gateway() {
    let Some((cluster, _broker)) = Cluster::start().await else {
        return;
    };
    let _persister = cluster.role("persister", "persister").await;
    let engine = cluster.role("engine", "engine").await;
    let _risk = cluster.role("risk", "risk").await;
    let g1 = cluster.role("gateway", "gateway-1").await;
    let g2 = cluster.role("gateway", "gateway-2").await;
    let store = Store::connect(&cluster.db, 2).await.unwrap();
    let (url1, url2) = (format!("http://{}", g1.addr), format!("http://{}", g2.addr));
    let key = store.create_api_key("alice", 1).await.unwrap();
    let alice = signed(&url2, &key);
    let admin = fund(&store, &url1, &["alice"]).await;
    let order = |price: &str| {
        json!({"symbol": "BTCEUR", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
               "quantity": "0.010", "price": price})
    };
    let r = alice.place(&order("100.01")).await.unwrap();
    assert_eq!(r.status.as_u16(), 200, "{:?}", r.body);
    let kept = r.body["orderId"].as_u64().unwrap();

    let r = admin
        .post(
            "/admin/v1/pairs/status",
            &json!({"symbol": "BTCEUR", "status": "HALT"}),
        )
        .await;
    assert_eq!(r.body["status"], "HALT", "{:?}", r.body);
    shows(&url2, ("HALT", "0.01")).await;
    let r = alice.place(&order("100.00")).await.unwrap();
    assert_eq!(
        (r.code(), r.body["msg"].as_str()),
        (Some(-2010), Some("Market is closed."))
    );

    let r = admin
        .post(
            "/admin/v1/pairs/rules",
            &json!({"symbol": "BTCEUR", "tickSize": "0.05"}),
        )
        .await;
    let tick = r.body["filters"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["filterType"] == "PRICE_FILTER"))
        .map(|f| f["tickSize"].clone());
    assert_eq!(tick, Some(json!("0.05")), "{:?}", r.body);
    let r = admin
        .post(
            "/admin/v1/pairs/status",
            &json!({"symbol": "BTCEUR", "status": "TRADING"}),
        )
        .await;
    assert_eq!(r.body["status"], "TRADING", "{:?}", r.body);
    shows(&url2, ("TRADING", "0.05")).await;
    let r = alice.place(&order("100.02")).await.unwrap();
    assert_eq!(r.code(), Some(-1013), "{:?}", r.body);
    let r = alice.place(&order("100.05")).await.unwrap();
    assert_eq!(r.status.as_u16(), 200, "{:?}", r.body);
    // The changes are commands in the pair's own log.
    let log = cluster::read_log(&cluster.kafka(), 0).await.unwrap();
    let changes = log
        .iter()
        .filter(|(_, c)| matches!(c.body, proto::CommandBody::ChangePair(_)))
        .count();
    assert_eq!(changes, 3);

    // An engine restarted from its snapshot and the log keeps them, and a
    // gateway started after it learns them from what the restarted engine
    // left (its snapshot and events), not from the config file's tick of
    // 0.01: it shows them, refuses an old-only price, takes a new-tick one,
    // and the old-tick order is still open and cancelable through it.
    engine.terminate();
    let _engine = cluster.role("engine", "engine-2").await;
    let g3 = cluster.role("gateway", "gateway-3").await;
    let url3 = format!("http://{}", g3.addr);
    shows(&url3, ("TRADING", "0.05")).await;
    let alice = signed(&url3, &key);
    let r = alice.place(&order("100.03")).await.unwrap();
    assert_eq!(
        (r.code(), r.body["msg"].as_str()),
        (Some(-1013), Some("Filter failure: PRICE_FILTER")),
        "{:?}",
        r.body
    );
    let r = alice.place(&order("100.10")).await.unwrap();
    assert_eq!(r.status.as_u16(), 200, "{:?}", r.body);
    let q = format!("symbol=BTCEUR&orderId={kept}");
    let r = alice
        .signed(Method::DELETE, "/api/v3/order", &q, None)
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{:?}", r.body);
    drop((g1, g2, g3));
}

/// `exchangeInfo`'s entry for `name` as `url` shows it, once it shows one
/// (within 10 s: gateways look for listings twice a second).
async fn listed_on(url: &str, name: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = Client::new(url, None)
            .get("/api/v3/exchangeInfo", &format!("symbol={name}"))
            .await
            .unwrap();
        if r.status.is_success() {
            return r.body["symbols"][0].clone();
        }
        assert!(
            Instant::now() < deadline,
            "{url} never listed {name}: {:?}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn sol_spec(symbol: &str) -> Value {
    json!({"symbol": symbol, "price_scale": 2, "qty_scale": 4,
        "tick_size": "0.01", "lot_size": "0.0001", "min_qty": "0.0001",
        "max_qty": "1000", "min_notional": "1"})
}

/// Lists SOL-EUR through the first gateway, which the second then shows
/// and refuses to list again; ADA-EUR through the second; DOT-EUR finds no
/// spare partition and changes nothing.
async fn list_until_no_spare_partition(store: &Store, admins: [&common::Admin; 2], url2: &str) {
    let [admin1, admin2] = admins;
    let r = admin1.post("/admin/v1/pairs", &sol_spec("SOL-EUR")).await;
    assert_eq!(r.status.as_u16(), 200, "{:?}", r.body);
    assert_eq!(
        (r.body["symbol"].as_str(), r.body["status"].as_str()),
        (Some("SOLEUR"), Some("TRADING"))
    );
    let shown = listed_on(url2, "SOLEUR").await;
    assert_eq!(shown["status"], "TRADING");
    let r = admin2.post("/admin/v1/pairs", &sol_spec("SOL-EUR")).await;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (409, Some(-1056)),
        "{:?}",
        r.body
    );
    let r = admin2.post("/admin/v1/pairs", &sol_spec("ADA-EUR")).await;
    assert_eq!(r.status.as_u16(), 200, "{:?}", r.body);
    let partitions: Vec<(String, Option<i32>)> = store
        .listed_pairs()
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.pair.to_string(), l.partition))
        .collect();
    assert_eq!(
        partitions,
        vec![
            ("SOL-EUR".to_string(), Some(2)),
            ("ADA-EUR".to_string(), Some(3))
        ]
    );
    // Two config pairs and two spare partitions: no room for a third.
    let r = admin1.post("/admin/v1/pairs", &sol_spec("DOT-EUR")).await;
    assert_eq!(r.code(), Some(-1055), "{:?}", r.body);
    assert!(
        r.body["msg"]
            .as_str()
            .unwrap_or_default()
            .contains("No spare partition")
    );
    assert_eq!(store.listed_pairs().await.unwrap().len(), 2);
}

/// A pair listed through one gateway while the cluster runs (no accounts)
/// and BTC-EUR orders flow through both gateways, none failing:
/// it takes the lowest spare partition of both topics; the other gateway
/// serves it without a restart and refuses to list it again; orders
/// through either gateway trade on it, the persister stores its fills, an
/// engine restarted from its snapshot and log keeps its book, and a
/// gateway started afterwards shows the same depth. A third listing finds
/// no spare partition and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pair_listed_through_one_gateway_trades_everywhere_without_a_restart() {
    let Some((cluster, _broker)) = Cluster::start_with(0, false).await else {
        return;
    };
    let _persister = cluster.role("persister", "persister").await;
    let engine = cluster.role("engine", "engine").await;
    let g1 = cluster.role("gateway", "gateway-1").await;
    let g2 = cluster.role("gateway", "gateway-2").await;
    let store = Store::connect(&cluster.db, 2).await.unwrap();
    let (url1, url2) = (format!("http://{}", g1.addr), format!("http://{}", g2.addr));
    let ops = store.create_admin_key("ops", 1).await.unwrap();
    let admin = |url: &str| {
        common::Admin::new(
            url,
            Credentials {
                api_key: ops.admin_key.clone(),
                secret: ops.secret.clone(),
            },
        )
    };
    let (admin1, admin2) = (admin(&url1), admin(&url2));
    let keys = [
        store.create_api_key("alice", 1).await.unwrap(),
        store.create_api_key("bob", 2).await.unwrap(),
    ];
    // BTC-EUR orders every 10 ms through both gateways, all the while.
    let targets = Targets::default();
    for (name, url) in [("gateway-1", &url1), ("gateway-2", &url2)] {
        let clients = [signed(url, &keys[0]), signed(url, &keys[1])];
        targets.lock().unwrap().push((name, clients));
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let load = tokio::spawn(balanced_load(targets, Duration::from_millis(10), stopped));
    tokio::time::sleep(Duration::from_secs(1)).await;

    list_until_no_spare_partition(&store, [&admin1, &admin2], &url2).await;

    // Orders through both gateways trade on the new pair.
    let alice = signed(&url2, &keys[0]);
    let bob = signed(&url1, &keys[1]);
    let order = |side: &str, qty: &str| {
        json!({"symbol": "SOLEUR", "side": side, "type": "LIMIT", "timeInForce": "GTC",
               "quantity": qty, "price": "150.25", "newOrderRespType": "RESULT"})
    };
    let r = alice.place(&order("SELL", "2.5")).await.unwrap();
    assert_eq!(r.status.as_u16(), 200, "{:?}", r.body);
    let r = bob.place(&order("BUY", "1")).await.unwrap();
    assert_eq!(
        (r.status.as_u16(), r.body["status"].as_str()),
        (200, Some("FILLED")),
        "{:?}",
        r.body
    );
    let sol = Symbol::new("SOL-EUR").unwrap();
    let fills = stored_fills(&store, sol, 1).await;
    assert_eq!(
        fills.len(),
        1,
        "the persister stores the listed pair's fill"
    );
    let depth = |addr: String| async move {
        levels(&public_json(&addr, "/api/v3/depth?symbol=SOLEUR").await)
    };
    let want = (json!([]), json!([["150.25", "1.5000"]]));
    assert_eq!(depth(g1.addr.clone()).await, want);
    stop.send(true).unwrap();
    let answers = load.await.unwrap();
    let failed: Vec<&Answered> = answers.iter().filter(|a| a.1 != 200).collect();
    assert!(
        answers.len() > 50 && failed.is_empty(),
        "{} sent, failed: {failed:?}",
        answers.len()
    );

    // An engine restarted from the pair's snapshot and log keeps its book;
    // a gateway started afterwards lists the pair from the store and shows
    // the same depth, and the rest of alice's order still trades.
    engine.terminate();
    let _engine = cluster.role("engine", "engine-2").await;
    let g3 = cluster.role("gateway", "gateway-3").await;
    assert_eq!(depth(g3.addr.clone()).await, want);
    let bob3 = signed(&format!("http://{}", g3.addr), &keys[1]);
    let r = bob3.place(&order("BUY", "1.5")).await.unwrap();
    assert_eq!(
        (r.status.as_u16(), r.body["status"].as_str()),
        (200, Some("FILLED")),
        "{:?}",
        r.body
    );
    assert_eq!(stored_fills(&store, sol, 2).await.len(), 2);
    drop((g1, g2, g3));
}

/// Waits until `c`'s balance of `asset` (at `scale`) is `want`.
async fn balance_becomes(c: &Client, asset: &str, scale: u8, want: (i128, i128)) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = balance(&balances(c).await, asset, scale);
        if now == want {
            return;
        }
        assert!(Instant::now() < deadline, "{asset}: {now:?}, not {want:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Two gateways list at once pairs whose new asset XRP only fits one way
/// round (XRP-BTC counts it at 8 decimals, XRP-EUR at 4: the second may not
/// count it more finely than the first). Whatever the race, the stored
/// listings, taken in listing order, fit the shards one after another, and
/// what was refused was refused with -1055.
async fn racing_listings_fit_the_shards(admins: [&common::Admin; 2], store: &Store) {
    let mut xrp_btc = sol_spec("XRP-BTC");
    xrp_btc["price_scale"] = json!(0);
    xrp_btc["qty_scale"] = json!(8);
    xrp_btc["tick_size"] = json!("1");
    xrp_btc["lot_size"] = json!("0.00000001");
    xrp_btc["min_qty"] = json!("0.00000001");
    let xrp_eur = sol_spec("XRP-EUR");
    let (a, b) = tokio::join!(
        admins[0].post("/admin/v1/pairs", &xrp_eur),
        admins[1].post("/admin/v1/pairs", &xrp_btc)
    );
    for r in [&a, &b] {
        assert!(
            r.status.as_u16() == 200 || r.code() == Some(-1055),
            "{:?}",
            r.body
        );
    }
    assert!(
        a.status.as_u16() == 200 || b.status.as_u16() == 200,
        "one fits first"
    );
    let pairs = |spec: &Value| -> proto::PairConfig {
        serde_json::from_value::<proto::PairSpec>(spec.clone())
            .unwrap()
            .config()
            .unwrap()
    };
    let btc_eur = proto::PairConfig {
        price_scale: 2,
        qty_scale: 8,
        ..proto::PairConfig::simple(Symbol::new("BTC-EUR").unwrap())
    };
    let mut shard = accounts::Shard::new(&[btc_eur]).unwrap();
    for row in store.listed_pairs().await.unwrap() {
        let spec: Value = serde_json::from_str(&row.spec).unwrap();
        shard
            .add_pair(&pairs(&spec))
            .unwrap_or_else(|e| panic!("{}: {e}", row.pair));
    }
}

/// With accounts on: a pair whose shards would count EUR in a finer unit
/// is refused before anything is stored; SOL-EUR is listed through one
/// gateway, its new asset takes a deposit through the other, a trade
/// between users of different shards settles with the listed fees, and a
/// restarted risk role (its shards restored with the pair) keeps the
/// balances and takes the next trade; the audit passes throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_accounts_a_listed_pair_settles_with_its_fees_across_shards_and_restarts() {
    let Some((cluster, _broker)) = Cluster::start().await else {
        return;
    };
    let _persister = cluster.role("persister", "persister").await;
    let _engine = cluster.role("engine", "engine").await;
    let risk = cluster.role("risk", "risk").await;
    let g1 = cluster.role("gateway", "gateway-1").await;
    let g2 = cluster.role("gateway", "gateway-2").await;
    let store = Store::connect(&cluster.db, 2).await.unwrap();
    let (url1, url2) = (format!("http://{}", g1.addr), format!("http://{}", g2.addr));
    let alice_key = store.create_api_key("alice", 1).await.unwrap();
    let bob_key = store.create_api_key("bob", 2).await.unwrap();
    let admin1 = fund(&store, &url1, &["alice", "bob"]).await;

    // EUR counts at 10 decimals in the shards; 4 + 8 would need 12.
    let mut finer = sol_spec("SOL-EUR");
    finer["price_scale"] = json!(4);
    finer["qty_scale"] = json!(8);
    let r = admin1.post("/admin/v1/pairs", &finer).await;
    assert_eq!(r.code(), Some(-1055), "{:?}", r.body);
    assert!(store.listed_pairs().await.unwrap().is_empty());
    let mut spec = sol_spec("SOL-EUR");
    spec["maker_fee_bps"] = json!(5);
    spec["taker_fee_bps"] = json!(10);
    let r = admin1.post("/admin/v1/pairs", &spec).await;
    assert_eq!(r.status.as_u16(), 200, "{:?}", r.body);
    listed_on(&url2, "SOLEUR").await;

    // Through the other gateway: the new asset's deposit, and the maker.
    let ops2 = store.create_admin_key("ops-2", 1).await.unwrap();
    let admin2 = common::Admin::new(
        &url2,
        Credentials {
            api_key: ops2.admin_key,
            secret: ops2.secret,
        },
    );
    let body = json!({"user": "bob", "asset": "SOL", "amount": "10", "ref": "bob-SOL"});
    let r = admin2.post("/admin/v1/deposit", &body).await;
    assert!(r.status.is_success(), "{:?}", r.body);
    let bob = signed(&url2, &bob_key);
    let sell = json!({"symbol": "SOLEUR", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC",
                      "quantity": "2", "price": "20.00"});
    let r = bob.place(&sell).await.unwrap();
    assert_eq!(r.status.as_u16(), 200, "{:?}", r.body);
    let buy = json!({"symbol": "SOLEUR", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                     "quantity": "1", "price": "20.00", "newOrderRespType": "RESULT"});
    let alice = signed(&url1, &alice_key);
    let r = alice.place(&buy).await.unwrap();
    assert_eq!(r.body["status"], "FILLED", "{:?}", r.body);
    // 20 EUR and the taker's 10 bps of it, at 10 decimals.
    let eur = |spent: i128| (DEPOSIT_EUR * 10i128.pow(u32::from(EUR_SCALE)) - spent, 0);
    balance_becomes(&alice, "SOL", 4, (10_000, 0)).await;
    balance_becomes(&alice, "EUR", EUR_SCALE, eur(200_200_000_000)).await;
    audit_passes(&admin1).await;

    // A restarted risk role restores the shards with the listed pair.
    risk.terminate();
    let risk = cluster.role("risk", "risk-2").await;
    let r = alice.place(&buy).await.unwrap();
    assert_eq!(r.body["status"], "FILLED", "{:?}", r.body);
    balance_becomes(&alice, "SOL", 4, (20_000, 0)).await;
    balance_becomes(&alice, "EUR", EUR_SCALE, eur(400_400_000_000)).await;
    // bob: 40 EUR less the maker's 5 bps, and 8 SOL left.
    balance_becomes(&bob, "SOL", 4, (80_000, 0)).await;
    balance_becomes(&bob, "EUR", EUR_SCALE, eur(-399_800_000_000)).await;
    let _risk = fee_change_reaches_every_shard_and_survives_a_restart(
        &cluster,
        risk,
        &admin2,
        [&alice, &bob],
    )
    .await;
    racing_listings_fit_the_shards([&admin1, &admin2], &store).await;
    audit_passes(&admin1).await;
    // A gateway started now shows every balance decided before it from
    // its first answer: it read risk-events to their end before serving.
    let g3 = cluster.role("gateway", "gateway-3").await;
    let (alice3, bob3) = (
        signed(&format!("http://{}", g3.addr), &alice_key),
        signed(&format!("http://{}", g3.addr), &bob_key),
    );
    assert_eq!(balances(&alice3).await, balances(&alice).await);
    assert_eq!(balances(&bob3).await, balances(&bob).await);
    drop((g1, g2, g3));
}

/// SOL-EUR's rates changed through gateway 2 to 0/30 bps: gateway 1 quotes
/// them, and after a restart of the risk role a trade between users of
/// different shards (alice takes, bob makes) settles at them: alice pays
/// 20 EUR and 30 bps, bob gets 20 EUR whole. Before: alice spent 40.04 EUR,
/// bob got 39.98.
async fn fee_change_reaches_every_shard_and_survives_a_restart(
    cluster: &Cluster,
    risk: Proc,
    admin2: &common::Admin,
    [alice, bob]: [&Client; 2],
) -> Proc {
    let change = json!({"symbol": "SOLEUR", "makerFeeBps": 0, "takerFeeBps": 30});
    let r = admin2.post("/admin/v1/pairs/rules", &change).await;
    assert_eq!(r.status.as_u16(), 200, "{:?}", r.body);
    assert_eq!(
        (&r.body["makerFeeBps"], &r.body["takerFeeBps"]),
        (&json!(0), &json!(30))
    );
    let quote = json!({"symbol": "SOLEUR", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                       "quantity": "1", "price": "20.00", "computeCommissionRates": "true"});
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = alice
            .signed(Method::POST, "/api/v3/order/test", "", Some(&quote))
            .await
            .unwrap();
        if r.body["standardCommissionForOrder"]["taker"] == "0.00300000" {
            break;
        }
        assert!(Instant::now() < deadline, "gateway 1 quotes {:?}", r.body);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    risk.terminate();
    let risk = cluster.role("risk", "risk-3").await;
    let sell = json!({"symbol": "SOLEUR", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC",
                      "quantity": "1", "price": "20.00"});
    let r = bob.place(&sell).await.unwrap();
    assert_eq!(r.status.as_u16(), 200, "{:?}", r.body);
    let buy = json!({"symbol": "SOLEUR", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                     "quantity": "1", "price": "20.00", "newOrderRespType": "RESULT"});
    let r = alice.place(&buy).await.unwrap();
    assert_eq!(r.body["status"], "FILLED", "{:?}", r.body);
    let eur = |spent: i128| (DEPOSIT_EUR * 10i128.pow(u32::from(EUR_SCALE)) - spent, 0);
    balance_becomes(
        alice,
        "EUR",
        EUR_SCALE,
        eur(400_400_000_000 + 200_600_000_000),
    )
    .await;
    balance_becomes(bob, "EUR", EUR_SCALE, eur(-599_800_000_000)).await;
    risk
}

/// Per `(topic, partition)` of `orders` and `events`, the first record a
/// restart needs: the records below it are what a retention longer than
/// the snapshots' age may have deleted. `orders`: the record holding each
/// pair's engine snapshot position, and each risk shard's scan start.
/// `events`: each pair's view start, the persister's next offset, and each
/// risk shard's settlement feed.
async fn needed_from(cluster: &Cluster, store: &Store) -> BTreeMap<(String, i32), i64> {
    let config = exchange::Config::load(Some(&cluster.config)).unwrap();
    let mut need: BTreeMap<(String, i32), i64> = BTreeMap::new();
    let mut keep = |topic: &str, p: i32, from: i64| {
        let at = need.entry((topic.to_string(), p)).or_insert(i64::MAX);
        *at = (*at).min(from);
    };
    let persisted = store.log_offsets("events").await.unwrap();
    for (p, pair) in config.partitions().unwrap().iter() {
        // A pair that never traded keeps its whole (empty) history.
        let Some(snapshot) = store.latest_snapshot(pair.symbol).await.unwrap() else {
            keep("orders", p, 0);
            keep("events", p, 0);
            continue;
        };
        keep(
            "orders",
            p,
            cluster::record_offset(snapshot.position) as i64,
        );
        keep("events", p, snapshot.events_from.unwrap_or(0) as i64);
        keep("events", p, persisted.get(&p).map_or(0, |o| *o as i64));
    }
    let pairs = config.pair_configs().unwrap();
    let settings = pipeline::RiskSettings {
        snapshot_every: u64::MAX,
    };
    let metrics = pipeline::PipelineMetrics::register(&prometheus::Registry::new()).unwrap();
    for index in 0..config.accounts.shards {
        let id = cluster::ShardId {
            index,
            count: config.accounts.shards,
        };
        let row = store.latest_risk_snapshot(index).await.unwrap().unwrap();
        let core =
            cluster::RiskCore::restore(id, Some(&row), &pairs, settings.clone(), metrics.clone())
                .unwrap();
        for (p, from) in core.orders_from() {
            keep("orders", *p, *from);
        }
        for (p, from) in core.fed() {
            keep("events", *p, *from);
        }
    }
    need
}

/// Deletes the broker's records below `cuts` from its SQLite storage (the
/// broker stopped), as retention would: Tansu 0.6's SQLite engine does not
/// serve `DeleteRecords`, and its earliest offset is its first record.
async fn delete_below(cluster: &Cluster, cuts: &BTreeMap<(String, i32), i64>) {
    let url = format!("sqlite://{}", cluster.dir.path().join("tansu.db").display());
    let db = sqlx::SqlitePool::connect(&url).await.unwrap();
    for ((topic, partition), cut) in cuts {
        let topition = "(SELECT tp.id FROM topition tp JOIN topic t ON tp.topic = t.id \
                        WHERE t.name = $1 AND tp.partition = $2)";
        for sql in [
            format!("DELETE FROM record WHERE topition = {topition} AND offset_id < $3"),
            format!("UPDATE watermark SET low = $3 WHERE topition = {topition}"),
        ] {
            sqlx::query(&sql)
                .bind(topic)
                .bind(partition)
                .bind(cut)
                .execute(&db)
                .await
                .unwrap();
        }
    }
    db.close().await;
}

/// The views a restart must keep: BTC-EUR's depth, both users' balances,
/// the stored fills.
async fn kept_views(
    addr: &str,
    clients: &[Client; 2],
    store: &Store,
) -> (Value, Vec<Value>, usize) {
    let depth = public_json(addr, "/api/v3/depth?symbol=BTCEUR").await;
    let mut held = Vec::new();
    for c in clients {
        held.push(json!(balances(c).await));
    }
    let fills = store
        .all_fills(Symbol::new("BTC-EUR").unwrap())
        .await
        .unwrap();
    (json!(levels(&depth)), held, fills.len())
}

/// Retention (deploy/README.md, Retention): with the records of `orders`
/// and `events` below what the snapshots and the persister cover deleted,
/// every role starts again from the snapshots alone, with the same book,
/// balances and fills, and trades on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_early_records_gone_every_role_starts_again_from_the_snapshots() {
    let Some((cluster, broker)) = Cluster::start_ticking(0).await else {
        return;
    };
    let mut roles = Vec::new();
    for role in ["persister", "engine", "risk", "gateway"] {
        roles.push(cluster.role(role, role).await);
    }
    let store = Store::connect(&cluster.db, 2).await.unwrap();
    let url = format!("http://{}", roles[3].addr);
    let keys = [
        store.create_api_key("alice", 1).await.unwrap(),
        store.create_api_key("bob", 2).await.unwrap(),
    ];
    fund(&store, &url, &["alice", "bob"]).await;
    let clients = [signed(&url, &keys[0]), signed(&url, &keys[1])];
    let (_, statuses) = send_all(&clients, &crossing_orders(0xe7a, 600)).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    settled(&store, &roles[3].addr).await;
    let before = kept_views(&roles[3].addr, &clients, &store).await;
    // Every role stops gracefully: final snapshots, stored offsets.
    for role in roles.drain(..).rev() {
        role.terminate();
    }
    broker.terminate();
    let cuts = needed_from(&cluster, &store).await;
    assert!(cuts.values().filter(|c| **c > 0).count() >= 2, "{cuts:?}");
    delete_below(&cluster, &cuts).await;

    let _broker = cluster.broker();
    for ((topic, p), cut) in &cuts {
        use rdkafka::consumer::Consumer;
        let consumer: rdkafka::consumer::BaseConsumer =
            cluster.kafka().consumer_config("check").create().unwrap();
        let (low, _) = consumer
            .fetch_watermarks(topic, *p, Duration::from_secs(10))
            .unwrap();
        assert_eq!(low, *cut, "{topic}/{p}: the records below are gone");
    }
    for role in ["persister", "engine", "risk", "gateway"] {
        roles.push(cluster.role(role, &format!("{role}-2")).await);
    }
    let url = format!("http://{}", roles[3].addr);
    let clients = [signed(&url, &keys[0]), signed(&url, &keys[1])];
    assert_eq!(kept_views(&roles[3].addr, &clients, &store).await, before);
    let (_, statuses) = send_all(&clients, &crossing_orders(0xa11, 40)).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    settled(&store, &roles[3].addr).await;
    assert!(kept_views(&roles[3].addr, &clients, &store).await.2 > before.2);
    let ops = store.create_admin_key("ops-2", 1).await.unwrap();
    let admin = common::Admin::new(
        &url,
        Credentials {
            api_key: ops.admin_key,
            secret: ops.secret,
        },
    );
    audit_passes(&admin).await;
}

/// The gateways an open-loop load is spread over, as a load balancer's
/// target group: each with a client per user.
type Targets = std::sync::Arc<std::sync::Mutex<Vec<(&'static str, [Client; 2])>>>;

/// One answer of the scaling load: which gateway, its status (0: no
/// answer), and how long it took.
type Answered = (&'static str, u16, Duration);

/// Sends one order every `every` to the gateways in `targets`, in turn,
/// each in its own task (open loop), until `stop`; returns every answer.
async fn balanced_load(
    targets: Targets,
    every: Duration,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<Answered> {
    let orders = crossing_orders(0x5ca1e, 100_000);
    let mut tick = tokio::time::interval(every);
    let mut sends = Vec::new();
    for (i, order) in orders.into_iter().enumerate() {
        tick.tick().await;
        if *stop.borrow() {
            break;
        }
        let (name, client) = {
            let t = targets.lock().unwrap();
            let (name, clients) = &t[i % t.len()];
            (*name, clients[i % 2].clone())
        };
        sends.push(tokio::spawn(async move {
            let sent = Instant::now();
            let status = client.place(&order).await.map_or(0, |r| r.status.as_u16());
            (name, status, sent.elapsed())
        }));
    }
    let mut answers = Vec::new();
    for s in sends {
        answers.push(s.await.unwrap());
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_load_a_third_gateway_joins_and_a_second_leaves_and_no_request_fails() {
    let Some((cluster, _broker)) = Cluster::start().await else {
        return;
    };
    let _persister = cluster.role("persister", "persister").await;
    let _engine = cluster.role("engine", "engine").await;
    let _risk = cluster.role("risk", "risk").await;
    let g1 = cluster.role("gateway", "gateway-1").await;
    let g2 = cluster.role("gateway", "gateway-2").await;
    let store = Store::connect(&cluster.db, 2).await.unwrap();
    let keys = [
        store.create_api_key("alice", 1).await.unwrap(),
        store.create_api_key("bob", 1).await.unwrap(),
    ];
    let admin = fund(&store, &format!("http://{}", g1.addr), &["alice", "bob"]).await;
    let clients = |addr: &str| {
        let url = format!("http://{addr}");
        [signed(&url, &keys[0]), signed(&url, &keys[1])]
    };
    let targets = Targets::default();
    targets.lock().unwrap().extend([
        ("gateway-1", clients(&g1.addr)),
        ("gateway-2", clients(&g2.addr)),
    ]);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let load = tokio::spawn(balanced_load(
        targets.clone(),
        Duration::from_millis(10),
        stopped,
    ));

    // Scale out: a third gateway starts while orders flow, and joins the
    // rotation once ready, as a load balancer's health check would add it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let joining = Instant::now();
    let g3 = cluster.role("gateway", "gateway-3").await;
    let joined = joining.elapsed();
    targets
        .lock()
        .unwrap()
        .push(("gateway-3", clients(&g3.addr)));

    // Scale in: the second leaves the rotation (deregistered), and once
    // its requests had time to finish it gets SIGTERM and stops gracefully.
    tokio::time::sleep(Duration::from_secs(2)).await;
    targets.lock().unwrap().retain(|(n, _)| *n != "gateway-2");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let leaving = Instant::now();
    tokio::task::spawn_blocking(move || g2.terminate())
        .await
        .unwrap();
    let left = leaving.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.send(true).unwrap();
    let answers = load.await.unwrap();

    let count = |gw: &str| answers.iter().filter(|a| a.0 == gw).count();
    let failed: Vec<&Answered> = answers.iter().filter(|a| a.1 != 200).collect();
    let mut took: Vec<Duration> = answers.iter().map(|a| a.2).collect();
    took.sort_unstable();
    let at = |q: f64| took[((took.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
    eprintln!(
        "scaling under load: {} orders at 100/s; gateway-1 {}, gateway-2 {}, gateway-3 {}; \
         gateway-3 ready {:.0} ms after its start, gateway-2 stopped {:.0} ms after SIGTERM; \
         {} failed; ACK p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        answers.len(),
        count("gateway-1"),
        count("gateway-2"),
        count("gateway-3"),
        joined.as_secs_f64() * 1e3,
        left.as_secs_f64() * 1e3,
        failed.len(),
        at(0.5),
        at(0.99),
        at(1.0),
    );
    assert!(failed.is_empty(), "failed: {failed:?}");
    assert!(count("gateway-3") > 0 && count("gateway-2") > 0);
    audit_passes(&admin).await;

    // The joiner took each shard's balances from its snapshot and the
    // decisions after it: it shows what the first gateway shows.
    let (one, three) = (clients(&g1.addr), clients(&g3.addr));
    for user in 0..2 {
        common::eventually(|| async {
            let seen = balances(&three[user]).await;
            (seen == balances(&one[user]).await).then_some(())
        })
        .await;
    }
}
