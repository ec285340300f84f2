//! Ingest endpoint tests.
