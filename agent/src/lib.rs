//! The Vigil agent: evidence checks read through a root prefix, a scheduler that runs them on
//! cron schedules, a durable spool, and the push to the collector. `main.rs` is only the CLI.

pub mod checks;
pub mod collect;
pub mod enroll;
pub mod hostroot;
pub mod identity;
pub mod keys;
pub mod push;
pub mod schedule;
pub mod selfstat;
pub mod service;
pub mod settings;
pub mod spool;
pub mod state;
pub mod status;
pub mod table;
