//! A user's money as the API shows it, and what deposits and fills say it
//! should be: BTCEUR (BTC-EUR) at 2 price and 8 quantity decimals (EUR counts in
//! 10 decimals, BTC in 8) with the default fees.

use client::{Client, Method};
use serde_json::Value;

pub const EUR_SCALE: u8 = 10;
pub const BTC_SCALE: u8 = 8;
/// The pair's default taker rate, in basis points.
pub const TAKER_BPS: i128 = 10;

pub fn units(text: &Value, scale: u8) -> i128 {
    let s = text.as_str().unwrap_or_else(|| panic!("a decimal: {text}"));
    i128::try_from(proto::parse_amount(s, scale).unwrap()).unwrap()
}

/// `(EUR, BTC)` totals that `user`'s fills leave from the deposits.
pub async fn from_fills(c: &Client, eur: i128, btc: i128) -> (i128, i128) {
    let trades = c
        .signed(
            Method::GET,
            "/api/v3/myTrades",
            "symbol=BTCEUR&limit=1000",
            None,
        )
        .await
        .unwrap()
        .body;
    let trades = trades.as_array().unwrap();
    assert!(trades.len() < 1000, "more fills than one page");
    let (mut eur, mut btc) = (eur, btc);
    for t in trades {
        // Exact: `quoteQty` is shown at the price's scale, cut short.
        let quote = units(&t["price"], 2) * units(&t["qty"], BTC_SCALE);
        let fee = units(&t["commission"], EUR_SCALE);
        let qty = units(&t["qty"], BTC_SCALE);
        if t["isBuyer"] == true {
            eur -= quote + fee;
            btc += qty;
        } else {
            eur += quote - fee;
            btc -= qty;
        }
    }
    (eur, btc)
}

/// `(EUR, BTC)` that `user`'s open orders still need: a buy's rest at its
/// price plus the taker fee on it, a sell's rest.
pub async fn open_needs(c: &Client) -> (i128, i128) {
    let open = c
        .signed(Method::GET, "/api/v3/openOrders", "symbol=BTCEUR", None)
        .await
        .unwrap()
        .body;
    let (mut eur, mut btc) = (0, 0);
    for o in open.as_array().unwrap() {
        let rest = units(&o["origQty"], BTC_SCALE) - units(&o["executedQty"], BTC_SCALE);
        if o["side"] == "BUY" {
            // price (2 decimals) × quantity (8) is EUR at 10 decimals.
            let notional = units(&o["price"], 2) * rest;
            eur += notional + notional * TAKER_BPS / 10_000;
        } else {
            btc += rest;
        }
    }
    (eur, btc)
}

pub async fn balances(c: &Client) -> Value {
    c.signed(Method::GET, "/api/v3/account", "", None)
        .await
        .unwrap()
        .body["balances"]
        .clone()
}

pub fn balance(all: &Value, asset: &str, scale: u8) -> (i128, i128) {
    let b = all
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["asset"] == asset)
        .unwrap();
    (units(&b["free"], scale), units(&b["locked"], scale))
}
