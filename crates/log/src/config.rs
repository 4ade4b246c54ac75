//! Configuration of the embedded log ([`LogConfig`]) and its fsync policy ([`SyncPolicy`]).
//!
//! Every field is a string, an integer that fits in `i64`, or a bool, so
//! `LogConfig::default()` serialises to TOML for the sample configuration.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{LogError, Result};

/// One day in milliseconds.
const DAY_MS: i64 = 86_400_000;

/// When appended records are forced to stable storage (see the crate docs for the exact
/// durability promise of each policy).
///
/// Written in configuration files as a string: `"always"`, `"never"`, or
/// `"interval:<n>ms"` / `"interval:<n>s"` (e.g. `"interval:10ms"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncPolicy {
    /// Acknowledge an append only after `fdatasync`; concurrent appends share one fsync
    /// (group commit). The default.
    #[default]
    Always,
    /// Acknowledge after the write to the OS; fsync dirty segments every interval.
    Interval(Duration),
    /// Never fsync (tests and throwaway data only).
    Never,
}

impl fmt::Display for SyncPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyncPolicy::Always => f.write_str("always"),
            SyncPolicy::Never => f.write_str("never"),
            SyncPolicy::Interval(d) => write!(f, "interval:{}ms", d.as_millis()),
        }
    }
}

impl FromStr for SyncPolicy {
    type Err = LogError;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            LogError::InvalidConfig(format!(
                "sync must be \"always\", \"never\" or \"interval:<n>ms\" / \"interval:<n>s\" \
                 with n > 0, got {s:?}"
            ))
        };
        match s.trim() {
            "always" => Ok(SyncPolicy::Always),
            "never" => Ok(SyncPolicy::Never),
            other => {
                let spec = other.strip_prefix("interval:").ok_or_else(bad)?.trim();
                let (digits, unit_ms) = if let Some(n) = spec.strip_suffix("ms") {
                    (n, 1)
                } else if let Some(n) = spec.strip_suffix('s') {
                    (n, 1000)
                } else {
                    return Err(bad());
                };
                let n: u64 = digits.trim().parse().map_err(|_| bad())?;
                let ms = n.checked_mul(unit_ms).filter(|ms| *ms > 0).ok_or_else(bad)?;
                Ok(SyncPolicy::Interval(Duration::from_millis(ms)))
            }
        }
    }
}

impl Serialize for SyncPolicy {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SyncPolicy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Settings of [`crate::FileLog`]. Every field is optional in a config file; the defaults
/// look like this in TOML:
///
/// ```toml
/// segment_bytes = 134217728
/// sync = "always"            # or "interval:10ms", "never"
/// retention_days = 35        # 0 = keep forever
/// max_batch_records = 4096
/// index_interval_bytes = 32768
/// verify_on_open = false
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A segment is rolled (a new file started) before a record would take it past this
    /// size. A record larger than this gets a segment of its own. Default 128 MiB.
    pub segment_bytes: u64,
    /// fsync policy. Default `"always"` (group commit).
    pub sync: SyncPolicy,
    /// [`crate::EventLog::apply_retention`] deletes whole segments whose newest record is
    /// older than this many days. `0` keeps everything. Default 35 (rankers need 30 days).
    pub retention_days: u32,
    /// Upper bound on records the writer gathers into one write + fsync. An append call is
    /// never split, so one larger call is still written as a whole. Default 4096.
    pub max_batch_records: u32,
    /// Bytes of records between two entries of the in-memory sparse index. Smaller means
    /// faster seeks and more memory (24 bytes per entry). Default 32 KiB.
    pub index_interval_bytes: u32,
    /// Scan and checksum every sealed segment on open instead of trusting its `.idx` file.
    /// Slow for big logs; for audits. Default false.
    pub verify_on_open: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 128 * 1024 * 1024,
            sync: SyncPolicy::Always,
            retention_days: 35,
            max_batch_records: 4096,
            index_interval_bytes: 32 * 1024,
            verify_on_open: false,
        }
    }
}

