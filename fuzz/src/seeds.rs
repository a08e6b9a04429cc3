//! Writes the seed corpus: `seeds DIR` fills `DIR/<target>/` with a few
//! valid inputs per fuzz target. Deterministic, so rerunning it changes
//! nothing; `scripts/fuzz.sh seeds` runs it.

use std::path::Path;

use engine::OrderBook;
use exchange_fuzz::{NOW_MS, pair};
use proto::{
    Amend, ClientOrderId, Command, CommandBody, ConditionalKind, ListKind, NewOrder, NewOrderList,
    OrderId, OrderRef, OrderSize, OrderType, Price, Qty, QuoteQty, Side, StpMode, TimeInForce,
    Timestamp, Trigger, UserId,
};

fn cmd(user: u64, body: CommandBody) -> Command {
    Command {
        pair: pair().symbol,
        user: UserId(user),
        timestamp: Timestamp(NOW_MS * 1_000_000),
        body,
    }
}

fn limit(id: u64, user: u64, side: Side, price: u64, qty: u64) -> Command {
    cmd(
        user,
        CommandBody::NewOrder(NewOrder {
            order_id: OrderId(id),
            client_order_id: ClientOrderId::new(&format!("c{id}")).ok(),
            side,
            order_type: OrderType::Limit {
                price: Price(price),
            },
            time_in_force: TimeInForce::Gtc,
            post_only: false,
            stp: Some(StpMode::CancelTaker),
            size: OrderSize::Base(Qty(qty)),
            iceberg_qty: None,
            good_till: None,
        }),
    )
}

fn commands() -> Vec<Command> {
    let market = NewOrder {
        order_id: OrderId(9),
        client_order_id: None,
        side: Side::Buy,
        order_type: OrderType::Market,
        time_in_force: TimeInForce::Ioc,
        post_only: false,
        stp: None,
        size: OrderSize::Quote(QuoteQty(100_000)),
        iceberg_qty: None,
        good_till: None,
    };
    vec![
        limit(1, 1, Side::Buy, 10_000, 100),
        limit(2, 1, Side::Buy, 9_995, 50),
        limit(3, 2, Side::Sell, 10_005, 30),
        limit(4, 2, Side::Sell, 10_010, 200),
        limit(5, 3, Side::Sell, 10_000, 40),
        cmd(3, CommandBody::NewOrder(market)),
        cmd(
            1,
            CommandBody::Amend(Amend {
                target: OrderRef::Id(OrderId(2)),
                new_qty: Some(Qty(40)),
                new_price: Some(Price(9_990)),
                new_stop_price: None,
            }),
        ),
        cmd(
            2,
            CommandBody::Cancel {
                target: OrderRef::Client(ClientOrderId::new("c3").expect("valid")),
            },
        ),
        cmd(1, CommandBody::CancelAll),
    ]
    .into_iter()
    .chain(advanced_commands())
    .collect()
}

/// A sell stop-loss limit order of user 4, by stop price (and trailing).
fn stop(id: u64, stop: u64, trailing: Option<u32>) -> NewOrder {
    NewOrder {
        order_type: OrderType::Conditional {
            kind: ConditionalKind::StopLoss,
            limit: Some(Price(stop - 5)),
            trigger: Trigger {
                stop_price: Some(Price(stop)),
                trailing_delta: trailing,
            },
        },
        ..NewOrder::plain(
            OrderId(id),
            Side::Sell,
            OrderType::Market,
            TimeInForce::Gtc,
            OrderSize::Base(Qty(20)),
        )
    }
}

