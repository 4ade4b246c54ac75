//! Opening a volume store: locking the class directories, loading every volume from its
//! `.idx` (or by scanning), cutting torn tails, finishing interrupted compactions and
//! rebuilding the in-memory index. Blocking; runs on the blocking pool.

use std::collections::HashMap;
use std::collections::hash_map::Entry as MapEntry;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use super::file::{HEAD_READ, Volume, dat_name, idx_name, read_up_to, sync_dir, write_idx_file};
use super::format::{
    self, BLOCK_BYTES, Entry, EntryKind, Header, HeaderError, IDX_ENTRY_LEN, IDX_HEADER_LEN, Kind,
    Layout, SUPER_LEN, Superblock,
};
use super::index::Index;
use super::{VolumeConfig, now_ms};
use crate::api::StorageClass;
use crate::error::{BlobError, Result};

/// Bytes read at a time when verifying or copying needle data (16 blocks).
pub(crate) const IO_CHUNK: u64 = 16 * BLOCK_BYTES;

/// Everything `open` found.
pub(crate) struct Opened {
    pub volumes: Vec<Arc<Volume>>,
    pub index: Index,
    pub next_seq: u64,
    pub next_volume: u32,
    /// Held (flock'ed) while the store is open.
    pub locks: Vec<File>,
    pub active: [Option<Arc<Volume>>; 3],
}

/// A volume as loaded: its records (sorted by offset) before the global merge.
struct Loaded {
    class: StorageClass,
    dir: PathBuf,
    sb: Superblock,
    file: File,
    end: u64,
    idx: (File, u64),
    records: Vec<Entry>,
}

/// What the bytes at a position of a volume are.
enum Scan {
    /// A complete needle whose header, trailer and every block checksum are right.
    Valid(Entry),
    /// A readable header, but the needle is incomplete or does not verify: a torn write.
    Torn { len: u64 },
    /// Not even a header.
    Bad(&'static str),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> BlobError {
    let what = what.into();
    move |e| BlobError::io(what, e)
}

fn corrupt(path: &Path, detail: impl Into<String>) -> BlobError {
    BlobError::Integrity { what: path.display().to_string(), detail: detail.into() }
}

/// Verifies the needle at `pos` completely, reading at most up to `limit`.
fn scan_needle(file: &File, pos: u64, limit: u64) -> io::Result<Scan> {
    let avail = limit.saturating_sub(pos);
    let mut head = vec![0u8; avail.min(HEAD_READ) as usize];
    let n = read_up_to(file, &mut head, pos)?;
    head.truncate(n);
    let h = match Header::decode(&head) {
        Ok(h) => h,
        Err(HeaderError::NeedMore(_)) => return Ok(Scan::Bad("short needle header")),
        Err(HeaderError::Invalid(why)) => return Ok(Scan::Bad(why)),
    };
    let l = h.layout();
    let len = l.needle_len();
    if len > avail {
        return Ok(Scan::Torn { len });
    }
    let mut front = vec![0u8; l.data_off() as usize];
    let mut trailer = [0u8; format::TRAILER_LEN as usize];
    if read_up_to(file, &mut front, pos)? < front.len()
        || read_up_to(file, &mut trailer, pos + l.trailer_off())? < trailer.len()
        || !format::trailer_matches(&front, &trailer)
    {
        return Ok(Scan::Torn { len });
    }
    let table = &front[l.table_off() as usize..(l.table_off() + l.table_len()) as usize];
    let mut done = 0u64;
    let mut buf = Vec::new();
    while done < l.size {
        let want = (l.size - done).min(IO_CHUNK);
        buf.resize(want as usize, 0);
        if read_up_to(file, &mut buf, pos + l.data_off() + done)? < buf.len() {
            return Ok(Scan::Torn { len });
        }
        for (i, block) in buf.chunks(BLOCK_BYTES as usize).enumerate() {
            let b = (done / BLOCK_BYTES) as usize + i;
            if crc32c::crc32c(block) != format::table_crc(table, b) {
                return Ok(Scan::Torn { len });
            }
        }
        done += want;
    }
    let kind = match h.kind {
        Kind::Data => EntryKind::Data,
        Kind::Tombstone => EntryKind::Tombstone,
    };
    Ok(Scan::Valid(Entry {
        kind,
        id: h.id,
        offset: pos,
        size: h.size,
        seq: h.seq,
        ct_len: h.content_type.len() as u16,
    }))
}

/// The trusted entries of an `.idx`: those of a valid prefix that fit in the volume file,
/// sorted by offset. `Err(())` if the file is missing, foreign or self-contradictory.
/// Also returns whether the file holds exactly those entries and nothing else.
fn read_idx(path: &Path, sb: &Superblock, file_len: u64) -> Result<(Vec<Entry>, bool)> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), false)),
        Err(e) => return Err(BlobError::io(format!("reading {}", path.display()), e)),
    };
    if !format::idx_header_matches(&bytes, sb.volume, sb.nonce) {
        tracing::warn!(path = %path.display(), "index header does not match its volume; rescanning");
        return Ok((Vec::new(), false));
    }
    let mut entries: Vec<Entry> = bytes[IDX_HEADER_LEN as usize..]
        .chunks(IDX_ENTRY_LEN as usize)
        .map_while(Entry::decode)
        .collect();
    let mut exact = bytes.len() as u64 == IDX_HEADER_LEN + IDX_ENTRY_LEN * entries.len() as u64;
    entries.sort_by_key(|e| e.offset);
    // Entries past the end describe needles a crash (or a cut) took away.
    let before = entries.len();
    entries.retain(|e| e.end() <= file_len);
    exact &= entries.len() == before;
    if entries.windows(2).any(|w| w[0].end() > w[1].offset) {
        tracing::warn!(path = %path.display(), "index entries overlap; rescanning the volume");
        return Ok((Vec::new(), false));
    }
    Ok((entries, exact))
}

