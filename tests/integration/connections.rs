//! Statements run on connections the store holds out of sqlx's pool (`store/conns.rs`, #18). A
//! connection the database drops (a restart, an operator's `pg_terminate_backend`) must not
//! stay in use: it fails at most the statement that finds it broken, the others are checked
//! and replaced, and the store keeps working.

use crate::common::{fresh_pg_database, pg_base_url};
use cozo_broker::store::Store;
use sqlx::Connection;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_the_database_drops_are_replaced() {
    let url = fresh_pg_database().await;
    let store = Store::connect(&url, 4).await.unwrap();
    store.migrate().await.unwrap();
    let db = url::Url::parse(&url).unwrap().path().trim_start_matches('/').to_string();
    let mut admin = sqlx::postgres::PgConnection::connect(&pg_base_url()).await.unwrap();
    // Statements at once, in tasks of their own, until the store holds several connections
    // (how many one burst opens depends on timing; held ones are kept).
    let mut held = 0;
    for _ in 0..50 {
        let pings: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.ping().await })
            })
            .collect();
        for r in futures::future::join_all(pings).await {
            r.unwrap().unwrap();
        }
        let (n,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&db)
        .fetch_one(&mut admin)
        .await
        .unwrap();
        held = n;
        if held >= 2 {
            break;
        }
    }
    assert!(held >= 2, "the store held {held} connections after bursts of statements");
    let ended: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(&db)
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(ended.len() >= 2, "the store held {} connections", ended.len());
    assert!(ended.iter().all(|(ok,)| *ok));
    // Let the server close them.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let mut failed = 0;
    for _ in 0..20 {
        if store.ping().await.is_err() {
            failed += 1;
        }
    }
    assert!(failed <= 1, "{failed} statements failed after the connections were dropped");
    let pings: Vec<_> = (0..8).map(|_| store.ping()).collect();
    for r in futures::future::join_all(pings).await {
        r.unwrap();
    }
    store.close().await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {db}")).execute(&mut admin).await.ok();
}
