//! The firewall check through `run_check`: the fixture hosts, ufw and firewalld trees, and the
//! live ruleset through a fake command runner.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vigil_shared::{CheckResult, Status, Value};

use super::Firewall;
use super::runner::{CommandError, CommandRunner};
use crate::checks::support::testing::{fixture, fixture_now as now};
use crate::checks::{CheckContext, run_check};
use crate::hostroot::HostRoot;
use crate::settings::ChecksConfig;

/// Answers from a table and records every call.
#[derive(Debug, Default)]
struct FakeRunner {
    answers: Vec<(&'static str, Result<String, CommandError>)>,
    calls: Mutex<Vec<String>>,
}

impl CommandRunner for FakeRunner {
    fn run(
        &self,
        program: &str,
        args: &[&str],
        _timeout: Duration,
    ) -> Result<String, CommandError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("{program} {}", args.join(" ")).trim().to_string());
        self.answers
            .iter()
            .find(|(p, _)| *p == program)
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| {
                Err(CommandError::Start {
                    program: program.into(),
                    reason: "not faked".into(),
                })
            })
    }
}

fn run_check_on(root: &HostRoot, check: &Firewall, settings: &ChecksConfig) -> Vec<CheckResult> {
    let ctx = CheckContext {
        root,
        now: now(),
        settings,
        cache_dir: None,
    };
    let results = run_check(check, &ctx);
    for r in &results {
        assert!(
            r.status != Status::Fail || !r.evidence.offenders.is_empty(),
            "{}",
            r.check
        );
    }
    results
}

fn run(root: &Path) -> Vec<CheckResult> {
    let fake = Arc::new(FakeRunner::default());
    let results = run_check_on(
        &HostRoot::new(root).unwrap(),
        &Firewall::with_runner(fake.clone()),
        &ChecksConfig::default(),
    );
    // Never a command on a root other than `/`.
    assert!(fake.calls.lock().unwrap().is_empty());
    results
}

fn get<'a>(results: &'a [CheckResult], id: &str) -> &'a CheckResult {
    results.iter().find(|r| r.check == id).unwrap()
}

fn offenders(r: &CheckResult) -> Vec<(&str, &str)> {
    r.evidence
        .offenders
        .iter()
        .map(|s| (s.id.as_str(), s.reason.as_deref().unwrap_or("")))
        .collect()
}

fn write(base: &Path, rel: &str, text: &str) {
    let p = base.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn link(base: &Path, rel: &str, target: &str) {
    let p = base.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(target, p).unwrap();
}

#[test]
fn healthy_host_denies_by_default_and_opens_only_ssh() {
    let results = run(&fixture("healthy"));
    let deny = get(&results, "firewall.default_deny");
    assert_eq!(deny.status, Status::Pass, "{}", deny.summary);
    assert_eq!(deny.values["default_deny_ipv6"], Value::Bool(true));
    // The included drop-in was read.
    assert!(
        deny.evidence
            .sources
            .contains(&"/etc/nftables.d/20-postgres.nft".to_string())
    );
    let open = get(&results, "firewall.open_ports");
    assert_eq!(open.status, Status::Pass);
    let ids: Vec<&str> = open
        .evidence
        .checked
        .iter()
        .map(|s| s.id.as_str())
        .collect();
    // 9100 and 5432 are open to source networks only.
    assert_eq!(ids, ["22/tcp"]);
    assert_eq!(
        open.evidence.checked[0].facts["families"],
        Value::from(vec!["ipv4", "ipv6"])
    );
}

#[test]
fn misconfigured_host_shows_every_seeded_problem() {
    let results = run(&fixture("misconfigured"));
    let deny = get(&results, "firewall.default_deny");
    assert_eq!(deny.status, Status::Fail);
    assert_eq!(
        offenders(deny),
        [("ipv6 input", "iptables: no default deny on input")]
    );
    let backends: Vec<(&str, &Value)> = deny
        .evidence
        .checked
        .iter()
        .filter(|s| s.kind == "firewall_backend")
        .map(|s| (s.id.as_str(), &s.facts["applied"]))
        .collect();
    assert_eq!(
        backends,
        [
            ("nftables", &Value::Bool(false)),
            ("iptables", &Value::Bool(true)),
            ("ufw", &Value::Bool(false))
        ]
    );
    let open = get(&results, "firewall.open_ports");
    assert_eq!(
        offenders(open),
        [
            (
                "*/any (ipv6)",
                "every port not explicitly dropped is open: no default deny on input"
            ),
            (
                "3306/tcp",
                "accepted from any source (/etc/iptables/rules.v4:9) and not in allowed_open_ports"
            ),
        ]
    );
}

#[test]
fn minimal_host_has_no_data_and_an_installed_system_without_firewall_fails() {
    for r in run(&fixture("minimal")) {
        assert_eq!(r.status, Status::NoData, "{}", r.check);
    }
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "etc/os-release", "ID=debian\n");
    let results = run(dir.path());
    assert_eq!(get(&results, "firewall.default_deny").status, Status::Fail);
    assert_eq!(get(&results, "firewall.open_ports").status, Status::NoData);
}

