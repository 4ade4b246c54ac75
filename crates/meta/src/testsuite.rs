//! The repository test suite, run unchanged on SQLite and PostgreSQL, plus helpers that
//! give other crates' tests a fresh, isolated store (feature `testsuite`).
//!
//! Every suite function takes a [`TestDb`] (a freshly connected, empty store) and panics on
//! failure. [`meta_testsuite!`](crate::meta_testsuite) turns the whole list into
//! `#[tokio::test]`s for one way of making a `TestDb`, so both backends run the same list.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use quicktok_core::Id;
use sqlx::Connection;
use tempfile::TempDir;

use crate::{
    Activity, BlobActivityRow, ConsumeOutcome, FeedItem, Fingerprint, InboxRow, MetaConfig,
    MetaError, MetaStore, NewNotification, NewRefreshToken, NewUpload, NewUser, NewVideo,
    PipelineJobRow, PlayDelta, ReaderStart, RenditionRow, Result, StateKind, StateRow, TokenOwner,
    UploadUsage, User, Video, VideoBlob, VideoKind, VideoStatus,
};

/// The environment variable naming a PostgreSQL database the tests may create schemas in.
pub const POSTGRES_URL_ENV: &str = "QUICKTOK_TEST_POSTGRES_URL";

/// A freshly migrated, empty store that cleans up after itself: a temporary directory for
/// SQLite, a schema of its own (dropped on drop) for PostgreSQL. Derefs to [`MetaStore`].
pub struct TestDb {
    store: MetaStore,
    config: MetaConfig,
    data_dir: PathBuf,
    _dir: TempDir,
    _pg_schema: Option<PgSchema>,
}

struct PgSchema {
    admin_url: String,
    name: String,
}

impl std::fmt::Debug for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDb").field("store", &self.store).field("config", &self.config).finish()
    }
}

impl TestDb {
    /// The store.
    pub fn store(&self) -> &MetaStore {
        &self.store
    }

    /// The configuration the store was opened with (for opening it again).
    pub fn config(&self) -> &MetaConfig {
        &self.config
    }

    /// The data directory passed to [`MetaStore::connect`].
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Opens a second, independent store on the same database (migrations run again).
    pub async fn reconnect(&self) -> Result<MetaStore> {
        MetaStore::connect(&self.config, &self.data_dir).await
    }
}

impl Deref for TestDb {
    type Target = MetaStore;
    fn deref(&self) -> &MetaStore {
        &self.store
    }
}

// Dropping the schema on drop (also when a test panics) keeps the shared database clean.
impl Drop for PgSchema {
    fn drop(&mut self) {
        let admin_url = std::mem::take(&mut self.admin_url);
        let name = std::mem::take(&mut self.name);
        // Drop may run inside a runtime (possibly a current-thread one, possibly during a
        // panic), where we cannot block on a future: do the cleanup on a thread with its
        // own runtime and wait for it.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin_url).await?;
                sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                    .execute(&mut conn)
                    .await?;
                conn.close().await?;
                Ok::<_, sqlx::Error>(())
            })?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        });
        match cleanup.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: could not drop test schema: {e}"),
            Err(_) => eprintln!("warning: test schema cleanup panicked"),
        }
    }
}

/// A store on a new SQLite file in a temporary directory (deleted on drop).
pub async fn fresh_sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("create temp dir");
    let data_dir = dir.path().to_path_buf();
    // Empty URL: exercises the default "meta.db in the data dir" path.
    let config = MetaConfig::default();
    let store = MetaStore::connect(&config, &data_dir).await.expect("connect to sqlite");
    TestDb { store, config, data_dir, _dir: dir, _pg_schema: None }
}

/// A store in a new, uniquely named schema of the PostgreSQL database at `url` (the schema
/// is dropped when the `TestDb` is). Panics if the database cannot be reached.
pub async fn fresh_postgres(url: &str) -> TestDb {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    // Unique across the processes nextest runs in parallel and the tests within one.
    let name = format!(
        "qt_test_{}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000_000,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let mut admin = sqlx::PgConnection::connect(url).await.expect("connect to test postgres");
    sqlx::query(&format!("CREATE SCHEMA {name}")).execute(&mut admin).await.expect("create schema");
    admin.close().await.expect("close admin connection");

    // Every pooled connection starts with the schema as its search_path, so the tables and
    // sqlx's migration table are created in, and found in, that schema only.
    let separator = if url.contains('?') { '&' } else { '?' };
    let config = MetaConfig {
        url: format!("{url}{separator}options=-c%20search_path%3D{name}"),
        max_connections: 8,
        ..MetaConfig::default()
    };
    // From here on the guard drops the schema, even if connecting panics.
    let pg_schema = PgSchema { admin_url: url.to_owned(), name };
    let dir = tempfile::tempdir().expect("create temp dir");
    let data_dir = dir.path().to_path_buf();
    let store = MetaStore::connect(&config, &data_dir).await.expect("connect to postgres");
    TestDb { store, config, data_dir, _dir: dir, _pg_schema: Some(pg_schema) }
}

/// [`fresh_postgres`] on the database named by `QUICKTOK_TEST_POSTGRES_URL`, or `None`
/// (after printing `skipped: no postgres`) when it is not set.
pub async fn fresh_postgres_from_env() -> Option<TestDb> {
    match std::env::var(POSTGRES_URL_ENV) {
        Ok(url) if !url.trim().is_empty() => Some(fresh_postgres(url.trim()).await),
        _ => {
            println!("skipped: no postgres");
            None
        }
    }
}

/// Generates one `#[tokio::test]` per suite function. `$fresh` is an async function
/// returning `Option<TestDb>`; `None` skips the test (it returns early and passes).
///
/// ```ignore
/// async fn fresh() -> Option<quicktok_meta::testsuite::TestDb> {
///     Some(quicktok_meta::testsuite::fresh_sqlite().await)
/// }
/// quicktok_meta::meta_testsuite!(fresh);
/// ```
#[macro_export]
macro_rules! meta_testsuite {
    ($fresh:path) => {
        $crate::meta_testsuite!(@each $fresh;
            users_create_and_get,
            notifications_insert_is_idempotent_and_counts_unread,
            notifications_pages_newest_first_and_mark_read,
            users_duplicate_username_conflicts,
            users_duplicate_id_conflicts,
            users_set_display_name,
            ids_use_the_full_64_bits,
            refresh_consume_valid_once,
            refresh_reuse_revokes_family,
            refresh_expired,
            refresh_not_found,
            refresh_insert_conflict_and_unknown_user,
            refresh_revoke_family,
            refresh_owner,
            refresh_revoke_all_for_user,
            refresh_delete_expired,
            refresh_concurrent_consume_has_one_winner,
            videos_create_and_get_with_tags,
            videos_duplicate_id_conflicts,
            videos_unknown_author_not_found,
            videos_status_transitions_set_published_once,
            videos_set_media_info,
            videos_set_tags_replaces,
            videos_cover_candidates_replace_and_batch,
            videos_by_ids_returns_what_exists,
            videos_set_details_replaces_text_and_tags,
            videos_by_author_paginates_newest_first,
            videos_published_by_tag_only_published,
            videos_every_status_round_trips,
            videos_archive_round_trip,
            videos_set_cover_round_trip,
            videos_latest_published_pages_newest_first,
            videos_private_ones_stay_out_of_public_listings,
            stories_kind_round_trips_and_expiry_is_fixed_at_publication,
            stories_stay_out_of_public_listings,
            stories_followed_row_respects_progress_expiry_blocks_and_order,
            stories_live_of_author_in_watch_order,
            stories_progress_is_monotonic_and_per_viewer,
            video_blobs_attach_list_detach,
            plays_record_increments_across_batches_and_hours,
            plays_last_play_only_moves_forward,
            plays_concurrent_batches_all_count,
            plays_prune_drops_old_hours,
            plays_tiering_activity_windows_and_flags,
            plays_record_adds_to_view_count,
            renditions_put_replaces_and_lists_by_height,
            renditions_unknown_video_and_cascade,
            renditions_and_users_of_a_page_in_one_read,
            fingerprints_round_trip_every_bit,
            fingerprints_put_replaces_and_pages_by_id,
            fingerprints_by_content_hash_delete_and_cascade,
            fingerprints_malformed_frame_hashes_are_errors,
            content_claims_first_holder_wins_until_released,
            content_claims_concurrent_claims_have_one_winner,
            uploads_create_and_get,
            uploads_create_conflicts_and_unknown_refs,
            uploads_set_offset_is_compare_and_set,
            uploads_complete_moves_video_to_processing,
            uploads_delete_removes_the_uploading_video,
            uploads_expired_and_owner_usage,
            pipeline_jobs_insert_is_idempotent,
            pipeline_jobs_claim_by_priority_then_id,
            pipeline_jobs_claim_skips_not_due_and_leased,
            pipeline_jobs_expired_lease_is_reclaimable,
            pipeline_jobs_save_and_renew_are_compare_and_set,
            pipeline_jobs_concurrent_claims_never_share_a_job,
            pipeline_jobs_resolve_review_is_compare_and_set,
            pipeline_jobs_list_by_status_oldest_first,
            social_follows_are_idempotent_and_listed_newest_first,
            social_block_removes_follows_and_forbids_new_ones,
            social_likes_are_idempotent_under_concurrency,
            social_following_lists_stay_exact_under_concurrent_changes,
            social_shares_and_reports,
            comments_replies_counts_and_delete,
            comments_of_blocked_authors_are_hidden_from_the_blocker,
            counters_add_get_and_rebuild,
            recommend_state_upserts_pages_and_prunes,
            feed_inbox_push_is_idempotent_and_pages_newest_first,
            feed_inbox_page_skips_hidden_unfollowed_and_blocked,
            feed_trim_and_delete_by_author,
            feed_activity_and_active_follower_paging,
            feed_outboxes_celebrities_and_pure_pull,
            feed_reader_start_inbox_rows_and_celebrity_ids,
            ping,
            migrations_are_idempotent,
        );
    };
    (@each $fresh:path; $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(db) = $fresh().await else { return };
                $crate::testsuite::$name(&db).await;
            }
        )+
    };
}

// ---------------------------------------------------------------------------------------
// Fixtures.

const NOW: i64 = 1_750_000_000_000;
const HOUR: i64 = 3_600_000;

fn new_user(id: u64, username: &str) -> NewUser {
    NewUser {
        id: Id(id),
        username: username.to_owned(),
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$fake${id}"),
        created_at_ms: NOW,
    }
}

async fn user(db: &TestDb, id: u64, username: &str) -> User {
    db.users().create(new_user(id, username)).await.unwrap()
}

/// A distinct 32-byte "hash" per tag.
fn hash(tag: u8) -> Vec<u8> {
    let mut h = vec![0xA5; 32];
    h[0] = tag;
    h
}

async fn token(db: &TestDb, tag: u8, user_id: u64, family_id: u64, expires_at_ms: i64) {
    db.refresh_tokens()
        .insert(NewRefreshToken {
            token_hash: hash(tag),
            user_id: Id(user_id),
            family_id: Id(family_id),
            created_at_ms: NOW - HOUR,
            expires_at_ms,
        })
        .await
        .unwrap();
}

async fn consume(db: &TestDb, tag: u8, now_ms: i64) -> ConsumeOutcome {
    db.refresh_tokens().consume(&hash(tag), now_ms).await.unwrap()
}

// ---------------------------------------------------------------------------------------
// Users.

pub async fn users_create_and_get(db: &TestDb) {
    let created = user(db, 7, "alice").await;
    assert_eq!(created.id, Id(7));
    assert_eq!(created.username, "alice");
    assert_eq!(created.display_name, None);

    let by_id = db.users().by_id(Id(7)).await.unwrap().expect("by id");
    assert_eq!(by_id, created);
    let by_name = db.users().by_username("alice").await.unwrap().expect("by username");
    assert_eq!(by_name, created);
    // Lookups normalise too.
    assert_eq!(db.users().by_username("ALICE").await.unwrap(), Some(created));

    assert_eq!(db.users().by_id(Id(8)).await.unwrap(), None);
    assert_eq!(db.users().by_username("bob").await.unwrap(), None);
}

pub async fn users_duplicate_username_conflicts(db: &TestDb) {
    user(db, 1, "alice").await;
    let err = db.users().create(new_user(2, "alice")).await.unwrap_err();
    assert!(matches!(err, MetaError::Conflict { what: "username" }), "{err:?}");
    let err = db.users().create(new_user(3, "Alice")).await.unwrap_err();
    assert!(matches!(err, MetaError::Conflict { what: "username" }), "{err:?}");
    // The loser left nothing behind.
    assert_eq!(db.users().by_id(Id(2)).await.unwrap(), None);
    assert_eq!(db.users().by_id(Id(3)).await.unwrap(), None);
    // Non-ASCII names normalise the same way on both backends (lowercased in Rust).
    user(db, 4, "Zoë").await;
    let err = db.users().create(new_user(5, "ZOË")).await.unwrap_err();
    assert!(matches!(err, MetaError::Conflict { what: "username" }), "{err:?}");
    assert_eq!(db.users().by_username("zoë").await.unwrap().unwrap().id, Id(4));
}

pub async fn users_duplicate_id_conflicts(db: &TestDb) {
    user(db, 1, "alice").await;
    let err = db.users().create(new_user(1, "bob")).await.unwrap_err();
    assert!(matches!(err, MetaError::Conflict { what: "id" }), "{err:?}");
    assert_eq!(db.users().by_username("bob").await.unwrap(), None);
}

pub async fn users_set_display_name(db: &TestDb) {
    user(db, 1, "alice").await;
    db.users().set_display_name(Id(1), Some("Alice A.")).await.unwrap();
    let got = db.users().by_id(Id(1)).await.unwrap().unwrap();
    assert_eq!(got.display_name.as_deref(), Some("Alice A."));
    db.users().set_display_name(Id(1), None).await.unwrap();
    assert_eq!(db.users().by_id(Id(1)).await.unwrap().unwrap().display_name, None);
    let err = db.users().set_display_name(Id(2), Some("x")).await.unwrap_err();
    assert!(matches!(err, MetaError::NotFound), "{err:?}");
}

pub async fn ids_use_the_full_64_bits(db: &TestDb) {
    // Generated ids never set the sign bit, but storage must round-trip any u64.
    for (id, name) in [(i64::MAX as u64, "max"), (u64::MAX, "all-ones"), (1 << 63, "sign")] {
        user(db, id, name).await;
        let got = db.users().by_id(Id(id)).await.unwrap().expect(name);
        assert_eq!(got.id, Id(id));
    }
    let family = u64::MAX - 1;
    token(db, 1, u64::MAX, family, NOW + HOUR).await;
    assert_eq!(
        consume(db, 1, NOW).await,
        ConsumeOutcome::Valid { user_id: Id(u64::MAX), family_id: Id(family) }
    );
}

// ---------------------------------------------------------------------------------------
// Refresh tokens.

pub async fn refresh_consume_valid_once(db: &TestDb) {
    user(db, 1, "alice").await;
    token(db, 1, 1, 100, NOW + HOUR).await;
    assert_eq!(
        consume(db, 1, NOW).await,
        ConsumeOutcome::Valid { user_id: Id(1), family_id: Id(100) }
    );
    assert_eq!(
        consume(db, 1, NOW + 1).await,
        ConsumeOutcome::Reused { user_id: Id(1), family_id: Id(100) }
    );
}

pub async fn refresh_reuse_revokes_family(db: &TestDb) {
    user(db, 1, "alice").await;
    // Family 100: token 1 rotated into token 2. Family 200: another session of the same user.
    token(db, 1, 1, 100, NOW + HOUR).await;
    token(db, 2, 1, 100, NOW + HOUR).await;
    token(db, 3, 1, 200, NOW + HOUR).await;
    assert!(matches!(consume(db, 1, NOW).await, ConsumeOutcome::Valid { .. }));

    // The stolen copy of token 1 is presented: the family dies, including token 2.
    assert_eq!(
        consume(db, 1, NOW + 10).await,
        ConsumeOutcome::Reused { user_id: Id(1), family_id: Id(100) }
    );
    assert_eq!(consume(db, 2, NOW + 20).await, ConsumeOutcome::Revoked);
    // Once revoked, further replays report Revoked.
    assert_eq!(consume(db, 1, NOW + 30).await, ConsumeOutcome::Revoked);
    // Other sessions are untouched.
    assert_eq!(
        consume(db, 3, NOW + 40).await,
        ConsumeOutcome::Valid { user_id: Id(1), family_id: Id(200) }
    );
}

pub async fn refresh_expired(db: &TestDb) {
    user(db, 1, "alice").await;
    token(db, 1, 1, 100, NOW).await;
    // Expiry is exclusive: a token is live strictly before expires_at_ms.
    assert_eq!(consume(db, 1, NOW).await, ConsumeOutcome::Expired);
    // Presenting an expired token does not use it up.
    assert_eq!(consume(db, 1, NOW + HOUR).await, ConsumeOutcome::Expired);
    token(db, 2, 1, 100, NOW + 1).await;
    assert!(matches!(consume(db, 2, NOW).await, ConsumeOutcome::Valid { .. }));
}

pub async fn refresh_not_found(db: &TestDb) {
    assert_eq!(consume(db, 9, NOW).await, ConsumeOutcome::NotFound);
    assert_eq!(db.refresh_tokens().consume(&[], NOW).await.unwrap(), ConsumeOutcome::NotFound);
}

pub async fn refresh_insert_conflict_and_unknown_user(db: &TestDb) {
    user(db, 1, "alice").await;
    token(db, 1, 1, 100, NOW + HOUR).await;
    let again = NewRefreshToken {
        token_hash: hash(1),
        user_id: Id(1),
        family_id: Id(101),
        created_at_ms: NOW,
        expires_at_ms: NOW + HOUR,
    };
    let err = db.refresh_tokens().insert(again.clone()).await.unwrap_err();
    assert!(matches!(err, MetaError::Conflict { what: "token_hash" }), "{err:?}");
    let orphan = NewRefreshToken { token_hash: hash(2), user_id: Id(999), ..again };
    let err = db.refresh_tokens().insert(orphan).await.unwrap_err();
    assert!(matches!(err, MetaError::NotFound), "{err:?}");
}

pub async fn refresh_owner(db: &TestDb) {
    user(db, 1, "alice").await;
    token(db, 1, 1, 100, NOW + HOUR).await;
    let owner = db.refresh_tokens().owner(&hash(1)).await.unwrap();
    assert_eq!(owner, Some(TokenOwner { user_id: Id(1), family_id: Id(100) }));
    // Still answered once used.
    db.refresh_tokens().consume(&hash(1), NOW).await.unwrap();
    assert!(db.refresh_tokens().owner(&hash(1)).await.unwrap().is_some());
    assert_eq!(db.refresh_tokens().owner(&hash(9)).await.unwrap(), None);
}

pub async fn refresh_revoke_family(db: &TestDb) {
    user(db, 1, "alice").await;
    token(db, 1, 1, 100, NOW + HOUR).await;
    token(db, 2, 1, 100, NOW + HOUR).await;
    token(db, 3, 1, 200, NOW + HOUR).await;
    assert_eq!(db.refresh_tokens().revoke_family(Id(100), NOW).await.unwrap(), 2);
    // Already revoked tokens are not counted again.
    assert_eq!(db.refresh_tokens().revoke_family(Id(100), NOW + 1).await.unwrap(), 0);
    assert_eq!(db.refresh_tokens().revoke_family(Id(999), NOW).await.unwrap(), 0);
    assert_eq!(consume(db, 1, NOW).await, ConsumeOutcome::Revoked);
    assert_eq!(consume(db, 2, NOW).await, ConsumeOutcome::Revoked);
    assert!(matches!(consume(db, 3, NOW).await, ConsumeOutcome::Valid { .. }));
}

