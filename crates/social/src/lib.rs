//! QuickTok social features. Today: the counter service ([`CounterService`], F6.3), which
//! keeps likes, comments, shares, plays, followers and following in process, sharded, and
//! writes them behind to a [`CounterStore`] in batches. Relations and interactions are
//! stored by the metadata store's repositories (`quicktok_meta::Social`, `Comments`); the
//! rules about who may do what live in the API handlers. Notifications, the following feed
//! and stories come in their own issue.

pub mod config;
pub mod counters;
pub mod error;

pub use config::{CountersConfig, SocialConfig, StoriesConfig};
pub use counters::{CounterKey, CounterService, CounterStore, Metric, Subject};
pub use error::{Result, SocialError};
