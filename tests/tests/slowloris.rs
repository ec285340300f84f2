//! Slow-loris protection on a real collector: a client that sends its request headers one byte
//! at a time, or a body one byte at a time, is cut off within the configured bounds, and the
//! collector keeps serving everyone else meanwhile.

#![allow(clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vigil_tests::{bin, free_port, http, wait_until};

struct Server {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// True once the server gave up on the connection: it closed it, reset it, or answered (an
/// answer to a request that is still arriving is a refusal, e.g. 408).
fn closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 512];
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    match stream.read(&mut buf) {
        // End of stream (0) or the start of an answer (> 0): either way it is over.
        Ok(0 | 1..) => true,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

/// Sends `prefix`, then one byte of `drip` every 250 ms until the server closes; answers how long
/// that took, or `None` if it was still open after `limit`.
fn drip(port: u16, prefix: &[u8], drip: &[u8], limit: Duration) -> Option<Duration> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let started = Instant::now();
    stream.write_all(prefix).expect("prefix");
    for byte in drip.iter().cycle() {
        if started.elapsed() > limit {
            return None;
        }
        if stream.write_all(&[*byte]).is_err() || closed(&mut stream) {
            return Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    None
}

#[test]
fn slow_clients_are_cut_off_and_others_still_served() {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let config = dir.path().join("collector.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\nheader_read_timeout_secs = 2\n\
             request_timeout_secs = 3\n\n[storage]\ndata_dir = \"{}\"\n",
            dir.path().join("data").display()
        ),
    )
    .expect("config");
    let token = String::from_utf8(
        Command::new(bin("vigil-collector"))
            .arg("--config")
            .arg(&config)
            .args(["agents", "add", "slow-agent"])
            .output()
            .expect("agent added")
            .stdout,
    )
    .expect("utf-8")
    .trim()
    .to_string();
    assert!(token.starts_with("vgl_"), "{token}");
    let child = Command::new(bin("vigil-collector"))
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("collector starts");
    let _server = Server { child, _dir: dir };
    let base = format!("http://127.0.0.1:{port}");
    assert!(
        wait_until(Duration::from_secs(20), || http()
            .get(format!("{base}/readyz"))
            .send()
            .is_ok_and(|r| r.status().is_success())),
        "collector ready"
    );

    // Headers one byte at a time, in parallel with a well-behaved client.
    let attacker = std::thread::spawn(move || {
        drip(
            port,
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n",
            b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
            Duration::from_secs(15),
        )
    });
    std::thread::sleep(Duration::from_millis(500));
    let answer = http()
        .get(format!("{base}/healthz"))
        .send()
        .expect("served");
    assert!(answer.status().is_success(), "others are still served");
    let cut = attacker
        .join()
        .expect("attacker")
        .expect("header dripper cut off within 15 s");
    assert!(
        cut >= Duration::from_millis(1500) && cut <= Duration::from_secs(6),
        "cut off after {cut:?}, header_read_timeout_secs = 2"
    );

    // A body one byte at a time, by an authenticated agent on the ingest endpoint: the request
    // deadline (request_timeout_secs = 3) cuts it.
    let head = format!(
        "POST /api/v1/reports HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
    );
    let cut = drip(port, head.as_bytes(), b"{", Duration::from_secs(15))
        .expect("body dripper cut off within 15 s");
    assert!(cut <= Duration::from_secs(8), "cut off after {cut:?}");
}