pub async fn refresh_revoke_all_for_user(db: &TestDb) {
    user(db, 1, "alice").await;
    user(db, 2, "bob").await;
    token(db, 1, 1, 100, NOW + HOUR).await;
    token(db, 2, 1, 100, NOW + HOUR).await;
    token(db, 3, 1, 200, NOW + HOUR).await;
    token(db, 4, 2, 300, NOW + HOUR).await;
    assert_eq!(db.refresh_tokens().revoke_all_for_user(Id(1), NOW).await.unwrap(), 3);
    assert_eq!(db.refresh_tokens().revoke_all_for_user(Id(1), NOW).await.unwrap(), 0);
    for tag in 1..=3 {
        assert_eq!(consume(db, tag, NOW).await, ConsumeOutcome::Revoked, "token {tag}");
    }
    assert_eq!(
        consume(db, 4, NOW).await,
        ConsumeOutcome::Valid { user_id: Id(2), family_id: Id(300) }
    );
}

pub async fn refresh_delete_expired(db: &TestDb) {
    user(db, 1, "alice").await;
    token(db, 1, 1, 100, NOW + 100).await;
    token(db, 2, 1, 100, NOW + 200).await;
    token(db, 3, 1, 100, NOW + 300).await;
    assert!(matches!(consume(db, 1, NOW).await, ConsumeOutcome::Valid { .. }));
    assert_eq!(db.refresh_tokens().delete_expired(NOW + 250).await.unwrap(), 2);
    assert_eq!(db.refresh_tokens().delete_expired(NOW + 250).await.unwrap(), 0);
    assert_eq!(consume(db, 1, NOW).await, ConsumeOutcome::NotFound);
    assert_eq!(consume(db, 2, NOW).await, ConsumeOutcome::NotFound);
    assert!(matches!(consume(db, 3, NOW).await, ConsumeOutcome::Valid { .. }));
}

pub async fn refresh_concurrent_consume_has_one_winner(db: &TestDb) {
    const TASKS: usize = 16;
    user(db, 1, "alice").await;
    token(db, 1, 1, 100, NOW + HOUR).await; // another session, never presented
    for round in 0..3u8 {
        // Each round uses a fresh family: the contested token and a sibling.
        let (tag, sibling) = (10 + round, 20 + round);
        let family = 1000 + u64::from(round);
        token(db, tag, 1, family, NOW + HOUR).await;
        token(db, sibling, 1, family, NOW + HOUR).await;
        let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let store = db.store().clone();
                let barrier = Arc::clone(&barrier);
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.refresh_tokens().consume(&hash(tag), NOW).await
                })
            })
            .collect();
        let mut valid = 0;
        for task in tasks {
            match task.await.unwrap().unwrap() {
                ConsumeOutcome::Valid { user_id, family_id } => {
                    assert_eq!((user_id, family_id), (Id(1), Id(family)));
                    valid += 1;
                }
                // Losers saw the token used (and revoked the family) or already revoked.
                ConsumeOutcome::Reused { .. } | ConsumeOutcome::Revoked => {}
                other => panic!("unexpected outcome {other:?}"),
            }
        }
        assert_eq!(valid, 1, "round {round}: exactly one consumer may win");
        // Someone lost, so the family is revoked, sibling included.
        assert_eq!(consume(db, tag, NOW).await, ConsumeOutcome::Revoked);
        assert_eq!(consume(db, sibling, NOW).await, ConsumeOutcome::Revoked);
    }
    // Other families are untouched.
    assert!(matches!(consume(db, 1, NOW).await, ConsumeOutcome::Valid { .. }));
}

// ---------------------------------------------------------------------------------------
// Videos.

fn new_video(id: u64, author_id: u64, tags: &[&str]) -> NewVideo {
    NewVideo {
        id: Id(id),
        author_id: Id(author_id),
        title: format!("video {id}"),
        description: format!("about video {id}"),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        created_at_ms: NOW,
    }
}

async fn video(db: &TestDb, id: u64, author_id: u64, tags: &[&str]) -> Video {
    db.videos().create(new_video(id, author_id, tags)).await.unwrap()
}

fn strings(tags: &[&str]) -> Vec<String> {
    tags.iter().map(|t| (*t).to_owned()).collect()
}

fn ids(videos: &[Video]) -> Vec<u64> {
    videos.iter().map(|v| v.id.0).collect()
}

pub async fn videos_create_and_get_with_tags(db: &TestDb) {
    user(db, 1, "alice").await;
    // Duplicates are dropped; tags come back sorted by bytes (uppercase before lowercase,
    // whatever the database's collation).
    let created = video(db, 10, 1, &["dance", "Zebra", "cats", "dance", "émoji"]).await;
    assert_eq!(created.id, Id(10));
    assert_eq!(created.author_id, Id(1));
    assert_eq!(created.title, "video 10");
    assert_eq!(created.description, "about video 10");
    assert_eq!(created.status, VideoStatus::Uploading);
    assert_eq!(created.reason, None);
    assert_eq!((created.duration_ms, created.width, created.height), (None, None, None));
    assert_eq!(created.tags, strings(&["Zebra", "cats", "dance", "émoji"]));
    assert_eq!((created.created_at_ms, created.updated_at_ms), (NOW, NOW));
    assert_eq!(created.published_at_ms, None);
    assert_eq!((created.cover_blob_id, created.view_count), (None, 0));

    let got = db.videos().by_id(Id(10)).await.unwrap().expect("by id");
    assert_eq!(got, created);

    // No tags and an empty description are fine.
    let bare = NewVideo { description: String::new(), ..new_video(11, 1, &[]) };
    let bare = db.videos().create(bare).await.unwrap();
    assert_eq!(db.videos().by_id(Id(11)).await.unwrap(), Some(bare.clone()));
    assert!(bare.tags.is_empty());
    assert_eq!(bare.description, "");

    assert_eq!(db.videos().by_id(Id(12)).await.unwrap(), None);
}

pub async fn videos_duplicate_id_conflicts(db: &TestDb) {
    user(db, 1, "alice").await;
    user(db, 2, "bob").await;
    let original = video(db, 10, 1, &["a"]).await;
    let err = db.videos().create(new_video(10, 2, &["b", "c"])).await.unwrap_err();
    assert!(matches!(err, MetaError::Conflict { what: "id" }), "{err:?}");
    // The loser's transaction left nothing behind: no tags were added to the original.
    assert_eq!(db.videos().by_id(Id(10)).await.unwrap(), Some(original));
    assert!(db.videos().published_by_tag("b", None, 10).await.unwrap().is_empty());
}

pub async fn videos_unknown_author_not_found(db: &TestDb) {
    let err = db.videos().create(new_video(10, 999, &["a", "b"])).await.unwrap_err();
    assert!(matches!(err, MetaError::NotFound), "{err:?}");
    assert_eq!(db.videos().by_id(Id(10)).await.unwrap(), None);
    // Nothing half-written blocks the id once the author exists.
    user(db, 999, "late").await;
    let created = video(db, 10, 999, &["a", "b"]).await;
    assert_eq!(created.tags, strings(&["a", "b"]));
}

pub async fn videos_status_transitions_set_published_once(db: &TestDb) {
    user(db, 1, "alice").await;
    video(db, 10, 1, &["t"]).await;
    let videos = db.videos();

    let v = videos.set_status(Id(10), VideoStatus::Processing, None, NOW + 1).await.unwrap();
    assert_eq!(v.status, VideoStatus::Processing);
    assert_eq!((v.published_at_ms, v.updated_at_ms), (None, NOW + 1));
    assert_eq!(v.tags, strings(&["t"]));

    let v = videos.set_status(Id(10), VideoStatus::Review, None, NOW + 2).await.unwrap();
    assert_eq!((v.status, v.published_at_ms), (VideoStatus::Review, None));

    let v = videos.set_status(Id(10), VideoStatus::Published, None, NOW + 3).await.unwrap();
    assert_eq!(v.status, VideoStatus::Published);
    assert_eq!((v.published_at_ms, v.updated_at_ms), (Some(NOW + 3), NOW + 3));
    assert_eq!(videos.by_id(Id(10)).await.unwrap(), Some(v.clone()));

    // Removal keeps the first publication time and records the reason.
    let v = videos.set_status(Id(10), VideoStatus::Removed, Some("copyright"), NOW + 4).await;
    let v = v.unwrap();
    assert_eq!(v.status, VideoStatus::Removed);
    assert_eq!(v.reason.as_deref(), Some("copyright"));
    assert_eq!((v.published_at_ms, v.updated_at_ms), (Some(NOW + 3), NOW + 4));

    // Republishing does not move published_at_ms; the reason is replaced (cleared).
    let v = videos.set_status(Id(10), VideoStatus::Published, None, NOW + 5).await.unwrap();
    assert_eq!(v.reason, None);
    assert_eq!((v.published_at_ms, v.updated_at_ms), (Some(NOW + 3), NOW + 5));
    assert_eq!(videos.by_id(Id(10)).await.unwrap(), Some(v));

    // Rejected before ever being published: no publication time.
    video(db, 11, 1, &[]).await;
    let v = videos.set_status(Id(11), VideoStatus::Rejected, Some("corrupt"), NOW + 6).await;
    let v = v.unwrap();
    assert_eq!((v.status, v.published_at_ms), (VideoStatus::Rejected, None));
    assert_eq!(v.reason.as_deref(), Some("corrupt"));

    let err = videos.set_status(Id(12), VideoStatus::Published, None, NOW).await.unwrap_err();
    assert!(matches!(err, MetaError::NotFound), "{err:?}");
    assert_eq!(videos.by_id(Id(12)).await.unwrap(), None);
}

pub async fn videos_set_media_info(db: &TestDb) {
    user(db, 1, "alice").await;
    let before = video(db, 10, 1, &["t"]).await;
    db.videos().set_media_info(Id(10), 15_250, 1080, 1920, NOW + 7).await.unwrap();
    let got = db.videos().by_id(Id(10)).await.unwrap().unwrap();
    assert_eq!((got.duration_ms, got.width, got.height), (Some(15_250), Some(1080), Some(1920)));
    assert_eq!(got.updated_at_ms, NOW + 7);
    // Nothing else changed.
    let expected = Video {
        duration_ms: Some(15_250),
        width: Some(1080),
        height: Some(1920),
        updated_at_ms: NOW + 7,
        ..before
    };
    assert_eq!(got, expected);
    // Extremes of the column types round-trip.
    db.videos().set_media_info(Id(10), i64::MAX, i32::MAX, i32::MAX, NOW + 8).await.unwrap();
    let got = db.videos().by_id(Id(10)).await.unwrap().unwrap();
    assert_eq!(
        (got.duration_ms, got.width, got.height),
        (Some(i64::MAX), Some(i32::MAX), Some(i32::MAX))
    );

    let err = db.videos().set_media_info(Id(11), 1, 1, 1, NOW).await.unwrap_err();
    assert!(matches!(err, MetaError::NotFound), "{err:?}");
}

pub async fn videos_set_details_replaces_text_and_tags(db: &TestDb) {
    user(db, 1, "alice").await;
    video(db, 10, 1, &["a", "b"]).await;
    let videos = db.videos();
    videos
        .set_details(Id(10), "新标题", "line\ntwo", &strings(&["z", "c", "z"]), NOW + 5)
        .await
        .unwrap();
    let got = videos.by_id(Id(10)).await.unwrap().unwrap();
    assert_eq!((got.title.as_str(), got.description.as_str()), ("新标题", "line\ntwo"));
    assert_eq!(got.tags, strings(&["c", "z"]));
    assert_eq!(got.updated_at_ms, NOW + 5);
    let err = videos.set_details(Id(12), "x", "", &[], NOW).await.unwrap_err();
    assert!(matches!(err, MetaError::NotFound), "{err:?}");
}

pub async fn videos_set_tags_replaces(db: &TestDb) {
    user(db, 1, "alice").await;
    video(db, 10, 1, &["a", "b"]).await;
    video(db, 11, 1, &["a", "b"]).await;
    let videos = db.videos();

    videos.set_tags(Id(10), &strings(&["c", "b", "c"]), NOW + 1).await.unwrap();
    let got = videos.by_id(Id(10)).await.unwrap().unwrap();
    assert_eq!(got.tags, strings(&["b", "c"]));
    assert_eq!(got.updated_at_ms, NOW + 1);
    // Other videos' tags are untouched.
    assert_eq!(videos.by_id(Id(11)).await.unwrap().unwrap().tags, strings(&["a", "b"]));

    videos.set_tags(Id(10), &[], NOW + 2).await.unwrap();
    assert!(videos.by_id(Id(10)).await.unwrap().unwrap().tags.is_empty());

    let err = videos.set_tags(Id(12), &strings(&["x"]), NOW).await.unwrap_err();
    assert!(matches!(err, MetaError::NotFound), "{err:?}");
    // The refused call left no orphan tag behind.
    videos.set_status(Id(11), VideoStatus::Published, None, NOW).await.unwrap();
    assert!(videos.published_by_tag("x", None, 10).await.unwrap().is_empty());
}

pub async fn videos_cover_candidates_replace_and_batch(db: &TestDb) {
    user(db, 1, "alice").await;
    video(db, 10, 1, &[]).await;
    video(db, 11, 1, &[]).await;
    let videos = db.videos();
    videos.set_cover_candidates(Id(10), &[Id(103), Id(101), Id(102)], NOW).await.unwrap();
    videos.set_cover_candidates(Id(11), &[Id(200)], NOW).await.unwrap();
    // Replacing keeps the new order and nothing of the old list.
    videos.set_cover_candidates(Id(10), &[Id(105), Id(104)], NOW + 1).await.unwrap();
    let got = videos.cover_candidates(&[Id(10), Id(11), Id(12)]).await.unwrap();
    assert_eq!(got.get(&Id(10)), Some(&vec![Id(105), Id(104)]));
    assert_eq!(got.get(&Id(11)), Some(&vec![Id(200)]));
    assert!(!got.contains_key(&Id(12)));
    let err = videos.set_cover_candidates(Id(12), &[Id(1)], NOW).await.unwrap_err();
    assert!(matches!(err, MetaError::NotFound), "{err:?}");
}

pub async fn videos_by_ids_returns_what_exists(db: &TestDb) {
    user(db, 1, "alice").await;
    video(db, 10, 1, &["a"]).await;
    video(db, 11, 1, &[]).await;
    let got = db.videos().by_ids(&[Id(11), Id(10), Id(10), Id(99)]).await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[&Id(10)].tags, strings(&["a"]));
    assert_eq!(got[&Id(11)].author_id, Id(1));
}

pub async fn videos_by_author_paginates_newest_first(db: &TestDb) {
    user(db, 1, "alice").await;
    user(db, 2, "bob").await;
    // Created out of order; interleaved with another author's videos.
    for id in [103, 101, 105, 102, 104] {
        video(db, id, 1, &[]).await;
    }
    video(db, 100, 2, &[]).await;
    video(db, 106, 2, &[]).await;
    // Every status is listed for the author.
    db.videos().set_status(Id(104), VideoStatus::Rejected, Some("spam"), NOW).await.unwrap();
    let videos = db.videos();

    let all = videos.by_author(Id(1), None, 10).await.unwrap();
    assert_eq!(ids(&all), [105, 104, 103, 102, 101]);
    assert!(all.iter().all(|v| v.author_id == Id(1)));
    assert_eq!(all[1].status, VideoStatus::Rejected);

    let page1 = videos.by_author(Id(1), None, 2).await.unwrap();
    assert_eq!(ids(&page1), [105, 104]);
    let page2 = videos.by_author(Id(1), Some(page1[1].id), 2).await.unwrap();
    assert_eq!(ids(&page2), [103, 102]);
    let page3 = videos.by_author(Id(1), Some(page2[1].id), 2).await.unwrap();
    assert_eq!(ids(&page3), [101]);
    assert!(videos.by_author(Id(1), Some(Id(101)), 2).await.unwrap().is_empty());
    // The cursor need not be one of the author's ids.
    assert_eq!(ids(&videos.by_author(Id(1), Some(Id(1_000)), 1).await.unwrap()), [105]);

    assert!(videos.by_author(Id(1), None, 0).await.unwrap().is_empty());
    assert_eq!(ids(&videos.by_author(Id(2), None, 10).await.unwrap()), [106, 100]);
    assert!(videos.by_author(Id(3), None, 10).await.unwrap().is_empty());
}

pub async fn videos_published_by_tag_only_published(db: &TestDb) {
    user(db, 1, "alice").await;
    user(db, 2, "bob").await;
    let videos = db.videos();
    video(db, 10, 1, &["cats", "funny"]).await;
    video(db, 11, 2, &["cats"]).await;
    video(db, 12, 1, &["cats"]).await;
    video(db, 13, 2, &["cats", "dogs"]).await;
    video(db, 14, 1, &["Cats"]).await; // a different tag: matching is exact
    video(db, 15, 1, &["cats"]).await; // never published
    for id in [10, 11, 12, 13, 14] {
        videos.set_status(Id(id), VideoStatus::Published, None, NOW).await.unwrap();
    }
    videos.set_status(Id(12), VideoStatus::Removed, Some("abuse"), NOW + 1).await.unwrap();
    videos.set_status(Id(15), VideoStatus::Review, None, NOW + 1).await.unwrap();

    let cats = videos.published_by_tag("cats", None, 10).await.unwrap();
    assert_eq!(ids(&cats), [13, 11, 10]);
    assert!(cats.iter().all(|v| v.status == VideoStatus::Published));
    // Each comes with all of its tags, not just the one searched for.
    assert_eq!(cats[0].tags, strings(&["cats", "dogs"]));
    assert_eq!(cats[2].tags, strings(&["cats", "funny"]));
    assert_eq!(Some(&cats[1]), videos.by_id(Id(11)).await.unwrap().as_ref());

    let page1 = videos.published_by_tag("cats", None, 2).await.unwrap();
    assert_eq!(ids(&page1), [13, 11]);
    let page2 = videos.published_by_tag("cats", Some(Id(11)), 2).await.unwrap();
    assert_eq!(ids(&page2), [10]);
    assert!(videos.published_by_tag("cats", Some(Id(10)), 2).await.unwrap().is_empty());

    assert_eq!(ids(&videos.published_by_tag("Cats", None, 10).await.unwrap()), [14]);
    assert_eq!(ids(&videos.published_by_tag("dogs", None, 10).await.unwrap()), [13]);
    assert!(videos.published_by_tag("birds", None, 10).await.unwrap().is_empty());
    assert!(videos.published_by_tag("cats", None, 0).await.unwrap().is_empty());

    // Retagging moves a video between listings.
    videos.set_tags(Id(13), &strings(&["dogs"]), NOW + 2).await.unwrap();
    assert_eq!(ids(&videos.published_by_tag("cats", None, 10).await.unwrap()), [11, 10]);
}

pub async fn videos_every_status_round_trips(db: &TestDb) {
    user(db, 1, "alice").await;
    video(db, 10, 1, &[]).await;
    for (i, status) in VideoStatus::ALL.into_iter().enumerate() {
        // The CHECK constraint accepts every status we produce...
        let now = NOW + i as i64;
        let v = db.videos().set_status(Id(10), status, None, now).await.unwrap();
        assert_eq!(v.status, status);
        assert_eq!(db.videos().by_id(Id(10)).await.unwrap().unwrap().status, status);
        // ...and reading it back parses it.
        assert_eq!(db.videos().by_author(Id(1), None, 1).await.unwrap()[0].status, status);
    }
    // ...while anything else is refused by the database itself.
    let refused = crate::store::with_pool!(db.store(), |pool| {
        sqlx::query("UPDATE videos SET status = 'deleted' WHERE id = $1")
            .bind(Id(10).as_i64())
            .execute(pool)
            .await
            .map(drop)
    });
    assert!(refused.is_err(), "status CHECK constraint missing");
}

