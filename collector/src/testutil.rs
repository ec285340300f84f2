//! Test helpers: valid reports built from `vigil_shared` types, principals and tokens.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Duration, Utc};
use vigil_shared::report::SCHEMA_V1;
use vigil_shared::{
    AgentHealth, AgentInfo, CheckResult, Evidence, HostIdentity, OsRelease, Report, Status,
    Subject, Value,
};

static BATCH: AtomicU64 = AtomicU64::new(1);

/// A fresh, unique, valid batch id (a UUID).
pub fn batch_id() -> String {
    let n = BATCH.fetch_add(1, Ordering::SeqCst);
    format!("6f1c1b0e-2f7b-4d8e-9a51-{n:012x}")
}

/// The fixture clock plus some nanoseconds, so that exact round trips are tested.
pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-06-01T12:00:00.123456789Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// A passing result.
pub fn pass(check: &str, observed_at: DateTime<Utc>) -> CheckResult {
    CheckResult {
        check: check.into(),
        controls: vec!["A.8.2".into()],
        observed_at,
        duration_ms: 4,
        status: Status::Pass,
        summary: "only root has uid 0".into(),
        values: BTreeMap::from([("uid0_accounts".to_string(), Value::Int(1))]),
        evidence: Evidence {
            offenders: vec![],
            checked: vec![Subject::new("account", "root").fact("uid", 0i64)],
            sources: vec!["/etc/passwd".into()],
        },
        error: None,
    }
}

/// A failing result with an offender and typed values.
pub fn fail(check: &str, observed_at: DateTime<Utc>) -> CheckResult {
    CheckResult {
        check: check.into(),
        controls: vec!["A.8.8".into(), "A.8.19".into()],
        observed_at,
        duration_ms: 812,
        status: Status::Fail,
        summary: "2 security updates pending".into(),
        values: BTreeMap::from([
            ("pending_security".to_string(), Value::Int(2)),
            ("ratio".to_string(), Value::Float(0.25)),
            ("stale".to_string(), Value::Bool(true)),
            (
                "packages".to_string(),
                Value::List(vec!["openssl".into(), "libc6".into()]),
            ),
        ]),
        evidence: Evidence {
            offenders: vec![
                Subject::new("package", "openssl:amd64")
                    .with_reason("security update 3.0.15-1~deb12u1 pending")
                    .fact("installed", "3.0.11-1~deb12u2"),
                Subject::new("package", "libc6:amd64").with_reason("security update pending"),
            ],
            checked: vec![],
            sources: vec!["/var/lib/dpkg/status".into()],
        },
        error: None,
    }
}

/// A result with status `no_data`.
pub fn no_data(check: &str, observed_at: DateTime<Utc>) -> CheckResult {
    CheckResult {
        check: check.into(),
        controls: vec!["A.8.17".into()],
        observed_at,
        duration_ms: 0,
        status: Status::NoData,
        summary: "no time synchronisation daemon configured under this root".into(),
        values: BTreeMap::new(),
        evidence: Evidence::default(),
        error: None,
    }
}

/// A valid report from `agent` about `machine_id` with sequence `seq`: three results (pass,
/// fail, no data) observed `seq` minutes after [`t0`].
pub fn report(agent: &str, machine_id: &str, seq: u64) -> Report {
    let at = t0() + Duration::minutes(i64::try_from(seq).unwrap());
    Report {
        schema: SCHEMA_V1.into(),
        agent: AgentInfo {
            id: agent.into(),
            version: "0.1.0".into(),
            health: Some(AgentHealth {
                spool_pending: 0,
                spool_dropped_total: 0,
                check_failures_total: 1,
                ..AgentHealth::default()
            }),
        },
        host: HostIdentity {
            machine_id: machine_id.into(),
            hostname: format!("{machine_id}.example.org"),
            os: OsRelease {
                id: "debian".into(),
                id_like: vec![],
                version_id: "12".into(),
                pretty_name: "Debian GNU/Linux 12 (bookworm)".into(),
            },
            kernel: Some("6.1.0-28-amd64".into()),
            labels: BTreeMap::from([("env".to_string(), "prod".to_string())]),
        },
        batch_id: batch_id(),
        seq,
        sent_at: at + Duration::seconds(2),
        results: vec![
            pass("accounts.uid0", at),
            fail("packages.pending_security", at),
            no_data("time.sync", at),
        ],
    }
}

