//! On-disk formats of the volume engine: the volume superblock, needles (blob records and
//! tombstones) and `.idx` entries. Pure encoding and decoding, no IO. See the module docs of
//! [`crate::volume`] for the pictures.

/// Blob bytes covered by one CRC-32C: a ranged read verifies only the blocks it touches.
pub const BLOCK_BYTES: u64 = 64 * 1024;
/// Every needle starts at a multiple of this, so the in-memory index stores offsets in
/// 8-byte units (32 bits address 32 GiB).
pub const ALIGN: u64 = 8;
/// Length of the superblock at the start of every volume file.
pub const SUPER_LEN: u64 = 64;
/// Fixed part of a needle header (the content type follows it).
pub const HEADER_FIXED: usize = 56;
/// Length of the needle trailer.
pub const TRAILER_LEN: u64 = 8;
/// Longest content type a needle can carry.
pub const MAX_CONTENT_TYPE: usize = 1024;
/// Largest blob the engine accepts (1 TiB): bounds the size field so a garbage header is
/// recognised without trusting it, and keeps the per-put CRC table small (64 MiB at most).
pub const MAX_BLOB_BYTES: u64 = 1 << 40;
/// Length of the `.idx` header.
pub const IDX_HEADER_LEN: u64 = 32;
/// Length of one `.idx` entry.
pub const IDX_ENTRY_LEN: u64 = 40;

const VERSION: u32 = 1;
const SUPER_MAGIC: u32 = u32::from_le_bytes(*b"QTBV");
const NEEDLE_MAGIC: u32 = u32::from_le_bytes(*b"QTBN");
const TRAILER_MAGIC: u32 = u32::from_le_bytes(*b"QTBE");
const IDX_MAGIC: u32 = u32::from_le_bytes(*b"QTBI");

/// Rounds up to [`ALIGN`].
pub fn align(n: u64) -> u64 {
    n.div_ceil(ALIGN) * ALIGN
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// The first 64 bytes of a volume file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Superblock {
    pub volume: u32,
    /// The volume this one is the compacted copy of (0: none). On open, a volume that has a
    /// replacement is deleted: that finishes a compaction interrupted after its commit point.
    pub replaces: u32,
    /// Random per file; the `.idx` must carry the same value to be trusted, so an index can
    /// never describe another incarnation of the volume.
    pub nonce: u64,
}

impl Superblock {
    pub fn encode(&self) -> [u8; SUPER_LEN as usize] {
        let mut b = [0u8; SUPER_LEN as usize];
        b[0..4].copy_from_slice(&SUPER_MAGIC.to_le_bytes());
        b[4..8].copy_from_slice(&VERSION.to_le_bytes());
        b[8..12].copy_from_slice(&self.volume.to_le_bytes());
        b[12..16].copy_from_slice(&self.replaces.to_le_bytes());
        b[16..24].copy_from_slice(&self.nonce.to_le_bytes());
        let crc = crc32c::crc32c(&b[..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
        b
    }

    pub fn decode(b: &[u8]) -> Result<Superblock, &'static str> {
        if b.len() < SUPER_LEN as usize {
            return Err("volume file shorter than its superblock");
        }
        if u32_at(b, 0) != SUPER_MAGIC {
            return Err("bad volume magic");
        }
        if crc32c::crc32c(&b[..60]) != u32_at(b, 60) {
            return Err("superblock checksum mismatch");
        }
        if u32_at(b, 4) != VERSION {
            return Err("unsupported volume version");
        }
        Ok(Superblock { volume: u32_at(b, 8), replaces: u32_at(b, 12), nonce: u64_at(b, 16) })
    }
}

/// What a needle is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A blob.
    Data = 1,
    /// "Every earlier needle of this id in this volume is dead."
    Tombstone = 2,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::Data),
            2 => Some(Kind::Tombstone),
            _ => None,
        }
    }
}

/// Where the parts of a needle lie, relative to its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub ct_len: u64,
    pub size: u64,
}

impl Layout {
    pub fn new(ct_len: usize, size: u64) -> Layout {
        Layout { ct_len: ct_len as u64, size }
    }
    pub fn header_len(&self) -> u64 {
        align(HEADER_FIXED as u64 + self.ct_len)
    }
    pub fn blocks(&self) -> u64 {
        self.size.div_ceil(BLOCK_BYTES)
    }
    pub fn table_off(&self) -> u64 {
        self.header_len()
    }
    pub fn table_len(&self) -> u64 {
        4 * self.blocks()
    }
    pub fn data_off(&self) -> u64 {
        self.header_len() + align(self.table_len())
    }
    pub fn trailer_off(&self) -> u64 {
        self.data_off() + align(self.size)
    }
    pub fn needle_len(&self) -> u64 {
        self.trailer_off() + TRAILER_LEN
    }
}

