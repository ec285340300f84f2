//! The ISMS loader: a pack of TOML files (isms.toml, controls.toml, rules/*.toml, …) parsed
//! and cross-validated. The input is the pack as one text: sections start with a line
//! `%%% <file name>`, e.g. `%%% isms.toml` (see fuzz/corpus/isms_load/).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut files: Vec<(&str, &str)> = Vec::new();
    for section in text.split("%%% ").skip(1) {
        let (name, body) = section.split_once('\n').unwrap_or((section, ""));
        files.push((name.trim(), body));
    }
    let _ = vigil_collector::isms::load::load_sources(&files);
});
