//! [`FileLog`]: the embedded, file-backed [`EventLog`]. See the crate documentation for the
//! directory layout, file format, recovery rules and durability promise.

mod consumers;
mod segment;
mod writer;

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot, watch};

use crate::api::{EventLog, LogStats, NewRecord, Record, RetentionReport, validate_name};
use crate::config::{LogConfig, SyncPolicy};
use crate::error::{LogError, Result};
use crate::format::{FrameCursor, MAX_PAYLOAD_BYTES, Step};
use consumers::ConsumerStore;
use segment::{IDX_EXT, LOG_EXT, ScanStop, Segment, idx_path, parse_file_name};
use writer::{AppendReq, Msg};

/// Requests queued for the writer before appenders wait (back-pressure).
const QUEUE_DEPTH: usize = 1024;

/// Locks a mutex, ignoring poisoning: every critical section leaves consistent state.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

/// fsyncs a directory so entries created, renamed or removed in it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// One topic: its segments and the channel announcing its end offset.
pub(crate) struct Topic {
    pub name: String,
    pub dir: PathBuf,
    pub state: RwLock<TopicState>,
    /// The published end offset; `wait_for` subscribes to it.
    pub end_tx: watch::Sender<u64>,
}

impl Topic {
    fn new(name: String, dir: PathBuf, segments: Vec<Segment>) -> Topic {
        let state = TopicState { segments };
        let (end_tx, _) = watch::channel(state.end_offset());
        Topic { name, dir, state: RwLock::new(state), end_tx }
    }
}

pub(crate) struct TopicState {
    /// Contiguous, ordered by base offset; the last one is the active (appended) segment.
    pub segments: Vec<Segment>,
}

impl TopicState {
    pub(crate) fn start_offset(&self) -> u64 {
        self.segments.first().map_or(0, |s| s.base)
    }

    pub(crate) fn end_offset(&self) -> u64 {
        self.segments.last().map_or(0, |s| s.next_offset)
    }
}

#[derive(Default)]
pub(crate) struct Counters {
    pub append_calls: AtomicU64,
    pub records_appended: AtomicU64,
    pub payload_bytes_appended: AtomicU64,
    pub write_batches: AtomicU64,
    pub fsyncs: AtomicU64,
    pub records_read: AtomicU64,
}

/// State shared by the handle and the writer thread.
pub(crate) struct Shared {
    pub root: PathBuf,
    pub topics_dir: PathBuf,
    pub config: LogConfig,
    pub topics: RwLock<HashMap<String, Arc<Topic>>>,
    pub stats: Counters,
    poisoned: Mutex<Option<String>>,
    closed: watch::Sender<bool>,
}

impl Shared {
    pub(crate) fn poison(&self, e: &LogError) {
        lock(&self.poisoned).get_or_insert_with(|| e.to_string());
    }

    pub(crate) fn poison_message(&self) -> Option<String> {
        lock(&self.poisoned).clone()
    }

    fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        read(&self.topics).get(name).cloned()
    }

    /// The topic, created in memory if new (its directory appears with its first record).
    fn topic_or_create(&self, name: &str) -> Arc<Topic> {
        if let Some(t) = self.topic(name) {
            return t;
        }
        let dir = self.topics_dir.join(name);
        let mut topics = write(&self.topics);
        Arc::clone(
            topics
                .entry(name.to_owned())
                .or_insert_with(|| Arc::new(Topic::new(name.to_owned(), dir, Vec::new()))),
        )
    }

    fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }
}