/// Loads one volume file: trusted `.idx` entries, a verifying scan of every gap between
/// them and of the tail, then the torn tail cut off and the `.idx` rewritten if it was not
/// an exact description.
fn load_volume(dir: &Path, class: StorageClass, id: u32, sync: bool) -> Result<Loaded> {
    let path = dir.join(dat_name(id));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io_err(format!("opening {}", path.display())))?;
    let file_len = file.metadata().map_err(io_err(format!("reading {}", path.display())))?.len();
    let mut sb_bytes = [0u8; SUPER_LEN as usize];
    read_up_to(&file, &mut sb_bytes, 0).map_err(io_err(format!("reading {}", path.display())))?;
    let sb = Superblock::decode(&sb_bytes).map_err(|why| corrupt(&path, why))?;
    if sb.volume != id {
        return Err(corrupt(&path, format!("superblock names volume {}", sb.volume)));
    }
    let idx_path = dir.join(idx_name(id));
    let (trusted, exact) = read_idx(&idx_path, &sb, file_len)?;
    let trusted_count = trusted.len();

    let mut records: Vec<Entry> = Vec::with_capacity(trusted.len());
    let mut pos = SUPER_LEN;
    let mut good_end = SUPER_LEN;
    let mut scanned = false;
    let mut next = trusted.into_iter().peekable();
    let scan_ctx = format!("scanning {}", path.display());
    loop {
        if let Some(e) = next.next_if(|e| e.offset == pos) {
            pos = e.end();
            if e.kind != EntryKind::Skip {
                good_end = pos;
            }
            records.push(e);
            continue;
        }
        let gap_end = next.peek().map_or(file_len, |e| e.offset);
        if pos >= gap_end {
            break;
        }
        scanned = true;
        let skip = |pos: u64, len: u64| Entry {
            kind: EntryKind::Skip,
            id: 0,
            offset: pos,
            size: len,
            seq: 0,
            ct_len: 0,
        };
        match scan_needle(&file, pos, gap_end).map_err(|e| BlobError::io(scan_ctx.clone(), e))? {
            Scan::Valid(e) => {
                pos = e.end();
                good_end = pos;
                records.push(e);
            }
            Scan::Torn { len } if pos + len <= gap_end => {
                // A put that never completed; later needles may still be good.
                tracing::warn!(path = %path.display(), pos, len, "skipping a torn needle");
                records.push(skip(pos, len));
                pos += len;
            }
            bad => {
                let why = match bad {
                    Scan::Bad(why) => why,
                    _ => "needle runs past the next indexed one",
                };
                if next.peek().is_none() {
                    tracing::debug!(path = %path.display(), pos, why, "end of the valid needles");
                    break;
                }
                tracing::warn!(path = %path.display(), pos, why, "unreadable region before an indexed needle");
                records.push(skip(pos, gap_end - pos));
                pos = gap_end;
            }
        }
    }
    while records.last().is_some_and(|r| r.kind == EntryKind::Skip) {
        records.pop();
    }
    let truncate = file_len > good_end;
    let idx = if exact && !scanned && !truncate && records.len() == trusted_count {
        let f = OpenOptions::new()
            .write(true)
            .open(&idx_path)
            .map_err(io_err(format!("opening {}", idx_path.display())))?;
        (f, IDX_HEADER_LEN + IDX_ENTRY_LEN * records.len() as u64)
    } else {
        // Rewritten before the volume is truncated or appended to, so it never describes
        // bytes that are about to change.
        write_idx_file(&idx_path, id, sb.nonce, &records, true, sync)
            .map_err(io_err(format!("rewriting {}", idx_path.display())))?
    };
    if truncate {
        tracing::warn!(path = %path.display(), from = good_end, to = file_len, "cutting a torn tail");
        file.set_len(good_end).map_err(io_err(format!("truncating {}", path.display())))?;
        if sync {
            file.sync_all().map_err(io_err(format!("syncing {}", path.display())))?;
        }
    }
    Ok(Loaded { class, dir: dir.to_path_buf(), sb, file, end: good_end, idx, records })
}

