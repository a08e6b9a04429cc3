//! Demo funding: on a local demo exchange every user is credited fixed
//! amounts the first time one of their keys authenticates in this process,
//! so the README's walkthrough can trade at once. The movements go through
//! the risk stage like an operator's deposits, with references derived
//! from `(user, asset)`: repeating them (after a restart, or from two
//! requests racing) is a duplicate and never credits twice.

use std::collections::HashSet;
use std::sync::Mutex;

use accounts::{AssetId, AssetInfo, Reference};
use commandlog::{Accounts, Movement, MovementKind, MovementOutcome, asset_by_name};
use proto::UserId;

/// The top bit marks the references the gateway derives; operators' text
/// references are numbered from 1 in the store and never reach it.
const DEMO_BIT: u64 = 1 << 63;

/// The reference of the demo credit of `asset` to `user`: the top bit,
/// the user id above bit 16 (ids below 2^47), the asset below it.
pub fn demo_reference(user: UserId, asset: AssetId) -> Reference {
    let user_bits = (user.0 & ((1 << 47) - 1)) << 16;
    Reference(DEMO_BIT | user_bits | u64::from(asset.0))
}

/// Why a demo funding entry cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DemoFundingError {
    /// The asset is not one of the pairs' assets.
    UnknownAsset(String),
    /// The amount does not parse at the asset's scale, or is zero.
    Amount(String, String),
}

impl std::fmt::Display for DemoFundingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DemoFundingError::UnknownAsset(a) => {
                write!(
                    f,
                    "accounts.demo_funding: {a:?} is not an asset of any pair"
                )
            }
            DemoFundingError::Amount(a, v) => write!(
                f,
                "accounts.demo_funding: {a} = {v:?} is not a positive amount at the asset's scale"
            ),
        }
    }
}

impl std::error::Error for DemoFundingError {}

/// `(asset name, decimal amount)` pairs as amounts at each asset's scale.
pub fn parse_demo_funding(
    entries: &[(String, String)],
    assets: &[AssetInfo],
) -> Result<Vec<(AssetId, u128)>, DemoFundingError> {
    entries
        .iter()
        .map(|(name, amount)| {
            let id = asset_by_name(assets, name)
                .ok_or_else(|| DemoFundingError::UnknownAsset(name.clone()))?;
            let scale = assets[usize::from(id.0)].scale;
            let v = proto::parse_amount(amount, scale)
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| DemoFundingError::Amount(name.clone(), amount.clone()))?;
            Ok((id, v))
        })
        .collect()
}

/// The amounts, and the users credited by this process.
#[derive(Debug, Default)]
pub(crate) struct DemoFunding {
    amounts: Vec<(AssetId, u128)>,
    funded: Mutex<HashSet<UserId>>,
}

impl DemoFunding {
    pub(crate) fn new(amounts: Vec<(AssetId, u128)>) -> Self {
        DemoFunding {
            amounts,
            funded: Mutex::default(),
        }
    }

    /// Credits `user` unless this process already did. A failed movement
    /// leaves the user to be tried again on their next request.
    pub(crate) async fn fund(&self, accounts: Option<&dyn Accounts>, user: UserId) {
        let Some(accounts) = accounts else { return };
        if self.amounts.is_empty() || self.funded.lock().is_ok_and(|f| f.contains(&user)) {
            return;
        }
        let mut all = true;
        for (asset, amount) in &self.amounts {
            let movement = Movement {
                kind: MovementKind::Deposit,
                user,
                asset: *asset,
                amount: *amount,
                reference: demo_reference(user, *asset),
            };
            match accounts.move_funds(movement).await {
                Ok(MovementOutcome::Applied(_) | MovementOutcome::Duplicate) => {}
                Ok(MovementOutcome::Refused(code)) => {
                    tracing::warn!(?code, %user, "demo funding refused");
                    all = false;
                }
                Err(e) => {
                    tracing::warn!(error = %e, %user, "demo funding failed");
                    all = false;
                }
            }
        }
        if all && let Ok(mut f) = self.funded.lock() {
            f.insert(user);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_references_are_distinct_and_never_small() {
        let a = demo_reference(UserId(1), AssetId(0));
        let b = demo_reference(UserId(1), AssetId(1));
        let c = demo_reference(UserId(2), AssetId(0));
        assert!(a != b && a != c && b != c);
        assert_eq!(a, demo_reference(UserId(1), AssetId(0)));
        for r in [a, b, c] {
            assert!(r.0 >= DEMO_BIT);
        }
    }

    #[test]
    fn demo_amounts_parse_at_each_asset_scale() {
        let assets = vec![
            AssetInfo {
                name: "BTC".into(),
                scale: 8,
            },
            AssetInfo {
                name: "EUR".into(),
                scale: 10,
            },
        ];
        let e = |a: &str, v: &str| vec![(a.to_string(), v.to_string())];
        assert_eq!(
            parse_demo_funding(&e("EUR", "100000"), &assets),
            Ok(vec![(AssetId(1), 1_000_000_000_000_000)])
        );
        assert_eq!(
            parse_demo_funding(&e("XRP", "1"), &assets),
            Err(DemoFundingError::UnknownAsset("XRP".into()))
        );
        assert!(parse_demo_funding(&e("BTC", "0"), &assets).is_err());
        assert!(parse_demo_funding(&e("BTC", "0.000000001"), &assets).is_err());
    }
}
