//! The `uploads` table: the durable state of resumable (tus) uploads. Each upload belongs to
//! a user and creates one video (status `uploading` until the last byte arrives). The bytes
//! themselves live in the API node's data directory; this table records how many of them are
//! acknowledged, so an upload resumes exactly where it stopped, across restarts.
//!
//! Offsets only move through compare-and-set ([`Uploads::set_offset`],
//! [`Uploads::complete`]): a writer that lost a race changes nothing.

use quicktok_core::Id;

use crate::error::{MetaError, Result, db, is_foreign_key_violation, unique_violation};
use crate::store::{MetaStore, with_pool};

/// A stored upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub id: Id,
    pub owner_id: Id,
    /// The video the upload creates.
    pub video_id: Id,
    /// Total size in bytes (`Upload-Length`).
    pub length: u64,
    /// Bytes received and durably stored.
    pub offset: u64,
    /// The `Upload-Metadata` header as the client sent it (validated by the caller).
    pub metadata: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// An unfinished upload is abandoned after this.
    pub expires_at_ms: i64,
    /// When the last byte arrived; `None` while unfinished.
    pub completed_at_ms: Option<i64>,
}

impl Upload {
    /// Whether every byte has arrived.
    pub fn is_complete(&self) -> bool {
        self.completed_at_ms.is_some()
    }

    /// Whether the upload is unfinished and past its expiry at `now_ms`.
    pub fn is_expired(&self, now_ms: i64) -> bool {
        !self.is_complete() && self.expires_at_ms <= now_ms
    }
}

/// What [`Uploads::create`] needs. The upload starts at offset 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUpload {
    pub id: Id,
    pub owner_id: Id,
    /// An existing video (normally just created in status `uploading`).
    pub video_id: Id,
    pub length: u64,
    pub metadata: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
}

/// A user's unfinished, unexpired uploads (for quotas).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UploadUsage {
    /// How many there are.
    pub count: u64,
    /// The sum of their declared lengths.
    pub bytes: u64,
}

#[derive(sqlx::FromRow)]
struct UploadRow {
    id: i64,
    owner_id: i64,
    video_id: i64,
    upload_length: i64,
    upload_offset: i64,
    metadata: String,
    created_at_ms: i64,
    updated_at_ms: i64,
    expires_at_ms: i64,
    completed_at_ms: Option<i64>,
}

impl From<UploadRow> for Upload {
    fn from(r: UploadRow) -> Upload {
        Upload {
            id: Id::from_i64(r.id),
            owner_id: Id::from_i64(r.owner_id),
            video_id: Id::from_i64(r.video_id),
            // The CHECK constraints keep both non-negative.
            length: u64::try_from(r.upload_length).unwrap_or(0),
            offset: u64::try_from(r.upload_offset).unwrap_or(0),
            metadata: r.metadata,
            created_at_ms: r.created_at_ms,
            updated_at_ms: r.updated_at_ms,
            expires_at_ms: r.expires_at_ms,
            completed_at_ms: r.completed_at_ms,
        }
    }
}

const COLUMNS: &str = "id, owner_id, video_id, upload_length, upload_offset, metadata, \
     created_at_ms, updated_at_ms, expires_at_ms, completed_at_ms";

const INSERT_UPLOAD: &str = "INSERT INTO uploads (id, owner_id, video_id, upload_length, \
     upload_offset, metadata, created_at_ms, updated_at_ms, expires_at_ms) \
     VALUES ($1, $2, $3, $4, 0, $5, $6, $6, $7)";
const SET_OFFSET: &str = "UPDATE uploads \
     SET upload_offset = $3, expires_at_ms = $4, updated_at_ms = $5 \
     WHERE id = $1 AND upload_offset = $2 AND completed_at_ms IS NULL \
     AND $3 >= $2 AND $3 <= upload_length";
const COMPLETE: &str = "UPDATE uploads \
     SET upload_offset = upload_length, completed_at_ms = $3, updated_at_ms = $3 \
     WHERE id = $1 AND upload_offset = $2 AND completed_at_ms IS NULL \
     RETURNING video_id";
const VIDEO_TO_PROCESSING: &str = "UPDATE videos SET status = 'processing', updated_at_ms = $2 \
     WHERE id = $1 AND status = 'uploading'";
const DELETE_UPLOAD: &str = "DELETE FROM uploads WHERE id = $1 RETURNING video_id";
const DELETE_UPLOADING_VIDEO: &str = "DELETE FROM videos WHERE id = $1 AND status = 'uploading'";
const USAGE: &str = "SELECT COUNT(*), CAST(COALESCE(SUM(upload_length), 0) AS BIGINT) FROM uploads \
     WHERE owner_id = $1 AND completed_at_ms IS NULL AND expires_at_ms > $2";

/// Repository for uploads; get one from [`MetaStore::uploads`].
#[derive(Debug, Clone, Copy)]
pub struct Uploads<'a> {
    store: &'a MetaStore,
}

fn to_i64(n: u64, what: &str) -> Result<i64> {
    i64::try_from(n).map_err(|_| MetaError::InvalidConfig(format!("{what} {n} is out of range")))
}

impl<'a> Uploads<'a> {
    pub(crate) fn new(store: &'a MetaStore) -> Self {
        Uploads { store }
    }

