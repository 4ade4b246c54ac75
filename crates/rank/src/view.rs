//! The records of the `views` topic: qualified views (what the rankers count) and watermark
//! ticks, with their compact binary encoding.
//!
//! The API decides whether a play counts ([`crate::ViewQualifier`]) and appends one record per
//! qualified view. At 700k views/s the encoding matters, so it is a small fixed layout rather
//! than JSON (18 bytes plus the tags, against about 70 for the JSON of the same view):
//!
//! ```text
//! view (kind 1):  [1][video_id u64 LE][at_ms i64 LE][n_tags u8] n_tags x ([len u8][utf-8])
//! tick (kind 2):  [2][at_ms i64 LE]
//! ```
//!
//! Decoding is strict (no trailing bytes, tags valid UTF-8 within the limits below): a new
//! layout gets a new kind byte, which old readers report as malformed and skip. A *tick*
//! carries no view; it only moves the rankers' event-time watermark forward so windows keep
//! sliding while nobody watches anything (see [`crate::service`]). Consumers of the topic
//! other than the rankers should ignore kinds they do not know.

use quicktok_core::Id;
use quicktok_log::NewRecord;

use crate::error::RankError;

/// The topic the API appends qualified views to.
pub const VIEWS_TOPIC: &str = "views";
/// Most hashtags one view may carry.
pub const MAX_TAGS: usize = 32;
/// Longest hashtag, in bytes of UTF-8.
pub const MAX_TAG_BYTES: usize = 64;
/// Earliest accepted view time (the Unix epoch); bounds keep window arithmetic far from
/// overflow.
pub const MIN_AT_MS: i64 = 0;
/// Latest accepted view time: 2100-01-01T00:00:00Z.
pub const MAX_AT_MS: i64 = 4_102_444_800_000;

const KIND_VIEW: u8 = 1;
const KIND_TICK: u8 = 2;

/// One view that counts: the API has already checked watch time and duplicates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QualifiedView {
    /// The video watched.
    pub video_id: Id,
    /// The video's hashtags (possibly empty). Compared byte for byte; normalising case or a
    /// leading `#` is the producer's job. Duplicates count once.
    pub tags: Vec<String>,
    /// When the view happened (the API's clock), Unix milliseconds. Drives the windows.
    pub at_ms: i64,
}

impl QualifiedView {
    /// A view with its tags sorted and deduplicated (the form the encoder writes).
    pub fn new(
        video_id: Id,
        tags: impl IntoIterator<Item = impl Into<String>>,
        at_ms: i64,
    ) -> Self {
        let mut tags: Vec<String> = tags.into_iter().map(Into::into).collect();
        tags.sort_unstable();
        tags.dedup();
        QualifiedView { video_id, tags, at_ms }
    }

    /// Encodes the view (see the module docs for the layout).
    pub fn encode(&self) -> Result<Vec<u8>, RankError> {
        check_time(self.at_ms).map_err(RankError::Encode)?;
        if self.tags.len() > MAX_TAGS {
            return Err(RankError::Encode(format!(
                "{} tags, at most {MAX_TAGS} allowed",
                self.tags.len()
            )));
        }
        let tag_bytes: usize = self.tags.iter().map(|t| t.len() + 1).sum();
        let mut out = Vec::with_capacity(18 + tag_bytes);
        out.push(KIND_VIEW);
        out.extend_from_slice(&self.video_id.0.to_le_bytes());
        out.extend_from_slice(&self.at_ms.to_le_bytes());
        out.push(self.tags.len() as u8);
        for tag in &self.tags {
            check_tag(tag.as_bytes()).map_err(RankError::Encode)?;
            out.push(tag.len() as u8);
            out.extend_from_slice(tag.as_bytes());
        }
        Ok(out)
    }

    /// The log record for this view: its encoding, stamped with the view's time so
    /// `offset_for_time` finds it.
    pub fn to_record(&self) -> Result<NewRecord, RankError> {
        Ok(NewRecord::new(self.at_ms, self.encode()?))
    }
}

/// A decoded record of the `views` topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewRecord {
    /// A qualified view.
    View(QualifiedView),
    /// "Event time has reached `at_ms`": moves the watermark without counting anything.
    Tick {
        /// The new watermark candidate, Unix milliseconds.
        at_ms: i64,
    },
}

impl ViewRecord {
    /// The record's event time.
    pub fn at_ms(&self) -> i64 {
        match self {
            ViewRecord::View(v) => v.at_ms,
            ViewRecord::Tick { at_ms } => *at_ms,
        }
    }

    /// Encodes the record.
    pub fn encode(&self) -> Result<Vec<u8>, RankError> {
        match self {
            ViewRecord::View(v) => v.encode(),
            ViewRecord::Tick { at_ms } => encode_tick(*at_ms),
        }
    }

