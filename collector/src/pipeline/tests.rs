//! The whole collector on a loopback socket: durability of acknowledged reports across a stop,
//! HTTPS with a certificate made here, the shutdown order (refuse new connections, finish the
//! requests in flight, close the store), and start-up failures.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use vigil_shared::codec;

use crate::auth::Role;
use crate::pipeline;
use crate::store::Store;
use crate::store::sqlite::SqliteStore;
use crate::testutil::{self, TestCollector, answer};

/// Polls `condition` until it holds; fails the test after 10 s (a bound, not a timing).
async fn wait_for(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    for _ in 0..1000 {
        if condition().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("gave up waiting for {what}");
}

#[tokio::test]
async fn acknowledged_reports_survive_a_stop_and_reopen() {
    let c = TestCollector::start().await;
    let token = c.principal("web-01", Role::Agent).await;
    let mut sent = Vec::new();
    for seq in 1..=50 {
        let report = testutil::report("web-01", "m-web", seq);
        let (status, body) = answer(c.push(&token, &report).await).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "stored");
        sent.push(report);
    }
    // Before the stop, another connection (what the CLI uses) already sees every acknowledged
    // report: the 200 came after the commit, not before.
    let data_dir = c.config.storage.data_dir.clone();
    let other = SqliteStore::open(&data_dir).unwrap();
    assert_eq!(other.stats().await.unwrap().reports, 50);
    other.close().await.unwrap();

    let TestCollector { dir, running, .. } = c;
    running.shutdown().await.unwrap();

    let store = SqliteStore::open(&data_dir).unwrap();
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.reports, stats.results, stats.hosts), (50, 150, 1));
    let detail = store.host_detail("m-web").await.unwrap().unwrap();
    assert_eq!(detail.host.last_seq, 50);
    let last = sent.last().unwrap();
    for stored in &detail.results {
        let original = last
            .results
            .iter()
            .find(|r| r.check == stored.result.check)
            .unwrap();
        assert_eq!(&stored.result, original);
    }
    // The token still works after the restart, and retries are still recognised.
    let running = pipeline::start(&testutil::test_config(dir.path()))
        .await
        .unwrap();
    let client = testutil::client();
    let response = client
        .post(format!("http://{}/api/v1/reports", running.local_addr()))
        .bearer_auth(&token)
        .header("content-encoding", "gzip")
        .header(
            vigil_shared::signing::SIGNATURE_HEADER,
            testutil::signature("web-01", &serde_json::to_vec(&sent[10]).unwrap()),
        )
        .body(codec::encode_gzip(&sent[10]).unwrap())
        .send()
        .await
        .unwrap();
    let (status, body) = answer(response).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("duplicate")),
        "{body}"
    );
    running.shutdown().await.unwrap();
    store.close().await.unwrap();
}

#[tokio::test]
async fn reports_are_pushed_over_https_with_a_trusted_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let cert_path = dir.path().join("collector.crt");
    let key_path = dir.path().join("collector.key");
    std::fs::write(&cert_path, certified.cert.pem()).unwrap();
    std::fs::write(&key_path, certified.signing_key.serialize_pem()).unwrap();
    let c = TestCollector::start_with(|config| {
        config.server.tls_cert = Some(cert_path.clone());
        config.server.tls_key = Some(key_path.clone());
    })
    .await;
    let token = c.principal("web-01", Role::Agent).await;
    let url = format!("https://{}/api/v1/reports", c.running.local_addr());
    let json = serde_json::to_vec(&testutil::report("web-01", "m-web", 1)).unwrap();
    let body = codec::gzip(&json).unwrap();

    crate::tls::install_crypto_provider();
    let trusted = reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([trusted])
        .build()
        .unwrap();
    let response = client
        .post(&url)
        .bearer_auth(&token)
        .header("content-encoding", "gzip")
        .header(
            vigil_shared::signing::SIGNATURE_HEADER,
            testutil::signature("web-01", &json),
        )
        .body(body.clone())
        .send()
        .await
        .unwrap();
    // ALPN offers h2, which reqwest prefers.
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    let (status, json) = answer(response).await;
    assert_eq!(
        (status, json["status"].as_str()),
        (200, Some("stored")),
        "{json}"
    );

    // A client that does not trust the certificate cannot talk to it, nor can plain HTTP.
    let stranger = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let untrusting = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(stranger.cert.pem().as_bytes()).unwrap()])
        .build()
        .unwrap();
    assert!(
        untrusting
            .post(&url)
            .body(body.clone())
            .send()
            .await
            .is_err()
    );
    let plain = format!("http://{}/healthz", c.running.local_addr());
    let refused = testutil::client().get(&plain).send().await;
    assert!(refused.is_err() || !refused.unwrap().status().is_success());

    assert_eq!(c.stats().await.reports, 1);
    c.running.shutdown().await.unwrap();
}

