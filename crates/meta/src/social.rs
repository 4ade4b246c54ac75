//! The social graph and interactions: `follows`, `blocks`, `likes`, `shares` and `reports`.
//! Comments have their own repository ([`Comments`](crate::Comments)).
//!
//! Relations and likes are one row per pair with the pair as primary key, so repeating an
//! action (or racing it) changes nothing; every mutating method says whether a row was
//! really inserted or deleted, which is what the caller's counters move on. Nothing here
//! counts rows: counts live in the counter service (see [`Counters`](crate::Counters)).

use quicktok_core::Id;

use crate::error::{MetaError, Result, db, is_foreign_key_violation};
use crate::read_conns::{all, with_read};
use crate::store::{MetaStore, with_pool};

/// Another user seen through a relation (a follower, a followed account), with the
/// relation's id (the keyset cursor of the list) and when it was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserLink {
    /// The relation's id: time-ordered, the cursor of follower / following lists.
    pub link_id: Id,
    pub user_id: Id,
    pub username: String,
    pub display_name: Option<String>,
    pub created_at_ms: i64,
}

#[derive(sqlx::FromRow)]
struct LinkRow {
    link_id: i64,
    user_id: i64,
    username: String,
    display_name: Option<String>,
    created_at_ms: i64,
}

impl From<LinkRow> for UserLink {
    fn from(r: LinkRow) -> UserLink {
        UserLink {
            link_id: Id::from_i64(r.link_id),
            user_id: Id::from_i64(r.user_id),
            username: r.username,
            display_name: r.display_name,
            created_at_ms: r.created_at_ms,
        }
    }
}

/// What [`Social::block`] changed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BlockOutcome {
    /// The block is new (`false`: it existed already).
    pub newly_blocked: bool,
    /// The follows the block removed, as (follower, followee): at most one each way.
    pub removed_follows: Vec<(Id, Id)>,
}

/// What a report points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportTarget {
    Video(Id),
    Comment(Id),
    User(Id),
}

impl ReportTarget {
    /// The stored kind (`video`, `comment`, `user`).
    pub fn kind(self) -> &'static str {
        match self {
            ReportTarget::Video(_) => "video",
            ReportTarget::Comment(_) => "comment",
            ReportTarget::User(_) => "user",
        }
    }

    /// The reported object's id.
    pub fn id(self) -> Id {
        match self {
            ReportTarget::Video(id) | ReportTarget::Comment(id) | ReportTarget::User(id) => id,
        }
    }
}

/// A stored report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub id: Id,
    pub reporter_id: Id,
    pub target: ReportTarget,
    pub reason: String,
    pub created_at_ms: i64,
}

#[derive(sqlx::FromRow)]
struct ReportRow {
    id: i64,
    reporter_id: i64,
    target_kind: String,
    target_id: i64,
    reason: String,
    created_at_ms: i64,
}

impl ReportRow {
    fn into_report(self) -> Result<Report> {
        let target_id = Id::from_i64(self.target_id);
        let target = match self.target_kind.as_str() {
            "video" => ReportTarget::Video(target_id),
            "comment" => ReportTarget::Comment(target_id),
            "user" => ReportTarget::User(target_id),
            other => {
                let e = format!("unknown report target kind {other:?}");
                return Err(db(sqlx::Error::Decode(e.into())));
            }
        };
        Ok(Report {
            id: Id::from_i64(self.id),
            reporter_id: Id::from_i64(self.reporter_id),
            target,
            reason: self.reason,
            created_at_ms: self.created_at_ms,
        })
    }
}

/// What [`Social::share`] records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewShare {
    pub id: Id,
    pub video_id: Id,
    pub user_id: Id,
    pub channel: Option<String>,
    pub created_at_ms: i64,
}

// The block check sits in the insert itself, so a follow never lands beside a block that
// committed before it. (SQLite needs the WHERE to parse INSERT ... SELECT ... ON CONFLICT.)
const FOLLOW: &str = "INSERT INTO follows (follower_id, followee_id, id, created_at_ms) \
     SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM blocks WHERE \
     (blocker_id = $1 AND blocked_id = $2) OR (blocker_id = $2 AND blocked_id = $1)) \
     ON CONFLICT (follower_id, followee_id) DO NOTHING";
