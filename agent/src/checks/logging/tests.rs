//! The logging check through `run_check` on the fixture hosts and on trees built here.

use vigil_shared::Status;

use super::*;
use crate::checks::support::testing::*;
use crate::settings::ChecksConfig;

#[test]
fn healthy_host_logs_audits_forwards_and_keeps() {
    let r = run_fixture(&Logging, "healthy");
    assert_well_formed(&r);
    for id in [AUDIT, JOURNAL, REMOTE, RETENTION] {
        assert_eq!(status(&r, id), Status::Pass, "{id}: {:?}", r[id]);
    }
    assert_eq!(
        r[AUDIT].summary,
        "auditd is enabled and running with 12 rules covering identity files, sudoers and clock changes, locked"
    );
    assert_eq!(
        checked(&r, AUDIT),
        [
            "auditd",
            "disk_full_action",
            "disk_error_action",
            "admin_space_left_action",
            "space_left_action",
            "identity",
            "sudoers",
            "time_change",
            "immutable"
        ]
    );
    assert_eq!(
        r[JOURNAL].summary,
        "journald keeps logs on disk (Storage=persistent)"
    );
    assert_eq!(checked(&r, REMOTE), ["siem.corp.example:6514"]);
    let dest = &r[REMOTE].evidence.checked[0];
    assert_eq!(
        dest.facts["file"],
        Value::from("/etc/rsyslog.d/60-siem.conf:3")
    );
    assert_eq!(dest.facts["protocol"], Value::from("tcp"));
    assert_eq!(
        checked(&r, RETENTION),
        ["/var/log/syslog", "/var/log/auth.log", "/var/log/kern.log"]
    );
    assert_eq!(
        r[RETENTION].values["shortest_retention_days"],
        Value::Float(182.0)
    );
}

#[test]
fn misconfigured_host_has_every_seeded_logging_problem() {
    let r = run_fixture(&Logging, "misconfigured");
    assert_well_formed(&r);
    for id in [AUDIT, JOURNAL, REMOTE, RETENTION] {
        assert_eq!(status(&r, id), Status::Fail, "{id}: {:?}", r[id]);
    }
    assert_eq!(
        offenders(&r, AUDIT),
        [
            "auditd",
            "disk_full_action",
            "identity",
            "sudoers",
            "time_change",
            "immutable",
            "/etc/audit/rules.d/50-local.rules:7"
        ]
    );
    assert_eq!(
        reason(&r, AUDIT, "auditd"),
        "auditd is enabled but not running"
    );
    assert_eq!(
        reason(&r, AUDIT, "identity"),
        "no rule records writes to /etc/shadow, /etc/gshadow"
    );
    assert_eq!(
        reason(&r, AUDIT, "sudoers"),
        "no rule records writes to /etc/sudoers, /etc/sudoers.d"
    );
    assert_eq!(
        reason(&r, AUDIT, "time_change"),
        "no rule records the syscalls clock_settime"
    );
    assert_eq!(
        reason(&r, AUDIT, "/etc/audit/rules.d/50-local.rules:7"),
        "auditctl rejects this line (unknown option -x) and stops loading the rules there"
    );
    assert_eq!(offenders(&r, JOURNAL), ["storage"]);
    assert!(
        reason(&r, JOURNAL, "storage")
            .starts_with("Storage=volatile: the journal is kept in memory only")
    );
    assert_eq!(offenders(&r, REMOTE), ["logs.corp.example:514"]);
    assert_eq!(
        reason(&r, REMOTE, "logs.corp.example:514"),
        "configured, but rsyslog is not enabled at boot (masked)"
    );
    assert_eq!(
        offenders(&r, RETENTION),
        [
            "/var/log/syslog",
            "/var/log/messages",
            "/var/log/auth.log",
            "/var/log/kern.log"
        ]
    );
    assert_eq!(
        reason(&r, RETENTION, "/var/log/syslog"),
        "daily, 7 kept: about 7 days kept, below the 90-day minimum"
    );
}

