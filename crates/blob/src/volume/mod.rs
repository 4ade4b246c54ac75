//! The packed volume engine: QuickTok's embedded default [`BlobStore`], in the style of
//! Facebook's Haystack and SeaweedFS: many blobs appended to a few big volume files, an
//! in-memory index `id -> (volume, offset)`, one positional read to find a blob.
//!
//! # Files
//!
//! Each [`StorageClass`] is a separate set of volumes in its own directory (configurable, so
//! cold can live on a cheaper disk; default `<data_dir>/blobs/{hot,warm,cold}`):
//!
//! ```text
//! <class dir>/LOCK               flock(2)ed while open: one store per directory
//! <class dir>/<id:010>.dat       volume: superblock, then needles, append-only
//! <class dir>/<id:010>.idx       index of that volume: header, then one entry per needle
//! <class dir>/*.tmp              a volume being created or compacted (removed on open)
//! ```
//!
//! Volume ids are unique across classes and never reused while a volume with a higher id
//! exists. All integers are little-endian; every needle starts 8-byte aligned.
//!
//! ```text
//! superblock (64 B): "QTBV" | version u32 | volume u32 | replaces u32 | nonce u64
//!                    | zeros | crc32c(bytes 0..60) u32
//! needle:  header   "QTBN" | kind u8 (1 blob, 2 tombstone) | 0 u8 | ct_len u16 | id u64
//!                   | seq u64 | cookie u64 | size u64 | created_at_ms i64
//!                   | crc32c(bytes 0..48 ++ content type) u32 | 0 u32 | content type
//!                   | zero padding to 8
//!          table    one crc32c u32 per 64 KiB block of the data, padded to 8
//!          data     `size` bytes, padded to 8
//!          trailer  crc32c(header ++ table) u32 | "QTBE"
//! .idx:    header   "QTBI" | version u32 | volume u32 | 0 u32 | nonce u64 | 0 u32 | crc u32
//!          entries  id u64 | offset u64 | size u64 | seq u64 | ct_len u16 | kind u8 (1 blob,
//!                   2 tombstone, 3 skipped region of `size` bytes) | 0 u8 | crc32c u32
//! ```
//!
//! A tombstone is 64 bytes. A blob of `n` bytes costs `n` plus about 72 bytes, its content
//! type and 4 bytes per 64 KiB (0.006 %) on disk, and 40 bytes in the `.idx`.
//!
//! # Writing
//!
//! `put` knows the size up front, so it **reserves** the needle's space at the end of its
//! class's current volume and writes the header there at once (under the volume's append
//! lock, which also hands out the sequence number), then streams the body into the
//! reserved space in 1 MiB positional writes, computing the block CRCs as it goes (memory
//! per put: 1 MiB plus the CRC table, 4 bytes per 64 KiB). Any number of puts fill their
//! own regions of the same file concurrently, so a slow upload delays nobody. At the end
//! it writes the table and the trailer and calls `fdatasync` through a per-volume **group
//! commit**: while one sync runs, every put that finishes meanwhile waits and shares the
//! next one. Only then is the `.idx` entry appended and the blob published in the index.
//! A body of the wrong length, a failing stream or a closed store (even while the put waits
//! for a stalled client) abort the put: nothing is published, and the space is given back
//! if it was the last reservation, else it is garbage for compaction. A put whose caller
//! drops its future before the body is complete is aborted too (its space is always
//! garbage then: a write of it may still be in flight). Once the body is complete, the put
//! finishes on its own task even if its caller goes away, and `delete`, `set_class` and
//! compactions always run to completion: memory and disk never disagree about a durable
//! needle. A new volume is started when a needle would take the current one past
//! `volume_bytes`; a bigger blob gets a volume of its own.
//!
//! `delete` appends a 64-byte tombstone **to the volume holding the blob**, syncs it, then
//! removes the index entry. Tombstones only ever refer to needles of their own volume, so
//! compaction may drop them freely and no cross-volume bookkeeping exists.
//!
//! `set_class` copies the needle (verifying every block) into the target class's current
//! volume with a new, higher sequence number but the same cookie, `created_at` and bytes,
//! syncs it, switches the index entry (readers see the blob throughout: old location before,
//! new one after), then tombstones the old needle. A crash in between leaves two live
//! copies; on open the higher sequence number wins and the other gets its tombstone.
//!
//! # Reading
//!
//! `get` and `stat` look the id up (a read lock held for a hash lookup), then read the
//! needle header with one positional read (`pread`, up to 4 KiB: the metadata is not kept
//! in memory) and check its CRC and id. A ranged `get` reads the CRCs of just the blocks
//! it touches, then streams those blocks, up to 16 per read, verifying each before slicing
//! out the requested bytes. Any mismatch ends the stream with [`BlobError::Integrity`]; no
//! unverified byte is ever returned. Reads never take a lock a writer holds for more than a
//! hash insert, and hold an `Arc` of the volume file, so compaction can swap and unlink the
//! file under a reader that keeps streaming the old inode.
//!
//! # The in-memory index and its cost
//!
//! One `HashMap<u64, u64>` for the whole store: blob id -> volume id (high 32 bits) and
//! offset in 8-byte units (low 32 bits, so volumes are addressable to 32 GiB; the
//! configuration caps `volume_bytes` at 16 GiB so tombstones appended to full volumes never
//! push a blob's start out of range). That is 16 bytes of payload per blob. std's `HashMap`
//! (hashbrown) adds one control byte per bucket and keeps the bucket count a power of two
//! at most 7/8 full, so the real cost is `17 * buckets / blobs` bytes: **19.4 bytes per
//! blob just before the table doubles, 38.9 just after, about 28 on average** (computed
//! from `capacity()` by [`VolumeStats::index_bytes`]; the unit test
//! `memory_cost_per_blob` checks the bounds). For comparison, SeaweedFS quotes 16 bytes
//! and Haystack about 10 (both before their own map overhead). Content type, `created_at`,
//! cookie and size are not in memory: they are in the needle header, read by every `get`
//! and `stat` with the same `pread` that checks it. Per volume there is a small fixed cost
//! (an open file descriptor each for `.dat` and `.idx`, a few hundred bytes of state).
//!
//! # Opening and recovery
//!
//! For each volume: the superblock must be valid (else `Integrity`: the file is written via
//! a temporary name and rename, so a bad one is damage, not a torn write). Its `.idx` is
//! trusted if its header carries the superblock's nonce; its entries up to the first bad
//! checksum are used, minus any that reach past the end of the `.dat` (a needle a crash
//! took away). Every byte range of the `.dat` not covered by a trusted entry is scanned and
//! **fully verified** (header, trailer and every block CRC). A needle that fails is a torn
//! write: skipped if good needles follow (concurrent puts complete out of order), cut off
//! (`ftruncate`) if only torn bytes follow. The `.idx` is rewritten (atomically) whenever it
//! was not an exact description, so a missing, short or garbled index is rebuilt from the
//! volume. Then per volume a tombstone kills the earlier needles of its id, and across
//! volumes the highest sequence number wins. A compacted volume whose superblock says it
//! `replaces` another one that still exists finishes its compaction by deleting the old
//! one. Cost of opening: reading each `.idx`, plus verifying every needle the `.idx` did
//! not cover (normally only the last few puts before a crash; everything if an index is lost).
//!
//! # Durability promise
//!
//! With `sync = true` (the default): `put`, `delete` and `set_class` return `Ok` only after
//! their needle (blob copy or tombstone) is written and `fdatasync`ed; a new volume file is
//! synced together with its directory before it is used. Acknowledged blobs survive a
//! process crash, a kernel crash and power loss, provided the disk honours flushes; a
//! deleted blob never comes back; a blob being moved is, after a crash, whole in exactly one
//! class. A call that fails with an IO error, or whose caller stopped waiting, may or may
//! not have taken effect (a size mismatch or body error never stores anything). After any write or fsync error the store
//! refuses writes ([`BlobError::Unavailable`]) until reopened, because the page cache can
//! no longer be trusted; reads keep working. The `.idx` files are not synced per write (they
//! are synced when a volume fills and on `close`): losing their tail costs a rescan, never
//! data. With `sync = false` nothing is fsynced: a process crash loses nothing, power loss
//! can lose anything recent (tests and throwaway data only).
//!
//! # Compaction
//!
//! [`VolumeStore::compact`] rewrites one volume, [`VolumeStore::compact_all`] every volume
//! whose garbage is at least `compaction_garbage_percent` of it (the store never compacts on
//! its own: a background job decides when). Online: the volume is sealed, in-flight puts
//! into it are awaited, then the live needles (found by one pass over the whole index under
//! its read lock: tens of milliseconds per ten million blobs) are copied, each verified, into
//! a new volume written under a temporary name — reads and writes go on meanwhile. A live
//! blob that fails verification stops the compaction with `Integrity` (the old volume stays
//! as it is): compaction neither copies nor drops damaged data. Then, holding the volume's mutation lock (deletes and moves *out
//! of this volume* wait; nothing else does), blobs that died during the copy get tombstones
//! in the new volume, it is synced and renamed into place (the commit point), the index
//! entries are switched under one short write lock, and the old files are unlinked. Readers
//! that already hold the old file keep reading it; the disk space is freed when the last
//! of them finishes. Tombstones are not copied: they only ever killed needles of their own
//! volume, which compaction drops.
//!
//! # ETag
//!
//! `<id:016x><cookie:016x>`, where the cookie is a random 64-bit number drawn by each
//! `put`. It survives `set_class` and compaction (the bytes are identical) and changes when
//! an id is deleted and put again (the content may differ); two puts share a cookie with
//! probability 2^-64.

