//! The agent reads a Berkeley DB rpm database (RHEL 7/8, Amazon Linux 2) made by the real
//! libdb (`agent/fixtures/rpmdb/make-bdb-packages.py`), and finds exactly the packages that
//! rpm itself lists from the same file (Debian's `rpm` reads it with its `bdb_ro` backend).
//! Without rpm the comparison is skipped with a message, unless `VIGIL_RPM_REQUIRED=1`
//! (`tests/run` installs rpm and sets it), where a missing rpm fails.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test helpers outside #[test] fns

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use vigil_shared::{Report, Status};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/rpmdb/bdb/Packages")
}

/// A root holding only the rpm database and the running kernel's release.
fn rhel8_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let db = root.path().join("var/lib/rpm");
    std::fs::create_dir_all(&db).unwrap();
    std::fs::copy(fixture(), db.join("Packages")).unwrap();
    std::fs::create_dir_all(root.path().join("proc/sys/kernel")).unwrap();
    std::fs::write(
        root.path().join("proc/sys/kernel/osrelease"),
        "4.18.0-477.10.1.el8_8.x86_64\n",
    )
    .unwrap();
    root
}

fn collect(root: &Path) -> Report {
    let output = Command::new(env!("CARGO_BIN_EXE_vigil-agent"))
        .args(["collect", "--format", "json", "--cache-dir", "none"])
        .args(["--check", "packages", "--now", "2026-06-01T12:00:00Z"])
        .arg("--root")
        .arg(root)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// `name:arch version` as the agent's inventory evidence states them.
fn agent_packages(report: &Report) -> BTreeSet<String> {
    let inventory = report
        .results
        .iter()
        .find(|r| r.check == "packages.inventory")
        .unwrap();
    assert_eq!(inventory.status, Status::Pass, "{inventory:?}");
    inventory
        .evidence
        .checked
        .iter()
        .map(|s| format!("{} {}", s.id, s.facts["version"].as_str().unwrap()))
        .collect()
}

#[test]
fn berkeley_db_packages_are_read_like_rpm_reads_them() {
    let root = rhel8_root();
    let report = collect(root.path());
    let ours = agent_packages(&report);
    assert_eq!(ours.len(), 162, "{ours:?}");
    assert!(
        ours.contains("openssl-libs:x86_64 1:1.1.1k-9.el8_7"),
        "{ours:?}"
    );
    assert!(ours.contains("tzdata:noarch 2023c-1.el8"), "{ours:?}");

    // The running kernel (477.10.1) is older than the newest installed (477.27.1).
    let kernel = report
        .results
        .iter()
        .find(|r| r.check == "packages.kernel")
        .unwrap();
    assert_eq!(kernel.status, Status::Fail, "{kernel:?}");
    let inventory = report
        .results
        .iter()
        .find(|r| r.check == "packages.inventory")
        .unwrap();
    assert_eq!(
        inventory.evidence.sources,
        ["/var/lib/rpm/Packages"],
        "{inventory:?}"
    );

    let rpm = Command::new("rpm")
        .arg("--dbpath")
        .arg(root.path().join("var/lib/rpm"))
        .args(["--define", "_db_backend bdb_ro", "-qa", "--qf"])
        .arg("%{NAME}:%{ARCH} %|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\n")
        .output();
    let required = std::env::var_os("VIGIL_RPM_REQUIRED").is_some_and(|v| v == "1");
    let output = match rpm {
        Ok(o) if o.status.success() => o,
        other => {
            assert!(
                !required,
                "rpm cannot read the database: {other:?} (apt-get install rpm; tests/run does)"
            );
            eprintln!("rpm is not installed: comparison with rpm skipped");
            return;
        }
    };
    let theirs: BTreeSet<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(theirs.len(), 162);
    assert_eq!(ours, theirs);
}

#[test]
fn a_damaged_berkeley_db_is_an_error_with_the_reason() {
    let root = rhel8_root();
    let path = root.path().join("var/lib/rpm/Packages");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[12..16].copy_from_slice(b"junk");
    std::fs::write(&path, bytes).unwrap();
    let report = collect(root.path());
    let inventory = report
        .results
        .iter()
        .find(|r| r.check == "packages.inventory")
        .unwrap();
    assert_eq!(inventory.status, Status::Error, "{inventory:?}");
    let said = format!("{} {:?}", inventory.summary, inventory.error);
    assert!(said.contains("not a Berkeley DB hash database"), "{said}");
}
