//! The order flow: seeded choices of user, pair, request kind, side, price
//! and size, as API requests. Pairs are picked by skewed (Zipf-like)
//! weights; each pair's mid price is a bounded random walk; passive orders
//! rest in a band around it and marketable ones cross it. Cancels and amends
//! target one of the user's own resting orders, learnt from the answers.
//!
//! The choices come from one seeded [`workload::Rng`]; which orders are
//! resting depends on the answers, so under an open loop two runs with the
//! same seed agree on the mix and the prices drawn, not byte for byte.

use std::collections::HashMap;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;
use workload::Rng;

pub use crate::error::FlowError;
use crate::scenario::{FlowFile, RespType};
use clientkit::decimal;

/// What a request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A GTC limit order.
    Limit,
    /// A market order (IOC).
    Market,
    /// An IOC limit order.
    Ioc,
    /// A FOK limit order.
    Fok,
    /// A post-only GTC limit order.
    PostOnly,
    /// A cancel of an own resting order.
    Cancel,
    /// An amend of an own resting order.
    Amend,
}

impl Kind {
    /// Every kind, in report order.
    pub const ALL: [Kind; 7] = [
        Kind::Limit,
        Kind::Market,
        Kind::Ioc,
        Kind::Fok,
        Kind::PostOnly,
        Kind::Cancel,
        Kind::Amend,
    ];

    /// Its name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Limit => "limit",
            Kind::Market => "market",
            Kind::Ioc => "ioc",
            Kind::Fok => "fok",
            Kind::PostOnly => "post_only",
            Kind::Cancel => "cancel",
            Kind::Amend => "amend",
        }
    }

    /// Its position in [`Kind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The gateway admits cancels on their own budget and never sheds them
    /// by lag; everything else is an order.
    pub fn group(self) -> Group {
        if self == Kind::Cancel {
            Group::Cancels
        } else {
            Group::Orders
        }
    }
}

/// How the gateway's admission treats a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// New orders and amends.
    Orders,
    /// Cancels.
    Cancels,
}

impl Group {
    /// Both groups.
    pub const ALL: [Group; 2] = [Group::Orders, Group::Cancels];

    /// Its name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Group::Orders => "orders",
            Group::Cancels => "cancels",
        }
    }

    /// Its position in [`Group::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The HTTP method of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `POST`: a new order.
    Post,
    /// `PUT`: an amend.
    Put,
    /// `DELETE`: a cancel.
    Delete,
}

impl Method {
    /// The method's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

/// Order side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Buy.
    Buy,
    /// Sell.
    Sell,
}

impl Side {
    fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "BUY",
            Side::Sell => "SELL",
        }
    }
}

/// A pair's trading rules, from `GET /api/v1/exchangeInfo`, as integers at
/// the pair's scales.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairRules {
    /// `BASE-QUOTE`.
    pub symbol: String,
    /// Decimals of prices.
    pub price_scale: u8,
    /// Decimals of quantities.
    pub qty_scale: u8,
    /// Price increment.
    pub tick: u64,
    /// Quantity increment.
    pub lot: u64,
    /// Smallest quantity.
    pub min_qty: u64,
    /// Largest quantity.
    pub max_qty: u64,
    /// Smallest order value, at the price scale.
    pub min_notional: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InfoSymbol {
    symbol: String,
    price_precision: u8,
    quantity_precision: u8,
    tick_size: String,
    step_size: String,
    min_qty: String,
    max_qty: String,
    min_notional: String,
}

