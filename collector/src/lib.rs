//! The Vigil collector: authenticated ingest of agent reports into a durable store, and a read
//! API over it. `main.rs` is only the command line; `pipeline` wires the stages and owns
//! shutdown.

pub mod admin;
pub mod api;
pub mod auth;
pub mod commands;
pub mod engine;
pub mod enroll;
pub mod evaluate;
pub mod evaluator_lock;
pub mod export;
pub mod http;
pub mod ingest;
pub mod isms;
pub mod metrics;
pub mod pipeline;
pub mod reports;
pub mod settings;
pub mod store;
pub mod tls;
pub mod webhooks;

#[cfg(test)]
pub(crate) mod testutil;
