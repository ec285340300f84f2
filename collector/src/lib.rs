//! The Vigil collector.
