//! apt sources (`sources.list` one-line entries and deb822 `.sources` stanzas) and the list
//! files apt reads for them: the index target names are built exactly as apt builds them
//! (`constructMetaIndexURI` + `URItoFileName`), so a stale list left behind by a removed or
//! renamed source is never counted.

use std::collections::BTreeMap;
use std::fmt;

use super::aptconf::parse_quote_word;
use super::tagfile;

/// `deb` or `deb-src`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Deb,
    DebSrc,
}

/// One (URI, suite, component) triple of a source, with its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceEntry {
    /// `file:line` (line or stanza number) for evidence.
    pub origin: String,
    pub kind: Kind,
    /// Normalised like apt's `FixupURI`: parsed, re-serialised, ending in `/`.
    pub uri: String,
    pub dist: String,
    /// Empty for flat repositories (`dist` ending in `/`).
    pub component: String,
    /// Option name (`arch`, `arch+`, `signed-by`, `trusted`…) → value (lists comma-separated).
    pub options: BTreeMap<String, String>,
}

/// A sources file apt would refuse; apt then does not run at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError {
    pub origin: String,
    pub message: String,
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.origin, self.message)
    }
}

/// apt's `URI` class, reduced to what file naming needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Uri {
    pub access: String,
    pub user: String,
    pub password: String,
    pub host: String,
    pub port: u32,
    pub path: String,
}

