//! Snapshots: one file per shard holding everything needed to resume exactly, written
//! atomically, checksummed, and loaded newest-valid-first.
//!
//! # Files
//!
//! ```text
//! <dir>/shards-<N>/shard-<i>/<next_offset:020>.snap       a snapshot of shard i of N
//! <dir>/shards-<N>/shard-<i>/<next_offset:020>.snap.tmp   being written (deleted on load)
//! ```
//!
//! Writing: temp file, `fsync`, rename over the final name, `fsync` of the directory; then
//! all but the newest `keep` snapshots are deleted. A crash leaves either the old set or the
//! new file complete. Loading tries snapshots newest first and takes the first that passes
//! every check (magic, version, length, CRC-32C, shard identity, contents); a damaged one is
//! skipped with a warning, and with none valid the shard starts empty and replays the log
//! from its start. A different shard count uses a different directory, so changing
//! `shards` means a full replay (re-splitting old snapshots is not implemented).
//!
//! # Layout (little-endian)
//!
//! ```text
//! header: "QTRANKSN" | version u32 = 1 | body_len u64 | crc32c(body) u32
//! body:   shard u32 | shards u32 | cap u32 | next_offset u64 | has_tail u8 | tail_crc u32
//!         | has_watermark u8 | watermark i64
//!         | stats: views, ticks, malformed, late, too_old (u64 each)
//!         | tags:     n u32, n x (len u32, utf-8)
//!         | tag sets: n u32, n x (len u32, len x tag index u32)
//!         | all:      n u64, n x (video u64, count u64)
//!         | raw:      n u64, n x (at_ms i64, video u64, tag set index u32 or u32::MAX)
//!         | minutes:  n u32, n x (minute i64,
//!                                 nv u32, nv x (video u64, count u32),
//!                                 nt u32, nt x (tag index u32, video u64, count u32))
//! ```
//!
//! Only `all`, the raw buffer and the minute aggregates are stored: the `1h`, `1d`, `30d`
//! and per-tag windows are recomputed from them by the window rule on load, so a snapshot is
//! about 24 bytes per raw view, 12 per (video, minute), 16 per (tag, video, minute) and 16
//! per video ever viewed.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use quicktok_core::Id;

use crate::Ranker;
use crate::aggregate::{MinuteAgg, TagSet};
use crate::error::RankError;
use crate::ranker::{RankerStats, RawView};
use crate::window::{HOUR_MS, MONTH_MS, Window, edge, minute};

const MAGIC: &[u8; 8] = b"QTRANKSN";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 24;
const NO_SET: u32 = u32::MAX;

