//! The collector's configuration file (`/etc/vigil/collector.toml`), strict: unknown keys are
//! errors, and [`CollectorConfig::check`] refuses values that would only fail later.
//!
//! Every field's doc comment is its reference documentation. Environment overrides use the
//! prefix [`ENV_PREFIX`] and `__` between levels: `VIGIL_COLLECTOR_SERVER__LISTEN=0.0.0.0:8470`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use vigil_shared::codec::{DEFAULT_MAX_COMPRESSED_BYTES, DEFAULT_MAX_DECOMPRESSED_BYTES};
use vigil_shared::config::ConfigError;

/// Prefix of environment overrides: `VIGIL_COLLECTOR_STORAGE__DATA_DIR=…`.
pub const ENV_PREFIX: &str = "VIGIL_COLLECTOR";

/// The whole collector configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectorConfig {
    /// The HTTP(S) listener that agents push to and people read from.
    #[serde(default)]
    pub server: ServerSection,
    /// Where evidence is kept.
    #[serde(default)]
    pub storage: StorageSection,
    /// The ISMS definition the collector evaluates evidence against.
    #[serde(default)]
    pub isms: IsmsSection,
    /// Alert webhooks (`[[webhooks]]`, see `collector/WEBHOOKS.md`).
    #[serde(default)]
    pub webhooks: Vec<crate::webhooks::WebhookConfig>,
    /// What all webhooks share.
    #[serde(default)]
    pub webhook_options: crate::webhooks::WebhookOptions,
}

/// The ISMS as code.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IsmsSection {
    /// Directory of the ISMS definition (isms.toml, controls.toml, rules/, kpis.toml, …; the
    /// default pack is `/etc/vigil/isms`, copied from `packaging/isms/`). Without it the
    /// collector only stores evidence: no verdicts, KPIs or nonconformities.
    #[serde(default)]
    pub dir: Option<PathBuf>,
}

/// The HTTP(S) listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Address and port to listen on. Loopback by default: set `0.0.0.0:8470` (with TLS) to
    /// accept agents from the network.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// PEM file with the server certificate chain (leaf first). When `tls_cert` and `tls_key`
    /// are both set the collector serves HTTPS only; set both or neither.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// PEM file with the private key of `tls_cert` (PKCS#8, PKCS#1 or SEC1). Keep it 0600.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// PEM bundle of the CAs that sign agent certificates. When set (with TLS), every client
    /// must present a certificate chaining to one of them (mutual TLS), in addition to its
    /// bearer token; readers of the API need one too.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// Largest request body accepted on the wire (compressed), in bytes; larger → 413.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Largest report once decompressed, in bytes; larger → 413. This is what bounds a
    /// "zip bomb": a tiny gzip body that would expand to gigabytes.
    #[serde(default = "default_max_decompressed_bytes")]
    pub max_decompressed_bytes: usize,
    /// Longest time one request may take from its headers to its response, in seconds,
    /// including reading the body and waiting for the store; past it the client gets 408 (body
    /// still arriving) or 503 (store busy) and retries.
    #[serde(default = "default_request_timeout_secs")]
    pub request_timeout_secs: u64,
    /// Longest time a client may take to send the request line and headers, in seconds; a
    /// connection that stays silent longer is closed (slow-loris protection).
    #[serde(default = "default_header_read_timeout_secs")]
    pub header_read_timeout_secs: u64,
    /// Longest TLS handshake, in seconds.
    #[serde(default = "default_tls_handshake_timeout_secs")]
    pub tls_handshake_timeout_secs: u64,
    /// On SIGTERM/SIGINT: how long requests already in flight may take to finish, in seconds,
    /// before their connections are closed. New connections are refused at once.
    #[serde(default = "default_shutdown_grace_secs")]
    pub shutdown_grace_secs: u64,
    /// Request rate limits (token buckets); over them the answer is 429 with `Retry-After`.
    #[serde(default)]
    pub rate_limit: RateLimitSection,
}

/// `[server.rate_limit]`: token buckets per source address and per principal. A rate of 0
/// turns that limit off.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSection {
    /// Sustained requests per second from one source address (all tokens together, and
    /// requests without one). Agents behind one NAT share it: size it for the fleet there.
    #[serde(default = "default_per_address_per_sec")]
    pub per_address_per_sec: f64,
    /// Requests one source address may send in a burst above the sustained rate.
    #[serde(default = "default_per_address_burst")]
    pub per_address_burst: u32,
    /// Sustained requests per second with one token (one agent, one dashboard, one auditor).
    #[serde(default = "default_per_principal_per_sec")]
    pub per_principal_per_sec: f64,
    /// Requests one token may send in a burst (an agent emptying its spool, a dashboard
    /// loading its panels).
    #[serde(default = "default_per_principal_burst")]
    pub per_principal_burst: u32,
}