mod compact;
mod config;
mod file;
pub mod format;
mod index;
mod recover;
mod sync;

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::future::Future;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use quicktok_core::{Clock, Id, SystemClock};
use serde::{Deserialize, Serialize};

use crate::api::{BlobBody, BlobMeta, BlobRead, BlobStore, ByteRange, StorageClass, Usage};
use crate::error::{BlobError, Result};
pub use compact::CompactionReport;
pub use config::{MAX_VOLUME_BYTES, MIN_VOLUME_BYTES, VolumeConfig};
use file::Volume;
use format::{
    BLOCK_BYTES, Entry, EntryKind, Header, Kind, Layout, MAX_BLOB_BYTES, MAX_CONTENT_TYPE,
};
use index::Index;
use recover::IO_CHUNK;
use sync::{IdLocks, lock};

/// Bytes a put buffers before one positional write (a whole number of blocks).
const WRITE_CHUNK: usize = IO_CHUNK as usize;

pub(crate) fn now_ms() -> i64 {
    SystemClock.now_ms()
}

fn read_lock<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write_lock<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

fn class_index(class: StorageClass) -> usize {
    match class {
        StorageClass::Hot => 0,
        StorageClass::Warm => 1,
        StorageClass::Cold => 2,
    }
}

/// Runs a mutation to its end on its own task: dropping the caller's future must not stop
/// it half-way (between a durable write and the in-memory update that goes with it).
async fn detach<T: Send + 'static>(
    what: &'static str,
    f: impl Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    tokio::spawn(f).await.map_err(|e| BlobError::io(what, io::Error::other(e)))?
}