/// The advanced order types once each, after [`commands`]' last trade at
/// 100.00: a stop, a trailing stop, an iceberg, a GTD order, an OCO and an
/// OTO, an amend of a stop price, a list canceled, and time passing.
fn advanced_commands() -> Vec<Command> {
    let iceberg = NewOrder {
        iceberg_qty: Some(Qty(20)),
        ..NewOrder::plain(
            OrderId(12),
            Side::Sell,
            OrderType::Limit { price: Price(10_100) },
            TimeInForce::Gtc,
            OrderSize::Base(Qty(100)),
        )
    };
    let gtd = NewOrder {
        good_till: Some(Timestamp((NOW_MS + 1_000) * 1_000_000)),
        ..NewOrder::plain(
            OrderId(13),
            Side::Buy,
            OrderType::Limit { price: Price(9_000) },
            TimeInForce::Gtd,
            OrderSize::Base(Qty(10)),
        )
    };
    let maker = NewOrder {
        post_only: true,
        ..NewOrder::plain(
            OrderId(16),
            Side::Sell,
            OrderType::Limit { price: Price(10_200) },
            TimeInForce::Gtc,
            OrderSize::Base(Qty(20)),
        )
    };
    let oco = NewOrderList {
        list_id: OrderId(14),
        client_list_id: ClientOrderId::new("oco").ok(),
        kind: ListKind::Oco,
        orders: [stop(15, 9_900, None), maker],
    };
    let working = NewOrder::plain(
        OrderId(18),
        Side::Buy,
        OrderType::Limit { price: Price(9_500) },
        TimeInForce::Gtc,
        OrderSize::Base(Qty(10)),
    );
    let oto = NewOrderList {
        list_id: OrderId(17),
        client_list_id: None,
        kind: ListKind::Oto,
        orders: [working, stop(19, 9_400, Some(100))],
    };
    let sweep = NewOrder::plain(
        OrderId(20),
        Side::Sell,
        OrderType::Limit { price: Price(9_500) },
        TimeInForce::Ioc,
        OrderSize::Base(Qty(1_000)),
    );
    let later = |mut c: Command| {
        c.timestamp = Timestamp((NOW_MS + 2_000) * 1_000_000);
        c
    };
    vec![
        cmd(4, CommandBody::NewOrder(stop(10, 9_950, None))),
        cmd(4, CommandBody::NewOrder(stop(11, 9_950, Some(50)))),
        cmd(4, CommandBody::NewOrder(iceberg)),
        cmd(4, CommandBody::NewOrder(gtd)),
        cmd(4, CommandBody::NewOrderList(Box::new(oco))),
        cmd(4, CommandBody::NewOrderList(Box::new(oto))),
        cmd(
            4,
            CommandBody::Amend(Amend {
                target: OrderRef::Id(OrderId(10)),
                new_qty: None,
                new_price: None,
                new_stop_price: Some(Price(9_930)),
            }),
        ),
        cmd(
            4,
            CommandBody::CancelList {
                target: OrderRef::Id(OrderId(14)),
            },
        ),
        // Down to 95.00: the stops fire, the OTO's working order fills and
        // its pending stop is released.
        cmd(5, CommandBody::NewOrder(sweep)),
        later(cmd(0, CommandBody::AdvanceTime)),
    ]
}

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let dir = dir.join(target);
    std::fs::create_dir_all(&dir).expect("corpus directory");
    std::fs::write(dir.join(name), bytes).expect("seed written");
}