impl PairRules {
    /// The rules of every pair in an `exchangeInfo` answer.
    pub fn from_exchange_info(info: &Value) -> Result<Vec<PairRules>, FlowError> {
        let symbols = info["symbols"]
            .as_array()
            .ok_or("exchangeInfo: no \"symbols\" list")?;
        symbols
            .iter()
            .map(|s| {
                let s: InfoSymbol = serde_json::from_value(s.clone())
                    .map_err(|e| format!("exchangeInfo: unexpected pair entry: {e}"))?;
                let field = |name: &str, v: &str, scale: u8| {
                    decimal::to_scale(v, scale).map_err(|_| {
                        format!(
                            "exchangeInfo: {}: {name} {v:?} is not a decimal at scale {scale}",
                            s.symbol
                        )
                    })
                };
                let r = PairRules {
                    tick: field("tickSize", &s.tick_size, s.price_precision)?,
                    lot: field("stepSize", &s.step_size, s.quantity_precision)?,
                    min_qty: field("minQty", &s.min_qty, s.quantity_precision)?,
                    max_qty: field("maxQty", &s.max_qty, s.quantity_precision)?,
                    min_notional: field("minNotional", &s.min_notional, s.price_precision)?,
                    price_scale: s.price_precision,
                    qty_scale: s.quantity_precision,
                    symbol: s.symbol,
                };
                if r.tick == 0 || r.lot == 0 || r.max_qty < r.min_qty {
                    return Err(FlowError::from(format!(
                        "exchangeInfo: {}: unusable rules {r:?}",
                        r.symbol
                    )));
                }
                Ok(r)
            })
            .collect()
    }
}

/// One request, ready to sign and send.
#[derive(Debug, Clone)]
pub struct Request {
    /// What it does.
    pub kind: Kind,
    /// Index of the user whose key signs it.
    pub user: usize,
    /// Index of the pair.
    pub pair: usize,
    /// The method.
    pub method: Method,
    /// The path, without query.
    pub path: &'static str,
    /// The query before `timestamp` and `signature` (may be empty).
    pub query: String,
    /// The JSON body (empty for `DELETE`); shared, not copied, when sent.
    pub body: Bytes,
    /// What to learn from the answer.
    pub follow: Follow,
}

/// What the flow learns from an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// Nothing.
    Nothing,
    /// A GTC order that may rest.
    MayRest {
        /// Side.
        side: Side,
        /// Price, at the pair's scale.
        price: u64,
        /// Quantity, at the pair's scale.
        qty: u64,
    },
    /// An amend of a tracked order.
    Amend {
        /// The order.
        order_id: u64,
        /// Its new price.
        price: u64,
        /// Its new total quantity.
        qty: u64,
    },
}

#[derive(Debug, Clone, Copy)]
struct Resting {
    id: u64,
    user: usize,
    pair: usize,
    side: Side,
    price: u64,
    qty: u64,
}

#[derive(Debug, Clone)]
struct PairState {
    rules: PairRules,
    mid: u64,
    low: u64,
    high: u64,
}

/// Most resting orders tracked; beyond it new ones are left untracked.
const MAX_TRACKED: usize = 1_000_000;

/// The generator.
#[derive(Debug)]
pub struct Flow {
    rng: Rng,
    cfg: FlowFile,
    resp: &'static str,
    users: usize,
    pairs: Vec<PairState>,
    /// Cumulative pair weights, in millionths.
    pair_weights: Vec<u64>,
    /// Cumulative mix weights, in [`Kind::ALL`] order.
    mix: [u64; 7],
    resting: Vec<Resting>,
    position: HashMap<u64, usize>,
}

/// Zipf-like weights: `1 / rank^s`, rank from 1; explicit weights win.
pub fn pair_weights(explicit: &[Option<f64>], s: f64) -> Vec<f64> {
    explicit
        .iter()
        .enumerate()
        .map(|(i, w)| w.unwrap_or_else(|| 1.0 / ((i + 1) as f64).powf(s)))
        .collect()
}

fn ceil_div(a: u128, b: u128) -> u128 {
    a.div_ceil(b.max(1))
}

