//! Metadata-store configuration (the `[meta]` section of the server's TOML).

use std::fmt;

use serde::{Deserialize, Serialize};

/// How to reach the metadata store and how to size its connection pool.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetaConfig {
    /// Which database to use:
    /// - empty (the default): SQLite at `{data_dir}/meta.db`;
    /// - `sqlite://path/to/file.db` (relative to the working directory; `sqlite:///abs/path`
    ///   for an absolute one), created if missing;
    /// - `sqlite::memory:`, a private in-memory database (tests and experiments only);
    /// - `postgres://user:password@host:port/database` (also `postgresql://`). Add
    ///   `?options=-c%20search_path%3Dname` to keep the tables in a schema other than `public`.
    pub url: String,
    /// Upper bound on pooled connections. With SQLite, readers run in parallel (WAL) but
    /// writers still take turns.
    pub max_connections: u32,
    /// Connections kept open even when idle.
    pub min_connections: u32,
    /// How long a caller waits for a pooled connection before getting
    /// [`MetaError::Unavailable`](crate::MetaError::Unavailable).
    pub acquire_timeout_ms: u64,
    /// SQLite only: how long a statement waits for another connection's write lock before
    /// failing with [`MetaError::Unavailable`](crate::MetaError::Unavailable).
    pub busy_timeout_ms: u64,
    /// SQLite only: the `synchronous` pragma.
    pub sqlite_synchronous: SqliteSynchronous,
    /// SQLite only: each connection's page cache, MiB (SQLite's own default is 2).
    pub sqlite_cache_mib: u32,
    /// SQLite only: how much of the database file is read through a memory map, MiB (0:
    /// none). Reads then copy no pages through system calls; the map is address space
    /// shared by all connections, backed by the OS page cache, not memory of its own.
    pub sqlite_mmap_mib: u32,
}

impl Default for MetaConfig {
    fn default() -> Self {
        MetaConfig {
            url: String::new(),
            max_connections: 16,
            min_connections: 0,
            acquire_timeout_ms: 5_000,
            busy_timeout_ms: 5_000,
            sqlite_synchronous: SqliteSynchronous::Full,
            sqlite_cache_mib: 8,
            sqlite_mmap_mib: 1024,
        }
    }
}

// Hand-written so a password in the URL never reaches logs.
impl fmt::Debug for MetaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetaConfig")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("min_connections", &self.min_connections)
            .field("acquire_timeout_ms", &self.acquire_timeout_ms)
            .field("busy_timeout_ms", &self.busy_timeout_ms)
            .field("sqlite_synchronous", &self.sqlite_synchronous)
            .field("sqlite_cache_mib", &self.sqlite_cache_mib)
            .field("sqlite_mmap_mib", &self.sqlite_mmap_mib)
            .finish()
    }
}

/// SQLite's `synchronous` setting (always with WAL journaling).
///
/// The default is `full`: a commit is fsynced before it is acknowledged, so an account that
/// was created or a refresh token that was rotated survives a power cut. `normal` skips that
/// fsync (the WAL is synced only at checkpoints): still corruption-free, much cheaper per
/// write, but the last commits before a power cut or OS crash can be lost. Choose it for
/// write-heavy single-node setups that can accept that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSynchronous {
    Normal,
    #[default]
    Full,
}

/// The URL with any password replaced by `***`, for logs and error messages.
pub(crate) fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest_start = scheme_end + 3;
    let authority_end =
        url[rest_start..].find(['/', '?', '#']).map_or(url.len(), |i| rest_start + i);
    let authority = &url[rest_start..authority_end];
    let mut out = url[..rest_start].to_owned();
    // The last '@' ends the user info: an unescaped '@' in a password would come before it.
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            match userinfo.find(':') {
                Some(colon) => {
                    out.push_str(&userinfo[..colon]);
                    out.push_str(":***");
                }
                None => out.push_str(userinfo),
            }
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    let tail = &url[authority_end..];
    // libpq also accepts the password as a query parameter.
    match tail.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => p.to_owned(),
                })
                .collect();
            out.push_str(&params.join("&"));
        }
        None => out.push_str(tail),
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://app:s3cr@t@db:5432/meta"),
            "postgres://app:***@db:5432/meta"
        );
        assert_eq!(redact_url("postgres://app@db/meta"), "postgres://app@db/meta");
        assert_eq!(
            redact_url("postgresql://db/meta?user=app&password=x&sslmode=disable"),
            "postgresql://db/meta?user=app&password=***&sslmode=disable"
        );
        assert_eq!(redact_url("sqlite://data/meta.db"), "sqlite://data/meta.db");
        assert_eq!(redact_url("sqlite::memory:"), "sqlite::memory:");
        let cfg = MetaConfig { url: "postgres://u:pw@h/d".into(), ..MetaConfig::default() };
        assert!(!format!("{cfg:?}").contains("pw"));
    }

    #[test]
    fn serialises_as_plain_values() {
        let json = serde_json::to_value(MetaConfig::default()).unwrap();
        assert_eq!(json["sqlite_synchronous"], "full");
        assert_eq!(json["max_connections"], 16);
        assert_eq!(json["url"], "");
        let partial: MetaConfig =
            serde_json::from_str(r#"{"url":"sqlite::memory:","sqlite_synchronous":"normal"}"#)
                .unwrap();
        assert_eq!(partial.sqlite_synchronous, SqliteSynchronous::Normal);
        assert_eq!(partial.busy_timeout_ms, MetaConfig::default().busy_timeout_ms);
        assert!(serde_json::from_str::<MetaConfig>(r#"{"nope":1}"#).is_err());
    }
}