/// A decoded needle header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    pub id: u64,
    /// Store-wide sequence number, increasing in file order within a volume; decides which
    /// copy of an id wins when a crash left two (an interrupted `set_class`).
    pub seq: u64,
    /// Random per `put`, kept by copies: the etag's "generation".
    pub cookie: u64,
    pub size: u64,
    pub created_at_ms: i64,
    pub content_type: String,
}

/// Why bytes are not a needle header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// More bytes are needed (this many from the start).
    NeedMore(usize),
    Invalid(&'static str),
}

impl Header {
    pub fn layout(&self) -> Layout {
        Layout::new(self.content_type.len(), self.size)
    }

    /// The header bytes, padded to [`Layout::header_len`]. The content type must be at most
    /// [`MAX_CONTENT_TYPE`] bytes (checked by the caller).
    pub fn encode(&self) -> Vec<u8> {
        let layout = self.layout();
        let mut b = vec![0u8; layout.header_len() as usize];
        b[0..4].copy_from_slice(&NEEDLE_MAGIC.to_le_bytes());
        b[4] = self.kind as u8;
        b[6..8].copy_from_slice(&(self.content_type.len() as u16).to_le_bytes());
        b[8..16].copy_from_slice(&self.id.to_le_bytes());
        b[16..24].copy_from_slice(&self.seq.to_le_bytes());
        b[24..32].copy_from_slice(&self.cookie.to_le_bytes());
        b[32..40].copy_from_slice(&self.size.to_le_bytes());
        b[40..48].copy_from_slice(&self.created_at_ms.to_le_bytes());
        let ct = self.content_type.as_bytes();
        b[HEADER_FIXED..HEADER_FIXED + ct.len()].copy_from_slice(ct);
        let crc = crc32c::crc32c_append(crc32c::crc32c(&b[..48]), ct);
        b[48..52].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes a header from the start of `b`, checking magic, checksum and field ranges.
    pub fn decode(b: &[u8]) -> Result<Header, HeaderError> {
        if b.len() < HEADER_FIXED {
            return Err(HeaderError::NeedMore(HEADER_FIXED));
        }
        if u32_at(b, 0) != NEEDLE_MAGIC {
            return Err(HeaderError::Invalid("bad needle magic"));
        }
        let ct_len = usize::from(u16_at(b, 6));
        if ct_len > MAX_CONTENT_TYPE {
            return Err(HeaderError::Invalid("content type length out of range"));
        }
        if b.len() < HEADER_FIXED + ct_len {
            return Err(HeaderError::NeedMore(HEADER_FIXED + ct_len));
        }
        let ct = &b[HEADER_FIXED..HEADER_FIXED + ct_len];
        if crc32c::crc32c_append(crc32c::crc32c(&b[..48]), ct) != u32_at(b, 48) {
            return Err(HeaderError::Invalid("needle header checksum mismatch"));
        }
        if b[52..56] != [0; 4] {
            return Err(HeaderError::Invalid("reserved header bytes are set"));
        }
        let kind = Kind::from_u8(b[4]).ok_or(HeaderError::Invalid("unknown needle kind"))?;
        let size = u64_at(b, 32);
        if size > MAX_BLOB_BYTES || (kind == Kind::Tombstone && (size != 0 || ct_len != 0)) {
            return Err(HeaderError::Invalid("needle size out of range"));
        }
        let content_type = String::from_utf8(ct.to_vec())
            .map_err(|_| HeaderError::Invalid("content type is not UTF-8"))?;
        Ok(Header {
            kind,
            id: u64_at(b, 8),
            seq: u64_at(b, 16),
            cookie: u64_at(b, 24),
            size,
            created_at_ms: u64_at(b, 40) as i64,
            content_type,
        })
    }
}

/// The trailer of a needle: a checksum of everything before the data (header and block
/// table) and a magic. Written last, so a needle whose trailer is missing or wrong is torn.
pub fn encode_trailer(head_and_table: &[u8]) -> [u8; TRAILER_LEN as usize] {
    let mut b = [0u8; TRAILER_LEN as usize];
    b[0..4].copy_from_slice(&crc32c::crc32c(head_and_table).to_le_bytes());
    b[4..8].copy_from_slice(&TRAILER_MAGIC.to_le_bytes());
    b
}

/// Whether `trailer` closes a needle whose header and table are `head_and_table`.
pub fn trailer_matches(head_and_table: &[u8], trailer: &[u8]) -> bool {
    trailer.len() == TRAILER_LEN as usize && trailer == encode_trailer(head_and_table)
}

/// A whole tombstone needle (header and trailer).
pub fn encode_tombstone(id: u64, seq: u64, created_at_ms: i64) -> Vec<u8> {
    let header = Header {
        kind: Kind::Tombstone,
        id,
        seq,
        cookie: 0,
        size: 0,
        created_at_ms,
        content_type: String::new(),
    };
    let mut b = header.encode();
    let trailer = encode_trailer(&b);
    b.extend_from_slice(&trailer);
    b
}

/// Block CRCs as stored in the table (little-endian u32s, padded to [`ALIGN`]).
pub fn encode_table(crcs: &[u32]) -> Vec<u8> {
    let mut b = Vec::with_capacity(align(4 * crcs.len() as u64) as usize);
    for c in crcs {
        b.extend_from_slice(&c.to_le_bytes());
    }
    b.resize(align(b.len() as u64) as usize, 0);
    b
}

/// The `i`-th CRC of a table slice.
pub fn table_crc(table: &[u8], i: usize) -> u32 {
    u32_at(table, 4 * i)
}

/// The header of an `.idx` file.
pub fn encode_idx_header(volume: u32, nonce: u64) -> [u8; IDX_HEADER_LEN as usize] {
    let mut b = [0u8; IDX_HEADER_LEN as usize];
    b[0..4].copy_from_slice(&IDX_MAGIC.to_le_bytes());
    b[4..8].copy_from_slice(&VERSION.to_le_bytes());
    b[8..12].copy_from_slice(&volume.to_le_bytes());
    b[16..24].copy_from_slice(&nonce.to_le_bytes());
    let crc = crc32c::crc32c(&b[..28]);
    b[28..32].copy_from_slice(&crc.to_le_bytes());
    b
}

/// Whether `b` starts with a valid `.idx` header for this volume incarnation.
pub fn idx_header_matches(b: &[u8], volume: u32, nonce: u64) -> bool {
    b.len() >= IDX_HEADER_LEN as usize
        && b[..IDX_HEADER_LEN as usize] == encode_idx_header(volume, nonce)
}

/// What an index entry describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Data,
    Tombstone,
    /// A region to skip (a torn needle found between good ones); `size` is its length.
    Skip,
}

