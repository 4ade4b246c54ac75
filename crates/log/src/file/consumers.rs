//! Durable named-consumer offsets of [`crate::FileLog`]: one small text file per
//! (topic, consumer), replaced atomically on every commit.
//!
//! `consumers/<topic>/<consumer>.offset` holds the offset in decimal and a newline. A commit
//! writes `<consumer>.offset.tmp`, fsyncs it, renames it over the old file and fsyncs the
//! directory, so after a crash the file holds either the old or the new offset, never a mix.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::{LogError, Result};
use crate::file::{lock, sync_dir};

const EXT: &str = ".offset";
const TMP_EXT: &str = ".offset.tmp";

type Key = (String, String);

pub(crate) struct ConsumerStore {
    dir: PathBuf,
    /// Whether to fsync (false only for `SyncPolicy::Never`).
    sync: bool,
    cache: Mutex<HashMap<Key, u64>>,
    /// Serialises commits of one consumer (they share a temp file); different consumers
    /// commit in parallel.
    key_locks: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
}

impl ConsumerStore {
    /// Loads every committed offset under `dir` (blocking).
    pub(crate) fn load(dir: PathBuf, sync: bool) -> Result<ConsumerStore> {
        let mut cache = HashMap::new();
        for topic_entry in read_dir(&dir)? {
            let topic_dir = topic_entry.path();
            let Some(topic) = file_name(&topic_dir) else { continue };
            if !topic_dir.is_dir() || crate::validate_name("topic", &topic).is_err() {
                tracing::warn!(path = %topic_dir.display(), "ignoring unexpected entry");
                continue;
            }
            for entry in read_dir(&topic_dir)? {
                let path = entry.path();
                let Some(name) = file_name(&path) else { continue };
                if name.ends_with(TMP_EXT) {
                    // A commit interrupted before its rename: the old file is authoritative.
                    let _ = fs::remove_file(&path);
                    continue;
                }
                let Some(consumer) = name.strip_suffix(EXT) else { continue };
                let text = fs::read_to_string(&path)
                    .map_err(|e| LogError::io(format!("reading {}", path.display()), e))?;
                let offset = text
                    .strip_suffix('\n')
                    .and_then(|t| t.parse::<u64>().ok())
                    .ok_or_else(|| LogError::corrupt(&path, 0, "unparsable consumer offset"))?;
                cache.insert((topic.clone(), consumer.to_owned()), offset);
            }
        }
        Ok(ConsumerStore {
            dir,
            sync,
            cache: Mutex::new(cache),
            key_locks: Mutex::new(HashMap::new()),
        })
    }

    pub(crate) fn get(&self, topic: &str, consumer: &str) -> Option<u64> {
        lock(&self.cache).get(&(topic.to_owned(), consumer.to_owned())).copied()
    }

    /// Persists the offset (names already validated).
    pub(crate) async fn commit(&self, topic: &str, consumer: &str, offset: u64) -> Result<()> {
        let key = (topic.to_owned(), consumer.to_owned());
        let key_lock = Arc::clone(lock(&self.key_locks).entry(key.clone()).or_default());
        let _guard = key_lock.lock().await;
        let (dir, sync) = (self.dir.clone(), self.sync);
        let (t, c) = key.clone();
        tokio::task::spawn_blocking(move || write_offset(&dir, &t, &c, offset, sync))
            .await
            .map_err(|e| LogError::io("committing a consumer offset", io::Error::other(e)))?
            .map_err(|e| LogError::io(format!("committing offset of {}/{}", key.0, key.1), e))?;
        lock(&self.cache).insert(key, offset);
        Ok(())
    }
}

fn write_offset(
    dir: &Path,
    topic: &str,
    consumer: &str,
    offset: u64,
    sync: bool,
) -> io::Result<()> {
    let topic_dir = dir.join(topic);
    if !topic_dir.is_dir() {
        fs::create_dir_all(&topic_dir)?;
        if sync {
            sync_dir(dir)?;
        }
    }
    let tmp = topic_dir.join(format!("{consumer}{TMP_EXT}"));
    let mut f = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
    f.write_all(format!("{offset}\n").as_bytes())?;
    if sync {
        f.sync_all()?;
    }
    drop(f);
    fs::rename(&tmp, topic_dir.join(format!("{consumer}{EXT}")))?;
    if sync {
        sync_dir(&topic_dir)?;
    }
    Ok(())
}

fn read_dir(dir: &Path) -> Result<Vec<fs::DirEntry>> {
    let ctx = || format!("listing {}", dir.display());
    fs::read_dir(dir)
        .map_err(|e| LogError::io(ctx(), e))?
        .collect::<io::Result<Vec<_>>>()
        .map_err(|e| LogError::io(ctx(), e))
}

fn file_name(path: &Path) -> Option<String> {
    path.file_name().and_then(|n| n.to_str()).map(str::to_owned)
}