    /// Records a new upload at offset 0. [`MetaError::Conflict`] (`"id"`) if the id is taken
    /// (or the video already has an upload), [`MetaError::NotFound`] if the owner or the
    /// video does not exist.
    pub async fn create(&self, new: NewUpload) -> Result<Upload> {
        let length = to_i64(new.length, "upload length")?;
        let result = with_pool!(self.store, |pool| {
            sqlx::query(INSERT_UPLOAD)
                .bind(new.id.as_i64())
                .bind(new.owner_id.as_i64())
                .bind(new.video_id.as_i64())
                .bind(length)
                .bind(&new.metadata)
                .bind(new.created_at_ms)
                .bind(new.expires_at_ms)
                .execute(pool)
                .await
                .map(drop)
        });
        match result {
            Ok(()) => {}
            Err(e) if unique_violation(&e).is_some() => {
                return Err(MetaError::Conflict { what: "id" });
            }
            Err(e) if is_foreign_key_violation(&e) => return Err(MetaError::NotFound),
            Err(e) => return Err(db(e)),
        }
        Ok(Upload {
            id: new.id,
            owner_id: new.owner_id,
            video_id: new.video_id,
            length: new.length,
            offset: 0,
            metadata: new.metadata,
            created_at_ms: new.created_at_ms,
            updated_at_ms: new.created_at_ms,
            expires_at_ms: new.expires_at_ms,
            completed_at_ms: None,
        })
    }

    /// The upload with this id, if any.
    pub async fn by_id(&self, id: Id) -> Result<Option<Upload>> {
        let sql = format!("SELECT {COLUMNS} FROM uploads WHERE id = $1");
        let row = with_pool!(self.store, |pool| {
            sqlx::query_as::<_, UploadRow>(&sql).bind(id.as_i64()).fetch_optional(pool).await
        })
        .map_err(db)?;
        Ok(row.map(Upload::from))
    }

    /// Moves an unfinished upload's offset from `from` to `to` (forward only, at most its
    /// length) and sets its expiry; `false` (and nothing changes) when the stored offset is
    /// not `from`, the upload is complete or gone, or `to` is out of range. Reaching the
    /// length does not complete the upload: that is [`Uploads::complete`].
    pub async fn set_offset(
        &self,
        id: Id,
        from: u64,
        to: u64,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<bool> {
        let (from, to) = (to_i64(from, "offset")?, to_i64(to, "offset")?);
        let changed = with_pool!(self.store, |pool| {
            sqlx::query(SET_OFFSET)
                .bind(id.as_i64())
                .bind(from)
                .bind(to)
                .bind(expires_at_ms)
                .bind(now_ms)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(db)?;
        Ok(changed > 0)
    }

    /// Completes an unfinished upload whose stored offset is `from`: its offset becomes its
    /// length, `completed_at_ms` is set, and its video moves from `uploading` to
    /// `processing`, all in one transaction. `false` (and nothing changes) when the stored
    /// offset is not `from` or the upload is complete already or gone.
    pub async fn complete(&self, id: Id, from: u64, now_ms: i64) -> Result<bool> {
        let from = to_i64(from, "offset")?;
        let done = with_pool!(self.store, |pool| {
            async {
                let mut tx = pool.begin().await?;
                let Some(video_id) = sqlx::query_scalar::<_, i64>(COMPLETE)
                    .bind(id.as_i64())
                    .bind(from)
                    .bind(now_ms)
                    .fetch_optional(&mut *tx)
                    .await?
                else {
                    return Ok(false);
                };
                sqlx::query(VIDEO_TO_PROCESSING)
                    .bind(video_id)
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>(true)
            }
            .await
        });
        done.map_err(db)
    }

    /// Deletes an upload and, if it is still `uploading`, its video (a terminated or
    /// abandoned upload leaves no trace), in one transaction. A completed upload's video is
    /// kept. Whether the upload existed.
    pub async fn delete(&self, id: Id) -> Result<bool> {
        let done = with_pool!(self.store, |pool| {
            async {
                let mut tx = pool.begin().await?;
                let Some(video_id) = sqlx::query_scalar::<_, i64>(DELETE_UPLOAD)
                    .bind(id.as_i64())
                    .fetch_optional(&mut *tx)
                    .await?
                else {
                    return Ok(false);
                };
                sqlx::query(DELETE_UPLOADING_VIDEO).bind(video_id).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>(true)
            }
            .await
        });
        done.map_err(db)
    }

    /// Unfinished uploads whose expiry is at or before `before_ms`, oldest expiry first, at
    /// most `limit`.
    pub async fn expired(&self, before_ms: i64, limit: u32) -> Result<Vec<Upload>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM uploads WHERE completed_at_ms IS NULL \
             AND expires_at_ms <= $1 ORDER BY expires_at_ms, id LIMIT $2"
        );
        let rows = with_pool!(self.store, |pool| {
            sqlx::query_as::<_, UploadRow>(&sql)
                .bind(before_ms)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
        })
        .map_err(db)?;
        Ok(rows.into_iter().map(Upload::from).collect())
    }

    /// How many unfinished uploads `owner_id` has that have not expired at `now_ms`, and the
    /// sum of their lengths.
    pub async fn owner_usage(&self, owner_id: Id, now_ms: i64) -> Result<UploadUsage> {
        let (count, bytes): (i64, i64) = with_pool!(self.store, |pool| {
            sqlx::query_as::<_, (i64, i64)>(USAGE)
                .bind(owner_id.as_i64())
                .bind(now_ms)
                .fetch_one(pool)
                .await
        })
        .map_err(db)?;
        Ok(UploadUsage {
            count: u64::try_from(count).unwrap_or(0),
            bytes: u64::try_from(bytes).unwrap_or(0),
        })
    }
}
