//! Integration tests of `FileLog`: the shared backend suite, the model-based property test,
//! crash recovery, group commit, retention and corruption handling. One test binary (with
//! modules) to keep link time down.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod behaviour;
mod crash;
mod model;
mod suite;

use std::fs;
use std::path::{Path, PathBuf};

use quicktok_log::{FileLog, LogConfig, SyncPolicy};

/// A test configuration: no fsync, tiny segments and index blocks.
pub fn small(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        sync: SyncPolicy::Never,
        index_interval_bytes: 64,
        ..LogConfig::default()
    }
}

pub async fn open(dir: &Path, config: LogConfig) -> FileLog {
    FileLog::open(dir, config).await.unwrap()
}

/// Segment files of a topic, oldest first.
pub fn segments(dir: &Path, topic: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir.join("topics").join(topic))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    v.sort();
    v
}

/// Recursively copies a directory.
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            fs::copy(e.path(), target).unwrap();
        }
    }
}
