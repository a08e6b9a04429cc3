//! Scenario tests: each rule of the ledger on a small, hand-checked case,
//! through the real order book. Every input is audited (see `common`).

mod common;

use accounts::{
    AssetId, ConfigError, Duplicate, Fees, Input, Output, Reference, RiskCode, Shard, SnapshotError,
};
use common::{Harness, btc_eur, limit, limit_tif, market, sym, with_stp};
use proto::{
    CancelReason, EventBody, OrderId, OrderSize, PairConfig, Price, Qty, QuoteQty, Seq, Side,
    StpMode, TimeInForce, UserId,
};

const NO_FEES: Fees = Fees::ZERO;
/// 0.1% maker, 0.2% taker.
const FEES: Fees = Fees {
    maker_bps: 10,
    taker_bps: 20,
};

fn market_harness() -> Harness {
    Harness::new(&[btc_eur()])
}

fn deposit_input(user: u64, asset: u16, amount: u128, reference: u64) -> Input {
    Input::Deposit {
        user: UserId(user),
        asset: accounts::AssetId(asset),
        amount,
        reference: Reference(reference),
    }
}

fn withdraw_input(user: u64, asset: u16, amount: u128, reference: u64) -> Input {
    Input::Withdraw {
        user: UserId(user),
        asset: accounts::AssetId(asset),
        amount,
        reference: Reference(reference),
    }
}

#[test]
fn deposits_and_withdrawals_refuse_zero_unknown_assets_overdrafts_and_repeats() {
    let mut h = market_harness();
    let eur = h.asset("EUR").0;
    let reject = |code| vec![Output::Rejected(code)];
    assert_eq!(
        h.input(deposit_input(1, eur, 0, 1)),
        reject(RiskCode::ZeroAmount)
    );
    assert_eq!(
        h.input(deposit_input(1, 9, 5, 1)),
        reject(RiskCode::UnknownAsset)
    );
    assert_eq!(
        h.input(withdraw_input(1, 9, 5, 1)),
        reject(RiskCode::UnknownAsset)
    );
    // A refused input does not use up its reference.
    assert!(matches!(
        h.input(deposit_input(1, eur, 100, 1))[..],
        [Output::Deposited { amount: 100, .. }]
    ));
    assert_eq!(
        h.input(deposit_input(1, eur, 100, 1)),
        vec![Output::Duplicate(Duplicate::Reference(Reference(1)))]
    );
    // Deposits and withdrawals share one reference space.
    assert_eq!(
        h.input(withdraw_input(1, eur, 10, 1)),
        vec![Output::Duplicate(Duplicate::Reference(Reference(1)))]
    );
    assert_eq!(
        h.input(withdraw_input(1, eur, 0, 2)),
        reject(RiskCode::ZeroAmount)
    );
    assert_eq!(
        h.input(withdraw_input(1, eur, 101, 2)),
        reject(RiskCode::InsufficientBalance)
    );
    assert_eq!(
        h.input(withdraw_input(2, eur, 1, 2)),
        reject(RiskCode::InsufficientBalance)
    );
    assert!(matches!(
        h.input(withdraw_input(1, eur, 100, 2))[..],
        [Output::Withdrew { amount: 100, .. }]
    ));
    assert_eq!(h.free(1, "EUR"), 0);
    let t = h.shard.totals(h.asset("EUR"));
    assert_eq!((t.deposits, t.withdrawals), (100, 100));
}

#[test]
fn withdraw_takes_only_from_free() {
    let mut h = market_harness();
    h.deposit(1, "BTC", 10);
    h.place(sym("BTC-EUR"), 1, limit(1, Side::Sell, 100, 7), NO_FEES)
        .expect("sell");
    assert_eq!((h.free(1, "BTC"), h.locked(1, "BTC")), (3, 7));
    let btc = h.asset("BTC").0;
    assert_eq!(
        h.input(withdraw_input(1, btc, 4, 99)),
        vec![Output::Rejected(RiskCode::InsufficientBalance)]
    );
    assert!(matches!(
        h.input(withdraw_input(1, btc, 3, 99))[..],
        [Output::Withdrew { .. }]
    ));
}

#[test]
fn deposits_beyond_the_cap_are_refused_whole() {
    let mut h = market_harness();
    h.deposit(1, "EUR", u128::try_from(i128::MAX).expect("positive"));
    let eur = h.asset("EUR").0;
    assert_eq!(
        h.input(deposit_input(2, eur, 1, 77)),
        vec![Output::Rejected(RiskCode::Overflow)]
    );
    assert_eq!(h.free(2, "EUR"), 0);
}

