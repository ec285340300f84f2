//! The time synchronisation check through `run_check`: the fixture hosts, trees built here
//! for the daemon variants, and the live kernel clock against an independent reading.

use vigil_shared::Status;

use super::*;
use crate::checks::support::testing::*;

#[test]
fn healthy_host_runs_chrony_with_its_sources() {
    let r = run_fixture(&TimeSync, "healthy");
    assert_well_formed(&r);
    assert_eq!(status(&r, SERVICE), Status::Pass, "{:?}", r[SERVICE]);
    assert_eq!(checked(&r, SERVICE), ["chrony"]);
    let chrony = &r[SERVICE].evidence.checked[0];
    assert_eq!(
        chrony.facts["sources"],
        Value::from(vec![
            "pool 2.debian.pool.ntp.org",
            "server ntp1.corp.example",
            "server ntp2.corp.example"
        ])
    );
    assert_eq!(
        r[SERVICE].evidence.sources,
        [
            "/etc/chrony/chrony.conf",
            "/etc/chrony/sources.d/corp.sources"
        ]
    );
    assert_eq!(
        r[SERVICE].summary,
        "chrony is enabled and running with 3 time sources"
    );
    assert_eq!(status(&r, SYNCHRONIZED), Status::NoData);
}

#[test]
fn misconfigured_host_has_no_sources_and_two_daemons() {
    let r = run_fixture(&TimeSync, "misconfigured");
    assert_well_formed(&r);
    assert_eq!(status(&r, SERVICE), Status::Fail);
    assert_eq!(
        offenders(&r, SERVICE),
        ["chrony+systemd-timesyncd", "chrony", "systemd-timesyncd"]
    );
    assert_eq!(
        reason(&r, SERVICE, "chrony"),
        "no time source configured (server, pool, peer or refclock)"
    );
    assert_eq!(
        reason(&r, SERVICE, "systemd-timesyncd"),
        "enabled at boot but not running"
    );
    assert_eq!(status(&r, SYNCHRONIZED), Status::NoData);
}

#[test]
fn minimal_host_has_nothing_to_judge() {
    let r = run_fixture(&TimeSync, "minimal");
    assert_well_formed(&r);
    assert_eq!(status(&r, SERVICE), Status::NoData);
    assert_eq!(status(&r, SYNCHRONIZED), Status::NoData);
}

fn unit(base: &std::path::Path, name: &str, target: &str) {
    write_tree(
        base,
        &[(&format!("usr/lib/systemd/system/{name}"), "[Unit]\n")],
    );
    link(
        base,
        &format!("etc/systemd/system/{target}.wants/{name}"),
        &format!("/lib/systemd/system/{name}"),
    );
}

#[test]
fn timesyncd_defaults_use_the_builtin_fallback_until_emptied() {
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path();
    unit(b, "systemd-timesyncd.service", "sysinit.target");
    write_tree(
        b,
        &[(
            "etc/systemd/timesyncd.conf",
            "[Time]\n#NTP=\n#FallbackNTP=0.debian.pool.ntp.org\n",
        )],
    );
    let r = run(&TimeSync, b);
    assert_eq!(status(&r, SERVICE), Status::Pass, "{:?}", r[SERVICE]);
    assert_eq!(
        r[SERVICE].summary,
        "systemd-timesyncd is enabled with 1 time source"
    );

    write_tree(
        b,
        &[(
            "etc/systemd/timesyncd.conf.d/50-none.conf",
            "[Time]\nFallbackNTP=\n",
        )],
    );
    let r = run(&TimeSync, b);
    assert_eq!(status(&r, SERVICE), Status::Fail);
    assert_eq!(offenders(&r, SERVICE), ["systemd-timesyncd"]);
    assert_eq!(
        r[SERVICE].evidence.sources,
        [
            "/etc/systemd/timesyncd.conf",
            "/etc/systemd/timesyncd.conf.d/50-none.conf"
        ]
    );

    // A drop-in of the same name in /run is hidden by the one in /etc; the /usr/lib one with
    // another name still applies, in name order.
    write_tree(
        b,
        &[
            (
                "run/systemd/timesyncd.conf.d/50-none.conf",
                "[Time]\nNTP=ignored.example\n",
            ),
            (
                "usr/lib/systemd/timesyncd.conf.d/60-corp.conf",
                "[Time]\nNTP=ntp.corp.example\n",
            ),
        ],
    );
    let r = run(&TimeSync, b);
    assert_eq!(status(&r, SERVICE), Status::Pass);
    assert_eq!(
        r[SERVICE].evidence.checked[0].facts["sources"],
        Value::from(vec!["NTP ntp.corp.example"])
    );
}