/// The embedded event log: a directory of append-only segment files per topic.
///
/// ```text
/// <dir>/LOCK                                  flock'ed while open
/// <dir>/topics/<topic>/<base:020>.log         segments, named by their first offset
/// <dir>/topics/<topic>/<base:020>.idx         index snapshot of a sealed segment
/// <dir>/consumers/<topic>/<consumer>.offset   committed consumer offsets
/// ```
pub struct FileLog {
    shared: Arc<Shared>,
    consumers: ConsumerStore,
    tx: Mutex<Option<mpsc::Sender<Msg>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl fmt::Debug for FileLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileLog")
            .field("dir", &self.shared.root)
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl FileLog {
    /// Opens (creating if needed) the log in `dir`: locks the directory, recovers every
    /// topic (truncating a torn tail of each last segment) and starts the writer thread.
    ///
    /// Fails with [`LogError::Locked`] if the directory is open elsewhere (including in this
    /// process: [`EventLog::close`] the old instance first), and with
    /// [`LogError::Corrupt`] on damage a crash cannot explain.
    pub async fn open(dir: impl AsRef<Path>, config: LogConfig) -> Result<FileLog> {
        config.validate()?;
        let root = dir.as_ref().to_path_buf();
        let cfg = config.clone();
        let (topics, consumers, lock_file) =
            tokio::task::spawn_blocking(move || open_dir(&root, &cfg))
                .await
                .map_err(|e| LogError::io("opening the log", io::Error::other(e)))??;
        let root = dir.as_ref().to_path_buf();
        let shared = Arc::new(Shared {
            topics_dir: root.join("topics"),
            root,
            config,
            topics: RwLock::new(topics),
            stats: Counters::default(),
            poisoned: Mutex::new(None),
            closed: watch::channel(false).0,
        });
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let writer_shared = Arc::clone(&shared);
        let handle = std::thread::Builder::new()
            .name("quicktok-log-writer".into())
            .spawn(move || writer::run(writer_shared, rx, lock_file))
            .map_err(|e| LogError::io("starting the writer thread", e))?;
        if let SyncPolicy::Interval(period) = shared.config.sync {
            let weak = tx.downgrade();
            std::thread::Builder::new()
                .name("quicktok-log-sync".into())
                .spawn(move || writer::run_ticker(weak, period))
                .map_err(|e| LogError::io("starting the sync ticker thread", e))?;
        }
        Ok(FileLog {
            shared,
            consumers,
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(handle)),
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.shared.root
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &LogConfig {
        &self.shared.config
    }

    fn check_open(&self) -> Result<()> {
        if self.shared.is_closed() { Err(LogError::Closed) } else { Ok(()) }
    }

    fn read_chunk(&self, max_records: usize, max_bytes: usize) -> usize {
        // Enough for the index block before the first record plus the expected answer
        // (guessing ~256 bytes a record), within sane bounds.
        let expected = max_records.saturating_mul(256).min(max_bytes);
        expected
            .saturating_add(self.shared.config.index_interval_bytes as usize)
            .clamp(16 << 10, 1 << 20)
    }
}

async fn blocking<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| LogError::io(what, io::Error::other(e)))?
}

#[async_trait]
impl EventLog for FileLog {
    async fn append(&self, topic: &str, records: Vec<NewRecord>) -> Result<Vec<u64>> {
        validate_name("topic", topic)?;
        self.check_open()?;
        if let Some(r) = records.iter().find(|r| r.payload.len() > MAX_PAYLOAD_BYTES) {
            return Err(LogError::RecordTooLarge { size: r.payload.len(), max: MAX_PAYLOAD_BYTES });
        }
        if records.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(msg) = self.shared.poison_message() {
            return Err(LogError::Poisoned(msg));
        }
        let tx = lock(&self.tx).clone().ok_or(LogError::Closed)?;
        let topic = self.shared.topic_or_create(topic);
        let (reply, answer) = oneshot::channel();
        tx.send(Msg::Append(AppendReq { topic, records, reply }))
            .await
            .map_err(|_| LogError::Closed)?;
        answer.await.map_err(|_| LogError::Poisoned("the writer thread stopped".into()))?
    }

