//! The ssh check through `run_check`: the three fixture hosts and trees built for one rule each
//! (defaults by release, Match blocks, host key modes, the dpkg fallback).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use vigil_shared::{CheckResult, Status, Value};

use super::Ssh;
use crate::checks::support::testing::{
    fixture, offender_reasons as offenders, result as get, run_in_order, write_file as write,
};
use crate::settings::ChecksConfig;

fn run_with(root: &Path, settings: &ChecksConfig) -> Vec<CheckResult> {
    run_in_order(&Ssh, root, settings)
}

fn run(root: &Path) -> Vec<CheckResult> {
    run_with(root, &ChecksConfig::default())
}

/// A tree with an sshd of the given release and the given main configuration.
fn tree(version: &str, config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut bin = b"\x7fELF\0OpenSSH_7.4*\0".to_vec();
    bin.extend_from_slice(version.as_bytes());
    bin.push(0);
    std::fs::create_dir_all(dir.path().join("usr/sbin")).unwrap();
    std::fs::write(dir.path().join("usr/sbin/sshd"), bin).unwrap();
    write(dir.path(), "etc/ssh/sshd_config", config);
    dir
}

#[test]
fn healthy_host_passes_with_drop_in_overrides() {
    let results = run(&fixture("healthy"));
    for r in &results {
        assert_eq!(r.status, Status::Pass, "{}: {}", r.check, r.summary);
        assert_eq!(
            r.values["openssh_version"],
            Value::from("OpenSSH_9.2p1 Debian-2+deb12u3")
        );
    }
    let hardening = get(&results, "ssh.hardening");
    let x11 = hardening
        .evidence
        .checked
        .iter()
        .find(|s| s.id == "X11Forwarding")
        .unwrap();
    // sshd_config says `X11Forwarding yes` below the Include; the drop-in's `no` came first.
    assert_eq!(x11.facts["value"], Value::from("no"));
    assert_eq!(
        x11.facts["source"],
        Value::from("/etc/ssh/sshd_config.d/50-hardening.conf:11")
    );
    let crypto = get(&results, "ssh.crypto");
    assert_eq!(crypto.values["host_keys"], Value::Int(2));
    let macs = crypto
        .evidence
        .checked
        .iter()
        .find(|s| s.id == "MACs")
        .unwrap();
    assert_eq!(
        macs.facts["offered"],
        Value::from(vec![
            "umac-128-etm@openssh.com",
            "hmac-sha2-256-etm@openssh.com",
            "hmac-sha2-512-etm@openssh.com",
            "umac-128@openssh.com",
            "hmac-sha2-256",
            "hmac-sha2-512",
        ])
    );
    let auth = get(&results, "ssh.authentication");
    assert!(
        auth.evidence
            .checked
            .iter()
            .any(|s| s.id == "PasswordAuthentication (Match Group sftp-only)")
    );
    assert_eq!(
        auth.evidence.sources,
        [
            "/etc/ssh/sshd_config",
            "/etc/ssh/sshd_config.d/50-hardening.conf",
            "/usr/sbin/sshd"
        ]
    );
}

#[test]
fn misconfigured_host_shows_every_seeded_problem() {
    let results = run(&fixture("misconfigured"));
    for r in &results {
        assert_eq!(r.status, Status::Fail, "{}: {}", r.check, r.summary);
        assert_eq!(r.values["openssh_version"], Value::from("OpenSSH_7.4p1"));
    }
    assert_eq!(
        offenders(get(&results, "ssh.root_login")),
        [(
            "PermitRootLogin",
            "root may log in with a password (/etc/ssh/sshd_config:11)"
        )]
    );
    assert_eq!(
        offenders(get(&results, "ssh.authentication")),
        [
            (
                "PasswordAuthentication",
                "passwords are accepted (/etc/ssh/sshd_config.d/00-vendor.conf:2)"
            ),
            (
                "PasswordAuthentication (Match User backup)",
                "passwords are accepted for connections matching `Match User backup` (/etc/ssh/sshd_config:27)"
            ),
            (
                "PermitEmptyPasswords (Match User backup)",
                "accounts with an empty password may log in for connections matching `Match User backup` (/etc/ssh/sshd_config:26)"
            ),
            (
                "KbdInteractiveAuthentication",
                "PAM can prompt for a password through keyboard-interactive (UsePAM yes) (/etc/ssh/sshd_config:17)"
            ),
        ]
    );
    assert_eq!(
        offenders(get(&results, "ssh.crypto")),
        [
            (
                "Ciphers",
                "offers aes128-cbc, 3des-cbc (/etc/ssh/sshd_config.d/00-vendor.conf:3)"
            ),
            (
                "MACs",
                "offers hmac-md5 (/etc/ssh/sshd_config.d/00-vendor.conf:4)"
            ),
            (
                "KexAlgorithms",
                "offers diffie-hellman-group14-sha1, diffie-hellman-group1-sha1 (/etc/ssh/sshd_config:21)"
            ),
            // 7.4 still signed with SHA-1 RSA by default.
            (
                "HostKeyAlgorithms",
                "offers ssh-rsa-cert-v01@openssh.com, ssh-rsa (OpenSSH 7.4 default)"
            ),
            (
                "/etc/ssh/ssh_host_rsa_key",
                "RSA host key of 1024 bits, shorter than 2048"
            ),
            (
                "/etc/ssh/ssh_host_dsa_key",
                "DSA host key (1024 bits, removed from OpenSSH 10)"
            ),
        ]
    );
    let ids: Vec<&str> = offenders(get(&results, "ssh.hardening"))
        .iter()
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(
        ids,
        [
            "X11Forwarding",
            "MaxAuthTries",
            "LoginGraceTime",
            "PermitUserEnvironment"
        ]
    );
}

