//! Every `/api/v3` answer against Binance's documented example, field by
//! field: the same keys (in nested objects and in array elements), the
//! same JSON type per key, a decimal string wherever Binance writes one,
//! and the same positions where Binance's answer is an array whose
//! positions carry the meaning (a kline row, a depth level).
//!
//! The examples are copied from `binance/binance-spot-api-docs`,
//! `testnet/rest-api.md` as of "Last Updated: 2025-04-25" (commit
//! 042f8af): the newest version of Binance's REST documentation at hand
//! that documents every endpoint served here (the copies of `rest-api.md`
//! at hand date from 2021 and 2023, before `order/amend/keepPriority`,
//! `permissionSets` and `avgPrice`'s `closeTime`). The testnet and
//! production pages document the same answers. Filters come from
//! `filters.md`, rate limiters from the "ENUM definitions" of
//! `rest-api.md`. Later changes Binance documented since are applied where
//! noted. Examples keep Binance's `//` comments and its typos (a missing or
//! a trailing comma); [`doc`] reads them as Binance's readers would.
//!
//! A difference kept on purpose is listed with the check, with its reason;
//! a listed difference that no longer occurs fails the check too, so the
//! lists stay true.

use std::collections::BTreeSet;

use accounts::{AssetInfo, Balance, Fees};
use proto::{
    Amend, ClientOrderId, Command, CommandBody, Event, EventBody, NewOrder, OrderId, OrderRef,
    OrderSize, OrderType, PairConfig, Price, Qty, QuoteQty, Seq, Side, StpMode, Symbol,
    TimeInForce, Timestamp, UserId,
};
use serde_json::{Value, json};
use store::{Batch, Candle, FillRow, OrderRow, WindowStats};

use super::account::{AccountBody, order_count_entry};
use super::bodies::{AccountTrade, DepthBody, ExchangeInfo, OrderBody, PairInfo, PublicTrade};
use super::public::tickers::{avg_price_body, day_fields, ticker};
use super::public::{agg_trade, book_entry, kline_row, price_entry};
use super::trading::answers::{RespType, amend_answer, cancel_answer, new_order_answer};
use super::trading::{replace_failure_body, replace_success, test_order_answer};
use crate::errors::ApiError;
use crate::market::{AccountSnapshot, DepthView};

// ---------------------------------------------------------------------
// Reading Binance's examples and comparing shapes.

/// `line` without its `//` comment (outside strings).
fn strip_comment(line: &str) -> &str {
    let mut in_string = false;
    let mut escaped = false;
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if in_string => escaped = true,
            b'"' => in_string = !in_string,
            b'/' if !in_string && bytes.get(i + 1) == Some(&b'/') => return &line[..i],
            _ => {}
        }
    }
    line
}

/// `text` without commas that close nothing (`{"a": 1,}`), outside strings.
fn drop_trailing_commas(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            ',' if !in_string => {
                let next = chars[i + 1..].iter().find(|c| !c.is_whitespace());
                if matches!(next, Some('}' | ']')) {
                    continue;
                }
            }
            _ => {}
        }
        out.push(c);
    }
    out
}

/// A documented example as JSON: `//` comments stripped, a missing comma
/// between a value and the next line's key or element put back (Binance's
/// `GET /api/v3/order` example lacks one after `"orderListId": -1`), and
/// trailing commas dropped.
pub(crate) fn doc(text: &str) -> Value {
    let lines: Vec<&str> = text
        .lines()
        .map(|l| strip_comment(l).trim_end())
        .filter(|l| !l.trim().is_empty())
        .collect();
    let mut joined = String::new();
    for (i, line) in lines.iter().enumerate() {
        joined.push_str(line);
        let ends_value =
            line.ends_with(|c: char| matches!(c, '"' | '}' | ']') || c.is_alphanumeric());
        let next_starts_item = lines
            .get(i + 1)
            .is_some_and(|n| n.trim_start().starts_with(['"', '{', '[']));
        if ends_value && next_starts_item {
            joined.push(',');
        }
        joined.push('\n');
    }
    let text = drop_trailing_commas(&joined);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("example does not parse: {e}\n{text}"))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Whether `s` is a decimal number as Binance writes one: `-12.340`.
fn is_decimal(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, "0"));
    !whole.is_empty()
        && !frac.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
}

/// The differences between the shape of `ours` and that of Binance's
/// `theirs` at `path` (`$` the root, `.key` a field, `[]` any element of a
/// list, `[i]` position `i` of an array listed in `tuples`), one line
/// each, `path: what`.
fn compare(path: &str, ours: &Value, theirs: &Value, tuples: &[&str], out: &mut Vec<String>) {
    if kind(ours) != kind(theirs) {
        out.push(format!(
            "{path}: {} here, {} in Binance's",
            kind(ours),
            kind(theirs)
        ));
        return;
    }
    match (ours, theirs) {
        (Value::String(o), Value::String(t)) if is_decimal(t) && !is_decimal(o) => {
            out.push(format!(
                "{path}: {o:?} is not a decimal, as Binance's {t:?} is"
            ));
        }
        (Value::Object(o), Value::Object(t)) => {
            for k in t.keys().filter(|k| !o.contains_key(*k)) {
                out.push(format!("{path}.{k}: missing"));
            }
            for k in o.keys().filter(|k| !t.contains_key(*k)) {
                out.push(format!("{path}.{k}: extra"));
            }
            for (k, tv) in t {
                if let Some(ov) = o.get(k) {
                    compare(&format!("{path}.{k}"), ov, tv, tuples, out);
                }
            }
        }
        (Value::Array(o), Value::Array(t)) if tuples.contains(&path) => {
            if o.len() != t.len() {
                out.push(format!(
                    "{path}: {} positions here, {} in Binance's",
                    o.len(),
                    t.len()
                ));
            }
            for (i, (ov, tv)) in o.iter().zip(t).enumerate() {
                compare(&format!("{path}[{i}]"), ov, tv, tuples, out);
            }
        }
        (Value::Array(o), Value::Array(t)) => {
            // Binance's first element stands for every element.
            let Some(tv) = t.first() else { return };
            if o.is_empty() {
                out.push(format!("{path}: empty here, its elements unchecked"));
            }
            for ov in o {
                compare(&format!("{path}[]"), ov, tv, tuples, out);
            }
        }
        _ => {}
    }
}

/// Checks `ours` against Binance's `theirs`. `known` lists the deliberate
/// differences as `(path, reason)`, `path` as [`compare`] writes it (the
/// part before `:`); every other difference fails, and so does a listed
/// one that does not occur.
pub(crate) fn check(
    name: &str,
    ours: &Value,
    theirs: &Value,
    tuples: &[&str],
    known: &[(&str, &str)],
) {
    let mut found = Vec::new();
    compare("$", ours, theirs, tuples, &mut found);
    let found: BTreeSet<String> = found.into_iter().collect();
    let known_paths: BTreeSet<&str> = known.iter().map(|(p, _)| *p).collect();
    let path_of = |d: &str| d.split_once(':').map_or(d, |(p, _)| p).to_string();
    let unexplained: Vec<&String> = found
        .iter()
        .filter(|d| !known_paths.contains(path_of(d).as_str()))
        .collect();
    let stale: Vec<&&str> = known_paths
        .iter()
        .filter(|p| !found.iter().any(|d| path_of(d) == **p))
        .collect();
    assert!(
        unexplained.is_empty() && stale.is_empty(),
        "{name}: differences from Binance's example: {unexplained:#?}\n\
         listed as deliberate but not found: {stale:#?}\nours: {ours:#}"
    );
}

// ---------------------------------------------------------------------
// A pair, a few commands through the real engine, and what they make.

const AT: u64 = 1_700_000_000_123_456_789;

fn pair() -> PairConfig {
    PairConfig {
        price_scale: 2,
        qty_scale: 8,
        tick_size: Price(1),
        lot_size: Qty(100_000),
        min_qty: Qty(100_000),
        max_qty: Qty(100_000_000_000),
        max_price: Price(100_000_000),
        min_notional: QuoteQty(1_000),
        max_notional: QuoteQty(100_000_000_000),
        default_stp: StpMode::CancelTaker,
        max_open_orders: 200,
        ..PairConfig::simple(Symbol::new("BTC-EUR").unwrap())
    }
}

fn cid(s: &str) -> Option<ClientOrderId> {
    Some(ClientOrderId::new(s).unwrap())
}

fn limit(id: u64, side: Side, price: u64, qty: u64, client: &str) -> NewOrder {
    NewOrder {
        order_id: OrderId(id),
        client_order_id: cid(client),
        side,
        order_type: OrderType::Limit {
            price: Price(price),
        },
        time_in_force: TimeInForce::Gtc,
        post_only: false,
        stp: None,
        size: OrderSize::Base(Qty(qty)),
        iceberg_qty: None,
        good_till: None,
    }
}

/// A market buy spending 25.00 EUR.
fn market_by_quote(id: u64) -> NewOrder {
    NewOrder {
        order_id: OrderId(id),
        client_order_id: cid(&format!("x-{id}")),
        side: Side::Buy,
        order_type: OrderType::Market,
        time_in_force: TimeInForce::Ioc,
        post_only: false,
        stp: None,
        size: OrderSize::Quote(QuoteQty(2_500)),
        iceberg_qty: None,
        good_till: None,
    }
}