/// Sends the headers and the first half of a report, leaving the request in flight.
async fn half_sent_report(c: &TestCollector, token: &str, seq: u64) -> (TcpStream, Vec<u8>) {
    let json = serde_json::to_vec(&testutil::report("web-01", "m-web", seq)).unwrap();
    let body = codec::gzip(&json).unwrap();
    let mut stream = TcpStream::connect(c.running.local_addr()).await.unwrap();
    let head = format!(
        "POST /api/v1/reports HTTP/1.1\r\nHost: collector\r\nAuthorization: Bearer {token}\r\n\
         X-Vigil-Signature: {}\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        testutil::signature("web-01", &json),
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let half = body.len() / 2;
    stream.write_all(&body[..half]).await.unwrap();
    let rest = body[half..].to_vec();
    wait_for("the request to reach the handler", async || {
        c.running.requests_in_flight() == 1
    })
    .await;
    (stream, rest)
}

#[tokio::test]
async fn shutdown_refuses_new_connections_and_finishes_requests_in_flight() {
    let c = TestCollector::start_with(|config| config.server.shutdown_grace_secs = 60).await;
    let token = c.principal("web-01", Role::Agent).await;
    let (mut stream, rest) = half_sent_report(&c, &token, 1).await;
    let addr = c.running.local_addr();
    let data_dir = c.config.storage.data_dir.clone();

    let TestCollector {
        dir: _dir, running, ..
    } = c;
    let stopping = tokio::spawn(running.shutdown());
    // The listener goes away first.
    wait_for("the listener to close", async || {
        TcpStream::connect(addr).await.is_err()
    })
    .await;
    assert!(
        !stopping.is_finished(),
        "shutdown must wait for the request in flight"
    );

    // The request in flight completes and is acknowledged.
    stream.write_all(&rest).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"status\":\"stored\""), "{response}");

    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    // The store was closed after the drain, and holds the acknowledged report.
    let store = SqliteStore::open(&data_dir).unwrap();
    assert_eq!(store.stats().await.unwrap().reports, 1);
    store.close().await.unwrap();
}

#[tokio::test]
async fn a_request_that_outlives_the_grace_period_is_cut_and_not_stored() {
    let c = TestCollector::start_with(|config| config.server.shutdown_grace_secs = 0).await;
    let token = c.principal("web-01", Role::Agent).await;
    let (mut stream, _rest) = half_sent_report(&c, &token, 1).await;
    let data_dir = c.config.storage.data_dir.clone();
    let TestCollector {
        dir: _dir, running, ..
    } = c;
    tokio::time::timeout(Duration::from_secs(10), running.shutdown())
        .await
        .unwrap()
        .unwrap();
    // The client sees its connection end without an answer, so its report stays spooled.
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    assert!(!String::from_utf8_lossy(&response).contains("200 OK"));
    let store = SqliteStore::open(&data_dir).unwrap();
    assert_eq!(store.stats().await.unwrap().reports, 0);
    store.close().await.unwrap();
}

#[tokio::test]
async fn start_up_failures_name_their_cause() {
    let c = TestCollector::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = testutil::test_config(dir.path());
    config.server.listen = c.running.local_addr();
    let err = pipeline::start(&config).await.unwrap_err().to_string();
    assert!(
        err.contains(&format!("cannot listen on {}", c.running.local_addr())),
        "{err}"
    );

    let mut config = testutil::test_config(dir.path());
    config.server.tls_cert = Some(dir.path().join("absent.crt"));
    config.server.tls_key = Some(dir.path().join("absent.key"));
    let err = pipeline::start(&config).await.unwrap_err().to_string();
    assert!(err.contains("absent.crt"), "{err}");

    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let mut config = testutil::test_config(dir.path());
    config.storage.data_dir = file.join("data");
    let err = pipeline::start(&config).await.unwrap_err().to_string();
    assert!(err.contains("cannot create data directory"), "{err}");
    c.running.shutdown().await.unwrap();
}

#[tokio::test]
async fn readiness_over_the_socket() {
    let c = TestCollector::start().await;
    let (status, body) = answer(c.client.get(c.url("/readyz")).send().await.unwrap()).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ready")));
    c.running.shutdown().await.unwrap();
}
