//! Why a book is not consistent: what [`OrderBook::check_invariants`] and a
//! snapshot restore report. A restored book that fails here is refused, so
//! each variant names the first broken rule and where.
//!
//! [`OrderBook::check_invariants`]: crate::OrderBook::check_invariants

use std::fmt;

use proto::{ClientOrderId, OrderId, PairConfigError, Price, Qty, Seq, Side};

/// The first rule a book (or the parts it is rebuilt from) breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inconsistency {
    /// A level is filed under another price than it holds.
    LevelPrice {
        /// The side of the book.
        side: Side,
        /// The price it is filed under.
        key: Price,
        /// The price the level holds.
        held: Price,
    },
    /// A level with no orders is still on the book.
    EmptyLevel(Side, Price),
    /// An order's links, level, side or price disagree with where it is.
    Mislinked(OrderId, Side, Price),
    /// An order arrived after the one behind it in its level.
    FifoBroken(OrderId, Side, Price),
    /// An order's remaining quantity is zero or above its quantity.
    Remaining {
        /// The order.
        order: OrderId,
        /// What is left of it.
        remaining: Qty,
        /// Its whole quantity.
        qty: Qty,
    },
    /// An order is missing from the id index.
    NotIndexed(OrderId),
    /// An order with a client order id is missing from that index.
    ClientIdNotIndexed(OrderId),
    /// A level's tail is not its last order.
    Tail(Side, Price),
    /// A level's total is not the sum of its orders' remaining quantities.
    Total {
        /// The side of the book.
        side: Side,
        /// The level's price.
        price: Price,
        /// The level's total.
        total: Qty,
        /// The sum of its orders.
        sum: u64,
    },
    /// The orders linked in levels, stored and indexed differ in number.
    OrderCount {
        /// Orders reached through the levels.
        linked: usize,
        /// Orders in the slab.
        stored: usize,
        /// Orders in the id index.
        indexed: usize,
    },
    /// The orders with a client order id and that index differ in number.
    ClientIdCount {
        /// Linked orders with a client order id.
        linked: usize,
        /// Entries in the client id index.
        indexed: usize,
    },
    /// Price levels are stored that no side refers to.
    LeakedLevels,
    /// The best bid is at or above the best ask.
    Crossed {
        /// The best bid.
        bid: Price,
        /// The best ask.
        ask: Price,
    },
    /// The pair's config is not valid.
    Config(PairConfigError),
    /// The last seq leaves no room for the seqs the book could still emit.
    LastSeq(Seq),
    /// Two orders share an id.
    DuplicateOrderId(OrderId),
    /// Two orders of one user share a client order id.
    DuplicateClientOrderId(ClientOrderId),
    /// An order's price or quantity is outside the pair's rules.
    InvalidOrder(OrderId),
    /// More orders than the pair's `max_open_orders`.
    TooManyOrders,
    /// The orders are not in canonical (best first, FIFO) order.
    NotCanonical,
    /// An order shows more than it has open, nothing, or not its slice.
    Visible(OrderId),
    /// A waiting order is invalid, or the waiting set's indexes disagree.
    Waiting(OrderId),
    /// A placement number is zero, repeated or beyond the counter.
    Placement(OrderId),
    /// The expiry index disagrees with the held GTD orders.
    Expiries,
    /// An open list names an order it does not hold, or the other way round.
    List(OrderId),
    /// The widest bounds held orders may have are narrower than the rules.
    Envelope,
}

impl fmt::Display for Inconsistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Inconsistency as I;
        match self {
            I::LevelPrice { side, key, held } => {
                write!(f, "{side:?} level keyed {key} holds price {held}")
            }
            I::EmptyLevel(side, price) => write!(f, "{side:?} level {price} is empty"),
            I::Mislinked(id, side, price) => {
                write!(f, "order {id} is mislinked at {side:?} {price}")
            }
            I::FifoBroken(id, side, price) => {
                write!(f, "order {id} breaks FIFO at {side:?} {price}")
            }
            I::Remaining {
                order,
                remaining,
                qty,
            } => write!(f, "order {order} has remaining {remaining} of {qty}"),
            I::NotIndexed(id) => write!(f, "order {id} missing from the id index"),
            I::ClientIdNotIndexed(id) => {
                write!(f, "order {id} missing from the client id index")
            }
            I::Tail(side, price) => write!(f, "{side:?} level {price} tail is not its last order"),
            I::Total {
                side,
                price,
                total,
                sum,
            } => write!(f, "{side:?} level {price} total {total} != sum {sum}"),
            I::OrderCount {
                linked,
                stored,
                indexed,
            } => write!(
                f,
                "{linked} linked orders, {stored} in slab, {indexed} indexed"
            ),
            I::ClientIdCount { linked, indexed } => {
                write!(f, "{linked} client ids, {indexed} indexed")
            }
            I::LeakedLevels => f.write_str("leaked price levels"),
            I::Crossed { bid, ask } => write!(f, "crossed book: bid {bid} >= ask {ask}"),
            I::Config(e) => e.fmt(f),
            I::LastSeq(seq) => write!(f, "last seq {seq} is out of range"),
            I::DuplicateOrderId(id) => write!(f, "duplicate order id {id}"),
            I::DuplicateClientOrderId(cid) => write!(f, "duplicate client order id {cid}"),
            I::InvalidOrder(id) => write!(f, "order {id} has invalid price or quantity"),
            I::TooManyOrders => f.write_str("more orders than max_open_orders"),
            I::NotCanonical => f.write_str("orders are not in canonical order"),
            I::Visible(id) => write!(f, "order {id} shows a wrong visible quantity"),
            I::Waiting(id) => write!(f, "waiting order {id} is invalid or misindexed"),
            I::Placement(id) => write!(f, "order {id} has a bad placement number"),
            I::Expiries => f.write_str("the expiry index disagrees with the GTD orders"),
            I::List(id) => write!(f, "order list {id} disagrees with its orders"),
            I::Envelope => f.write_str("the held orders' bounds are narrower than the rules"),
        }
    }
}

impl std::error::Error for Inconsistency {}