#[test]
fn ntpd_with_only_the_local_clock_has_no_source() {
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path();
    unit(b, "ntpsec.service", "multi-user.target");
    write_tree(
        b,
        &[(
            "etc/ntpsec/ntp.conf",
            "server 127.127.1.0\nfudge 127.127.1.0 stratum 10\nincludefile /etc/ntpsec/extra.conf\n",
        )],
    );
    let r = run(&TimeSync, b);
    assert_eq!(status(&r, SERVICE), Status::Fail);
    assert_eq!(offenders(&r, SERVICE), ["ntpd"]);
    write_tree(
        b,
        &[(
            "etc/ntpsec/extra.conf",
            "pool 0.debian.pool.ntp.org iburst\n",
        )],
    );
    let r = run(&TimeSync, b);
    assert_eq!(status(&r, SERVICE), Status::Pass, "{:?}", r[SERVICE]);
    assert_eq!(
        r[SERVICE].evidence.sources,
        ["/etc/ntpsec/ntp.conf", "/etc/ntpsec/extra.conf"]
    );
}

#[test]
fn installed_but_disabled_masked_or_absent_daemons_fail() {
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path();
    write_tree(
        b,
        &[
            ("usr/lib/systemd/system/chrony.service", "[Unit]\n"),
            (
                "etc/chrony/chrony.conf",
                "pool 2.debian.pool.ntp.org iburst\n",
            ),
        ],
    );
    let r = run(&TimeSync, b);
    assert_eq!(status(&r, SERVICE), Status::Fail);
    assert_eq!(
        reason(&r, SERVICE, "chrony"),
        "installed but not enabled at boot (disabled)"
    );
    link(b, "etc/systemd/system/chrony.service", "/dev/null");
    link(
        b,
        "etc/systemd/system/multi-user.target.wants/chrony.service",
        "/lib/systemd/system/chrony.service",
    );
    let r = run(&TimeSync, b);
    assert_eq!(
        reason(&r, SERVICE, "chrony"),
        "installed but not enabled at boot (masked)"
    );

    // A systemd host with no time daemon at all.
    let dir = tempfile::tempdir().unwrap();
    write_tree(
        dir.path(),
        &[("usr/lib/systemd/system/ssh.service", "[Unit]\n")],
    );
    let r = run(&TimeSync, dir.path());
    assert_eq!(status(&r, SERVICE), Status::Fail);
    assert_eq!(offenders(&r, SERVICE), ["none"]);
}

#[test]
fn running_without_being_enabled_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path();
    write_tree(
        b,
        &[
            ("usr/lib/systemd/system/chrony.service", "[Unit]\n"),
            ("etc/chrony/chrony.conf", "server ntp.example iburst\n"),
            ("proc/1500/comm", "chronyd\n"),
        ],
    );
    let r = run(&TimeSync, b);
    assert_eq!(status(&r, SERVICE), Status::Fail);
    assert_eq!(
        reason(&r, SERVICE, "chrony"),
        "running but not enabled at boot (disabled): it will not start after a reboot"
    );
}

#[test]
fn chrony_includes_confdirs_and_loops() {
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path();
    unit(b, "chronyd.service", "multi-user.target");
    write_tree(
        b,
        &[
            (
                "etc/chrony.conf",
                "include /etc/chrony.d/*.conf\nconfdir /etc/chrony/a /etc/chrony/b\n",
            ),
            ("etc/chrony.d/loop.conf", "include /etc/chrony.conf\n"),
            ("etc/chrony/a/x.conf", "# nothing\n"),
            ("etc/chrony/b/x.conf", "server hidden.example\n"),
            ("etc/chrony/b/y.conf", "server b.example\n"),
        ],
    );
    let r = run(&TimeSync, b);
    assert_eq!(status(&r, SERVICE), Status::Pass, "{:?}", r[SERVICE]);
    assert_eq!(
        r[SERVICE].evidence.checked[0].facts["sources"],
        Value::from(vec!["server b.example"])
    );
}

