//! The `video_fingerprints` table: what duplicate detection compares new uploads with, one
//! row per video: the SHA-256 of its source (exact duplicates) and the 64-bit perceptual
//! hashes of sampled frames (near duplicates). A video's row goes with it
//! (`ON DELETE CASCADE`).
//!
//! Frame hashes are stored dialect-neutrally as one text value: each hash as 16 lowercase
//! hexadecimal digits, concatenated in order (so the empty string is no frames). Reading a
//! value that is not in that form is a [`MetaError::Database`] error, never a panic.

use quicktok_core::Id;

use crate::error::{MetaError, Result, db, is_foreign_key_violation};
use crate::store::{MetaStore, with_pool};

/// Hex digits per stored frame hash.
const HASH_DIGITS: usize = 16;

/// A video's fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    pub video_id: Id,
    /// SHA-256 of the source file, in hex; stored and compared as given.
    pub content_hash: String,
    /// Perceptual hashes of sampled frames, in sampling order.
    pub frame_hashes: Vec<u64>,
    pub created_at_ms: i64,
}

#[derive(sqlx::FromRow)]
struct FingerprintRow {
    video_id: i64,
    content_hash: String,
    frame_hashes: String,
    created_at_ms: i64,
}

impl FingerprintRow {
    fn into_fingerprint(self) -> Result<Fingerprint> {
        let frame_hashes = decode_frame_hashes(&self.frame_hashes)
            .map_err(|e| db(sqlx::Error::Decode(Box::new(e))))?;
        Ok(Fingerprint {
            video_id: Id::from_i64(self.video_id),
            content_hash: self.content_hash,
            frame_hashes,
            created_at_ms: self.created_at_ms,
        })
    }
}

/// A stored `frame_hashes` value that is not whole groups of 16 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed frame_hashes: {0}")]
struct MalformedFrameHashes(&'static str);

/// Each hash as 16 lowercase hex digits, concatenated.
fn encode_frame_hashes(hashes: &[u64]) -> String {
    hashes.iter().map(|hash| format!("{hash:016x}")).collect()
}

/// The inverse of [`encode_frame_hashes`]; anything else (uppercase, signs, other lengths)
/// is refused.
fn decode_frame_hashes(s: &str) -> Result<Vec<u64>, MalformedFrameHashes> {
    let bytes = s.as_bytes();
    if !bytes.len().is_multiple_of(HASH_DIGITS) {
        return Err(MalformedFrameHashes("length is not a multiple of 16"));
    }
    bytes
        .chunks_exact(HASH_DIGITS)
        .map(|digits| {
            digits.iter().try_fold(0u64, |hash, &digit| {
                let nibble = match digit {
                    b'0'..=b'9' => digit - b'0',
                    b'a'..=b'f' => digit - b'a' + 10,
                    _ => return Err(MalformedFrameHashes("not a lowercase hex digit")),
                };
                Ok(hash << 4 | u64::from(nibble))
            })
        })
        .collect()
}

const PUT: &str = "INSERT INTO video_fingerprints \
     (video_id, content_hash, frame_hashes, created_at_ms) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (video_id) DO UPDATE SET content_hash = excluded.content_hash, \
     frame_hashes = excluded.frame_hashes, created_at_ms = excluded.created_at_ms";
// Two variants rather than `($2 IS NULL OR video_id > $2)`, as for the video listings.
const PAGE: &str = "SELECT video_id, content_hash, frame_hashes, created_at_ms \
     FROM video_fingerprints ORDER BY video_id LIMIT $1";
const PAGE_AFTER: &str = "SELECT video_id, content_hash, frame_hashes, created_at_ms \
     FROM video_fingerprints WHERE video_id > $2 ORDER BY video_id LIMIT $1";
const BY_CONTENT_HASH: &str =
    "SELECT video_id FROM video_fingerprints WHERE content_hash = $1 ORDER BY video_id";
const DELETE: &str = "DELETE FROM video_fingerprints WHERE video_id = $1";
const CLAIM: &str = "INSERT INTO video_content_claims (content_hash, video_id) VALUES ($1, $2) \
     ON CONFLICT (content_hash) DO NOTHING";
const CLAIM_HOLDER: &str = "SELECT video_id FROM video_content_claims WHERE content_hash = $1";
const RELEASE: &str = "DELETE FROM video_content_claims WHERE video_id = $1";
const GET: &str = "SELECT video_id, content_hash, frame_hashes, created_at_ms \
     FROM video_fingerprints WHERE video_id = $1";

/// Repository for video fingerprints and exact-copy claims; get one from
/// [`MetaStore::fingerprints`].
#[derive(Debug, Clone, Copy)]
pub struct Fingerprints<'a> {
    store: &'a MetaStore,
}

impl<'a> Fingerprints<'a> {
    pub(crate) fn new(store: &'a MetaStore) -> Self {
        Fingerprints { store }
    }

