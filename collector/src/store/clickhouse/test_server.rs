//! A private ClickHouse server for tests: its own configuration and data directory under a
//! temporary directory, free loopback ports, stopped (and the directory removed) when dropped.
//!
//! Used by this crate's tests and by the end-to-end tests in `tests/`. The server binary is
//! Debian's `clickhouse-server` (18.16 is what CI installs). When it is missing,
//! [`TestServer::start_or_skip`] returns `None` so that local runs skip with a message —
//! unless `VIGIL_CLICKHOUSE_REQUIRED=1` (exported by `tests/run`), which makes absence a failure.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian installs the server configuration that is copied and adapted.
const SYSTEM_CONFIG: &str = "/etc/clickhouse-server/config.xml";
const SYSTEM_USERS: &str = "/etc/clickhouse-server/users.xml";

#[derive(Debug, thiserror::Error)]
pub enum TestServerError {
    #[error("clickhouse-server not found (install Debian's clickhouse-server)")]
    Missing,
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("clickhouse-server did not answer /ping within {0:?}; log: {1}")]
    NotReady(Duration, String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> TestServerError {
    let what = what.into();
    move |source| TestServerError::Io { what, source }
}

/// A running (or stopped, see [`TestServer::stop`]) private server.
#[derive(Debug)]
pub struct TestServer {
    dir: PathBuf,
    binary: PathBuf,
    http_port: u16,
    tcp_port: u16,
    child: Option<Child>,
}

/// The server binary: `VIGIL_CLICKHOUSE_SERVER`, then `clickhouse-server` on the `PATH`, then
/// `/usr/sbin/clickhouse-server`.
pub fn server_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("VIGIL_CLICKHOUSE_SERVER") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("clickhouse-server"))
        .find(|candidate| candidate.is_file())
}

/// True when `VIGIL_CLICKHOUSE_REQUIRED=1`: a missing server is then a test failure.
pub fn required() -> bool {
    std::env::var("VIGIL_CLICKHOUSE_REQUIRED").is_ok_and(|v| v == "1")
}

fn free_port() -> Result<u16, TestServerError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io("bind a free port"))?;
    Ok(listener
        .local_addr()
        .map_err(io("read a free port"))?
        .port())
}

fn unique_dir() -> Result<PathBuf, TestServerError> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "vigil-clickhouse-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).map_err(io(format!("create {}", dir.display())))?;
    Ok(dir)
}

/// The system configuration with every port and path moved into `dir`.
fn private_config(system: &str, dir: &Path, http: u16, tcp: u16, interserver: u16) -> String {
    let d = dir.display();
    system
        .replace(
            "/var/log/clickhouse-server/clickhouse-server.log",
            &format!("{d}/log/server.log"),
        )
        .replace(
            "/var/log/clickhouse-server/clickhouse-server.err.log",
            &format!("{d}/log/server.err.log"),
        )
        .replace("<level>trace</level>", "<level>warning</level>")
        .replace(
            "<http_port>8123</http_port>",
            &format!("<http_port>{http}</http_port>"),
        )
        .replace(
            "<tcp_port>9000</tcp_port>",
            &format!("<tcp_port>{tcp}</tcp_port>"),
        )
        .replace(
            "<interserver_http_port>9009</interserver_http_port>",
            &format!("<interserver_http_port>{interserver}</interserver_http_port>"),
        )
        .replace(
            "<path>/var/lib/clickhouse/</path>",
            &format!("<path>{d}/data/</path>"),
        )
        .replace(
            "<tmp_path>/var/lib/clickhouse/tmp/</tmp_path>",
            &format!("<tmp_path>{d}/tmp/</tmp_path>"),
        )
        .replace(
            "<user_files_path>/var/lib/clickhouse/user_files/</user_files_path>",
            &format!("<user_files_path>{d}/user_files/</user_files_path>"),
        )
        .replace(
            "<format_schema_path>/var/lib/clickhouse/format_schemas/</format_schema_path>",
            &format!("<format_schema_path>{d}/format_schemas/</format_schema_path>"),
        )
}

