//! Strict configuration loading: a TOML file plus environment overrides, through the `config`
//! crate, into a typed struct whose serde attributes refuse unknown keys.
//!
//! Environment overrides use a prefix and `__` between nesting levels:
//! `VIGIL_AGENT_COLLECTOR__URL=https://…` sets `collector.url` for the agent. The environment is
//! passed in as a map so that tests never touch the process environment.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("config from {path} with environment overrides ({vars}): {message}")]
    Env {
        path: PathBuf,
        vars: String,
        message: String,
    },
}

/// Loads `path` (TOML) with `env` overrides for keys under `prefix` (e.g. `VIGIL_AGENT`).
///
/// Problems in the file are reported with the line and column where `toml` locates them; an
/// override that does not fit (unknown key, wrong type) names the variables that were applied.
pub fn load<T: DeserializeOwned>(
    path: &Path,
    prefix: &str,
    env: &HashMap<String, String>,
) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    // Parse the file alone first: its errors carry line and column, which the merged view
    // from the `config` crate has lost.
    if let Err(e) = toml::from_str::<T>(&text) {
        return Err(ConfigError::File {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().replace('\n', " | "),
        });
    }
    let wanted = format!("{prefix}_");
    let overrides: HashMap<String, String> = env
        .iter()
        .filter(|(k, _)| k.starts_with(&wanted))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut vars: Vec<&str> = overrides.keys().map(String::as_str).collect();
    vars.sort_unstable();
    let vars = vars.join(", ");
    let built = config::Config::builder()
        .add_source(config::File::from_str(&text, config::FileFormat::Toml))
        .add_source(
            config::Environment::with_prefix(prefix)
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true)
                .source(Some(overrides.into_iter().collect())),
        )
        .build()
        .map_err(|e| ConfigError::Env {
            path: path.to_path_buf(),
            vars: vars.clone(),
            message: e.to_string(),
        })?;
    built.try_deserialize().map_err(|e| ConfigError::Env {
        path: path.to_path_buf(),
        vars,
        message: e.to_string(),
    })
}

/// The process environment as a map, for the binaries' edges.
pub fn process_env() -> HashMap<String, String> {
    std::env::vars().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Conf {
        name: String,
        server: Server,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Server {
        url: String,
        #[serde(default)]
        timeout_secs: u64,
    }

    fn write(text: &str) -> tempfile_path::TempPath {
        tempfile_path::TempPath::new(text)
    }

    /// A minimal temporary file helper so that this crate needs no dev-dependency.
    mod tempfile_path {
        use std::path::PathBuf;
        use std::sync::atomic::{AtomicU32, Ordering};

        static COUNTER: AtomicU32 = AtomicU32::new(0);

        pub struct TempPath(pub PathBuf);
        impl TempPath {
            pub fn new(text: &str) -> Self {
                let n = COUNTER.fetch_add(1, Ordering::SeqCst);
                let path = std::env::temp_dir()
                    .join(format!("vigil-config-test-{}-{n}.toml", std::process::id()));
                std::fs::write(&path, text).unwrap();
                TempPath(path)
            }
        }
        impl Drop for TempPath {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    #[test]
    fn file_and_environment_merge() {
        let file = write("name = \"a\"\n[server]\nurl = \"http://x\"\n");
        let env = HashMap::from([
            ("VIGIL_T_SERVER__TIMEOUT_SECS".to_string(), "7".to_string()),
            ("OTHER".to_string(), "ignored".to_string()),
        ]);
        let conf: Conf = load(&file.0, "VIGIL_T", &env).unwrap();
        assert_eq!(conf.server.timeout_secs, 7);
        assert_eq!(conf.server.url, "http://x");
    }

    #[test]
    fn unknown_file_keys_name_the_line() {
        let file = write("name = \"a\"\n[server]\nurl = \"http://x\"\nurll = 3\n");
        let err = load::<Conf>(&file.0, "VIGIL_T", &HashMap::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 4"), "{err}");
        assert!(err.contains("unknown field `urll`"), "{err}");
    }

    #[test]
    fn unknown_environment_keys_are_errors() {
        let file = write("name = \"a\"\n[server]\nurl = \"http://x\"\n");
        let env = HashMap::from([("VIGIL_T_SERVER__URLL".to_string(), "y".to_string())]);
        let err = load::<Conf>(&file.0, "VIGIL_T", &env).unwrap_err().to_string();
        assert!(err.contains("VIGIL_T_SERVER__URLL"), "{err}");
        assert!(err.contains("urll"), "{err}");
    }
}
