//! The read API through the router itself (`tower::ServiceExt::oneshot`, no socket): access
//! rules, JSON shapes, query validation.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::Utc;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;
use crate::admin;
use crate::auth::Role;
use crate::http::{AppState, Limits, router};
use crate::store::sqlite::SqliteStore;
use crate::store::{IngestOutcome, IngestRequest, Store};
use crate::testutil;

struct Api {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    app: Router,
    viewer: String,
    agent: String,
}

async fn api() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let app = router(AppState {
        isms: None,
        clock: std::sync::Arc::new(crate::engine::SystemClock),
        engine: None,
        store: store.clone(),
        limits: Limits {
            max_body_bytes: 1 << 20,
            max_decompressed_bytes: 1 << 22,
        },
        request_timeout: Duration::from_secs(30),
        in_flight: Default::default(),
        metrics: std::sync::Arc::new(crate::metrics::Metrics::new().unwrap()),
        webhooks: None,
        isms_digest: None,
        collector_key: None,
    });
    let token = |name: &'static str, role| {
        let store = store.clone();
        async move {
            let labels = BTreeMap::from([("site".to_string(), "paris".to_string())]);
            let (_, token) = admin::add(store.as_ref(), name, role, labels, Utc::now())
                .await
                .unwrap();
            token.expose().to_string()
        }
    };
    let viewer = token("grafana", Role::Viewer).await;
    let agent = token("web-01", Role::Agent).await;
    Api {
        _dir: dir,
        store,
        app,
        viewer,
        agent,
    }
}

impl Api {
    async fn get(&self, token: Option<&str>, uri: &str) -> (StatusCode, Value) {
        let mut request = Request::get(uri);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = self
            .app
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!("{uri}: not JSON ({e}): {}", String::from_utf8_lossy(&bytes))
        });
        (status, body)
    }

    async fn ingest(&self, report: &vigil_shared::Report) {
        let outcome = self
            .store
            .ingest(IngestRequest {
                agent: report.agent.id.clone(),
                report: report.clone(),
                received_at: report.sent_at + chrono::Duration::seconds(1),
                body_sha256: [0; 32],
                signed: None,
            })
            .await
            .unwrap();
        assert!(
            matches!(outcome, IngestOutcome::Stored { .. }),
            "{outcome:?}"
        );
    }
}

#[tokio::test]
async fn reading_needs_a_reader_token() {
    let api = api().await;
    let (status, body) = api.get(None, "/api/v1/hosts").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["error"].as_str().unwrap().contains("Authorization"),
        "{body}"
    );
    let (status, body) = api.get(Some(&api.agent), "/api/v1/hosts").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["error"].as_str().unwrap().contains("tokens add"),
        "{body}"
    );
    for uri in ["/api/v1/hosts/m1", "/api/v1/hosts/m1/results?check=a.b"] {
        assert_eq!(
            api.get(Some(&api.agent), uri).await.0,
            StatusCode::FORBIDDEN,
            "{uri}"
        );
        assert_eq!(
            api.get(None, uri).await.0,
            StatusCode::UNAUTHORIZED,
            "{uri}"
        );
    }
    let (status, body) = api.get(Some(&api.viewer), "/api/v1/hosts").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"hosts": []}));
}

#[tokio::test]
async fn hosts_and_their_latest_results_have_the_documented_shape() {
    let api = api().await;
    let report = testutil::report("web-01", "m1", 1);
    api.ingest(&report).await;
    let received = (report.sent_at + chrono::Duration::seconds(1))
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);

    let (status, body) = api.get(Some(&api.viewer), "/api/v1/hosts").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"hosts": [{
            "machine_id": "m1",
            "hostname": "m1.example.org",
            "os": {"id": "debian", "id_like": [], "version_id": "12",
                   "pretty_name": "Debian GNU/Linux 12 (bookworm)"},
            "kernel": "6.1.0-28-amd64",
            "agent": "web-01",
            "labels": {"env": "prod"},
            "assigned_labels": {"site": "paris"},
            "first_seen": received,
            "last_seen": received,
            "last_seq": 1,
            "status_counts": {"pass": 1, "fail": 1, "error": 0, "no_data": 1}
        }]})
    );

    let (status, body) = api.get(Some(&api.viewer), "/api/v1/hosts/m1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["host"]["machine_id"], "m1");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    let failing = &results[1];
    let observed = report.results[1]
        .observed_at
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    assert_eq!(
        failing,
        &json!({
            "check": "packages.pending_security",
            "controls": ["A.8.8", "A.8.19"],
            "status": "fail",
            "summary": "2 security updates pending",
            "observed_at": observed,
            "received_at": received,
            "covers": {"from": observed, "until": null},
            "duration_ms": 812,
            "values": {"packages": ["openssl", "libc6"], "pending_security": 2,
                       "ratio": 0.25, "stale": true},
            "evidence": {
                "offenders": [
                    {"kind": "package", "id": "openssl:amd64",
                     "reason": "security update 3.0.15-1~deb12u1 pending",
                     "facts": {"installed": "3.0.11-1~deb12u2"}},
                    {"kind": "package", "id": "libc6:amd64", "reason": "security update pending"}
                ],
                "sources": ["/var/lib/dpkg/status"]
            },
            "error": null,
            "seq": 1,
            "batch_id": report.batch_id,
        })
    );

    let (status, body) = api.get(Some(&api.viewer), "/api/v1/hosts/unknown").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["error"].as_str().unwrap().contains("\"unknown\""),
        "{body}"
    );
}

