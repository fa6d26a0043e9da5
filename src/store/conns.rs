//! Connections taken from sqlx's pool once and handed from statement to statement.
//!
//! sqlx 0.8 gives a connection back to its pool through a spawned task that first pings it: a
//! round trip to PostgreSQL, or to SQLite's connection thread, after every statement, and the
//! connection cannot be used again until that task has run on a busy runtime. On SQLite's one
//! writer this serialised the token path behind the scheduler (the profile in BENCHMARKS.md,
//! #18). Here a statement takes a connection from a queue and the guard puts it back when
//! dropped, so the next waiter has it at once.
//!
//! On PostgreSQL, waiters are served in the order they came (a fair semaphore with one permit
//! per connection in use): with the queue alone, a statement arriving while a connection was on
//! its way to a woken waiter took it first, and under 100 concurrent clients some requests
//! waited many times the median (`/token` p99 at 100 clients 257 → 73 ms, #18). SQLite's one
//! writer is left to whoever is ready: handed in order, it idles until the woken waiter gets a
//! turn on workers busy signing, and refreshes fell by a third (BENCHMARKS.md).
//!
//! What the ping protected stays protected: a statement or transaction cancelled half-way
//! leaves its connection with work pending, which sqlx's next command on that connection
//! finishes first (a queued rollback, unread replies). A connection that failed (network,
//! protocol, worker) is not trusted blindly: every such error moves [`BROKEN`] on, and a
//! connection that has not been checked since is pinged at its next checkout and replaced when
//! the ping fails.

use super::{Result, StoreError};
use sqlx::any::Any;
use sqlx::pool::PoolConnection;
use sqlx::{AnyConnection, AnyPool, Connection};
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

/// Counts connection-level database errors (process-wide): a held connection checked before
/// the last one is pinged before it is used again.
static BROKEN: AtomicU64 = AtomicU64::new(0);

/// Notes an error that may have left a connection unusable.
pub(super) fn note_error(e: &sqlx::Error) {
    let broken = match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        // PostgreSQL's "operator intervention" (57…, e.g. an administrator's or a shutdown's
        // termination) and "connection exception" (08…) classes.
        sqlx::Error::Database(db) => {
            db.code().is_some_and(|c| c.starts_with("57") || c.starts_with("08"))
        }
        _ => false,
    };
    if broken {
        BROKEN.fetch_add(1, Ordering::Relaxed);
    }
}

struct Held {
    conn: PoolConnection<Any>,
    /// [`BROKEN`] when this connection was last known good.
    checked: u64,
}

struct Queue {
    idle_tx: flume::Sender<Held>,
    idle_rx: flume::Receiver<Held>,
    /// With [`Handout::InOrder`]: `max` permits, one per connection in use, handed out first
    /// come, first served. A holder's connection goes back to the queue before its permit is
    /// released, so a new holder always finds an idle connection or room for a new one.
    permits: Option<Arc<tokio::sync::Semaphore>>,
    /// Connections taken from the pool and not discarded.
    live: AtomicU32,
    max: u32,
    /// Set by [`Conns::close`]: connections given back then are dropped into the pool.
    closed: AtomicBool,
}

/// Who gets a connection given back while statements wait for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Handout {
    /// The statement that asked first (PostgreSQL: many connections, latency under load).
    InOrder,
    /// Whichever statement is ready first (SQLite: one writer that must not idle).
    FirstReady,
}

/// Up to `max` connections of one sqlx pool, held for the life of the store.
#[derive(Clone)]
pub(super) struct Conns {
    pool: AnyPool,
    queue: Arc<Queue>,
}

impl std::fmt::Debug for Conns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conns")
            .field("live", &self.queue.live.load(Ordering::Relaxed))
            .field("max", &self.queue.max)
            .finish()
    }
}