const UNFOLLOW: &str = "DELETE FROM follows WHERE follower_id = $1 AND followee_id = $2";
// A stored followee list (`following_lists`, the format `Feed::reader_start` parses) built
// from a follower's `follows` rows, and written over the old one.
macro_rules! followee_list_sql {
    () => {
        "string_agg(CAST(followee_id AS TEXT), ',' ORDER BY followee_id)"
    };
}
macro_rules! upsert_following_list_sql {
    () => {
        " ON CONFLICT (user_id) DO UPDATE SET followees = excluded.followees"
    };
}
// A follower's list recomputed from their follows, in the transaction that changed them.
// One row per follower: cheap next to a feed read's cost.
const REFRESH_FOLLOWING: &str = concat!(
    "INSERT INTO following_lists (user_id, followees) SELECT $1, COALESCE(",
    followee_list_sql!(),
    ", '') FROM follows WHERE follower_id = $1",
    upsert_following_list_sql!()
);
/// The same for every follower with an id in `$1..=$2` who follows anyone (bulk loading,
/// and the repair's rebuild over every id).
pub(crate) const REFRESH_FOLLOWING_RANGE: &str = concat!(
    "INSERT INTO following_lists (user_id, followees) SELECT follower_id, ",
    followee_list_sql!(),
    " FROM follows WHERE follower_id BETWEEN $1 AND $2 GROUP BY follower_id",
    upsert_following_list_sql!()
);
const CLEAR_FOLLOWING_LISTS: &str = "DELETE FROM following_lists";
// PostgreSQL runs writers side by side, each recomputing a list from what it sees: the
// users whose lists a transaction rewrites are locked first (in id order, so two
// transactions cannot wait on each other), which orders their graph changes. `NO KEY`:
// follows referencing the user still only need their key share. SQLite has one writer.
const LOCK_USERS: &str = "SELECT id FROM users WHERE id IN ($1, $2) ORDER BY id FOR NO KEY UPDATE";
const IS_FOLLOWING: &str = "SELECT 1 FROM follows WHERE follower_id = $1 AND followee_id = $2";
const FOLLOWERS: &str = "SELECT f.id AS link_id, u.id AS user_id, u.username, u.display_name, \
     f.created_at_ms FROM follows f JOIN users u ON u.id = f.follower_id \
     WHERE f.followee_id = $1 ORDER BY f.id DESC LIMIT $2";
const FOLLOWERS_BEFORE: &str = "SELECT f.id AS link_id, u.id AS user_id, u.username, \
     u.display_name, f.created_at_ms FROM follows f JOIN users u ON u.id = f.follower_id \
     WHERE f.followee_id = $1 AND f.id < $3 ORDER BY f.id DESC LIMIT $2";
const FOLLOWING: &str = "SELECT f.id AS link_id, u.id AS user_id, u.username, u.display_name, \
     f.created_at_ms FROM follows f JOIN users u ON u.id = f.followee_id \
     WHERE f.follower_id = $1 ORDER BY f.id DESC LIMIT $2";
const FOLLOWING_BEFORE: &str = "SELECT f.id AS link_id, u.id AS user_id, u.username, \
     u.display_name, f.created_at_ms FROM follows f JOIN users u ON u.id = f.followee_id \
     WHERE f.follower_id = $1 AND f.id < $3 ORDER BY f.id DESC LIMIT $2";

const BLOCK: &str = "INSERT INTO blocks (blocker_id, blocked_id, created_at_ms) \
     VALUES ($1, $2, $3) ON CONFLICT (blocker_id, blocked_id) DO NOTHING";
const UNFOLLOW_BOTH_WAYS: &str = "DELETE FROM follows WHERE \
     (follower_id = $1 AND followee_id = $2) OR (follower_id = $2 AND followee_id = $1) \
     RETURNING follower_id, followee_id";
const UNBLOCK: &str = "DELETE FROM blocks WHERE blocker_id = $1 AND blocked_id = $2";
const IS_BLOCKED: &str = "SELECT 1 FROM blocks WHERE blocker_id = $1 AND blocked_id = $2";
const BLOCKED_BETWEEN: &str = "SELECT 1 FROM blocks WHERE \
     (blocker_id = $1 AND blocked_id = $2) OR (blocker_id = $2 AND blocked_id = $1) LIMIT 1";

