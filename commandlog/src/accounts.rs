//! What the port carries for the risk stage: operators' movements, the
//! balances each change leaves, and the audit of a live shard.

use std::fmt;
use std::sync::Arc;

use accounts::{AssetId, AssetInfo, Balance, Reference, RiskCode};
use proto::UserId;
use serde::{Deserialize, Serialize};

use crate::port::{SubmitError, SubmitFuture};

/// Which way an operator's movement goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MovementKind {
    /// Credits `free`.
    Deposit,
    /// Debits `free` (never `locked`).
    Withdraw,
}

/// A deposit or a withdrawal, as an operator asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Movement {
    /// Deposit or withdraw.
    pub kind: MovementKind,
    /// Whose account.
    pub user: UserId,
    /// Which asset.
    pub asset: AssetId,
    /// How much, at the asset's scale.
    pub amount: u128,
    /// The idempotency key: a second movement with it changes nothing.
    pub reference: Reference,
}

/// What a journaled movement did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MovementOutcome {
    /// Applied; the account's balance after it.
    Applied(Balance),
    /// The reference was used before; nothing changed.
    Duplicate,
    /// Refused; nothing changed and nothing was journaled.
    Refused(RiskCode),
}

/// One user's balances after a change, as the risk stage publishes them
/// once the change is in its log: the source of `GET /account` views and
/// of the user stream's `outboundAccountPosition` and `balanceUpdate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountUpdate {
    /// Whose account.
    pub user: UserId,
    /// When the risk stage applied the change (ns since the epoch).
    pub time_ns: u64,
    /// Every asset of the user that the change touched, with its balance
    /// after it.
    pub balances: Vec<(AssetId, Balance)>,
    /// Set when the change is an operator's movement: the signed amount.
    pub movement: Option<(AssetId, i128)>,
}

/// A live shard's audit: conservation per asset and holds against open
/// orders, checked on one consistent state by the shard's single writer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditReport {
    /// Per asset: its name, the sum of `free + locked` over every account
    /// (fee accounts included), and deposits − withdrawals.
    pub assets: Vec<AssetAudit>,
    /// Orders the shard holds funds for.
    pub open_holds: usize,
    /// What failed; empty when the audit passed.
    pub failures: Vec<String>,
}

/// One asset's line of an [`AuditReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetAudit {
    /// The asset.
    pub asset: String,
    /// Sum of `free + locked` over all accounts, fee accounts included.
    pub held: u128,
    /// Deposits − withdrawals (+ received − sent across shards).
    pub expected: u128,
    /// What the fee account holds.
    pub fees: u128,
}

/// The risk stage behind a [`crate::CommandLog`], where there is one.
pub trait Accounts: Send + Sync + fmt::Debug + 'static {
    /// Every asset, in `AssetId` order, with its scale (a listed pair may
    /// add some).
    fn assets(&self) -> Vec<AssetInfo>;
    /// Journals and applies a movement; returns once it is in the log (or
    /// was refused, leaving nothing).
    fn move_funds(&self, movement: Movement) -> MovementFuture<'_>;
    /// Audits the live state.
    fn audit(&self) -> AuditFuture<'_>;
}

/// What [`Accounts::move_funds`] returns.
pub type MovementFuture<'a> = SubmitFuture<'a, MovementOutcome>;

/// What [`Accounts::audit`] returns.
pub type AuditFuture<'a> = SubmitFuture<'a, AuditReport>;

/// Looks an asset up by name.
pub fn asset_by_name(assets: &[AssetInfo], name: &str) -> Option<AssetId> {
    assets
        .iter()
        .position(|a| a.name == name)
        .and_then(|i| u16::try_from(i).ok())
        .map(AssetId)
}

/// An update shared by every observer that sees it.
pub type SharedAccountUpdate = Arc<AccountUpdate>;

impl From<RiskCode> for SubmitError {
    fn from(code: RiskCode) -> Self {
        SubmitError::Refused(code)
    }
}
