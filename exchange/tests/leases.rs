//! Pair leases on both backends: a lease changes hands only from the state
//! the taker saw, heartbeats renew exactly the holder's leases, and leaving
//! frees them.

mod common;

use proto::Symbol;
use store::Store;

fn sym(s: &str) -> Symbol {
    Symbol::new(s).unwrap()
}

async fn leases_change_hands_only_by_compare_and_set(store: Store) {
    let (btc, eth) = (sym("BTC-EUR"), sym("ETH-EUR"));
    store.ensure_leases(&[btc, eth]).await.unwrap();
    store.ensure_leases(&[btc]).await.unwrap(); // idempotent
    assert!(store.heartbeat("a").await.unwrap().is_empty());
    assert!(store.heartbeat("b").await.unwrap().is_empty());
    let (members, leases) = store.ownership().await.unwrap();
    assert_eq!(members.len(), 2);
    let seen = leases.iter().find(|l| l.pair == btc).unwrap().clone();
    assert_eq!(seen.owner, None);
    // Both try from the same state: exactly one wins.
    assert!(store.take_lease(&seen, "a").await.unwrap());
    assert!(!store.take_lease(&seen, "b").await.unwrap());
    assert_eq!(store.heartbeat("a").await.unwrap(), vec![btc]);
    assert!(store.heartbeat("b").await.unwrap().is_empty());
    // "b" takes it over from the state it saw last; "a" learns at its next
    // heartbeat.
    let (_, leases) = store.ownership().await.unwrap();
    let held = leases.iter().find(|l| l.pair == btc).unwrap().clone();
    assert_eq!((held.owner.as_deref(), held.beat), (Some("a"), 1));
    assert!(store.take_lease(&held, "b").await.unwrap());
    assert!(store.heartbeat("a").await.unwrap().is_empty());
    assert_eq!(store.heartbeat("b").await.unwrap(), vec![btc]);
    // A stale view cannot take it back.
    assert!(!store.take_lease(&held, "a").await.unwrap());
    // Releasing needs the holder.
    store.release_lease(btc, "a").await.unwrap();
    assert_eq!(store.heartbeat("b").await.unwrap(), vec![btc]);
    // Leaving frees every lease and the member row.
    let (_, leases) = store.ownership().await.unwrap();
    let free_eth = leases.iter().find(|l| l.pair == eth).unwrap().clone();
    assert!(store.take_lease(&free_eth, "b").await.unwrap());
    store.leave("b").await.unwrap();
    let (members, leases) = store.ownership().await.unwrap();
    assert!(leases.iter().all(|l| l.owner.is_none()));
    assert_eq!(
        members.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        ["a"]
    );
    // Forgetting a member needs the beat it was seen at.
    let a = members[0].clone();
    store.heartbeat("a").await.unwrap();
    store.forget_member(&a.id, a.beat).await.unwrap();
    assert_eq!(store.ownership().await.unwrap().0.len(), 1);
    store.forget_member(&a.id, a.beat + 1).await.unwrap();
    assert!(store.ownership().await.unwrap().0.is_empty());
}

#[tokio::test]
async fn sqlite_leases() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.sqlite").display());
    leases_change_hands_only_by_compare_and_set(Store::connect(&url, 2).await.unwrap()).await;
}

#[tokio::test]
async fn postgres_leases() {
    let Some(url) = common::fresh_postgres().await else {
        return;
    };
    leases_change_hands_only_by_compare_and_set(Store::connect(&url, 2).await.unwrap()).await;
}
