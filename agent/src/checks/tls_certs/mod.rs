//! TLS certificates (A.8.24): the certificates this host presents or holds — files at the
//! configured paths and those named by nginx, Apache, Postfix, Dovecot and HAProxy
//! configurations — judged for expiry and for cryptographic strength.
//!
//! Decisions worth knowing:
//! - The system CA store (`/etc/ssl/certs`, `/etc/pki/tls/certs/ca-bundle.crt`) is not
//!   scanned by default: it holds other parties' roots, not this host's certificates.
//! - Every certificate of a file is judged for expiry (an expired intermediate breaks the
//!   chain as surely as an expired leaf); the first one is the leaf.
//! - A self-signed leaf is a finding when a server presents it (clients cannot verify it)
//!   and, for files found by path, unless it is a CA certificate (a trust anchor kept on
//!   purpose). `allow_self_signed = true` accepts them.
//! - Weak: RSA or DSA keys shorter than `min_rsa_bits`, DSA at all, EC curves below 256 bits,
//!   MD2/MD4/MD5/SHA-1 signatures except the self-signature of a CA root (which no client
//!   checks).
//! - A server configuration naming a file that does not exist or holds no certificate is an
//!   expiry finding: the service cannot offer TLS as configured.

pub mod configs;
pub mod x509;

use std::collections::BTreeMap;

use serde::Deserialize;
use vigil_shared::{Subject, Value};

use super::support::{glob, list_dir, read_optional, round1};
use super::{Check, CheckContext, Outcome, Output};
use crate::hostroot::{HostError, HostRoot, join};

/// `[checks.tls_certs]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Run this check.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// When to run it (cron; five fields, or six with seconds first).
    #[serde(default = "default_schedule")]
    pub schedule: String,
    /// Certificate files, directories (their files, two levels deep) and globs to judge.
    #[serde(default = "default_paths")]
    pub paths: Vec<String>,
    /// Also judge the certificates named by nginx, Apache, Postfix, Dovecot and HAProxy
    /// configurations.
    #[serde(default = "default_true")]
    pub scan_server_configs: bool,
    /// A certificate expiring within this many days is a finding.
    #[serde(default = "default_expiry_warning_days")]
    pub expiry_warning_days: u32,
    /// Smallest acceptable RSA modulus, in bits.
    #[serde(default = "default_min_rsa_bits")]
    pub min_rsa_bits: u32,
    /// Accept self-signed leaf certificates.
    #[serde(default)]
    pub allow_self_signed: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: default_enabled(),
            schedule: default_schedule(),
            paths: default_paths(),
            scan_server_configs: true,
            expiry_warning_days: default_expiry_warning_days(),
            min_rsa_bits: default_min_rsa_bits(),
            allow_self_signed: false,
        }
    }
}

fn default_enabled() -> bool {
    true
}
fn default_true() -> bool {
    true
}
fn default_schedule() -> String {
    "10 */6 * * *".into()
}
fn default_paths() -> Vec<String> {
    vec![
        "/etc/letsencrypt/live/*/fullchain.pem".into(),
        "/etc/ssl/private".into(),
        "/etc/pki/tls/private".into(),
    ]
}
fn default_expiry_warning_days() -> u32 {
    30
}
fn default_min_rsa_bits() -> u32 {
    2048
}

const EXPIRY: &str = "tls_certs.expiry";
const STRENGTH: &str = "tls_certs.strength";

const OUTPUTS: &[Output] = &[
    Output {
        id: EXPIRY,
        controls: &["A.8.24"],
        description: "Certificates held or served are valid now and not expiring within the warning period; configured certificate files exist",
    },
    Output {
        id: STRENGTH,
        controls: &["A.8.24"],
        description: "Certificates use strong keys (RSA ≥ the minimum, EC ≥ 256 bits) and signatures (no MD5/SHA-1), and no server presents a self-signed certificate",
    },
];

/// Largest certificate file read (a big CA bundle is about 250 KB).
const CERT_LIMIT: u64 = 4 * 1024 * 1024;

/// The TLS certificate check.
#[derive(Debug)]
pub struct TlsCerts;