fn dequote(s: &[u8]) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%'
            && i + 2 < s.len()
            && s[i + 1].is_ascii_hexdigit()
            && s[i + 2].is_ascii_hexdigit()
        {
            let hi = (s[i + 1] as char).to_digit(16).unwrap_or(0);
            let lo = (s[i + 2] as char).to_digit(16).unwrap_or(0);
            out.push((hi * 16 + lo) as u8);
            i += 3;
            continue;
        }
        out.push(s[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Uri {
    /// apt's `URI::CopyFrom`.
    pub fn parse(u: &str) -> Uri {
        let b = u.as_bytes();
        let end = b.len();
        let first_colon = b.iter().position(|&c| c == b':').unwrap_or(end);
        let mut single_slash = first_colon;
        if first_colon + 3 < end && b[first_colon + 1] == b'/' && b[first_colon + 2] == b'/' {
            single_slash += 3;
        }
        let mut in_bracket = false;
        while single_slash < end && (b[single_slash] != b'/' || in_bracket) {
            if b[single_slash] == b'[' {
                in_bracket = true;
            }
            if in_bracket && b[single_slash] == b']' {
                in_bracket = false;
            }
            single_slash += 1;
        }
        let single_slash = single_slash.min(end);
        let mut uri = Uri {
            access: String::from_utf8_lossy(&b[..first_colon]).into_owned(),
            ..Uri::default()
        };
        if single_slash != end {
            uri.path = String::from_utf8_lossy(&b[single_slash..]).into_owned();
        }
        if uri.path.is_empty() {
            uri.path = "/".into();
        }
        let mut fc = first_colon;
        if fc + 2 < end && b[fc + 1] == b'/' && b[fc + 2] == b'/' {
            fc += 3;
        } else {
            fc += 1;
        }
        if fc >= end {
            return uri;
        }
        if fc > single_slash {
            fc = single_slash;
        }
        let i = (fc + 1).min(single_slash);
        // The last '@' between the scheme and the path separates user:pass from the host.
        let at = b[i..single_slash]
            .iter()
            .rposition(|&c| c == b'@')
            .map(|p| p + i);
        let mut host: Vec<u8> = match at {
            None => {
                if fc < single_slash {
                    b[fc..single_slash].to_vec()
                } else {
                    Vec::new()
                }
            }
            Some(at) => {
                let second_colon = b[i..at]
                    .iter()
                    .position(|&c| c == b':')
                    .map(|p| p + i)
                    .unwrap_or(at);
                uri.user = dequote(&b[fc..second_colon]);
                if second_colon < at {
                    uri.password = dequote(&b[second_colon + 1..at]);
                }
                b[at + 1..single_slash].to_vec()
            }
        };
        let mut port_end = 0usize;
        let mut in_bracket = false;
        let mut k = 0usize;
        while k < host.len() {
            if host[k] == b'[' {
                in_bracket = true;
                host.remove(k);
                continue;
            }
            if in_bracket && host[k] == b']' {
                in_bracket = false;
                host.remove(k);
                port_end = k;
                continue;
            }
            k += 1;
        }
        if in_bracket {
            return uri;
        }
        if let Some(pos) = host.iter().rposition(|&c| c == b':')
            && pos >= port_end
        {
            let digits: String = host[pos + 1..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .map(|&c| c as char)
                .collect();
            uri.port = digits.parse().unwrap_or(0);
            host.truncate(pos);
        }
        uri.host = String::from_utf8_lossy(&host).into_owned();
        uri
    }

    /// apt's `URI::operator string`.
    pub fn to_apt_string(&self) -> String {
        let mut res = String::new();
        if !self.access.is_empty() {
            res.push_str(&self.access);
            res.push(':');
        }
        if !self.host.is_empty() {
            if !self.access.is_empty() {
                res.push_str("//");
            }
            if !self.user.is_empty() {
                res.push_str(&quote_string(&self.user, b":/?#[]@"));
                if !self.password.is_empty() {
                    res.push(':');
                    res.push_str(&quote_string(&self.password, b":/?#[]@"));
                }
                res.push('@');
            }
            if !self.access.is_empty() && self.host.contains(['/', ':']) {
                res.push('[');
                res.push_str(&self.host);
                res.push(']');
            } else {
                res.push_str(&self.host);
            }
            if self.port != 0 {
                res.push(':');
                res.push_str(&self.port.to_string());
            }
        }
        if !self.path.is_empty() {
            if !self.path.starts_with('/') {
                res.push('/');
            }
            res.push_str(&self.path);
        }
        res
    }
}

/// apt's `QuoteString`: `%xx` (lowercase hex) for the listed bytes, `%`, control characters,
/// space and everything from 0x7f up.
pub fn quote_string(s: &str, bad: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if bad.contains(&b) || b == b'%' || b <= 0x20 || b >= 0x7f {
            out.push_str(&format!("%{b:02x}"));
        } else {
            out.push(b as char);
        }
    }
    out
}

/// apt's `URItoFileName`: scheme, user and password dropped, special characters quoted, `/`
/// turned into `_` (`http://deb.nodesource.com/node_20.x/…` → `deb.nodesource.com_node%5f20.x_…`).
pub fn uri_to_file_name(uri: &str) -> String {
    let mut u = Uri::parse(uri);
    u.user.clear();
    u.password.clear();
    u.access.clear();
    quote_string(&u.to_apt_string(), b"\\|{}[]<>\"^~_=!@#$%^&*").replace('/', "_")
}

/// apt's `pkgAcquire::URIEncode` for dist and file names.
fn uri_encode(part: &str) -> String {
    quote_string(part, b"+~ ")
}

/// apt's `constructMetaIndexURI`.
pub fn meta_index_uri(uri: &str, dist: &str, kind: &str) -> String {
    let mut out = uri.to_string();
    if dist == "/" {
    } else if dist.ends_with('/') {
        out.push_str(&uri_encode(dist));
    } else {
        out.push_str("dists/");
        out.push_str(&uri_encode(dist));
        out.push('/');
    }
    out.push_str(&uri_encode(kind));
    out
}

/// apt's `FixupURI`: needs a scheme, `$(ARCH)` substituted, normalised, `/`-terminated.
fn fixup_uri(uri: &str, native_arch: &str) -> Option<String> {
    if uri.is_empty() || !uri.contains(':') {
        return None;
    }
    let mut u = Uri::parse(&uri.replace("$(ARCH)", native_arch)).to_apt_string();
    if !u.ends_with('/') {
        u.push('/');
    }
    Some(u)
}

fn kind_of(word: &str) -> Option<Kind> {
    match word {
        "deb" => Some(Kind::Deb),
        "deb-src" => Some(Kind::DebSrc),
        _ => None,
    }
}

/// Parses a one-line-format file (`sources.list`, `*.list`).
pub fn parse_one_line(
    text: &str,
    file: &str,
    native_arch: &str,
) -> Result<Vec<SourceEntry>, SourceError> {
    let mut out = Vec::new();
    for (index, raw) in text.split('\n').enumerate() {
        let line_no = index + 1;
        let origin = format!("{file}:{line_no}");
        let err = |m: &str| SourceError {
            origin: origin.clone(),
            message: m.to_string(),
        };
        // A '#' inside an unclosed [option] block does not start a comment.
        let mut line = raw;
        let mut from = 0;
        while let Some(rel) = line[from..].find('#') {
            let pos = from + rel;
            let open = line[..pos].matches('[').count();
            let close = line[..pos].matches(']').count();
            if open > close {
                from = pos + 1;
                continue;
            }
            line = &line[..pos];
            break;
        }
        let line = line.trim_matches([' ', '\t', '\r']);
        if line.is_empty() {
            continue;
        }
        let type_end = line.find([' ', '\t', '\x0b']).unwrap_or(line.len());
        let type_word = &line[..type_end];
        if type_end == line.len() {
            return Err(err("malformed line (type)"));
        }
        let Some(kind) = kind_of(type_word) else {
            return Err(err(&format!("type '{type_word}' is not known")));
        };
        let mut rest: &str = line[type_end..].trim_start_matches(|c: char| c.is_ascii_whitespace());
        let mut options = BTreeMap::new();
        if let Some(after) = rest.strip_prefix('[') {
            let Some(close) = after.find(']') else {
                return Err(err("[option] unparsable"));
            };
            let mut opts: &str = after[..close].trim_start();
            while let Some(option) = parse_quote_word(&mut opts) {
                if option.len() < 3 {
                    return Err(err("[option] too short"));
                }
                let Some((key, value)) = option.split_once('=') else {
                    return Err(err("[option] not assignment"));
                };
                if key.is_empty() {
                    return Err(err("[option] no key"));
                }
                if value.is_empty() {
                    return Err(err("[option] no value"));
                }
                options.insert(key.to_string(), value.to_string());
            }
            rest = after[close + 1..].trim_start_matches(|c: char| c.is_ascii_whitespace());
        }
        let Some(uri) = parse_quote_word(&mut rest) else {
            return Err(err("URI"));
        };
        let Some(dist) = parse_quote_word(&mut rest) else {
            return Err(err("Suite"));
        };
        let Some(uri) = fixup_uri(&uri, native_arch) else {
            return Err(err("URI parse"));
        };
        if dist.ends_with('/') {
            if parse_quote_word(&mut rest).is_some() {
                return Err(err("absolute Suite Component"));
            }
            out.push(SourceEntry {
                origin: origin.clone(),
                kind,
                uri,
                dist: dist.replace("$(ARCH)", native_arch),
                component: String::new(),
                options,
            });
            continue;
        }
        let Some(first) = parse_quote_word(&mut rest) else {
            return Err(err("Component"));
        };
        let mut components = vec![first];
        while let Some(c) = parse_quote_word(&mut rest) {
            components.push(c);
        }
        for component in components {
            out.push(SourceEntry {
                origin: origin.clone(),
                kind,
                uri: uri.clone(),
                dist: dist.clone(),
                component,
                options: options.clone(),
            });
        }
    }
    Ok(out)
}

/// apt's `StringToBool`: 1/0, yes/no, true/false, with/without, on/off, enable/disable.
pub fn string_to_bool(text: &str) -> Option<bool> {
    let t = text.trim();
    // apt first reads the whole text as a number: only 0 and 1 count
    if let Ok(n) = t.parse::<i64>() {
        return match n {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        };
    }
    let lower = t.to_ascii_lowercase();
    match lower.as_str() {
        "no" | "false" | "without" | "off" | "disable" => Some(false),
        "yes" | "true" | "with" | "on" | "enable" => Some(true),
        _ => None,
    }
}

/// Parses a deb822 `.sources` file.
pub fn parse_deb822(
    text: &str,
    file: &str,
    native_arch: &str,
) -> Result<Vec<SourceEntry>, SourceError> {
    let stripped = tagfile::strip_comment_lines(text);
    let parsed = tagfile::parse(&stripped);
    if let Some(&line) = parsed.bad_lines.first() {
        return Err(SourceError {
            origin: format!("{file}:{line}"),
            message: "malformed stanza".into(),
        });
    }
    let mut out = Vec::new();
    for (index, stanza) in parsed.stanzas.iter().enumerate() {
        let origin = format!("{file}:{}", index + 1);
        let err = |m: &str| SourceError {
            origin: origin.clone(),
            message: m.to_string(),
        };
        let Some(types) = stanza.get("Types") else {
            return Err(err("malformed stanza (type)"));
        };
        let multi = |name: &str| -> Vec<String> {
            stanza
                .get(name)
                .map(|v| tagfile::words(v).map(str::to_string).collect())
                .unwrap_or_default()
        };
        let mut kinds = Vec::new();
        for t in tagfile::words(types) {
            match kind_of(t) {
                Some(k) => kinds.push(k),
                None => return Err(err(&format!("type '{t}' is not known"))),
            }
        }
        for kind in kinds {
            if let Some(enabled) = stanza.get("Enabled")
                && !enabled.is_empty()
                && string_to_bool(enabled) == Some(false)
            {
                continue;
            }
            let mut options = BTreeMap::new();
            for (field, option, is_list) in [
                ("Architectures", "arch", true),
                ("Architectures-Add", "arch+", true),
                ("Architectures-Remove", "arch-", true),
                ("Languages", "lang", true),
                ("Languages-Add", "lang+", true),
                ("Languages-Remove", "lang-", true),
                ("Targets", "target", true),
                ("Targets-Add", "target+", true),
                ("Targets-Remove", "target-", true),
                ("Trusted", "trusted", false),
                ("Check-Valid-Until", "check-valid-until", false),
                ("Valid-Until-Min", "valid-until-min", false),
                ("Valid-Until-Max", "valid-until-max", false),
                ("Check-Date", "check-date", false),
                ("Date-Max-Future", "date-max-future", false),
                ("Signed-By", "signed-by", false),
                ("PDiffs", "pdiffs", false),
                ("By-Hash", "by-hash", false),
            ] {
                if let Some(v) = stanza.get(field) {
                    let v = if is_list {
                        multi(field).join(",")
                    } else {
                        v.to_string()
                    };
                    options.insert(option.to_string(), v);
                }
            }
            let uris = multi("URIs");
            let components = multi("Components");
            let suites: Vec<String> = multi("Suites")
                .into_iter()
                .map(|s| s.replace("$(ARCH)", native_arch))
                .collect();
            if uris.is_empty() {
                return Err(err("URI"));
            }
            if suites.is_empty() {
                return Err(err("Suite"));
            }
            for uri in &uris {
                let Some(uri) = fixup_uri(uri, native_arch) else {
                    return Err(err("URI parse"));
                };
                for suite in &suites {
                    if suite.ends_with('/') {
                        if !components.is_empty() {
                            return Err(err("absolute Suite Component"));
                        }
                        out.push(SourceEntry {
                            origin: origin.clone(),
                            kind,
                            uri: uri.clone(),
                            dist: suite.clone(),
                            component: String::new(),
                            options: options.clone(),
                        });
                    } else {
                        if components.is_empty() {
                            return Err(err("Component"));
                        }
                        for c in &components {
                            out.push(SourceEntry {
                                origin: origin.clone(),
                                kind,
                                uri: uri.clone(),
                                dist: suite.clone(),
                                component: c.clone(),
                                options: options.clone(),
                            });
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

/// One `Packages` index apt would read, if present on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListTarget {
    /// The list file name in `Dir::State::lists`, without a compression extension.
    pub file_name: String,
    /// The index's component (`main`; empty for flat repositories).
    pub component: String,
    /// The index's architecture (`amd64`, `all`; empty for flat repositories).
    pub arch: String,
    /// The sources entry that asked for it.
    pub origin: String,
}

/// One repository release (URI + suite): its Release file and the lists it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseIndex {
    pub uri: String,
    pub dist: String,
    /// The host of the URI: what `Pin: origin` matches.
    pub site: String,
    /// List file names of the `InRelease` and `Release` files.
    pub inrelease_file: String,
    pub release_file: String,
    pub targets: Vec<ListTarget>,
    pub origins: Vec<String>,
}

fn split_list(v: &str) -> Vec<String> {
    if v.is_empty() {
        return Vec::new();
    }
    v.split(',').map(str::to_string).collect()
}

/// apt's `parsePlusMinusArchOptions`.
fn architectures(options: &BTreeMap<String, String>, default_archs: &[String]) -> Vec<String> {
    let mut values: Vec<String> = match options.get("arch") {
        Some(v) => split_list(v),
        None => default_archs.to_vec(),
    };
    let minus = options
        .get("arch-")
        .map(|v| split_list(v))
        .unwrap_or_default();
    if let Some(plus) = options.get("arch+") {
        for p in split_list(plus) {
            if !values.contains(&p) {
                values.push(p);
            }
        }
    }
    values.retain(|v| !minus.contains(v));
    if !minus.iter().any(|m| m == "all") && !values.iter().any(|v| v == "all") {
        values.push("implicit:all".into());
    }
    values
}

/// apt's target selection, reduced to the question "is `Packages` wanted".
fn wants_packages(options: &BTreeMap<String, String>) -> bool {
    let mut targets: Vec<String> = match options.get("target") {
        Some(v) => split_list(v),
        None => vec!["Packages".into()],
    };
    if let Some(plus) = options.get("target+") {
        targets.extend(split_list(plus));
    }
    if let Some(minus) = options.get("target-") {
        let minus = split_list(minus);
        targets.retain(|t| !minus.contains(t));
    }
    targets.iter().any(|t| t == "Packages")
}

/// Groups `deb` entries into releases and lists the `Packages` indexes apt reads, in apt's
/// order (releases by first appearance, then entries, then architectures), each file once.
/// `default_archs` is apt's architecture list (native first).
pub fn build_indexes(entries: &[SourceEntry], default_archs: &[String]) -> Vec<ReleaseIndex> {
    let mut releases: Vec<ReleaseIndex> = Vec::new();
    let mut seen_files: Vec<String> = Vec::new();
    for e in entries {
        let release_file = uri_to_file_name(&meta_index_uri(&e.uri, &e.dist, "Release"));
        let idx = match releases.iter().position(|r| r.release_file == release_file) {
            Some(i) => i,
            None => {
                releases.push(ReleaseIndex {
                    uri: e.uri.clone(),
                    dist: e.dist.clone(),
                    site: Uri::parse(&e.uri).host,
                    inrelease_file: uri_to_file_name(&meta_index_uri(&e.uri, &e.dist, "InRelease")),
                    release_file,
                    targets: Vec::new(),
                    origins: Vec::new(),
                });
                releases.len() - 1
            }
        };
        let release = &mut releases[idx];
        if !release.origins.contains(&e.origin) {
            release.origins.push(e.origin.clone());
        }
        if e.kind != Kind::Deb || !wants_packages(&e.options) {
            continue;
        }
        let base = meta_index_uri(&e.uri, &e.dist, "");
        let flat = e.dist.ends_with('/');
        let archs = if flat {
            vec![String::new()]
        } else {
            architectures(&e.options, default_archs)
        };
        for arch in archs {
            let arch = if arch == "implicit:all" {
                "all".to_string()
            } else {
                arch
            };
            let meta_key = if flat {
                "Packages".to_string()
            } else {
                format!("{}/binary-{}/Packages", e.component, arch)
            };
            let file_name = uri_to_file_name(&format!("{base}{meta_key}"));
            if seen_files.contains(&file_name) {
                continue;
            }
            seen_files.push(file_name.clone());
            release.targets.push(ListTarget {
                file_name,
                component: e.component.clone(),
                arch,
                origin: e.origin.clone(),
            });
        }
    }
    releases
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_match_apt() {
        assert_eq!(
            uri_to_file_name(&meta_index_uri(
                "http://deb.debian.org/debian/",
                "bookworm",
                "InRelease"
            )),
            "deb.debian.org_debian_dists_bookworm_InRelease"
        );
        assert_eq!(
            uri_to_file_name(
                "https://deb.nodesource.com/node_20.x/dists/nodistro/main/binary-amd64/Packages"
            ),
            "deb.nodesource.com_node%5f20.x_dists_nodistro_main_binary-amd64_Packages"
        );
        // user:pass is dropped, ports kept, special characters quoted
        assert_eq!(
            uri_to_file_name("https://user:secret@repo.example:8443/a~b=c/dists/x/InRelease"),
            "repo.example:8443_a%7eb%3dc_dists_x_InRelease"
        );
        // local repositories lose the scheme and keep their path
        assert_eq!(
            uri_to_file_name(&meta_index_uri("file:/srv/repo/", "./", "Packages")),
            "_srv_repo_._Packages"
        );
        assert_eq!(
            uri_to_file_name(&meta_index_uri("file:///srv/repo/", "/", "Release")),
            "_srv_repo_Release"
        );
        // dists are URI-encoded first, then quoted again
        assert_eq!(
            meta_index_uri("http://h/", "a+b", "Release"),
            "http://h/dists/a%2bb/Release"
        );
        assert_eq!(
            uri_to_file_name("http://h/dists/a%2bb/Release"),
            "h_dists_a%252bb_Release"
        );
        assert_eq!(uri_to_file_name("http://h/p q"), "h_p%20q");
    }

    #[test]
    fn uri_parsing_edge_cases() {
        let u = Uri::parse("http://[::1]:8080/debian");
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("::1", 8080, "/debian")
        );
        assert_eq!(u.to_apt_string(), "http://[::1]:8080/debian");
        let u = Uri::parse("http://a%40b:p%3a@host/x");
        assert_eq!(
            (u.user.as_str(), u.password.as_str(), u.host.as_str()),
            ("a@b", "p:", "host")
        );
        let u = Uri::parse("cdrom:[Debian 12]/");
        assert_eq!(u.access, "cdrom");
        for junk in ["", ":", "://", "http://", "http://[", "x:@", "@@@:"] {
            let _ = Uri::parse(junk).to_apt_string();
        }
    }

    #[test]
    fn one_line_entries_with_options_and_comments() {
        let text = "# comment\n\
            deb http://deb.debian.org/debian bookworm main contrib # trailing\n\
            deb [arch=amd64,i386 signed-by=/usr/share/keyrings/x.gpg] https://repo.example/apt stable main\n\
            deb-src http://deb.debian.org/debian bookworm main\n\
            deb [trusted=yes] file:/srv/repo ./\n\
            \n   \t\n";
        let e = parse_one_line(text, "/etc/apt/sources.list", "amd64").unwrap();
        assert_eq!(e.len(), 5);
        assert_eq!(e[0].uri, "http://deb.debian.org/debian/");
        assert_eq!(
            (e[0].component.as_str(), e[1].component.as_str()),
            ("main", "contrib")
        );
        assert_eq!(e[0].origin, "/etc/apt/sources.list:2");
        assert_eq!(e[2].options["arch"], "amd64,i386");
        assert_eq!(e[2].options["signed-by"], "/usr/share/keyrings/x.gpg");
        assert_eq!(e[3].kind, Kind::DebSrc);
        assert_eq!((e[4].dist.as_str(), e[4].component.as_str()), ("./", ""));
        assert_eq!(e[4].uri, "file:/srv/repo/");
    }

    #[test]
    fn one_line_errors_like_apt() {
        for (line, msg) in [
            ("deb", "malformed line (type)"),
            ("rpm http://x y z", "type 'rpm' is not known"),
            ("deb http://x", "Suite"),
            ("deb http://x bookworm", "Component"),
            ("deb nocolon bookworm main", "URI parse"),
            ("deb http://x ./ main", "absolute Suite Component"),
            ("deb [arch] http://x y z", "[option] not assignment"),
            ("deb [ab=] http://x y z", "[option] no value"),
            ("deb [a=] http://x y z", "[option] too short"),
            ("deb [arch=amd64 http://x y z", "[option] unparsable"),
        ] {
            let err = parse_one_line(line, "f", "amd64").unwrap_err();
            assert_eq!(err.message, msg, "{line}");
        }
    }

    #[test]
    fn deb822_entries() {
        let text = "Types: deb\n# http://snapshot.debian.org/archive/debian/20250520T000000Z\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n\
            Types: deb deb-src\nURIs: http://a/ https://b/\nSuites: s\nComponents: main non-free\nArchitectures: amd64 arm64\n\n\
            Types: deb\nEnabled: no\nURIs: http://off/\nSuites: x\nComponents: main\n\n\
            Types: deb\nURIs: file:/srv/flat\nSuites: ./\n";
        let e = parse_deb822(text, "/etc/apt/sources.list.d/d.sources", "amd64").unwrap();
        let deb: Vec<_> = e
            .iter()
            .map(|x| (x.uri.as_str(), x.dist.as_str(), x.component.as_str()))
            .collect();
        assert_eq!(deb.len(), 2 + 8 + 1);
        assert_eq!(
            deb[0],
            ("http://deb.debian.org/debian/", "bookworm", "main")
        );
        assert_eq!(
            deb[1],
            ("http://deb.debian.org/debian/", "bookworm-updates", "main")
        );
        assert_eq!(e[2].options["arch"], "amd64,arm64");
        assert_eq!(e[2].origin, "/etc/apt/sources.list.d/d.sources:2");
        assert!(e.iter().all(|x| !x.uri.contains("off")));
        assert_eq!(deb[10], ("file:/srv/flat/", "./", ""));
    }

    #[test]
    fn deb822_errors() {
        assert!(parse_deb822("URIs: http://x/\n", "f", "amd64").is_err());
        assert!(parse_deb822("Types: deb\nURIs: http://x/\nSuites: s\n", "f", "amd64").is_err());
        assert!(parse_deb822("Types: deb\nSuites: s\nComponents: c\n", "f", "amd64").is_err());
        assert!(
            parse_deb822(
                "Types: nope\nURIs: http://x/\nSuites: s\nComponents: c\n",
                "f",
                "amd64"
            )
            .is_err()
        );
        assert!(
            parse_deb822(
                "Types: deb\nURIs: http://x/\nSuites: s/\nComponents: c\n",
                "f",
                "amd64"
            )
            .is_err()
        );
        assert_eq!(parse_deb822("", "f", "amd64").unwrap(), []);
    }

    #[test]
    fn indexes_follow_apt_naming_and_archs() {
        let text = "deb http://deb.debian.org/debian bookworm main contrib\n\
            deb https://deb.debian.org/debian bookworm main\n\
            deb [arch=i386] http://x.example/repo stable main\n\
            deb [arch-=all] http://y.example/repo stable main\n\
            deb file:/srv/repo ./\n";
        let e = parse_one_line(text, "s", "amd64").unwrap();
        let archs = vec!["amd64".to_string(), "arm64".to_string()];
        let idx = build_indexes(&e, &archs);
        assert_eq!(idx.len(), 4, "http and https of one host share their lists");
        let names: Vec<&str> = idx[0]
            .targets
            .iter()
            .map(|t| t.file_name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages",
                "deb.debian.org_debian_dists_bookworm_main_binary-arm64_Packages",
                "deb.debian.org_debian_dists_bookworm_main_binary-all_Packages",
                "deb.debian.org_debian_dists_bookworm_contrib_binary-amd64_Packages",
                "deb.debian.org_debian_dists_bookworm_contrib_binary-arm64_Packages",
                "deb.debian.org_debian_dists_bookworm_contrib_binary-all_Packages",
            ]
        );
        assert_eq!(
            idx[0].inrelease_file,
            "deb.debian.org_debian_dists_bookworm_InRelease"
        );
        assert_eq!(idx[0].site, "deb.debian.org");
        let x: Vec<&str> = idx[1].targets.iter().map(|t| t.arch.as_str()).collect();
        assert_eq!(x, ["i386", "all"]);
        let y: Vec<&str> = idx[2].targets.iter().map(|t| t.arch.as_str()).collect();
        assert_eq!(y, ["amd64", "arm64"]);
        assert_eq!(idx[3].targets[0].file_name, "_srv_repo_._Packages");
        assert_eq!(idx[3].targets[0].component, "");
    }

    #[test]
    fn string_to_bool_like_apt() {
        assert_eq!(string_to_bool("no"), Some(false));
        assert_eq!(string_to_bool("No"), Some(false));
        assert_eq!(string_to_bool("0"), Some(false));
        assert_eq!(string_to_bool("yes"), Some(true));
        assert_eq!(string_to_bool("maybe"), None);
        assert_eq!(string_to_bool("00"), Some(false));
        assert_eq!(string_to_bool("2"), None);
    }
}
