//! logrotate's configuration (`logrotate(8)`): global defaults, `include`s, and per-log
//! blocks, reduced to what decides how long rotated logs are kept: the rotation interval,
//! `rotate` (how many old logs are kept), `maxage`, and whether rotation is by size.

/// One line of configuration that matters for retention.
#[derive(Debug, Clone, PartialEq)]
pub enum Directive {
    /// `hourly`/`daily`/`weekly`/`monthly`/`yearly`: the interval in days.
    Interval(f64, &'static str),
    /// `size N`: rotation by size only (the last of `size` and an interval wins).
    Size,
    /// `rotate N` (-1 keeps every old log).
    Rotate(i64),
    /// `maxage N` days.
    MaxAge(u64),
}

/// A top-level element of a file, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Global(Directive),
    Include(String, usize),
    Block {
        patterns: Vec<String>,
        directives: Vec<Directive>,
        line: usize,
    },
}

/// The retention-relevant state that applies to a block. The default is logrotate's own:
/// rotation by size, no old log kept.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    /// `None`: rotated by size (logrotate's default criterion is a 1 MB size).
    pub interval: Option<(f64, &'static str)>,
    /// logrotate's default keeps no old log.
    pub rotate: i64,
    pub maxage: Option<u64>,
}

impl Policy {
    pub fn apply(&mut self, d: &Directive) {
        match d {
            Directive::Interval(days, word) => self.interval = Some((*days, word)),
            Directive::Size => self.interval = None,
            Directive::Rotate(n) => self.rotate = *n,
            Directive::MaxAge(n) => self.maxage = Some(*n),
        }
    }

    /// The days of history kept in rotated files at least: `rotate` × interval, capped by
    /// `maxage`. `None` when rotation is by size (depends on log volume); infinite with
    /// `rotate -1` and no `maxage`.
    pub fn retention_days(&self) -> Option<f64> {
        let (days, _) = self.interval?;
        let kept = if self.rotate < 0 {
            f64::INFINITY
        } else {
            self.rotate as f64 * days
        };
        Some(match self.maxage {
            Some(m) => kept.min(m as f64),
            None => kept,
        })
    }

    /// "weekly, 4 kept" for people.
    pub fn describe(&self) -> String {
        let interval = match self.interval {
            Some((_, word)) => word.to_string(),
            None => "by size".to_string(),
        };
        let kept = if self.rotate < 0 {
            "all kept".to_string()
        } else {
            format!("{} kept", self.rotate)
        };
        match self.maxage {
            Some(m) => format!("{interval}, {kept}, maxage {m}"),
            None => format!("{interval}, {kept}"),
        }
    }
}

const SCRIPTS: [&str; 5] = [
    "postrotate",
    "prerotate",
    "firstaction",
    "lastaction",
    "preremove",
];

fn directive(words: &[&str]) -> Option<Directive> {
    let arg = words.get(1).copied().unwrap_or_default();
    Some(match *words.first()? {
        "hourly" => Directive::Interval(1.0 / 24.0, "hourly"),
        "daily" => Directive::Interval(1.0, "daily"),
        "weekly" => Directive::Interval(7.0, "weekly"),
        "monthly" => Directive::Interval(30.0, "monthly"),
        "yearly" => Directive::Interval(365.0, "yearly"),
        "size" => Directive::Size,
        "rotate" => Directive::Rotate(arg.parse().ok()?),
        "maxage" => Directive::MaxAge(arg.parse().ok()?),
        _ => return None,
    })
}

