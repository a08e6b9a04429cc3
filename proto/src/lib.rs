//! The vocabulary every process shares: identifiers, fixed-point numbers,
//! commands, events, reject codes and the binary codec.
//!
//! Architecture Invariant: no floating point and no I/O here; everything is
//! plain data with serde derives, so the engine, the gateway, the logs and the
//! store agree on one definition.

mod codec;
mod command;
mod event;
mod fixed;
mod hash;
mod ids;
mod pair;
mod reject;
mod spec;

pub use codec::{
    CodecError, FORMAT_VERSION, MAX_MESSAGE_BYTES, decode, decode_run, encode, encode_into,
};
pub use command::{
    Amend, Command, CommandBody, CommandKind, ConditionalKind, ListKind, MAX_ICEBERG_PARTS,
    MAX_TRAILING_DELTA, MIN_TRAILING_DELTA, NewOrder, NewOrderList, OrderRef, OrderSize, OrderType,
    Side, StpMode, TimeInForce, Trigger,
};
pub use event::{
    Accepted, Amended, BookDelta, CancelReason, Canceled, CanceledAll, Event, EventBody,
    ListAccepted, ListDone, PairChanged, Rejected, Released, Trade, Triggered,
};
pub use fixed::{
    DecimalError, MAX_DECIMAL_LEN, MAX_SCALE, MAX_VALUE, Price, Qty, QuoteQty, format_decimal,
    parse_amount, parse_decimal, pow10,
};
pub use hash::fnv1a;
pub use ids::{
    ClientOrderId, IdError, InstanceId, OrderId, Seq, Symbol, Timestamp, TradeId, UserId,
};
pub use pair::{
    AdvancedChange, AdvancedOrders, Fees, PairChange, PairConfig, PairConfigError, TradingStatus,
};
pub use reject::RejectCode;
pub use spec::{DEFAULT_FEE_BPS, DEFAULT_MAX_OPEN_ORDERS, PairSpec, SpecError, default_stp};