pub async fn videos_archive_round_trip(db: &TestDb) {
    user(db, 1, "alice").await;
    let created = video(db, 10, 1, &["t"]).await;
    assert_eq!((created.archived_at_ms, created.last_play_ms), (None, None));
    let videos = db.videos();
    videos.set_status(Id(10), VideoStatus::Published, None, NOW).await.unwrap();

    let v = videos.set_archived(Id(10), true, NOW + 1).await.unwrap();
    assert_eq!((v.archived_at_ms, v.updated_at_ms), (Some(NOW + 1), NOW + 1));
    assert_eq!((v.status, v.tags.clone()), (VideoStatus::Published, strings(&["t"])));
    // Every read path carries the flag.
    assert_eq!(videos.by_id(Id(10)).await.unwrap(), Some(v.clone()));
    assert_eq!(videos.by_author(Id(1), None, 10).await.unwrap(), std::slice::from_ref(&v));
    assert_eq!(videos.published_by_tag("t", None, 10).await.unwrap(), std::slice::from_ref(&v));

    // Archiving again (a retried request) keeps the first archive time.
    let v = videos.set_archived(Id(10), true, NOW + 2).await.unwrap();
    assert_eq!((v.archived_at_ms, v.updated_at_ms), (Some(NOW + 1), NOW + 2));

    let v = videos.set_archived(Id(10), false, NOW + 3).await.unwrap();
    assert_eq!((v.archived_at_ms, v.updated_at_ms), (None, NOW + 3));
    assert_eq!(videos.by_id(Id(10)).await.unwrap(), Some(v.clone()));
    // Unarchiving an unarchived video is harmless.
    let v = videos.set_archived(Id(10), false, NOW + 4).await.unwrap();
    assert_eq!(v.archived_at_ms, None);
    // A second archive gets a new time.
    let v = videos.set_archived(Id(10), true, NOW + 5).await.unwrap();
    assert_eq!(v.archived_at_ms, Some(NOW + 5));
    // Nothing but the flag and the update time changed.
    let expected = Video { archived_at_ms: Some(NOW + 5), updated_at_ms: NOW + 5, ..created };
    let expected = Video { status: VideoStatus::Published, published_at_ms: Some(NOW), ..expected };
    assert_eq!(v, expected);

    for archived in [true, false] {
        let err = videos.set_archived(Id(11), archived, NOW).await.unwrap_err();
        assert!(matches!(err, MetaError::NotFound), "{err:?}");
    }
}

pub async fn videos_set_cover_round_trip(db: &TestDb) {
    user(db, 1, "alice").await;
    let created = video(db, 10, 1, &["t"]).await;
    video(db, 11, 1, &[]).await;
    let videos = db.videos();
    videos.set_status(Id(10), VideoStatus::Published, None, NOW).await.unwrap();

    videos.set_cover(Id(10), Some(Id(u64::MAX)), NOW + 1).await.unwrap(); // full 64 bits
    let v = videos.by_id(Id(10)).await.unwrap().unwrap();
    assert_eq!((v.cover_blob_id, v.updated_at_ms), (Some(Id(u64::MAX)), NOW + 1));
    // Nothing else changed.
    let expected = Video {
        cover_blob_id: Some(Id(u64::MAX)),
        updated_at_ms: NOW + 1,
        status: VideoStatus::Published,
        published_at_ms: Some(NOW),
        ..created
    };
    assert_eq!(v, expected);
    // Every read path carries it.
    assert_eq!(videos.by_author(Id(1), Some(Id(11)), 10).await.unwrap(), std::slice::from_ref(&v));
    assert_eq!(videos.published_by_tag("t", None, 10).await.unwrap(), std::slice::from_ref(&v));
    assert_eq!(videos.latest_published(None, 10).await.unwrap(), std::slice::from_ref(&v));
    let archived = videos.set_archived(Id(10), true, NOW + 2).await.unwrap();
    assert_eq!(archived.cover_blob_id, Some(Id(u64::MAX)));
    let removed = videos.set_status(Id(10), VideoStatus::Removed, None, NOW + 3).await.unwrap();
    assert_eq!(removed.cover_blob_id, Some(Id(u64::MAX)));

    // Replaced, then cleared; other videos untouched.
    videos.set_cover(Id(10), Some(Id(500)), NOW + 4).await.unwrap();
    assert_eq!(videos.by_id(Id(10)).await.unwrap().unwrap().cover_blob_id, Some(Id(500)));
    videos.set_cover(Id(10), None, NOW + 5).await.unwrap();
    let v = videos.by_id(Id(10)).await.unwrap().unwrap();
    assert_eq!((v.cover_blob_id, v.updated_at_ms), (None, NOW + 5));
    assert_eq!(videos.by_id(Id(11)).await.unwrap().unwrap().cover_blob_id, None);

    for blob_id in [Some(Id(1)), None] {
        let err = videos.set_cover(Id(12), blob_id, NOW).await.unwrap_err();
        assert!(matches!(err, MetaError::NotFound), "{err:?}");
    }
}

/// A private video keeps its status and is still its author's, but no public listing shows
/// it; making it public again brings it back.
pub async fn videos_private_ones_stay_out_of_public_listings(db: &TestDb) {
    user(db, 1, "alice").await;
    let videos = db.videos();
    for id in [10, 11] {
        video(db, id, 1, &["cats"]).await;
        videos.set_status(Id(id), VideoStatus::Published, None, NOW).await.unwrap();
    }
    assert!(!videos.by_id(Id(11)).await.unwrap().unwrap().private);
    videos.set_private(Id(11), true, NOW + 1).await.unwrap();
    let got = videos.by_id(Id(11)).await.unwrap().unwrap();
    assert!(got.private);
    assert_eq!(got.updated_at_ms, NOW + 1);
    assert_eq!(ids(&videos.latest_published(None, 10).await.unwrap()), [10]);
    assert_eq!(ids(&videos.published_by_tag("cats", None, 10).await.unwrap()), [10]);
    assert_eq!(ids(&videos.by_author(Id(1), None, 10).await.unwrap()), [11, 10]);
    videos.set_private(Id(11), false, NOW + 2).await.unwrap();
    assert_eq!(ids(&videos.latest_published(None, 10).await.unwrap()), [11, 10]);
    let err = videos.set_private(Id(99), true, NOW).await.unwrap_err();
    assert!(matches!(err, MetaError::NotFound), "{err:?}");
}

// ---------------------------------------------------------------------------------------
// Stories.

const LIFETIME: i64 = 24 * HOUR;

/// A story by `author`, published at `at` with [`LIFETIME`].
async fn story(db: &TestDb, id: u64, author: u64, at: i64) -> Video {
    video(db, id, author, &[]).await;
    db.videos().set_kind(Id(id), VideoKind::Story, at).await.unwrap();
    db.videos().publish(Id(id), at, LIFETIME).await.unwrap()
}

pub async fn stories_kind_round_trips_and_expiry_is_fixed_at_publication(db: &TestDb) {
    user(db, 1, "alice").await;
    let videos = db.videos();
    let plain = video(db, 10, 1, &[]).await;
    assert_eq!((plain.kind, plain.expires_at_ms), (VideoKind::Video, None));
    video(db, 11, 1, &[]).await;
    videos.set_kind(Id(11), VideoKind::Story, NOW + 1).await.unwrap();
    let got = videos.by_id(Id(11)).await.unwrap().unwrap();
    assert_eq!((got.kind, got.expires_at_ms, got.updated_at_ms), (VideoKind::Story, None, NOW + 1));

    // Publication fixes a story's expiry; a video gets none.
    let v = videos.publish(Id(10), NOW + 2, LIFETIME).await.unwrap();
    assert_eq!(
        (v.status, v.published_at_ms, v.expires_at_ms),
        (VideoStatus::Published, Some(NOW + 2), None)
    );
    let s = videos.publish(Id(11), NOW + 3, LIFETIME).await.unwrap();
    assert_eq!((s.status, s.published_at_ms), (VideoStatus::Published, Some(NOW + 3)));
    assert_eq!(s.expires_at_ms, Some(NOW + 3 + LIFETIME));
    assert_eq!(videos.by_id(Id(11)).await.unwrap(), Some(s.clone()));
    assert!(!s.expired_at(NOW + 3 + LIFETIME - 1));
    assert!(s.expired_at(NOW + 3 + LIFETIME));
    assert!(!v.expired_at(i64::MAX), "videos never expire");

    // Removed and republished later: the expiry stays where the first publication put it.
    videos.set_status(Id(11), VideoStatus::Removed, Some("abuse"), NOW + 4).await.unwrap();
    let again = videos.publish(Id(11), NOW + 5, LIFETIME * 2).await.unwrap();
    assert_eq!((again.reason, again.expires_at_ms), (None, Some(NOW + 3 + LIFETIME)));
    assert_eq!(again.published_at_ms, Some(NOW + 3));

    for err in [
        videos.set_kind(Id(99), VideoKind::Story, NOW).await.unwrap_err(),
        videos.publish(Id(99), NOW, LIFETIME).await.unwrap_err(),
    ] {
        assert!(matches!(err, MetaError::NotFound), "{err:?}");
    }
}

/// Stories are published videos, but no public listing shows them; their author's own list
/// does.
pub async fn stories_stay_out_of_public_listings(db: &TestDb) {
    user(db, 1, "alice").await;
    let videos = db.videos();
    video(db, 10, 1, &["cats"]).await;
    videos.publish(Id(10), NOW, LIFETIME).await.unwrap();
    video(db, 11, 1, &["cats"]).await;
    videos.set_kind(Id(11), VideoKind::Story, NOW).await.unwrap();
    videos.publish(Id(11), NOW, LIFETIME).await.unwrap();
    assert_eq!(ids(&videos.latest_published(None, 10).await.unwrap()), [10]);
    assert_eq!(ids(&videos.latest_published(Some(Id(12)), 10).await.unwrap()), [10]);
    assert_eq!(ids(&videos.published_by_tag("cats", None, 10).await.unwrap()), [10]);
    assert_eq!(ids(&videos.published_by_tag("cats", Some(Id(12)), 10).await.unwrap()), [10]);
    assert_eq!(ids(&videos.by_author(Id(1), None, 10).await.unwrap()), [11, 10]);
    // The author's archive: stories only, expired ones and every status included.
    story(db, 12, 1, NOW - 2 * LIFETIME).await;
    video(db, 13, 1, &[]).await;
    videos.set_kind(Id(13), VideoKind::Story, NOW).await.unwrap();
    assert_eq!(ids(&videos.stories_by_author(Id(1), None, 10).await.unwrap()), [13, 12, 11]);
    assert_eq!(ids(&videos.stories_by_author(Id(1), Some(Id(13)), 1).await.unwrap()), [12]);
    assert!(videos.stories_by_author(Id(2), None, 10).await.unwrap().is_empty());
}

fn row_summary(rows: &[crate::AuthorStories]) -> Vec<(u64, i64, u32, u32, u64)> {
    rows.iter()
        .map(|a| (a.author_id.0, a.latest_at_ms, a.unseen, a.total, a.resume_from.0))
        .collect()
}

pub async fn stories_followed_row_respects_progress_expiry_blocks_and_order(db: &TestDb) {
    for (id, name) in [(1, "viewer"), (2, "ann"), (3, "ben"), (4, "cat"), (5, "dan"), (6, "eve")] {
        user(db, id, name).await;
    }
    let social = db.social();
    for (followee, link) in [(2, 100), (3, 101), (5, 102), (6, 103)] {
        assert!(social.follow(Id(1), Id(followee), Id(link), NOW).await.unwrap());
    }
    let stories = db.stories();
    assert!(stories.unseen_authors(Id(1), NOW).await.unwrap().is_empty());
    // ann: two stories; ben: one, newer than ann's; cat: not followed; dan: blocks the
    // viewer; eve: only an unpublished, a private and an ordinary video.
    story(db, 20, 2, NOW).await;
    story(db, 21, 2, NOW + 10).await;
    story(db, 30, 3, NOW + 20).await;
    story(db, 40, 4, NOW + 30).await;
    story(db, 50, 5, NOW + 30).await;
    video(db, 60, 6, &[]).await;
    db.videos().set_kind(Id(60), VideoKind::Story, NOW).await.unwrap();
    story(db, 61, 6, NOW).await;
    db.videos().set_private(Id(61), true, NOW).await.unwrap();
    video(db, 62, 6, &[]).await;
    db.videos().publish(Id(62), NOW, LIFETIME).await.unwrap();
    // A follow raced the block: the row still leaves dan out.
    db.social().block(Id(5), Id(1), NOW + 40).await.unwrap();
    social.follow(Id(1), Id(5), Id(104), NOW + 41).await.unwrap();

    let at = NOW + 50;
    let row = stories.unseen_authors(Id(1), at).await.unwrap();
    assert_eq!(row_summary(&row), [(3, NOW + 20, 1, 1, 30), (2, NOW + 10, 2, 2, 20)]);
    assert_eq!((row[0].username.as_str(), row[1].username.as_str()), ("ben", "ann"));

    // Progress: seeing ann's first story resumes at her second; seeing it too drops her.
    stories.mark_seen(Id(1), Id(2), Id(20), at).await.unwrap();
    let row = stories.unseen_authors(Id(1), at).await.unwrap();
    assert_eq!(row_summary(&row), [(3, NOW + 20, 1, 1, 30), (2, NOW + 10, 1, 2, 21)]);
    stories.mark_seen(Id(1), Id(2), Id(21), at).await.unwrap();
    assert_eq!(
        row_summary(&stories.unseen_authors(Id(1), at).await.unwrap()),
        [(3, NOW + 20, 1, 1, 30)]
    );
    // A new story brings her back, first in the row.
    story(db, 22, 2, NOW + 60).await;
    let row = stories.unseen_authors(Id(1), NOW + 60).await.unwrap();
    assert_eq!(row_summary(&row), [(2, NOW + 60, 1, 3, 22), (3, NOW + 20, 1, 1, 30)]);

    // Expiry is exact: ann's first stories are live one millisecond before their end, gone
    // at it; ben's too.
    let row = stories.unseen_authors(Id(1), NOW + LIFETIME - 1).await.unwrap();
    assert_eq!(row_summary(&row), [(2, NOW + 60, 1, 3, 22), (3, NOW + 20, 1, 1, 30)]);
    let row = stories.unseen_authors(Id(1), NOW + LIFETIME).await.unwrap();
    assert_eq!(row_summary(&row), [(2, NOW + 60, 1, 2, 22), (3, NOW + 20, 1, 1, 30)]);
    let row = stories.unseen_authors(Id(1), NOW + LIFETIME + 20).await.unwrap();
    assert_eq!(row_summary(&row), [(2, NOW + 60, 1, 1, 22)]);
    assert!(stories.unseen_authors(Id(1), NOW + 60 + LIFETIME).await.unwrap().is_empty());

    // Blocking in the other direction (the viewer blocks ann) removes her too.
    social.block(Id(1), Id(2), NOW + 70).await.unwrap();
    social.follow(Id(1), Id(2), Id(105), NOW + 71).await.unwrap();
    let row = stories.unseen_authors(Id(1), NOW + 70).await.unwrap();
    assert_eq!(row_summary(&row), [(3, NOW + 20, 1, 1, 30)]);
    // Another viewer's row is their own: nobody followed, nothing listed.
    assert!(stories.unseen_authors(Id(4), NOW + 70).await.unwrap().is_empty());
}

pub async fn stories_live_of_author_in_watch_order(db: &TestDb) {
    user(db, 1, "alice").await;
    // Created out of order; watch order is by id.
    story(db, 12, 1, NOW + 2).await;
    story(db, 10, 1, NOW).await;
    story(db, 11, 1, NOW + 1).await;
    video(db, 13, 1, &[]).await; // an ordinary video
    db.videos().publish(Id(13), NOW, LIFETIME).await.unwrap();
    db.videos().set_tags(Id(11), &strings(&["b", "a"]), NOW + 1).await.unwrap();
    let stories = db.stories();
    let live = stories.live_of(Id(1), NOW + 5).await.unwrap();
    assert_eq!(ids(&live), [10, 11, 12]);
    assert_eq!(live[1].tags, strings(&["a", "b"]));
    assert_eq!(live[2].expires_at_ms, Some(NOW + 2 + LIFETIME));
    assert_eq!(ids(&stories.live_of(Id(1), NOW + LIFETIME).await.unwrap()), [11, 12]);
    assert_eq!(ids(&stories.live_of(Id(1), NOW + LIFETIME + 1).await.unwrap()), [12]);
    assert!(stories.live_of(Id(1), NOW + LIFETIME + 2).await.unwrap().is_empty());
    db.videos().set_status(Id(12), VideoStatus::Removed, Some("abuse"), NOW + 3).await.unwrap();
    assert_eq!(ids(&stories.live_of(Id(1), NOW + 5).await.unwrap()), [10, 11]);
}