/// An asset's deposits stop at `i128::MAX`, so the audit's signed sums are
/// exact: a deposit past it is refused whole.
#[test]
fn deposits_past_i128_are_refused_and_the_audit_stays_exact() {
    let mut shard = Shard::new(&[btc_eur()]).expect("pair");
    let eur = shard.asset_id("EUR").expect("EUR").0;
    let cap = u128::try_from(i128::MAX).expect("positive");
    for input in [
        deposit_input(1, eur, 100, 1),
        withdraw_input(1, eur, 100, 2),
        deposit_input(2, eur, cap - 100, 3),
    ] {
        assert!(!matches!(
            shard.apply_one(&input)[..],
            [Output::Rejected(_)]
        ));
    }
    // Deposits now total exactly i128::MAX: one more unit is refused whole.
    assert_eq!(
        shard.apply_one(&deposit_input(3, eur, 1, 4)),
        vec![Output::Rejected(RiskCode::Overflow)]
    );
    assert_eq!(shard.audit(), Ok(()));
    // Held: i128::MAX - 100 in user 2's account. Flows agree exactly.
    assert_eq!(shard.balance(UserId(2), AssetId(eur)).free, cap - 100);
}

#[test]
fn every_order_type_is_refused_without_funds_and_accepted_at_the_exact_need() {
    let pair = sym("BTC-EUR");
    let mut h = market_harness();
    // Limit buy 10 @ 1,000 with a 0.2% taker fee needs 10,000 + 20.
    h.deposit(1, "EUR", 10_019);
    assert_eq!(
        h.place(pair, 1, limit(1, Side::Buy, 1_000, 10), FEES),
        Err(RiskCode::InsufficientBalance)
    );
    h.deposit(1, "EUR", 1);
    h.place(pair, 1, limit(1, Side::Buy, 1_000, 10), FEES)
        .expect("exact need");
    assert_eq!((h.free(1, "EUR"), h.locked(1, "EUR")), (0, 10_020));
    // Sells lock base, limit or market.
    h.deposit(2, "BTC", 4);
    assert_eq!(
        h.place(pair, 2, limit(2, Side::Sell, 2_000, 5), FEES),
        Err(RiskCode::InsufficientBalance)
    );
    assert_eq!(
        h.place(
            pair,
            2,
            market(3, Side::Sell, OrderSize::Base(Qty(5))),
            FEES
        ),
        Err(RiskCode::InsufficientBalance)
    );
    // Market buy by quote: the amount plus its taker fee.
    h.deposit(3, "EUR", 5_009);
    let by_quote = market(4, Side::Buy, OrderSize::Quote(QuoteQty(5_000)));
    assert_eq!(
        h.place(pair, 3, by_quote, FEES),
        Err(RiskCode::InsufficientBalance)
    );
    // Market buy by base: needs a budget, and the budget plus its taker
    // fee must be free.
    let by_base = market(5, Side::Buy, OrderSize::Base(Qty(3)));
    assert_eq!(
        h.place(pair, 3, by_base, FEES),
        Err(RiskCode::BudgetRequired)
    );
    let within = OrderSize::BaseWithin {
        qty: Qty(3),
        budget: QuoteQty(5_000),
    };
    assert_eq!(
        h.place(pair, 3, market(5, Side::Buy, within), FEES),
        Err(RiskCode::InsufficientBalance)
    );
    // A budget on a sell or on a limit order is never accepted.
    assert_eq!(
        h.place(pair, 2, market(7, Side::Sell, within), FEES),
        Err(RiskCode::UnsupportedOrder)
    );
    let limit_within = proto::NewOrder {
        size: within,
        ..limit(8, Side::Buy, 100, 3)
    };
    assert_eq!(
        h.place(pair, 3, limit_within, FEES),
        Err(RiskCode::UnsupportedOrder)
    );
    // A quote-sized sell is never accepted.
    let bad = market(6, Side::Sell, OrderSize::Quote(QuoteQty(1)));
    assert_eq!(h.place(pair, 2, bad, FEES), Err(RiskCode::UnsupportedOrder));
    assert_eq!(
        h.locked(2, "BTC") + h.locked(3, "EUR"),
        0,
        "refusals lock nothing"
    );
    assert_eq!(RiskCode::InsufficientBalance.binance_code(), Some(-2010));
}

#[test]
fn places_refuse_unknown_pairs_bad_fees_and_duplicate_ids() {
    let pair = sym("BTC-EUR");
    let mut h = market_harness();
    h.deposit(1, "BTC", 100);
    let sell = limit(1, Side::Sell, 100, 1);
    assert_eq!(
        h.shard.apply_one(&Input::Place(accounts::Place {
            pair: sym("ETH-EUR"),
            user: UserId(1),
            order: sell,
            fees: FEES
        })),
        vec![Output::Rejected(RiskCode::UnknownPair)]
    );
    let maker_above_taker = Fees {
        maker_bps: 30,
        taker_bps: 20,
    };
    assert_eq!(
        h.place(pair, 1, sell, maker_above_taker),
        Err(RiskCode::BadFees)
    );
    let over_all = Fees {
        maker_bps: 0,
        taker_bps: 10_001,
    };
    assert_eq!(h.place(pair, 1, sell, over_all), Err(RiskCode::BadFees));
    h.place(pair, 1, sell, FEES).expect("first");
    assert_eq!(h.place(pair, 1, sell, FEES), Err(RiskCode::DuplicateOrder));
    assert_eq!(h.locked(1, "BTC"), 1);
}

