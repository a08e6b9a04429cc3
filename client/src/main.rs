//! `trade`: a command-line client of the exchange. Credentials come from
//! `EXCHANGE_API_KEY` and `EXCHANGE_API_SECRET` (printed by
//! `exchange keys create`), the address from `EXCHANGE_URL`.

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use client::{Answer, Client, Credentials};
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser)]
#[command(
    name = "trade",
    version,
    about = "Trade on the exchange from the command line."
)]
struct Cli {
    /// The exchange's address.
    #[arg(
        long,
        env = "EXCHANGE_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    url: String,
    /// API key.
    #[arg(long, env = "EXCHANGE_API_KEY", global = true, hide_env_values = true)]
    api_key: Option<String>,
    /// API secret.
    #[arg(
        long,
        env = "EXCHANGE_API_SECRET",
        global = true,
        hide_env_values = true
    )]
    secret: Option<String>,
    #[command(subcommand)]
    command: Cmd,
}

/// `trade place`'s arguments.
#[derive(Args)]
struct PlaceArgs {
    symbol: String,
    /// BUY or SELL.
    side: String,
    /// Base quantity.
    quantity: String,
    /// Limit price; without it, a market order.
    #[arg(long)]
    price: Option<String>,
    /// GTC (limit default), IOC (market default) or FOK.
    #[arg(long)]
    tif: Option<String>,
    /// Maker only (a LIMIT_MAKER order): refused if it would trade at once.
    #[arg(long)]
    post_only: bool,
    /// Your own id for the order.
    #[arg(long)]
    client_id: Option<String>,
    /// ACK (answer once logged), RESULT (with the outcome) or FULL (with
    /// the fills too).
    #[arg(long)]
    resp: Option<String>,
    /// A stop-loss order (take-profit with --take-profit): it waits until a
    /// trade reaches this price, then works as a market order, or with
    /// --price as a limit order.
    #[arg(long)]
    stop_price: Option<String>,
    /// A trailing stop: basis points back from the best price since it
    /// started trailing (with or without --stop-price).
    #[arg(long)]
    trailing_delta: Option<u32>,
    /// With --stop-price or --trailing-delta: a take-profit order.
    #[arg(long)]
    take_profit: bool,
    /// An iceberg: only this much of a limit order shows in the book.
    #[arg(long)]
    iceberg: Option<String>,
    /// A GTD order: it expires at this time (Unix ms).
    #[arg(long)]
    good_till: Option<u64>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Places an order: `trade place BTCEUR BUY 0.01 --price 30000`.
    Place(PlaceArgs),
    /// Cancels an order by id (or --client-id).
    Cancel {
        symbol: String,
        order_id: Option<u64>,
        #[arg(long)]
        client_id: Option<String>,
    },
    /// Lowers an order's quantity, keeping its place in the queue.
    Amend {
        symbol: String,
        order_id: u64,
        /// The new, lower, total quantity.
        quantity: String,
    },
    /// Shows one of your orders.
    Order { symbol: String, order_id: u64 },
    /// Lists your open orders.
    Open { symbol: Option<String> },
    /// Cancels all your open orders on one pair.
    CancelAll { symbol: String },
    /// Shows the order book.
    Depth {
        symbol: String,
        #[arg(long, default_value_t = 10)]
        limit: u32,
    },
    /// Shows recent trades.
    Trades {
        symbol: String,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Shows your trades.
    MyTrades { symbol: String },
    /// Shows your balances (non-zero ones): `GET /api/v3/account`.
    Balance,
    /// Measures: sends `orders` limit orders around a mid price from
    /// `connections` concurrent workers (closed loop: each waits for its
    /// answer), alternating buys and sells so that about half trade, and
    /// prints the rate and the answer latency. Needs credentials.
    Bench {
        #[arg(long, default_value = "BTCEUR")]
        symbol: String,
        #[arg(long, default_value_t = 100_000)]
        orders: u64,
        #[arg(long, default_value_t = 64)]
        connections: u64,
        /// ACK, RESULT or FULL.
        #[arg(long, default_value = "ACK")]
        resp: String,
    },
    /// Prints stream messages: `trade watch btceur@depth btceur@trade`;
    /// with credentials, your execution reports and balances too (through
    /// a listen key). Each line is `{"stream": NAME, "data": MESSAGE}`.
    Watch {
        streams: Vec<String>,
        /// Stop after this many messages.
        #[arg(long)]
        count: Option<usize>,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let creds = match (cli.api_key, cli.secret) {
        (Some(api_key), Some(secret)) => Some(Credentials { api_key, secret }),
        _ => None,
    };
    let c = Client::new(&cli.url, creds);
    let result = match cli.command {
        Cmd::Watch { streams, count } => return watch(&c, streams, count).await,
        Cmd::Balance => return balance(&c).await,
        Cmd::Bench {
            symbol,
            orders,
            connections,
            resp,
        } => {
            return bench(&c, symbol, orders, connections, resp).await;
        }
        cmd => match request(&c, cmd).await {
            Some(r) => r,
            None => return ExitCode::from(2),
        },
    };
    match result {
        Ok(a) => print_answer(&a),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The parameters of `POST /api/v3/order` for `trade place`.
fn order_body(a: PlaceArgs) -> Value {
    let conditional = a.stop_price.is_some() || a.trailing_delta.is_some();
    let order_type = match (&a.price, a.post_only, conditional, a.take_profit) {
        (Some(_), _, true, false) => "STOP_LOSS_LIMIT",
        (Some(_), _, true, true) => "TAKE_PROFIT_LIMIT",
        (None, _, true, false) => "STOP_LOSS",
        (None, _, true, true) => "TAKE_PROFIT",
        (Some(_), true, false, _) => "LIMIT_MAKER",
        (Some(_), false, false, _) => "LIMIT",
        (None, _, false, _) => "MARKET",
    };
    let mut o = json!({
        "symbol": a.symbol,
        "side": a.side,
        "type": order_type,
        "quantity": a.quantity,
    });
    if let Some(p) = a.price {
        o["price"] = json!(p);
    }
    let takes_tif = matches!(
        order_type,
        "LIMIT" | "STOP_LOSS_LIMIT" | "TAKE_PROFIT_LIMIT"
    );
    match (a.tif, a.good_till) {
        (Some(t), _) => o["timeInForce"] = json!(t),
        (None, Some(_)) => o["timeInForce"] = json!("GTD"),
        (None, None) if takes_tif => o["timeInForce"] = json!("GTC"),
        (None, None) => {}
    }
    let extras = [
        ("stopPrice", a.stop_price.map(Value::from)),
        ("trailingDelta", a.trailing_delta.map(Value::from)),
        ("icebergQty", a.iceberg.map(Value::from)),
        ("goodTillDate", a.good_till.map(Value::from)),
        ("newClientOrderId", a.client_id.map(Value::from)),
        ("newOrderRespType", a.resp.map(Value::from)),
    ];
    for (name, value) in extras {
        if let Some(v) = value {
            o[name] = v;
        }
    }
    o
}

/// The one request a command makes; `None` (said on stderr) when its
/// arguments are not enough.
async fn request(c: &Client, cmd: Cmd) -> Option<Result<Answer, reqwest::Error>> {
    let r = match cmd {
        Cmd::Place(a) => c.place(&order_body(a)).await,
        Cmd::Cancel {
            symbol,
            order_id,
            client_id,
        } => {
            let q = match (order_id, client_id) {
                (Some(id), _) => format!("symbol={symbol}&orderId={id}"),
                (None, Some(cid)) => format!("symbol={symbol}&origClientOrderId={cid}"),
                (None, None) => {
                    eprintln!("error: give an order id or --client-id");
                    return None;
                }
            };
            c.signed(Method::DELETE, "/api/v3/order", &q, None).await
        }
        Cmd::Amend {
            symbol,
            order_id,
            quantity,
        } => {
            let b = json!({"symbol": symbol, "orderId": order_id, "newQty": quantity});
            let path = "/api/v3/order/amend/keepPriority";
            c.signed(Method::PUT, path, "", Some(&b)).await
        }
        Cmd::Order { symbol, order_id } => {
            c.signed(
                Method::GET,
                "/api/v3/order",
                &format!("symbol={symbol}&orderId={order_id}"),
                None,
            )
            .await
        }
        Cmd::Open { symbol } => {
            let q = symbol.map(|s| format!("symbol={s}")).unwrap_or_default();
            c.signed(Method::GET, "/api/v3/openOrders", &q, None).await
        }
        Cmd::CancelAll { symbol } => {
            let q = format!("symbol={symbol}");
            c.signed(Method::DELETE, "/api/v3/openOrders", &q, None)
                .await
        }
        Cmd::Depth { symbol, limit } => {
            c.get("/api/v3/depth", &format!("symbol={symbol}&limit={limit}"))
                .await
        }
        Cmd::Trades { symbol, limit } => {
            c.get("/api/v3/trades", &format!("symbol={symbol}&limit={limit}"))
                .await
        }
        Cmd::MyTrades { symbol } => {
            c.signed(
                Method::GET,
                "/api/v3/myTrades",
                &format!("symbol={symbol}"),
                None,
            )
            .await
        }
        Cmd::Watch { .. } | Cmd::Bench { .. } | Cmd::Balance => return None,
    };
    Some(r)
}

/// `trade balance`: the non-zero balances, one asset a line.
async fn balance(c: &Client) -> ExitCode {
    let a = match c
        .signed(
            Method::GET,
            "/api/v3/account",
            "omitZeroBalances=true",
            None,
        )
        .await
    {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !a.status.is_success() {
        return print_answer(&a);
    }
    print!("{}", balance_lines(&a.body));
    ExitCode::SUCCESS
}

/// The account answer's balances as `ASSET  free F  locked L` lines, or
/// a line saying there are none.
fn balance_lines(account: &Value) -> String {
    let mut out = String::new();
    for b in account["balances"].as_array().into_iter().flatten() {
        let field = |k: &str| b[k].as_str().unwrap_or("?").to_string();
        out.push_str(&format!(
            "{:<6} free {:>24}  locked {:>24}\n",
            field("asset"),
            field("free"),
            field("locked")
        ));
    }
    if out.is_empty() {
        out.push_str("no balances\n");
    }
    out
}

fn print_answer(a: &Answer) -> ExitCode {
    println!(
        "{}",
        serde_json::to_string_pretty(&a.body).unwrap_or_default()
    );
    if a.status.is_success() {
        ExitCode::SUCCESS
    } else {
        eprintln!("HTTP {}", a.status);
        ExitCode::FAILURE
    }
}

async fn watch(c: &Client, mut streams: Vec<String>, count: Option<usize>) -> ExitCode {
    if c.has_credentials() {
        match c.listen_key().await {
            Ok(a) if a.status.is_success() => match a.body["listenKey"].as_str() {
                Some(key) => streams.push(key.to_string()),
                None => return failed(&format!("no listenKey in {}", a.body)),
            },
            Ok(a) => return failed(&format!("HTTP {}: {}", a.status, a.body)),
            Err(e) => return failed(&e.to_string()),
        }
    }
    let names: Vec<&str> = streams.iter().map(String::as_str).collect();
    let (mut ws, _) = match tokio_tungstenite::connect_async(c.stream_url(&names)).await {
        Ok(x) => x,
        Err(e) => return failed(&e.to_string()),
    };
    let mut seen = 0;
    while let Some(Ok(m)) = ws.next().await {
        match m {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap_or(Value::Null);
                println!("{v}");
                seen += 1;
                if count.is_some_and(|n| seen >= n) {
                    break;
                }
            }
            Message::Close(f) => {
                eprintln!("closed: {f:?}");
                break;
            }
            _ => {}
        }
    }
    ExitCode::SUCCESS
}

fn failed(why: &str) -> ExitCode {
    eprintln!("error: {why}");
    ExitCode::FAILURE
}

/// Microseconds, three significant figures.
fn latency_histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new(3).expect("3 significant figures is a valid precision")
}

async fn bench(
    c: &Client,
    symbol: String,
    orders: u64,
    connections: u64,
    resp: String,
) -> ExitCode {
    let started = std::time::Instant::now();
    let mut workers = Vec::new();
    for w in 0..connections.max(1) {
        let (c, symbol, resp) = (c.clone(), symbol.clone(), resp.clone());
        let n = orders / connections.max(1);
        workers.push(tokio::spawn(async move {
            let mut hist = latency_histogram();
            let mut failed = 0u64;
            for i in 0..n {
                let k = w * 7919 + i;
                let side = if k % 2 == 0 { "BUY" } else { "SELL" };
                // Prices straddle the mid so that about half the orders cross.
                let price = 30_000 + (k * 31) % 20;
                let price = if side == "BUY" { price } else { price + 5 };
                let order = json!({"symbol": symbol, "side": side, "type": "LIMIT",
                    "timeInForce": "GTC", "quantity": "0.001", "price": price.to_string(), "newOrderRespType": resp});
                let t = std::time::Instant::now();
                match c.place(&order).await {
                    Ok(a) if a.status.is_success() => {
                        let _ = hist.record(t.elapsed().as_micros() as u64);
                    }
                    _ => failed += 1,
                }
            }
            (hist, failed)
        }));
    }
    let mut all = latency_histogram();
    let mut failed = 0;
    for w in workers {
        if let Ok((h, f)) = w.await {
            let _ = all.add(&h);
            failed += f;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{} orders ok, {failed} failed, in {secs:.2} s: {:.0} orders/s; latency p50 {} us, p99 {} us, p99.9 {} us, max {} us",
        all.len(),
        all.len() as f64 / secs,
        all.value_at_quantile(0.5),
        all.value_at_quantile(0.99),
        all.value_at_quantile(0.999),
        all.max()
    );
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balance_prints_one_line_per_asset() {
        let account = json!({"balances": [
            {"asset": "BTC", "free": "1.50000000", "locked": "0.00000000"},
            {"asset": "EUR", "free": "10.0000000000", "locked": "2.0000000000"},
        ]});
        let text = balance_lines(&account);
        assert_eq!(text.lines().count(), 2);
        assert!(text.starts_with("BTC"));
        assert!(text.contains("2.0000000000"));
        assert_eq!(balance_lines(&json!({"balances": []})), "no balances\n");
        assert!(Cli::try_parse_from(["trade", "balance"]).is_ok());
    }

    fn body(args: &[&str]) -> Value {
        let mut argv = vec!["trade", "place", "BTCEUR", "SELL", "0.01"];
        argv.extend(args);
        match Cli::try_parse_from(argv).expect("parses").command {
            Cmd::Place(a) => order_body(a),
            _ => unreachable!("a place command"),
        }
    }

    #[test]
    fn place_builds_each_order_type() {
        let limit = body(&["--price", "30000"]);
        assert_eq!(
            (&limit["type"], &limit["timeInForce"]),
            (&json!("LIMIT"), &json!("GTC"))
        );
        let stop = body(&["--stop-price", "29000"]);
        assert_eq!(stop["type"], "STOP_LOSS");
        assert!(stop.get("timeInForce").is_none(), "{stop}");
        let stop_limit = body(&["--stop-price", "29000", "--price", "28900"]);
        assert_eq!(
            (&stop_limit["type"], &stop_limit["timeInForce"]),
            (&json!("STOP_LOSS_LIMIT"), &json!("GTC"))
        );
        let trailing = body(&["--trailing-delta", "100", "--take-profit"]);
        assert_eq!(
            (&trailing["type"], &trailing["trailingDelta"]),
            (&json!("TAKE_PROFIT"), &json!(100))
        );
        let iceberg = body(&[
            "--price",
            "31000",
            "--iceberg",
            "0.001",
            "--good-till",
            "4102444800000",
        ]);
        assert_eq!(
            (&iceberg["timeInForce"], &iceberg["icebergQty"]),
            (&json!("GTD"), &json!("0.001"))
        );
        assert_eq!(iceberg["goodTillDate"], 4_102_444_800_000u64);
        assert_eq!(body(&[])["type"], "MARKET");
        assert_eq!(
            body(&["--price", "1", "--post-only"])["type"],
            "LIMIT_MAKER"
        );
    }
}
