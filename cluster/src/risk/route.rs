//! Which log each thing goes to with accounts on, and what comes back.

use commandlog::{MovementOutcome, SubmitError};
use proto::{Command, CommandBody, Symbol};

use crate::kafka::EventBatch;
use crate::risk::{Outcome, RiskInput, ShardId};

/// Where a gateway produces a command when accounts are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// New orders, order lists and amends: to the `risk` partition of the
    /// user's shard, which checks and locks them and forwards what it
    /// accepts.
    Risk {
        /// The shard (= the partition).
        shard: u16,
    },
    /// Cancels (of orders, lists, all of a user's): straight to the pair's
    /// `orders` partition. The order was forwarded before it was
    /// acknowledged, so a cancel sent after its ACK always lands after it;
    /// a cancel needs no check (its `Canceled` events release the holds
    /// when they are settled). So does the passing of time, which holds
    /// nothing either.
    Orders,
}

/// The route of `cmd` among `shards` shards.
pub fn route(cmd: &Command, shards: u16) -> Route {
    match cmd.body {
        CommandBody::NewOrder(_) | CommandBody::NewOrderList(_) | CommandBody::Amend(_) => {
            Route::Risk {
                shard: ShardId::of_user(cmd.user, shards),
            }
        }
        CommandBody::Cancel { .. }
        | CommandBody::CancelAll
        | CommandBody::CancelList { .. }
        | CommandBody::AdvanceTime
        | CommandBody::ChangePair(_) => Route::Orders,
    }
}

/// A command's decision as the port answers a submit: the pair and
/// position it was forwarded to, or why not.
pub fn submitted(outcome: Outcome) -> Result<(Symbol, u64), SubmitError> {
    match outcome {
        Outcome::Forwarded { pair, position } => Ok((pair, position)),
        Outcome::Refused(code) => Err(SubmitError::Refused(code)),
        Outcome::Moved(_) | Outcome::Audited(_) | Outcome::Misrouted => Err(SubmitError::Store(
            "the risk stage answered another request kind; check accounts.shards on every role"
                .into(),
        )),
    }
}

/// A movement's decision as the port answers it.
pub fn moved(outcome: Outcome) -> Result<MovementOutcome, SubmitError> {
    match outcome {
        Outcome::Moved(m) => Ok(m),
        Outcome::Refused(code) => Ok(MovementOutcome::Refused(code)),
        _ => Err(SubmitError::Store(
            "the risk stage did not take the movement; check accounts.shards on every role".into(),
        )),
    }
}

/// The settlement input an events record (at `offset` of events partition
/// `partition`) gives `shard`: its events that concern the shard, or
/// nothing when none does. `after` is the offset after the feed's previous
/// settled record of the partition.
pub fn settlement(
    shard: ShardId,
    partition: i32,
    offset: i64,
    after: i64,
    batch: &EventBatch,
) -> Option<RiskInput> {
    let events: Vec<proto::Event> = batch
        .records
        .iter()
        .flat_map(|(_, events)| events.iter())
        .filter(|e| shard.concerns(e))
        .copied()
        .collect();
    (!events.is_empty()).then_some(RiskInput::Settle {
        partition,
        offset,
        after,
        events,
    })
}

#[cfg(test)]
mod tests {
    use accounts::RiskCode;
    use engine::OrderBook;
    use proto::{
        NewOrder, OrderId, OrderRef, OrderSize, OrderType, PairConfig, Price, Qty, Side,
        TimeInForce, Timestamp, UserId,
    };

    use super::*;

    fn order(user: u64, id: u64, side: Side) -> Command {
        Command {
            pair: Symbol::new("BTC-EUR").unwrap(),
            user: UserId(user),
            timestamp: Timestamp(id),
            body: CommandBody::NewOrder(NewOrder::plain(
                OrderId(id),
                side,
                OrderType::Limit { price: Price(10) },
                TimeInForce::Gtc,
                OrderSize::Base(Qty(1)),
            )),
        }
    }