impl TestServer {
    /// Starts a private server; `None` (with a message on stderr) when the binary is missing
    /// and `VIGIL_CLICKHOUSE_REQUIRED` is not set.
    ///
    /// # Panics
    /// When the server cannot start, or is missing while required — this is for tests.
    #[allow(clippy::panic)]
    pub fn start_or_skip(test: &str) -> Option<TestServer> {
        match TestServer::start() {
            Ok(server) => Some(server),
            Err(TestServerError::Missing) if !required() => {
                eprintln!(
                    "{test}: skipped, clickhouse-server is not installed (tests/run installs it \
                     and sets VIGIL_CLICKHOUSE_REQUIRED=1)"
                );
                None
            }
            Err(e) => panic!("{test}: cannot start ClickHouse: {e}"),
        }
    }

    /// Starts a private server and waits until it answers.
    pub fn start() -> Result<TestServer, TestServerError> {
        TestServer::start_in_cluster(None)
    }

    /// Like [`TestServer::start`], with a cluster definition `(name, peer TCP ports)` in its
    /// `remote_servers`: one shard per server, this server's own first, all on 127.0.0.1.
    pub fn start_in_cluster(
        cluster: Option<(&str, &[u16])>,
    ) -> Result<TestServer, TestServerError> {
        let binary = server_binary().ok_or(TestServerError::Missing)?;
        let system =
            std::fs::read_to_string(SYSTEM_CONFIG).map_err(|_| TestServerError::Missing)?;
        let users = std::fs::read_to_string(SYSTEM_USERS).map_err(|_| TestServerError::Missing)?;
        let dir = unique_dir()?;
        for sub in ["log", "data", "tmp", "user_files", "format_schemas"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(io("create server directories"))?;
        }
        let (http_port, tcp_port, interserver) = (free_port()?, free_port()?, free_port()?);
        let mut config = private_config(&system, &dir, http_port, tcp_port, interserver);
        if let Some((name, peers)) = cluster {
            let shards: String = std::iter::once(tcp_port)
                .chain(peers.iter().copied())
                .map(|port| {
                    format!(
                        "<shard><replica><host>127.0.0.1</host><port>{port}</port></replica></shard>"
                    )
                })
                .collect();
            config = config.replacen(
                "<remote_servers incl=\"clickhouse_remote_servers\" >",
                &format!(
                    "<remote_servers incl=\"clickhouse_remote_servers\" ><{name}>{shards}</{name}>"
                ),
                1,
            );
        }
        std::fs::write(dir.join("config.xml"), config).map_err(io("write config.xml"))?;
        std::fs::write(dir.join("users.xml"), users).map_err(io("write users.xml"))?;
        let mut server = TestServer {
            dir,
            binary,
            http_port,
            tcp_port,
            child: None,
        };
        server.resume()?;
        Ok(server)
    }

    /// Starts the server again after [`TestServer::stop`], on the same ports and data.
    pub fn resume(&mut self) -> Result<(), TestServerError> {
        if self.child.is_some() {
            return Ok(());
        }
        let log = std::fs::File::create(self.dir.join("log/stdout.log"))
            .map_err(io("create the server's stdout log"))?;
        let log2 = log.try_clone().map_err(io("clone a log handle"))?;
        let child = Command::new(&self.binary)
            .arg(format!(
                "--config-file={}",
                self.dir.join("config.xml").display()
            ))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(io(format!("start {}", self.binary.display())))?;
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(60))
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<(), TestServerError> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if self.ping() {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(_)) = child.try_wait()
            {
                self.child = None;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(TestServerError::NotReady(limit, self.log_tail()))
    }

    /// True when `GET /ping` answers `Ok.`.
    pub fn ping(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.http_port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let request = "GET /ping HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer.starts_with("HTTP/1.") && answer.contains(" 200 ") && answer.ends_with("Ok.\n")
    }

    fn log_tail(&self) -> String {
        let mut out = String::new();
        for name in ["log/stdout.log", "log/server.err.log"] {
            if let Ok(text) = std::fs::read_to_string(self.dir.join(name)) {
                let start = text.len().saturating_sub(2000);
                out.push_str(text.get(start..).unwrap_or(""));
            }
        }
        out
    }

    /// Stops the server (SIGTERM, then SIGKILL after 30 s); the data stays for [`resume`].
    ///
    /// [`resume`]: TestServer::resume
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(pid) = i32::try_from(child.id()) {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// `http://127.0.0.1:PORT`, for the `clickhouse` crate and HTTP clients.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    /// The native protocol port, for `clickhouse-client --port`.
    pub fn tcp_port(&self) -> u16 {
        self.tcp_port
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
