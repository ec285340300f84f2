//! The `[[webhooks]]` and `[webhook_options]` settings: strict serde types (every field's doc
//! comment is its reference documentation) and their validation into a ready [`Webhook`].

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::event::{EventKind, Severity};
use super::filter::Filter;
use crate::isms::selector::Selector;

/// One webhook receiver.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Unique name (letters, digits, `-`, `_`); deliveries are kept per name in the outbox.
    pub name: String,
    /// `http://` or `https://` URL the events are POSTed to.
    pub url: String,
    /// Body format: `json` (the documented generic event, `collector/webhook-event.schema.json`),
    /// `slack` (incoming webhook), `teams` (MessageCard) or `alertmanager` (`/api/v2/alerts`).
    #[serde(default)]
    pub format: Format,
    /// HMAC-SHA256 key signing every delivery. Set this or `secret_file`, not both.
    #[serde(default)]
    pub secret: Option<String>,
    /// Absolute path of a file holding the key (surrounding whitespace ignored); keep it 0600
    /// and readable by the collector's user.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// Longest time one delivery attempt may take, in seconds.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// First retry delay after a failed attempt, in milliseconds; doubled after every further
    /// failure (with jitter) up to `retry_max_ms`.
    #[serde(default = "default_retry_initial_ms")]
    pub retry_initial_ms: u64,
    /// Longest delay between two attempts, in milliseconds.
    #[serde(default = "default_retry_max_ms")]
    pub retry_max_ms: u64,
    /// A delivery still failing this long (seconds) after its event was queued is given up and
    /// recorded as failed.
    #[serde(default = "default_max_age_secs")]
    pub max_age_secs: u64,
    /// Event kinds sent (`nonconformity.opened`, `nonconformity.escalated`,
    /// `nonconformity.resolved`, `nonconformity.closed`, `kpi.breached`, `host.stale`,
    /// `evidence.gap`); all when empty.
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Lowest severity sent: `info`, `warning` or `critical`.
    #[serde(default)]
    pub min_severity: Option<String>,
    /// Only events about one of these controls (`A.8.8`) or themes (`A.8`); all when empty.
    #[serde(default)]
    pub controls: Vec<String>,
    /// Only events about a host matching one of these label selectors (`{ env = "prod" }`,
    /// `*` wildcards, built-in labels `hostname`, `machine_id`, `agent`, `os`, `os_version`).
    /// Events about no host (KPI breaches, audit findings) are not sent when this is set.
    #[serde(default)]
    pub hosts: Vec<std::collections::BTreeMap<String, String>>,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("name", &self.name)
            .field("url", &redact_url(&self.url))
            .field("format", &self.format)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("secret_file", &self.secret_file)
            .field("kinds", &self.kinds)
            .field("min_severity", &self.min_severity)
            .field("controls", &self.controls)
            .field("hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

/// Scheme, host and port only: Slack and Teams URLs carry their credential in the path.
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}{}/…",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "<unparsable url>".into(),
    }
}

/// What the event producer and the delivery loop share.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookOptions {
    /// How often the outbox looks for new events and due deliveries, in milliseconds (it also
    /// wakes after every evaluation).
    #[serde(default = "default_poll_ms")]
    pub poll_ms: u64,
    /// A host that sent no report for this many seconds raises `host.stale`; when unset, the
    /// ISMS `policy.stale_after` (24 hours without an ISMS).
    #[serde(default)]
    pub host_stale_after_secs: Option<u64>,
}

impl Default for WebhookOptions {
    fn default() -> Self {
        WebhookOptions {
            poll_ms: default_poll_ms(),
            host_stale_after_secs: None,
        }
    }
}

fn default_poll_ms() -> u64 {
    5000
}
fn default_timeout_secs() -> u64 {
    10
}
fn default_retry_initial_ms() -> u64 {
    1000
}
fn default_retry_max_ms() -> u64 {
    600_000
}
fn default_max_age_secs() -> u64 {
    86_400
}

/// Body formats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    #[default]
    Json,
    Slack,
    Teams,
    Alertmanager,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Slack => "slack",
            Format::Teams => "teams",
            Format::Alertmanager => "alertmanager",
        }
    }
}

/// The HMAC key; never printed.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Secret {
        Secret(bytes.into())
    }
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A validated webhook, secret loaded. `Debug` shows neither the secret nor the URL's path.
#[derive(Clone)]
pub struct Webhook {
    pub name: String,
    pub url: reqwest::Url,
    pub format: Format,
    pub secret: Secret,
    pub timeout: Duration,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    pub max_age: Duration,
    pub filter: Filter,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("name", &self.name)
            .field("url", &redact_url(self.url.as_str()))
            .field("format", &self.format)
            .field("secret", &self.secret)
            .field("filter", &self.filter)
            .finish_non_exhaustive()
    }
}

