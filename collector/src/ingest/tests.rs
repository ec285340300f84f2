//! `POST /api/v1/reports` against a real server on a loopback socket: every status of the
//! contract, and that nothing is stored for a rejected request.

use std::sync::{Arc, Mutex};

use serde_json::json;
use vigil_shared::codec;

use crate::auth::Role;
use crate::store::{Store, StoreError};
use crate::testutil::{self, TestCollector, answer};

#[tokio::test]
async fn a_report_is_stored_then_its_retry_is_a_duplicate() {
    let c = TestCollector::start().await;
    let token = c.principal("web-01", Role::Agent).await;
    let report = testutil::report("web-01", "m-web-01", 1);

    let (status, body) = answer(c.push(&token, &report).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"status": "stored", "seq": 1, "batch_id": report.batch_id, "results": 3})
    );
    let after_first = c.stats().await;
    assert_eq!((after_first.reports, after_first.results), (1, 3));

    let (status, body) = answer(c.push(&token, &report).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "duplicate");
    assert_eq!(body["seq"], 1);
    assert_eq!(body["batch_id"], report.batch_id.as_str());
    assert!(body["first_received_at"].is_string(), "{body}");
    assert_eq!(c.stats().await, after_first, "nothing stored twice");

    // Identity encoding is accepted too.
    let next = testutil::report("web-01", "m-web-01", 2);
    let response = c
        .client
        .post(c.url("/api/v1/reports"))
        .bearer_auth(&token)
        .header(
            vigil_shared::signing::SIGNATURE_HEADER,
            testutil::signature("web-01", &serde_json::to_vec(&next).unwrap()),
        )
        .body(serde_json::to_vec(&next).unwrap())
        .send()
        .await
        .unwrap();
    let (status, body) = answer(response).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("stored")),
        "{body}"
    );
    c.running.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_reused_sequence_number_with_another_batch_is_a_conflict() {
    let c = TestCollector::start().await;
    let token = c.principal("web-01", Role::Agent).await;
    let first = testutil::report("web-01", "m1", 7);
    assert_eq!(c.push(&token, &first).await.status(), 200);
    let before = c.stats().await;

    let other = testutil::report("web-01", "m1", 7);
    let (status, body) = answer(c.push(&token, &other).await).await;
    assert_eq!(status, 409, "{body}");
    let message = body["error"].as_str().unwrap();
    assert!(message.contains("sequence number 7"), "{message}");
    assert!(message.contains(&first.batch_id), "{message}");
    assert_eq!(body["details"][0]["path"], "seq");

    let mut reused = testutil::report("web-01", "m1", 8);
    reused.batch_id = first.batch_id.clone();
    let (status, body) = answer(c.push(&token, &reused).await).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("must keep both"),
        "{body}"
    );
    assert_eq!(c.stats().await, before);
    c.running.shutdown().await.unwrap();
}

