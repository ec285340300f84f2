//! The accounts check run through `run_check`: on the committed fixture hosts, and on trees
//! built here for what git cannot carry (file modes, owners, sparse files, databases).

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use vigil_shared::{CheckResult, Status, Subject, Value};

use super::Accounts;
use crate::checks::{CheckContext, run_check};
use crate::hostroot::HostRoot;
use crate::settings::ChecksConfig;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/hosts")
        .join(name)
}

fn fixture_now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-06-01T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn run_with(root: &Path, settings: &ChecksConfig) -> BTreeMap<String, CheckResult> {
    let root = HostRoot::new(root).unwrap();
    let ctx = CheckContext {
        root: &root,
        now: fixture_now(),
        settings,
        cache_dir: None,
    };
    run_check(&Accounts, &ctx)
        .into_iter()
        .map(|r| (r.check.clone(), r))
        .collect()
}

fn run(root: &Path) -> BTreeMap<String, CheckResult> {
    run_with(root, &ChecksConfig::default())
}

fn ids(subjects: &[Subject]) -> Vec<&str> {
    subjects.iter().map(|s| s.id.as_str()).collect()
}

fn offenders<'a>(results: &'a BTreeMap<String, CheckResult>, id: &str) -> Vec<&'a str> {
    ids(&results[id].evidence.offenders)
}

fn checked<'a>(results: &'a BTreeMap<String, CheckResult>, id: &str) -> Vec<&'a str> {
    ids(&results[id].evidence.checked)
}

fn value<'a>(results: &'a BTreeMap<String, CheckResult>, id: &str, key: &str) -> &'a Value {
    results[id]
        .values
        .get(key)
        .unwrap_or_else(|| panic!("{id} has no value {key}"))
}

fn int(results: &BTreeMap<String, CheckResult>, id: &str, key: &str) -> i64 {
    value(results, id, key).as_i64().unwrap()
}

fn fact<'a>(subject: &'a Subject, key: &str) -> &'a Value {
    subject
        .facts
        .get(key)
        .unwrap_or_else(|| panic!("{} has no fact {key}", subject.id))
}

fn subject<'a>(results: &'a BTreeMap<String, CheckResult>, id: &str, name: &str) -> &'a Subject {
    let evidence = &results[id].evidence;
    evidence
        .offenders
        .iter()
        .chain(evidence.checked.iter())
        .find(|s| s.id == name)
        .unwrap_or_else(|| panic!("{id} has no subject {name}"))
}

fn statuses(results: &BTreeMap<String, CheckResult>) -> Vec<(&str, Status)> {
    results
        .values()
        .map(|r| (r.check.as_str(), r.status))
        .collect()
}

#[test]
fn healthy_host_passes_every_output() {
    let results = run(&fixture("healthy"));
    assert_eq!(results.len(), 8);
    for result in results.values() {
        assert_eq!(
            result.status,
            Status::Pass,
            "{}: {}",
            result.check,
            result.summary
        );
        assert!(
            !result.evidence.sources.is_empty(),
            "{} lists no source",
            result.check
        );
        assert!(result.evidence.offenders.is_empty(), "{}", result.check);
    }
    assert_eq!(int(&results, "accounts.inventory", "accounts"), 24);
    assert_eq!(int(&results, "accounts.inventory", "human_accounts"), 2);
    assert_eq!(
        int(&results, "accounts.inventory", "login_capable_accounts"),
        1
    );
    let alice = subject(&results, "accounts.inventory", "alice");
    assert_eq!(fact(alice, "password"), &Value::from("usable"));
    assert_eq!(fact(alice, "hash_algorithm"), &Value::from("yescrypt"));
    assert_eq!(
        fact(alice, "groups"),
        &Value::from(vec!["adm", "sudo", "users"])
    );
    // The newest login of the two sources: wtmp has a later session than lastlog.
    assert_eq!(
        fact(alice, "last_login"),
        &Value::from("2026-05-31T17:02:00Z")
    );
    assert_eq!(
        fact(alice, "last_login_source"),
        &Value::from("/var/log/wtmp")
    );
    let carol = subject(&results, "accounts.inventory", "carol");
    assert_eq!(
        fact(carol, "expired"),
        &Value::from("account expired on 2026-01-20")
    );
    assert_eq!(
        fact(carol, "locked_by"),
        &Value::from("! before a hash (passwd -l)")
    );

    assert_eq!(checked(&results, "accounts.uid0"), ["root"]);
    assert_eq!(checked(&results, "accounts.password_age"), ["alice"]);
    assert_eq!(checked(&results, "accounts.privileged"), ["alice", "root"]);
    assert_eq!(
        int(&results, "accounts.privileged", "privileged_accounts"),
        2
    );
    assert_eq!(
        results["accounts.sudo_nopasswd"].evidence.sources,
        ["/etc/sudoers", "/etc/sudoers.d/README"]
    );
    assert_eq!(int(&results, "accounts.sudo_nopasswd", "nopasswd_rules"), 0);
    let key = subject(
        &results,
        "accounts.authorized_keys",
        "/home/alice/.ssh/authorized_keys:1",
    );
    assert_eq!(
        fact(key, "fingerprint"),
        &Value::from("SHA256:vRftemU7rck9BxVC0+t59m6fcTAJ9zkqjHv1Ahf2EGk")
    );
    assert_eq!(fact(key, "bits"), &Value::from(256u32));
    assert_eq!(checked(&results, "accounts.dormant"), ["alice"]);
    assert_eq!(
        results["accounts.dormant"].evidence.sources,
        [
            "/etc/passwd",
            "/etc/shadow",
            "/var/log/lastlog",
            "/var/log/wtmp",
            "/home/alice/.ssh/authorized_keys"
        ]
    );
}

