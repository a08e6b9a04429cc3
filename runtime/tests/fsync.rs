//! The journal with `journal_fsync` on: each group commit waits for the
//! device, moved off its worker where the runtime has others
//! (`pipeline::off_worker`), and run in place on a current-thread runtime.
//! Both journal writers (the plain one, and the sequencer with the risk
//! stage) on both runtimes: an order is journaled, applied and answered,
//! and the exchange stops cleanly.

use std::sync::Arc;

use accounts::Reference;
use commandlog::{CommandLog, EventRecord, Movement, MovementKind, MovementOutcome, Observer};
use engine::Depth;
use pipeline::{PipelineMetrics, RuntimeConfig};
use proto::{
    Command, CommandBody, EventBody, NewOrder, OrderId, OrderSize, OrderType, PairConfig, Price,
    Qty, Side, Symbol, TimeInForce, Timestamp, UserId,
};
use runtime::{Exchange, RiskSettings};
use store::Store;

struct Ignore;

impl Observer for Ignore {
    fn on_start(&self, _: &PairConfig, _: Depth) {}
    fn on_record(&self, _: &Arc<EventRecord>) {}
}

/// Starts an exchange with fsync on, places a sell (with the risk stage,
/// after a deposit of what it sells, itself journaled), sees it accepted,
/// and stops.
async fn an_order_is_answered_with_fsync_on(risk: bool) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("store.sqlite").display());
    let store = Store::connect(&url, 4).await.unwrap();
    let btc = Symbol::new("BTC-EUR").unwrap();
    let runtime = RuntimeConfig {
        journal_fsync: true,
        ..RuntimeConfig::default()
    };
    let ex = Exchange::start(
        store,
        &[PairConfig::simple(btc)],
        &dir.path().join("journal"),
        runtime,
        Arc::new(Ignore),
        PipelineMetrics::register(&Default::default()).unwrap(),
        risk.then_some(RiskSettings {
            snapshot_every: 1_000,
        }),
    )
    .await
    .unwrap();
    if let Some(accounts) = ex.accounts() {
        let deposit = Movement {
            user: UserId(1),
            asset: commandlog::asset_by_name(&accounts.assets(), "BTC").unwrap(),
            amount: 1,
            kind: MovementKind::Deposit,
            reference: Reference(1),
        };
        let done = accounts.move_funds(deposit).await.unwrap();
        assert!(matches!(done, MovementOutcome::Applied(_)), "{done:?}");
    }
    let order = NewOrder::plain(
        OrderId(1),
        Side::Sell,
        OrderType::Limit { price: Price(100) },
        TimeInForce::Gtc,
        OrderSize::Base(Qty(1)),
    );
    let cmd = Command {
        pair: btc,
        user: UserId(1),
        timestamp: Timestamp(commandlog::now_ns()),
        body: CommandBody::NewOrder(order),
    };
    let placed = ex.submit(cmd, true).await.unwrap();
    let record = placed.outcome.unwrap().await.unwrap();
    assert!(
        matches!(record.events[0].body, EventBody::Accepted(a) if a.order_id == OrderId(1)),
        "{record:?}"
    );
    ex.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsync_on_a_multi_threaded_runtime() {
    an_order_is_answered_with_fsync_on(false).await;
    an_order_is_answered_with_fsync_on(true).await;
}

#[tokio::test]
async fn fsync_on_a_current_thread_runtime() {
    an_order_is_answered_with_fsync_on(false).await;
    an_order_is_answered_with_fsync_on(true).await;
}
