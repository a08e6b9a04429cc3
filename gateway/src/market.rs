//! Market data: each pair's L2 view, kept from the engine's book deltas, and
//! the stream messages WebSocket clients receive, built once per record.
//!
//! Depth messages carry `U` (first seq) and `u` (last seq). Consecutive
//! messages of a pair are contiguous (`U` = previous `u` + 1), and the REST
//! depth's `lastUpdateId` is the view's last seq, taken under the same lock
//! that publishes, so a client can sync a local book with no gap.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use commandlog::{EventRecord, Observer};
use engine::Depth;
use proto::{EventBody, OrderSize, PairConfig, Price, Qty, Seq, Side, Symbol, Timestamp, UserId};
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// One message for WebSocket clients: to a pair's depth or trade
/// subscribers, or to one user.
#[derive(Debug, Clone)]
pub enum StreamMessage {
    /// A depth diff of `pair`.
    Depth {
        /// The pair.
        pair: Symbol,
        /// The JSON text.
        text: Arc<str>,
    },
    /// A trade on `pair`.
    Trade {
        /// The pair.
        pair: Symbol,
        /// The JSON text.
        text: Arc<str>,
    },
    /// An execution report for `user`.
    User {
        /// The owner of the order.
        user: UserId,
        /// The JSON text.
        text: Arc<str>,
    },
}

#[derive(Debug, Default)]
struct PairView {
    bids: BTreeMap<Price, Qty>,
    asks: BTreeMap<Price, Qty>,
    last_seq: Seq,
    /// The `u` of the last depth message: the next one starts after it.
    published: Seq,
}

/// The market-data side of the gateway: an [`Observer`] of the runtime.
#[derive(Debug)]
pub struct MarketData {
    pairs: HashMap<Symbol, (PairConfig, Mutex<PairView>)>,
    stream: broadcast::Sender<StreamMessage>,
}

/// A depth answer: levels best first, as decimal strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepthView {
    /// The seq of the last event the view includes.
    pub last_update_id: Seq,
    /// `(price, qty)`, highest price first.
    pub bids: Vec<(Price, Qty)>,
    /// `(price, qty)`, lowest price first.
    pub asks: Vec<(Price, Qty)>,
}

fn ms(ts: Timestamp) -> u64 {
    ts.0 / 1_000_000
}

impl MarketData {
    /// Views for `pairs`; `stream_capacity` bounds how far a WebSocket client
    /// may fall behind before it is disconnected.
    pub fn new(pairs: &[PairConfig], stream_capacity: usize) -> Self {
        MarketData {
            pairs: pairs
                .iter()
                .map(|p| (p.symbol, (p.clone(), Mutex::new(PairView::default()))))
                .collect(),
            stream: broadcast::channel(stream_capacity).0,
        }
    }

    /// A new receiver of every stream message from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<StreamMessage> {
        self.stream.subscribe()
    }

    /// The best `limit` levels of each side of `pair`.
    pub fn depth(&self, pair: Symbol, limit: usize) -> Option<DepthView> {
        let (_, view) = self.pairs.get(&pair)?;
        let v = view.lock().ok()?;
        Some(DepthView {
            last_update_id: v.last_seq,
            bids: v
                .bids
                .iter()
                .rev()
                .take(limit)
                .map(|(p, q)| (*p, *q))
                .collect(),
            asks: v.asks.iter().take(limit).map(|(p, q)| (*p, *q)).collect(),
        })
    }

    fn publish(&self, msg: StreamMessage) {
        // No receiver is not an error: nobody is watching.
        let _ = self.stream.send(msg);
    }
}

/// `[["price", "qty"], ...]` at the pair's scales.
pub(crate) fn levels(levels: &[(Price, Qty)], cfg: &PairConfig) -> Value {
    Value::Array(
        levels
            .iter()
            .map(|(p, q)| json!([p.to_decimal(cfg.price_scale), q.to_decimal(cfg.qty_scale)]))
            .collect(),
    )
}

fn size_json(size: OrderSize, cfg: &PairConfig) -> (Value, Value) {
    match size {
        OrderSize::Base(q) => (json!(q.to_decimal(cfg.qty_scale)), Value::Null),
        OrderSize::Quote(q) => (Value::Null, json!(q.to_decimal(cfg.price_scale))),
    }
}

impl Observer for MarketData {
    fn on_start(&self, pair: &PairConfig, depth: Depth) {
        if let Some((_, view)) = self.pairs.get(&pair.symbol)
            && let Ok(mut v) = view.lock()
        {
            v.bids = depth.bids.iter().map(|l| (l.price, l.qty)).collect();
            v.asks = depth.asks.iter().map(|l| (l.price, l.qty)).collect();
            v.last_seq = depth.last_seq;
            v.published = depth.last_seq;
        }
    }

