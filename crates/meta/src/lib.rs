//! QuickTok metadata store: typed repositories over SQLite (embedded default) and PostgreSQL
//! (scale-out). This is the only crate that knows SQL; everyone else calls the repository
//! methods reached from [`MetaStore`].
//!
//! The backend is chosen by URL (see [`MetaConfig::url`]); migrations for each dialect are
//! embedded in the binary and applied by [`MetaStore::connect`].

#[cfg(feature = "bulk")]
mod bulk;
mod comments;
mod config;
mod counters;
mod error;
mod feed;
mod fingerprints;
mod notifications;
mod pipeline_jobs;
mod plays;
mod read_conns;
mod recommend_state;
mod refresh_tokens;
mod renditions;
mod social;
mod store;
mod stories;
mod uploads;
mod users;
mod video_blobs;
mod videos;

#[cfg(feature = "testsuite")]
pub mod testsuite;

#[cfg(feature = "bulk")]
pub use bulk::Bulk;
pub use comments::{Comment, Comments, NewComment};
pub use config::{MetaConfig, SqliteSynchronous};
pub use counters::{CounterKey, Counters};
pub use error::{DbError, MetaError, Result};
pub use feed::{Activity, Feed, FeedItem, FeedPosition, InboxRow, ReaderGraph, ReaderStart};
pub use fingerprints::{Fingerprint, Fingerprints};
pub use notifications::{NewNotification, Notification, Notifications};
pub use pipeline_jobs::{PipelineJobRow, PipelineJobs};
pub use plays::{BlobActivityRow, PlayDelta, Plays};
pub use recommend_state::{RecommendState, StateKind, StateRow};
pub use refresh_tokens::{ConsumeOutcome, NewRefreshToken, RefreshTokens, TokenOwner};
pub use renditions::{RenditionRow, Renditions};
pub use social::{BlockOutcome, NewShare, Report, ReportTarget, Social, UserLink};
pub use store::{Backend, MetaStore};
pub use stories::{AuthorStories, Stories};
pub use uploads::{NewUpload, Upload, UploadUsage, Uploads};
pub use users::{NewUser, User, Users};
pub use video_blobs::{VideoBlob, VideoBlobs};
pub use videos::{
    NewVideo, ParseVideoKindError, ParseVideoStatusError, Video, VideoKind, VideoStatus, Videos,
};
