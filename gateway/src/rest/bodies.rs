//! The REST answers as typed structs, one per Binance shape, with fields in
//! the order of Binance's documented examples, so an answer can be read
//! against them in one place.

use accounts::Fees;
use proto::{PairConfig, Price, Qty, QuoteQty, Side};
use serde::Serialize;
use store::{FillRow, OrderRow};
use utoipa::ToSchema;

use crate::market::{DepthView, Levels, levels};
use crate::money::{commission_text, quote_asset, rate};

/// Milliseconds since the Unix epoch, as the answers carry time.
pub(crate) fn ms(ts: proto::Timestamp) -> u64 {
    ts.0 / 1_000_000
}

/// `GET /api/v3/exchangeInfo`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct ExchangeInfo<'a> {
    pub(super) timezone: &'static str,
    pub(super) server_time: u64,
    pub(super) rate_limits: [crate::usage::RateLimit; 3],
    pub(super) exchange_filters: [Filter; 0],
    pub(super) symbols: Vec<PairInfo<'a>>,
}

/// The order types every pair takes.
pub(super) const ORDER_TYPES: [&str; 3] = ["LIMIT", "LIMIT_MAKER", "MARKET"];

/// The conditional order types, for a pair that takes them.
pub(super) const CONDITIONAL_TYPES: [&str; 4] = [
    "STOP_LOSS",
    "STOP_LOSS_LIMIT",
    "TAKE_PROFIT",
    "TAKE_PROFIT_LIMIT",
];

/// The order types `p` takes, in Binance's order.
pub(super) fn order_types(p: &PairConfig) -> Vec<&'static str> {
    let mut out = ORDER_TYPES.to_vec();
    if p.advanced.conditional {
        out.extend(CONDITIONAL_TYPES);
    }
    out
}

/// One pair of `exchangeInfo`, Binance's fields: its rules as filters.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PairInfo<'a> {
    symbol: String,
    #[schema(value_type = super::openapi::SymbolStatus, inline)]
    status: &'static str,
    base_asset: &'a str,
    base_asset_precision: u8,
    quote_asset: &'a str,
    quote_precision: u8,
    quote_asset_precision: u8,
    base_commission_precision: u8,
    quote_commission_precision: u8,
    #[schema(value_type = Vec<super::openapi::OrderTypeName>, inline)]
    order_types: Vec<&'static str>,
    iceberg_allowed: bool,
    oco_allowed: bool,
    oto_allowed: bool,
    quote_order_qty_market_allowed: bool,
    allow_trailing_stop: bool,
    cancel_replace_allowed: bool,
    amend_allowed: bool,
    peg_instructions_allowed: bool,
    is_spot_trading_allowed: bool,
    is_margin_trading_allowed: bool,
    filters: Vec<Filter>,
    #[schema(value_type = Vec<String>)]
    permissions: [&'static str; 0],
    /// Empty with `showPermissionSets=false`.
    #[schema(value_type = Vec<Vec<String>>)]
    permission_sets: &'static [[&'static str; 1]],
    #[schema(value_type = super::openapi::StpModeName, inline)]
    default_self_trade_prevention_mode: &'static str,
    #[schema(value_type = Vec<super::openapi::StpModeName>, inline)]
    allowed_self_trade_prevention_modes: [&'static str; 4],
}

/// Binance's filter shapes: every limit a new order is checked against.
/// The variants are named after Binance's filter types (`PRICE_FILTER`).
// Each variant's fields are camelCase by its own `rename_all`, which the
// OpenAPI derive reads (it does not read `rename_all_fields`).
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "filterType", rename_all = "SCREAMING_SNAKE_CASE")]
pub(super) enum Filter {
    #[serde(rename_all = "camelCase")]
    PriceFilter {
        min_price: String,
        max_price: String,
        tick_size: String,
    },
    #[serde(rename_all = "camelCase")]
    LotSize {
        min_qty: String,
        max_qty: String,
        step_size: String,
    },
    #[serde(rename_all = "camelCase")]
    MarketLotSize {
        min_qty: String,
        max_qty: String,
        step_size: String,
    },
    #[serde(rename_all = "camelCase")]
    Notional {
        min_notional: String,
        apply_min_to_market: bool,
        max_notional: String,
        apply_max_to_market: bool,
        avg_price_mins: u32,
    },
    #[serde(rename_all = "camelCase")]
    MaxNumOrders { max_num_orders: u32 },
    /// At most `limit` slices per iceberg order: `ceil(quantity /
    /// icebergQty)`.
    IcebergParts { limit: u64 },
    /// The range of `trailingDelta`, in basis points, by the direction the
    /// order fires in.
    #[serde(rename_all = "camelCase")]
    TrailingDelta {
        min_trailing_above_delta: u32,
        max_trailing_above_delta: u32,
        min_trailing_below_delta: u32,
        max_trailing_below_delta: u32,
    },
}

