//! Integration tests of the rankers: property tests against a brute-force oracle, sharding,
//! crash recovery through the real `FileLog`, and the running service. One binary (with
//! modules) to keep link time down.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod crash;
mod oracle;
mod service;
mod sharding;
mod windows;
