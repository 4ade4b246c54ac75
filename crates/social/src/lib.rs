//! QuickTok social features: the counter service ([`CounterService`], F6.3), which keeps
//! likes, comments, shares, plays, followers and following in process, sharded, and writes
//! them behind to a [`CounterStore`] in batches; and the following feed's pure core
//! ([`feed`], F6.5: cursor and merge). Relations and interactions are stored by the metadata
//! store's repositories (`quicktok_meta::Social`, `Comments`, `Feed`); the rules about who
//! may do what live in the API handlers.

pub mod config;
pub mod counters;
pub mod error;
pub mod feed;

pub use config::{CountersConfig, FeedConfig, SocialConfig, StoriesConfig};
pub use counters::{CounterKey, CounterService, CounterStore, Metric, Subject};
pub use error::{Result, SocialError};
pub use feed::{BadCursor, FeedCursor, FeedEntry, FeedPage, merge_page, should_trim};
