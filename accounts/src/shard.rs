//! The shard: accounts, holds and the rules that move them (see the crate docs).

use std::collections::{BTreeMap, BTreeSet};

use proto::{
    ClientOrderId, CommandKind, EventBody, Fees, OrderId, OrderSize, OrderType, PairConfig, Price,
    Qty, Seq, Side, Symbol, Trade, UserId,
};
use serde::{Deserialize, Serialize};

use crate::types::{
    Amend, AssetId, AssetInfo, AssetTotals, Balance, ConfigError, Duplicate, Hold, HoldKind, Input,
    ListHold, Output, Place, Reference, RiskCode, Role,
};

/// Basis points in one.
const BPS: u128 = 10_000;

/// One pair as the shard sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PairEntry {
    pub(crate) symbol: Symbol,
    pub(crate) base: AssetId,
    pub(crate) quote: AssetId,
    pub(crate) qty_scale: u8,
    pub(crate) price_scale: u8,
    /// One base quantity unit of the pair, in units of the base asset.
    pub(crate) base_unit: u128,
    /// One unit of `price * qty` of the pair, in units of the quote asset.
    pub(crate) quote_unit: u128,
    /// The last engine event settled; older ones are duplicates.
    pub(crate) last_seq: Seq,
    /// The rates orders placed now are charged: the pair's config's, then
    /// each `PairChanged` settled (an operator's change, in the pair's log
    /// order). Orders keep the rates they were placed with ([`Hold`]).
    pub(crate) fees: Fees,
}

impl PairEntry {
    /// The scales that make this entry (what [`Shard::new`] reads of a
    /// pair's config).
    fn config(&self) -> PairConfig {
        PairConfig {
            symbol: self.symbol,
            price_scale: self.price_scale,
            qty_scale: self.qty_scale,
            fees: self.fees,
            ..PairConfig::simple(self.symbol)
        }
    }

    /// One unit of the amounts the pair's orders count in, in units of the
    /// asset a `side` order holds.
    fn unit(&self, side: Side) -> u128 {
        match side {
            Side::Buy => self.quote_unit,
            Side::Sell => self.base_unit,
        }
    }
}

/// The most decimals an asset may have beyond a pair's own amounts: keeps
/// `price * qty` (at most `i64::MAX`) times its unit far inside `u128`.
const MAX_UNIT_DIGITS: u8 = 18;

/// Everything a snapshot carries: ordered maps only, so its encoding (and
/// so the state hash) is canonical.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct State {
    pub(crate) assets: Vec<AssetInfo>,
    pub(crate) pairs: Vec<PairEntry>,
    pub(crate) balances: BTreeMap<(UserId, AssetId), Balance>,
    /// The fee account of each asset, by asset index.
    pub(crate) fee_accounts: Vec<u128>,
    pub(crate) totals: Vec<AssetTotals>,
    /// Keyed by pair index and order id.
    pub(crate) holds: BTreeMap<(u16, OrderId), Hold>,
    pub(crate) references: BTreeSet<Reference>,
    /// The open orders that have a client order id, by pair index, owner
    /// and client id: amends and cancels may name an order that way.
    pub(crate) clients: BTreeMap<(u16, UserId, ClientOrderId), OrderId>,
    /// The order lists with an order still open, by pair index and list id.
    pub(crate) lists: BTreeMap<(u16, OrderId), ListHold>,
}

/// The state machine of one risk shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    pub(crate) state: State,
}

/// Whether settling `event` can change a balance, a hold or a rate: a
/// trade, the end of an order (canceled for any reason, expired included,
/// or refused by the engine, alone or with its list), an amend's answer and
/// a change of the pair (its fee rates for the orders placed after it). The
/// others (an
/// order or list accepted, a trigger fired, an OTO's pending order
/// released, a list done, a book change, the summary of a cancel-all)
/// settle to nothing: every order they concern is held already, and each
/// end of one is an event of its own. So a risk stage need not log them:
/// skipping them keeps every balance, and `last_seq` still only grows.
pub fn moves_money(event: &proto::Event) -> bool {
    match &event.body {
        EventBody::Trade(_)
        | EventBody::Canceled(_)
        | EventBody::Amended(_)
        | EventBody::PairChanged(_) => true,
        EventBody::Rejected(r) => matches!(
            r.command,
            CommandKind::NewOrder | CommandKind::Amend | CommandKind::NewOrderList
        ),
        EventBody::Accepted(_)
        | EventBody::BookDelta(_)
        | EventBody::CanceledAll(_)
        | EventBody::Triggered(_)
        | EventBody::Released(_)
        | EventBody::ListAccepted(_)
        | EventBody::ListDone(_) => false,
    }
}

/// `floor(notional * bps / 10_000)` without an intermediate product that
/// could overflow: exact for every `u128` notional.
pub(crate) fn fee(notional: u128, bps: u16) -> u128 {
    let bps = u128::from(bps);
    notional / BPS * bps + notional % BPS * bps / BPS
}

/// What a buy of `qty` at `price` may cost at most, fee at `bps` included.
fn buy_need(price: Price, qty: Qty, bps: u16) -> Option<u128> {
    let notional = u128::from(price.0) * u128::from(qty.0);
    notional.checked_add(fee(notional, bps))
}

impl Hold {
    /// What the order needs locked if it is `qty` in total at `price`, in
    /// units of its asset, of which one of the pair's own is `unit`.
    fn need_at(&self, qty: Qty, price: Price, unit: u128) -> Option<u128> {
        let filled = self.qty.0.saturating_sub(self.remaining.0);
        let rest = Qty(qty.0.saturating_sub(filled));
        match (self.side, self.kind) {
            (Side::Buy, HoldKind::Limit { .. }) => {
                buy_need(price, rest, self.fees.taker_bps)?.checked_mul(unit)
            }
            (Side::Sell, _) => u128::from(rest.0).checked_mul(unit),
            // Spent down, never re-sized.
            (Side::Buy, _) => Some(self.amount),
        }
    }

