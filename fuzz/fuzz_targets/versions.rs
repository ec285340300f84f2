//! Debian (apt) and rpm version comparison on two versions separated by a newline: both must
//! be reflexive and antisymmetric (a sort over them would otherwise misbehave).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_agent::checks::packages::fuzzing;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (a, b) = text.split_once('\n').unwrap_or((&text, ""));
    let _ = fuzzing::debian_compare(a, b);
    let _ = fuzzing::rpm_compare(a, b);
});
