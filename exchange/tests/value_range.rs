//! One value range end to end: every number a client can send is refused
//! with a 4xx and a code, or fits everything downstream; and a store that
//! refuses one pair's rows halts that pair alone.

mod common;

use std::time::Duration;

use client::{Client, Method, StatusCode};
use common::{eventually, limit};
use serde_json::{Value, json};

/// Every decimal class at the edges of the value range: 0, one unit,
/// around the pair's maxima, around 2^63 and 2^64, exponent forms, signs,
/// stray characters.
const NUMBERS: &[&str] = &[
    "0",
    "0.00000001",
    "0.00001",
    "1",
    "999.99999",
    "1000",
    "1000.00001",
    "9999999.99",
    "10000000",
    "10000000.01",
    "99999999.99",
    "100000000",
    "100000000.01",
    "92233720368547758.07",
    "92233720368547758.08",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "100000000000000000",
    "99999999999999999.99",
    "1000000000000000.00",
    "1e3",
    "1E3",
    "1.0e2",
    "-0",
    "-1",
    "+1",
    " 1",
    "1 ",
    ".5",
    "5.",
    "0x10",
    "１",
    "",
    "00000000000000000000000000000000000000001",
    "NaN",
    "Infinity",
];

fn order(field: &str, value: &str, market: bool) -> Value {
    let mut o = if market {
        json!({"symbol": "BTCEUR", "side": "BUY", "type": "MARKET"})
    } else {
        json!({"symbol": "BTCEUR", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
               "quantity": "0.001", "price": "30000"})
    };
    o[field] = json!(value);
    o
}

fn assert_coded(what: &str, r: &client::Answer) {
    let ok = r.status == StatusCode::OK;
    let coded = r.status.is_client_error()
        && r.code().is_some()
        && r.body["msg"].as_str().is_some_and(|m| !m.is_empty());
    assert!(ok || coded, "{what}: {} {:?}", r.status, r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_boundary_value_is_refused_with_a_code_or_stored() {
    let ex = common::start().await;
    let alice = ex.user("alice").await;
    let bob = ex.user("bob").await;
    // The largest order the pair takes trades at the largest price, before
    // anything else rests, and its value is stored exactly.
    let max = json!({"symbol": "BTCEUR", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC",
        "quantity": "10", "price": "10000000"});
    let r = alice.place(&max).await.unwrap();
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let take = json!({"symbol": "BTCEUR", "side": "BUY", "type": "LIMIT", "timeInForce": "IOC",
        "quantity": "10", "price": "10000000"});
    let r = bob.place(&take).await.unwrap();
    assert_eq!(
        r.body["cummulativeQuoteQty"], "100000000.00",
        "{:?}",
        r.body
    );
    let id = r.body["orderId"].as_u64().unwrap();
    let stored = common::order_with_status(&bob, "BTCEUR", id, "FILLED").await;
    assert_eq!(stored["cummulativeQuoteQty"], "100000000.00");
    assert_ceilings_published(&ex).await;
    // Liquidity for market orders to take.
    let r = bob.place(&limit("SELL", "0.5", "30000")).await.unwrap();
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let mut cases = 0;
    for value in NUMBERS {
        for (field, market) in [
            ("quantity", false),
            ("price", false),
            ("quantity", true),
            ("quoteOrderQty", true),
        ] {
            let r = alice.place(&order(field, value, market)).await.unwrap();
            assert_coded(&format!("{field}={value:?} market={market}"), &r);
            cases += 1;
        }
        for id in ["orderId", "origClientOrderId"] {
            let q = format!("symbol=BTCEUR&{id}={}", urlencode(value));
            for method in [Method::GET, Method::DELETE] {
                let r = alice
                    .signed(method.clone(), "/api/v3/order", &q, None)
                    .await
                    .unwrap();
                assert_coded(&format!("{method} order {id}={value:?}"), &r);
                cases += 1;
            }
        }
    }
    // The issue's own cases, by their codes.
    let huge_price = json!({"symbol": "BTCEUR", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
        "quantity": "0.00001", "price": "100000000000000000"});
    let r = alice.place(&huge_price).await.unwrap();
    assert_eq!(
        (r.status, r.code(), &r.body["msg"]),
        (
            StatusCode::BAD_REQUEST,
            Some(-1013),
            &json!("Filter failure: PRICE_FILTER")
        ),
        "{:?}",
        r.body
    );
    let r = alice
        .place(&order("quoteOrderQty", "99999999999999999.99", true))
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.code(), &r.body["msg"]),
        (
            StatusCode::BAD_REQUEST,
            Some(-1013),
            &json!("Filter failure: NOTIONAL")
        ),
        "{:?}",
        r.body
    );
    for id in ["18446744073709551615", "9223372036854775808"] {
        let q = format!("symbol=BTCEUR&orderId={id}");
        let r = alice
            .signed(Method::GET, "/api/v3/order", &q, None)
            .await
            .unwrap();
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, Some(-2013)),
            "{id}: {:?}",
            r.body
        );
    }
    // Nothing above wedged the store: a later order on another pair is stored.
    assert_still_storing(&ex, &alice).await;
    eprintln!("{cases} boundary cases");
    ex.running.shutdown().await;
}

