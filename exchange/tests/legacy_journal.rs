//! A data directory from before the file journal, whose journal table
//! still holds commands, is refused at start with a message saying what to
//! do; once the table is empty the exchange starts.

mod common;

use store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_with_legacy_journal_rows_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::config(&dir);
    let store = Store::connect(&config.database_url(), 1).await.unwrap();
    assert!(!store.has_legacy_journal().await.unwrap());
    store.close().await;

    // What a version before the file journal left: one run of one command.
    let cmd = proto::Command {
        pair: proto::Symbol::new("BTC-EUR").unwrap(),
        user: proto::UserId(1),
        timestamp: proto::Timestamp(1),
        body: proto::CommandBody::CancelAll,
    };
    let body = proto::encode(&cmd).unwrap();
    let pool = sqlx::SqlitePool::connect(&config.database_url())
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO journal (pair, first_position, last_position, body) VALUES ('BTC-EUR', 1, 1, ?)",
    )
    .bind(body)
    .execute(&pool)
    .await
    .unwrap();

    let e = exchange::start(&config).await.unwrap_err().to_string();
    assert!(e.contains("journal table"), "{e}");
    assert!(e.contains("start the previous version once"), "{e}");

    sqlx::query("DELETE FROM journal")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let running = exchange::start(&config).await.unwrap();
    running.shutdown().await;
}
