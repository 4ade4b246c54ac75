//! The `comments` table: comments on videos with one level of replies. A reply is listed
//! under its top-level comment (`parent_id`) and remembers the comment it answers
//! (`reply_to_id`); each top-level comment keeps its `reply_count` in the same transaction
//! as the replies it counts, so listing never counts rows.

use quicktok_core::Id;

use crate::error::{MetaError, Result, db, is_foreign_key_violation};
use crate::store::{MetaStore, with_pool};

/// A stored comment, with its author's username.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub id: Id,
    pub video_id: Id,
    pub author_id: Id,
    pub author_username: String,
    /// The top-level comment this reply is listed under; `None` for a top-level comment.
    pub parent_id: Option<Id>,
    /// The comment this one answers (the parent or another reply); `None` at top level.
    pub reply_to_id: Option<Id>,
    pub text: String,
    /// Replies under it (always 0 for a reply).
    pub reply_count: i64,
    pub created_at_ms: i64,
}

/// What [`Comments::create`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewComment {
    pub id: Id,
    pub video_id: Id,
    pub author_id: Id,
    /// A top-level comment of the same video (the caller resolves replies to replies).
    pub parent_id: Option<Id>,
    pub reply_to_id: Option<Id>,
    pub text: String,
    pub created_at_ms: i64,
}

#[derive(sqlx::FromRow)]
struct CommentRow {
    id: i64,
    video_id: i64,
    author_id: i64,
    username: String,
    parent_id: Option<i64>,
    reply_to_id: Option<i64>,
    text: String,
    reply_count: i64,
    created_at_ms: i64,
}

impl From<CommentRow> for Comment {
    fn from(r: CommentRow) -> Comment {
        Comment {
            id: Id::from_i64(r.id),
            video_id: Id::from_i64(r.video_id),
            author_id: Id::from_i64(r.author_id),
            author_username: r.username,
            parent_id: r.parent_id.map(Id::from_i64),
            reply_to_id: r.reply_to_id.map(Id::from_i64),
            text: r.text,
            reply_count: r.reply_count,
            created_at_ms: r.created_at_ms,
        }
    }
}

const COLUMNS: &str = "SELECT c.id, c.video_id, c.author_id, u.username, c.parent_id, \
     c.reply_to_id, c.text, c.reply_count, c.created_at_ms \
     FROM comments c JOIN users u ON u.id = c.author_id";

const INSERT: &str = "INSERT INTO comments \
     (id, video_id, author_id, parent_id, reply_to_id, text, created_at_ms) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";
const ADD_REPLY: &str = "UPDATE comments SET reply_count = reply_count + 1 \
     WHERE id = $1 AND video_id = $2 AND parent_id IS NULL";
const DELETE_REPLIES: &str = "DELETE FROM comments WHERE parent_id = $1";
const DELETE_ONE: &str = "DELETE FROM comments WHERE id = $1 RETURNING parent_id";
const DROP_REPLY: &str = "UPDATE comments SET reply_count = reply_count - 1 \
     WHERE id = $1 AND reply_count > 0";

// `$3` is the viewer: comments by authors they blocked are left out (NULL: nobody's are).
const HIDE_BLOCKED: &str =
    "NOT EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = $3 AND b.blocked_id = c.author_id)";

/// Repository for comments; get one from [`MetaStore::comments`].
#[derive(Debug, Clone, Copy)]
pub struct Comments<'a> {
    store: &'a MetaStore,
}

impl<'a> Comments<'a> {
    pub(crate) fn new(store: &'a MetaStore) -> Self {
        Comments { store }
    }

