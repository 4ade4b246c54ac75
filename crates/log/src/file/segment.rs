//! One segment file of a topic: its in-memory sparse index, the persisted `.idx` snapshot
//! written when the segment is sealed, and the scan that rebuilds the index and finds a torn
//! tail.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::format::{FrameCursor, Step};

/// Segment file extension.
pub(crate) const LOG_EXT: &str = "log";
/// Sealed-segment index snapshot extension.
pub(crate) const IDX_EXT: &str = "idx";
/// Read size while scanning whole segments.
const SCAN_CHUNK: usize = 1 << 20;
const IDX_MAGIC: &[u8; 8] = b"QTLOGIDX";
const IDX_VERSION: u32 = 1;
const IDX_HEADER_BYTES: usize = 8 + 4 + 8 * 5;
const IDX_ENTRY_BYTES: usize = 24;

/// A sparse index entry: the record `offset` starts at byte `pos`; `max_ts` is the largest
/// timestamp of all records of the segment up to the end of this entry's block (the records
/// before the next entry). Being a running maximum it never decreases along the index,
/// which is what makes a binary search for "first record with ts >= t" correct even when
/// timestamps are not monotonic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    pub offset: u64,
    pub pos: u64,
    pub max_ts: i64,
}

/// A segment as readers see it: only `len` bytes (`base..next_offset`) are published.
#[derive(Debug)]
pub(crate) struct Segment {
    pub base: u64,
    pub next_offset: u64,
    /// Published bytes; the writer may have written (not yet synced) bytes beyond.
    pub len: u64,
    /// Largest timestamp in the segment; meaningless while the segment is empty.
    pub max_ts: i64,
    pub index: Vec<IndexEntry>,
    pub file: Arc<File>,
    pub path: PathBuf,
}

impl Segment {
    pub(crate) fn new(base: u64, file: Arc<File>, path: PathBuf) -> Self {
        Segment { base, next_offset: base, len: 0, max_ts: i64::MIN, index: Vec::new(), file, path }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.next_offset == self.base
    }

    pub(crate) fn records(&self) -> u64 {
        self.next_offset - self.base
    }

    /// Accounts for the record `next_offset`, written at byte `len`.
    pub(crate) fn push(&mut self, timestamp_ms: i64, frame_len: u64, interval: u64) {
        let max_ts = if self.is_empty() { timestamp_ms } else { self.max_ts.max(timestamp_ms) };
        match self.index.last_mut() {
            Some(last) if self.len - last.pos < interval => last.max_ts = max_ts,
            _ => self.index.push(IndexEntry { offset: self.next_offset, pos: self.len, max_ts }),
        }
        self.max_ts = max_ts;
        self.next_offset += 1;
        self.len += frame_len;
    }

    /// The index entry to start scanning from to find `offset` (which must be in the
    /// segment): `(position, offset of the record there)`.
    pub(crate) fn locate(&self, offset: u64) -> (u64, u64) {
        match self.index.partition_point(|e| e.offset <= offset) {
            0 => (0, self.base),
            i => (self.index[i - 1].pos, self.index[i - 1].offset),
        }
    }

    /// The byte range `[start, end)` and first offset of the index block holding the first
    /// record with timestamp `>= t`, if the segment has one.
    pub(crate) fn time_block(&self, t: i64) -> Option<(u64, u64, u64)> {
        if self.is_empty() || self.max_ts < t {
            return None;
        }
        let i = self.index.partition_point(|e| e.max_ts < t);
        let entry = self.index.get(i)?;
        let end = self.index.get(i + 1).map_or(self.len, |e| e.pos);
        Some((entry.pos, end, entry.offset))
    }
}

/// `00000000000000000042.log`.
pub(crate) fn file_name(base: u64, ext: &str) -> String {
    format!("{base:020}.{ext}")
}

