//! One volume: its append-only `.dat` file, its `.idx` file, the reservation of space for
//! new needles, group-committed syncs, live counters and blocking read helpers.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::Notify;

use super::format::{
    self, Entry, Header, HeaderError, IDX_HEADER_LEN, Kind, Layout, SUPER_LEN, Superblock,
};
use super::sync::{GroupSync, lock};
use crate::api::StorageClass;
use crate::error::{BlobError, Result};

/// First read of a needle: enough for any header and, for small blobs, the whole needle.
pub(crate) const HEAD_READ: u64 = 4096;

/// fsyncs a directory so entries created, renamed or removed in it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

pub(crate) fn dat_name(id: u32) -> String {
    format!("{id:010}.dat")
}

pub(crate) fn idx_name(id: u32) -> String {
    format!("{id:010}.idx")
}

/// Reads as much of `buf` as the file holds from `pos` on; returns the bytes read.
pub(crate) fn read_up_to(file: &File, buf: &mut [u8], pos: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], pos + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Append position and in-flight puts, guarded together.
pub(crate) struct Append {
    /// End of the reserved space: the next needle starts here.
    pub end: u64,
    /// No new blobs (tombstones still go in).
    pub sealed: bool,
    /// Puts that reserved space here and have not finished or aborted.
    pub inflight: u64,
}

struct IdxFile {
    /// `None` after a write error: later entries are simply missing, which only costs a
    /// rescan of those needles on the next open.
    file: Option<File>,
    len: u64,
}

/// A volume of one storage class.
pub(crate) struct Volume {
    pub id: u32,
    pub class: StorageClass,
    pub dir: PathBuf,
    pub path: PathBuf,
    pub idx_path: PathBuf,
    pub file: File,
    pub append: Mutex<Append>,
    idx: Mutex<IdxFile>,
    group: GroupSync,
    /// Signalled when `inflight` drops to zero (compaction waits for it).
    pub idle: Notify,
    /// Deletes and moves out of this volume hold it shared; compaction's commit holds it
    /// exclusively, so no blob dies unseen between compaction's copy and its swap.
    pub mutation: tokio::sync::RwLock<()>,
    /// Set once compaction replaced this volume; its files are gone (open handles still read).
    pub retired: AtomicBool,
    pub live_blobs: AtomicU64,
    /// Sum of live blob sizes.
    pub live_bytes: AtomicU64,
    /// Sum of live needles' on-disk lengths (the rest of the file is garbage).
    pub live_needle_bytes: AtomicU64,
}

impl Volume {
    /// Wraps an opened volume file whose valid content ends at `end`.
    pub(crate) fn new(
        dir: &Path,
        class: StorageClass,
        sb: Superblock,
        file: File,
        end: u64,
        idx: Option<(File, u64)>,
    ) -> Volume {
        let (idx_file, idx_len) = match idx {
            Some((f, len)) => (Some(f), len),
            None => (None, 0),
        };
        Volume {
            id: sb.volume,
            class,
            dir: dir.to_path_buf(),
            path: dir.join(dat_name(sb.volume)),
            idx_path: dir.join(idx_name(sb.volume)),
            file,
            append: Mutex::new(Append { end, sealed: false, inflight: 0 }),
            idx: Mutex::new(IdxFile { file: idx_file, len: idx_len }),
            group: GroupSync::default(),
            idle: Notify::new(),
            mutation: tokio::sync::RwLock::new(()),
            retired: AtomicBool::new(false),
            live_blobs: AtomicU64::new(0),
            live_bytes: AtomicU64::new(0),
            live_needle_bytes: AtomicU64::new(0),
        }
    }

    /// Creates an empty volume file (superblock only) at `path`, synced if `sync`.
    pub(crate) fn create_file(path: &Path, sb: &Superblock, sync: bool) -> io::Result<File> {
        let file = OpenOptions::new().read(true).write(true).create_new(true).open(path)?;
        file.write_all_at(&sb.encode(), 0)?;
        if sync {
            file.sync_all()?;
        }
        Ok(file)
    }

