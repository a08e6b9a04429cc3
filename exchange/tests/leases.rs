//! Leases on both backends: a lease changes hands only from the state the
//! taker saw, heartbeats renew exactly the holder's leases, leaving frees
//! them, and engines and risk roles each see only their own role's.

mod common;

use proto::Symbol;
use store::{LeaseKey, Role, Store};

fn sym(s: &str) -> LeaseKey {
    LeaseKey::Pair(Symbol::new(s).unwrap())
}

async fn leases_change_hands_only_by_compare_and_set(store: Store) {
    let (btc, eth) = (sym("BTC-EUR"), sym("ETH-EUR"));
    store.ensure_leases(&[btc, eth]).await.unwrap();
    store.ensure_leases(&[btc]).await.unwrap(); // idempotent
    assert!(store.heartbeat(Role::Engine, "a").await.unwrap().is_empty());
    assert!(store.heartbeat(Role::Engine, "b").await.unwrap().is_empty());
    let (members, leases) = store.ownership(Role::Engine).await.unwrap();
    assert_eq!(members.len(), 2);
    let seen = leases.iter().find(|l| l.key == btc).unwrap().clone();
    assert_eq!(seen.owner, None);
    // Both try from the same state: exactly one wins.
    assert!(store.take_lease(&seen, "a").await.unwrap());
    assert!(!store.take_lease(&seen, "b").await.unwrap());
    assert_eq!(store.heartbeat(Role::Engine, "a").await.unwrap(), vec![btc]);
    assert!(store.heartbeat(Role::Engine, "b").await.unwrap().is_empty());
    // "b" takes it over from the state it saw last; "a" learns at its next
    // heartbeat.
    let (_, leases) = store.ownership(Role::Engine).await.unwrap();
    let held = leases.iter().find(|l| l.key == btc).unwrap().clone();
    assert_eq!((held.owner.as_deref(), held.beat), (Some("a"), 1));
    assert!(store.take_lease(&held, "b").await.unwrap());
    assert!(store.heartbeat(Role::Engine, "a").await.unwrap().is_empty());
    assert_eq!(store.heartbeat(Role::Engine, "b").await.unwrap(), vec![btc]);
    // A stale view cannot take it back.
    assert!(!store.take_lease(&held, "a").await.unwrap());
    // Releasing needs the holder.
    store.release_lease(btc, "a").await.unwrap();
    assert_eq!(store.heartbeat(Role::Engine, "b").await.unwrap(), vec![btc]);
    // Leaving frees every lease and the member row.
    let (_, leases) = store.ownership(Role::Engine).await.unwrap();
    let free_eth = leases.iter().find(|l| l.key == eth).unwrap().clone();
    assert!(store.take_lease(&free_eth, "b").await.unwrap());
    store.leave("b").await.unwrap();
    let (members, leases) = store.ownership(Role::Engine).await.unwrap();
    assert!(leases.iter().all(|l| l.owner.is_none()));
    assert_eq!(
        members.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        ["a"]
    );
    // Forgetting a member needs the beat it was seen at.
    let a = members[0].clone();
    store.heartbeat(Role::Engine, "a").await.unwrap();
    store.forget_member(&a.id, a.beat).await.unwrap();
    assert_eq!(store.ownership(Role::Engine).await.unwrap().0.len(), 1);
    store.forget_member(&a.id, a.beat + 1).await.unwrap();
    assert!(store.ownership(Role::Engine).await.unwrap().0.is_empty());
}

/// Risk shards are leased like pairs, planned among risk roles only.
async fn each_role_sees_its_own_leases(store: Store) {
    let (btc, shard0, shard1) = (
        sym("BTC-EUR"),
        LeaseKey::RiskShard(0),
        LeaseKey::RiskShard(1),
    );
    store.ensure_leases(&[btc, shard0, shard1]).await.unwrap();
    store.heartbeat(Role::Engine, "engine-a").await.unwrap();
    store.heartbeat(Role::Risk, "risk-a").await.unwrap();
    let (members, leases) = store.ownership(Role::Risk).await.unwrap();
    assert_eq!(
        members.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        ["risk-a"]
    );
    let mut keys: Vec<LeaseKey> = leases.iter().map(|l| l.key).collect();
    keys.sort();
    assert_eq!(keys, [shard0, shard1]);
    let (members, leases) = store.ownership(Role::Engine).await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(leases.iter().map(|l| l.key).collect::<Vec<_>>(), [btc]);
    let seen = store.ownership(Role::Risk).await.unwrap().1;
    let seen = seen.iter().find(|l| l.key == shard1).unwrap();
    assert!(store.take_lease(seen, "risk-a").await.unwrap());
    assert_eq!(
        store.heartbeat(Role::Risk, "risk-a").await.unwrap(),
        [shard1]
    );
    store.release_lease(shard1, "risk-a").await.unwrap();
    assert!(
        store
            .heartbeat(Role::Risk, "risk-a")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(shard1.to_string(), "risk/1");
}

#[tokio::test]
async fn sqlite_leases() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.sqlite").display());
    leases_change_hands_only_by_compare_and_set(Store::connect(&url, 2).await.unwrap()).await;
    let url = format!("sqlite://{}", dir.path().join("r.sqlite").display());
    each_role_sees_its_own_leases(Store::connect(&url, 2).await.unwrap()).await;
}

#[tokio::test]
async fn postgres_leases() {
    let Some(url) = common::fresh_postgres().await else {
        return;
    };
    leases_change_hands_only_by_compare_and_set(Store::connect(&url, 2).await.unwrap()).await;
    let Some(url) = common::fresh_postgres().await else {
        return;
    };
    each_role_sees_its_own_leases(Store::connect(&url, 2).await.unwrap()).await;
}
