//! The following feed's tables (F6.5): `user_activity` (when users were last seen, which
//! decides who gets pushes) and `feed_inbox` (pushed entries), plus the reads the hybrid
//! feed merges: a user's inbox page, the celebrities they follow and those creators'
//! outboxes (their published videos). Pages are newest first by (`at_ms`, video id), where
//! `at_ms` is the video's `published_at_ms` in both sources, so a video pushed and pulled
//! has the same key twice.

use quicktok_core::Id;

use crate::error::{Result, db};
use crate::read_conns::{all, one, with_read};
use crate::store::{MetaStore, with_pool};

/// One feed entry: a video, its author and its place in the feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FeedItem {
    pub video_id: Id,
    pub author_id: Id,
    /// The video's `published_at_ms`.
    pub at_ms: i64,
}

/// A feed position: entries strictly older than (`at_ms`, `video_id`) come after it.
pub type FeedPosition = (i64, Id);

/// One row of a user's inbox, for [`Feed::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboxRow {
    pub user_id: Id,
    pub item: FeedItem,
}

/// What [`Feed::activity`] knows of a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Activity {
    pub last_active_ms: i64,
    /// The inbox may miss entries (the user came back after being inactive, or was never
    /// rebuilt): the next feed read rebuilds it first.
    pub stale: bool,
}

// A row moved back into activity from before `$3` (or a new row) is stale: pushes skipped it.
const TOUCH: &str = "INSERT INTO user_activity (user_id, last_active_ms, stale) \
     SELECT $1, $2, TRUE WHERE EXISTS (SELECT 1 FROM users WHERE id = $1) \
     ON CONFLICT (user_id) DO UPDATE SET last_active_ms = excluded.last_active_ms, \
     stale = CASE WHEN user_activity.last_active_ms < $3 THEN TRUE ELSE user_activity.stale END";
const MARK_FRESH: &str = "INSERT INTO user_activity (user_id, last_active_ms, stale) \
     SELECT $1, $2, FALSE WHERE EXISTS (SELECT 1 FROM users WHERE id = $1) \
     ON CONFLICT (user_id) DO UPDATE SET last_active_ms = excluded.last_active_ms, stale = FALSE";
const ACTIVITY: &str = "SELECT last_active_ms, stale FROM user_activity WHERE user_id = $1";
const ACTIVE_FOLLOWERS: &str = "SELECT f.id, f.follower_id FROM follows f \
     JOIN user_activity a ON a.user_id = f.follower_id \
     WHERE f.followee_id = $1 AND a.last_active_ms >= $2 AND f.id < $3 \
     ORDER BY f.id DESC LIMIT $4";
// Rows of authors no longer followed, or blocked either way, or of videos no longer public
// are skipped here, so a page is full whenever enough valid rows exist.
const INBOX_PAGE: &str = "SELECT i.video_id, i.author_id, i.at_ms FROM feed_inbox i \
     JOIN videos v ON v.id = i.video_id \
     WHERE i.user_id = $1 AND (i.at_ms, i.video_id) < ($2, $3) \
     AND v.status = 'published' AND NOT v.private AND v.kind = 'video' \
     AND EXISTS (SELECT 1 FROM follows f WHERE f.follower_id = $1 AND f.followee_id = i.author_id) \
     AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = $1 AND b.blocked_id = i.author_id) \
     AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = i.author_id AND b.blocked_id = $1) \
     ORDER BY i.at_ms DESC, i.video_id DESC LIMIT $4";
// The same page for a reader whose follows and blocks the caller already holds: only the
// covering index and the videos' visibility, no per-row graph probes; handed over as one
// row of `video:author:at` triples (the caller restores the order). A macro so the reader's
// start queries embed it with their own parameter numbers.
macro_rules! inbox_rows_sql {
    ($user:literal, $at:literal, $id:literal, $limit:literal) => {
        concat!(
            "SELECT string_agg(CAST(video_id AS TEXT) || ':' || ",
            "CAST(author_id AS TEXT) || ':' || CAST(at_ms AS TEXT), ',') FROM ( ",
            "SELECT i.video_id, i.author_id, i.at_ms FROM feed_inbox i ",
            "JOIN videos v ON v.id = i.video_id ",
            "WHERE i.user_id = ",
            $user,
            " AND (i.at_ms, i.video_id) < (",
            $at,
            ", ",
            $id,
            ") ",
            "AND v.status = 'published' AND NOT v.private AND v.kind = 'video' ",
            "ORDER BY i.at_ms DESC, i.video_id DESC LIMIT ",
            $limit,
            ") AS p"
        )
    };
}
const INBOX_ROWS: &str = inbox_rows_sql!("$1", "$2", "$3", "$4");
const RAW_INBOX: &str = "SELECT video_id, author_id, at_ms FROM feed_inbox WHERE user_id = $1 \
     ORDER BY at_ms DESC, video_id DESC LIMIT $2";
