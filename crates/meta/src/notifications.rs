//! The `notifications` table: per-user inboxes filled by the notifications consumer, and the
//! `notification_unread` counter row kept in step with them (requests never count rows).

use quicktok_core::Id;

use crate::error::{Result, db};
use crate::store::{MetaStore, with_pool};

/// A notification to store, for [`Notifications::insert`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotification {
    pub recipient: Id,
    /// `like`, `comment`, `reply`, `follow`, `published` or `rejected` (free text here).
    pub kind: String,
    pub actor: Option<Id>,
    pub video_id: Option<Id>,
    pub comment_id: Option<Id>,
    /// A rejection's reason.
    pub text: Option<String>,
    /// What the row came from (e.g. `{topic}:{offset}:{recipient}`); a second insert with
    /// the same source is ignored.
    pub source: String,
    pub created_at_ms: i64,
}

/// A stored notification, with its actor's username when the actor still exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Increasing in insertion order: the inbox's cursor.
    pub id: Id,
    pub recipient: Id,
    pub kind: String,
    pub actor: Option<Id>,
    pub actor_username: Option<String>,
    pub video_id: Option<Id>,
    pub comment_id: Option<Id>,
    pub text: Option<String>,
    pub created_at_ms: i64,
    pub read: bool,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    recipient_id: i64,
    kind: String,
    actor_id: Option<i64>,
    actor_username: Option<String>,
    video_id: Option<i64>,
    comment_id: Option<i64>,
    text: Option<String>,
    created_at_ms: i64,
    read_at_ms: Option<i64>,
}

impl From<Row> for Notification {
    fn from(r: Row) -> Self {
        Notification {
            id: Id::from_i64(r.id),
            recipient: Id::from_i64(r.recipient_id),
            kind: r.kind,
            actor: r.actor_id.map(Id::from_i64),
            actor_username: r.actor_username,
            video_id: r.video_id.map(Id::from_i64),
            comment_id: r.comment_id.map(Id::from_i64),
            text: r.text,
            created_at_ms: r.created_at_ms,
            read: r.read_at_ms.is_some(),
        }
    }
}

// Rows for users that no longer exist are skipped rather than failing the whole batch.
const INSERT: &str = "INSERT INTO notifications \
     (recipient_id, kind, actor_id, video_id, comment_id, text, source, created_at_ms) \
     SELECT $1, $2, $3, $4, $5, $6, $7, $8 WHERE EXISTS (SELECT 1 FROM users WHERE id = $1) \
     ON CONFLICT (source) DO NOTHING RETURNING id";
const BUMP_UNREAD: &str = "INSERT INTO notification_unread (user_id, unread) VALUES ($1, $2) \
     ON CONFLICT (user_id) DO UPDATE SET unread = notification_unread.unread + excluded.unread";
const DROP_UNREAD: &str = "UPDATE notification_unread SET \
     unread = CASE WHEN unread > $2 THEN unread - $2 ELSE 0 END WHERE user_id = $1";
const SELECT: &str = "SELECT n.id, n.recipient_id, n.kind, n.actor_id, u.username AS actor_username, \
     n.video_id, n.comment_id, n.text, n.created_at_ms, n.read_at_ms \
     FROM notifications n LEFT JOIN users u ON u.id = n.actor_id";
const UNREAD: &str = "SELECT unread FROM notification_unread WHERE user_id = $1";
const MARK_READ: &str = "UPDATE notifications SET read_at_ms = $3 \
     WHERE recipient_id = $1 AND id <= $2 AND read_at_ms IS NULL";

/// A page of one recipient's notifications, newest first, strictly before an id.
fn page_sql() -> String {
    format!("{SELECT} WHERE n.recipient_id = $1 AND n.id < $2 ORDER BY n.id DESC LIMIT $3")
}

/// Repository for notification inboxes; get one from [`MetaStore::notifications`].
#[derive(Debug, Clone, Copy)]
pub struct Notifications<'a> {
    store: &'a MetaStore,
}

impl<'a> Notifications<'a> {
    pub(crate) fn new(store: &'a MetaStore) -> Self {
        Notifications { store }
    }