const BLOCK_PARTNERS: &str = "SELECT blocked_id FROM blocks WHERE blocker_id = $1 \
     UNION SELECT blocker_id FROM blocks WHERE blocked_id = $1";

const LIKE: &str = "INSERT INTO likes (video_id, user_id, created_at_ms) VALUES ($1, $2, $3) \
     ON CONFLICT (video_id, user_id) DO NOTHING";
const UNLIKE: &str = "DELETE FROM likes WHERE video_id = $1 AND user_id = $2";
const HAS_LIKED: &str = "SELECT 1 FROM likes WHERE video_id = $1 AND user_id = $2";

const SHARE: &str = "INSERT INTO shares (id, video_id, user_id, channel, created_at_ms) \
     VALUES ($1, $2, $3, $4, $5)";

const REPORT: &str = "INSERT INTO reports \
     (id, reporter_id, target_kind, target_id, reason, created_at_ms) \
     VALUES ($1, $2, $3, $4, $5, $6)";
const REPORTS: &str = "SELECT id, reporter_id, target_kind, target_id, reason, created_at_ms \
     FROM reports ORDER BY id DESC LIMIT $1";
const REPORTS_BEFORE: &str = "SELECT id, reporter_id, target_kind, target_id, reason, \
     created_at_ms FROM reports WHERE id < $2 ORDER BY id DESC LIMIT $1";

/// Foreign-key violations (an unknown user or video) read as [`MetaError::NotFound`].
fn not_found_on_fk(e: sqlx::Error) -> MetaError {
    if is_foreign_key_violation(&e) { MetaError::NotFound } else { db(e) }
}

/// Runs `$body` in a transaction `$tx` that changes the follows of `$a` and `$b` (the same
/// user twice for one), locking them first on PostgreSQL (see [`LOCK_USERS`]). The body's
/// errors are `sqlx::Error`s; the value is the body's.
macro_rules! graph_tx {
    ($store:expr, $a:expr, $b:expr, |$tx:ident| $body:expr) => {{
        let postgres = $store.backend() == crate::Backend::Postgres;
        with_pool!($store, |pool| {
            async {
                let mut $tx = pool.begin().await?;
                if postgres {
                    sqlx::query(LOCK_USERS)
                        .bind($a.as_i64())
                        .bind($b.as_i64())
                        .fetch_all(&mut *$tx)
                        .await?;
                }
                let out = $body;
                $tx.commit().await?;
                Ok::<_, sqlx::Error>(out)
            }
            .await
        })
    }};
}

/// Recomputes `$user`'s stored followee list inside the transaction `$tx`.
macro_rules! refresh_following {
    ($tx:ident, $user:expr) => {
        sqlx::query(REFRESH_FOLLOWING).bind($user.as_i64()).execute(&mut *$tx).await?
    };
}

/// Repository for relations and interactions; get one from [`MetaStore::social`].
#[derive(Debug, Clone, Copy)]
pub struct Social<'a> {
    store: &'a MetaStore,
}

impl<'a> Social<'a> {
    pub(crate) fn new(store: &'a MetaStore) -> Self {
        Social { store }
    }

