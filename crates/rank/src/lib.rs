//! QuickTok trending: exact sliding-window top-K leaderboards (`1h`, `1d`, `30d`, all time,
//! and `1d` per hashtag) over the `views` topic of the event log, with sharding, snapshots
//! and replay.
//!
//! # Pieces
//!
//! - [`view`]: the `views` records ([`QualifiedView`], ticks) and their binary encoding;
//!   [`ViewQualifier`] (used by the API) decides which plays count.
//! - [`window`]: the windows and the exact rule of what each one counts.
//! - [`TopK`]: exact top-K under increments and decrements.
//! - [`Ranker`]: one shard's windows, kept with the two-pointer method: a leading edge adds
//!   each view, trailing edges subtract it when it leaves; views older than an hour are
//!   compacted into per-minute aggregates that feed the `1d`/`30d` trailing edges.
//! - [`ShardedRanker`]: N rankers partitioned by video id, merged exactly.
//! - [`snapshot`]: atomic, checksummed per-shard snapshot files; restore + replay gives the
//!   exact same state as never stopping.
//! - [`RankerService`]: the consumer task and its cheap query side, [`RankerHandle`].
//!
//! # Flow
//!
//! ```text
//! API: ViewQualifier::check -> QualifiedView::to_record -> log.append("views")
//! RankerService: snapshots -> replay -> wait_for/read -> ShardedRanker -> TopLists
//! API: RankerHandle::top(window, k)   (an Arc clone and a copy of k entries)
//! ```
//!
//! # Memory per shard
//!
//! - a view in the last hour: 32 bytes in the raw buffer (plus its share of the window
//!   counts);
//! - a (video, minute) pair in the last 30 days: 12 bytes (sealed minute aggregate);
//! - a (tag, video, minute) triple in the last day: 28 bytes;
//! - a video with views in a window: about 24 bytes of hash map per window, plus about 40
//!   in the ordered set for the few thousand near the top;
//! - the log need only keep what follows the oldest kept snapshot, not 30 days of views.

mod aggregate;
pub mod config;
pub mod error;
pub mod qualifier;
pub mod ranker;
pub mod service;
pub mod shards;
pub mod snapshot;
pub mod topk;
pub mod view;
pub mod window;

pub use config::RankerConfig;
pub use error::RankError;
pub use qualifier::{QualifierConfig, Verdict, ViewQualifier};
pub use ranker::{AsOf, Footprint, Ranker, RankerStats};
pub use service::{RankedList, RankerHandle, RankerService, Recovery, TopLists, Trending};
pub use shards::{MAX_SHARDS, PARALLEL_MIN_VIEWS, ShardedRanker, shard_of};
pub use snapshot::{Loaded, SnapshotStore};
pub use topk::{MAX_K, TopK, merge_top};
pub use view::{QualifiedView, VIEWS_TOPIC, ViewRecord, encode_tick};
pub use window::Window;
