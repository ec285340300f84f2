//! The RPM packages of vigil-agent and vigil-collector, installed for real with `rpm --root`
//! into a throwaway Debian 12 root (the cached `tests/package/base-root`): the %pre/%post
//! scriptlets run inside the root and must create the users, the state directories and the
//! configuration's group, and enable the units; an upgrade keeps a locally changed
//! `%config(noreplace)` file; the root is booted with `systemd-nspawn -b` and the collector must
//! run under its unit as its own user and answer on its port; erasing removes the files, keeps
//! the changed configuration as `.rpmsave` and disables the units.
//!
//! There is no RPM-based distribution here (package registries only), so the dependencies
//! (`shadow-utils`, `systemd`) are satisfied by the Debian root's own tools and ignored with
//! `--nodeps`; what this proves is the packages' contents and scriptlets, not dnf's resolution.
//!
//! Needs root, rpm, debootstrap, systemd-nspawn and cargo-generate-rpm; `tests/run` installs
//! them. Missing prerequisites fail the test with what to install.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test helpers outside #[test] fns

use std::path::{Path, PathBuf};
use std::process::Command;

use vigil_tests::debian_root::{self, key_values, repo, text};
use vigil_tests::run_ok;

fn require_prerequisites() {
    debian_root::require(&[
        ("rpm", "rpm"),
        ("debootstrap", "debootstrap"),
        ("systemd-nspawn", "systemd-container"),
    ])
    .unwrap();
    assert!(
        debian_root::cargo_has("generate-rpm"),
        "cargo-generate-rpm is missing: cargo install --locked cargo-generate-rpm --version 0.21.1 \
         (tests/run does)"
    );
}

fn chroot(root: &Path, args: &[&str]) -> String {
    debian_root::chroot(root, args).expect("chroot command")
}

fn stat(root: &Path, path: &str) -> String {
    debian_root::stat(root, path).expect("stat in the root")
}

fn rpm(root: &Path, args: &[&str]) -> String {
    text(
        &run_ok(Command::new("rpm").arg("--root").arg(root).args(args))
            .expect("rpm in the test root"),
    )
}

/// Builds both RPMs of this tree (the dev binaries `tests/run` built) at a release number.
fn build_rpms(out: &Path, release: u32) -> Vec<PathBuf> {
    run_ok(
        Command::new(repo().join("packaging/build-packages"))
            .args(["--profile", "dev", "--formats", "rpm", "--no-build"])
            .args(["--revision", &release.to_string()])
            .arg("--out")
            .arg(out),
    )
    .expect("build-packages makes the RPMs (cargo build --workspace --bins first)");
    ["vigil-agent", "vigil-collector"]
        .iter()
        .map(|name| {
            let rpm = out.join(format!(
                "{name}-{}-{release}.x86_64.rpm",
                env!("CARGO_PKG_VERSION")
            ));
            assert!(rpm.exists(), "{} missing", rpm.display());
            rpm
        })
        .collect()
}

/// Runs `rpm <mode>` on the packages (host paths: rpm reads them before it enters the root).
fn rpm_packages(root: &Path, mode: &str, packages: &[PathBuf]) -> String {
    let mut command = Command::new("rpm");
    command.arg("--root").arg(root).args([mode, "--nodeps"]);
    command.args(packages);
    text(&run_ok(&mut command).expect("rpm installs the packages"))
}

const PROBE: &str = r#"#!/bin/bash
# Runs inside the booted container after vigil-collector.service: waits until the collector
# answers, records how the service runs, stops it, records how it stopped.
out=/probe
for i in $(seq 1 120); do
    if exec 3<>/dev/tcp/127.0.0.1/8470 2>/dev/null; then
        printf 'GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
        cat <&3 > $out/readyz
        exec 3>&-
        grep -q '200' $out/readyz && break
    fi
    sleep 0.5
done
systemctl show vigil-collector -p ActiveState,SubState,MainPID,NRestarts > $out/running
pid=$(systemctl show vigil-collector -p MainPID --value)
grep -E '^(Uid|Gid):' /proc/$pid/status > $out/process
systemctl show vigil-agent -p UnitFileState > $out/agent
systemctl stop vigil-collector
systemctl show vigil-collector -p ActiveState,Result,ExecMainStatus > $out/stopped
journalctl -u vigil-collector --no-pager > $out/journal 2>&1
touch $out/done
systemctl poweroff
"#;