#[test]
fn misconfigured_host_shows_every_seeded_problem() {
    let results = run(&fixture("misconfigured"));
    assert_eq!(
        statuses(&results),
        [
            ("accounts.authorized_keys", Status::Fail),
            ("accounts.dormant", Status::Fail),
            ("accounts.empty_passwords", Status::Fail),
            ("accounts.inventory", Status::Pass),
            ("accounts.password_age", Status::Fail),
            ("accounts.privileged", Status::Fail),
            ("accounts.sudo_nopasswd", Status::Fail),
            ("accounts.uid0", Status::Fail),
        ]
    );
    assert_eq!(offenders(&results, "accounts.uid0"), ["toor"]);
    assert_eq!(
        offenders(&results, "accounts.empty_passwords"),
        ["guest", "ftpuser"]
    );
    let ftp = subject(&results, "accounts.empty_passwords", "ftpuser");
    assert_eq!(fact(ftp, "password"), &Value::from("missing"));
    assert_eq!(
        offenders(&results, "accounts.password_age"),
        ["root", "dave", "toor"]
    );
    assert!(
        subject(&results, "accounts.password_age", "dave")
            .reason
            .as_deref()
            .unwrap()
            .contains("no maximum password age")
    );
    assert_eq!(offenders(&results, "accounts.privileged"), ["deploy"]);
    assert_eq!(
        checked(&results, "accounts.privileged"),
        ["alice", "dave", "root", "toor"]
    );

    // NOPASSWD through aliases and a plain NOPASSWD: ALL; the .disabled file is skipped.
    assert_eq!(
        offenders(&results, "accounts.sudo_nopasswd"),
        ["/etc/sudoers.d/50-webops:6", "/etc/sudoers.d/90-deploy:2"]
    );
    assert_eq!(int(&results, "accounts.sudo_nopasswd", "nopasswd_rules"), 2);
    assert_eq!(
        int(&results, "accounts.sudo_nopasswd", "nopasswd_all_rules"),
        1
    );
    let webops = subject(
        &results,
        "accounts.sudo_nopasswd",
        "/etc/sudoers.d/50-webops:6",
    );
    assert_eq!(fact(webops, "who"), &Value::from(vec!["bob", "%webadmins"]));
    assert_eq!(
        fact(webops, "commands"),
        &Value::from(vec![
            "/usr/bin/systemctl restart nginx",
            "/usr/bin/systemctl reload nginx"
        ])
    );
    assert_eq!(fact(webops, "grants_all"), &Value::from(false));
    assert_eq!(fact(webops, "runas"), &Value::from("root"));
    let deploy = subject(
        &results,
        "accounts.sudo_nopasswd",
        "/etc/sudoers.d/90-deploy:2",
    );
    assert_eq!(fact(deploy, "grants_all"), &Value::from(true));
    assert!(
        !results["accounts.sudo_nopasswd"]
            .evidence
            .sources
            .iter()
            .any(|s| s.contains("disabled"))
    );

    assert_eq!(
        offenders(&results, "accounts.authorized_keys"),
        [
            "/root/.ssh/authorized_keys:1",
            "/home/dave/.ssh/authorized_keys:2"
        ]
    );
    let root_key = subject(
        &results,
        "accounts.authorized_keys",
        "/root/.ssh/authorized_keys:1",
    );
    assert_eq!(fact(root_key, "bits"), &Value::from(1024u32));
    assert_eq!(
        fact(root_key, "accounts"),
        &Value::from(vec!["root", "toor"])
    );
    assert_eq!(int(&results, "accounts.authorized_keys", "keys"), 6);

    assert_eq!(offenders(&results, "accounts.dormant"), ["bob", "toor"]);
    let bob = subject(&results, "accounts.dormant", "bob");
    assert_eq!(
        fact(bob, "last_login"),
        &Value::from("2025-10-01T10:00:00Z")
    );
    // uid 0 is shared: lastlog cannot tell root from toor, wtmp can.
    let root = subject(&results, "accounts.dormant", "root");
    assert_eq!(
        fact(root, "last_login_source"),
        &Value::from("/var/log/wtmp")
    );
    assert_eq!(fact(root, "lastlog_shared_uid"), &Value::from(true));
    // lastlog2 holds alice's newest login.
    let alice = subject(&results, "accounts.dormant", "alice");
    assert_eq!(
        fact(alice, "last_login_source"),
        &Value::from("/var/lib/lastlog/lastlog2.db")
    );
}

