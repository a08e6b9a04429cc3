//! Codec properties: every command and event survives a round trip through
//! the binary and the JSON encodings; arbitrary bytes decode to an error,
//! never a panic.

use proptest::prelude::*;
use proto::*;

fn symbol() -> impl Strategy<Value = Symbol> {
    ("[A-Z0-9]{1,7}", "[A-Z0-9]{1,7}")
        .prop_map(|(b, q)| Symbol::new(&format!("{b}-{q}")).expect("valid by construction"))
}

fn client_id() -> impl Strategy<Value = Option<ClientOrderId>> {
    proptest::option::of(
        "[A-Za-z0-9._:/-]{1,36}".prop_map(|s| ClientOrderId::new(&s).expect("valid")),
    )
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Buy), Just(Side::Sell)]
}

fn tif() -> impl Strategy<Value = TimeInForce> {
    prop_oneof![
        Just(TimeInForce::Gtc),
        Just(TimeInForce::Ioc),
        Just(TimeInForce::Fok),
        Just(TimeInForce::Gtd)
    ]
}

fn stp() -> impl Strategy<Value = StpMode> {
    prop_oneof![
        Just(StpMode::None),
        Just(StpMode::CancelTaker),
        Just(StpMode::CancelMaker),
        Just(StpMode::CancelBoth)
    ]
}

fn size() -> impl Strategy<Value = OrderSize> {
    prop_oneof![
        any::<u64>().prop_map(|q| OrderSize::Base(Qty(q))),
        any::<u64>().prop_map(|q| OrderSize::Quote(QuoteQty(q))),
        (any::<u64>(), any::<u64>()).prop_map(|(q, b)| OrderSize::BaseWithin {
            qty: Qty(q),
            budget: QuoteQty(b),
        }),
    ]
}

fn order_type() -> BoxedStrategy<OrderType> {
    let kind = prop_oneof![
        Just(ConditionalKind::StopLoss),
        Just(ConditionalKind::TakeProfit)
    ];
    let conditional = (
        kind,
        proptest::option::of(any::<u64>()),
        proptest::option::of(any::<u64>()),
        proptest::option::of(any::<u32>()),
    )
        .prop_map(|(kind, limit, stop, delta)| OrderType::Conditional {
            kind,
            limit: limit.map(Price),
            trigger: Trigger {
                stop_price: stop.map(Price),
                trailing_delta: delta,
            },
        });
    prop_oneof![
        any::<u64>().prop_map(|p| OrderType::Limit { price: Price(p) }),
        Just(OrderType::Market),
        conditional
    ]
    .boxed()
}

fn new_order() -> BoxedStrategy<NewOrder> {
    (
        (any::<u64>(), client_id(), side(), order_type(), tif()),
        (any::<bool>(), proptest::option::of(stp()), size()),
        (
            proptest::option::of(any::<u64>()),
            proptest::option::of(any::<u64>()),
        ),
    )
        .prop_map(
            |((id, cid, side, order_type, tif), (post_only, stp, size), (iceberg, till))| {
                NewOrder {
                    order_id: OrderId(id),
                    client_order_id: cid,
                    side,
                    order_type,
                    time_in_force: tif,
                    post_only,
                    stp,
                    size,
                    iceberg_qty: iceberg.map(Qty),
                    good_till: till.map(Timestamp),
                }
            },
        )
        .boxed()
}

fn order_ref() -> impl Strategy<Value = OrderRef> {
    prop_oneof![
        any::<u64>().prop_map(|id| OrderRef::Id(OrderId(id))),
        "[a-z0-9]{1,36}".prop_map(|s| OrderRef::Client(ClientOrderId::new(&s).expect("valid"))),
    ]
}

fn status() -> impl Strategy<Value = TradingStatus> {
    prop_oneof![
        Just(TradingStatus::Trading),
        Just(TradingStatus::Halt),
        Just(TradingStatus::Break),
    ]
}

/// An operator's change: any subset of the fields.
fn pair_change() -> impl Strategy<Value = PairChange> {
    use proptest::option::of;
    (
        of(status()),
        of(any::<[u64; 7]>()),
        of(any::<u32>()),
        of(any::<bool>()),
        of(any::<[u16; 2]>()),
    )
        .prop_map(|(status, n, orders, flag, bps)| PairChange {
            status,
            tick_size: n.map(|n| Price(n[0])),
            lot_size: n.map(|n| Qty(n[1])),
            min_qty: n.map(|n| Qty(n[2])),
            max_qty: n.map(|n| Qty(n[3])),
            max_price: n.map(|n| Price(n[4])),
            min_notional: n.map(|n| QuoteQty(n[5])),
            max_notional: n.map(|n| QuoteQty(n[6])),
            max_open_orders: orders,
            default_stp: flag.map(|f| {
                if f {
                    StpMode::CancelBoth
                } else {
                    StpMode::None
                }
            }),
            advanced: AdvancedChange {
                iceberg: flag,
                lists: flag.map(|f| !f),
                ..AdvancedChange::default()
            },
            maker_fee_bps: bps.map(|b| b[0]),
            taker_fee_bps: bps.map(|b| b[1]),
        })
}

