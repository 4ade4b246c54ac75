//! The `video_renditions` table: one row per rung of a video's encoding ladder (`"480p"`,
//! `"720p_hevc"`...) with what a player or manifest needs to pick it, and the caller's JSON
//! description of it (segment lists and the like; opaque here). A video's rows go with it
//! (`ON DELETE CASCADE`).

use quicktok_core::Id;

use crate::error::{MetaError, Result, db, is_foreign_key_violation};
use crate::read_conns::text_of_ids;
use crate::store::{MetaStore, with_pool};

/// One rendition of a video.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenditionRow {
    pub video_id: Id,
    /// The rung's name, unique per video (`"480p"`, `"720p_hevc"`).
    pub name: String,
    /// Frame height in pixels.
    pub height: i32,
    /// Bits per second (peak, as a manifest declares it).
    pub bandwidth: i64,
    /// The caller's JSON description (segments, codecs...); stored verbatim.
    pub spec_json: String,
    pub created_at_ms: i64,
}

#[derive(sqlx::FromRow)]
struct StoredRendition {
    video_id: i64,
    name: String,
    height: i32,
    bandwidth: i64,
    spec_json: String,
    created_at_ms: i64,
}

impl From<StoredRendition> for RenditionRow {
    fn from(r: StoredRendition) -> RenditionRow {
        RenditionRow {
            video_id: Id::from_i64(r.video_id),
            name: r.name,
            height: r.height,
            bandwidth: r.bandwidth,
            spec_json: r.spec_json,
            created_at_ms: r.created_at_ms,
        }
    }
}

/// One record of [`Renditions::for_videos`]'s aggregate: six fields joined by U+001F.
fn rendition_record(record: &str) -> Result<RenditionRow> {
    let bad = || db(sqlx::Error::Decode(format!("rendition record {record:?}").into()));
    let fields: Vec<&str> = record.split('\u{1f}').collect();
    let [video_id, name, height, bandwidth, spec_json, created_at_ms] = fields[..] else {
        return Err(bad());
    };
    Ok(RenditionRow {
        video_id: Id::from_i64(video_id.parse().map_err(|_| bad())?),
        name: name.to_owned(),
        height: height.parse().map_err(|_| bad())?,
        bandwidth: bandwidth.parse().map_err(|_| bad())?,
        spec_json: spec_json.to_owned(),
        created_at_ms: created_at_ms.parse().map_err(|_| bad())?,
    })
}

const PUT: &str = "INSERT INTO video_renditions \
     (video_id, name, height, bandwidth, spec_json, created_at_ms) \
     VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (video_id, name) DO UPDATE SET height = excluded.height, \
     bandwidth = excluded.bandwidth, spec_json = excluded.spec_json, \
     created_at_ms = excluded.created_at_ms";
const FOR_VIDEO: &str = "SELECT video_id, name, height, bandwidth, spec_json, created_at_ms \
     FROM video_renditions WHERE video_id = $1";
const DELETE_FOR_VIDEO: &str = "DELETE FROM video_renditions WHERE video_id = $1";

/// Repository for the renditions of videos; get one from [`MetaStore::renditions`].
#[derive(Debug, Clone, Copy)]
pub struct Renditions<'a> {
    store: &'a MetaStore,
}

impl<'a> Renditions<'a> {
    pub(crate) fn new(store: &'a MetaStore) -> Self {
        Renditions { store }
    }

    /// Stores a rendition, replacing the video's rendition of the same name if there is one
    /// (so a pipeline re-run after a crash overwrites what it wrote before).
    /// [`MetaError::NotFound`] if there is no such video.
    pub async fn put(&self, row: &RenditionRow) -> Result<()> {
        let result = with_pool!(self.store, |pool| {
            sqlx::query(PUT)
                .bind(row.video_id.as_i64())
                .bind(&row.name)
                .bind(row.height)
                .bind(row.bandwidth)
                .bind(&row.spec_json)
                .bind(row.created_at_ms)
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

    /// A video's renditions, by height (lowest first), then by name in byte order (empty
    /// for an unknown video).
    pub async fn for_video(&self, video_id: Id) -> Result<Vec<RenditionRow>> {
        let rows = with_pool!(self.store, |pool| {
            sqlx::query_as::<_, StoredRendition>(FOR_VIDEO)
                .bind(video_id.as_i64())
                .fetch_all(pool)
                .await
        })
        .map_err(db)?;
        let mut rows: Vec<RenditionRow> = rows.into_iter().map(RenditionRow::from).collect();
        // Sorted here rather than in SQL: the backends' text collations differ. A video has
        // a handful of renditions.
        rows.sort_unstable_by(|a, b| (a.height, &a.name).cmp(&(b.height, &b.name)));
        Ok(rows)
    }

    /// The renditions of each of `videos` (a page of them: one query per 500), each list
    /// ordered as [`Renditions::for_video`]; videos without renditions are absent.
    pub async fn for_videos(
        &self,
        videos: &[Id],
    ) -> Result<std::collections::HashMap<Id, Vec<RenditionRow>>> {
        let mut ids: Vec<i64> = videos.iter().map(|v| v.as_i64()).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut out: std::collections::HashMap<Id, Vec<RenditionRow>> =
            std::collections::HashMap::new();
        // One row per chunk: fields joined by the unit separator, records by the record
        // separator (control characters never appear raw in JSON nor in rung names); a page
        // has a few hundred renditions, and rows handed over one by one cost more than
        // finding them.
        let chr = match self.store.backend() {
            crate::Backend::Sqlite => "char",
            crate::Backend::Postgres => "chr",
        };
        for chunk in ids.chunks(crate::store::IN_CHUNK) {
            let placeholders = crate::store::in_placeholders(chunk.len());
            let sql = format!(
                "SELECT string_agg(CAST(video_id AS TEXT) || {chr}(31) || name || {chr}(31) \
                 || CAST(height AS TEXT) || {chr}(31) || CAST(bandwidth AS TEXT) || {chr}(31) \
                 || spec_json || {chr}(31) || CAST(created_at_ms AS TEXT), {chr}(30)) \
                 FROM video_renditions WHERE video_id IN ({placeholders})"
            );
            let text = text_of_ids(self.store, &sql, chunk).await?;
            for record in text.as_deref().unwrap_or_default().split('\u{1e}') {
                if record.is_empty() {
                    continue;
                }
                let row = rendition_record(record)?;
                out.entry(row.video_id).or_default().push(row);
            }
        }
        for rows in out.values_mut() {
            rows.sort_unstable_by(|a, b| (a.height, &a.name).cmp(&(b.height, &b.name)));
        }
        Ok(out)
    }

    /// Deletes a video's renditions; returns how many there were.
    pub async fn delete_for_video(&self, video_id: Id) -> Result<u64> {
        with_pool!(self.store, |pool| {
            sqlx::query(DELETE_FOR_VIDEO)
                .bind(video_id.as_i64())
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(db)
    }
}
