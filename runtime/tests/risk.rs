//! The risk stage in the embedded runtime: pre-trade checks, settlement,
//! movements, publishing, and recovery after a clean stop and a crash.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use accounts::{AssetId, Balance, Fees, Reference, RiskCode, Shard};
use commandlog::{
    AccountUpdate, CommandLog, EventRecord, ListError, Listing, Movement, MovementKind,
    MovementOutcome, Observer, SubmitError,
};
use engine::Depth;
use pipeline::{PipelineMetrics, RuntimeConfig};
use proto::{
    Amend, Command, CommandBody, ConditionalKind, EventBody, ListKind, NewOrder, NewOrderList,
    OrderId, OrderRef, OrderSize, OrderType, PairConfig, Price, Qty, Side, Symbol, TimeInForce,
    Timestamp, Trigger, UserId,
};
use runtime::{Exchange, RiskSettings};
use store::Store;

const FEES: Fees = Fees {
    maker_bps: 10,
    taker_bps: 20,
};

fn btc() -> Symbol {
    Symbol::new("BTC-EUR").unwrap()
}

fn eth() -> Symbol {
    Symbol::new("ETH-EUR").unwrap()
}

fn pairs() -> Vec<PairConfig> {
    vec![PairConfig::simple(btc()), PairConfig::simple(eth())]
}

/// Keeps the latest published balance of every account.
#[derive(Default)]
struct Books {
    balances: Mutex<BTreeMap<(UserId, AssetId), Balance>>,
    movements: Mutex<Vec<Arc<AccountUpdate>>>,
    starts: Mutex<usize>,
}

impl Observer for Books {
    fn on_start(&self, _: &PairConfig, _: Depth) {}
    fn on_record(&self, _: &Arc<EventRecord>) {}
    fn on_accounts_start(&self, balances: &[(UserId, AssetId, Balance)]) {
        *self.starts.lock().unwrap() += 1;
        let mut b = self.balances.lock().unwrap();
        b.clear();
        for &(u, a, bal) in balances {
            b.insert((u, a), bal);
        }
    }
    fn on_account(&self, update: &Arc<AccountUpdate>) {
        let mut b = self.balances.lock().unwrap();
        for &(a, bal) in &update.balances {
            b.insert((update.user, a), bal);
        }
        if update.movement.is_some() {
            self.movements.lock().unwrap().push(update.clone());
        }
    }
}

impl Books {
    fn get(&self, user: u64, asset: AssetId) -> Balance {
        self.balances
            .lock()
            .unwrap()
            .get(&(UserId(user), asset))
            .copied()
            .unwrap_or_default()
    }
}

struct Setup {
    risk_every: u64,
    runtime: RuntimeConfig,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            risk_every: 1_000,
            runtime: RuntimeConfig::default(),
        }
    }
}

async fn start(dir: &Path, setup: &Setup, books: Arc<Books>) -> (Exchange, Store) {
    start_with(dir, setup, books, &pairs()).await
}

async fn start_with(
    dir: &Path,
    setup: &Setup,
    books: Arc<Books>,
    pairs: &[PairConfig],
) -> (Exchange, Store) {
    let url = format!("sqlite://{}", dir.join("store.sqlite").display());
    let store = Store::connect(&url, 4).await.unwrap();
    let registry = prometheus_free_metrics();
    // Every pair charges FEES.
    let pairs: Vec<PairConfig> = pairs
        .iter()
        .map(|p| PairConfig { fees: FEES, ..*p })
        .collect();
    let ex = Exchange::start(
        store.clone(),
        &pairs,
        &dir.join("journal"),
        setup.runtime.clone(),
        books,
        registry,
        Some(RiskSettings {
            snapshot_every: setup.risk_every,
        }),
    )
    .await
    .unwrap();
    (ex, store)
}

fn prometheus_free_metrics() -> PipelineMetrics {
    PipelineMetrics::register(&Default::default()).unwrap()
}

fn asset(ex: &Exchange, name: &str) -> AssetId {
    commandlog::asset_by_name(&ex.accounts().unwrap().assets(), name).unwrap()
}

