//! QuickTok core: the vocabulary every other crate shares (ids, clock, events, error codes,
//! background-worker contract). It performs no IO so it can be used everywhere, including
//! in property tests and simulations.

pub mod clock;
pub mod error;
pub mod event;
pub mod id;
pub mod text;
pub mod worker;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{CoreError, ErrorCode};
pub use event::{Event, SOCIAL_TOPIC, WATCHES_TOPIC};
pub use id::{Id, IdGenerator};
pub use worker::{Shutdown, Worker, WorkerState};
