//! Bulk loading for benchmarks (feature `bulk`): synthetic users, follows, published videos
//! and activity written in large multi-row statements, far faster than the one-row
//! repository calls a real request makes. Not for request paths.

use quicktok_core::Id;

use crate::error::{Result, db};
use crate::store::{MetaStore, with_pool};

/// Values bound per statement (under SQLite's 32 766 and PostgreSQL's 65 535).
const MAX_BINDS: usize = 30_000;

/// One bound value.
#[derive(Debug, Clone)]
enum Value {
    Int(i64),
    /// For `INTEGER` columns (PostgreSQL's 32-bit ones).
    Int32(i32),
    Text(String),
    Bool(bool),
}

/// Inserts `rows` (each `columns.len()` values) into `table` in multi-row statements, one
/// transaction.
async fn insert(
    store: &MetaStore,
    table: &str,
    columns: &[&str],
    rows: Vec<Vec<Value>>,
) -> Result<()> {
    let width = columns.len();
    let per_statement = (MAX_BINDS / width).max(1);
    let backend = store.backend();
    with_pool!(store, |pool| {
        async {
            let mut tx = pool.begin().await?;
            for chunk in rows.chunks(per_statement) {
                let values = crate::store::values_placeholders(backend, chunk.len(), width);
                let sql = format!("INSERT INTO {table} ({}) VALUES {values}", columns.join(", "));
                let mut query = sqlx::query(&sql);
                for row in chunk {
                    for value in row {
                        query = match value {
                            Value::Int(v) => query.bind(*v),
                            Value::Int32(v) => query.bind(*v),
                            Value::Text(v) => query.bind(v.clone()),
                            Value::Bool(v) => query.bind(*v),
                        };
                    }
                }
                query.execute(&mut *tx).await?;
            }
            tx.commit().await
        }
        .await
    })
    .map_err(db)
}

/// Bulk loader; get one from [`MetaStore::bulk`].
#[derive(Debug, Clone, Copy)]
pub struct Bulk<'a> {
    store: &'a MetaStore,
}

impl<'a> Bulk<'a> {
    pub(crate) fn new(store: &'a MetaStore) -> Self {
        Bulk { store }
    }

    /// Users named `user{id}` with a placeholder password hash.
    pub async fn users(&self, ids: &[Id], now_ms: i64) -> Result<()> {
        let rows = ids
            .iter()
            .map(|id| {
                vec![
                    Value::Int(id.as_i64()),
                    Value::Text(format!("user{}", id.0)),
                    Value::Text("!".into()),
                    Value::Int(now_ms),
                ]
            })
            .collect();
        insert(self.store, "users", &["id", "username", "password_hash", "created_at_ms"], rows)
            .await
    }

    /// Follows as (follower, followee, link id, created at), with the followers' stored
    /// followee lists.
    pub async fn follows(&self, follows: &[(Id, Id, Id, i64)]) -> Result<()> {
        let rows = follows
            .iter()
            .map(|&(a, b, link, at)| {
                vec![
                    Value::Int(a.as_i64()),
                    Value::Int(b.as_i64()),
                    Value::Int(link.as_i64()),
                    Value::Int(at),
                ]
            })
            .collect();
        insert(self.store, "follows", &["follower_id", "followee_id", "id", "created_at_ms"], rows)
            .await?;
        // The followers' stored lists, recomputed over the batch's follower id range (one
        // pass over their follows: loaders write each follower's follows together).
        let followers = follows.iter().map(|f| f.0.as_i64());
        let (Some(low), Some(high)) = (followers.clone().min(), followers.max()) else {
            return Ok(());
        };
        with_pool!(self.store, |pool| {
            sqlx::query(crate::social::REFRESH_FOLLOWING_RANGE)
                .bind(low)
                .bind(high)
                .execute(pool)
                .await
                .map(drop)
        })
        .map_err(db)
    }

