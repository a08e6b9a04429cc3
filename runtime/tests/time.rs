//! The passing of time in the embedded runtime: the journal writer appends
//! an `AdvanceTime` command to each pair that took no command for
//! `runtime.gtd_tick_ms`, so good-till-date orders on idle books expire on
//! time (and their holds are released), while busy pairs get none; the
//! commands that emit nothing still count as applied and replay after a
//! restart.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use accounts::{AssetId, Balance, Reference};
use commandlog::{
    AccountUpdate, CommandLog, EventRecord, Lag, Movement, MovementKind, MovementOutcome, Observer,
};
use engine::Depth;
use pipeline::{PipelineMetrics, RuntimeConfig};
use proto::{
    CancelReason, Command, CommandBody, EventBody, NewOrder, OrderId, OrderRef, OrderSize,
    OrderType, PairConfig, Price, Qty, Side, Symbol, TimeInForce, Timestamp, UserId,
};
use runtime::{Exchange, RiskSettings};
use store::Store;

/// The period of the tests' time commands.
const TICK: Duration = Duration::from_millis(200);

fn btc() -> Symbol {
    Symbol::new("BTC-EUR").unwrap()
}

fn eth() -> Symbol {
    Symbol::new("ETH-EUR").unwrap()
}

fn pairs() -> Vec<PairConfig> {
    vec![PairConfig::simple(btc()), PairConfig::simple(eth())]
}

/// Every record with when it arrived, and the latest balances.
#[derive(Default)]
struct Seen {
    records: Mutex<Vec<(Instant, Arc<EventRecord>)>>,
    balances: Mutex<HashMap<(UserId, AssetId), Balance>>,
}

impl Observer for Seen {
    fn on_start(&self, _: &PairConfig, _: Depth) {}
    fn on_record(&self, record: &Arc<EventRecord>) {
        let now = Instant::now();
        self.records.lock().unwrap().push((now, record.clone()));
    }
    fn on_account(&self, update: &Arc<AccountUpdate>) {
        let mut b = self.balances.lock().unwrap();
        for &(a, bal) in &update.balances {
            b.insert((update.user, a), bal);
        }
    }
}

impl Seen {
    /// When order `id` of `pair` expired, and the time its command carried.
    fn expired(&self, pair: Symbol, id: OrderId) -> Option<(Instant, Timestamp)> {
        self.records.lock().unwrap().iter().find_map(|(at, r)| {
            r.events.iter().find_map(|e| match e.body {
                EventBody::Canceled(c)
                    if r.pair == pair && c.order_id == id && c.reason == CancelReason::Expired =>
                {
                    Some((*at, e.timestamp))
                }
                _ => None,
            })
        })
    }
}

async fn start(
    dir: &Path,
    risk: bool,
    tick: Duration,
    seen: Arc<Seen>,
) -> (Exchange, PipelineMetrics, Store) {
    let url = format!("sqlite://{}", dir.join("store.sqlite").display());
    let store = Store::connect(&url, 4).await.unwrap();
    let metrics = PipelineMetrics::register(&Default::default()).unwrap();
    let runtime = RuntimeConfig {
        gtd_tick_ms: u64::try_from(tick.as_millis()).unwrap(),
        ..RuntimeConfig::default()
    };
    let settings = risk.then_some(RiskSettings {
        snapshot_every: 1_000,
    });
    let ex = Exchange::start(
        store.clone(),
        &pairs(),
        &dir.join("journal"),
        runtime,
        seen,
        metrics.clone(),
        settings,
    )
    .await
    .unwrap();
    (ex, metrics, store)
}

fn gtd_buy(id: u64, good_till: u64) -> Command {
    let order = NewOrder {
        good_till: Some(Timestamp(good_till)),
        ..NewOrder::plain(
            OrderId(id),
            Side::Buy,
            OrderType::Limit { price: Price(100) },
            TimeInForce::Gtd,
            OrderSize::Base(Qty(10)),
        )
    };
    Command {
        pair: btc(),
        user: UserId(1),
        timestamp: Timestamp(commandlog::now_ns()),
        body: CommandBody::NewOrder(order),
    }
}

/// The `AdvanceTime` commands applied on `pair`.
fn time_commands(metrics: &PipelineMetrics, pair: Symbol) -> u64 {
    metrics
        .commands
        .with_label_values(&[pair.as_str(), "time"])
        .get()
}