#[tokio::test]
async fn unauthenticated_and_unauthorised_pushes_store_nothing() {
    let c = TestCollector::start().await;
    let web = c.principal("web-01", Role::Agent).await;
    let db = c.principal("db-01", Role::Agent).await;
    let viewer = c.principal("grafana", Role::Viewer).await;
    let revoked = c.principal("old-01", Role::Agent).await;
    c.store()
        .revoke_principal("old-01", chrono::Utc::now())
        .await
        .unwrap();
    // The web agent owns m-web.
    assert_eq!(
        c.push(&web, &testutil::report("web-01", "m-web", 1))
            .await
            .status(),
        200
    );
    let before = c.stats().await;
    let url = c.url("/api/v1/reports");
    let body = codec::encode_gzip(&testutil::report("web-01", "m-web", 2)).unwrap();

    // No token.
    let response = c
        .client
        .post(&url)
        .header("content-encoding", "gzip")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"vigil\""
    );
    let (status, json) = answer(response).await;
    assert_eq!(status, 401);
    assert!(
        json["error"].as_str().unwrap().contains("Authorization"),
        "{json}"
    );

    // Wrong scheme, junk, and a well-formed token nobody holds.
    let unknown = format!("vgl_{}", "0".repeat(64));
    for header in [
        "Basic d2ViOjAx".to_string(),
        "Bearer junk".into(),
        format!("Bearer {unknown}"),
    ] {
        let response = c
            .client
            .post(&url)
            .header("authorization", header.as_str())
            .header("content-encoding", "gzip")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let (status, json) = answer(response).await;
        assert_eq!(status, 401, "{header}: {json}");
    }

    // A revoked token says so.
    let old = testutil::report("old-01", "m-old", 1);
    let (status, json) = answer(c.push(&revoked, &old).await).await;
    assert_eq!(status, 401);
    assert!(
        json["error"].as_str().unwrap().contains("revoked"),
        "{json}"
    );

    // A reader token cannot write.
    let (status, json) = answer(
        c.push(&viewer, &testutil::report("grafana", "m-x", 1))
            .await,
    )
    .await;
    assert_eq!(status, 403);
    assert!(
        json["error"]
            .as_str()
            .unwrap()
            .contains("only agent tokens"),
        "{json}"
    );

    // An agent cannot speak for another agent.
    let (status, json) = answer(c.push(&db, &testutil::report("web-01", "m-db", 1)).await).await;
    assert_eq!(status, 403);
    assert!(
        json["error"]
            .as_str()
            .unwrap()
            .contains("token belongs to agent \"db-01\""),
        "{json}"
    );
    assert_eq!(json["details"][0]["path"], "agent.id");

    // An agent cannot write a host bound to another agent.
    let (status, json) = answer(c.push(&db, &testutil::report("db-01", "m-web", 1)).await).await;
    assert_eq!(status, 403);
    let message = json["error"].as_str().unwrap();
    assert!(
        message.contains("host m-web is bound to agent \"web-01\""),
        "{message}"
    );
    assert_eq!(json["details"][0]["path"], "host.machine_id");

    assert_eq!(c.stats().await, before);
    c.running.shutdown().await.unwrap();
}