    /// What the order needs now: enough for its current state and for every
    /// amend the engine may still apply.
    fn need(&self, unit: u128) -> Option<u128> {
        let price = match self.kind {
            HoldKind::Limit { price } => price,
            _ => Price::ZERO,
        };
        let mut need = self.need_at(self.qty, price, unit)?;
        for &(q, p) in &self.pending {
            need = need.max(self.need_at(q, p, unit)?);
        }
        Some(need)
    }

    /// The largest quantity and price among the current state and pending amends.
    fn widest(&self, price: Price) -> (Qty, Price) {
        self.pending
            .iter()
            .fold((self.qty, price), |(q, p), &(pq, pp)| {
                (q.max(pq), p.max(pp))
            })
    }
}

impl Shard {
    /// A shard trading `pairs`, with no accounts yet. Each asset counts in
    /// the finest unit any of its pairs uses: a base asset at the pair's
    /// `qty_scale`, a quote asset at `price_scale + qty_scale` (where
    /// `price * qty` is exact); where pairs differ, the coarser ones
    /// convert exactly by a power of ten.
    pub fn new(pairs: &[PairConfig]) -> Result<Shard, ConfigError> {
        let mut assets: Vec<AssetInfo> = Vec::new();
        let mut entries: Vec<PairEntry> = Vec::new();
        for p in pairs {
            let (base, quote) = split_symbol(p.symbol)?;
            if entries.iter().any(|e| e.symbol == p.symbol)
                || entries.len() >= usize::from(u16::MAX)
            {
                return Err(ConfigError::DuplicatePair(p.symbol));
            }
            let quote_scale = p
                .price_scale
                .checked_add(p.qty_scale)
                .ok_or(ConfigError::TooLarge(p.symbol))?;
            let base = asset_index(&mut assets, &base, p.qty_scale, p.symbol)?;
            let quote = asset_index(&mut assets, &quote, quote_scale, p.symbol)?;
            entries.push(PairEntry {
                symbol: p.symbol,
                base,
                quote,
                qty_scale: p.qty_scale,
                price_scale: p.price_scale,
                base_unit: 1,
                quote_unit: 1,
                last_seq: Seq(0),
                fees: p.fees,
            });
        }
        // Every asset's scale is known only now: the units follow.
        for e in &mut entries {
            let scale = |a: AssetId| assets[usize::from(a.0)].scale;
            let unit = |asset_scale: u8, own: u8| {
                let digits = asset_scale - own;
                (digits <= MAX_UNIT_DIGITS)
                    .then(|| proto::pow10(digits))
                    .ok_or(ConfigError::TooLarge(e.symbol))
            };
            e.base_unit = unit(scale(e.base), e.qty_scale)?;
            e.quote_unit = unit(scale(e.quote), e.price_scale + e.qty_scale)?;
        }
        let n = assets.len();
        Ok(Shard {
            state: State {
                assets,
                pairs: entries,
                balances: BTreeMap::new(),
                fee_accounts: vec![0; n],
                totals: vec![AssetTotals::default(); n],
                holds: BTreeMap::new(),
                references: BTreeSet::new(),
                clients: BTreeMap::new(),
                lists: BTreeMap::new(),
            },
        })
    }

    /// Lists `pair` on a running shard: its new assets are appended with
    /// nothing in them, and the assets it shares keep their ids and units.
    /// The result is the shard [`Shard::new`] would build with `pair` last,
    /// so a restart that lists every pair at once restores the same state.
    /// An existing asset the pair would count more finely is refused
    /// ([`ConfigError::FinerUnit`]); nothing changes on any error.
    pub fn add_pair(&mut self, pair: &PairConfig) -> Result<(), ConfigError> {
        if self.state.pairs.iter().any(|e| e.symbol == pair.symbol) {
            return Err(ConfigError::DuplicatePair(pair.symbol));
        }
        let mut all: Vec<PairConfig> = self.state.pairs.iter().map(PairEntry::config).collect();
        all.push(*pair);
        let grown = Shard::new(&all)?;
        for (old, new) in self.state.assets.iter().zip(&grown.state.assets) {
            if old.scale != new.scale {
                return Err(ConfigError::FinerUnit {
                    pair: pair.symbol,
                    asset: old.name.clone(),
                    scale: old.scale,
                    needed: new.scale,
                });
            }
        }
        let added = grown.state.assets.len() - self.state.assets.len();
        let Some(entry) = grown.state.pairs.last() else {
            return Err(ConfigError::DuplicatePair(pair.symbol));
        };
        self.state.pairs.push(entry.clone());
        let s = &mut self.state;
        s.assets = grown.state.assets;
        s.fee_accounts.extend(std::iter::repeat_n(0, added));
        s.totals
            .extend(std::iter::repeat_n(AssetTotals::default(), added));
        Ok(())
    }

    /// The rates an order placed on `pair` now is charged, if the shard
    /// trades it.
    pub fn fees(&self, pair: Symbol) -> Option<Fees> {
        let pi = self.pair_index(pair)?;
        Some(self.state.pairs[usize::from(pi)].fees)
    }

    /// The asset table, indexed by [`AssetId`].
    pub fn assets(&self) -> &[AssetInfo] {
        &self.state.assets
    }

    /// The id of the asset called `name`.
    pub fn asset_id(&self, name: &str) -> Option<AssetId> {
        let i = self.state.assets.iter().position(|a| a.name == name)?;
        u16::try_from(i).ok().map(AssetId)
    }

