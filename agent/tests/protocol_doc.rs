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

#[test]
fn shared_output_catalogue_matches_the_registry() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/check-outputs.tsv");
    let outputs: Vec<vigil_shared::outputs::KnownOutput> = vigil_agent::checks::all()
        .iter()
        .flat_map(|c| c.outputs().iter())
        .map(|o| vigil_shared::outputs::KnownOutput {
            id: o.id.to_string(),
            controls: o.controls.iter().map(|c| (*c).to_string()).collect(),
            description: o.description.to_string(),
        })
        .collect();
    let expected = vigil_shared::outputs::render(&outputs);
    if std::env::var_os("VIGIL_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &expected).expect("catalogue written");
        return;
    }
    let actual = std::fs::read_to_string(&path).expect("catalogue readable");
    assert!(
        actual == expected,
        "shared/data/check-outputs.tsv is stale; rerun with VIGIL_UPDATE_GOLDEN=1"
    );
}