    /// Published, public videos as (id, author, published at).
    pub async fn published_videos(&self, videos: &[(Id, Id, i64)]) -> Result<()> {
        let rows = videos
            .iter()
            .map(|&(id, author, at)| {
                vec![
                    Value::Int(id.as_i64()),
                    Value::Int(author.as_i64()),
                    Value::Text(String::new()),
                    Value::Text("published".into()),
                    Value::Int(at),
                    Value::Int(at),
                    Value::Int(at),
                ]
            })
            .collect();
        insert(
            self.store,
            "videos",
            &[
                "id",
                "author_id",
                "title",
                "status",
                "created_at_ms",
                "published_at_ms",
                "updated_at_ms",
            ],
            rows,
        )
        .await
    }

    /// Tags as (video, tag), stored as given.
    pub async fn video_tags(&self, tags: &[(Id, String)]) -> Result<()> {
        let rows = tags
            .iter()
            .map(|(video, tag)| vec![Value::Int(video.as_i64()), Value::Text(tag.clone())])
            .collect();
        insert(self.store, "video_tags", &["video_id", "tag"], rows).await
    }

    /// Renditions as (video, name, height, bandwidth, spec JSON, created at); the JSON is
    /// opaque here, as in [`crate::RenditionRow`].
    pub async fn renditions(&self, rows: &[(Id, String, i32, i64, String, i64)]) -> Result<()> {
        let rows = rows
            .iter()
            .map(|(video, name, height, bandwidth, spec, at)| {
                vec![
                    Value::Int(video.as_i64()),
                    Value::Text(name.clone()),
                    Value::Int32(*height),
                    Value::Int(*bandwidth),
                    Value::Text(spec.clone()),
                    Value::Int(*at),
                ]
            })
            .collect();
        insert(
            self.store,
            "video_renditions",
            &["video_id", "name", "height", "bandwidth", "spec_json", "created_at_ms"],
            rows,
        )
        .await
    }

    /// Activity rows as (user, last seen), not stale.
    pub async fn activity(&self, seen: &[(Id, i64)]) -> Result<()> {
        let rows = seen
            .iter()
            .map(|&(user, at)| vec![Value::Int(user.as_i64()), Value::Int(at), Value::Bool(false)])
            .collect();
        insert(self.store, "user_activity", &["user_id", "last_active_ms", "stale"], rows).await
    }

    /// Drops the secondary indexes of `tables` (not those backing a primary key or a unique
    /// constraint) and returns their definitions for [`Bulk::create_indexes`]: a large load
    /// then sorts each index once instead of updating it row by row.
    pub async fn drop_indexes(&self, tables: &[&str]) -> Result<Vec<String>> {
        let mut definitions = Vec::new();
        for table in tables {
            let found: Vec<(String, String)> = with_pool!(self.store, |pool| {
                let list = match self.store.backend() {
                    crate::Backend::Sqlite => {
                        "SELECT name, sql FROM sqlite_master \
                         WHERE type = 'index' AND tbl_name = $1 AND sql IS NOT NULL"
                    }
                    crate::Backend::Postgres => {
                        "SELECT indexname, indexdef FROM pg_indexes i WHERE tablename = $1 \
                         AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"
                    }
                };
                sqlx::query_as(list).bind(*table).fetch_all(pool).await
            })
            .map_err(db)?;
            for (name, definition) in found {
                let statement = format!("DROP INDEX {name}");
                with_pool!(self.store, |pool| sqlx::query(&statement)
                    .execute(pool)
                    .await
                    .map(drop))
                .map_err(db)?;
                definitions.push(definition);
            }
        }
        Ok(definitions)
    }

    /// Creates the indexes [`Bulk::drop_indexes`] dropped.
    pub async fn create_indexes(&self, definitions: &[String]) -> Result<()> {
        for definition in definitions {
            with_pool!(self.store, |pool| {
                sqlx::query(definition).execute(pool).await.map(drop)
            })
            .map_err(db)?;
        }
        Ok(())
    }
}
