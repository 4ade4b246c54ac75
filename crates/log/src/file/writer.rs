//! The single writer thread of a [`crate::FileLog`]: gathers pending appends into batches,
//! writes each topic's share with one positional write, fsyncs each touched segment once
//! (group commit), publishes the records to readers and acknowledges every appender.
//!
//! A dedicated OS thread rather than `spawn_blocking`, because it lives as long as the log
//! and spends its time in blocking writes and fsyncs that must not occupy runtime workers.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::api::NewRecord;
use crate::config::SyncPolicy;
use crate::error::{LogError, Result};
use crate::file::segment::{LOG_EXT, Segment, encode_index, file_name, write_index_bytes};
use crate::file::{Shared, Topic, read, sync_dir, write};
use crate::format::{encode, frame_len};

/// Work for the writer.
pub(crate) enum Msg {
    Append(AppendReq),
    /// Periodic wake-up of `SyncPolicy::Interval`.
    Tick,
}

pub(crate) struct AppendReq {
    pub topic: Arc<Topic>,
    pub records: Vec<NewRecord>,
    pub reply: oneshot::Sender<Result<Vec<u64>>>,
}

/// One topic's share of a batch after it was written: what remains to sync and publish.
struct Written {
    topic: Arc<Topic>,
    file: Arc<File>,
    path: PathBuf,
    base: u64,
    /// (timestamp, frame length) of the records written to `file` and not yet published.
    records: Vec<(i64, u64)>,
    /// Offsets per request, in request order.
    offsets: Vec<Vec<u64>>,
}

struct Writer {
    shared: Arc<Shared>,
    /// Segments written but not fsynced yet (`SyncPolicy::Interval` only).
    dirty: HashMap<PathBuf, Arc<File>>,
    /// Held for the thread's life: the directory stays locked until the last write is done.
    _lock: File,
}