    /// Runs a statement with two ids bound and returns the rows it touched.
    async fn pair(&self, sql: &str, a: Id, b: Id) -> Result<u64> {
        with_pool!(self.store, |pool| {
            sqlx::query(sql)
                .bind(a.as_i64())
                .bind(b.as_i64())
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(db)
    }

    /// Whether a query with two ids bound returns a row.
    async fn exists(&self, sql: &str, a: Id, b: Id) -> Result<bool> {
        let found: Option<i32> = with_pool!(self.store, |pool| {
            sqlx::query_scalar(sql).bind(a.as_i64()).bind(b.as_i64()).fetch_optional(pool).await
        })
        .map_err(db)?;
        Ok(found.is_some())
    }

    /// `follower` follows `followee`; `true` when the follow is new, `false` when it
    /// existed already or a block between the two (either way) forbids it.
    /// [`MetaError::NotFound`] if either user does not exist. Following yourself is
    /// refused by the table (an error): callers check first.
    pub async fn follow(
        &self,
        follower: Id,
        followee: Id,
        link_id: Id,
        now_ms: i64,
    ) -> Result<bool> {
        let inserted = graph_tx!(self.store, follower, follower, |tx| {
            let inserted = sqlx::query(FOLLOW)
                .bind(follower.as_i64())
                .bind(followee.as_i64())
                .bind(link_id.as_i64())
                .bind(now_ms)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if inserted == 1 {
                refresh_following!(tx, follower);
            }
            inserted
        })
        .map_err(not_found_on_fk)?;
        Ok(inserted == 1)
    }

    /// `follower` stops following `followee`; `true` when there was a follow to remove.
    pub async fn unfollow(&self, follower: Id, followee: Id) -> Result<bool> {
        let removed = graph_tx!(self.store, follower, follower, |tx| {
            let removed = sqlx::query(UNFOLLOW)
                .bind(follower.as_i64())
                .bind(followee.as_i64())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if removed == 1 {
                refresh_following!(tx, follower);
            }
            removed
        })
        .map_err(db)?;
        Ok(removed == 1)
    }

    /// Whether `follower` follows `followee`.
    pub async fn is_following(&self, follower: Id, followee: Id) -> Result<bool> {
        self.exists(IS_FOLLOWING, follower, followee).await
    }

    /// Who follows `user`, newest follow first: at most `limit` of the follows with an id
    /// below `before` (all when `None`).
    pub async fn followers(
        &self,
        user: Id,
        before: Option<Id>,
        limit: u32,
    ) -> Result<Vec<UserLink>> {
        let sql = if before.is_some() { FOLLOWERS_BEFORE } else { FOLLOWERS };
        self.links(sql, user, before, limit).await
    }

    /// Whom `user` follows, newest follow first (paged as [`Social::followers`]).
    pub async fn following(
        &self,
        user: Id,
        before: Option<Id>,
        limit: u32,
    ) -> Result<Vec<UserLink>> {
        let sql = if before.is_some() { FOLLOWING_BEFORE } else { FOLLOWING };
        self.links(sql, user, before, limit).await
    }

    async fn links(
        &self,
        sql: &str,
        user: Id,
        before: Option<Id>,
        limit: u32,
    ) -> Result<Vec<UserLink>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let rows = with_pool!(self.store, |pool| {
            let mut query =
                sqlx::query_as::<_, LinkRow>(sql).bind(user.as_i64()).bind(i64::from(limit));
            if let Some(before) = before {
                query = query.bind(before.as_i64());
            }
            query.fetch_all(pool).await
        })
        .map_err(db)?;
        Ok(rows.into_iter().map(UserLink::from).collect())
    }

    /// `blocker` blocks `blocked`, removing the follows between them (both ways) in the same
    /// transaction. Blocking again changes nothing. [`MetaError::NotFound`] if either user
    /// does not exist.
    pub async fn block(&self, blocker: Id, blocked: Id, now_ms: i64) -> Result<BlockOutcome> {
        let done = graph_tx!(self.store, blocker, blocked, |tx| {
            let inserted = sqlx::query(BLOCK)
                .bind(blocker.as_i64())
                .bind(blocked.as_i64())
                .bind(now_ms)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let removed: Vec<(i64, i64)> = sqlx::query_as(UNFOLLOW_BOTH_WAYS)
                .bind(blocker.as_i64())
                .bind(blocked.as_i64())
                .fetch_all(&mut *tx)
                .await?;
            for &(follower, _) in &removed {
                refresh_following!(tx, Id::from_i64(follower));
            }
            (inserted == 1, removed)
        })
        .map_err(not_found_on_fk)?;
        let (newly_blocked, removed) = done;
        let mut removed_follows: Vec<(Id, Id)> =
            removed.into_iter().map(|(a, b)| (Id::from_i64(a), Id::from_i64(b))).collect();
        removed_follows.sort_unstable();
        Ok(BlockOutcome { newly_blocked, removed_follows })
    }

    /// Rebuilds every stored followee list from `follows` (the repair command; servers
    /// stopped). Returns how many lists it wrote.
    pub async fn rebuild_following_lists(&self) -> Result<u64> {
        with_pool!(self.store, |pool| {
            async {
                let mut tx = pool.begin().await?;
                sqlx::query(CLEAR_FOLLOWING_LISTS).execute(&mut *tx).await?;
                let written = sqlx::query(REFRESH_FOLLOWING_RANGE)
                    .bind(i64::MIN)
                    .bind(i64::MAX)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                Ok::<_, sqlx::Error>(written)
            }
            .await
        })
        .map_err(db)
    }

    /// `blocker` lifts a block; `true` when there was one. Follows it removed stay removed.
    pub async fn unblock(&self, blocker: Id, blocked: Id) -> Result<bool> {
        Ok(self.pair(UNBLOCK, blocker, blocked).await? == 1)
    }

    /// Whether `blocker` blocked `blocked` (one direction).
    pub async fn is_blocked(&self, blocker: Id, blocked: Id) -> Result<bool> {
        self.exists(IS_BLOCKED, blocker, blocked).await
    }

    /// Whether either user blocked the other.
    pub async fn blocked_between(&self, a: Id, b: Id) -> Result<bool> {
        self.exists(BLOCKED_BETWEEN, a, b).await
    }

    /// Everyone `user` blocked or was blocked by (what recommendations must leave out).
    pub async fn block_partners(&self, user: Id) -> Result<Vec<Id>> {
        let ids: Vec<i64> = with_read!(
            self.store,
            |c| all(c, BLOCK_PARTNERS, &[&user.as_i64()], |r| r.get(0)),
            |pool| sqlx::query_scalar(BLOCK_PARTNERS).bind(user.as_i64()).fetch_all(pool).await
        )?;
        let mut ids: Vec<Id> = ids.into_iter().map(Id::from_i64).collect();
        ids.sort_unstable();
        Ok(ids)
    }

    /// `user` likes `video`; `true` when the like is new. Concurrent calls for the same
    /// pair insert one row between them (the primary key), so exactly one sees `true`.
    /// [`MetaError::NotFound`] if the user or the video does not exist.
    pub async fn like(&self, user: Id, video: Id, now_ms: i64) -> Result<bool> {
        let inserted = with_pool!(self.store, |pool| {
            sqlx::query(LIKE)
                .bind(video.as_i64())
                .bind(user.as_i64())
                .bind(now_ms)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(not_found_on_fk)?;
        Ok(inserted == 1)
    }

    /// `user` takes a like back; `true` when there was one.
    pub async fn unlike(&self, user: Id, video: Id) -> Result<bool> {
        Ok(self.pair(UNLIKE, video, user).await? == 1)
    }

    /// Whether `user` likes `video`.
    pub async fn has_liked(&self, user: Id, video: Id) -> Result<bool> {
        self.exists(HAS_LIKED, video, user).await
    }

    /// Records a share. [`MetaError::NotFound`] if the user or the video does not exist.
    pub async fn share(&self, share: NewShare) -> Result<()> {
        with_pool!(self.store, |pool| {
            sqlx::query(SHARE)
                .bind(share.id.as_i64())
                .bind(share.video_id.as_i64())
                .bind(share.user_id.as_i64())
                .bind(share.channel.as_deref())
                .bind(share.created_at_ms)
                .execute(pool)
                .await
                .map(drop)
        })
        .map_err(not_found_on_fk)
    }

    /// Stores a report. [`MetaError::NotFound`] if the reporter does not exist (the target
    /// is the caller's to check: a report outlives what it points at).
    pub async fn report(&self, report: Report) -> Result<Report> {
        with_pool!(self.store, |pool| {
            sqlx::query(REPORT)
                .bind(report.id.as_i64())
                .bind(report.reporter_id.as_i64())
                .bind(report.target.kind())
                .bind(report.target.id().as_i64())
                .bind(&report.reason)
                .bind(report.created_at_ms)
                .execute(pool)
                .await
                .map(drop)
        })
        .map_err(not_found_on_fk)?;
        Ok(report)
    }

    /// Reports, newest first: at most `limit` of those with an id below `before`.
    pub async fn reports(&self, before: Option<Id>, limit: u32) -> Result<Vec<Report>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let rows = with_pool!(self.store, |pool| {
            let sql = if before.is_some() { REPORTS_BEFORE } else { REPORTS };
            let mut query = sqlx::query_as::<_, ReportRow>(sql).bind(i64::from(limit));
            if let Some(before) = before {
                query = query.bind(before.as_i64());
            }
            query.fetch_all(pool).await
        })
        .map_err(db)?;
        rows.into_iter().map(ReportRow::into_report).collect()
    }
}
