//! QuickTok social features: follows, likes, comments, counters, notifications, feeds, stories.
//!
//! Reserved in the workspace layout of `ARCHITECTURE.md`; its capability is built under its
//! own issue and this crate holds no code until then.
