//! The QuickTok server as a library: configuration loading and the wiring that turns a
//! [`Config`] into a running platform. The `quicktok` binary and the test kit both use it.

pub mod app;
pub mod config;
pub mod consumer;
pub mod counters;
pub mod feed;
pub mod jobs;
pub mod notifications;
pub mod pipeline;
pub mod plays;
pub mod recommend;
pub mod search;
pub mod stages;
pub mod tiering;

pub use app::App;
pub use config::{Config, Role, ServerConfig};