#[test]
fn minimal_and_live_hosts_without_sshd_have_no_data() {
    for r in run(&fixture("minimal")) {
        assert_eq!(r.status, Status::NoData, "{}", r.check);
        assert!(r.summary.contains("not installed"));
    }
    // This machine has no SSH server (see the environment notes); a host with one is judged.
    if !Path::new("/usr/sbin/sshd").exists() {
        for r in run(Path::new("/")) {
            assert_eq!(r.status, Status::NoData, "{}", r.check);
        }
    }
}

#[test]
fn defaults_follow_the_installed_release() {
    // An empty configuration: everything is a compiled-in default.
    let old = tree("OpenSSH_6.6.1p1 Ubuntu-2ubuntu2", "# nothing\n");
    let results = run(old.path());
    assert_eq!(
        offenders(get(&results, "ssh.root_login")),
        [(
            "PermitRootLogin",
            "root may log in with a password (OpenSSH 6.6 default)"
        )]
    );
    let crypto = get(&results, "ssh.crypto");
    assert!(
        offenders(crypto)[0].1.contains("3des-cbc"),
        "{:?}",
        offenders(crypto)
    );
    let new = tree("OpenSSH_9.6p1 Ubuntu-3ubuntu13", "");
    let results = run(new.path());
    assert_eq!(
        offenders(get(&results, "ssh.root_login")),
        [(
            "PermitRootLogin",
            "root may log in with a key (OpenSSH 9.6 default)"
        )]
    );
    // Current defaults still offer umac-64, which the default weak list names.
    assert_eq!(
        offenders(get(&results, "ssh.crypto")),
        [(
            "MACs",
            "offers umac-64-etm@openssh.com, umac-64@openssh.com (OpenSSH 9.6 default)"
        )]
    );
    let auth_ids: Vec<&str> = offenders(get(&results, "ssh.authentication"))
        .iter()
        .map(|(i, _)| *i)
        .collect();
    // KbdInteractive defaults to yes but UsePAM defaults to no: only passwords fail.
    assert_eq!(auth_ids, ["PasswordAuthentication"]);
    let hardening = get(&results, "ssh.hardening");
    let ids: Vec<&str> = offenders(hardening).iter().map(|(i, _)| *i).collect();
    assert_eq!(ids, ["MaxAuthTries", "LoginGraceTime", "UsePAM"]);
}

#[test]
fn the_dpkg_status_gives_the_release_when_the_binary_does_not() {
    let dir = tree("no version here", "PermitRootLogin prohibit-password\n");
    write(
        dir.path(),
        "var/lib/dpkg/status",
        "Package: openssh-client\nVersion: 1:9.2p1-2\n\nPackage: openssh-server\nStatus: install ok installed\nVersion: 1:6.0p1-4+deb7u2\n\n",
    );
    let results = run(dir.path());
    let crypto = get(&results, "ssh.crypto");
    assert_eq!(
        crypto.values["openssh_version"],
        Value::from("openssh-server 1:6.0p1-4+deb7u2")
    );
    assert!(
        crypto
            .evidence
            .sources
            .contains(&"/var/lib/dpkg/status".to_string())
    );
    let mut settings = ChecksConfig::default();
    settings.ssh.permit_root_login = vec!["no".into(), "without-password".into()];
    let results = run_with(dir.path(), &settings);
    assert_eq!(get(&results, "ssh.root_login").status, Status::Pass);
}