/// The pair's ceilings are published, in Binance's filters.
async fn assert_ceilings_published(ex: &common::TestExchange) {
    let info = ex
        .public()
        .get("/api/v3/exchangeInfo", "symbol=BTCEUR")
        .await
        .unwrap();
    let btc = &info.body["symbols"][0];
    let filter = |name: &str| {
        btc["filters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["filterType"] == name)
            .unwrap_or_else(|| panic!("no {name} filter: {btc}"))
            .clone()
    };
    assert_eq!(filter("PRICE_FILTER")["maxPrice"], "10000000.00", "{btc}");
    assert_eq!(filter("NOTIONAL")["maxNotional"], "100000000.00", "{btc}");
    assert_eq!(filter("LOT_SIZE")["maxQty"], "1000.00000000", "{btc}");
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b".-_".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn assert_still_storing(ex: &common::TestExchange, user: &Client) {
    let o = common::limit_on("ETHEUR", "BUY", "0.01", "100");
    let r = user.place(&o).await.unwrap();
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let id = r.body["orderId"].as_u64().unwrap();
    eventually(|| async {
        let r = common::query_order(user, "ETHEUR", id).await;
        (r.status == StatusCode::OK).then_some(())
    })
    .await;
    let r = ex.public().get("/readyz", "").await.unwrap();
    assert_eq!(r.body["ready"], true, "{:?}", r.body);
}

/// SQL that makes the store refuse every new ETH-EUR order row, and SQL
/// that takes it back.
fn refuse_eth(postgres: bool) -> (&'static [&'static str], &'static [&'static str]) {
    if postgres {
        (
            &[
                "CREATE FUNCTION refuse_eth() RETURNS trigger AS $$ BEGIN \
                 RAISE EXCEPTION 'injected failure'; END; $$ LANGUAGE plpgsql",
                "CREATE TRIGGER refuse_eth BEFORE INSERT ON orders FOR EACH ROW \
                 WHEN (NEW.pair = 'ETH-EUR') EXECUTE FUNCTION refuse_eth()",
            ],
            &["DROP TRIGGER refuse_eth ON orders"],
        )
    } else {
        (
            &[
                "CREATE TRIGGER refuse_eth BEFORE INSERT ON orders WHEN NEW.pair = 'ETH-EUR' \
               BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
            ],
            &["DROP TRIGGER refuse_eth"],
        )
    }
}

async fn execute(url: &str, statements: &[&str]) {
    use sqlx::Connection;
    if url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        for s in statements {
            sqlx::raw_sql(s).execute(&mut c).await.unwrap();
        }
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        for s in statements {
            sqlx::raw_sql(s).execute(&mut c).await.unwrap();
        }
    }
}

