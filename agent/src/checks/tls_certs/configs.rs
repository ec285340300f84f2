//! Certificate files named by server configurations: nginx (`ssl_certificate`), Apache
//! (`SSLCertificateFile`, `SSLCertificateChainFile`), Postfix (`smtpd_tls_cert_file`,
//! `smtpd_tls_chain_files`…), Dovecot (`ssl_cert = <file`) and HAProxy (`crt` on `bind`).
//! Pure parsers over one file; the caller follows includes and resolves relative paths.

use std::sync::LazyLock;

use regex::Regex;

/// One reference to a certificate file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// As written (may be relative to the server's configuration directory).
    pub path: String,
    pub directive: String,
    pub line: usize,
}

/// True for values that are not plain file paths (variables, engines, inline data).
fn dynamic(value: &str) -> bool {
    value.contains('$')
        || value.contains('{')
        || value.contains('%')
        || value.starts_with("data:")
        || value.starts_with("engine:")
        || value.starts_with("store:")
        || value.starts_with("pkcs11:")
}

fn regex(pattern: &str) -> Option<Regex> {
    Regex::new(pattern).ok()
}

fn collect(text: &str, re: &Option<Regex>, split_list: bool) -> Vec<Reference> {
    let Some(re) = re.as_ref() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        let t = line.trim_start();
        if t.starts_with('#') {
            continue;
        }
        for c in re.captures_iter(line) {
            let directive = c[1].to_string();
            let value = (2..=4)
                .filter_map(|i| c.get(i))
                .map(|m| m.as_str())
                .find(|v| !v.is_empty())
                .unwrap_or_default();
            let values: Vec<&str> = if split_list {
                value
                    .split([',', ' ', '\t'])
                    .filter(|v| !v.is_empty())
                    .collect()
            } else {
                vec![value]
            };
            for v in values {
                let v = v.trim_start_matches('<').trim();
                if !v.is_empty() && !dynamic(v) {
                    out.push(Reference {
                        path: v.to_string(),
                        directive: directive.clone(),
                        line: i + 1,
                    });
                }
            }
        }
    }
    out
}

