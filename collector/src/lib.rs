//! The Vigil collector: authenticated ingest of agent reports into a durable store, and a read
//! API over it. `main.rs` is only the command line; `pipeline` wires the stages and owns
//! shutdown.

pub mod auth;
pub mod settings;
pub mod store;

#[cfg(test)]
pub(crate) mod testutil;
