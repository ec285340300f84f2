//! The listening check through `run_check`: the fixture hosts, the allowlist, and real sockets
//! opened by this test on the live host (loopback only).

use std::path::Path;

use vigil_shared::{CheckResult, Status, Value};

use super::{Allowed, Listening};
use crate::checks::support::testing::{fixture, fixture_now as now};
use crate::checks::{CheckContext, run_check};
use crate::hostroot::HostRoot;
use crate::settings::ChecksConfig;

fn run_with(root: &Path, settings: &ChecksConfig) -> CheckResult {
    let root = HostRoot::new(root).unwrap();
    let ctx = CheckContext {
        root: &root,
        now: now(),
        settings,
        cache_dir: None,
    };
    let mut results = run_check(&Listening, &ctx);
    assert_eq!(results.len(), 1);
    let r = results.remove(0);
    assert!(r.status != Status::Fail || !r.evidence.offenders.is_empty());
    r
}

#[test]
fn healthy_host_exposes_only_expected_services() {
    let r = run_with(&fixture("healthy"), &ChecksConfig::default());
    assert_eq!(r.status, Status::Pass, "{}", r.summary);
    assert_eq!(r.values["listening"], Value::Int(8));
    assert_eq!(r.values["world_listening"], Value::Int(3));
    assert_eq!(r.values["loopback_only"], Value::Int(4));
    assert_eq!(r.values["process_unknown"], Value::Int(0));
    let ids: Vec<&str> = r.evidence.checked.iter().map(|s| s.id.as_str()).collect();
    // Established connections and connected UDP sockets are not listeners.
    assert_eq!(
        ids,
        [
            "22/tcp",
            "22/tcp6",
            "5432/tcp",
            "5432/tcp6",
            "9100/tcp",
            "68/udp",
            "323/udp",
            "323/udp6"
        ]
    );
    let exporter = &r.evidence.checked[4];
    assert_eq!(exporter.facts["scope"], Value::from("interface"));
    assert_eq!(exporter.facts["process"], Value::from("prometheus-node"));
    assert_eq!(
        exporter.facts["exe"],
        Value::from("/usr/bin/prometheus-node-exporter")
    );
    assert_eq!(
        r.evidence.sources.last().map(String::as_str),
        Some("/proc/<pid>/fd")
    );
}

#[test]
fn misconfigured_host_names_every_exposed_service() {
    let r = run_with(&fixture("misconfigured"), &ChecksConfig::default());
    assert_eq!(r.status, Status::Fail);
    let got: Vec<(&str, Option<&str>)> = r
        .evidence
        .offenders
        .iter()
        .map(|s| {
            (
                s.id.as_str(),
                s.facts.get("process").and_then(|v| v.as_str()),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("111/tcp", Some("rpcbind")),
            ("111/tcp6", Some("rpcbind")),
            ("3306/tcp", Some("mysqld")),
            ("6379/tcp6", Some("redis-server")),
            ("8080/tcp", None),
            ("111/udp", Some("rpcbind")),
        ]
    );
    assert_eq!(
        r.evidence.offenders[4].reason.as_deref(),
        Some(
            "an unknown process (uid 1001) listens on every interface (0.0.0.0:8080) and is not in the allowlist"
        )
    );
    // Postfix on loopback is fine.
    assert!(r.evidence.checked.iter().any(|s| s.id == "25/tcp"));
}

#[test]
fn the_allowlist_matches_port_protocol_and_process() {
    let mut settings = ChecksConfig::default();
    settings.listening.allowed.push(Allowed {
        port: Some(111),
        protocol: None,
        process: Some("rpcbind".into()),
    });
    settings.listening.allowed.push(Allowed {
        port: None,
        protocol: Some("TCP".into()),
        process: Some("mysqld".into()),
    });
    // A process-only entry never matches a socket whose process is unknown.
    settings.listening.allowed.push(Allowed {
        port: Some(8080),
        protocol: None,
        process: Some("java".into()),
    });
    // An empty entry matches nothing.
    settings.listening.allowed.push(Allowed {
        port: None,
        protocol: None,
        process: None,
    });
    let r = run_with(&fixture("misconfigured"), &settings);
    let ids: Vec<&str> = r.evidence.offenders.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["6379/tcp6", "8080/tcp"]);
}

#[test]
fn minimal_host_has_no_data() {
    let r = run_with(&fixture("minimal"), &ChecksConfig::default());
    assert_eq!(r.status, Status::NoData);
}

#[test]
fn real_sockets_on_the_live_host_are_found_with_their_process() {
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let tcp_port = tcp.local_addr().unwrap().port();
    let udp_port = udp.local_addr().unwrap().port();
    let r = run_with(Path::new("/"), &ChecksConfig::default());
    assert!(r.status != Status::Error, "{}", r.summary);
    let all: Vec<&vigil_shared::Subject> = r
        .evidence
        .offenders
        .iter()
        .chain(&r.evidence.checked)
        .collect();
    for id in [format!("{tcp_port}/tcp"), format!("{udp_port}/udp")] {
        let s = all
            .iter()
            .find(|s| s.id == id && s.facts["address"] == Value::from("127.0.0.1"))
            .unwrap_or_else(|| panic!("{id} not found in {all:?}"));
        assert_eq!(s.facts["scope"], Value::from("loopback"));
        assert_eq!(s.facts["pid"], Value::from(std::process::id()));
        let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
        assert_eq!(s.facts["process"], Value::from(comm.trim_end()));
    }
    drop((tcp, udp));
}
