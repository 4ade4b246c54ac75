//! SQLite connections for the hot reads (a feed page's start, a page's views), run on the
//! calling task's own thread rather than through sqlx.
//!
//! sqlx runs each SQLite connection on a worker thread of its own, so every statement is a
//! hand-over to that thread and back, and every row is one more (sqlx's pool adds a ping on
//! release). For a read that itself takes tens of microseconds those hand-overs cost more
//! than the read (measured on the feed benchmark's store: a feed page's start query took
//! 80-115 µs through sqlx and 21-33 µs run in place). So these reads hold their own small
//! list of read-only connections (`rusqlite`, linked against the same SQLite as sqlx) and
//! run their one statement in place, without an await in between: a read is never left
//! midway, and a connection goes straight back to the idle list. They are meant for short
//! indexed lookups; the async task blocks for as long as the statement runs, as it would
//! for any computation of that size.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Row, Statement, ToSql};
use tokio::sync::Semaphore;

#[cfg(test)]
use crate::error::MetaError;
use crate::error::{Result, sqlite_read, unavailable};

/// How the read connections are opened: the same file and pragmas as the pool's.
#[derive(Debug, Clone)]
pub(crate) struct ReadSettings {
    pub(crate) path: PathBuf,
    pub(crate) busy_timeout: Duration,
    pub(crate) cache_kib: u64,
    pub(crate) mmap_bytes: u64,
}

/// The idle connections and the bound on how many are in use at once.
pub(crate) struct ReadConns {
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
    settings: ReadSettings,
    acquire_timeout: Duration,
}

/// Prepared statements kept per connection: the hot reads, and their `IN` lists of a few
/// lengths.
const STATEMENT_CACHE: usize = 64;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ReadConns {
    /// At most `max` connections opened with `settings`, each opened when first needed; a
    /// caller waits at most `acquire_timeout` for one.
    pub(crate) fn new(settings: ReadSettings, max: u32, acquire_timeout: Duration) -> Self {
        ReadConns {
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(max as usize),
            settings,
            acquire_timeout,
        }
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let s = &self.settings;
        // Read-write so the WAL index can be used as every other connection does;
        // `query_only` refuses writes.
        let conn = Connection::open_with_flags(
            &s.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(s.busy_timeout)?;
        // Negative: KiB rather than pages.
        conn.pragma_update(None, "cache_size", -i64::try_from(s.cache_kib).unwrap_or(i64::MAX))?;
        conn.pragma_update(None, "mmap_size", i64::try_from(s.mmap_bytes).unwrap_or(i64::MAX))?;
        conn.pragma_update(None, "query_only", true)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    }

    /// Runs `read` on an idle connection (or a new one while fewer than `max` exist), in
    /// place, and hands the connection back.
    pub(crate) async fn read<T>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let permit = tokio::time::timeout(self.acquire_timeout, self.permits.acquire())
            .await
            .map_err(|_| unavailable("no read connection free in time"))?
            .map_err(|_| unavailable("the metadata store is closed"))?;
        let idle = lock(&self.idle).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.open().map_err(sqlite_read)?,
        };
        let result = read(&conn).map_err(sqlite_read);
        if !self.permits.is_closed() {
            lock(&self.idle).push(conn);
        }
        drop(permit);
        result
    }

    /// Refuses new reads and closes the idle connections.
    pub(crate) fn close(&self) {
        self.permits.close();
        lock(&self.idle).clear();
    }
}

/// Binds `params[n - 1]` to every `$n` in `stmt` (the queries are written for both backends
/// with PostgreSQL's numbered parameters; SQLite numbers them by first appearance).
fn bind_numbered(stmt: &mut Statement<'_>, params: &[&dyn ToSql]) -> rusqlite::Result<()> {
    for index in 1..=stmt.parameter_count() {
        let number = stmt
            .parameter_name(index)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| (1..=params.len()).contains(n))
            .ok_or(rusqlite::Error::InvalidParameterCount(index, params.len()))?;
        stmt.raw_bind_parameter(index, params[number - 1])?;
    }
    Ok(())
}

/// Runs `sql` with `params` and maps its first row (`None`: no row).
pub(crate) fn one<T>(
    conn: &Connection,
    sql: &str,
    params: &[&dyn ToSql],
    map: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Option<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    bind_numbered(&mut stmt, params)?;
    let mut rows = stmt.raw_query();
    rows.next()?.map(map).transpose()
}