async fn blocking<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| BlobError::io(what, io::Error::other(e)))?
}

fn etag(h: &Header) -> String {
    format!("{:016x}{:016x}", h.id, h.cookie)
}

fn meta_of(h: &Header, class: StorageClass) -> BlobMeta {
    BlobMeta {
        id: Id(h.id),
        size: h.size,
        class,
        created_at_ms: h.created_at_ms,
        etag: etag(h),
        content_type: h.content_type.clone(),
    }
}

/// Counters for benchmarks and operators (see [`VolumeStore::stats`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeStats {
    /// Successful puts and their bytes.
    pub puts: u64,
    pub put_bytes: u64,
    /// `get` calls that found their blob (bytes streamed are not counted).
    pub gets: u64,
    pub deletes: u64,
    /// Successful `set_class` moves.
    pub moves: u64,
    /// `fdatasync` calls on volume data (group commit makes this smaller than the writes).
    pub fsyncs: u64,
    pub compactions: u64,
    pub bytes_reclaimed: u64,
    /// Current number of volumes and of live blobs.
    pub volumes: u64,
    pub blobs: u64,
    /// Heap bytes of the in-memory index (see the module docs).
    pub index_bytes: u64,
}

#[derive(Default)]
struct Counters {
    puts: AtomicU64,
    put_bytes: AtomicU64,
    gets: AtomicU64,
    deletes: AtomicU64,
    moves: AtomicU64,
    fsyncs: AtomicU64,
    compactions: AtomicU64,
    bytes_reclaimed: AtomicU64,
}

/// One volume as seen by operators (see [`VolumeStore::volumes`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeInfo {
    pub id: u32,
    pub class: StorageClass,
    pub path: PathBuf,
    /// Bytes of the file in use (superblock, needles, garbage).
    pub bytes: u64,
    pub live_blobs: u64,
    pub live_bytes: u64,
    pub garbage_bytes: u64,
    /// No longer receives new blobs.
    pub sealed: bool,
}

/// Where a blob's needle lies (for operators, debugging and the corruption tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobLocation {
    pub volume: u32,
    pub class: StorageClass,
    pub path: PathBuf,
    /// Byte offset of the needle in the volume file.
    pub offset: u64,
    pub needle_len: u64,
    /// Byte offset of the blob's first data byte in the volume file.
    pub data_offset: u64,
}

struct State {
    index: Index,
    volumes: BTreeMap<u32, Arc<Volume>>,
}

struct Inner {
    config: VolumeConfig,
    dirs: [PathBuf; 3],
    state: RwLock<State>,
    /// The volume each class appends new blobs to (a tokio mutex: creating one does IO).
    active: [tokio::sync::Mutex<Option<Arc<Volume>>>; 3],
    seq: AtomicU64,
    next_volume: AtomicU32,
    ids: Arc<IdLocks>,
    compaction: tokio::sync::Mutex<()>,
    /// Mutations hold it shared; `close` takes it exclusively to wait for them.
    gate: Arc<tokio::sync::RwLock<()>>,
    closed: AtomicBool,
    /// Wakes puts waiting for a body chunk when the store closes.
    closing: tokio::sync::watch::Sender<bool>,
    poisoned: Mutex<Option<String>>,
    locks: Mutex<Vec<File>>,
    stats: Counters,
    /// Test hook: (reached, resume) for the next compaction to wait on before its commit.
    hold: Mutex<Option<(Arc<tokio::sync::Notify>, Arc<tokio::sync::Notify>)>>,
}

/// A space reserved in a volume for a blob needle, header already written. Dropping it
/// without [`Inner::commit`] aborts the put (the space becomes garbage).
struct Reservation {
    vol: Arc<Volume>,
    off: u64,
    header: Header,
    header_bytes: Vec<u8>,
    done: bool,
}

impl Reservation {
    fn layout(&self) -> Layout {
        self.header.layout()
    }

    /// Aborts after a failed fill (no write into it is running any more), giving the space
    /// back if it is still the volume's last reservation.
    async fn abort(mut self) {
        self.done = true;
        let (vol, off, len) = (Arc::clone(&self.vol), self.off, self.layout().needle_len());
        let _ = tokio::task::spawn_blocking(move || vol.end_put(off, len, true)).await;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        // Cancelled: a write may still be in flight, so the space just becomes garbage.
        if !self.done {
            self.vol.end_put(self.off, self.layout().needle_len(), false);
        }
    }
}

/// Streaming state of a ranged read.
struct ReadState {
    id: u64,
    vol: Arc<Volume>,
    off: u64,
    layout: Layout,
    /// Next blob byte to yield, and the end of the range.
    pos: u64,
    end: u64,
    /// CRCs of the blocks from `first_block` to the range's last block.
    table: Option<Vec<u8>>,
    first_block: u64,
}

