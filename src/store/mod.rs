//! Storage: one repository over SQLite (embedded default) or PostgreSQL (production).
//!
//! The rest of the broker calls typed methods on [`Store`] and never learns which backend is
//! behind it. Both run the same SQL through sqlx's `Any` driver: `$n` placeholders, integers for
//! times (unix seconds), text and bytes only. The few statements that differ per backend branch
//! on [`Backend`] here and nowhere else. Migrations live in `migrations/<backend>/`.

mod apps;
mod audit;
mod client_api;
mod clients;
mod conns;
mod eidas;
mod eudiw;
mod factors;
mod offices;
mod oidc;
mod persons;
mod sessions;
mod throttle;

pub use apps::*;
pub use audit::*;
pub use client_api::*;
pub use clients::*;
pub use eidas::*;
pub use eudiw::*;
pub use factors::*;
pub use offices::*;
pub use oidc::*;
pub use persons::*;
pub use sessions::*;
pub use throttle::*;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::Executor;
use std::time::Duration;

/// Read-only SQLite connections beside the writer: enough for the reads of two cores'
/// requests; each is a thread of sqlx's.
const SQLITE_READERS: u32 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("cannot prepare the database location: {0}")]
    Io(#[from] std::io::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        conns::note_error(&e);
        StoreError::Db(e)
    }
}

impl StoreError {
    /// Maps a unique-constraint violation to [`StoreError::Conflict`].
    fn conflict_or(e: sqlx::Error, what: &'static str) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
            _ => StoreError::from(e),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A statement of the `Any` driver with its binds.
type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// The binds of a [`Store::write_batch`]: names the closure's signature for every lifetime,
/// which a closure's own annotation cannot.
fn binds<F>(f: F) -> F
where
    F: for<'q> FnOnce(AnyQuery<'q>) -> AnyQuery<'q>,
{
    f
}

/// A PostgreSQL connection as the server sees it (`pg_stat_ssl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatabaseLink {
    /// TLS is in use.
    pub encrypted: bool,
    /// Over a Unix socket (no network to protect).
    pub unix_socket: bool,
}