#[test]
fn minimal_host_has_nothing_to_judge() {
    let r = run_fixture(&Logging, "minimal");
    assert_well_formed(&r);
    for id in [AUDIT, JOURNAL, REMOTE, RETENTION] {
        assert_eq!(status(&r, id), Status::NoData, "{id}: {:?}", r[id]);
    }
}

#[test]
fn policies_can_waive_auditd_and_remote_forwarding() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(
        dir.path(),
        &[("usr/lib/systemd/system/ssh.service", "[Unit]\n")],
    );
    let r = run(&Logging, dir.path());
    assert_eq!(status(&r, AUDIT), Status::Fail);
    assert_eq!(offenders(&r, AUDIT), ["auditd"]);
    assert_eq!(status(&r, REMOTE), Status::Fail);
    assert_eq!(offenders(&r, REMOTE), ["none"]);
    let mut settings = ChecksConfig::default();
    settings.logging.require_auditd = false;
    settings.logging.require_remote = false;
    let r = run_with(&Logging, dir.path(), &settings);
    assert_eq!(status(&r, AUDIT), Status::Pass);
    assert_eq!(
        r[AUDIT].summary,
        "auditd is not installed; not required ([checks.logging] require_auditd = false)"
    );
    assert_eq!(status(&r, REMOTE), Status::Pass);
}

#[test]
fn a_volatile_journal_is_fine_when_rsyslog_writes_to_disk() {
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path();
    write_tree(
        b,
        &[
            (
                "usr/lib/systemd/system/systemd-journald.service",
                "[Unit]\n",
            ),
            ("usr/lib/systemd/system/rsyslog.service", "[Unit]\n"),
            ("etc/systemd/journald.conf", "[Journal]\n#Storage=auto\n"),
            ("etc/rsyslog.conf", "*.* /var/log/syslog\n"),
        ],
    );
    let r = run(&Logging, b);
    assert_eq!(
        status(&r, JOURNAL),
        Status::Fail,
        "auto without /var/log/journal, rsyslog disabled"
    );
    link(
        b,
        "etc/systemd/system/multi-user.target.wants/rsyslog.service",
        "/lib/systemd/system/rsyslog.service",
    );
    let r = run(&Logging, b);
    assert_eq!(status(&r, JOURNAL), Status::Pass);
    assert_eq!(
        r[JOURNAL].summary,
        "journald keeps logs in memory only (Storage=auto without /var/log/journal); rsyslog writes them to disk"
    );
    std::fs::create_dir_all(b.join("var/log/journal")).unwrap();
    write_tree(
        b,
        &[(
            "etc/systemd/journald.conf.d/x.conf",
            "[Journal]\nMaxRetentionSec=1month\n",
        )],
    );
    let r = run(&Logging, b);
    assert_eq!(status(&r, JOURNAL), Status::Fail);
    assert_eq!(offenders(&r, JOURNAL), ["MaxRetentionSec"]);
    assert!(
        reason(&r, JOURNAL, "MaxRetentionSec")
            .contains("after 30.4 days, below the 90-day minimum")
    );
}

