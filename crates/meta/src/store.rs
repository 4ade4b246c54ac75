//! The connection to the metadata store: backend selection by URL, pool setup, migrations,
//! and the entry points to the repositories.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use crate::comments::Comments;
use crate::config::{MetaConfig, SqliteSynchronous, redact_url};
use crate::counters::Counters;
use crate::error::{MetaError, Result, db, migration};
use crate::feed::Feed;
use crate::fingerprints::Fingerprints;
use crate::notifications::Notifications;
use crate::pipeline_jobs::PipelineJobs;
use crate::plays::Plays;
use crate::read_conns::{ReadConns, ReadSettings};
use crate::recommend_state::RecommendState;
use crate::refresh_tokens::RefreshTokens;
use crate::renditions::Renditions;
use crate::social::Social;
use crate::stories::Stories;
use crate::uploads::Uploads;
use crate::users::Users;
use crate::video_blobs::VideoBlobs;
use crate::videos::Videos;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Which database engine a [`MetaStore`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

#[derive(Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` against whichever pool the store holds, with `$pool` bound to it. The body
/// is compiled once per dialect, so SQL that both dialects accept (`$n` placeholders,
/// `RETURNING`) is written once.
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match $store.pool() {
            $crate::store::Pool::Sqlite($pool) => $body,
            $crate::store::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// A handle on the metadata store. Cloning is cheap (the pool is shared).
#[derive(Clone)]
pub struct MetaStore {
    pool: Pool,
    /// A SQLite file's connections for hot reads (see `read_conns`).
    reads: Option<Arc<ReadConns>>,
}

impl fmt::Debug for MetaStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetaStore").field("backend", &self.backend()).finish_non_exhaustive()
    }
}

enum Target {
    Sqlite { options: SqliteConnectOptions, in_memory: bool },
    Postgres(PgConnectOptions),
}

impl MetaStore {
    /// Connects to the database `cfg.url` names (an empty URL means SQLite at
    /// `{data_dir}/meta.db`, creating `data_dir` if needed) and applies any pending
    /// migrations.
    pub async fn connect(cfg: &MetaConfig, data_dir: &Path) -> Result<MetaStore> {
        if cfg.max_connections == 0 {
            return Err(MetaError::InvalidConfig("max_connections must be at least 1".into()));
        }
        let acquire_timeout = Duration::from_millis(cfg.acquire_timeout_ms);
        let mut reads = None;
        let pool = match target(cfg, data_dir)? {
            Target::Sqlite { options, in_memory } => {
                // A memory database is one connection: reads share it through the pool.
                if !in_memory {
                    let settings = ReadSettings {
                        path: options.get_filename().to_path_buf(),
                        busy_timeout: Duration::from_millis(cfg.busy_timeout_ms),
                        cache_kib: u64::from(cfg.sqlite_cache_mib) * 1024,
                        mmap_bytes: u64::from(cfg.sqlite_mmap_mib) << 20,
                    };
                    reads = Some(Arc::new(ReadConns::new(
                        settings,
                        cfg.max_connections,
                        acquire_timeout,
                    )));
                }
                // No liveness ping on acquire: a SQLite connection is a file handle in this
                // process, not a socket that can drop, and each ping is a round trip to the
                // connection's worker thread before every query (sqlx still pings once on
                // release, which catches a connection left mid-statement).
                let mut pool_options = SqlitePoolOptions::new()
                    .acquire_timeout(acquire_timeout)
                    .test_before_acquire(false);
                pool_options = if in_memory {
                    // A shared-cache memory database lives only while a connection is open,
                    // and shared-cache locking ignores busy_timeout: one connection, kept
                    // forever.
                    pool_options
                        .max_connections(1)
                        .min_connections(1)
                        .idle_timeout(None)
                        .max_lifetime(None)
                } else {
                    pool_options
                        .max_connections(cfg.max_connections)
                        .min_connections(cfg.min_connections)
                };
                let pool = pool_options.connect_with(options).await.map_err(db)?;
                SQLITE_MIGRATIONS.run(&pool).await.map_err(migration)?;
                let version: String = sqlx::query_scalar("SELECT sqlite_version()")
                    .fetch_one(&pool)
                    .await
                    .map_err(db)?;
                tracing::info!(backend = "sqlite", version, in_memory, "metadata store ready");
                Pool::Sqlite(pool)
            }
            Target::Postgres(options) => {
                let pool = PgPoolOptions::new()
                    .acquire_timeout(acquire_timeout)
                    .max_connections(cfg.max_connections)
                    .min_connections(cfg.min_connections)
                    .connect_with(options)
                    .await
                    .map_err(db)?;
                POSTGRES_MIGRATIONS.run(&pool).await.map_err(migration)?;
                tracing::info!(backend = "postgres", "metadata store ready");
                Pool::Postgres(pool)
            }
        };
        Ok(MetaStore { pool, reads })
    }

