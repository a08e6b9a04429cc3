//! The REST answers about markets and accounts as typed structs: one per
//! shape, so an answer's fields can be read in one place.
//!
//! Fields are declared in the byte order of their JSON names (upper case
//! before lower case). That is the order the hand-built `json!` maps these
//! replaced wrote them in, so the bytes on the wire did not change; the
//! test in `rest.rs` pins them.

use accounts::Fees;
use proto::{PairConfig, Price, Qty, QuoteQty, Side, UserId};
use serde::Serialize;
use store::{FillRow, OrderRow};

use crate::market::{DepthView, Levels, levels};
use crate::money::{commission_text, quote_asset, rate};

/// Milliseconds since the Unix epoch, as the answers carry time.
fn ms(ts: proto::Timestamp) -> u64 {
    ts.0 / 1_000_000
}

/// `GET /api/v3/exchangeInfo`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ExchangeInfo<'a> {
    pub(super) server_time: u64,
    pub(super) symbols: Vec<PairInfo<'a>>,
    pub(super) timezone: &'static str,
}

/// One pair of `exchangeInfo`: its rules, also as Binance's filters.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PairInfo<'a> {
    base_asset: &'a str,
    default_self_trade_prevention_mode: &'static str,
    filters: [Filter; 4],
    max_notional: String,
    max_price: String,
    max_qty: String,
    min_notional: String,
    min_qty: String,
    order_types: [&'static str; 2],
    price_precision: u8,
    quantity_precision: u8,
    quote_asset: &'a str,
    self_trade_prevention_modes: [&'static str; 4],
    status: &'static str,
    step_size: String,
    symbol: &'a str,
    tick_size: String,
    time_in_force: [&'static str; 3],
}

/// Binance's filter shapes: every limit a new order is checked against.
/// Untagged with `filterType` as a field, so it sits in name order.
#[derive(Debug, Serialize)]
#[serde(untagged, rename_all_fields = "camelCase")]
enum Filter {
    Price {
        filter_type: &'static str,
        max_price: String,
        min_price: String,
        tick_size: String,
    },
    LotSize {
        filter_type: &'static str,
        max_qty: String,
        min_qty: String,
        step_size: String,
    },
    Notional {
        apply_max_to_market: bool,
        apply_min_to_market: bool,
        avg_price_mins: u32,
        filter_type: &'static str,
        max_notional: String,
        min_notional: String,
    },
    MaxNumOrders {
        filter_type: &'static str,
        max_num_orders: u32,
    },
}

impl<'a> PairInfo<'a> {
    /// `p`'s entry; `trading` false reports it halted.
    pub(super) fn new(p: &'a PairConfig, trading: bool) -> Self {
        let (base, quote) = p.symbol.as_str().split_once('-').unwrap_or_default();
        let price = |v: Price| v.to_decimal(p.price_scale);
        let qty = |v: Qty| v.to_decimal(p.qty_scale);
        let notional = |v: QuoteQty| v.to_decimal(p.price_scale);
        PairInfo {
            base_asset: base,
            default_self_trade_prevention_mode: p.default_stp.as_str(),
            filters: [
                Filter::Price {
                    filter_type: "PRICE_FILTER",
                    max_price: price(p.max_price),
                    min_price: price(p.tick_size),
                    tick_size: price(p.tick_size),
                },
                Filter::LotSize {
                    filter_type: "LOT_SIZE",
                    max_qty: qty(p.max_qty),
                    min_qty: qty(p.min_qty),
                    step_size: qty(p.lot_size),
                },
                Filter::Notional {
                    apply_max_to_market: false,
                    apply_min_to_market: false,
                    avg_price_mins: 0,
                    filter_type: "NOTIONAL",
                    max_notional: notional(p.max_notional),
                    min_notional: notional(p.min_notional),
                },
                Filter::MaxNumOrders {
                    filter_type: "MAX_NUM_ORDERS",
                    max_num_orders: p.max_open_orders,
                },
            ],
            max_notional: notional(p.max_notional),
            max_price: price(p.max_price),
            max_qty: qty(p.max_qty),
            min_notional: notional(p.min_notional),
            min_qty: qty(p.min_qty),
            order_types: ["LIMIT", "MARKET"],
            price_precision: p.price_scale,
            quantity_precision: p.qty_scale,
            quote_asset: quote,
            self_trade_prevention_modes: ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
            status: if trading { "TRADING" } else { "HALT" },
            step_size: qty(p.lot_size),
            symbol: p.symbol.as_str(),
            tick_size: price(p.tick_size),
            time_in_force: ["GTC", "IOC", "FOK"],
        }
    }
}

/// `GET /api/v3/depth`: levels best first; `lastUpdateId` is the seq of
/// the last event included, for syncing with the depth stream.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DepthBody {
    asks: Levels,
    bids: Levels,
    last_update_id: u64,
}

impl DepthBody {
    pub(super) fn new(d: &DepthView, p: &PairConfig) -> Self {
        DepthBody {
            asks: levels(&d.asks, p),
            bids: levels(&d.bids, p),
            last_update_id: d.last_update_id.0,
        }
    }
}

/// One entry of `GET /api/v3/trades`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PublicTrade {
    id: u64,
    is_buyer_maker: bool,
    price: String,
    qty: String,
    quote_qty: String,
    time: u64,
}