    /// Creates a brand-new volume in `dir`: written as a temporary file and renamed, so a
    /// `.dat` always has a valid superblock; the directory is synced before it is used.
    pub(crate) fn create(dir: &Path, class: StorageClass, id: u32, sync: bool) -> Result<Volume> {
        let sb = Superblock { volume: id, replaces: 0, nonce: rand::random() };
        let path = dir.join(dat_name(id));
        let tmp = dir.join(format!("{}.tmp", dat_name(id)));
        let ctx = |what: &str| format!("{what} volume {}", path.display());
        let file =
            Volume::create_file(&tmp, &sb, sync).map_err(|e| BlobError::io(ctx("creating"), e))?;
        fs::rename(&tmp, &path).map_err(|e| BlobError::io(ctx("renaming"), e))?;
        let idx = write_idx_file(&dir.join(idx_name(id)), id, sb.nonce, &[], false, false)
            .map_err(|e| BlobError::io(ctx("creating the index of"), e))?;
        if sync {
            sync_dir(dir).map_err(|e| BlobError::io(ctx("syncing the directory of"), e))?;
        }
        Ok(Volume::new(dir, class, sb, file, SUPER_LEN, Some(idx)))
    }

    /// Reserves `len` bytes at the end and writes `first(seq)` at their start, all under the
    /// append lock: `seq` then increases in file order, and a needle's header is written
    /// before any later needle can be synced, so a later acknowledged needle is never hidden
    /// behind an unreadable header. `limit`: `Some(volume_bytes)` for a blob (refused with
    /// `None` when sealed or full; counted in-flight), `None` for a tombstone.
    pub(crate) fn reserve(
        &self,
        len: u64,
        limit: Option<u64>,
        seq: &AtomicU64,
        first: impl FnOnce(u64) -> Vec<u8>,
    ) -> Result<Option<(u64, u64)>> {
        let mut a = lock(&self.append);
        if let Some(limit) = limit {
            let fits = a.end == SUPER_LEN || a.end.saturating_add(len) <= limit;
            if a.sealed || !fits {
                a.sealed = true;
                return Ok(None);
            }
        }
        let off = a.end;
        let s = seq.fetch_add(1, Ordering::Relaxed);
        let bytes = first(s);
        self.write_at(&bytes, off)?;
        a.end = off + len;
        if limit.is_some() {
            a.inflight += 1;
        }
        Ok(Some((off, s)))
    }

    /// Ends an in-flight put. With `give_back`, an aborted reservation that is still the
    /// last one is returned and the file trimmed; only for a caller that knows no write into
    /// it is still running (else a new needle could be overwritten by a late write).
    pub(crate) fn end_put(&self, off: u64, len: u64, give_back: bool) {
        let mut a = lock(&self.append);
        a.inflight = a.inflight.saturating_sub(1);
        if give_back && a.end == off + len {
            a.end = off;
            if let Err(e) = self.file.set_len(off) {
                tracing::warn!(path = %self.path.display(), error = %e, "could not trim an aborted put");
            }
        }
        if a.inflight == 0 {
            self.idle.notify_waiters();
        }
    }

    pub(crate) fn end(&self) -> u64 {
        lock(&self.append).end
    }

    pub(crate) fn seal(&self) {
        lock(&self.append).sealed = true;
    }

    pub(crate) fn unseal(&self) {
        lock(&self.append).sealed = false;
    }

    pub(crate) fn is_sealed(&self) -> bool {
        lock(&self.append).sealed
    }

    pub(crate) fn inflight(&self) -> u64 {
        lock(&self.append).inflight
    }

    /// Bytes of the file that hold no live blob.
    pub(crate) fn garbage(&self) -> u64 {
        (self.end() - SUPER_LEN).saturating_sub(self.live_needle_bytes.load(Ordering::Relaxed))
    }

    pub(crate) fn write_at(&self, buf: &[u8], pos: u64) -> Result<()> {
        self.file
            .write_all_at(buf, pos)
            .map_err(|e| BlobError::io(format!("writing {}", self.path.display()), e))
    }

