//! Every endpoint the collector serves and who may call it, in one table. The router is built
//! from this table only, so a route cannot exist without a declared access rule; the README's
//! role table is generated from it (a test compares them) and the end-to-end role test walks
//! it, endpoint by endpoint and role by role.
//!
//! The rule is enforced by each handler's extractor (`Caller` and the role check for ingest,
//! `Reader`, `AuditReader`, `Admin`, the enrollment token for enrollment); the role test proves
//! that every handler enforces exactly the rule declared here.

use axum::handler::Handler;
use axum::routing::{MethodFilter, MethodRouter, on};

use super::AppState;
use crate::auth::Role;

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a token: liveness and readiness probes reveal nothing.
    Public,
    /// An enrollment token (`vigil-collector enroll-token create`), not a principal's token.
    Enrollment,
    /// Agent tokens only: push reports about the agent's own hosts.
    Agent,
    /// Viewer, auditor and admin tokens: read dashboards and the API.
    Read,
    /// Auditor and admin tokens: take the evidence export.
    Export,
    /// Admin tokens only: change ISMS records (nonconformity workflow, evaluations).
    Admin,
}

impl Access {
    /// Whether a principal with `role` (authenticated, not revoked, not expired) may call.
    pub fn allows(self, role: Role) -> bool {
        match self {
            Access::Public => true,
            Access::Enrollment => false,
            Access::Agent => role == Role::Agent,
            Access::Read => matches!(role, Role::Viewer | Role::Auditor | Role::Admin),
            Access::Export => matches!(role, Role::Auditor | Role::Admin),
            Access::Admin => role == Role::Admin,
        }
    }

    /// Whether a caller without a valid principal token is let through (public endpoints;
    /// enrollment takes its own kind of token).
    pub fn needs_principal(self) -> bool {
        !matches!(self, Access::Public | Access::Enrollment)
    }
}

/// The HTTP methods the collector uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
    Put,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Put => "PUT",
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            Verb::Get => MethodFilter::GET,
            Verb::Post => MethodFilter::POST,
            Verb::Put => MethodFilter::PUT,
        }
    }
}

/// One endpoint: method, path (axum syntax, `{param}`), access rule and a one-line purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    pub verb: Verb,
    pub path: &'static str,
    pub access: Access,
    pub purpose: &'static str,
}

fn endpoint<H, T>(
    verb: Verb,
    path: &'static str,
    access: Access,
    purpose: &'static str,
    handler: H,
) -> (Endpoint, MethodRouter<AppState>)
where
    H: Handler<T, AppState>,
    T: 'static,
{
    (
        Endpoint {
            verb,
            path,
            access,
            purpose,
        },
        on(verb.filter(), handler),
    )
}

/// The endpoints with their handlers, in the order of the README table.
pub(super) fn endpoints() -> Vec<(Endpoint, MethodRouter<AppState>)> {
    use crate::{api, enroll, export, ingest};
    use Access::*;
    use Verb::*;
    let (ingest_endpoint, ingest_route) = endpoint(
        Post,
        "/api/v1/reports",
        Agent,
        "push a report (its agent.id must be the token's agent)",
        ingest::post_report,
    );
    vec![
        // The ingest handler reads the body itself, under its own cap.
        (
            ingest_endpoint,
            ingest_route.layer(axum::extract::DefaultBodyLimit::disable()),
        ),
        endpoint(
            Post,
            "/api/v1/enroll",
            Enrollment,
            "exchange an enrollment token for an agent token",
            enroll::post_enroll,
        ),
        endpoint(
            Put,
            "/api/v1/agent/key",
            Agent,
            "register the agent's signing key (trust on first use)",
            ingest::keys::put_agent_key,
        ),
        endpoint(Get, "/api/v1/hosts", Read, "list hosts", api::list_hosts),
        endpoint(
            Get,
            "/api/v1/hosts/{machine_id}",
            Read,
            "one host's latest state",
            api::host_detail,
        ),
        endpoint(
            Get,
            "/api/v1/hosts/{machine_id}/results",
            Read,
            "one check's history on a host",
            api::host_results,
        ),
        endpoint(
            Get,
            "/api/v1/isms",
            Read,
            "the ISMS definition",
            api::isms::definition,
        ),
        endpoint(
            Get,
            "/api/v1/soa",
            Read,
            "Statement of Applicability",
            api::isms::statement_of_applicability,
        ),
        endpoint(
            Get,
            "/api/v1/verdicts",
            Read,
            "rule verdicts",
            api::isms::verdicts,
        ),
        endpoint(Get, "/api/v1/kpis", Read, "KPI values", api::isms::kpis),
        endpoint(
            Get,
            "/api/v1/kpis/{id}",
            Read,
            "one KPI's history",
            api::isms::kpi_history,
        ),
        endpoint(
            Get,
            "/api/v1/objectives",
            Read,
            "objectives",
            api::isms::objectives,
        ),
        endpoint(
            Get,
            "/api/v1/nonconformities",
            Read,
            "nonconformities",
            api::isms::nonconformities,
        ),
        endpoint(
            Get,
            "/api/v1/nonconformities/{id}",
            Read,
            "one nonconformity with its events",
            api::isms::nonconformity,
        ),
        endpoint(
            Post,
            "/api/v1/nonconformities/{id}/actions",
            Admin,
            "nonconformity workflow (assign, accept, close, …)",
            api::isms::nonconformity_action,
        ),
        endpoint(
            Post,
            "/api/v1/evaluations",
            Admin,
            "evaluate the ISMS now",
            api::isms::evaluate_now,
        ),
        endpoint(
            Get,
            "/api/v1/reports/management-review",
            Read,
            "management review input (Clause 9.3)",
            api::isms::management_review,
        ),
        endpoint(
            Get,
            "/api/v1/export",
            Export,
            "auditor evidence bundle (OSCAL, HTML, evidence)",
            export::http::export_bundle,
        ),
        endpoint(
            Get,
            "/metrics",
            Read,
            "Prometheus exposition",
            super::metrics,
        ),
        endpoint(Get, "/healthz", Public, "liveness", super::healthz),
        endpoint(
            Get,
            "/readyz",
            Public,
            "readiness (store reachable)",
            super::readyz,
        ),
    ]
}