#[test]
fn match_all_overrides_and_other_matches_are_reported_apart() {
    let dir = tree(
        "OpenSSH_9.2p1",
        "PermitRootLogin no\nPasswordAuthentication no\nX11Forwarding no\n\
         Match Address 10.1.0.0/16,192.168.0.0/24 User admin\n  PermitRootLogin prohibit-password\n  PermitRootLogin yes\n\
         Match all\n  PasswordAuthentication yes\n",
    );
    let results = run(dir.path());
    assert_eq!(
        offenders(get(&results, "ssh.root_login")),
        [(
            "PermitRootLogin (Match Address 10.1.0.0/16,192.168.0.0/24 User admin)",
            "root may log in with a key for connections matching `Match Address 10.1.0.0/16,192.168.0.0/24 User admin` (/etc/ssh/sshd_config:5)"
        )]
    );
    let auth = get(&results, "ssh.authentication");
    assert_eq!(auth.values["password_authentication"], Value::Bool(true));
    assert_eq!(
        offenders(auth)[0].1,
        "passwords are accepted (/etc/ssh/sshd_config:8)"
    );
    let mut settings = ChecksConfig::default();
    settings.ssh.allow_password_authentication = true;
    settings.ssh.require_access_list = true;
    let results = run_with(dir.path(), &settings);
    assert_eq!(get(&results, "ssh.authentication").status, Status::Pass);
    assert!(
        offenders(get(&results, "ssh.hardening"))
            .iter()
            .any(|(i, _)| *i == "AllowUsers/AllowGroups")
    );
}

#[test]
fn group_readable_private_host_keys_fail_on_root_owned_trees() {
    let dir = tree("OpenSSH_9.2p1", "HostKey /etc/ssh/ssh_host_ed25519_key\n");
    let key = fixture("healthy").join("etc/ssh/ssh_host_ed25519_key.pub");
    std::fs::copy(key, dir.path().join("etc/ssh/ssh_host_ed25519_key.pub")).unwrap();
    let private = dir.path().join("etc/ssh/ssh_host_ed25519_key");
    std::fs::write(&private, "-----BEGIN OPENSSH PRIVATE KEY-----\n").unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o640)).unwrap();
    let results = run(dir.path());
    let crypto = get(&results, "ssh.crypto");
    let key = crypto
        .evidence
        .offenders
        .iter()
        .chain(&crypto.evidence.checked)
        .find(|s| s.id == "/etc/ssh/ssh_host_ed25519_key")
        .unwrap();
    assert_eq!(key.facts["mode"], Value::from("0640"));
    assert_eq!(key.facts["type"], Value::from("ssh-ed25519"));
    let root_owned =
        std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(dir.path()).unwrap()) == 0;
    assert_eq!(
        key.reason.as_deref(),
        root_owned.then_some("private key readable by group or others (mode 0640)")
    );
}

#[test]
fn a_missing_configuration_is_an_error_and_config_problems_are_reported() {
    let dir = tree("OpenSSH_9.2p1", "");
    std::fs::remove_file(dir.path().join("etc/ssh/sshd_config")).unwrap();
    for r in run(dir.path()) {
        assert_eq!(r.status, Status::Error);
        assert!(
            r.error
                .as_deref()
                .unwrap()
                .contains("sshd refuses to start")
        );
    }
    let dir = tree(
        "OpenSSH_9.2p1",
        "Banner \"unterminated\nMaxAuthTries lots\nLoginGraceTime 1q\n",
    );
    let results = run(dir.path());
    let hardening = get(&results, "ssh.hardening");
    assert_eq!(
        hardening.values["config_problems"],
        Value::from(vec![
            "/etc/ssh/sshd_config:1: unterminated quote (sshd refuses to start)"
        ])
    );
    let reasons: Vec<&str> = offenders(hardening).iter().map(|(_, r)| *r).collect();
    assert!(reasons.contains(
        &"MaxAuthTries \"lots\" is not a number (sshd refuses to start) (/etc/ssh/sshd_config:2)"
    ));
}

#[test]
fn parsers_survive_junk() {
    let seed =
        std::fs::read_to_string(fixture("misconfigured").join("etc/ssh/sshd_config")).unwrap();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let special = [
        '"', '\'', '\\', '#', '=', ' ', '\n', '\r', '*', '+', '-', '^', ',', '\0',
    ];
    for _ in 0..2000 {
        let mut text: Vec<char> = seed.chars().collect();
        for _ in 0..8 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let at = (state % (text.len() as u64 + 1)) as usize;
            let c = special[(state >> 32) as usize % special.len()];
            if state.is_multiple_of(3) && at < text.len() {
                text.remove(at);
            } else {
                text.insert(at, c);
            }
        }
        let text: String = text.into_iter().collect();
        let (lines, _) = super::config::parse_lines(&text);
        for line in lines {
            for arg in &line.args {
                let _ =
                    super::algorithms::effective_list(super::algorithms::Kind::Ciphers, None, arg);
                let _ = super::algorithms::parse_seconds(arg);
            }
        }
        let _ = super::algorithms::version_from_binary(text.as_bytes());
    }
}
