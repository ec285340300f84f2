//! Fixture-tree and differential tests of the packages check.