#[test]
fn syslog_ng_journal_upload_and_shippers_count_as_remote() {
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path();
    write_tree(
        b,
        &[
            ("usr/lib/systemd/system/syslog-ng.service", "[Unit]\n"),
            (
                "etc/syslog-ng/syslog-ng.conf",
                "@include \"scl.conf\"\n@include \"/etc/syslog-ng/conf.d/\"\nsource s { system(); };\n",
            ),
            ("usr/share/syslog-ng/include/scl.conf", "# scl\n"),
            (
                "etc/syslog-ng/conf.d/remote.conf",
                "destination d_net { network(\"collector.example\" transport(\"tls\")); };\nlog { source(s); destination(d_net); };\n",
            ),
        ],
    );
    link(
        b,
        "etc/systemd/system/multi-user.target.wants/syslog-ng.service",
        "/lib/systemd/system/syslog-ng.service",
    );
    let r = run(&Logging, b);
    assert_eq!(status(&r, REMOTE), Status::Pass, "{:?}", r[REMOTE]);
    assert_eq!(checked(&r, REMOTE), ["collector.example"]);
    assert!(
        r[REMOTE]
            .evidence
            .sources
            .contains(&"/usr/share/syslog-ng/include/scl.conf".to_string())
    );

    let dir = tempfile::tempdir().unwrap();
    let b = dir.path();
    write_tree(
        b,
        &[
            (
                "usr/lib/systemd/system/systemd-journal-upload.service",
                "[Unit]\n",
            ),
            (
                "etc/systemd/journal-upload.conf",
                "[Upload]\nURL=https://logs.example:19532\n",
            ),
            ("usr/lib/systemd/system/filebeat.service", "[Unit]\n"),
            ("proc/1700/comm", "filebeat\n"),
        ],
    );
    let r = run(&Logging, b);
    assert_eq!(status(&r, REMOTE), Status::Pass, "{:?}", r[REMOTE]);
    assert_eq!(
        checked(&r, REMOTE),
        ["filebeat", "https://logs.example:19532"]
    );
    assert_eq!(r[REMOTE].values["destinations"], Value::Int(1));
    assert_eq!(
        r[REMOTE].evidence.checked[1].facts["unit"],
        Value::from("disabled"),
        "listed, not counted"
    );
    link(
        b,
        "etc/systemd/system/multi-user.target.wants/systemd-journal-upload.service",
        "/x",
    );
    write_tree(
        b,
        &[
            ("proc/1701/comm", "systemd-journal\n"),
            ("proc/1701/cmdline", "/lib/systemd/systemd-journald\0"),
        ],
    );
    let r = run(&Logging, b);
    assert_eq!(
        checked(&r, REMOTE),
        ["filebeat", "https://logs.example:19532"],
        "enabled, but its process (systemd-journal-upload) does not run: listed, not counted"
    );
    assert_eq!(
        r[REMOTE].evidence.checked[1].facts["running"],
        Value::Bool(false)
    );
    assert_eq!(r[REMOTE].values["destinations"], Value::Int(1));
}

#[test]
fn logrotate_defaults_flow_into_included_files() {
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path();
    write_tree(
        b,
        &[
            (
                "etc/logrotate.conf",
                "monthly\nrotate 2\ninclude /etc/logrotate.d\nrotate 12\n/var/log/secure {\n}\n",
            ),
            ("etc/logrotate.d/syslog", "/var/log/messages {\n}\n"),
            (
                "etc/logrotate.d/syslog.dpkg-old",
                "/var/log/kern.log {\n rotate 99\n}\n",
            ),
            (
                "etc/logrotate.d/sized",
                "/var/log/auth.log {\n size 10M\n rotate 3\n}\n",
            ),
            ("var/log/syslog", ""),
        ],
    );
    let r = run(&Logging, b);
    assert_eq!(status(&r, RETENTION), Status::Fail);
    assert_eq!(offenders(&r, RETENTION), ["/var/log/messages"]);
    assert_eq!(
        reason(&r, RETENTION, "/var/log/messages"),
        "monthly, 2 kept: about 60 days kept, below the 90-day minimum"
    );
    assert_eq!(
        checked(&r, RETENTION),
        ["/var/log/syslog", "/var/log/auth.log", "/var/log/secure"],
    );
    let syslog = &r[RETENTION].evidence.checked[0];
    assert_eq!(
        syslog.facts["note"],
        Value::from("not rotated by logrotate: kept until something else removes it")
    );
    let secure = &r[RETENTION].evidence.checked[2];
    assert_eq!(secure.facts["retention_days"], Value::Float(360.0));
}
