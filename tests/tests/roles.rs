//! The role table, walked whole against a real collector: every endpoint of the router's own
//! table (`vigil_collector::http::routes::table`, the table the README shows) called with
//! every role, an enrollment token, an expired, a revoked, a malformed and no token. Allowed
//! calls must not be refused (not 401/403/429); refused ones must get exactly 401 (no valid
//! principal) or 403 (valid principal, wrong role).

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test helpers

use std::time::Duration;

use vigil_collector::auth::Role;
use vigil_collector::http::routes::{Access, Verb, table};
use vigil_tests::{Collector, http};

/// Who calls: a role's valid token, or a kind of invalid credential.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Caller {
    Role(Role),
    Enrollment,
    Expired,
    Revoked,
    Malformed,
    NoToken,
}

fn expected(access: Access, caller: Caller) -> Result<(), u16> {
    match (access, caller) {
        (Access::Public, _) => Ok(()),
        (Access::Enrollment, Caller::Enrollment) => Ok(()),
        (Access::Enrollment, _) => Err(401),
        (_, Caller::Role(role)) if access.allows(role) => Ok(()),
        (_, Caller::Role(_)) => Err(403),
        _ => Err(401),
    }
}

#[test]
fn every_endpoint_answers_every_role_as_the_table_says() {
    let mut collector = Collector::start().unwrap();
    // Generous limits: this test makes many calls with few tokens from one address.
    let config = std::fs::read_to_string(collector.config_path()).unwrap();
    // `[server.rate_limit]` must come after the `[server]` keys.
    let (server, rest) = config.split_once("\n\n").unwrap();
    let server_keys: Vec<&str> = server
        .lines()
        .filter(|l| !l.starts_with('[') && !l.contains("_burst"))
        .collect();
    let config = format!(
        "[server]\n{}\n\n[server.rate_limit]\nper_principal_burst = 100000\nper_address_burst = 100000\n\n{rest}",
        server_keys.join("\n")
    );
    std::fs::write(collector.config_path(), config).unwrap();
    collector.stop().unwrap();
    collector.spawn().unwrap();

    let agent = collector.add_agent("roles-agent").unwrap();
    let viewer = collector.add_token("roles-viewer", "viewer").unwrap();
    let auditor = collector.add_token("roles-auditor", "auditor").unwrap();
    let admin = collector.add_token("roles-admin", "admin").unwrap();
    let revoked = collector.add_token("roles-revoked", "admin").unwrap();
    collector
        .admin(&["tokens", "revoke", "roles-revoked"])
        .unwrap();
    let expired = collector
        .admin(&[
            "tokens",
            "add",
            "roles-expired",
            "--role",
            "admin",
            "--expires-in",
            "1s",
        ])
        .unwrap();
    let enrollment = collector.admin(&["enroll-token", "create"]).unwrap();
    std::thread::sleep(Duration::from_millis(1200));

    let callers: Vec<(Caller, Option<String>)> = vec![
        (Caller::Role(Role::Agent), Some(agent)),
        (Caller::Role(Role::Viewer), Some(viewer)),
        (Caller::Role(Role::Auditor), Some(auditor)),
        (Caller::Role(Role::Admin), Some(admin)),
        (Caller::Enrollment, Some(enrollment)),
        (Caller::Expired, Some(expired)),
        (Caller::Revoked, Some(revoked)),
        (Caller::Malformed, Some("not-a-token".into())),
        (Caller::NoToken, None),
    ];
    let client = http();
    let endpoints = table();
    assert!(endpoints.len() >= 20, "{} endpoints", endpoints.len());
    let mut walked = 0;
    let mut failures = Vec::new();
    for endpoint in &endpoints {
        let path = endpoint
            .path
            .replace("{machine_id}", "no-such-host")
            .replace("{id}", "no-such-id");
        for (caller, token) in &callers {
            let url = format!("{}{path}", collector.url());
            let mut request = match endpoint.verb {
                Verb::Get => client.get(&url),
                Verb::Post => client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body("{}"),
                Verb::Put => client
                    .put(&url)
                    .header("content-type", "application/json")
                    .body("{}"),
            };
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().unwrap();
            let status = response.status().as_u16();
            let body = response.text().unwrap_or_default();
            walked += 1;
            let ok = match expected(endpoint.access, *caller) {
                Ok(()) => !matches!(status, 401 | 403 | 429),
                Err(code) => status == code,
            };
            if !ok {
                failures.push(format!(
                    "{} {} as {caller:?}: got {status}, expected {:?}: {body}",
                    endpoint.verb.as_str(),
                    endpoint.path,
                    expected(endpoint.access, *caller)
                ));
            }
            if *caller == Caller::Expired && endpoint.access.needs_principal() {
                assert!(body.contains("expired at"), "{body}");
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(walked, endpoints.len() * callers.len());
    eprintln!(
        "walked {walked} cases: {} endpoints x {} callers",
        endpoints.len(),
        callers.len()
    );
    collector.stop().unwrap();
}
