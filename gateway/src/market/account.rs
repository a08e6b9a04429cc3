//! The gateway's view of balances, kept from the risk stage's updates
//! (`Observer::on_accounts_start`, `Observer::on_account`), and the user
//! stream's account messages built from each update.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, RwLock};

use accounts::{AssetId, AssetInfo, Balance};
use commandlog::AccountUpdate;
use proto::UserId;
use serde::Serialize;

use crate::money::{decimal, signed_decimal};

/// One user's balances as last published, and when.
#[derive(Debug, Default, Clone)]
struct UserView {
    balances: BTreeMap<AssetId, Balance>,
    /// When the risk stage applied the last change (ns since the epoch).
    update_ns: u64,
}

/// Every user's balances, as the risk stage published them.
#[derive(Debug, Default)]
pub(crate) struct AccountViews {
    /// The asset table, in `AssetId` order (the risk stage's own, derived
    /// from the pairs the same way); a listing may add to it.
    assets: RwLock<Vec<AssetInfo>>,
    users: Mutex<HashMap<UserId, UserView>>,
}

/// One user's balances for an answer: every asset, zeros where the user
/// has none, with the time of the last change (0 if never).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSnapshot {
    /// `(asset, balance)` for every asset, in asset order.
    pub balances: Vec<(AssetInfo, Balance)>,
    /// Milliseconds since the epoch of the last change; 0 if none.
    pub update_time: u64,
}

impl AccountViews {
    pub(crate) fn new(assets: Vec<AssetInfo>) -> Self {
        AccountViews {
            assets: RwLock::new(assets),
            users: Mutex::default(),
        }
    }

    /// The asset table with a listed pair's new assets.
    pub(crate) fn set_assets(&self, assets: Vec<AssetInfo>) {
        if let Ok(mut a) = self.assets.write() {
            *a = assets;
        }
    }

    /// Replaces every view with the recovered balances.
    pub(crate) fn start(&self, balances: &[(UserId, AssetId, Balance)]) {
        let Ok(mut users) = self.users.lock() else {
            return;
        };
        users.clear();
        for (user, asset, balance) in balances {
            users
                .entry(*user)
                .or_default()
                .balances
                .insert(*asset, *balance);
        }
    }

    /// Applies one update.
    pub(crate) fn apply(&self, update: &AccountUpdate) {
        let Ok(mut users) = self.users.lock() else {
            return;
        };
        let view = users.entry(update.user).or_default();
        view.update_ns = view.update_ns.max(update.time_ns);
        for (asset, balance) in &update.balances {
            view.balances.insert(*asset, *balance);
        }
    }

    /// `user`'s balances in every asset.
    pub(crate) fn snapshot(&self, user: UserId) -> AccountSnapshot {
        let view = self
            .users
            .lock()
            .ok()
            .and_then(|u| u.get(&user).cloned())
            .unwrap_or_default();
        let assets = self.assets.read().map(|a| a.clone()).unwrap_or_default();
        let balances = assets
            .iter()
            .enumerate()
            .map(|(i, info)| {
                let id = AssetId(u16::try_from(i).unwrap_or(u16::MAX));
                let b = view.balances.get(&id).copied().unwrap_or_default();
                (info.clone(), b)
            })
            .collect();
        AccountSnapshot {
            balances,
            update_time: view.update_ns / 1_000_000,
        }
    }

    /// The stream messages of `update`: `balanceUpdate` for an operator's
    /// movement, then `outboundAccountPosition` with every asset it touched.
    /// Their event time `E` is the change's own.
    pub(crate) fn messages(&self, update: &AccountUpdate) -> Vec<String> {
        let mut out = Vec::new();
        let Ok(assets) = self.assets.read() else {
            return out;
        };
        let info_of = |id: AssetId| assets.get(usize::from(id.0));
        // The risk stage's time, so a replay renders the same bytes.
        let time = update.time_ns / 1_000_000;
        if let Some((asset, delta)) = update.movement
            && let Some(info) = info_of(asset)
        {
            let msg = BalanceUpdateMessage {
                event_time: time,
                clear_time: time,
                asset: &info.name,
                delta: signed_decimal(delta, info.scale),
                event: "balanceUpdate",
            };
            out.extend(serde_json::to_string(&msg).ok());
        }
        let balances: Vec<PositionBalance<'_>> = update
            .balances
            .iter()
            .filter_map(|(asset, b)| {
                let info = info_of(*asset)?;
                Some(PositionBalance {
                    asset: &info.name,
                    free: decimal(b.free, info.scale),
                    locked: decimal(b.locked, info.scale),
                })
            })
            .collect();
        let msg = AccountPosition {
            balances,
            event_time: time,
            event: "outboundAccountPosition",
            last_update: time,
        };
        out.extend(serde_json::to_string(&msg).ok());
        out
    }
}

/// `outboundAccountPosition`: the balances a change touched, after it.
#[derive(Debug, Serialize)]
struct AccountPosition<'a> {
    #[serde(rename = "B")]
    balances: Vec<PositionBalance<'a>>,
    #[serde(rename = "E")]
    event_time: u64,
    #[serde(rename = "e")]
    event: &'static str,
    /// When the account last changed.
    #[serde(rename = "u")]
    last_update: u64,
}

#[derive(Debug, Serialize)]
struct PositionBalance<'a> {
    #[serde(rename = "a")]
    asset: &'a str,
    #[serde(rename = "f")]
    free: String,
    #[serde(rename = "l")]
    locked: String,
}

/// `balanceUpdate`: a deposit (positive `d`) or withdrawal (negative).
#[derive(Debug, Serialize)]
struct BalanceUpdateMessage<'a> {
    #[serde(rename = "E")]
    event_time: u64,
    /// When the movement was applied.
    #[serde(rename = "T")]
    clear_time: u64,
    #[serde(rename = "a")]
    asset: &'a str,
    #[serde(rename = "d")]
    delta: String,
    #[serde(rename = "e")]
    event: &'static str,
}