#[test]
fn cancel_releases_everything_and_a_full_fill_settles_with_fees() {
    let pair = sym("BTC-EUR");
    let mut h = market_harness();
    h.deposit(1, "EUR", 1_000_000);
    h.deposit(2, "BTC", 100);
    h.place(pair, 1, limit(1, Side::Buy, 1_000, 10), FEES)
        .expect("buy");
    h.cancel(pair, 1, 1);
    assert_eq!((h.free(1, "EUR"), h.locked(1, "EUR")), (1_000_000, 0));
    assert_eq!(h.shard.open_holds(), 0);

    // Maker sells 10 @ 1,000; the taker buys them all.
    h.place(pair, 2, limit(2, Side::Sell, 1_000, 10), FEES)
        .expect("sell");
    h.place(pair, 1, limit(3, Side::Buy, 1_000, 10), FEES)
        .expect("buy");
    // Buyer (taker, 0.2%): pays 10,000 + 20. Seller (maker, 0.1%): gets 10,000 - 10.
    assert_eq!(
        (h.free(1, "EUR"), h.locked(1, "EUR"), h.free(1, "BTC")),
        (1_000_000 - 10_020, 0, 10)
    );
    assert_eq!(
        (h.free(2, "BTC"), h.locked(2, "BTC"), h.free(2, "EUR")),
        (90, 0, 9_990)
    );
    assert_eq!(h.fee_account("EUR"), 30);
    assert_eq!(h.shard.open_holds(), 0);
}

#[test]
fn partial_fills_keep_exactly_what_the_rest_needs() {
    let pair = sym("BTC-EUR");
    let mut h = market_harness();
    h.deposit(1, "EUR", 1_000_000);
    h.deposit(2, "BTC", 100);
    h.place(pair, 1, limit(1, Side::Buy, 1_000, 10), FEES)
        .expect("buy");
    h.place(
        pair,
        2,
        limit_tif(2, Side::Sell, 1_000, 4, TimeInForce::Ioc),
        FEES,
    )
    .expect("sell");
    // The buyer was maker (0.1%): paid 4,000 + 4; its rest of 6 needs 6,000 + 12.
    assert_eq!(h.locked(1, "EUR"), 6_012);
    assert_eq!(h.free(1, "EUR"), 1_000_000 - 4_004 - 6_012);
    assert_eq!(
        h.shard.hold(pair, OrderId(1)).map(|x| x.remaining),
        Some(Qty(6))
    );
    h.cancel(pair, 1, 1);
    assert_eq!(
        (h.free(1, "EUR"), h.locked(1, "EUR")),
        (1_000_000 - 4_004, 0)
    );
    // The seller's IOC sold 4 (taker 0.2%): 4,000 - 8.
    assert_eq!(h.free(2, "EUR"), 3_992);
    assert_eq!(h.fee_account("EUR"), 12);
}

#[test]
fn price_improvement_is_released_at_the_fill() {
    let pair = sym("BTC-EUR");
    let mut h = market_harness();
    h.deposit(1, "EUR", 100_000);
    h.deposit(2, "BTC", 100);
    h.place(pair, 2, limit(1, Side::Sell, 900, 5), NO_FEES)
        .expect("ask");
    // Buy 10 @ 1,000 locks 10,000; 5 fill at 900, the rest of 5 needs 5,000.
    h.place(pair, 1, limit(2, Side::Buy, 1_000, 10), NO_FEES)
        .expect("bid");
    assert_eq!(h.locked(1, "EUR"), 5_000);
    assert_eq!(h.free(1, "EUR"), 100_000 - 4_500 - 5_000);
}

#[test]
fn ioc_fok_post_only_and_stp_endings_release_their_holds() {
    let pair = sym("BTC-EUR");
    let mut h = market_harness();
    h.deposit(1, "EUR", 100_000);
    h.deposit(2, "BTC", 100);
    h.deposit(1, "BTC", 100);
    h.place(pair, 2, limit(1, Side::Sell, 1_000, 3), FEES)
        .expect("ask");
    // IOC for 5: 3 fill, the rest is canceled and released.
    let ev = h
        .place(
            pair,
            1,
            limit_tif(2, Side::Buy, 1_000, 5, TimeInForce::Ioc),
            FEES,
        )
        .expect("ioc");
    assert!(ev.iter().any(
        |e| matches!(e.body, EventBody::Canceled(c) if c.reason == CancelReason::IocRemainder)
    ));
    assert_eq!(h.locked(1, "EUR"), 0);
    assert_eq!(h.free(1, "EUR"), 100_000 - 3_006);
    // FOK that cannot fill: nothing trades, all released.
    h.place(pair, 2, limit(3, Side::Sell, 1_000, 2), FEES)
        .expect("ask");
    let ev = h
        .place(
            pair,
            1,
            limit_tif(4, Side::Buy, 1_000, 5, TimeInForce::Fok),
            FEES,
        )
        .expect("fok");
    assert!(ev.iter().any(
        |e| matches!(e.body, EventBody::Canceled(c) if c.reason == CancelReason::FokNotFillable)
    ));
    assert_eq!(h.locked(1, "EUR"), 0);
    // Post-only that would cross.
    let post = proto::NewOrder {
        post_only: true,
        ..limit(5, Side::Buy, 1_000, 1)
    };
    let ev = h.place(pair, 1, post, FEES).expect("post-only");
    assert!(ev.iter().any(
        |e| matches!(e.body, EventBody::Canceled(c) if c.reason == CancelReason::PostOnlyWouldCross)
    ));
    assert_eq!(h.locked(1, "EUR"), 0);
    // Self-trade prevention cancels user 1's own resting sell (maker side).
    h.place(pair, 1, limit(6, Side::Sell, 990, 2), FEES)
        .expect("own ask");
    assert_eq!(h.locked(1, "BTC"), 2);
    let ev = h
        .place(
            pair,
            1,
            with_stp(limit(7, Side::Buy, 990, 2), StpMode::CancelBoth),
            FEES,
        )
        .expect("stp");
    assert!(ev.iter().any(|e| matches!(e.body, EventBody::Canceled(c) if c.reason == CancelReason::SelfTradePrevention)));
    assert_eq!((h.locked(1, "BTC"), h.locked(1, "EUR")), (0, 0));
    assert_eq!(
        h.shard.open_holds(),
        1,
        "only user 2's untouched ask remains"
    );
}

