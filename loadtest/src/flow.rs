//! The order flow: seeded choices of user, pair, request kind, side, price
//! and size, as requests of Binance's `/api/v3` (form-encoded parameters,
//! Binance's names). Pairs are picked by skewed (Zipf-like) weights; each
//! pair's mid price is a bounded random walk; passive orders rest in a band
//! around it and marketable ones cross it. Cancels, amends and replaces
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
    /// A post-only limit order: Binance's `LIMIT_MAKER`.
    PostOnly,
    /// A cancel of an own resting order.
    Cancel,
    /// A lower quantity for an own resting order that keeps its place in
    /// the queue (`PUT /api/v3/order/amend/keepPriority`).
    Amend,
    /// A price move of an own resting order: a cancel and a new order in
    /// one request (`POST /api/v3/order/cancelReplace`).
    Replace,
}

impl Kind {
    /// Every kind, in report order.
    pub const ALL: [Kind; 8] = [
        Kind::Limit,
        Kind::Market,
        Kind::Ioc,
        Kind::Fok,
        Kind::PostOnly,
        Kind::Cancel,
        Kind::Amend,
        Kind::Replace,
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
            Kind::Replace => "replace",
        }
    }

    /// Its position in [`Kind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The gateway admits cancels on their own budget and never sheds them
    /// by lag; everything else is an order (a replace places one).
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
    /// New orders, amends and replaces.
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
    /// `POST`: a new order, or a cancel-replace.
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

/// A pair's trading rules, from `GET /api/v3/exchangeInfo`, as integers at
/// the pair's scales.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairRules {
    /// Binance's name, as the REST API takes it: `BTCEUR`.
    pub symbol: String,
    /// `BASE-QUOTE`, as the exchange's config names the pair (and
    /// scenarios may).
    pub stream: String,
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

/// One `symbols[]` entry of `exchangeInfo`, the fields the flow reads:
/// Binance's shape, the rules in `filters`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InfoSymbol {
    symbol: String,
    base_asset: String,
    quote_asset: String,
    /// The quantity scale.
    base_asset_precision: u8,
    /// The price scale; `quotePrecision` is its older name.
    quote_asset_precision: Option<u8>,
    quote_precision: Option<u8>,
    filters: Vec<Value>,
}

impl InfoSymbol {
    /// Field `name` of the filter of type `kind`.
    fn filter(&self, kind: &str, name: &str) -> Result<&str, String> {
        self.filters
            .iter()
            .find(|f| f["filterType"] == kind)
            .ok_or_else(|| format!("exchangeInfo: {}: no {kind} filter", self.symbol))?[name]
            .as_str()
            .ok_or_else(|| format!("exchangeInfo: {}: {kind} has no {name}", self.symbol))
    }
}

impl PairRules {
    /// Whether `name` is this pair, by either of its names.
    pub fn is_named(&self, name: &str) -> bool {
        self.symbol == name || self.stream == name
    }

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
                let price_scale = s
                    .quote_asset_precision
                    .or(s.quote_precision)
                    .ok_or_else(|| format!("exchangeInfo: {}: no quoteAssetPrecision", s.symbol))?;
                let qty_scale = s.base_asset_precision;
                let field = |kind: &str, name: &str, scale: u8| {
                    let v = s.filter(kind, name)?;
                    decimal::to_scale(v, scale).map_err(|_| {
                        format!(
                            "exchangeInfo: {}: {kind} {name} {v:?} is not a decimal at scale {scale}",
                            s.symbol
                        )
                    })
                };
                let r = PairRules {
                    tick: field("PRICE_FILTER", "tickSize", price_scale)?,
                    lot: field("LOT_SIZE", "stepSize", qty_scale)?,
                    min_qty: field("LOT_SIZE", "minQty", qty_scale)?,
                    max_qty: field("LOT_SIZE", "maxQty", qty_scale)?,
                    min_notional: field("NOTIONAL", "minNotional", price_scale)?,
                    price_scale,
                    qty_scale,
                    stream: format!("{}-{}", s.base_asset, s.quote_asset),
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
    /// The `application/x-www-form-urlencoded` body (empty for `DELETE`);
    /// shared, not copied, when sent.
    pub body: Bytes,
    /// What to learn from the answer.
    pub follow: Follow,
}

/// The media type of [`Request::body`]: Binance's parameters are a form.
pub const FORM: &str = "application/x-www-form-urlencoded";

/// An order the flow placed that may rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    /// Side.
    pub side: Side,
    /// Price, at the pair's scale.
    pub price: u64,
    /// Quantity, at the pair's scale.
    pub qty: u64,
    /// A `LIMIT_MAKER` (post-only) order.
    pub maker: bool,
}

