//! Remote log destinations in rsyslog (`rsyslog.conf(5)`: legacy `@host`/`@@host`/`:omrelp:`
//! actions and RainerScript `action(type="omfwd" …)`) and syslog-ng (`destination` blocks
//! with network drivers, used by a `log` path). Pure parsers over one file's text; includes
//! are returned for the caller to follow.

use std::sync::LazyLock;

use regex::Regex;

/// One remote destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// `omfwd`, `omrelp`, `omelasticsearch`…; `network`, `tcp`, `syslog`… for syslog-ng.
    pub method: String,
    pub target: String,
    /// `udp`, `tcp`, `relp`, `http`… as far as the configuration says.
    pub protocol: String,
    /// 1-based line where the action starts.
    pub line: usize,
}

/// What one rsyslog or syslog-ng file contains.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyslogFile {
    pub forwards: Vec<Forward>,
    /// Glob patterns of included files.
    pub includes: Vec<String>,
    /// syslog-ng only: remote destinations defined by name, used only when a `log` path
    /// references them.
    pub named: Vec<(String, Forward)>,
    /// syslog-ng only: names referenced by `destination(NAME)` in log paths.
    pub referenced: Vec<String>,
}

static LEGACY: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"(?:^|[\s;&])(@@?)(?:\([^)]*\))?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9_.\-]*)(?::(\d+))?",
    )
    .ok()
});

static OMRELP: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r":omrelp:([A-Za-z0-9_.\-\[\]:]+?)(?::(\d+))?(?:;|\s|$)").ok());

/// Types of rsyslog output modules that send logs off the host, with the parameter naming
/// the destination.
const REMOTE_MODULES: [(&str, &str); 6] = [
    ("omfwd", "target"),
    ("omrelp", "target"),
    ("omelasticsearch", "server"),
    ("omhttp", "server"),
    ("omkafka", "broker"),
    ("omgssapi", "target"),
];

/// Byte offset → 1-based line.
fn line_at(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Blanks comments (`#` to end of line outside quotes) so that offsets and lines stay put.
fn blank_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut quote: Option<char> = None;
    let mut in_comment = false;
    for c in text.chars() {
        if c == '\n' {
            in_comment = false;
            quote = None;
            out.push(c);
            continue;
        }
        if in_comment {
            out.push(' ');
            continue;
        }
        match (quote, c) {
            (None, '#') => {
                in_comment = true;
                out.push(' ');
                continue;
            }
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            _ => {}
        }
        out.push(c);
    }
    out
}

