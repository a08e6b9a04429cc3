//! Criterion benchmarks of the gateway's request path for a new order, the
//! work done on every `POST /api/v3/order` before and after the command
//! log: check the HMAC signature (key cached), parse the form body, validate
//! the order into the engine's command, and encode the `ACK` answer; and
//! the same path from raw bytes as the gateway's own function runs it
//! (`gateway::command_from_raw`: content type, timestamp, parameters,
//! validation). Run: `cargo bench -p benches --bench gateway`.
//!
//! The gateway is real (over an SQLite store in a scratch directory, its
//! pairs' actors idle); nothing is submitted to the log.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gateway::{
    ApiError, Caller, Gateway, GatewayConfig, GatewayMetrics, GatewayParts, KeyCache, MarketData,
    NewOrderRequest, OrderIds, RawRoute, new_order_command,
};
use pipeline::{PipelineMetrics, RuntimeConfig};
use proto::{AdvancedOrders, NewOrder, PairConfig, Price, Qty, QuoteQty, StpMode, Symbol};
use runtime::Exchange;
use serde_json::json;
use store::Store;

/// A limit order as a client sends it: Binance's parameters, a form body
/// (the signature goes in the query).
const BODY: &[u8] = b"symbol=BTCEUR&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01000000\
&price=30000.00&newClientOrderId=bench-1&newOrderRespType=ACK";
/// [`BODY`]'s media type.
const FORM: &str = "application/x-www-form-urlencoded";
/// The request's timestamp; the check is given the same clock.
const NOW_MS: u64 = 1_700_000_000_000;

fn btc_eur() -> PairConfig {
    PairConfig {
        symbol: Symbol::new("BTC-EUR").expect("valid symbol"),
        price_scale: 2,
        qty_scale: 8,
        tick_size: Price(1),
        lot_size: Qty(1_000),
        min_qty: Qty(1_000),
        max_qty: Qty(100_000_000_000),
        max_price: Price(1_000_000_000),
        min_notional: QuoteQty(100),
        max_notional: QuoteQty(10_000_000_000),
        default_stp: StpMode::None,
        max_open_orders: 1_000_000,
        advanced: AdvancedOrders::ALL,
        fees: proto::Fees::ZERO,
    }
}

struct Setup {
    gateway: Arc<Gateway>,
    keys: KeyCache,
    api_key: String,
    /// `timestamp=...&signature=...` for [`BODY`].
    query: String,
    secret: String,
    _runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::watch::Sender<bool>,
}

fn setup() -> Setup {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let dir = tempfile::tempdir().expect("a scratch directory");
    let url = format!("sqlite://{}", dir.path().join("bench.sqlite").display());
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let (gateway, keys, api_key, secret) = runtime.block_on(async {
        let store = Store::connect(&url, 1).await.expect("store");
        let registry = prometheus::Registry::new();
        let rm = PipelineMetrics::register(&registry).expect("metrics");
        let gm = GatewayMetrics::register(&registry).expect("metrics");
        let pairs = vec![btc_eur()];
        let market = Arc::new(MarketData::new(&pairs, 1_024));
        let exchange = Exchange::start(
            store.clone(),
            &pairs,
            &dir.path().join("journal"),
            RuntimeConfig::default(),
            market.clone(),
            rm,
            None,
        )
        .await
        .expect("exchange");
        let key = store.create_api_key("bench", 1).await.expect("key");
        let gateway = Gateway::new(GatewayParts {
            config: GatewayConfig::default(),
            log: Arc::new(exchange),
            store: store.clone(),
            market,
            pairs,
            ids: OrderIds::new(0),
            registry,
            metrics: gm,
            shutdown: stop_rx,
            demo_funding: Vec::new(),
        });
        (gateway, KeyCache::new(store), key.api_key, key.secret)
    });
    let signed = format!("timestamp={NOW_MS}");
    let mut payload = signed.clone().into_bytes();
    payload.extend_from_slice(BODY);
    let query = format!("{signed}&signature={}", gateway::sign(&secret, &payload));
    let s = Setup {
        gateway,
        keys,
        api_key,
        query,
        secret,
        _runtime: runtime,
        _dir: dir,
        _stop: stop,
    };
    // The first check loads the key from the store; later ones hit the cache.
    let first = s
        ._runtime
        .block_on(s.keys.verify(Some(&s.api_key), &s.query, BODY, NOW_MS));
    first.expect("the signature checks");
    s
}

/// Runs a future that completes without waiting (a cached key check).
fn ready<T>(f: impl Future<Output = T>) -> T {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the key is cached: the check does not wait"),
    }
}

fn verify(s: &Setup) -> Result<Caller, ApiError> {
    ready(s.keys.verify(Some(&s.api_key), &s.query, BODY, NOW_MS))
}

/// The `ACK` answer, Binance's shape, built as the handler builds it.
fn encode_ack(p: &PairConfig, order: &NewOrder) -> Vec<u8> {
    let ack = json!({
        "symbol": p.symbol.joined(),
        "orderId": order.order_id.0,
        "orderListId": -1,
        "clientOrderId": order.client_order_id.map(|c| c.as_str().to_string()),
        "transactTime": NOW_MS,
    });
    serde_json::to_vec(&ack).expect("encodes")
}

/// The order's parameters, parsed as the gateway parses a form body.
fn parse(body: &[u8]) -> NewOrderRequest {
    serde_urlencoded::from_bytes(body).expect("parses")
}

fn request_path(c: &mut Criterion) {
    let s = setup();
    let req = parse(BODY);
    let (pair, order) = new_order_command(&s.gateway, &req).expect("valid");
    let pairs = [btc_eur()];

    let mut g = c.benchmark_group("gateway");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_order_form", |b| {
        b.iter(|| black_box(parse(black_box(BODY))))
    });
    g.bench_function("verify_signature", |b| {
        b.iter(|| black_box(verify(&s).expect("checks")))
    });
    g.bench_function("validate_order", |b| {
        b.iter(|| black_box(new_order_command(&s.gateway, black_box(&req)).expect("valid")))
    });
    g.bench_function("encode_ack", |b| {
        b.iter(|| black_box(encode_ack(&pair, black_box(&order))))
    });
    g.bench_function("sign_request", |b| {
        let mut payload = format!("timestamp={NOW_MS}").into_bytes();
        payload.extend_from_slice(BODY);
        b.iter(|| black_box(gateway::sign(&s.secret, black_box(&payload))))
    });
    // All four, in the handler's order: signature, body, validation, answer.
    g.bench_function("request_path", |b| {
        b.iter(|| {
            let caller = verify(&s).expect("checks");
            let req = parse(black_box(BODY));
            let (pair, order) = new_order_command(&s.gateway, &req).expect("valid");
            black_box((caller.user, encode_ack(&pair, &order)))
        })
    });
    // Raw query and body to the command, by the gateway's own function:
    // what the handler does between the signature check and the log.
    g.bench_function("raw_to_command", |b| {
        b.iter(|| {
            black_box(
                gateway::command_from_raw(
                    &pairs,
                    RawRoute::NewOrder,
                    black_box(&s.query),
                    FORM,
                    black_box(BODY),
                    NOW_MS,
                )
                .expect("valid"),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, request_path);
criterion_main!(benches);
