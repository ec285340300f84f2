//! The Linux audit daemon's configuration: `auditd.conf(5)` and audit rules in `auditctl(8)`
//! syntax, with what the rules cover (identity files, sudoers, clock changes, immutability).

use std::collections::BTreeSet;

/// `key = value` pairs of `auditd.conf`, keys lower-cased, in order.
pub fn parse_auditd_conf(text: &str) -> Vec<(String, String, usize)> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r').trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            out.push((k.trim().to_ascii_lowercase(), v.trim().to_string(), i + 1));
        }
    }
    out
}

/// The last value of a key in parsed `auditd.conf` pairs.
pub fn conf_value<'a>(pairs: &'a [(String, String, usize)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _, _)| k == key)
        .map(|(_, v, _)| v.as_str())
}

/// One loaded audit rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// `-w path -p perms`: a file or (recursively) directory watch.
    Watch { path: String, perms: String },
    /// `-a action,list -S … -F …`.
    Syscall {
        action: String,
        list: String,
        syscalls: BTreeSet<String>,
        /// `(field, operator, value)`.
        fields: Vec<(String, String, String)>,
    },
}

/// What a set of rule files amounts to once loaded in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleSet {
    pub rules: Vec<(Rule, String, usize)>,
    /// The last `-e` value (0 disabled, 1 enabled, 2 immutable).
    pub enable: Option<u8>,
    /// Lines auditctl would reject, with the reason.
    pub bad_lines: Vec<(String, usize, String)>,
}

impl RuleSet {
    /// Applies one file's lines, as `auditctl -R` does (`-D` drops what came before).
    pub fn apply(&mut self, file: &str, text: &str) {
        self.apply_lines(file, text, false);
    }

    /// Applies one file of `/etc/audit/rules.d` as `augenrules` merges them: a bare `-D`
    /// moves to the top of the merged file (so it drops nothing of the other files) and the
    /// last `-e` to its end.
    pub fn apply_component(&mut self, file: &str, text: &str) {
        self.apply_lines(file, text, true);
    }

    fn apply_lines(&mut self, file: &str, text: &str, component: bool) {
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim_end_matches('\r').trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if component && line == "-D" {
                continue;
            }
            if let Err(e) = self.apply_line(file, i + 1, line) {
                self.bad_lines.push((file.to_string(), i + 1, e));
            }
        }
    }

    fn apply_line(&mut self, file: &str, line_no: usize, line: &str) -> Result<(), String> {
        let words: Vec<&str> = line.split_ascii_whitespace().collect();
        let mut i = 0;
        let mut watch: Option<String> = None;
        let mut remove_watch: Option<String> = None;
        let mut perms: Option<String> = None;
        let mut action: Option<(String, String)> = None;
        let mut syscalls = BTreeSet::new();
        let mut fields = Vec::new();
        let mut delete = false;
        while i < words.len() {
            let w = words[i];
            // Options may be glued to their value (`-F arch=b64` or `-Farch=b64`).
            let (opt, glued) = if w.starts_with("--") {
                (w, None)
            } else if w.len() > 2 && w.starts_with('-') {
                (&w[..2], Some(&w[2..]))
            } else {
                (w, None)
            };
            let takes_value = matches!(
                opt,
                "-w" | "-W"
                    | "-p"
                    | "-k"
                    | "-a"
                    | "-A"
                    | "-d"
                    | "-S"
                    | "-F"
                    | "-e"
                    | "-b"
                    | "-f"
                    | "-r"
                    | "-C"
                    | "--backlog_wait_time"
            );
            let value = if takes_value {
                match glued {
                    Some(v) => Some(v),
                    None => {
                        i += 1;
                        Some(*words.get(i).ok_or(format!("{opt} needs a value"))?)
                    }
                }
            } else {
                None
            };
            let v = value.unwrap_or_default();
            match opt {
                // `-D -k key` deletes that key's rules only; keys are not kept, so it is
                // left alone rather than dropping everything.
                "-D" if !words.contains(&"-k") => {
                    self.rules.clear();
                }
                "-D" => {}
                "-w" => watch = Some(v.to_string()),
                "-W" => remove_watch = Some(v.to_string()),
                "-p" => perms = Some(v.to_string()),
                "-a" | "-A" => action = Some(split_action(v)?),
                "-d" => {
                    action = Some(split_action(v)?);
                    delete = true;
                }
                "-S" => {
                    for s in v.split(',').filter(|s| !s.is_empty()) {
                        syscalls.insert(s.to_string());
                    }
                }
                "-F" => fields.push(split_field(v)?),
                "-e" => {
                    let n: u8 = v
                        .parse()
                        .map_err(|_| format!("-e {v}: expected 0, 1 or 2"))?;
                    if n > 2 {
                        return Err(format!("-e {v}: expected 0, 1 or 2"));
                    }
                    self.enable = Some(n);
                }
                "-k"
                | "-b"
                | "-f"
                | "-r"
                | "-C"
                | "--backlog_wait_time"
                | "-i"
                | "-c"
                | "--loginuid-immutable"
                | "--reset-lost" => {}
                other => return Err(format!("unknown option {other}")),
            }
            i += 1;
        }
        let _ = file;
        let _ = line_no;
        if let Some(path) = remove_watch {
            self.rules
                .retain(|(r, _, _)| !matches!(r, Rule::Watch { path: p, .. } if *p == path));
        }
        if let Some(path) = watch {
            self.rules.push((
                Rule::Watch {
                    path,
                    perms: perms.unwrap_or_else(|| "rwxa".into()),
                },
                file.to_string(),
                line_no,
            ));
        } else if let Some((action, list)) = action {
            if let Some(p) = perms {
                fields.push(("perm".into(), "=".into(), p));
            }
            let rule = Rule::Syscall {
                action,
                list,
                syscalls,
                fields,
            };
            if delete {
                self.rules.retain(|(r, _, _)| *r != rule);
            } else {
                self.rules.push((rule, file.to_string(), line_no));
            }
        }
        Ok(())
    }

    /// True when writes or attribute changes to `target` are recorded: a watch on it or on a
    /// directory above it with `w` or `a`, or an `always,exit` rule on `path=`/`dir=` with
    /// such a `perm=`.
    pub fn watches_writes(&self, target: &str) -> bool {
        let covers = |path: &str, exact_only: bool| {
            let path = path.trim_end_matches('/');
            target == path
                || (!exact_only
                    && target
                        .strip_prefix(path)
                        .is_some_and(|rest| rest.starts_with('/')))
        };
        let writes = |perms: &str| perms.contains('w') || perms.contains('a');
        self.rules.iter().any(|(rule, _, _)| match rule {
            Rule::Watch { path, perms } => writes(perms) && covers(path, false),
            Rule::Syscall {
                action,
                list,
                fields,
                ..
            } => {
                if action != "always" || list != "exit" {
                    return false;
                }
                let perm_ok = fields
                    .iter()
                    .find(|(f, _, _)| f == "perm")
                    .is_some_and(|(_, op, v)| op == "=" && writes(v));
                let target_ok = fields.iter().any(|(f, op, v)| {
                    op == "="
                        && ((f == "path" && covers(v, true)) || (f == "dir" && covers(v, false)))
                });
                perm_ok && target_ok
            }
        })
    }

    /// The syscalls among `wanted` that some `always,exit` rule records.
    pub fn syscalls_recorded<'a>(&self, wanted: &[&'a str]) -> BTreeSet<&'a str> {
        let mut found = BTreeSet::new();
        for (rule, _, _) in &self.rules {
            if let Rule::Syscall {
                action,
                list,
                syscalls,
                ..
            } = rule
                && action == "always"
                && list == "exit"
            {
                for w in wanted {
                    if syscalls.contains(*w) || syscalls.contains("all") {
                        found.insert(*w);
                    }
                }
            }
        }
        found
    }
}

