//! The invariant every state of a shard keeps, checked from scratch.

use std::collections::BTreeMap;
use std::fmt;

use proto::UserId;

use crate::{AssetId, Shard};

/// A broken invariant: a bug (a fill its hold did not cover included, which
/// shows as a conservation failure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditError {
    /// For `asset`, the accounts (fee account included) do not hold
    /// deposits - withdrawals + received - sent.
    Conservation {
        /// The asset.
        asset: AssetId,
        /// Sum of free + locked over all accounts, fee account included.
        held: u128,
        /// What the flows say it should be (can be negative only by a bug).
        expected: i128,
    },
    /// A user's `locked` differs from the sum of their orders' holds.
    Locked {
        /// The user.
        user: UserId,
        /// The asset.
        asset: AssetId,
        /// What the account says.
        locked: u128,
        /// What the holds add up to.
        holds: u128,
    },
}

impl fmt::Display for AuditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuditError::Conservation {
                asset,
                held,
                expected,
            } => write!(
                f,
                "asset {}: accounts hold {held}, flows say {expected}",
                asset.0
            ),
            AuditError::Locked {
                user,
                asset,
                locked,
                holds,
            } => write!(
                f,
                "user {user} asset {}: locked {locked} but holds sum to {holds}",
                asset.0
            ),
        }
    }
}

impl std::error::Error for AuditError {}

impl Shard {
    /// Checks, for every asset, that the accounts (fee accounts included)
    /// hold exactly deposits - withdrawals + received - sent (a single
    /// shard holding both sides of every trade has received == sent), and
    /// that each user's `locked` equals the sum of their orders' holds (an
    /// OCO list's one hold counted once for its two orders).
    /// Returns every failure found.
    pub fn audit(&self) -> Result<(), Vec<AuditError>> {
        let s = &self.state;
        let mut errors = Vec::new();
        let mut held: Vec<i128> = s.fee_accounts.iter().map(|&v| to_i128(v)).collect();
        for (&(_, asset), b) in &s.balances {
            let i = usize::from(asset.0);
            held[i] += to_i128(b.free) + to_i128(b.locked);
        }
        for (i, (t, &held)) in s.totals.iter().zip(&held).enumerate() {
            let expected = to_i128(t.deposits) - to_i128(t.withdrawals) + to_i128(t.received)
                - to_i128(t.sent);
            if held != expected {
                errors.push(AuditError::Conservation {
                    asset: AssetId(u16::try_from(i).unwrap_or(u16::MAX)),
                    held: u128::try_from(held).unwrap_or(0),
                    expected,
                });
            }
        }
        let mut holds: BTreeMap<(UserId, AssetId), u128> = BTreeMap::new();
        let asset = |pi: u16, side: proto::Side| {
            let p = &s.pairs[usize::from(pi)];
            match side {
                proto::Side::Buy => p.quote,
                proto::Side::Sell => p.base,
            }
        };
        for (&(pi, _), h) in &s.holds {
            // An OCO's orders are paid for by their list's one hold.
            if self.shared_by(pi, h).is_none() {
                *holds.entry((h.user, asset(pi, h.side))).or_default() += h.amount;
            }
        }
        for (&(pi, _), l) in &s.lists {
            if l.amount > 0 {
                *holds.entry((l.user, asset(pi, l.side))).or_default() += l.amount;
            }
        }
        for (&(user, asset), b) in &s.balances {
            let sum = holds.remove(&(user, asset)).unwrap_or(0);
            if b.locked != sum {
                errors.push(AuditError::Locked {
                    user,
                    asset,
                    locked: b.locked,
                    holds: sum,
                });
            }
        }
        for ((user, asset), sum) in holds {
            if sum > 0 {
                errors.push(AuditError::Locked {
                    user,
                    asset,
                    locked: 0,
                    holds: sum,
                });
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// An asset's deposits are capped at `i128::MAX` (`Shard::apply` refuses a
/// deposit beyond it), and every balance and flow is at most its deposits
/// plus what other shards sent; a larger value saturates, which the
/// comparison then reports.
fn to_i128(v: u128) -> i128 {
    i128::try_from(v).unwrap_or(i128::MAX)
}