#[test]
fn an_order_the_engine_rejects_releases_its_hold() {
    let pair = sym("BTC-EUR");
    let mut h = market_harness();
    h.deposit(1, "BTC", 10);
    // Quantity zero passes the shard (it locks nothing) and the book refuses it.
    let ev = h
        .place(pair, 1, limit(1, Side::Sell, 100, 0), FEES)
        .expect("shard");
    assert!(matches!(ev[0].body, EventBody::Rejected(_)));
    // A price above the pair's maximum: locked, then released on the reject.
    h.deposit(2, "EUR", 100_000_000);
    let ev = h
        .place(pair, 2, limit(2, Side::Buy, 2_000_000, 1), FEES)
        .expect("shard");
    assert!(matches!(ev[0].body, EventBody::Rejected(_)));
    assert_eq!((h.locked(2, "EUR"), h.free(2, "EUR")), (0, 100_000_000));
    assert_eq!(h.shard.open_holds(), 0);
}

#[test]
fn amend_up_locks_first_and_amend_down_releases_when_confirmed() {
    let pair = sym("BTC-EUR");
    let mut h = market_harness();
    h.deposit(1, "EUR", 15_000);
    h.place(pair, 1, limit(1, Side::Buy, 1_000, 10), NO_FEES)
        .expect("buy");
    assert_eq!(
        h.amend(pair, 1, 1, Some(16), None),
        Err(RiskCode::InsufficientBalance)
    );
    assert_eq!(h.locked(1, "EUR"), 10_000);
    h.amend(pair, 1, 1, Some(15), None).expect("up");
    assert_eq!((h.locked(1, "EUR"), h.free(1, "EUR")), (15_000, 0));
    h.amend(pair, 1, 1, None, Some(600)).expect("price down");
    assert_eq!((h.locked(1, "EUR"), h.free(1, "EUR")), (9_000, 6_000));
    h.amend(pair, 1, 1, Some(5), None).expect("qty down");
    assert_eq!(h.locked(1, "EUR"), 3_000);
    // Not the owner, unknown orders, below what filled.
    assert_eq!(h.amend(pair, 2, 1, Some(6), None), Err(RiskCode::NotOwner));
    assert_eq!(
        h.amend(pair, 1, 9, Some(6), None),
        Err(RiskCode::UnknownOrder)
    );
    h.deposit(2, "BTC", 10);
    h.place(
        pair,
        2,
        limit_tif(2, Side::Sell, 600, 2, TimeInForce::Ioc),
        NO_FEES,
    )
    .expect("hit");
    assert_eq!(
        h.amend(pair, 1, 1, Some(2), None),
        Err(RiskCode::AmendBelowFilled)
    );
    assert_eq!(h.locked(1, "EUR"), 1_800);
}

#[test]
fn an_amend_the_engine_refuses_gives_back_what_it_locked() {
    let pair = sym("BTC-EUR");
    let mut h = market_harness();
    h.deposit(1, "EUR", 100_000);
    h.place(pair, 1, limit(1, Side::Buy, 1_000, 10), NO_FEES)
        .expect("buy");
    // Above the pair's maximum quantity? No: above its maximum price.
    let ev = h.amend(pair, 1, 1, None, Some(2_000_000)).err();
    assert_eq!(ev, Some(RiskCode::InsufficientBalance));
    // A price off the book's rules that still fits the balance: the shard
    // locks, the book refuses, the shard releases.
    h.deposit(1, "EUR", 100_000_000_000);
    let ev = h
        .amend(pair, 1, 1, None, Some(2_000_000))
        .expect("shard accepts");
    assert!(matches!(ev[0].body, EventBody::Rejected(_)));
    assert_eq!(h.locked(1, "EUR"), 10_000);
    let hold = h.shard.hold(pair, OrderId(1)).expect("open");
    assert!(hold.pending.is_empty());
}