/// Creates `dir` (and missing parents); with `sync`, makes the new entries durable.
fn ensure_dir(dir: &Path, sync: bool) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut missing: Vec<&Path> =
        dir.ancestors().take_while(|a| !a.as_os_str().is_empty() && !a.exists()).collect();
    fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
    if sync {
        // Each created directory's entry lives in its parent.
        missing.reverse();
        for d in missing {
            if let Some(parent) = d.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent).map_err(io_err(format!("syncing {}", parent.display())))?;
            }
        }
    }
    Ok(())
}

fn lock_dir(dir: &Path) -> Result<File> {
    let path = dir.join("LOCK");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_err(format!("opening {}", path.display())))?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(|e| {
        if e == rustix::io::Errno::WOULDBLOCK {
            BlobError::io(
                format!("locking {}", dir.display()),
                io::Error::new(
                    io::ErrorKind::WouldBlock,
                    "the directory is in use by another VolumeStore",
                ),
            )
        } else {
            BlobError::io(format!("locking {}", path.display()), e.into())
        }
    })?;
    Ok(f)
}

/// Parses `<10 digits>.<ext>`.
fn parse_name(name: &str, ext: &str) -> Option<u32> {
    let stem = name.strip_suffix(ext)?.strip_suffix('.')?;
    (stem.len() == 10 && stem.bytes().all(|b| b.is_ascii_digit())).then(|| stem.parse().ok())?
}

