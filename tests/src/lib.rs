//! Helpers for the end-to-end tests in `tests/tests/`: find the real binaries, start a
//! collector on a free loopback port with its own data directory, register agents, write agent
//! configurations, and read the API. Everything binds to 127.0.0.1 and stops with its handle.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

pub mod debian_root;

/// The workspace root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The fixture hosts shipped with the agent.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../agent/fixtures/hosts")
        .join(name)
}

/// Path of a workspace binary built next to this test executable (`tests/run` builds them
/// first; `cargo test --workspace` builds them too because their crates have integration
/// tests).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (tests/run does: cargo build --workspace --bins)",
        path.display()
    );
    path
}

/// A free TCP port on loopback (bound then released; a small race that tests tolerate).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Runs a command to completion and fails with its output when it fails.
pub fn run_ok(cmd: &mut Command) -> Result<Output> {
    let output = cmd
        .output()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !output.status.success() {
        bail!(
            "{cmd:?} exited with {}: {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(output)
}

/// A real `vigil-collector serve` on loopback.
pub struct Collector {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
    log_filter: Option<String>,
}

impl Collector {
    /// Writes a configuration with a fresh data directory and starts serving.
    pub fn start() -> Result<Self> {
        Collector::start_with_storage("backend = \"sqlite\"\n")
    }

    /// Like [`Collector::start`], with `storage` (TOML keys) in the `[storage]` section, e.g.
    /// `backend = "clickhouse"` and a `[storage.clickhouse]` table.
    pub fn start_with_storage(storage: &str) -> Result<Self> {
        Collector::start_logging(storage, None)
    }

    /// Like [`Collector::start_with_storage`], with the log filter (`VIGIL_LOG`) set.
    pub fn start_logging(storage: &str, log_filter: Option<&str>) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = free_port();
        let config = format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\nshutdown_grace_secs = 5\n\n\
             [storage]\ndata_dir = \"{}\"\n{storage}",
            dir.path().join("data").display()
        );
        std::fs::write(dir.path().join("collector.toml"), config)?;
        let mut collector = Collector {
            dir,
            port,
            child: None,
            log_filter: log_filter.map(str::to_string),
        };
        collector.spawn()?;
        Ok(collector)
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("collector.toml")
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("collector.log")
    }

    /// Starts (or restarts) the server process on the same data directory and port.
    pub fn spawn(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        let mut command = Command::new(bin("vigil-collector"));
        if let Some(filter) = &self.log_filter {
            command.env("VIGIL_LOG", filter);
        }
        let child = command
            .arg("--config")
            .arg(self.config_path())
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = http();
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                bail!("collector exited with {status}: {}", self.log());
            }
            if let Ok(r) = client.get(format!("{}/readyz", self.url())).send()
                && r.status().is_success()
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("collector not ready after 20 s: {}", self.log())
    }

    /// The collector's log so far.
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(self.log_path()) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    /// SIGTERM and wait: the graceful path.
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            run_ok(
                Command::new("kill")
                    .arg("-TERM")
                    .arg(child.id().to_string()),
            )?;
            let status = child.wait()?;
            if !status.success() {
                bail!(
                    "collector exited with {status} after SIGTERM: {}",
                    self.log()
                );
            }
        }
        Ok(())
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs a collector admin command (`agents add NAME`, …) and returns its stdout.
    pub fn admin(&self, args: &[&str]) -> Result<String> {
        let output = run_ok(
            Command::new(bin("vigil-collector"))
                .arg("--config")
                .arg(self.config_path())
                .args(args),
        )?;
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    }

    /// Registers an agent and returns its token.
    pub fn add_agent(&self, name: &str) -> Result<String> {
        self.admin(&["agents", "add", name])
    }

    /// Registers an agent whose reports the test signs itself with [`agent_key`] (its key is
    /// set by the operator command) and returns its token. A real `vigil-agent` run with this
    /// token would be refused: it has a key of its own (use [`Collector::add_agent`]).
    pub fn add_signing_agent(&self, name: &str) -> Result<String> {
        let token = self.add_agent(name)?;
        let key = vigil_shared::signing::public_key_hex(&agent_key(name).verifying_key());
        self.admin(&["agents", "set-key", name, &key])?;
        Ok(token)
    }

    /// Issues an API token with a role and returns it.
    pub fn add_token(&self, name: &str, role: &str) -> Result<String> {
        self.admin(&["tokens", "add", name, "--role", role])
    }

    /// GET an API path with a bearer token; returns status and JSON body.
    pub fn get(&self, path: &str, token: &str) -> Result<(u16, serde_json::Value)> {
        let response = http()
            .get(format!("{}{path}", self.url()))
            .bearer_auth(token)
            .send()?;
        let status = response.status().as_u16();
        let body = response.text()?;
        Ok((
            status,
            serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
        ))
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The key a test signs agent `name`'s hand-made reports with (derived from the name).
pub fn agent_key(name: &str) -> vigil_shared::signing::SigningKey {
    use sha2::Digest;
    vigil_shared::signing::SigningKey::from_bytes(&sha2::Sha256::digest(name.as_bytes()).into())
}

/// The `X-Vigil-Signature` header (name, value) for a report's JSON `json` sent as agent
/// `name`; the body sent must be `json` itself or its gzip.
pub fn signature(name: &str, json: &[u8]) -> (&'static str, String) {
    (
        vigil_shared::signing::SIGNATURE_HEADER,
        vigil_shared::signing::SignatureHeader::sign(&agent_key(name), json).to_value(),
    )
}

/// A report as a signed push sends it: (gzip body, signature header name, header value).
pub fn signed_body(report: &vigil_shared::Report) -> Result<(Vec<u8>, &'static str, String)> {
    let json = serde_json::to_vec(report)?;
    let (name, value) = signature(&report.agent.id, &json);
    Ok((vigil_shared::codec::gzip(&json)?, name, value))
}

/// Pushes `report` (gzip) signed as its `agent.id` would sign it (key from [`agent_key`]),
/// registering that key with the collector first (trust on first use; the same key again
/// changes nothing). `url` is the collector's `/api/v1/reports` address.
pub async fn signed_push(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    report: &vigil_shared::Report,
) -> Result<reqwest::Response> {
    let base = url.trim_end_matches("/api/v1/reports");
    let key = vigil_shared::signing::public_key_hex(&agent_key(&report.agent.id).verifying_key());
    let registered = client
        .put(format!("{base}/api/v1/agent/key"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "public_key": key }))
        .send()
        .await?;
    anyhow::ensure!(
        registered.status() == 200,
        "key registration: {}",
        registered.text().await.unwrap_or_default()
    );
    let (body, name, value) = signed_body(report)?;
    Ok(client
        .post(url)
        .bearer_auth(token)
        .header("content-encoding", "gzip")
        .header("content-type", "application/json")
        .header(name, value)
        .body(body)
        .send()
        .await?)
}