impl ReadState {
    /// Reads, verifies and slices the next up to 16 blocks (blocking).
    fn step(&mut self) -> Result<Bytes> {
        let l = self.layout;
        if self.table.is_none() {
            let last_block = (self.end - 1) / BLOCK_BYTES;
            let n = last_block - self.first_block + 1;
            let at = self.off + l.table_off() + 4 * self.first_block;
            self.table = Some(self.vol.read_at(4 * n, at)?);
        }
        let block = self.pos / BLOCK_BYTES;
        let block_start = block * BLOCK_BYTES;
        // Whole blocks only (the blob's last one may be short), never past the range's last.
        let chunk_end = (block_start + IO_CHUNK).min(align_up(self.end, BLOCK_BYTES)).min(l.size);
        let data =
            self.vol.read_at(chunk_end - block_start, self.off + l.data_off() + block_start)?;
        let table = self.table.as_deref().unwrap_or_default();
        for (i, b) in data.chunks(BLOCK_BYTES as usize).enumerate() {
            let bi = block + i as u64;
            if crc32c::crc32c(b) != format::table_crc(table, (bi - self.first_block) as usize) {
                return Err(self.vol.integrity(
                    self.off + l.data_off() + bi * BLOCK_BYTES,
                    format!("block {bi} of blob {} fails its checksum", self.id),
                ));
            }
        }
        let from = (self.pos - block_start) as usize;
        let to = (self.end.min(chunk_end) - block_start) as usize;
        self.pos = self.end.min(chunk_end);
        Ok(Bytes::from(data).slice(from..to))
    }
}

fn align_up(n: u64, to: u64) -> u64 {
    n.div_ceil(to) * to
}

fn read_stream(
    id: u64,
    vol: Arc<Volume>,
    off: u64,
    layout: Layout,
    range: ByteRange,
) -> BoxStream<'static, Result<Bytes>> {
    if range.is_empty() {
        return stream::empty().boxed();
    }
    let st = ReadState {
        id,
        vol,
        off,
        layout,
        pos: range.start,
        end: range.end,
        table: None,
        first_block: range.start / BLOCK_BYTES,
    };
    stream::unfold(Some(st), |st| async move {
        let mut st = st?;
        if st.pos >= st.end {
            return None;
        }
        let out = tokio::task::spawn_blocking(move || {
            let r = st.step();
            (st, r)
        })
        .await;
        match out {
            Ok((st, Ok(bytes))) => Some((Ok(bytes), Some(st))),
            // After an error the stream ends.
            Ok((_, Err(e))) => Some((Err(e), None)),
            Err(e) => Some((Err(BlobError::io("reading a blob", io::Error::other(e))), None)),
        }
    })
    .boxed()
}

/// Copies `size` data bytes from `src` to `dst`, verifying every block against `table`.
fn copy_verified(
    src: &Volume,
    src_pos: u64,
    dst: &File,
    dst_path: &Path,
    dst_pos: u64,
    size: u64,
    table: &[u8],
) -> Result<()> {
    let mut done = 0u64;
    while done < size {
        let n = (size - done).min(IO_CHUNK);
        let data = src.read_at(n, src_pos + done)?;
        for (i, b) in data.chunks(BLOCK_BYTES as usize).enumerate() {
            let bi = done / BLOCK_BYTES + i as u64;
            if crc32c::crc32c(b) != format::table_crc(table, bi as usize) {
                return Err(src.integrity(
                    src_pos + bi * BLOCK_BYTES,
                    format!("block {bi} fails its checksum"),
                ));
            }
        }
        dst.write_all_at(&data, dst_pos + done)
            .map_err(|e| BlobError::io(format!("writing {}", dst_path.display()), e))?;
        done += n;
    }
    Ok(())
}