impl Ranker {
    /// The ranker's full state as snapshot file contents (see the module docs).
    pub fn to_snapshot(&self) -> Vec<u8> {
        let mut b = Enc(Vec::with_capacity(1024 + self.raw.len() * 24));
        b.u32(self.shard);
        b.u32(self.shards);
        b.u32(u32::try_from(self.cap).unwrap_or(u32::MAX));
        b.u64(self.next_offset);
        b.u8(u8::from(self.tail_crc.is_some()));
        b.u32(self.tail_crc.unwrap_or(0));
        b.u8(u8::from(self.watermark.is_some()));
        b.i64(self.watermark.unwrap_or(0));
        let s = &self.stats;
        for v in [s.views, s.ticks, s.malformed, s.late, s.too_old] {
            b.u64(v);
        }
        // Tag and tag-set tables, so each reference is a 4-byte index.
        let mut tag_ix: HashMap<Arc<str>, u32> = HashMap::new();
        let mut tags: Vec<Arc<str>> = Vec::new();
        let mut tag_index = |t: &Arc<str>| -> u32 {
            *tag_ix.entry(Arc::clone(t)).or_insert_with(|| {
                tags.push(Arc::clone(t));
                (tags.len() - 1) as u32
            })
        };
        let mut set_ix: HashMap<Arc<[Arc<str>]>, u32> = HashMap::new();
        let mut sets: Vec<Vec<u32>> = Vec::new();
        let mut raw_sets = Vec::with_capacity(self.raw.len());
        for r in &self.raw {
            raw_sets.push(match &r.tags {
                None => NO_SET,
                Some(set) => *set_ix.entry(Arc::clone(set)).or_insert_with(|| {
                    sets.push(set.iter().map(&mut tag_index).collect());
                    (sets.len() - 1) as u32
                }),
            });
        }
        let mut minute_tags: Vec<Vec<(u32, Id, u32)>> = Vec::with_capacity(self.minutes.len());
        for agg in self.minutes.values() {
            let mut v = Vec::with_capacity(agg.tags.len());
            agg.tags.for_each(|(t, id), c| v.push((tag_index(t), *id, c)));
            minute_tags.push(v);
        }
        b.u32(tags.len() as u32);
        for t in &tags {
            b.u32(t.len() as u32);
            b.0.extend_from_slice(t.as_bytes());
        }
        b.u32(sets.len() as u32);
        for set in &sets {
            b.u32(set.len() as u32);
            for &i in set {
                b.u32(i);
            }
        }
        let all = &self.windows[Window::All.index()];
        b.u64(all.len() as u64);
        for (id, c) in all.iter() {
            b.u64(id.0);
            b.u64(c);
        }
        b.u64(self.raw.len() as u64);
        for (r, set) in self.raw.iter().zip(raw_sets) {
            b.i64(r.at_ms);
            b.u64(r.video.0);
            b.u32(set);
        }
        b.u32(self.minutes.len() as u32);
        for ((&m, agg), tags) in self.minutes.iter().zip(minute_tags) {
            b.i64(m);
            b.u32(agg.videos.len() as u32);
            agg.videos.for_each(|id, c| {
                b.u64(id.0);
                b.u32(c);
            });
            b.u32(tags.len() as u32);
            for (t, id, c) in tags {
                b.u32(t);
                b.u64(id.0);
                b.u32(c);
            }
        }
        let body = b.0;
        let mut out = Vec::with_capacity(HEADER_LEN + body.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
        out.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Restores a ranker from [`Ranker::to_snapshot`] output, verifying it throughout.
    pub fn from_snapshot(bytes: &[u8]) -> Result<Ranker, RankError> {
        decode(bytes).map_err(|reason| RankError::SnapshotCorrupt { path: PathBuf::new(), reason })
    }
}

fn decode(bytes: &[u8]) -> Result<Ranker, String> {
    if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
        return Err("not a rank snapshot (bad magic or too short)".into());
    }
    let mut h = Dec { buf: &bytes[8..HEADER_LEN], pos: 0 };
    let version = h.u32()?;
    if version != VERSION {
        return Err(format!("unsupported version {version}"));
    }
    let len = h.u64()?;
    let crc = h.u32()?;
    let body = &bytes[HEADER_LEN..];
    if body.len() as u64 != len {
        return Err(format!("body is {} bytes, header says {len} (torn write?)", body.len()));
    }
    if crc32c::crc32c(body) != crc {
        return Err("checksum mismatch".into());
    }
    let mut d = Dec { buf: body, pos: 0 };
    let shard = d.u32()?;
    let shards = d.u32()?;
    if shards == 0 || shard >= shards {
        return Err(format!("shard {shard} of {shards}"));
    }
    let cap = d.u32()? as usize;
    if cap == 0 || cap > 1 << 20 {
        return Err(format!("cap {cap}"));
    }
    let next_offset = d.u64()?;
    let has_tail = d.u8()?;
    let tail = d.u32()?;
    let has_w = d.u8()?;
    let w = d.i64()?;
    let watermark = (has_w == 1).then_some(w);
    let stats = RankerStats {
        views: d.u64()?,
        ticks: d.u64()?,
        malformed: d.u64()?,
        late: d.u64()?,
        too_old: d.u64()?,
    };
    let mut ranker = Ranker::for_shard(shard, shards).with_top_capacity(cap);
    let n = d.u32()? as usize;
    let mut tags = Vec::with_capacity(n.min(d.left()));
    for _ in 0..n {
        let len = d.u32()? as usize;
        let t = std::str::from_utf8(d.take(len)?).map_err(|_| "tag is not UTF-8".to_owned())?;
        if t.is_empty() {
            return Err("empty tag".into());
        }
        tags.push(ranker.interner.tag(t));
    }
    let n = d.u32()? as usize;
    let mut sets: Vec<TagSet> = Vec::with_capacity(n.min(d.left()));
    for _ in 0..n {
        let len = d.count32(4)?;
        let mut set = Vec::with_capacity(len);
        for _ in 0..len {
            set.push(Arc::clone(tags.get(d.u32()? as usize).ok_or("bad tag index")?));
        }
        sets.push(ranker.interner.set(&set));
    }
    let n = d.count64(16)?;
    let mut all = Vec::with_capacity(n);
    for _ in 0..n {
        let (id, c) = (Id(d.u64()?), d.u64()?);
        if c == 0 {
            return Err("zero count".into());
        }
        all.push((id, c));
    }
    let n = d.count64(20)?;
    let mut raw = VecDeque::with_capacity(n);
    let mut last = i64::MIN;
    for _ in 0..n {
        let at_ms = d.i64()?;
        let video = Id(d.u64()?);
        let set = d.u32()?;
        let Some(w) = watermark else { return Err("raw views without a watermark".into()) };
        if at_ms < last || at_ms > w || at_ms <= w.saturating_sub(HOUR_MS) {
            return Err(format!("raw view at {at_ms} out of order or outside 1h of {w}"));
        }
        last = at_ms;
        let tags = match set {
            NO_SET => None,
            i => sets.get(i as usize).ok_or("bad tag set index")?.clone(),
        };
        raw.push_back(RawView { at_ms, video, tags });
    }
    let n = d.u32()? as usize;
    let mut minutes = BTreeMap::new();
    for _ in 0..n {
        let m = d.i64()?;
        let Some(w) = watermark else { return Err("minutes without a watermark".into()) };
        if m < minute(edge(w, MONTH_MS)) || m > minute(w) {
            return Err(format!("minute {m} outside 30d of {w}"));
        }
        let mut agg = MinuteAgg::default();
        let nv = d.count32(12)?;
        for _ in 0..nv {
            let (id, c) = (Id(d.u64()?), d.u32()?);
            agg.videos.add(id, c);
        }
        let nt = d.count32(16)?;
        for _ in 0..nt {
            let t = Arc::clone(tags.get(d.u32()? as usize).ok_or("bad tag index")?);
            let (id, c) = (Id(d.u64()?), d.u32()?);
            agg.tags.add((t, id), c);
        }
        if minutes.insert(m, agg).is_some() {
            return Err(format!("minute {m} twice"));
        }
    }
    if d.left() != 0 {
        return Err(format!("{} trailing bytes", d.left()));
    }
    let mut ranker = ranker.restore(next_offset, watermark, stats, all, raw, minutes);
    ranker.tail_crc = (has_tail == 1).then_some(tail);
    Ok(ranker)
}

struct Enc(Vec<u8>);

impl Enc {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
}

struct Dec<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Dec<'a> {
    fn left(&self) -> usize {
        self.buf.len() - self.pos
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.left() < n {
            return Err("truncated".into());
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let s = self.take(N)?;
        s.try_into().map_err(|_| "truncated".to_owned())
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    /// A count of `entry`-byte items that must fit in what is left (so a corrupt count
    /// cannot make us allocate wildly).
    fn count64(&mut self, entry: usize) -> Result<usize, String> {
        let n = self.u64()?;
        self.check_count(n, entry)
    }
    fn count32(&mut self, entry: usize) -> Result<usize, String> {
        let n = u64::from(self.u32()?);
        self.check_count(n, entry)
    }
    fn check_count(&self, n: u64, entry: usize) -> Result<usize, String> {
        usize::try_from(n)
            .ok()
            .filter(|&n| n.saturating_mul(entry) <= self.left())
            .ok_or_else(|| format!("count {n} exceeds the remaining bytes"))
    }
}

/// A loaded snapshot and what was skipped on the way.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The restored shard, `None` when no valid snapshot exists.
    pub ranker: Option<Ranker>,
    /// The file it came from.
    pub path: Option<PathBuf>,
    /// Snapshots that were newer but failed validation, with the reason.
    pub rejected: Vec<(PathBuf, String)>,
}

/// The snapshot files of one shard count under a directory (see the module docs). Blocking:
/// call from `spawn_blocking`.
#[derive(Debug, Clone)]
pub struct SnapshotStore {
    dir: PathBuf,
    shards: u32,
    keep: usize,
}

impl SnapshotStore {
    /// Snapshots of `shards` shards under `root`, keeping the newest `keep` (at least 1)
    /// per shard.
    pub fn new(root: impl AsRef<Path>, shards: u32, keep: usize) -> Self {
        SnapshotStore {
            dir: root.as_ref().join(format!("shards-{shards}")),
            shards,
            keep: keep.max(1),
        }
    }