async fn deposit(
    ex: &Exchange,
    user: u64,
    asset: AssetId,
    amount: u128,
    r: u64,
) -> MovementOutcome {
    move_funds(ex, MovementKind::Deposit, user, asset, amount, r).await
}

async fn move_funds(
    ex: &Exchange,
    kind: MovementKind,
    user: u64,
    asset: AssetId,
    amount: u128,
    reference: u64,
) -> MovementOutcome {
    let m = Movement {
        kind,
        user: UserId(user),
        asset,
        amount,
        reference: Reference(reference),
    };
    ex.accounts().unwrap().move_funds(m).await.unwrap()
}

fn order(pair: Symbol, user: u64, id: u64, side: Side, price: Option<u64>, qty: u64) -> Command {
    let (order_type, tif) = match price {
        Some(p) => (OrderType::Limit { price: Price(p) }, TimeInForce::Gtc),
        None => (OrderType::Market, TimeInForce::Ioc),
    };
    Command {
        pair,
        user: UserId(user),
        timestamp: Timestamp(id),
        body: CommandBody::NewOrder(NewOrder::plain(
            OrderId(id),
            side,
            order_type,
            tif,
            OrderSize::Base(Qty(qty)),
        )),
    }
}

fn cancel(pair: Symbol, user: u64, id: u64) -> Command {
    Command {
        pair,
        user: UserId(user),
        timestamp: Timestamp(id),
        body: CommandBody::Cancel {
            target: OrderRef::Id(OrderId(id)),
        },
    }
}

fn amend(pair: Symbol, user: u64, id: u64, qty: Option<u64>, price: Option<u64>) -> Command {
    Command {
        pair,
        user: UserId(user),
        timestamp: Timestamp(id),
        body: CommandBody::Amend(Amend {
            target: OrderRef::Id(OrderId(id)),
            new_qty: qty.map(Qty),
            new_price: price.map(Price),
            new_stop_price: None,
        }),
    }
}

/// Submits `cmd` and waits for its events (so their settlement is applied
/// and published).
async fn run(ex: &Exchange, cmd: Command) -> Result<Arc<EventRecord>, SubmitError> {
    let s = ex.submit(cmd, true).await?;
    Ok(s.outcome.unwrap().await.unwrap())
}

