//! Time sources in the configuration files of chrony (`chrony.conf(5)`), ntpd and ntpsec
//! (`ntp.conf(5)`), OpenNTPD (`ntpd.conf(5)`) and systemd-timesyncd (`timesyncd.conf(5)`).
//! Pure parsers: the gathering of files (includes, conf.d directories) is in `mod.rs`.

use crate::checks::support::ini::parse_systemd_ini;

/// One configured time source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// `server`, `pool`, `peer`, `refclock`, `servers` (OpenNTPD), `NTP`, `FallbackNTP`.
    pub kind: String,
    /// Host name, address or reference clock driver.
    pub address: String,
    /// 1-based line in its file.
    pub line: usize,
}

/// What one chrony or ntpd file says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DaemonFile {
    pub sources: Vec<Source>,
    /// Glob patterns of further files (`include`, `includefile`).
    pub includes: Vec<String>,
    /// chrony `confdir` directories: every `*.conf` inside is read.
    pub confdirs: Vec<String>,
    /// chrony `sourcedir` directories: every `*.sources` inside holds sources.
    pub sourcedirs: Vec<String>,
}

fn words(line: &str) -> Vec<&str> {
    line.split_ascii_whitespace().collect()
}

/// Strips a comment: chrony treats `#`, `%`, `;` and `!` at the start of a line as comments;
/// ntp.conf treats `#` anywhere as the start of one.
fn strip_comment(line: &str, anywhere: bool) -> &str {
    let line = line.trim_end_matches('\r');
    let t = line.trim_start();
    if t.starts_with(['#', '%', ';', '!']) {
        return "";
    }
    if anywhere {
        return line.split('#').next().unwrap_or_default();
    }
    line
}

/// Parses a chrony configuration file or a `*.sources` file.
pub fn parse_chrony(text: &str) -> DaemonFile {
    let mut out = DaemonFile::default();
    for (i, raw) in text.lines().enumerate() {
        let w = words(strip_comment(raw, false));
        let Some(directive) = w.first() else {
            continue;
        };
        // chrony matches directives case-insensitively.
        match directive.to_ascii_lowercase().as_str() {
            d @ ("server" | "pool" | "peer") => {
                if let Some(address) = w.get(1) {
                    out.sources.push(Source {
                        kind: d.to_string(),
                        address: (*address).to_string(),
                        line: i + 1,
                    });
                }
            }
            "refclock" if w.len() >= 3 => {
                out.sources.push(Source {
                    kind: "refclock".into(),
                    address: format!("{} {}", w[1], w[2]),
                    line: i + 1,
                });
            }
            "include" => out.includes.extend(w[1..].iter().map(|s| s.to_string())),
            "confdir" => out.confdirs.extend(w[1..].iter().map(|s| s.to_string())),
            "sourcedir" => out.sourcedirs.extend(w[1..].iter().map(|s| s.to_string())),
            _ => {}
        }
    }
    out
}

/// True for ntpd's reference clock pseudo-addresses (`127.127.1.0` is the undisciplined
/// local clock driver, not a time source).
fn is_ntp_refclock(address: &str) -> bool {
    address.starts_with("127.127.")
}

/// Parses an ntpd / ntpsec configuration file.
pub fn parse_ntp(text: &str) -> DaemonFile {
    let mut out = DaemonFile::default();
    for (i, raw) in text.lines().enumerate() {
        let w = words(strip_comment(raw, true));
        let Some(directive) = w.first() else {
            continue;
        };
        match *directive {
            d @ ("server" | "pool" | "peer" | "manycastclient") => {
                // ntpsec's `refclock NAME` and ntpd's `server 127.127.t.u` are reference
                // clocks; the local clock driver (type 1) disciplines nothing.
                if let Some(address) = w.get(1) {
                    if address.starts_with("127.127.1.") {
                        continue;
                    }
                    let kind = if is_ntp_refclock(address) {
                        "refclock"
                    } else {
                        d
                    };
                    out.sources.push(Source {
                        kind: kind.to_string(),
                        address: (*address).to_string(),
                        line: i + 1,
                    });
                }
            }
            "refclock" => {
                if let Some(driver) = w.get(1)
                    && *driver != "local"
                {
                    out.sources.push(Source {
                        kind: "refclock".into(),
                        address: (*driver).to_string(),
                        line: i + 1,
                    });
                }
            }
            "includefile" | "includedir" => {
                if let Some(p) = w.get(1) {
                    let pattern = if *directive == "includedir" {
                        format!("{}/*", p.trim_end_matches('/'))
                    } else {
                        (*p).to_string()
                    };
                    out.includes.push(pattern);
                }
            }
            _ => {}
        }
    }
    out
}

/// Parses OpenNTPD's `ntpd.conf`: `server`, `servers`, `sensor`, `constraint` lines.
pub fn parse_openntpd(text: &str) -> DaemonFile {
    let mut out = DaemonFile::default();
    for (i, raw) in text.lines().enumerate() {
        let w = words(strip_comment(raw, true));
        if let (Some(d @ ("server" | "servers" | "sensor")), Some(address)) =
            (w.first().copied(), w.get(1))
        {
            out.sources.push(Source {
                kind: d.to_string(),
                address: address.trim_matches('"').to_string(),
                line: i + 1,
            });
        }
    }
    out
}

