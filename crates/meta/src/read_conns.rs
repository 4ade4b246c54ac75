//! SQLite connections for the hot one-statement reads (a feed page's start, a page's
//! views), kept beside sqlx's pool rather than in it.
//!
//! Each SQLite connection runs on its own worker thread, so every statement is a round trip
//! to that thread. sqlx's pool adds a second one per use: it pings the connection's worker
//! before taking it back. For a read that itself takes tens of microseconds, those thread
//! hand-overs are most of its cost, so these reads skip the pool: a connection goes back to
//! the idle list as soon as its statement has run to the end, and a read dropped midway (a
//! client gone) closes its connection instead of handing on one in an unknown state.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use sqlx::ConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use tokio::sync::{Semaphore, SemaphorePermit};

/// The idle connections and the bound on how many are in use at once.
pub(crate) struct ReadConns {
    idle: Mutex<Vec<SqliteConnection>>,
    permits: Semaphore,
    options: SqliteConnectOptions,
    acquire_timeout: Duration,
}

/// One connection in use; [`ReadConn::release`] hands it back, and dropping it unreleased
/// closes it.
pub(crate) struct ReadConn<'a> {
    conn: SqliteConnection,
    home: &'a ReadConns,
    _permit: SemaphorePermit<'a>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ReadConns {
    /// At most `max` connections opened with `options` (the pool's, pragmas included), each
    /// opened when first needed; a caller waits at most `acquire_timeout` for one.
    pub(crate) fn new(options: SqliteConnectOptions, max: u32, acquire_timeout: Duration) -> Self {
        ReadConns {
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(max as usize),
            options,
            acquire_timeout,
        }
    }

    /// A connection for one read: an idle one, or a new one while fewer than `max` exist.
    pub(crate) async fn get(&self) -> sqlx::Result<ReadConn<'_>> {
        let permit = tokio::time::timeout(self.acquire_timeout, self.permits.acquire())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let idle = lock(&self.idle).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.options.connect().await?,
        };
        Ok(ReadConn { conn, home: self, _permit: permit })
    }

    /// Refuses new reads and closes the idle connections (those in use close when dropped).
    pub(crate) async fn close(&self) {
        self.permits.close();
        let idle = std::mem::take(&mut *lock(&self.idle));
        for conn in idle {
            // Closing flushes nothing a read left behind; an error here changes nothing.
            let _ = sqlx::Connection::close(conn).await;
        }
    }
}

impl ReadConn<'_> {
    /// The connection, to run one statement on.
    pub(crate) fn conn(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }

    /// Hands the connection back for the next read: call once the statement ran to the end.
    pub(crate) fn release(self) {
        // The permit is given back after the push, when it goes out of scope.
        let ReadConn { conn, home, _permit } = self;
        if !home.permits.is_closed() {
            lock(&home.idle).push(conn);
        }
    }
}

/// Runs `$body` with `$conn` bound to a hot-read connection when the store has them (a
/// SQLite file), else as [`with_pool!`](crate::store::with_pool) does: for single-statement
/// reads on request paths.
macro_rules! with_read {
    ($store:expr, |$conn:ident| $body:expr) => {
        match $store.read_conns() {
            Some(reads) => match reads.get().await {
                Ok(mut held) => {
                    let result = {
                        let $conn = held.conn();
                        $body
                    };
                    held.release();
                    result
                }
                Err(e) => Err(e),
            },
            None => $crate::store::with_pool!($store, |$conn| $body),
        }
    };
}
pub(crate) use with_read;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn options(dir: &std::path::Path) -> SqliteConnectOptions {
        SqliteConnectOptions::new().filename(dir.join("t.db")).create_if_missing(true)
    }

    #[tokio::test]
    async fn connections_are_reused_bounded_and_dropped_when_a_read_is_abandoned() {
        let dir = tempfile::tempdir().unwrap();
        let reads = ReadConns::new(options(dir.path()), 1, Duration::from_millis(50));
        let mut held = reads.get().await.unwrap();
        let one: i64 = sqlx::query_scalar("SELECT 1").fetch_one(held.conn()).await.unwrap();
        assert_eq!(one, 1);
        // The only permit is taken: the next caller times out.
        assert!(matches!(reads.get().await, Err(sqlx::Error::PoolTimedOut)));
        held.release();
        assert_eq!(lock(&reads.idle).len(), 1);
        // Reused, not reopened; abandoned (dropped unreleased), it is not handed on.
        let held = reads.get().await.unwrap();
        assert!(lock(&reads.idle).is_empty());
        drop(held);
        assert!(lock(&reads.idle).is_empty());
        let held = reads.get().await.unwrap();
        held.release();
        reads.close().await;
        assert!(lock(&reads.idle).is_empty());
        assert!(matches!(reads.get().await, Err(sqlx::Error::PoolClosed)));
    }
}