#[test]
fn amends_of_sells_move_base() {
    let pair = sym("BTC-EUR");
    let mut h = market_harness();
    h.deposit(1, "BTC", 10);
    h.place(pair, 1, limit(1, Side::Sell, 1_000, 4), NO_FEES)
        .expect("sell");
    h.amend(pair, 1, 1, Some(10), None).expect("up");
    assert_eq!(h.locked(1, "BTC"), 10);
    assert_eq!(
        h.amend(pair, 1, 1, Some(11), None),
        Err(RiskCode::InsufficientBalance)
    );
    h.amend(pair, 1, 1, Some(1), Some(5)).expect("down");
    assert_eq!((h.locked(1, "BTC"), h.free(1, "BTC")), (1, 9));
    assert_eq!(
        h.place(
            pair,
            1,
            market(2, Side::Sell, OrderSize::Base(Qty(9))),
            NO_FEES
        )
        .map(|_| ()),
        Ok(())
    );
    assert_eq!(h.locked(1, "BTC"), 1);
    assert_eq!(
        h.free(1, "BTC"),
        9,
        "the market sell found no bids; its 9 came back"
    );
}

#[test]
fn market_buy_by_quote_spends_at_most_its_amount_and_releases_the_rest() {
    let pair = sym("BTC-EUR");
    let mut h = market_harness();
    h.deposit(1, "EUR", 100_000);
    h.deposit(2, "BTC", 100);
    h.place(pair, 2, limit(1, Side::Sell, 300, 10), FEES)
        .expect("ask");
    // 1,000 of quote (plus its 2 of fee): buys 3 @ 300 = 900, fee 1; 100 left over.
    h.place(
        pair,
        1,
        market(2, Side::Buy, OrderSize::Quote(QuoteQty(1_000))),
        FEES,
    )
    .expect("buy");
    assert_eq!((h.free(1, "BTC"), h.locked(1, "EUR")), (3, 0));
    assert_eq!(h.free(1, "EUR"), 100_000 - 900 - 1);
    assert_eq!(h.shard.open_holds(), 1);
}

#[test]
fn market_buy_by_quote_at_scale_converts_the_quote_amount_exactly() {
    // Price at 2 decimals, quantity at 3: EUR counts in 10^-5.
    let pair = PairConfig {
        price_scale: 2,
        qty_scale: 3,
        ..btc_eur()
    };
    let mut h = Harness::new(&[pair]);
    assert_eq!(h.shard.assets()[h.asset("EUR").0 as usize].scale, 5);
    assert_eq!(h.shard.assets()[h.asset("BTC").0 as usize].scale, 3);
    h.deposit(1, "EUR", 1_000 * 1_000);
    h.deposit(2, "BTC", 100);
    let s = sym("BTC-EUR");
    h.place(s, 2, limit(1, Side::Sell, 250, 7), NO_FEES)
        .expect("ask");
    // 10.00 EUR = 1,000 price units = 1,000,000 at scale 5; buys 7 lots of
    // 0.001 @ 2.50 = 1,750 at scale 5.
    h.place(
        s,
        1,
        market(2, Side::Buy, OrderSize::Quote(QuoteQty(1_000))),
        NO_FEES,
    )
    .expect("buy");
    assert_eq!(h.free(1, "BTC"), 7);
    assert_eq!(h.free(1, "EUR"), 1_000_000 - 1_750);
    assert_eq!(h.free(2, "EUR"), 1_750);
}

#[test]
fn market_buy_by_base_spends_within_its_budget_and_releases_the_rest() {
    let pair = sym("BTC-EUR");
    let mut h = market_harness();
    h.deposit(1, "EUR", 100_000);
    h.deposit(2, "BTC", 100);
    h.place(pair, 2, limit(1, Side::Sell, 300, 2), FEES)
        .expect("ask");
    h.place(pair, 2, limit(2, Side::Sell, 310, 2), FEES)
        .expect("ask");
    h.place(
        pair,
        1,
        market(
            3,
            Side::Buy,
            OrderSize::BaseWithin {
                qty: Qty(3),
                budget: QuoteQty(5_000),
            },
        ),
        FEES,
    )
    .expect("buy");
    // 2 @ 300 + 1 @ 310 = 910, fee floor(910 * 20 / 10,000) = 1 per fill: 1 + 0.
    assert_eq!(h.free(1, "BTC"), 3);
    assert_eq!(h.free(1, "EUR"), 100_000 - 910 - 1);
    assert_eq!(h.locked(1, "EUR"), 0);
}

