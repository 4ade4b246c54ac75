//! The `video_blobs` table: which blobs of the blob store make up each video (its source,
//! renditions, poster...), so storage tiering and the creator archive can find and move
//! them. A video's rows go with it (`ON DELETE CASCADE`).

use quicktok_core::Id;

use crate::error::{MetaError, Result, db, is_foreign_key_violation, unique_violation};
use crate::store::{MetaStore, with_pool};

/// One blob of a video.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoBlob {
    /// The blob store's id.
    pub blob_id: Id,
    pub video_id: Id,
    /// What the blob holds (`"source"`, a rendition name, `"poster"`...); free-form, the
    /// caller's vocabulary.
    pub kind: String,
    /// When the blob was stored.
    pub created_at_ms: i64,
}

#[derive(sqlx::FromRow)]
struct VideoBlobRow {
    blob_id: i64,
    video_id: i64,
    kind: String,
    created_at_ms: i64,
}

impl From<VideoBlobRow> for VideoBlob {
    fn from(r: VideoBlobRow) -> VideoBlob {
        VideoBlob {
            blob_id: Id::from_i64(r.blob_id),
            video_id: Id::from_i64(r.video_id),
            kind: r.kind,
            created_at_ms: r.created_at_ms,
        }
    }
}

const INSERT_BLOB: &str =
    "INSERT INTO video_blobs (blob_id, video_id, kind, created_at_ms) VALUES ($1, $2, $3, $4)";
const BLOBS_OF: &str = "SELECT blob_id, video_id, kind, created_at_ms \
     FROM video_blobs WHERE video_id = $1 ORDER BY blob_id";
const DELETE_BLOB: &str = "DELETE FROM video_blobs WHERE blob_id = $1";

/// Repository for the blobs of videos; get one from [`MetaStore::video_blobs`].
#[derive(Debug, Clone, Copy)]
pub struct VideoBlobs<'a> {
    store: &'a MetaStore,
}

impl<'a> VideoBlobs<'a> {
    pub(crate) fn new(store: &'a MetaStore) -> Self {
        VideoBlobs { store }
    }

    /// Records that blob `blob_id` (of kind `kind`, stored at `created_at_ms`) belongs to
    /// video `video_id`. [`MetaError::Conflict`] (`"blob_id"`) if the blob is already
    /// attached (to this or another video), [`MetaError::NotFound`] if there is no such
    /// video.
    pub async fn attach(
        &self,
        video_id: Id,
        blob_id: Id,
        kind: &str,
        created_at_ms: i64,
    ) -> Result<()> {
        let result = with_pool!(self.store, |pool| {
            sqlx::query(INSERT_BLOB)
                .bind(blob_id.as_i64())
                .bind(video_id.as_i64())
                .bind(kind)
                .bind(created_at_ms)
                .execute(pool)
                .await
                .map(drop)
        });
        match result {
            Ok(()) => Ok(()),
            // The primary key is the table's only unique constraint.
            Err(e) if unique_violation(&e).is_some() => {
                Err(MetaError::Conflict { what: "blob_id" })
            }
            Err(e) if is_foreign_key_violation(&e) => Err(MetaError::NotFound),
            Err(e) => Err(db(e)),
        }
    }

    /// A video's blobs, by blob id (empty for an unknown video).
    pub async fn for_video(&self, video_id: Id) -> Result<Vec<VideoBlob>> {
        let rows = with_pool!(self.store, |pool| {
            sqlx::query_as::<_, VideoBlobRow>(BLOBS_OF)
                .bind(video_id.as_i64())
                .fetch_all(pool)
                .await
        })
        .map_err(db)?;
        Ok(rows.into_iter().map(VideoBlob::from).collect())
    }

    /// Forgets a blob (the bytes in the blob store are the caller's to delete). Whether it
    /// was attached.
    pub async fn detach(&self, blob_id: Id) -> Result<bool> {
        let deleted = with_pool!(self.store, |pool| {
            sqlx::query(DELETE_BLOB)
                .bind(blob_id.as_i64())
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(db)?;
        Ok(deleted > 0)
    }
}
