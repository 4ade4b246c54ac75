//! QuickTok full-text search over videos and creators with Chinese segmentation.
//!
//! Reserved in the workspace layout of `ARCHITECTURE.md`; its capability is built under its
//! own issue and this crate holds no code until then.