    /// The base and quote asset of `pair`.
    pub fn pair_assets(&self, pair: Symbol) -> Option<(AssetId, AssetId)> {
        let p = self.state.pairs.iter().find(|p| p.symbol == pair)?;
        Some((p.base, p.quote))
    }

    /// The last engine event of `pair` settled.
    pub fn last_seq(&self, pair: Symbol) -> Option<Seq> {
        self.state
            .pairs
            .iter()
            .find(|p| p.symbol == pair)
            .map(|p| p.last_seq)
    }

    /// `user`'s account in `asset` (zero if it has none).
    pub fn balance(&self, user: UserId, asset: AssetId) -> Balance {
        self.state
            .balances
            .get(&(user, asset))
            .copied()
            .unwrap_or_default()
    }

    /// Every account with its owner and asset, in order.
    pub fn balances(&self) -> impl Iterator<Item = (UserId, AssetId, Balance)> + '_ {
        self.state.balances.iter().map(|(&(u, a), &b)| (u, a, b))
    }

    /// The fee account of `asset`.
    pub fn fee_account(&self, asset: AssetId) -> u128 {
        self.state
            .fee_accounts
            .get(usize::from(asset.0))
            .copied()
            .unwrap_or(0)
    }

    /// The flows that changed the shard's total of `asset`.
    pub fn totals(&self, asset: AssetId) -> AssetTotals {
        self.state
            .totals
            .get(usize::from(asset.0))
            .copied()
            .unwrap_or_default()
    }

    /// The hold of an open order of `pair`.
    pub fn hold(&self, pair: Symbol, order_id: OrderId) -> Option<&Hold> {
        let pi = self.pair_index(pair)?;
        self.state.holds.get(&(pi, order_id))
    }

    /// The open order of `user` on `pair` with client order id `client`.
    pub fn order_by_client(
        &self,
        pair: Symbol,
        user: UserId,
        client: ClientOrderId,
    ) -> Option<OrderId> {
        let pi = self.pair_index(pair)?;
        self.state.clients.get(&(pi, user, client)).copied()
    }

    /// Number of open orders holding funds.
    pub fn open_holds(&self) -> usize {
        self.state.holds.len()
    }

    /// An order list of `pair` with an order still open.
    pub fn list_hold(&self, pair: Symbol, list_id: OrderId) -> Option<&ListHold> {
        let pi = self.pair_index(pair)?;
        self.state.lists.get(&(pi, list_id))
    }

    /// Every order list with an order still open, with its pair and id.
    pub fn list_holds(&self) -> impl Iterator<Item = (Symbol, OrderId, &ListHold)> + '_ {
        self.state
            .lists
            .iter()
            .map(|(&(pi, id), l)| (self.state.pairs[usize::from(pi)].symbol, id, l))
    }

    pub(crate) fn pair_index(&self, pair: Symbol) -> Option<u16> {
        let i = self.state.pairs.iter().position(|p| p.symbol == pair)?;
        u16::try_from(i).ok()
    }

    /// The budget a market buy of `pair` by base quantity gets from its
    /// owner's free quote balance: the largest `b` (in the unit of
    /// [`proto::OrderSize::Quote`]) at most `cap` whose hold, `b` plus the
    /// taker fee on it at `taker_bps`, the free balance covers. So a market
    /// buy by quantity may spend up to the whole free quote balance; what
    /// its fills do not spend is released when it ends, at once (it never
    /// rests). Pure: it changes nothing; the [`Input::Place`] carrying the
    /// budget locks it. Refused with `InsufficientBalance` when no budget
    /// above zero fits.
    pub fn market_buy_budget(
        &self,
        user: UserId,
        pair: Symbol,
        taker_bps: u16,
        cap: proto::QuoteQty,
    ) -> Result<proto::QuoteQty, RiskCode> {
        self.market_buy_budget_beside(user, pair, taker_bps, cap, 0)
    }

    /// [`Shard::market_buy_budget`] out of the free quote balance less
    /// `reserved` (in the quote asset's unit): what another order placed
    /// with it in one input (an OTO's working order) locks first.
    pub fn market_buy_budget_beside(
        &self,
        user: UserId,
        pair: Symbol,
        taker_bps: u16,
        cap: proto::QuoteQty,
        reserved: u128,
    ) -> Result<proto::QuoteQty, RiskCode> {
        let pi = self.pair_index(pair).ok_or(RiskCode::UnknownPair)?;
        let p = &self.state.pairs[usize::from(pi)];
        let free = self.balance(user, p.quote).free.saturating_sub(reserved);
        let (unit, quote_unit) = (proto::pow10(p.qty_scale), p.quote_unit);
        let hold = |b: u64| {
            let n = u128::from(b) * unit;
            n.checked_add(fee(n, taker_bps))?.checked_mul(quote_unit)
        };
        let fits = |b: u64| hold(b).is_some_and(|h| h <= free);
        // `hold` grows with `b`: the largest fitting budget by bisection.
        let (mut lo, mut hi) = (0u64, cap.0);
        if fits(hi) {
            lo = hi;
        }
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if fits(mid) { lo = mid } else { hi = mid - 1 }
        }
        if lo == 0 {
            return Err(RiskCode::InsufficientBalance);
        }
        Ok(proto::QuoteQty(lo))
    }

    /// Applies one input, appending what it caused to `out` (at least one output).
    pub fn apply(&mut self, input: &Input, out: &mut Vec<Output>) {
        let result = match input {
            Input::Deposit {
                user,
                asset,
                amount,
                reference,
            } => self.deposit(*user, *asset, *amount, *reference, out),
            Input::Withdraw {
                user,
                asset,
                amount,
                reference,
            } => self.withdraw(*user, *asset, *amount, *reference, out),
            Input::Place(p) => self.place(p, out),
            Input::Amend(a) => self.amend(a, out),
            Input::Settle(e) => self.settle(e, out),
            Input::PlaceList(l) => self.place_list(l, out),
        };
        if let Err(code) = result {
            out.push(Output::Rejected(code));
        }
    }

    /// [`Shard::apply`] returning a fresh vector.
    pub fn apply_one(&mut self, input: &Input) -> Vec<Output> {
        let mut out = Vec::new();
        self.apply(input, &mut out);
        out
    }

    fn known_asset(&self, asset: AssetId) -> Result<usize, RiskCode> {
        let i = usize::from(asset.0);
        if i < self.state.assets.len() {
            Ok(i)
        } else {
            Err(RiskCode::UnknownAsset)
        }
    }

    /// What a deposit and a withdrawal check first: the asset's index, or
    /// `None` once a reused reference was answered as a duplicate.
    fn movement(
        &self,
        asset: AssetId,
        amount: u128,
        reference: Reference,
        out: &mut Vec<Output>,
    ) -> Result<Option<usize>, RiskCode> {
        let i = self.known_asset(asset)?;
        if amount == 0 {
            return Err(RiskCode::ZeroAmount);
        }
        if self.state.references.contains(&reference) {
            out.push(Output::Duplicate(Duplicate::Reference(reference)));
            return Ok(None);
        }
        Ok(Some(i))
    }

    fn deposit(
        &mut self,
        user: UserId,
        asset: AssetId,
        amount: u128,
        reference: Reference,
        out: &mut Vec<Output>,
    ) -> Result<(), RiskCode> {
        let Some(i) = self.movement(asset, amount, reference, out)? else {
            return Ok(());
        };
        let free = self.balance(user, asset).free.checked_add(amount);
        // The audit sums signed flows: an asset's deposits stay within
        // `i128`, so every sum it takes is exact.
        let total = self.state.totals[i]
            .deposits
            .checked_add(amount)
            .filter(|&t| i128::try_from(t).is_ok());
        let (Some(free), Some(total)) = (free, total) else {
            return Err(RiskCode::Overflow);
        };
        self.state.balances.entry((user, asset)).or_default().free = free;
        self.state.totals[i].deposits = total;
        self.state.references.insert(reference);
        out.push(Output::Deposited {
            user,
            asset,
            amount,
            reference,
        });
        Ok(())
    }

    fn withdraw(
        &mut self,
        user: UserId,
        asset: AssetId,
        amount: u128,
        reference: Reference,
        out: &mut Vec<Output>,
    ) -> Result<(), RiskCode> {
        let Some(i) = self.movement(asset, amount, reference, out)? else {
            return Ok(());
        };
        let free = self
            .balance(user, asset)
            .free
            .checked_sub(amount)
            .ok_or(RiskCode::InsufficientBalance)?;
        // Withdrawals never exceed deposits plus receipts, so this cannot overflow.
        let total = self.state.totals[i].withdrawals.checked_add(amount);
        let total = total.ok_or(RiskCode::Overflow)?;
        self.state.balances.entry((user, asset)).or_default().free = free;
        self.state.totals[i].withdrawals = total;
        self.state.references.insert(reference);
        out.push(Output::Withdrew {
            user,
            asset,
            amount,
            reference,
        });
        Ok(())
    }

    /// The hold a new order needs: its kind, asset, amount (in the asset's
    /// unit) and base quantity.
    pub(crate) fn size_hold(
        &self,
        pi: u16,
        p: &Place,
    ) -> Result<(HoldKind, AssetId, u128, Qty), RiskCode> {
        let (kind, asset, native, qty) = self.size_hold_native(pi, p)?;
        let unit = self.state.pairs[usize::from(pi)].unit(p.order.side);
        let amount = native.checked_mul(unit).ok_or(RiskCode::Overflow)?;
        Ok((kind, asset, amount, qty))
    }

    /// What `order` would lock on `pair` at `fees`: its asset and amount in
    /// the asset's unit. Pure.
    pub fn order_need(
        &self,
        pair: Symbol,
        user: UserId,
        order: &proto::NewOrder,
        fees: crate::Fees,
    ) -> Result<(AssetId, u128), RiskCode> {
        let pi = self.pair_index(pair).ok_or(RiskCode::UnknownPair)?;
        let place = Place {
            pair,
            user,
            order: *order,
            fees,
        };
        let (_, asset, amount, _) = self.size_hold(pi, &place)?;
        Ok((asset, amount))
    }

    /// [`Shard::size_hold`] in the pair's own units. A conditional order
    /// holds as the order it works as once triggered (its limit price, or a
    /// market order's); an iceberg or GTD order as its limit order.
    fn size_hold_native(
        &self,
        pi: u16,
        p: &Place,
    ) -> Result<(HoldKind, AssetId, u128, Qty), RiskCode> {
        let pair = &self.state.pairs[usize::from(pi)];
        let quote_exact = |q: u64| u128::from(q) * proto::pow10(pair.qty_scale);
        let with_fee = |n: u128| {
            n.checked_add(fee(n, p.fees.taker_bps))
                .ok_or(RiskCode::Overflow)
        };
        let o = &p.order;
        match (o.side, o.order_type.working(), o.size) {
            (Side::Buy, OrderType::Limit { price }, OrderSize::Base(q)) => {
                let need = buy_need(price, q, p.fees.taker_bps).ok_or(RiskCode::Overflow)?;
                Ok((HoldKind::Limit { price }, pair.quote, need, q))
            }
            // A market buy by quote; a limit one is refused by the engine,
            // and this bounds it as well.
            (Side::Buy, _, OrderSize::Quote(q)) => Ok((
                HoldKind::MarketBuy,
                pair.quote,
                with_fee(quote_exact(q.0))?,
                Qty::ZERO,
            )),
            // Nothing would bound what it spends.
            (Side::Buy, OrderType::Market, OrderSize::Base(_)) => Err(RiskCode::BudgetRequired),
            // The engine spends at most `budget` on fills; the taker fee on
            // the whole budget covers the fees of any split of it.
            (Side::Buy, OrderType::Market, OrderSize::BaseWithin { qty, budget }) => Ok((
                HoldKind::MarketBuy,
                pair.quote,
                with_fee(quote_exact(budget.0))?,
                qty,
            )),
            (Side::Sell, OrderType::Limit { price }, OrderSize::Base(q)) => {
                Ok((HoldKind::Limit { price }, pair.base, u128::from(q.0), q))
            }
            (Side::Sell, OrderType::Market, OrderSize::Base(q)) => {
                Ok((HoldKind::MarketSell, pair.base, u128::from(q.0), q))
            }
            // `working()` is never conditional.
            (_, OrderType::Conditional { .. }, _) => Err(RiskCode::UnsupportedOrder),
            // Only market buys may be sized in quote; the engine refuses
            // this too, and its base need is unknowable.
            (Side::Sell, _, OrderSize::Quote(_)) => Err(RiskCode::UnsupportedOrder),
            // A budget is for market buys only; the engine refuses the rest.
            (_, _, OrderSize::BaseWithin { .. }) => Err(RiskCode::UnsupportedOrder),
        }
    }

    fn place(&mut self, p: &Place, out: &mut Vec<Output>) -> Result<(), RiskCode> {
        let pi = self.pair_index(p.pair).ok_or(RiskCode::UnknownPair)?;
        crate::lists::check_fees(p.fees)?;
        let key = (pi, p.order.order_id);
        if self.state.holds.contains_key(&key) {
            return Err(RiskCode::DuplicateOrder);
        }
        let (kind, asset, amount, qty) = self.size_hold(pi, p)?;
        self.lock(p.user, asset, amount)?;
        self.state.holds.insert(
            key,
            Hold {
                user: p.user,
                side: p.order.side,
                kind,
                qty,
                remaining: qty,
                fees: p.fees,
                amount,
                pending: Vec::new(),
                client: p.order.client_order_id,
                list: None,
                conditional: p.order.order_type.trigger().is_some(),
            },
        );
        if let Some(client) = p.order.client_order_id {
            // The engine keeps client ids unique among open orders; a later
            // order may reuse one as soon as the engine ended the earlier,
            // before its settlement arrives here: the newest one is meant.
            self.state
                .clients
                .insert((pi, p.user, client), p.order.order_id);
        }
        out.push(Output::Locked {
            user: p.user,
            asset,
            pair: p.pair,
            order_id: p.order.order_id,
            amount,
        });
        Ok(())
    }

    /// Moves `amount` from free to locked, or refuses without a change.
    pub(crate) fn lock(
        &mut self,
        user: UserId,
        asset: AssetId,
        amount: u128,
    ) -> Result<(), RiskCode> {
        let b = self.balance(user, asset);
        let free = b.free.checked_sub(amount);
        let free = free.ok_or(RiskCode::InsufficientBalance)?;
        let locked = b.locked.checked_add(amount).ok_or(RiskCode::Overflow)?;
        if amount > 0 {
            let e = self.state.balances.entry((user, asset)).or_default();
            e.free = free;
            e.locked = locked;
        }
        Ok(())
    }

    /// An amend up locks the difference now. An amend down releases nothing
    /// yet: the engine may still refuse it, and until it confirms with
    /// `Amended` the order may trade at its current size. A conditional
    /// order waiting for its trigger is amended alike (a change of its stop
    /// price alone needs nothing more); one that works as a market order is
    /// sized by its quantity (a sell) or not at all (a buy: its hold is
    /// its quote amount or budget, which no amend changes).
    fn amend(&mut self, a: &Amend, out: &mut Vec<Output>) -> Result<(), RiskCode> {
        let pi = self.pair_index(a.pair).ok_or(RiskCode::UnknownPair)?;
        let key = (pi, a.order_id);
        let hold = self.state.holds.get(&key).ok_or(RiskCode::UnknownOrder)?;
        if hold.user != a.user {
            return Err(RiskCode::NotOwner);
        }
        let price = match hold.kind {
            HoldKind::Limit { price } => price,
            HoldKind::MarketSell | HoldKind::MarketBuy if hold.conditional => Price::ZERO,
            HoldKind::MarketSell | HoldKind::MarketBuy => return Err(RiskCode::NotAmendable),
        };
        let (widest_qty, widest_price) = hold.widest(price);
        let qty = a.new_qty.unwrap_or(widest_qty);
        let price = a.new_price.unwrap_or(widest_price);
        if qty.0 <= hold.qty.0.saturating_sub(hold.remaining.0) {
            return Err(RiskCode::AmendBelowFilled);
        }
        let mut wider = hold.clone();
        wider.pending.push((qty, price));
        let unit = self.state.pairs[usize::from(pi)].unit(hold.side);
        let need = wider.need(unit).ok_or(RiskCode::Overflow)?;
        wider.amount = wider.amount.max(need);
        let (user, asset) = (hold.user, self.hold_asset(pi, hold.side));
        // An order of an OCO list locks through its list's shared hold.
        let shared = self.shared_by(pi, hold);
        let extra = match shared {
            Some(list) => {
                let list_need = self.list_need(pi, list, Some((a.order_id, wider.amount)));
                let held = self.state.lists.get(&(pi, list)).map_or(0, |l| l.amount);
                list_need.unwrap_or(0).saturating_sub(held)
            }
            None => need.saturating_sub(hold.amount),
        };
        self.lock(user, asset, extra)?;
        if let Some(l) = shared.and_then(|list| self.state.lists.get_mut(&(pi, list))) {
            l.amount += extra;
        }
        self.state.holds.insert(key, wider);
        out.push(Output::Locked {
            user,
            asset,
            pair: a.pair,
            order_id: a.order_id,
            amount: extra,
        });
        Ok(())
    }

    fn hold_asset(&self, pi: u16, side: Side) -> AssetId {
        let p = &self.state.pairs[usize::from(pi)];
        match side {
            Side::Buy => p.quote,
            Side::Sell => p.base,
        }
    }

    fn settle(&mut self, e: &proto::Event, out: &mut Vec<Output>) -> Result<(), RiskCode> {
        let pi = self.pair_index(e.pair).ok_or(RiskCode::UnknownPair)?;
        let entry = &mut self.state.pairs[usize::from(pi)];
        if e.seq <= entry.last_seq {
            out.push(Output::Duplicate(Duplicate::Settle {
                pair: e.pair,
                seq: e.seq,
            }));
            return Ok(());
        }
        entry.last_seq = e.seq;
        match &e.body {
            EventBody::Trade(t) => {
                self.settle_side(pi, t, Role::Maker, out);
                self.settle_side(pi, t, Role::Taker, out);
            }
            EventBody::Canceled(c) => self.end(pi, c.order_id, c.user, out),
            EventBody::Rejected(r) => match (r.command, r.order_id) {
                (CommandKind::NewOrder, Some(id)) => self.end(pi, id, r.user, out),
                (CommandKind::Amend, Some(id)) => self.amend_answered(pi, id, r.user, None, out),
                (CommandKind::NewOrderList, Some(id)) => self.list_refused(pi, id, r.user, out),
                _ => {}
            },
            EventBody::Amended(a) => {
                let state = (a.qty, a.remaining, a.price);
                self.amend_answered(pi, a.order_id, a.user, Some(state), out);
            }
            EventBody::PairChanged(c) => {
                self.state.pairs[usize::from(pi)].fees = c.config.fees;
            }
            // Nothing to settle (see `moves_money`).
            EventBody::Accepted(_)
            | EventBody::BookDelta(_)
            | EventBody::CanceledAll(_)
            | EventBody::Triggered(_)
            | EventBody::Released(_)
            | EventBody::ListAccepted(_)
            | EventBody::ListDone(_) => {}
        }
        out.push(Output::Settled {
            pair: e.pair,
            seq: e.seq,
        });
        Ok(())
    }

    /// The engine answered the oldest pending amend of an order: applied
    /// (with the order's new state) or refused. Either way the hold shrinks
    /// to what is still needed.
    fn amend_answered(
        &mut self,
        pi: u16,
        id: OrderId,
        user: UserId,
        applied: Option<(Qty, Qty, Price)>,
        out: &mut Vec<Output>,
    ) {
        let Some(hold) = self.state.holds.get_mut(&(pi, id)) else {
            return;
        };
        if hold.user != user {
            return;
        }
        if !hold.pending.is_empty() {
            hold.pending.remove(0);
        }
        match (applied, hold.kind) {
            (Some((qty, remaining, price)), HoldKind::Limit { .. }) => {
                hold.qty = qty;
                hold.remaining = remaining;
                hold.kind = HoldKind::Limit { price };
            }
            // A waiting conditional market sell: its price is no limit.
            (Some((qty, remaining, _)), HoldKind::MarketSell) => {
                hold.qty = qty;
                hold.remaining = remaining;
            }
            // A market buy's size is not a base quantity to resize by.
            _ => {}
        }
        self.trim(pi, id, out);
    }

    /// Releases what an open order's hold holds beyond its need (for an
    /// order of an OCO list: cuts its own need, then its list's hold).
    fn trim(&mut self, pi: u16, id: OrderId, out: &mut Vec<Output>) {
        let shared = self
            .state
            .holds
            .get(&(pi, id))
            .and_then(|h| self.shared_by(pi, h));
        let pair = &self.state.pairs[usize::from(pi)];
        let Some(hold) = self.state.holds.get_mut(&(pi, id)) else {
            return;
        };
        let need = hold.need(pair.unit(hold.side)).unwrap_or(hold.amount);
        let excess = hold.amount.saturating_sub(need);
        hold.amount -= excess;
        let (user, side) = (hold.user, hold.side);
        if let Some(list) = shared {
            self.trim_list(pi, list, out);
        } else if excess > 0 {
            self.release(pi, id, user, side, excess, out);
        }
    }

    pub(crate) fn release(
        &mut self,
        pi: u16,
        order_id: OrderId,
        user: UserId,
        side: Side,
        amount: u128,
        out: &mut Vec<Output>,
    ) {
        let asset = self.hold_asset(pi, side);
        let b = self.state.balances.entry((user, asset)).or_default();
        // A hold's amount is always part of its owner's locked (see audit).
        b.locked = b.locked.saturating_sub(amount);
        b.free = b.free.saturating_add(amount);
        out.push(Output::Released {
            user,
            asset,
            pair: self.state.pairs[usize::from(pi)].symbol,
            order_id,
            amount,
        });
    }

    /// The order ended: all of its hold goes back to free (for an order of
    /// an OCO list: its list's hold is cut to the other order's need, or
    /// released if that one ended too).
    pub(crate) fn end(&mut self, pi: u16, id: OrderId, user: UserId, out: &mut Vec<Output>) {
        let key = (pi, id);
        if self.state.holds.get(&key).is_none_or(|h| h.user != user) {
            return;
        }
        let shared = self
            .state
            .holds
            .get(&key)
            .and_then(|h| self.shared_by(pi, h));
        let Some(hold) = self.state.holds.remove(&key) else {
            return;
        };
        if let Some(client) = hold.client {
            let index = (pi, hold.user, client);
            if self.state.clients.get(&index) == Some(&id) {
                self.state.clients.remove(&index);
            }
        }
        if shared.is_none() && hold.amount > 0 {
            self.release(pi, id, hold.user, hold.side, hold.amount, out);
        }
        if let Some(list) = hold.list {
            self.trim_list(pi, list, out);
        }
    }

    /// Settles one side of a trade if this shard holds its order.
    fn settle_side(&mut self, pi: u16, t: &Trade, role: Role, out: &mut Vec<Output>) {
        let (id, user, ended) = match role {
            Role::Maker => (t.maker_order_id, t.maker_user, t.maker_remaining.is_zero()),
            Role::Taker => (
                t.taker_order_id,
                t.taker_user,
                matches!(
                    t.taker_remaining,
                    OrderSize::Base(Qty::ZERO) | OrderSize::Quote(proto::QuoteQty::ZERO)
                ),
            ),
        };
        let key = (pi, id);
        let Some(hold) = self.state.holds.get(&key).filter(|h| h.user == user) else {
            return;
        };
        let (side, fees) = (hold.side, hold.fees);
        let bps = match role {
            Role::Maker => fees.maker_bps,
            Role::Taker => fees.taker_bps,
        };
        let pair = &self.state.pairs[usize::from(pi)];
        let (symbol, base_asset, quote_asset) = (pair.symbol, pair.base, pair.quote);
        // In the pair's own units, then exactly in the assets' (the fee
        // too, so the fee account gets exactly what is charged).
        let native = u128::from(t.price.0) * u128::from(t.qty.0);
        let base = u128::from(t.qty.0).saturating_mul(pair.base_unit);
        let quote = native.saturating_mul(pair.quote_unit);
        let charged = fee(native, bps).saturating_mul(pair.quote_unit);
        // Settlement cannot refuse what the engine did, so its sums must not
        // fail. They stay far below `u128::MAX` (the engine's value range
        // keeps a notional near `i64::MAX` at the quote scale), and a
        // saturation would break conservation, which the audit reports.
        let (paid_asset, paid, got_asset, got) = match side {
            Side::Buy => (quote_asset, quote.saturating_add(charged), base_asset, base),
            Side::Sell => (base_asset, base, quote_asset, quote - charged),
        };
        self.spend_hold(key, user, paid_asset, paid);
        credit(&mut self.state, user, got_asset, got);
        let fa = &mut self.state.fee_accounts[usize::from(quote_asset.0)];
        *fa = fa.saturating_add(charged);
        let (sent, received) = match side {
            Side::Buy => ((quote_asset, quote), (base_asset, base)),
            Side::Sell => ((base_asset, base), (quote_asset, quote)),
        };
        let totals = &mut self.state.totals;
        let s = &mut totals[usize::from(sent.0.0)].sent;
        *s = s.saturating_add(sent.1);
        let r = &mut totals[usize::from(received.0.0)].received;
        *r = r.saturating_add(received.1);
        out.push(Output::Filled {
            user,
            pair: symbol,
            order_id: id,
            trade_id: t.trade_id,
            role,
            side,
            base,
            quote,
            fee: charged,
        });
        self.after_fill(pi, id, role, t, ended, out);
    }

    /// Pays `amount` out of an order's hold. Every hold covers what its order
    /// can still cost (a market buy by base included: the engine never spends
    /// beyond its budget), so the hold always suffices; were it ever short,
    /// the unpaid part would show as a conservation failure in the audit
    /// rather than be taken from elsewhere.
    fn spend_hold(&mut self, key: (u16, OrderId), user: UserId, asset: AssetId, amount: u128) {
        let shared = self
            .state
            .holds
            .get(&key)
            .and_then(|h| self.shared_by(key.0, h));
        let Some(hold) = self.state.holds.get_mut(&key) else {
            return;
        };
        let own = hold.amount.min(amount);
        hold.amount -= own;
        // An order of an OCO list pays from its list's hold (its own amount
        // only tracks its need).
        let from_hold = match shared.and_then(|list| self.state.lists.get_mut(&(key.0, list))) {
            Some(l) => {
                let paid = l.amount.min(amount);
                l.amount -= paid;
                paid
            }
            None => own,
        };
        let b = self.state.balances.entry((user, asset)).or_default();
        b.locked = b.locked.saturating_sub(from_hold);
    }

    /// Updates an order's open quantity after a fill; ends it or trims its hold.
    fn after_fill(
        &mut self,
        pi: u16,
        id: OrderId,
        role: Role,
        t: &Trade,
        ended: bool,
        out: &mut Vec<Output>,
    ) {
        if let Some(hold) = self.state.holds.get_mut(&(pi, id)) {
            match (role, t.taker_remaining) {
                (Role::Maker, _) => hold.remaining = t.maker_remaining,
                (Role::Taker, OrderSize::Base(r) | OrderSize::BaseWithin { qty: r, .. }) => {
                    hold.remaining = r;
                }
                (Role::Taker, OrderSize::Quote(_)) => {}
            }
            let user = hold.user;
            if ended {
                self.end(pi, id, user, out);
            } else {
                self.trim(pi, id, out);
            }
        }
    }
}

