//! In-memory fakes of the ports for fast unit tests of the domain, the use cases and the handlers
//! (feature `fakes`; never in a Lambda binary). The store keeps the DynamoDB adapter's conditional
//! semantics so a test over it means something; the integration tests run the real adapter.

mod doubles;
mod store;

pub use doubles::{
    FixedClock, RecordingNotifier, RecordingPusher, RecordingQueue, ScriptedPayments,
};
pub use store::InMemoryStore;

/// The failure a fake answers with once a test switched it off.
#[derive(Debug, thiserror::Error)]
#[error("the in-memory fake was switched off by the test")]
struct SwitchedOff;