#[test]
fn minimal_host_has_no_data() {
    let results = run(&fixture("minimal"));
    for result in results.values() {
        assert_eq!(
            result.status,
            Status::NoData,
            "{}: {}",
            result.check,
            result.summary
        );
        assert!(result.error.is_none());
    }
}

#[test]
fn settings_move_the_thresholds() {
    let mut settings = ChecksConfig::default();
    settings.accounts.dormant_days = 400;
    settings.accounts.max_password_age_days = 2000;
    settings.accounts.privileged_groups = vec!["adm".into()];
    let results = run_with(&fixture("misconfigured"), &settings);
    assert_eq!(offenders(&results, "accounts.dormant"), ["toor"]);
    // Still no maximum age for all three.
    assert_eq!(
        offenders(&results, "accounts.password_age"),
        ["root", "dave", "toor"]
    );
    assert!(
        !subject(&results, "accounts.password_age", "dave")
            .reason
            .as_deref()
            .unwrap()
            .contains("last changed")
    );
    // alice is in adm, and still holds sudo through %sudo.
    let alice = subject(&results, "accounts.privileged", "alice");
    assert_eq!(
        fact(alice, "privileges"),
        &Value::from(vec![
            "member of group adm",
            "sudoers /etc/sudoers:50: ALL as root"
        ])
    );
}