/// One journal record as `runtime/src/journal.rs` documents it.
fn record(first: u64, cmds: &[Command]) -> Vec<u8> {
    let symbol = pair().symbol;
    let mut payload = vec![symbol.as_str().len() as u8];
    payload.extend_from_slice(symbol.as_str().as_bytes());
    payload.extend_from_slice(&first.to_le_bytes());
    payload.extend_from_slice(&(cmds.len() as u32).to_le_bytes());
    for c in cmds {
        proto::encode_into(c, &mut payload).expect("encodes");
    }
    let sum = payload.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let mut out = (payload.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(&sum.to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

fn engine_seeds(dir: &Path) {
    let mut book = OrderBook::new(pair()).expect("a valid pair");
    write(dir, "snapshot", "empty", &book.snapshot());
    let mut events = Vec::new();
    for (i, c) in commands().iter().enumerate() {
        write(
            dir,
            "codec",
            &format!("command-{i}"),
            &proto::encode(c).expect("encodes"),
        );
        events.clear();
        book.apply(c, &mut events);
        // Every advanced seed does what it is there for.
        assert!(
            i < 9 || !events.iter().any(|e| matches!(e.body, proto::EventBody::Rejected(_))),
            "seed command {i} rejected: {events:?}"
        );
        // The events of the commands that trade, and of the advanced
        // ones, cover every kind.
        let trades = i == 4 || i == 5 || i >= 9;
        for (j, e) in events.iter().enumerate().filter(|_| trades) {
            let name = format!("event-{i}-{j}");
            write(dir, "codec", &name, &proto::encode(e).expect("encodes"));
        }
        if i == 4 || i == 6 || i == 14 {
            write(dir, "snapshot", &format!("after-{i}"), &book.snapshot());
        }
    }
    let all = commands();
    write(dir, "journal_segment", "one-record", &record(1, &all[..1]));
    let mut two = record(1, &all[..5]);
    two.extend(record(6, &all[5..]));
    write(dir, "journal_segment", "two-records", &two);
    two.truncate(two.len() - 3);
    write(dir, "journal_segment", "torn-tail", &two);
}

fn text_seeds(dir: &Path) {
    let decimals: [(u8, &str); 6] = [
        (0, "12345"),
        (2, "100.05"),
        (4, "0.0010"),
        (8, "1.50000000"),
        (18, "18.446744073709551615"),
        (2, "184467440737095516.15"),
    ];
    for (i, (scale, s)) in decimals.iter().enumerate() {
        let mut bytes = vec![*scale];
        bytes.extend_from_slice(s.as_bytes());
        write(dir, "decimal", &format!("decimal-{i}"), &bytes);
    }
    rest_seeds(dir);
}

/// Requests of the `rest_request` target: a byte choosing the route (0 new
/// order, 1 cancel, 2 amend; all with a form's content type), the query, a
/// newline, the form body. Binance's parameters and symbol names (`BTCEUR`),
/// signed in the query or in the body.
fn rest_seeds(dir: &Path) {
    let signed = format!("timestamp={NOW_MS}&recvWindow=5000&signature=00");
    let orders = [
        "symbol=BTCEUR&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.0100&price=100.05&newClientOrderId=a1&newOrderRespType=ACK",
        "symbol=BTCEUR&side=SELL&type=MARKET&quantity=1.0000&selfTradePreventionMode=EXPIRE_MAKER&newOrderRespType=RESULT",
        "symbol=BTCEUR&side=BUY&type=MARKET&quoteOrderQty=250.00&newOrderRespType=FULL",
        "symbol=BTCEUR&side=SELL&type=LIMIT_MAKER&quantity=0.0010&price=99.95",
    ];
    for (i, body) in orders.iter().enumerate() {
        let bytes = format!("\x00{signed}\n{body}");
        write(dir, "rest_request", &format!("order-{i}"), bytes.as_bytes());
    }
    // The advanced order types: stop, trailing take-profit, iceberg, GTD.
    let advanced = [
        "symbol=BTCEUR&side=SELL&type=STOP_LOSS_LIMIT&timeInForce=GTC&quantity=0.0100&price=99.00&stopPrice=99.50",
        "symbol=BTCEUR&side=BUY&type=TAKE_PROFIT&quantity=0.0100&trailingDelta=150",
        "symbol=BTCEUR&side=SELL&type=LIMIT&timeInForce=GTC&quantity=1.0000&price=101.00&icebergQty=0.1000",
        "symbol=BTCEUR&side=BUY&type=LIMIT&timeInForce=GTD&goodTillDate=4102444800000&quantity=0.0100&price=99.00",
    ];
    for (i, body) in advanced.iter().enumerate() {
        let bytes = format!("\x00{signed}\n{body}");
        write(dir, "rest_request", &format!("advanced-{i}"), bytes.as_bytes());
    }
    // Everything in the query, no body; and split between the two, the
    // signature in the body.
    let in_query = format!(
        "\x00symbol=BTCEUR&side=BUY&type=LIMIT&timeInForce=IOC&quantity=0.0020&price=100.00&{signed}"
    );
    write(dir, "rest_request", "order-4", in_query.as_bytes());
    let split = format!(
        "\x00symbol=BTCEUR&side=SELL&type=LIMIT&timeInForce=FOK\nquantity=0.0030&price=100.10&{signed}"
    );
    write(dir, "rest_request", "order-5", split.as_bytes());
    let cancels = [
        "orderId=42",
        "origClientOrderId=a1&newClientOrderId=c2",
        "orderId=42&origClientOrderId=a1&cancelRestrictions=ONLY_NEW",
    ];
    for (i, q) in cancels.iter().enumerate() {
        let bytes = format!("\x01symbol=BTCEUR&{q}&timestamp={NOW_MS}&signature=00");
        write(
            dir,
            "rest_request",
            &format!("cancel-{i}"),
            bytes.as_bytes(),
        );
    }
    let in_body = format!("\x01\nsymbol=BTCEUR&orderId=7&{signed}");
    write(dir, "rest_request", "cancel-3", in_body.as_bytes());
    let amends = [
        "symbol=BTCEUR&orderId=42&newQty=0.0050",
        "symbol=BTCEUR&origClientOrderId=a1&newQty=0.0010",
    ];
    for (i, body) in amends.iter().enumerate() {
        let bytes = format!("\x02{signed}\n{body}");
        write(dir, "rest_request", &format!("amend-{i}"), bytes.as_bytes());
    }
}

fn main() {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: seeds DIR");
        std::process::exit(2);
    };
    let dir = Path::new(&dir);
    engine_seeds(dir);
    text_seeds(dir);
}