fn command() -> BoxedStrategy<Command> {
    let list = (
        any::<u64>(),
        client_id(),
        any::<bool>(),
        new_order(),
        new_order(),
    )
        .prop_map(|(id, cid, oco, a, b)| {
            CommandBody::NewOrderList(Box::new(NewOrderList {
                list_id: OrderId(id),
                client_list_id: cid,
                kind: if oco { ListKind::Oco } else { ListKind::Oto },
                orders: [a, b],
            }))
        });
    let body = prop_oneof![
        new_order().prop_map(CommandBody::NewOrder),
        list,
        order_ref().prop_map(|target| CommandBody::CancelList { target }),
        Just(CommandBody::AdvanceTime),
        pair_change().prop_map(|c| CommandBody::ChangePair(Box::new(c))),
        order_ref().prop_map(|target| CommandBody::Cancel { target }),
        (
            order_ref(),
            proptest::option::of(any::<u64>()),
            proptest::option::of(any::<u64>()),
            proptest::option::of(any::<u64>())
        )
            .prop_map(|(target, q, p, s)| CommandBody::Amend(Amend {
                target,
                new_qty: q.map(Qty),
                new_price: p.map(Price),
                new_stop_price: s.map(Price),
            })),
        Just(CommandBody::CancelAll),
    ];
    (symbol(), any::<u64>(), any::<u64>(), body)
        .prop_map(|(pair, user, ts, body)| Command {
            pair,
            user: UserId(user),
            timestamp: Timestamp(ts),
            body,
        })
        .boxed()
}

/// The events of conditional orders and order lists.
fn list_event() -> BoxedStrategy<EventBody> {
    prop_oneof![
        (any::<[u64; 3]>(), client_id(), side()).prop_map(|(n, cid, side)| {
            EventBody::Triggered(Triggered {
                order_id: OrderId(n[0]),
                client_order_id: cid,
                user: UserId(n[1]),
                side,
                price: Price(n[2]),
            })
        }),
        (any::<[u64; 2]>(), client_id(), side()).prop_map(|(n, cid, side)| {
            EventBody::Released(Released {
                order_id: OrderId(n[0]),
                client_order_id: cid,
                user: UserId(n[1]),
                side,
            })
        }),
        (any::<[u64; 4]>(), client_id(), any::<bool>()).prop_map(|(n, cid, oco)| {
            EventBody::ListAccepted(ListAccepted {
                list_id: OrderId(n[0]),
                client_list_id: cid,
                user: UserId(n[1]),
                kind: if oco { ListKind::Oco } else { ListKind::Oto },
                orders: [OrderId(n[2]), OrderId(n[3])],
            })
        }),
        (any::<[u64; 2]>(), client_id()).prop_map(|(n, cid)| EventBody::ListDone(ListDone {
            list_id: OrderId(n[0]),
            client_list_id: cid,
            user: UserId(n[1]),
        })),
        (symbol(), pair_change(), status()).prop_map(|(s, c, status)| {
            EventBody::PairChanged(PairChanged {
                config: c.merged(&PairConfig::simple(s)),
                status,
            })
        }),
    ]
    .boxed()
}

fn event() -> BoxedStrategy<Event> {
    let body = prop_oneof![
        (
            new_order(),
            any::<u64>(),
            proptest::option::of(any::<u64>())
        )
            .prop_map(|(o, u, list)| EventBody::Accepted(
                o.accepted_in(UserId(u), list.map(OrderId))
            )),
        list_event(),
        (
            any::<u64>(),
            proptest::option::of(any::<u64>()),
            client_id(),
            0..RejectCode::ALL.len()
        )
            .prop_map(|(u, id, cid, i)| EventBody::Rejected(Rejected {
                user: UserId(u),
                command: CommandKind::Amend,
                order_id: id.map(OrderId),
                client_order_id: cid,
                code: RejectCode::ALL[i],
            })),
        (any::<[u64; 8]>(), side(), size()).prop_map(|(n, side, rem)| EventBody::Trade(Trade {
            trade_id: TradeId(n[0]),
            price: Price(n[1]),
            qty: Qty(n[2]),
            taker_side: side,
            maker_order_id: OrderId(n[3]),
            maker_user: UserId(n[4]),
            maker_remaining: Qty(n[5]),
            taker_order_id: OrderId(n[6]),
            taker_user: UserId(n[7]),
            taker_remaining: rem,
        })),
        (any::<u64>(), client_id(), any::<u64>(), side(), size()).prop_map(
            |(id, cid, u, side, rem)| EventBody::Canceled(Canceled {
                order_id: OrderId(id),
                client_order_id: cid,
                user: UserId(u),
                side,
                remaining: rem,
                reason: CancelReason::SelfTradePrevention,
            })
        ),
        (
            any::<[u64; 5]>(),
            client_id(),
            side(),
            any::<bool>(),
            proptest::option::of(any::<u64>())
        )
            .prop_map(|(n, cid, side, kept, stop)| EventBody::Amended(Amended {
                order_id: OrderId(n[0]),
                client_order_id: cid,
                user: UserId(n[1]),
                side,
                price: Price(n[2]),
                stop_price: stop.map(Price),
                qty: Qty(n[3]),
                remaining: Qty(n[4]),
                priority_kept: kept,
            })),
        (side(), any::<u64>(), any::<u64>()).prop_map(|(side, p, q)| EventBody::BookDelta(
            BookDelta {
                side,
                price: Price(p),
                qty: Qty(q)
            }
        )),
        (any::<u64>(), any::<u32>()).prop_map(|(u, count)| EventBody::CanceledAll(CanceledAll {
            user: UserId(u),
            count
        })),
    ];
    (symbol(), any::<u64>(), any::<u64>(), body)
        .prop_map(|(pair, seq, ts, body)| Event {
            pair,
            seq: Seq(seq),
            timestamp: Timestamp(ts),
            body,
        })
        .boxed()
}