impl Conns {
    pub(super) fn new(pool: AnyPool, max: u32, handout: Handout) -> Self {
        let (idle_tx, idle_rx) = flume::unbounded();
        let max = max.max(1);
        let queue = Queue {
            idle_tx,
            idle_rx,
            permits: (handout == Handout::InOrder)
                .then(|| Arc::new(tokio::sync::Semaphore::new(max as usize))),
            live: AtomicU32::new(0),
            max,
            closed: AtomicBool::new(false),
        };
        Self { pool, queue: Arc::new(queue) }
    }

    /// The sqlx pool itself, for work that must own its connection (a lock held across
    /// statements); it has a connection beyond the held ones.
    pub(super) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A connection, in the order statements asked for one: an idle held one, else a new one
    /// while fewer than `max` are held.
    pub(super) async fn get(&self) -> Result<Conn> {
        let q = &self.queue;
        let permit = match &q.permits {
            Some(permits) => Some(
                permits
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| StoreError::Db(sqlx::Error::PoolClosed))?,
            ),
            None => None,
        };
        loop {
            let held = match q.idle_rx.try_recv() {
                Ok(h) => h,
                Err(_) if self.reserve() => match self.pool.acquire().await {
                    Ok(conn) => Held { conn, checked: BROKEN.load(Ordering::Relaxed) },
                    Err(e) => {
                        q.live.fetch_sub(1, Ordering::Relaxed);
                        note_error(&e);
                        return Err(StoreError::Db(e));
                    }
                },
                // In order: not reached while every holder gives its connection back before
                // its permit. First ready: the next connection given back.
                Err(_) => q
                    .idle_rx
                    .recv_async()
                    .await
                    .map_err(|_| StoreError::Db(sqlx::Error::PoolClosed))?,
            };
            if let Some(held) = self.checked(held).await {
                return Ok(Conn { held: Some(held), queue: q.clone(), _permit: permit });
            }
        }
    }

    fn reserve(&self) -> bool {
        let q = &self.queue;
        q.live
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n < q.max).then_some(n + 1))
            .is_ok()
    }

    /// The connection if it is known good, or answers a ping; `None` (discarded) otherwise.
    async fn checked(&self, mut held: Held) -> Option<Held> {
        let now = BROKEN.load(Ordering::Relaxed);
        if held.checked == now {
            return Some(held);
        }
        match held.conn.ping().await {
            Ok(()) => {
                held.checked = now;
                Some(held)
            }
            Err(e) => {
                tracing::warn!(error = %e, "a database connection failed; it is replaced");
                self.queue.live.fetch_sub(1, Ordering::Relaxed);
                held.conn.close_on_drop();
                None
            }
        }
    }

    /// Closes the held connections, then the pool. sqlx's `close` waits until every
    /// connection is back: one in use now is given back into the pool by its guard, one given
    /// back to the queue meanwhile is closed on the next turn (bounded: 5 s).
    pub(super) async fn close(&self) {
        self.queue.closed.store(true, Ordering::SeqCst);
        if let Some(permits) = &self.queue.permits {
            permits.close();
        }
        for _ in 0..50 {
            while let Ok(h) = self.queue.idle_rx.try_recv() {
                let _ = h.conn.close().await;
            }
            let wait = std::time::Duration::from_millis(100);
            if tokio::time::timeout(wait, self.pool.close()).await.is_ok() {
                return;
            }
        }
    }
}

/// A held connection in use; back in the queue when dropped.
pub(super) struct Conn {
    /// `Some` until dropped.
    held: Option<Held>,
    queue: Arc<Queue>,
    /// Released after `drop` has given the connection back (fields drop after `Drop::drop`).
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Deref for Conn {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        match &self.held {
            Some(h) => &h.conn,
            None => unreachable!("a connection guard is used after drop"),
        }
    }
}

impl DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match &mut self.held {
            Some(h) => &mut h.conn,
            None => unreachable!("a connection guard is used after drop"),
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(h) = self.held.take() {
            if self.queue.closed.load(Ordering::SeqCst) {
                drop(h);
            } else {
                let _ = self.queue.idle_tx.send(h);
            }
        }
    }
}