/// What the engine made of a session on one book: a resting sell of
/// 1 BTC at 100.00 (order 1), a buy of 0.4 that takes part of it
/// (order 2), a buy of 0.5 resting below (order 3), the sell amended down
/// to 0.9 keeping priority, a market buy by quote (order 4), the resting
/// buy canceled.
struct Session {
    p: PairConfig,
    /// The events of each command, in order.
    records: Vec<(Command, Vec<Event>)>,
}

impl Session {
    fn new() -> Session {
        let p = pair();
        p.validate().unwrap();
        let mut book = engine::OrderBook::new(p).unwrap();
        let bodies = [
            (
                2,
                CommandBody::NewOrder(limit(1, Side::Sell, 10_000, 100_000_000, "maker-1")),
            ),
            (
                1,
                CommandBody::NewOrder(limit(2, Side::Buy, 10_000, 40_000_000, "taker-2")),
            ),
            (
                1,
                CommandBody::NewOrder(limit(3, Side::Buy, 9_000, 50_000_000, "bid-3")),
            ),
            (
                2,
                CommandBody::Amend(Amend {
                    target: OrderRef::Id(OrderId(1)),
                    new_qty: Some(Qty(90_000_000)),
                    new_price: None,
                    new_stop_price: None,
                }),
            ),
            (1, CommandBody::NewOrder(market_by_quote(4))),
            (
                1,
                CommandBody::Cancel {
                    target: OrderRef::Id(OrderId(3)),
                },
            ),
        ];
        let records = bodies
            .into_iter()
            .enumerate()
            .map(|(i, (user, body))| {
                let cmd = Command {
                    pair: p.symbol,
                    user: UserId(user),
                    timestamp: Timestamp(AT + i as u64 * 1_000_000_000),
                    body,
                };
                let events = book.apply_one(&cmd);
                assert!(
                    !events
                        .iter()
                        .any(|e| matches!(e.body, EventBody::Rejected(_))),
                    "{events:?}"
                );
                (cmd, events)
            })
            .collect();
        Session { p, records }
    }

    /// The rows the first `n` commands make, folded as the persister does.
    fn batch(&self, n: usize) -> Batch {
        let mut batch = Batch::default();
        let mut seq = Seq(0);
        for (_, events) in &self.records[..n] {
            batch.add_events(self.p.qty_scale, &mut seq, events);
        }
        batch
    }

    /// What the answer to command `i` sees: only its own record, folded
    /// as `trading::fold` does.
    fn own_batch(&self, i: usize) -> Batch {
        let mut batch = Batch::default();
        batch.add_events(self.p.qty_scale, &mut Seq(0), &self.records[i].1);
        batch
    }

    fn order(&self, i: usize) -> NewOrder {
        match self.records[i].0.body {
            CommandBody::NewOrder(o) => o,
            _ => panic!("command {i} places no order"),
        }
    }

    fn at(&self, i: usize) -> Timestamp {
        self.records[i].0.timestamp
    }

    /// Order `id` as stored after the first `n` commands.
    fn row(&self, n: usize, id: u64) -> OrderRow {
        self.batch(n)
            .new_order(self.p.symbol, OrderId(id))
            .cloned()
            .unwrap()
    }

    fn fills(&self) -> Vec<FillRow> {
        self.batch(self.records.len()).fills().to_vec()
    }

    fn fees() -> Option<Fees> {
        Some(Fees {
            maker_bps: 5,
            taker_bps: 10,
        })
    }
}

fn stats() -> WindowStats {
    WindowStats {
        open: Price(10_300),
        high: Price(10_400),
        low: Price(9_900),
        close: Price(10_000),
        volume: 120_000_000,
        quote_volume: 12_010_000,
        trades: 7,
        first_trade: Some(Seq(2)),
        last_trade: Some(Seq(19)),
        prev_close: Some(Price(10_250)),
    }
}

// ---------------------------------------------------------------------
// General endpoints.

const EXCHANGE_INFO: &str = r#"
{
  "timezone": "UTC",
  "serverTime": 1565246363776,
  "rateLimits": [
    {
      // These are defined in the `ENUM definitions` section under `Rate Limiters (rateLimitType)`.
      // All limits are optional
    }
  ],
  "exchangeFilters": [
    // These are the defined filters in the `Filters` section.
    // All filters are optional.
  ],
  "symbols": [
    {
      "symbol": "ETHBTC",
      "status": "TRADING",
      "baseAsset": "ETH",
      "baseAssetPrecision": 8,
      "quoteAsset": "BTC",
      "quotePrecision": 8, // will be removed in future api versions (v4+)
      "quoteAssetPrecision": 8,
      "baseCommissionPrecision": 8,
      "quoteCommissionPrecision": 8,
      "orderTypes": [
        "LIMIT",
        "LIMIT_MAKER",
        "MARKET",
        "STOP_LOSS",
        "STOP_LOSS_LIMIT",
        "TAKE_PROFIT",
        "TAKE_PROFIT_LIMIT"
      ],
      "icebergAllowed": true,
      "ocoAllowed": true,
      "otoAllowed": true,
      "quoteOrderQtyMarketAllowed": true,
      "allowTrailingStop": false,
      "cancelReplaceAllowed":false,
      "allowAmend":false,
      "isSpotTradingAllowed": true,
      "isMarginTradingAllowed": true,
      "filters": [
        // These are defined in the Filters section.
        // All filters are optional
      ],
      "permissions": [],
      "permissionSets": [
        [
          "SPOT",
          "MARGIN"
        ]
      ],
      "defaultSelfTradePreventionMode": "NONE",
      "allowedSelfTradePreventionModes": [
        "NONE"
      ]
    }
  ],
  // Optional field. Present only when SOR is available.
  // https://github.com/binance/binance-spot-api-docs/blob/master/faqs/sor_faq.md
  "sors": [
    {
      "baseAsset": "BTC",
      "symbols": [
        "BTCUSDT",
        "BTCUSDC"
      ]
    }
  ]
}"#;

/// `rest-api.md`, "ENUM definitions", "Rate limiters (rateLimitType)".
const RATE_LIMITER: &str = r#"
{
  "rateLimitType": "REQUEST_WEIGHT",
  "interval": "MINUTE",
  "intervalNum": 1,
  "limit": 1200
}"#;

/// `filters.md`, the `/exchangeInfo format` of each filter served here,
/// in the order `exchangeInfo` lists them (Binance's order for a symbol:
/// `ICEBERG_PARTS` after `LOT_SIZE`, `TRAILING_DELTA` after
/// `MARKET_LOT_SIZE`).
const FILTERS: [&str; 7] = [
    r#"{
  "filterType": "PRICE_FILTER",
  "minPrice": "0.00000100",
  "maxPrice": "100000.00000000",
  "tickSize": "0.00000100"
}"#,
    r#"{
  "filterType": "LOT_SIZE",
  "minQty": "0.00100000",
  "maxQty": "100000.00000000",
  "stepSize": "0.00100000"
}"#,
    r#"{
    "filterType": "ICEBERG_PARTS",
    "limit": 10
}"#,
    r#"{
  "filterType": "MARKET_LOT_SIZE",
  "minQty": "0.00100000",
  "maxQty": "100000.00000000",
  "stepSize": "0.00100000"
}"#,
    r#"{
    "filterType": "TRAILING_DELTA",
    "minTrailingAboveDelta": 10,
    "maxTrailingAboveDelta": 2000,
    "minTrailingBelowDelta": 10,
    "maxTrailingBelowDelta": 2000
}"#,
    r#"{
   "filterType": "NOTIONAL",
   "minNotional": "10.00000000",
   "applyMinToMarket": false,
   "maxNotional": "10000.00000000",
   "applyMaxToMarket": false,
   "avgPriceMins": 5
}"#,
    r#"{
  "filterType": "MAX_NUM_ORDERS",
  "maxNumOrders": 25
}"#,
];

/// Binance's `exchangeInfo` example, completed: its placeholders replaced
/// by the documented rate limiter and filters, and Binance's changes since
/// the page's date applied.
fn exchange_info_doc() -> Value {
    let mut d = doc(EXCHANGE_INFO);
    d["rateLimits"] = json!([doc(RATE_LIMITER)]);
    let symbol = &mut d["symbols"][0];
    symbol["filters"] = Value::Array(FILTERS.iter().map(|f| doc(f)).collect());
    // Binance's spot connectors, changelog of 2025-06-12: "item property
    // `amendAllowed` added, item property `allowAmend` deleted" (the page
    // of 2025-04-25 still shows the old name).
    let obj = symbol.as_object_mut().unwrap();
    let amend = obj.remove("allowAmend").unwrap();
    obj.insert("amendAllowed".into(), amend);
    // Same changelog, 2025-08-21: "`symbols`: item property
    // `pegInstructionsAllowed` added".
    obj.insert("pegInstructionsAllowed".into(), json!(true));
    d
}

fn exchange_info(p: &PairConfig, permission_sets: bool) -> Value {
    let info = ExchangeInfo {
        timezone: "UTC",
        server_time: AT / 1_000_000,
        rate_limits: crate::usage::rate_limits(&crate::GatewayConfig::default()),
        exchange_filters: [],
        symbols: vec![PairInfo::new(p, "TRADING", permission_sets)],
    };
    serde_json::to_value(info).unwrap()
}