    /// The database engine in use.
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Checks that the database answers a trivial query (readiness probes).
    pub async fn ping(&self) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query("SELECT 1").execute(pool).await.map(drop).map_err(db)
        })
    }

    /// Waits for in-flight queries, then closes every connection. Later calls fail with
    /// [`MetaError::Unavailable`].
    pub async fn close(&self) {
        if let Some(reads) = &self.reads {
            reads.close();
        }
        with_pool!(self, |pool| pool.close().await)
    }

    /// User accounts.
    pub fn users(&self) -> Users<'_> {
        Users::new(self)
    }

    /// Refresh tokens (rotation with reuse detection).
    pub fn refresh_tokens(&self) -> RefreshTokens<'_> {
        RefreshTokens::new(self)
    }

    /// Videos: metadata, lifecycle status, tags and listings.
    pub fn videos(&self) -> Videos<'_> {
        Videos::new(self)
    }

    /// Which blobs make up each video (for tiering and the creator archive).
    pub fn video_blobs(&self) -> VideoBlobs<'_> {
        VideoBlobs::new(self)
    }

    /// The renditions of each video's encoding ladder.
    pub fn renditions(&self) -> Renditions<'_> {
        Renditions::new(self)
    }

    /// Content and frame fingerprints of videos (duplicate detection).
    pub fn fingerprints(&self) -> Fingerprints<'_> {
        Fingerprints::new(self)
    }

    /// Hourly play counts and the tiering report built on them.
    pub fn plays(&self) -> Plays<'_> {
        Plays::new(self)
    }

    /// Per-user notification inboxes and their unread counts.
    pub fn notifications(&self) -> Notifications<'_> {
        Notifications::new(self)
    }

    /// Resumable (tus) uploads and their offsets.
    pub fn uploads(&self) -> Uploads<'_> {
        Uploads::new(self)
    }

    /// Durable pipeline jobs, claimed under leases.
    pub fn pipeline_jobs(&self) -> PipelineJobs<'_> {
        PipelineJobs::new(self)
    }

    /// Follows, blocks, likes, shares and reports.
    pub fn social(&self) -> Social<'_> {
        Social::new(self)
    }

    /// Stories: followed authors' live stories and per-viewer progress.
    pub fn stories(&self) -> Stories<'_> {
        Stories::new(self)
    }

    /// Comments and their replies.
    pub fn comments(&self) -> Comments<'_> {
        Comments::new(self)
    }

    /// Persisted counters (the counter service's store) and their repair.
    pub fn counters(&self) -> Counters<'_> {
        Counters::new(self)
    }

    /// The recommender's persisted state (seen filters, cover statistics).
    pub fn recommend_state(&self) -> RecommendState<'_> {
        RecommendState::new(self)
    }

    /// The following feed: activity, inboxes, outboxes.
    pub fn feed(&self) -> Feed<'_> {
        Feed::new(self)
    }

    /// Bulk loading of synthetic data (benchmarks).
    #[cfg(feature = "bulk")]
    pub fn bulk(&self) -> crate::bulk::Bulk<'_> {
        crate::bulk::Bulk::new(self)
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.pool
    }

    pub(crate) fn read_conns(&self) -> Option<&ReadConns> {
        self.reads.as_deref()
    }
}

fn target(cfg: &MetaConfig, data_dir: &Path) -> Result<Target> {
    let url = cfg.url.trim();
    let sqlite = |options: SqliteConnectOptions, in_memory: bool| {
        let options = options
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(Duration::from_millis(cfg.busy_timeout_ms))
            .synchronous(match cfg.sqlite_synchronous {
                SqliteSynchronous::Normal => sqlx::sqlite::SqliteSynchronous::Normal,
                SqliteSynchronous::Full => sqlx::sqlite::SqliteSynchronous::Full,
            })
            // Negative: KiB rather than pages.
            .pragma("cache_size", format!("-{}", u64::from(cfg.sqlite_cache_mib) * 1024))
            .pragma("mmap_size", (u64::from(cfg.sqlite_mmap_mib) << 20).to_string());
        // WAL lets readers proceed while one connection writes; memory databases cannot use it.
        let options =
            if in_memory { options } else { options.journal_mode(SqliteJournalMode::Wal) };
        Target::Sqlite { options, in_memory }
    };
    if url.is_empty() {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            MetaError::InvalidConfig(format!("cannot create data dir {}: {e}", data_dir.display()))
        })?;
        // Built from the path rather than a URL string so no character in it needs escaping.
        let options = SqliteConnectOptions::new().filename(data_dir.join("meta.db"));
        return Ok(sqlite(options, false));
    }
    let invalid = |why: String| MetaError::InvalidUrl(format!("{}: {why}", redact_url(url)));
    let Some((scheme, _)) = url.split_once(':') else {
        return Err(invalid("no scheme; expected sqlite://... or postgres://...".into()));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "sqlite" => {
            let options =
                SqliteConnectOptions::from_str(url).map_err(|e| invalid(e.to_string()))?;
            let in_memory = url.contains(":memory:") || url.contains("mode=memory");
            Ok(sqlite(options, in_memory))
        }
        "postgres" | "postgresql" => {
            let options = PgConnectOptions::from_str(url).map_err(|e| invalid(e.to_string()))?;
            Ok(Target::Postgres(options))
        }
        other => Err(invalid(format!(
            "unsupported scheme {other:?}; expected sqlite://... or postgres://..."
        ))),
    }
}