#[test]
fn a_market_buy_by_base_stops_at_its_budget_and_its_hold_covers_the_fees() {
    let pair = sym("BTC-EUR");
    let mut h = market_harness();
    // Budget 600 plus floor(600 * 20 / 10,000) = 1 of taker fee.
    h.deposit(1, "EUR", 601);
    h.deposit(2, "BTC", 100);
    for (id, price) in [(1, 300), (2, 300), (3, 310)] {
        h.place(pair, 2, limit(id, Side::Sell, price, 1), FEES)
            .expect("ask");
    }
    let order = market(
        4,
        Side::Buy,
        OrderSize::BaseWithin {
            qty: Qty(3),
            budget: QuoteQty(600),
        },
    );
    let locked = h.shard.apply_one(&Input::Place(accounts::Place {
        pair,
        user: UserId(1),
        order,
        fees: FEES,
    }));
    assert!(matches!(locked[..], [Output::Locked { amount: 601, .. }]));
    let cmd = common::command(pair, 1, proto::CommandBody::NewOrder(order));
    let events = h.books.get_mut(&pair).expect("book").apply_one(&cmd);
    let mut outs = Vec::new();
    for e in &events {
        h.shard.apply(&Input::Settle(*e), &mut outs);
    }
    // 1 @ 300 twice spends the budget; the lot at 310 is beyond it, so the
    // last 1 is canceled. Each fill's fee rounds to 0, and the unused fee
    // allowance is released with the rest of the hold.
    assert!(events.iter().any(|e| matches!(
        e.body,
        EventBody::Canceled(c) if c.reason == CancelReason::IocRemainder
            && c.remaining == OrderSize::Base(Qty(1))
    )));
    assert_eq!(h.free(1, "BTC"), 2);
    assert_eq!((h.free(1, "EUR"), h.locked(1, "EUR")), (1, 0));
    assert_eq!(h.shard.audit(), Ok(()));
}

#[test]
fn fees_round_down_tiny_trades_pay_nothing_and_the_fee_account_gets_exactly_what_users_pay() {
    let pair = sym("BTC-EUR");
    let mut h = market_harness();
    h.deposit(1, "EUR", 1_000_000);
    h.deposit(2, "BTC", 1_000);
    // 1 @ 49 at 20 bps: 0.098, rounds to 0 for both sides.
    h.place(pair, 2, limit(1, Side::Sell, 49, 1), FEES)
        .expect("ask");
    h.place(pair, 1, limit(2, Side::Buy, 49, 1), FEES)
        .expect("bid");
    assert_eq!(h.fee_account("EUR"), 0);
    assert_eq!(h.free(1, "EUR"), 1_000_000 - 49);
    // A buy of 10 split into ten fills of 1 @ 1,000 at 20 bps: each fee
    // floor(2) = 2, total 20 = the fee the hold reserved for the whole.
    for i in 0..10 {
        h.place(pair, 2, limit(10 + i, Side::Sell, 1_000, 1), FEES)
            .expect("ask");
    }
    h.place(pair, 1, limit(30, Side::Buy, 1_000, 10), FEES)
        .expect("bid");
    let paid_by_users: u128 = h
        .outputs
        .iter()
        .map(|o| match o {
            Output::Filled { fee, .. } => *fee,
            _ => 0,
        })
        .sum();
    assert_eq!(h.fee_account("EUR"), paid_by_users);
    assert_eq!(paid_by_users, 20 + 10);
}

#[test]
fn fees_at_the_largest_sizes_stay_exact() {
    // 18 decimals each side: EUR counts in 10^-36 and a notional nears 10^37.
    let qty = 10u64.pow(18) - 1;
    let big = PairConfig {
        price_scale: 18,
        qty_scale: 18,
        max_qty: Qty(qty),
        max_price: Price(proto::MAX_VALUE),
        max_notional: QuoteQty(proto::MAX_VALUE),
        max_open_orders: 10,
        ..btc_eur()
    };
    let pair = sym("BTC-EUR");
    let mut h = Harness::new(&[big]);
    let price = proto::MAX_VALUE;
    let notional = u128::from(price) * u128::from(qty);
    // floor(n * 9,999 / 10,000) = n - ceil(n / 10,000), without the product.
    let taker_fee = notional - notional.div_ceil(10_000);
    let maker_fee = notional * 7 / 10_000;
    let funds = u128::MAX / 4;
    h.deposit(1, "EUR", funds);
    h.deposit(2, "BTC", u128::from(qty));
    let fees = Fees {
        maker_bps: 7,
        taker_bps: 9_999,
    };
    h.place(pair, 2, limit(1, Side::Sell, price, qty), fees)
        .expect("ask");
    h.place(pair, 1, limit(2, Side::Buy, price, qty), fees)
        .expect("bid");
    assert_eq!(h.free(2, "EUR"), notional - maker_fee);
    assert_eq!(h.free(1, "EUR"), funds - notional - taker_fee);
    assert_eq!(h.fee_account("EUR"), maker_fee + taker_fee);
    assert_eq!(h.free(1, "BTC"), u128::from(qty));
}

#[test]
fn settle_ignores_repeated_and_older_seqs() {
    let pair = sym("BTC-EUR");
    let mut h = market_harness();
    h.deposit(1, "EUR", 10_000);
    h.deposit(2, "BTC", 10);
    h.place(pair, 2, limit(1, Side::Sell, 1_000, 5), FEES)
        .expect("ask");
    let events = h
        .place(pair, 1, limit(2, Side::Buy, 1_000, 5), FEES)
        .expect("bid");
    let before = h.shard.state_hash();
    for e in &events {
        assert_eq!(
            h.input(Input::Settle(*e)),
            vec![Output::Duplicate(Duplicate::Settle { pair, seq: e.seq })]
        );
    }
    assert_eq!(h.shard.state_hash(), before);
    assert_eq!(h.shard.last_seq(pair), events.last().map(|e| e.seq));
    let mut other = events[0];
    other.pair = sym("ETH-EUR");
    other.seq = Seq(1_000);
    assert_eq!(
        h.input(Input::Settle(other)),
        vec![Output::Rejected(RiskCode::UnknownPair)]
    );
}

