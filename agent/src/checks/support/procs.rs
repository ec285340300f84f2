//! The process table as seen through the root's `/proc`: command name, first argument and
//! executable of each process. On a live host this is the running system; a fixture tree
//! carries a few `proc/<pid>` entries; a mounted image has none, and then nothing can be
//! said about what runs ([`ProcessTable::load`] returns `None`).

use crate::hostroot::HostRoot;

/// Most processes read; beyond that the table is truncated (and says so).
pub const MAX_PROCESSES: usize = 50_000;

/// One process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    /// `/proc/<pid>/comm`: the kernel's name, at most 15 bytes.
    pub comm: String,
    /// Base name of `argv[0]` (empty for kernel threads).
    pub argv0: String,
    /// `/proc/<pid>/exe` target when readable (root, or own processes).
    pub exe: Option<String>,
}

impl Process {
    /// True when the process runs a program called `name`: the kernel's name (truncated to
    /// 15 bytes, as the kernel does) or the base name of its first argument.
    ///
    /// A name longer than 15 bytes is ambiguous in `comm` (`systemd-journald` and
    /// `systemd-journal-upload` both read `systemd-journal`), so it must then match the
    /// first argument or the executable where either is known.
    pub fn is_named(&self, name: &str) -> bool {
        if self.argv0 == name {
            return true;
        }
        let exe_name = self.exe.as_deref().and_then(|e| e.rsplit('/').next());
        if exe_name == Some(name) {
            return true;
        }
        if name.len() > 15 && (!self.argv0.is_empty() || exe_name.is_some()) {
            return false;
        }
        self.comm == truncate_comm(name)
    }
}

fn truncate_comm(name: &str) -> &str {
    let mut end = name.len().min(15);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// The processes of a root.
#[derive(Debug, Clone, Default)]
pub struct ProcessTable {
    pub processes: Vec<Process>,
    pub truncated: bool,
}

impl ProcessTable {
    /// Reads `/proc/<pid>` entries; `None` when the root has no process table.
    pub fn load(root: &HostRoot) -> Option<ProcessTable> {
        let names = root.read_dir("/proc").ok()?;
        let mut table = ProcessTable::default();
        let mut any_pid = false;
        for name in names {
            let Ok(pid) = name.parse::<u32>() else {
                continue;
            };
            any_pid = true;
            if table.processes.len() >= MAX_PROCESSES {
                table.truncated = true;
                break;
            }
            // A process may exit between listing and reading: skip it quietly.
            let Ok(comm) = root.read_bytes(&format!("/proc/{pid}/comm"), 4096) else {
                continue;
            };
            let comm = String::from_utf8_lossy(&comm)
                .trim_end_matches('\n')
                .to_string();
            let argv0 = root
                .read_bytes(&format!("/proc/{pid}/cmdline"), 64 * 1024)
                .map(|b| parse_argv0(&b))
                .unwrap_or_default();
            let exe = root
                .read_link(&format!("/proc/{pid}/exe"))
                .ok()
                .map(|t| t.trim_end_matches(" (deleted)").to_string());
            table.processes.push(Process {
                pid,
                comm,
                argv0,
                exe,
            });
        }
        any_pid.then_some(table)
    }

    /// Processes running a program called `name`.
    pub fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Process> + 'a {
        self.processes.iter().filter(move |p| p.is_named(name))
    }

    /// True when some process runs `name`.
    pub fn runs(&self, name: &str) -> bool {
        self.named(name).next().is_some()
    }

    /// Processes whose executable lies under `dir` (`/opt/CrowdStrike/`).
    pub fn under<'a>(&'a self, dir: &'a str) -> impl Iterator<Item = &'a Process> + 'a {
        let dir = dir.trim_end_matches('/');
        self.processes.iter().filter(move |p| {
            p.exe
                .as_deref()
                .is_some_and(|e| e.strip_prefix(dir).is_some_and(|r| r.starts_with('/')))
        })
    }
}

/// The base name of the first NUL-separated argument of a `cmdline` file.
pub fn parse_argv0(cmdline: &[u8]) -> String {
    let first = cmdline.split(|&b| b == 0).next().unwrap_or_default();
    let first = String::from_utf8_lossy(first);
    // Some daemons rewrite their argv into one string ("sshd: user@pts/0").
    let word = first.split([' ', ':']).next().unwrap_or_default();
    word.rsplit('/').next().unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv0_is_the_base_name_of_the_first_argument() {
        assert_eq!(parse_argv0(b"/usr/sbin/rsyslogd\0-n\0-iNONE\0"), "rsyslogd");
        assert_eq!(parse_argv0(b"sshd: alice@pts/0"), "sshd");
        assert_eq!(parse_argv0(b""), "");
        assert_eq!(parse_argv0(b"\xff\xfe/x\0"), "x");
    }

    #[test]
    fn names_match_truncated_comm_or_argv0() {
        let p = Process {
            pid: 1,
            comm: "falcon-sensor-b".into(),
            argv0: "falcon-sensor-bpf".into(),
            exe: Some("/opt/CrowdStrike/falcon-sensor-bpf".into()),
        };
        assert!(p.is_named("falcon-sensor-bpf"));
        assert!(!p.is_named("falcon-sensor"));
        let journald = Process {
            pid: 2,
            comm: "systemd-journal".into(),
            argv0: "systemd-journald".into(),
            exe: None,
        };
        assert!(journald.is_named("systemd-journald"));
        assert!(!journald.is_named("systemd-journal-upload"));
        let bare = Process {
            argv0: String::new(),
            ..journald
        };
        assert!(
            bare.is_named("systemd-journal-upload"),
            "nothing better to go on"
        );
        let table = ProcessTable {
            processes: vec![p],
            truncated: false,
        };
        assert_eq!(table.under("/opt/CrowdStrike").count(), 1);
        assert_eq!(table.under("/opt/Crowd").count(), 0);
    }

    #[test]
    fn reads_a_fixture_proc_and_knows_when_there_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let root = HostRoot::new(dir.path()).unwrap();
        assert!(ProcessTable::load(&root).is_none());
        std::fs::create_dir_all(dir.path().join("proc/1234")).unwrap();
        std::fs::create_dir_all(dir.path().join("proc/sys")).unwrap();
        std::fs::write(dir.path().join("proc/1234/comm"), "auditd\n").unwrap();
        std::fs::write(dir.path().join("proc/1234/cmdline"), "/sbin/auditd\0").unwrap();
        let table = ProcessTable::load(&root).unwrap();
        assert!(table.runs("auditd"));
        assert!(!table.runs("rsyslogd"));
    }

    #[test]
    fn the_live_table_includes_this_process() {
        let root = HostRoot::new("/").unwrap();
        let table = ProcessTable::load(&root).unwrap();
        let me = std::process::id();
        assert!(table.processes.iter().any(|p| p.pid == me));
    }
}