#[test]
fn the_rpms_install_upgrade_run_under_systemd_and_erase() {
    require_prerequisites();
    let work = tempfile::tempdir().expect("work dir");
    let root = debian_root::fresh(work.path()).expect("a fresh Debian root");

    // Install release 1: the scriptlets make users, directories, owners; the units are enabled.
    let first = build_rpms(&work.path().join("r1"), 1);
    let log = rpm_packages(&root, "-i", &first);
    assert!(!log.contains("error"), "{log}");
    let installed = rpm(&root, &["-q", "vigil-agent", "vigil-collector"]);
    assert!(installed.contains("vigil-agent-0.1.0-1"), "{installed}");
    assert!(installed.contains("vigil-collector-0.1.0-1"), "{installed}");
    for name in ["vigil-agent", "vigil-collector"] {
        assert_eq!(stat(&root, &format!("/usr/bin/{name}")), "755 root root");
        assert_eq!(
            stat(&root, &format!("/etc/vigil/{}.toml", &name[6..])),
            format!("640 root {name}")
        );
        assert_eq!(
            stat(&root, &format!("/var/lib/{name}")),
            format!("700 {name} {name}")
        );
        assert_eq!(
            stat(&root, &format!("/usr/lib/systemd/system/{name}.service")),
            "644 root root"
        );
        let user = chroot(&root, &["getent", "passwd", name]);
        let fields: Vec<&str> = user.trim().split(':').collect();
        assert_eq!(fields.len(), 7, "{user}");
        assert!(fields[2].parse::<u32>().expect("uid") < 1000, "{user}");
        assert_eq!(fields[5], format!("/var/lib/{name}"));
        let wants = root.join(format!(
            "etc/systemd/system/multi-user.target.wants/{name}.service"
        ));
        assert!(wants.is_symlink(), "{name} is enabled on install");
    }
    assert_eq!(
        stat(&root, "/usr/share/vigil-collector/isms/rules/patching.toml"),
        "644 root root"
    );
    // rpm -V: the %post changes the configuration's group (G); nothing else differs from what
    // the package laid down.
    let verified = Command::new("rpm")
        .arg("--root")
        .arg(&root)
        .args(["-V", "--nodeps", "vigil-collector"])
        .output()
        .expect("rpm -V runs");
    assert_eq!(
        String::from_utf8_lossy(&verified.stdout).trim(),
        "......G..  c /etc/vigil/collector.toml",
        "{}",
        text(&verified)
    );
    let config_files = rpm(&root, &["-qc", "vigil-collector"]);
    assert_eq!(config_files.trim(), "/etc/vigil/collector.toml");

    // Change the collector's configuration, upgrade to release 2: the change stays
    // (%config(noreplace)), owner and mode are put back.
    let config_path = root.join("etc/vigil/collector.toml");
    let changed = std::fs::read_to_string(&config_path)
        .expect("config")
        .replace(
            "# dir = \"/etc/vigil/isms\"",
            "dir = \"/usr/share/vigil-collector/isms\"",
        );
    assert!(changed.contains("\ndir = "), "the example names [isms] dir");
    std::fs::write(&config_path, &changed).expect("config changed");
    let second = build_rpms(&work.path().join("r2"), 2);
    let log = rpm_packages(&root, "-U", &second);
    assert!(!log.contains("error"), "{log}");
    let installed = rpm(&root, &["-q", "vigil-agent", "vigil-collector"]);
    assert!(installed.contains("vigil-collector-0.1.0-2"), "{installed}");
    assert_eq!(
        std::fs::read_to_string(&config_path).expect("config"),
        changed,
        "the changed configuration survives the upgrade"
    );
    assert_eq!(
        stat(&root, "/etc/vigil/collector.toml"),
        "640 root vigil-collector"
    );

    // Boot: systemd starts the collector under its unit, as its own user, with the packaged
    // ISMS pack loaded; it answers on its port and stops cleanly.
    // A private network: the collector's loopback port is the container's own.
    let boot = debian_root::boot_with_probe(
        work.path(),
        &root,
        PROBE,
        "vigil-collector.service",
        &["--private-network".to_string()],
    )
    .expect("boot");
    assert!(
        boot.done(),
        "the probe did not finish (nspawn: {:?}); journal:\n{}\nconsole:\n{}",
        boot.status,
        boot.read("journal"),
        boot.console
    );
    assert!(
        boot.status.is_some_and(|s| s.success()),
        "the container did not power off cleanly: {:?}\n{}",
        boot.status,
        boot.console
    );
    let read = |name: &str| boot.read(name);
    let running = key_values(&read("running"));
    assert_eq!(
        running.get("ActiveState").map(String::as_str),
        Some("active"),
        "{running:?}\n{}",
        read("journal")
    );
    assert_eq!(running["NRestarts"], "0");
    assert!(read("readyz").contains(" 200 "), "{}", read("readyz"));
    let uid = chroot(&root, &["id", "-u", "vigil-collector"]);
    let process = key_values(&read("process"));
    let ids: Vec<&str> = process["Uid"].split_whitespace().collect();
    assert_eq!(ids, [uid.trim(); 4], "{process:?}");
    assert_eq!(
        key_values(&read("agent"))["UnitFileState"],
        "enabled",
        "the agent stays enabled (it waits for its collector settings)"
    );
    let stopped = key_values(&read("stopped"));
    assert_eq!(stopped["ActiveState"], "inactive", "{stopped:?}");
    assert_eq!(stopped["Result"], "success", "{stopped:?}");
    let journal = read("journal");
    assert!(
        journal.contains("ISMS definition loaded")
            && journal.contains("dir=/usr/share/vigil-collector/isms controls=93"),
        "the packaged ISMS pack was loaded:\n{journal}"
    );

    // Erase: files and enablement go; the changed configuration is kept as .rpmsave.
    let log = rpm(&root, &["-e", "vigil-agent", "vigil-collector"]);
    assert!(!log.contains("error"), "{log}");
    for name in ["vigil-agent", "vigil-collector"] {
        assert!(!root.join(format!("usr/bin/{name}")).exists());
        let wants = root.join(format!(
            "etc/systemd/system/multi-user.target.wants/{name}.service"
        ));
        assert!(!wants.exists() && !wants.is_symlink(), "{name} disabled");
    }
    for dir in [
        "usr/share/vigil-collector",
        "usr/share/doc/vigil-collector",
        "usr/share/doc/vigil-agent",
    ] {
        assert!(!root.join(dir).exists(), "{dir} is left behind");
    }
    assert_eq!(
        std::fs::read_to_string(root.join("etc/vigil/collector.toml.rpmsave"))
            .expect("the changed configuration is saved"),
        changed
    );
}
