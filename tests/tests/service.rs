//! The agent as a service, with the real binaries on loopback: enrollment with a single-use
//! token, `status`, revocation; and durability under SIGKILL at the worst moments (halfway
//! through a spool write, and between the collector's acknowledgement and the spool forgetting
//! the report), checked against what the collector holds: every report exactly once.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test helpers outside #[test] fns

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use vigil_tests::{AgentSetup, Collector, bin, fixture, run_ok, wait_until};

const HEALTHY_ID: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";

/// Only the inventory check, every second: each report holds exactly one result.
const ONLY_INVENTORY_EVERY_SECOND: &str = "\n[checks.packages]\nenabled = false\n\
    [checks.accounts]\nenabled = false\n[checks.encryption]\nenabled = false\n\
    [checks.inventory]\nschedule = \"* * * * * *\"\n";

fn spawn_agent(config: &Path, log: &Path, stall: Option<&str>) -> Child {
    let mut cmd = Command::new(bin("vigil-agent"));
    cmd.args(["run", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"));
    match stall {
        Some(point) => cmd.env("VIGIL_TEST_AGENT_STALL", point),
        None => cmd.env_remove("VIGIL_TEST_AGENT_STALL"),
    };
    cmd.spawn().expect("agent starts")
}

fn sigkill(child: &mut Child) {
    child.kill().expect("SIGKILL sent");
    child.wait().expect("agent reaped");
}

fn sigterm(child: &mut Child) -> std::process::ExitStatus {
    run_ok(
        Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string()),
    )
    .expect("SIGTERM");
    child.wait().expect("agent exits")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Sequence numbers an agent log says were spooled (`report spooled seq=N`).
fn spooled_seqs(log: &str) -> BTreeSet<u64> {
    log.lines()
        .filter(|l| l.contains("report spooled"))
        .filter_map(|l| {
            let at = l.find("seq=")? + 4;
            l[at..]
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

fn files_named(dir: &Path, test: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| test(&e.file_name().to_string_lossy()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// Every `seq` the collector stored for the inventory check of the healthy host, in order,
/// duplicates kept (there must be none).
fn stored_seqs(collector: &Collector, viewer: &str) -> Vec<u64> {
    let (status, body) = collector
        .get(
            &format!("/api/v1/hosts/{HEALTHY_ID}/results?check=inventory.host&limit=10000"),
            viewer,
        )
        .expect("history");
    assert_eq!(status, 200, "{body}");
    body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["seq"].as_u64().expect("seq"))
        .collect()
}

#[test]
fn sigkill_mid_write_and_after_ack_loses_and_duplicates_nothing() {
    let mut collector = Collector::start().expect("collector starts");
    let token = collector.add_agent("web-01").expect("agent registered");
    let viewer = collector.add_token("v", "viewer").expect("viewer token");
    collector
        .stop()
        .expect("collector stops: the agent must spool");

    let agent = AgentSetup::new("web-01", &token, &collector.url(), &fixture("healthy"))
        .expect("agent config");
    let mut config = read(&agent.config_path());
    config.push_str(ONLY_INVENTORY_EVERY_SECOND);
    std::fs::write(agent.config_path(), config).expect("config written");
    let spool = agent.spool_dir();
    let logs: Vec<PathBuf> = (1..=3)
        .map(|i| agent.dir.path().join(format!("agent-{i}.log")))
        .collect();

    // 1. Collector away: three reports spool, the fourth write stalls halfway; SIGKILL there.
    let mut process = spawn_agent(&agent.config_path(), &logs[0], Some("spool-write:4"));
    let stalled = wait_until(Duration::from_secs(30), || {
        read(&logs[0]).contains("test stall in the middle of a spool write")
    });
    assert!(
        stalled,
        "the agent never reached the stall: {}",
        read(&logs[0])
    );
    sigkill(&mut process);
    let partial = files_named(&spool, |n| n.starts_with(".tmp-"));
    assert_eq!(partial.len(), 1, "a half-written record is left behind");
    assert!(std::fs::metadata(&partial[0]).expect("tmp").len() > 0);
    assert_eq!(agent.spooled(), 3, "{}", read(&logs[0]));
    let first_run = spooled_seqs(&read(&logs[0]));
    assert_eq!(first_run, BTreeSet::from([1, 2, 3]));

    // 2. Collector back: the agent delivers, and is SIGKILLed after the collector acknowledged
    //    its second delivery but before the spool forgot that report.
    collector.spawn().expect("collector comes back");
    let mut process = spawn_agent(&agent.config_path(), &logs[1], Some("ack:2"));
    let stalled = wait_until(Duration::from_secs(30), || {
        read(&logs[1]).contains("test stall after the acknowledgement")
    });
    assert!(stalled, "{}", read(&logs[1]));
    sigkill(&mut process);
    assert!(
        files_named(&spool, |n| n.starts_with(".tmp-")).is_empty(),
        "the restart removed the half-written record"
    );
    assert_eq!(stored_seqs(&collector, &viewer), [1, 2]);
    assert!(
        spool.join("00000000000000000002.vgs").exists(),
        "acknowledged but not yet forgotten"
    );

    // 3. A normal run drains everything; the re-sent report 2 is answered as a duplicate.
    let mut process = spawn_agent(&agent.config_path(), &logs[2], None);
    let drained = wait_until(Duration::from_secs(30), || {
        agent.spooled() == 0 && spooled_seqs(&read(&logs[2])).len() >= 2
    });
    assert!(drained, "{}", read(&logs[2]));
    assert!(sigterm(&mut process).success(), "{}", read(&logs[2]));
    let third_log = read(&logs[2]);
    assert!(
        third_log.lines().any(|l| l.contains("report acknowledged")
            && l.contains("seq=2")
            && l.contains("duplicate=true")),
        "{third_log}"
    );

    // Every report that was ever spooled is stored exactly once; the number handed out to the
    // write that was killed (4) was never spooled and is simply skipped.
    let spooled: BTreeSet<u64> = logs.iter().flat_map(|l| spooled_seqs(&read(l))).collect();
    let pending: BTreeSet<u64> = files_named(&spool, |n| n.ends_with(".vgs"))
        .iter()
        .filter_map(|p| p.file_stem()?.to_str()?.parse().ok())
        .collect();
    let stored = stored_seqs(&collector, &viewer);
    let unique: BTreeSet<u64> = stored.iter().copied().collect();
    assert_eq!(
        unique.len(),
        stored.len(),
        "a report was stored twice: {stored:?}"
    );
    assert!(!spooled.contains(&4), "{spooled:?}");
    assert!(!unique.contains(&4));
    let delivered: BTreeSet<u64> = spooled.difference(&pending).copied().collect();
    assert_eq!(
        unique, delivered,
        "stored {stored:?}, spooled {spooled:?}, pending {pending:?}"
    );
    assert!(files_named(&spool.join("corrupt"), |_| true).is_empty());
    assert_eq!(read(&spool.join("dropped")).trim(), "");
}

#[test]
fn an_agent_enrolls_with_a_single_use_token_and_reports_under_its_own_name() {
    let collector = Collector::start().expect("collector starts");
    let viewer = collector.add_token("v", "viewer").expect("viewer token");
    let enrollment = collector
        .admin(&[
            "enroll-token",
            "create",
            "--name",
            "rollout-1",
            "--labels",
            "site=paris",
            "--expires",
            "10m",
            "--single-use",
        ])
        .expect("enrollment token");
    assert!(enrollment.starts_with("vge_"), "{enrollment}");

    let make_agent = |name: &str, root: &Path| -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("dir");
        let token_file = dir.path().join("enroll.token");
        std::fs::write(&token_file, format!("{enrollment}\n")).expect("token");
        let config = dir.path().join("agent.toml");
        std::fs::write(
            &config,
            format!(
                "[agent]\nroot = \"{}\"\nstate_dir = \"{}\"\n\n[collector]\nurl = \"{}\"\n\
                 enroll_token_file = \"{}\"\ntimeout_secs = 10\nmax_backoff_secs = 1\n\n\
                 [agent.labels]\nhost = \"{name}\"\n",
                root.display(),
                dir.path().join("state").display(),
                collector.url(),
                token_file.display()
            ),
        )
        .expect("config");
        (dir, config)
    };

    let (dir, config) = make_agent("first", &fixture("healthy"));
    let output = Command::new(bin("vigil-agent"))
        .args(["run", "--once", "--config"])
        .arg(&config)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        !stderr.contains(&enrollment[4..]),
        "enrollment token in the log"
    );

    // The identity: the healthy fixture's hostname, granted by the collector, kept 0600.
    let record = dir.path().join("state/enrollment.json");
    let mode = std::fs::metadata(&record)
        .expect("record")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let granted: serde_json::Value = serde_json::from_str(&read(&record)).expect("json");
    let name = granted["agent_id"].as_str().expect("name").to_string();
    assert_eq!(name, "healthy-01");
    let agent_token = granted["token"].as_str().expect("token").to_string();
    assert!(
        !stderr.contains(&agent_token[4..]),
        "agent token in the log"
    );
    assert!(!collector.log().contains(&agent_token[4..]));
    assert!(!collector.log().contains(&enrollment[4..]));

    let (status, hosts) = collector.get("/api/v1/hosts", &viewer).expect("hosts");
    assert_eq!(status, 200);
    assert_eq!(hosts["hosts"][0]["agent"], "healthy-01", "{hosts}");
    assert_eq!(
        hosts["hosts"][0]["assigned_labels"]["site"], "paris",
        "{hosts}"
    );

    // `status` tells a person who the agent is and how the last push went, never the token.
    let output = run_ok(
        Command::new(bin("vigil-agent"))
            .args(["status", "--config"])
            .arg(&config),
    )
    .expect("status");
    let shown = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "healthy-01 (enrolled",
        &collector.url(),
        "acknowledged",
        "0 report(s) waiting",
        "inventory",
    ] {
        assert!(shown.contains(expected), "{expected:?} missing:\n{shown}");
    }
    assert!(!shown.contains(&agent_token[4..]));

    // Single use: a second host with the same token is refused with the reason.
    let (_other, config2) = make_agent("second", &fixture("misconfigured"));
    let output = Command::new(bin("vigil-agent"))
        .args(["run", "--once", "--config"])
        .arg(&config2)
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("as many agents as it allows"), "{stderr}");

    // Revoked on the collector, the agent's reports wait in its spool.
    collector
        .admin(&["agents", "revoke", "healthy-01"])
        .expect("revoked");
    let output = Command::new(bin("vigil-agent"))
        .args(["run", "--once", "--config"])
        .arg(&config)
        .output()
        .expect("runs");
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listed = collector
        .admin(&["enroll-token", "enrollments"])
        .expect("list");
    assert!(
        listed.contains("healthy-01") && listed.contains("rollout-1"),
        "{listed}"
    );
}
