//! The four trending windows and the exact rule deciding which views each one counts.
//!
//! # The rule
//!
//! Let `W` be the watermark: the largest event time (`at_ms`) of any record applied so far
//! (views and ticks). A view is *accepted* when it is applied, whatever its time; then, at
//! any moment, with `minute(t) = floor(t / 60 000)`:
//!
//! | window | counts the accepted views with | granularity |
//! |---|---|---|
//! | `1h`  | `W - 3 600 000 < at_ms <= W` | millisecond |
//! | `1d`  | `minute(at_ms) > minute(W - 86 400 000)` and `at_ms <= W` | minute |
//! | `30d` | `minute(at_ms) > minute(W - 2 592 000 000)` and `at_ms <= W` | minute |
//! | `all` | every accepted view | - |
//!
//! So `1d` and `30d` count the whole minutes that lie entirely inside `(W - D, W]` plus the
//! current, partial minute up to `W`: their trailing edge jumps a minute at a time and never
//! counts a view older than `D`, and at `W = k * 60 000 - 1` (the last millisecond of a
//! minute) they equal the millisecond window `(W - D, W]` exactly. Per-tag lists use the
//! `1d` rule.
//!
//! Views never have `at_ms > W` (the watermark includes them). A *late* view (older than
//! views already applied) is counted in exactly the windows whose rule it satisfies when it
//! arrives, and leaves them like any other view; nothing is dropped except by the rule
//! itself (a view older than 30 days only counts in `all`). The oracle in the tests
//! implements this table literally.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::RankError;

/// One minute, the bucket of the `1d` and `30d` windows.
pub const MINUTE_MS: i64 = 60_000;
/// The `1h` window.
pub const HOUR_MS: i64 = 3_600_000;
/// The `1d` window.
pub const DAY_MS: i64 = 86_400_000;
/// The `30d` window.
pub const MONTH_MS: i64 = 30 * DAY_MS;

/// A trending window. Written `1h`, `1d`, `30d`, `all` in URLs and JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Window {
    /// The last hour, to the millisecond.
    Hour,
    /// The last day, at minute granularity.
    Day,
    /// The last 30 days, at minute granularity.
    Month,
    /// All time.
    All,
}

impl Window {
    /// Every window, shortest first.
    pub const ALL: [Window; 4] = [Window::Hour, Window::Day, Window::Month, Window::All];

    /// The name used in URLs and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Window::Hour => "1h",
            Window::Day => "1d",
            Window::Month => "30d",
            Window::All => "all",
        }
    }

    /// Position in [`Window::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether a view at `at_ms` is counted by this window at watermark `watermark_ms`
    /// (the table in the module docs).
    pub fn contains(self, watermark_ms: i64, at_ms: i64) -> bool {
        match self {
            Window::Hour => at_ms <= watermark_ms && at_ms > watermark_ms.saturating_sub(HOUR_MS),
            Window::Day => at_ms <= watermark_ms && at_ms >= edge(watermark_ms, DAY_MS),
            Window::Month => at_ms <= watermark_ms && at_ms >= edge(watermark_ms, MONTH_MS),
            Window::All => true,
        }
    }
}

/// The first millisecond counted by a minute-granular window of length `len` at watermark
/// `w`: the start of the first minute lying entirely after `w - len`.
pub fn edge(w: i64, len: i64) -> i64 {
    (minute(w.saturating_sub(len)) + 1) * MINUTE_MS
}

/// The minute bucket of a time.
pub fn minute(t: i64) -> i64 {
    t.div_euclid(MINUTE_MS)
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Window {
    type Err = RankError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "1h" => Ok(Window::Hour),
            "1d" => Ok(Window::Day),
            "30d" => Ok(Window::Month),
            "all" => Ok(Window::All),
            other => Err(RankError::UnknownWindow(other.chars().take(16).collect())),
        }
    }
}

impl Serialize for Window {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Window {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for w in Window::ALL {
            assert_eq!(w.as_str().parse::<Window>().unwrap(), w);
            assert_eq!(serde_json::to_string(&w).unwrap(), format!("\"{w}\""));
        }
        assert!("2h".parse::<Window>().is_err());
    }

    #[test]
    fn day_window_is_whole_minutes() {
        let k = 1_000_000i64;
        // Last millisecond of a minute: exactly (W - 1d, W].
        let w = k * MINUTE_MS - 1;
        assert!(Window::Day.contains(w, w - DAY_MS + 1));
        assert!(!Window::Day.contains(w, w - DAY_MS));
        // First millisecond of the next minute: the oldest minute has left entirely.
        let w = k * MINUTE_MS;
        assert!(!Window::Day.contains(w, w - DAY_MS + MINUTE_MS - 1));
        assert!(Window::Day.contains(w, w - DAY_MS + MINUTE_MS));
        assert!(!Window::Day.contains(w, w + 1));
        // The hour window is to the millisecond.
        assert!(Window::Hour.contains(w, w - HOUR_MS + 1));
        assert!(!Window::Hour.contains(w, w - HOUR_MS));
    }
}
