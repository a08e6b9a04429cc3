//! Listen keys on both backends: one active key per account, extended by
//! asking again or by a keepalive, replaced once expired, closed by its
//! owner only.

mod common;

use proto::UserId;
use store::{ListenKey, Store};

async fn lifecycle(store: &Store) {
    let (alice, bob) = (UserId(1), UserId(2));
    let k1 = store
        .open_listen_key(alice, "ka", 1_000, 2_000)
        .await
        .unwrap();
    assert!(k1.len() == 64 && k1.bytes().all(|b| b.is_ascii_alphanumeric()));
    // Active: asked again, the same key, extended.
    let again = store
        .open_listen_key(alice, "ka", 1_500, 3_500)
        .await
        .unwrap();
    assert_eq!(again, k1);
    let held = |api_key: &str, expires_at| ListenKey {
        user: alice,
        api_key: api_key.into(),
        expires_at,
    };
    assert_eq!(
        store.listen_key(&k1).await.unwrap(),
        Some(held("ka", 3_500))
    );
    // Asked with another of the user's API keys: a new key, tied to it
    // (the first one's revocation must not end its streams).
    let other = store
        .open_listen_key(alice, "ka2", 1_600, 3_600)
        .await
        .unwrap();
    assert_ne!(other, k1);
    assert_eq!(store.listen_key(&k1).await.unwrap(), None);
    let k1 = store
        .open_listen_key(alice, "ka", 1_700, 3_500)
        .await
        .unwrap();
    // Another account gets its own.
    let b1 = store
        .open_listen_key(bob, "kb", 1_500, 3_500)
        .await
        .unwrap();
    assert_ne!(b1, k1);
    let k1 = k1.as_str();
    // A keepalive by its owner extends it; by anyone else, or of an
    // unknown key, it does nothing.
    assert!(
        store
            .keep_listen_key(alice, k1, 2_000, 5_000)
            .await
            .unwrap()
    );
    assert!(!store.keep_listen_key(bob, k1, 2_000, 9_000).await.unwrap());
    assert!(
        !store
            .keep_listen_key(alice, "nope", 2_000, 9_000)
            .await
            .unwrap()
    );
    assert_eq!(store.listen_key(k1).await.unwrap(), Some(held("ka", 5_000)));
    // Expired: a keepalive is refused, and asking makes a new key.
    assert!(
        !store
            .keep_listen_key(alice, k1, 6_000, 9_000)
            .await
            .unwrap()
    );
    let k3 = store
        .open_listen_key(alice, "ka", 6_000, 9_000)
        .await
        .unwrap();
    assert_ne!(k3, k1);
    assert_eq!(store.listen_key(k1).await.unwrap(), None);
    // Closed by its owner only.
    assert!(!store.close_listen_key(bob, &k3).await.unwrap());
    assert!(store.close_listen_key(alice, &k3).await.unwrap());
    assert_eq!(store.listen_key(&k3).await.unwrap(), None);
    assert!(!store.close_listen_key(alice, &k3).await.unwrap());
}

#[tokio::test]
async fn listen_keys_on_sqlite() {
    let (store, _dir) = common::sqlite().await;
    lifecycle(&store).await;
}

#[tokio::test]
async fn listen_keys_on_postgres() {
    if let Some(store) = common::postgres("listen_keys").await {
        lifecycle(&store).await;
    }
}