    /// Stores a batch in one transaction and returns the rows really inserted (a repeated
    /// `source`, or an unknown recipient, inserts nothing). Each recipient's unread count
    /// grows by its inserted rows in the same transaction.
    pub async fn insert(&self, batch: &[NewNotification]) -> Result<Vec<Notification>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let inserted: Vec<(i64, &NewNotification)> = with_pool!(self.store, |pool| {
            async {
                let mut tx = pool.begin().await?;
                let mut inserted = Vec::new();
                for n in batch {
                    let id: Option<i64> = sqlx::query_scalar(INSERT)
                        .bind(n.recipient.as_i64())
                        .bind(&n.kind)
                        .bind(n.actor.map(Id::as_i64))
                        .bind(n.video_id.map(Id::as_i64))
                        .bind(n.comment_id.map(Id::as_i64))
                        .bind(&n.text)
                        .bind(&n.source)
                        .bind(n.created_at_ms)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if let Some(id) = id {
                        inserted.push((id, n));
                    }
                }
                let mut per_user = std::collections::BTreeMap::<i64, i64>::new();
                for (_, n) in &inserted {
                    *per_user.entry(n.recipient.as_i64()).or_default() += 1;
                }
                // Key order: concurrent batches lock counter rows in the same order.
                for (user, added) in per_user {
                    sqlx::query(BUMP_UNREAD).bind(user).bind(added).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok::<_, sqlx::Error>(inserted)
            }
            .await
        })
        .map_err(db)?;
        if inserted.is_empty() {
            return Ok(Vec::new());
        }
        // Read back with the actors' usernames (what live delivery sends).
        let ids: Vec<i64> = inserted.iter().map(|(id, _)| *id).collect();
        let mut rows = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(100) {
            let list = chunk.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
            let sql = format!("{SELECT} WHERE n.id IN ({list}) ORDER BY n.id");
            let found: Vec<Row> =
                with_pool!(self.store, |pool| { sqlx::query_as(&sql).fetch_all(pool).await })
                    .map_err(db)?;
            rows.extend(found.into_iter().map(Notification::from));
        }
        Ok(rows)
    }

    /// `recipient`'s notifications, newest first, strictly before `before` when given.
    pub async fn page(
        &self,
        recipient: Id,
        before: Option<Id>,
        limit: u32,
    ) -> Result<Vec<Notification>> {
        let sql = page_sql();
        let before = before.map_or(i64::MAX, Id::as_i64);
        let rows: Vec<Row> = with_pool!(self.store, |pool| {
            sqlx::query_as(&sql)
                .bind(recipient.as_i64())
                .bind(before)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
        })
        .map_err(db)?;
        Ok(rows.into_iter().map(Notification::from).collect())
    }

    /// A page of `recipient`'s notifications (as [`Notifications::page`]) and the unread
    /// count, read from one snapshot: a notification stored meanwhile is in both or in
    /// neither (SQLite's read transaction is a snapshot; PostgreSQL needs REPEATABLE READ).
    pub async fn inbox(
        &self,
        recipient: Id,
        before: Option<Id>,
        limit: u32,
    ) -> Result<(Vec<Notification>, u64)> {
        let sql = page_sql();
        let before = before.map_or(i64::MAX, Id::as_i64);
        let postgres = self.store.backend() == crate::store::Backend::Postgres;
        let (rows, unread): (Vec<Row>, Option<i64>) = with_pool!(self.store, |pool| {
            async {
                let mut tx = pool.begin().await?;
                if postgres {
                    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                        .execute(&mut *tx)
                        .await?;
                }
                let rows = sqlx::query_as(&sql)
                    .bind(recipient.as_i64())
                    .bind(before)
                    .bind(i64::from(limit))
                    .fetch_all(&mut *tx)
                    .await?;
                let unread = sqlx::query_scalar(UNREAD)
                    .bind(recipient.as_i64())
                    .fetch_optional(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>((rows, unread))
            }
            .await
        })
        .map_err(db)?;
        let unread = unread.map_or(0, |n| u64::try_from(n).unwrap_or(0));
        Ok((rows.into_iter().map(Notification::from).collect(), unread))
    }

    /// How many of `recipient`'s notifications are unread (one row read, nothing counted).
    pub async fn unread(&self, recipient: Id) -> Result<u64> {
        let n: Option<i64> = with_pool!(self.store, |pool| {
            sqlx::query_scalar(UNREAD).bind(recipient.as_i64()).fetch_optional(pool).await
        })
        .map_err(db)?;
        Ok(n.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
    }

    /// Marks `recipient`'s notifications up to and including `up_to` read at `now_ms`;
    /// returns how many were unread. The unread count drops in the same transaction.
    pub async fn mark_read(&self, recipient: Id, up_to: Id, now_ms: i64) -> Result<u64> {
        with_pool!(self.store, |pool| {
            async {
                let mut tx = pool.begin().await?;
                let marked = sqlx::query(MARK_READ)
                    .bind(recipient.as_i64())
                    .bind(up_to.as_i64())
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if marked > 0 {
                    sqlx::query(DROP_UNREAD)
                        .bind(recipient.as_i64())
                        .bind(i64::try_from(marked).unwrap_or(i64::MAX))
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(marked)
            }
            .await
        })
        .map_err(db)
    }
}