/// `key="value"` pairs of a RainerScript parameter list, keys lower-cased.
fn params(body: &str) -> Vec<(String, String)> {
    static P: LazyLock<Option<Regex>> = LazyLock::new(|| {
        Regex::new(r#"([A-Za-z][A-Za-z0-9_.]*)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s")]+))"#).ok()
    });
    let Some(re) = P.as_ref() else {
        return Vec::new();
    };
    re.captures_iter(body)
        .map(|c| {
            let v = c
                .get(2)
                .or(c.get(3))
                .or(c.get(4))
                .map(|m| m.as_str())
                .unwrap_or_default();
            (c[1].to_ascii_lowercase(), v.to_string())
        })
        .collect()
}

/// The text inside the parentheses that open at `open` (the index of `(`), respecting
/// quotes; `None` when unbalanced.
fn paren_body(text: &str, open: usize) -> Option<&str> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut quote: Option<u8> = None;
    for (i, &b) in bytes.iter().enumerate().skip(open) {
        match (quote, b) {
            (Some(q), b) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(b),
            (None, b'(') => depth += 1,
            (None, b')') => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return text.get(open + 1..i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Parses one rsyslog configuration file.
pub fn parse_rsyslog(text: &str) -> SyslogFile {
    let text = blank_comments(&text.replace('\r', ""));
    let mut out = SyslogFile::default();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("$IncludeConfig") {
            out.includes
                .extend(rest.split_whitespace().map(String::from));
            continue;
        }
        if t.starts_with('$') || t.is_empty() {
            continue;
        }
        // Legacy actions: after a selector (`*.* @@host`), a property filter or `&`.
        if !t.contains("action(")
            && !t.starts_with("include(")
            && let Some(re) = LEGACY.as_ref()
        {
            for c in re.captures_iter(t) {
                let tcp = &c[1] == "@@";
                out.forwards.push(Forward {
                    method: "omfwd".into(),
                    target: match c.get(3) {
                        Some(port) => format!("{}:{}", &c[2], port.as_str()),
                        None => c[2].to_string(),
                    },
                    protocol: if tcp { "tcp" } else { "udp" }.into(),
                    line: i + 1,
                });
            }
        }
        if let Some(re) = OMRELP.as_ref() {
            for c in re.captures_iter(t) {
                out.forwards.push(Forward {
                    method: "omrelp".into(),
                    target: match c.get(2) {
                        Some(port) => format!("{}:{}", &c[1], port.as_str()),
                        None => c[1].to_string(),
                    },
                    protocol: "relp".into(),
                    line: i + 1,
                });
            }
        }
    }
    // RainerScript statements may span lines: scan the whole text.
    for keyword in ["action(", "include("] {
        let mut from = 0;
        while let Some(pos) = text[from..].find(keyword) {
            let start = from + pos;
            let open = start + keyword.len() - 1;
            from = open + 1;
            // `action(` must start a word (not `myaction(`).
            if start > 0 && text.as_bytes()[start - 1].is_ascii_alphanumeric() {
                continue;
            }
            let Some(body) = paren_body(&text, open) else {
                continue;
            };
            let p = params(body);
            let get = |k: &str| p.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
            if keyword == "include(" {
                if let Some(file) = get("file") {
                    out.includes.push(file.to_string());
                }
                continue;
            }
            let Some(kind) = get("type").map(str::to_ascii_lowercase) else {
                continue;
            };
            let Some((module, key)) = REMOTE_MODULES.iter().find(|(m, _)| *m == kind) else {
                continue;
            };
            let target = get(key).unwrap_or("localhost");
            let protocol = match *module {
                "omfwd" => get("protocol").unwrap_or("udp").to_ascii_lowercase(),
                "omrelp" => "relp".into(),
                "omkafka" => "kafka".into(),
                _ => "http".into(),
            };
            let target = match get("port") {
                Some(port) => format!("{target}:{port}"),
                None => target.to_string(),
            };
            out.forwards.push(Forward {
                method: (*module).to_string(),
                target,
                protocol,
                line: line_at(&text, start),
            });
        }
    }
    out.forwards.sort_by_key(|f| f.line);
    out
}

/// syslog-ng drivers that send logs off the host.
const NG_DRIVERS: [&str; 10] = [
    "network",
    "syslog",
    "tcp",
    "udp",
    "tcp6",
    "udp6",
    "http",
    "elasticsearch-http",
    "loggly",
    "splunk-hec-event",
];

/// Finds remote drivers in a destination body.
fn ng_forwards(body: &str, base_line: usize) -> Vec<Forward> {
    let mut out = Vec::new();
    for driver in NG_DRIVERS {
        let needle = format!("{driver}(");
        let mut from = 0;
        while let Some(pos) = body[from..].find(&needle) {
            let start = from + pos;
            from = start + needle.len();
            let prev = if start > 0 {
                body.as_bytes()[start - 1]
            } else {
                b' '
            };
            if prev.is_ascii_alphanumeric() || prev == b'-' || prev == b'_' {
                continue;
            }
            let Some(args) = paren_body(body, start + driver.len()) else {
                continue;
            };
            // The destination is the first quoted argument, or `host("…")`/`url("…")`.
            let quoted = |s: &str| -> Option<String> {
                let s = s.trim_start();
                let q = s.chars().next().filter(|c| *c == '"' || *c == '\'')?;
                s[1..].split(q).next().map(String::from)
            };
            let target = quoted(args)
                .or_else(|| {
                    ["host(", "url("].iter().find_map(|k| {
                        args.find(k)
                            .and_then(|p| paren_body(args, p + k.len() - 1))
                            .and_then(quoted)
                    })
                })
                .unwrap_or_default();
            if target.is_empty() {
                continue;
            }
            let protocol = match driver {
                "tcp" | "tcp6" => "tcp".to_string(),
                "udp" | "udp6" => "udp".to_string(),
                "network" | "syslog" => {
                    let t = args
                        .find("transport(")
                        .and_then(|p| paren_body(args, p + 9));
                    // Both drivers default to TCP.
                    t.map(|t| t.trim().trim_matches('"').trim_matches('\'').to_string())
                        .unwrap_or_else(|| "tcp".to_string())
                }
                _ => "http".to_string(),
            };
            out.push(Forward {
                method: driver.to_string(),
                target,
                protocol,
                line: base_line + body[..start].matches('\n').count(),
            });
        }
    }
    out.sort_by_key(|f| f.line);
    out
}

/// Parses one syslog-ng configuration file.
pub fn parse_syslog_ng(text: &str) -> SyslogFile {
    let text = blank_comments(&text.replace('\r', ""));
    let mut out = SyslogFile::default();
    for line in text.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("@include") {
            let p = rest.trim().trim_end_matches(';').trim().trim_matches('"');
            if !p.is_empty() {
                out.includes.push(p.to_string());
            }
        }
    }
    let mut from = 0;
    while let Some(pos) = text[from..].find("destination") {
        let start = from + pos;
        from = start + "destination".len();
        let prev = if start > 0 {
            text.as_bytes()[start - 1]
        } else {
            b' '
        };
        if prev.is_ascii_alphanumeric() || prev == b'_' || prev == b'-' {
            continue;
        }
        let rest = &text[from..];
        let trimmed = rest.trim_start();
        let skip = rest.len() - trimmed.len();
        if trimmed.starts_with('(') {
            // A reference inside a log path: `destination(d_remote);`.
            if let Some(body) = paren_body(&text, from + skip) {
                out.referenced.push(body.trim().to_string());
            }
            continue;
        }
        let name_len = trimmed
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.'))
            .unwrap_or(trimmed.len());
        let name = &trimmed[..name_len];
        let after = trimmed[name_len..].trim_start();
        if !after.starts_with('{') {
            continue;
        }
        let brace = text.len() - after.len();
        let Some(body) = brace_body(&text, brace) else {
            continue;
        };
        let base_line = line_at(&text, brace);
        let forwards = ng_forwards(body, base_line);
        if name.is_empty() {
            // An inline destination inside a log path is used by that path.
            out.forwards.extend(forwards);
        } else {
            out.named
                .extend(forwards.into_iter().map(|f| (name.to_string(), f)));
        }
    }
    out
}

fn brace_body(text: &str, open: usize) -> Option<&str> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut quote: Option<u8> = None;
    for (i, &b) in bytes.iter().enumerate().skip(open) {
        match (quote, b) {
            (Some(q), b) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(b),
            (None, b'{') => depth += 1,
            (None, b'}') => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return text.get(open + 1..i);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(f: &SyslogFile) -> Vec<(String, String, usize)> {
        f.forwards
            .iter()
            .map(|f| (f.target.clone(), f.protocol.clone(), f.line))
            .collect()
    }

    #[test]
    fn rsyslog_legacy_and_rainerscript_forwards() {
        let text = "\
module(load=\"imuxsock\")
$IncludeConfig /etc/rsyslog.d/*.conf
include(file=\"/etc/rsyslog.extra/*.conf\" mode=\"optional\")
*.* @@logs.corp.example:6514
auth,authpriv.*\t@192.0.2.10
#*.* @@commented.example
& @[2001:db8::1]:514
mail.* -/var/log/mail.log
:programname, isequal, \"sshd\" :omrelp:relp.corp.example:2514;RSYSLOG_ForwardFormat
*.* action(type=\"omfwd\"
           Target=\"siem.corp.example\" port=\"6514\"
           protocol=\"tcp\" # inline comment
           StreamDriver=\"gtls\")
action(type=\"omfile\" file=\"/var/log/x\")
action(type='omelasticsearch' server='es.corp.example')
template(name=\"t\" type=\"string\" string=\"user@example.com %msg%\")
";
        let f = parse_rsyslog(text);
        assert_eq!(
            f.includes,
            ["/etc/rsyslog.d/*.conf", "/etc/rsyslog.extra/*.conf"]
        );
        assert_eq!(
            targets(&f),
            [
                ("logs.corp.example:6514".into(), "tcp".into(), 4),
                ("192.0.2.10".into(), "udp".into(), 5),
                ("[2001:db8::1]:514".into(), "udp".into(), 7),
                ("relp.corp.example:2514".into(), "relp".into(), 9),
                ("siem.corp.example:6514".into(), "tcp".into(), 10),
                ("es.corp.example".into(), "http".into(), 15),
            ]
        );
    }

    #[test]
    fn rsyslog_without_forwarding() {
        let debian = "\
module(load=\"imuxsock\")
module(load=\"imklog\")
$FileOwner root
$IncludeConfig /etc/rsyslog.d/*.conf
*.*;auth,authpriv.none\t\t-/var/log/syslog
auth,authpriv.*\t\t\t/var/log/auth.log
*.emerg\t\t\t\t:omusrmsg:*
";
        assert!(parse_rsyslog(debian).forwards.is_empty());
    }

    #[test]
    fn syslog_ng_named_and_inline_destinations() {
        let text = "\
@version: 3.38
@include \"scl.conf\"
@include \"/etc/syslog-ng/conf.d/*.conf\"
source s_src { system(); internal(); };
destination d_syslog { file(\"/var/log/syslog\"); };
destination d_remote {
  network(\"logs.corp.example\" port(6514) transport(\"tls\")
          tls(ca-dir(\"/etc/ssl/certs\")));
};
destination d_unused { udp(\"old.example\" port(514)); };
# destination d_commented { tcp(\"x.example\"); };
log { source(s_src); destination(d_syslog); destination( d_remote ); };
log { source(s_src); destination { syslog(\"inline.example\" transport(\"tcp\")); }; };
";
        let f = parse_syslog_ng(text);
        assert_eq!(f.includes, ["scl.conf", "/etc/syslog-ng/conf.d/*.conf"]);
        let named: Vec<(&str, &str, &str, usize)> = f
            .named
            .iter()
            .map(|(n, f)| (n.as_str(), f.target.as_str(), f.protocol.as_str(), f.line))
            .collect();
        assert_eq!(
            named,
            [
                ("d_remote", "logs.corp.example", "tls", 7),
                ("d_unused", "old.example", "udp", 10)
            ]
        );
        assert_eq!(f.referenced, ["d_syslog", "d_remote"]);
        assert_eq!(targets(&f), [("inline.example".into(), "tcp".into(), 13)]);
    }

    #[test]
    fn junk_never_panics() {
        for junk in [
            "action(",
            "action(type=\"omfwd\"",
            "destination {",
            "destination x { network(",
            "destination(",
            "@",
            "@@",
            "\"unterminated",
            "include(",
            "é@@é",
            ":omrelp:",
        ] {
            let _ = parse_rsyslog(junk);
            let _ = parse_syslog_ng(junk);
        }
    }
}