// One row of `video:author:at` triples, like [`INBOX_ROWS`]: outbox heads are read for every
// celebrity every few seconds, and rows handed over one by one cost more than the search.
const OUTBOX: &str = "SELECT string_agg(CAST(id AS TEXT) || ':' || CAST(author_id AS TEXT) \
     || ':' || CAST(published_at_ms AS TEXT), ',') FROM ( \
     SELECT id, author_id, published_at_ms FROM videos \
     WHERE author_id = $1 AND status = 'published' AND NOT private AND kind = 'video' \
     AND (published_at_ms, id) < ($2, $3) \
     ORDER BY published_at_ms DESC, id DESC LIMIT $4) AS o";
const CELEBRITIES: &str = "SELECT f.followee_id FROM follows f \
     JOIN counters c ON c.id = f.followee_id AND c.subject = 'user' AND c.metric = 'followers' \
     WHERE f.follower_id = $1 AND c.value >= $2 ORDER BY f.followee_id";
// Served by `counters_user_followers_idx` (a partial index over users' follower counts).
const CELEBRITY_IDS: &str = "SELECT id FROM counters \
     WHERE subject = 'user' AND metric = 'followers' AND value >= $1";
// Everything a feed read starts from, in one round trip and one row: whom the reader follows
// (their stored list, one short row: see `following_lists`; left out past `$5` bytes, which
// only a list longer than the caller wants can reach), the list's length, everyone on either
// side of a block with them, when they were last seen, and the first inbox page after
// ($2, $3), `$4` rows, as [`INBOX_ROWS`] reads it.
// The reader's own rows are joined to a one-row stand-in so each is looked up once and a
// missing one reads as NULLs.
const READER_START: &str = concat!(
    "SELECT CASE WHEN length(l.followees) <= $5 THEN l.followees END, ",
    "CAST(length(l.followees) AS BIGINT), ",
    "(SELECT string_agg(CAST(id AS TEXT), ',') FROM (SELECT blocked_id AS id FROM blocks ",
    "WHERE blocker_id = $1 UNION ALL SELECT blocker_id FROM blocks WHERE blocked_id = $1) AS b), ",
    "a.last_active_ms, a.stale, (",
    inbox_rows_sql!("$1", "$2", "$3", "$4"),
    ") FROM (SELECT 1 AS one) AS r ",
    "LEFT JOIN following_lists l ON l.user_id = $1 LEFT JOIN user_activity a ON a.user_id = $1"
);
// The same start for a reader whose graph the caller holds (cached): activity and inbox only.
const READER_INBOX: &str = concat!(
    "SELECT a.last_active_ms, a.stale, (",
    inbox_rows_sql!("$1", "$2", "$3", "$4"),
    ") FROM (SELECT 1 AS one) AS r LEFT JOIN user_activity a ON a.user_id = $1"
);
const FOLLOWEES: &str = "SELECT followee_id FROM follows WHERE follower_id = $1 \
     ORDER BY id DESC LIMIT $2";
const TRIM_EDGE: &str = "SELECT at_ms, video_id FROM feed_inbox WHERE user_id = $1 \
     ORDER BY at_ms DESC, video_id DESC LIMIT 1 OFFSET $2";