    async fn read(
        &self,
        topic: &str,
        from_offset: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<Record>> {
        validate_name("topic", topic)?;
        let Some(topic) = self.shared.topic(topic) else { return Ok(Vec::new()) };
        if max_records == 0 || from_offset >= read(&topic.state).end_offset() {
            return Ok(Vec::new());
        }
        let chunk = self.read_chunk(max_records, max_bytes);
        let records = blocking("reading", move || {
            read_records(&topic, from_offset, max_records, max_bytes, chunk)
        })
        .await?;
        self.shared.stats.records_read.fetch_add(records.len() as u64, Ordering::Relaxed);
        Ok(records)
    }

    async fn offset_for_time(&self, topic: &str, timestamp_ms: i64) -> Result<u64> {
        validate_name("topic", topic)?;
        let Some(topic) = self.shared.topic(topic) else { return Ok(0) };
        blocking("searching by time", move || offset_for_time(&topic, timestamp_ms)).await
    }

    async fn start_offset(&self, topic: &str) -> Result<u64> {
        validate_name("topic", topic)?;
        Ok(self.shared.topic(topic).map_or(0, |t| read(&t.state).start_offset()))
    }

    async fn end_offset(&self, topic: &str) -> Result<u64> {
        validate_name("topic", topic)?;
        Ok(self.shared.topic(topic).map_or(0, |t| read(&t.state).end_offset()))
    }

    async fn commit(&self, topic: &str, consumer: &str, offset: u64) -> Result<()> {
        validate_name("topic", topic)?;
        validate_name("consumer", consumer)?;
        self.check_open()?;
        let end = self.end_offset(topic).await?;
        if offset > end {
            return Err(LogError::OffsetOutOfRange { topic: topic.to_owned(), offset, end });
        }
        self.consumers.commit(topic, consumer, offset).await
    }

    async fn committed(&self, topic: &str, consumer: &str) -> Result<Option<u64>> {
        validate_name("topic", topic)?;
        validate_name("consumer", consumer)?;
        Ok(self.consumers.get(topic, consumer))
    }

    async fn wait_for(&self, topic: &str, offset: u64) -> Result<u64> {
        validate_name("topic", topic)?;
        self.check_open()?;
        let topic = self.shared.topic_or_create(topic);
        let mut end = topic.end_tx.subscribe();
        let mut closed = self.shared.closed.subscribe();
        tokio::select! {
            r = end.wait_for(|end| *end > offset) => r.map(|v| *v).map_err(|_| LogError::Closed),
            _ = closed.wait_for(|c| *c) => Err(LogError::Closed),
        }
    }

    async fn apply_retention(&self, now_ms: i64) -> Result<RetentionReport> {
        let Some(age) = self.shared.config.retention_ms() else {
            return Ok(RetentionReport::default());
        };
        let cutoff = now_ms.saturating_sub(age);
        let topics: Vec<Arc<Topic>> = read(&self.shared.topics).values().cloned().collect();
        let sync = self.shared.config.sync != SyncPolicy::Never;
        blocking("applying retention", move || {
            let mut report = RetentionReport::default();
            for topic in topics {
                apply_retention(&topic, cutoff, sync, &mut report)?;
            }
            Ok(report)
        })
        .await
    }

    async fn topics(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = read(&self.shared.topics)
            .values()
            .filter(|t| !read(&t.state).segments.is_empty())
            .map(|t| t.name.clone())
            .collect();
        names.sort();
        Ok(names)
    }

    async fn ping(&self) -> Result<()> {
        self.check_open()?;
        if let Some(msg) = self.shared.poison_message() {
            return Err(LogError::Poisoned(msg));
        }
        if lock(&self.writer).as_ref().is_none_or(|h| h.is_finished()) {
            return Err(LogError::Poisoned("the writer thread stopped".into()));
        }
        tokio::fs::metadata(&self.shared.topics_dir)
            .await
            .map_err(|e| LogError::io("checking the log directory", e))?;
        Ok(())
    }

    fn stats(&self) -> LogStats {
        let c = &self.shared.stats;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        LogStats {
            append_calls: get(&c.append_calls),
            records_appended: get(&c.records_appended),
            payload_bytes_appended: get(&c.payload_bytes_appended),
            write_batches: get(&c.write_batches),
            fsyncs: get(&c.fsyncs),
            records_read: get(&c.records_read),
        }
    }

    async fn close(&self) -> Result<()> {
        self.shared.closed.send_replace(true);
        // Dropping the last sender lets the writer drain the queue, sync and exit.
        drop(lock(&self.tx).take());
        let handle = lock(&self.writer).take();
        if let Some(handle) = handle {
            blocking("closing", move || {
                handle.join().map_err(|_| LogError::Poisoned("the writer thread panicked".into()))
            })
            .await?;
        }
        Ok(())
    }
}

/// Opens the directory: lock, topics, consumer offsets (blocking).
fn open_dir(
    root: &Path,
    config: &LogConfig,
) -> Result<(HashMap<String, Arc<Topic>>, ConsumerStore, File)> {
    let topics_dir = root.join("topics");
    let consumers_dir = root.join("consumers");
    let fresh = !topics_dir.is_dir() || !consumers_dir.is_dir();
    for d in [&topics_dir, &consumers_dir] {
        fs::create_dir_all(d).map_err(|e| LogError::io(format!("creating {}", d.display()), e))?;
    }
    if fresh && config.sync != SyncPolicy::Never {
        // The new directory entries must be durable before the first acknowledged append.
        let parent =
            root.parent().map(|p| if p.as_os_str().is_empty() { Path::new(".") } else { p });
        for d in std::iter::once(root).chain(parent) {
            sync_dir(d).map_err(|e| LogError::io(format!("syncing {}", d.display()), e))?;
        }
    }
    let lock_path = root.join("LOCK");
    let lock_file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|e| LogError::io(format!("opening {}", lock_path.display()), e))?;
    rustix::fs::flock(&lock_file, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(
        |e| {
            if e == rustix::io::Errno::WOULDBLOCK {
                LogError::Locked(root.to_path_buf())
            } else {
                LogError::io(format!("locking {}", lock_path.display()), e.into())
            }
        },
    )?;

    let mut topics = HashMap::new();
    for entry in list_dir(&topics_dir)? {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if !path.is_dir() || validate_name("topic", &name).is_err() {
            tracing::warn!(path = %path.display(), "ignoring unexpected entry in the log directory");
            continue;
        }
        let segments = open_topic(&path, config)?;
        topics.insert(name.clone(), Arc::new(Topic::new(name, path, segments)));
    }
    let consumers = ConsumerStore::load(consumers_dir, config.sync != SyncPolicy::Never)?;
    Ok((topics, consumers, lock_file))
}

fn list_dir(dir: &Path) -> Result<Vec<fs::DirEntry>> {
    let ctx = || format!("listing {}", dir.display());
    fs::read_dir(dir)
        .map_err(|e| LogError::io(ctx(), e))?
        .collect::<io::Result<Vec<_>>>()
        .map_err(|e| LogError::io(ctx(), e))
}

/// Loads a topic's segments: sealed ones from their `.idx` snapshot (or a full scan, which
/// must be clean), the last one by a scan that truncates a torn tail.
fn open_topic(dir: &Path, config: &LogConfig) -> Result<Vec<Segment>> {
    let interval = u64::from(config.index_interval_bytes);
    let mut bases = Vec::new();
    for entry in list_dir(dir)? {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".tmp") {
            // An index snapshot interrupted before its rename.
            let _ = fs::remove_file(entry.path());
        } else if let Some(base) = parse_file_name(&name, LOG_EXT) {
            bases.push(base);
        } else if parse_file_name(&name, IDX_EXT).is_none() {
            tracing::warn!(path = %entry.path().display(), "ignoring unexpected file");
        }
    }
    bases.sort_unstable();