#[test]
fn every_engine_event_is_acknowledged() {
    let pair = sym("BTC-EUR");
    let mut h = market_harness();
    h.deposit(2, "BTC", 10);
    let events = h
        .place(pair, 2, limit(1, Side::Sell, 1_000, 5), FEES)
        .expect("ask");
    let settled = h
        .outputs
        .iter()
        .filter(|o| matches!(o, Output::Settled { .. }))
        .count();
    assert_eq!(settled, events.len());
}

#[test]
fn two_shards_each_settle_their_own_side_and_together_match_one() {
    let pair = sym("BTC-EUR");
    let mut one = market_harness();
    let mut a = Shard::new(&[btc_eur()]).expect("shard a");
    let mut b = Shard::new(&[btc_eur()]).expect("shard b");
    let (eur, btc) = (one.asset("EUR"), one.asset("BTC"));
    let mut feed = |inputs: Vec<(u8, Input)>, one: &mut Harness| {
        for (to, i) in inputs {
            one.input(i);
            let s = if to == 0 { &mut a } else { &mut b };
            s.apply_one(&i);
        }
    };
    let dep = |user: u64, asset, amount, r| Input::Deposit {
        user: UserId(user),
        asset,
        amount,
        reference: Reference(r),
    };
    feed(
        vec![(0, dep(1, eur, 100_000, 1)), (1, dep(2, btc, 50, 2))],
        &mut one,
    );
    let sell = limit(1, Side::Sell, 1_000, 7);
    let buy = limit(2, Side::Buy, 1_100, 10);
    let place = |user, order| {
        Input::Place(accounts::Place {
            pair,
            user: UserId(user),
            order,
            fees: FEES,
        })
    };
    feed(vec![(1, place(2, sell)), (0, place(1, buy))], &mut one);
    let book = one.books.get_mut(&pair).expect("book");
    let mut events = book.apply_one(&common::command(
        pair,
        2,
        proto::CommandBody::NewOrder(sell),
    ));
    events.extend(book.apply_one(&common::command(pair, 1, proto::CommandBody::NewOrder(buy))));
    for e in &events {
        one.input(Input::Settle(*e));
        a.apply_one(&Input::Settle(*e));
        b.apply_one(&Input::Settle(*e));
    }
    for (user, shard) in [(1, &a), (2, &b)] {
        for asset in [eur, btc] {
            assert_eq!(
                shard.balance(UserId(user), asset),
                one.shard.balance(UserId(user), asset)
            );
        }
        assert_eq!(
            shard.audit(),
            Ok(()),
            "each shard conserves with its external flows"
        );
    }
    assert_eq!(
        a.fee_account(eur) + b.fee_account(eur),
        one.fee_account("EUR")
    );
    // What left one shard arrived at the other.
    assert_eq!(a.totals(eur).sent, b.totals(eur).received);
    assert_eq!(b.totals(btc).sent, a.totals(btc).received);
}

#[test]
fn a_restored_snapshot_continues_identically() {
    let pair = sym("BTC-EUR");
    let mut h = market_harness();
    h.deposit(1, "EUR", 100_000);
    h.deposit(2, "BTC", 100);
    h.place(pair, 2, limit(1, Side::Sell, 1_000, 5), FEES)
        .expect("ask");
    let bytes = h.shard.snapshot();
    let mut restored = Shard::restore(&bytes).expect("restore");
    assert_eq!(restored.state_hash(), h.shard.state_hash());
    let from = h.inputs.len();
    h.place(pair, 1, limit(2, Side::Buy, 1_000, 8), FEES)
        .expect("bid");
    h.deposit(3, "BTC", 1);
    let mut outputs = Vec::new();
    for i in &h.inputs[from..] {
        restored.apply(i, &mut outputs);
    }
    assert_eq!(outputs, h.outputs[h.outputs.len() - outputs.len()..]);
    assert_eq!(restored.state_hash(), h.shard.state_hash());
    assert_ne!(
        restored.state_hash(),
        Shard::restore(&bytes).expect("again").state_hash()
    );
}

#[test]
fn bad_snapshots_are_refused() {
    let bytes = market_harness().shard.snapshot();
    assert_eq!(
        Shard::restore(&[]),
        Err(SnapshotError::UnsupportedVersion(None))
    );
    assert_eq!(
        Shard::restore(&[9]),
        Err(SnapshotError::UnsupportedVersion(Some(9)))
    );
    assert!(matches!(
        Shard::restore(&bytes[..bytes.len() - 1]),
        Err(SnapshotError::Malformed(_))
    ));
    let mut long = bytes.clone();
    long.push(0);
    assert!(matches!(
        Shard::restore(&long),
        Err(SnapshotError::Malformed(_))
    ));
}

