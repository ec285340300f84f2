//! dpkg's `status` database (and the tag-file parser apt's files share).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_agent::checks::packages::fuzzing;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = fuzzing::dpkg_status(&text);
});
