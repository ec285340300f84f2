//! Evidence drop-in files (vigil.dropin.v1 JSON) and drop-in file names.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_agent::checks::dropin::format;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = format::parse(&text);
    let _ = format::salvage_controls(&text);
    if let Some(line) = text.lines().next() {
        let _ = format::id_for(line);
    }
});