    /// Stores a video's fingerprint, replacing the one it had (a pipeline re-run after a
    /// crash overwrites what it wrote before). [`MetaError::NotFound`] if there is no such
    /// video.
    pub async fn put(&self, fp: &Fingerprint) -> Result<()> {
        let frame_hashes = encode_frame_hashes(&fp.frame_hashes);
        let result = with_pool!(self.store, |pool| {
            sqlx::query(PUT)
                .bind(fp.video_id.as_i64())
                .bind(&fp.content_hash)
                .bind(&frame_hashes)
                .bind(fp.created_at_ms)
                .execute(pool)
                .await
                .map(drop)
        });
        match result {
            Ok(()) => Ok(()),
            Err(e) if is_foreign_key_violation(&e) => Err(MetaError::NotFound),
            Err(e) => Err(db(e)),
        }
    }

    /// At most `limit` fingerprints with a video id after `after` (from the start when
    /// `None`), by video id: pass the last id of one page as `after` to get the next. Ids
    /// are ordered as stored (signed), which is id order for every generated id (they never
    /// set the top bit). Meant for loading every fingerprint into memory at start-up.
    pub async fn page(&self, after: Option<Id>, limit: u32) -> Result<Vec<Fingerprint>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let sql = if after.is_some() { PAGE_AFTER } else { PAGE };
        let rows = with_pool!(self.store, |pool| {
            let mut query = sqlx::query_as::<_, FingerprintRow>(sql).bind(i64::from(limit));
            if let Some(after) = after {
                query = query.bind(after.as_i64());
            }
            query.fetch_all(pool).await
        })
        .map_err(db)?;
        rows.into_iter().map(FingerprintRow::into_fingerprint).collect()
    }

    /// The videos whose content hash is `hash` (compared exactly), by id (as stored, see
    /// [`Fingerprints::page`]).
    pub async fn by_content_hash(&self, hash: &str) -> Result<Vec<Id>> {
        let ids: Vec<i64> = with_pool!(self.store, |pool| {
            sqlx::query_scalar(BY_CONTENT_HASH).bind(hash).fetch_all(pool).await
        })
        .map_err(db)?;
        Ok(ids.into_iter().map(Id::from_i64).collect())
    }

    /// A video's fingerprint, `None` if it has none (never checked, or refused since).
    pub async fn get(&self, video_id: Id) -> Result<Option<Fingerprint>> {
        let row = with_pool!(self.store, |pool| {
            sqlx::query_as::<_, FingerprintRow>(GET)
                .bind(video_id.as_i64())
                .fetch_optional(pool)
                .await
        })
        .map_err(db)?;
        row.map(FingerprintRow::into_fingerprint).transpose()
    }

    /// Claims the source hash `content_hash` for `video` unless another video holds it, and
    /// returns the holder: `video` itself when the claim is (or already was) its own. The
    /// primary key decides between workers claiming at once, so two copies processed on two
    /// nodes cannot both pass. [`Fingerprints::delete`] releases a video's claim.
    pub async fn claim_content(&self, content_hash: &str, video: Id) -> Result<Id> {
        // A holder released between our insert and our read leaves nothing to read: again.
        for _ in 0..3 {
            let inserted = with_pool!(self.store, |pool| {
                sqlx::query(CLAIM)
                    .bind(content_hash)
                    .bind(video.as_i64())
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected())
            });
            match inserted {
                Ok(1) => return Ok(video),
                Ok(_) => {}
                Err(e) if is_foreign_key_violation(&e) => return Err(MetaError::NotFound),
                Err(e) => return Err(db(e)),
            }
            let holder: Option<i64> = with_pool!(self.store, |pool| {
                sqlx::query_scalar(CLAIM_HOLDER).bind(content_hash).fetch_optional(pool).await
            })
            .map_err(db)?;
            if let Some(holder) = holder {
                return Ok(Id::from_i64(holder));
            }
        }
        Err(MetaError::Conflict { what: "a content claim changing hands" })
    }

    /// Deletes a video's fingerprint; whether it had one.
    pub async fn delete(&self, video_id: Id) -> Result<bool> {
        with_pool!(self.store, |pool| {
            sqlx::query(RELEASE).bind(video_id.as_i64()).execute(pool).await.map(drop)
        })
        .map_err(db)?;
        let deleted = with_pool!(self.store, |pool| {
            sqlx::query(DELETE)
                .bind(video_id.as_i64())
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(db)?;
        Ok(deleted > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_hashes_round_trip() {
        for hashes in [vec![], vec![0], vec![u64::MAX, 0, 1, 0x0123_4567_89ab_cdef, 1 << 63]] {
            let text = encode_frame_hashes(&hashes);
            assert_eq!(text.len(), hashes.len() * HASH_DIGITS);
            assert_eq!(decode_frame_hashes(&text), Ok(hashes));
        }
        assert_eq!(encode_frame_hashes(&[u64::MAX, 0xab]), "ffffffffffffffff00000000000000ab");
    }

    #[test]
    fn malformed_frame_hashes_are_errors() {
        for bad in [
            "0",
            "000000000000000",   // 15 digits
            "00000000000000000", // 17
            "FFFFFFFFFFFFFFFF",  // uppercase
            "+fffffffffffffff",  // from_str_radix would take the sign
            "-000000000000001",
            " 000000000000000",
            "000000000000000g",
            "0000000000000000000000000000000x",
            "ééééééé\u{1}\u{1}", // 16 bytes, not all ASCII
        ] {
            assert!(decode_frame_hashes(bad).is_err(), "{bad:?}");
        }
    }
}