/// systemd-timesyncd's effective server lists after reading files in order (main file, then
/// drop-ins): each `NTP=`/`FallbackNTP=` appends, an empty assignment resets the list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timesyncd {
    pub ntp: Vec<(String, String, usize)>,
    /// `None` while no file set it: the compiled-in fallback list applies.
    pub fallback: Option<Vec<(String, String, usize)>>,
}

impl Timesyncd {
    /// Applies one file (`path` for the record).
    pub fn apply(&mut self, path: &str, text: &str) {
        for a in parse_systemd_ini(text) {
            if a.section != "Time" {
                continue;
            }
            let list = match a.key.as_str() {
                "NTP" => &mut self.ntp,
                "FallbackNTP" => self.fallback.get_or_insert_with(Vec::new),
                _ => continue,
            };
            if a.value.trim().is_empty() {
                list.clear();
                continue;
            }
            for server in a.value.split_ascii_whitespace() {
                list.push((server.to_string(), path.to_string(), a.line));
            }
        }
    }

    /// True when timesyncd has a server to ask: configured ones, else the fallback list
    /// (the compiled-in one when no file overrides it; distributions build it with their
    /// pool, Debian `debian.pool.ntp.org`, Fedora `fedora.pool.ntp.org`).
    pub fn has_servers(&self) -> bool {
        !self.ntp.is_empty() || self.fallback.as_ref().is_none_or(|f| !f.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chrony_directives() {
        let text = "# Debian default\r\npool 2.debian.pool.ntp.org iburst\r\n\
                    ! server commented.example\n%x\n; y\nSERVER ntp1.corp.example iburst prefer\n\
                    server\nrefclock PHC /dev/ptp0 poll 3\nsourcedir /run/chrony-dhcp\n\
                    sourcedir /etc/chrony/sources.d\nconfdir /etc/chrony/conf.d\n\
                    include /etc/chrony/extra/*.conf\nlocal stratum 10\n";
        let f = parse_chrony(text);
        let got: Vec<(&str, &str, usize)> = f
            .sources
            .iter()
            .map(|s| (s.kind.as_str(), s.address.as_str(), s.line))
            .collect();
        assert_eq!(
            got,
            [
                ("pool", "2.debian.pool.ntp.org", 2),
                ("server", "ntp1.corp.example", 6),
                ("refclock", "PHC /dev/ptp0", 8),
            ]
        );
        assert_eq!(f.sourcedirs, ["/run/chrony-dhcp", "/etc/chrony/sources.d"]);
        assert_eq!(f.confdirs, ["/etc/chrony/conf.d"]);
        assert_eq!(f.includes, ["/etc/chrony/extra/*.conf"]);
    }

    #[test]
    fn ntp_directives_skip_the_local_clock() {
        let text = "driftfile /var/lib/ntp/ntp.drift\npool 0.debian.pool.ntp.org iburst # main\n\
                    #server old.example\nserver 127.127.1.0\nfudge 127.127.1.0 stratum 10\n\
                    server 127.127.28.0\nrefclock shm unit 0\nrefclock local\n\
                    includefile /etc/ntp.d/extra.conf\nincludedir /etc/ntpsec/ntp.d/\n";
        let f = parse_ntp(text);
        let got: Vec<(&str, &str)> = f
            .sources
            .iter()
            .map(|s| (s.kind.as_str(), s.address.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("pool", "0.debian.pool.ntp.org"),
                ("refclock", "127.127.28.0"),
                ("refclock", "shm"),
            ]
        );
        assert_eq!(f.includes, ["/etc/ntp.d/extra.conf", "/etc/ntpsec/ntp.d/*"]);
    }

    #[test]
    fn openntpd_servers() {
        let f = parse_openntpd("servers pool.ntp.org\nsensor *\nconstraints from \"https://x\"\n");
        assert_eq!(f.sources.len(), 2);
    }

    #[test]
    fn timesyncd_lists_reset_on_empty_assignment() {
        let mut t = Timesyncd::default();
        assert!(t.has_servers(), "the compiled-in fallback applies");
        t.apply(
            "/etc/systemd/timesyncd.conf",
            "[Time]\n#NTP=\n#FallbackNTP=x\n",
        );
        assert!(t.has_servers());
        t.apply(
            "/etc/systemd/timesyncd.conf.d/a.conf",
            "[Time]\nFallbackNTP=\n",
        );
        assert!(!t.has_servers(), "fallback emptied, no NTP=");
        t.apply(
            "/etc/systemd/timesyncd.conf.d/b.conf",
            "[Time]\nNTP=a.example b.example\n",
        );
        assert_eq!(t.ntp.len(), 2);
        t.apply(
            "/etc/systemd/timesyncd.conf.d/c.conf",
            "[Time]\nNTP=\nNTP=c.example\n",
        );
        assert_eq!(
            t.ntp,
            [(
                "c.example".into(),
                "/etc/systemd/timesyncd.conf.d/c.conf".into(),
                3
            )]
        );
        t.apply("x", "[Other]\nNTP=\n");
        assert_eq!(t.ntp.len(), 1);
    }

    #[test]
    fn junk_never_panics() {
        for junk in [
            "server",
            "include",
            "\u{0}\u{ff}",
            "refclock x",
            "pool \t\t",
            "#",
        ] {
            let _ = parse_chrony(junk);
            let _ = parse_ntp(junk);
            let _ = parse_openntpd(junk);
            Timesyncd::default().apply("x", junk);
        }
    }
}