#[test]
fn ufw_enabled_with_rules_and_without_ipv6() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    write(base, "etc/ufw/ufw.conf", "ENABLED=yes\nLOGLEVEL=low\n");
    write(
        base,
        "etc/default/ufw",
        "IPV6=no\nDEFAULT_INPUT_POLICY=\"REJECT\"\n",
    );
    write(
        base,
        "etc/ufw/user.rules",
        "### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in\n### tuple ### allow any 8080:8090 0.0.0.0/0 any 0.0.0.0/0 in\n\
         ### tuple ### allow tcp 5432 0.0.0.0/0 any 10.1.0.0/16 in\n",
    );
    std::fs::create_dir_all(base.join("etc/systemd/system")).unwrap();
    write(base, "proc/sys/kernel/osrelease", "6.1.0\n");
    let results = run(base);
    let deny = get(&results, "firewall.default_deny");
    // The kernel has no IPv6 (no /proc/sys/net/ipv6), so ufw's IPV6=no is no finding.
    assert_eq!(deny.status, Status::Pass, "{:?}", offenders(deny));
    let open = get(&results, "firewall.open_ports");
    let ids: Vec<&str> = offenders(open).iter().map(|(i, _)| *i).collect();
    assert_eq!(ids, ["8080-8090/tcp", "8080-8090/udp"]);
    // With IPv6 in the kernel, ufw's IPV6=no leaves it unfiltered.
    write(base, "proc/sys/net/ipv6/conf/all/forwarding", "0\n");
    let results = run(base);
    assert_eq!(
        offenders(get(&results, "firewall.default_deny"))[0].0,
        "ipv6 input"
    );
}

#[test]
fn firewalld_zones_services_and_masked_units() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    write(
        base,
        "etc/firewalld/firewalld.conf",
        "# firewalld config file\nDefaultZone=internal\n",
    );
    write(
        base,
        "usr/lib/firewalld/zones/internal.xml",
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<zone>\n  <short>Internal</short>\n  <service name=\"ssh\"/>\n  <service name=\"mdns\"/>\n  <service name=\"samba-client\"/>\n</zone>\n",
    );
    write(
        base,
        "etc/firewalld/zones/internal.xml",
        "<?xml version=\"1.0\"?>\n<zone target=\"default\">\n  <service name=\"ssh\"/>\n  <service name=\"https\"/>\n  <port port=\"8443\" protocol=\"tcp\"/>\n</zone>\n",
    );
    write(
        base,
        "usr/lib/firewalld/services/https.xml",
        "<service><port protocol=\"tcp\" port=\"443\"/></service>",
    );
    link(
        base,
        "etc/systemd/system/multi-user.target.wants/firewalld.service",
        "/usr/lib/systemd/system/firewalld.service",
    );
    let results = run(base);
    let deny = get(&results, "firewall.default_deny");
    assert_eq!(deny.status, Status::Pass);
    assert!(
        deny.summary
            .contains("firewalld: zone internal target default"),
        "{}",
        deny.summary
    );
    let ids: Vec<&str> = offenders(get(&results, "firewall.open_ports"))
        .iter()
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(ids, ["443/tcp", "8443/tcp"]);
    // Masked: not applied.
    std::fs::remove_file(base.join("etc/systemd/system/multi-user.target.wants/firewalld.service"))
        .unwrap();
    link(base, "etc/systemd/system/firewalld.service", "/dev/null");
    let results = run(base);
    assert_eq!(
        offenders(get(&results, "firewall.default_deny")),
        [
            (
                "ipv4 input",
                "no firewall configuration is applied at boot (firewalld: firewalld.service is masked)"
            ),
            (
                "ipv6 input",
                "no firewall configuration is applied at boot (firewalld: firewalld.service is masked)"
            ),
        ]
    );
    // A trusted default zone lets everything in.
    write(
        base,
        "etc/firewalld/zones/internal.xml",
        "<zone target=\"ACCEPT\"/>",
    );
    std::fs::remove_file(base.join("etc/systemd/system/firewalld.service")).unwrap();
    link(
        base,
        "etc/systemd/system/multi-user.target.wants/firewalld.service",
        "/usr/lib/systemd/system/firewalld.service",
    );
    let results = run(base);
    assert_eq!(
        offenders(get(&results, "firewall.default_deny"))[0].1,
        "firewalld: an unconditional accept (firewalld zone internal) lets everything in"
    );
}