/// Opens every class directory (blocking).
pub(crate) fn open_store(
    dirs: &[(StorageClass, PathBuf)],
    config: &VolumeConfig,
) -> Result<Opened> {
    let sync = config.sync;
    let mut locks = Vec::new();
    let mut loaded: Vec<Loaded> = Vec::new();
    let mut max_volume = 0u32;
    for (class, dir) in dirs {
        ensure_dir(dir, sync)?;
        locks.push(lock_dir(dir)?);
        let mut dats = Vec::new();
        let mut idxs = Vec::new();
        let listing = fs::read_dir(dir).map_err(io_err(format!("listing {}", dir.display())))?;
        for entry in listing {
            let entry = entry.map_err(io_err(format!("listing {}", dir.display())))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".tmp") {
                // A volume being created or compacted, or an index rewrite, cut short.
                let _ = fs::remove_file(entry.path());
            } else if let Some(id) = parse_name(&name, "dat") {
                dats.push(id);
            } else if let Some(id) = parse_name(&name, "idx") {
                idxs.push(id);
            } else if name != "LOCK" {
                tracing::warn!(path = %entry.path().display(), "ignoring unexpected file");
            }
        }
        for id in idxs.iter().filter(|i| !dats.contains(i)) {
            let _ = fs::remove_file(dir.join(idx_name(*id)));
        }
        dats.sort_unstable();
        for id in dats {
            max_volume = max_volume.max(id);
            loaded.push(load_volume(dir, *class, id, sync)?);
        }
    }
    let mut seen = HashMap::new();
    for l in &loaded {
        if let Some(other) = seen.insert(l.sb.volume, &l.dir) {
            return Err(corrupt(
                &l.dir.join(dat_name(l.sb.volume)),
                format!("volume id also used in {}", other.display()),
            ));
        }
        max_volume = max_volume.max(l.sb.replaces);
    }
    // A compacted copy that made it to its final name replaces its original for good.
    let replaced: Vec<u32> = loaded.iter().map(|l| l.sb.replaces).filter(|r| *r != 0).collect();
    let mut dirty_dirs: Vec<PathBuf> = Vec::new();
    loaded.retain(|l| {
        if !replaced.contains(&l.sb.volume) {
            return true;
        }
        tracing::info!(volume = l.sb.volume, "finishing an interrupted compaction");
        let _ = fs::remove_file(l.dir.join(dat_name(l.sb.volume)));
        let _ = fs::remove_file(l.dir.join(idx_name(l.sb.volume)));
        dirty_dirs.push(l.dir.clone());
        false
    });

    // Live needles per volume (a tombstone kills the earlier needles of its id in its own
    // volume), then across volumes the highest sequence number wins.
    let mut max_seq = 0u64;
    let mut winners: HashMap<u64, (usize, Entry)> = HashMap::new();
    let mut losers: Vec<(usize, u64)> = Vec::new();
    for (v, l) in loaded.iter().enumerate() {
        let mut live: HashMap<u64, Entry> = HashMap::new();
        for r in &l.records {
            max_seq = max_seq.max(r.seq);
            match r.kind {
                EntryKind::Data => {
                    live.insert(r.id, *r);
                }
                EntryKind::Tombstone => {
                    live.remove(&r.id);
                }
                EntryKind::Skip => {}
            }
        }
        for (id, e) in live {
            match winners.entry(id) {
                MapEntry::Vacant(slot) => {
                    slot.insert((v, e));
                }
                MapEntry::Occupied(mut slot) => {
                    // Two live copies: a set_class interrupted between its copy and its
                    // tombstone. The newer copy wins; the older one gets its tombstone now.
                    let (ov, oe) = *slot.get();
                    if e.seq > oe.seq {
                        losers.push((ov, oe.id));
                        slot.insert((v, e));
                    } else {
                        losers.push((v, e.id));
                    }
                }
            }
        }
    }

    let mut volumes: Vec<Arc<Volume>> = loaded
        .into_iter()
        .map(|l| {
            let v = Volume::new(&l.dir, l.class, l.sb, l.file, l.end, Some(l.idx));
            v.seal();
            Arc::new(v)
        })
        .collect();
    let mut index = Index::with_capacity(winners.len());
    for (id, (v, e)) in &winners {
        let vol = &volumes[*v];
        index.insert(*id, vol.id, e.offset)?;
        vol.add_live(Layout::new(usize::from(e.ct_len), e.size));
    }
    let seq = AtomicU64::new(max_seq + 1);
    let mut synced: Vec<usize> = Vec::new();
    for (v, id) in losers {
        let vol = &volumes[v];
        let len = Layout::new(0, 0).needle_len();
        let reserved =
            vol.reserve(len, None, &seq, |s| format::encode_tombstone(id, s, now_ms()))?;
        if let Some((offset, s)) = reserved {
            vol.append_idx(&[Entry {
                kind: EntryKind::Tombstone,
                id,
                offset,
                size: 0,
                seq: s,
                ct_len: 0,
            }]);
        }
        if !synced.contains(&v) {
            synced.push(v);
        }
    }
    if sync {
        for v in synced {
            volumes[v]
                .file
                .sync_data()
                .map_err(io_err(format!("syncing {}", volumes[v].path.display())))?;
        }
        dirty_dirs.sort();
        dirty_dirs.dedup();
        for d in dirty_dirs.iter().chain(dirs.iter().map(|(_, d)| d)) {
            sync_dir(d).map_err(io_err(format!("syncing {}", d.display())))?;
        }
    }

    // Keep filling the newest volume of each class if it has room.
    volumes.sort_by_key(|v| v.id);
    let mut active: [Option<Arc<Volume>>; 3] = [None, None, None];
    for (i, class) in StorageClass::ALL.iter().enumerate() {
        if let Some(v) = volumes.iter().rev().find(|v| v.class == *class)
            && v.end() < config.volume_bytes
        {
            v.unseal();
            active[i] = Some(Arc::clone(v));
        }
    }
    Ok(Opened {
        volumes,
        index,
        next_seq: seq.into_inner(),
        next_volume: max_volume + 1,
        locks,
        active,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn file_names_parse() {
        assert_eq!(parse_name("0000000012.dat", "dat"), Some(12));
        assert_eq!(parse_name("0000000012.idx", "dat"), None);
        assert_eq!(parse_name("12.dat", "dat"), None);
        assert_eq!(parse_name("000000001x.dat", "dat"), None);
        assert_eq!(parse_name(&dat_name(4_000_000_000), "dat"), Some(4_000_000_000));
    }
}
