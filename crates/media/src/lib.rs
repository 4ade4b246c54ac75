//! QuickTok media handling: hardened ffprobe/ffmpeg wrappers, ladder planning, packaging.
//!
//! Reserved in the workspace layout of `ARCHITECTURE.md`; its capability is built under its
//! own issue and this crate holds no code until then.