impl Check for TlsCerts {
    fn name(&self) -> &'static str {
        "tls_certs"
    }

    fn description(&self) -> &'static str {
        "certificate expiry, key sizes, signature algorithms and self-signed certificates"
    }

    fn outputs(&self) -> &'static [Output] {
        OUTPUTS
    }

    fn common(&self, settings: &crate::settings::ChecksConfig) -> crate::settings::Common {
        crate::settings::Common {
            enabled: settings.tls_certs.enabled,
            schedule: settings.tls_certs.schedule.clone(),
        }
    }

    fn run(&self, ctx: &CheckContext<'_>) -> Vec<Outcome> {
        match gather(ctx.root, &ctx.settings.tls_certs) {
            Ok(files) => judge(ctx, &files),
            Err(e) => super::error_for_all(OUTPUTS, &e),
        }
    }
}

/// A file to judge and why.
#[derive(Debug, Default)]
struct CertFile {
    /// `nginx /etc/nginx/sites-enabled/shop:4` for each server configuration naming it.
    referenced_by: Vec<String>,
    /// Found through `paths` (silently skipped when it holds no certificate).
    by_path: bool,
}

/// Files collected, with the configuration files read.
struct Gathered {
    files: BTreeMap<String, CertFile>,
    config_sources: Vec<String>,
}

fn gather(root: &HostRoot, settings: &Settings) -> Result<Gathered, HostError> {
    let mut files: BTreeMap<String, CertFile> = BTreeMap::new();
    for pattern in &settings.paths {
        for path in glob::expand(root, pattern)? {
            for file in files_under(root, &path, 2)? {
                files.entry(file).or_default().by_path = true;
            }
        }
    }
    let mut config_sources = Vec::new();
    if settings.scan_server_configs {
        for (server, reference, path) in server_references(root, &mut config_sources)? {
            let at = format!("{server} {}:{}", path, reference.line);
            let target = reference.path.clone();
            // HAProxy's `crt` may name a directory of PEM files.
            if root.metadata(&target).is_ok_and(|m| m.is_dir()) {
                for file in files_under(root, &target, 1)? {
                    files
                        .entry(file)
                        .or_default()
                        .referenced_by
                        .push(at.clone());
                }
            } else {
                files.entry(target).or_default().referenced_by.push(at);
            }
        }
    }
    Ok(Gathered {
        files,
        config_sources,
    })
}

