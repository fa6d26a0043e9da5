//! What one SQLite read costs the broker, and what it would cost on the caller's thread
//! (issues #17 and #18, BENCHMARKS.md "Late night of 2026-12-07").
//!
//! sqlx runs every SQLite connection on a thread of its own: each statement is handed to that
//! thread and its answer handed back, two context switches or more. The eIDAS bench counts ~44
//! switches per login on SQLite against ~15 on PostgreSQL. This bench reads browser sessions
//! (the broker's most frequent read) from 16 tasks on a 2-worker runtime, first through
//! [`Store::session`] (the broker's read path: sqlx, its held read-only connections), then with
//! the same SQL on a read-only rusqlite connection per worker thread, run on the task's own
//! thread. It prints CPU and context switches per read for each.
//!
//! `cargo bench --bench sqlite_handoff -- --run [--reads 200000]` (release build). Without
//! `--run` it does nothing, so that `cargo test --all-targets` may build it.

// A benchmark: it stops on the first broken answer and times with the wall clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::disallowed_methods)]

mod common;

use common::{context_switches, cpu_seconds, switches_since};
use cozo_broker::store::{SessionRow, Store};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::Instant;

const SESSIONS: usize = 10_000;
const TASKS: usize = 16;
const SQL: &str = "SELECT id_hash, csrf, data, person_id, created_at, expires_at FROM sessions \
                   WHERE id_hash = ?1 AND expires_at > ?2";

fn id(i: usize) -> String {
    format!("session-{i:06}")
}

/// Runs `reads` reads split over [`TASKS`] tasks; prints CPU and switches per read.
async fn measure<F, Fut>(what: &str, reads: usize, read: F)
where
    F: Fn(String) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let (cpu0, switches0, t0) = (cpu_seconds(), context_switches(), Instant::now());
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let read = read.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..reads / TASKS {
                assert!(read(id((i * 7 + t) % SESSIONS)).await, "a stored session was not found");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let n = (reads / TASKS * TASKS) as f64;
    let (cpu, wall) = (cpu_seconds() - cpu0, t0.elapsed().as_secs_f64());
    let switches = switches_since(&switches0) as f64;
    println!(
        "{what}: {:.1} µs of CPU per read, {:.1} context switches per read, {:.0} reads/s",
        cpu * 1e6 / n,
        switches / n,
        n / wall
    );
}

thread_local! {
    /// One read-only connection per runtime worker thread.
    static READER: RefCell<Option<rusqlite::Connection>> = const { RefCell::new(None) };
}

/// The session read on the calling thread.
fn read_here(path: &Path, id: &str, now: i64) -> bool {
    READER.with(|r| {
        let mut r = r.borrow_mut();
        let conn = r.get_or_insert_with(|| {
            rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .unwrap()
        });
        let mut st = conn.prepare_cached(SQL).unwrap();
        st.query_row(rusqlite::params![id, now], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, Option<String>>(3)?,
                row.get::<_, i64>(4)?,
                row.get::<_, i64>(5)?,
            ))
        })
        .is_ok()
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--run") {
        return;
    }
    let reads: usize = args
        .iter()
        .position(|a| a == "--reads")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("bench.db");
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let store = Store::connect(&format!("sqlite://{}", path.display()), 16).await.unwrap();
        store.migrate().await.unwrap();
        for i in 0..SESSIONS {
            store
                .insert_session(&SessionRow {
                    id_hash: id(i),
                    csrf: "csrf".into(),
                    data: r#"{"lang":"nl","pending":"0123456789abcdef"}"#.into(),
                    person_id: None,
                    created_at: 0,
                    expires_at: 4_000_000_000,
                })
                .await
                .unwrap();
        }
        let now = 1_000;
        let s = store.clone();
        measure("Store::session (sqlx, its connection threads)", reads, move |id| {
            let s = s.clone();
            async move { s.session(&id, now).await.unwrap().is_some() }
        })
        .await;
        let p = path.clone();
        measure("the same SELECT on the task's thread (rusqlite)", reads, move |id| {
            let found = read_here(&p, &id, now);
            async move {
                // Let the other tasks run between reads, as a request would.
                tokio::task::yield_now().await;
                found
            }
        })
        .await;
        store.close().await;
    });
}