    let mut segments: Vec<Segment> = Vec::with_capacity(bases.len());
    for (i, &base) in bases.iter().enumerate() {
        let last = i + 1 == bases.len();
        let path = dir.join(segment::file_name(base, LOG_EXT));
        let io_err = |what: &str, e| LogError::io(format!("{what} {}", path.display()), e);
        let file = OpenOptions::new()
            .read(true)
            .write(last)
            .open(&path)
            .map_err(|e| io_err("opening", e))?;
        let file_len = file.metadata().map_err(|e| io_err("inspecting", e))?.len();
        let mut seg = Segment::new(base, Arc::new(file), path.clone());
        if let Some(prev) = segments.last()
            && prev.next_offset != base
        {
            return Err(LogError::corrupt(
                &path,
                0,
                format!(
                    "segment starts at offset {base}, previous one ends at {}",
                    prev.next_offset
                ),
            ));
        }
        if last {
            // The active segment keeps growing, so a snapshot of it would only go stale.
            let _ = fs::remove_file(idx_path(&path));
            match segment::scan(&mut seg, file_len, interval).map_err(|e| io_err("scanning", e))? {
                None => {}
                Some(ScanStop::Torn { pos, reason }) => {
                    tracing::warn!(
                        path = %path.display(),
                        at = pos,
                        dropped_bytes = file_len - pos,
                        reason,
                        "truncating the torn tail of the log"
                    );
                    seg.file.set_len(pos).map_err(|e| io_err("truncating", e))?;
                    seg.file.sync_all().map_err(|e| io_err("syncing", e))?;
                }
                Some(stop) => return Err(scan_error(&path, stop)),
            }
        } else if config.verify_on_open || !segment::load_index_file(&mut seg, file_len) {
            if let Some(stop) =
                segment::scan(&mut seg, file_len, interval).map_err(|e| io_err("scanning", e))?
            {
                return Err(scan_error(&path, stop));
            }
            if let Err(e) = segment::write_index_file(&seg) {
                tracing::warn!(path = %path.display(), error = %e, "could not write segment index");
            }
        }
        segments.push(seg);
    }
    Ok(segments)
}

fn scan_error(path: &Path, stop: ScanStop) -> LogError {
    match stop {
        ScanStop::Torn { pos, reason } => LogError::corrupt(path, pos, reason),
        ScanStop::WrongOffset { pos, expected, found } => LogError::corrupt(
            path,
            pos,
            format!("record has offset {found} where {expected} was expected"),
        ),
    }
}

/// The blocking body of [`EventLog::read`].
fn read_records(
    topic: &Topic,
    mut from: u64,
    max_records: usize,
    max_bytes: usize,
    chunk: usize,
) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    let mut bytes = 0usize;
    loop {
        // Copy what the scan needs and release the lock before any I/O.
        let (file, path, pos, end, mut expect) = {
            let state = read(&topic.state);
            from = from.max(state.start_offset());
            if from >= state.end_offset() {
                return Ok(out);
            }
            let i = state.segments.partition_point(|s| s.base <= from).saturating_sub(1);
            let Some(seg) = state.segments.get(i).filter(|s| from < s.next_offset) else {
                return Err(LogError::corrupt(&topic.dir, from, "no segment holds this offset"));
            };
            let (pos, at) = seg.locate(from);
            (Arc::clone(&seg.file), seg.path.clone(), pos, seg.len, at)
        };
        let mut cursor = FrameCursor::new(&file, pos, end, chunk);
        loop {
            let step = cursor
                .next_frame()
                .map_err(|e| LogError::io(format!("reading {}", path.display()), e))?;
            match step {
                Step::End => break,
                Step::Bad { pos, reason } => return Err(LogError::corrupt(&path, pos, reason)),
                Step::Frame { pos, info, payload } => {
                    if info.offset != expect {
                        return Err(LogError::corrupt(
                            &path,
                            pos,
                            format!(
                                "record has offset {} where {expect} was expected",
                                info.offset
                            ),
                        ));
                    }
                    expect += 1;
                    if info.offset < from {
                        continue;
                    }
                    if !out.is_empty() && bytes.saturating_add(payload.len()) > max_bytes {
                        return Ok(out);
                    }
                    bytes += payload.len();
                    out.push(Record {
                        offset: info.offset,
                        timestamp_ms: info.timestamp_ms,
                        payload: payload.to_vec(),
                    });
                    if out.len() >= max_records {
                        return Ok(out);
                    }
                }
            }
        }
        // This segment's published part is exhausted; continue in the next one.
        from = expect;
    }
}

