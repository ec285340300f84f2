//! One rpm header blob, as the agent reads them from the rpm database (BDB or SQLite).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_agent::checks::packages::fuzzing;

fuzz_target!(|data: &[u8]| {
    let _ = fuzzing::rpm_header(data);
});
