//! The crate's one error type, with variants callers can act on, and the mapping from
//! driver errors onto it.

use std::fmt;

use sqlx::error::DatabaseError;

/// Shorthand for results of metadata-store operations.
pub type Result<T, E = MetaError> = std::result::Result<T, E>;

/// What can go wrong in the metadata store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetaError {
    /// A unique value is already taken; `what` names it (`"username"`, `"id"`, `"token_hash"`).
    #[error("{what} already exists")]
    Conflict { what: &'static str },
    /// The row the operation refers to does not exist.
    #[error("not found")]
    NotFound,
    /// The database cannot be reached or is overloaded (connection refused, pool timed out,
    /// SQLite busy past its timeout). Worth retrying later; maps to 503.
    #[error("metadata store unavailable: {0}")]
    Unavailable(#[source] DbError),
    /// Applying the embedded migrations failed.
    #[error("metadata store migration failed: {0}")]
    Migration(#[source] DbError),
    /// Any other database failure (a bug or corrupted data, not worth retrying).
    #[error("metadata store error: {0}")]
    Database(#[source] DbError),
    /// The configured URL is malformed or names an unsupported backend.
    #[error("invalid metadata store url: {0}")]
    InvalidUrl(String),
    /// A configuration value is out of range.
    #[error("invalid metadata store configuration: {0}")]
    InvalidConfig(String),
}

/// An opaque driver error. It keeps the driver's message and source chain without making
/// the driver's types part of this crate's API.
pub struct DbError(Box<dyn std::error::Error + Send + Sync + 'static>);

impl DbError {
    fn new(e: impl std::error::Error + Send + Sync + 'static) -> DbError {
        DbError(Box::new(e))
    }
}

impl fmt::Debug for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for DbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Maps a driver error onto [`MetaError::Unavailable`] or [`MetaError::Database`].
/// Unique violations are not special-cased here: the repository that knows which column
/// conflicted turns them into [`MetaError::Conflict`] first.
pub(crate) fn db(e: sqlx::Error) -> MetaError {
    if is_unavailable(&e) {
        MetaError::Unavailable(DbError::new(e))
    } else {
        MetaError::Database(DbError::new(e))
    }
}

/// Maps an error of the hot-read connections (`read_conns`) as [`db`] does sqlx's.
pub(crate) fn sqlite_read(e: rusqlite::Error) -> MetaError {
    use rusqlite::ErrorCode::{
        CannotOpen, DatabaseBusy, DatabaseLocked, DiskFull, SystemIoFailure,
    };
    match e.sqlite_error_code() {
        Some(DatabaseBusy | DatabaseLocked | SystemIoFailure | DiskFull | CannotOpen) => {
            MetaError::Unavailable(DbError::new(e))
        }
        _ => MetaError::Database(DbError::new(e)),
    }
}

/// [`MetaError::Unavailable`] for a reason of this crate's own (no driver error behind it).
pub(crate) fn unavailable(why: &'static str) -> MetaError {
    MetaError::Unavailable(DbError::new(std::io::Error::other(why)))
}

pub(crate) fn migration(e: sqlx::migrate::MigrateError) -> MetaError {
    match e {
        // A migration that failed because the database went away is an outage, not a bad
        // migration.
        sqlx::migrate::MigrateError::Execute(inner) if is_unavailable(&inner) => {
            MetaError::Unavailable(DbError::new(inner))
        }
        e => MetaError::Migration(DbError::new(e)),
    }
}

/// The driver's description of a unique violation (constraint name when the driver reports
/// one, else its message), or `None` for any other error.
pub(crate) fn unique_violation(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            Some(d.constraint().unwrap_or(d.message()).to_owned())
        }
        _ => None,
    }
}

pub(crate) fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_foreign_key_violation())
}

fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(d) => database_error_is_unavailable(d.as_ref()),
        _ => false,
    }
}

fn database_error_is_unavailable(d: &dyn DatabaseError) -> bool {
    let Some(code) = d.code() else { return false };
    if d.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        // SQLite reports extended result codes; the primary code is the low byte.
        // BUSY, LOCKED, IOERR, FULL (disk full), CANTOPEN.
        let primary = code.parse::<i32>().map(|c| c & 0xff).unwrap_or(0);
        matches!(primary, 5 | 6 | 10 | 13 | 14)
    } else {
        // PostgreSQL SQLSTATE: class 08 connection exception, 57P0x shutdown / cannot
        // connect now, 53300 too many connections.
        code.starts_with("08") || code.starts_with("57P0") || code == "53300"
    }
}
