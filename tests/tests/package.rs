//! The vigil-agent Debian package on a clean Debian 12: installed into a throwaway
//! `debootstrap --variant=minbase bookworm` root (cached, see `tests/package/base-root`), its
//! files, owners, modes, user and conffile checked, upgraded to a new revision with a locally
//! changed conffile, its unit verified and scored by `systemd-analyze`, then the root booted
//! with `systemd-nspawn -b`: the service must start under its unit (own user, one capability,
//! seccomp), enroll with a single-use token and report to a collector on the host's loopback,
//! and stop cleanly. Finally the package is purged.
//!
//! Needs root, debootstrap, systemd-nspawn (systemd-container) and cargo-deb; `tests/run`
//! installs them. Missing prerequisites fail the test with what to install: they are never a
//! silent skip.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test helpers outside #[test] fns

use std::path::{Path, PathBuf};
use std::process::Command;

use vigil_tests::debian_root::{self, key_values, repo, text};
use vigil_tests::{Collector, run_ok};

/// Highest `systemd-analyze security` exposure accepted for the agent unit (documented 1.8).
const MAX_EXPOSURE: f64 = 2.0;
const HOSTNAME: &str = "vigil-pkgtest";

fn require_prerequisites() {
    debian_root::require(&[
        ("debootstrap", "debootstrap"),
        ("systemd-nspawn", "systemd-container"),
        ("flock", "util-linux"),
    ])
    .unwrap();
    assert!(
        debian_root::cargo_has("deb"),
        "cargo-deb is missing: cargo install --locked cargo-deb --version 3.8.0 (tests/run does)"
    );
}

fn chroot(root: &Path, args: &[&str]) -> String {
    debian_root::chroot(root, args).expect("chroot command")
}

/// `mode owner group` of a path inside the root, as the root's own users see it.
fn stat(root: &Path, path: &str) -> String {
    debian_root::stat(root, path).expect("stat in the root")
}

fn build_deb(out: &Path, revision: u32) -> PathBuf {
    run_ok(
        Command::new(repo().join("packaging/build-packages"))
            .args(["--profile", "dev", "--formats", "deb", "--no-build"])
            .args([
                "--packages",
                "vigil-agent",
                "--revision",
                &revision.to_string(),
            ])
            .arg("--out")
            .arg(out),
    )
    .expect("build-packages makes the .deb (cargo build --workspace --bins first)");
    let deb = out.join(format!(
        "vigil-agent_{}-{revision}_amd64.deb",
        env!("CARGO_PKG_VERSION")
    ));
    assert!(deb.exists(), "{} missing", deb.display());
    deb
}

fn dpkg_install(root: &Path, deb: &Path) -> String {
    let inside = format!("/tmp/{}", deb.file_name().unwrap().to_string_lossy());
    std::fs::copy(deb, root.join(inside.trim_start_matches('/'))).expect("deb copied");
    // --force-confold: what unattended upgrades use; a changed conffile stays as it is.
    chroot(root, &["dpkg", "--force-confold", "-i", &inside])
}

const PROBE: &str = r#"#!/bin/sh
# Runs inside the booted container after vigil-agent.service: waits for the first
# acknowledged report, records how the service runs, stops it, records how it stopped.
out=/probe
i=0
while [ $i -lt 240 ]; do
    grep -q '"outcome": "acknowledged"' /var/lib/vigil-agent/status.json 2>/dev/null && break
    sleep 0.5
    i=$((i + 1))
done
systemctl show vigil-agent -p ActiveState,SubState,MainPID,NRestarts,Result > $out/running
pid=$(systemctl show vigil-agent -p MainPID --value)
grep -E '^(Uid|Gid|CapEff|CapPrm|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/$pid/status > $out/process
stat -c '%a %U %G %n' /var/lib/vigil-agent /var/lib/vigil-agent/enrollment.json > $out/modes
vigil-agent status --config /etc/vigil/agent.toml > $out/status 2>&1
systemctl stop vigil-agent
systemctl show vigil-agent -p ActiveState,Result,ExecMainCode,ExecMainStatus > $out/stopped
journalctl -u vigil-agent --no-pager > $out/journal 2>&1
# The same check as root outside the sandbox, to compare verdicts.
vigil-agent collect --format json --check encryption > $out/collect.json 2> $out/collect.err
touch $out/done
systemctl poweroff
"#;