#[tokio::test]
async fn malformed_bodies_are_explained_and_store_nothing() {
    let c = TestCollector::start_with(|config| {
        config.server.max_body_bytes = 64 * 1024;
        config.server.max_decompressed_bytes = 1024 * 1024;
    })
    .await;
    let token = c.principal("web-01", Role::Agent).await;
    let before = c.stats().await;
    let url = c.url("/api/v1/reports");
    let post = |encoding: Option<&'static str>, body: Vec<u8>| {
        let mut request = c.client.post(&url).bearer_auth(&token).body(body);
        if let Some(encoding) = encoding {
            request = request.header("content-encoding", encoding);
        }
        request.send()
    };

    // Not JSON: 400 with serde's position.
    let (status, json) = answer(post(None, b"{\n\"schema\": }".to_vec()).await.unwrap()).await;
    assert_eq!(status, 400, "{json}");
    assert_eq!(json["details"][0]["line"], 2);
    assert!(
        json["error"].as_str().unwrap().contains("line 2 column"),
        "{json}"
    );
    // Unknown field (the schema is strict).
    let mut value = serde_json::to_value(testutil::report("web-01", "m1", 1)).unwrap();
    value["extra"] = json!(1);
    let (status, json) = answer(
        post(None, serde_json::to_vec(&value).unwrap())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        json["error"]
            .as_str()
            .unwrap()
            .contains("unknown field `extra`"),
        "{json}"
    );
    // Claims gzip, is not.
    let (status, json) = answer(post(Some("gzip"), b"plain".to_vec()).await.unwrap()).await;
    assert_eq!(status, 400);
    assert!(json["error"].as_str().unwrap().contains("gzip"), "{json}");

    // Valid JSON, invalid report: 422 with every problem.
    let mut report = testutil::report("web-01", "m1", 1);
    report.seq = 0;
    report.results[0].check = "Not An Id".into();
    let (status, json) = answer(
        post(Some("gzip"), codec::encode_gzip(&report).unwrap())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 422, "{json}");
    let paths: Vec<&str> = json["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["seq", "results[0].check"]);
    assert!(
        json["details"][0]["message"]
            .as_str()
            .unwrap()
            .contains("start at 1")
    );

    // Over the wire cap, declared and streamed without a length.
    let big = vec![b' '; 100 * 1024];
    let (status, json) = answer(post(None, big.clone()).await.unwrap()).await;
    assert_eq!(status, 413, "{json}");
    assert!(
        json["error"]
            .as_str()
            .unwrap()
            .contains("server.max_body_bytes"),
        "{json}"
    );
    let response = testutil::raw_chunked_post(
        c.running.local_addr(),
        "/api/v1/reports",
        &token,
        &big,
        8192,
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(response.contains("server.max_body_bytes"), "{response}");

    // A decompression bomb: 8 MiB of whitespace in about 8 KiB of gzip.
    let bomb = codec::gzip(&vec![b' '; 8 * 1024 * 1024]).unwrap();
    assert!(bomb.len() < 64 * 1024);
    let (status, json) = answer(post(Some("gzip"), bomb).await.unwrap()).await;
    assert_eq!(status, 413, "{json}");
    assert!(
        json["error"].as_str().unwrap().contains("decompressed"),
        "{json}"
    );

    // Unsupported encodings and types.
    let body = codec::encode_gzip(&testutil::report("web-01", "m1", 1)).unwrap();
    let response = post(Some("br"), body.clone()).await.unwrap();
    assert_eq!(response.headers()["accept-encoding"], "gzip, identity");
    let (status, json) = answer(response).await;
    assert_eq!(status, 415);
    assert!(json["error"].as_str().unwrap().contains("\"br\""), "{json}");
    let response = c
        .client
        .post(&url)
        .bearer_auth(&token)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("content-encoding", "gzip")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);

    assert_eq!(c.stats().await, before);
    c.running.shutdown().await.unwrap();
}

/// Collects everything a `tracing` subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

// A current-thread runtime, so the server's tasks run where the capturing subscriber is set.
#[tokio::test(flavor = "current_thread")]
async fn tokens_never_reach_the_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let c = TestCollector::start().await;
    let agent = c.principal("web-01", Role::Agent).await;
    let other = c.principal("db-01", Role::Agent).await;
    let viewer = c.principal("grafana", Role::Viewer).await;
    let unknown = format!("vgl_{}", "ab".repeat(32));
    // Every path a token can take: accepted, duplicate, rejected at each stage, unknown,
    // revoked, and the read API with a good and a wrong token.
    let report = testutil::report("web-01", "m-web", 1);
    assert_eq!(c.push(&agent, &report).await.status(), 200);
    assert_eq!(c.push(&agent, &report).await.status(), 200);
    assert_eq!(c.push(&other, &report).await.status(), 403);
    assert_eq!(c.push(&unknown, &report).await.status(), 401);
    let mut invalid = testutil::report("web-01", "m-web", 2);
    invalid.seq = 0;
    assert_eq!(c.push(&agent, &invalid).await.status(), 422);
    assert_eq!(c.get(&viewer, "/api/v1/hosts").await.status(), 200);
    assert_eq!(c.get(&agent, "/api/v1/hosts").await.status(), 403);
    assert_eq!(c.get(&unknown, "/api/v1/hosts/m-web").await.status(), 401);
    c.store()
        .revoke_principal("db-01", chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(
        c.push(&other, &testutil::report("db-01", "m-db", 1))
            .await
            .status(),
        401
    );
    c.running.shutdown().await.unwrap();

    let logs = captured.text();
    // The capture works: the requests were logged, with the principal and ingest fields.
    assert!(logs.contains("report ingested"), "{logs}");
    assert!(
        logs.contains("principal=\"grafana\"") || logs.contains("principal=grafana"),
        "{logs}"
    );
    assert!(logs.contains("status=401"), "{logs}");
    for token in [&agent, &other, &viewer, &unknown] {
        let secret = &token[4..];
        assert!(
            !logs.contains(secret),
            "a token leaked into the logs:\n{logs}"
        );
        // Nor a long piece of it.
        assert!(
            !logs.contains(&secret[..16]),
            "part of a token leaked into the logs"
        );
    }
}