/// Places a GTD order on the idle book of BTC-EUR, then waits for it to
/// expire: it must, within two tick periods of its time, though nothing
/// else is sent. Returns the exchange and what it saw.
async fn expires_on_an_idle_book(risk: bool) -> (Exchange, Arc<Seen>, PipelineMetrics) {
    let dir = tempfile::tempdir().unwrap();
    let seen = Arc::new(Seen::default());
    let (ex, metrics, _store) = start(dir.path(), risk, TICK, seen.clone()).await;
    if risk {
        let eur = commandlog::asset_by_name(&ex.accounts().unwrap().assets(), "EUR").unwrap();
        let m = Movement {
            user: UserId(1),
            asset: eur,
            amount: 1_000,
            kind: MovementKind::Deposit,
            reference: Reference(1),
        };
        let done = ex.accounts().unwrap().move_funds(m).await.unwrap();
        assert!(matches!(done, MovementOutcome::Applied(_)));
    }
    let good_till = commandlog::now_ns() + 300_000_000;
    let placed = ex.submit(gtd_buy(7, good_till), true).await.unwrap();
    let record = placed.outcome.unwrap().await.unwrap();
    assert!(
        matches!(record.events[0].body, EventBody::Accepted(a) if a.order_id == OrderId(7)),
        "the request's answer is its own record, not a time command's: {record:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let (_, stamped) = loop {
        if let Some(found) = seen.expired(btc(), OrderId(7)) {
            break found;
        }
        assert!(Instant::now() < deadline, "the GTD order never expired");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    // The command that expired it was stamped within two periods of its
    // time, and arrived within two periods (and a little slack) of it.
    let late = Duration::from_nanos(stamped.0.saturating_sub(good_till));
    assert!(stamped.0 >= good_till);
    assert!(late <= 2 * TICK, "stamped {late:?} after its time");
    let wall = Duration::from_nanos(commandlog::now_ns().saturating_sub(good_till));
    assert!(
        wall <= 2 * TICK + Duration::from_millis(300),
        "seen {wall:?} after its time"
    );
    assert!(time_commands(&metrics, btc()) > 0);
    (ex, seen, metrics)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gtd_order_on_an_idle_book_expires_on_time_and_its_hold_is_released() {
    let (ex, seen, _) = expires_on_an_idle_book(true).await;
    let eur = commandlog::asset_by_name(&ex.accounts().unwrap().assets(), "EUR").unwrap();
    // The expiry's settlement was published before its record.
    let b = seen.balances.lock().unwrap()[&(UserId(1), eur)];
    assert_eq!(
        b,
        Balance {
            free: 1_000,
            locked: 0
        }
    );
    let report = ex.accounts().unwrap().audit().await.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.open_holds, 0);
    ex.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_risk_stage_an_idle_book_expires_on_time_too() {
    let (ex, _, _) = expires_on_an_idle_book(false).await;
    // Time commands emit nothing here, yet count as applied: no lag. A
    // tick logged and not yet applied reads as 1 for a moment, so the lag
    // must come back to 0; uncounted ticks would keep it above 0 for good.
    tokio::time::sleep(3 * TICK).await;
    let status = ex.pair(eth()).unwrap();
    assert!(status.logged_position() >= 2);
    let deadline = Instant::now() + Duration::from_secs(2);
    while status.lag() != Lag::Commands(0) {
        assert!(Instant::now() < deadline, "lag stays {:?}", status.lag());
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    ex.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_pair_gets_no_time_commands_and_an_idle_one_gets_one_a_period() {
    let dir = tempfile::tempdir().unwrap();
    let seen = Arc::new(Seen::default());
    let tick = Duration::from_millis(100);
    let (ex, metrics, _store) = start(dir.path(), false, tick, seen.clone()).await;
    let started = Instant::now();
    let mut id = 0;
    while started.elapsed() < Duration::from_millis(800) {
        id += 1;
        // A cancel of nothing: a command all the same.
        let cancel = Command {
            pair: btc(),
            user: UserId(1),
            timestamp: Timestamp(commandlog::now_ns()),
            body: CommandBody::Cancel {
                target: OrderRef::Id(OrderId(id)),
            },
        };
        ex.submit(cancel, false).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ex.shutdown().await;
    assert_eq!(time_commands(&metrics, btc()), 0, "the busy pair");
    let idle = time_commands(&metrics, eth());
    assert!((4..=9).contains(&idle), "{idle} time commands in 800 ms");
    // No record of a time command reached anyone with an event.
    let records = seen.records.lock().unwrap();
    assert!(
        records
            .iter()
            .all(|(_, r)| r.pair == btc() || r.events.is_empty())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_commands_are_journaled_and_replayed_like_any_command() {
    let dir = tempfile::tempdir().unwrap();
    let seen = Arc::new(Seen::default());
    let (ex, _, store) = start(dir.path(), true, Duration::from_millis(50), seen.clone()).await;
    let eur = commandlog::asset_by_name(&ex.accounts().unwrap().assets(), "EUR").unwrap();
    let m = Movement {
        user: UserId(1),
        asset: eur,
        amount: 1_000,
        kind: MovementKind::Deposit,
        reference: Reference(1),
    };
    ex.accounts().unwrap().move_funds(m).await.unwrap();
    // An order good till long after: it stays through many ticks.
    let far = commandlog::now_ns() + 3_600_000_000_000;
    ex.submit(gtd_buy(7, far), true).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let logged = ex.pair(eth()).unwrap().logged_position();
    assert!(logged >= 3, "ticks journaled: {logged}");
    // Killed, as a crash would: what is journaled is replayed at start.
    ex.abort();
    drop(ex);
    store.close().await;
    let seen = Arc::new(Seen::default());
    let (ex, metrics, _store) = start(dir.path(), true, Duration::ZERO, seen).await;
    let status = ex.pair(eth()).unwrap();
    assert!(status.logged_position() >= logged);
    assert_eq!(status.lag(), Lag::Commands(0));
    // The order survived every tick, with its hold.
    let report = ex.accounts().unwrap().audit().await.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.open_holds, 1);
    // Zero turns the ticks off.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(time_commands(&metrics, eth()), 0);
    ex.shutdown().await;
}
