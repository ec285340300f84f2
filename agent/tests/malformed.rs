//! A hostile host: the healthy fixture host copied into a temporary root, then vandalised —
//! binary junk in passwd, shadow, group, os-release, machine-id and dpkg's status, 1 GiB
//! (sparse) files where small ones are expected, symlink loops (a file to itself, two files to
//! each other, directories into their parents under walked directories), a FIFO, a character
//! device that never ends, directories where files are expected, unreadable files. The real
//! `vigil-agent collect` must end within a time bound with a result for every check it runs on
//! the healthy host (error and no_data are fine), and the report must stay a valid v1 report.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test helpers outside #[test] fns

use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use vigil_shared::Report;

const FIXTURE_NOW: &str = "2026-06-01T12:00:00Z";
/// A full collection on the healthy host takes well under a second; the hostile host may cost
/// more (a 1 GiB list is refused after reading its cap) but must never hang.
const TIME_BOUND: Duration = Duration::from_secs(60);

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Deterministic junk: NULs, invalid UTF-8, control bytes, very long lines, a few newlines.
fn junk(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            match i % 97 {
                0 => b'\n',
                1 => b':',
                2 => 0xff,
                _ => (x >> 24) as u8,
            }
        })
        .collect()
}

fn write(root: &Path, path: &str, bytes: &[u8]) {
    let p = root.join(path.trim_start_matches('/'));
    let _ = std::fs::remove_file(&p);
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, bytes).unwrap();
}

fn replace_with(root: &Path, path: &str) -> PathBuf {
    let p = root.join(path.trim_start_matches('/'));
    let _ = std::fs::remove_file(&p);
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    p
}

/// A sparse file of `len` bytes (holes read as zeros; nothing is written to disk).
fn sparse(root: &Path, path: &str, len: u64) {
    let p = replace_with(root, path);
    std::fs::File::create(&p).unwrap().set_len(len).unwrap();
}

fn mkfifo(root: &Path, path: &str) {
    let p = replace_with(root, path);
    let status = Command::new("mkfifo")
        .arg(&p)
        .status()
        .expect("mkfifo runs");
    assert!(status.success());
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The vandalised host. Returns its directory (kept alive by the TempDir).
fn hostile_host() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let copied = Command::new("cp")
        .arg("-a")
        .arg(manifest().join("fixtures/hosts/healthy/."))
        .arg(root)
        .status()
        .expect("cp runs");
    assert!(copied.success());

    // Binary junk in the account databases, the OS identity and the package database.
    for (i, path) in [
        "/etc/passwd",
        "/etc/shadow",
        "/etc/group",
        "/etc/os-release",
        "/etc/machine-id",
        "/etc/hostname",
        "/var/lib/dpkg/status",
        "/etc/login.defs",
        "/etc/apt/sources.list",
        "/var/log/dpkg.log",
    ]
    .iter()
    .enumerate()
    {
        write(root, path, &junk(256 * 1024, i as u64 + 1));
    }
    // Junk inside walked directories too.
    write(root, "/etc/sudoers.d/junk", &junk(4096, 40));
    write(root, "/etc/cron.d/junk", &junk(4096, 41));
    write(root, "/etc/sysctl.d/99-junk.conf", &junk(4096, 42));
    write(root, "/var/lib/vigil/evidence.d/junk.json", &junk(4096, 43));

    // 1 GiB where a few bytes or kilobytes are expected.
    const GIB: u64 = 1 << 30;
    sparse(root, "/etc/sysctl.conf", GIB);
    sparse(root, "/etc/ssh/sshd_config.d/huge.conf", GIB);
    sparse(root, "/etc/pam.d/common-password", GIB);
    sparse(root, "/etc/rsyslog.conf", GIB);
    sparse(
        root,
        "/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm-updates_main_binary-amd64_Packages",
        GIB,
    );
    sparse(root, "/var/lib/vigil/evidence.d/huge.json", GIB);
    sparse(root, "/etc/crontab", GIB);

    // Symlink loops: a file to itself, two files to each other, directories into their parents
    // under the directories that are walked.
    let link = |target: &str, path: &str| {
        let p = replace_with(root, path);
        symlink(target, p).unwrap();
    };
    link("sshd_config", "/etc/ssh/sshd_config");
    link("b.conf", "/etc/modprobe.d/a.conf");
    link("a.conf", "/etc/modprobe.d/b.conf");
    link("..", "/etc/ssh/sshd_config.d/parent");
    link("/etc/cron.d", "/etc/cron.d/self");
    link("../sysctl.d", "/etc/sysctl.d/loop");
    link("/etc", "/etc/logrotate.d/etc");
    link(
        "/var/lib/vigil/evidence.d",
        "/var/lib/vigil/evidence.d/again.json",
    );
    link("/", "/etc/ssl/certs/root");

    // Special files where regular files are expected: a FIFO nobody writes to (opening it for
    // reading would block forever), a directory, and (as root) a device that never ends.
    mkfifo(root, "/etc/gshadow");
    mkfifo(root, "/etc/sudoers");
    mkfifo(root, "/etc/cron.d/fifo");
    mkfifo(root, "/var/lib/vigil/evidence.d/fifo.json");
    std::fs::create_dir_all(replace_with(root, "/etc/issue.net")).unwrap();
    std::fs::create_dir_all(replace_with(root, "/etc/fstab")).unwrap();
    std::fs::create_dir_all(replace_with(root, "/etc/shells")).unwrap();
    if is_root() {
        for path in ["/etc/crypttab", "/etc/issue", "/etc/chrony/chrony.conf"] {
            let p = replace_with(root, path);
            // Character device 1:5 is /dev/zero: endless zeros.
            let status = Command::new("mknod")
                .arg(&p)
                .args(["c", "1", "5"])
                .status()
                .expect("mknod runs");
            assert!(status.success());
        }
    }

    // Unreadable files and directories (root reads them anyway; other users get EACCES).
    for path in ["/etc/security/pwquality.conf", "/etc/nftables.conf"] {
        let p = root.join(path.trim_start_matches('/'));
        if p.exists() {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000)).unwrap();
        }
    }
    let d = root.join("etc/logrotate.d");
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o000)).unwrap();
    dir
}