    /// Stores a comment and returns it. A reply raises its parent's `reply_count` in the
    /// same transaction; [`MetaError::NotFound`] if the parent is not a top-level comment
    /// of the same video, or the video or author does not exist.
    pub async fn create(&self, new: NewComment) -> Result<Comment> {
        let sql = format!("{COLUMNS} WHERE c.id = $1");
        let created = with_pool!(self.store, |pool| {
            async {
                let mut tx = pool.begin().await?;
                sqlx::query(INSERT)
                    .bind(new.id.as_i64())
                    .bind(new.video_id.as_i64())
                    .bind(new.author_id.as_i64())
                    .bind(new.parent_id.map(Id::as_i64))
                    .bind(new.reply_to_id.map(Id::as_i64))
                    .bind(&new.text)
                    .bind(new.created_at_ms)
                    .execute(&mut *tx)
                    .await?;
                if let Some(parent) = new.parent_id {
                    let raised = sqlx::query(ADD_REPLY)
                        .bind(parent.as_i64())
                        .bind(new.video_id.as_i64())
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if raised == 0 {
                        return Ok(None);
                    }
                }
                let row = sqlx::query_as::<_, CommentRow>(&sql)
                    .bind(new.id.as_i64())
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>(Some(row))
            }
            .await
        });
        match created {
            Ok(Some(row)) => Ok(row.into()),
            Ok(None) => Err(MetaError::NotFound),
            Err(e) if is_foreign_key_violation(&e) => Err(MetaError::NotFound),
            Err(e) => Err(db(e)),
        }
    }

    /// The comment with this id, if any.
    pub async fn by_id(&self, id: Id) -> Result<Option<Comment>> {
        let sql = format!("{COLUMNS} WHERE c.id = $1");
        let row = with_pool!(self.store, |pool| {
            sqlx::query_as::<_, CommentRow>(&sql).bind(id.as_i64()).fetch_optional(pool).await
        })
        .map_err(db)?;
        Ok(row.map(Comment::from))
    }

    /// Deletes a comment, with its replies when it is a top-level one, and lowers its
    /// parent's `reply_count` when it is a reply. Returns how many comments went (0 when
    /// there was no such comment).
    pub async fn delete(&self, id: Id) -> Result<u64> {
        with_pool!(self.store, |pool| {
            async {
                let mut tx = pool.begin().await?;
                // Writing first takes SQLite's write lock up front (a read-then-write
                // transaction could fail to upgrade without waiting).
                let replies = sqlx::query(DELETE_REPLIES)
                    .bind(id.as_i64())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                let deleted: Option<Option<i64>> = sqlx::query_scalar(DELETE_ONE)
                    .bind(id.as_i64())
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(parent) = deleted else {
                    return Ok(0);
                };
                if let Some(parent) = parent {
                    sqlx::query(DROP_REPLY).bind(parent).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok::<_, sqlx::Error>(replies + 1)
            }
            .await
        })
        .map_err(db)
    }

    /// A video's top-level comments, newest first: at most `limit` of those with an id
    /// below `before`. Comments by authors `viewer` blocked are left out.
    pub async fn top_level(
        &self,
        video: Id,
        viewer: Option<Id>,
        before: Option<Id>,
        limit: u32,
    ) -> Result<Vec<Comment>> {
        let cursor = if before.is_some() { "AND c.id < $4" } else { "" };
        let sql = format!(
            "{COLUMNS} WHERE c.video_id = $1 AND c.parent_id IS NULL AND {HIDE_BLOCKED} {cursor} \
             ORDER BY c.id DESC LIMIT $2"
        );
        self.list(&sql, video, viewer, before, limit).await
    }

    /// The replies under a top-level comment, oldest first (a conversation reads down): at
    /// most `limit` of those with an id above `after`. Replies by authors `viewer` blocked
    /// are left out.
    pub async fn replies(
        &self,
        parent: Id,
        viewer: Option<Id>,
        after: Option<Id>,
        limit: u32,
    ) -> Result<Vec<Comment>> {
        let cursor = if after.is_some() { "AND c.id > $4" } else { "" };
        let sql = format!(
            "{COLUMNS} WHERE c.parent_id = $1 AND {HIDE_BLOCKED} {cursor} \
             ORDER BY c.id LIMIT $2"
        );
        self.list(&sql, parent, viewer, after, limit).await
    }

    async fn list(
        &self,
        sql: &str,
        key: Id,
        viewer: Option<Id>,
        cursor: Option<Id>,
        limit: u32,
    ) -> Result<Vec<Comment>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let rows = with_pool!(self.store, |pool| {
            let mut query = sqlx::query_as::<_, CommentRow>(sql)
                .bind(key.as_i64())
                .bind(i64::from(limit))
                .bind(viewer.map(Id::as_i64));
            if let Some(cursor) = cursor {
                query = query.bind(cursor.as_i64());
            }
            query.fetch_all(pool).await
        })
        .map_err(db)?;
        Ok(rows.into_iter().map(Comment::from).collect())
    }
}