#[tokio::test]
async fn history_answers_a_time_range() {
    let api = api().await;
    for seq in 1..=3 {
        api.ingest(&testutil::report("web-01", "m1", seq)).await;
    }
    let t = |minutes: i64| {
        (testutil::t0() + chrono::Duration::minutes(minutes))
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    };
    // Observations at t0+1m, +2m, +3m; ask for [t0+1m30s, t0+2m30s).
    let uri = format!(
        "/api/v1/hosts/m1/results?check=accounts.uid0&from={}&to={}",
        urlencode(&(testutil::t0() + chrono::Duration::seconds(90)).to_rfc3339()),
        urlencode(&(testutil::t0() + chrono::Duration::seconds(150)).to_rfc3339()),
    );
    let (status, body) = api.get(Some(&api.viewer), &uri).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["check"], "accounts.uid0");
    assert_eq!(body["truncated"], false);
    let covers: Vec<Value> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["covers"].clone())
        .collect();
    assert_eq!(
        covers,
        [
            json!({"from": t(1), "until": t(2)}),
            json!({"from": t(2), "until": t(3)})
        ]
    );

    // Defaults: the last 30 days up to now; the fixture clock is in 2026, so this may be
    // empty or not depending on today's date, but it must be well formed.
    let (status, body) = api
        .get(
            Some(&api.viewer),
            "/api/v1/hosts/m1/results?check=accounts.uid0&limit=1",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["results"].as_array().unwrap().len() <= 1);

    let (status, _) = api
        .get(
            Some(&api.viewer),
            "/api/v1/hosts/nope/results?check=accounts.uid0",
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_history_queries_list_every_problem() {
    let api = api().await;
    api.ingest(&testutil::report("web-01", "m1", 1)).await;
    let (status, body) = api
        .get(
            Some(&api.viewer),
            "/api/v1/hosts/m1/results?check=Bad&from=yesterday&limit=0",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let paths: Vec<&str> = body["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["check", "from", "limit"]);

    let (status, body) = api.get(Some(&api.viewer), "/api/v1/hosts/m1/results").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["details"][0]["path"], "check");

    let uri =
        "/api/v1/hosts/m1/results?check=a.b&from=2026-06-02T00:00:00Z&to=2026-06-01T00:00:00Z";
    let (status, body) = api.get(Some(&api.viewer), uri).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["details"][0]["message"]
            .as_str()
            .unwrap()
            .contains("earlier"),
        "{body}"
    );

    let (status, body) = api
        .get(
            Some(&api.viewer),
            "/api/v1/hosts/m1/results?check=a.b&since=1",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("since"), "{body}");
}

#[test]
fn history_query_defaults() {
    let now = testutil::t0();
    let params = HistoryParams {
        check: Some("accounts.uid0".into()),
        from: None,
        to: None,
        limit: None,
    };
    let query = history_query("m1".into(), params, now).unwrap();
    assert_eq!(query.to, now);
    assert_eq!(query.from, now - chrono::Duration::days(30));
    assert_eq!(query.limit, DEFAULT_HISTORY_LIMIT);
    let params = HistoryParams {
        check: Some("accounts.uid0".into()),
        from: Some("1500-01-01T00:00:00Z".into()),
        to: None,
        limit: Some("10001".into()),
    };
    let err = history_query("m1".into(), params, now).unwrap_err();
    assert_eq!(err.details.len(), 2);
}

#[tokio::test]
async fn health_readiness_and_unknown_routes() {
    let api = api().await;
    assert_eq!(
        api.get(None, "/healthz").await,
        (StatusCode::OK, json!({"status": "ok"}))
    );
    assert_eq!(
        api.get(None, "/readyz").await,
        (StatusCode::OK, json!({"status": "ready"}))
    );
    let (status, body) = api.get(Some(&api.viewer), "/api/v2/things").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().unwrap().contains("API.md"), "{body}");
    let response = api
        .app
        .clone()
        .oneshot(
            Request::delete("/api/v1/hosts")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);

    // A closed store makes the collector not ready, with Retry-After.
    api.store.close().await.unwrap();
    let response = api
        .app
        .clone()
        .oneshot(Request::get("/readyz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "5");
    assert_eq!(api.get(None, "/healthz").await.0, StatusCode::OK);
}

fn urlencode(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}
