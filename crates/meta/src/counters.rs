//! The `counters` table: the persisted side of the counter service (likes, comments,
//! shares, plays of videos; followers, following of users). The service adds batches of
//! deltas and reads values back by key; [`Counters::rebuild`] recomputes the whole table
//! from the tables the counts come from (the repair command; never on a request path).

use std::collections::{BTreeMap, HashMap};

use quicktok_core::Id;

use crate::error::{Result, db};
use crate::read_conns::text_of_ids;
use crate::store::{MetaStore, with_pool};

/// Which counter: a subject (`video` or `user`), its id, a metric (`likes`, `plays`...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CounterKey<'a> {
    pub subject: &'a str,
    pub id: Id,
    pub metric: &'a str,
}

const ADD: &str = "INSERT INTO counters (id, subject, metric, value) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (id, subject, metric) DO UPDATE SET value = counters.value + excluded.value";

/// The statements of [`Counters::rebuild`], in order. Plays come from `videos.view_count`,
/// which the play-statistics consumer raises in the same transaction as the hourly buckets
/// (those are pruned after a week, so they cannot give all-time totals).
const REBUILD: &[&str] = &[
    "DELETE FROM counters",
    "INSERT INTO counters (id, subject, metric, value) \
     SELECT video_id, 'video', 'likes', COUNT(*) FROM likes GROUP BY video_id",
    "INSERT INTO counters (id, subject, metric, value) \
     SELECT video_id, 'video', 'comments', COUNT(*) FROM comments GROUP BY video_id",
    "INSERT INTO counters (id, subject, metric, value) \
     SELECT video_id, 'video', 'shares', COUNT(*) FROM shares GROUP BY video_id",
    "INSERT INTO counters (id, subject, metric, value) \
     SELECT id, 'video', 'plays', view_count FROM videos WHERE view_count <> 0",
    "INSERT INTO counters (id, subject, metric, value) \
     SELECT followee_id, 'user', 'followers', COUNT(*) FROM follows GROUP BY followee_id",
    "INSERT INTO counters (id, subject, metric, value) \
     SELECT follower_id, 'user', 'following', COUNT(*) FROM follows GROUP BY follower_id",
    // Reply counts are kept transactionally; repairing them too costs one statement.
    "UPDATE comments SET reply_count = \
     (SELECT COUNT(*) FROM comments r WHERE r.parent_id = comments.id) \
     WHERE parent_id IS NULL",
];

/// One `id:subject:metric:value` record of [`Counters::get`]'s aggregate (subjects and
/// metrics are the code's own names: no `:` or `,` in them).
fn counter_record(record: &str) -> Result<(i64, &str, &str, i64)> {
    let bad = || db(sqlx::Error::Decode(format!("counter record {record:?}").into()));
    let mut parts = record.splitn(4, ':');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(id), Some(subject), Some(metric), Some(value)) => {
            Ok((id.parse().map_err(|_| bad())?, subject, metric, value.parse().map_err(|_| bad())?))
        }
        _ => Err(bad()),
    }
}

/// Repository for persisted counters; get one from [`MetaStore::counters`].
#[derive(Debug, Clone, Copy)]
pub struct Counters<'a> {
    store: &'a MetaStore,
}

impl<'a> Counters<'a> {
    pub(crate) fn new(store: &'a MetaStore) -> Self {
        Counters { store }
    }

    /// Adds every delta to its counter in one transaction (all or nothing). Deltas for the
    /// same key are summed first and zero sums skipped; rows are written in key order, so
    /// concurrent batches cannot deadlock one another on PostgreSQL.
    pub async fn add(&self, deltas: &[(CounterKey<'_>, i64)]) -> Result<()> {
        let mut summed: BTreeMap<(i64, &str, &str), i64> = BTreeMap::new();
        for (key, delta) in deltas {
            let sum = summed.entry((key.id.as_i64(), key.subject, key.metric)).or_insert(0);
            *sum = sum.saturating_add(*delta);
        }
        summed.retain(|_, delta| *delta != 0);
        if summed.is_empty() {
            return Ok(());
        }
        with_pool!(self.store, |pool| {
            async {
                let mut tx = pool.begin().await?;
                for (&(id, subject, metric), &delta) in &summed {
                    sqlx::query(ADD)
                        .bind(id)
                        .bind(subject)
                        .bind(metric)
                        .bind(delta)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await
            }
            .await
        })
        .map_err(db)
    }

    /// The stored value of each key, in the order given (0 for a counter never written).
    pub async fn get(&self, keys: &[CounterKey<'_>]) -> Result<Vec<i64>> {
        let mut ids: Vec<i64> = keys.iter().map(|k| k.id.as_i64()).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut found: HashMap<(i64, String, String), i64> = HashMap::new();
        for chunk in ids.chunks(crate::store::IN_CHUNK) {
            // One row of `id:subject:metric:value` records: a page's counters are a few
            // hundred rows, and rows handed over one by one cost more than finding them.
            let placeholders = crate::store::in_placeholders(chunk.len());
            let sql = format!(
                "SELECT string_agg(CAST(id AS TEXT) || ':' || subject || ':' || metric || ':' \
                 || CAST(value AS TEXT), ',') FROM counters WHERE id IN ({placeholders})"
            );
            let text = text_of_ids(self.store, &sql, chunk).await?;
            for record in text.as_deref().unwrap_or_default().split(',').filter(|r| !r.is_empty()) {
                let (id, subject, metric, value) = counter_record(record)?;
                found.insert((id, subject.to_owned(), metric.to_owned()), value);
            }
        }
        Ok(keys
            .iter()
            .map(|k| {
                let key = (k.id.as_i64(), k.subject.to_owned(), k.metric.to_owned());
                found.get(&key).copied().unwrap_or(0)
            })
            .collect())
    }

    /// Recomputes every counter from its source of truth (likes, comments, shares, follows,
    /// `videos.view_count` for plays) in one transaction, replacing the table, and repairs
    /// comments' reply counts. Returns how many counter rows it wrote. Scans those tables:
    /// an operator command, never a request path. Deltas a running server has not flushed
    /// yet are added on top when it does, so run it with the servers stopped.
    pub async fn rebuild(&self) -> Result<u64> {
        with_pool!(self.store, |pool| {
            async {
                let mut tx = pool.begin().await?;
                let mut written = 0;
                for (i, sql) in REBUILD.iter().enumerate() {
                    let n = sqlx::query(sql).execute(&mut *tx).await?.rows_affected();
                    // The first statement deletes and the last updates comments.
                    if i > 0 && i + 1 < REBUILD.len() {
                        written += n;
                    }
                }
                tx.commit().await?;
                Ok::<_, sqlx::Error>(written)
            }
            .await
        })
        .map_err(db)
    }
}