/// Orders file names as `ls -v` does (augenrules' order): digit runs compare as numbers.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, _) => return std::cmp::Ordering::Less,
            (_, None) => return std::cmp::Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let nx = x.iter().take_while(|c| c.is_ascii_digit()).count();
                let ny = y.iter().take_while(|c| c.is_ascii_digit()).count();
                let (dx, dy) = (&x[..nx], &y[..ny]);
                // Compare numerically without overflow: strip zeros, then length, then digits.
                let tx = &dx[dx.iter().take_while(|c| **c == b'0').count()..];
                let ty = &dy[dy.iter().take_while(|c| **c == b'0').count()..];
                let ord = tx.len().cmp(&ty.len()).then(tx.cmp(ty));
                if ord != std::cmp::Ordering::Equal {
                    return ord;
                }
                x = &x[nx..];
                y = &y[ny..];
            }
            (Some(c), Some(d)) => {
                if c != d {
                    return c.cmp(d);
                }
                x = &x[1..];
                y = &y[1..];
            }
        }
    }
}

fn split_action(v: &str) -> Result<(String, String), String> {
    let (a, b) = v
        .split_once(',')
        .ok_or(format!("-a {v}: expected action,list"))?;
    // auditctl accepts both orders (`exit,always`).
    const ACTIONS: [&str; 2] = ["always", "never"];
    let (action, list) = if ACTIONS.contains(&a) { (a, b) } else { (b, a) };
    if !ACTIONS.contains(&action) {
        return Err(format!("-a {v}: unknown action"));
    }
    Ok((action.to_string(), list.to_string()))
}

