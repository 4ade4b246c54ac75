//! On-disk record framing of segment files, and a cursor that walks frames in a file region
//! with positional reads.
//!
//! ```text
//! +-----------+-----------+-----------+--------------+-----------------+
//! | len u32LE | crc u32LE | offset u64| timestamp i64| payload (len-16)|
//! +-----------+-----------+-----------+--------------+-----------------+
//!   len = bytes after the 8-byte header (16 + payload length)
//!   crc = CRC-32C (Castagnoli) of those `len` bytes
//! ```
//!
//! All integers little-endian. A frame is `24 + payload` bytes.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Length + CRC.
pub(crate) const HEADER_BYTES: usize = 8;
/// Offset + timestamp, the fixed part of the checksummed body.
const BODY_FIXED_BYTES: usize = 16;
/// Framing overhead per record.
pub const FRAME_OVERHEAD_BYTES: usize = HEADER_BYTES + BODY_FIXED_BYTES;
/// Largest payload [`crate::FileLog`] accepts (16 MiB). Also bounds the length field, so a
/// garbage length is recognised as such instead of triggering a huge read.
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024 * 1024;

/// Size on disk of a record with this payload length.
pub(crate) fn frame_len(payload_len: usize) -> u64 {
    (FRAME_OVERHEAD_BYTES + payload_len) as u64
}

/// Appends one frame to `buf`. The payload must be at most [`MAX_PAYLOAD_BYTES`].
pub(crate) fn encode(buf: &mut Vec<u8>, offset: u64, timestamp_ms: i64, payload: &[u8]) {
    let body_len = BODY_FIXED_BYTES + payload.len();
    let start = buf.len();
    buf.reserve(HEADER_BYTES + body_len);
    // Checked by the caller against MAX_PAYLOAD_BYTES, so the length fits in u32.
    buf.extend_from_slice(&(body_len as u32).to_le_bytes());
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(&offset.to_le_bytes());
    buf.extend_from_slice(&timestamp_ms.to_le_bytes());
    buf.extend_from_slice(payload);
    let crc = crc32c::crc32c(&buf[start + HEADER_BYTES..]);
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// A decoded frame's fields; the payload is `buf[payload_start..len]` of the decoded slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameInfo {
    pub offset: u64,
    pub timestamp_ms: i64,
    /// Total frame length.
    pub len: usize,
}

