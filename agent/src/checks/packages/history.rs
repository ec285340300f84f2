//! Package history logs: dpkg's `/var/log/dpkg.log` (and rotations) and apt's
//! `/var/log/apt/history.log` (and rotations), reduced to the time of the last install or
//! upgrade.
//!
//! Both logs write the host's local time without a zone; it is read as UTC, so a result can
//! be off by the host's UTC offset (at most 14 hours), which does not matter for a limit in
//! days.

use chrono::NaiveDateTime;

/// Latest `install`/`upgrade` action in dpkg.log text
/// (`2026-11-28 10:12:01 upgrade libc6:amd64 2.36-9+deb12u10 2.36-9+deb12u14`).
pub fn dpkg_log_last_change(text: &str) -> Option<NaiveDateTime> {
    let mut last: Option<NaiveDateTime> = None;
    for line in text.lines() {
        let mut it = line.split_ascii_whitespace();
        let (Some(date), Some(time), Some(action)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        if action != "install" && action != "upgrade" {
            continue;
        }
        let Ok(at) = NaiveDateTime::parse_from_str(&format!("{date} {time}"), "%Y-%m-%d %H:%M:%S")
        else {
            continue;
        };
        if last.is_none_or(|l| at > l) {
            last = Some(at);
        }
    }
    last
}

/// Latest apt transaction that installed, upgraded, downgraded or reinstalled something
/// (its `End-Date`, or its `Start-Date` when the transaction did not finish).
pub fn apt_history_last_change(text: &str) -> Option<NaiveDateTime> {
    let parse = |v: &str| {
        let v = v.split_ascii_whitespace().collect::<Vec<_>>().join(" ");
        NaiveDateTime::parse_from_str(&v, "%Y-%m-%d %H:%M:%S").ok()
    };
    let mut last: Option<NaiveDateTime> = None;
    let mut start: Option<NaiveDateTime> = None;
    let mut end: Option<NaiveDateTime> = None;
    let mut changed = false;
    let mut flush =
        |start: &mut Option<NaiveDateTime>, end: &mut Option<NaiveDateTime>, changed: &mut bool| {
            if *changed
                && let Some(at) = end.or(*start)
                && last.is_none_or(|l| at > l)
            {
                last = Some(at);
            }
            *start = None;
            *end = None;
            *changed = false;
        };
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("Start-Date:") {
            flush(&mut start, &mut end, &mut changed);
            start = parse(v);
        } else if let Some(v) = line.strip_prefix("End-Date:") {
            end = parse(v);
        } else if ["Install:", "Upgrade:", "Downgrade:", "Reinstall:"]
            .iter()
            .any(|k| line.starts_with(k))
        {
            changed = true;
        }
    }
    flush(&mut start, &mut end, &mut changed);
    last
}

/// Rotated names of a log in the order logrotate produces them: `x`, `x.1`, `x.2.gz`, …
pub fn rotated_names(base: &str, names_in_dir: &[String]) -> Vec<String> {
    let mut found: Vec<(u32, String)> = Vec::new();
    for name in names_in_dir {
        if name == base {
            found.push((0, name.clone()));
            continue;
        }
        let Some(rest) = name.strip_prefix(base).and_then(|r| r.strip_prefix('.')) else {
            continue;
        };
        let num = rest.strip_suffix(".gz").unwrap_or(rest);
        if let Ok(n) = num.parse::<u32>() {
            found.push((n, name.clone()));
        }
    }
    found.sort();
    found.into_iter().map(|(_, n)| n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn dpkg_log_actions() {
        let log = "2026-11-28 10:12:01 startup archives unpack\n\
            2026-11-28 10:12:01 install libpopt0:amd64 <none> 1.19+dfsg-1\n\
            2026-11-28 10:12:01 status half-installed libpopt0:amd64 1.19+dfsg-1\n\
            2026-09-22 04:51:30 upgrade osslsigncode:amd64 2.8-1 2.9-1~bpo12+1\n\
            2026-12-01 00:00:00 remove foo:amd64 1 <none>\n\
            2026-12-02 00:00:00 configure foo:amd64 1 <none>\n\
            garbage line\n\
            2026-13-45 99:99:99 install bad:amd64 <none> 1\n";
        assert_eq!(dpkg_log_last_change(log), Some(at("2026-11-28 10:12:01")));
        assert_eq!(dpkg_log_last_change(""), None);
        assert_eq!(
            dpkg_log_last_change("2026-01-01 00:00:00 remove x 1 <none>\n"),
            None
        );
    }

    #[test]
    fn apt_history_transactions() {
        let log = "\nStart-Date: 2025-06-24  14:36:25\nCommandline: apt-get -qqy upgrade\nUpgrade: libsystemd0:amd64 (252.36-1~deb12u1, 252.38-1~deb12u1)\nEnd-Date: 2025-06-24  14:36:29\n\n\
            Start-Date: 2025-07-01  10:00:00\nCommandline: apt-get remove x\nRemove: x:amd64 (1)\nEnd-Date: 2025-07-01  10:00:01\n\n\
            Start-Date: 2025-06-25  09:00:00\nInstall: y:amd64 (1)\n";
        assert_eq!(
            apt_history_last_change(log),
            Some(at("2025-06-25 09:00:00"))
        );
        assert_eq!(
            apt_history_last_change("Start-Date: nonsense\nInstall: x\n"),
            None
        );
    }

    #[test]
    fn rotations_in_order() {
        let names: Vec<String> = [
            "dpkg.log.10.gz",
            "dpkg.log",
            "dpkg.log.2.gz",
            "dpkg.log.1",
            "dpkg.log.old",
            "alternatives.log",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            rotated_names("dpkg.log", &names),
            ["dpkg.log", "dpkg.log.1", "dpkg.log.2.gz", "dpkg.log.10.gz"]
        );
    }
}
