//! QuickTok trending: exact sliding-window top-K rankers, snapshots and shard merge.
//!
//! Reserved in the workspace layout of `ARCHITECTURE.md`; its capability is built under its
//! own issue and this crate holds no code until then.
