//! apt `Packages` lists (uncompressed), scanned into the compact cached form and decoded back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_agent::checks::packages::fuzzing;

fuzz_target!(|data: &[u8]| {
    let _ = fuzzing::apt_list(data);
});
