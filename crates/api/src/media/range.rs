//! HTTP `Range: bytes=...` parsing (RFC 9110 section 14): single, suffix and open-ended
//! ranges, several at once up to a cap, coalesced, and the verdict for each case.

use quicktok_blob::ByteRange;

/// What to answer for a `Range` header against a representation of `size` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeVerdict {
    /// No usable Range header (absent, not `bytes`, malformed, or too many ranges):
    /// serve the whole representation with 200, as RFC 9110 allows.
    Full,
    /// 206 with one or more ranges, sorted and non-overlapping.
    Partial(Vec<ByteRange>),
    /// 416: syntactically fine but no range overlaps the representation.
    Unsatisfiable,
}

/// Parses `header` for a representation of `size` bytes, allowing at most `max_ranges`
/// ranges (more are answered with the full body, as nginx does, so a request cannot make the
/// server assemble thousands of parts).
pub fn parse(header: &str, size: u64, max_ranges: usize) -> RangeVerdict {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeVerdict::Full;
    };
    let mut ranges = Vec::new();
    let mut parts = 0usize;
    for part in spec.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue; // RFC 9110 allows empty list elements
        }
        parts += 1;
        if parts > max_ranges {
            return RangeVerdict::Full;
        }
        let Some((first, last)) = part.split_once('-') else {
            return RangeVerdict::Full;
        };
        let (first, last) = (first.trim(), last.trim());
        let range = if first.is_empty() {
            // Suffix: the last N bytes.
            let Some(n) = parse_u64(last) else { return RangeVerdict::Full };
            if n == 0 { None } else { Some(ByteRange { start: size.saturating_sub(n), end: size }) }
        } else {
            let Some(start) = parse_u64(first) else { return RangeVerdict::Full };
            let end = if last.is_empty() {
                size
            } else {
                let Some(last) = parse_u64(last) else { return RangeVerdict::Full };
                if last < start {
                    return RangeVerdict::Full; // invalid range-spec: ignore the header
                }
                last.saturating_add(1).min(size)
            };
            (start < size).then_some(ByteRange { start, end })
        };
        if let Some(r) = range.filter(|r| !r.is_empty()) {
            ranges.push(r);
        }
    }
    if parts == 0 {
        return RangeVerdict::Full;
    }
    if ranges.is_empty() {
        return RangeVerdict::Unsatisfiable;
    }
    RangeVerdict::Partial(coalesce(ranges))
}

fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Sorts and merges overlapping or adjacent ranges.
fn coalesce(mut ranges: Vec<ByteRange>) -> Vec<ByteRange> {
    ranges.sort_by_key(|r| r.start);
    let mut out: Vec<ByteRange> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn r(start: u64, end: u64) -> ByteRange {
        ByteRange { start, end }
    }

    #[test]
    fn forms() {
        use RangeVerdict::*;
        assert_eq!(parse("bytes=0-499", 1000, 8), Partial(vec![r(0, 500)]));
        assert_eq!(parse("bytes=500-", 1000, 8), Partial(vec![r(500, 1000)]));
        assert_eq!(parse("bytes=-200", 1000, 8), Partial(vec![r(800, 1000)]));
        assert_eq!(parse("bytes=-2000", 1000, 8), Partial(vec![r(0, 1000)]));
        assert_eq!(parse("bytes=900-5000", 1000, 8), Partial(vec![r(900, 1000)]));
        assert_eq!(parse("bytes=0-0,-1", 1000, 8), Partial(vec![r(0, 1), r(999, 1000)]));
        assert_eq!(parse("bytes=0-10, 5-20 ,30-40", 1000, 8), Partial(vec![r(0, 21), r(30, 41)]));
        assert_eq!(parse("bytes=1000-", 1000, 8), Unsatisfiable);
        assert_eq!(parse("bytes=-0", 1000, 8), Unsatisfiable);
        assert_eq!(parse("bytes=0-", 0, 8), Unsatisfiable);
        assert_eq!(parse("items=0-1", 1000, 8), Full);
        assert_eq!(parse("bytes=abc", 1000, 8), Full);
        assert_eq!(parse("bytes=5-1", 1000, 8), Full);
        assert_eq!(parse("bytes=", 1000, 8), Full);
        assert_eq!(parse("bytes=+1-2", 1000, 8), Full);
        assert_eq!(parse("bytes=99999999999999999999-", 1000, 8), Full);
        assert_eq!(parse("bytes=0-1,2-3,4-5", 1000, 2), Full);
    }

    proptest! {
        #[test]
        fn never_panics_and_stays_in_bounds(header in "\\PC{0,40}", size in 0u64..5000) {
            if let RangeVerdict::Partial(ranges) = parse(&header, size, 8) {
                for w in ranges.windows(2) {
                    prop_assert!(w[0].end < w[1].start);
                }
                for x in ranges {
                    prop_assert!(x.start < x.end && x.end <= size);
                }
            }
        }

        #[test]
        fn byte_ranges_match_a_model(a in 0u64..3000, b in 0u64..3000, size in 1u64..2000) {
            let (lo, hi) = (a.min(b), a.max(b));
            let verdict = parse(&format!("bytes={lo}-{hi}"), size, 8);
            if lo >= size {
                prop_assert_eq!(verdict, RangeVerdict::Unsatisfiable);
            } else {
                prop_assert_eq!(verdict, RangeVerdict::Partial(vec![r(lo, (hi + 1).min(size))]));
            }
        }
    }
}