/// Runs `vigil-agent collect` with a hard deadline: a hang is killed and fails the test.
fn collect(root: &Path) -> (Output, Duration) {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigil-agent"))
        .args([
            "collect",
            "--format",
            "json",
            "--cache-dir",
            "none",
            "--now",
            FIXTURE_NOW,
        ])
        .arg("--config")
        .arg(manifest().join("tests/fixture-agent.toml"))
        .arg("--root")
        .arg(root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vigil-agent runs");
    // Drain the pipes while waiting: a report is larger than a pipe's buffer.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    );
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > TIME_BOUND {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = stderr.join().unwrap_or_default();
            panic!(
                "vigil-agent collect hung on the hostile host (killed after {TIME_BOUND:?}): {}",
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = started.elapsed();
    let output = Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    (output, elapsed)
}

fn parse(output: &Output, what: &str) -> Report {
    assert!(
        output.status.success(),
        "collect on the {what} host failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "collect on the {what} host printed no v1 report ({e}): {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

#[test]
fn a_hostile_host_never_crashes_or_hangs_the_agent() {
    let (healthy, _) = collect(&manifest().join("fixtures/hosts/healthy"));
    let healthy = parse(&healthy, "healthy");
    let host = hostile_host();
    let (output, elapsed) = collect(host.path());
    let report = parse(&output, "hostile");
    assert!(elapsed < TIME_BOUND, "took {elapsed:?}");
    assert_eq!(
        report.validate(),
        Ok(()),
        "the report must stay a valid v1 report"
    );

    let expected: BTreeSet<&str> = healthy.results.iter().map(|r| r.check.as_str()).collect();
    let got: BTreeSet<&str> = report.results.iter().map(|r| r.check.as_str()).collect();
    let missing: Vec<&&str> = expected.difference(&got).collect();
    assert!(missing.is_empty(), "checks without a result: {missing:?}");
    // The damage is seen, not silently passed over: the account, package and OS checks
    // cannot have judged the junk as a healthy host.
    let changed = report
        .results
        .iter()
        .filter(|r| {
            healthy
                .results
                .iter()
                .find(|h| h.check == r.check)
                .is_some_and(|h| h.status != r.status)
        })
        .count();
    assert!(
        changed > 0,
        "the hostile host reads exactly like the healthy one"
    );
    // Checks whose evidence is junk, a loop or special file must not pass on it.
    for id in [
        "accounts.inventory",
        "accounts.uid0",
        "accounts.empty_passwords",
        "accounts.sudo_nopasswd",
        "packages.inventory",
        "packages.pending_security",
        "inventory.host",
        "ssh.root_login",
        "ssh.authentication",
        "logging.remote",
    ] {
        let r = report
            .results
            .iter()
            .find(|r| r.check == id)
            .unwrap_or_else(|| panic!("no result for {id}"));
        assert_ne!(
            r.status,
            vigil_shared::Status::Pass,
            "{id} passed on junk: {r:?}"
        );
    }
    for r in &report.results {
        assert!(
            !r.summary.is_empty(),
            "{} ended without a summary: {r:?}",
            r.check
        );
    }
    eprintln!(
        "hostile host: {} results ({} changed from healthy) in {elapsed:?}",
        report.results.len(),
        changed
    );
}