/// Checks every webhook (names unique, URL, secret, filters, times) and loads the secrets;
/// the error names the webhook and the key.
pub fn validate(configs: &[WebhookConfig]) -> Result<Vec<Webhook>, String> {
    let mut out: Vec<Webhook> = Vec::with_capacity(configs.len());
    for (i, c) in configs.iter().enumerate() {
        let at = if c.name.is_empty() {
            format!("webhooks[{i}]")
        } else {
            format!("webhooks[{i}] ({:?})", c.name)
        };
        if c.name.is_empty()
            || !c
                .name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
        {
            return Err(format!(
                "{at}.name must be non-empty letters, digits, '-' or '_'"
            ));
        }
        if out.iter().any(|w| w.name == c.name) {
            return Err(format!("{at}.name is used by another webhook"));
        }
        let url = reqwest::Url::parse(&c.url).map_err(|e| format!("{at}.url is not a URL: {e}"))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(format!("{at}.url must be http:// or https://"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("{at}.url has no host"));
        }
        let secret = match (&c.secret, &c.secret_file) {
            (Some(_), Some(_)) => {
                return Err(format!("{at}: set secret or secret_file, not both"));
            }
            (None, None) => {
                return Err(format!(
                    "{at}: a secret (or secret_file) is required: every delivery is signed"
                ));
            }
            (Some(s), None) => s.trim().as_bytes().to_vec(),
            (None, Some(path)) => {
                if !path.is_absolute() {
                    return Err(format!("{at}.secret_file must be an absolute path"));
                }
                let text = std::fs::read_to_string(path).map_err(|e| {
                    format!("{at}.secret_file {} cannot be read: {e}", path.display())
                })?;
                text.trim().as_bytes().to_vec()
            }
        };
        if secret.len() < 16 {
            return Err(format!("{at}: the secret must be at least 16 bytes"));
        }
        for (key, value, min, max) in [
            ("timeout_secs", c.timeout_secs, 1, 300),
            ("retry_initial_ms", c.retry_initial_ms, 10, 3_600_000),
            ("retry_max_ms", c.retry_max_ms, 10, 86_400_000),
            ("max_age_secs", c.max_age_secs, 1, 90 * 86_400),
        ] {
            if value < min || value > max {
                return Err(format!("{at}.{key} must be between {min} and {max}"));
            }
        }
        if c.retry_max_ms < c.retry_initial_ms {
            return Err(format!(
                "{at}.retry_max_ms must be at least retry_initial_ms"
            ));
        }
        let mut kinds = Vec::new();
        for k in &c.kinds {
            let kind = EventKind::parse(k).ok_or_else(|| {
                format!(
                    "{at}.kinds: unknown event kind {k:?} (known: {})",
                    EventKind::ALL
                        .iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
            kinds.push(kind);
        }
        let min_severity = match &c.min_severity {
            None => None,
            Some(s) => Some(Severity::parse(s).ok_or_else(|| {
                format!("{at}.min_severity must be info, warning or critical, not {s:?}")
            })?),
        };
        for control in &c.controls {
            let ok = control.starts_with("A.")
                && control[2..]
                    .split('.')
                    .all(|p| !p.is_empty() && p.chars().all(|ch| ch.is_ascii_digit()));
            if !ok {
                return Err(format!(
                    "{at}.controls: {control:?} is not an Annex A control or theme (A.8.8, A.8)"
                ));
            }
        }
        for (j, selector) in c.hosts.iter().enumerate() {
            if selector.is_empty() {
                return Err(format!(
                    "{at}.hosts[{j}] is empty: it would match every host"
                ));
            }
        }
        out.push(Webhook {
            name: c.name.clone(),
            url,
            format: c.format,
            secret: Secret::new(secret),
            timeout: Duration::from_secs(c.timeout_secs),
            retry_initial: Duration::from_millis(c.retry_initial_ms),
            retry_max: Duration::from_millis(c.retry_max_ms),
            max_age: Duration::from_secs(c.max_age_secs),
            filter: Filter {
                kinds,
                min_severity,
                controls: c.controls.clone(),
                hosts: c.hosts.iter().map(|s| Selector(s.clone())).collect(),
            },
        });
    }
    Ok(out)
}

/// Checks `[webhook_options]`.
pub fn validate_options(options: &WebhookOptions) -> Result<(), String> {
    if options.poll_ms < 10 || options.poll_ms > 3_600_000 {
        return Err("webhook_options.poll_ms must be between 10 and 3600000".into());
    }
    if options.host_stale_after_secs == Some(0) {
        return Err("webhook_options.host_stale_after_secs must be at least 1".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Webhook>, String> {
        #[derive(Deserialize)]
        struct File {
            webhooks: Vec<WebhookConfig>,
        }
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        validate(&file.webhooks)
    }

    #[test]
    fn a_full_webhook_is_read() {
        let hooks = parse(
            r#"
[[webhooks]]
name = "soc"
url = "https://hooks.example.org/vigil"
format = "alertmanager"
secret = "0123456789abcdef0123"
timeout_secs = 5
kinds = ["nonconformity.opened", "host.stale"]
min_severity = "warning"
controls = ["A.8.8", "A.5"]
hosts = [{ env = "prod" }]
"#,
        )
        .unwrap();
        let w = &hooks[0];
        assert_eq!(w.format, Format::Alertmanager);
        assert_eq!(w.timeout, Duration::from_secs(5));
        assert_eq!(w.filter.kinds.len(), 2);
        assert_eq!(w.filter.min_severity, Some(Severity::Warning));
        assert!(!format!("{w:?}").contains("0123456789abcdef"));
        assert!(!format!("{w:?}").contains("/vigil"), "{w:?}");
    }

    #[test]
    fn mistakes_are_refused_with_the_key_named() {
        let base = "name = \"a\"\nurl = \"http://127.0.0.1:9/x\"\nsecret = \"0123456789abcdef\"\n";
        for (extra, expected) in [
            ("format = \"xml\"\n", "unknown variant"),
            ("kinds = [\"nc.opened\"]\n", "unknown event kind"),
            ("min_severity = \"high\"\n", "min_severity"),
            ("controls = [\"8.8\"]\n", "controls"),
            ("hosts = [{}]\n", "hosts[0] is empty"),
            ("timeout_secs = 0\n", "timeout_secs"),
            (
                "retry_max_ms = 20\nretry_initial_ms = 100\n",
                "retry_max_ms",
            ),
            ("colour = 1\n", "unknown field"),
            ("secret_file = \"x\"\n", "not both"),
        ] {
            let err = parse(&format!("[[webhooks]]\n{base}{extra}")).unwrap_err();
            assert!(err.contains(expected), "{extra}: {err}");
        }
        let err = parse(
            "[[webhooks]]\nname = \"a\"\nurl = \"ftp://x/\"\nsecret = \"0123456789abcdef\"\n",
        )
        .unwrap_err();
        assert!(err.contains("http"), "{err}");
        let err = parse("[[webhooks]]\nname = \"a\"\nurl = \"http://x/\"\nsecret = \"short\"\n")
            .unwrap_err();
        assert!(err.contains("16 bytes"), "{err}");
        let err = parse("[[webhooks]]\nname = \"a\"\nurl = \"http://x/\"\n").unwrap_err();
        assert!(err.contains("secret"), "{err}");
        let err = parse(&format!("[[webhooks]]\n{base}[[webhooks]]\n{base}")).unwrap_err();
        assert!(err.contains("another webhook"), "{err}");
    }

    #[test]
    fn the_secret_file_is_read_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key"), "  0123456789abcdef-file\n").unwrap();
        #[derive(Deserialize)]
        struct File {
            webhooks: Vec<WebhookConfig>,
        }
        let file: File = toml::from_str(&format!(
            "[[webhooks]]\nname = \"a\"\nurl = \"http://x/\"\nsecret_file = \"{}\"\n",
            dir.path().join("key").display()
        ))
        .unwrap();
        let hooks = validate(&file.webhooks).unwrap();
        let relative: File = toml::from_str(
            "[[webhooks]]\nname = \"a\"\nurl = \"http://x/\"\nsecret_file = \"key\"\n",
        )
        .unwrap();
        assert!(
            validate(&relative.webhooks)
                .unwrap_err()
                .contains("absolute")
        );
        assert_eq!(hooks[0].secret.expose(), b"0123456789abcdef-file");
    }

    #[test]
    fn debug_output_hides_the_secret_and_the_url_path() {
        let c = WebhookConfig {
            name: "slack".into(),
            url: "https://hooks.slack.com/services/T000/B000/XXXXSECRET".into(),
            format: Format::Slack,
            secret: Some("supersecretvalue1234".into()),
            secret_file: None,
            timeout_secs: 10,
            retry_initial_ms: 1000,
            retry_max_ms: 10000,
            max_age_secs: 100,
            kinds: vec![],
            min_severity: None,
            controls: vec![],
            hosts: vec![],
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("supersecret"), "{shown}");
        assert!(!shown.contains("XXXXSECRET"), "{shown}");
        assert!(shown.contains("hooks.slack.com"), "{shown}");
    }
}