    /// Reads exactly `len` bytes at `pos`; a short file is an integrity error (the index
    /// promised a needle there).
    pub(crate) fn read_at(&self, len: u64, pos: u64) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; len as usize];
        let n = read_up_to(&self.file, &mut buf, pos)
            .map_err(|e| BlobError::io(format!("reading {}", self.path.display()), e))?;
        if n < buf.len() {
            return Err(self.integrity(pos, "file ends inside the needle"));
        }
        Ok(buf)
    }

    pub(crate) fn integrity(&self, pos: u64, detail: impl Into<String>) -> BlobError {
        BlobError::Integrity {
            what: format!("{} at byte {pos}", self.path.display()),
            detail: detail.into(),
        }
    }

    /// Reads and checks the header of the data needle of `id` at `off`. Returns it with the
    /// bytes read (the first [`HEAD_READ`] bytes of the needle, or fewer at the file end).
    pub(crate) fn read_header(&self, id: u64, off: u64) -> Result<(Header, Vec<u8>)> {
        let mut buf = vec![0u8; HEAD_READ as usize];
        let n = read_up_to(&self.file, &mut buf, off)
            .map_err(|e| BlobError::io(format!("reading {}", self.path.display()), e))?;
        buf.truncate(n);
        let header = match Header::decode(&buf) {
            Ok(h) => h,
            Err(HeaderError::NeedMore(_)) => {
                return Err(self.integrity(off, "file ends inside the needle header"));
            }
            Err(HeaderError::Invalid(why)) => return Err(self.integrity(off, why)),
        };
        if header.id != id || header.kind != Kind::Data {
            return Err(self.integrity(
                off,
                format!("index points at a needle of another blob (id {})", header.id),
            ));
        }
        Ok((header, buf))
    }

    /// Makes everything written so far durable (group commit); `Ok(true)` if this call ran
    /// the fsync.
    pub(crate) async fn sync_data(self: &std::sync::Arc<Self>) -> Result<bool> {
        let what = format!("syncing {}", self.path.display());
        let me = std::sync::Arc::clone(self);
        self.group.sync(&what, move || me.file.sync_data()).await
    }

    /// Appends entries to the `.idx` (after their needles are durable). Not synced: a lost
    /// tail only means those needles are scanned and verified on the next open.
    pub(crate) fn append_idx(&self, entries: &[Entry]) {
        let mut idx = lock(&self.idx);
        let pos = idx.len;
        let Some(file) = &idx.file else { return };
        let bytes: Vec<u8> = entries.iter().flat_map(|e| e.encode()).collect();
        match file.write_all_at(&bytes, pos) {
            Ok(()) => idx.len += bytes.len() as u64,
            Err(e) => {
                tracing::warn!(path = %self.idx_path.display(), error = %e, "index append failed; the volume will be rescanned on open");
                idx.file = None;
            }
        }
    }

    /// fsyncs the `.idx` (on seal and close, so a reopen after power loss rarely rescans).
    pub(crate) fn sync_idx(&self) {
        let idx = lock(&self.idx);
        if let Some(f) = &idx.file
            && let Err(e) = f.sync_data()
        {
            tracing::warn!(path = %self.idx_path.display(), error = %e, "index sync failed");
        }
    }

    /// The live counters' change when a blob of this layout appears (+) or goes (-).
    pub(crate) fn add_live(&self, layout: Layout) {
        self.live_blobs.fetch_add(1, Ordering::Relaxed);
        self.live_bytes.fetch_add(layout.size, Ordering::Relaxed);
        self.live_needle_bytes.fetch_add(layout.needle_len(), Ordering::Relaxed);
    }

    pub(crate) fn remove_live(&self, layout: Layout) {
        let sub = |a: &AtomicU64, v: u64| {
            let _ =
                a.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |x| Some(x.saturating_sub(v)));
        };
        sub(&self.live_blobs, 1);
        sub(&self.live_bytes, layout.size);
        sub(&self.live_needle_bytes, layout.needle_len());
    }
}

/// Writes a complete `.idx` file (header and entries), replacing any old one atomically when
/// `atomic` (temporary file, rename; fsynced first if `sync`). The caller syncs the
/// directory. Returns the open file and its length.
pub(crate) fn write_idx_file(
    path: &Path,
    volume: u32,
    nonce: u64,
    entries: &[Entry],
    atomic: bool,
    sync: bool,
) -> io::Result<(File, u64)> {
    let mut bytes = format::encode_idx_header(volume, nonce).to_vec();
    for e in entries {
        bytes.extend_from_slice(&e.encode());
    }
    let target = if atomic { path.with_extension("idx.tmp") } else { path.to_path_buf() };
    let file =
        OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&target)?;
    file.write_all_at(&bytes, 0)?;
    if sync {
        file.sync_data()?;
    }
    if atomic {
        fs::rename(&target, path)?;
    }
    debug_assert!(bytes.len() as u64 >= IDX_HEADER_LEN);
    Ok((file, bytes.len() as u64))
}
