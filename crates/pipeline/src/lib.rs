//! QuickTok the processing pipeline: stage chain, job state, retries and dead letters.
//!
//! Reserved in the workspace layout of `ARCHITECTURE.md`; its capability is built under its
//! own issue and this crate holds no code until then.