static NGINX: LazyLock<Option<Regex>> = LazyLock::new(|| {
    regex(r#"^\s*((?:proxy_|grpc_)?ssl_certificate)\s+(?:"([^"]+)"|'([^']+)'|([^;\s]+))\s*;"#)
});
static NGINX_INCLUDE: LazyLock<Option<Regex>> =
    LazyLock::new(|| regex(r#"^\s*include\s+(?:"([^"]+)"|'([^']+)'|([^;\s]+))\s*;"#));
static APACHE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    regex(
        r#"(?i)^\s*(SSLCertificateFile|SSLCertificateChainFile|SSLProxyMachineCertificateFile)\s+(?:"([^"]+)"|'([^']+)'|(\S+))"#,
    )
});
static APACHE_INCLUDE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    regex(r#"(?i)^\s*(?:Include|IncludeOptional)\s+(?:"([^"]+)"|'([^']+)'|(\S+))"#)
});
static POSTFIX: LazyLock<Option<Regex>> = LazyLock::new(|| {
    regex(
        r#"^\s*((?:smtpd|smtp|lmtp|tlsproxy)_tls_(?:cert_file|eccert_file|dcert_file|chain_files))\s*=\s*()()(.+?)\s*$"#,
    )
});
static DOVECOT: LazyLock<Option<Regex>> = LazyLock::new(|| {
    regex(r#"^\s*(ssl_cert|ssl_server_cert_file|ssl_alt_cert)\s*=\s*(?:"([^"]+)"|'([^']+)'|(\S+))"#)
});
static HAPROXY: LazyLock<Option<Regex>> =
    LazyLock::new(|| regex(r#"\s(crt)\s+(?:"([^"]+)"|'([^']+)'|(\S+))"#));

pub fn parse_nginx(text: &str) -> Vec<Reference> {
    collect(text, &NGINX, false)
}

pub fn parse_apache(text: &str) -> Vec<Reference> {
    collect(text, &APACHE, false)
}

pub fn parse_postfix(text: &str) -> Vec<Reference> {
    collect(text, &POSTFIX, true)
}

pub fn parse_dovecot(text: &str) -> Vec<Reference> {
    collect(text, &DOVECOT, false)
}

pub fn parse_haproxy(text: &str) -> Vec<Reference> {
    // `crt` is an option of `bind` (and of `server` for client certificates).
    let binds: String = text
        .lines()
        .map(|l| {
            let t = l.trim_start();
            if t.starts_with("bind ") || t.starts_with("server ") {
                l
            } else {
                ""
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    collect(&binds, &HAPROXY, false)
}

/// `include` patterns of an nginx or Apache file.
pub fn includes(text: &str, apache: bool) -> Vec<String> {
    let re = if apache {
        &APACHE_INCLUDE
    } else {
        &NGINX_INCLUDE
    };
    let Some(re) = re.as_ref() else {
        return Vec::new();
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| re.captures(l))
        .filter_map(|c| {
            c.get(1)
                .or(c.get(2))
                .or(c.get(3))
                .map(|m| m.as_str().to_string())
        })
        .filter(|v| !dynamic(v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(r: &[Reference]) -> Vec<(&str, &str, usize)> {
        r.iter()
            .map(|r| (r.directive.as_str(), r.path.as_str(), r.line))
            .collect()
    }

    #[test]
    fn nginx() {
        let text = "server {\n  ssl_certificate /etc/ssl/a.pem;\n  ssl_certificate_key /etc/ssl/a.key;\n\
                    # ssl_certificate /old.pem;\n  ssl_certificate \"tls/b c.pem\";\n\
                    ssl_certificate $ssl_server_name.crt;\n  proxy_ssl_certificate /etc/ssl/client.pem;\n\
                    ssl_certificate data:$cert;\n  include snippets/*.conf;\n}\n";
        assert_eq!(
            paths(&parse_nginx(text)),
            [
                ("ssl_certificate", "/etc/ssl/a.pem", 2),
                ("ssl_certificate", "tls/b c.pem", 5),
                ("proxy_ssl_certificate", "/etc/ssl/client.pem", 7)
            ]
        );
        assert_eq!(includes(text, false), ["snippets/*.conf"]);
    }

    #[test]
    fn apache_postfix_dovecot_haproxy() {
        assert_eq!(
            paths(&parse_apache(
                "\tsslcertificatefile \"/etc/ssl/certs/x.pem\"\n#SSLCertificateFile /no\nSSLCertificateKeyFile /k\n\
                 SSLCertificateChainFile chain.pem\r\nIncludeOptional sites-enabled/*.conf\n"
            )),
            [
                ("sslcertificatefile", "/etc/ssl/certs/x.pem", 1),
                ("SSLCertificateChainFile", "chain.pem", 4)
            ]
        );
        assert_eq!(
            paths(&parse_postfix(
                "smtpd_tls_cert_file=/etc/ssl/certs/ssl-cert-snakeoil.pem\n\
                 smtpd_tls_chain_files = /etc/postfix/rsa.pem, /etc/postfix/ec.pem\n\
                 smtp_tls_cert_file = $config_directory/client.pem\n"
            )),
            [
                (
                    "smtpd_tls_cert_file",
                    "/etc/ssl/certs/ssl-cert-snakeoil.pem",
                    1
                ),
                ("smtpd_tls_chain_files", "/etc/postfix/rsa.pem", 2),
                ("smtpd_tls_chain_files", "/etc/postfix/ec.pem", 2)
            ]
        );
        assert_eq!(
            paths(&parse_dovecot(
                "ssl = required\nssl_cert = </etc/dovecot/private/dovecot.pem\nssl_key = </k\n"
            )),
            [("ssl_cert", "/etc/dovecot/private/dovecot.pem", 2)]
        );
        assert_eq!(
            paths(&parse_haproxy(
                "frontend web\n    bind :443 ssl crt /etc/haproxy/certs/ alpn h2\n    http-request set-var(txn.crt) str(x)\n"
            )),
            [("crt", "/etc/haproxy/certs/", 2)]
        );
    }

    #[test]
    fn junk_never_panics() {
        for junk in [
            "ssl_certificate",
            "ssl_certificate ;",
            "SSLCertificateFile",
            "crt",
            "\u{0}ssl_cert=<",
        ] {
            let _ = parse_nginx(junk);
            let _ = parse_apache(junk);
            let _ = parse_postfix(junk);
            let _ = parse_dovecot(junk);
            let _ = parse_haproxy(junk);
            let _ = includes(junk, true);
        }
    }
}