/// Splits a block header into patterns, honouring double and single quotes.
fn patterns(header: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    for c in header.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => current.push(c),
            (None, '"' | '\'') => quote = Some(c),
            (None, c) if c.is_whitespace() => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
            (None, c) => current.push(c),
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Parses one configuration file into its items. Unknown directives are ignored; scripts
/// are skipped to their `endscript`.
pub fn parse(text: &str) -> Vec<Item> {
    let mut items = Vec::new();
    let mut pending = String::new();
    let mut pending_line = 0;
    let mut block: Option<(Vec<String>, Vec<Directive>, usize)> = None;
    let mut in_script = false;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r').trim();
        if in_script {
            if line == "endscript" {
                in_script = false;
            }
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_ascii_whitespace().collect();
        if let Some((_, directives, _)) = block.as_mut() {
            if line.starts_with('}') {
                if let Some((patterns, directives, at)) = block.take() {
                    items.push(Item::Block {
                        patterns,
                        directives,
                        line: at,
                    });
                }
                continue;
            }
            if SCRIPTS.contains(&words[0]) {
                in_script = true;
                continue;
            }
            if let Some(d) = directive(&words) {
                directives.push(d);
            }
            continue;
        }
        if let Some((before, after)) = line.split_once('{') {
            if pending.is_empty() {
                pending_line = i + 1;
            }
            pending.push(' ');
            pending.push_str(before);
            let mut directives = Vec::new();
            // A directive, or a whole block, may share the header's line.
            let (rest, closes) = match after.split_once('}') {
                Some((d, _)) => (d, true),
                None => (after, false),
            };
            let rest_words: Vec<&str> = rest.split_ascii_whitespace().collect();
            if let Some(d) = directive(&rest_words) {
                directives.push(d);
            }
            if closes {
                items.push(Item::Block {
                    patterns: patterns(&pending),
                    directives,
                    line: pending_line,
                });
            } else {
                block = Some((patterns(&pending), directives, pending_line));
            }
            pending.clear();
            continue;
        }
        if words[0] == "include" {
            if let Some(p) = words.get(1) {
                items.push(Item::Include(p.trim_matches('"').to_string(), i + 1));
            }
            continue;
        }
        if let Some(d) = directive(&words) {
            items.push(Item::Global(d));
            continue;
        }
        if line.starts_with('/') || line.starts_with('"') || line.starts_with('\'') {
            // Part of a multi-line header before its `{`.
            if pending.is_empty() {
                pending_line = i + 1;
            }
            pending.push(' ');
            pending.push_str(line);
        }
    }
    items
}

/// True when a host path matches a logrotate pattern (globs per path component).
pub fn pattern_matches(pattern: &str, path: &str) -> bool {
    let p: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
    let n: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    p.len() == n.len()
        && p.iter()
            .zip(&n)
            .all(|(p, n)| crate::checks::support::glob::matches(p, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN_CONF: &str = "\
# see \"man logrotate\" for details
# global options do not affect preceding include directives
weekly
rotate 4
create
#dateext
include /etc/logrotate.d
";

    const RSYSLOG: &str = "\
/var/log/syslog
/var/log/mail.log
/var/log/kern.log
/var/log/auth.log
/var/log/user.log
/var/log/cron.log
{
\trotate 4
\tweekly
\tmissingok
\tnotifempty
\tcompress
\tdelaycompress
\tsharedscripts
\tpostrotate
\t\t/usr/lib/rsyslog/rsyslog-rotate
\t\trotate 999
\tendscript
}
\"/var/log/my app/*.log\" /var/log/other.log {
  daily
  rotate 30
  maxage 14
}
/var/log/big.log { size 100M
 rotate 5
}
";

    #[test]
    fn debian_files_parse() {
        let items = parse(DEBIAN_CONF);
        assert_eq!(
            items,
            [
                Item::Global(Directive::Interval(7.0, "weekly")),
                Item::Global(Directive::Rotate(4)),
                Item::Include("/etc/logrotate.d".into(), 7)
            ]
        );
        let items = parse(RSYSLOG);
        let Item::Block {
            patterns,
            directives,
            line,
        } = &items[0]
        else {
            panic!("{items:?}")
        };
        assert_eq!(patterns.len(), 6);
        assert_eq!(patterns[3], "/var/log/auth.log");
        assert_eq!(*line, 1);
        assert_eq!(
            directives,
            &[Directive::Rotate(4), Directive::Interval(7.0, "weekly")],
            "the script's `rotate 999` is not a directive"
        );
        let Item::Block { patterns, .. } = &items[1] else {
            panic!()
        };
        assert_eq!(patterns, &["/var/log/my app/*.log", "/var/log/other.log"]);
        let Item::Block { directives, .. } = &items[2] else {
            panic!()
        };
        assert_eq!(directives, &[Directive::Size, Directive::Rotate(5)]);
        let items = parse("/var/log/a.log { rotate 9 }\nweekly\n");
        assert_eq!(items.len(), 2);
    }

    #[test]
    fn retention_arithmetic() {
        let mut p = Policy::default();
        assert_eq!(p.retention_days(), None, "size-based by default");
        p.apply(&Directive::Interval(7.0, "weekly"));
        p.apply(&Directive::Rotate(4));
        assert_eq!(p.retention_days(), Some(28.0));
        assert_eq!(p.describe(), "weekly, 4 kept");
        p.apply(&Directive::MaxAge(10));
        assert_eq!(p.retention_days(), Some(10.0));
        p.apply(&Directive::Size);
        assert_eq!(p.retention_days(), None);
        let mut p = Policy::default();
        p.apply(&Directive::Interval(30.0, "monthly"));
        p.apply(&Directive::Rotate(-1));
        assert_eq!(p.retention_days(), Some(f64::INFINITY));
    }

    #[test]
    fn patterns_match_paths() {
        assert!(pattern_matches("/var/log/*.log", "/var/log/auth.log"));
        assert!(!pattern_matches("/var/log/*.log", "/var/log/syslog"));
        assert!(!pattern_matches("/var/log/*.log", "/var/log/apt/term.log"));
        assert!(pattern_matches("/var/log/syslog", "/var/log/syslog"));
    }

    #[test]
    fn junk_never_panics() {
        for junk in [
            "{",
            "}",
            "{{}}",
            "postrotate",
            "/x {\npostrotate\n",
            "rotate x",
            "\"",
            "include",
        ] {
            let _ = parse(junk);
        }
    }
}
