//! Small byte helpers for the recommender's stored state (seen filters, cover statistics):
//! LEB128 varints and a reader that fails instead of panicking on short or bad input.

use crate::error::RecommendError;

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads stored bytes front to back.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

fn bad(why: &'static str) -> RecommendError {
    RecommendError::BadState(why)
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], RecommendError> {
        if self.bytes.len() < n {
            return Err(bad("truncated"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, RecommendError> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32, RecommendError> {
        let b: [u8; 4] = self.take(4)?.try_into().map_err(|_| bad("truncated"))?;
        Ok(u32::from_le_bytes(b))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, RecommendError> {
        let b: [u8; 8] = self.take(8)?.try_into().map_err(|_| bad("truncated"))?;
        Ok(u64::from_le_bytes(b))
    }

    pub(crate) fn varint(&mut self) -> Result<u64, RecommendError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(bad("varint too long"))
    }

    /// Fails unless every byte was read (trailing garbage means a different format).
    pub(crate) fn finish(self) -> Result<(), RecommendError> {
        if self.bytes.is_empty() { Ok(()) } else { Err(bad("trailing bytes")) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_refuse_garbage() {
        let values = [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX];
        let mut out = Vec::new();
        for v in values {
            put_varint(&mut out, v);
        }
        let mut r = Reader::new(&out);
        for v in values {
            assert_eq!(r.varint(), Ok(v));
        }
        assert_eq!(r.finish(), Ok(()));
        assert!(Reader::new(&[0x80]).varint().is_err());
        assert!(Reader::new(&[0xff; 11]).varint().is_err());
    }
}