/// The endpoint table without the handlers.
pub fn table() -> Vec<Endpoint> {
    endpoints().into_iter().map(|(e, _)| e).collect()
}

/// The roles a role table has a column for, in order.
pub const ROLES: [Role; 4] = [Role::Agent, Role::Viewer, Role::Auditor, Role::Admin];

/// The README's role table: one row per endpoint, one column per role plus "no token".
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| Method | Path | Purpose | agent | viewer | auditor | admin | no token |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for endpoint in table() {
        let mark = |allowed: bool| if allowed { "yes" } else { "—" };
        let roles: Vec<&str> = ROLES
            .iter()
            .map(|role| mark(endpoint.access.allows(*role)))
            .collect();
        let anonymous = match endpoint.access {
            Access::Public => "yes",
            Access::Enrollment => "enrollment token",
            _ => "—",
        };
        out.push_str(&format!(
            "| {} | `{}` | {} | {} | {anonymous} |\n",
            endpoint.verb.as_str(),
            endpoint.path,
            endpoint.purpose,
            roles.join(" | "),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEGIN: &str = "<!-- role-table:begin (generated from collector/src/http/routes.rs) -->\n";
    const END: &str = "<!-- role-table:end -->";

    #[test]
    fn paths_are_unique_per_method() {
        let table = table();
        for (i, a) in table.iter().enumerate() {
            for b in &table[i + 1..] {
                assert!(
                    !(a.path == b.path && a.verb == b.verb),
                    "{} {} twice",
                    a.verb.as_str(),
                    a.path
                );
            }
        }
    }

    #[test]
    fn roles_follow_the_documented_policy() {
        use Role::*;
        // The policy in words (README "Security"): agents write, never read; viewers read;
        // auditors read and export; admins do everything but push evidence.
        assert!(Access::Agent.allows(Agent));
        for role in [Viewer, Auditor, Admin] {
            assert!(!Access::Agent.allows(role));
            assert!(Access::Read.allows(role));
        }
        assert!(!Access::Read.allows(Agent));
        assert!(!Access::Export.allows(Viewer) && Access::Export.allows(Auditor));
        assert!(Access::Admin.allows(Admin) && !Access::Admin.allows(Auditor));
        for role in ROLES {
            assert!(!Access::Enrollment.allows(role));
            assert!(Access::Public.allows(role));
        }
    }

    /// The README table is this table; `VIGIL_UPDATE_GOLDEN=1` rewrites it.
    #[test]
    fn the_readme_role_table_is_the_router_table() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
        let readme = std::fs::read_to_string(&path).unwrap();
        let start = readme
            .find(BEGIN)
            .expect("README lacks the role-table markers")
            + BEGIN.len();
        let end = start + readme[start..].find(END).expect("role-table end marker");
        let expected = markdown_table();
        if std::env::var("VIGIL_UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
            let updated = format!("{}{expected}{}", &readme[..start], &readme[end..]);
            std::fs::write(&path, updated).unwrap();
            return;
        }
        assert_eq!(
            readme[start..end],
            expected,
            "README role table is stale; rerun with VIGIL_UPDATE_GOLDEN=1"
        );
    }
}
