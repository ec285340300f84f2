//! The example report in `PROTOCOL.md` is the golden file `tests/golden/report-v1.json`: it
//! parses, validates, and serialises back byte for byte, so the documentation cannot drift
//! from the types.

use vigil_shared::Report;

const GOLDEN: &str = include_str!("golden/report-v1.json");
const PROTOCOL: &str = include_str!("../PROTOCOL.md");

#[test]
fn golden_report_round_trips_and_validates() {
    let report: Report = serde_json::from_str(GOLDEN).expect("golden report parses");
    assert_eq!(report.validate(), Ok(()));
    let again = serde_json::to_string_pretty(&report).expect("serialises");
    assert_eq!(again.trim_end(), GOLDEN.trim_end());
}

#[test]
fn protocol_document_embeds_the_golden_report() {
    assert!(
        PROTOCOL.contains(GOLDEN.trim_end()),
        "PROTOCOL.md must contain tests/golden/report-v1.json verbatim"
    );
}

#[test]
fn gzip_round_trip_preserves_the_report() {
    let report: Report = serde_json::from_str(GOLDEN).expect("golden report parses");
    let wire = vigil_shared::codec::encode_gzip(&report).expect("encodes");
    let json = vigil_shared::codec::gunzip_limited(&wire, 1 << 20).expect("decompresses");
    assert_eq!(
        vigil_shared::codec::decode_json(&json).expect("parses"),
        report
    );
}