/// Lookups by a list of ids bind at most this many per statement (`IN ($1, ..., $n)`).
pub(crate) const IN_CHUNK: usize = 500;

/// `(.., ..), (.., ..)`: the placeholders of a multi-row `VALUES` list of `rows` rows of
/// `width` values. SQLite gets anonymous `?`: it resolves each `$n` by a linear search of the
/// names seen so far, quadratic in a statement with thousands of them.
pub(crate) fn values_placeholders(backend: Backend, rows: usize, width: usize) -> String {
    let row = |r: usize| -> String {
        let cells: Vec<String> = (1..=width)
            .map(|c| match backend {
                Backend::Sqlite => "?".to_owned(),
                Backend::Postgres => format!("${}", r * width + c),
            })
            .collect();
        format!("({})", cells.join(", "))
    };
    (0..rows).map(row).collect::<Vec<_>>().join(", ")
}

/// `$1, $2, ..., $n`: the placeholders of an `IN (...)` list, for both dialects.
pub(crate) fn in_placeholders(n: usize) -> String {
    (1..=n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn cfg(url: &str) -> MetaConfig {
        MetaConfig { url: url.into(), ..MetaConfig::default() }
    }

    #[tokio::test]
    async fn unknown_scheme_is_invalid_url() {
        let dir = tempfile::tempdir().unwrap();
        for url in ["mysql://root@localhost/db", "/var/lib/meta.db", "postgres://u:pw@[bad"] {
            let err = MetaStore::connect(&cfg(url), dir.path()).await.unwrap_err();
            assert!(matches!(err, MetaError::InvalidUrl(_)), "{url}: {err:?}");
            assert!(!err.to_string().contains("pw"), "password leaked: {err}");
        }
    }

    #[tokio::test]
    async fn zero_connections_is_invalid_config() {
        let dir = tempfile::tempdir().unwrap();
        let bad = MetaConfig { max_connections: 0, ..MetaConfig::default() };
        let err = MetaStore::connect(&bad, dir.path()).await.unwrap_err();
        assert!(matches!(err, MetaError::InvalidConfig(_)), "{err:?}");
    }

    #[tokio::test]
    async fn empty_url_means_sqlite_in_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("nested/data");
        let store = MetaStore::connect(&MetaConfig::default(), &data_dir).await.unwrap();
        assert_eq!(store.backend(), Backend::Sqlite);
        assert_eq!(store.backend().to_string(), "sqlite");
        store.ping().await.unwrap();
        let mode: String = with_pool!(store, |pool| {
            sqlx::query_scalar("PRAGMA journal_mode").fetch_one(pool).await.unwrap()
        });
        assert_eq!(mode, "wal");
        let (synchronous, busy_timeout, foreign_keys, cache, mmap): (i64, i64, i64, i64, i64) =
            with_pool!(store, |pool| {
                let mut conn = pool.acquire().await.unwrap();
                let mut get = async |pragma: &str| -> i64 {
                    sqlx::query_scalar(pragma).fetch_one(&mut *conn).await.unwrap()
                };
                (
                    get("PRAGMA synchronous").await,
                    get("PRAGMA busy_timeout").await,
                    get("PRAGMA foreign_keys").await,
                    get("PRAGMA cache_size").await,
                    get("PRAGMA mmap_size").await,
                )
            });
        assert_eq!((synchronous, busy_timeout, foreign_keys), (2, 5_000, 1)); // 2 = FULL
        assert_eq!((cache, mmap), (-8 * 1024, 1 << 30));
        assert!(data_dir.join("meta.db").exists());
        store.close().await;
        assert!(matches!(store.ping().await, Err(MetaError::Unavailable(_))));
    }

    #[tokio::test]
    async fn explicit_sqlite_url() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("explicit.db");
        let url = format!("sqlite://{}", file.display());
        let store = MetaStore::connect(&cfg(&url), Path::new("/nonexistent")).await.unwrap();
        store.ping().await.unwrap();
        assert!(file.exists());
    }

    #[tokio::test]
    async fn in_memory_sqlite_works() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetaStore::connect(&cfg("sqlite::memory:"), dir.path()).await.unwrap();
        store.ping().await.unwrap();
        assert!(store.users().by_username("nobody").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn unreachable_postgres_is_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        // Port 1 on localhost: connection refused straight away.
        let bad = MetaConfig { acquire_timeout_ms: 300, ..cfg("postgres://u:pw@127.0.0.1:1/db") };
        let err = MetaStore::connect(&bad, dir.path()).await.unwrap_err();
        assert!(matches!(err, MetaError::Unavailable(_)), "{err:?}");
    }
}
