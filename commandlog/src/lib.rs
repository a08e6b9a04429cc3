//! The port between the gateway and the matching core: where commands go
//! ([`CommandLog`]), what comes back ([`EventRecord`], seen by an
//! [`Observer`] and by the request waiting for it through [`Waiters`]), and
//! each pair's live counters ([`PairStatus`]) the gateway sheds load on.
//!
//! Two backends implement it: `runtime` (embedded: a file journal in this
//! process) and `cluster` (distributed: the Kafka command log). The gateway
//! depends on this crate only, so it links neither.
//!
//! Architecture Invariant: nothing here knows Prometheus or a backend's
//! storage. The counters are atomics; whoever exports metrics reads them.

mod accounts;
mod clock;
mod port;
mod status;
mod waiters;

pub use accounts::{
    AccountUpdate, Accounts, AssetAudit, AuditFuture, AuditReport, Movement, MovementFuture,
    MovementKind, MovementOutcome, SharedAccountUpdate, asset_by_name,
};
pub use clock::now_ns;
pub use port::{
    CommandLog, EventRecord, ListError, ListFuture, Listing, Observer, SubmitError, SubmitFuture,
    Submitted,
};
pub use status::{Lag, LagUnit, PairStatus};
pub use waiters::{RECENT, Waiters};
