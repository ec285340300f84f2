//! The agent's own resource use (resident memory now and at peak, CPU time), read from
//! `/proc/self` for the health it reports. This is the agent process, not the audited host, so
//! it is read directly rather than through `HostRoot`.

/// Resource use of this process; fields are `None` where the kernel did not say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub rss_bytes: Option<u64>,
    pub peak_rss_bytes: Option<u64>,
    pub cpu_ms: Option<u64>,
}

/// Reads this process's usage; never fails (missing facts stay `None`).
pub fn current() -> Usage {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let (rss_bytes, peak_rss_bytes) = parse_status(&status);
    Usage {
        rss_bytes,
        peak_rss_bytes,
        cpu_ms: parse_stat_cpu_ms(&stat),
    }
}

/// `VmRSS` and `VmHWM` from `/proc/<pid>/status`, in bytes.
pub fn parse_status(text: &str) -> (Option<u64>, Option<u64>) {
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().strip_suffix("kB"))
            .and_then(|kb| kb.trim().parse::<u64>().ok())
            .map(|kb| kb.saturating_mul(1024))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// `utime + stime` from `/proc/<pid>/stat`, in milliseconds. The fields are counted in
/// `USER_HZ` ticks, which the kernel ABI fixes at 100 per second on every architecture Linux
/// exports to user space.
pub fn parse_stat_cpu_ms(text: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces and parentheses: fields resume after the last
    // ')'. utime and stime are fields 14 and 15, i.e. the 12th and 13th after the name.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime.saturating_add(stime).saturating_mul(10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_are_read_in_bytes() {
        let text = "Name:\tvigil-agent\nVmHWM:\t   15360 kB\nVmRSS:\t    9216 kB\nThreads:\t3\n";
        assert_eq!(parse_status(text), (Some(9216 * 1024), Some(15360 * 1024)));
        assert_eq!(parse_status("junk\nVmRSS: lots\n"), (None, None));
    }

    #[test]
    fn cpu_time_survives_odd_command_names() {
        let text = "4242 (vigil (agent) x) S 1 4242 4242 0 -1 4194560 900 0 0 0 31 11 0 0 20 0 3 0 \
                    1000 20000000 2300 18446744073709551615";
        assert_eq!(parse_stat_cpu_ms(text), Some(420));
        assert_eq!(parse_stat_cpu_ms("garbage"), None);
        assert_eq!(parse_stat_cpu_ms("1 (x) S 1 2"), None);
    }

    #[test]
    fn this_process_has_usage() {
        let usage = current();
        assert!(usage.rss_bytes.unwrap_or(0) > 0);
        assert!(usage.peak_rss_bytes >= usage.rss_bytes);
        assert!(usage.cpu_ms.is_some());
    }
}