/// Adds to `user`'s free `asset`.
fn credit(state: &mut State, user: UserId, asset: AssetId, amount: u128) {
    let b = state.balances.entry((user, asset)).or_default();
    b.free = b.free.saturating_add(amount);
}

/// The base and quote asset names of `symbol`.
fn split_symbol(symbol: Symbol) -> Result<(String, String), ConfigError> {
    let bad = ConfigError::BadSymbol(symbol);
    let (base, quote) = symbol.as_str().split_once('-').ok_or(bad.clone())?;
    if base.is_empty() || quote.is_empty() || base == quote || quote.contains('-') {
        return Err(bad);
    }
    Ok((base.to_owned(), quote.to_owned()))
}

/// The index of asset `name`, added if new; its scale is the largest any
/// pair needs.
fn asset_index(
    assets: &mut Vec<AssetInfo>,
    name: &str,
    scale: u8,
    pair: Symbol,
) -> Result<AssetId, ConfigError> {
    let i = match assets.iter().position(|a| a.name == name) {
        Some(i) => {
            assets[i].scale = assets[i].scale.max(scale);
            i
        }
        None => {
            assets.push(AssetInfo {
                name: name.to_owned(),
                scale,
            });
            assets.len() - 1
        }
    };
    u16::try_from(i)
        .map(AssetId)
        .map_err(|_| ConfigError::TooLarge(pair))
}