/// A blocking HTTP client for loopback tests.
pub fn http() -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_else(|_| reqwest::blocking::Client::new())
}

/// An agent configuration for `vigil-agent run` against a collector.
pub struct AgentSetup {
    pub dir: tempfile::TempDir,
}

impl AgentSetup {
    /// Writes `agent.toml` and the token file for agent `id` auditing `root`.
    pub fn new(id: &str, token: &str, collector_url: &str, root: &Path) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let token_file = dir.path().join("agent.token");
        std::fs::write(&token_file, format!("{token}\n"))?;
        let config = format!(
            "[agent]\nid = \"{id}\"\nroot = \"{}\"\nstate_dir = \"{}\"\n\n\
             [agent.labels]\nenv = \"test\"\n\n\
             [collector]\nurl = \"{collector_url}\"\ntoken_file = \"{}\"\ntimeout_secs = 10\nmax_backoff_secs = 1\n",
            root.display(),
            dir.path().join("state").display(),
            token_file.display()
        );
        std::fs::write(dir.path().join("agent.toml"), config)?;
        Ok(AgentSetup { dir })
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("agent.toml")
    }

    pub fn spool_dir(&self) -> PathBuf {
        self.dir.path().join("state/spool")
    }

    /// Reports waiting in the spool.
    pub fn spooled(&self) -> usize {
        std::fs::read_dir(self.spool_dir())
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".vgs"))
                    .count()
            })
            .unwrap_or(0)
    }

    /// `vigil-agent run --once`; returns the process output (exit code 3 = undelivered).
    pub fn run_once(&self) -> Result<Output> {
        Command::new(bin("vigil-agent"))
            .args(["run", "--once", "--config"])
            .arg(self.config_path())
            .output()
            .context("cannot run vigil-agent")
    }

    /// `vigil-agent run` in the background.
    pub fn spawn(&self) -> Result<Child> {
        let log = std::fs::File::create(self.dir.path().join("agent.log"))?;
        Ok(Command::new(bin("vigil-agent"))
            .args(["run", "--config"])
            .arg(self.config_path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }
}

/// Polls `condition` every 50 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    condition()
}
