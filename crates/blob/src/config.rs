//! The `[blob]` configuration section and the backend it selects.

use std::path::Path;
use std::sync::Arc;

use quicktok_core::clock::SharedClock;
use serde::{Deserialize, Serialize};

use crate::api::BlobStore;
use crate::error::{BlobError, Result};
use crate::s3::{S3Config, S3Store};
use crate::tiering::TieringConfig;
use crate::volume::{CompactionReport, VolumeConfig, VolumeStore};

/// The `[blob]` section: which backend stores blobs, and each backend's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BlobConfig {
    /// `volume` (packed volume files in the data directory, the default) or `s3`.
    pub backend: String,
    pub volume: VolumeConfig,
    pub s3: S3Config,
    pub tiering: TieringConfig,
    /// Hours between background compactions of the volume engine (0: never).
    pub compaction_interval_hours: u32,
}

impl Default for BlobConfig {
    fn default() -> Self {
        BlobConfig {
            backend: "volume".into(),
            volume: VolumeConfig::default(),
            s3: S3Config::default(),
            tiering: TieringConfig::default(),
            compaction_interval_hours: 6,
        }
    }
}

/// Every blob backend, so a build or config naming one gets a clear error, not a panic.
#[derive(Clone)]
pub enum BlobBackend {
    Volume(Arc<VolumeStore>),
    S3(Arc<S3Store>),
}

impl std::fmt::Debug for BlobBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl BlobBackend {
    /// Opens the configured backend.
    pub async fn open(cfg: &BlobConfig, data_dir: &Path, clock: SharedClock) -> Result<Self> {
        match cfg.backend.as_str() {
            "volume" | "" => Ok(BlobBackend::Volume(Arc::new(
                VolumeStore::open(data_dir, cfg.volume.clone()).await?,
            ))),
            "s3" => Ok(BlobBackend::S3(Arc::new(S3Store::new(cfg.s3.clone())?.with_clock(clock)))),
            other => Err(BlobError::InvalidConfig(format!(
                "blob.backend must be \"volume\" or \"s3\", got {other:?}"
            ))),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            BlobBackend::Volume(_) => "volume",
            BlobBackend::S3(_) => "s3",
        }
    }

    /// The backend as the shared contract.
    pub fn store(&self) -> Arc<dyn BlobStore> {
        match self {
            BlobBackend::Volume(v) => v.clone(),
            BlobBackend::S3(s) => s.clone(),
        }
    }

    /// Periodic maintenance: compaction for the volume engine; S3 needs none.
    pub async fn maintain(&self) -> Result<Option<CompactionReport>> {
        match self {
            BlobBackend::Volume(v) => v.compact_all().await.map(Some),
            BlobBackend::S3(_) => Ok(None),
        }
    }

    /// Flushes and releases the backend.
    pub async fn close(&self) -> Result<()> {
        match self {
            BlobBackend::Volume(v) => v.close().await,
            BlobBackend::S3(_) => Ok(()),
        }
    }
}
