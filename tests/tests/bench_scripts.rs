//! The peer benchmark script (`tests/bench/peers.sh`) is not run by the test command — it is a
//! benchmark of several minutes that installs packages — but it must keep parsing, and its
//! `--check` mode (tools present? nothing measured, nothing installed) must succeed.

use std::process::Command;

#[test]
fn peers_script_parses_and_checks() {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/peers.sh");
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        syntax.status.success(),
        "bash -n {}: {}",
        script.display(),
        String::from_utf8_lossy(&syntax.stderr)
    );
    let check = Command::new(&script).arg("--check").output().unwrap();
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(stdout.starts_with("peers.sh: syntax ok"), "{stdout}");
}