/// The base offset of a segment file name, if it is one.
pub(crate) fn parse_file_name(name: &str, ext: &str) -> Option<u64> {
    let stem = name.strip_suffix(ext)?.strip_suffix('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

pub(crate) fn idx_path(log_path: &Path) -> PathBuf {
    log_path.with_extension(IDX_EXT)
}

/// Why a scan stopped before the end of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ScanStop {
    /// Bytes at `pos` are not a valid frame (short, bad length, bad checksum): a torn write
    /// in the last segment, corruption anywhere else.
    Torn { pos: u64, reason: &'static str },
    /// A checksum-valid frame with the wrong offset: never a torn write, always corruption.
    WrongOffset { pos: u64, expected: u64, found: u64 },
}

/// Scans `[0, file_len)` of a fresh segment, pushing every valid record. Returns where and
/// why it stopped early, if it did.
pub(crate) fn scan(
    seg: &mut Segment,
    file_len: u64,
    interval: u64,
) -> io::Result<Option<ScanStop>> {
    let file = Arc::clone(&seg.file);
    let mut cursor = FrameCursor::new(&file, 0, file_len, SCAN_CHUNK);
    loop {
        match cursor.next_frame()? {
            Step::End => return Ok(None),
            Step::Bad { pos, reason } => return Ok(Some(ScanStop::Torn { pos, reason })),
            Step::Frame { pos, info, .. } => {
                if info.offset != seg.next_offset {
                    return Ok(Some(ScanStop::WrongOffset {
                        pos,
                        expected: seg.next_offset,
                        found: info.offset,
                    }));
                }
                seg.push(info.timestamp_ms, info.len as u64, interval);
            }
        }
    }
}

/// Writes the `.idx` snapshot of a sealed segment (temp file + rename). Not fsynced: a
/// missing or damaged snapshot only costs a rescan on open, it is validated before use.
pub(crate) fn write_index_file(seg: &Segment) -> io::Result<()> {
    write_index_bytes(&seg.path, &encode_index(seg))
}

/// The `.idx` snapshot of a segment, built under the topic lock so the file write can
/// happen without it.
pub(crate) fn encode_index(seg: &Segment) -> Vec<u8> {
    let mut buf = Vec::with_capacity(IDX_HEADER_BYTES + seg.index.len() * IDX_ENTRY_BYTES + 4);
    buf.extend_from_slice(IDX_MAGIC);
    buf.extend_from_slice(&IDX_VERSION.to_le_bytes());
    buf.extend_from_slice(&seg.base.to_le_bytes());
    buf.extend_from_slice(&seg.next_offset.to_le_bytes());
    buf.extend_from_slice(&seg.len.to_le_bytes());
    buf.extend_from_slice(&seg.max_ts.to_le_bytes());
    buf.extend_from_slice(&(seg.index.len() as u64).to_le_bytes());
    for e in &seg.index {
        buf.extend_from_slice(&e.offset.to_le_bytes());
        buf.extend_from_slice(&e.pos.to_le_bytes());
        buf.extend_from_slice(&e.max_ts.to_le_bytes());
    }
    let crc = crc32c::crc32c(&buf);
    buf.extend_from_slice(&crc.to_le_bytes());
    buf
}

/// Writes an encoded snapshot beside the segment at `log_path` (temp file + rename).
pub(crate) fn write_index_bytes(log_path: &Path, buf: &[u8]) -> io::Result<()> {
    let path = idx_path(log_path);
    let tmp = path.with_extension("idx.tmp");
    let mut f = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
    f.write_all(buf)?;
    drop(f);
    fs::rename(&tmp, &path)
}

/// Loads the `.idx` snapshot into `seg` if it exists and matches the segment file exactly
/// (checksum, base offset, file length, internally consistent entries). Returns whether it
/// was used.
pub(crate) fn load_index_file(seg: &mut Segment, file_len: u64) -> bool {
    let Ok(buf) = fs::read(idx_path(&seg.path)) else { return false };
    let Some(parsed) = parse_index(&buf, seg.base, file_len) else { return false };
    let (next_offset, max_ts, index) = parsed;
    seg.next_offset = next_offset;
    seg.max_ts = max_ts;
    seg.index = index;
    seg.len = file_len;
    true
}

fn parse_index(buf: &[u8], base: u64, file_len: u64) -> Option<(u64, i64, Vec<IndexEntry>)> {
    let body_len = buf.len().checked_sub(4)?;
    let (body, crc) = buf.split_at(body_len);
    if body.len() < IDX_HEADER_BYTES
        || crc32c::crc32c(body) != u32::from_le_bytes(crc.try_into().ok()?)
        || &body[..8] != IDX_MAGIC
    {
        return None;
    }
    let u64_at = |at: usize| -> Option<u64> {
        Some(u64::from_le_bytes(body.get(at..at + 8)?.try_into().ok()?))
    };
    let version = u32::from_le_bytes(body.get(8..12)?.try_into().ok()?);
    let (idx_base, next_offset, len) = (u64_at(12)?, u64_at(20)?, u64_at(28)?);
    let max_ts = u64_at(36)? as i64;
    let count = usize::try_from(u64_at(44)?).ok()?;
    if version != IDX_VERSION
        || idx_base != base
        || len != file_len
        || next_offset < base
        || body.len() != IDX_HEADER_BYTES + count.checked_mul(IDX_ENTRY_BYTES)?
    {
        return None;
    }
    let mut index: Vec<IndexEntry> = Vec::with_capacity(count);
    for i in 0..count {
        let at = IDX_HEADER_BYTES + i * IDX_ENTRY_BYTES;
        let e = IndexEntry {
            offset: u64_at(at)?,
            pos: u64_at(at + 8)?,
            max_ts: u64_at(at + 16)? as i64,
        };
        // Entries must start at the segment start and strictly advance inside it.
        let ok = match index.last() {
            None => e.offset == base && e.pos == 0,
            Some(p) => e.offset > p.offset && e.pos > p.pos && e.max_ts >= p.max_ts,
        };
        if !ok || e.offset >= next_offset || e.pos >= len {
            return None;
        }
        index.push(e);
    }
    // An empty index means an empty segment and vice versa.
    if index.is_empty() != (next_offset == base) || (index.is_empty() && len != 0) {
        return None;
    }
    if index.last().is_some_and(|e| e.max_ts != max_ts) {
        return None;
    }
    Some((next_offset, max_ts, index))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::format::{encode, frame_len};

    fn segment_with(dir: &Path, base: u64, records: &[(i64, usize)]) -> Segment {
        let path = dir.join(file_name(base, LOG_EXT));
        let mut data = Vec::new();
        for (i, (ts, n)) in records.iter().enumerate() {
            encode(&mut data, base + i as u64, *ts, &vec![7; *n]);
        }
        fs::write(&path, &data).unwrap();
        let file = Arc::new(File::open(&path).unwrap());
        Segment::new(base, file, path)
    }

    #[test]
    fn names() {
        assert_eq!(file_name(42, LOG_EXT), "00000000000000000042.log");
        assert_eq!(parse_file_name("00000000000000000042.log", LOG_EXT), Some(42));
        assert_eq!(parse_file_name("42.log", LOG_EXT), None);
        assert_eq!(parse_file_name("00000000000000000042.idx", LOG_EXT), None);
        assert_eq!(parse_file_name("0000000000000000004x.log", LOG_EXT), None);
    }

    #[test]
    fn index_tracks_running_max_and_time_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let recs: Vec<(i64, usize)> = [5, 1, 9, 3, 12, 2, 20, 4].iter().map(|t| (*t, 10)).collect();
        let mut seg = segment_with(dir.path(), 100, &recs);
        let len = fs::metadata(&seg.path).unwrap().len();
        // Two records per block.
        assert_eq!(scan(&mut seg, len, 2 * frame_len(10)).unwrap(), None);
        assert_eq!(seg.next_offset, 108);
        assert_eq!(seg.len, len);
        let maxes: Vec<i64> = seg.index.iter().map(|e| e.max_ts).collect();
        assert_eq!(maxes, vec![5, 9, 12, 20]);
        assert_eq!(seg.locate(103), (2 * frame_len(10), 102));
        assert_eq!(seg.locate(100), (0, 100));
        // First ts >= 10 is offset 104 (ts 12), in the third block.
        assert_eq!(seg.time_block(10).map(|b| b.2), Some(104));
        assert_eq!(seg.time_block(6).map(|b| b.2), Some(102));
        assert_eq!(seg.time_block(21), None);
    }

    #[test]
    fn index_file_round_trip_and_validation() {
        let dir = tempfile::tempdir().unwrap();
        let recs: Vec<(i64, usize)> = (0..40).map(|i| (i * 3 % 17, i as usize)).collect();
        let mut seg = segment_with(dir.path(), 7, &recs);
        let len = fs::metadata(&seg.path).unwrap().len();
        scan(&mut seg, len, 100).unwrap();
        write_index_file(&seg).unwrap();

        let mut fresh = Segment::new(7, Arc::clone(&seg.file), seg.path.clone());
        assert!(load_index_file(&mut fresh, len));
        assert_eq!(
            (fresh.next_offset, fresh.len, fresh.max_ts),
            (seg.next_offset, len, seg.max_ts)
        );
        assert_eq!(fresh.index, seg.index);

        // A length mismatch (the segment changed since) or a damaged file is not trusted.
        let mut other = Segment::new(7, Arc::clone(&seg.file), seg.path.clone());
        assert!(!load_index_file(&mut other, len + 1));
        let ip = idx_path(&seg.path);
        let mut bytes = fs::read(&ip).unwrap();
        bytes[30] ^= 0xff;
        fs::write(&ip, &bytes).unwrap();
        assert!(!load_index_file(&mut other, len));
    }

    #[test]
    fn scan_reports_torn_tail_and_wrong_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let mut seg = segment_with(dir.path(), 0, &[(1, 3), (2, 3)]);
        let full = fs::metadata(&seg.path).unwrap().len();
        let mut f = OpenOptions::new().append(true).open(&seg.path).unwrap();
        f.write_all(&[9; 5]).unwrap();
        assert_eq!(
            scan(&mut seg, full + 5, 64).unwrap(),
            Some(ScanStop::Torn { pos: full, reason: "truncated record" })
        );
        assert_eq!(seg.next_offset, 2);

        // base 5 but records numbered from 0.
        let path = dir.path().join(file_name(5, LOG_EXT));
        fs::copy(dir.path().join(file_name(0, LOG_EXT)), &path).unwrap();
        let mut wrong = Segment::new(5, Arc::new(File::open(&path).unwrap()), path);
        assert_eq!(
            scan(&mut wrong, full, 64).unwrap(),
            Some(ScanStop::WrongOffset { pos: 0, expected: 5, found: 0 })
        );
    }
}
