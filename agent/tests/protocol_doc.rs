//! `shared/PROTOCOL.md` lists every check output with its controls; the list is generated from
//! the agent's registry so that the documentation cannot drift from the code.

#![allow(clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns

use std::path::Path;

const BEGIN: &str = "<!-- outputs:begin -->\n";
const END: &str = "<!-- outputs:end -->";

#[test]
fn protocol_document_lists_every_check_output() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/PROTOCOL.md");
    let text = std::fs::read_to_string(&path).expect("PROTOCOL.md readable");
    let start = text.find(BEGIN).expect("begin marker") + BEGIN.len();
    let end = text.find(END).expect("end marker");
    let table = vigil_agent::checks::outputs_markdown();
    if std::env::var_os("VIGIL_UPDATE_GOLDEN").is_some() {
        let updated = format!("{}{table}{}", &text[..start], &text[end..]);
        std::fs::write(&path, updated).expect("PROTOCOL.md written");
        return;
    }
    if text[start..end] != table {
        panic!(
            "shared/PROTOCOL.md's output table is stale; rerun with VIGIL_UPDATE_GOLDEN=1\n{table}"
        );
    }
}