impl Inner {
    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) { Err(BlobError::Closed) } else { Ok(()) }
    }

    fn check_writable(&self) -> Result<()> {
        self.check_open()?;
        match lock(&self.poisoned).as_ref() {
            Some(msg) => Err(BlobError::Unavailable(format!(
                "volume store refuses writes after a write error ({msg}); reopen it"
            ))),
            None => Ok(()),
        }
    }

    /// Poisons the store if `e` is an IO error of a write path.
    fn note_io(&self, e: &BlobError) {
        if let BlobError::Io { .. } = e {
            tracing::error!(error = %e, "volume write failed; refusing further writes");
            lock(&self.poisoned).get_or_insert_with(|| e.to_string());
        }
    }

    /// Passes `r` through, poisoning the store on an IO error.
    fn poison_on_io<T>(&self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            self.note_io(e);
        }
        r
    }

    fn locate(&self, id: u64) -> Option<(Arc<Volume>, u64)> {
        let st = read_lock(&self.state);
        let (vol, off) = st.index.get(id)?;
        st.volumes.get(&vol).map(|v| (Arc::clone(v), off))
    }

    fn index_get(&self, id: u64) -> Option<(u32, u64)> {
        read_lock(&self.state).index.get(id)
    }

    async fn header(&self, vol: &Arc<Volume>, id: u64, off: u64) -> Result<Header> {
        let v = Arc::clone(vol);
        blocking("reading a needle header", move || v.read_header(id, off).map(|(h, _)| h)).await
    }

    /// Reserves space for a blob needle with `header` (its `seq` is assigned here) in the
    /// current volume of `class`, starting a new volume when it is full.
    async fn reserve_blob(
        self: &Arc<Self>,
        class: StorageClass,
        header: &Header,
    ) -> Result<Reservation> {
        let len = header.layout().needle_len();
        let mut active = self.active[class_index(class)].lock().await;
        loop {
            if let Some(vol) = active.as_ref().map(Arc::clone) {
                let (me, v, h) = (Arc::clone(self), Arc::clone(&vol), header.clone());
                // The guard is built on the blocking thread: if our caller is gone by the
                // time it returns, tokio drops it there and its `Drop` gives the space back
                // (a lost in-flight count would stall compaction and `close` for ever).
                let reserved = blocking("reserving space", move || {
                    let mut header = h;
                    let got = v.reserve(len, Some(me.config.volume_bytes), &me.seq, |s| {
                        header.seq = s;
                        header.encode()
                    })?;
                    Ok(got.map(|(off, _)| {
                        let header_bytes = header.encode();
                        Reservation { vol: v, off, header, header_bytes, done: false }
                    }))
                })
                .await;
                if let Some(res) = self.poison_on_io(reserved)? {
                    return Ok(res);
                }
                // Full: it stays sealed; make its index durable while nobody waits for it.
                *active = None;
                if self.config.sync {
                    tokio::task::spawn_blocking(move || vol.sync_idx());
                }
            }
            let id = self.next_volume.fetch_add(1, Ordering::Relaxed);
            let dir = self.dirs[class_index(class)].clone();
            let sync = self.config.sync;
            let vol = Arc::new(
                blocking("creating a volume", move || Volume::create(&dir, class, id, sync))
                    .await?,
            );
            tracing::debug!(volume = id, class = class.as_str(), "started a volume");
            write_lock(&self.state).volumes.insert(id, Arc::clone(&vol));
            *active = Some(vol);
        }
    }

    /// Streams `body` into the reservation; returns the block CRCs.
    async fn fill(&self, res: &Reservation, mut body: BlobBody) -> Result<Vec<u32>> {
        let l = res.layout();
        let data_pos = res.off + l.data_off();
        let mut crcs = Vec::with_capacity(l.blocks() as usize);
        let mut buf: Vec<u8> = Vec::with_capacity((l.size as usize).min(WRITE_CHUNK));
        let mut received = 0u64;
        let mut flushed = 0u64;
        let mut closing = self.closing.subscribe();
        loop {
            // A client that stops sending must not hold `close` up.
            let next = tokio::select! {
                next = body.next() => next,
                _ = closing.wait_for(|c| *c) => return Err(BlobError::Closed),
            };
            let Some(chunk) = next else { break };
            let chunk = chunk.map_err(|e| BlobError::Body(e.to_string()))?;
            self.check_open()?;
            received += chunk.len() as u64;
            if received > l.size {
                return Err(BlobError::SizeMismatch { announced: l.size, actual: received });
            }
            let mut rest = &chunk[..];
            while !rest.is_empty() {
                let take = (WRITE_CHUNK - buf.len()).min(rest.len());
                buf.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                if buf.len() == WRITE_CHUNK {
                    buf = self.flush(&res.vol, buf, data_pos + flushed, &mut crcs).await?;
                    flushed += WRITE_CHUNK as u64;
                }
            }
        }
        if received < l.size {
            return Err(BlobError::SizeMismatch { announced: l.size, actual: received });
        }
        if !buf.is_empty() {
            self.flush(&res.vol, buf, data_pos + flushed, &mut crcs).await?;
        }
        Ok(crcs)
    }

    /// Writes a buffer of whole blocks (the last may be partial) and returns it emptied.
    async fn flush(
        &self,
        vol: &Arc<Volume>,
        buf: Vec<u8>,
        pos: u64,
        crcs: &mut Vec<u32>,
    ) -> Result<Vec<u8>> {
        let v = Arc::clone(vol);
        let r = blocking("writing blob data", move || {
            let c: Vec<u32> = buf.chunks(BLOCK_BYTES as usize).map(crc32c::crc32c).collect();
            v.write_at(&buf, pos)?;
            let mut buf = buf;
            buf.clear();
            Ok((buf, c))
        })
        .await;
        let (buf, c) = self.poison_on_io(r)?;
        crcs.extend(c);
        Ok(buf)
    }

    /// Finishes a filled reservation: table and trailer, fsync, `.idx` entry. The caller
    /// publishes it and then calls [`Inner::release`].
    async fn commit(&self, res: &Reservation, table: Vec<u8>) -> Result<()> {
        let l = res.layout();
        let mut front = res.header_bytes.clone();
        front.extend_from_slice(&table);
        debug_assert_eq!(front.len() as u64, l.data_off());
        let trailer = format::encode_trailer(&front);
        let (v, off) = (Arc::clone(&res.vol), res.off);
        let r = blocking("writing a needle", move || {
            v.write_at(&front[l.table_off() as usize..], off + l.table_off())?;
            v.write_at(&trailer, off + l.trailer_off())
        })
        .await;
        self.poison_on_io(r)?;
        self.sync(&res.vol).await?;
        let entry = Entry {
            kind: EntryKind::Data,
            id: res.header.id,
            offset: res.off,
            size: l.size,
            seq: res.header.seq,
            ct_len: res.header.content_type.len() as u16,
        };
        let v = Arc::clone(&res.vol);
        blocking("appending to an index", move || {
            v.append_idx(&[entry]);
            Ok(())
        })
        .await
    }

    fn release(&self, mut res: Reservation) {
        res.done = true;
        res.vol.end_put(res.off, res.layout().needle_len(), false);
    }

    async fn sync(&self, vol: &Arc<Volume>) -> Result<()> {
        if self.config.sync && self.poison_on_io(vol.sync_data().await)? {
            self.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Appends a durable tombstone for `id` to `vol`.
    async fn tombstone(self: &Arc<Self>, vol: &Arc<Volume>, id: u64) -> Result<()> {
        let (me, v) = (Arc::clone(self), Arc::clone(vol));
        let len = Layout::new(0, 0).needle_len();
        let r = blocking("writing a tombstone", move || {
            v.reserve(len, None, &me.seq, |s| format::encode_tombstone(id, s, now_ms()))
        })
        .await;
        let (offset, seq) = self.poison_on_io(r)?.ok_or_else(|| {
            BlobError::io("writing a tombstone", io::Error::other("no space reserved"))
        })?;
        self.sync(vol).await?;
        let v = Arc::clone(vol);
        blocking("appending to an index", move || {
            v.append_idx(&[Entry {
                kind: EntryKind::Tombstone,
                id,
                offset,
                size: 0,
                seq,
                ct_len: 0,
            }]);
            Ok(())
        })
        .await
    }

    async fn put(
        self: &Arc<Self>,
        id: Id,
        class: StorageClass,
        size: u64,
        content_type: &str,
        body: BlobBody,
    ) -> Result<BlobMeta> {
        self.check_writable()?;
        if content_type.len() > MAX_CONTENT_TYPE {
            return Err(BlobError::InvalidArgument(format!(
                "content type of {} bytes exceeds {MAX_CONTENT_TYPE}",
                content_type.len()
            )));
        }
        if size > MAX_BLOB_BYTES {
            return Err(BlobError::InvalidArgument(format!(
                "blob of {size} bytes exceeds the volume store's limit of {MAX_BLOB_BYTES}"
            )));
        }
        let gate = Arc::clone(&self.gate).read_owned().await;
        self.check_writable()?;
        let id_lock = self.ids.lock(id.0).await;
        if self.index_get(id.0).is_some() {
            return Err(BlobError::AlreadyExists(id));
        }
        let header = Header {
            kind: Kind::Data,
            id: id.0,
            seq: 0,
            cookie: rand::random(),
            size,
            created_at_ms: now_ms(),
            content_type: content_type.to_owned(),
        };
        let res = self.reserve_blob(class, &header).await?;
        let crcs = match self.fill(&res, body).await {
            Ok(c) => c,
            Err(e) => {
                res.abort().await;
                return Err(e);
            }
        };
        // The body is in: from here on the put completes even if the caller goes away, so
        // memory and disk never disagree about a needle that is durable.
        let me = Arc::clone(self);
        detach("finishing a put", async move {
            let _held = (gate, id_lock);
            me.commit(&res, format::encode_table(&crcs)).await?;
            {
                let mut st = write_lock(&me.state);
                st.index.insert(id.0, res.vol.id, res.off)?;
                res.vol.add_live(res.layout());
            }
            let meta = meta_of(&res.header, class);
            me.release(res);
            me.stats.puts.fetch_add(1, Ordering::Relaxed);
            me.stats.put_bytes.fetch_add(size, Ordering::Relaxed);
            Ok(meta)
        })
        .await
    }

    async fn get(&self, id: Id, range: Option<ByteRange>) -> Result<BlobRead> {
        self.check_open()?;
        let (vol, off) = self.locate(id.0).ok_or(BlobError::NotFound(id))?;
        let header = self.header(&vol, id.0, off).await?;
        let size = header.size;
        let range = range.unwrap_or(ByteRange { start: 0, end: size });
        if range.start > range.end || range.end > size {
            return Err(BlobError::RangeNotSatisfiable {
                start: range.start,
                end: range.end,
                size,
            });
        }
        self.stats.gets.fetch_add(1, Ordering::Relaxed);
        let meta = meta_of(&header, vol.class);
        let body = read_stream(id.0, vol, off, header.layout(), range);
        Ok(BlobRead { meta, range, body })
    }

    async fn stat(&self, id: Id) -> Result<Option<BlobMeta>> {
        self.check_open()?;
        let Some((vol, off)) = self.locate(id.0) else { return Ok(None) };
        let header = self.header(&vol, id.0, off).await?;
        Ok(Some(meta_of(&header, vol.class)))
    }

    async fn delete(self: &Arc<Self>, id: Id) -> Result<bool> {
        self.check_writable()?;
        let me = Arc::clone(self);
        detach("deleting", async move { me.delete_now(id).await }).await
    }

    async fn delete_now(self: &Arc<Self>, id: Id) -> Result<bool> {
        let _gate = self.gate.read().await;
        self.check_writable()?;
        let _id = self.ids.lock(id.0).await;
        loop {
            let Some((vol, off)) = self.locate(id.0) else { return Ok(false) };
            let _m = vol.mutation.read().await;
            if self.index_get(id.0) != Some((vol.id, off)) {
                continue; // compaction moved it meanwhile
            }
            // Only for the counters: a damaged header must not make a blob undeletable.
            let layout = match self.header(&vol, id.0, off).await {
                Ok(h) => Some(h.layout()),
                Err(BlobError::Integrity { .. }) => None,
                Err(e) => return Err(e),
            };
            self.tombstone(&vol, id.0).await?;
            {
                let mut st = write_lock(&self.state);
                if st.index.remove_if(id.0, vol.id, off) {
                    match layout {
                        Some(l) => vol.remove_live(l),
                        None => {
                            vol.live_blobs.fetch_sub(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            self.stats.deletes.fetch_add(1, Ordering::Relaxed);
            return Ok(true);
        }
    }

    async fn set_class(self: &Arc<Self>, id: Id, class: StorageClass) -> Result<BlobMeta> {
        self.check_writable()?;
        let me = Arc::clone(self);
        detach("moving", async move { me.set_class_now(id, class).await }).await
    }

    async fn set_class_now(self: &Arc<Self>, id: Id, class: StorageClass) -> Result<BlobMeta> {
        let _gate = self.gate.read().await;
        self.check_writable()?;
        let _id = self.ids.lock(id.0).await;
        loop {
            let (src, off) = self.locate(id.0).ok_or(BlobError::NotFound(id))?;
            if src.class == class {
                return Ok(meta_of(&self.header(&src, id.0, off).await?, class));
            }
            let _m = src.mutation.read().await;
            if self.index_get(id.0) != Some((src.id, off)) {
                continue; // compaction moved it meanwhile
            }
            let header = self.header(&src, id.0, off).await?;
            let l = header.layout();
            let res = self.reserve_blob(class, &header).await?;
            let (s, dst, dst_off) = (Arc::clone(&src), Arc::clone(&res.vol), res.off);
            let copied = blocking("copying a blob", move || {
                let table = s.read_at(l.data_off() - l.table_off(), off + l.table_off())?;
                copy_verified(
                    &s,
                    off + l.data_off(),
                    &dst.file,
                    &dst.path,
                    dst_off + l.data_off(),
                    l.size,
                    &table,
                )?;
                Ok(table)
            })
            .await;
            let table = match copied {
                Ok(t) => t,
                Err(e) => {
                    res.abort().await;
                    self.note_io(&e);
                    return Err(e);
                }
            };
            self.commit(&res, table).await?;
            {
                let mut st = write_lock(&self.state);
                st.index.insert(id.0, res.vol.id, res.off)?;
                src.remove_live(l);
                res.vol.add_live(l);
            }
            let meta = meta_of(&res.header, class);
            self.release(res);
            // The copy is live and durable; the old needle is garbage from now on.
            self.tombstone(&src, id.0).await?;
            self.stats.moves.fetch_add(1, Ordering::Relaxed);
            return Ok(meta);
        }
    }

    fn usage(&self) -> Usage {
        let st = read_lock(&self.state);
        let classes = StorageClass::ALL
            .iter()
            .map(|c| {
                let vols = st.volumes.values().filter(|v| v.class == *c);
                let (mut n, mut live, mut disk) = (0, 0, 0);
                for v in vols {
                    n += v.live_blobs.load(Ordering::Relaxed);
                    live += v.live_bytes.load(Ordering::Relaxed);
                    disk += v.end();
                }
                (*c, n, live, disk)
            })
            .collect();
        Usage { classes }
    }
}

/// The packed volume engine (see the module docs).
pub struct VolumeStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for VolumeStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VolumeStore")
            .field("dirs", &self.inner.dirs)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl VolumeStore {
    /// Opens (creating if needed) the store: class directories from `config` (default
    /// `<data_dir>/blobs/{hot,warm,cold}`), each locked, every volume recovered (see the
    /// module docs). Fails with [`BlobError::Io`] if a directory is in use by another store
    /// (in this process too: close the old one first) and with [`BlobError::Integrity`] on
    /// damage a crash cannot explain (a bad superblock).
    pub async fn open(data_dir: impl AsRef<Path>, config: VolumeConfig) -> Result<VolumeStore> {
        config.validate()?;
        let data_dir = data_dir.as_ref().to_path_buf();
        let dirs = StorageClass::ALL.map(|c| config.class_dir(&data_dir, c));
        for (i, a) in dirs.iter().enumerate() {
            if dirs[..i].contains(a) {
                return Err(BlobError::InvalidConfig(format!(
                    "storage classes need distinct directories, {} is used twice",
                    a.display()
                )));
            }
        }
        let pairs: Vec<(StorageClass, PathBuf)> =
            StorageClass::ALL.into_iter().zip(dirs.clone()).collect();
        let cfg = config.clone();
        let opened =
            blocking("opening the volume store", move || recover::open_store(&pairs, &cfg)).await?;
        let volumes = opened.volumes.iter().map(|v| (v.id, Arc::clone(v))).collect();
        let [hot, warm, cold] = opened.active;
        tracing::info!(
            blobs = opened.index.len(),
            volumes = opened.volumes.len(),
            "volume store opened"
        );
        Ok(VolumeStore {
            inner: Arc::new(Inner {
                config,
                dirs,
                state: RwLock::new(State { index: opened.index, volumes }),
                active: [hot, warm, cold].map(tokio::sync::Mutex::new),
                seq: AtomicU64::new(opened.next_seq),
                next_volume: AtomicU32::new(opened.next_volume),
                ids: Arc::new(IdLocks::default()),
                compaction: tokio::sync::Mutex::new(()),
                gate: Arc::new(tokio::sync::RwLock::new(())),
                closed: AtomicBool::new(false),
                closing: tokio::sync::watch::Sender::new(false),
                poisoned: Mutex::new(None),
                locks: Mutex::new(opened.locks),
                stats: Counters::default(),
                hold: Mutex::new(None),
            }),
        })
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &VolumeConfig {
        &self.inner.config
    }

    /// The directory of `class`'s volumes.
    pub fn class_dir(&self, class: StorageClass) -> &Path {
        &self.inner.dirs[class_index(class)]
    }

    /// Stops accepting calls, waits for in-flight writes (a put still streaming its body is
    /// aborted at its next chunk), syncs the `.idx` files and releases the directory locks.
    /// Read streams already open keep working. Idempotent.
    pub async fn close(&self) -> Result<()> {
        let inner = &self.inner;
        inner.closed.store(true, Ordering::Release);
        inner.closing.send_replace(true);
        let _gate = inner.gate.write().await;
        let vols: Vec<Arc<Volume>> = read_lock(&inner.state).volumes.values().cloned().collect();
        if inner.config.sync {
            blocking("closing the volume store", move || {
                vols.iter().for_each(|v| v.sync_idx());
                Ok(())
            })
            .await?;
        }
        lock(&inner.locks).clear();
        Ok(())
    }

    /// Counters since open.
    pub fn stats(&self) -> VolumeStats {
        let c = &self.inner.stats;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let st = read_lock(&self.inner.state);
        VolumeStats {
            puts: get(&c.puts),
            put_bytes: get(&c.put_bytes),
            gets: get(&c.gets),
            deletes: get(&c.deletes),
            moves: get(&c.moves),
            fsyncs: get(&c.fsyncs),
            compactions: get(&c.compactions),
            bytes_reclaimed: get(&c.bytes_reclaimed),
            volumes: st.volumes.len() as u64,
            blobs: st.index.len() as u64,
            index_bytes: st.index.memory_bytes() as u64,
        }
    }

    /// Every volume, by id.
    pub fn volumes(&self) -> Vec<VolumeInfo> {
        read_lock(&self.inner.state)
            .volumes
            .values()
            .map(|v| VolumeInfo {
                id: v.id,
                class: v.class,
                path: v.path.clone(),
                bytes: v.end(),
                live_blobs: v.live_blobs.load(Ordering::Relaxed),
                live_bytes: v.live_bytes.load(Ordering::Relaxed),
                garbage_bytes: v.garbage(),
                sealed: v.is_sealed(),
            })
            .collect()
    }

    /// Where blob `id`'s needle is, `None` if absent.
    pub async fn locate(&self, id: Id) -> Result<Option<BlobLocation>> {
        let Some((vol, off)) = self.inner.locate(id.0) else { return Ok(None) };
        let l = self.inner.header(&vol, id.0, off).await?.layout();
        Ok(Some(BlobLocation {
            volume: vol.id,
            class: vol.class,
            path: vol.path.clone(),
            offset: off,
            needle_len: l.needle_len(),
            data_offset: off + l.data_off(),
        }))
    }

    /// Test hook: the next compaction stops after copying, before its commit, notifies
    /// `reached` and waits for `resume`, so tests can mutate the volume in between.
    #[doc(hidden)]
    pub fn hold_next_compaction(&self) -> (Arc<tokio::sync::Notify>, Arc<tokio::sync::Notify>) {
        let pair = (Arc::new(tokio::sync::Notify::new()), Arc::new(tokio::sync::Notify::new()));
        *lock(&self.inner.hold) = Some(pair.clone());
        pair
    }

    /// Compacts one volume (see the module docs), whatever its garbage ratio.
    /// [`BlobError::InvalidArgument`] if there is no such volume.
    pub async fn compact(&self, volume: u32) -> Result<CompactionReport> {
        let inner = Arc::clone(&self.inner);
        detach("compacting", async move { inner.compact_volume(volume).await }).await
    }

    /// Compacts every volume whose garbage reaches `compaction_garbage_percent`.
    pub async fn compact_all(&self) -> Result<CompactionReport> {
        let pct = u64::from(self.inner.config.compaction_garbage_percent);
        let candidates: Vec<u32> = self
            .volumes()
            .into_iter()
            .filter(|v| {
                let used = v.bytes.saturating_sub(format::SUPER_LEN);
                v.garbage_bytes > 0 && v.garbage_bytes * 100 >= pct * used
            })
            .map(|v| v.id)
            .collect();
        let mut total = CompactionReport::default();
        for id in candidates {
            match self.compact(id).await {
                Ok(r) => total.add(&r),
                // Gone meanwhile (another compaction call): nothing to do.
                Err(BlobError::InvalidArgument(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(total)
    }
}

#[async_trait]
impl BlobStore for VolumeStore {
    async fn put(
        &self,
        id: Id,
        class: StorageClass,
        size: u64,
        content_type: &str,
        body: BlobBody,
    ) -> Result<BlobMeta> {
        self.inner.put(id, class, size, content_type, body).await
    }

    async fn get(&self, id: Id, range: Option<ByteRange>) -> Result<BlobRead> {
        self.inner.get(id, range).await
    }

    async fn stat(&self, id: Id) -> Result<Option<BlobMeta>> {
        self.inner.stat(id).await
    }

    async fn delete(&self, id: Id) -> Result<bool> {
        self.inner.delete(id).await
    }

    async fn set_class(&self, id: Id, class: StorageClass) -> Result<BlobMeta> {
        self.inner.set_class(id, class).await
    }

    async fn usage(&self) -> Result<Usage> {
        self.inner.check_open()?;
        Ok(self.inner.usage())
    }

    async fn ping(&self) -> Result<()> {
        self.inner.check_writable()?;
        for d in &self.inner.dirs {
            tokio::fs::metadata(d)
                .await
                .map_err(|e| BlobError::io(format!("checking {}", d.display()), e))?;
        }
        Ok(())
    }
}