/// What the flow learns from an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// Nothing.
    Nothing,
    /// A GTC or `LIMIT_MAKER` order that may rest: a new order's answer
    /// (`ACK` or `RESULT`) has its `orderId`.
    MayRest(Placed),
    /// An amend of a tracked order.
    Amend {
        /// The order.
        order_id: u64,
        /// Its new total quantity.
        qty: u64,
    },
    /// A cancel-replace whose new order may rest: the answer has it in
    /// `newOrderResponse`. The old order is no longer tracked.
    Replace(Placed),
}

#[derive(Debug, Clone, Copy)]
struct Resting {
    id: u64,
    user: usize,
    pair: usize,
    order: Placed,
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
    mix: [u64; 8],
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
            let r = rules
                .iter()
                .find(|r| r.is_named(&p.symbol))
                .ok_or_else(|| {
                    format!(
                        "pair {} is not traded by the exchange (it lists {})",
                        p.symbol,
                        rules
                            .iter()
                            .map(|r| format!("{} ({})", r.stream, r.symbol))
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
        let mut mix = [0u64; 8];
        let mut acc = 0u64;
        for (i, w) in [
            m.limit,
            m.market,
            m.ioc,
            m.fok,
            m.post_only,
            m.cancel,
            m.amend,
            m.replace,
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
        let x = self.rng.below(self.mix[7].max(1));
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

    /// Stops tracking the resting order at `i` and returns it.
    fn remove_resting(&mut self, i: usize) -> Resting {
        let o = self.resting.swap_remove(i);
        self.position.remove(&o.id);
        if let Some(moved) = self.resting.get(i) {
            self.position.insert(moved.id, i);
        }
        o
    }

    fn take_resting(&mut self) -> Option<Resting> {
        if self.resting.is_empty() {
            return None;
        }
        let i = self.rng.below(self.resting.len() as u64) as usize;
        Some(self.remove_resting(i))
    }

    /// A resting order whose quantity can be lowered and stay valid, out
    /// of a few drawn; `None` if those were all at their smallest size.
    fn peek_shrinkable(&mut self) -> Option<Resting> {
        for _ in 0..PEEKS {
            if self.resting.is_empty() {
                return None;
            }
            let i = self.rng.below(self.resting.len() as u64) as usize;
            let o = self.resting[i];
            let lot = self.pairs[o.pair].rules.lot;
            if o.order.qty / lot > self.min_lots(o.pair, o.order.price) {
                return Some(o);
            }
        }
        None
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
                if let Some(o) = self.peek_shrinkable() {
                    return self.amend(o);
                }
            }
            Kind::Replace => {
                if let Some(o) = self.take_resting() {
                    return self.replace(o);
                }
            }
            _ => {}
        }
        // No resting order to act on: a new limit order instead.
        if matches!(kind, Kind::Cancel | Kind::Amend | Kind::Replace) {
            kind = Kind::Limit;
        }
        let pair = self.pick_pair();
        self.walk(pair);
        let user = self.rng.below(self.users as u64) as usize;
        let side = self.side();
        let (price, order_type) = match kind {
            Kind::Limit => {
                let marketable = self.rng.percent(u64::from(self.cfg.marketable_pct));
                let price = if marketable {
                    self.aggressive_price(pair, side)
                } else {
                    self.passive_price(pair, side, 1)
                };
                (Some(price), OrderKind::Limit("GTC"))
            }
            // At the mid or behind it: some would take, and are refused.
            Kind::PostOnly => (Some(self.passive_price(pair, side, 0)), OrderKind::Maker),
            Kind::Ioc => (
                Some(self.aggressive_price(pair, side)),
                OrderKind::Limit("IOC"),
            ),
            Kind::Fok => (
                Some(self.aggressive_price(pair, side)),
                OrderKind::Limit("FOK"),
            ),
            _ => (None, OrderKind::Market),
        };
        let sizing_price = price.unwrap_or(self.pairs[pair].mid);
        let qty = self.qty(pair, sizing_price);
        let body = self.order_params(pair, side, order_type, qty, price);
        let follow = match (price, order_type) {
            (Some(price), OrderKind::Limit("GTC") | OrderKind::Maker) => Follow::MayRest(Placed {
                side,
                price,
                qty,
                maker: order_type == OrderKind::Maker,
            }),
            _ => Follow::Nothing,
        };
        Request {
            kind,
            user,
            pair,
            method: Method::Post,
            path: "/api/v3/order",
            query: String::new(),
            body: body.into(),
            follow,
        }
    }

    /// A new order's parameters, form-encoded: Binance's names, a
    /// `timeInForce` for `LIMIT` only, the answer type asked for.
    fn order_params(
        &self,
        pair: usize,
        side: Side,
        order_type: OrderKind,
        qty: u64,
        price: Option<u64>,
    ) -> String {
        let r = &self.pairs[pair].rules;
        let mut out = format!(
            "symbol={}&side={}&type={}",
            r.symbol,
            side.as_str(),
            order_type.as_str()
        );
        if let OrderKind::Limit(tif) = order_type {
            out.push_str("&timeInForce=");
            out.push_str(tif);
        }
        out.push_str("&quantity=");
        out.push_str(&decimal::format(qty, r.qty_scale));
        if let Some(p) = price {
            out.push_str("&price=");
            out.push_str(&decimal::format(p, r.price_scale));
        }
        out.push_str("&newOrderRespType=");
        out.push_str(self.resp);
        out
    }

    /// Binance's cancel takes no `newOrderRespType`: it always answers
    /// with the canceled order.
    fn cancel(&mut self, o: Resting) -> Request {
        let symbol = &self.pairs[o.pair].rules.symbol;
        Request {
            kind: Kind::Cancel,
            user: o.user,
            pair: o.pair,
            method: Method::Delete,
            path: "/api/v3/order",
            query: format!("symbol={symbol}&orderId={}", o.id),
            body: Bytes::new(),
            follow: Follow::Nothing,
        }
    }

    /// A lower quantity that keeps the order's priority: at least half of
    /// what it was, at least the smallest valid size at its price, and
    /// always below what it was (Binance refuses anything else).
    fn amend(&mut self, o: Resting) -> Request {
        let lot = self.pairs[o.pair].rules.lot;
        let lots = o.order.qty / lot;
        let lo = self.min_lots(o.pair, o.order.price).max(lots.div_ceil(2));
        let qty = self.rng.range(lo, lots - 1) * lot;
        let r = &self.pairs[o.pair].rules;
        Request {
            kind: Kind::Amend,
            user: o.user,
            pair: o.pair,
            method: Method::Put,
            path: "/api/v3/order/amend/keepPriority",
            query: String::new(),
            body: format!(
                "symbol={}&orderId={}&newQty={}",
                r.symbol,
                o.id,
                decimal::format(qty, r.qty_scale)
            )
            .into(),
            follow: Follow::Amend {
                order_id: o.id,
                qty,
            },
        }
    }

    /// A price move: the order canceled and placed again, of the same type
    /// and size, within its own half of the band (a tick further from the
    /// mid when that draws its own price). `STOP_ON_FAILURE`: nothing is
    /// placed when the order is gone already.
    fn replace(&mut self, o: Resting) -> Request {
        let tick = self.pairs[o.pair].rules.tick;
        let mut price = self.passive_price(o.pair, o.order.side, 1);
        if price == o.order.price {
            price = match o.order.side {
                Side::Buy => o.order.price.saturating_sub(tick).max(tick),
                Side::Sell => o.order.price + tick,
            };
        }
        let lot = self.pairs[o.pair].rules.lot;
        let qty = o.order.qty.max(self.min_lots(o.pair, price) * lot);
        let order_type = if o.order.maker {
            OrderKind::Maker
        } else {
            OrderKind::Limit("GTC")
        };
        let mut body = self.order_params(o.pair, o.order.side, order_type, qty, Some(price));
        body.push_str("&cancelReplaceMode=STOP_ON_FAILURE&cancelOrderId=");
        body.push_str(&o.id.to_string());
        Request {
            kind: Kind::Replace,
            user: o.user,
            pair: o.pair,
            method: Method::Post,
            path: "/api/v3/order/cancelReplace",
            query: String::new(),
            body: body.into(),
            follow: Follow::Replace(Placed {
                price,
                qty,
                ..o.order
            }),
        }
    }

    /// Tracks the order a new order's answer (`ACK` or `RESULT`) names, if
    /// it may rest.
    fn track(&mut self, req: &Request, answer: &NewOrderAnswer<'_>, order: Placed) {
        // An ACK has no status: assume it rests until a cancel says
        // otherwise.
        let rests = matches!(answer.status, None | Some("NEW" | "PARTIALLY_FILLED"));
        if rests
            && self.resting.len() < MAX_TRACKED
            && !self.position.contains_key(&answer.order_id)
        {
            self.position.insert(answer.order_id, self.resting.len());
            self.resting.push(Resting {
                id: answer.order_id,
                user: req.user,
                pair: req.pair,
                order,
            });
        }
    }

    /// Learns from the answer to `req`: `status` is the HTTP status, `body`
    /// the answer's bytes.
    pub fn on_answer(&mut self, req: &Request, status: u16, body: &[u8]) {
        match req.follow {
            Follow::Nothing => {}
            Follow::MayRest(order) if status == 200 => {
                if let Ok(a) = serde_json::from_slice::<NewOrderAnswer<'_>>(body) {
                    self.track(req, &a, order);
                }
            }
            Follow::Replace(order) if status == 200 => {
                #[derive(Deserialize)]
                #[serde(rename_all = "camelCase")]
                struct Replaced<'a> {
                    #[serde(borrow)]
                    new_order_response: NewOrderAnswer<'a>,
                }
                if let Ok(a) = serde_json::from_slice::<Replaced<'_>>(body) {
                    self.track(req, &a.new_order_response, order);
                }
            }
            Follow::MayRest(_) | Follow::Replace(_) => {}
            Follow::Amend { order_id, qty } => {
                let Some(&i) = self.position.get(&order_id) else {
                    return;
                };
                if status == 200 {
                    self.resting[i].order.qty = qty;
                } else if matches!(error_code(body), Some(UNKNOWN_ORDER | NO_SUCH_ORDER)) {
                    // Filled or canceled meanwhile: forget it.
                    self.remove_resting(i);
                }
            }
        }
    }
}

