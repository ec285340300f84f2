//! `vigil-collector`: the command line.

fn main() {}