proptest! {
    #[test]
    fn commands_round_trip(cmd in command()) {
        let bytes = encode(&cmd).unwrap();
        prop_assert_eq!(decode::<Command>(&bytes), Ok(cmd.clone()));
        let json = serde_json::to_string(&cmd).unwrap();
        prop_assert_eq!(serde_json::from_str::<Command>(&json).unwrap(), cmd);
    }

    #[test]
    fn events_round_trip(ev in event()) {
        let bytes = encode(&ev).unwrap();
        prop_assert_eq!(decode::<Event>(&bytes), Ok(ev));
        let json = serde_json::to_string(&ev).unwrap();
        prop_assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), ev);
    }

    #[test]
    fn event_batches_round_trip(evs in proptest::collection::vec(event(), 0..50)) {
        let bytes = encode(&evs).unwrap();
        prop_assert_eq!(decode::<Vec<Event>>(&bytes), Ok(evs));
    }

    #[test]
    fn runs_of_commands_round_trip(cmds in proptest::collection::vec(command(), 1..40)) {
        let mut run = Vec::new();
        for c in &cmds {
            encode_into(c, &mut run).unwrap();
        }
        prop_assert_eq!(decode_run::<Command>(&run), Ok(cmds.clone()));
        // A run cut anywhere but at an encoding's end is an error, not a shorter run.
        let one = encode(&cmds[0]).unwrap();
        prop_assert_eq!(decode_run::<Command>(&one), Ok(vec![cmds[0].clone()]));
        prop_assert!(decode_run::<Command>(&one[..one.len() - 1]).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_run::<Command>(&bytes);
        let _ = decode::<Command>(&bytes);
        let _ = decode::<Event>(&bytes);
        let _ = decode::<Vec<Event>>(&bytes);
    }

    #[test]
    fn corrupted_encodings_never_panic(cmd in command(), at in any::<usize>(), byte in any::<u8>()) {
        let mut bytes = encode(&cmd).unwrap();
        let i = at % bytes.len();
        bytes[i] = byte;
        let _ = decode::<Command>(&bytes);
        bytes.truncate(i);
        let _ = decode::<Command>(&bytes);
    }
}

#[test]
fn rejects_wrong_version_trailing_bytes_and_empty() {
    let cmd = Command {
        pair: Symbol::new("BTC-EUR").unwrap(),
        user: UserId(7),
        timestamp: Timestamp(1),
        body: CommandBody::CancelAll,
    };
    let mut bytes = encode(&cmd).unwrap();
    assert_eq!(decode::<Command>(&[]), Err(CodecError::Empty));
    bytes.push(0);
    assert_eq!(decode::<Command>(&bytes), Err(CodecError::TrailingBytes(1)));
    bytes.pop();
    bytes[0] = FORMAT_VERSION + 1;
    assert_eq!(
        decode::<Command>(&bytes),
        Err(CodecError::UnsupportedVersion(FORMAT_VERSION + 1))
    );
}

#[test]
fn rejects_oversized_input_and_huge_length_prefixes() {
    let big = vec![FORMAT_VERSION; MAX_MESSAGE_BYTES + 1];
    assert_eq!(
        decode::<Vec<Event>>(&big),
        Err(CodecError::TooLarge(MAX_MESSAGE_BYTES + 1))
    );
    // A vector claiming 2^60 elements must fail fast without allocating them.
    let mut claim = vec![FORMAT_VERSION, 255];
    claim.extend_from_slice(&(1u64 << 60).to_le_bytes());
    assert!(matches!(
        decode::<Vec<Event>>(&claim),
        Err(CodecError::Malformed(_))
    ));
}

#[test]
fn invalid_identifiers_inside_messages_are_rejected() {
    let cmd = Command {
        pair: Symbol::new("BTC-EUR").unwrap(),
        user: UserId(7),
        timestamp: Timestamp(1),
        body: CommandBody::CancelAll,
    };
    let mut bytes = encode(&cmd).unwrap();
    // Byte 1 is the symbol's length prefix, then its text: make it lower case.
    assert_eq!(&bytes[2..9], b"BTC-EUR");
    bytes[2] = b'b';
    assert!(matches!(
        decode::<Command>(&bytes),
        Err(CodecError::Malformed(_))
    ));
}
