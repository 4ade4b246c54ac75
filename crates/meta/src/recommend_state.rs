//! The `recommend_state` table: recommender state that must survive a restart (per-user
//! seen filters, cover bandit statistics), stored as opaque bytes the recommend crate
//! encodes. API nodes upsert what changed in batches (write-behind) and read it back at
//! start, page by page.

use crate::error::{Result, db};
use crate::store::{MetaStore, with_pool};

/// What a row holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StateKind {
    /// A user's seen filter (`subject` = user, `segment` = 0).
    Seen,
    /// One video's cover statistics in one audience segment (`subject` = video).
    Cover,
}

impl StateKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StateKind::Seen => "seen",
            StateKind::Cover => "cover",
        }
    }
}

/// One stored piece of state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRow {
    pub kind: StateKind,
    /// The user or the video (the full 64 bits are kept).
    pub subject: u64,
    pub segment: u64,
    pub data: Vec<u8>,
    pub updated_at_ms: i64,
}

/// Rows per multi-row statement: 5 values each, well under SQLite's variable limit.
const UPSERT_CHUNK: usize = 500;

/// Access to the `recommend_state` table.
pub struct RecommendState<'a> {
    store: &'a MetaStore,
}

// Ids use all 64 bits; the columns are signed: stored bit for bit, like `Id::as_i64`.
fn signed(v: u64) -> i64 {
    v as i64
}

fn unsigned(v: i64) -> u64 {
    v as u64
}

impl<'a> RecommendState<'a> {
    pub(crate) fn new(store: &'a MetaStore) -> Self {
        RecommendState { store }
    }

    /// Inserts or replaces `rows` (by kind, subject and segment) in multi-row statements in
    /// one transaction: a flush is stored whole or not at all. A row whose stored
    /// `updated_at_ms` is newer is kept (a slower node does not overwrite a newer state).
    pub async fn upsert(&self, rows: &[StateRow]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let backend = self.store.backend();
        with_pool!(self.store, |pool| {
            async {
                let mut tx = pool.begin().await?;
                for chunk in rows.chunks(UPSERT_CHUNK) {
                    let values = crate::store::values_placeholders(backend, chunk.len(), 5);
                    let sql = format!(
                        "INSERT INTO recommend_state \
                         (kind, subject_id, segment, data, updated_at_ms) VALUES {values} \
                         ON CONFLICT (kind, subject_id, segment) DO UPDATE SET \
                         data = excluded.data, updated_at_ms = excluded.updated_at_ms \
                         WHERE recommend_state.updated_at_ms <= excluded.updated_at_ms"
                    );
                    let mut query = sqlx::query(&sql);
                    for r in chunk {
                        query = query
                            .bind(r.kind.as_str())
                            .bind(signed(r.subject))
                            .bind(signed(r.segment))
                            .bind(r.data.as_slice())
                            .bind(r.updated_at_ms);
                    }
                    query.execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok::<_, sqlx::Error>(())
            }
            .await
        })
        .map_err(db)
    }

    /// Up to `limit` rows of `kind` updated at or after `since_ms`, in (subject, segment)
    /// order after `after` (the last row of the previous page).
    pub async fn page(
        &self,
        kind: StateKind,
        since_ms: i64,
        after: Option<(u64, u64)>,
        limit: u32,
    ) -> Result<Vec<StateRow>> {
        // Paging compares the stored (signed) values, so the order is the signed one.
        let (subject, segment) =
            after.map_or((i64::MIN, i64::MIN), |(a, b)| (signed(a), signed(b)));
        let first = after.is_none();
        let rows = with_pool!(self.store, |pool| {
            sqlx::query_as::<_, (i64, i64, Vec<u8>, i64)>(
                "SELECT subject_id, segment, data, updated_at_ms FROM recommend_state \
                 WHERE kind = $1 AND updated_at_ms >= $2 \
                 AND ($3 OR subject_id > $4 OR (subject_id = $4 AND segment > $5)) \
                 ORDER BY subject_id, segment LIMIT $6",
            )
            .bind(kind.as_str())
            .bind(since_ms)
            .bind(first)
            .bind(subject)
            .bind(segment)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
        })
        .map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|(subject, segment, data, updated_at_ms)| StateRow {
                kind,
                subject: unsigned(subject),
                segment: unsigned(segment),
                data,
                updated_at_ms,
            })
            .collect())
    }

    /// Deletes rows of `kind` not updated since `before_ms` (users gone quiet); returns how
    /// many.
    pub async fn prune(&self, kind: StateKind, before_ms: i64) -> Result<u64> {
        with_pool!(self.store, |pool| {
            sqlx::query("DELETE FROM recommend_state WHERE kind = $1 AND updated_at_ms < $2")
                .bind(kind.as_str())
                .bind(before_ms)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(db)
    }
}