#[test]
fn the_running_ruleset_decides_on_the_live_host() {
    let root = HostRoot::new("/").unwrap();
    let has_nft = root.exists("/usr/sbin/nft") || root.exists("/sbin/nft");
    let has_save = root.exists("/usr/sbin/iptables-save") || root.exists("/sbin/iptables-save");
    let ruleset = "table inet filter {\n\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n\t\ttcp dport 443 accept\n\t}\n}\n";
    let save = "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 443 -j ACCEPT\nCOMMIT\n";
    let fake = Arc::new(FakeRunner {
        answers: vec![
            ("/usr/sbin/nft", Ok(ruleset.into())),
            ("/sbin/nft", Ok(ruleset.into())),
            ("/usr/sbin/iptables-save", Ok(save.into())),
            ("/sbin/iptables-save", Ok(save.into())),
            ("/usr/sbin/ip6tables-save", Ok(save.into())),
            ("/sbin/ip6tables-save", Ok(save.into())),
        ],
        calls: Mutex::new(Vec::new()),
    });
    let results = run_check_on(
        &root,
        &Firewall::with_runner(fake.clone()),
        &ChecksConfig::default(),
    );
    let deny = get(&results, "firewall.default_deny");
    let calls = fake.calls.lock().unwrap().clone();
    if has_nft || has_save {
        assert_eq!(deny.values["basis"], Value::from("running"));
        assert_eq!(
            offenders(get(&results, "firewall.open_ports"))[0].0,
            "443/tcp"
        );
        assert!(
            calls[0].ends_with("nft list ruleset") || calls[0].ends_with("iptables-save"),
            "{calls:?}"
        );
    } else {
        // This machine has no firewall userland (see the environment notes): nothing to run.
        assert!(calls.is_empty());
        assert_eq!(deny.status, Status::Fail);
    }
    // Turned off: no command, ever.
    let quiet = Arc::new(FakeRunner::default());
    let mut settings = ChecksConfig::default();
    settings.firewall.live_ruleset = false;
    run_check_on(&root, &Firewall::with_runner(quiet.clone()), &settings);
    assert!(quiet.calls.lock().unwrap().is_empty());
}

#[test]
fn live_ruleset_parsing_through_a_fake_tree_binary() {
    // A live-like root cannot be faked (only `/` is live), so the live path is exercised on
    // the views it builds: a failed nft falls back to iptables-save.
    let fake = FakeRunner {
        answers: vec![
            (
                "/usr/sbin/nft",
                Err(CommandError::Failed {
                    program: "/usr/sbin/nft".into(),
                    status: "exit status: 1".into(),
                    stderr: "Operation not permitted".into(),
                }),
            ),
            (
                "/usr/sbin/iptables-save",
                Ok("*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n".into()),
            ),
        ],
        calls: Mutex::new(Vec::new()),
    };
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "usr/sbin/nft", "");
    write(dir.path(), "usr/sbin/iptables-save", "");
    let root = HostRoot::new(dir.path()).unwrap();
    let mut problems = Vec::new();
    let view = super::live_view(&root, &fake, Duration::from_secs(1), &mut problems).unwrap();
    assert_eq!(view.backend, "iptables (running)");
    assert!(view.v4.deny.is_none());
    assert_eq!(
        problems,
        ["/usr/sbin/nft: exited with exit status: 1: Operation not permitted"]
    );
}