    #[test]
    fn orders_and_amends_go_through_the_users_shard_and_cancels_do_not() {
        assert_eq!(route(&order(7, 1, Side::Buy), 4), Route::Risk { shard: 3 });
        assert_eq!(route(&order(7, 1, Side::Buy), 1), Route::Risk { shard: 0 });
        let cancel = Command {
            body: CommandBody::Cancel {
                target: OrderRef::Id(OrderId(1)),
            },
            ..order(7, 1, Side::Buy)
        };
        assert_eq!(route(&cancel, 4), Route::Orders);
    }

    #[test]
    fn lists_go_through_the_users_shard_and_list_cancels_and_time_do_not() {
        let CommandBody::NewOrder(o) = order(7, 1, Side::Buy).body else {
            unreachable!("an order");
        };
        let list = Command {
            body: CommandBody::NewOrderList(Box::new(proto::NewOrderList {
                list_id: OrderId(3),
                client_list_id: None,
                kind: proto::ListKind::Oto,
                orders: [
                    o,
                    NewOrder {
                        order_id: OrderId(2),
                        ..o
                    },
                ],
            })),
            ..order(7, 1, Side::Buy)
        };
        assert_eq!(route(&list, 4), Route::Risk { shard: 3 });
        let cancel_list = Command {
            body: CommandBody::CancelList {
                target: OrderRef::Id(OrderId(3)),
            },
            ..order(7, 1, Side::Buy)
        };
        assert_eq!(route(&cancel_list, 4), Route::Orders);
        let time = pipeline::advance_time(Symbol::new("BTC-EUR").unwrap());
        assert_eq!(route(&time, 4), Route::Orders);
    }

    #[test]
    fn outcomes_become_the_ports_answers() {
        let btc = Symbol::new("BTC-EUR").unwrap();
        assert_eq!(
            submitted(Outcome::Forwarded {
                pair: btc,
                position: 9
            }),
            Ok((btc, 9))
        );
        assert_eq!(
            submitted(Outcome::Refused(RiskCode::InsufficientBalance)),
            Err(SubmitError::Refused(RiskCode::InsufficientBalance))
        );
        assert!(submitted(Outcome::Misrouted).is_err());
        assert_eq!(
            moved(Outcome::Moved(MovementOutcome::Duplicate)),
            Ok(MovementOutcome::Duplicate)
        );
        assert!(moved(Outcome::Misrouted).is_err());
    }

    #[test]
    fn a_shard_is_fed_only_the_events_of_its_users_that_move_money() {
        let pair = Symbol::new("BTC-EUR").unwrap();
        let mut book = OrderBook::new(PairConfig::simple(pair)).unwrap();
        let maker = book.apply_one(&order(2, 1, Side::Sell));
        let taker = book.apply_one(&order(4, 2, Side::Buy));
        let even = ShardId { index: 0, count: 2 };
        let odd = ShardId { index: 1, count: 2 };
        // Resting an order moves no money: no shard is fed its events.
        let resting = EventBatch {
            pair,
            records: vec![(1, maker)],
        };
        assert!(settlement(even, 0, 5, 0, &resting).is_none());
        assert!(settlement(odd, 0, 5, 0, &resting).is_none());
        // The trade names users 2 and 4, both of the even shard.
        let traded = EventBatch {
            pair,
            records: vec![(2, taker)],
        };
        assert!(settlement(odd, 0, 6, 0, &traded).is_none());
        let Some(RiskInput::Settle {
            partition,
            offset,
            events,
            ..
        }) = settlement(even, 0, 6, 0, &traded)
        else {
            panic!("the traders' shard is fed");
        };
        assert_eq!((partition, offset), (0, 6));
        assert!(events.iter().all(accounts::moves_money));
        assert!(
            events
                .iter()
                .any(|e| matches!(e.body, proto::EventBody::Trade(_)))
        );
    }
}