impl Default for RateLimitSection {
    fn default() -> Self {
        RateLimitSection {
            per_address_per_sec: default_per_address_per_sec(),
            per_address_burst: default_per_address_burst(),
            per_principal_per_sec: default_per_principal_per_sec(),
            per_principal_burst: default_per_principal_burst(),
        }
    }
}

fn default_per_address_per_sec() -> f64 {
    100.0
}

fn default_per_address_burst() -> u32 {
    1000
}

fn default_per_principal_per_sec() -> f64 {
    10.0
}

fn default_per_principal_burst() -> u32 {
    100
}

impl RateLimitSection {
    pub fn per_address(&self) -> crate::http::rate::Rate {
        crate::http::rate::Rate {
            per_second: self.per_address_per_sec,
            burst: self.per_address_burst,
        }
    }

    pub fn per_principal(&self) -> crate::http::rate::Rate {
        crate::http::rate::Rate {
            per_second: self.per_principal_per_sec,
            burst: self.per_principal_burst,
        }
    }
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            listen: default_listen(),
            tls_cert: None,
            tls_key: None,
            client_ca: None,
            max_body_bytes: default_max_body_bytes(),
            max_decompressed_bytes: default_max_decompressed_bytes(),
            request_timeout_secs: default_request_timeout_secs(),
            header_read_timeout_secs: default_header_read_timeout_secs(),
            tls_handshake_timeout_secs: default_tls_handshake_timeout_secs(),
            shutdown_grace_secs: default_shutdown_grace_secs(),
            rate_limit: RateLimitSection::default(),
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8470))
}

fn default_max_body_bytes() -> usize {
    DEFAULT_MAX_COMPRESSED_BYTES
}

fn default_max_decompressed_bytes() -> usize {
    DEFAULT_MAX_DECOMPRESSED_BYTES
}

fn default_request_timeout_secs() -> u64 {
    30
}

fn default_header_read_timeout_secs() -> u64 {
    10
}

fn default_tls_handshake_timeout_secs() -> u64 {
    10
}

fn default_shutdown_grace_secs() -> u64 {
    30
}

impl ServerSection {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_secs)
    }

    pub fn tls_handshake_timeout(&self) -> Duration {
        Duration::from_secs(self.tls_handshake_timeout_secs)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }

    /// The certificate and key paths when TLS is configured.
    pub fn tls(&self) -> Option<(&Path, &Path)> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            _ => None,
        }
    }
}

/// Which storage engine holds the evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    /// Embedded SQLite database under `data_dir` (WAL, fsync on every commit). Right for fleets
    /// up to a few thousand hosts.
    #[default]
    Sqlite,
    /// A ClickHouse server (`[storage.clickhouse]`), for large fleets: evidence, principals,
    /// enrollment and the ISMS state all live there (see collector/README.md).
    Clickhouse,
}

/// `[storage.clickhouse]`: one struct for the settings and the store (defined with the store,
/// `Debug` hides the password).
pub use crate::store::clickhouse::ClickHouseConfig;

/// Where evidence is kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    /// The storage engine: `sqlite` or `clickhouse`.
    #[serde(default)]
    pub backend: StorageBackend,
    /// Used when `backend = "clickhouse"`.
    #[serde(default)]
    pub clickhouse: ClickHouseConfig,
    /// Directory of the collector's durable state (the SQLite database and its WAL). Created
    /// 0700 if missing; it holds token hashes and evidence, so keep it private.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
}