impl PublicTrade {
    pub(super) fn new(f: &FillRow, p: &PairConfig) -> Self {
        PublicTrade {
            id: f.seq.0,
            is_buyer_maker: f.taker_side == Side::Sell,
            price: f.price.to_decimal(p.price_scale),
            qty: f.qty.to_decimal(p.qty_scale),
            quote_qty: QuoteQty(f.quote_qty).to_decimal(p.price_scale),
            time: ms(f.timestamp),
        }
    }
}

/// One entry of `GET /api/v3/myTrades`: a trade as one of its sides saw it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AccountTrade {
    /// What this side paid, at the quote asset's scale (`"0"` with
    /// accounts disabled).
    commission: String,
    /// The pair's quote asset.
    commission_asset: String,
    id: u64,
    is_buyer: bool,
    is_buyer_maker: bool,
    is_maker: bool,
    order_id: u64,
    price: String,
    qty: String,
    quote_qty: String,
    time: u64,
}

impl AccountTrade {
    /// Trade `f` as `user` (its maker or its taker) saw it; `fees` are the
    /// pair's rates, when the exchange charges fees.
    pub(super) fn new(f: &FillRow, p: &PairConfig, user: UserId, fees: Option<Fees>) -> Self {
        let public = PublicTrade::new(f, p);
        let maker = f.maker_user == user;
        AccountTrade {
            commission: commission_text(p, f.price, f.qty, rate(fees, maker)),
            commission_asset: quote_asset(p).to_string(),
            id: public.id,
            is_buyer: (f.taker_side == Side::Buy) != maker,
            is_buyer_maker: public.is_buyer_maker,
            is_maker: maker,
            order_id: if maker {
                f.maker_order_id.0
            } else {
                f.taker_order_id.0
            },
            price: public.price,
            qty: public.qty,
            quote_qty: public.quote_qty,
            time: public.time,
        }
    }
}

/// An order as `GET /api/v3/order` and `openOrders` answer it. Of
/// `origQty` and `origQuoteOrderQty` the one it is sized in is set; `price`
/// is null for a market order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct OrderBody<'a> {
    client_order_id: Option<&'a str>,
    cummulative_quote_qty: String,
    executed_qty: String,
    order_id: u64,
    orig_qty: Option<String>,
    orig_quote_order_qty: Option<String>,
    post_only: bool,
    price: Option<String>,
    side: &'static str,
    status: &'static str,
    symbol: &'a str,
    time: u64,
    time_in_force: &'a str,
    #[serde(rename = "type")]
    order_type: &'a str,
    update_time: u64,
}

impl<'a> OrderBody<'a> {
    pub(super) fn new(o: &'a OrderRow, p: &PairConfig) -> Self {
        OrderBody {
            client_order_id: o.client_order_id.as_ref().map(|c| c.as_str()),
            cummulative_quote_qty: QuoteQty(o.cum_quote_qty).to_decimal(p.price_scale),
            executed_qty: o.executed_qty.to_decimal(p.qty_scale),
            order_id: o.order_id.0,
            orig_qty: o.orig_qty.map(|x| x.to_decimal(p.qty_scale)),
            orig_quote_order_qty: o
                .orig_quote_qty
                .map(|x| QuoteQty(x).to_decimal(p.price_scale)),
            post_only: o.post_only,
            price: o.price.map(|x| x.to_decimal(p.price_scale)),
            side: o.side.as_str(),
            status: o.status.as_str(),
            symbol: o.pair.as_str(),
            time: ms(o.created_at),
            time_in_force: &o.time_in_force,
            order_type: &o.order_type,
            update_time: ms(o.updated_at),
        }
    }
}