#[test]
fn exchange_info_is_binances() {
    let p = pair();
    let ours = exchange_info(&p, true);
    check(
        "exchangeInfo",
        &ours,
        &exchange_info_doc(),
        // The filters are compared one by one, in the order listed.
        &["$.symbols[].filters"],
        &[(
            "$.sors",
            "present only when smart order routing is available; there is none here",
        )],
    );
    let types: Vec<&Value> = ours["symbols"][0]["filters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["filterType"])
        .collect();
    assert_eq!(
        types,
        [
            "PRICE_FILTER",
            "LOT_SIZE",
            "ICEBERG_PARTS",
            "MARKET_LOT_SIZE",
            "TRAILING_DELTA",
            "NOTIONAL",
            "MAX_NUM_ORDERS"
        ]
    );
    let symbol = &ours["symbols"][0];
    assert_eq!(symbol["orderTypes"].as_array().unwrap().len(), 7);
    for flag in [
        "icebergAllowed",
        "ocoAllowed",
        "otoAllowed",
        "allowTrailingStop",
    ] {
        assert_eq!(symbol[flag], json!(true), "{flag}");
    }
}

/// A pair that takes no advanced order type says so: the plain types, the
/// flags off, no `ICEBERG_PARTS` or `TRAILING_DELTA`.
#[test]
fn exchange_info_shows_what_the_pair_takes() {
    let mut p = pair();
    p.advanced = proto::AdvancedOrders {
        conditional: false,
        trailing: false,
        iceberg: false,
        lists: false,
        good_till_date: false,
    };
    let ours = exchange_info(&p, true);
    let symbol = &ours["symbols"][0];
    assert_eq!(
        symbol["orderTypes"],
        json!(["LIMIT", "LIMIT_MAKER", "MARKET"])
    );
    for flag in [
        "icebergAllowed",
        "ocoAllowed",
        "otoAllowed",
        "allowTrailingStop",
    ] {
        assert_eq!(symbol[flag], json!(false), "{flag}");
    }
    let types: Vec<&Value> = symbol["filters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["filterType"])
        .collect();
    assert_eq!(types.len(), 5);
    assert!(!types.contains(&&json!("ICEBERG_PARTS")));
    // Conditional orders without trailing stops.
    p.advanced.conditional = true;
    let ours = exchange_info(&p, true);
    let symbol = &ours["symbols"][0];
    assert_eq!(symbol["orderTypes"].as_array().unwrap().len(), 7);
    assert_eq!(symbol["allowTrailingStop"], json!(false));
}

/// `showPermissionSets=false` empties `permissionSets`; the field stays,
/// as Binance's does ("controls whether the content of the
/// `permissionSets` field is populated or not").
#[test]
fn exchange_info_without_permission_sets_keeps_the_field() {
    let ours = exchange_info(&pair(), false);
    assert_eq!(ours["symbols"][0]["permissionSets"], json!([]));
    check(
        "exchangeInfo?showPermissionSets=false",
        &ours,
        &exchange_info_doc(),
        &["$.symbols[].filters"],
        &[
            (
                "$.sors",
                "present only when smart order routing is available; there is none here",
            ),
            ("$.symbols[].permissionSets", "emptied, as asked"),
        ],
    );
}

// ---------------------------------------------------------------------
// Market data endpoints.

const DEPTH: &str = r#"
{
  "lastUpdateId": 1027024,
  "bids": [
    [
      "4.00000000",     // PRICE
      "431.00000000"    // QTY
    ]
  ],
  "asks": [
    [
      "4.00000200",
      "12.00000000"
    ]
  ]
}"#;

#[test]
fn depth_is_binances() {
    let p = pair();
    let view = DepthView {
        last_update_id: Seq(42),
        bids: vec![
            (Price(9_000), Qty(50_000_000)),
            (Price(8_999), Qty(100_000)),
        ],
        asks: vec![(Price(10_000), Qty(60_000_000))],
    };
    let ours = serde_json::to_value(DepthBody::new(&view, &p)).unwrap();
    check("depth", &ours, &doc(DEPTH), &["$.bids[]", "$.asks[]"], &[]);
}

const TRADES: &str = r#"
[
  {
    "id": 28457,
    "price": "4.00000100",
    "qty": "12.00000000",
    "quoteQty": "48.000012",
    "time": 1499865549590,
    "isBuyerMaker": true,
    "isBestMatch": true
  }
]"#;

/// `trades` and `historicalTrades` (the same example, the same shape).
#[test]
fn trades_are_binances() {
    let s = Session::new();
    let p = &s.p;
    let ours: Vec<PublicTrade> = s.fills().iter().map(|f| PublicTrade::new(f, p)).collect();
    check(
        "trades",
        &serde_json::to_value(ours).unwrap(),
        &doc(TRADES),
        &[],
        &[],
    );
}

const AGG_TRADES: &str = r#"
[
  {
    "a": 26129,         // Aggregate tradeId
    "p": "0.01633102",  // Price
    "q": "4.70443515",  // Quantity
    "f": 27781,         // First tradeId
    "l": 27781,         // Last tradeId
    "T": 1498793709153, // Timestamp
    "m": true,          // Was the buyer the maker?
    "M": true           // Was the trade the best price match?
  }
]"#;

/// Aggregates come from the store only: the session's fills are written
/// to a scratch SQLite store and read back.
#[tokio::test]
async fn agg_trades_are_binances() {
    let s = Session::new();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("shapes.db").display());
    let store = store::Store::connect(&url, 1).await.unwrap();
    store.write_batch(&s.batch(s.records.len())).await.unwrap();
    let aggs = store
        .agg_trades(s.p.symbol, None, None, None, 100)
        .await
        .unwrap();
    assert!(!aggs.is_empty());
    let ours: Vec<Value> = aggs.iter().map(|a| agg_trade(a, &s.p)).collect();
    check("aggTrades", &Value::Array(ours), &doc(AGG_TRADES), &[], &[]);
}

const KLINES: &str = r#"
[
  [
    1499040000000,      // Kline open time
    "0.01634790",       // Open price
    "0.80000000",       // High price
    "0.01575800",       // Low price
    "0.01577100",       // Close price
    "148976.11427815",  // Volume
    1499644799999,      // Kline Close time
    "2434.19055334",    // Quote asset volume
    308,                // Number of trades
    "1756.87402397",    // Taker buy base asset volume
    "28.46694368",      // Taker buy quote asset volume
    "0"                 // Unused field, ignore.
  ]
]"#;

/// `klines` and `uiKlines` (one handler, one row shape; Binance documents
/// the same row for both). A row is an array: every position is checked.
#[test]
fn kline_rows_are_binances() {
    let p = pair();
    let traded = Candle {
        open_time_ms: 1_700_000_040_000,
        close_time_ms: 1_700_000_099_999,
        open: Price(10_000),
        high: Price(10_100),
        low: Price(9_950),
        close: Price(10_050),
        volume: 150_000_000,
        quote_volume: 15_050_000,
        trades: 3,
        taker_buy_volume: 100_000_000,
        taker_buy_quote_volume: 10_050_000,
        first_trade: Some(Seq(4)),
        last_trade: Some(Seq(9)),
    };
    let flat = Candle {
        volume: 0,
        quote_volume: 0,
        trades: 0,
        taker_buy_volume: 0,
        taker_buy_quote_volume: 0,
        first_trade: None,
        last_trade: None,
        ..traded
    };
    let ours = json!([kline_row(&traded, &p), kline_row(&flat, &p)]);
    check("klines", &ours, &doc(KLINES), &["$[]"], &[]);
}

const AVG_PRICE: &str = r#"
{
  "mins": 5,                    // Average price interval (in minutes)
  "price": "9.35751834",        // Average price
  "closeTime": 1694061154503    // Last trade time
}"#;

#[test]
fn avg_price_is_binances() {
    let ours = avg_price_body(&pair(), Price(10_012), AT / 1_000_000);
    check("avgPrice", &ours, &doc(AVG_PRICE), &[], &[]);
}

const TICKER_24HR_FULL: &str = r#"
{
  "symbol": "BNBBTC",
  "priceChange": "-94.99999800",
  "priceChangePercent": "-95.960",
  "weightedAvgPrice": "0.29628482",
  "prevClosePrice": "0.10002000",
  "lastPrice": "4.00000200",
  "lastQty": "200.00000000",
  "bidPrice": "4.00000000",
  "bidQty": "100.00000000",
  "askPrice": "4.00000200",
  "askQty": "100.00000000",
  "openPrice": "99.00000000",
  "highPrice": "100.00000000",
  "lowPrice": "0.10000000",
  "volume": "8913.30000000",
  "quoteVolume": "15.30000000",
  "openTime": 1499783499040,
  "closeTime": 1499869899040,
  "firstId": 28385,   // First tradeId
  "lastId": 28460,    // Last tradeId
  "count": 76         // Trade count
}"#;

const TICKER_24HR_MINI: &str = r#"
{
  "symbol":      "BNBBTC",          // Symbol Name
  "openPrice":   "99.00000000",     // Opening price of the Interval
  "highPrice":   "100.00000000",    // Highest price in the interval
  "lowPrice":    "0.10000000",      // Lowest  price in the interval
  "lastPrice":   "4.00000200",      // Closing price of the interval
  "volume":      "8913.30000000",   // Total trade volume (in base asset)
  "quoteVolume": "15.30000000",     // Total trade volume (in quote asset)
  "openTime":    1499783499040,     // Start of the ticker interval
  "closeTime":   1499869899040,     // End of the ticker interval
  "firstId":     28385,             // First tradeId considered
  "lastId":      28460,             // Last tradeId considered
  "count":       76                 // Total trade count
}"#;

/// `ticker/24hr`'s full answer for one pair, as `day_ticker` builds it.
fn day_ticker(p: &PairConfig, s: Option<&WindowStats>, book: bool) -> Value {
    let (from, to) = (1_699_913_600_123, 1_700_000_000_123);
    let mut t = ticker(p, s, from, to, false);
    let (bid, ask) = if book {
        (
            (Price(9_990), Qty(10_000_000)),
            (Price(10_010), Qty(20_000_000)),
        )
    } else {
        Default::default()
    };
    day_fields(p, s, Qty(40_000_000), bid, ask, &mut t);
    Value::Object(t)
}

/// Full and mini, with trades in the window and without any (ids -1,
/// zeros: the same types).
#[test]
fn day_tickers_are_binances() {
    let p = pair();
    let s = stats();
    for (ours, what) in [
        (day_ticker(&p, Some(&s), true), "traded"),
        (day_ticker(&p, None, false), "never traded"),
    ] {
        check(
            &format!("ticker/24hr FULL, {what}"),
            &ours,
            &doc(TICKER_24HR_FULL),
            &[],
            &[],
        );
        check(
            &format!("ticker/24hr FULL list, {what}"),
            &json!([ours]),
            &json!([doc(TICKER_24HR_FULL)]),
            &[],
            &[],
        );
    }
    for stats in [Some(&s), None] {
        let ours = Value::Object(ticker(&p, stats, 1, 2, true));
        check("ticker/24hr MINI", &ours, &doc(TICKER_24HR_MINI), &[], &[]);
    }
}

const TICKER_ROLLING_FULL: &str = r#"
{
  "symbol":             "BNBBTC",
  "priceChange":        "-8.00000000",  // Absolute price change
  "priceChangePercent": "-88.889",      // Relative price change in percent
  "weightedAvgPrice":   "2.60427807",   // QuoteVolume / Volume
  "openPrice":          "9.00000000",
  "highPrice":          "9.00000000",
  "lowPrice":           "1.00000000",
  "lastPrice":          "1.00000000",
  "volume":             "187.00000000",
  "quoteVolume":        "487.00000000", // Sum of (price * volume) for all trades
  "openTime":           1641859200000,  // Open time for ticker window
  "closeTime":          1642031999999,  // Close time for ticker window
  "firstId":            0,              // Trade IDs
  "lastId":             60,
  "count":              61              // Number of trades in the interval
}"#;

const TICKER_ROLLING_MINI: &str = r#"
{
    "symbol": "LTCBTC",
    "openPrice": "0.10000000",
    "highPrice": "2.00000000",
    "lowPrice": "0.10000000",
    "lastPrice": "2.00000000",
    "volume": "39.00000000",
    "quoteVolume": "13.40000000",  // Sum of (price * volume) for all trades
    "openTime": 1656986580000,     // Open time for ticker window
    "closeTime": 1657001016795,    // Close time for ticker window
    "firstId": 0,                  // Trade IDs
    "lastId": 34,
    "count": 35                    // Number of trades in the interval
}"#;

/// `GET /api/v3/ticker` (rolling window), full and mini.
#[test]
fn rolling_tickers_are_binances() {
    let p = pair();
    let s = stats();
    for stats in [Some(&s), None] {
        let full = Value::Object(ticker(
            &p,
            stats,
            1_699_999_940_000,
            1_700_000_000_123,
            false,
        ));
        check("ticker FULL", &full, &doc(TICKER_ROLLING_FULL), &[], &[]);
        let mini = Value::Object(ticker(
            &p,
            stats,
            1_699_999_940_000,
            1_700_000_000_123,
            true,
        ));
        check("ticker MINI", &mini, &doc(TICKER_ROLLING_MINI), &[], &[]);
    }
}

const PRICE_TICKER: &str = r#"
[
  {
    "symbol": "LTCBTC",
    "price": "4.00000200"
  },
  {
    "symbol": "ETHBTC",
    "price": "0.07946600"
  }
]"#;

#[test]
fn price_tickers_are_binances() {
    let p = pair();
    let ours = json!([price_entry(&p, Price(10_000)), price_entry(&p, Price(0))]);
    check("ticker/price", &ours, &doc(PRICE_TICKER), &[], &[]);
}

const BOOK_TICKER: &str = r#"
[
  {
    "symbol": "LTCBTC",
    "bidPrice": "4.00000000",
    "bidQty": "431.00000000",
    "askPrice": "4.00000200",
    "askQty": "9.00000000"
  },
  {
    "symbol": "ETHBTC",
    "bidPrice": "0.07946700",
    "bidQty": "9.00000000",
    "askPrice": "100000.00000000",
    "askQty": "1000.00000000"
  }
]"#;

/// A book with both sides, and an empty one (zeros, the same types).
#[test]
fn book_tickers_are_binances() {
    let p = pair();
    let full = DepthView {
        last_update_id: Seq(9),
        bids: vec![(Price(9_990), Qty(10_000_000))],
        asks: vec![(Price(10_010), Qty(20_000_000))],
    };
    let empty = DepthView {
        last_update_id: Seq(0),
        bids: vec![],
        asks: vec![],
    };
    let ours = json!([book_entry(&p, &full), book_entry(&p, &empty)]);
    check("ticker/bookTicker", &ours, &doc(BOOK_TICKER), &[], &[]);
}

// ---------------------------------------------------------------------
// Trading endpoints.

const NEW_ORDER_ACK: &str = r#"
{
  "symbol": "BTCUSDT",
  "orderId": 28,
  "orderListId": -1, // Unless it's part of an order list, value will be -1
  "clientOrderId": "6gCrw2kRUAF9CvJDGP16IP",
  "transactTime": 1507725176595
}"#;

const NEW_ORDER_RESULT: &str = r#"
{
  "symbol": "BTCUSDT",
  "orderId": 28,
  "orderListId": -1, // Unless it's part of an order list, value will be -1
  "clientOrderId": "6gCrw2kRUAF9CvJDGP16IP",
  "transactTime": 1507725176595,
  "price": "0.00000000",
  "origQty": "10.00000000",
  "executedQty": "10.00000000",
  "origQuoteOrderQty": "0.000000",
  "cummulativeQuoteQty": "10.00000000",
  "status": "FILLED",
  "timeInForce": "GTC",
  "type": "MARKET",
  "side": "SELL",
  "workingTime": 1507725176595,
  "selfTradePreventionMode": "NONE"
}"#;

const NEW_ORDER_FULL: &str = r#"
{
  "symbol": "BTCUSDT",
  "orderId": 28,
  "orderListId": -1, // Unless it's part of an order list, value will be -1
  "clientOrderId": "6gCrw2kRUAF9CvJDGP16IP",
  "transactTime": 1507725176595,
  "price": "0.00000000",
  "origQty": "10.00000000",
  "executedQty": "10.00000000",
  "origQuoteOrderQty": "0.000000",
  "cummulativeQuoteQty": "10.00000000",
  "status": "FILLED",
  "timeInForce": "GTC",
  "type": "MARKET",
  "side": "SELL",
  "workingTime": 1507725176595,
  "selfTradePreventionMode": "NONE",
  "fills": [
    {
      "price": "4000.00000000",
      "qty": "1.00000000",
      "commission": "4.00000000",
      "commissionAsset": "USDT",
      "tradeId": 56
    },
    {
      "price": "3999.00000000",
      "qty": "5.00000000",
      "commission": "19.99500000",
      "commissionAsset": "USDT",
      "tradeId": 57
    }
  ]
}"#;

/// The answer to command `i` of the session in `mode`, as `place` builds
/// it.
fn placed(s: &Session, i: usize, mode: RespType) -> Value {
    let batch = (mode != RespType::Ack).then(|| s.own_batch(i));
    new_order_answer(
        &s.p,
        &s.order(i),
        s.at(i),
        batch.as_ref(),
        mode,
        Session::fees(),
        None,
    )
}

/// `POST /api/v3/order` in each `newOrderRespType`, for an order that
/// traded (the limit buy, the market buy by quote) and one that rests.
#[test]
fn new_order_answers_are_binances() {
    let s = Session::new();
    for i in [1, 2, 4] {
        check(
            "order ACK",
            &placed(&s, i, RespType::Ack),
            &doc(NEW_ORDER_ACK),
            &[],
            &[],
        );
        check(
            "order RESULT",
            &placed(&s, i, RespType::Result),
            &doc(NEW_ORDER_RESULT),
            &[],
            &[],
        );
    }
    for i in [1, 4] {
        let full = placed(&s, i, RespType::Full);
        assert!(!full["fills"].as_array().unwrap().is_empty());
        check("order FULL", &full, &doc(NEW_ORDER_FULL), &[], &[]);
    }
    // An order that rests without trading: `fills` is an empty list.
    let resting = placed(&s, 2, RespType::Full);
    assert_eq!(resting["fills"], json!([]));
}

const ORDER: &str = r#"
{
  "symbol": "LTCBTC",
  "orderId": 1,
  "orderListId": -1                 // This field will always have a value of -1 if not an order list.
  "clientOrderId": "myOrder1",
  "price": "0.1",
  "origQty": "1.0",
  "executedQty": "0.0",
  "cummulativeQuoteQty": "0.0",
  "status": "NEW",
  "timeInForce": "GTC",
  "type": "LIMIT",
  "side": "BUY",
  "stopPrice": "0.0",
  "icebergQty": "0.0",
  "time": 1499827319559,
  "updateTime": 1499827319559,
  "isWorking": true,
  "workingTime":1499827319559,
  "origQuoteOrderQty": "0.000000",
  "selfTradePreventionMode": "NONE"
}"#;

const OPEN_ORDERS: &str = r#"
[
  {
    "symbol": "LTCBTC",
    "orderId": 1,
    "orderListId": -1, // Unless it's part of an order list, value will be -1
    "clientOrderId": "myOrder1",
    "price": "0.1",
    "origQty": "1.0",
    "executedQty": "0.0",
    "cummulativeQuoteQty": "0.0",
    "status": "NEW",
    "timeInForce": "GTC",
    "type": "LIMIT",
    "side": "BUY",
    "stopPrice": "0.0",
    "icebergQty": "0.0",
    "time": 1499827319559,
    "updateTime": 1499827319559,
    "isWorking": true,
    "origQuoteOrderQty": "0.000000",
    "workingTime": 1499827319559,
    "selfTradePreventionMode": "NONE"
  }
]"#;

const ALL_ORDERS: &str = r#"
[
  {
    "symbol": "LTCBTC",
    "orderId": 1,
    "orderListId": -1, //Unless it's part of an order list, value will be -1
    "clientOrderId": "myOrder1",
    "price": "0.1",
    "origQty": "1.0",
    "executedQty": "0.0",
    "cummulativeQuoteQty": "0.0",
    "status": "NEW",
    "timeInForce": "GTC",
    "type": "LIMIT",
    "side": "BUY",
    "stopPrice": "0.0",
    "icebergQty": "0.0",
    "time": 1499827319559,
    "updateTime": 1499827319559,
    "isWorking": true,
    "origQuoteOrderQty": "0.000000",
    "workingTime": 1499827319559,
    "selfTradePreventionMode": "NONE",
  }
]"#;

/// `GET /api/v3/order`, `openOrders` and `allOrders`: every order of the
/// session as stored at its end (a partly filled and amended sell, a
/// filled buy, a canceled buy, a market buy by quote).
#[test]
fn orders_are_binances() {
    let s = Session::new();
    let batch = s.batch(s.records.len());
    let rows: Vec<OrderRow> = (1..=4)
        .map(|id| batch.new_order(s.p.symbol, OrderId(id)).cloned().unwrap())
        .collect();
    let bodies: Vec<Value> = rows
        .iter()
        .map(|r| serde_json::to_value(OrderBody::new(r, &s.p)).unwrap())
        .collect();
    for body in &bodies {
        check("order GET", body, &doc(ORDER), &[], &[]);
    }
    let list = Value::Array(bodies);
    check("openOrders GET", &list, &doc(OPEN_ORDERS), &[], &[]);
    check("allOrders", &list, &doc(ALL_ORDERS), &[], &[]);
}

const CANCEL: &str = r#"
{
  "symbol": "LTCBTC",
  "origClientOrderId": "myOrder1",
  "orderId": 4,
  "orderListId": -1, // Unless it's part of an order list, value will be -1
  "clientOrderId": "cancelMyOrder1",
  "transactTime": 1684804350068,
  "price": "2.00000000",
  "origQty": "1.00000000",
  "executedQty": "0.00000000",
  "origQuoteOrderQty": "0.000000",
  "cummulativeQuoteQty": "0.00000000",
  "status": "CANCELED",
  "timeInForce": "GTC",
  "type": "LIMIT",
  "side": "BUY",
  "selfTradePreventionMode": "NONE"
}"#;

/// The session's cancel, as `cancel` answers it: with the stored row, and
/// without one (an order the persister has not stored yet).
fn canceled(s: &Session, stored: bool) -> Value {
    let i = 5;
    let c = s.records[i]
        .1
        .iter()
        .find_map(|e| match e.body {
            EventBody::Canceled(c) => Some(c),
            _ => None,
        })
        .unwrap();
    let row = stored.then(|| s.row(i, 3));
    cancel_answer(&s.p, &c, row.as_ref(), s.at(i), Some("cancel-3"))
}

#[test]
fn cancel_answers_are_binances() {
    let s = Session::new();
    for stored in [true, false] {
        check(
            "order DELETE",
            &canceled(&s, stored),
            &doc(CANCEL),
            &[],
            &[],
        );
    }
}

/// Binance's example, but for its last entry: an order list's cancel,
/// which the comparison never reads (the first entry stands for all) and
/// which cannot occur here (there are no order lists).
const CANCEL_ALL: &str = r#"
[
  {
    "symbol": "BTCUSDT",
    "origClientOrderId": "E6APeyTJvkMvLMYMqu1KQ4",
    "orderId": 11,
    "orderListId": -1,
    "clientOrderId": "pXLV6Hz6mprAcVYpVMTGgx",
    "transactTime": 1684804350068,
    "price": "0.089853",
    "origQty": "0.178622",
    "executedQty": "0.000000",
    "origQuoteOrderQty": "0.000000",
    "cummulativeQuoteQty": "0.000000",
    "status": "CANCELED",
    "timeInForce": "GTC",
    "type": "LIMIT",
    "side": "BUY",
    "selfTradePreventionMode": "NONE"
  },
  {
    "symbol": "BTCUSDT",
    "origClientOrderId": "A3EF2HCwxgZPFMrfwbgrhv",
    "orderId": 13,
    "orderListId": -1,
    "clientOrderId": "pXLV6Hz6mprAcVYpVMTGgx",
    "transactTime": 1684804350069,
    "price": "0.090430",
    "origQty": "0.178622",
    "executedQty": "0.000000",
    "origQuoteOrderQty": "0.000000",
    "cummulativeQuoteQty": "0.000000",
    "status": "CANCELED",
    "timeInForce": "GTC",
    "type": "LIMIT",
    "side": "BUY",
    "selfTradePreventionMode": "NONE"
  }
]"#;

/// `DELETE /api/v3/openOrders`: a cancel answer per order.
#[test]
fn cancel_all_answer_is_binances() {
    let s = Session::new();
    let ours = json!([canceled(&s, true), canceled(&s, false)]);
    check("openOrders DELETE", &ours, &doc(CANCEL_ALL), &[], &[]);
}

const REPLACE_SUCCESS: &str = r#"
// Both the cancel order placement and new order placement succeeded.
{
  "cancelResult": "SUCCESS",
  "newOrderResult": "SUCCESS",
  "cancelResponse": {
    "symbol": "BTCUSDT",
    "origClientOrderId": "DnLo3vTAQcjha43lAZhZ0y",
    "orderId": 9,
    "orderListId": -1,
    "clientOrderId": "osxN3JXAtJvKvCqGeMWMVR",
    "transactTime": 1684804350068,
    "price": "0.01000000",
    "origQty": "0.000100",
    "executedQty": "0.00000000",
    "origQuoteOrderQty": "0.000000",
    "cummulativeQuoteQty": "0.00000000",
    "status": "CANCELED",
    "timeInForce": "GTC",
    "type": "LIMIT",
    "side": "SELL",
    "selfTradePreventionMode": "NONE"
  },
  "newOrderResponse": {
    "symbol": "BTCUSDT",
    "orderId": 10,
    "orderListId": -1,
    "clientOrderId": "wOceeeOzNORyLiQfw7jd8S",
    "transactTime": 1652928801803,
    "price": "0.02000000",
    "origQty": "0.040000",
    "executedQty": "0.00000000",
    "origQuoteOrderQty": "0.000000",
    "cummulativeQuoteQty": "0.00000000",
    "status": "NEW",
    "timeInForce": "GTC",
    "type": "LIMIT",
    "side": "BUY",
    "workingTime": 1669277163808,
    "fills": [],
    "selfTradePreventionMode": "NONE"
  }
}"#;

/// STOP_ON_FAILURE, the cancel failed: nothing else was tried.
const REPLACE_CANCEL_FAILED: &str = r#"
{
  "code": -2022,
  "msg": "Order cancel-replace failed.",
  "data": {
    "cancelResult": "FAILURE",
    "newOrderResult": "NOT_ATTEMPTED",
    "cancelResponse": {
      "code": -2011,
      "msg": "Unknown order sent."
    },
    "newOrderResponse": null
  }
}"#;

/// The cancel succeeded, the new order failed.
const REPLACE_NEW_ORDER_FAILED: &str = r#"
{
  "code": -2021,
  "msg": "Order cancel-replace partially failed.",
  "data": {
    "cancelResult": "SUCCESS",
    "newOrderResult": "FAILURE",
    "cancelResponse": {
      "symbol": "BTCUSDT",
      "origClientOrderId": "86M8erehfExV8z2RC8Zo8k",
      "orderId": 3,
      "orderListId": -1,
      "clientOrderId": "G1kLo6aDv2KGNTFcjfTSFq",
      "price": "0.006123",
      "origQty": "10000.000000",
      "executedQty": "0.000000",
      "origQuoteOrderQty": "0.000000",
      "cummulativeQuoteQty": "0.000000",
      "status": "CANCELED",
      "timeInForce": "GTC",
      "type": "LIMIT_MAKER",
      "side": "SELL",
      "selfTradePreventionMode": "NONE"
    },
    "newOrderResponse": {
      "code": -2010,
      "msg": "Order would immediately match and take."
    }
  }
}"#;

/// ALLOW_FAILURE, the cancel failed and the new order was placed.
const REPLACE_CANCEL_FAILED_ORDER_PLACED: &str = r#"
{
  "code": -2021,
  "msg": "Order cancel-replace partially failed.",
  "data": {
    "cancelResult": "FAILURE",
    "newOrderResult": "SUCCESS",
    "cancelResponse": {
      "code": -2011,
      "msg": "Unknown order sent."
    },
    "newOrderResponse": {
      "symbol": "BTCUSDT",
      "orderId": 11,
      "orderListId": -1,
      "clientOrderId": "pfojJMg6IMNDKuJqDxvoxN",
      "transactTime": 1648540168818
    }
  }
}"#;

/// ALLOW_FAILURE, both parts failed.
const REPLACE_BOTH_FAILED: &str = r#"
{
  "code": -2022,
  "msg": "Order cancel-replace failed.",
  "data": {
    "cancelResult": "FAILURE",
    "newOrderResult": "FAILURE",
    "cancelResponse": {
      "code": -2011,
      "msg": "Unknown order sent."
    },
    "newOrderResponse": {
      "code": -2010,
      "msg": "Order would immediately match and take."
    }
  }
}"#;

/// `POST /api/v3/order/cancelReplace`: the success, and each failure with
/// its HTTP status.
#[test]
fn cancel_replace_answers_are_binances() {
    use axum::http::StatusCode;
    use proto::RejectCode;

    let s = Session::new();
    let unknown = || Err(ApiError::cancel_rejected(RejectCode::UnknownOrder));
    let would_take = || {
        Err(ApiError::rejected_order(
            RejectCode::PostOnlyWouldCross,
            false,
        ))
    };
    let cancel = canceled(&s, true);
    // A new order that rests: FULL with no fills.
    let resting = placed(&s, 2, RespType::Full);
    check(
        "cancelReplace",
        &replace_success(cancel.clone(), resting),
        &doc(REPLACE_SUCCESS),
        &[],
        &[],
    );

    let (status, body) = replace_failure_body(unknown(), None);
    assert_eq!(status, StatusCode::BAD_REQUEST);
    check(
        "cancelReplace -2022",
        &body,
        &doc(REPLACE_CANCEL_FAILED),
        &[],
        &[],
    );

    let (status, body) = replace_failure_body(Ok(cancel), Some(would_take()));
    assert_eq!(status, StatusCode::CONFLICT);
    check(
        "cancelReplace -2021, the new order failed",
        &body,
        &doc(REPLACE_NEW_ORDER_FAILED),
        &[],
        &[(
            "$.data.cancelResponse.transactTime",
            "Binance's cancel answer has it (DELETE /api/v3/order, and this \
             same failure's example under CANCEL_ONLY); this example alone lacks it",
        )],
    );

    let ack = placed(&s, 2, RespType::Ack);
    let (status, body) = replace_failure_body(unknown(), Some(Ok(ack)));
    assert_eq!(status, StatusCode::CONFLICT);
    check(
        "cancelReplace -2021, the cancel failed",
        &body,
        &doc(REPLACE_CANCEL_FAILED_ORDER_PLACED),
        &[],
        &[],
    );

    let (status, body) = replace_failure_body(unknown(), Some(would_take()));
    assert_eq!(status, StatusCode::BAD_REQUEST);
    check(
        "cancelReplace -2022, both failed",
        &body,
        &doc(REPLACE_BOTH_FAILED),
        &[],
        &[],
    );
}

const AMEND: &str = r#"
{
  "transactTime": 1741926410255,
  "executionId": 75,
  "amendedOrder":
  {
    "symbol": "BTCUSDT",
    "orderId": 33,
    "orderListId": -1,
    "origClientOrderId": "5xrgbMyg6z36NzBn2pbT8H",
    "clientOrderId": "PFaq6hIHxqFENGfdtn4J6Q",
    "price": "6.00000000",
    "qty": "5.00000000",
    "executedQty": "0.00000000",
    "preventedQty": "0.00000000",
    "quoteOrderQty": "0.00000000",
    "cumulativeQuoteQty": "0.00000000",
    "status": "NEW",
    "timeInForce": "GTC",
    "type": "LIMIT",
    "side": "SELL",
    "workingTime": 1741926410242,
    "selfTradePreventionMode": "NONE"
  }
}"#;

/// `PUT /api/v3/order/amend/keepPriority`, on a partly filled order.
#[test]
fn amend_answer_is_binances() {
    let s = Session::new();
    let i = 3;
    let row = s.row(i, 1);
    let ours = amend_answer(&s.p, &row, &s.records[i].1, s.at(i)).unwrap();
    check("order/amend/keepPriority", &ours, &doc(AMEND), &[], &[]);
}

/// `PUT /api/v3/order/amend/keepPriority`'s example for an order of a
/// list.
const AMEND_IN_LIST: &str = r#"
{
  "transactTime": 1741669661670,
  "executionId": 22,
  "amendedOrder":
  {
    "symbol": "BTCUSDT",
    "orderId": 9,
    "orderListId": 1,
    "origClientOrderId": "W0fJ9fiLKHOJutovPK3oJp",
    "clientOrderId": "UQ1Np3bmQ71jJzsSDW9Vpi",
    "price": "0.00000000",
    "qty": "4.00000000",
    "executedQty": "0.00000000",
    "preventedQty": "0.00000000",
    "quoteOrderQty": "0.00000000",
    "cumulativeQuoteQty": "0.00000000",
    "status": "PENDING_NEW",
    "timeInForce": "GTC",
    "type": "MARKET",
    "side": "BUY",
    "selfTradePreventionMode": "NONE"
  },
  "listStatus":
  {
    "orderListId": 1,
    "contingencyType": "OTO",
    "listOrderStatus": "EXECUTING",
    "listClientOrderId": "AT7FTxZXylVSwRoZs52mt3",
    "symbol": "BTCUSDT",
    "orders":
    [
      {
        "symbol": "BTCUSDT",
        "orderId": 8,
        "clientOrderId": "GkwwHZUUbFtZOoH1YsZk9Q"
      },
      {
        "symbol": "BTCUSDT",
        "orderId": 9,
        "clientOrderId": "UQ1Np3bmQ71jJzsSDW9Vpi"
      }
    ]
  }
}"#;

/// The amend of an OTO's pending order: its list's status added, and no
/// `workingTime` (it does not work yet).
#[test]
fn amend_answer_of_a_list_order_is_binances() {
    let p = pair();
    let mut pending = limit(5, Side::Buy, 0, 500_000, "pending");
    pending.order_type = OrderType::Market;
    pending.time_in_force = TimeInForce::Ioc;
    let orders = [limit(4, Side::Sell, 1_000, 100_000, "working"), pending];
    let (batch, _) = list_placed(&p, proto::ListKind::Oto, orders);
    let row = batch.new_order(p.symbol, OrderId(5)).unwrap();
    let amended = Event {
        pair: p.symbol,
        seq: Seq(9),
        timestamp: Timestamp(AT),
        body: EventBody::Amended(proto::Amended {
            order_id: OrderId(5),
            client_order_id: row.client_order_id,
            user: UserId(1),
            side: Side::Buy,
            price: Price(0),
            stop_price: None,
            qty: Qty(400_000),
            remaining: Qty(400_000),
            priority_kept: true,
        }),
    };
    let mut ours = amend_answer(&p, row, &[amended], Timestamp(AT)).unwrap();
    let list = batch.new_list(p.symbol, OrderId(1)).unwrap();
    ours["listStatus"] = super::trading::lists::amend_list_status(&p, list);
    check(
        "order/amend/keepPriority in a list",
        &ours,
        &doc(AMEND_IN_LIST),
        &[],
        &[],
    );
}

const TEST_ORDER_EMPTY: &str = "{}";

const TEST_ORDER_RATES: &str = r#"
{
  "standardCommissionForOrder": {  //Standard commission rates on trades from the order.
    "maker": "0.00000112",
    "taker": "0.00000114",
  },
  "taxCommissionForOrder": {       //Tax commission rates for trades from the order.
    "maker": "0.00000112",
    "taker": "0.00000114",
  },
  "discount": {                    //Discount on standard commissions when paying in BNB.
    "enabledForAccount": true,
    "enabledForSymbol": true,
    "discountAsset": "BNB",
    "discount": "0.25000000"       //Standard commission is reduced by this rate when paying commission in BNB.
  }
}"#;

#[test]
fn test_order_answers_are_binances() {
    check(
        "order/test",
        &test_order_answer(None),
        &doc(TEST_ORDER_EMPTY),
        &[],
        &[],
    );
    let mut rates = doc(TEST_ORDER_RATES);
    // Binance's spot connectors, changelog of 2025-08-21: "Modified
    // response for `orderTest()` method (`POST /api/v3/order/test`):
    // property `specialCommissionForOrder` added".
    rates["specialCommissionForOrder"] = json!({"maker": "0.05000000", "taker": "0.06000000"});
    for fees in [
        Session::fees(),
        Some(Fees {
            maker_bps: 0,
            taker_bps: 0,
        }),
    ] {
        check(
            "order/test?computeCommissionRates=true",
            &test_order_answer(fees),
            &rates,
            &[],
            &[(
                "$.discount.discountAsset",
                "null: no asset pays commissions at a discount here, and naming one \
                 (Binance's is BNB) would be false",
            )],
        );
    }
}

// ---------------------------------------------------------------------
// Account endpoints.

const MY_TRADES: &str = r#"
[
  {
    "symbol": "BNBBTC",
    "id": 28457,
    "orderId": 100234,
    "orderListId": -1,
    "price": "4.00000100",
    "qty": "12.00000000",
    "quoteQty": "48.000012",
    "commission": "10.10000000",
    "commissionAsset": "BNB",
    "time": 1499865549590,
    "isBuyer": true,
    "isMaker": false,
    "isBestMatch": true
  }
]"#;

/// `myTrades`: every fill of the session as its maker and as its taker
/// saw it, with fees charged and without accounts.
#[test]
fn my_trades_are_binances() {
    let s = Session::new();
    for fees in [Session::fees(), None] {
        let ours: Vec<AccountTrade> = s
            .fills()
            .iter()
            .flat_map(|f| [true, false].map(|maker| AccountTrade::new(f, &s.p, maker, fees, None)))
            .collect();
        check(
            "myTrades",
            &serde_json::to_value(ours).unwrap(),
            &doc(MY_TRADES),
            &[],
            &[],
        );
    }
}

const ACCOUNT: &str = r#"
{
  "makerCommission": 15,
  "takerCommission": 15,
  "buyerCommission": 0,
  "sellerCommission": 0,
  "commissionRates": {
    "maker": "0.00150000",
    "taker": "0.00150000",
    "buyer": "0.00000000",
    "seller": "0.00000000"
  },
  "canTrade": true,
  "canWithdraw": true,
  "canDeposit": true,
  "brokered": false,
  "requireSelfTradePrevention": false,
  "preventSor": false,
  "updateTime": 123456789,
  "accountType": "SPOT",
  "balances": [
    {
      "asset": "BTC",
      "free": "4723846.89208129",
      "locked": "0.00000000"
    },
    {
      "asset": "LTC",
      "free": "4763368.68006011",
      "locked": "0.00000000"
    }
  ],
  "permissions": [
    "SPOT"
  ],
  "uid": 354937868
}"#;

#[test]
fn account_is_binances() {
    let snapshot = AccountSnapshot {
        balances: vec![
            (
                AssetInfo {
                    name: "BTC".into(),
                    scale: 8,
                },
                Balance {
                    free: 150_000_000,
                    locked: 40_000_000,
                },
            ),
            (
                AssetInfo {
                    name: "EUR".into(),
                    scale: 10,
                },
                Balance::default(),
            ),
        ],
        update_time: AT / 1_000_000,
    };
    let ours = serde_json::to_value(AccountBody::new(7, &snapshot, (5, 10), false)).unwrap();
    check("account", &ours, &doc(ACCOUNT), &[], &[]);
}

const ORDER_COUNTS: &str = r#"
[
  {
    "rateLimitType": "ORDERS",
    "interval": "SECOND",
    "intervalNum": 10,
    "limit": 50,
    "count": 0
  },
  {
    "rateLimitType": "ORDERS",
    "interval": "DAY",
    "intervalNum": 1,
    "limit": 160000,
    "count": 0
  }
]"#;

/// `rateLimit/order`: both entries, position by position (the ten-second
/// window first, as Binance lists them).
#[test]
fn order_counts_are_binances() {
    let [_, ten_seconds, day] = crate::usage::rate_limits(&crate::GatewayConfig::default());
    let ours = json!([
        order_count_entry(ten_seconds, 3),
        order_count_entry(day, 12)
    ]);
    let theirs = doc(ORDER_COUNTS);
    check("rateLimit/order", &ours, &theirs, &["$"], &[]);
    for i in 0..2 {
        assert_eq!(ours[i]["interval"], theirs[i]["interval"]);
        assert_eq!(ours[i]["intervalNum"], theirs[i]["intervalNum"]);
    }
}

// ---------------------------------------------------------------------
// The checker itself.

#[test]
fn the_checker_sees_every_kind_of_difference() {
    let theirs = doc(r#"{"a": "1.0", "b": 2, "c": [{"d": true}], "e": [1, "x"]}"#);
    let mut found = Vec::new();
    let ours = json!({"a": "one", "b": "2", "c": [{"d": true, "z": 1}], "e": [1], "y": null});
    compare("$", &ours, &theirs, &["$.e"], &mut found);
    found.sort();
    assert_eq!(
        found,
        [
            "$.a: \"one\" is not a decimal, as Binance's \"1.0\" is",
            "$.b: string here, number in Binance's",
            "$.c[].z: extra",
            "$.e: 1 positions here, 2 in Binance's",
            "$.y: extra",
        ]
    );
    let mut found = Vec::new();
    compare("$", &json!({"c": []}), &json!({"c": [1]}), &[], &mut found);
    assert_eq!(found, ["$.c: empty here, its elements unchecked"]);
    // Binance's typos: a missing comma, trailing commas, comments.
    assert_eq!(
        doc("{\n \"a\": -1 // one\n \"b\": [1, 2,],\n}"),
        json!({"a": -1, "b": [1, 2]})
    );
}

// ---------------------------------------------------------------------
// Order lists.

/// `POST /api/v3/orderList/oco`'s example (`RESULT`).
const OCO_PLACED: &str = r#"
{
    "orderListId": 1,
    "contingencyType": "OCO",
    "listStatusType": "EXEC_STARTED",
    "listOrderStatus": "EXECUTING",
    "listClientOrderId": "lH1YDkuQKWiXVXHPSKYEIp",
    "transactionTime": 1710485608839,
    "symbol": "LTCBTC",
    "orders": [
        {
            "symbol": "LTCBTC",
            "orderId": 10,
            "clientOrderId": "44nZvqpemY7sVYgPYbvPih"
        },
        {
            "symbol": "LTCBTC",
            "orderId": 11,
            "clientOrderId": "NuMp0nVYnciDiFmVqfpBqK"
        }
    ],
    "orderReports": [
        {
            "symbol": "LTCBTC",
            "orderId": 10,
            "orderListId": 1,
            "clientOrderId": "44nZvqpemY7sVYgPYbvPih",
            "transactTime": 1710485608839,
            "price": "1.00000000",
            "origQty": "5.00000000",
            "executedQty": "0.00000000",
            "origQuoteOrderQty": "0.000000",
            "cummulativeQuoteQty": "0.00000000",
            "status": "NEW",
            "timeInForce": "GTC",
            "type": "STOP_LOSS_LIMIT",
            "side": "SELL",
            "stopPrice": "1.00000000",
            "workingTime": -1,
            "icebergQty": "1.00000000",
            "selfTradePreventionMode": "NONE"
        },
        {
            "symbol": "LTCBTC",
            "orderId": 11,
            "orderListId": 1,
            "clientOrderId": "NuMp0nVYnciDiFmVqfpBqK",
            "transactTime": 1710485608839,
            "price": "3.00000000",
            "origQty": "5.00000000",
            "executedQty": "0.00000000",
            "origQuoteOrderQty": "0.000000",
            "cummulativeQuoteQty": "0.00000000",
            "status": "NEW",
            "timeInForce": "GTC",
            "type": "LIMIT_MAKER",
            "side": "SELL",
            "workingTime": 1710485608839,
            "selfTradePreventionMode": "NONE"
        }
    ]
}"#;

/// `POST /api/v3/orderList/oto`'s example (its default answer).
const OTO_PLACED: &str = r#"
{
    "orderListId": 0,
    "contingencyType": "OTO",
    "listStatusType": "EXEC_STARTED",
    "listOrderStatus": "EXECUTING",
    "listClientOrderId": "yl2ERtcar1o25zcWtqVBTC",
    "transactionTime": 1712289389158,
    "symbol": "LTCBTC",
    "orders": [
        {
            "symbol": "LTCBTC",
            "orderId": 4,
            "clientOrderId": "Bq17mn9fP6vyCn75Jw1xya"
        },
        {
            "symbol": "LTCBTC",
            "orderId": 5,
            "clientOrderId": "arLFo0zGJVDE69cvGBaU0d"
        }
    ],
    "orderReports": [
        {
            "symbol": "LTCBTC",
            "orderId": 4,
            "orderListId": 0,
            "clientOrderId": "Bq17mn9fP6vyCn75Jw1xya",
            "transactTime": 1712289389158,
            "price": "1.00000000",
            "origQty": "1.00000000",
            "executedQty": "0.00000000",
            "origQuoteOrderQty": "0.000000",
            "cummulativeQuoteQty": "0.00000000",
            "status": "NEW",
            "timeInForce": "GTC",
            "type": "LIMIT",
            "side": "SELL",
            "workingTime": 1712289389158,
            "selfTradePreventionMode": "NONE"
        },
        {
            "symbol": "LTCBTC",
            "orderId": 5,
            "orderListId": 0,
            "clientOrderId": "arLFo0zGJVDE69cvGBaU0d",
            "transactTime": 1712289389158,
            "price": "0.00000000",
            "origQty": "5.00000000",
            "executedQty": "0.00000000",
            "origQuoteOrderQty": "0.000000",
            "cummulativeQuoteQty": "0.00000000",
            "status": "PENDING_NEW",
            "timeInForce": "GTC",
            "type": "MARKET",
            "side": "BUY",
            "workingTime": -1,
            "selfTradePreventionMode": "NONE"
        }
    ]
}"#;

/// `DELETE /api/v3/orderList`'s example.
const LIST_CANCELED: &str = r#"
{
  "orderListId": 0,
  "contingencyType": "OCO",
  "listStatusType": "ALL_DONE",
  "listOrderStatus": "ALL_DONE",
  "listClientOrderId": "C3wyj4WVEktd7u9aVBRXcN",
  "transactionTime": 1574040868128,
  "symbol": "LTCBTC",
  "orders": [
    {
      "symbol": "LTCBTC",
      "orderId": 2,
      "clientOrderId": "pO9ufTiFGg3nw2fOdgeOXa"
    },
    {
      "symbol": "LTCBTC",
      "orderId": 3,
      "clientOrderId": "TXOvglzXuaubXAaENpaRCB"
    }
  ],
  "orderReports": [
    {
      "symbol": "LTCBTC",
      "origClientOrderId": "pO9ufTiFGg3nw2fOdgeOXa",
      "orderId": 2,
      "orderListId": 0,
      "clientOrderId": "unfWT8ig8i0uj6lPuYLez6",
      "transactTime": 1688005070874,
      "price": "1.00000000",
      "origQty": "10.00000000",
      "executedQty": "0.00000000",
      "origQuoteOrderQty": "0.000000",
      "cummulativeQuoteQty": "0.00000000",
      "status": "CANCELED",
      "timeInForce": "GTC",
      "type": "STOP_LOSS_LIMIT",
      "side": "SELL",
      "stopPrice": "1.00000000",
      "selfTradePreventionMode": "NONE"
    },
    {
      "symbol": "LTCBTC",
      "origClientOrderId": "TXOvglzXuaubXAaENpaRCB",
      "orderId": 3,
      "orderListId": 0,
      "clientOrderId": "unfWT8ig8i0uj6lPuYLez6",
      "transactTime": 1688005070874,
      "price": "3.00000000",
      "origQty": "10.00000000",
      "executedQty": "0.00000000",
      "origQuoteOrderQty": "0.000000",
      "cummulativeQuoteQty": "0.00000000",
      "status": "CANCELED",
      "timeInForce": "GTC",
      "type": "LIMIT_MAKER",
      "side": "SELL",
      "selfTradePreventionMode": "NONE"
    }
  ]
}"#;

/// `GET /api/v3/orderList`'s example; `allOrderList` and `openOrderList`
/// answer lists of the same.
const LIST_QUERIED: &str = r#"
{
  "orderListId": 27,
  "contingencyType": "OCO",
  "listStatusType": "EXEC_STARTED",
  "listOrderStatus": "EXECUTING",
  "listClientOrderId": "h2USkA5YQpaXHPIrkd96xE",
  "transactionTime": 1565245656253,
  "symbol": "LTCBTC",
  "orders": [
    {
      "symbol": "LTCBTC",
      "orderId": 4,
      "clientOrderId": "qD1gy3kc3Gx0rihm9Y3xwS"
    },
    {
      "symbol": "LTCBTC",
      "orderId": 5,
      "clientOrderId": "ARzZ9I00CPM8i3NhmU9Ega"
    }
  ]
}"#;

/// A list placed, as the book answers it: `ListAccepted`, then each order.
fn list_placed(
    p: &PairConfig,
    kind: proto::ListKind,
    orders: [NewOrder; 2],
) -> (store::Batch, proto::NewOrderList) {
    let list = proto::NewOrderList {
        list_id: OrderId(1),
        client_list_id: ClientOrderId::new("my-list").ok(),
        kind,
        orders,
    };
    let user = UserId(1);
    let mut bodies = vec![EventBody::ListAccepted(proto::ListAccepted {
        list_id: list.list_id,
        client_list_id: list.client_list_id,
        user,
        kind,
        orders: orders.map(|o| o.order_id),
    })];
    bodies.extend(orders.map(|o| EventBody::Accepted(o.accepted_in(user, Some(list.list_id)))));
    let events: Vec<Event> = bodies
        .into_iter()
        .enumerate()
        .map(|(i, body)| Event {
            pair: p.symbol,
            seq: Seq(i as u64 + 1),
            timestamp: Timestamp(AT),
            body,
        })
        .collect();
    let mut batch = store::Batch::default();
    batch.add_events(p.qty_scale, &mut Seq(0), &events);
    (batch, list)
}

/// A list's answer with its orders' reports in `mode`.
fn list_placed_answer(p: &PairConfig, batch: &store::Batch, list: &proto::NewOrderList) -> Value {
    let reports = list
        .orders
        .iter()
        .map(|o| {
            new_order_answer(
                p,
                o,
                Timestamp(AT),
                Some(batch),
                RespType::Result,
                None,
                Some(list.list_id),
            )
        })
        .collect();
    let row = batch.new_list(p.symbol, list.list_id).unwrap();
    super::trading::lists::list_answer(p, row, Some(reports))
}

fn sell_stop_limit(id: u64, iceberg: Option<u64>) -> NewOrder {
    NewOrder {
        order_type: OrderType::Conditional {
            kind: proto::ConditionalKind::StopLoss,
            limit: Some(Price(900)),
            trigger: proto::Trigger {
                stop_price: Some(Price(950)),
                trailing_delta: None,
            },
        },
        iceberg_qty: iceberg.map(Qty),
        ..limit(id, Side::Sell, 900, 500_000, "stop")
    }
}

fn sell_maker(id: u64) -> NewOrder {
    NewOrder {
        post_only: true,
        ..limit(id, Side::Sell, 1_100, 500_000, "maker")
    }
}

#[test]
fn oco_answers_are_binances() {
    let p = pair();
    let orders = [sell_stop_limit(10, Some(100_000)), sell_maker(11)];
    let (batch, list) = list_placed(&p, proto::ListKind::Oco, orders);
    let ours = list_placed_answer(&p, &batch, &list);
    check(
        "orderList/oco",
        &ours,
        &doc(OCO_PLACED),
        &["$.orderReports"],
        &[],
    );
    assert_eq!(
        ours["orderReports"][0]["workingTime"],
        json!(-1),
        "the stop waits"
    );
    assert_eq!(ours["listClientOrderId"], json!("my-list"));
    // Canceled by its owner: the list over, each order canceled.
    let canceled: Vec<Event> = [10, 11]
        .into_iter()
        .map(|id| {
            EventBody::Canceled(proto::Canceled {
                order_id: OrderId(id),
                client_order_id: ClientOrderId::new("c").ok(),
                user: UserId(1),
                side: Side::Sell,
                remaining: OrderSize::Base(Qty(500_000)),
                reason: if id == 10 {
                    proto::CancelReason::UserRequest
                } else {
                    proto::CancelReason::ListSibling
                },
            })
        })
        .chain([EventBody::ListDone(proto::ListDone {
            list_id: OrderId(1),
            client_list_id: list.client_list_id,
            user: UserId(1),
        })])
        .map(|body| Event {
            pair: p.symbol,
            seq: Seq(9),
            timestamp: Timestamp(AT),
            body,
        })
        .collect();
    let row = batch.new_list(p.symbol, OrderId(1)).unwrap();
    let rows: Vec<OrderRow> = [10, 11]
        .map(|id| batch.new_order(p.symbol, OrderId(id)).unwrap().clone())
        .to_vec();
    let no_iceberg = rows
        .iter()
        .cloned()
        .map(|r| OrderRow {
            iceberg_qty: None,
            ..r
        })
        .collect::<Vec<_>>();
    let ours = super::trading::lists::ended_list_answer(&p, row, &canceled, &no_iceberg, Some("x"));
    check(
        "DELETE orderList",
        &ours,
        &doc(LIST_CANCELED),
        &["$.orderReports"],
        &[],
    );
    let statuses: Vec<&Value> = ours["orderReports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["status"])
        .collect();
    assert_eq!(statuses, ["CANCELED", "CANCELED"], "canceled by the owner");
    let queried = super::trading::lists::list_answer(&p, row, None);
    check("GET orderList", &queried, &doc(LIST_QUERIED), &[], &[]);
}

#[test]
fn oto_answers_are_binances() {
    let p = pair();
    let mut pending = limit(5, Side::Buy, 0, 500_000, "pending");
    pending.order_type = OrderType::Market;
    pending.time_in_force = TimeInForce::Ioc;
    let orders = [limit(4, Side::Sell, 1_000, 100_000, "working"), pending];
    let (batch, list) = list_placed(&p, proto::ListKind::Oto, orders);
    let ours = list_placed_answer(&p, &batch, &list);
    check(
        "orderList/oto",
        &ours,
        &doc(OTO_PLACED),
        &["$.orderReports"],
        &[],
    );
    let pending = &ours["orderReports"][1];
    assert_eq!(
        (&pending["status"], &pending["workingTime"]),
        (&json!("PENDING_NEW"), &json!(-1))
    );
}