impl<'a> PairInfo<'a> {
    /// `p`'s entry in `status` (`TRADING`, `HALT` or `BREAK`).
    /// `permission_sets` false empties them (`showPermissionSets=false`).
    pub(crate) fn new(p: &'a PairConfig, status: &'static str, permission_sets: bool) -> Self {
        let (base, quote) = p.symbol.assets();
        let price = |v: Price| v.to_decimal(p.price_scale);
        let qty = |v: Qty| v.to_decimal(p.qty_scale);
        let notional = |v: QuoteQty| v.to_decimal(p.price_scale);
        let lot = || (qty(p.min_qty), qty(p.max_qty), qty(p.lot_size));
        let (min_qty, max_qty, step_size) = lot();
        let market_lot = lot();
        let commission_precision = p.price_scale.saturating_add(p.qty_scale);
        PairInfo {
            symbol: p.symbol.joined(),
            status,
            base_asset: base,
            base_asset_precision: p.qty_scale,
            quote_asset: quote,
            quote_precision: p.price_scale,
            quote_asset_precision: p.price_scale,
            base_commission_precision: commission_precision,
            quote_commission_precision: commission_precision,
            order_types: order_types(p),
            iceberg_allowed: p.advanced.iceberg,
            oco_allowed: p.advanced.lists,
            oto_allowed: p.advanced.lists,
            quote_order_qty_market_allowed: true,
            allow_trailing_stop: p.advanced.conditional && p.advanced.trailing,
            cancel_replace_allowed: true,
            amend_allowed: true,
            // No pegged orders here.
            peg_instructions_allowed: false,
            is_spot_trading_allowed: true,
            is_margin_trading_allowed: false,
            filters: [
                Some(Filter::PriceFilter {
                    min_price: price(p.tick_size),
                    max_price: price(p.max_price),
                    tick_size: price(p.tick_size),
                }),
                Some(Filter::LotSize {
                    min_qty,
                    max_qty,
                    step_size,
                }),
                p.advanced.iceberg.then_some(Filter::IcebergParts {
                    limit: proto::MAX_ICEBERG_PARTS,
                }),
                Some(Filter::MarketLotSize {
                    min_qty: market_lot.0,
                    max_qty: market_lot.1,
                    step_size: market_lot.2,
                }),
                (p.advanced.conditional && p.advanced.trailing).then_some(Filter::TrailingDelta {
                    min_trailing_above_delta: proto::MIN_TRAILING_DELTA,
                    max_trailing_above_delta: proto::MAX_TRAILING_DELTA,
                    min_trailing_below_delta: proto::MIN_TRAILING_DELTA,
                    max_trailing_below_delta: proto::MAX_TRAILING_DELTA,
                }),
                Some(Filter::Notional {
                    min_notional: notional(p.min_notional),
                    // A market order sized in base has no price to check
                    // here; one sized in quote is checked as its amount.
                    apply_min_to_market: false,
                    max_notional: notional(p.max_notional),
                    apply_max_to_market: false,
                    avg_price_mins: 0,
                }),
                Some(Filter::MaxNumOrders {
                    max_num_orders: p.max_open_orders,
                }),
            ]
            .into_iter()
            .flatten()
            .collect(),
            permissions: [],
            permission_sets: if permission_sets { &[["SPOT"]] } else { &[] },
            default_self_trade_prevention_mode: p.default_stp.as_str(),
            allowed_self_trade_prevention_modes: [
                "NONE",
                "EXPIRE_TAKER",
                "EXPIRE_MAKER",
                "EXPIRE_BOTH",
            ],
        }
    }