impl Flow {
    /// A generator for `users` users over the scenario's pairs, whose rules
    /// are looked up in `rules` (from the exchange).
    pub fn new(
        cfg: &FlowFile,
        rules: &[PairRules],
        users: usize,
        seed: u64,
        resp: RespType,
    ) -> Result<Flow, FlowError> {
        let mut pairs = Vec::new();
        for p in &cfg.pairs {
            let r = rules.iter().find(|r| r.symbol == p.symbol).ok_or_else(|| {
                format!(
                    "pair {} is not traded by the exchange (it lists {})",
                    p.symbol,
                    rules
                        .iter()
                        .map(|r| r.symbol.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
            let mid = decimal::to_scale(&p.mid, r.price_scale)
                .ok()
                .filter(|&m| m >= 10 * r.tick)
                .ok_or_else(|| {
                    format!(
                        "pair {}: mid {:?} must be a price at scale {} and at least ten ticks",
                        p.symbol, p.mid, r.price_scale
                    )
                })?;
            let mid = mid / r.tick * r.tick;
            pairs.push(PairState {
                rules: r.clone(),
                mid,
                low: (mid / 2).max(2 * r.tick),
                high: mid.saturating_mul(2),
            });
        }
        let weights = pair_weights(
            &cfg.pairs.iter().map(|p| p.weight).collect::<Vec<_>>(),
            cfg.zipf_s,
        );
        let total: f64 = weights.iter().sum();
        if total <= 0.0 {
            return Err(FlowError::from("flow.pairs: the weights add up to zero"));
        }
        let mut acc = 0u64;
        let pair_weights = weights
            .iter()
            .map(|w| {
                acc += (w / total * 1e6).round() as u64;
                acc
            })
            .collect();
        let m = &cfg.mix;
        let mut mix = [0u64; 7];
        let mut acc = 0u64;
        for (i, w) in [
            m.limit,
            m.market,
            m.ioc,
            m.fok,
            m.post_only,
            m.cancel,
            m.amend,
        ]
        .into_iter()
        .enumerate()
        {
            acc += u64::from(w);
            mix[i] = acc;
        }
        Ok(Flow {
            rng: Rng::new(seed),
            cfg: cfg.clone(),
            resp: resp.as_str(),
            users: users.max(1),
            pairs,
            pair_weights,
            mix,
            resting: Vec::new(),
            position: HashMap::new(),
        })
    }

    /// Resting orders the flow knows of.
    pub fn resting(&self) -> usize {
        self.resting.len()
    }

    /// The pairs' current mids, as decimals.
    pub fn mids(&self) -> Vec<(String, String)> {
        self.pairs
            .iter()
            .map(|p| {
                (
                    p.rules.symbol.clone(),
                    decimal::format(p.mid, p.rules.price_scale),
                )
            })
            .collect()
    }

    fn pick_pair(&mut self) -> usize {
        let total = self.pair_weights.last().copied().unwrap_or(0).max(1);
        let x = self.rng.below(total);
        self.pair_weights
            .iter()
            .position(|&c| x < c)
            .unwrap_or(0)
            .min(self.pairs.len() - 1)
    }

    fn pick_kind(&mut self) -> Kind {
        let x = self.rng.below(self.mix[6].max(1));
        let i = self.mix.iter().position(|&c| x < c).unwrap_or(0);
        Kind::ALL[i]
    }

    fn side(&mut self) -> Side {
        if self.rng.percent(50) {
            Side::Buy
        } else {
            Side::Sell
        }
    }

    /// Up to `bps` basis points of the pair's mid, in whole ticks.
    fn ticks_of(&self, pair: usize, bps: f64) -> u64 {
        let p = &self.pairs[pair];
        let ticks = (p.mid as f64 * bps / 10_000.0 / p.rules.tick as f64) as u64;
        ticks.max(1)
    }

    fn walk(&mut self, pair: usize) {
        let step = self.ticks_of(pair, self.cfg.mid_step_bps);
        let up = self.rng.range(0, 2 * step);
        let p = &mut self.pairs[pair];
        let tick = p.rules.tick;
        p.mid = (p.mid + up * tick)
            .saturating_sub(step * tick)
            .clamp(p.low, p.high);
    }

    /// A price `off` ticks from the mid, on the passive (`cross` false) or
    /// the aggressive side for `side`.
    fn price(&self, pair: usize, side: Side, off: u64, cross: bool) -> u64 {
        let p = &self.pairs[pair];
        let delta = off * p.rules.tick;
        let up = (side == Side::Buy) == cross;
        let price = if up {
            p.mid + delta
        } else {
            p.mid.saturating_sub(delta)
        };
        price.max(p.rules.tick)
    }

    fn passive_price(&mut self, pair: usize, side: Side, from: u64) -> u64 {
        let band = self.ticks_of(pair, self.cfg.band_bps);
        let off = self.rng.range(from.min(band), band);
        self.price(pair, side, off, false)
    }

    fn aggressive_price(&mut self, pair: usize, side: Side) -> u64 {
        let cross = self.ticks_of(pair, self.cfg.cross_bps);
        let off = self.rng.range(0, cross);
        self.price(pair, side, off, true)
    }

    /// The smallest valid quantity at `price`, in lots.
    fn min_lots(&self, pair: usize, price: u64) -> u64 {
        let r = &self.pairs[pair].rules;
        let by_qty = r.min_qty.div_ceil(r.lot);
        let notional_qty = ceil_div(
            u128::from(r.min_notional) * 10u128.pow(u32::from(r.qty_scale)),
            u128::from(price.max(1)),
        );
        let by_notional = ceil_div(notional_qty, u128::from(r.lot)) as u64;
        by_qty.max(by_notional).max(1)
    }

    fn qty(&mut self, pair: usize, price: u64) -> u64 {
        let lo = self.min_lots(pair, price);
        let hi = lo.saturating_mul(self.cfg.size_multiple).max(lo);
        let r = &self.pairs[pair].rules;
        let max_lots = (r.max_qty / r.lot).max(lo);
        self.rng.range(lo, hi.min(max_lots)) * r.lot
    }

    fn take_resting(&mut self) -> Option<Resting> {
        if self.resting.is_empty() {
            return None;
        }
        let i = self.rng.below(self.resting.len() as u64) as usize;
        let o = self.resting.swap_remove(i);
        self.position.remove(&o.id);
        if let Some(moved) = self.resting.get(i) {
            self.position.insert(moved.id, i);
        }
        Some(o)
    }

    fn peek_resting(&mut self) -> Option<Resting> {
        if self.resting.is_empty() {
            return None;
        }
        let i = self.rng.below(self.resting.len() as u64) as usize;
        Some(self.resting[i])
    }

    /// The next request.
    pub fn next_request(&mut self) -> Request {
        let mut kind = self.pick_kind();
        // Keep the books at a working size: above the target, half of the
        // new passive orders become cancels.
        if matches!(kind, Kind::Limit | Kind::PostOnly)
            && self.resting.len() > self.cfg.target_resting
            && self.rng.percent(50)
        {
            kind = Kind::Cancel;
        }
        match kind {
            Kind::Cancel => {
                if let Some(o) = self.take_resting() {
                    return self.cancel(o);
                }
            }
            Kind::Amend => {
                if let Some(o) = self.peek_resting() {
                    return self.amend(o);
                }
            }
            _ => {}
        }
        // No resting order to act on: a new limit order instead.
        if matches!(kind, Kind::Cancel | Kind::Amend) {
            kind = Kind::Limit;
        }
        let pair = self.pick_pair();
        self.walk(pair);
        let user = self.rng.below(self.users as u64) as usize;
        let side = self.side();
        let (price, tif, post_only) = match kind {
            Kind::Limit => {
                let marketable = self.rng.percent(u64::from(self.cfg.marketable_pct));
                let price = if marketable {
                    self.aggressive_price(pair, side)
                } else {
                    self.passive_price(pair, side, 1)
                };
                (Some(price), "GTC", false)
            }
            // At the mid or behind it: some would take, and expire.
            Kind::PostOnly => (Some(self.passive_price(pair, side, 0)), "GTC", true),
            Kind::Ioc => (Some(self.aggressive_price(pair, side)), "IOC", false),
            Kind::Fok => (Some(self.aggressive_price(pair, side)), "FOK", false),
            _ => (None, "IOC", false),
        };
        let sizing_price = price.unwrap_or(self.pairs[pair].mid);
        let qty = self.qty(pair, sizing_price);
        let r = &self.pairs[pair].rules;
        let q = decimal::format(qty, r.qty_scale);
        let body = match price {
            Some(p) => format!(
                r#"{{"symbol":"{}","side":"{}","type":"LIMIT","timeInForce":"{tif}","quantity":"{q}","price":"{}"{},"newOrderRespType":"{}"}}"#,
                r.symbol,
                side.as_str(),
                decimal::format(p, r.price_scale),
                if post_only { r#","postOnly":true"# } else { "" },
                self.resp,
            ),
            None => format!(
                r#"{{"symbol":"{}","side":"{}","type":"MARKET","quantity":"{q}","newOrderRespType":"{}"}}"#,
                r.symbol,
                side.as_str(),
                self.resp,
            ),
        };
        let follow = match (price, tif) {
            (Some(price), "GTC") => Follow::MayRest { side, price, qty },
            _ => Follow::Nothing,
        };
        Request {
            kind,
            user,
            pair,
            method: Method::Post,
            path: "/api/v1/order",
            query: String::new(),
            body: body.into(),
            follow,
        }
    }

    fn cancel(&mut self, o: Resting) -> Request {
        let symbol = &self.pairs[o.pair].rules.symbol;
        Request {
            kind: Kind::Cancel,
            user: o.user,
            pair: o.pair,
            method: Method::Delete,
            path: "/api/v1/order",
            query: format!(
                "symbol={symbol}&orderId={}&newOrderRespType={}",
                o.id, self.resp
            ),
            body: Bytes::new(),
            follow: Follow::Nothing,
        }
    }

    fn amend(&mut self, o: Resting) -> Request {
        let r = &self.pairs[o.pair].rules;
        let (tick, lot, max_qty) = (r.tick, r.lot, r.max_qty / r.lot * r.lot);
        // Move within the order's own half of the band, or raise the total
        // (always above what has filled); never a no-op (a 209 reject).
        let mut price = if self.rng.percent(50) {
            self.passive_price(o.pair, o.side, 1)
        } else {
            o.price
        };
        let mut qty = o.qty;
        if price == o.price {
            let more = self.rng.range(1, 5) * lot;
            if o.qty + more <= max_qty {
                qty = o.qty + more;
            } else {
                // Away from the mid by a tick: stays passive.
                price = match o.side {
                    Side::Buy => o.price.saturating_sub(tick).max(tick),
                    Side::Sell => o.price + tick,
                };
            }
        }
        let r = &self.pairs[o.pair].rules;
        let change = if price != o.price {
            format!(r#""price":"{}""#, decimal::format(price, r.price_scale))
        } else {
            format!(r#""quantity":"{}""#, decimal::format(qty, r.qty_scale))
        };
        Request {
            kind: Kind::Amend,
            user: o.user,
            pair: o.pair,
            method: Method::Put,
            path: "/api/v1/order",
            query: String::new(),
            body: format!(
                r#"{{"symbol":"{}","orderId":{},{change},"newOrderRespType":"{}"}}"#,
                r.symbol, o.id, self.resp
            )
            .into(),
            follow: Follow::Amend {
                order_id: o.id,
                price,
                qty,
            },
        }
    }

    /// Learns from the answer to `req`: `status` is the HTTP status, `body`
    /// the answer's bytes.
    pub fn on_answer(&mut self, req: &Request, status: u16, body: &[u8]) {
        match req.follow {
            Follow::Nothing => {}
            Follow::MayRest { side, price, qty } if status == 200 => {
                #[derive(Deserialize)]
                #[serde(rename_all = "camelCase")]
                struct Placed<'a> {
                    order_id: u64,
                    #[serde(borrow)]
                    status: Option<&'a str>,
                }
                let Ok(p) = serde_json::from_slice::<Placed<'_>>(body) else {
                    return;
                };
                // An ACK has no status: assume it rests until a cancel says
                // otherwise.
                let rests = matches!(p.status, None | Some("NEW" | "PARTIALLY_FILLED"));
                if rests
                    && self.resting.len() < MAX_TRACKED
                    && !self.position.contains_key(&p.order_id)
                {
                    self.position.insert(p.order_id, self.resting.len());
                    self.resting.push(Resting {
                        id: p.order_id,
                        user: req.user,
                        pair: req.pair,
                        side,
                        price,
                        qty,
                    });
                }
            }
            Follow::MayRest { .. } => {}
            Follow::Amend {
                order_id,
                price,
                qty,
            } => {
                let Some(&i) = self.position.get(&order_id) else {
                    return;
                };
                if status == 200 {
                    self.resting[i].price = price;
                    self.resting[i].qty = qty;
                } else if status == 404 {
                    // Filled or canceled meanwhile: forget it.
                    self.resting.swap_remove(i);
                    self.position.remove(&order_id);
                    if let Some(moved) = self.resting.get(i) {
                        self.position.insert(moved.id, i);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Vec<PairRules> {
        vec![
            PairRules {
                symbol: "BTC-EUR".into(),
                price_scale: 2,
                qty_scale: 8,
                tick: 1,
                lot: 1_000,
                min_qty: 1_000,
                max_qty: 100_000_000_000,
                min_notional: 100,
            },
            PairRules {
                symbol: "ETH-EUR".into(),
                price_scale: 2,
                qty_scale: 8,
                tick: 1,
                lot: 10_000,
                min_qty: 10_000,
                max_qty: 1_000_000_000_000,
                min_notional: 100,
            },
            PairRules {
                symbol: "ETH-BTC".into(),
                price_scale: 6,
                qty_scale: 8,
                tick: 1,
                lot: 10_000,
                min_qty: 10_000,
                max_qty: 1_000_000_000_000,
                min_notional: 100,
            },
        ]
    }

    fn flow(seed: u64) -> Flow {
        Flow::new(&FlowFile::default(), &rules(), 50, seed, RespType::Result).expect("valid")
    }

    #[test]
    fn same_seed_same_requests() {
        let (mut a, mut b, mut c) = (flow(3), flow(3), flow(4));
        let xs: Vec<Bytes> = (0..200).map(|_| a.next_request().body).collect();
        let ys: Vec<Bytes> = (0..200).map(|_| b.next_request().body).collect();
        let zs: Vec<Bytes> = (0..200).map(|_| c.next_request().body).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
    }

    #[test]
    fn pairs_are_skewed() {
        let mut f = flow(1);
        let mut counts = [0u32; 3];
        for _ in 0..30_000 {
            counts[f.next_request().pair] += 1;
        }
        // Zipf s = 1 over 3 pairs: 6/11, 3/11, 2/11.
        assert!(counts[0] > counts[1] && counts[1] > counts[2], "{counts:?}");
        assert!((15_500..17_200).contains(&counts[0]), "{counts:?}");
        assert_eq!(
            pair_weights(&[None, Some(5.0), None], 1.0),
            [1.0, 5.0, 1.0 / 3.0]
        );
    }

    #[test]
    fn orders_obey_the_pair_rules() {
        let mut f = flow(9);
        let r = rules();
        for _ in 0..5_000 {
            let req = f.next_request();
            if req.method != Method::Post {
                continue;
            }
            let v: Value = serde_json::from_slice(&req.body).expect("JSON");
            let rule = &r[req.pair];
            let qty = decimal::to_scale(v["quantity"].as_str().expect("qty"), rule.qty_scale)
                .expect("at scale");
            assert_eq!(qty % rule.lot, 0);
            assert!(qty >= rule.min_qty && qty <= rule.max_qty);
            if let Some(p) = v["price"].as_str() {
                let price = decimal::to_scale(p, rule.price_scale).expect("at scale");
                assert_eq!(price % rule.tick, 0);
                let value = u128::from(price) * u128::from(qty);
                assert!(
                    value >= u128::from(rule.min_notional) * 10u128.pow(u32::from(rule.qty_scale))
                );
            }
        }
    }

    #[test]
    fn cancels_and_amends_target_own_resting_orders() {
        let mut f = flow(5);
        let mut next_id = 1u64;
        let mut owner = HashMap::new();
        let mut kinds = HashMap::new();
        for _ in 0..5_000 {
            let req = f.next_request();
            *kinds.entry(req.kind).or_insert(0u32) += 1;
            match req.kind {
                Kind::Cancel | Kind::Amend => {
                    let id = if req.kind == Kind::Cancel {
                        req.query
                            .split('&')
                            .find_map(|kv| kv.strip_prefix("orderId="))
                            .and_then(|v| v.parse::<u64>().ok())
                    } else {
                        serde_json::from_slice::<Value>(&req.body)
                            .ok()
                            .and_then(|v| v["orderId"].as_u64())
                    }
                    .expect("names an order");
                    assert_eq!(owner.get(&id), Some(&req.user), "signed by the owner");
                    if let Follow::Amend { price, qty, .. } = req.follow {
                        let before = f.resting[f.position[&id]];
                        assert!(
                            price != before.price || qty != before.qty,
                            "an amend changes something"
                        );
                    }
                }
                _ => {
                    if matches!(req.follow, Follow::MayRest { .. }) {
                        owner.insert(next_id, req.user);
                        let body = format!(r#"{{"orderId":{next_id},"status":"NEW"}}"#);
                        f.on_answer(&req, 200, body.as_bytes());
                        next_id += 1;
                    }
                }
            }
        }
        for k in Kind::ALL {
            assert!(kinds.get(&k).copied().unwrap_or(0) > 50, "{k:?}: {kinds:?}");
        }
    }

    #[test]
    fn mids_walk_within_bounds() {
        let mut f = flow(2);
        for _ in 0..50_000 {
            f.next_request();
        }
        for (p, state) in f.pairs.iter().enumerate() {
            assert!(
                state.mid >= state.low && state.mid <= state.high,
                "pair {p}"
            );
        }
        let start = flow(2).mids();
        assert_ne!(f.mids(), start, "the mids moved");
    }

    #[test]
    fn exchange_info_rules() {
        let info = serde_json::json!({"symbols": [{
            "symbol": "BTC-EUR", "status": "TRADING", "baseAsset": "BTC", "quoteAsset": "EUR",
            "pricePrecision": 2, "quantityPrecision": 8, "tickSize": "0.01",
            "stepSize": "0.00001000", "minQty": "0.00001000", "maxQty": "1000.00000000",
            "minNotional": "1.00", "orderTypes": [], "timeInForce": [],
            "selfTradePreventionModes": [], "defaultSelfTradePreventionMode": "NONE"
        }]});
        let r = PairRules::from_exchange_info(&info).expect("valid");
        assert_eq!(r[0].tick, 1);
        assert_eq!(r[0].lot, 1_000);
        assert_eq!(r[0].min_notional, 100);
        assert_eq!(r[0].max_qty, 100_000_000_000);
        assert!(PairRules::from_exchange_info(&serde_json::json!({})).is_err());
    }
}