#[cfg(test)]
mod tests {
    use super::fee;
    use crate::{ConfigError, Input, Reference, RiskCode, Shard};
    use proto::{PairConfig, QuoteQty, Symbol, UserId};

    #[test]
    fn a_market_buy_budget_is_the_most_the_free_quote_pays_with_its_fee() {
        let pair = Symbol::new("BTC-EUR").unwrap();
        let mut shard = Shard::new(&[PairConfig::simple(pair)]).unwrap();
        let eur = shard.asset_id("EUR").unwrap();
        let user = UserId(1);
        let none = shard.market_buy_budget(user, pair, 20, QuoteQty(1_000));
        assert_eq!(none, Err(RiskCode::InsufficientBalance));
        shard.apply_one(&Input::Deposit {
            user,
            asset: eur,
            amount: 96_994,
            reference: Reference(1),
        });
        // 96_801 + floor(96_801 * 20 / 10_000) = 96_994; one more is 96_995.
        let b = shard.market_buy_budget(user, pair, 20, QuoteQty(u64::MAX));
        assert_eq!(b, Ok(QuoteQty(96_801)));
        assert_eq!(
            shard.market_buy_budget(user, pair, 20, QuoteQty(500)),
            Ok(QuoteQty(500))
        );
        let other = Symbol::new("ETH-EUR").unwrap();
        let unknown = shard.market_buy_budget(user, other, 20, QuoteQty(5));
        assert_eq!(unknown, Err(RiskCode::UnknownPair));
    }