const TRIM: &str = "DELETE FROM feed_inbox WHERE user_id = $1 AND (at_ms, video_id) <= ($2, $3)";
const DELETE_AUTHOR: &str = "DELETE FROM feed_inbox WHERE user_id = $1 AND author_id = $2";
// The benchmark's baseline: the whole feed computed from the follow graph at read time.
const PURE_PULL: &str = "SELECT v.id FROM follows f JOIN videos v ON v.author_id = f.followee_id \
     WHERE f.follower_id = $1 AND v.status = 'published' AND NOT v.private AND v.kind = 'video' \
     ORDER BY v.id DESC LIMIT $2";

/// The most bytes one id takes in a stored followee list: 19 digits and a comma.
const MAX_LISTED_ID_BYTES: i64 = 20;

/// Rows per multi-row insert (4 bound values each, well under both backends' limits).
const PUSH_CHUNK: usize = 500;

type ItemRow = (i64, i64, i64);

fn item((video_id, author_id, at_ms): ItemRow) -> FeedItem {
    FeedItem { video_id: Id::from_i64(video_id), author_id: Id::from_i64(author_id), at_ms }
}

/// Where a page starts: after `before`, or at the very top.
fn bounds(before: Option<FeedPosition>) -> (i64, i64) {
    before.map_or((i64::MAX, i64::MAX), |(at, id)| (at, id.as_i64()))
}

/// A feed reader's side of the social graph, part of [`ReaderStart`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReaderGraph {
    /// Whom the reader follows, by id: all of them unless `truncated`, then the lowest ids
    /// or none (a stored list too long to be read for a capped answer is not read).
    pub followees: Vec<Id>,
    /// Users the reader blocked or was blocked by.
    pub blocked: Vec<Id>,
    /// The reader follows more creators than were read.
    pub truncated: bool,
}

/// What a feed read starts from, read in one query by [`Feed::reader_start`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReaderStart {
    /// The reader's graph when it was asked for.
    pub graph: Option<ReaderGraph>,
    /// When the reader was last seen, if ever (as [`Feed::activity`] answers).
    pub activity: Option<Activity>,
    /// The first inbox page, as [`Feed::inbox_rows`] answers.
    pub inbox: Vec<FeedItem>,
}

/// A reader's activity from its two nullable columns (no row: never seen).
fn activity(last_active: Option<i64>, stale: Option<bool>) -> Option<Activity> {
    last_active.map(|last_active_ms| Activity { last_active_ms, stale: stale.unwrap_or(true) })
}

/// A `string_agg` of `video:author:at` triples (`None`: no rows), newest first.
fn item_list(text: Option<&str>) -> Result<Vec<FeedItem>> {
    let mut items = text
        .filter(|t| !t.is_empty())
        .map(|t| t.split(',').map(item_triple).collect::<Result<Vec<_>>>())
        .transpose()?
        .unwrap_or_default();
    // `string_agg` keeps no order of its own.
    items.sort_unstable_by_key(|i| std::cmp::Reverse((i.at_ms, i.video_id)));
    Ok(items)
}

/// One `video:author:at` triple of [`INBOX_ROWS`].
fn item_triple(text: &str) -> Result<FeedItem> {
    let bad = || db(sqlx::Error::Decode(format!("inbox entry {text:?}").into()));
    let mut parts = text.trim().splitn(3, ':').map(str::parse::<i64>);
    match (parts.next(), parts.next(), parts.next()) {
        (Some(Ok(video)), Some(Ok(author)), Some(Ok(at))) => Ok(item((video, author, at))),
        _ => Err(bad()),
    }
}

/// Ids from a comma-separated list as `string_agg` writes it (`None`: no rows).
fn id_list(text: Option<&str>) -> Result<Vec<Id>> {
    let Some(text) = text.filter(|t| !t.is_empty()) else { return Ok(Vec::new()) };
    text.split(',')
        .map(|id| {
            id.trim()
                .parse::<i64>()
                .map(Id::from_i64)
                .map_err(|e| db(sqlx::Error::Decode(Box::new(e))))
        })
        .collect()
}

/// Repository for the following feed; get one from [`MetaStore::feed`].
#[derive(Debug, Clone, Copy)]
pub struct Feed<'a> {
    store: &'a MetaStore,
}

impl<'a> Feed<'a> {
    pub(crate) fn new(store: &'a MetaStore) -> Self {
        Feed { store }
    }