fn eth(price: &str) -> Value {
    common::limit_on("ETHEUR", "BUY", "0.01", price)
}

async fn store_refuses_one_pair(database_url: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(&dir);
    config.database_url = database_url;
    let url = config.database_url();
    let running = exchange::start(&config).await.unwrap();
    let key = running.store.create_api_key("alice", 1).await.unwrap();
    let alice = |addr: std::net::SocketAddr| {
        Client::new(
            &format!("http://{addr}"),
            Some(client::Credentials {
                api_key: key.api_key.clone(),
                secret: key.secret.clone(),
            }),
        )
    };
    let (inject, heal) = refuse_eth(url.starts_with("postgres"));
    execute(&url, inject).await;

    // The engine answers; the store then refuses the order's row.
    let c = alice(running.addr);
    let r = c.place(&eth("100")).await.unwrap();
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let refused_id = r.body["orderId"].as_u64().unwrap();
    let ready = eventually(|| async {
        let r = c.get("/readyz", "").await.unwrap();
        (r.body["halted"] == json!(["ETH-EUR"])).then_some(r)
    })
    .await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    let why = ready.body["reasons"]["ETH-EUR"]
        .as_str()
        .unwrap_or_default();
    assert!(why.contains("injected failure"), "{why}");
    let r = c.place(&eth("101")).await.unwrap();
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::SERVICE_UNAVAILABLE, Some(-1009))
    );
    let metrics = c.get("/metrics", "").await.unwrap();
    let text = metrics.body.as_str().unwrap_or_default().to_string();
    assert!(
        text.contains("matching_pair_halted{pair=\"ETH-EUR\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("matching_pair_halted{pair=\"BTC-EUR\"} 0"),
        "{text}"
    );
    // Every other pair is stored as before.
    let btc = c.place(&limit("BUY", "0.01", "100")).await.unwrap();
    let btc_id = btc.body["orderId"].as_u64().unwrap();
    let found = |c: Client, pair: &'static str, id: u64| async move {
        let r = common::query_order(&c, pair, id).await;
        (r.status == StatusCode::OK).then_some(())
    };
    eventually(|| found(c.clone(), "BTCEUR", btc_id)).await;
    tokio::time::timeout(Duration::from_secs(15), running.shutdown())
        .await
        .expect("SIGTERM path exits with a halted pair");

    // The data directory starts, with the pair still halted and saying why.
    let running = exchange::start(&config).await.unwrap();
    let c = alice(running.addr);
    let r = c.place(&eth("102")).await.unwrap();
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::SERVICE_UNAVAILABLE, Some(-1009))
    );
    let halts = running.store.halted_pairs().await.unwrap();
    assert_eq!(halts.len(), 1);
    assert!(halts[0].reason.contains("injected failure"), "{halts:?}");
    let r = c.place(&limit("SELL", "0.01", "100")).await.unwrap();
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    running.shutdown().await;

    // Healed and resumed, the pair replays its journal: nothing was lost.
    execute(&url, heal).await;
    let store = store::Store::connect(&url, 1).await.unwrap();
    assert!(
        store
            .resume_pair(proto::Symbol::new("ETH-EUR").unwrap())
            .await
            .unwrap()
    );
    store.close().await;
    let running = exchange::start(&config).await.unwrap();
    let c = alice(running.addr);
    eventually(|| found(c.clone(), "ETHEUR", refused_id)).await;
    let r = c.place(&eth("103")).await.unwrap();
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(c.get("/readyz", "").await.unwrap().body["ready"], true);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pair_whose_rows_sqlite_refuses_is_halted_alone() {
    store_refuses_one_pair(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pair_whose_rows_postgres_refuses_is_halted_alone() {
    let Some(url) = common::fresh_postgres().await else {
        return;
    };
    store_refuses_one_pair(Some(url)).await;
}