#[test]
fn an_unreadable_configuration_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path();
    unit(b, "chrony.service", "multi-user.target");
    // A directory where the file should be cannot be read as a file.
    std::fs::create_dir_all(b.join("etc/chrony/chrony.conf")).unwrap();
    let r = run(&TimeSync, b);
    assert_eq!(status(&r, SERVICE), Status::Error, "{:?}", r[SERVICE]);
    assert!(
        r[SERVICE]
            .error
            .as_deref()
            .unwrap()
            .contains("/etc/chrony/chrony.conf: not a regular file")
    );
}

#[test]
fn clock_judgement() {
    let synced = clock::ClockState {
        state: 0,
        status: 0x2001,
        offset: 120_000,
        maxerror_us: 35_500,
        esterror_us: 250,
    };
    let o = judge_clock(&synced, 2000, &[], false);
    assert_eq!(o.status, Status::Pass);
    assert_eq!(
        o.summary,
        "the kernel reports the clock synchronised: error bound 35.5 ms, estimated 0.3 ms"
    );
    let o = judge_clock(&synced, 20, &[], false);
    assert_eq!(o.status, Status::Fail);
    assert_eq!(
        o.summary,
        "the clock error bound is 35.5 ms, above the allowed 20 ms"
    );
    let unsynced = clock::ClockState {
        state: clock::TIME_ERROR,
        status: clock::STA_UNSYNC,
        offset: 0,
        maxerror_us: 16_000_000,
        esterror_us: 16_000_000,
    };
    let o = judge_clock(&unsynced, 2000, &[], true);
    assert_eq!(o.status, Status::Fail);
    assert_eq!(
        o.evidence.offenders[0].reason.as_deref(),
        Some(
            "the kernel marks the clock unsynchronised (TIME_ERROR, STA_UNSYNC): no time daemon runs to discipline it; this is a container: the clock is the host's"
        )
    );
}

/// The kernel's answer read by Python's ctypes, independently of our binding.
fn python_adjtimex() -> (i32, i64, i64) {
    let script = r#"
import ctypes, ctypes.util
class Timeval(ctypes.Structure):
    _fields_ = [("sec", ctypes.c_long), ("usec", ctypes.c_long)]
class Timex(ctypes.Structure):
    _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
                ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
                ("constant", ctypes.c_long), ("precision", ctypes.c_long), ("tolerance", ctypes.c_long),
                ("time", Timeval), ("tick", ctypes.c_long), ("pad", ctypes.c_byte * 256)]
libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
t = Timex()
r = libc.adjtimex(ctypes.byref(t))
print(r, t.status, t.maxerror)
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .output()
        .expect("python3 runs (Debian package python3)");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut it = text.split_whitespace();
    (
        it.next().unwrap().parse().unwrap(),
        it.next().unwrap().parse().unwrap(),
        it.next().unwrap().parse().unwrap(),
    )
}

#[test]
fn the_live_verdict_agrees_with_an_independent_adjtimex_reading() {
    let (state, status_bits, maxerror_us) = python_adjtimex();
    let unsynced = state == clock::TIME_ERROR || status_bits & clock::STA_UNSYNC != 0;
    let too_uncertain = maxerror_us > 2_000_000;
    let r = run(&TimeSync, std::path::Path::new("/"));
    assert_well_formed(&r);
    let expected = if unsynced || too_uncertain {
        Status::Fail
    } else {
        Status::Pass
    };
    assert_eq!(status(&r, SYNCHRONIZED), expected, "{:?}", r[SYNCHRONIZED]);
    assert_eq!(
        r[SYNCHRONIZED].values["synchronized"],
        Value::Bool(!unsynced)
    );
}
