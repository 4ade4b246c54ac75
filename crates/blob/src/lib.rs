//! QuickTok blob storage: the `BlobStore` trait, packed volume engine, S3 backend and tiering.
//!
//! Reserved in the workspace layout of `ARCHITECTURE.md`; its capability is built under its
//! own issue and this crate holds no code until then.