#[tokio::test]
async fn a_body_that_stalls_past_the_request_timeout_is_a_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let c = TestCollector::start_with(|config| config.server.request_timeout_secs = 1).await;
    let token = c.principal("web-01", Role::Agent).await;
    let body = codec::encode_gzip(&testutil::report("web-01", "m1", 1)).unwrap();
    let mut stream = tokio::net::TcpStream::connect(c.running.local_addr())
        .await
        .unwrap();
    let head = format!(
        "POST /api/v1/reports HTTP/1.1\r\nHost: c\r\nAuthorization: Bearer {token}\r\n\
         Content-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..body.len() / 2]).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(
        response.contains("server.request_timeout_secs"),
        "{response}"
    );
    assert_eq!(c.stats().await.reports, 0);
    c.running.shutdown().await.unwrap();
}

/// A store whose writes fail or hang, to see what agents are told then.
struct BrokenStore {
    inner: crate::store::sqlite::SqliteStore,
    hang: bool,
}

#[async_trait::async_trait]
impl Store for BrokenStore {
    async fn create_principal(
        &self,
        new: crate::store::NewPrincipal,
    ) -> Result<crate::store::Principal, StoreError> {
        self.inner.create_principal(new).await
    }
    async fn principal_by_token(
        &self,
        hash: crate::auth::TokenHash,
    ) -> Result<Option<crate::store::Principal>, StoreError> {
        self.inner.principal_by_token(hash).await
    }
    async fn principal_by_name(
        &self,
        name: &str,
    ) -> Result<Option<crate::store::Principal>, StoreError> {
        self.inner.principal_by_name(name).await
    }
    async fn list_principals(&self) -> Result<Vec<crate::store::Principal>, StoreError> {
        self.inner.list_principals().await
    }
    async fn revoke_principal(
        &self,
        name: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<crate::store::Principal, StoreError> {
        self.inner.revoke_principal(name, at).await
    }
    async fn rotate_token(
        &self,
        name: &str,
        hash: crate::auth::TokenHash,
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<crate::store::Principal, StoreError> {
        self.inner.rotate_token(name, hash, expires_at).await
    }
    async fn ingest(
        &self,
        _request: crate::store::IngestRequest,
    ) -> Result<crate::store::IngestOutcome, StoreError> {
        if self.hang {
            std::future::pending::<()>().await;
        }
        Err(StoreError::BackendMessage {
            op: "commit",
            message: "disk I/O error".into(),
        })
    }
    async fn list_hosts(&self) -> Result<Vec<crate::store::HostSummary>, StoreError> {
        self.inner.list_hosts().await
    }
    async fn host_detail(
        &self,
        machine_id: &str,
    ) -> Result<Option<crate::store::HostDetail>, StoreError> {
        self.inner.host_detail(machine_id).await
    }
    async fn result_history(
        &self,
        query: &crate::store::HistoryQuery,
    ) -> Result<Option<crate::store::History>, StoreError> {
        self.inner.result_history(query).await
    }
    async fn stats(&self) -> Result<crate::store::StoreStats, StoreError> {
        self.inner.stats().await
    }
    async fn evaluation_hosts(
        &self,
        since: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Vec<crate::evaluate::HostFacts>, StoreError> {
        self.inner.evaluation_hosts(since).await
    }
    async fn engine_state(&self) -> Result<crate::store::EngineState, StoreError> {
        self.inner.engine_state().await
    }
    async fn nonconformity_index(
        &self,
    ) -> Result<
        (
            Vec<crate::evaluate::Nonconformity>,
            std::collections::HashMap<String, u64>,
        ),
        StoreError,
    > {
        self.inner.nonconformity_index().await
    }
    async fn save_evaluation(
        &self,
        batch: crate::store::EvaluationBatch,
    ) -> Result<crate::store::SavedEvaluation, StoreError> {
        self.inner.save_evaluation(batch).await
    }
    async fn verdicts_at(
        &self,
        at: Option<chrono::DateTime<chrono::Utc>>,
        machine_id: Option<&str>,
        rule: Option<&str>,
    ) -> Result<Vec<crate::store::VerdictRecord>, StoreError> {
        self.inner.verdicts_at(at, machine_id, rule).await
    }
    async fn controls_at(
        &self,
        at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Vec<crate::store::ControlRecord>, StoreError> {
        self.inner.controls_at(at).await
    }
    async fn kpis_at(
        &self,
        at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Vec<crate::store::KpiSnapshot>, StoreError> {
        self.inner.kpis_at(at).await
    }
    async fn kpi_history(
        &self,
        kpi: &str,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> Result<
        (
            Vec<crate::evaluate::KpiValue>,
            Vec<crate::evaluate::KpiEvaluation>,
        ),
        StoreError,
    > {
        self.inner.kpi_history(kpi, from, to, limit).await
    }
    async fn objectives_at(
        &self,
        at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Vec<crate::store::ObjectiveRecord>, StoreError> {
        self.inner.objectives_at(at).await
    }
    async fn nonconformities_at(
        &self,
        at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Vec<crate::evaluate::Nonconformity>, StoreError> {
        self.inner.nonconformities_at(at).await
    }
    async fn nonconformity(&self, id: u64) -> Result<Option<crate::store::NcDetail>, StoreError> {
        self.inner.nonconformity(id).await
    }
    async fn nc_events_between(
        &self,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<(u64, crate::evaluate::NcEvent)>, StoreError> {
        self.inner.nc_events_between(from, to).await
    }
    async fn nc_action(
        &self,
        id: u64,
        action: crate::evaluate::nonconformities::NcAction,
        actor: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<crate::store::NcActionOutcome, StoreError> {
        self.inner.nc_action(id, action, actor, at).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
    async fn close(&self) -> Result<(), StoreError> {
        self.inner.close().await
    }
    async fn create_enrollment_token(
        &self,
        new: crate::store::enrollment::NewEnrollmentToken,
    ) -> Result<crate::store::enrollment::EnrollmentToken, StoreError> {
        self.inner.create_enrollment_token(new).await
    }
    async fn list_enrollment_tokens(
        &self,
    ) -> Result<Vec<crate::store::enrollment::EnrollmentToken>, StoreError> {
        self.inner.list_enrollment_tokens().await
    }
    async fn revoke_enrollment_token(
        &self,
        name: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<crate::store::enrollment::EnrollmentToken, StoreError> {
        self.inner.revoke_enrollment_token(name, at).await
    }
    async fn enroll_agent(
        &self,
        request: crate::store::enrollment::EnrollRequest,
    ) -> Result<crate::store::enrollment::EnrollOutcome, StoreError> {
        self.inner.enroll_agent(request).await
    }
    async fn list_enrollments(
        &self,
    ) -> Result<Vec<crate::store::enrollment::Enrollment>, StoreError> {
        self.inner.list_enrollments().await
    }
    async fn evidence_page(
        &self,
        query: &crate::store::EvidencePageQuery,
    ) -> Result<Vec<crate::store::EvidenceRecord>, StoreError> {
        self.inner.evidence_page(query).await
    }
    async fn report_times_page(
        &self,
        machine_id: &str,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
        after: Option<chrono::DateTime<chrono::Utc>>,
        limit: usize,
    ) -> Result<Vec<chrono::DateTime<chrono::Utc>>, StoreError> {
        self.inner
            .report_times_page(machine_id, from, to, after, limit)
            .await
    }
    async fn agent_keys(
        &self,
        agent: &str,
    ) -> Result<Vec<crate::store::chain::AgentKey>, StoreError> {
        self.inner.agent_keys(agent).await
    }
    async fn list_agent_keys(&self) -> Result<Vec<crate::store::chain::AgentKey>, StoreError> {
        self.inner.list_agent_keys().await
    }
    async fn register_agent_key(
        &self,
        agent: &str,
        public_key: [u8; 32],
        source: crate::store::chain::KeySource,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<crate::store::chain::KeyOutcome, StoreError> {
        self.inner
            .register_agent_key(agent, public_key, source, at)
            .await
    }
    async fn retire_agent_key(
        &self,
        agent: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<crate::store::chain::AgentKey>, StoreError> {
        self.inner.retire_agent_key(agent, at).await
    }
    async fn chain_heads(&self) -> Result<Vec<crate::store::chain::ChainHead>, StoreError> {
        self.inner.chain_heads().await
    }
    async fn chain_bounds(
        &self,
        machine_id: &str,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
        seqs: &[u64],
    ) -> Result<Option<(u64, u64)>, StoreError> {
        self.inner.chain_bounds(machine_id, from, to, seqs).await
    }
    async fn chain_page(
        &self,
        machine_id: &str,
        after: u64,
        through: u64,
        limit: usize,
    ) -> Result<Vec<crate::store::chain::ChainEntry>, StoreError> {
        self.inner
            .chain_page(machine_id, after, through, limit)
            .await
    }
}

#[tokio::test]
async fn a_store_that_fails_or_hangs_gives_503_with_retry_after() {
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    for hang in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(BrokenStore {
            inner: crate::store::sqlite::SqliteStore::open(dir.path()).unwrap(),
            hang,
        });
        let (_, token) = crate::admin::add(
            store.as_ref(),
            "web-01",
            Role::Agent,
            Default::default(),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
        let app = crate::http::router(crate::http::AppState {
            isms: None,
            clock: std::sync::Arc::new(crate::engine::SystemClock),
            engine: None,
            store: store.clone(),
            limits: crate::http::Limits {
                max_body_bytes: 1 << 20,
                max_decompressed_bytes: 1 << 22,
            },
            request_timeout: std::time::Duration::from_secs(1),
            in_flight: Default::default(),
            metrics: std::sync::Arc::new(crate::metrics::Metrics::new().unwrap()),
            webhooks: None,
            isms_digest: None,
            collector_key: None,
        });
        store
            .register_agent_key(
                "web-01",
                testutil::agent_key("web-01").verifying_key().to_bytes(),
                crate::store::chain::KeySource::FirstUse,
                chrono::Utc::now(),
            )
            .await
            .unwrap();
        let json = serde_json::to_vec(&testutil::report("web-01", "m1", 1)).unwrap();
        let body = codec::gzip(&json).unwrap();
        let request = axum::http::Request::post("/api/v1/reports")
            .header("authorization", format!("Bearer {}", token.expose()))
            .header(
                vigil_shared::signing::SIGNATURE_HEADER,
                testutil::signature("web-01", &json),
            )
            .header("content-encoding", "gzip")
            .body(Body::from(body))
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), 503, "hang={hang}");
        assert_eq!(response.headers()["retry-after"], "5");
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert!(
            json["error"].as_str().unwrap().contains("retry later"),
            "{json}"
        );
        assert_eq!(store.stats().await.unwrap().reports, 0);
        store.close().await.unwrap();
    }
}