/// One `.idx` entry: a needle (or skipped region) of the volume. Entries are appended in
/// completion order, after the needle is durable; on open they are sorted by offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub kind: EntryKind,
    pub id: u64,
    pub offset: u64,
    /// Blob size (data), 0 (tombstone) or region length (skip).
    pub size: u64,
    pub seq: u64,
    pub ct_len: u16,
}

impl Entry {
    /// Bytes of the volume file this entry covers.
    pub fn span(&self) -> u64 {
        match self.kind {
            EntryKind::Skip => self.size,
            _ => Layout::new(usize::from(self.ct_len), self.size).needle_len(),
        }
    }

    pub fn end(&self) -> u64 {
        self.offset + self.span()
    }

    pub fn encode(&self) -> [u8; IDX_ENTRY_LEN as usize] {
        let mut b = [0u8; IDX_ENTRY_LEN as usize];
        b[0..8].copy_from_slice(&self.id.to_le_bytes());
        b[8..16].copy_from_slice(&self.offset.to_le_bytes());
        b[16..24].copy_from_slice(&self.size.to_le_bytes());
        b[24..32].copy_from_slice(&self.seq.to_le_bytes());
        b[32..34].copy_from_slice(&self.ct_len.to_le_bytes());
        b[34] = match self.kind {
            EntryKind::Data => 1,
            EntryKind::Tombstone => 2,
            EntryKind::Skip => 3,
        };
        let crc = crc32c::crc32c(&b[..36]);
        b[36..40].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// `None` for a short, garbled or implausible entry.
    pub fn decode(b: &[u8]) -> Option<Entry> {
        if b.len() < IDX_ENTRY_LEN as usize || crc32c::crc32c(&b[..36]) != u32_at(b, 36) {
            return None;
        }
        let kind = match b[34] {
            1 => EntryKind::Data,
            2 => EntryKind::Tombstone,
            3 => EntryKind::Skip,
            _ => return None,
        };
        let e = Entry {
            kind,
            id: u64_at(b, 0),
            offset: u64_at(b, 8),
            size: u64_at(b, 16),
            seq: u64_at(b, 24),
            ct_len: u16_at(b, 32),
        };
        let plausible = usize::from(e.ct_len) <= MAX_CONTENT_TYPE
            && e.size <= MAX_BLOB_BYTES
            && e.offset.is_multiple_of(ALIGN)
            && e.offset >= SUPER_LEN
            && (kind != EntryKind::Skip || (e.size > 0 && e.size.is_multiple_of(ALIGN)));
        plausible.then_some(e)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn header(size: u64, ct: &str) -> Header {
        Header {
            kind: Kind::Data,
            id: 42,
            seq: 7,
            cookie: 0xdead_beef,
            size,
            created_at_ms: 1_700_000_000_000,
            content_type: ct.to_owned(),
        }
    }

    #[test]
    fn layout_is_aligned_and_sized() {
        for (size, ct) in
            [(0, 0), (1, 3), (BLOCK_BYTES, 9), (BLOCK_BYTES + 1, 24), (10 << 20, 1024)]
        {
            let l = Layout::new(ct, size);
            assert_eq!(l.header_len() % ALIGN, 0);
            assert_eq!(l.data_off() % ALIGN, 0);
            assert_eq!(l.needle_len() % ALIGN, 0);
            assert_eq!(l.blocks(), size.div_ceil(BLOCK_BYTES));
            assert!(l.data_off() >= l.table_off() + l.table_len());
            assert!(l.trailer_off() >= l.data_off() + size);
        }
        assert_eq!(Layout::new(0, 0).needle_len(), 64, "a tombstone is 64 bytes");
    }

    #[test]
    fn header_round_trip_and_rejections() {
        let h = header(123_456, "video/mp4");
        let b = h.encode();
        assert_eq!(b.len() as u64, h.layout().header_len());
        assert_eq!(Header::decode(&b).unwrap(), h);
        assert_eq!(Header::decode(&b[..10]), Err(HeaderError::NeedMore(HEADER_FIXED)));
        assert_eq!(
            Header::decode(&b[..HEADER_FIXED + 2]),
            Err(HeaderError::NeedMore(HEADER_FIXED + 9))
        );
        for i in 0..HEADER_FIXED + 9 {
            let mut bad = b.clone();
            bad[i] ^= 0x10;
            // A damaged length may also just ask for more bytes than there are.
            assert!(Header::decode(&bad).is_err(), "byte {i}");
        }
        assert!(Header::decode(&[0u8; 128]).is_err());
    }

    #[test]
    fn tombstone_and_trailer() {
        let t = encode_tombstone(9, 10, 11);
        assert_eq!(t.len(), 64);
        let h = Header::decode(&t).unwrap();
        assert_eq!((h.kind, h.id, h.seq, h.size), (Kind::Tombstone, 9, 10, 0));
        assert!(trailer_matches(&t[..56], &t[56..]));
        assert!(!trailer_matches(&t[..55], &t[56..]));
    }

    #[test]
    fn superblock_and_idx_entries_round_trip() {
        let s = Superblock { volume: 3, replaces: 2, nonce: 99 };
        assert_eq!(Superblock::decode(&s.encode()).unwrap(), s);
        let mut bad = s.encode();
        bad[20] ^= 1;
        assert!(Superblock::decode(&bad).is_err());
        assert!(idx_header_matches(&encode_idx_header(3, 99), 3, 99));
        assert!(!idx_header_matches(&encode_idx_header(3, 98), 3, 99));
        let e = Entry { kind: EntryKind::Data, id: 5, offset: 64, size: 70_000, seq: 8, ct_len: 9 };
        let b = e.encode();
        assert_eq!(Entry::decode(&b), Some(e));
        assert_eq!(e.span(), Layout::new(9, 70_000).needle_len());
        for i in 0..b.len() {
            let mut bad = b;
            bad[i] ^= 0x01;
            assert_eq!(Entry::decode(&bad), None, "byte {i}");
        }
        let skip =
            Entry { kind: EntryKind::Skip, id: 0, offset: 128, size: 256, seq: 0, ct_len: 0 };
        assert_eq!(Entry::decode(&skip.encode()).unwrap().span(), 256);
    }
}