/// A collector serving on `127.0.0.1:0` with its data in a temporary directory.
pub struct TestCollector {
    pub dir: tempfile::TempDir,
    pub config: crate::settings::CollectorConfig,
    pub running: crate::pipeline::Running,
    pub base: String,
    pub client: reqwest::Client,
}

/// The configuration of a test collector storing under `dir`.
pub fn test_config(dir: &std::path::Path) -> crate::settings::CollectorConfig {
    let mut config = crate::settings::CollectorConfig::default();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.storage.data_dir = dir.join("data");
    config
}

/// The signing key of the test agent `name` (derived from the name, so tests can rebuild it).
pub fn agent_key(name: &str) -> vigil_shared::signing::SigningKey {
    use sha2::Digest;
    vigil_shared::signing::SigningKey::from_bytes(&sha2::Sha256::digest(name.as_bytes()).into())
}

/// The `X-Vigil-Signature` value of `json` by the test agent `name`.
pub fn signature(name: &str, json: &[u8]) -> String {
    vigil_shared::signing::SignatureHeader::sign(&agent_key(name), json).to_value()
}

/// A reqwest client using rustls with the ring provider.
pub fn client() -> reqwest::Client {
    crate::tls::install_crypto_provider();
    reqwest::Client::builder().build().unwrap()
}

impl TestCollector {
    pub async fn start() -> TestCollector {
        TestCollector::start_with(|_| {}).await
    }

    pub async fn start_with(
        tweak: impl FnOnce(&mut crate::settings::CollectorConfig),
    ) -> TestCollector {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path());
        tweak(&mut config);
        let running = crate::pipeline::start(&config).await.unwrap();
        let base = format!("http://{}", running.local_addr());
        TestCollector {
            dir,
            config,
            running,
            base,
            client: client(),
        }
    }

    pub fn store(&self) -> &dyn crate::store::Store {
        self.running.store().as_ref()
    }

    /// Registers a principal and returns its token.
    /// Adds a principal and returns its token; an agent also gets its key ([`agent_key`])
    /// registered, as its first start would.
    pub async fn principal(&self, name: &str, role: crate::auth::Role) -> String {
        let (_, token) = crate::admin::add(self.store(), name, role, BTreeMap::new(), Utc::now())
            .await
            .unwrap();
        if role == crate::auth::Role::Agent {
            self.store()
                .register_agent_key(
                    name,
                    agent_key(name).verifying_key().to_bytes(),
                    crate::store::chain::KeySource::FirstUse,
                    Utc::now(),
                )
                .await
                .unwrap();
        }
        token.expose().to_string()
    }

    pub async fn stats(&self) -> crate::store::StoreStats {
        self.store().stats().await.unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Pushes `report` gzip-compressed with `token`, signed with the key of its `agent.id`.
    pub async fn push(&self, token: &str, report: &Report) -> reqwest::Response {
        let json = serde_json::to_vec(report).unwrap();
        let body = vigil_shared::codec::gzip(&json).unwrap();
        self.client
            .post(self.url("/api/v1/reports"))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .header(
                vigil_shared::signing::SIGNATURE_HEADER,
                signature(&report.agent.id, &json),
            )
            .body(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, token: &str, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }
}

/// Status and JSON body of a response.
pub async fn answer(response: reqwest::Response) -> (u16, serde_json::Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, json)
}

/// Sends a POST with `Transfer-Encoding: chunked` (no length announced) over a raw socket and
/// returns the whole response as text. Write errors after the headers are ignored: the server
/// may answer and close before the body is complete.
pub async fn raw_chunked_post(
    addr: std::net::SocketAddr,
    path: &str,
    token: &str,
    body: &[u8],
    chunk: usize,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for part in body.chunks(chunk) {
        let mut framed = format!("{:x}\r\n", part.len()).into_bytes();
        framed.extend_from_slice(part);
        framed.extend_from_slice(b"\r\n");
        if stream.write_all(&framed).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    String::from_utf8_lossy(&response).into_owned()
}