/// Resting orders drawn at most to find one an amend can shrink.
const PEEKS: usize = 4;

/// Binance's `-2011 Unknown order sent.`: the book has no such open order.
const UNKNOWN_ORDER: i64 = -2011;
/// Binance's `-2013 Order does not exist.`
const NO_SUCH_ORDER: i64 = -2013;

/// The `code` of an error answer.
fn error_code(body: &[u8]) -> Option<i64> {
    #[derive(Deserialize)]
    struct Error {
        code: i64,
    }
    serde_json::from_slice::<Error>(body).ok().map(|e| e.code)
}

/// The part of a new order's answer (`ACK`, `RESULT` or `FULL`) the flow
/// reads.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewOrderAnswer<'a> {
    order_id: u64,
    /// Absent from an `ACK`.
    #[serde(borrow)]
    status: Option<&'a str>,
}

/// A new order's `type` (and `timeInForce`, for `LIMIT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OrderKind {
    /// `LIMIT` with this `timeInForce`.
    Limit(&'static str),
    /// `LIMIT_MAKER`: post-only, no `timeInForce`.
    Maker,
    /// `MARKET`: no price, no `timeInForce`.
    Market,
}

impl OrderKind {
    fn as_str(self) -> &'static str {
        match self {
            OrderKind::Limit(_) => "LIMIT",
            OrderKind::Maker => "LIMIT_MAKER",
            OrderKind::Market => "MARKET",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Vec<PairRules> {
        vec![
            PairRules {
                symbol: "BTCEUR".into(),
                stream: "BTC-EUR".into(),
                price_scale: 2,
                qty_scale: 8,
                tick: 1,
                lot: 1_000,
                min_qty: 1_000,
                max_qty: 100_000_000_000,
                min_notional: 100,
            },
            PairRules {
                symbol: "ETHEUR".into(),
                stream: "ETH-EUR".into(),
                price_scale: 2,
                qty_scale: 8,
                tick: 1,
                lot: 10_000,
                min_qty: 10_000,
                max_qty: 1_000_000_000_000,
                min_notional: 100,
            },
            PairRules {
                symbol: "ETHBTC".into(),
                stream: "ETH-BTC".into(),
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

    /// A form's (or a query's) parameters; each name at most once.
    fn params(form: &[u8]) -> HashMap<String, String> {
        let text = std::str::from_utf8(form).expect("UTF-8");
        let mut out = HashMap::new();
        for kv in text.split('&').filter(|kv| !kv.is_empty()) {
            let (k, v) = kv.split_once('=').expect("name=value");
            assert!(
                v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)),
                "{kv}: needs no percent-encoding"
            );
            assert!(
                out.insert(k.to_string(), v.to_string()).is_none(),
                "{k} twice"
            );
        }
        out
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
    fn orders_obey_the_pair_rules_and_binances_parameters() {
        let mut f = flow(9);
        let r = rules();
        let mut next_id = 1u64;
        for _ in 0..5_000 {
            let req = f.next_request();
            if let Follow::MayRest(_) = req.follow {
                let body = format!(r#"{{"orderId":{next_id},"status":"NEW"}}"#);
                f.on_answer(&req, 200, body.as_bytes());
                next_id += 1;
            }
            if req.method != Method::Post {
                continue;
            }
            let v = params(&req.body);
            let rule = &r[req.pair];
            assert_eq!(v["symbol"], rule.symbol);
            assert_eq!(v["newOrderRespType"], "RESULT");
            assert!(matches!(v["side"].as_str(), "BUY" | "SELL"), "{v:?}");
            match v["type"].as_str() {
                "LIMIT" => assert!(
                    matches!(v["timeInForce"].as_str(), "GTC" | "IOC" | "FOK"),
                    "{v:?}"
                ),
                "LIMIT_MAKER" | "MARKET" => assert!(!v.contains_key("timeInForce"), "{v:?}"),
                other => panic!("type {other}"),
            }
            assert_eq!(v.contains_key("price"), v["type"] != "MARKET", "{v:?}");
            let replace = req.path == "/api/v3/order/cancelReplace";
            assert_eq!(req.kind == Kind::Replace, replace);
            assert_eq!(v.contains_key("cancelOrderId"), replace, "{v:?}");
            if replace {
                assert_eq!(v["cancelReplaceMode"], "STOP_ON_FAILURE");
                assert!(matches!(v["type"].as_str(), "LIMIT" | "LIMIT_MAKER"));
            } else {
                assert_eq!(req.path, "/api/v3/order");
            }
            let qty = decimal::to_scale(&v["quantity"], rule.qty_scale).expect("at scale");
            assert_eq!(qty % rule.lot, 0);
            assert!(qty >= rule.min_qty && qty <= rule.max_qty);
            if let Some(p) = v.get("price") {
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
    fn cancels_amends_and_replaces_target_own_resting_orders() {
        let mut f = flow(5);
        let r = rules();
        let mut next_id = 1u64;
        let mut owner = HashMap::new();
        let mut kinds = HashMap::new();
        for _ in 0..5_000 {
            let req = f.next_request();
            *kinds.entry(req.kind).or_insert(0u32) += 1;
            match req.kind {
                Kind::Cancel => {
                    assert_eq!(req.method, Method::Delete);
                    assert!(req.body.is_empty());
                    let q = params(req.query.as_bytes());
                    assert_eq!(q.len(), 2, "symbol and orderId only: {q:?}");
                    assert_eq!(q["symbol"], r[req.pair].symbol);
                    let id: u64 = q["orderId"].parse().expect("an order id");
                    assert_eq!(owner.get(&id), Some(&req.user), "signed by the owner");
                }
                Kind::Amend => {
                    assert_eq!(req.method, Method::Put);
                    let v = params(&req.body);
                    assert_eq!(v.len(), 3, "symbol, orderId and newQty: {v:?}");
                    let id: u64 = v["orderId"].parse().expect("an order id");
                    assert_eq!(owner.get(&id), Some(&req.user), "signed by the owner");
                    let rule = &r[req.pair];
                    let qty = decimal::to_scale(&v["newQty"], rule.qty_scale).expect("at scale");
                    let before = f.resting[f.position[&id]].order;
                    assert!(qty < before.qty, "a lower quantity: {qty} < {}", before.qty);
                    assert!(2 * qty >= before.qty, "at most halved");
                    assert!(qty >= rule.min_qty && qty.is_multiple_of(rule.lot));
                    assert_eq!(req.follow, Follow::Amend { order_id: id, qty });
                    f.on_answer(&req, 200, b"{}");
                    assert_eq!(f.resting[f.position[&id]].order.qty, qty);
                }
                _ => {
                    if req.kind == Kind::Replace {
                        let v = params(&req.body);
                        let id: u64 = v["cancelOrderId"].parse().expect("an order id");
                        assert_eq!(owner.get(&id), Some(&req.user), "signed by the owner");
                        assert!(!f.position.contains_key(&id), "no longer tracked");
                        owner.insert(next_id, req.user);
                        let body = format!(
                            r#"{{"cancelResult":"SUCCESS","newOrderResult":"SUCCESS","cancelResponse":{{}},"newOrderResponse":{{"orderId":{next_id},"status":"NEW"}}}}"#
                        );
                        f.on_answer(&req, 200, body.as_bytes());
                        assert!(
                            f.position.contains_key(&next_id),
                            "the new order is tracked"
                        );
                        next_id += 1;
                    } else if matches!(req.follow, Follow::MayRest(_)) {
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
    fn acks_are_tracked_and_gone_orders_forgotten() {
        let mut f = Flow::new(&FlowFile::default(), &rules(), 5, 7, RespType::Ack).expect("valid");
        let req = loop {
            let req = f.next_request();
            if matches!(req.follow, Follow::MayRest(_)) {
                break req;
            }
        };
        assert_eq!(params(&req.body)["newOrderRespType"], "ACK");
        let ack = r#"{"symbol":"BTCEUR","orderId":9,"orderListId":-1,"clientOrderId":"x-9","transactTime":1}"#;
        f.on_answer(&req, 200, ack.as_bytes());
        assert_eq!(f.resting(), 1);
        let filled = r#"{"symbol":"BTCEUR","orderId":10,"status":"FILLED"}"#;
        f.on_answer(&req, 200, filled.as_bytes());
        let refused = r#"{"code":-2010,"msg":"Order would immediately match and take."}"#;
        f.on_answer(&req, 400, refused.as_bytes());
        assert_eq!(f.resting(), 1, "neither a filled nor a refused order rests");
        let amend = |qty| Request {
            follow: Follow::Amend { order_id: 9, qty },
            ..req.clone()
        };
        f.on_answer(&amend(5), 400, br#"{"code":-2010,"msg":"no"}"#);
        assert_eq!(f.resting(), 1, "a refused amend leaves the order");
        f.on_answer(
            &amend(5),
            400,
            br#"{"code":-2011,"msg":"Unknown order sent."}"#,
        );
        assert_eq!(f.resting(), 0, "an unknown order is forgotten");
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
    fn exchange_info_rules_come_from_the_filters() {
        let info = serde_json::json!({"symbols": [{
            "symbol": "BTCEUR", "status": "TRADING", "baseAsset": "BTC", "quoteAsset": "EUR",
            "baseAssetPrecision": 8, "quotePrecision": 2, "quoteAssetPrecision": 2,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000.00", "tickSize": "0.01"},
                {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "1000.00000000", "stepSize": "0.00001000"},
                {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00001000", "maxQty": "1000.00000000", "stepSize": "0.00001000"},
                {"filterType": "NOTIONAL", "minNotional": "1.00", "applyMinToMarket": true,
                 "maxNotional": "9000000.00", "applyMaxToMarket": true, "avgPriceMins": 0},
                {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200}
            ],
            "defaultSelfTradePreventionMode": "NONE"
        }]});
        let r = PairRules::from_exchange_info(&info).expect("valid");
        assert_eq!(
            (r[0].symbol.as_str(), r[0].stream.as_str()),
            ("BTCEUR", "BTC-EUR")
        );
        assert!(r[0].is_named("BTCEUR") && r[0].is_named("BTC-EUR"));
        assert_eq!((r[0].price_scale, r[0].qty_scale), (2, 8));
        assert_eq!(r[0].tick, 1);
        assert_eq!(r[0].lot, 1_000);
        assert_eq!(r[0].min_qty, 1_000);
        assert_eq!(r[0].min_notional, 100);
        assert_eq!(r[0].max_qty, 100_000_000_000);
        assert!(PairRules::from_exchange_info(&serde_json::json!({})).is_err());
        // The old top-level fields are not read: without filters, no rules.
        let mut old = info.clone();
        old["symbols"][0]["filters"] = serde_json::json!([]);
        old["symbols"][0]["tickSize"] = "0.01".into();
        let e = PairRules::from_exchange_info(&old).expect_err("no filters");
        assert!(e.to_string().contains("PRICE_FILTER"), "{e}");
    }

    #[test]
    fn scenarios_may_name_pairs_either_way() {
        let mut cfg = FlowFile::default();
        cfg.pairs.truncate(2);
        cfg.pairs[1].symbol = "ETHEUR".into();
        let f = Flow::new(&cfg, &rules(), 5, 1, RespType::Result).expect("both names");
        assert_eq!(f.pairs[0].rules.symbol, "BTCEUR");
        assert_eq!(f.pairs[1].rules.stream, "ETH-EUR");
        cfg.pairs[1].symbol = "ETH-USD".into();
        let e = Flow::new(&cfg, &rules(), 5, 1, RespType::Result).expect_err("not traded");
        assert!(e.to_string().contains("BTC-EUR (BTCEUR)"), "{e}");
    }
}