#[test]
fn the_deb_installs_upgrades_boots_enrolls_reports_stops_and_purges() {
    require_prerequisites();
    let work = tempfile::tempdir().expect("work dir");
    let pkgs = work.path().join("pkgs");

    // A clean Debian 12 root (cached pristine copy), and the package built from this tree.
    let root = debian_root::fresh(work.path()).expect("a fresh Debian root");
    let first = build_deb(&pkgs, 1);

    // Install: files, owners, modes, user, conffile, enabled (not started: nothing runs here).
    let log = dpkg_install(&root, &first);
    assert!(log.contains("Setting up vigil-agent"), "{log}");
    assert_eq!(stat(&root, "/usr/bin/vigil-agent"), "755 root root");
    assert_eq!(stat(&root, "/etc/vigil"), "755 root root");
    assert_eq!(stat(&root, "/etc/vigil/agent.toml"), "640 root vigil-agent");
    assert_eq!(
        stat(&root, "/var/lib/vigil-agent"),
        "700 vigil-agent vigil-agent"
    );
    assert_eq!(
        stat(&root, "/lib/systemd/system/vigil-agent.service"),
        "644 root root"
    );
    let user = chroot(&root, &["getent", "passwd", "vigil-agent"]);
    let fields: Vec<&str> = user.trim().split(':').collect();
    let uid: u32 = fields[2].parse().expect("uid");
    assert!(uid < 1000, "a system user: {user}");
    assert_eq!(fields[5], "/var/lib/vigil-agent");
    assert_eq!(fields[6], "/usr/sbin/nologin");
    let enabled = root.join("etc/systemd/system/multi-user.target.wants/vigil-agent.service");
    assert!(enabled.is_symlink(), "the unit is enabled on install");
    let conffiles = chroot(
        &root,
        &["dpkg-query", "-W", "-f=${Conffiles}", "vigil-agent"],
    );
    assert!(conffiles.contains("/etc/vigil/agent.toml"), "{conffiles}");
    assert!(
        !root.join("var/lib/vigil-agent/status.json").exists(),
        "the service was not started by the installation"
    );

    // The unit verifies and scores in the installed system.
    let verify = run_ok(Command::new("chroot").arg(&root).args([
        "systemd-analyze",
        "verify",
        "/lib/systemd/system/vigil-agent.service",
    ]))
    .expect("systemd-analyze verify passes");
    assert_eq!(text(&verify).trim(), "", "verify found problems");
    let security = chroot(
        &root,
        &[
            "systemd-analyze",
            "security",
            "--offline=true",
            "/lib/systemd/system/vigil-agent.service",
        ],
    );
    let score: f64 = security
        .lines()
        .find_map(|l| l.split("vigil-agent.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure score in:\n{security}"));
    assert!(
        score <= MAX_EXPOSURE,
        "exposure {score} > {MAX_EXPOSURE}:\n{security}"
    );

    // Configure it as an operator would (the conffile changes), then upgrade to revision 2:
    // the change stays, the owner and mode are put back, the unit stays enabled.
    let mut collector = Collector::start().expect("collector on loopback");
    let viewer = collector.add_token("v", "viewer").expect("viewer token");
    let enrollment = collector
        .admin(&["enroll-token", "create", "--expires", "15m", "--single-use"])
        .expect("enrollment token");
    let config = format!(
        "[agent]\nroot = \"/\"\nstate_dir = \"/var/lib/vigil-agent\"\n\n[collector]\n\
         url = \"{}\"\nenroll_token_file = \"/etc/vigil/enroll.token\"\nmax_backoff_secs = 2\n",
        collector.url()
    );
    std::fs::write(root.join("etc/vigil/agent.toml"), &config).expect("config written");
    let token_file = root.join("etc/vigil/enroll.token");
    std::fs::write(&token_file, format!("{enrollment}\n")).expect("token written");
    std::fs::set_permissions(
        &token_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("token mode");
    let second = build_deb(&pkgs, 2);
    let log = dpkg_install(&root, &second);
    assert!(
        log.contains("Unpacking vigil-agent (0.1.0-2) over (0.1.0-1)"),
        "{log}"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("etc/vigil/agent.toml")).expect("config"),
        config,
        "the locally changed conffile survives the upgrade"
    );
    assert_eq!(stat(&root, "/etc/vigil/agent.toml"), "640 root vigil-agent");
    assert!(enabled.is_symlink(), "still enabled after the upgrade");

    // Boot it: systemd as PID 1 starts the agent under its unit; the probe reports back.
    std::fs::write(root.join("etc/hostname"), format!("{HOSTNAME}\n")).expect("hostname");
    let boot = debian_root::boot_with_probe(
        work.path(),
        &root,
        PROBE,
        "vigil-agent.service",
        &[format!("--hostname={HOSTNAME}")],
    )
    .expect("boot");
    let read = |name: &str| boot.read(name);
    assert!(
        boot.done(),
        "the probe did not finish (nspawn: {:?}); journal:\n{}\nconsole:\n{}",
        boot.status,
        read("journal"),
        boot.console
    );
    assert!(
        boot.status.is_some_and(|s| s.success()),
        "the container did not power off cleanly: {:?}\n{}",
        boot.status,
        boot.console
    );

    // Started under its unit, as its own user with exactly CAP_DAC_READ_SEARCH, seccomp on.
    let running = key_values(&read("running"));
    assert_eq!(
        running["ActiveState"],
        "active",
        "{running:?}\n{}",
        read("journal")
    );
    assert_eq!(running["SubState"], "running");
    assert_eq!(running["NRestarts"], "0");
    let process = key_values(&read("process"));
    for ids in [&process["Uid"], &process["Gid"]] {
        let all: Vec<&str> = ids.split_whitespace().collect();
        assert_eq!(all, [uid.to_string().as_str(); 4], "{process:?}");
    }
    for set in ["CapEff", "CapPrm", "CapBnd", "CapAmb"] {
        assert_eq!(
            process[set], "0000000000000004",
            "{set}: only CAP_DAC_READ_SEARCH"
        );
    }
    assert_eq!(process["NoNewPrivs"], "1");
    assert_eq!(process["Seccomp"], "2", "a system call filter is active");
    let modes = read("modes");
    assert!(
        modes.contains("700 vigil-agent vigil-agent /var/lib/vigil-agent\n"),
        "{modes}"
    );
    assert!(
        modes.contains("600 vigil-agent vigil-agent /var/lib/vigil-agent/enrollment.json"),
        "{modes}"
    );
    let shown = read("status");
    assert!(shown.contains(&format!("{HOSTNAME} (enrolled")), "{shown}");
    assert!(shown.contains("acknowledged"), "{shown}");

    // Stopped cleanly: SIGTERM, exit 0, nothing left waiting.
    let stopped = key_values(&read("stopped"));
    assert_eq!(stopped["ActiveState"], "inactive", "{stopped:?}");
    assert_eq!(stopped["Result"], "success", "{stopped:?}");
    assert_eq!(stopped["ExecMainStatus"], "0", "{stopped:?}");
    let journal = read("journal");
    assert!(journal.contains("enrolled agent="), "{journal}");
    assert!(
        journal.contains("agent stopped spool_pending=0"),
        "{journal}"
    );
    assert!(
        !journal.contains(&enrollment[4..]),
        "enrollment token in the journal"
    );

    // The collector holds the host under the enrolled name, and the encryption verdicts the
    // sandboxed service sent equal those of the same check run as root outside the sandbox
    // (ProtectHome=/ProtectSystem= must not turn a verdict).
    let (code, hosts) = collector.get("/api/v1/hosts", &viewer).expect("hosts");
    assert_eq!(code, 200);
    let host = hosts["hosts"]
        .as_array()
        .and_then(|h| h.iter().find(|h| h["agent"] == HOSTNAME))
        .unwrap_or_else(|| panic!("no host from {HOSTNAME}: {hosts}"))
        .clone();
    let machine_id = host["machine_id"].as_str().expect("machine id");
    let (code, detail) = collector
        .get(&format!("/api/v1/hosts/{machine_id}"), &viewer)
        .expect("host detail");
    assert_eq!(code, 200);
    let as_root: serde_json::Value =
        serde_json::from_str(&read("collect.json")).expect("root collect output");
    let verdicts = |results: &serde_json::Value| -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = results
            .as_array()
            .expect("results")
            .iter()
            .filter(|r| {
                r["check"]
                    .as_str()
                    .is_some_and(|c| c.starts_with("encryption."))
            })
            .map(|r| {
                (
                    r["check"].as_str().unwrap().to_string(),
                    r["status"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        out.sort();
        out
    };
    let served = verdicts(&detail["results"]);
    assert_eq!(served.len(), 4, "{detail}");
    assert_eq!(served, verdicts(&as_root["results"]));
    let denied: Vec<&serde_json::Value> = detail["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter(|r| {
            r["error"]
                .as_str()
                .is_some_and(|e| e.to_lowercase().contains("permission denied"))
        })
        .collect();
    assert!(
        denied.is_empty(),
        "no check lacks permission under the unit: {denied:?}"
    );
    collector.stop().expect("collector stops");

    // Purge: the service, its state and its credential are gone; the user stays (Debian's
    // practice: files it may own elsewhere must not fall to a recycled uid).
    let log = chroot(&root, &["dpkg", "--purge", "vigil-agent"]);
    assert!(
        log.contains("Purging configuration files for vigil-agent"),
        "{log}"
    );
    assert!(!root.join("usr/bin/vigil-agent").exists());
    assert!(!root.join("var/lib/vigil-agent").exists());
    assert!(!root.join("etc/vigil/agent.toml").exists());
    assert!(!enabled.exists() && !enabled.is_symlink());
}

/// The collector's .deb carries the default ISMS pack, complete and valid: the binary inside the
/// package validates the pack inside the package.
#[test]
fn the_collector_deb_ships_a_default_isms_pack_that_validates() {
    require_prerequisites();
    let out = tempfile::tempdir().expect("tempdir");
    run_ok(
        Command::new(repo().join("packaging/build-packages"))
            .args(["--profile", "dev", "--formats", "deb", "--no-build"])
            .args(["--packages", "vigil-collector", "--revision", "1"])
            .arg("--out")
            .arg(out.path()),
    )
    .expect("build-packages makes the collector .deb (cargo build --workspace --bins first)");
    let deb = out.path().join(format!(
        "vigil-collector_{}-1_amd64.deb",
        env!("CARGO_PKG_VERSION")
    ));
    let unpacked = out.path().join("unpacked");
    run_ok(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked)).expect("dpkg-deb -x");

    let pack = unpacked.join("usr/share/vigil-collector/isms");
    let source = repo().join("packaging/isms");
    let listing = |dir: &Path| {
        let mut files: Vec<String> = walk(dir)
            .iter()
            .map(|f| f.strip_prefix(dir).unwrap().display().to_string())
            .collect();
        files.sort();
        files
    };
    assert_eq!(
        listing(&pack),
        listing(&source),
        "the packaged pack is the source pack"
    );

    let output = run_ok(
        Command::new(unpacked.join("usr/bin/vigil-collector"))
            .arg("validate")
            .arg("--isms")
            .arg(&pack),
    )
    .expect("the packaged collector validates the packaged pack");
    let said = text(&output);
    assert!(said.contains("ok (93 controls"), "{said}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