impl Default for StorageSection {
    fn default() -> Self {
        StorageSection {
            backend: StorageBackend::default(),
            clickhouse: ClickHouseConfig::default(),
            data_dir: default_data_dir(),
        }
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("/var/lib/vigil-collector")
}

/// A configuration that parsed but cannot work.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(transparent)]
    Load(#[from] ConfigError),
    #[error("config file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl CollectorConfig {
    /// Loads `path` with overrides from `env` (see [`ENV_PREFIX`]) and checks the values.
    pub fn load(path: &Path, env: &HashMap<String, String>) -> Result<Self, SettingsError> {
        let config: CollectorConfig = vigil_shared::config::load(path, ENV_PREFIX, env)?;
        config.check().map_err(|message| SettingsError::Invalid {
            path: path.to_path_buf(),
            message,
        })?;
        Ok(config)
    }

    /// Refuses values that parse but would only fail at run time; names the key.
    pub fn check(&self) -> Result<(), String> {
        self.storage.clickhouse.check()?;
        let server = &self.server;
        match (&server.tls_cert, &server.tls_key) {
            (Some(_), None) => {
                return Err(
                    "server.tls_cert is set but server.tls_key is not; set both or neither".into(),
                );
            }
            (None, Some(_)) => {
                return Err(
                    "server.tls_key is set but server.tls_cert is not; set both or neither".into(),
                );
            }
            _ => {}
        }
        if server.client_ca.is_some() && server.tls().is_none() {
            return Err(
                "server.client_ca needs server.tls_cert and server.tls_key: mutual TLS is TLS"
                    .into(),
            );
        }
        if server.max_body_bytes == 0 {
            return Err("server.max_body_bytes must be greater than 0".into());
        }
        if server.max_decompressed_bytes < server.max_body_bytes {
            return Err(format!(
                "server.max_decompressed_bytes ({}) must be at least server.max_body_bytes ({}): \
                 an uncompressed body as large as the wire limit must still fit",
                server.max_decompressed_bytes, server.max_body_bytes
            ));
        }
        let rate = &server.rate_limit;
        for (key, per_sec, burst) in [
            (
                "server.rate_limit.per_address",
                rate.per_address_per_sec,
                rate.per_address_burst,
            ),
            (
                "server.rate_limit.per_principal",
                rate.per_principal_per_sec,
                rate.per_principal_burst,
            ),
        ] {
            if !per_sec.is_finite() || per_sec < 0.0 {
                return Err(format!(
                    "{key}_per_sec must be 0 (no limit) or a positive number"
                ));
            }
            if per_sec > 0.0 && burst == 0 {
                return Err(format!(
                    "{key}_burst must be at least 1 when {key}_per_sec is set"
                ));
            }
        }
        for (key, value) in [
            ("server.request_timeout_secs", server.request_timeout_secs),
            (
                "server.header_read_timeout_secs",
                server.header_read_timeout_secs,
            ),
            (
                "server.tls_handshake_timeout_secs",
                server.tls_handshake_timeout_secs,
            ),
        ] {
            if value == 0 {
                return Err(format!("{key} must be at least 1"));
            }
            if value > 3600 {
                return Err(format!("{key} must be at most 3600 seconds"));
            }
        }
        if server.shutdown_grace_secs > 3600 {
            return Err("server.shutdown_grace_secs must be at most 3600 seconds".into());
        }
        if self.storage.data_dir.as_os_str().is_empty() {
            return Err("storage.data_dir must not be empty".into());
        }
        crate::webhooks::config::validate_options(&self.webhook_options)?;
        crate::webhooks::config::validate(&self.webhooks)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    #[test]
    fn an_empty_file_gives_the_documented_defaults() {
        let file = write("");
        let config = CollectorConfig::load(file.path(), &HashMap::new()).unwrap();
        assert_eq!(config.server.listen, "127.0.0.1:8470".parse().unwrap());
        assert_eq!(config.server.max_body_bytes, 8 * 1024 * 1024);
        assert_eq!(config.server.max_decompressed_bytes, 64 * 1024 * 1024);
        assert_eq!(config.server.tls(), None);
        assert_eq!(config.storage.backend, StorageBackend::Sqlite);
        assert_eq!(
            config.storage.data_dir,
            PathBuf::from("/var/lib/vigil-collector")
        );
    }

    #[test]
    fn the_example_file_loads_and_shows_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/collector.toml");
        let example = CollectorConfig::load(&path, &HashMap::new()).unwrap();
        let defaults = CollectorConfig::default();
        assert_eq!(format!("{example:?}"), format!("{defaults:?}"));
    }

    #[test]
    fn a_full_file_is_read() {
        let file = write(
            "[server]\nlisten = \"0.0.0.0:9000\"\ntls_cert = \"/etc/vigil/c.pem\"\n\
             tls_key = \"/etc/vigil/k.pem\"\nmax_body_bytes = 1000\nmax_decompressed_bytes = 5000\n\
             request_timeout_secs = 5\nshutdown_grace_secs = 0\n\
             [storage]\nbackend = \"sqlite\"\ndata_dir = \"/srv/vigil\"\n",
        );
        let config = CollectorConfig::load(file.path(), &HashMap::new()).unwrap();
        assert_eq!(config.server.listen.port(), 9000);
        assert_eq!(
            config.server.tls(),
            Some((Path::new("/etc/vigil/c.pem"), Path::new("/etc/vigil/k.pem")))
        );
        assert_eq!(config.server.max_body_bytes, 1000);
        assert_eq!(config.server.request_timeout(), Duration::from_secs(5));
        assert_eq!(config.storage.data_dir, PathBuf::from("/srv/vigil"));
    }

    #[test]
    fn environment_overrides_nested_keys() {
        let file = write("[server]\nlisten = \"127.0.0.1:1\"\n");
        let env = HashMap::from([
            (
                "VIGIL_COLLECTOR_SERVER__LISTEN".to_string(),
                "10.0.0.1:8470".to_string(),
            ),
            (
                "VIGIL_COLLECTOR_STORAGE__DATA_DIR".to_string(),
                "/tmp/x".to_string(),
            ),
            ("VIGIL_AGENT_AGENT__ID".to_string(), "ignored".to_string()),
        ]);
        let config = CollectorConfig::load(file.path(), &env).unwrap();
        assert_eq!(config.server.listen, "10.0.0.1:8470".parse().unwrap());
        assert_eq!(config.storage.data_dir, PathBuf::from("/tmp/x"));
    }

    #[test]
    fn clickhouse_settings_parse_and_hide_the_password() {
        let file = write(
            "[storage]\nbackend = \"clickhouse\"\n\n[storage.clickhouse]\n\
             url = \"https://ch.example.org:8443\"\ndatabase = \"evidence\"\n\
             user = \"vigil\"\npassword = \"hunter2-secret\"\ncompression = false\n",
        );
        let config = CollectorConfig::load(file.path(), &HashMap::new()).unwrap();
        assert_eq!(config.storage.backend, StorageBackend::Clickhouse);
        let ch = &config.storage.clickhouse;
        assert_eq!(ch.url, "https://ch.example.org:8443");
        assert_eq!(ch.database, "evidence");
        assert_eq!(ch.user, "vigil");
        assert_eq!(ch.password, "hunter2-secret");
        assert!(!ch.compression);
        assert!(!format!("{config:?}").contains("hunter2"));
        // Defaults: local server, lz4 on.
        let file = write("[storage]\nbackend = \"clickhouse\"\n");
        let config = CollectorConfig::load(file.path(), &HashMap::new()).unwrap();
        assert_eq!(config.storage.clickhouse.url, "http://127.0.0.1:8123");
        assert!(config.storage.clickhouse.compression);
        // The ISMS is evaluated on ClickHouse too.
        let file =
            write("[storage]\nbackend = \"clickhouse\"\n\n[isms]\ndir = \"/etc/vigil/isms\"\n");
        CollectorConfig::load(file.path(), &HashMap::new()).unwrap();
        // Unknown keys are refused there too.
        let file = write("[storage.clickhouse]\npasword = \"x\"\n");
        let err = CollectorConfig::load(file.path(), &HashMap::new()).unwrap_err();
        assert!(err.to_string().contains("pasword"), "{err}");
    }

    #[test]
    fn unknown_keys_and_backends_are_refused() {
        let file = write("[server]\nlisten = \"127.0.0.1:1\"\nmax_body = 3\n");
        let err = CollectorConfig::load(file.path(), &HashMap::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `max_body`"), "{err}");
        assert!(err.contains("line 3"), "{err}");

        let file = write("[storage]\nbackend = \"postgres\"\n");
        let err = CollectorConfig::load(file.path(), &HashMap::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("postgres"), "{err}");

        let file = write("");
        let env = HashMap::from([("VIGIL_COLLECTOR_SERVER__LISTN".to_string(), "x".to_string())]);
        let err = CollectorConfig::load(file.path(), &env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("VIGIL_COLLECTOR_SERVER__LISTN"), "{err}");
    }

    #[test]
    fn bad_listen_addresses_are_refused() {
        let file = write("[server]\nlisten = \"localhost\"\n");
        let err = CollectorConfig::load(file.path(), &HashMap::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn values_that_cannot_work_name_their_key() {
        for (text, key) in [
            ("[server]\ntls_cert = \"/c.pem\"\n", "server.tls_key"),
            ("[server]\ntls_key = \"/k.pem\"\n", "server.tls_cert"),
            ("[server]\nmax_body_bytes = 0\n", "server.max_body_bytes"),
            (
                "[server]\nmax_body_bytes = 100\nmax_decompressed_bytes = 99\n",
                "server.max_decompressed_bytes",
            ),
            (
                "[server]\nrequest_timeout_secs = 0\n",
                "server.request_timeout_secs",
            ),
            ("[storage]\ndata_dir = \"\"\n", "storage.data_dir"),
        ] {
            let file = write(text);
            let err = CollectorConfig::load(file.path(), &HashMap::new())
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
    }
}