    /// Records that `user` was seen at `now_ms`. A user new to the table, or last seen
    /// before `inactive_before_ms`, is marked stale (see [`Activity::stale`]). Unknown users
    /// are ignored.
    pub async fn touch(&self, user: Id, now_ms: i64, inactive_before_ms: i64) -> Result<()> {
        with_pool!(self.store, |pool| {
            sqlx::query(TOUCH)
                .bind(user.as_i64())
                .bind(now_ms)
                .bind(inactive_before_ms)
                .execute(pool)
                .await
                .map(drop)
        })
        .map_err(db)
    }

    /// Records that `user` was seen at `now_ms` with a complete inbox (after a rebuild).
    pub async fn mark_fresh(&self, user: Id, now_ms: i64) -> Result<()> {
        with_pool!(self.store, |pool| {
            sqlx::query(MARK_FRESH).bind(user.as_i64()).bind(now_ms).execute(pool).await.map(drop)
        })
        .map_err(db)
    }

    /// When `user` was last seen, if ever.
    pub async fn activity(&self, user: Id) -> Result<Option<Activity>> {
        let row: Option<(i64, bool)> = with_pool!(self.store, |pool| {
            sqlx::query_as(ACTIVITY).bind(user.as_i64()).fetch_optional(pool).await
        })
        .map_err(db)?;
        Ok(row.map(|(last_active_ms, stale)| Activity { last_active_ms, stale }))
    }

    /// Followers of `author` seen at or after `active_since_ms`, newest follow first: at most
    /// `limit` of the follows with a link id below `before` (all when `None`), as (link id,
    /// follower). Page on with the last link id.
    pub async fn active_followers(
        &self,
        author: Id,
        active_since_ms: i64,
        before: Option<Id>,
        limit: u32,
    ) -> Result<Vec<(Id, Id)>> {
        let rows: Vec<(i64, i64)> = with_pool!(self.store, |pool| {
            sqlx::query_as(ACTIVE_FOLLOWERS)
                .bind(author.as_i64())
                .bind(active_since_ms)
                .bind(before.map_or(i64::MAX, Id::as_i64))
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
        })
        .map_err(db)?;
        Ok(rows.into_iter().map(|(l, f)| (Id::from_i64(l), Id::from_i64(f))).collect())
    }

    /// Inserts inbox rows in multi-row statements, one transaction; rows already there are
    /// skipped (a re-delivered publication inserts nothing twice). Returns the rows inserted.
    pub async fn push(&self, rows: &[InboxRow]) -> Result<u64> {
        if rows.is_empty() {
            return Ok(0);
        }
        let backend = self.store.backend();
        with_pool!(self.store, |pool| {
            async {
                let mut tx = pool.begin().await?;
                let mut inserted = 0;
                for chunk in rows.chunks(PUSH_CHUNK) {
                    let values = crate::store::values_placeholders(backend, chunk.len(), 4);
                    let sql = format!(
                        "INSERT INTO feed_inbox (user_id, video_id, author_id, at_ms) \
                         VALUES {values} ON CONFLICT (user_id, video_id) DO NOTHING"
                    );
                    let mut query = sqlx::query(&sql);
                    for r in chunk {
                        query = query
                            .bind(r.user_id.as_i64())
                            .bind(r.item.video_id.as_i64())
                            .bind(r.item.author_id.as_i64())
                            .bind(r.item.at_ms);
                    }
                    inserted += query.execute(&mut *tx).await?.rows_affected();
                }
                tx.commit().await?;
                Ok::<_, sqlx::Error>(inserted)
            }
            .await
        })
        .map_err(db)
    }