    /// `TRADING` or `HALT`.
    pub(super) fn status(&self) -> &'static str {
        self.status
    }
}

/// `GET /api/v3/depth`: levels best first; `lastUpdateId` is the seq of
/// the last event included, for syncing with the depth stream.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct DepthBody {
    /// `[price, quantity]`, lowest price first.
    #[schema(value_type = Vec<super::openapi::PriceLevel>, inline)]
    asks: Levels,
    /// `[price, quantity]`, highest price first.
    #[schema(value_type = Vec<super::openapi::PriceLevel>, inline)]
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

/// One entry of `GET /api/v3/trades` and `historicalTrades`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct PublicTrade {
    id: u64,
    price: String,
    qty: String,
    quote_qty: String,
    time: u64,
    is_buyer_maker: bool,
    is_best_match: bool,
}

impl PublicTrade {
    pub(super) fn new(f: &FillRow, p: &PairConfig) -> Self {
        PublicTrade {
            id: f.seq.0,
            price: f.price.to_decimal(p.price_scale),
            qty: f.qty.to_decimal(p.qty_scale),
            quote_qty: QuoteQty(f.quote_qty).to_decimal(p.price_scale),
            time: ms(f.timestamp),
            is_buyer_maker: f.taker_side == Side::Sell,
            is_best_match: true,
        }
    }
}

/// One entry of `GET /api/v3/myTrades`: a trade as one of its sides saw it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct AccountTrade {
    symbol: String,
    id: u64,
    order_id: u64,
    order_list_id: i64,
    price: String,
    qty: String,
    quote_qty: String,
    /// What this side paid, at the quote asset's scale (`"0"` with
    /// accounts disabled).
    commission: String,
    /// The pair's quote asset.
    commission_asset: String,
    time: u64,
    is_buyer: bool,
    is_maker: bool,
    is_best_match: bool,
}

impl AccountTrade {
    /// Trade `f` as its maker (`maker` true) or its taker saw it; `fees`
    /// are the pair's rates, when the exchange charges fees; `list_id` the
    /// list of this side's order, if it is in one.
    pub(super) fn new(
        f: &FillRow,
        p: &PairConfig,
        maker: bool,
        fees: Option<Fees>,
        list_id: Option<proto::OrderId>,
    ) -> Self {
        let public = PublicTrade::new(f, p);
        AccountTrade {
            symbol: p.symbol.joined(),
            id: public.id,
            order_id: if maker {
                f.maker_order_id.0
            } else {
                f.taker_order_id.0
            },
            order_list_id: self::list_id(list_id),
            price: public.price,
            qty: public.qty,
            quote_qty: public.quote_qty,
            commission: commission_text(p, f.price, f.qty, rate(fees, maker)),
            commission_asset: quote_asset(p).to_string(),
            time: public.time,
            is_buyer: (f.taker_side == Side::Buy) != maker,
            is_maker: maker,
            is_best_match: true,
        }
    }
}

/// An order as `GET /api/v3/order`, `openOrders` and `allOrders` answer
/// it. A market order sized in quote has `origQty` 0 and its amount in
/// `origQuoteOrderQty`; a market order's `price` is 0. `workingTime` is -1
/// while a conditional order waits for its trigger or an OTO's pending
/// order for its working order. Binance's conditional fields appear only
/// for the orders they concern: `trailingDelta` and `trailingTime` for a
/// trailing stop, `goodTillDate` for a GTD order.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct OrderBody {
    symbol: String,
    order_id: u64,
    order_list_id: i64,
    client_order_id: String,
    price: String,
    orig_qty: String,
    executed_qty: String,
    cummulative_quote_qty: String,
    #[schema(value_type = super::openapi::OrderStatus, inline)]
    status: &'static str,
    #[schema(value_type = super::openapi::TimeInForceName, inline)]
    time_in_force: String,
    #[serde(rename = "type")]
    #[schema(value_type = super::openapi::OrderTypeName, inline)]
    order_type: String,
    #[schema(value_type = super::openapi::SideName, inline)]
    side: &'static str,
    stop_price: String,
    iceberg_qty: String,
    time: u64,
    update_time: u64,
    is_working: bool,
    working_time: i64,
    orig_quote_order_qty: String,
    #[schema(value_type = super::openapi::StpModeName, inline)]
    self_trade_prevention_mode: &'static str,
    /// Basis points; trailing stops only.
    #[serde(skip_serializing_if = "Option::is_none")]
    trailing_delta: Option<u32>,
    /// When the trailing stop started tracking the price (Unix ms), or -1;
    /// trailing stops only.
    #[serde(skip_serializing_if = "Option::is_none")]
    trailing_time: Option<i64>,
    /// When a GTD order expires (Unix ms); GTD orders only.
    #[serde(skip_serializing_if = "Option::is_none")]
    good_till_date: Option<u64>,
}