/// Runs until every sender is dropped and the queue is drained.
pub(crate) fn run(shared: Arc<Shared>, mut rx: mpsc::Receiver<Msg>, lock_file: File) {
    let max_batch = shared.config.max_batch_records as usize;
    let interval = match shared.config.sync {
        SyncPolicy::Interval(d) => Some(d),
        _ => None,
    };
    let mut w = Writer { shared, dirty: HashMap::new(), _lock: lock_file };
    let mut last_sync = Instant::now();
    while let Some(first) = rx.blocking_recv() {
        let mut batch = Vec::new();
        let mut records = 0;
        let mut tick = false;
        let mut next = Some(first);
        // Drain whatever queued up while the previous batch was being written and synced:
        // that is the group in group commit.
        while let Some(msg) = next.take() {
            match msg {
                Msg::Append(req) => {
                    records += req.records.len();
                    batch.push(req);
                }
                Msg::Tick => tick = true,
            }
            if records < max_batch {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            w.write_batch(batch);
        }
        if let Some(d) = interval
            && (tick || last_sync.elapsed() >= d)
        {
            w.sync_dirty();
            last_sync = Instant::now();
        }
    }
    w.sync_dirty();
}

/// Wakes the writer every `period` so `Interval` syncs happen while appends are idle. Holds
/// only a weak sender so it never keeps the log open.
pub(crate) fn run_ticker(tx: mpsc::WeakSender<Msg>, period: Duration) {
    loop {
        std::thread::sleep(period);
        match tx.upgrade() {
            // A full queue means the writer is busy and will check the time itself.
            Some(tx) => drop(tx.try_send(Msg::Tick)),
            None => return,
        }
    }
}

impl Writer {
    fn write_batch(&mut self, reqs: Vec<AppendReq>) {
        if let Some(msg) = self.shared.poison_message() {
            for r in reqs {
                let _ = r.reply.send(Err(LogError::Poisoned(msg.clone())));
            }
            return;
        }
        let mut groups: Vec<(Arc<Topic>, Vec<AppendReq>)> = Vec::new();
        for r in reqs {
            match groups.iter_mut().find(|(t, _)| Arc::ptr_eq(t, &r.topic)) {
                Some((_, g)) => g.push(r),
                None => groups.push((Arc::clone(&r.topic), vec![r])),
            }
        }

        let mut outcome = Ok(());
        let mut written = Vec::with_capacity(groups.len());
        for (topic, reqs) in &groups {
            match self.write_topic(topic, reqs) {
                Ok(w) => written.push(w),
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            }
        }
        if outcome.is_ok() {
            outcome = self.sync_written(&written);
        }
        if let Err(e) = outcome {
            // Unknown what reached the disk: refuse further writes until a reopen rescans.
            self.shared.poison(&e);
            for r in groups.into_iter().flat_map(|(_, reqs)| reqs) {
                let _ = r.reply.send(Err(e.clone()));
            }
            return;
        }

        let interval = u64::from(self.shared.config.index_interval_bytes);
        for w in &written {
            publish(&w.topic, w.base, &w.records, interval);
        }
        let stats = &self.shared.stats;
        stats.write_batches.fetch_add(1, Ordering::Relaxed);
        for ((_, reqs), w) in groups.into_iter().zip(written) {
            for (req, offsets) in reqs.into_iter().zip(w.offsets) {
                let bytes: usize = req.records.iter().map(|r| r.payload.len()).sum();
                stats.append_calls.fetch_add(1, Ordering::Relaxed);
                stats.records_appended.fetch_add(req.records.len() as u64, Ordering::Relaxed);
                stats.payload_bytes_appended.fetch_add(bytes as u64, Ordering::Relaxed);
                let _ = req.reply.send(Ok(offsets));
            }
        }
    }

    /// Makes the batch as durable as the policy wants before it is published.
    fn sync_written(&mut self, written: &[Written]) -> Result<()> {
        for w in written.iter().filter(|w| !w.records.is_empty()) {
            match self.shared.config.sync {
                SyncPolicy::Always => self.fsync(&w.file, &w.path)?,
                SyncPolicy::Interval(_) => {
                    self.dirty.insert(w.path.clone(), Arc::clone(&w.file));
                }
                SyncPolicy::Never => {}
            }
        }
        Ok(())
    }

    /// Encodes and writes one topic's requests, rolling segments as needed. Records that
    /// went into a segment sealed on the way are already synced and published.
    fn write_topic(&mut self, topic: &Arc<Topic>, reqs: &[AppendReq]) -> Result<Written> {
        let segment_bytes = self.shared.config.segment_bytes;
        let (mut file, mut path, mut base, mut pos, mut next) = self.active_segment(topic)?;
        let mut buf_start = pos;
        let total: usize =
            reqs.iter().flat_map(|r| &r.records).map(|r| frame_len(r.payload.len()) as usize).sum();
        let mut buf = Vec::with_capacity(total);
        let mut records = Vec::new();
        let mut offsets = Vec::with_capacity(reqs.len());
        for req in reqs {
            let mut offs = Vec::with_capacity(req.records.len());
            for r in &req.records {
                let len = frame_len(r.payload.len());
                if pos > 0 && pos + len > segment_bytes {
                    write_at(&file, &path, &buf, buf_start)?;
                    buf.clear();
                    self.seal(topic, &file, &path, base, &records)?;
                    records.clear();
                    (file, path) = self.create_segment(topic, next)?;
                    (base, pos, buf_start) = (next, 0, 0);
                }
                encode(&mut buf, next, r.timestamp_ms, &r.payload);
                records.push((r.timestamp_ms, len));
                offs.push(next);
                next += 1;
                pos += len;
            }
            offsets.push(offs);
        }
        write_at(&file, &path, &buf, buf_start)?;
        Ok(Written { topic: Arc::clone(topic), file, path, base, records, offsets })
    }

    /// The segment to append to: `(file, path, base, written bytes, next offset)`.
    fn active_segment(&mut self, topic: &Topic) -> Result<(Arc<File>, PathBuf, u64, u64, u64)> {
        if let Some(s) = read(&topic.state).segments.last() {
            return Ok((Arc::clone(&s.file), s.path.clone(), s.base, s.len, s.next_offset));
        }
        let (file, path) = self.create_segment(topic, 0)?;
        Ok((file, path, 0, 0, 0))
    }

    /// Finishes a full segment: always synced before the next one exists (whatever the
    /// policy, except `Never`), so only the last segment can ever have a torn tail.
    fn seal(
        &mut self,
        topic: &Topic,
        file: &File,
        path: &Path,
        base: u64,
        records: &[(i64, u64)],
    ) -> Result<()> {
        if self.shared.config.sync != SyncPolicy::Never {
            self.fsync(file, path)?;
            self.dirty.remove(path);
        }
        publish(topic, base, records, u64::from(self.shared.config.index_interval_bytes));
        let snapshot =
            read(&topic.state).segments.iter().rev().find(|s| s.base == base).map(encode_index);
        if let Some(bytes) = snapshot
            && let Err(e) = write_index_bytes(path, &bytes)
        {
            // Only costs a rescan of this segment on the next open.
            tracing::warn!(path = %path.display(), error = %e, "could not write segment index");
        }
        Ok(())
    }

    fn create_segment(&mut self, topic: &Topic, base: u64) -> Result<(Arc<File>, PathBuf)> {
        let sync = self.shared.config.sync != SyncPolicy::Never;
        let dir = &topic.dir;
        let ctx = |what: &str| format!("{what} for topic {}", topic.name);
        if !dir.is_dir() {
            fs::create_dir_all(dir).map_err(|e| LogError::io(ctx("creating directory"), e))?;
            if sync {
                sync_dir(&self.shared.topics_dir)
                    .map_err(|e| LogError::io(ctx("syncing directory"), e))?;
            }
        }
        let path = dir.join(file_name(base, LOG_EXT));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| LogError::io(ctx("creating segment"), e))?;
        if sync {
            // The file must survive a crash before records in it are acknowledged.
            sync_dir(dir).map_err(|e| LogError::io(ctx("syncing directory"), e))?;
        }
        let file = Arc::new(file);
        write(&topic.state).segments.push(Segment::new(base, Arc::clone(&file), path.clone()));
        Ok((file, path))
    }

    fn fsync(&self, file: &File, path: &Path) -> Result<()> {
        file.sync_data().map_err(|e| LogError::io(format!("syncing {}", path.display()), e))?;
        self.shared.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn sync_dirty(&mut self) {
        for (path, file) in std::mem::take(&mut self.dirty) {
            if let Err(e) = self.fsync(&file, &path) {
                // Already acknowledged records may be lost on power failure; all we can do is
                // say so loudly and stop accepting writes.
                tracing::error!(error = %e, "periodic fsync failed");
                self.shared.poison(&e);
            }
        }
    }
}

fn write_at(file: &File, path: &Path, buf: &[u8], pos: u64) -> Result<()> {
    if buf.is_empty() {
        return Ok(());
    }
    file.write_all_at(buf, pos).map_err(|e| LogError::io(format!("writing {}", path.display()), e))
}

/// Makes written records visible to readers and wakes `wait_for` callers.
fn publish(topic: &Topic, base: u64, records: &[(i64, u64)], interval: u64) {
    if records.is_empty() {
        return;
    }
    let end = {
        let mut state = write(&topic.state);
        let Some(seg) = state.segments.iter_mut().rev().find(|s| s.base == base) else {
            return;
        };
        for (ts, len) in records {
            seg.push(*ts, *len, interval);
        }
        state.end_offset()
    };
    topic.end_tx.send_replace(end);
}