impl LogConfig {
    /// Rejects settings that cannot work.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(LogError::InvalidConfig(m.to_owned()));
        if self.segment_bytes == 0 || self.segment_bytes > i64::MAX as u64 {
            return bad("segment_bytes must be between 1 and i64::MAX");
        }
        if self.max_batch_records == 0 {
            return bad("max_batch_records must be at least 1");
        }
        if self.index_interval_bytes == 0 {
            return bad("index_interval_bytes must be at least 1");
        }
        if let SyncPolicy::Interval(d) = self.sync
            && d.is_zero()
        {
            return bad("sync interval must be positive");
        }
        Ok(())
    }

    /// The retention age in milliseconds, `None` when retention is disabled.
    pub fn retention_ms(&self) -> Option<i64> {
        (self.retention_days > 0).then(|| i64::from(self.retention_days) * DAY_MS)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde::de::IntoDeserializer;
    use serde::de::value::{Error as DeError, MapDeserializer};

    #[test]
    fn sync_policy_parses_and_prints() {
        assert_eq!("always".parse::<SyncPolicy>().unwrap(), SyncPolicy::Always);
        assert_eq!("never".parse::<SyncPolicy>().unwrap(), SyncPolicy::Never);
        assert_eq!(
            "interval:10ms".parse::<SyncPolicy>().unwrap(),
            SyncPolicy::Interval(Duration::from_millis(10))
        );
        assert_eq!(
            "interval:2s".parse::<SyncPolicy>().unwrap(),
            SyncPolicy::Interval(Duration::from_secs(2))
        );
        for bad in ["", "sometimes", "interval:", "interval:0ms", "interval:5", "interval:-1ms"] {
            assert!(bad.parse::<SyncPolicy>().is_err(), "{bad:?} should be rejected");
        }
        for p in [
            SyncPolicy::Always,
            SyncPolicy::Never,
            SyncPolicy::Interval(Duration::from_millis(250)),
        ] {
            assert_eq!(p.to_string().parse::<SyncPolicy>().unwrap(), p);
        }
    }

    #[test]
    fn default_is_valid_and_documented_values() {
        let c = LogConfig::default();
        c.validate().unwrap();
        assert_eq!(c.segment_bytes, 128 << 20);
        assert_eq!(c.sync, SyncPolicy::Always);
        assert_eq!(c.retention_days, 35);
        assert_eq!(c.retention_ms(), Some(35 * DAY_MS));
        assert_eq!(LogConfig { retention_days: 0, ..c }.retention_ms(), None);
    }

    #[test]
    fn deserialises_from_strings_and_rejects_unknown_fields() {
        let map = |pairs: Vec<(&'static str, &'static str)>| {
            MapDeserializer::<_, DeError>::new(
                pairs.into_iter().map(|(k, v)| (k, v.into_deserializer())),
            )
        };
        let c = LogConfig::deserialize(map(vec![("sync", "interval:10ms")])).unwrap();
        assert_eq!(c.sync, SyncPolicy::Interval(Duration::from_millis(10)));
        assert_eq!(c.segment_bytes, LogConfig::default().segment_bytes);
        assert!(LogConfig::deserialize(map(vec![("segment_size", "1")])).is_err());
        assert!(LogConfig::deserialize(map(vec![("sync", "often")])).is_err());
    }

    #[test]
    fn validate_rejects_zeroes() {
        let d = LogConfig::default();
        assert!(LogConfig { segment_bytes: 0, ..d.clone() }.validate().is_err());
        assert!(LogConfig { max_batch_records: 0, ..d.clone() }.validate().is_err());
        assert!(LogConfig { index_interval_bytes: 0, ..d.clone() }.validate().is_err());
        let zero = SyncPolicy::Interval(Duration::ZERO);
        assert!(LogConfig { sync: zero, ..d }.validate().is_err());
    }
}