/// A path's regular files: itself, or the files of a directory down to `depth` levels.
fn files_under(root: &HostRoot, path: &str, depth: usize) -> Result<Vec<String>, HostError> {
    let meta = match root.metadata(path) {
        Ok(m) => m,
        Err(e) if e.is_not_found() => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    if meta.is_file() {
        return Ok(vec![path.to_string()]);
    }
    if !meta.is_dir() || depth == 0 {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for name in list_dir(root, path, "")? {
        out.extend(files_under(root, &join(path, &name), depth - 1)?);
    }
    Ok(out)
}

/// Where each server keeps its configuration, how to parse it, and the directory relative
/// paths are resolved against.
struct ServerSpec {
    name: &'static str,
    files: &'static [&'static str],
    base: &'static str,
    parse: fn(&str) -> Vec<configs::Reference>,
    /// `Some(apache)` when the server has `include` directives to follow.
    includes: Option<bool>,
}

const SERVERS: &[ServerSpec] = &[
    ServerSpec {
        name: "nginx",
        files: &[
            "/etc/nginx/nginx.conf",
            "/etc/nginx/conf.d/*.conf",
            "/etc/nginx/sites-enabled/*",
        ],
        base: "/etc/nginx",
        parse: configs::parse_nginx,
        includes: Some(false),
    },
    ServerSpec {
        name: "apache",
        files: &[
            "/etc/apache2/apache2.conf",
            "/etc/apache2/sites-enabled/*",
            "/etc/httpd/conf/httpd.conf",
            "/etc/httpd/conf.d/*.conf",
        ],
        base: "/etc/apache2",
        parse: configs::parse_apache,
        includes: Some(true),
    },
    ServerSpec {
        name: "postfix",
        files: &["/etc/postfix/main.cf"],
        base: "/etc/postfix",
        parse: configs::parse_postfix,
        includes: None,
    },
    ServerSpec {
        name: "dovecot",
        files: &["/etc/dovecot/dovecot.conf", "/etc/dovecot/conf.d/*.conf"],
        base: "/etc/dovecot",
        parse: configs::parse_dovecot,
        includes: None,
    },
    ServerSpec {
        name: "haproxy",
        files: &["/etc/haproxy/haproxy.cfg"],
        base: "/etc/haproxy",
        parse: configs::parse_haproxy,
        includes: None,
    },
];

/// Most configuration files read per server.
const MAX_CONFIG_FILES: usize = 512;

fn server_references(
    root: &HostRoot,
    sources: &mut Vec<String>,
) -> Result<Vec<(&'static str, configs::Reference, String)>, HostError> {
    let mut out = Vec::new();
    for spec in SERVERS {
        let mut queue: Vec<String> = Vec::new();
        for pattern in spec.files {
            queue.extend(glob::expand(root, pattern)?);
        }
        let mut seen = std::collections::BTreeSet::new();
        let base =
            if spec.name == "apache" && root.exists("/etc/httpd") && !root.exists("/etc/apache2") {
                "/etc/httpd"
            } else {
                spec.base
            };
        while let Some(file) = queue.pop() {
            if !seen.insert(file.clone()) || seen.len() > MAX_CONFIG_FILES {
                continue;
            }
            if root.metadata(&file).is_ok_and(|m| m.is_dir()) {
                continue;
            }
            let Some(text) = read_optional(root, &file)? else {
                continue;
            };
            sources.push(file.clone());
            for r in (spec.parse)(&text) {
                let mut r = r;
                if !r.path.starts_with('/') {
                    r.path = join(base, &r.path);
                }
                out.push((spec.name, r, file.clone()));
            }
            if let Some(apache) = spec.includes {
                for inc in configs::includes(&text, apache) {
                    let pattern = if inc.starts_with('/') {
                        inc
                    } else {
                        join(base, &inc)
                    };
                    let pattern = if !glob::has_magic(&pattern)
                        && root.metadata(&pattern).is_ok_and(|m| m.is_dir())
                    {
                        format!("{}/*", pattern.trim_end_matches('/'))
                    } else {
                        pattern
                    };
                    queue.extend(glob::expand(root, &pattern)?);
                }
            }
        }
    }
    out.sort_by(|a, b| (a.0, &a.2, a.1.line).cmp(&(b.0, &b.2, b.1.line)));
    Ok(out)
}

fn judge(ctx: &CheckContext<'_>, gathered: &Gathered) -> Vec<Outcome> {
    let settings = &ctx.settings.tls_certs;
    let mut sources = gathered.config_sources.clone();
    let mut expiry_off = Vec::new();
    let mut expiry_ok = Vec::new();
    let mut strength_off = Vec::new();
    let mut strength_ok = Vec::new();
    let mut soonest: Option<f64> = None;
    let mut count = 0usize;
    for (path, file) in &gathered.files {
        let served = !file.referenced_by.is_empty();
        let bytes = match ctx.root.read_bytes(path, CERT_LIMIT) {
            Ok(b) => b,
            Err(e) if e.is_not_found() && served => {
                expiry_off.push(
                    Subject::new("certificate", path.as_str())
                        .with_reason("named by a server configuration but does not exist")
                        .fact("referenced_by", file.referenced_by.clone()),
                );
                continue;
            }
            Err(e) if e.is_not_found() => continue,
            Err(e) => return super::error_for_all(OUTPUTS, &e),
        };
        let (certs, problems) = x509::parse_certificates(&bytes);
        if certs.is_empty() {
            if served {
                let detail = problems
                    .first()
                    .map(|p| format!(": {p}"))
                    .unwrap_or_default();
                sources.push(path.clone());
                expiry_off.push(
                    Subject::new("certificate", path.as_str())
                        .with_reason(format!(
                            "named by a server configuration but holds no readable certificate{detail}"
                        ))
                        .fact("referenced_by", file.referenced_by.clone()),
                );
            }
            continue;
        }
        sources.push(path.clone());
        for (i, cert) in certs.iter().enumerate() {
            count += 1;
            let id = if i == 0 {
                path.clone()
            } else {
                format!("{path}#{}", i + 1)
            };
            let days_left = (cert.not_after - ctx.now).num_seconds() as f64 / 86_400.0;
            let mut s = Subject::new("certificate", id)
                .fact("subject", cert.subject.as_str())
                .fact("issuer", cert.issuer.as_str())
                .fact("not_before", cert.not_before.to_rfc3339())
                .fact("not_after", cert.not_after.to_rfc3339())
                .fact("days_left", Value::Float(round1(days_left)))
                .fact("key", cert.key_text())
                .fact("signature", cert.signature.as_str())
                .fact("self_signed", cert.self_signed)
                .fact("ca", cert.ca);
            if served {
                s = s.fact("referenced_by", file.referenced_by.clone());
            }
            soonest = Some(soonest.map_or(days_left, |m: f64| m.min(days_left)));

            let expiry_reason = if days_left < 0.0 {
                Some(format!(
                    "expired on {} ({})",
                    cert.not_after.format("%Y-%m-%d"),
                    cert.subject
                ))
            } else if cert.not_before > ctx.now {
                Some(format!(
                    "not valid before {} ({})",
                    cert.not_before.format("%Y-%m-%d"),
                    cert.subject
                ))
            } else if days_left < f64::from(settings.expiry_warning_days) {
                Some(format!(
                    "expires on {}, in {} days ({})",
                    cert.not_after.format("%Y-%m-%d"),
                    days_left.floor(),
                    cert.subject
                ))
            } else {
                None
            };
            match expiry_reason {
                Some(r) => expiry_off.push(s.clone().with_reason(r)),
                None => expiry_ok.push(s.clone()),
            }

            let mut weak = Vec::new();
            let root_self_signature = cert.self_signed && cert.ca;
            match cert.key_type.as_str() {
                "RSA" if cert.key_bits < settings.min_rsa_bits as usize => weak.push(format!(
                    "RSA key of {} bits, below {}",
                    cert.key_bits, settings.min_rsa_bits
                )),
                "DSA" => weak.push(format!("DSA key ({} bits): deprecated", cert.key_bits)),
                "EC" if cert.key_bits < 256 => weak.push(format!(
                    "EC key on {} ({} bits), below 256",
                    cert.curve.clone().unwrap_or_default(),
                    cert.key_bits
                )),
                _ => {}
            }
            if x509::is_weak_signature(&cert.signature) && !root_self_signature {
                weak.push(format!("signed with {}", cert.signature));
            }
            if i == 0 && cert.self_signed && !settings.allow_self_signed && (served || !cert.ca) {
                weak.push(if served {
                    "self-signed certificate presented by a server: clients cannot verify it"
                        .to_string()
                } else {
                    "self-signed certificate: clients cannot verify it".to_string()
                });
            }
            if weak.is_empty() {
                strength_ok.push(s);
            } else {
                strength_off.push(s.with_reason(weak.join("; ")));
            }
        }
    }
    if count == 0 && expiry_off.is_empty() {
        let reason = "no certificate found at the configured paths or in server configurations";
        return vec![
            Outcome::no_data(EXPIRY, reason).sources(sources.clone()),
            Outcome::no_data(STRENGTH, reason).sources(sources),
        ];
    }
    let warn = settings.expiry_warning_days;
    let expiry_fail = format!(
        "{} certificate problem(s): {}",
        expiry_off.len(),
        expiry_off
            .iter()
            .map(|o| format!("{} {}", o.id, o.reason.clone().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join("; ")
    );
    let mut expiry = Outcome::judge(
        EXPIRY,
        expiry_off,
        expiry_ok,
        format!("{count} certificate(s), none expired or expiring within {warn} days"),
        expiry_fail,
    )
    .value("certificates", count)
    .sources(sources.clone());
    if let Some(s) = soonest {
        expiry = expiry.value("soonest_expiry_days", Value::Float(round1(s)));
    }
    let strength_fail = format!(
        "{} weak certificate(s): {}",
        strength_off.len(),
        strength_off
            .iter()
            .map(|o| format!("{} ({})", o.id, o.reason.clone().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join("; ")
    );
    let strength = Outcome::judge(
        STRENGTH,
        strength_off,
        strength_ok,
        format!("{count} certificate(s) with strong keys and signatures"),
        strength_fail,
    )
    .value("certificates", count)
    .sources(sources);
    vec![expiry, strength]
}

#[cfg(test)]
mod tests;