fn split_field(v: &str) -> Result<(String, String, String), String> {
    for op in ["!=", ">=", "<=", "&=", "=", ">", "<", "&"] {
        if let Some((f, val)) = v.split_once(op) {
            return Ok((f.to_string(), op.to_string(), val.to_string()));
        }
    }
    Err(format!("-F {v}: expected field=value"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auditd_conf_pairs() {
        let pairs = parse_auditd_conf(
            "# comment\nlog_file = /var/log/audit/audit.log\r\nDisk_Full_Action = SUSPEND\n\
             num_logs=5\nbroken\ndisk_full_action = HALT\n",
        );
        assert_eq!(conf_value(&pairs, "disk_full_action"), Some("HALT"));
        assert_eq!(conf_value(&pairs, "num_logs"), Some("5"));
        assert_eq!(conf_value(&pairs, "space_left_action"), None);
    }

    const CIS: &str = "\
## First rule - delete all
-D
-b 8192
--backlog_wait_time 60000
-f 1
-w /etc/group -p wa -k identity
-w /etc/passwd -p wa -k identity
-a always,exit -F path=/etc/shadow -F perm=wa -F auid>=1000 -F auid!=unset -k identity
-w /etc/gshadow -p wa -k identity
-w /etc/sudoers -p wa -k scope
-w /etc/sudoers.d -p wa -k scope
-a always,exit -F arch=b64 -S adjtimex,settimeofday -k time-change
-a always,exit -F arch=b32 -S adjtimex,settimeofday,stime -k time-change
-a exit,always -F arch=b64 -S clock_settime -F a0=0x0 -k time-change
-w /etc/localtime -p wa -k time-change
-e 2
";

    #[test]
    fn cis_style_rules_cover_everything() {
        let mut set = RuleSet::default();
        set.apply("/etc/audit/rules.d/cis.rules", CIS);
        assert!(set.bad_lines.is_empty(), "{:?}", set.bad_lines);
        for f in [
            "/etc/passwd",
            "/etc/group",
            "/etc/shadow",
            "/etc/gshadow",
            "/etc/sudoers",
        ] {
            assert!(set.watches_writes(f), "{f}");
        }
        assert!(set.watches_writes("/etc/sudoers.d/90-deploy"));
        assert!(!set.watches_writes("/etc/hosts"));
        assert_eq!(
            set.syscalls_recorded(&["adjtimex", "settimeofday", "clock_settime"])
                .len(),
            3
        );
        assert_eq!(set.enable, Some(2));
    }

    #[test]
    fn read_only_watches_never_rules_and_deletions_do_not_count() {
        let mut set = RuleSet::default();
        set.apply(
            "a",
            "-w /etc/passwd -p r\n-a never,exit -S adjtimex\n-w /etc/shadow\n-W /etc/shadow\n\
             -w /etc/group -p wa\n-D\n-w /etc/gshadow -p wa\n-a always,exit -F path=/etc/sudoers\n",
        );
        assert!(!set.watches_writes("/etc/passwd"));
        assert!(!set.watches_writes("/etc/group"), "-D dropped it");
        assert!(set.watches_writes("/etc/gshadow"));
        assert!(!set.watches_writes("/etc/shadow"), "-W removed it");
        assert!(
            !set.watches_writes("/etc/sudoers"),
            "no perm= on the syscall rule"
        );
        assert!(set.syscalls_recorded(&["adjtimex"]).is_empty());
        // A watch without -p records everything, writes included.
        let mut set = RuleSet::default();
        set.apply("a", "-w /etc/\n-a always,exit -S all\n");
        assert!(set.watches_writes("/etc/shadow"));
        assert_eq!(set.syscalls_recorded(&["adjtimex"]).len(), 1);
        // A path= rule covers that file only, dir= covers the tree.
        let mut set = RuleSet::default();
        set.apply(
            "a",
            "-a always,exit -F path=/etc -F perm=w\n-a always,exit -F dir=/var -F perm=w\n",
        );
        assert!(!set.watches_writes("/etc/shadow"));
        assert!(set.watches_writes("/var/x"));
    }

    #[test]
    fn augenrules_hoists_bare_deletes_and_sorts_naturally() {
        let mut set = RuleSet::default();
        set.apply_component("/etc/audit/rules.d/10-a.rules", "-w /etc/passwd -p wa\n");
        set.apply_component("/etc/audit/rules.d/audit.rules", "-D\n-b 8192\n");
        assert!(set.watches_writes("/etc/passwd"));
        let mut names = vec![
            "audit.rules",
            "99-finalize.rules",
            "10-x.rules",
            "9-y.rules",
            "010-z.rules",
        ];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            names,
            [
                "9-y.rules",
                "10-x.rules",
                "010-z.rules",
                "99-finalize.rules",
                "audit.rules"
            ]
        );
    }

    #[test]
    fn bad_lines_are_kept_with_reasons() {
        let mut set = RuleSet::default();
        set.apply(
            "f",
            "-w\n-e 9\n-a sometimes,exit\n--bogus\n-F\n-Farch=b64 -a always,exit -Sadjtimex\n",
        );
        let lines: Vec<usize> = set.bad_lines.iter().map(|b| b.1).collect();
        assert_eq!(lines, [1, 2, 3, 4, 5]);
        assert_eq!(set.syscalls_recorded(&["adjtimex"]).len(), 1);
        for junk in ["\u{0}", "-", "--", "-a ,", "-F =", "-e", "-S ,,,"] {
            let mut s = RuleSet::default();
            s.apply("j", junk);
        }
    }
}
