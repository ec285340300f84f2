//! Fixture-tree tests: the accounts check run through `run_check` on the committed hosts.