    /// Keeps `user`'s newest `keep` inbox rows and deletes the older ones; returns how many.
    pub async fn trim(&self, user: Id, keep: u32) -> Result<u64> {
        let edge: Option<(i64, i64)> = with_pool!(self.store, |pool| {
            sqlx::query_as(TRIM_EDGE)
                .bind(user.as_i64())
                .bind(i64::from(keep))
                .fetch_optional(pool)
                .await
        })
        .map_err(db)?;
        let Some((at, video)) = edge else { return Ok(0) };
        with_pool!(self.store, |pool| {
            sqlx::query(TRIM)
                .bind(user.as_i64())
                .bind(at)
                .bind(video)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(db)
    }

    /// Deletes `author`'s rows from `user`'s inbox (an unfollow); returns how many.
    pub async fn delete_author(&self, user: Id, author: Id) -> Result<u64> {
        with_pool!(self.store, |pool| {
            sqlx::query(DELETE_AUTHOR)
                .bind(user.as_i64())
                .bind(author.as_i64())
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(db)
    }

    /// A page of `user`'s inbox as the feed shows it, newest first after `before`: only
    /// published, non-private videos of authors `user` still follows, with no block between
    /// them either way (rows failing that are skipped, not counted).
    pub async fn inbox_page(
        &self,
        user: Id,
        before: Option<FeedPosition>,
        limit: u32,
    ) -> Result<Vec<FeedItem>> {
        let (at, id) = bounds(before);
        let rows: Vec<ItemRow> = with_pool!(self.store, |pool| {
            sqlx::query_as(INBOX_PAGE)
                .bind(user.as_i64())
                .bind(at)
                .bind(id)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
        })
        .map_err(db)?;
        Ok(rows.into_iter().map(item).collect())
    }

    /// A page of `user`'s inbox newest first after `before`, keeping only rows of published,
    /// non-private videos: the caller filters follows and blocks itself (see
    /// [`Feed::reader_start`]), so rows it drops still count towards `limit`.
    pub async fn inbox_rows(
        &self,
        user: Id,
        before: Option<FeedPosition>,
        limit: u32,
    ) -> Result<Vec<FeedItem>> {
        self.item_page(INBOX_ROWS, user, before, limit).await
    }

    /// Everything a feed read of `user` starts from, in one query: with `graph` =
    /// `Some(max_followees)`, everyone they follow (at most that many, by id) and everyone on
    /// either side of a block with them (`None`: the caller holds those already); their
    /// activity; and the first `limit` rows of their inbox after `before` (as
    /// [`Feed::inbox_rows`]).
    pub async fn reader_start(
        &self,
        user: Id,
        graph: Option<u32>,
        before: Option<FeedPosition>,
        limit: u32,
    ) -> Result<ReaderStart> {
        let (at, id) = bounds(before);
        let Some(max_followees) = graph else {
            type Row = (Option<i64>, Option<bool>, Option<String>);
            let (last_active, stale, inbox): Row = with_read!(
                self.store,
                |c| one(c, READER_INBOX, &[&user.as_i64(), &at, &id, &i64::from(limit)], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .map(Option::unwrap_or_default),
                |pool| sqlx::query_as(READER_INBOX)
                    .bind(user.as_i64())
                    .bind(at)
                    .bind(id)
                    .bind(i64::from(limit))
                    .fetch_one(pool)
                    .await
            )?;
            return Ok(ReaderStart {
                graph: None,
                activity: activity(last_active, stale),
                inbox: item_list(inbox.as_deref())?,
            });
        };
        type Row = (
            Option<String>,
            Option<i64>,
            Option<String>,
            Option<i64>,
            Option<bool>,
            Option<String>,
        );
        let max_bytes = i64::from(max_followees) * MAX_LISTED_ID_BYTES;
        let (followees, list_bytes, blocked, last_active, stale, inbox): Row = with_read!(
            self.store,
            |c| one(
                c,
                READER_START,
                &[&user.as_i64(), &at, &id, &i64::from(limit), &max_bytes],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
            )
            .map(Option::unwrap_or_default),
            |pool| sqlx::query_as(READER_START)
                .bind(user.as_i64())
                .bind(at)
                .bind(id)
                .bind(i64::from(limit))
                .bind(max_bytes)
                .fetch_one(pool)
                .await
        )?;
        let mut graph = ReaderGraph {
            followees: id_list(followees.as_deref())?,
            blocked: id_list(blocked.as_deref())?,
            // A list left out was longer than `max_followees` ids can be.
            truncated: followees.is_none() && list_bytes.is_some(),
        };
        // Stored in order; sorting costs one pass when it holds and keeps the contract if not.
        graph.followees.sort_unstable();
        if graph.followees.len() > max_followees as usize {
            graph.followees.truncate(max_followees as usize);
            graph.truncated = true;
        }
        Ok(ReaderStart {
            graph: Some(graph),
            activity: activity(last_active, stale),
            inbox: item_list(inbox.as_deref())?,
        })
    }

    /// Every user with at least `min_followers` stored followers (the celebrities), in no
    /// particular order.
    pub async fn celebrities(&self, min_followers: u64) -> Result<Vec<Id>> {
        let min = i64::try_from(min_followers).unwrap_or(i64::MAX);
        let rows: Vec<i64> = with_pool!(self.store, |pool| {
            sqlx::query_scalar(CELEBRITY_IDS).bind(min).fetch_all(pool).await
        })
        .map_err(db)?;
        Ok(rows.into_iter().map(Id::from_i64).collect())
    }

    /// `user`'s newest `limit` inbox rows as stored, unfiltered (tests, operators).
    pub async fn raw_inbox(&self, user: Id, limit: u32) -> Result<Vec<FeedItem>> {
        let rows: Vec<ItemRow> = with_pool!(self.store, |pool| {
            sqlx::query_as(RAW_INBOX)
                .bind(user.as_i64())
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
        })
        .map_err(db)?;
        Ok(rows.into_iter().map(item).collect())
    }

    /// Runs `sql`, a page query of one `string_agg` row of `video:author:at` triples keyed by
    /// `key` (`$1`) after `before` (`$2`, `$3`), `limit` (`$4`) deep, newest first.
    async fn item_page(
        &self,
        sql: &'static str,
        key: Id,
        before: Option<FeedPosition>,
        limit: u32,
    ) -> Result<Vec<FeedItem>> {
        let (at, id) = bounds(before);
        let text: Option<String> = with_read!(
            self.store,
            |c| one(c, sql, &[&key.as_i64(), &at, &id, &i64::from(limit)], |r| r.get(0))
                .map(Option::flatten),
            |pool| sqlx::query_scalar(sql)
                .bind(key.as_i64())
                .bind(at)
                .bind(id)
                .bind(i64::from(limit))
                .fetch_one(pool)
                .await
        )?;
        item_list(text.as_deref())
    }

    /// `author`'s outbox: published, non-private videos, newest first after `before`.
    pub async fn outbox(
        &self,
        author: Id,
        before: Option<FeedPosition>,
        limit: u32,
    ) -> Result<Vec<FeedItem>> {
        self.item_page(OUTBOX, author, before, limit).await
    }

    /// The creators `user` follows whose stored follower count is at least `min_followers`
    /// (the celebrities, read by pull), by id.
    pub async fn celebrity_followees(&self, user: Id, min_followers: u64) -> Result<Vec<Id>> {
        let min = i64::try_from(min_followers).unwrap_or(i64::MAX);
        let rows: Vec<i64> = with_pool!(self.store, |pool| {
            sqlx::query_scalar(CELEBRITIES).bind(user.as_i64()).bind(min).fetch_all(pool).await
        })
        .map_err(db)?;
        Ok(rows.into_iter().map(Id::from_i64).collect())
    }

    /// Whom `user` follows, most recent follow first, at most `limit`.
    pub async fn followees(&self, user: Id, limit: u32) -> Result<Vec<Id>> {
        let rows: Vec<i64> = with_read!(
            self.store,
            |c| all(c, FOLLOWEES, &[&user.as_i64(), &i64::from(limit)], |r| r.get(0)),
            |pool| sqlx::query_scalar(FOLLOWEES)
                .bind(user.as_i64())
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
        )?;
        Ok(rows.into_iter().map(Id::from_i64).collect())
    }

    /// The pure-pull feed the hybrid is measured against: the newest `limit` published,
    /// non-private videos of everyone `user` follows, computed from the follow graph in one
    /// query (`follows JOIN videos ORDER BY id DESC`). Benchmarks only.
    pub async fn pure_pull(&self, user: Id, limit: u32) -> Result<Vec<Id>> {
        let rows: Vec<i64> = with_read!(
            self.store,
            |c| all(c, PURE_PULL, &[&user.as_i64(), &i64::from(limit)], |r| r.get(0)),
            |pool| sqlx::query_scalar(PURE_PULL)
                .bind(user.as_i64())
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
        )?;
        Ok(rows.into_iter().map(Id::from_i64).collect())
    }
}