/// Runs `sql` with `params` and maps every row.
pub(crate) fn all<T>(
    conn: &Connection,
    sql: &str,
    params: &[&dyn ToSql],
    mut map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    bind_numbered(&mut stmt, params)?;
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(map(row)?);
    }
    Ok(out)
}

/// `ids` as bound values of an `IN` list.
pub(crate) fn params_of(ids: &[i64]) -> Vec<&dyn ToSql> {
    ids.iter().map(|id| id as &dyn ToSql).collect()
}

/// Runs `$inline` with `$conn` bound to a hot-read connection when the store has them (a
/// SQLite file), else `$pooled` with `$pool` bound as [`with_pool!`](crate::store::with_pool)
/// does; both answer the same value (`rusqlite::Result` and `sqlx::Result` respectively).
macro_rules! with_read {
    ($store:expr, |$conn:ident| $inline:expr, |$pool:ident| $pooled:expr) => {
        match $store.read_conns() {
            Some(reads) => reads.read(|$conn| $inline).await,
            None => $crate::store::with_pool!($store, |$pool| $pooled).map_err($crate::error::db),
        }
    };
}
pub(crate) use with_read;

/// The one text column of `sql`'s one row with `ids` bound in order (an `IN` list of
/// `string_agg` reads), on the hot-read connections where the store has them.
pub(crate) async fn text_of_ids(
    store: &crate::MetaStore,
    sql: &str,
    ids: &[i64],
) -> Result<Option<String>> {
    with_read!(store, |c| one(c, sql, &params_of(ids), |r| r.get(0)).map(Option::flatten), |pool| {
        let mut query = sqlx::query_scalar::<_, Option<String>>(sql);
        for id in ids {
            query = query.bind(*id);
        }
        query.fetch_one(pool).await
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn settings(dir: &std::path::Path) -> ReadSettings {
        // The file must exist: read connections never create it.
        Connection::open(dir.join("t.db")).unwrap();
        ReadSettings {
            path: dir.join("t.db"),
            busy_timeout: Duration::from_millis(50),
            cache_kib: 1024,
            mmap_bytes: 1 << 20,
        }
    }

    #[tokio::test]
    async fn connections_are_reused_bounded_and_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let reads = ReadConns::new(settings(dir.path()), 1, Duration::from_millis(50));
        let sum = reads.read(|c| one(c, "SELECT $1 + $2", &[&1i64, &2i64], |r| r.get(0))).await;
        assert_eq!(sum.unwrap(), Some(3i64));
        assert_eq!(lock(&reads.idle).len(), 1);
        // Parameters are matched by number whatever order they appear in.
        let pair = reads
            .read(|c| {
                one(c, "SELECT $2, $1", &[&"a", &"b"], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
            })
            .await
            .unwrap();
        assert_eq!(pair, Some(("b".to_owned(), "a".to_owned())));
        // A parameter with no value is an error, not a silent NULL.
        assert!(
            reads.read(|c| one(c, "SELECT $3", &[&1i64], |r| r.get::<_, i64>(0))).await.is_err()
        );
        // A failed read still hands its connection back; writes are refused.
        let write = reads.read(|c| c.execute("CREATE TABLE t (x INTEGER)", [])).await;
        assert!(matches!(write, Err(MetaError::Database(_))), "{write:?}");
        assert_eq!(lock(&reads.idle).len(), 1);
        // The only permit is taken (as while a read runs): the next read times out.
        let held = reads.permits.acquire().await.unwrap();
        let waited = reads.read(|_| Ok(())).await;
        assert!(matches!(waited, Err(MetaError::Unavailable(_))), "{waited:?}");
        drop(held);
        assert!(reads.read(|_| Ok(())).await.is_ok());
        reads.close();
        assert!(lock(&reads.idle).is_empty());
        assert!(matches!(reads.read(|_| Ok(())).await, Err(MetaError::Unavailable(_))));
    }

    #[tokio::test]
    async fn lists_bind_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let reads = ReadConns::new(settings(dir.path()), 2, Duration::from_millis(50));
        let ids: Vec<i64> = (1..=12).collect();
        let sql = format!(
            "SELECT value FROM json_each('[5, 11, 12, 40]') WHERE value IN ({}) ORDER BY value",
            crate::store::in_placeholders(ids.len())
        );
        let found = reads.read(|c| all(c, &sql, &params_of(&ids), |r| r.get::<_, i64>(0))).await;
        assert_eq!(found.unwrap(), [5, 11, 12]);
    }
}
