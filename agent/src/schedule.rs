//! Cron schedules for checks: the shared parser (`vigil_shared::schedule`), re-exported so
//! that agent code keeps one import path.

pub use vigil_shared::schedule::{Schedule, parse};
