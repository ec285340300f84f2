//! Mutual TLS between the real binaries: a collector with `server.client_ca` accepts the
//! report of an agent presenting a certificate from that CA (`collector.client_cert`), and
//! refuses an agent without one or with a certificate from another CA; the agent keeps those
//! reports in its spool.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test helpers outside #[test] fns

use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use vigil_tests::{AgentSetup, bin, fixture, free_port, run_ok, wait_until};

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A leaf certificate and key signed by `issuer`, written as PEM files `<stem>.crt/.key`.
fn leaf(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    names: &[&str],
    usage: ExtendedKeyUsagePurpose,
    dir: &Path,
    stem: &str,
) {
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.extended_key_usages = vec![usage];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    std::fs::write(dir.join(format!("{stem}.crt")), cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{stem}.key")), key.serialize_pem()).unwrap();
}

#[test]
fn a_collector_requiring_client_certificates_accepts_only_agents_with_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let site = ca("vigil test site CA");
    let rogue = ca("someone else's CA");
    std::fs::write(d.join("site-ca.pem"), site.pem()).unwrap();
    leaf(
        &site,
        &["127.0.0.1", "localhost"],
        ExtendedKeyUsagePurpose::ServerAuth,
        d,
        "server",
    );
    leaf(
        &site,
        &["web-01"],
        ExtendedKeyUsagePurpose::ClientAuth,
        d,
        "agent",
    );
    leaf(
        &rogue,
        &["web-01"],
        ExtendedKeyUsagePurpose::ClientAuth,
        d,
        "rogue",
    );

    let port = free_port();
    let config = d.join("collector.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\ntls_cert = \"{0}/server.crt\"\n\
             tls_key = \"{0}/server.key\"\nclient_ca = \"{0}/site-ca.pem\"\n\
             [storage]\ndata_dir = \"{0}/data\"\n",
            d.display()
        ),
    )
    .unwrap();
    let admin = |args: &[&str]| {
        let output = run_ok(
            Command::new(bin("vigil-collector"))
                .arg("--config")
                .arg(&config)
                .args(args),
        )
        .unwrap();
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    };
    let token = admin(&["agents", "add", "web-01"]);
    run_ok(
        Command::new(bin("vigil-collector"))
            .arg("--config")
            .arg(&config)
            .arg("validate"),
    )
    .expect("the mutual TLS configuration validates");
    let mut server = Command::new(bin("vigil-collector"))
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(d.join("collector.log")).unwrap())
        .spawn()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || TcpStream::connect((
            "127.0.0.1",
            port
        ))
        .is_ok()),
        "collector did not listen"
    );
    let url = format!("https://127.0.0.1:{port}");

    let agent = |stem: Option<&str>| {
        let setup = AgentSetup::new("web-01", &token, &url, &fixture("healthy")).unwrap();
        let mut text = std::fs::read_to_string(setup.config_path()).unwrap();
        text.push_str(&format!("ca_file = \"{}/site-ca.pem\"\n", d.display()));
        if let Some(stem) = stem {
            text.push_str(&format!(
                "client_cert = \"{0}/{stem}.crt\"\nclient_key = \"{0}/{stem}.key\"\n",
                d.display()
            ));
        }
        text.push_str("[checks.packages]\nenabled = false\n");
        std::fs::write(setup.config_path(), text).unwrap();
        let output = setup.run_once().unwrap();
        (setup, output)
    };

    let (with_cert, output) = agent(Some("agent"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(with_cert.spooled(), 0);

    for stem in [None, Some("rogue")] {
        let (refused, output) = agent(stem);
        assert_eq!(
            output.status.code(),
            Some(3),
            "{stem:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            refused.spooled(),
            1,
            "{stem:?}: the report waits in the spool"
        );
    }
    let _ = server.kill();
    let _ = server.wait();
}