pub async fn stories_progress_is_monotonic_and_per_viewer(db: &TestDb) {
    for (id, name) in [(1, "viewer"), (2, "other"), (3, "ann"), (4, "ben")] {
        user(db, id, name).await;
    }
    let stories = db.stories();
    assert_eq!(stories.progress(Id(1), Id(3)).await.unwrap(), None);
    assert!(stories.mark_seen(Id(1), Id(3), Id(20), NOW).await.unwrap());
    assert!(!stories.mark_seen(Id(1), Id(3), Id(20), NOW + 1).await.unwrap(), "idempotent");
    assert!(!stories.mark_seen(Id(1), Id(3), Id(10), NOW + 2).await.unwrap(), "never backwards");
    assert_eq!(stories.progress(Id(1), Id(3)).await.unwrap(), Some(Id(20)));
    assert!(stories.mark_seen(Id(1), Id(3), Id(30), NOW + 3).await.unwrap());
    assert_eq!(stories.progress(Id(1), Id(3)).await.unwrap(), Some(Id(30)));
    // Per viewer and per author.
    assert_eq!(stories.progress(Id(2), Id(3)).await.unwrap(), None);
    assert_eq!(stories.progress(Id(1), Id(4)).await.unwrap(), None);
    assert!(stories.mark_seen(Id(2), Id(3), Id(10), NOW).await.unwrap());
    assert_eq!(stories.progress(Id(2), Id(3)).await.unwrap(), Some(Id(10)));
    assert_eq!(stories.progress(Id(1), Id(3)).await.unwrap(), Some(Id(30)));
    // Concurrent marks end at the newest, whatever the order they land in.
    let tasks: Vec<_> = (40..60)
        .map(|s| {
            let store = db.store().clone();
            tokio::spawn(async move { store.stories().mark_seen(Id(1), Id(4), Id(s), NOW).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(stories.progress(Id(1), Id(4)).await.unwrap(), Some(Id(59)));
}

pub async fn videos_latest_published_pages_newest_first(db: &TestDb) {
    user(db, 1, "alice").await;
    user(db, 2, "bob").await;
    let videos = db.videos();
    assert!(videos.latest_published(None, 10).await.unwrap().is_empty());
    // Created out of order, by two authors; some never published or no longer published.
    for (id, author) in [(103, 1), (101, 2), (107, 1), (105, 2), (102, 1), (104, 2), (106, 1)] {
        video(db, id, author, &[]).await;
    }
    videos.set_tags(Id(105), &strings(&["b", "a"]), NOW).await.unwrap();
    for id in [101, 102, 103, 105, 106, 107] {
        videos.set_status(Id(id), VideoStatus::Published, None, NOW).await.unwrap();
    }
    videos.set_status(Id(102), VideoStatus::Removed, Some("abuse"), NOW + 1).await.unwrap();
    videos.set_status(Id(104), VideoStatus::Review, None, NOW + 1).await.unwrap();
    // Every other status is left out too.
    for (id, status) in [(108, VideoStatus::Processing), (109, VideoStatus::Rejected)] {
        video(db, id, 1, &[]).await;
        videos.set_status(Id(id), status, None, NOW).await.unwrap();
    }
    video(db, 110, 1, &[]).await; // uploading

    let all = videos.latest_published(None, 100).await.unwrap();
    assert_eq!(ids(&all), [107, 106, 105, 103, 101]);
    assert!(all.iter().all(|v| v.status == VideoStatus::Published));
    // With their tags, as every listing.
    assert_eq!(all[2].tags, strings(&["a", "b"]));
    assert_eq!(Some(&all[2]), videos.by_id(Id(105)).await.unwrap().as_ref());

    // Keyset pages.
    let page1 = videos.latest_published(None, 2).await.unwrap();
    assert_eq!(ids(&page1), [107, 106]);
    let page2 = videos.latest_published(Some(page1[1].id), 2).await.unwrap();
    assert_eq!(ids(&page2), [105, 103]);
    let page3 = videos.latest_published(Some(page2[1].id), 2).await.unwrap();
    assert_eq!(ids(&page3), [101]);
    assert!(videos.latest_published(Some(Id(101)), 2).await.unwrap().is_empty());
    // The cursor need not be a published id (104 is in review).
    assert_eq!(ids(&videos.latest_published(Some(Id(104)), 10).await.unwrap()), [103, 101]);
    assert_eq!(ids(&videos.latest_published(Some(Id(1_000)), 1).await.unwrap()), [107]);
    assert!(videos.latest_published(None, 0).await.unwrap().is_empty());

    // Publishing and removing move videos in and out.
    videos.set_status(Id(104), VideoStatus::Published, None, NOW + 2).await.unwrap();
    videos.set_status(Id(107), VideoStatus::Removed, None, NOW + 2).await.unwrap();
    assert_eq!(ids(&videos.latest_published(None, 3).await.unwrap()), [106, 105, 104]);
}

// ---------------------------------------------------------------------------------------
// Video blobs.

fn blob(blob_id: u64, video_id: u64, kind: &str, created_at_ms: i64) -> VideoBlob {
    VideoBlob { blob_id: Id(blob_id), video_id: Id(video_id), kind: kind.to_owned(), created_at_ms }
}

pub async fn video_blobs_attach_list_detach(db: &TestDb) {
    user(db, 1, "alice").await;
    video(db, 10, 1, &[]).await;
    video(db, 11, 1, &[]).await;
    let blobs = db.video_blobs();
    // Attached out of order; listed by blob id.
    blobs.attach(Id(10), Id(502), "720p", NOW + 2).await.unwrap();
    blobs.attach(Id(10), Id(500), "source", NOW).await.unwrap();
    blobs.attach(Id(10), Id(u64::MAX), "poster", NOW + 3).await.unwrap(); // full 64 bits
    blobs.attach(Id(11), Id(501), "source", NOW + 1).await.unwrap();
    let of_10 = blobs.for_video(Id(10)).await.unwrap();
    assert_eq!(
        of_10,
        [
            blob(u64::MAX, 10, "poster", NOW + 3), // stored as -1: first in id order
            blob(500, 10, "source", NOW),
            blob(502, 10, "720p", NOW + 2),
        ]
    );
    assert_eq!(blobs.for_video(Id(11)).await.unwrap(), [blob(501, 11, "source", NOW + 1)]);
    assert!(blobs.for_video(Id(12)).await.unwrap().is_empty());

    // A blob belongs to one video only.
    for video_id in [10, 11] {
        let err = blobs.attach(Id(video_id), Id(500), "other", NOW).await.unwrap_err();
        assert!(matches!(err, MetaError::Conflict { what: "blob_id" }), "{err:?}");
    }
    assert_eq!(blobs.for_video(Id(10)).await.unwrap(), of_10);
    assert_eq!(blobs.for_video(Id(11)).await.unwrap().len(), 1);
    let err = blobs.attach(Id(12), Id(503), "source", NOW).await.unwrap_err();
    assert!(matches!(err, MetaError::NotFound), "{err:?}");
    assert!(blobs.for_video(Id(12)).await.unwrap().is_empty());

    assert!(blobs.detach(Id(500)).await.unwrap());
    assert!(!blobs.detach(Id(500)).await.unwrap());
    assert!(!blobs.detach(Id(999)).await.unwrap());
    assert_eq!(ids_of_blobs(&blobs.for_video(Id(10)).await.unwrap()), [u64::MAX, 502]);
    // A detached id can be attached again.
    blobs.attach(Id(11), Id(500), "source", NOW + 4).await.unwrap();
    assert_eq!(ids_of_blobs(&blobs.for_video(Id(11)).await.unwrap()), [500, 501]);

    // Deleting a video deletes its blob rows.
    crate::store::with_pool!(db.store(), |pool| {
        sqlx::query("DELETE FROM videos WHERE id = $1")
            .bind(Id(10).as_i64())
            .execute(pool)
            .await
            .map(drop)
            .unwrap();
    });
    assert!(blobs.for_video(Id(10)).await.unwrap().is_empty());
    assert!(!blobs.detach(Id(502)).await.unwrap());
    assert_eq!(blobs.for_video(Id(11)).await.unwrap().len(), 2);
}

fn ids_of_blobs(blobs: &[VideoBlob]) -> Vec<u64> {
    blobs.iter().map(|b| b.blob_id.0).collect()
}

// ---------------------------------------------------------------------------------------
// Plays and the tiering report.

/// The start of the hour holding [`NOW`].
const NOW_HOUR: i64 = NOW - NOW.rem_euclid(HOUR);
const DAY: i64 = 24 * HOUR;

fn play(video_id: u64, at_ms: i64, plays: u64) -> PlayDelta {
    PlayDelta { video_id: Id(video_id), at_ms, plays }
}

/// Every hourly row as (video id, hour relative to [`NOW_HOUR`], plays), in key order.
async fn hourly(db: &TestDb) -> Vec<(u64, i64, i64)> {
    let rows: Vec<(i64, i64, i64)> = crate::store::with_pool!(db.store(), |pool| {
        sqlx::query_as(
            "SELECT video_id, hour, plays FROM video_plays_hourly ORDER BY video_id, hour",
        )
        .fetch_all(pool)
        .await
        .unwrap()
    });
    rows.into_iter().map(|(v, h, p)| (Id::from_i64(v).0, h - NOW_HOUR / HOUR, p)).collect()
}

async fn last_play(db: &TestDb, video_id: u64) -> Option<i64> {
    db.videos().by_id(Id(video_id)).await.unwrap().expect("video").last_play_ms
}

async fn view_count(db: &TestDb, video_id: u64) -> i64 {
    db.videos().by_id(Id(video_id)).await.unwrap().expect("video").view_count
}

pub async fn plays_record_increments_across_batches_and_hours(db: &TestDb) {
    user(db, 1, "alice").await;
    video(db, 10, 1, &[]).await;
    video(db, 11, 1, &[]).await;
    video(db, 12, 1, &[]).await;
    let plays = db.plays();
    plays.record(&[]).await.unwrap();
    assert!(hourly(db).await.is_empty());

    // Duplicates within a batch (same video, same hour) are summed.
    plays
        .record(&[
            play(10, NOW_HOUR + 1, 1),
            play(11, NOW_HOUR, 5),
            play(10, NOW_HOUR + HOUR - 1, 2), // last millisecond of the same hour
            play(10, NOW_HOUR + HOUR, 1),     // first millisecond of the next
            play(10, NOW_HOUR - 1, 3),        // last millisecond of the previous
            play(12, NOW_HOUR, 0),            // no plays: nothing recorded
            play(10, NOW_HOUR + 2, 4),
        ])
        .await
        .unwrap();
    assert_eq!(hourly(db).await, [(10, -1, 3), (10, 0, 7), (10, 1, 1), (11, 0, 5)]);
    assert_eq!(last_play(db, 12).await, None);

    // Later batches add to the existing rows.
    plays.record(&[play(10, NOW_HOUR + 3, 10), play(11, NOW_HOUR + 2 * HOUR, 1)]).await.unwrap();
    plays.record(&[play(10, NOW_HOUR + 4, 100), play(10, NOW_HOUR + 5, 1_000)]).await.unwrap();
    assert_eq!(hourly(db).await, [(10, -1, 3), (10, 0, 1_117), (10, 1, 1), (11, 0, 5), (11, 2, 1)]);

    // Plays of unknown videos are counted too (no foreign key), full 64-bit ids included.
    plays.record(&[play(999, NOW, 1), play(u64::MAX, NOW, 2)]).await.unwrap();
    let rows = hourly(db).await;
    assert!(rows.contains(&(999, 0, 1)) && rows.contains(&(u64::MAX, 0, 2)), "{rows:?}");
    // Large counts are stored exactly.
    plays.record(&[play(12, NOW, 1 << 40)]).await.unwrap();
    plays.record(&[play(12, NOW, 1 << 40)]).await.unwrap();
    assert!(hourly(db).await.contains(&(12, 0, 1 << 41)));
}

pub async fn plays_last_play_only_moves_forward(db: &TestDb) {
    user(db, 1, "alice").await;
    video(db, 10, 1, &[]).await;
    video(db, 11, 1, &[]).await;
    let plays = db.plays();
    assert_eq!(last_play(db, 10).await, None);

    // The latest play of the batch wins, whatever its position in it.
    plays.record(&[play(10, NOW - 5, 1), play(10, NOW, 1), play(10, NOW - 9, 1)]).await.unwrap();
    assert_eq!(last_play(db, 10).await, Some(NOW));
    assert_eq!(last_play(db, 11).await, None);

    // An older batch (a late or replayed one) is counted but does not move it back.
    plays.record(&[play(10, NOW - DAY, 2)]).await.unwrap();
    assert_eq!(last_play(db, 10).await, Some(NOW));
    assert!(hourly(db).await.contains(&(10, -24, 2)));
    // Neither does an equal one.
    plays.record(&[play(10, NOW, 1)]).await.unwrap();
    assert_eq!(last_play(db, 10).await, Some(NOW));

    plays.record(&[play(10, NOW + 1, 1), play(11, NOW - HOUR, 1)]).await.unwrap();
    assert_eq!(last_play(db, 10).await, Some(NOW + 1));
    assert_eq!(last_play(db, 11).await, Some(NOW - HOUR));

    // Recording plays is not an edit: the update time stays.
    let v = db.videos().by_id(Id(10)).await.unwrap().unwrap();
    assert_eq!(v.updated_at_ms, NOW);
    // Archiving keeps the last play.
    let v = db.videos().set_archived(Id(10), true, NOW + 2).await.unwrap();
    assert_eq!(v.last_play_ms, Some(NOW + 1));
}

pub async fn plays_concurrent_batches_all_count(db: &TestDb) {
    const TASKS: u64 = 8;
    const ROUNDS: u64 = 4;
    user(db, 1, "alice").await;
    for id in 10..14 {
        video(db, id, 1, &[]).await;
    }
    // Every task writes the same rows, in a different order per task: no batch may be lost
    // and none may deadlock against another.
    let barrier = Arc::new(tokio::sync::Barrier::new(TASKS as usize));
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let store = db.store().clone();
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                for round in 0..ROUNDS {
                    let mut batch: Vec<PlayDelta> = (10..14)
                        .flat_map(|v| [play(v, NOW_HOUR, 1), play(v, NOW_HOUR + HOUR, 2)])
                        .collect();
                    batch.rotate_left(((task + round) % 8) as usize);
                    if task % 2 == 1 {
                        batch.reverse();
                    }
                    store.plays().record(&batch).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let n = (TASKS * ROUNDS) as i64;
    let expected: Vec<_> = (10..14).flat_map(|v| [(v, 0, n), (v, 1, 2 * n)]).collect();
    assert_eq!(hourly(db).await, expected);
    assert_eq!(last_play(db, 13).await, Some(NOW_HOUR + HOUR));
    for id in 10..14 {
        assert_eq!(view_count(db, id).await, 3 * n, "video {id}");
    }
}

pub async fn plays_prune_drops_old_hours(db: &TestDb) {
    user(db, 1, "alice").await;
    video(db, 10, 1, &[]).await;
    let plays = db.plays();
    assert_eq!(plays.prune(NOW).await.unwrap(), 0);
    plays
        .record(&[
            play(10, NOW_HOUR - 200 * HOUR, 1),
            play(999, NOW_HOUR - 193 * HOUR + 5, 1), // an unknown video's rows age out too
            play(10, NOW_HOUR - 192 * HOUR, 1),
            play(10, NOW_HOUR, 1),
        ])
        .await
        .unwrap();
    // Hours that ended at or before the cut go; the hour holding it stays.
    let cut = NOW_HOUR - 192 * HOUR + HOUR / 2;
    assert_eq!(plays.prune(cut).await.unwrap(), 2);
    assert_eq!(hourly(db).await, [(10, -192, 1), (10, 0, 1)]);
    assert_eq!(plays.prune(cut).await.unwrap(), 0);
    // A cut on an hour boundary keeps the hour starting there.
    assert_eq!(plays.prune(NOW_HOUR - 192 * HOUR).await.unwrap(), 0);
    assert_eq!(plays.prune(NOW_HOUR - 191 * HOUR).await.unwrap(), 1);
    assert_eq!(hourly(db).await, [(10, 0, 1)]);
    // The last play survives pruning (it lives on the video).
    assert_eq!(last_play(db, 10).await, Some(NOW_HOUR));
    // Counting continues as before in the kept hour.
    plays.record(&[play(10, NOW_HOUR + 1, 2)]).await.unwrap();
    assert_eq!(hourly(db).await, [(10, 0, 3)]);
}

pub async fn plays_tiering_activity_windows_and_flags(db: &TestDb) {
    // T is an hour boundary, so the windows start exactly on bucket boundaries.
    const T: i64 = NOW_HOUR;
    user(db, 1, "alice").await;
    for id in 10..=14 {
        video(db, id, 1, &[]).await;
    }
    let plays = db.plays();
    assert!(plays.tiering_activity(T).await.unwrap().is_empty());

    let blobs = db.video_blobs();
    blobs.attach(Id(10), Id(100), "source", NOW - 30 * DAY).await.unwrap();
    blobs.attach(Id(10), Id(101), "720p", NOW - 29 * DAY).await.unwrap();
    blobs.attach(Id(11), Id(110), "source", NOW - 10 * DAY).await.unwrap();
    blobs.attach(Id(12), Id(120), "source", NOW - 2 * DAY).await.unwrap();
    blobs.attach(Id(13), Id(130), "source", NOW - 40 * DAY).await.unwrap();
    // Video 14 has plays but no blobs: no row. Unknown video 999 neither.

    plays
        .record(&[
            play(10, T - 7 * DAY, 1_000), // the hour the 7-day window starts in: out
            play(10, T - 7 * DAY + HOUR, 100), // first hour inside it
            play(10, T - DAY, 10),        // the hour the 1-day window starts in
            play(10, T - DAY + HOUR + 1, 1), // first hour inside the 1-day window
            play(10, T - DAY + HOUR + 2, 1), // (twice, in one batch)
            play(14, T, 7),
            play(999, T, 7),
        ])
        .await
        .unwrap();
    // Separate batches add up; the current hour counts.
    plays.record(&[play(10, T, 2)]).await.unwrap();
    plays.record(&[play(11, T - HOUR, 5), play(13, T - 8 * DAY, 50)]).await.unwrap();
    db.videos().set_archived(Id(11), true, NOW).await.unwrap();
    db.videos().set_archived(Id(13), true, NOW).await.unwrap();
    db.videos().set_archived(Id(13), false, NOW + 1).await.unwrap();

    let row =
        |blob_id: u64, video_id: u64, plays: (u64, u64), last: Option<i64>, created, archived| {
            BlobActivityRow {
                blob_id: Id(blob_id),
                video_id: Id(video_id),
                plays_7d: plays.0,
                plays_1d: plays.1,
                last_play_ms: last,
                created_at_ms: created,
                archived,
            }
        };
    let expected_at = |v10: (u64, u64), v11: (u64, u64)| {
        vec![
            row(100, 10, v10, Some(T), NOW - 30 * DAY, false),
            row(101, 10, v10, Some(T), NOW - 29 * DAY, false),
            row(110, 11, v11, Some(T - HOUR), NOW - 10 * DAY, true),
            row(120, 12, (0, 0), None, NOW - 2 * DAY, false), // never played
            row(130, 13, (0, 0), Some(T - 8 * DAY), NOW - 40 * DAY, false), // only long ago
        ]
    };
    // Anywhere in the hour starting at T, the windows cover the same buckets.
    for now in [T, T + 1, T + HOUR - 1] {
        let got = plays.tiering_activity(now).await.unwrap();
        assert_eq!(got, expected_at((114, 4), (5, 5)), "now = T + {}", now - T);
    }
    // One hour later, the oldest bucket of each window drops out.
    let got = plays.tiering_activity(T + HOUR).await.unwrap();
    assert_eq!(got, expected_at((14, 2), (5, 5)));
    // A day later the 1-day window starts in the hour starting at T, so leaves it out.
    let got = plays.tiering_activity(T + DAY).await.unwrap();
    assert_eq!(got, expected_at((14, 0), (5, 0)));
    // Plays after `now` (clock skew) still count.
    let got = plays.tiering_activity(T - 1).await.unwrap();
    assert_eq!(got, expected_at((1_114, 14), (5, 5)));

    // Unarchiving shows up; a detached blob disappears.
    db.videos().set_archived(Id(11), false, NOW + 2).await.unwrap();
    blobs.detach(Id(101)).await.unwrap();
    let got = plays.tiering_activity(T).await.unwrap();
    let mut expected = expected_at((114, 4), (5, 5));
    expected.remove(1);
    expected[1].archived = false;
    assert_eq!(got, expected);
}

pub async fn plays_record_adds_to_view_count(db: &TestDb) {
    user(db, 1, "alice").await;
    video(db, 10, 1, &[]).await;
    video(db, 11, 1, &[]).await;
    video(db, 12, 1, &[]).await;
    let plays = db.plays();
    assert_eq!(view_count(db, 10).await, 0);

    // Every hour of the batch counts, and so does a late (older) one.
    plays
        .record(&[
            play(10, NOW, 2),
            play(11, NOW, 1),
            play(10, NOW + 3 * HOUR, 5),
            play(10, NOW - DAY, 1),
            play(12, NOW, 0),  // no plays
            play(999, NOW, 4), // an unknown video: nothing to update
        ])
        .await
        .unwrap();
    assert_eq!(view_count(db, 10).await, 8);
    assert_eq!(view_count(db, 11).await, 1);
    assert_eq!(view_count(db, 12).await, 0);
    assert_eq!(last_play(db, 12).await, None);
    // The count moves even when the last play does not (an older batch).
    plays.record(&[play(10, NOW - 2 * DAY, 10), play(11, NOW + 1, 1)]).await.unwrap();
    assert_eq!(view_count(db, 10).await, 18);
    assert_eq!(last_play(db, 10).await, Some(NOW + 3 * HOUR));
    assert_eq!((view_count(db, 11).await, last_play(db, 11).await), (2, Some(NOW + 1)));
    // It is the sum of the hourly rows (nothing pruned yet).
    let total_10: i64 = hourly(db).await.iter().filter(|r| r.0 == 10).map(|r| r.2).sum();
    assert_eq!(total_10, 18);
    // Not an edit: the update time stays.
    assert_eq!(db.videos().by_id(Id(10)).await.unwrap().unwrap().updated_at_ms, NOW);

    // Large counts are exact, and the count saturates instead of failing the batch.
    plays.record(&[play(12, NOW, 1 << 40), play(12, NOW + HOUR, 1 << 40)]).await.unwrap();
    assert_eq!(view_count(db, 12).await, 1 << 41);
    crate::store::with_pool!(db.store(), |pool| {
        sqlx::query("UPDATE videos SET view_count = $1 WHERE id = $2")
            .bind(i64::MAX - 3)
            .bind(Id(12).as_i64())
            .execute(pool)
            .await
            .map(drop)
            .unwrap();
    });
    plays.record(&[play(12, NOW + 2 * HOUR, 3)]).await.unwrap();
    assert_eq!(view_count(db, 12).await, i64::MAX);
    plays.record(&[play(12, NOW + 3 * HOUR, 10), play(10, NOW, 1)]).await.unwrap();
    assert_eq!(view_count(db, 12).await, i64::MAX);
    assert_eq!(view_count(db, 10).await, 19);
}

// ---------------------------------------------------------------------------------------
// Renditions.

fn rendition(video_id: u64, name: &str, height: i32, bandwidth: i64) -> RenditionRow {
    RenditionRow {
        video_id: Id(video_id),
        name: name.to_owned(),
        height,
        bandwidth,
        spec_json: format!(r#"{{"name":"{name}","segments":["init.mp4","1.m4s"]}}"#),
        created_at_ms: NOW,
    }
}

fn rendition_names(rows: &[RenditionRow]) -> Vec<&str> {
    rows.iter().map(|r| r.name.as_str()).collect()
}

/// Deletes a video outright (no repository method does that for every status).
async fn delete_video(db: &TestDb, id: u64) {
    crate::store::with_pool!(db.store(), |pool| {
        sqlx::query("DELETE FROM videos WHERE id = $1")
            .bind(Id(id).as_i64())
            .execute(pool)
            .await
            .map(drop)
            .unwrap();
    });
}

pub async fn renditions_put_replaces_and_lists_by_height(db: &TestDb) {
    user(db, 1, "alice").await;
    video(db, 10, 1, &[]).await;
    video(db, u64::MAX, 1, &[]).await; // full 64 bits
    let renditions = db.renditions();
    assert!(renditions.for_video(Id(10)).await.unwrap().is_empty());

    // Put out of order; listed by height, then name in byte order whatever the collation.
    for row in [
        rendition(10, "720p_hevc", 720, 1_800_000),
        rendition(10, "1080p", 1080, 4_500_000),
        rendition(10, "480p", 480, 900_000),
        rendition(10, "720p", 720, 2_500_000),
        rendition(10, "720P", 720, 2_400_000),
        rendition(u64::MAX, "360p", 360, i64::MAX),
    ] {
        renditions.put(&row).await.unwrap();
    }
    let of_10 = renditions.for_video(Id(10)).await.unwrap();
    assert_eq!(rendition_names(&of_10), ["480p", "720P", "720p", "720p_hevc", "1080p"]);
    assert_eq!(of_10[0], rendition(10, "480p", 480, 900_000));
    let of_max = renditions.for_video(Id(u64::MAX)).await.unwrap();
    assert_eq!(of_max, [rendition(u64::MAX, "360p", 360, i64::MAX)]);

    // A re-run replaces the row of the same name, every column of it.
    let mut again = rendition(10, "720p", 540, 2_000_000);
    again.spec_json = r#"{"segments":[],"note":"é"}"#.to_owned();
    again.created_at_ms = NOW + 9;
    renditions.put(&again).await.unwrap();
    let of_10 = renditions.for_video(Id(10)).await.unwrap();
    assert_eq!(rendition_names(&of_10), ["480p", "720p", "720P", "720p_hevc", "1080p"]);
    assert_eq!(of_10[1], again);
    assert_eq!(of_10.len(), 5);
    assert_eq!(renditions.for_video(Id(u64::MAX)).await.unwrap(), of_max);

    assert_eq!(renditions.delete_for_video(Id(10)).await.unwrap(), 5);
    assert_eq!(renditions.delete_for_video(Id(10)).await.unwrap(), 0);
    assert!(renditions.for_video(Id(10)).await.unwrap().is_empty());
    assert_eq!(renditions.for_video(Id(u64::MAX)).await.unwrap(), of_max);
    // Putting again after a delete works.
    renditions.put(&rendition(10, "480p", 480, 1)).await.unwrap();
    assert_eq!(renditions.for_video(Id(10)).await.unwrap().len(), 1);
}

pub async fn renditions_unknown_video_and_cascade(db: &TestDb) {
    user(db, 1, "alice").await;
    video(db, 10, 1, &[]).await;
    video(db, 11, 1, &[]).await;
    let renditions = db.renditions();
    let err = renditions.put(&rendition(12, "480p", 480, 1)).await.unwrap_err();
    assert!(matches!(err, MetaError::NotFound), "{err:?}");
    assert!(renditions.for_video(Id(12)).await.unwrap().is_empty());
    assert_eq!(renditions.delete_for_video(Id(12)).await.unwrap(), 0);

    renditions.put(&rendition(10, "480p", 480, 1)).await.unwrap();
    renditions.put(&rendition(10, "720p", 720, 2)).await.unwrap();
    renditions.put(&rendition(11, "480p", 480, 1)).await.unwrap();
    // Deleting a video deletes its renditions.
    delete_video(db, 10).await;
    assert!(renditions.for_video(Id(10)).await.unwrap().is_empty());
    assert_eq!(renditions.delete_for_video(Id(10)).await.unwrap(), 0);
    assert_eq!(renditions.for_video(Id(11)).await.unwrap().len(), 1);
    let err = renditions.put(&rendition(10, "480p", 480, 1)).await.unwrap_err();
    assert!(matches!(err, MetaError::NotFound), "{err:?}");
}

// ---------------------------------------------------------------------------------------
// Fingerprints.

/// A 64-digit hex "SHA-256" per tag.
fn content_hash(tag: u8) -> String {
    format!("{tag:02x}{}", "ab".repeat(31))
}

fn fingerprint(video_id: u64, tag: u8, frame_hashes: &[u64]) -> Fingerprint {
    Fingerprint {
        video_id: Id(video_id),
        content_hash: content_hash(tag),
        frame_hashes: frame_hashes.to_vec(),
        created_at_ms: NOW,
    }
}

fn fingerprint_ids(fps: &[Fingerprint]) -> Vec<u64> {
    fps.iter().map(|f| f.video_id.0).collect()
}

/// The stored text of a video's frame hashes.
async fn stored_frame_hashes(db: &TestDb, video_id: u64) -> String {
    crate::store::with_pool!(db.store(), |pool| {
        sqlx::query_scalar("SELECT frame_hashes FROM video_fingerprints WHERE video_id = $1")
            .bind(Id(video_id).as_i64())
            .fetch_one(pool)
            .await
            .unwrap()
    })
}

pub async fn fingerprints_round_trip_every_bit(db: &TestDb) {
    user(db, 1, "alice").await;
    for id in 10..=13 {
        video(db, id, 1, &[]).await;
    }
    let fps = db.fingerprints();
    let frames = [u64::MAX, 0, 1, 1 << 63, 0x0123_4567_89ab_cdef, u64::MAX - 1, 0];
    fps.put(&fingerprint(10, 1, &frames)).await.unwrap();
    fps.put(&fingerprint(11, 2, &[])).await.unwrap(); // no usable frames
    fps.put(&fingerprint(12, 3, &[0])).await.unwrap();
    fps.put(&fingerprint(13, 4, &[u64::MAX])).await.unwrap();
    // The documented, dialect-neutral text form.
    assert_eq!(
        stored_frame_hashes(db, 10).await,
        concat!(
            "ffffffffffffffff",
            "0000000000000000",
            "0000000000000001",
            "8000000000000000",
            "0123456789abcdef",
            "fffffffffffffffe",
            "0000000000000000",
        )
    );
    assert_eq!(stored_frame_hashes(db, 11).await, "");
    assert_eq!(stored_frame_hashes(db, 12).await, "0000000000000000");
    assert_eq!(stored_frame_hashes(db, 13).await, "ffffffffffffffff");
    let got = fps.page(None, 10).await.unwrap();
    assert_eq!(
        got,
        [
            fingerprint(10, 1, &frames),
            fingerprint(11, 2, &[]),
            fingerprint(12, 3, &[0]),
            fingerprint(13, 4, &[u64::MAX]),
        ]
    );
    // Many frames.
    let many: Vec<u64> = (0..1_000u64).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).collect();
    fps.put(&fingerprint(12, 3, &many)).await.unwrap();
    assert_eq!(fps.page(Some(Id(11)), 1).await.unwrap(), [fingerprint(12, 3, &many)]);
}

pub async fn fingerprints_put_replaces_and_pages_by_id(db: &TestDb) {
    user(db, 1, "alice").await;
    for id in [105, 101, 104, 102, 103] {
        video(db, id, 1, &[]).await;
    }
    video(db, u64::MAX, 1, &[]).await; // stored as -1: first in stored order
    let fps = db.fingerprints();
    assert!(fps.page(None, 10).await.unwrap().is_empty());
    for id in [105, 101, 104, 102, u64::MAX] {
        fps.put(&fingerprint(id, 1, &[id])).await.unwrap();
    }
    // A re-run replaces every column.
    let replaced = Fingerprint { created_at_ms: NOW + 5, ..fingerprint(104, 9, &[7, 8]) };
    fps.put(&replaced).await.unwrap();

    let all = fps.page(None, 100).await.unwrap();
    assert_eq!(fingerprint_ids(&all), [u64::MAX, 101, 102, 104, 105]);
    assert_eq!(all[3], replaced);
    assert_eq!(all[1], fingerprint(101, 1, &[101]));

    // Keyset pages cover everything exactly once.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = fps.page(after, 2).await.unwrap();
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = Some(last.video_id);
        seen.extend(fingerprint_ids(&page));
    }
    assert_eq!(seen, [u64::MAX, 101, 102, 104, 105]);
    // The cursor need not have a fingerprint (103 has none).
    assert_eq!(fingerprint_ids(&fps.page(Some(Id(103)), 10).await.unwrap()), [104, 105]);
    assert!(fps.page(Some(Id(105)), 10).await.unwrap().is_empty());
    assert!(fps.page(None, 0).await.unwrap().is_empty());
}

pub async fn fingerprints_by_content_hash_delete_and_cascade(db: &TestDb) {
    user(db, 1, "alice").await;
    for id in [13, 10, 12, 11] {
        video(db, id, 1, &[]).await;
    }
    let fps = db.fingerprints();
    let err = fps.put(&fingerprint(99, 1, &[1])).await.unwrap_err();
    assert!(matches!(err, MetaError::NotFound), "{err:?}");
    assert!(fps.page(None, 10).await.unwrap().is_empty());

    for (id, tag) in [(13, 1), (10, 1), (12, 2), (11, 1)] {
        fps.put(&fingerprint(id, tag, &[])).await.unwrap();
    }
    let by_hash = |tag| async move { fps.by_content_hash(&content_hash(tag)).await.unwrap() };
    assert_eq!(by_hash(1).await, [Id(10), Id(11), Id(13)]);
    assert_eq!(by_hash(2).await, [Id(12)]);
    assert!(by_hash(3).await.is_empty());
    // Compared exactly.
    assert!(fps.by_content_hash(&content_hash(1).to_uppercase()).await.unwrap().is_empty());
    // Replacing the hash moves the video between lookups.
    fps.put(&fingerprint(11, 2, &[])).await.unwrap();
    assert_eq!(by_hash(1).await, [Id(10), Id(13)]);
    assert_eq!(by_hash(2).await, [Id(11), Id(12)]);

    assert_eq!(fps.get(Id(13)).await.unwrap().map(|f| f.video_id), Some(Id(13)));
    assert!(fps.delete(Id(13)).await.unwrap());
    assert_eq!(fps.get(Id(13)).await.unwrap(), None);
    assert!(!fps.delete(Id(13)).await.unwrap());
    assert!(!fps.delete(Id(99)).await.unwrap());
    assert_eq!(by_hash(1).await, [Id(10)]);
    // Deleting a video deletes its fingerprint.
    delete_video(db, 12).await;
    assert_eq!(by_hash(2).await, [Id(11)]);
    assert_eq!(fingerprint_ids(&fps.page(None, 10).await.unwrap()), [10, 11]);
    assert!(!fps.delete(Id(12)).await.unwrap());
}

pub async fn fingerprints_malformed_frame_hashes_are_errors(db: &TestDb) {
    user(db, 1, "alice").await;
    video(db, 10, 1, &[]).await;
    video(db, 11, 1, &[]).await;
    let fps = db.fingerprints();
    fps.put(&fingerprint(10, 1, &[1, 2])).await.unwrap();
    fps.put(&fingerprint(11, 1, &[3])).await.unwrap();
    for bad in ["0", "FFFFFFFFFFFFFFFF", "+fffffffffffffff", "000000000000000g", "ééééééé  "]
    {
        crate::store::with_pool!(db.store(), |pool| {
            sqlx::query("UPDATE video_fingerprints SET frame_hashes = $1 WHERE video_id = $2")
                .bind(bad)
                .bind(Id(10).as_i64())
                .execute(pool)
                .await
                .map(drop)
                .unwrap();
        });
        let err = fps.page(None, 10).await.unwrap_err();
        assert!(matches!(err, MetaError::Database(_)), "{bad:?}: {err:?}");
        // Rows that are not read are unaffected; lookups by hash do not decode frames.
        assert_eq!(fps.page(Some(Id(10)), 10).await.unwrap(), [fingerprint(11, 1, &[3])]);
        assert_eq!(fps.by_content_hash(&content_hash(1)).await.unwrap(), [Id(10), Id(11)]);
    }
    // Putting it again repairs it.
    fps.put(&fingerprint(10, 1, &[1, 2])).await.unwrap();
    assert_eq!(fps.page(None, 1).await.unwrap(), [fingerprint(10, 1, &[1, 2])]);
}

// ---------------------------------------------------------------------------------------
// Store.

// ---------------------------------------------------------------------------------------
// Uploads.

fn new_upload(id: u64, owner_id: u64, video_id: u64, length: u64) -> NewUpload {
    NewUpload {
        id: Id(id),
        owner_id: Id(owner_id),
        video_id: Id(video_id),
        length,
        metadata: format!("filename {}", id),
        created_at_ms: NOW,
        expires_at_ms: NOW + 24 * HOUR,
    }
}

/// A user 1, a video `video_id` of theirs and an upload `id` of `length` bytes for it.
async fn upload_fixture(db: &TestDb, id: u64, video_id: u64, length: u64) {
    if db.users().by_id(Id(1)).await.unwrap().is_none() {
        user(db, 1, "alice").await;
    }
    video(db, video_id, 1, &["t"]).await;
    db.uploads().create(new_upload(id, 1, video_id, length)).await.unwrap();
}

pub async fn uploads_create_and_get(db: &TestDb) {
    user(db, 1, "alice").await;
    video(db, 10, 1, &[]).await;
    let created = db.uploads().create(new_upload(100, 1, 10, 5_000_000_000)).await.unwrap();
    assert_eq!((created.id, created.owner_id, created.video_id), (Id(100), Id(1), Id(10)));
    assert_eq!((created.length, created.offset), (5_000_000_000, 0));
    assert_eq!(created.metadata, "filename 100");
    assert_eq!((created.created_at_ms, created.updated_at_ms), (NOW, NOW));
    assert_eq!(created.expires_at_ms, NOW + 24 * HOUR);
    assert!(!created.is_complete());
    assert!(!created.is_expired(NOW));
    assert!(created.is_expired(NOW + 24 * HOUR));
    assert_eq!(db.uploads().by_id(Id(100)).await.unwrap(), Some(created));
    assert_eq!(db.uploads().by_id(Id(101)).await.unwrap(), None);
    // Ids and lengths use the full range the API can produce.
    video(db, 11, 1, &[]).await;
    let big = NewUpload { id: Id(u64::MAX - 1), ..new_upload(0, 1, 11, i64::MAX as u64) };
    db.uploads().create(big).await.unwrap();
    let got = db.uploads().by_id(Id(u64::MAX - 1)).await.unwrap().unwrap();
    assert_eq!(got.length, i64::MAX as u64);
}

pub async fn uploads_create_conflicts_and_unknown_refs(db: &TestDb) {
    upload_fixture(db, 100, 10, 10).await;
    video(db, 11, 1, &[]).await;
    // Same id.
    let err = db.uploads().create(new_upload(100, 1, 11, 10)).await.unwrap_err();
    assert!(matches!(err, MetaError::Conflict { .. }), "{err:?}");
    // Same video.
    let err = db.uploads().create(new_upload(101, 1, 10, 10)).await.unwrap_err();
    assert!(matches!(err, MetaError::Conflict { .. }), "{err:?}");
    // Unknown owner, unknown video.
    let err = db.uploads().create(new_upload(102, 9, 11, 10)).await.unwrap_err();
    assert!(matches!(err, MetaError::NotFound), "{err:?}");
    let err = db.uploads().create(new_upload(103, 1, 99, 10)).await.unwrap_err();
    assert!(matches!(err, MetaError::NotFound), "{err:?}");
    assert_eq!(db.uploads().by_id(Id(102)).await.unwrap(), None);
}

pub async fn uploads_set_offset_is_compare_and_set(db: &TestDb) {
    upload_fixture(db, 100, 10, 10).await;
    let uploads = db.uploads();
    assert!(uploads.set_offset(Id(100), 0, 4, NOW + 48 * HOUR, NOW + 1).await.unwrap());
    let got = uploads.by_id(Id(100)).await.unwrap().unwrap();
    assert_eq!((got.offset, got.expires_at_ms, got.updated_at_ms), (4, NOW + 48 * HOUR, NOW + 1));
    // Stale `from`, backwards, past the length, unknown upload: nothing changes.
    assert!(!uploads.set_offset(Id(100), 0, 6, NOW, NOW).await.unwrap());
    assert!(!uploads.set_offset(Id(100), 4, 3, NOW, NOW).await.unwrap());
    assert!(!uploads.set_offset(Id(100), 4, 11, NOW, NOW).await.unwrap());
    assert!(!uploads.set_offset(Id(999), 0, 1, NOW, NOW).await.unwrap());
    assert_eq!(uploads.by_id(Id(100)).await.unwrap().unwrap().offset, 4);
    // Same offset is allowed (an empty chunk), and the full length too.
    assert!(uploads.set_offset(Id(100), 4, 4, NOW + 48 * HOUR, NOW + 2).await.unwrap());
    assert!(uploads.set_offset(Id(100), 4, 10, NOW + 48 * HOUR, NOW + 3).await.unwrap());
    assert!(!uploads.by_id(Id(100)).await.unwrap().unwrap().is_complete());

    // Concurrent writers from the same offset: exactly one wins.
    upload_fixture(db, 200, 20, 100).await;
    let mut tasks = Vec::new();
    for to in 1..=8u64 {
        let store = db.store().clone();
        tasks.push(tokio::spawn(async move {
            store.uploads().set_offset(Id(200), 0, to, NOW, NOW).await.unwrap()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.unwrap());
    }
    assert_eq!(winners, 1);
}

pub async fn uploads_complete_moves_video_to_processing(db: &TestDb) {
    upload_fixture(db, 100, 10, 10).await;
    let uploads = db.uploads();
    assert!(uploads.set_offset(Id(100), 0, 6, NOW, NOW).await.unwrap());
    // Wrong `from`: nothing changes.
    assert!(!uploads.complete(Id(100), 0, NOW + 5).await.unwrap());
    assert_eq!(db.videos().by_id(Id(10)).await.unwrap().unwrap().status, VideoStatus::Uploading);
    assert!(uploads.complete(Id(100), 6, NOW + 5).await.unwrap());
    let got = uploads.by_id(Id(100)).await.unwrap().unwrap();
    assert_eq!((got.offset, got.completed_at_ms), (10, Some(NOW + 5)));
    assert!(got.is_complete());
    assert!(!got.is_expired(NOW + 1000 * HOUR));
    let v = db.videos().by_id(Id(10)).await.unwrap().unwrap();
    assert_eq!((v.status, v.updated_at_ms), (VideoStatus::Processing, NOW + 5));
    // Completing twice, or moving the offset of a complete upload, does nothing.
    assert!(!uploads.complete(Id(100), 10, NOW + 6).await.unwrap());
    assert!(!uploads.set_offset(Id(100), 10, 10, NOW, NOW).await.unwrap());
    assert!(!uploads.complete(Id(999), 0, NOW).await.unwrap());
    // A video that moved on meanwhile (e.g. removed) is not dragged back to processing.
    upload_fixture(db, 101, 11, 3).await;
    db.videos().set_status(Id(11), VideoStatus::Removed, Some("x"), NOW).await.unwrap();
    assert!(uploads.complete(Id(101), 0, NOW + 7).await.unwrap());
    assert_eq!(db.videos().by_id(Id(11)).await.unwrap().unwrap().status, VideoStatus::Removed);
}

pub async fn uploads_delete_removes_the_uploading_video(db: &TestDb) {
    upload_fixture(db, 100, 10, 10).await;
    upload_fixture(db, 101, 11, 10).await;
    assert!(db.uploads().delete(Id(100)).await.unwrap());
    assert_eq!(db.uploads().by_id(Id(100)).await.unwrap(), None);
    assert_eq!(db.videos().by_id(Id(10)).await.unwrap(), None);
    assert!(!db.uploads().delete(Id(100)).await.unwrap());
    // A completed upload's video (now processing) stays.
    assert!(db.uploads().complete(Id(101), 0, NOW).await.unwrap());
    assert!(db.uploads().delete(Id(101)).await.unwrap());
    assert_eq!(db.videos().by_id(Id(11)).await.unwrap().unwrap().status, VideoStatus::Processing);
    // A video no longer uploading is not deleted with its upload.
    upload_fixture(db, 102, 12, 10).await;
    db.videos().set_status(Id(12), VideoStatus::Removed, None, NOW).await.unwrap();
    assert!(db.uploads().delete(Id(102)).await.unwrap());
    assert!(db.videos().by_id(Id(12)).await.unwrap().is_some());
}

pub async fn uploads_expired_and_owner_usage(db: &TestDb) {
    user(db, 1, "alice").await;
    user(db, 2, "bob").await;
    for (id, video_id, owner, length, expires) in [
        (100, 10, 1, 100, NOW + HOUR),
        (101, 11, 1, 200, NOW + 2 * HOUR),
        (102, 12, 1, 400, NOW + 3 * HOUR),
        (103, 13, 2, 800, NOW + HOUR),
    ] {
        video(db, video_id, owner, &[]).await;
        let new = NewUpload { expires_at_ms: expires, ..new_upload(id, owner, video_id, length) };
        db.uploads().create(new).await.unwrap();
    }
    let uploads = db.uploads();
    assert_eq!(
        uploads.owner_usage(Id(1), NOW).await.unwrap(),
        UploadUsage { count: 3, bytes: 700 }
    );
    assert_eq!(
        uploads.owner_usage(Id(2), NOW).await.unwrap(),
        UploadUsage { count: 1, bytes: 800 }
    );
    assert_eq!(uploads.owner_usage(Id(3), NOW).await.unwrap(), UploadUsage::default());
    // Completed and expired uploads do not count.
    assert!(uploads.complete(Id(102), 0, NOW).await.unwrap());
    assert_eq!(
        uploads.owner_usage(Id(1), NOW + HOUR).await.unwrap(),
        UploadUsage { count: 1, bytes: 200 }
    );

    let ids = |v: Vec<crate::Upload>| v.into_iter().map(|u| u.id.0).collect::<Vec<_>>();
    assert!(uploads.expired(NOW, 10).await.unwrap().is_empty());
    assert_eq!(ids(uploads.expired(NOW + HOUR, 10).await.unwrap()), [100, 103]);
    assert_eq!(ids(uploads.expired(NOW + HOUR, 1).await.unwrap()), [100]);
    // The completed one never expires.
    assert_eq!(ids(uploads.expired(NOW + 10 * HOUR, 10).await.unwrap()), [100, 103, 101]);
}

// ---------------------------------------------------------------------------------------
// Pipeline jobs.

const LEASE: i64 = 30_000;

fn job_row(id: u64, priority: i64) -> PipelineJobRow {
    PipelineJobRow {
        id: Id(id),
        owner_id: Id(1),
        priority,
        stage: "probe".to_owned(),
        status: "queued".to_owned(),
        attempts: 0,
        not_before_ms: NOW,
        lease_until_ms: 0,
        lease_token: 0,
        reason: None,
        state_json: "{}".to_owned(),
        created_at_ms: NOW,
        updated_at_ms: NOW,
    }
}

async fn claim_id(db: &TestDb, now_ms: i64, token: i64) -> Option<u64> {
    db.pipeline_jobs().claim(now_ms, LEASE, token).await.unwrap().map(|r| r.id.0)
}

pub async fn pipeline_jobs_insert_is_idempotent(db: &TestDb) {
    let jobs = db.pipeline_jobs();
    // The full 64 bits and a non-trivial state survive the round trip.
    let mut row = job_row(u64::MAX - 3, 7);
    row.state_json = r#"{"probe":{"w":720}}"#.to_owned();
    row.reason = Some("why".to_owned());
    row.attempts = 2;
    assert!(jobs.insert_if_absent(&row).await.unwrap());
    let mut other = job_row(u64::MAX - 3, 99);
    other.stage = "publish".to_owned();
    assert!(!jobs.insert_if_absent(&other).await.unwrap(), "a second insert is a no-op");
    assert_eq!(jobs.get(row.id).await.unwrap(), Some(row));
    assert_eq!(jobs.get(Id(5)).await.unwrap(), None);
}

pub async fn pipeline_jobs_claim_by_priority_then_id(db: &TestDb) {
    let jobs = db.pipeline_jobs();
    for (id, priority) in [(3, 0), (2, 5), (1, 0), (4, 5), (5, -1)] {
        assert!(jobs.insert_if_absent(&job_row(id, priority)).await.unwrap());
    }
    let mut order = Vec::new();
    for token in 1..=5 {
        let row = jobs.claim(NOW, LEASE, token).await.unwrap().unwrap();
        assert_eq!(row.status, "running");
        assert_eq!(row.lease_token, token);
        assert_eq!(row.lease_until_ms, NOW + LEASE);
        assert_eq!(row.updated_at_ms, NOW);
        assert_eq!(jobs.get(row.id).await.unwrap(), Some(row.clone()));
        order.push(row.id.0);
    }
    assert_eq!(order, [2, 4, 1, 3, 5]);
    assert_eq!(claim_id(db, NOW, 6).await, None, "everything is leased");
}

pub async fn pipeline_jobs_claim_skips_not_due_and_leased(db: &TestDb) {
    let jobs = db.pipeline_jobs();
    let mut later = job_row(1, 100);
    later.not_before_ms = NOW + 1_000;
    jobs.insert_if_absent(&later).await.unwrap();
    for (id, status) in [(2, "review"), (3, "done"), (4, "rejected"), (5, "dead")] {
        let mut row = job_row(id, 100);
        row.status = status.to_owned();
        jobs.insert_if_absent(&row).await.unwrap();
    }
    let mut leased = job_row(6, 100);
    leased.status = "running".to_owned();
    leased.lease_until_ms = NOW + 500;
    leased.lease_token = 77;
    jobs.insert_if_absent(&leased).await.unwrap();
    jobs.insert_if_absent(&job_row(7, 0)).await.unwrap();

    assert_eq!(claim_id(db, NOW, 1).await, Some(7), "only the due queued job");
    assert_eq!(claim_id(db, NOW, 2).await, None);
    assert_eq!(claim_id(db, NOW + 999, 3).await, Some(6), "lease expired at +500");
    assert_eq!(claim_id(db, NOW + 999, 4).await, None, "job 1 not due until +1000");
    assert_eq!(claim_id(db, NOW + 1_000, 5).await, Some(1));
    for id in 2..=5 {
        assert_eq!(jobs.get(Id(id)).await.unwrap().unwrap().lease_token, 0, "untouched");
    }
}

pub async fn pipeline_jobs_expired_lease_is_reclaimable(db: &TestDb) {
    let jobs = db.pipeline_jobs();
    jobs.insert_if_absent(&job_row(1, 0)).await.unwrap();
    assert_eq!(claim_id(db, NOW, 10).await, Some(1));
    assert_eq!(claim_id(db, NOW + LEASE - 1, 11).await, None, "lease still held");
    let row = jobs.claim(NOW + LEASE, LEASE, 12).await.unwrap().unwrap();
    assert_eq!((row.id, row.lease_token, row.lease_until_ms), (Id(1), 12, NOW + 2 * LEASE));
    // The first holder's token is dead.
    assert!(!jobs.renew(Id(1), 10, NOW + 5 * LEASE).await.unwrap());
    assert!(!jobs.save(&row, 10).await.unwrap());
}

pub async fn pipeline_jobs_save_and_renew_are_compare_and_set(db: &TestDb) {
    let jobs = db.pipeline_jobs();
    jobs.insert_if_absent(&job_row(1, 0)).await.unwrap();
    let mut row = jobs.claim(NOW, LEASE, 41).await.unwrap().unwrap();
    assert!(jobs.renew(Id(1), 41, NOW + 2 * LEASE).await.unwrap());
    assert_eq!(jobs.get(Id(1)).await.unwrap().unwrap().lease_until_ms, NOW + 2 * LEASE);
    assert!(!jobs.renew(Id(1), 40, NOW + 3 * LEASE).await.unwrap(), "stale token");
    assert!(!jobs.renew(Id(9), 41, NOW + 3 * LEASE).await.unwrap(), "no such job");

    row.stage = "compliance".to_owned();
    row.state_json = r#"{"probe":true}"#.to_owned();
    row.updated_at_ms = NOW + 5;
    let mut stale = row.clone();
    stale.stage = "publish".to_owned();
    assert!(!jobs.save(&stale, 40).await.unwrap(), "stale token");
    assert!(jobs.save(&row, 41).await.unwrap());
    let stored = jobs.get(Id(1)).await.unwrap().unwrap();
    assert_eq!(stored.stage, "compliance");
    assert_eq!(stored.state_json, r#"{"probe":true}"#);
    // Every column is written, the lease too (the renewal is overwritten by the row's).
    assert_eq!(stored, row);
    assert_eq!(stored.lease_until_ms, NOW + LEASE);
    assert!(!jobs.save(&job_row(9, 0), 0).await.unwrap(), "no such job");

    // Renewing needs the job to be running, not just the token to match.
    row.status = "queued".to_owned();
    assert!(jobs.save(&row, 41).await.unwrap());
    assert!(!jobs.renew(Id(1), 41, NOW + 3 * LEASE).await.unwrap());
}

pub async fn pipeline_jobs_concurrent_claims_never_share_a_job(db: &TestDb) {
    const TASKS: i64 = 8;
    const JOBS: u64 = 5;
    for id in 1..=JOBS {
        db.pipeline_jobs().insert_if_absent(&job_row(id, 0)).await.unwrap();
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(TASKS as usize));
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let store = db.store().clone();
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                let mut mine = Vec::new();
                // A loser may get None while jobs remain (PostgreSQL); keep polling.
                for n in 0..20 {
                    let token = (t + 1) * 1_000 + n;
                    if let Some(row) = store.pipeline_jobs().claim(NOW, LEASE, token).await? {
                        assert_eq!(row.lease_token, token);
                        mine.push(row.id.0);
                    }
                }
                Ok::<_, MetaError>(mine)
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for task in tasks {
        claimed.extend(task.await.unwrap().unwrap());
    }
    claimed.sort_unstable();
    assert_eq!(claimed, (1..=JOBS).collect::<Vec<_>>(), "each job handed out exactly once");
}

pub async fn pipeline_jobs_resolve_review_is_compare_and_set(db: &TestDb) {
    let jobs = db.pipeline_jobs();
    let mut row = job_row(1, 0);
    row.stage = "compliance".to_owned();
    row.status = "review".to_owned();
    row.attempts = 2;
    row.lease_token = 5;
    row.reason = Some("borderline".to_owned());
    jobs.insert_if_absent(&row).await.unwrap();
    let mut other = row.clone();
    other.id = Id(2);
    jobs.insert_if_absent(&other).await.unwrap();

    let resolve = |id, token, status, reason| {
        jobs.resolve_review(Id(id), token, "dedup", status, reason, 6, NOW + 10)
    };
    assert!(!resolve(1, 4, "queued", None).await.unwrap(), "stale token");
    assert!(!resolve(9, 5, "queued", None).await.unwrap(), "no such job");
    assert!(resolve(1, 5, "queued", None).await.unwrap());
    let approved = jobs.get(Id(1)).await.unwrap().unwrap();
    assert_eq!(
        (approved.stage.as_str(), approved.status.as_str(), approved.reason.as_deref()),
        ("dedup", "queued", None)
    );
    assert_eq!((approved.attempts, approved.not_before_ms), (0, NOW + 10));
    assert_eq!((approved.lease_token, approved.updated_at_ms), (6, NOW + 10));
    assert!(!resolve(1, 6, "queued", None).await.unwrap(), "no longer in review");
    assert_eq!(claim_id(db, NOW + 10, 7).await, Some(1));

    let refuse = jobs.resolve_review(Id(2), 5, "compliance", "rejected", Some("nope"), 8, NOW);
    assert!(refuse.await.unwrap());
    let rejected = jobs.get(Id(2)).await.unwrap().unwrap();
    assert_eq!((rejected.status.as_str(), rejected.reason.as_deref()), ("rejected", Some("nope")));
    assert_eq!((rejected.stage.as_str(), rejected.attempts), ("compliance", 2));
}

pub async fn pipeline_jobs_list_by_status_oldest_first(db: &TestDb) {
    let jobs = db.pipeline_jobs();
    for (id, status) in [(5, "review"), (2, "dead"), (3, "review"), (9, "review"), (1, "queued")] {
        let mut row = job_row(id, i64::try_from(id).unwrap());
        row.status = status.to_owned();
        jobs.insert_if_absent(&row).await.unwrap();
    }
    let ids = |v: Vec<PipelineJobRow>| v.into_iter().map(|r| r.id.0).collect::<Vec<_>>();
    assert_eq!(ids(jobs.list("review", 10).await.unwrap()), [3, 5, 9]);
    assert_eq!(ids(jobs.list("review", 2).await.unwrap()), [3, 5]);
    assert_eq!(ids(jobs.list("dead", 10).await.unwrap()), [2]);
    assert!(jobs.list("done", 10).await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------
// Social: follows, blocks, likes, shares, reports, comments, counters.

fn link_users(links: &[crate::UserLink]) -> Vec<u64> {
    links.iter().map(|l| l.user_id.0).collect()
}

pub async fn social_follows_are_idempotent_and_listed_newest_first(db: &TestDb) {
    for (id, name) in [(1, "alice"), (2, "bob"), (3, "carol"), (4, "dave")] {
        user(db, id, name).await;
    }
    let social = db.social();
    assert!(social.follow(Id(1), Id(2), Id(100), NOW).await.unwrap());
    // Again: nothing changes, whatever the new link id.
    assert!(!social.follow(Id(1), Id(2), Id(101), NOW).await.unwrap());
    assert!(social.follow(Id(3), Id(2), Id(102), NOW + 1).await.unwrap());
    assert!(social.follow(Id(4), Id(2), Id(103), NOW + 2).await.unwrap());
    assert!(social.follow(Id(1), Id(3), Id(104), NOW + 3).await.unwrap());
    assert!(social.is_following(Id(1), Id(2)).await.unwrap());
    assert!(!social.is_following(Id(2), Id(1)).await.unwrap());

    let followers = social.followers(Id(2), None, 10).await.unwrap();
    assert_eq!(link_users(&followers), [4, 3, 1]);
    assert_eq!(followers[0].username, "dave");
    assert_eq!(followers[0].link_id, Id(103));
    assert_eq!(followers[2].created_at_ms, NOW);
    let page1 = social.followers(Id(2), None, 2).await.unwrap();
    assert_eq!(link_users(&page1), [4, 3]);
    let page2 = social.followers(Id(2), Some(page1[1].link_id), 2).await.unwrap();
    assert_eq!(link_users(&page2), [1]);
    assert_eq!(link_users(&social.following(Id(1), None, 10).await.unwrap()), [3, 2]);
    assert!(social.following(Id(2), None, 10).await.unwrap().is_empty());
    assert!(social.followers(Id(2), None, 0).await.unwrap().is_empty());

    assert!(social.unfollow(Id(1), Id(2)).await.unwrap());
    assert!(!social.unfollow(Id(1), Id(2)).await.unwrap());
    assert_eq!(link_users(&social.followers(Id(2), None, 10).await.unwrap()), [4, 3]);
    // Unknown users.
    let err = social.follow(Id(1), Id(99), Id(105), NOW).await.unwrap_err();
    assert!(matches!(err, MetaError::NotFound), "{err:?}");
}

pub async fn social_block_removes_follows_and_forbids_new_ones(db: &TestDb) {
    for (id, name) in [(1, "alice"), (2, "bob"), (3, "carol")] {
        user(db, id, name).await;
    }
    let social = db.social();
    assert!(social.follow(Id(1), Id(2), Id(100), NOW).await.unwrap());
    assert!(social.follow(Id(2), Id(1), Id(101), NOW).await.unwrap());
    assert!(social.follow(Id(3), Id(2), Id(102), NOW).await.unwrap());

    let outcome = social.block(Id(1), Id(2), NOW).await.unwrap();
    assert!(outcome.newly_blocked);
    assert_eq!(outcome.removed_follows, [(Id(1), Id(2)), (Id(2), Id(1))]);
    assert!(social.is_blocked(Id(1), Id(2)).await.unwrap());
    assert!(!social.is_blocked(Id(2), Id(1)).await.unwrap());
    assert!(social.blocked_between(Id(1), Id(2)).await.unwrap());
    assert!(social.blocked_between(Id(2), Id(1)).await.unwrap());
    assert!(!social.blocked_between(Id(1), Id(3)).await.unwrap());
    // Both directions are partners; a third user has none.
    assert_eq!(social.block_partners(Id(1)).await.unwrap(), vec![Id(2)]);
    assert_eq!(social.block_partners(Id(2)).await.unwrap(), vec![Id(1)]);
    assert!(social.block_partners(Id(3)).await.unwrap().is_empty());
    // Other follows stay.
    assert_eq!(link_users(&social.followers(Id(2), None, 10).await.unwrap()), [3]);
    // Neither may follow the other while the block stands.
    assert!(!social.follow(Id(2), Id(1), Id(103), NOW).await.unwrap());
    assert!(!social.follow(Id(1), Id(2), Id(104), NOW).await.unwrap());
    assert!(!social.is_following(Id(2), Id(1)).await.unwrap());

    let again = social.block(Id(1), Id(2), NOW).await.unwrap();
    assert_eq!(again, crate::BlockOutcome::default());
    assert!(social.unblock(Id(1), Id(2)).await.unwrap());
    assert!(!social.unblock(Id(1), Id(2)).await.unwrap());
    assert!(!social.blocked_between(Id(1), Id(2)).await.unwrap());
    assert!(social.follow(Id(2), Id(1), Id(105), NOW).await.unwrap());
    let err = social.block(Id(1), Id(99), NOW).await.unwrap_err();
    assert!(matches!(err, MetaError::NotFound), "{err:?}");
}

/// Whom `user` follows as their stored list says (what a feed read starts from), and as the
/// follows themselves say, both by id.
async fn following_both_ways(db: &TestDb, user: u64) -> (Vec<Id>, Vec<Id>) {
    let start = db.feed().reader_start(Id(user), Some(1_000), None, 1).await.unwrap();
    let stored = start.graph.unwrap().followees;
    let links = db.social().following(Id(user), None, 1_000).await.unwrap();
    let mut followed: Vec<Id> = links.iter().map(|l| l.user_id).collect();
    followed.sort_unstable();
    (stored, followed)
}

pub async fn social_following_lists_stay_exact_under_concurrent_changes(db: &TestDb) {
    const OTHERS: u64 = 24;
    for id in 1..=OTHERS + 1 {
        user(db, id, &format!("user{id}")).await;
    }
    // Everybody at once: user 1 follows the others while they follow user 1 back, so the
    // same rows are locked from both sides.
    let race = |step: u64| {
        let barrier = Arc::new(tokio::sync::Barrier::new(2 * OTHERS as usize));
        let tasks: Vec<_> = (2..=OTHERS + 1)
            .flat_map(|other| [(1, other), (other, 1)])
            .map(|(a, b)| {
                let store = db.store().clone();
                let barrier = Arc::clone(&barrier);
                tokio::spawn(async move {
                    barrier.wait().await;
                    let social = store.social();
                    let link = Id(step * 1_000 + a * 100 + b);
                    match step {
                        // Follow.
                        1 => drop(social.follow(Id(a), Id(b), link, NOW).await.unwrap()),
                        // Every third pair blocks (taking both follows), every third unfollows.
                        _ if b % 3 == 0 => drop(social.block(Id(a), Id(b), NOW).await.unwrap()),
                        _ if b % 3 == 1 => drop(social.unfollow(Id(a), Id(b)).await.unwrap()),
                        _ => drop(social.follow(Id(a), Id(b), link, NOW).await.unwrap()),
                    }
                })
            })
            .collect();
        async move {
            for task in tasks {
                task.await.unwrap();
            }
        }
    };
    race(1).await;
    let (stored, followed) = following_both_ways(db, 1).await;
    assert_eq!(followed.len(), OTHERS as usize);
    assert_eq!(stored, followed);
    race(2).await;
    for user in 1..=OTHERS + 1 {
        let (stored, followed) = following_both_ways(db, user).await;
        assert_eq!(stored, followed, "user {user}");
    }
    let (_, followed) = following_both_ways(db, 1).await;
    assert!(!followed.is_empty() && followed.len() < OTHERS as usize, "{followed:?}");

    // Unfollowing everyone leaves an empty list.
    for id in followed {
        assert!(db.social().unfollow(Id(1), id).await.unwrap());
    }
    assert_eq!(following_both_ways(db, 1).await, (Vec::new(), Vec::new()));

    // The repair command's rebuild writes a list per user who follows anyone, the same lists.
    db.social().follow(Id(1), Id(2), Id(9_999), NOW).await.unwrap();
    let mut before = Vec::new();
    for user in 1..=OTHERS + 1 {
        before.push(following_both_ways(db, user).await);
    }
    let followers = before.iter().filter(|(_, followed)| !followed.is_empty()).count();
    assert_eq!(db.social().rebuild_following_lists().await.unwrap(), followers as u64);
    for (user, before) in (1..=OTHERS + 1).zip(before) {
        assert_eq!(following_both_ways(db, user).await, before, "user {user}");
    }
}

pub async fn social_likes_are_idempotent_under_concurrency(db: &TestDb) {
    const TASKS: usize = 16;
    user(db, 1, "alice").await;
    user(db, 2, "bob").await;
    video(db, 10, 1, &[]).await;
    let race = |like: bool| {
        let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let store = db.store().clone();
                let barrier = Arc::clone(&barrier);
                tokio::spawn(async move {
                    barrier.wait().await;
                    if like {
                        store.social().like(Id(2), Id(10), NOW).await.unwrap()
                    } else {
                        store.social().unlike(Id(2), Id(10)).await.unwrap()
                    }
                })
            })
            .collect();
        async move {
            let mut changed = 0;
            for task in tasks {
                changed += usize::from(task.await.unwrap());
            }
            changed
        }
    };
    assert_eq!(race(true).await, 1, "exactly one like inserts");
    assert!(db.social().has_liked(Id(2), Id(10)).await.unwrap());
    assert!(!db.social().has_liked(Id(1), Id(10)).await.unwrap());
    assert_eq!(race(false).await, 1, "exactly one unlike deletes");
    assert!(!db.social().has_liked(Id(2), Id(10)).await.unwrap());
    let err = db.social().like(Id(2), Id(99), NOW).await.unwrap_err();
    assert!(matches!(err, MetaError::NotFound), "{err:?}");
}

pub async fn social_shares_and_reports(db: &TestDb) {
    use crate::{NewShare, Report, ReportTarget};
    user(db, 1, "alice").await;
    user(db, 2, "bob").await;
    video(db, 10, 1, &[]).await;
    let share = |id: u64, channel: Option<&str>| NewShare {
        id: Id(id),
        video_id: Id(10),
        user_id: Id(2),
        channel: channel.map(str::to_owned),
        created_at_ms: NOW,
    };
    // Every share is recorded, repeats included.
    db.social().share(share(100, None)).await.unwrap();
    db.social().share(share(101, Some("wechat"))).await.unwrap();
    let err = db.social().share(NewShare { video_id: Id(99), ..share(102, None) }).await;
    assert!(matches!(err, Err(MetaError::NotFound)), "{err:?}");

    let report = |id: u64, target: ReportTarget| Report {
        id: Id(id),
        reporter_id: Id(2),
        target,
        reason: format!("reason {id}"),
        created_at_ms: NOW,
    };
    let targets =
        [ReportTarget::Video(Id(10)), ReportTarget::Comment(Id(7)), ReportTarget::User(Id(1))];
    for (i, target) in targets.into_iter().enumerate() {
        db.social().report(report(200 + i as u64, target)).await.unwrap();
    }
    let listed = db.social().reports(None, 10).await.unwrap();
    assert_eq!(listed.iter().map(|r| r.id.0).collect::<Vec<_>>(), [202, 201, 200]);
    assert_eq!(listed[0], report(202, ReportTarget::User(Id(1))));
    assert_eq!(listed[1].target, ReportTarget::Comment(Id(7)));
    let page2 = db.social().reports(Some(Id(201)), 10).await.unwrap();
    assert_eq!(page2.iter().map(|r| r.id.0).collect::<Vec<_>>(), [200]);
    let err = db.social().report(Report { reporter_id: Id(99), ..report(203, targets[0]) }).await;
    assert!(matches!(err, Err(MetaError::NotFound)), "{err:?}");
}

fn new_comment(
    id: u64,
    video_id: u64,
    author: u64,
    parent: Option<u64>,
    reply_to: Option<u64>,
) -> crate::NewComment {
    crate::NewComment {
        id: Id(id),
        video_id: Id(video_id),
        author_id: Id(author),
        parent_id: parent.map(Id),
        reply_to_id: reply_to.map(Id),
        text: format!("comment {id}"),
        created_at_ms: NOW + id as i64,
    }
}

fn comment_ids(comments: &[crate::Comment]) -> Vec<u64> {
    comments.iter().map(|c| c.id.0).collect()
}

pub async fn comments_replies_counts_and_delete(db: &TestDb) {
    user(db, 1, "alice").await;
    user(db, 2, "bob").await;
    video(db, 10, 1, &[]).await;
    video(db, 11, 1, &[]).await;
    let comments = db.comments();
    let top = comments.create(new_comment(100, 10, 2, None, None)).await.unwrap();
    assert_eq!(top.author_username, "bob");
    assert_eq!((top.parent_id, top.reply_to_id, top.reply_count), (None, None, 0));
    assert_eq!(top.text, "comment 100");
    comments.create(new_comment(101, 10, 1, None, None)).await.unwrap();
    let reply = comments.create(new_comment(102, 10, 1, Some(100), Some(100))).await.unwrap();
    assert_eq!(reply.parent_id, Some(Id(100)));
    // A reply to a reply is listed under the top-level comment and remembers what it answers.
    let nested = comments.create(new_comment(103, 10, 2, Some(100), Some(102))).await.unwrap();
    assert_eq!((nested.parent_id, nested.reply_to_id), (Some(Id(100)), Some(Id(102))));

    let listed = comments.top_level(Id(10), None, None, 10).await.unwrap();
    assert_eq!(comment_ids(&listed), [101, 100]);
    assert_eq!(listed[1].reply_count, 2);
    let page = comments.top_level(Id(10), None, Some(Id(101)), 10).await.unwrap();
    assert_eq!(comment_ids(&page), [100]);
    assert_eq!(comment_ids(&comments.replies(Id(100), None, None, 10).await.unwrap()), [102, 103]);
    assert_eq!(
        comment_ids(&comments.replies(Id(100), None, Some(Id(102)), 10).await.unwrap()),
        [103]
    );
    assert!(comments.top_level(Id(11), None, None, 10).await.unwrap().is_empty());

    // Parents must be top-level comments of the same video; nothing is stored otherwise.
    for bad in [
        new_comment(104, 11, 2, Some(100), Some(100)),
        new_comment(105, 10, 2, Some(102), Some(102)),
        new_comment(106, 10, 2, Some(999), None),
    ] {
        let err = comments.create(bad).await.unwrap_err();
        assert!(matches!(err, MetaError::NotFound), "{err:?}");
    }
    assert!(comments.by_id(Id(104)).await.unwrap().is_none());
    assert_eq!(comments.by_id(Id(100)).await.unwrap().unwrap().reply_count, 2);
    let err = comments.create(new_comment(107, 99, 2, None, None)).await.unwrap_err();
    assert!(matches!(err, MetaError::NotFound), "{err:?}");

    // Deleting a reply lowers the count; deleting a top-level comment takes its replies.
    assert_eq!(comments.delete(Id(102)).await.unwrap(), 1);
    assert_eq!(comments.by_id(Id(100)).await.unwrap().unwrap().reply_count, 1);
    assert_eq!(comments.delete(Id(100)).await.unwrap(), 2);
    assert!(comments.by_id(Id(103)).await.unwrap().is_none());
    assert_eq!(comments.delete(Id(100)).await.unwrap(), 0);
    assert_eq!(comment_ids(&comments.top_level(Id(10), None, None, 10).await.unwrap()), [101]);
}

pub async fn comments_of_blocked_authors_are_hidden_from_the_blocker(db: &TestDb) {
    for (id, name) in [(1, "alice"), (2, "bob"), (3, "carol")] {
        user(db, id, name).await;
    }
    video(db, 10, 1, &[]).await;
    let comments = db.comments();
    comments.create(new_comment(100, 10, 2, None, None)).await.unwrap();
    comments.create(new_comment(101, 10, 3, None, None)).await.unwrap();
    comments.create(new_comment(102, 10, 2, Some(101), Some(101))).await.unwrap();
    comments.create(new_comment(103, 10, 1, Some(101), Some(101))).await.unwrap();
    db.social().block(Id(3), Id(2), NOW).await.unwrap();

    let seen_by = |viewer: Option<u64>| async move {
        let top = db.comments().top_level(Id(10), viewer.map(Id), None, 10).await.unwrap();
        let replies = db.comments().replies(Id(101), viewer.map(Id), None, 10).await.unwrap();
        (comment_ids(&top), comment_ids(&replies))
    };
    assert_eq!(seen_by(Some(3)).await, (vec![101], vec![103]));
    // The block hides bob's comments from carol only.
    assert_eq!(seen_by(Some(2)).await, (vec![101, 100], vec![102, 103]));
    assert_eq!(seen_by(None).await, (vec![101, 100], vec![102, 103]));
}

// ---------------------------------------------------------------------------------------
// Recommender state.

pub async fn recommend_state_upserts_pages_and_prunes(db: &TestDb) {
    let row = |kind, subject, segment, data: &[u8], at| StateRow {
        kind,
        subject,
        segment,
        data: data.to_vec(),
        updated_at_ms: at,
    };
    let repo = db.recommend_state();
    repo.upsert(&[]).await.unwrap();
    // Full 64-bit subjects and segments, bytes of every value, more rows than one chunk.
    let mut rows: Vec<StateRow> =
        (0..1200u64).map(|u| row(StateKind::Seen, u, 0, &[u as u8, 0, 255], NOW)).collect();
    rows.push(row(StateKind::Seen, u64::MAX, 0, &(0..=255).collect::<Vec<u8>>(), NOW));
    rows.push(row(StateKind::Cover, 10, u64::MAX - 1, b"a", NOW));
    rows.push(row(StateKind::Cover, 10, 0, b"b", NOW));
    repo.upsert(&rows).await.unwrap();
    // Replacing: the newer state wins; an older write (a slower node) is ignored.
    repo.upsert(&[
        row(StateKind::Seen, 5, 0, b"newer", NOW + 10),
        row(StateKind::Cover, 10, 0, b"c", NOW + 1),
    ])
    .await
    .unwrap();
    repo.upsert(&[row(StateKind::Seen, 5, 0, b"older", NOW + 5)]).await.unwrap();

    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = repo.page(StateKind::Seen, 0, after, 500).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some((last.subject, last.segment));
        seen.extend(page);
    }
    assert_eq!(seen.len(), 1201);
    let five = seen.iter().find(|r| r.subject == 5).unwrap();
    assert_eq!((five.data.as_slice(), five.updated_at_ms), (&b"newer"[..], NOW + 10));
    let max = seen.iter().find(|r| r.subject == u64::MAX).unwrap();
    assert_eq!(max.data, (0..=255).collect::<Vec<u8>>());
    let mut subjects: Vec<u64> = seen.iter().map(|r| r.subject).collect();
    subjects.dedup();
    assert_eq!(subjects.len(), 1201, "no row twice across pages");

    let covers = repo.page(StateKind::Cover, 0, None, 10).await.unwrap();
    let mut got: Vec<(u64, u64, Vec<u8>)> =
        covers.into_iter().map(|r| (r.subject, r.segment, r.data)).collect();
    got.sort();
    assert_eq!(got, vec![(10, 0, b"c".to_vec()), (10, u64::MAX - 1, b"a".to_vec())]);

    // Only what changed since a time; pruning drops what did not change since another.
    let recent = repo.page(StateKind::Seen, NOW + 1, None, 10).await.unwrap();
    assert_eq!(recent.iter().map(|r| r.subject).collect::<Vec<_>>(), vec![5]);
    assert_eq!(repo.prune(StateKind::Seen, NOW + 1).await.unwrap(), 1200);
    assert_eq!(repo.page(StateKind::Seen, 0, None, 10).await.unwrap().len(), 1);
    assert_eq!(repo.page(StateKind::Cover, 0, None, 10).await.unwrap().len(), 2, "other kind kept");
}

pub async fn counters_add_get_and_rebuild(db: &TestDb) {
    use crate::CounterKey;
    let key = |subject: &'static str, id: u64, metric: &'static str| CounterKey {
        subject,
        id: Id(id),
        metric,
    };
    let counters = db.counters();
    assert_eq!(counters.get(&[key("video", 10, "likes")]).await.unwrap(), [0]);
    counters
        .add(&[
            (key("video", 10, "likes"), 2),
            (key("user", 10, "followers"), 5),
            (key("video", 10, "likes"), 1),
        ])
        .await
        .unwrap();
    counters
        .add(&[(key("video", 10, "likes"), -1), (key("video", u64::MAX, "shares"), 7)])
        .await
        .unwrap();
    counters.add(&[]).await.unwrap();
    let keys = [
        key("video", 10, "likes"),
        key("user", 10, "followers"),
        key("video", 10, "comments"),
        key("video", u64::MAX, "shares"),
        key("user", 10, "likes"),
    ];
    assert_eq!(counters.get(&keys).await.unwrap(), [2, 5, 0, 7, 0]);
    assert!(counters.get(&[]).await.unwrap().is_empty());

    // Rebuild: from the source tables, overwriting whatever the table held.
    for (id, name) in [(1, "alice"), (2, "bob"), (3, "carol")] {
        user(db, id, name).await;
    }
    video(db, 10, 1, &[]).await;
    video(db, 11, 1, &[]).await;
    let social = db.social();
    social.like(Id(2), Id(10), NOW).await.unwrap();
    social.like(Id(3), Id(10), NOW).await.unwrap();
    social.like(Id(3), Id(11), NOW).await.unwrap();
    social.follow(Id(2), Id(1), Id(100), NOW).await.unwrap();
    social.follow(Id(3), Id(1), Id(101), NOW).await.unwrap();
    social.follow(Id(1), Id(3), Id(102), NOW).await.unwrap();
    db.comments().create(new_comment(200, 10, 2, None, None)).await.unwrap();
    db.comments().create(new_comment(201, 10, 3, Some(200), Some(200))).await.unwrap();
    social
        .share(crate::NewShare {
            id: Id(300),
            video_id: Id(11),
            user_id: Id(2),
            channel: None,
            created_at_ms: NOW,
        })
        .await
        .unwrap();
    db.plays().record(&[play(11, NOW, 4)]).await.unwrap();
    // A reply count gone wrong is repaired too.
    crate::store::with_pool!(db.store(), |pool| {
        sqlx::query("UPDATE comments SET reply_count = 9 WHERE id = 200")
            .execute(pool)
            .await
            .map(drop)
            .unwrap()
    });

    let written = counters.rebuild().await.unwrap();
    assert_eq!(written, 10);
    let keys = [
        key("video", 10, "likes"),
        key("video", 11, "likes"),
        key("video", 10, "comments"),
        key("video", 11, "shares"),
        key("video", 11, "plays"),
        key("video", 10, "plays"),
        key("user", 1, "followers"),
        key("user", 1, "following"),
        key("user", 3, "followers"),
        key("user", 2, "following"),
        key("user", 10, "followers"),
        key("video", u64::MAX, "shares"),
    ];
    assert_eq!(counters.get(&keys).await.unwrap(), [2, 1, 2, 1, 4, 0, 2, 1, 1, 1, 0, 0]);
    assert_eq!(db.comments().by_id(Id(200)).await.unwrap().unwrap().reply_count, 1);
    // Idempotent.
    assert_eq!(counters.rebuild().await.unwrap(), 10);
    assert_eq!(counters.get(&keys).await.unwrap(), [2, 1, 2, 1, 4, 0, 2, 1, 1, 1, 0, 0]);
}

pub async fn ping(db: &TestDb) {
    db.ping().await.unwrap();
}

pub async fn migrations_are_idempotent(db: &TestDb) {
    user(db, 1, "alice").await;
    // Connecting again runs the migrator again: nothing to apply, nothing lost.
    for _ in 0..2 {
        let again = db.reconnect().await.unwrap();
        assert_eq!(again.backend(), db.backend());
        again.ping().await.unwrap();
        assert!(again.users().by_username("alice").await.unwrap().is_some());
        again.close().await;
    }
    // The original handle is unaffected by the others closing.
    assert!(db.users().by_id(Id(1)).await.unwrap().is_some());
}

pub async fn content_claims_first_holder_wins_until_released(db: &TestDb) {
    user(db, 1, "alice").await;
    for id in [20, 21, 22] {
        video(db, id, 1, &[]).await;
    }
    let fps = db.fingerprints();
    assert_eq!(fps.claim_content("aa", Id(20)).await.unwrap(), Id(20));
    // Claiming again is idempotent; another video sees the holder.
    assert_eq!(fps.claim_content("aa", Id(20)).await.unwrap(), Id(20));
    assert_eq!(fps.claim_content("aa", Id(21)).await.unwrap(), Id(20));
    assert_eq!(fps.claim_content("bb", Id(21)).await.unwrap(), Id(21));
    // Deleting a video's fingerprint releases its claim (a refused video frees its hash).
    fps.delete(Id(20)).await.unwrap();
    assert_eq!(fps.claim_content("aa", Id(22)).await.unwrap(), Id(22));
    assert_eq!(fps.claim_content("aa", Id(21)).await.unwrap(), Id(22));
    // Unknown videos cannot claim.
    assert!(matches!(fps.claim_content("cc", Id(999)).await, Err(MetaError::NotFound)));
}

pub async fn content_claims_concurrent_claims_have_one_winner(db: &TestDb) {
    user(db, 1, "alice").await;
    let ids: Vec<u64> = (30..46).collect();
    for &id in &ids {
        video(db, id, 1, &[]).await;
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(ids.len()));
    let tasks: Vec<_> = ids
        .iter()
        .map(|&id| {
            let store = db.store().clone();
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                store.fingerprints().claim_content("same-bytes", Id(id)).await.unwrap()
            })
        })
        .collect();
    let mut holders = Vec::new();
    for task in tasks {
        holders.push(task.await.unwrap());
    }
    let first = holders[0];
    assert!(holders.iter().all(|h| *h == first), "{holders:?}");
    assert!(ids.contains(&first.0));
}

pub async fn renditions_and_users_of_a_page_in_one_read(db: &TestDb) {
    user(db, 1, "alice").await;
    user(db, 2, "bob").await;
    for id in [10, 11, 12] {
        video(db, id, 1, &[]).await;
    }
    video(db, u64::MAX, 2, &[]).await;
    let renditions = db.renditions();
    for row in [
        rendition(10, "720p", 720, 2_500_000),
        rendition(10, "480p", 480, 900_000),
        rendition(12, "480p", 480, 800_000),
        rendition(u64::MAX, "360p", 360, 1),
    ] {
        renditions.put(&row).await.unwrap();
    }
    let ids = [Id(10), Id(11), Id(12), Id(u64::MAX), Id(999), Id(10)];
    let by_video = renditions.for_videos(&ids).await.unwrap();
    assert_eq!(by_video.len(), 3, "no entry for videos without renditions");
    for id in [Id(10), Id(12), Id(u64::MAX)] {
        // The same lists, in the same order, as one video's read.
        assert_eq!(by_video[&id], renditions.for_video(id).await.unwrap(), "{id}");
    }
    assert!(renditions.for_videos(&[]).await.unwrap().is_empty());

    let users = db.users().by_ids(&[Id(2), Id(1), Id(77), Id(1)]).await.unwrap();
    assert_eq!(users.len(), 2);
    assert_eq!(
        (users[&Id(1)].username.as_str(), users[&Id(2)].username.as_str()),
        ("alice", "bob")
    );
    assert!(db.users().by_ids(&[]).await.unwrap().is_empty());
}

// --- notifications -------------------------------------------------------------------------

fn note(recipient: u64, kind: &str, actor: u64, video: u64, source: &str) -> NewNotification {
    NewNotification {
        recipient: Id(recipient),
        kind: kind.into(),
        actor: Some(Id(actor)),
        video_id: Some(Id(video)),
        comment_id: None,
        text: None,
        source: source.into(),
        created_at_ms: 1_000,
    }
}

pub async fn notifications_insert_is_idempotent_and_counts_unread(db: &TestDb) {
    user(db, 1, "ann").await;
    user(db, 2, "bob").await;
    let batch = [note(1, "like", 2, 9, "social:0:1"), note(1, "like", 2, 9, "social:1:1")];
    let inserted = db.notifications().insert(&batch).await.unwrap();
    assert_eq!(inserted.len(), 2);
    assert_eq!(inserted[0].actor_username.as_deref(), Some("bob"));
    assert!(!inserted[0].read);
    // A replayed batch inserts nothing and leaves the count alone.
    assert!(db.notifications().insert(&batch).await.unwrap().is_empty());
    assert_eq!(db.notifications().unread(Id(1)).await.unwrap(), 2);
    assert_eq!(db.notifications().unread(Id(2)).await.unwrap(), 0);
    // An unknown recipient is skipped, not an error.
    let ghost = [note(77, "follow", 2, 9, "social:2:77")];
    assert!(db.notifications().insert(&ghost).await.unwrap().is_empty());
}

pub async fn notifications_pages_newest_first_and_mark_read(db: &TestDb) {
    user(db, 1, "ann").await;
    user(db, 2, "bob").await;
    let batch: Vec<_> = (0..5).map(|i| note(1, "like", 2, 9, &format!("social:{i}:1"))).collect();
    db.notifications().insert(&batch).await.unwrap();
    db.notifications().insert(&[note(2, "follow", 1, 0, "social:9:2")]).await.unwrap();
    let first = db.notifications().page(Id(1), None, 3).await.unwrap();
    assert_eq!(first.len(), 3);
    assert!(first.windows(2).all(|w| w[0].id > w[1].id));
    assert!(first.iter().all(|n| n.recipient == Id(1)));
    let rest = db.notifications().page(Id(1), Some(first[2].id), 3).await.unwrap();
    assert_eq!(rest.len(), 2);
    assert!(rest[0].id < first[2].id);
    // Reading up to the middle one marks it and the older ones, and only ann's.
    assert_eq!(db.notifications().mark_read(Id(1), first[1].id, 5).await.unwrap(), 4);
    assert_eq!(db.notifications().unread(Id(1)).await.unwrap(), 1);
    assert_eq!(db.notifications().unread(Id(2)).await.unwrap(), 1);
    assert_eq!(db.notifications().mark_read(Id(1), first[1].id, 6).await.unwrap(), 0);
    let page = db.notifications().page(Id(1), None, 10).await.unwrap();
    assert_eq!(page.iter().map(|n| n.read).collect::<Vec<_>>(), [false, true, true, true, true]);
    // The inbox read: the same page and the unread count together.
    let (rows, unread) = db.notifications().inbox(Id(1), None, 10).await.unwrap();
    assert_eq!((rows, unread), (page, 1));
    assert_eq!(db.notifications().inbox(Id(77), None, 10).await.unwrap(), (Vec::new(), 0));
}

// ---------------------------------------------------------------------------------------
// The following feed.

/// A published video `id` by `author`, published at `at`.
async fn published(db: &TestDb, id: u64, author: u64, at: i64) -> FeedItem {
    video(db, id, author, &[]).await;
    db.videos().set_status(Id(id), VideoStatus::Published, None, at).await.unwrap();
    FeedItem { video_id: Id(id), author_id: Id(author), at_ms: at }
}

fn rows(user: u64, items: &[FeedItem]) -> Vec<InboxRow> {
    items.iter().map(|&item| InboxRow { user_id: Id(user), item }).collect()
}

fn video_ids(items: &[FeedItem]) -> Vec<u64> {
    items.iter().map(|i| i.video_id.0).collect()
}

async fn follow(db: &TestDb, follower: u64, followee: u64, link: u64) {
    db.social().follow(Id(follower), Id(followee), Id(link), NOW).await.unwrap();
}

pub async fn feed_inbox_push_is_idempotent_and_pages_newest_first(db: &TestDb) {
    for (id, name) in [(1, "viewer"), (2, "ann"), (3, "bob")] {
        user(db, id, name).await;
    }
    follow(db, 1, 2, 100).await;
    follow(db, 1, 3, 101).await;
    // Publication order differs from id order; two share a publication time.
    let items = [
        published(db, 10, 2, NOW + 5).await,
        published(db, 11, 3, NOW + 1).await,
        published(db, 12, 2, NOW + 3).await,
        published(db, 13, 3, NOW + 3).await,
        published(db, 14, 2, NOW + 2).await,
    ];
    assert_eq!(db.feed().push(&rows(1, &items)).await.unwrap(), 5);
    // A re-delivered fan-out inserts nothing, even mixed with a new row.
    assert_eq!(db.feed().push(&rows(1, &items)).await.unwrap(), 0);
    assert_eq!(db.feed().push(&rows(1, &items[..1])).await.unwrap(), 0);
    assert_eq!(db.feed().push(&[]).await.unwrap(), 0);

    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = db.feed().inbox_page(Id(1), before, 2).await.unwrap();
        seen.extend(video_ids(&page));
        match page.last() {
            Some(last) if page.len() == 2 => before = Some((last.at_ms, last.video_id)),
            _ => break,
        }
    }
    // Newest first by (published at, id): 13 and 12 tie on time, the larger id first.
    assert_eq!(seen, [10, 13, 12, 14, 11]);
    let first = db.feed().inbox_page(Id(1), None, 1).await.unwrap();
    assert_eq!(first, [items[0]]);
    // Nobody else's inbox.
    assert!(db.feed().inbox_page(Id(2), None, 10).await.unwrap().is_empty());
    assert_eq!(db.feed().raw_inbox(Id(1), 10).await.unwrap().len(), 5);
}

async fn whole_inbox(db: &TestDb) -> Vec<u64> {
    video_ids(&db.feed().inbox_page(Id(1), None, 10).await.unwrap())
}

pub async fn feed_inbox_page_skips_hidden_unfollowed_and_blocked(db: &TestDb) {
    for (id, name) in [(1, "viewer"), (2, "ann"), (3, "bob"), (4, "cat")] {
        user(db, id, name).await;
    }
    for (followee, link) in [(2, 100), (3, 101), (4, 102)] {
        follow(db, 1, followee, link).await;
    }
    let items = [
        published(db, 10, 2, NOW + 1).await,
        published(db, 11, 2, NOW + 2).await,
        published(db, 12, 3, NOW + 3).await,
        published(db, 13, 4, NOW + 4).await,
        published(db, 14, 2, NOW + 5).await,
    ];
    db.feed().push(&rows(1, &items)).await.unwrap();
    assert_eq!(whole_inbox(db).await, [14, 13, 12, 11, 10]);
    // Removed and private videos drop out.
    db.videos().set_status(Id(14), VideoStatus::Removed, Some("spam"), NOW + 9).await.unwrap();
    db.videos().set_private(Id(10), true, NOW + 9).await.unwrap();
    assert_eq!(whole_inbox(db).await, [13, 12, 11]);
    // An unfollowed author drops out at once, before any row is deleted.
    db.social().unfollow(Id(1), Id(3)).await.unwrap();
    assert_eq!(whole_inbox(db).await, [13, 11]);
    // A block either way hides the author (the block also removes the follow).
    db.social().block(Id(4), Id(1), NOW).await.unwrap();
    assert_eq!(whole_inbox(db).await, [11]);
    // The page is filled past skipped rows: a limit of 1 still finds 11.
    assert_eq!(video_ids(&db.feed().inbox_page(Id(1), None, 1).await.unwrap()), [11]);
}

pub async fn feed_reader_start_inbox_rows_and_celebrity_ids(db: &TestDb) {
    for (id, name) in [(1, "viewer"), (2, "ann"), (3, "bob"), (4, "cat"), (5, "dan")] {
        user(db, id, name).await;
    }
    for (followee, link) in [(4, 100), (2, 101), (3, 102)] {
        follow(db, 1, followee, link).await;
    }
    follow(db, 2, 1, 103).await;
    let feed = db.feed();
    let graph_of = |user: u64, max: u32| async move {
        db.feed().reader_start(Id(user), Some(max), None, 10).await.unwrap().graph.unwrap()
    };
    // Followees by id, whatever the follow order; nobody blocked yet.
    let graph = graph_of(1, 10).await;
    assert_eq!(graph.followees, [Id(2), Id(3), Id(4)]);
    assert!(graph.blocked.is_empty() && !graph.truncated);
    let capped = graph_of(1, 2).await;
    assert_eq!((capped.followees, capped.truncated), (vec![Id(2), Id(3)], true));
    assert!(!graph_of(1, 3).await.truncated);
    // A stored list longer than the cap can be in bytes is not read at all; no list is no
    // follows, whatever the cap.
    let unread = graph_of(1, 0).await;
    assert_eq!((unread.followees, unread.truncated), (Vec::new(), true));
    assert!(!graph_of(5, 0).await.truncated);
    // Blocks both ways are listed (and took the follows with them).
    db.social().block(Id(1), Id(4), NOW).await.unwrap();
    db.social().block(Id(5), Id(1), NOW).await.unwrap();
    let graph = graph_of(1, 10).await;
    assert_eq!(graph.followees, [Id(2), Id(3)]);
    let mut blocked = graph.blocked.clone();
    blocked.sort();
    assert_eq!(blocked, [Id(4), Id(5)]);
    let nobody = ReaderStart { graph: Some(Default::default()), ..ReaderStart::default() };
    assert_eq!(feed.reader_start(Id(9), Some(10), None, 10).await.unwrap(), nobody);
    assert_eq!(feed.reader_start(Id(9), None, None, 10).await.unwrap(), ReaderStart::default());

    // Activity comes along, as `activity` reads it, with or without the graph.
    let activity_of = |graph: Option<u32>| async move {
        db.feed().reader_start(Id(1), graph, None, 10).await.unwrap().activity
    };
    assert_eq!((activity_of(Some(10)).await, activity_of(None).await), (None, None));
    feed.touch(Id(1), NOW, NOW - 1).await.unwrap();
    let stale = Activity { last_active_ms: NOW, stale: true };
    assert_eq!(activity_of(Some(10)).await, Some(stale));
    assert_eq!(activity_of(None).await, Some(stale));
    feed.mark_fresh(Id(1), NOW + 5).await.unwrap();
    let fresh = Activity { last_active_ms: NOW + 5, stale: false };
    assert_eq!(activity_of(Some(10)).await, Some(fresh));
    assert_eq!(activity_of(None).await, Some(fresh));
    assert_eq!(feed.activity(Id(1)).await.unwrap(), Some(fresh));

    // Inbox rows keep only visible videos; follows and blocks are the caller's to filter.
    let items = [
        published(db, 10, 2, NOW + 1).await,
        published(db, 11, 4, NOW + 2).await,
        published(db, 12, 3, NOW + 3).await,
        published(db, 13, 2, NOW + 4).await,
    ];
    feed.push(&rows(1, &items)).await.unwrap();
    db.videos().set_private(Id(13), true, NOW + 9).await.unwrap();
    assert_eq!(video_ids(&feed.inbox_rows(Id(1), None, 10).await.unwrap()), [12, 11, 10]);
    let first = feed.inbox_rows(Id(1), None, 1).await.unwrap();
    assert_eq!(first, [items[2]]);
    let after = Some((first[0].at_ms, first[0].video_id));
    assert_eq!(video_ids(&feed.inbox_rows(Id(1), after, 10).await.unwrap()), [11, 10]);
    assert!(feed.inbox_rows(Id(2), None, 10).await.unwrap().is_empty());
    // The start's inbox page is the same page, after the same cursor, with or without the
    // graph.
    for (before, limit) in [(None, 10), (None, 1), (after, 10), (after, 1)] {
        let page = feed.inbox_rows(Id(1), before, limit).await.unwrap();
        for graph in [Some(10), None] {
            let start = feed.reader_start(Id(1), graph, before, limit).await.unwrap();
            assert_eq!(start.inbox, page);
        }
    }
    assert!(feed.reader_start(Id(2), Some(10), None, 10).await.unwrap().inbox.is_empty());
    assert!(feed.reader_start(Id(2), None, None, 10).await.unwrap().inbox.is_empty());

    // Celebrities: every user whose stored follower count reaches the threshold.
    let key = |id: u64| crate::CounterKey { subject: "user", id: Id(id), metric: "followers" };
    let video_key = crate::CounterKey { subject: "video", id: Id(10), metric: "followers" };
    db.counters().add(&[(key(2), 5), (key(3), 2), (key(4), 50), (video_key, 99)]).await.unwrap();
    let mut celebrities = feed.celebrities(5).await.unwrap();
    celebrities.sort();
    assert_eq!(celebrities, [Id(2), Id(4)]);
    assert_eq!(feed.celebrities(51).await.unwrap(), []);
    assert_eq!(feed.celebrities(0).await.unwrap().len(), 3);
}

pub async fn feed_trim_and_delete_by_author(db: &TestDb) {
    for (id, name) in [(1, "viewer"), (2, "ann"), (3, "bob")] {
        user(db, id, name).await;
    }
    follow(db, 1, 2, 100).await;
    follow(db, 1, 3, 101).await;
    let mut items = Vec::new();
    for i in 0..6u64 {
        let author = if i % 2 == 0 { 2 } else { 3 };
        items.push(published(db, 10 + i, author, NOW + i as i64).await);
    }
    db.feed().push(&rows(1, &items)).await.unwrap();
    db.feed().push(&rows(2, &items[..2])).await.unwrap();
    // Keep the newest 4: the two oldest go.
    assert_eq!(db.feed().trim(Id(1), 4).await.unwrap(), 2);
    assert_eq!(video_ids(&db.feed().raw_inbox(Id(1), 10).await.unwrap()), [15, 14, 13, 12]);
    assert_eq!(db.feed().trim(Id(1), 4).await.unwrap(), 0);
    assert_eq!(db.feed().trim(Id(9), 4).await.unwrap(), 0);
    // Another user's inbox is untouched.
    assert_eq!(db.feed().raw_inbox(Id(2), 10).await.unwrap().len(), 2);
    // Unfollow: bob's rows leave viewer's inbox only.
    assert_eq!(db.feed().delete_author(Id(1), Id(3)).await.unwrap(), 2);
    assert_eq!(video_ids(&db.feed().raw_inbox(Id(1), 10).await.unwrap()), [14, 12]);
    assert_eq!(db.feed().raw_inbox(Id(2), 10).await.unwrap().len(), 2);
    assert_eq!(db.feed().trim(Id(1), 0).await.unwrap(), 2);
    assert!(db.feed().raw_inbox(Id(1), 10).await.unwrap().is_empty());
}

pub async fn feed_activity_and_active_follower_paging(db: &TestDb) {
    const DAY: i64 = 86_400_000;
    user(db, 1, "creator").await;
    for id in 2..=8u64 {
        user(db, id, &format!("fan{id}")).await;
        follow(db, id, 1, 100 + id).await;
    }
    let feed = db.feed();
    assert_eq!(feed.activity(Id(2)).await.unwrap(), None);
    // First sighting: stale (never rebuilt). A later one keeps it stale until marked fresh.
    feed.touch(Id(2), NOW, NOW - 7 * DAY).await.unwrap();
    let a = feed.activity(Id(2)).await.unwrap().unwrap();
    assert_eq!((a.last_active_ms, a.stale), (NOW, true));
    feed.mark_fresh(Id(2), NOW + 1).await.unwrap();
    feed.touch(Id(2), NOW + 2, NOW - 7 * DAY).await.unwrap();
    let a = feed.activity(Id(2)).await.unwrap().unwrap();
    assert_eq!((a.last_active_ms, a.stale), (NOW + 2, false));
    // Coming back after the inactivity window makes the inbox stale again.
    feed.touch(Id(2), NOW + 30 * DAY, NOW + 23 * DAY).await.unwrap();
    let a = feed.activity(Id(2)).await.unwrap().unwrap();
    assert_eq!((a.last_active_ms, a.stale), (NOW + 30 * DAY, true));
    // Unknown users are ignored.
    feed.touch(Id(99), NOW, NOW).await.unwrap();
    feed.mark_fresh(Id(99), NOW).await.unwrap();
    assert_eq!(feed.activity(Id(99)).await.unwrap(), None);

    // Fans 3..=7 were seen recently, 8 long ago; 2 is active too (above).
    for id in 3..=7u64 {
        feed.mark_fresh(Id(id), NOW + 29 * DAY).await.unwrap();
    }
    feed.mark_fresh(Id(8), NOW).await.unwrap();
    let since = NOW + 23 * DAY;
    let mut got = Vec::new();
    let mut before = None;
    loop {
        let page = feed.active_followers(Id(1), since, before, 2).await.unwrap();
        got.extend(page.iter().map(|&(_, f)| f.0));
        if page.len() < 2 {
            break;
        }
        before = page.last().map(|&(link, _)| link);
    }
    // Newest follow first, fan 8 (inactive) left out, nobody twice.
    assert_eq!(got, [7, 6, 5, 4, 3, 2]);
    assert!(feed.active_followers(Id(2), since, None, 10).await.unwrap().is_empty());
}

pub async fn feed_outboxes_celebrities_and_pure_pull(db: &TestDb) {
    for (id, name) in [(1, "viewer"), (2, "star"), (3, "plain"), (4, "stranger")] {
        user(db, id, name).await;
    }
    follow(db, 1, 2, 100).await;
    follow(db, 1, 3, 101).await;
    let star = [
        published(db, 10, 2, NOW + 1).await,
        published(db, 12, 2, NOW + 4).await,
        published(db, 14, 2, NOW + 3).await,
    ];
    published(db, 11, 3, NOW + 2).await;
    published(db, 13, 4, NOW + 5).await;
    video(db, 15, 2, &[]).await; // still processing
    db.videos().set_private(Id(12), true, NOW).await.unwrap();
    let feed = db.feed();
    // The outbox: published and public only, by publication time, paged.
    assert_eq!(video_ids(&feed.outbox(Id(2), None, 10).await.unwrap()), [14, 10]);
    let first = feed.outbox(Id(2), None, 1).await.unwrap();
    assert_eq!(first, [star[2]]);
    let next = feed.outbox(Id(2), Some((first[0].at_ms, first[0].video_id)), 5).await.unwrap();
    assert_eq!(video_ids(&next), [10]);
    // Celebrities: followed creators whose stored follower count reaches the threshold.
    let key = |id: u64| crate::CounterKey { subject: "user", id: Id(id), metric: "followers" };
    db.counters().add(&[(key(2), 5), (key(3), 2), (key(4), 50)]).await.unwrap();
    assert_eq!(feed.celebrity_followees(Id(1), 5).await.unwrap(), [Id(2)]);
    assert_eq!(feed.celebrity_followees(Id(1), 2).await.unwrap(), [Id(2), Id(3)]);
    assert!(feed.celebrity_followees(Id(1), 51).await.unwrap().is_empty());
    assert_eq!(feed.followees(Id(1), 10).await.unwrap(), [Id(3), Id(2)]);
    // The baseline: every followee's public published videos by id, no stranger's.
    assert_eq!(feed.pure_pull(Id(1), 10).await.unwrap(), [Id(14), Id(11), Id(10)]);
    assert_eq!(feed.pure_pull(Id(1), 1).await.unwrap(), [Id(14)]);
    // Several ids at once, keyed by id; unknown ids are absent.
    let found = db.videos().by_ids(&[Id(10), Id(15), Id(99), Id(10)]).await.unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!(found[&Id(15)].status, VideoStatus::Uploading);
}
