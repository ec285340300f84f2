//! The TLS certificate check through `run_check` on the fixture hosts and on trees built here.

use vigil_shared::{Status, Value};

use super::*;
use crate::checks::support::testing::*;
use crate::settings::ChecksConfig;

#[test]
fn healthy_host_certificates_are_valid_and_strong() {
    let r = run_fixture(&TlsCerts, "healthy");
    assert_well_formed(&r);
    assert_eq!(status(&r, EXPIRY), Status::Pass, "{:?}", r[EXPIRY]);
    assert_eq!(status(&r, STRENGTH), Status::Pass, "{:?}", r[STRENGTH]);
    assert_eq!(
        checked(&r, EXPIRY),
        [
            "/etc/letsencrypt/live/www.example.org/fullchain.pem",
            "/etc/letsencrypt/live/www.example.org/fullchain.pem#2",
            "/etc/ssl/private/internal-api.pem"
        ]
    );
    let leaf = &r[EXPIRY].evidence.checked[0];
    assert_eq!(leaf.facts["days_left"], Value::Float(42.5));
    assert_eq!(
        leaf.facts["referenced_by"],
        Value::from(vec!["nginx /etc/nginx/sites-enabled/www.example.org:6"])
    );
    assert_eq!(r[EXPIRY].values["soonest_expiry_days"], Value::Float(42.5));
    assert_eq!(
        r[EXPIRY].summary,
        "3 certificate(s), none expired or expiring within 30 days"
    );
}

#[test]
fn misconfigured_host_has_expired_expiring_missing_and_weak_certificates() {
    let r = run_fixture(&TlsCerts, "misconfigured");
    assert_well_formed(&r);
    assert_eq!(status(&r, EXPIRY), Status::Fail);
    assert_eq!(
        offenders(&r, EXPIRY),
        [
            "/etc/nginx/tls/shop.crt",
            "/etc/postfix/tls/mail.pem",
            "/etc/ssl/private/legacy.pem"
        ]
    );
    assert_eq!(
        reason(&r, EXPIRY, "/etc/nginx/tls/shop.crt"),
        "expires on 2026-06-10, in 8 days (C=NL, O=Example Org, CN=shop.example.org)"
    );
    assert_eq!(
        reason(&r, EXPIRY, "/etc/postfix/tls/mail.pem"),
        "named by a server configuration but does not exist"
    );
    assert_eq!(
        reason(&r, EXPIRY, "/etc/ssl/private/legacy.pem"),
        "expired on 2026-01-31 (C=NL, O=Legacy Systems, CN=legacy.example.org)"
    );
    assert_eq!(status(&r, STRENGTH), Status::Fail);
    assert_eq!(
        offenders(&r, STRENGTH),
        [
            "/etc/ssl/certs/ssl-cert-snakeoil.pem",
            "/etc/ssl/private/legacy.pem"
        ]
    );
    assert_eq!(
        reason(&r, STRENGTH, "/etc/ssl/certs/ssl-cert-snakeoil.pem"),
        "self-signed certificate presented by a server: clients cannot verify it"
    );
    assert_eq!(
        reason(&r, STRENGTH, "/etc/ssl/private/legacy.pem"),
        "RSA key of 1024 bits, below 2048; signed with sha1WithRSAEncryption; self-signed certificate: clients cannot verify it"
    );
    assert_eq!(
        offender(&r, STRENGTH, "/etc/ssl/certs/ssl-cert-snakeoil.pem").facts["referenced_by"],
        Value::from(vec!["apache /etc/apache2/sites-enabled/default-ssl.conf:5"])
    );
}

#[test]
fn minimal_host_has_no_certificates() {
    let r = run_fixture(&TlsCerts, "minimal");
    assert_well_formed(&r);
    assert_eq!(status(&r, EXPIRY), Status::NoData);
    assert_eq!(status(&r, STRENGTH), Status::NoData);
}

#[test]
fn settings_change_the_verdicts() {
    let misconfigured = fixture("misconfigured");
    let mut settings = ChecksConfig::default();
    settings.tls_certs.allow_self_signed = true;
    settings.tls_certs.min_rsa_bits = 1024;
    settings.tls_certs.expiry_warning_days = 7;
    settings.tls_certs.scan_server_configs = false;
    let r = run_with(&TlsCerts, &misconfigured, &settings);
    assert_eq!(offenders(&r, EXPIRY), ["/etc/ssl/private/legacy.pem"]);
    assert_eq!(offenders(&r, STRENGTH), ["/etc/ssl/private/legacy.pem"]);
    assert_eq!(
        reason(&r, STRENGTH, "/etc/ssl/private/legacy.pem"),
        "signed with sha1WithRSAEncryption"
    );
}

#[test]
fn includes_relative_paths_directories_and_empty_files() {
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path();
    let pem = std::fs::read(fixture("healthy").join("etc/ssl/private/internal-api.pem")).unwrap();
    write_tree(
        b,
        &[
            (
                "etc/nginx/nginx.conf",
                "http {\n include /etc/nginx/vhosts/*.conf;\n}\n",
            ),
            ("etc/nginx/vhosts/a.conf", "ssl_certificate certs/a.pem;\n"),
            ("etc/nginx/certs/a.pem", std::str::from_utf8(&pem).unwrap()),
            (
                "etc/haproxy/haproxy.cfg",
                "frontend f\n  bind :443 ssl crt /etc/haproxy/certs\n",
            ),
            (
                "etc/haproxy/certs/site.pem",
                std::str::from_utf8(&pem).unwrap(),
            ),
            ("etc/haproxy/certs/empty.pem", ""),
        ],
    );
    let r = run(&TlsCerts, b);
    assert_eq!(
        checked(&r, EXPIRY),
        ["/etc/haproxy/certs/site.pem", "/etc/nginx/certs/a.pem"]
    );
    assert_eq!(offenders(&r, EXPIRY), ["/etc/haproxy/certs/empty.pem"]);
    assert_eq!(
        reason(&r, EXPIRY, "/etc/haproxy/certs/empty.pem"),
        "named by a server configuration but holds no readable certificate"
    );
}
