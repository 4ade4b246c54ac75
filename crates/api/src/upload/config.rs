//! The `[uploads]` section: limits and lifetimes of resumable (tus) uploads.

use serde::{Deserialize, Serialize};

/// The `[uploads]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UploadConfig {
    /// Largest upload accepted (`Upload-Length`), bytes. Advertised as `Tus-Max-Size`.
    pub max_size_bytes: u64,
    /// Most bytes one user may have in unfinished uploads at once (the sum of their declared
    /// lengths); 0 means no limit. Exceeding it answers 413.
    pub user_quota_bytes: u64,
    /// Most unfinished uploads one user may have at once; 0 means no limit. Exceeding it
    /// answers 429.
    pub max_concurrent_per_user: u32,
    /// An unfinished upload with no progress for this long expires (each accepted chunk
    /// pushes the expiry forward). Fractions are allowed.
    pub expiry_hours: f64,
    /// Largest `Upload-Metadata` header accepted, bytes.
    pub max_metadata_bytes: usize,
    /// Longest video accepted, milliseconds. Checked by the pipeline's probe once the upload
    /// is complete (the upload server cannot know the duration).
    pub max_duration_ms: u64,
    /// How long a `PATCH` or `DELETE` waits for another request on the same upload to
    /// finish before answering 423 Locked, milliseconds.
    pub lock_wait_ms: u64,
}

impl Default for UploadConfig {
    fn default() -> Self {
        UploadConfig {
            max_size_bytes: 2 * 1024 * 1024 * 1024,
            user_quota_bytes: 10 * 1024 * 1024 * 1024,
            max_concurrent_per_user: 5,
            expiry_hours: 24.0,
            max_metadata_bytes: 4096,
            max_duration_ms: 10 * 60 * 1000,
            lock_wait_ms: 2000,
        }
    }
}

impl UploadConfig {
    /// Checks the values that have no sensible meaning out of range.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_size_bytes == 0 || self.max_size_bytes > i64::MAX as u64 {
            return Err("uploads.max_size_bytes must be 1..=2^63-1".into());
        }
        if !(self.expiry_hours.is_finite() && self.expiry_hours > 0.0) {
            return Err("uploads.expiry_hours must be a positive number".into());
        }
        if self.max_metadata_bytes == 0 {
            return Err("uploads.max_metadata_bytes must be at least 1".into());
        }
        Ok(())
    }

    /// The expiry as milliseconds (at least 1).
    pub fn expiry_ms(&self) -> i64 {
        // Saturating float-to-int conversion; validated positive and finite.
        ((self.expiry_hours * 3_600_000.0) as i64).max(1)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_toml_round_trips() {
        let c = UploadConfig::default();
        c.validate().unwrap();
        assert_eq!(c.expiry_ms(), 24 * 3_600_000);
        let parsed: UploadConfig = serde_json::from_str(r#"{"expiry_hours": 2}"#).unwrap();
        assert_eq!(parsed.expiry_ms(), 2 * 3_600_000);
        let bad = UploadConfig { expiry_hours: 0.0, ..UploadConfig::default() };
        assert!(bad.validate().is_err());
    }
}