#[derive(Clone, Debug)]
pub struct Store {
    /// Every write, and reads that must come from the writer. On SQLite: the one writer
    /// connection.
    pool: conns::Conns,
    /// Reads of the token and login paths that need no transaction (clients, codes, refresh
    /// and access tokens, sessions, pending requests, eIDAS requests, identities, persons): each
    /// follows a committed write, never one of its own transaction. On SQLite: a few
    /// `query_only` connections beside the writer (WAL lets them read while it writes, and
    /// they see every committed write), so that a read never queues behind a write
    /// transaction. On PostgreSQL: the same pool as `pool`.
    read: conns::Conns,
    backend: Backend,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Store {
    /// Connects (creating a SQLite file and its directory if needed). Does not migrate.
    ///
    /// A PostgreSQL URL's `sslmode` and `sslrootcert` are honoured (sqlx with rustls): production
    /// uses `sslmode=verify-full&sslrootcert=<the cluster CA>`, so that INSZ numbers, sessions
    /// and audit rows never cross the network in the clear; a plain-text TCP connection is
    /// reported at start-up.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        sqlx::any::install_default_drivers();
        // sqlx's `verify-ca` verifier asks rustls for the process default provider, which rustls
        // cannot choose with both aws-lc-rs and ring linked in (it panics): pick aws-lc-rs here
        // too, for the CLI commands that open the store without `serve_on`.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let (backend, url) = if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.trim_start_matches("//");
            let file = path.split('?').next().unwrap_or_default();
            if !file.is_empty() && file != ":memory:" {
                if let Some(dir) = std::path::Path::new(file).parent() {
                    if !dir.as_os_str().is_empty() {
                        std::fs::create_dir_all(dir)?;
                    }
                }
            }
            let url = if path.contains("mode=") {
                format!("sqlite://{path}")
            } else if path.contains('?') {
                format!("sqlite://{path}&mode=rwc")
            } else {
                format!("sqlite://{path}?mode=rwc")
            };
            (Backend::Sqlite, url)
        } else {
            (Backend::Postgres, url.to_string())
        };
        // SQLite has one writer at a time: several writing connections only wait on each
        // other's locks (busy-timeout sleeps that cost latency), so the embedded backend writes
        // through one connection and lets the pool queue requests; each statement takes
        // microseconds. Reads go to their own pool of read-only connections (WAL).
        // PostgreSQL needs at least two: [`Store::exclusive`] holds one while the work it guards
        // runs on another.
        let writers = if backend == Backend::Sqlite { 1 } else { max_connections.max(2) };
        // No ping before each acquire (sqlx's `test_before_acquire`): it was one extra round
        // trip per statement and 10 % of the server's CPU on the token path (BENCHMARKS.md,
        // #18). A connection the database dropped fails its next statement, which sqlx then
        // closes instead of returning to the pool; idle and old connections are retired anyway.
        // Statements use connections held in [`conns::Conns`]; the pool has one more on
        // PostgreSQL for [`Store::exclusive`], which owns its connection across statements.
        let spare = u32::from(backend == Backend::Postgres);
        let pool = AnyPoolOptions::new()
            .max_connections(writers + spare)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .test_before_acquire(false)
            .idle_timeout(Duration::from_secs(300))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the one writer; the busy timeout makes
                        // a writer of another process (the CLI) wait instead of failing.
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let readers = max_connections.clamp(1, SQLITE_READERS);
        let handout = match backend {
            Backend::Sqlite => conns::Handout::FirstReady,
            Backend::Postgres => conns::Handout::InOrder,
        };
        let pool = conns::Conns::new(pool, writers, handout);
        let read = if backend == Backend::Sqlite && !in_memory {
            let read = AnyPoolOptions::new()
                .max_connections(readers)
                .min_connections(1)
                .acquire_timeout(Duration::from_secs(10))
                .test_before_acquire(false)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        conn.execute("PRAGMA busy_timeout = 10000; PRAGMA query_only = ON;")
                            .await?;
                        Ok(())
                    })
                })
                .connect(&url)
                .await?;
            conns::Conns::new(read, readers, conns::Handout::FirstReady)
        } else {
            pool.clone()
        };
        let store = Self { pool, read, backend };
        if let Some(DatabaseLink { encrypted: false, unix_socket: false }) =
            store.database_link().await?
        {
            tracing::warn!(
                "the PostgreSQL connection is not encrypted: set sslmode=verify-full and \
                 sslrootcert in database.url"
            );
        }
        Ok(store)
    }

    /// How a PostgreSQL connection of the pool reaches the server (`None` on SQLite).
    pub async fn database_link(&self) -> Result<Option<DatabaseLink>> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT ssl, inet_client_addr() IS NULL AS unix_socket FROM pg_stat_ssl \
             WHERE pid = pg_backend_pid()",
        )
        .fetch_one(&mut *self.pool.get().await?)
        .await?;
        Ok(Some(DatabaseLink {
            encrypted: col(&row, "ssl")?,
            unix_socket: col(&row, "unix_socket")?,
        }))
    }

    pub async fn migrate(&self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&mut *self.pool.get().await?).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&mut *self.pool.get().await?).await?,
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&mut *self.pool.get().await?).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.read.close().await;
        self.pool.close().await;
    }

    /// Removes rows whose life is over. Idempotent; the background task runs it on one replica
    /// per period ([`Store::claim_period`]).
    pub async fn purge_expired(&self, now: i64) -> Result<u64> {
        let mut n = 0;
        for sql in [
            "DELETE FROM sessions WHERE expires_at < $1",
            "DELETE FROM pending_auth WHERE expires_at < $1",
            "DELETE FROM auth_codes WHERE expires_at < $1 - 86400",
            "DELETE FROM seen_once WHERE expires_at < $1",
            "DELETE FROM dpop_bindings WHERE expires_at < $1",
            "DELETE FROM grant_sessions WHERE created_at < $1 - 86400 AND grant_id NOT IN \
             (SELECT id FROM grants WHERE revoked_at IS NULL AND expires_at > $1)",
            "DELETE FROM challenges WHERE expires_at < $1",
            "DELETE FROM saml_requests WHERE expires_at < $1 - 86400",
            "DELETE FROM eudiw_requests WHERE expires_at < $1 - 86400",
            "DELETE FROM throttle WHERE locked_until < $1 AND window_start < $1 - 86400",
        ] {
            n += sqlx::query(sql)
                .bind(now)
                .execute(&mut *self.pool.get().await?)
                .await?
                .rows_affected();
        }
        Ok(n)
    }
}

impl Store {
    /// Runs a write of several statements as one command on a writer connection: one round
    /// trip (on SQLite one hand-off to the writer's thread and one commit) instead of one per
    /// statement (BENCHMARKS.md, #17 and #18). On SQLite `sql` is `BEGIN IMMEDIATE; …; COMMIT`;
    /// on PostgreSQL one statement (data-modifying `WITH`s). `bind` binds owned values, so the
    /// command runs in a task of its own: a request dropped half-way cannot leave the
    /// transaction open, and on an error it is rolled back before the connection is used again.
    async fn write_batch<F>(&self, sql: String, bind: F) -> Result<Vec<AnyRow>>
    where
        F: for<'q> FnOnce(AnyQuery<'q>) -> AnyQuery<'q> + Send + 'static,
    {
        let mut conn = self.pool.get().await?;
        let sqlite = self.backend == Backend::Sqlite;
        tokio::spawn(async move {
            let rows = bind(sqlx::query(&sql)).fetch_all(&mut *conn).await;
            if rows.is_err() && sqlite {
                // Whatever ran of the batch is undone ("no transaction is active" if none).
                let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            }
            rows
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("a database write task failed: {e}")))?
        .map_err(StoreError::from)
    }
}

/// Reads a column, turning a type mismatch into [`StoreError::Corrupt`].
fn col<'r, T>(row: &'r AnyRow, name: &str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    use sqlx::Row;
    row.try_get::<T, _>(name).map_err(|e| StoreError::Corrupt(format!("{name}: {e}")))
}

fn json_col<T: serde::de::DeserializeOwned>(row: &AnyRow, name: &str) -> Result<T> {
    let s: String = col(row, name)?;
    serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(format!("{name}: {e}")))
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}
