//! The systemd configuration file syntax (`systemd.syntax(7)`) used by `journald.conf`,
//! `timesyncd.conf` and unit files: `[Section]` headers, `Key=Value` lines, `#` and `;`
//! comments, backslash continuation lines.

/// One assignment with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub section: String,
    pub key: String,
    pub value: String,
    /// 1-based line of the key.
    pub line: usize,
}

/// Parses a file into its assignments, in order. Lines that are neither sections,
/// assignments nor comments are skipped (systemd logs and ignores them too).
pub fn parse_systemd_ini(text: &str) -> Vec<Assignment> {
    let mut out = Vec::new();
    let mut section = String::new();
    let mut pending: Option<(String, usize)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim_end_matches('\r');
        let (mut joined, start) = match pending.take() {
            Some((mut acc, start)) => {
                // Comment lines inside a continuation are dropped, as systemd does.
                let t = line.trim_start();
                if t.starts_with('#') || t.starts_with(';') {
                    pending = Some((acc, start));
                    continue;
                }
                acc.push(' ');
                acc.push_str(line.trim());
                (acc, start)
            }
            None => {
                let t = line.trim();
                if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
                    continue;
                }
                (t.to_string(), line_no)
            }
        };
        if joined.ends_with('\\') {
            joined.pop();
            pending = Some((joined.trim_end().to_string(), start));
            continue;
        }
        let t = joined.trim();
        if t.starts_with('[') && t.ends_with(']') {
            section = t[1..t.len() - 1].trim().to_string();
            continue;
        }
        if let Some((k, v)) = t.split_once('=') {
            out.push(Assignment {
                section: section.clone(),
                key: k.trim().to_string(),
                value: unquote(v.trim()).to_string(),
                line: start,
            });
        }
    }
    if let Some((acc, start)) = pending
        && let Some((k, v)) = acc.split_once('=')
    {
        out.push(Assignment {
            section,
            key: k.trim().to_string(),
            value: unquote(v.trim()).to_string(),
            line: start,
        });
    }
    out
}

fn unquote(v: &str) -> &str {
    if v.len() >= 2
        && ((v.starts_with('"') && v.ends_with('"')) || (v.starts_with('\'') && v.ends_with('\'')))
    {
        &v[1..v.len() - 1]
    } else {
        v
    }
}

/// systemd's boolean syntax (`parse_boolean()`): `1/yes/y/true/t/on` and their negations.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "yes" | "y" | "true" | "t" | "on" => Some(true),
        "0" | "no" | "n" | "false" | "f" | "off" => Some(false),
        _ => None,
    }
}

/// A systemd time span (`systemd.time(7)`) in seconds: `1month`, `2w 3d`, `90s`, `5min`;
/// a bare number is in `default_unit_secs`. `None` when it does not parse.
pub fn parse_timespan_secs(v: &str, default_unit_secs: f64) -> Option<f64> {
    let v = v.trim();
    if v.is_empty() {
        return None;
    }
    if v.eq_ignore_ascii_case("infinity") {
        return Some(f64::INFINITY);
    }
    let mut total = 0.0;
    let mut rest = v;
    while !rest.is_empty() {
        rest = rest.trim_start();
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let number: f64 = rest[..num_len].parse().ok()?;
        rest = rest[num_len..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let factor = match unit {
            "" => default_unit_secs,
            "us" | "usec" | "µs" => 1e-6,
            "ms" | "msec" => 1e-3,
            "s" | "sec" | "second" | "seconds" => 1.0,
            "m" | "min" | "minute" | "minutes" => 60.0,
            "h" | "hr" | "hour" | "hours" => 3600.0,
            "d" | "day" | "days" => 86_400.0,
            "w" | "week" | "weeks" => 7.0 * 86_400.0,
            "M" | "month" | "months" => 30.44 * 86_400.0,
            "y" | "year" | "years" => 365.25 * 86_400.0,
            _ => return None,
        };
        total += number * factor;
    }
    Some(total)
}

/// A size with an optional binary suffix (`K`, `M`, `G`, `T`; systemd and journald use
/// 1024-based units), in bytes.
pub fn parse_size_bytes(v: &str) -> Option<u64> {
    let v = v.trim();
    let digits = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let number: f64 = v[..digits].parse().ok()?;
    let factor: f64 = match v[digits..].trim() {
        "" | "B" => 1.0,
        "K" | "k" | "KB" | "KiB" => 1024.0,
        "M" | "m" | "MB" | "MiB" => 1024.0 * 1024.0,
        "G" | "g" | "GB" | "GiB" => 1024.0 * 1024.0 * 1024.0,
        "T" | "t" | "TB" | "TiB" => 1024.0f64.powi(4),
        _ => return None,
    };
    let bytes = number * factor;
    (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_keys_comments_and_continuations() {
        let text = "# comment\r\n[Journal]\r\nStorage=persistent\n; other\nSystemMaxUse = 1G \n\
                    [Time]\nNTP=a.example \\\n  b.example\\\n# dropped\n  c.example\nbroken line\n\
                    Empty=\nQuoted=\"x y\"\n";
        let a = parse_systemd_ini(text);
        let kv: Vec<(&str, &str, &str, usize)> = a
            .iter()
            .map(|a| (a.section.as_str(), a.key.as_str(), a.value.as_str(), a.line))
            .collect();
        assert_eq!(
            kv,
            [
                ("Journal", "Storage", "persistent", 3),
                ("Journal", "SystemMaxUse", "1G", 5),
                ("Time", "NTP", "a.example b.example c.example", 7),
                ("Time", "Empty", "", 12),
                ("Time", "Quoted", "x y", 13),
            ]
        );
    }

    #[test]
    fn junk_never_panics() {
        for junk in [
            "[",
            "]",
            "=",
            "\\",
            "[a\\\n]=\\",
            "\u{0}\u{ff}=\n[\u{1F600}]",
        ] {
            let _ = parse_systemd_ini(junk);
        }
        let _ = parse_systemd_ini(&"x=\\\n".repeat(10_000));
    }

    #[test]
    fn time_spans_and_sizes() {
        assert_eq!(parse_timespan_secs("1month", 1.0), Some(30.44 * 86_400.0));
        assert_eq!(parse_timespan_secs("2w 3d", 1.0), Some(17.0 * 86_400.0));
        assert_eq!(parse_timespan_secs("90", 1.0), Some(90.0));
        assert_eq!(parse_timespan_secs("1year", 1.0), Some(365.25 * 86_400.0));
        assert_eq!(parse_timespan_secs("5min 30s", 1.0), Some(330.0));
        assert_eq!(parse_timespan_secs("0", 1.0), Some(0.0));
        assert_eq!(parse_timespan_secs("soon", 1.0), None);
        assert_eq!(parse_timespan_secs("", 1.0), None);
        assert_eq!(parse_timespan_secs("1parsec", 1.0), None);
        assert_eq!(parse_size_bytes("1G"), Some(1 << 30));
        assert_eq!(parse_size_bytes("512M"), Some(512 << 20));
        assert_eq!(parse_size_bytes("100"), Some(100));
        assert_eq!(parse_size_bytes("1X"), None);
        assert_eq!(parse_bool("Yes"), Some(true));
        assert_eq!(parse_bool("off"), Some(false));
        assert_eq!(parse_bool("maybe"), None);
    }
}