    #[test]
    fn fee_is_the_exact_floor_even_near_the_top_of_u128() {
        assert_eq!(fee(9_999, 1), 0);
        assert_eq!(fee(10_000, 1), 1);
        assert_eq!(fee(19_999, 1), 1);
        assert_eq!(fee(1_000_000, 25), 2_500);
        assert_eq!(fee(12_345, 10_000), 12_345);
        let big = u128::MAX;
        assert_eq!(fee(big, 10_000), big);
        assert_eq!(fee(big, 5_000), big / 2);
        for n in [1u128, 7, 9_999, 10_001, 123_456_789, u128::from(u64::MAX)] {
            for bps in [0u16, 1, 7, 25, 9_999, 10_000] {
                assert_eq!(fee(n, bps), n * u128::from(bps) / 10_000, "{n} at {bps}");
            }
        }
    }

    fn scaled(symbol: &str, price_scale: u8, qty_scale: u8) -> PairConfig {
        PairConfig {
            price_scale,
            qty_scale,
            ..PairConfig::simple(Symbol::new(symbol).unwrap())
        }
    }

    #[test]
    fn a_pair_listed_on_a_running_shard_gives_the_state_of_a_shard_started_with_it() {
        let btc = scaled("BTC-EUR", 2, 8);
        let eth = scaled("ETH-EUR", 2, 6);
        let mut running = Shard::new(&[btc]).unwrap();
        let eur = running.asset_id("EUR").unwrap();
        running.apply_one(&Input::Deposit {
            user: UserId(7),
            asset: eur,
            amount: 5_000,
            reference: Reference(1),
        });
        running.add_pair(&eth).unwrap();
        let mut started = Shard::new(&[btc, eth]).unwrap();
        started.apply_one(&Input::Deposit {
            user: UserId(7),
            asset: eur,
            amount: 5_000,
            reference: Reference(1),
        });
        assert_eq!(running.state_hash(), started.state_hash());
        assert_eq!(running.asset_id("ETH").map(|a| a.0), Some(2));
        assert_eq!(running.fee_account(running.asset_id("ETH").unwrap()), 0);
        let twice = running.add_pair(&eth);
        assert_eq!(twice, Err(ConfigError::DuplicatePair(eth.symbol)));
    }

    #[test]
    fn a_listed_pair_that_would_count_an_asset_more_finely_is_refused_and_changes_nothing() {
        let mut shard = Shard::new(&[scaled("BTC-EUR", 2, 8)]).unwrap();
        let before = shard.state_hash();
        // EUR counts at 2 + 8 = 10 decimals; ETH-EUR at 4 + 8 would need 12.
        let refused = shard.add_pair(&scaled("ETH-EUR", 4, 8));
        assert_eq!(
            refused,
            Err(ConfigError::FinerUnit {
                pair: Symbol::new("ETH-EUR").unwrap(),
                asset: "EUR".into(),
                scale: 10,
                needed: 12,
            })
        );
        assert_eq!(shard.state_hash(), before);
        assert!(shard.asset_id("ETH").is_none());
        // A coarser pair of the same asset converts exactly.
        shard.add_pair(&scaled("ETH-EUR", 2, 4)).unwrap();
        assert_eq!(shard.assets()[1].scale, 10);
    }
}