    /// Decodes a payload read from the topic.
    pub fn decode(bytes: &[u8]) -> Result<ViewRecord, RankError> {
        let bad = |m: String| RankError::Decode(m);
        let (&kind, rest) = bytes.split_first().ok_or_else(|| bad("empty payload".into()))?;
        match kind {
            KIND_TICK => {
                let at: [u8; 8] = rest
                    .try_into()
                    .map_err(|_| bad(format!("tick of {} bytes, expected 9", bytes.len())))?;
                let at_ms = i64::from_le_bytes(at);
                check_time(at_ms).map_err(bad)?;
                Ok(ViewRecord::Tick { at_ms })
            }
            KIND_VIEW => {
                if rest.len() < 17 {
                    return Err(bad(format!("view of {} bytes, at least 18 needed", bytes.len())));
                }
                let (id, rest) = rest.split_at(8);
                let (at, rest) = rest.split_at(8);
                let video_id = Id(u64::from_le_bytes(id.try_into().map_err(|_| bad("id".into()))?));
                let at_ms = i64::from_le_bytes(at.try_into().map_err(|_| bad("time".into()))?);
                check_time(at_ms).map_err(bad)?;
                let (&n, mut rest) =
                    rest.split_first().ok_or_else(|| bad("no tag count".into()))?;
                if usize::from(n) > MAX_TAGS {
                    return Err(bad(format!("{n} tags, at most {MAX_TAGS} allowed")));
                }
                let mut tags = Vec::with_capacity(usize::from(n));
                for _ in 0..n {
                    let (&len, after) =
                        rest.split_first().ok_or_else(|| bad("truncated tag".into()))?;
                    let len = usize::from(len);
                    if after.len() < len {
                        return Err(bad("truncated tag".into()));
                    }
                    let (tag, after) = after.split_at(len);
                    check_tag(tag).map_err(bad)?;
                    let tag =
                        std::str::from_utf8(tag).map_err(|_| bad("tag is not UTF-8".into()))?;
                    tags.push(tag.to_owned());
                    rest = after;
                }
                if !rest.is_empty() {
                    return Err(bad(format!("{} trailing bytes", rest.len())));
                }
                Ok(ViewRecord::View(QualifiedView { video_id, tags, at_ms }))
            }
            other => Err(bad(format!("unknown record kind {other}"))),
        }
    }
}

/// Encodes a watermark tick.
pub fn encode_tick(at_ms: i64) -> Result<Vec<u8>, RankError> {
    check_time(at_ms).map_err(RankError::Encode)?;
    let mut out = Vec::with_capacity(9);
    out.push(KIND_TICK);
    out.extend_from_slice(&at_ms.to_le_bytes());
    Ok(out)
}

fn check_time(at_ms: i64) -> Result<(), String> {
    if (MIN_AT_MS..=MAX_AT_MS).contains(&at_ms) {
        Ok(())
    } else {
        Err(format!("time {at_ms} outside {MIN_AT_MS}..={MAX_AT_MS}"))
    }
}

fn check_tag(tag: &[u8]) -> Result<(), String> {
    if tag.is_empty() || tag.len() > MAX_TAG_BYTES {
        Err(format!("tag of {} bytes, expected 1..={MAX_TAG_BYTES}", tag.len()))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn layout_is_compact_and_round_trips() {
        let v = QualifiedView::new(Id(7), ["dance", "cat", "dance"], 1_700_000_000_000);
        assert_eq!(v.tags, vec!["cat".to_owned(), "dance".to_owned()]);
        let bytes = v.encode().unwrap();
        assert_eq!(bytes.len(), 18 + 4 + 6);
        assert_eq!(bytes[0], 1);
        assert_eq!(ViewRecord::decode(&bytes).unwrap(), ViewRecord::View(v.clone()));
        let tick = encode_tick(5).unwrap();
        assert_eq!(tick.len(), 9);
        assert_eq!(ViewRecord::decode(&tick).unwrap(), ViewRecord::Tick { at_ms: 5 });
        let rec = v.to_record().unwrap();
        assert_eq!(rec.timestamp_ms, v.at_ms);
    }

    #[test]
    fn rejects_malformed() {
        let v = QualifiedView::new(Id(1), ["a"], 10).encode().unwrap();
        assert!(ViewRecord::decode(&[]).is_err());
        assert!(ViewRecord::decode(&[9, 0, 0]).is_err());
        assert!(ViewRecord::decode(&v[..v.len() - 1]).is_err());
        let mut long = v.clone();
        long.push(0);
        assert!(ViewRecord::decode(&long).is_err());
        let mut bad_utf8 = v.clone();
        let last = bad_utf8.len() - 1;
        bad_utf8[last] = 0xff;
        assert!(ViewRecord::decode(&bad_utf8).is_err());
        assert!(ViewRecord::decode(&[2, 0, 0, 0]).is_err());
        assert!(QualifiedView::new(Id(1), [""], 10).encode().is_err());
        assert!(QualifiedView::new(Id(1), ["x".repeat(65)], 10).encode().is_err());
        assert!(QualifiedView::new(Id(1), (0..33).map(|i| i.to_string()), 10).encode().is_err());
        assert!(QualifiedView::new(Id(1), Vec::<String>::new(), -1).encode().is_err());
        assert!(encode_tick(MAX_AT_MS + 1).is_err());
    }

    proptest! {
        #[test]
        fn any_valid_view_round_trips(
            id in any::<u64>(),
            at in MIN_AT_MS..=MAX_AT_MS,
            tags in proptest::collection::vec("[a-z\u{4e00}-\u{4e10}]{1,16}", 0..5),
        ) {
            let v = QualifiedView::new(Id(id), tags, at);
            let bytes = v.encode().unwrap();
            prop_assert_eq!(ViewRecord::decode(&bytes).unwrap(), ViewRecord::View(v));
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = ViewRecord::decode(&bytes);
        }
    }
}