#[test]
fn pair_sets_that_would_give_an_asset_two_scales_are_refused() {
    let btc_eur = PairConfig {
        price_scale: 2,
        qty_scale: 8,
        ..btc_eur()
    };
    // BTC is base at 8 in BTC-EUR; as ETH-BTC's quote it counts at 4 + 4 = 8: fine.
    let eth_btc = PairConfig {
        price_scale: 4,
        qty_scale: 4,
        ..PairConfig::simple(sym("ETH-BTC"))
    };
    let shard = Shard::new(&[btc_eur, eth_btc]).expect("consistent");
    assert_eq!(shard.assets().len(), 3);
    let eth_btc_bad = PairConfig {
        price_scale: 5,
        ..eth_btc
    };
    // BTC is the base of BTC-EUR at 8 decimals and the quote of this ETH-BTC
    // at 5 + 4: it counts at 9, and BTC-EUR's quantities convert by 10.
    let mixed = Shard::new(&[btc_eur, eth_btc_bad]).expect("mixed scales");
    let btc = mixed.asset_id("BTC").expect("BTC");
    assert_eq!(mixed.assets()[usize::from(btc.0)].scale, 9);
    assert_eq!(
        Shard::new(&[btc_eur, btc_eur]),
        Err(ConfigError::DuplicatePair(btc_eur.symbol))
    );
}

fn amend_input(user: u64, id: u64, qty: Option<u64>, price: Option<u64>) -> Input {
    Input::Amend(accounts::Amend {
        pair: sym("BTC-EUR"),
        user: UserId(user),
        order_id: OrderId(id),
        new_qty: qty.map(Qty),
        new_price: price.map(Price),
    })
}

fn amend_command(user: u64, id: u64, qty: Option<u64>, price: Option<u64>) -> proto::Command {
    common::command(
        sym("BTC-EUR"),
        user,
        proto::CommandBody::Amend(proto::Amend {
            target: proto::OrderRef::Id(OrderId(id)),
            new_qty: qty.map(Qty),
            new_price: price.map(Price),
            new_stop_price: None,
        }),
    )
}

#[test]
fn a_pending_amend_stays_covered_while_earlier_fills_settle() {
    let pair = sym("BTC-EUR");
    let mut h = market_harness();
    h.deposit(1, "EUR", 100_000);
    h.deposit(2, "BTC", 100);
    h.place(pair, 1, limit(1, Side::Buy, 1_000, 10), NO_FEES)
        .expect("bid");
    // The shard passes an amend to 20; before the book applies it, a sell
    // placed earlier fills 4.
    assert!(matches!(
        h.input(amend_input(1, 1, Some(20), None))[..],
        [Output::Locked { amount: 10_000, .. }]
    ));
    h.place(
        pair,
        2,
        limit_tif(2, Side::Sell, 1_000, 4, TimeInForce::Ioc),
        NO_FEES,
    )
    .expect("ask");
    // Paid 4,000; the amended order will have 16 open: 16,000 stays locked.
    assert_eq!(h.locked(1, "EUR"), 16_000);
    h.run(&amend_command(1, 1, Some(20), None));
    assert_eq!(h.locked(1, "EUR"), 16_000);
    assert_eq!(
        h.shard.hold(pair, OrderId(1)).map(|x| x.remaining),
        Some(Qty(16))
    );
}

#[test]
fn pending_amends_are_covered_in_any_combination_the_engine_may_apply() {
    let pair = sym("BTC-EUR");
    let mut h = market_harness();
    h.deposit(1, "EUR", 100_000_000);
    h.place(pair, 1, limit(1, Side::Buy, 1_000, 10), NO_FEES)
        .expect("bid");
    // First a price the book will refuse (above its maximum), then a
    // quantity change with the price left as is: until the first is
    // answered, the second may apply at either price.
    h.input(amend_input(1, 1, None, Some(2_000_000)));
    assert_eq!(h.locked(1, "EUR"), 20_000_000);
    h.input(amend_input(1, 1, Some(12), None));
    assert_eq!(h.locked(1, "EUR"), 24_000_000);
    let refused = h.run(&amend_command(1, 1, None, Some(2_000_000)));
    assert!(matches!(refused[0].body, EventBody::Rejected(_)));
    // The second was recorded at the widest price it might meet, and stays
    // covered so until the book answers it.
    assert_eq!(h.locked(1, "EUR"), 24_000_000);
    h.run(&amend_command(1, 1, Some(12), None));
    assert_eq!(h.locked(1, "EUR"), 12_000);
    assert_eq!(h.free(1, "EUR"), 100_000_000 - 12_000);
    assert!(
        h.shard
            .hold(pair, OrderId(1))
            .is_some_and(|x| x.pending.is_empty())
    );
}

#[test]
fn self_trades_settle_both_sides_on_one_account() {
    let pair = sym("BTC-EUR");
    let mut h = market_harness();
    h.deposit(1, "EUR", 10_000);
    h.deposit(1, "BTC", 10);
    h.place(pair, 1, limit(1, Side::Sell, 1_000, 5), FEES)
        .expect("ask");
    h.place(
        pair,
        1,
        with_stp(limit(2, Side::Buy, 1_000, 5), StpMode::None),
        FEES,
    )
    .expect("bid");
    // Base comes back; quote pays both fees: 5 (maker) + 10 (taker).
    assert_eq!((h.free(1, "BTC"), h.free(1, "EUR")), (10, 10_000 - 15));
    assert_eq!(h.fee_account("EUR"), 15);
}