fn journal_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir.join("journal"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_leave_nothing_in_the_journal_and_movements_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let books = Arc::new(Books::default());
    let (ex, _store) = start(dir.path(), &Setup::default(), books.clone()).await;
    let (btc_a, eur) = (asset(&ex, "BTC"), asset(&ex, "EUR"));
    // A sell without funds is refused and leaves nothing in the journal.
    let before = journal_bytes(dir.path());
    let pos = ex.pair(btc()).unwrap().logged_position();
    let got = ex
        .submit(order(btc(), 1, 1, Side::Sell, Some(1_000), 4), false)
        .await;
    assert_eq!(
        got.unwrap_err(),
        SubmitError::Refused(RiskCode::InsufficientBalance)
    );
    assert_eq!(journal_bytes(dir.path()), before);
    assert_eq!(ex.pair(btc()).unwrap().logged_position(), pos);
    // Deposits, once per reference.
    let applied = deposit(&ex, 1, btc_a, 10, 1).await;
    assert_eq!(
        applied,
        MovementOutcome::Applied(Balance {
            free: 10,
            locked: 0
        })
    );
    let grown = journal_bytes(dir.path());
    assert!(grown > before);
    assert_eq!(
        deposit(&ex, 1, btc_a, 10, 1).await,
        MovementOutcome::Duplicate
    );
    assert_eq!(journal_bytes(dir.path()), grown);
    assert_eq!(books.get(1, btc_a).free, 10);
    assert_eq!(books.movements.lock().unwrap().len(), 1);
    // Withdrawals never take more than free.
    deposit(&ex, 2, eur, 500, 2).await;
    let w = move_funds(&ex, MovementKind::Withdraw, 2, eur, 501, 3).await;
    assert_eq!(w, MovementOutcome::Refused(RiskCode::InsufficientBalance));
    let w = move_funds(&ex, MovementKind::Withdraw, 2, eur, 500, 4).await;
    assert_eq!(w, MovementOutcome::Applied(Balance { free: 0, locked: 0 }));
    let last = books.movements.lock().unwrap().last().unwrap().movement;
    assert_eq!(last, Some((eur, -500)));
    ex.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trades_settle_exactly_and_market_buys_get_a_budget() {
    let dir = tempfile::tempdir().unwrap();
    let books = Arc::new(Books::default());
    let (ex, store) = start(dir.path(), &Setup::default(), books.clone()).await;
    let (btc_a, eur) = (asset(&ex, "BTC"), asset(&ex, "EUR"));
    let (alice, bob) = (1, 2);
    deposit(&ex, alice, btc_a, 10, 1).await;
    deposit(&ex, bob, eur, 100_000, 2).await;
    // Alice sells 4 at 1000, Bob takes 3: he pays 3000 + 6 (20 bps), she
    // gets 3000 - 3 (10 bps), the fee account 9.
    run(&ex, order(btc(), alice, 1, Side::Sell, Some(1_000), 4))
        .await
        .unwrap();
    assert_eq!(books.get(alice, btc_a), Balance { free: 6, locked: 4 });
    let r = run(&ex, order(btc(), bob, 2, Side::Buy, Some(1_000), 3))
        .await
        .unwrap();
    assert!(
        r.events
            .iter()
            .any(|e| matches!(e.body, EventBody::Trade(_)))
    );
    assert_eq!(books.get(alice, btc_a), Balance { free: 6, locked: 1 });
    assert_eq!(
        books.get(alice, eur),
        Balance {
            free: 2_997,
            locked: 0
        }
    );
    assert_eq!(
        books.get(bob, eur),
        Balance {
            free: 96_994,
            locked: 0
        }
    );
    assert_eq!(books.get(bob, btc_a), Balance { free: 3, locked: 0 });
    // A cancel releases the rest.
    run(&ex, cancel(btc(), alice, 1)).await.unwrap();
    assert_eq!(books.get(alice, btc_a), Balance { free: 7, locked: 0 });
    // A market buy by quantity gets the free quote as its budget and
    // releases what its fill did not spend: 2 at 1500 cost 3000 + 6.
    run(&ex, order(btc(), alice, 3, Side::Sell, Some(1_500), 2))
        .await
        .unwrap();
    let r = run(&ex, order(btc(), bob, 4, Side::Buy, None, 2))
        .await
        .unwrap();
    let filled: u64 = r
        .events
        .iter()
        .filter_map(|e| match e.body {
            EventBody::Trade(t) => Some(t.qty.0),
            _ => None,
        })
        .sum();
    assert_eq!(filled, 2);
    assert_eq!(
        books.get(bob, eur),
        Balance {
            free: 93_988,
            locked: 0
        }
    );
    assert_eq!(books.get(bob, btc_a), Balance { free: 5, locked: 0 });
    assert_eq!(
        books.get(alice, eur),
        Balance {
            free: 5_994,
            locked: 0
        }
    );
    assert_eq!(books.get(alice, btc_a), Balance { free: 5, locked: 0 });
    // A market buy with nothing to spend is refused.
    let got = ex
        .submit(order(btc(), 3, 5, Side::Buy, None, 1), false)
        .await;
    assert_eq!(
        got.unwrap_err(),
        SubmitError::Refused(RiskCode::InsufficientBalance)
    );
    let report = ex.accounts().unwrap().audit().await.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let eur_line = report.assets.iter().find(|a| a.asset == "EUR").unwrap();
    assert_eq!((eur_line.fees, eur_line.held), (18, 100_000));
    ex.shutdown().await;
    // A restart restores the same accounts from the final snapshot.
    let snap = store.latest_risk_snapshot(0).await.unwrap().unwrap();
    assert_eq!(Shard::restore(&snap.bytes).unwrap().fee_account(eur), 18);
    let books2 = Arc::new(Books::default());
    let (ex, _) = start(dir.path(), &Setup::default(), books2.clone()).await;
    assert_eq!(*books2.starts.lock().unwrap(), 1);
    assert_eq!(
        *books2.balances.lock().unwrap(),
        *books.balances.lock().unwrap()
    );
    ex.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amend_up_must_be_affordable() {
    let dir = tempfile::tempdir().unwrap();
    let books = Arc::new(Books::default());
    let (ex, _store) = start(dir.path(), &Setup::default(), books.clone()).await;
    let eur = asset(&ex, "EUR");
    let carol = 3;
    deposit(&ex, carol, eur, 1_000, 5).await;
    run(&ex, order(btc(), carol, 6, Side::Buy, Some(900), 1))
        .await
        .unwrap();
    assert_eq!(
        books.get(carol, eur),
        Balance {
            free: 99,
            locked: 901
        }
    );
    let pos = ex.pair(btc()).unwrap().logged_position();
    let got = ex
        .submit(amend(btc(), carol, 6, Some(2), None), false)
        .await;
    assert_eq!(
        got.unwrap_err(),
        SubmitError::Refused(RiskCode::InsufficientBalance)
    );
    assert_eq!(ex.pair(btc()).unwrap().logged_position(), pos);
    run(&ex, amend(btc(), carol, 6, None, Some(950)))
        .await
        .unwrap();
    assert_eq!(
        books.get(carol, eur),
        Balance {
            free: 49,
            locked: 951
        }
    );
    let report = ex.accounts().unwrap().audit().await.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.open_holds, 1);
    ex.shutdown().await;
}

/// A conditional order of `kind` firing at `stop`, working at `limit` (GTC)
/// or as a market order (IOC) of `qty` base.
fn conditional(
    id: u64,
    side: Side,
    kind: ConditionalKind,
    limit: Option<u64>,
    stop: u64,
    qty: u64,
) -> NewOrder {
    let order_type = OrderType::Conditional {
        kind,
        limit: limit.map(Price),
        trigger: Trigger {
            stop_price: Some(Price(stop)),
            trailing_delta: None,
        },
    };
    let tif = if limit.is_some() {
        TimeInForce::Gtc
    } else {
        TimeInForce::Ioc
    };
    NewOrder::plain(
        OrderId(id),
        side,
        order_type,
        tif,
        OrderSize::Base(Qty(qty)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_and_stops_hold_what_they_can_cost_through_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let books = Arc::new(Books::default());
    let (ex, _store) = start(dir.path(), &Setup::default(), books.clone()).await;
    let (btc_a, eur) = (asset(&ex, "BTC"), asset(&ex, "EUR"));
    let (alice, bob) = (1, 2);
    deposit(&ex, alice, btc_a, 10, 1).await;
    deposit(&ex, bob, eur, 100_000, 2).await;
    // A trade at 1,000: the last price.
    run(&ex, order(btc(), alice, 1, Side::Sell, Some(1_000), 1))
        .await
        .unwrap();
    run(&ex, order(btc(), bob, 2, Side::Buy, Some(1_000), 1))
        .await
        .unwrap();
    // Alice's OCO sells 5: a limit maker at 1,100 and a stop-limit at 900
    // (firing at 950). One hold of 5 BTC for both.
    let maker = NewOrder {
        post_only: true,
        ..NewOrder::plain(
            OrderId(4),
            Side::Sell,
            OrderType::Limit {
                price: Price(1_100),
            },
            TimeInForce::Gtc,
            OrderSize::Base(Qty(5)),
        )
    };
    let oco = NewOrderList {
        list_id: OrderId(3),
        client_list_id: None,
        kind: ListKind::Oco,
        orders: [
            maker,
            conditional(5, Side::Sell, ConditionalKind::StopLoss, Some(900), 950, 5),
        ],
    };
    let list = |l| Command {
        body: CommandBody::NewOrderList(Box::new(l)),
        ..order(btc(), alice, 3, Side::Sell, None, 1)
    };
    run(&ex, list(oco)).await.unwrap();
    assert_eq!(books.get(alice, btc_a), Balance { free: 4, locked: 5 });
    // Bob's stop-loss buys 2 at market once the price reaches 1,050: it gets
    // a budget from his free quote (98,998: 98,801 and its 197 fee), held.
    let stop = conditional(6, Side::Buy, ConditionalKind::StopLoss, None, 1_050, 2);
    let stop = Command {
        body: CommandBody::NewOrder(stop),
        ..order(btc(), bob, 6, Side::Buy, None, 1)
    };
    run(&ex, stop).await.unwrap();
    assert_eq!(
        books.get(bob, eur),
        Balance {
            free: 0,
            locked: 98_998
        }
    );
    // Carol takes Alice's limit maker: her stop-limit is canceled, Bob's
    // stop fires and finds nothing left to buy: all of its hold comes back.
    let carol = 3;
    deposit(&ex, carol, eur, 10_000, 3).await;
    let r = run(&ex, order(btc(), carol, 7, Side::Buy, Some(1_100), 5))
        .await
        .unwrap();
    let kinds: Vec<&str> = r
        .events
        .iter()
        .map(|e| match e.body {
            EventBody::Trade(_) => "trade",
            EventBody::Canceled(_) => "canceled",
            EventBody::Triggered(_) => "triggered",
            EventBody::ListDone(_) => "list_done",
            _ => "",
        })
        .filter(|k| !k.is_empty())
        .collect();
    assert_eq!(
        kinds,
        ["trade", "canceled", "list_done", "triggered", "canceled"]
    );
    assert_eq!(books.get(alice, btc_a), Balance { free: 4, locked: 0 });
    assert_eq!(
        books.get(bob, eur),
        Balance {
            free: 98_998,
            locked: 0
        }
    );
    // Both of her sales as a maker, less 10 bps each.
    assert_eq!(books.get(alice, eur).free, 999 + 5_495);
    let report = ex.accounts().unwrap().audit().await.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.open_holds, 0);
    ex.shutdown().await;
}

/// A tiny deterministic generator.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// One step of the random stream.
enum Step {
    /// Waited for: its checks may depend on earlier settlements.
    Command(Command),
    Deposit(u64, &'static str, u128, u64),
    /// Limit orders of rich users and cancels, submitted without waiting:
    /// accepted whatever their settlements' timing.
    Burst(Vec<Command>),
}

const RICH: u64 = 100;

fn stream(seed: u64, steps: usize) -> Vec<Step> {
    let mut rng = Rng(seed);
    let mut out = Vec::new();
    let mut next_id = 1u64;
    let mut reference = 1u64;
    // Six users who trade in the waited-for part, and a rich one for the
    // bursts.
    for user in (1..=6).chain([RICH]) {
        let amount: u64 = if user == RICH { 1_000_000_000 } else { 50_000 };
        for a in ["BTC", "ETH", "EUR"] {
            let base = if a == "EUR" { amount } else { amount / 100 };
            out.push(Step::Deposit(user, a, u128::from(base), reference));
            reference += 1;
        }
    }
    for _ in 0..steps {
        let pair = if rng.below(2) == 0 { btc() } else { eth() };
        match rng.below(20) {
            0 => {
                let user = 1 + rng.below(6);
                let a = ["BTC", "ETH", "EUR"][rng.below(3) as usize];
                out.push(Step::Deposit(
                    user,
                    a,
                    u128::from(1 + rng.below(5_000)),
                    reference,
                ));
                reference += 1;
            }
            1 => {
                let mut burst = Vec::new();
                for _ in 0..8 {
                    let side = if rng.below(2) == 0 {
                        Side::Buy
                    } else {
                        Side::Sell
                    };
                    let price = 95 + rng.below(10);
                    burst.push(order(
                        pair,
                        RICH,
                        next_id,
                        side,
                        Some(price),
                        1 + rng.below(5),
                    ));
                    next_id += 1;
                }
                out.push(Step::Burst(burst));
            }
            n => {
                let user = 1 + rng.below(6);
                let side = if rng.below(2) == 0 {
                    Side::Buy
                } else {
                    Side::Sell
                };
                let cmd = match n {
                    2..=4 => cancel(pair, user, 1 + rng.below(next_id)),
                    5..=6 => order(pair, user, next_id, side, None, 1 + rng.below(30)),
                    7 => amend(
                        pair,
                        user,
                        1 + rng.below(next_id),
                        Some(1 + rng.below(40)),
                        None,
                    ),
                    _ => {
                        let price = 90 + rng.below(20);
                        order(pair, user, next_id, side, Some(price), 1 + rng.below(40))
                    }
                };
                next_id += 1;
                out.push(Step::Command(cmd));
            }
        }
    }
    out
}

/// Runs `steps` on `ex`; a burst is waited for unless it is the last step.
async fn play(ex: &Exchange, steps: &[Step], wait_last_burst: bool) {
    for (i, step) in steps.iter().enumerate() {
        match step {
            Step::Command(cmd) => match run(ex, cmd.clone()).await {
                Ok(_) | Err(SubmitError::Refused(_)) => {}
                Err(e) => panic!("{e}"),
            },
            Step::Deposit(user, a, amount, r) => {
                deposit(ex, *user, asset(ex, a), *amount, *r).await;
            }
            Step::Burst(cmds) => {
                let mut outcomes = Vec::new();
                for cmd in cmds {
                    let s = ex.submit(cmd.clone(), true).await.unwrap();
                    outcomes.push(s.outcome.unwrap());
                }
                if i + 1 < steps.len() || wait_last_burst {
                    for o in outcomes {
                        o.await.unwrap();
                    }
                }
            }
        }
    }
}

/// The final shard of an exchange stopped cleanly.
async fn final_shard(store: &Store) -> (Shard, u64) {
    let snap = store.latest_risk_snapshot(0).await.unwrap().unwrap();
    (Shard::restore(&snap.bytes).unwrap(), snap.state_hash)
}

fn small() -> Setup {
    Setup {
        risk_every: 7,
        runtime: RuntimeConfig {
            snapshot_every: 5,
            actor_queue: 4,
            output_queue: 4,
            ..RuntimeConfig::default()
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_and_crashes_rebuild_the_same_accounts() {
    let steps = stream(7, 1_400);
    // Cut points after a burst: its commands are journaled, not waited for.
    let cuts: Vec<usize> = steps
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s, Step::Burst(_)))
        .map(|(i, _)| i + 1)
        .step_by(9)
        .take(4)
        .collect();
    assert!(cuts.len() >= 3, "{}", cuts.len());

    let reference = tempfile::tempdir().unwrap();
    let (ex, store) = start(reference.path(), &small(), Arc::new(Books::default())).await;
    play(&ex, &steps, true).await;
    ex.shutdown().await;
    let (expected, expected_hash) = final_shard(&store).await;
    assert!(expected.audit().is_ok());
    let eur = expected.asset_id("EUR").unwrap();
    assert!(
        expected.fee_account(eur) > 1_000,
        "the stream traded: {}",
        expected.fee_account(eur)
    );

    let dir = tempfile::tempdir().unwrap();
    let mut from = 0;
    for (n, &cut) in cuts.iter().chain(std::iter::once(&steps.len())).enumerate() {
        let books = Arc::new(Books::default());
        let (ex, store) = start(dir.path(), &small(), books.clone()).await;
        let report = ex.accounts().unwrap().audit().await.unwrap();
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        play(&ex, &steps[from..cut], cut == steps.len()).await;
        from = cut;
        if cut == steps.len() {
            ex.shutdown().await;
            let (got, hash) = final_shard(&store).await;
            let balances = |s: &Shard| s.balances().collect::<Vec<_>>();
            assert_eq!(balances(&got), balances(&expected));
            assert_eq!(hash, expected_hash);
        } else if n % 2 == 0 {
            // A crash: the last burst's commands are journaled, their events
            // neither settled nor stored.
            ex.abort();
            drop(ex);
        } else {
            ex.shutdown().await;
        }
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_whose_risk_stream_does_not_replay_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup::default();
    let (ex, store) = start(dir.path(), &setup, Arc::new(Books::default())).await;
    let eur = asset(&ex, "EUR");
    deposit(&ex, 1, eur, 100, 1).await;
    ex.abort();
    drop(ex);
    store.close().await;
    let (ex, store) = start(dir.path(), &setup, Arc::new(Books::default())).await;
    move_funds(&ex, MovementKind::Withdraw, 1, eur, 100, 2).await;
    ex.abort();
    drop(ex);
    // A snapshot that claims to cover the deposit (position 1) but does
    // not hold it: the journaled withdrawal at position 2 is then refused
    // on replay, which is corruption, not a reason to skip it.
    let shard = Shard::new(&pairs()).unwrap();
    store
        .save_risk_snapshot(&store::RiskSnapshotRow {
            shard: 0,
            position: 1,
            state_hash: shard.state_hash(),
            taken_at: 0,
            bytes: shard.snapshot(),
            decisions_from: None,
        })
        .await
        .unwrap();
    store.close().await;
    let url = format!("sqlite://{}", dir.path().join("store.sqlite").display());
    let store = Store::connect(&url, 4).await.unwrap();
    let err = Exchange::start(
        store,
        &pairs(),
        &dir.path().join("journal"),
        RuntimeConfig::default(),
        Arc::new(Books::default()),
        prometheus_free_metrics(),
        Some(RiskSettings {
            snapshot_every: 1_000,
        }),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, runtime::StartError::RiskReplay { position: 2, .. }),
        "{err}"
    );
}

fn sol() -> Symbol {
    Symbol::new("SOL-EUR").unwrap()
}

/// The balances of users 1 and 2 in SOL and EUR.
fn sol_and_eur(books: &Books, ex: &Exchange) -> Vec<Balance> {
    let (sol, eur) = (asset(ex, "SOL"), asset(ex, "EUR"));
    let users = [(1, sol), (1, eur), (2, sol), (2, eur)];
    users.iter().map(|&(u, a)| books.get(u, a)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pair_listed_after_the_risk_snapshot_is_listed_again_and_replays_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup::default();
    // A risk snapshot that knows BTC-EUR and ETH-EUR only.
    let (ex, store) = start(dir.path(), &setup, Arc::new(Books::default())).await;
    deposit(&ex, 1, asset(&ex, "EUR"), 1_000_000, 1).await;
    ex.shutdown().await;
    store.close().await;

    let books = Arc::new(Books::default());
    let (ex, store) = start(dir.path(), &setup, books.clone()).await;
    let listing = Listing {
        config: PairConfig {
            fees: FEES,
            ..PairConfig::simple(sol())
        },
        spec: "{}".into(),
    };
    let status = ex.list_pair(listing.clone()).await.unwrap();
    assert_eq!(status.symbol, sol());
    assert_eq!(ex.list_pair(listing).await.unwrap_err(), ListError::Exists);
    deposit(&ex, 2, asset(&ex, "SOL"), 50, 2).await;
    run(&ex, order(sol(), 2, 10, Side::Sell, Some(100), 5))
        .await
        .unwrap();
    run(&ex, order(sol(), 1, 11, Side::Buy, Some(100), 3))
        .await
        .unwrap();
    let before = sol_and_eur(&books, &ex);
    assert_eq!(before[0].free, 3, "the buy filled: {before:?}");
    // A crash: no snapshot of the shard or of the new book after this.
    ex.abort();
    drop(ex);
    store.close().await;

    // The store lists the pair; a start names it after the configured ones.
    let mut all = pairs();
    all.push(PairConfig::simple(sol()));
    let books = Arc::new(Books::default());
    let (ex, store) = start_with(dir.path(), &setup, books.clone(), &all).await;
    let listed = store.listed_pairs().await.unwrap();
    assert_eq!(listed.iter().map(|l| l.pair).collect::<Vec<_>>(), [sol()]);
    let report = ex.accounts().unwrap().audit().await.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(sol_and_eur(&books, &ex), before);
    // The rest of the sell fills: the book came back from the journal.
    run(&ex, order(sol(), 1, 12, Side::Buy, Some(100), 2))
        .await
        .unwrap();
    assert_eq!(books.get(1, asset(&ex, "SOL")).free, 5);
    ex.shutdown().await;
}
