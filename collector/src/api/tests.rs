//! Read API tests.