    /// The directory of one shard's snapshots.
    pub fn shard_dir(&self, shard: u32) -> PathBuf {
        self.dir.join(format!("shard-{shard}"))
    }

    /// Snapshot files of a shard, newest (highest offset) first.
    pub fn list(&self, shard: u32) -> Result<Vec<(u64, PathBuf)>, RankError> {
        let dir = self.shard_dir(shard);
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(RankError::io(format!("listing {}", dir.display()), e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry =
                entry.map_err(|e| RankError::io(format!("listing {}", dir.display()), e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(offset) = name.strip_suffix(".snap").and_then(|n| n.parse::<u64>().ok()) {
                out.push((offset, entry.path()));
            }
        }
        out.sort_by(|a, b| b.cmp(a));
        Ok(out)
    }

    /// Writes one shard's snapshot atomically and prunes old ones; returns its path.
    pub fn write(&self, ranker: &Ranker) -> Result<PathBuf, RankError> {
        self.write_bytes(ranker.shard, ranker.next_offset, &ranker.to_snapshot())
    }

    /// Writes encoded snapshot bytes of `shard` covering offsets below `next_offset`.
    pub fn write_bytes(
        &self,
        shard: u32,
        next_offset: u64,
        bytes: &[u8],
    ) -> Result<PathBuf, RankError> {
        let dir = self.shard_dir(shard);
        if !dir.exists() {
            fs::create_dir_all(&dir)
                .map_err(|e| RankError::io(format!("creating {}", dir.display()), e))?;
            // Make the new directories themselves durable.
            for d in [self.dir.parent(), Some(self.dir.as_path())].into_iter().flatten() {
                sync_dir(d)?;
            }
        }
        let path = dir.join(format!("{next_offset:020}.snap"));
        let tmp = dir.join(format!("{next_offset:020}.snap.tmp"));
        let io = |what: &str, e| RankError::io(format!("{what} {}", tmp.display()), e);
        let mut f = File::create(&tmp).map_err(|e| io("creating", e))?;
        f.write_all(bytes).map_err(|e| io("writing", e))?;
        f.sync_all().map_err(|e| io("syncing", e))?;
        drop(f);
        fs::rename(&tmp, &path).map_err(|e| io("renaming", e))?;
        sync_dir(&dir)?;
        for (_, old) in self.list(shard)?.into_iter().skip(self.keep) {
            if let Err(e) = fs::remove_file(&old) {
                tracing::warn!(path = %old.display(), error = %e, "could not delete old snapshot");
            }
        }
        Ok(path)
    }

    /// Loads the newest valid snapshot of `shard`, skipping (and reporting) damaged ones and
    /// deleting leftover temp files.
    pub fn load(&self, shard: u32) -> Result<Loaded, RankError> {
        self.load_up_to(shard, u64::MAX)
    }

    /// Like [`SnapshotStore::load`], also skipping snapshots covering more than `end`
    /// records: after a power loss the log may have lost a suffix the ranker had already
    /// counted, and resuming past the log's end would silently skip the records that reuse
    /// those offsets.
    pub fn load_up_to(&self, shard: u32, end: u64) -> Result<Loaded, RankError> {
        self.remove_temp_files(shard);
        let mut loaded = Loaded::default();
        for (offset, path) in self.list(shard)? {
            let result = if offset > end {
                Err(format!("covers offset {offset}, past the log's end {end}"))
            } else {
                self.read(shard, offset, &path)
            };
            match result {
                Ok(r) => {
                    loaded.ranker = Some(r);
                    loaded.path = Some(path);
                    break;
                }
                Err(reason) => {
                    tracing::warn!(path = %path.display(), %reason, "skipping invalid snapshot");
                    loaded.rejected.push((path, reason));
                }
            }
        }
        Ok(loaded)
    }

    /// Deletes leftover temp files of a shard (a crash mid-write).
    pub fn remove_temp_files(&self, shard: u32) {
        if let Ok(entries) = fs::read_dir(self.shard_dir(shard)) {
            for e in entries.flatten() {
                if e.file_name().to_str().is_some_and(|n| n.ends_with(".snap.tmp")) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
    }

    /// Reads and fully validates one snapshot file of `shard` named for `offset`; the error
    /// says what is wrong with it.
    pub(crate) fn read(&self, shard: u32, offset: u64, path: &Path) -> Result<Ranker, String> {
        let r = decode(&fs::read(path).map_err(|e| format!("unreadable: {e}"))?)?;
        if r.shard != shard || r.shards != self.shards {
            Err(format!("holds shard {} of {}", r.shard, r.shards))
        } else if r.next_offset != offset {
            Err(format!("covers offset {}, named {offset}", r.next_offset))
        } else {
            Ok(r)
        }
    }
}

fn sync_dir(dir: &Path) -> Result<(), RankError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| RankError::io(format!("syncing directory {}", dir.display()), e))
}