/// The blocking body of [`EventLog::offset_for_time`].
fn offset_for_time(topic: &Topic, t: i64) -> Result<u64> {
    let (file, path, start, end, mut expect) = {
        let state = read(&topic.state);
        let Some((seg, (start, end, first))) =
            state.segments.iter().find_map(|s| s.time_block(t).map(|b| (s, b)))
        else {
            return Ok(state.end_offset());
        };
        (Arc::clone(&seg.file), seg.path.clone(), start, end, first)
    };
    let chunk = usize::try_from(end - start).unwrap_or(usize::MAX);
    let mut cursor = FrameCursor::new(&file, start, end, chunk);
    loop {
        let step = cursor
            .next_frame()
            .map_err(|e| LogError::io(format!("reading {}", path.display()), e))?;
        match step {
            Step::Frame { pos, info, .. } => {
                if info.offset != expect {
                    return Err(LogError::corrupt(&path, pos, "unexpected record offset"));
                }
                if info.timestamp_ms >= t {
                    return Ok(info.offset);
                }
                expect += 1;
            }
            Step::Bad { pos, reason } => return Err(LogError::corrupt(&path, pos, reason)),
            Step::End => {
                return Err(LogError::corrupt(
                    &path,
                    start,
                    "index block promises a record at or after the time, found none",
                ));
            }
        }
    }
}

/// Deletes the expired prefix of one topic's segments (blocking).
fn apply_retention(
    topic: &Topic,
    cutoff: i64,
    sync: bool,
    report: &mut RetentionReport,
) -> Result<()> {
    let removed: Vec<Segment> = {
        let mut state = write(&topic.state);
        let keep_from = state
            .segments
            .iter()
            .take(state.segments.len().saturating_sub(1))
            .position(|s| !s.is_empty() && s.max_ts >= cutoff)
            .unwrap_or(state.segments.len().saturating_sub(1));
        state.segments.drain(..keep_from).collect()
    };
    // Oldest first, with a directory sync after each, so a crash can only leave a suffix of
    // the expired segments (never a hole in the offsets).
    for seg in removed {
        let ctx = |what: &str| format!("{what} {}", seg.path.display());
        match fs::remove_file(&seg.path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(LogError::io(ctx("deleting"), e)),
        }
        let _ = fs::remove_file(idx_path(&seg.path));
        if sync {
            sync_dir(&topic.dir)
                .map_err(|e| LogError::io(ctx("syncing directory after deleting"), e))?;
        }
        tracing::info!(topic = %topic.name, base = seg.base, "retention deleted a segment");
        report.segments_deleted += 1;
        report.records_deleted += seg.records();
        report.bytes_deleted += seg.len;
    }
    Ok(())
}