/// A host tree built in a test.
struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    fn new() -> Self {
        Tree {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, host_path: &str) -> PathBuf {
        self.dir.path().join(host_path.trim_start_matches('/'))
    }

    fn file(&self, host_path: &str, content: impl AsRef<[u8]>) -> &Self {
        let path = self.path(host_path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
        self
    }

    fn chmod(&self, host_path: &str, mode: u32) -> &Self {
        std::fs::set_permissions(self.path(host_path), std::fs::Permissions::from_mode(mode))
            .unwrap();
        self
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }
}

const ED25519: &str = super::authorized_keys::tests::ED25519;

#[test]
fn key_file_modes_owners_and_accounts_that_should_hold_no_keys() {
    let tree = Tree::new();
    let runner_uid = std::fs::metadata(tree.root()).unwrap().uid();
    let runner_gid = std::fs::metadata(tree.root()).unwrap().gid();
    let judged = runner_uid == 0;
    // The runner's gid is a group shared by two accounts: group write on it is unsafe.
    tree.file(
        "/etc/passwd",
        format!(
            "alice:x:1000:{runner_gid}::/home/alice:/bin/bash\n\
             bob:x:1001:{runner_gid}::/home/bob:/bin/bash\n\
             svc:x:998:998::/var/lib/svc:/usr/sbin/nologin\n\
             old:x:1003:1003::/home/old:/bin/bash\n\
             fine:x:1004:1004::/home/fine:/bin/bash\n"
        ),
    )
    .file(
        "/etc/shadow",
        "alice:!:20000:0:99999:7:::\nbob:!:20000:0:99999:7:::\nsvc:*:20000:0:99999:7:::\n\
         old:!:20000:0:99999:7::20100:\nfine:!:20000:0:99999:7:::\n",
    )
    .file(
        "/etc/group",
        format!("shared:x:{runner_gid}:\nsvc:x:998:\n"),
    )
    .file("/etc/shells", "/bin/sh\n/bin/bash\n");
    for home in [
        "/home/alice",
        "/home/bob",
        "/var/lib/svc",
        "/home/old",
        "/home/fine",
    ] {
        tree.file(
            &format!("{home}/.ssh/authorized_keys"),
            format!("{ED25519} x\n"),
        )
        .chmod(&format!("{home}/.ssh/authorized_keys"), 0o600)
        .chmod(&format!("{home}/.ssh"), 0o700)
        .chmod(home, 0o755);
    }
    tree.chmod("/home/alice/.ssh/authorized_keys", 0o664)
        .chmod("/home/bob/.ssh", 0o777);
    if judged {
        std::os::unix::fs::chown(
            tree.path("/home/fine/.ssh/authorized_keys"),
            Some(4242),
            None,
        )
        .unwrap();
    }
    let results = run(tree.root());
    let keys = &results["accounts.authorized_keys"];
    assert_eq!(keys.status, Status::Fail, "{}", keys.summary);
    assert_eq!(
        value(&results, "accounts.authorized_keys", "file_owners_judged"),
        &Value::from(judged)
    );
    let mut expected = vec![
        "/home/alice/.ssh/authorized_keys",
        "/home/bob/.ssh/authorized_keys",
    ];
    if judged {
        expected.push("/home/fine/.ssh/authorized_keys");
    }
    expected.extend(["svc", "old"]);
    assert_eq!(ids(&keys.evidence.offenders), expected);
    let alice = subject(
        &results,
        "accounts.authorized_keys",
        "/home/alice/.ssh/authorized_keys",
    );
    assert!(
        alice
            .reason
            .as_deref()
            .unwrap()
            .contains("file writable by group shared (0664)"),
        "{:?}",
        alice.reason
    );
    let bob = subject(
        &results,
        "accounts.authorized_keys",
        "/home/bob/.ssh/authorized_keys",
    );
    assert!(
        bob.reason
            .as_deref()
            .unwrap()
            .contains("/home/bob/.ssh: directory writable by others (0777)"),
        "{:?}",
        bob.reason
    );
    if judged {
        let fine = subject(
            &results,
            "accounts.authorized_keys",
            "/home/fine/.ssh/authorized_keys",
        );
        assert!(
            fine.reason
                .as_deref()
                .unwrap()
                .contains("owned by uid 4242, not by fine or root")
        );
    }
    let svc = subject(&results, "accounts.authorized_keys", "svc");
    assert!(
        svc.reason
            .as_deref()
            .unwrap()
            .contains("without a login shell")
    );
    let old = subject(&results, "accounts.authorized_keys", "old");
    assert!(old.reason.as_deref().unwrap().contains("expired account"));
    assert_eq!(
        int(&results, "accounts.authorized_keys", "unsafe_key_files"),
        expected.len() as i64 - 2
    );
}

#[test]
fn group_write_is_fine_when_the_group_is_the_owners_alone() {
    // Debian's sshd accepts a group-writable file whose group has the owner as only member.
    let tree = Tree::new();
    let meta = std::fs::metadata(tree.root()).unwrap();
    let (uid, gid) = (meta.uid(), meta.gid());
    tree.file(
        "/etc/passwd",
        format!("owner:x:{uid}:{gid}::/home/owner:/bin/bash\n"),
    )
    .file("/etc/shadow", "owner:!:20000:0:99999:7:::\n")
    .file("/etc/group", format!("owner:x:{gid}:\n"))
    .file("/home/owner/.ssh/authorized_keys", format!("{ED25519} x\n"))
    .chmod("/home/owner/.ssh/authorized_keys", 0o664)
    .chmod("/home/owner/.ssh", 0o770)
    .chmod("/home/owner", 0o775);
    let results = run(tree.root());
    let keys = &results["accounts.authorized_keys"];
    // uid 0 as "owner" would be a uid-0 account; the keys output is what matters here.
    assert_eq!(keys.status, Status::Pass, "{}", keys.summary);
    assert_eq!(int(&results, "accounts.authorized_keys", "keys"), 1);
}

#[test]
fn an_unreadable_shadow_is_an_error_but_passwd_is_still_judged() {
    // Root reads any file whatever its mode; a directory in place of the file gives the same
    // "present but unreadable" state on every runner.
    let tree = Tree::new();
    tree.file(
        "/etc/passwd",
        "root:x:0:0:root:/root:/bin/bash\ntoor:x:0:0::/root:/bin/bash\nnopw::1000:1000::/home/nopw:/bin/bash\nalice:x:1001:1001::/home/alice:/bin/bash\n",
    );
    std::fs::create_dir_all(tree.path("/etc/shadow")).unwrap();
    let results = run(tree.root());
    let inventory = &results["accounts.inventory"];
    assert_eq!(inventory.status, Status::Error);
    assert!(
        inventory.summary.contains("/etc/shadow"),
        "{}",
        inventory.summary
    );
    assert!(
        inventory
            .error
            .as_deref()
            .unwrap()
            .contains("not a regular file")
    );
    assert_eq!(
        ids(&inventory.evidence.checked),
        ["root", "toor", "nopw", "alice"]
    );
    assert_eq!(
        fact(&inventory.evidence.checked[3], "password"),
        &Value::from("unknown")
    );
    // uid 0 needs nothing from shadow.
    assert_eq!(results["accounts.uid0"].status, Status::Fail);
    // The empty passwd field is found; the rest cannot be judged, and the summary says so.
    let empty = &results["accounts.empty_passwords"];
    assert_eq!(empty.status, Status::Fail);
    assert_eq!(ids(&empty.evidence.offenders), ["nopw"]);
    assert!(empty.summary.contains("incomplete"), "{}", empty.summary);
    let age = &results["accounts.password_age"];
    assert_eq!(age.status, Status::Error, "{}", age.summary);
    assert!(age.error.as_deref().unwrap().contains("/etc/shadow"));
}

#[test]
fn last_logins_come_from_every_source_and_the_newest_wins() {
    use super::logins::tests::{lastlog_record, utmp_record};
    let tree = Tree::new();
    tree.file(
        "/etc/passwd",
        "alice:x:1000:1000::/home/alice:/bin/bash\n\
         bob:x:1001:1001::/home/bob:/bin/bash\n\
         carol:x:1002:1002::/home/carol:/bin/bash\n\
         far:x:4294967294:1003::/home/far:/bin/bash\n\
         new:x:1004:1004::/home/new:/bin/bash\n",
    )
    .file(
        "/etc/shadow",
        "alice:$y$j9T$abcdefgh$abcdefghijk:20000:0:365:7:::\n\
         bob:$y$j9T$abcdefgh$abcdefghijk:20000:0:365:7:::\n\
         carol:$y$j9T$abcdefgh$abcdefghijk:20000:0:365:7:::\n\
         far:$y$j9T$abcdefgh$abcdefghijk:20000:0:365:7:::\n\
         new:$y$j9T$abcdefgh$abcdefghijk:20600:0:365:7:::\n",
    );
    let day = |d: i64| u32::try_from(d * 86_400).unwrap();
    // lastlog: alice old, far at the very end of a sparse file.
    let lastlog = tree.path("/var/log/lastlog");
    std::fs::create_dir_all(lastlog.parent().unwrap()).unwrap();
    {
        use std::os::unix::fs::FileExt;
        let file = std::fs::File::create(&lastlog).unwrap();
        file.write_all_at(&lastlog_record(day(20000), "pts/0", "a"), 1000 * 292)
            .unwrap();
        file.write_all_at(
            &lastlog_record(day(20590), "pts/9", "far.example"),
            4_294_967_294 * 292,
        )
        .unwrap();
    }
    // wtmp: bob, with junk; wtmp.1: alice newer than lastlog.
    let mut wtmp = utmp_record(7, "bob", "pts/1", "b", day(20100));
    wtmp.extend(vec![0xee; 384]);
    tree.file("/var/log/wtmp", wtmp);
    tree.file(
        "/var/log/wtmp.1",
        utmp_record(7, "alice", "pts/2", "w1", day(20550)),
    );
    // lastlog2: carol; wtmpdb: alice newest of all, in microseconds.
    for (path, sql) in [
        (
            "/var/lib/lastlog/lastlog2.db",
            format!(
                "CREATE TABLE Lastlog2(Name TEXT PRIMARY KEY, Time INTEGER, TTY TEXT, RemoteHost TEXT, Service TEXT);\
                 INSERT INTO Lastlog2 VALUES ('carol', {}, 'pts/3', 'l2', 'sshd'), ('bob', 'junk', NULL, NULL, NULL);",
                day(20580)
            ),
        ),
        (
            "/var/lib/wtmpdb/wtmp.db",
            format!(
                "CREATE TABLE wtmp(ID INTEGER PRIMARY KEY, Type INTEGER, User TEXT NOT NULL, Login INTEGER, Logout INTEGER, TTY TEXT, RemoteHost TEXT, Service TEXT) STRICT;\
                 INSERT INTO wtmp (Type, User, Login, TTY, RemoteHost) VALUES (3, 'alice', {}, 'pts/4', 'wdb'), (3, 'alice', 1, 'pts/5', 'old'), (1, 'reboot', {}, '~', NULL);",
                i64::from(day(20600)) * 1_000_000,
                i64::from(day(20601)) * 1_000_000
            ),
        ),
    ] {
        std::fs::create_dir_all(tree.path(path).parent().unwrap()).unwrap();
        let conn = rusqlite::Connection::open(tree.path(path)).unwrap();
        conn.execute_batch(&sql).unwrap();
    }
    let results = run(tree.root());
    let dormant = &results["accounts.dormant"];
    assert_eq!(
        dormant.evidence.sources,
        [
            "/etc/passwd",
            "/etc/shadow",
            "/var/log/lastlog",
            "/var/log/wtmp",
            "/var/log/wtmp.1",
            "/var/lib/lastlog/lastlog2.db",
            "/var/lib/wtmpdb/wtmp.db"
        ]
    );
    let login = |name: &str| {
        let s = subject(&results, "accounts.dormant", name);
        (
            s.facts
                .get("last_login")
                .and_then(Value::as_str)
                .map(str::to_string),
            s.facts
                .get("last_login_source")
                .and_then(Value::as_str)
                .map(str::to_string),
        )
    };
    assert_eq!(
        login("alice"),
        (
            Some("2026-05-27T00:00:00Z".into()),
            Some("/var/lib/wtmpdb/wtmp.db".into())
        )
    );
    assert_eq!(
        login("bob"),
        (
            Some("2025-01-12T00:00:00Z".into()),
            Some("/var/log/wtmp".into())
        )
    );
    assert_eq!(
        login("carol"),
        (
            Some("2026-05-07T00:00:00Z".into()),
            Some("/var/lib/lastlog/lastlog2.db".into())
        )
    );
    assert_eq!(
        login("far"),
        (
            Some("2026-05-17T00:00:00Z".into()),
            Some("/var/log/lastlog".into())
        )
    );
    assert_eq!(ids(&dormant.evidence.offenders), ["bob"]);
    assert_eq!(
        fact(
            subject(&results, "accounts.dormant", "new"),
            "never_logged_in"
        ),
        &Value::from(true)
    );
    assert!(
        dormant.summary.contains("1 records of no known type"),
        "{}",
        dormant.summary
    );
}

#[test]
fn broken_login_databases_do_not_hide_a_pass() {
    let tree = Tree::new();
    tree.file("/etc/passwd", "alice:x:1000:1000::/home/alice:/bin/bash\n")
        .file(
            "/etc/shadow",
            "alice:$y$j9T$abcdefgh$abcdefghijk:20600:0:365:7:::\n",
        )
        .file(
            "/var/lib/lastlog/lastlog2.db",
            b"this is not an sqlite database at all, just junk bytes".repeat(100),
        )
        .file(
            "/var/log/wtmp",
            super::logins::tests::utmp_record(7, "alice", "pts/0", "", 1_780_000_000),
        );
    let results = run(tree.root());
    let dormant = &results["accounts.dormant"];
    assert_eq!(dormant.status, Status::Pass, "{}", dormant.summary);
    assert!(
        dormant
            .summary
            .contains("cannot read /var/lib/lastlog/lastlog2.db"),
        "{}",
        dormant.summary
    );

    // With nothing readable at all there is no judgement to make.
    let tree = Tree::new();
    tree.file("/etc/passwd", "alice:x:1000:1000::/home/alice:/bin/bash\n")
        .file(
            "/etc/shadow",
            "alice:$y$j9T$abcdefgh$abcdefghijk:20600:0:365:7:::\n",
        );
    let results = run(tree.root());
    assert_eq!(results["accounts.dormant"].status, Status::NoData);
    std::fs::create_dir_all(tree.path("/var/log/wtmp")).unwrap();
    let results = run(tree.root());
    assert_eq!(results["accounts.dormant"].status, Status::Error);
}

#[test]
fn sudoers_includes_are_followed_like_sudo_follows_them() {
    let tree = Tree::new();
    tree.file("/etc/hostname", "web1.example.com\n")
        .file(
            "/etc/passwd",
            "root:x:0:0::/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\nops:x:1001:1001::/home/ops:/bin/bash\n",
        )
        .file("/etc/shadow", "root:*:20000::::::\nalice:!:20000::::::\nops:!:20000::::::\n")
        .file("/etc/group", "ops:x:1001:\nwheel:x:10:alice\n")
        .file(
            "/etc/sudoers",
            "root ALL=(ALL:ALL) ALL\n\
             @include sudoers.local\n\
             #include /etc/sudoers.%h\n\
             @include /etc/missing\n\
             #includedir /etc/sudoers.d\n\
             Defaults:ops !authenticate\n",
        )
        .file("/etc/sudoers.local", "%wheel ALL = (ALL) ALL\n@include sudoers.local\n")
        .file("/etc/sudoers.web1", "alice web1 = NOPASSWD: /usr/bin/apt-get update\n")
        .file("/etc/sudoers.d/20-b", "ops db1 = NOPASSWD: ALL\n")
        .file("/etc/sudoers.d/10-a", "ops ALL = NOPASSWD: /bin/true, !/bin/false\n")
        .file("/etc/sudoers.d/30-c~", "ops ALL = NOPASSWD: ALL\n")
        .file("/etc/sudoers.d/40.bak", "ops ALL = NOPASSWD: ALL\n")
        .file("/etc/sudoers.d/sub/x", "ops ALL = NOPASSWD: ALL\n")
        .file("/etc/sudoers.d/50-broken", "alice ALL = (root NOPASSWD: ALL\nalice ALL = (root) /bin/ls junk=1\n");
    let results = run(tree.root());
    let sudo = &results["accounts.sudo_nopasswd"];
    assert_eq!(
        sudo.evidence.sources,
        [
            "/etc/sudoers",
            "/etc/sudoers.local",
            "/etc/sudoers.web1",
            "/etc/sudoers.d/10-a",
            "/etc/sudoers.d/20-b",
            "/etc/sudoers.d/50-broken"
        ]
    );
    assert_eq!(
        ids(&sudo.evidence.offenders),
        [
            "/etc/sudoers.web1:1",
            "/etc/sudoers.d/10-a:1",
            "/etc/sudoers:6",
            "/etc/sudoers.d/50-broken:1"
        ]
    );
    assert_eq!(
        ids(&sudo.evidence.checked),
        ["/etc/sudoers.d/20-b:1", "/etc/sudoers.d/50-broken:2"]
    );
    let a = subject(&results, "accounts.sudo_nopasswd", "/etc/sudoers.d/10-a:1");
    assert_eq!(fact(a, "commands"), &Value::from(vec!["/bin/true"]));
    let defaults = subject(&results, "accounts.sudo_nopasswd", "/etc/sudoers:6");
    assert_eq!(fact(defaults, "accounts"), &Value::from(vec!["ops"]));
    assert_eq!(
        value(&results, "accounts.sudo_nopasswd", "include_problems"),
        &Value::from(vec![
            "/etc/sudoers.local: includes itself (directly or through other files)",
            "/etc/missing: included but does not exist"
        ])
    );
    assert_eq!(
        int(&results, "accounts.sudo_nopasswd", "authenticate_disabled"),
        1
    );
    assert_eq!(int(&results, "accounts.sudo_nopasswd", "unparsed_lines"), 2);
    // %wheel from the included file makes alice privileged.
    let alice = subject(&results, "accounts.privileged", "alice");
    assert_eq!(
        fact(alice, "privileges"),
        &Value::from(vec![
            "member of group wheel",
            "sudoers /etc/sudoers.local:1: ALL as root"
        ])
    );
}

#[test]
fn an_unreadable_include_makes_the_policy_incomplete() {
    let tree = Tree::new();
    tree.file("/etc/passwd", "root:x:0:0::/root:/bin/bash\n")
        .file(
            "/etc/sudoers",
            "root ALL=(ALL) ALL\n@include /etc/sudoers.extra\n",
        );
    std::fs::create_dir_all(tree.path("/etc/sudoers.extra")).unwrap();
    let results = run(tree.root());
    let sudo = &results["accounts.sudo_nopasswd"];
    assert_eq!(sudo.status, Status::Error, "{}", sudo.summary);
    assert!(
        sudo.error
            .as_deref()
            .unwrap()
            .contains("/etc/sudoers.extra")
    );
    assert_eq!(results["accounts.privileged"].status, Status::Error);
}

#[test]
fn privileged_edge_cases() {
    let tree = Tree::new();
    tree.file(
        "/etc/passwd",
        "root:x:0:0::/root:/bin/bash\n\
         alice:x:1000:1000::/home/alice:/bin/bash\n\
         svc:x:990:990::/var/lib/svc:/bin/bash\n\
         nopw:x:1001:27::/home/nopw:/bin/bash\n",
    )
    .file(
        "/etc/shadow",
        "root:*:20000::::::\nalice:$y$j9T$abcdefgh$abcdefghijk:20600:0:365:7:::\n\
         svc:$y$j9T$abcdefgh$abcdefghijk:20600:0:365:7:::\nnopw::20600:0:365:7:::\n",
    )
    .file(
        "/etc/group",
        "sudo:x:27:alice,ghost\nwheel:x:10:\nsvc:x:990:\n",
    )
    .file(
        "/etc/gshadow",
        "sudo:!::alice,ghost\nwheel:$y$j9T$abcdefgh$abcdefghijk:svc:\n",
    )
    .file(
        "/etc/sudoers",
        "ALL ALL = (root) ALL\nformer ALL = (ALL) ALL\n",
    );
    let results = run(tree.root());
    let privileged = &results["accounts.privileged"];
    assert_eq!(privileged.status, Status::Fail);
    assert_eq!(
        ids(&privileged.evidence.offenders),
        ["wheel", "/etc/sudoers:1", "former", "ghost", "nopw", "svc"]
    );
    let svc = subject(&results, "accounts.privileged", "svc");
    assert!(
        svc.reason
            .as_deref()
            .unwrap()
            .contains("system account (uid 990)")
    );
    assert_eq!(
        fact(svc, "privileges"),
        &Value::from(vec![
            "administrator of group wheel (gpasswd)",
            "sudoers /etc/sudoers:1: ALL as root"
        ])
    );
    let nopw = subject(&results, "accounts.privileged", "nopw");
    assert!(nopw.reason.as_deref().unwrap().contains("empty password"));
    assert!(
        subject(&results, "accounts.privileged", "ghost")
            .reason
            .as_deref()
            .unwrap()
            .starts_with("no such account")
    );
    assert_eq!(
        int(&results, "accounts.privileged", "privileged_accounts"),
        4
    );
}

/// Regression (the hostile fixture host, agent/tests/malformed.rs): binary junk in
/// /etc/passwd parsed to zero accounts and every account output passed ("no account has uid
/// 0"). Junk is an error, not an empty host.
#[test]
fn junk_passwd_is_an_error_not_a_host_without_accounts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    let junk: Vec<u8> = (0..4096u32)
        .map(|i| {
            if i % 61 == 0 {
                b'\n'
            } else {
                (i * 7919 % 251) as u8
            }
        })
        .collect();
    std::fs::write(dir.path().join("etc/passwd"), junk).unwrap();
    let results = run(dir.path());
    for id in [
        "accounts.inventory",
        "accounts.uid0",
        "accounts.empty_passwords",
    ] {
        let r = &results[id];
        assert_eq!(r.status, Status::Error, "{id}: {r:?}");
        assert!(
            r.error
                .as_deref()
                .unwrap_or("")
                .contains("not a passwd file"),
            "{id}: {r:?}"
        );
    }
}