    fn on_record(&self, record: &Arc<EventRecord>) {
        let Some((cfg, view)) = self.pairs.get(&record.pair) else {
            return;
        };
        let Some(last) = record.events.last() else {
            return;
        };
        let watched = self.stream.receiver_count() > 0;
        let pair = record.pair;
        let (mut bids, mut asks) = (Vec::new(), Vec::new());
        let Ok(mut v) = view.lock() else { return };
        for e in &record.events {
            if let EventBody::BookDelta(d) = e.body {
                let side = match d.side {
                    Side::Buy => &mut v.bids,
                    Side::Sell => &mut v.asks,
                };
                if d.qty.is_zero() {
                    side.remove(&d.price);
                } else {
                    side.insert(d.price, d.qty);
                }
                let out = match d.side {
                    Side::Buy => &mut bids,
                    Side::Sell => &mut asks,
                };
                // A later delta of the same level in the record supersedes.
                out.retain(|(p, _)| *p != d.price);
                out.push((d.price, d.qty));
            }
        }
        v.last_seq = last.seq;
        // Depth messages are published only when a level changed; the next
        // one's `U` still starts right after the previous one's `u`.
        if watched && (!bids.is_empty() || !asks.is_empty()) {
            let text = json!({
                "e": "depthUpdate",
                "E": ms(last.timestamp),
                "s": pair.as_str(),
                "U": v.published.0 + 1,
                "u": last.seq.0,
                "b": levels(&bids, cfg),
                "a": levels(&asks, cfg),
            });
            self.publish(StreamMessage::Depth {
                pair,
                text: text.to_string().into(),
            });
            v.published = last.seq;
        }
        drop(v);
        if !watched {
            return;
        }
        for e in &record.events {
            let ts = ms(e.timestamp);
            let base =
                |user: UserId, order_id: u64, cid: Option<proto::ClientOrderId>, kind: &str| {
                    json!({
                        "e": "executionReport",
                        "E": ts,
                        "s": pair.as_str(),
                        "seq": e.seq.0,
                        "x": kind,
                        "i": order_id,
                        "c": cid.map(|c| c.as_str().to_string()),
                        "u": user.0,
                    })
                };
            let mut reports: Vec<(UserId, Value)> = Vec::new();
            match e.body {
                EventBody::Trade(t) => {
                    self.publish(StreamMessage::Trade {
                        pair,
                        text: json!({
                            "e": "trade",
                            "E": ts,
                            "s": pair.as_str(),
                            "t": t.trade_id.0,
                            "p": t.price.to_decimal(cfg.price_scale),
                            "q": t.qty.to_decimal(cfg.qty_scale),
                            "T": ts,
                            "m": t.taker_side == Side::Sell,
                        })
                        .to_string()
                        .into(),
                    });
                    let mut maker = base(t.maker_user, t.maker_order_id.0, None, "TRADE");
                    maker["S"] = json!(t.taker_side.opposite().as_str());
                    maker["L"] = json!(t.price.to_decimal(cfg.price_scale));
                    maker["l"] = json!(t.qty.to_decimal(cfg.qty_scale));
                    maker["t"] = json!(t.trade_id.0);
                    maker["m"] = json!(true);
                    maker["leaves"] = json!(t.maker_remaining.to_decimal(cfg.qty_scale));
                    let mut taker = base(t.taker_user, t.taker_order_id.0, None, "TRADE");
                    taker["S"] = json!(t.taker_side.as_str());
                    taker["L"] = maker["L"].clone();
                    taker["l"] = maker["l"].clone();
                    taker["t"] = json!(t.trade_id.0);
                    taker["m"] = json!(false);
                    let (leaves, leaves_quote) = size_json(t.taker_remaining, cfg);
                    taker["leaves"] = leaves;
                    taker["leavesQuote"] = leaves_quote;
                    reports.push((t.maker_user, maker));
                    reports.push((t.taker_user, taker));
                }
                EventBody::Accepted(a) => {
                    let mut r = base(a.user, a.order_id.0, a.client_order_id, "NEW");
                    r["S"] = json!(a.side.as_str());
                    r["o"] = json!(a.order_type.name());
                    r["f"] = json!(a.time_in_force.as_str());
                    r["p"] = json!(a.order_type.price().map(|p| p.to_decimal(cfg.price_scale)));
                    let (q, quote) = size_json(a.size, cfg);
                    r["q"] = q;
                    r["Q"] = quote;
                    reports.push((a.user, r));
                }
                EventBody::Canceled(c) => {
                    let status = store::OrderStatus::after_cancel(c.reason);
                    let kind = if status == store::OrderStatus::Canceled {
                        "CANCELED"
                    } else {
                        "EXPIRED"
                    };
                    let mut r = base(c.user, c.order_id.0, c.client_order_id, kind);
                    r["S"] = json!(c.side.as_str());
                    r["X"] = json!(status.as_str());
                    r["reason"] = json!(format!("{:?}", c.reason));
                    reports.push((c.user, r));
                }
                EventBody::Amended(a) => {
                    let mut r = base(a.user, a.order_id.0, a.client_order_id, "AMENDMENT");
                    r["S"] = json!(a.side.as_str());
                    r["p"] = json!(a.price.to_decimal(cfg.price_scale));
                    r["q"] = json!(a.qty.to_decimal(cfg.qty_scale));
                    r["leaves"] = json!(a.remaining.to_decimal(cfg.qty_scale));
                    r["priorityKept"] = json!(a.priority_kept);
                    reports.push((a.user, r));
                }
                EventBody::Rejected(rj) => {
                    let mut r = base(
                        rj.user,
                        rj.order_id.map_or(0, |o| o.0),
                        rj.client_order_id,
                        "REJECTED",
                    );
                    r["r"] = json!(-i32::from(rj.code.code()));
                    r["rMsg"] = json!(rj.code.message());
                    reports.push((rj.user, r));
                }
                EventBody::BookDelta(_) | EventBody::CanceledAll(_) => {}
            }
            for (user, r) in reports {
                self.publish(StreamMessage::User {
                    user,
                    text: r.to_string().into(),
                });
            }
        }
    }
}