/// The client order id Binance would show: the order's own, or one made
/// from its id when it was placed without.
pub(crate) fn client_order_id(id: proto::OrderId, own: Option<&proto::ClientOrderId>) -> String {
    own.map_or_else(|| format!("x-{}", id.0), |c| c.as_str().to_string())
}

impl OrderBody {
    pub(super) fn new(o: &OrderRow, p: &PairConfig) -> Self {
        OrderBody::with_trailing_time(o, p, None)
    }

    /// [`OrderBody::new`] with the time a trailing stop started tracking,
    /// when the gateway's order view knows it.
    pub(super) fn with_trailing_time(
        o: &OrderRow,
        p: &PairConfig,
        trailing_since: Option<proto::Timestamp>,
    ) -> Self {
        let zero_price = Price(0).to_decimal(p.price_scale);
        OrderBody {
            symbol: p.symbol.joined(),
            order_id: o.order_id.0,
            order_list_id: list_id(o.order_list_id),
            client_order_id: client_order_id(o.order_id, o.client_order_id.as_ref()),
            price: o
                .price
                .map_or_else(|| zero_price.clone(), |x| x.to_decimal(p.price_scale)),
            orig_qty: o.orig_qty.unwrap_or(Qty(0)).to_decimal(p.qty_scale),
            executed_qty: o.executed_qty.to_decimal(p.qty_scale),
            cummulative_quote_qty: QuoteQty(o.cum_quote_qty).to_decimal(p.price_scale),
            status: o.status.as_str(),
            time_in_force: o.time_in_force.clone(),
            order_type: type_name(o),
            side: o.side.as_str(),
            stop_price: o
                .stop_price
                .map_or_else(|| zero_price.clone(), |x| x.to_decimal(p.price_scale)),
            iceberg_qty: o.iceberg_qty.unwrap_or(Qty(0)).to_decimal(p.qty_scale),
            time: ms(o.created_at),
            update_time: ms(o.updated_at),
            is_working: o.is_working(),
            working_time: o.working_time.map_or(-1, ms_signed),
            orig_quote_order_qty: QuoteQty(o.orig_quote_qty.unwrap_or(0)).to_decimal(p.price_scale),
            self_trade_prevention_mode: p.default_stp.as_str(),
            trailing_delta: o.trailing_delta,
            trailing_time: o
                .trailing_delta
                .map(|_| trailing_since.map_or(-1, ms_signed)),
            good_till_date: o.good_till.map(ms),
        }
    }
}

/// Binance's `orderListId`: the list's id, or -1.
pub(crate) fn list_id(id: Option<proto::OrderId>) -> i64 {
    id.map_or(-1, |l| i64::try_from(l.0).unwrap_or(i64::MAX))
}

/// Milliseconds as a signed field that may also say -1.
pub(crate) fn ms_signed(ts: proto::Timestamp) -> i64 {
    i64::try_from(ms(ts)).unwrap_or(i64::MAX)
}

/// An order's type as Binance names it: a post-only limit order is a
/// `LIMIT_MAKER`.
pub(crate) fn type_name(o: &OrderRow) -> String {
    if o.post_only && o.order_type == "LIMIT" {
        "LIMIT_MAKER".to_string()
    } else {
        o.order_type.clone()
    }
}