/// Result of decoding the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decode {
    /// A complete, checksum-valid frame.
    Frame(FrameInfo),
    /// The buffer holds only part of a frame; this many bytes from its start are needed.
    NeedMore(usize),
    /// Not a valid frame.
    Invalid(&'static str),
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

/// Decodes the frame at the start of `buf`.
pub(crate) fn decode(buf: &[u8]) -> Decode {
    if buf.len() < HEADER_BYTES {
        return Decode::NeedMore(HEADER_BYTES);
    }
    let body_len = u32_at(buf, 0) as usize;
    // Validate the length before trusting it, so zero-filled or garbage tails are rejected
    // without reading megabytes.
    if !(BODY_FIXED_BYTES..=BODY_FIXED_BYTES + MAX_PAYLOAD_BYTES).contains(&body_len) {
        return Decode::Invalid("bad record length");
    }
    let len = HEADER_BYTES + body_len;
    if buf.len() < len {
        return Decode::NeedMore(len);
    }
    if crc32c::crc32c(&buf[HEADER_BYTES..len]) != u32_at(buf, 4) {
        return Decode::Invalid("checksum mismatch");
    }
    Decode::Frame(FrameInfo { offset: u64_at(buf, 8), timestamp_ms: u64_at(buf, 16) as i64, len })
}

/// One step of a [`FrameCursor`].
#[derive(Debug)]
pub(crate) enum Step<'a> {
    /// A valid frame starting at file position `pos`.
    Frame { pos: u64, info: FrameInfo, payload: &'a [u8] },
    /// The region ended exactly at a frame boundary.
    End,
    /// The bytes at `pos` are not a valid frame (or the region ends inside one).
    Bad { pos: u64, reason: &'static str },
}

/// Walks the frames in `[start, end)` of a file, reading `chunk` bytes or more at a time.
pub(crate) struct FrameCursor<'f> {
    file: &'f File,
    /// File position just after the buffered bytes.
    next_read: u64,
    end: u64,
    buf: Vec<u8>,
    /// Index in `buf` of the next unread byte.
    head: usize,
    chunk: usize,
}

impl<'f> FrameCursor<'f> {
    pub(crate) fn new(file: &'f File, start: u64, end: u64, chunk: usize) -> Self {
        FrameCursor { file, next_read: start, end, buf: Vec::new(), head: 0, chunk: chunk.max(64) }
    }

    /// File position of the next frame.
    pub(crate) fn pos(&self) -> u64 {
        self.next_read - (self.buf.len() - self.head) as u64
    }

    pub(crate) fn next_frame(&mut self) -> io::Result<Step<'_>> {
        loop {
            let pos = self.pos();
            match decode(&self.buf[self.head..]) {
                Decode::Frame(info) => {
                    let start = self.head;
                    self.head += info.len;
                    let payload = &self.buf[start + FRAME_OVERHEAD_BYTES..start + info.len];
                    return Ok(Step::Frame { pos, info, payload });
                }
                Decode::Invalid(reason) => return Ok(Step::Bad { pos, reason }),
                Decode::NeedMore(need) => {
                    if self.next_read >= self.end {
                        return Ok(if self.head == self.buf.len() {
                            Step::End
                        } else {
                            Step::Bad { pos, reason: "truncated record" }
                        });
                    }
                    self.refill(need)?;
                }
            }
        }
    }

    /// Reads at least enough for `need` bytes after `head` (bounded by the region end).
    fn refill(&mut self, need: usize) -> io::Result<()> {
        if self.head > 0 {
            self.buf.drain(..self.head);
            self.head = 0;
        }
        let missing = need.saturating_sub(self.buf.len());
        let left = self.end - self.next_read;
        let want = (missing.max(self.chunk) as u64).min(left) as usize;
        let old = self.buf.len();
        self.buf.resize(old + want, 0);
        self.file.read_exact_at(&mut self.buf[old..], self.next_read)?;
        self.next_read += want as u64;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn round_trip_and_rejections() {
        let mut buf = Vec::new();
        encode(&mut buf, 7, -3, b"hello");
        assert_eq!(buf.len() as u64, frame_len(5));
        match decode(&buf) {
            Decode::Frame(f) => {
                assert_eq!((f.offset, f.timestamp_ms, f.len), (7, -3, buf.len()));
                assert_eq!(&buf[FRAME_OVERHEAD_BYTES..f.len], b"hello");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(decode(&buf[..3]), Decode::NeedMore(HEADER_BYTES));
        assert_eq!(decode(&buf[..10]), Decode::NeedMore(buf.len()));
        let mut flipped = buf.clone();
        flipped[20] ^= 1;
        assert_eq!(decode(&flipped), Decode::Invalid("checksum mismatch"));
        assert_eq!(decode(&[0; 32]), Decode::Invalid("bad record length"));
        let mut huge = buf.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&huge), Decode::Invalid("bad record length"));
    }

    #[test]
    fn cursor_walks_frames_across_chunks_and_reports_torn_tail() {
        let mut data = Vec::new();
        for i in 0..50u64 {
            encode(&mut data, i, i as i64, &vec![i as u8; (i as usize * 7) % 100]);
        }
        let whole = data.len() as u64;
        data.extend_from_slice(&[1, 2, 3]);
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&data).unwrap();
        for chunk in [1, 64, 100, 4096] {
            let mut c = FrameCursor::new(&f, 0, whole, chunk);
            let mut n = 0;
            loop {
                match c.next_frame().unwrap() {
                    Step::Frame { info, payload, .. } => {
                        assert_eq!(info.offset, n);
                        assert_eq!(payload.len(), (n as usize * 7) % 100);
                        n += 1;
                    }
                    Step::End => break,
                    Step::Bad { reason, .. } => panic!("{reason}"),
                }
            }
            assert_eq!(n, 50);
            let mut c = FrameCursor::new(&f, 0, data.len() as u64, chunk);
            let bad = loop {
                match c.next_frame().unwrap() {
                    Step::Frame { .. } => {}
                    Step::End => panic!("expected torn tail"),
                    Step::Bad { pos, .. } => break pos,
                }
            };
            assert_eq!(bad, whole);
        }
    }
}
