//! [`VolumeConfig`]: settings of the packed volume engine, TOML-friendly (strings, integers
//! and bools only).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::api::StorageClass;
use crate::error::{BlobError, Result};

/// Smallest accepted `volume_bytes` (tests use tiny volumes so rolls happen).
pub const MIN_VOLUME_BYTES: u64 = 1024;
/// Largest accepted `volume_bytes`: blob offsets are kept in 8-byte units in 32 bits
/// (32 GiB), and tombstones may grow a full volume past its limit, so stay at half.
pub const MAX_VOLUME_BYTES: u64 = 16 << 30;

/// Settings of [`crate::volume::VolumeStore`]. Every field is optional in a config file; the
/// defaults look like this in TOML:
///
/// ```toml
/// hot_dir = ""                     # "" = <data_dir>/blobs/hot
/// warm_dir = ""                    # "" = <data_dir>/blobs/warm
/// cold_dir = ""                    # "" = <data_dir>/blobs/cold (e.g. a cheaper disk)
/// volume_bytes = 4294967296        # 4 GiB; a bigger blob gets a volume of its own
/// compaction_garbage_percent = 30  # compact_all() rewrites volumes with >= 30% garbage
/// sync = true                      # fdatasync before acknowledging (false: tests only)
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VolumeConfig {
    /// Directory of the hot class's volumes; empty means `<data_dir>/blobs/hot`.
    pub hot_dir: String,
    /// Directory of the warm class's volumes; empty means `<data_dir>/blobs/warm`.
    pub warm_dir: String,
    /// Directory of the cold class's volumes; empty means `<data_dir>/blobs/cold`.
    pub cold_dir: String,
    /// A new blob goes to a fresh volume when it would take the current one past this size.
    /// Between 1 KiB and 16 GiB. Default 4 GiB.
    pub volume_bytes: u64,
    /// `compact_all` compacts volumes whose garbage (deleted, moved or aborted needles and
    /// tombstones) is at least this percentage of their size. 1 to 100. Default 30.
    pub compaction_garbage_percent: u32,
    /// Acknowledge writes only after `fdatasync` (group-committed). `false` skips every
    /// fsync: a process crash loses nothing, power loss can lose anything. Default true.
    pub sync: bool,
}

impl Default for VolumeConfig {
    fn default() -> Self {
        VolumeConfig {
            hot_dir: String::new(),
            warm_dir: String::new(),
            cold_dir: String::new(),
            volume_bytes: 4 << 30,
            compaction_garbage_percent: 30,
            sync: true,
        }
    }
}

impl VolumeConfig {
    /// Rejects settings that cannot work.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(BlobError::InvalidConfig(m));
        if !(MIN_VOLUME_BYTES..=MAX_VOLUME_BYTES).contains(&self.volume_bytes) {
            return bad(format!(
                "volume_bytes must be between {MIN_VOLUME_BYTES} and {MAX_VOLUME_BYTES}, got {}",
                self.volume_bytes
            ));
        }
        if !(1..=100).contains(&self.compaction_garbage_percent) {
            return bad(format!(
                "compaction_garbage_percent must be between 1 and 100, got {}",
                self.compaction_garbage_percent
            ));
        }
        Ok(())
    }

    /// The directory holding `class`'s volumes.
    pub fn class_dir(&self, data_dir: &Path, class: StorageClass) -> PathBuf {
        let configured = match class {
            StorageClass::Hot => &self.hot_dir,
            StorageClass::Warm => &self.warm_dir,
            StorageClass::Cold => &self.cold_dir,
        };
        if configured.is_empty() {
            data_dir.join("blobs").join(class.as_str())
        } else {
            PathBuf::from(configured)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_round_trip() {
        let c = VolumeConfig::default();
        c.validate().unwrap();
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<VolumeConfig>(&json).unwrap(), c);
        let partial: VolumeConfig = serde_json::from_str(r#"{"volume_bytes": 4096}"#).unwrap();
        assert_eq!(partial, VolumeConfig { volume_bytes: 4096, ..VolumeConfig::default() });
        assert!(serde_json::from_str::<VolumeConfig>(r#"{"volume_size": 1}"#).is_err());
    }

    #[test]
    fn rejects_bad_values_and_resolves_dirs() {
        let d = VolumeConfig::default();
        assert!(VolumeConfig { volume_bytes: 10, ..d.clone() }.validate().is_err());
        assert!(VolumeConfig { volume_bytes: 64 << 30, ..d.clone() }.validate().is_err());
        assert!(VolumeConfig { compaction_garbage_percent: 0, ..d.clone() }.validate().is_err());
        assert!(VolumeConfig { compaction_garbage_percent: 101, ..d.clone() }.validate().is_err());
        let root = Path::new("/data");
        assert_eq!(d.class_dir(root, StorageClass::Warm), Path::new("/data/blobs/warm"));
        let c = VolumeConfig { cold_dir: "/slow/cold".into(), ..d };
        assert_eq!(c.class_dir(root, StorageClass::Cold), Path::new("/slow/cold"));
    }
}
