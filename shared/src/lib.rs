//! Types and helpers shared by the Vigil agent and collector: the wire protocol (the only
//! serde types that cross the network), the Annex A 2022 catalogue, gzip framing with size
//! caps, and strict configuration loading.

pub mod codec;
pub mod config;
pub mod controls;
pub mod outputs;
pub mod report;
pub mod schedule;
pub mod signing;

pub use report::{
    AgentHealth, AgentInfo, CheckHealth, CheckResult, Evidence, HostIdentity, OsRelease, Report,
    Status, Subject, Value,
};

/// Version of this crate, used as the agent and collector version string.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
