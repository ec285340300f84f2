//! Fixture-tree tests, and differential tests that hold the pending set to the real apt's
//! `apt list --upgradable` on small repositories built in temporary roots (and on this host).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, Utc};
use vigil_shared::{CheckResult, Status, Value};

use super::Packages;
use crate::checks::{CheckContext, run_check};
use crate::hostroot::HostRoot;
use crate::settings::ChecksConfig;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-06-01T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/hosts")
        .join(name)
}

fn run_at(root: &Path, cache: Option<PathBuf>) -> Vec<CheckResult> {
    let host = HostRoot::new(root).unwrap();
    let settings = ChecksConfig::default();
    let ctx = CheckContext {
        root: &host,
        now: now(),
        settings: &settings,
        cache_dir: cache,
    };
    run_check(&Packages, &ctx)
}

fn get<'a>(results: &'a [CheckResult], id: &str) -> &'a CheckResult {
    results.iter().find(|r| r.check == id).unwrap()
}

fn offenders(r: &CheckResult) -> Vec<&str> {
    r.evidence.offenders.iter().map(|s| s.id.as_str()).collect()
}

fn int(r: &CheckResult, key: &str) -> i64 {
    r.values.get(key).and_then(Value::as_i64).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Fixture trees

#[test]
fn healthy_fixture_passes_everything() {
    let results = run_at(&fixture("healthy"), None);
    for r in &results {
        assert_eq!(r.status, Status::Pass, "{}: {}", r.check, r.summary);
        assert!(r.evidence.offenders.is_empty(), "{}", r.check);
    }
    let inv = get(&results, "packages.inventory");
    assert_eq!(int(inv, "installed"), 15);
    assert_eq!(inv.values["package_manager"], Value::from("dpkg"));
    let ids: Vec<&str> = inv.evidence.checked.iter().map(|s| s.id.as_str()).collect();
    assert!(ids.contains(&"tzdata:all") && ids.contains(&"libssl3:amd64"));
    let sudo = inv
        .evidence
        .checked
        .iter()
        .find(|s| s.id == "sudo:amd64")
        .unwrap();
    assert_eq!(sudo.facts["held"], Value::Bool(true));
    assert_eq!(sudo.facts["version"], Value::from("1.9.13p3-1+deb12u1"));

    let pending = get(&results, "packages.pending_updates");
    assert_eq!(int(pending, "pending_updates"), 0);
    assert_eq!(int(pending, "lists_read"), 4);
    assert_eq!(int(pending, "metadata_age_days"), 2);
    assert!(
        pending
            .evidence
            .sources
            .contains(&"/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4".to_string())
    );
    assert!(
        pending
            .evidence
            .sources
            .contains(&"/etc/apt/preferences.d/nodejs".to_string())
    );

    let kernel = get(&results, "packages.kernel");
    assert_eq!(
        kernel.values["running_kernel"],
        Value::from("6.1.0-28-amd64")
    );
    assert_eq!(kernel.values["reboot_required"], Value::Bool(false));
    let last = get(&results, "packages.last_update");
    assert_eq!(int(last, "days_since_update"), 4);
    assert_eq!(
        last.values["last_update"],
        Value::from("2026-05-28T06:25:15+00:00")
    );
}

#[test]
fn misconfigured_fixture_finds_every_seeded_problem() {
    let results = run_at(&fixture("misconfigured"), None);
    assert_eq!(get(&results, "packages.inventory").status, Status::Pass);

    let pending = get(&results, "packages.pending_updates");
    assert_eq!(pending.status, Status::Fail);
    assert_eq!(
        offenders(pending),
        [
            "base-files:amd64",
            "libssl3:amd64",
            "openssl:amd64",
            "tzdata:all"
        ]
    );
    assert_eq!(int(pending, "pending_updates"), 4);
    assert_eq!(int(pending, "pending_security"), 2);
    let openssl = &pending.evidence.offenders[2];
    assert_eq!(openssl.facts["installed"], Value::from("3.0.11-1~deb12u2"));
    assert_eq!(openssl.facts["candidate"], Value::from("3.0.15-1~deb12u1"));
    assert_eq!(
        openssl.facts["archives"],
        Value::from(vec!["oldstable-security"])
    );
    assert_eq!(openssl.facts["security"], Value::Bool(true));
    let tzdata = &pending.evidence.offenders[3];
    assert_eq!(
        tzdata.facts["archives"],
        Value::from(vec!["oldstable-updates"])
    );
    assert_eq!(tzdata.facts["security"], Value::Bool(false));
    // the stale lists of the disabled source never count
    assert!(
        !pending
            .evidence
            .sources
            .iter()
            .any(|s| s.contains("repo.example.com"))
    );

    let security = get(&results, "packages.pending_security");
    assert_eq!(security.status, Status::Fail);
    assert_eq!(offenders(security), ["libssl3:amd64", "openssl:amd64"]);

    let kernel = get(&results, "packages.kernel");
    assert_eq!(kernel.status, Status::Fail);
    assert_eq!(
        offenders(kernel),
        ["6.1.0-28-amd64", "/var/run/reboot-required"]
    );
    assert_eq!(
        kernel.values["running_kernel"],
        Value::from("6.1.0-18-amd64")
    );
    assert_eq!(
        kernel.values["newest_installed_kernel"],
        Value::from("6.1.0-28-amd64")
    );
    assert_eq!(
        kernel.evidence.offenders[1].facts["packages"],
        Value::from(vec!["linux-image-6.1.0-28-amd64"])
    );

    let last = get(&results, "packages.last_update");
    assert_eq!(last.status, Status::Fail);
    assert_eq!(int(last, "days_since_update"), 211);
    assert_eq!(offenders(last), ["dpkg"]);
}

#[test]
fn minimal_fixture_has_no_data() {
    let results = run_at(&fixture("minimal"), None);
    assert_eq!(results.len(), 5);
    for r in &results {
        assert_eq!(r.status, Status::NoData, "{}: {}", r.check, r.summary);
    }
}

#[test]
fn fixture_results_do_not_depend_on_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    for host in ["healthy", "misconfigured"] {
        let plain = run_at(&fixture(host), None);
        let cold = run_at(&fixture(host), Some(cache.path().to_path_buf()));
        let warm = run_at(&fixture(host), Some(cache.path().to_path_buf()));
        for ((p, c), w) in plain.iter().zip(&cold).zip(&warm) {
            assert_eq!(
                (&p.status, &p.summary, &p.values, &p.evidence),
                (&c.status, &c.summary, &c.values, &c.evidence)
            );
            assert_eq!(
                (&c.status, &c.summary, &c.values, &c.evidence),
                (&w.status, &w.summary, &w.values, &w.evidence)
            );
        }
    }
    let files = std::fs::read_dir(cache.path().join("packages"))
        .unwrap()
        .count();
    assert_eq!(files, 4 + 4, "one cache file per list of both hosts");
}

// ---------------------------------------------------------------------------------------------
// Differential tests against apt

/// (name as apt prints it, installed version, candidate version)
type Upgradable = BTreeSet<(String, String, String)>;

fn apt_installed() -> bool {
    Path::new("/usr/bin/apt").exists()
}

/// `name/suites version arch [upgradable from: old]`; apt drops the `:arch` of a name when
/// only one architecture is around, so the architecture column decides.
fn parse_apt_list(text: &str, native: &str) -> Upgradable {
    let mut out = Upgradable::new();
    for line in text.lines() {
        let Some((head, from)) = line.split_once(" [upgradable from: ") else {
            continue;
        };
        let mut words = head.split(' ');
        let name = words.next().unwrap().split('/').next().unwrap();
        let name = name.split(':').next().unwrap();
        let candidate = words.next().unwrap().to_string();
        let arch = words.next().unwrap();
        let shown = if arch == native || arch == "all" {
            name.to_string()
        } else {
            format!("{name}:{arch}")
        };
        out.insert((shown, from.trim_end_matches(']').to_string(), candidate));
    }
    out
}

/// Runs `apt list --upgradable` on a root, with apt reading that root's configuration.
fn apt_on_root(root: &Path) -> std::process::Output {
    let tmp = tempfile::tempdir().unwrap();
    let r = root.display();
    let t = tmp.path().display();
    let conf = format!(
        "Dir \"{r}/\";\nDir::State::status \"{r}/var/lib/dpkg/status\";\nDir::Cache \"{t}/cache/\";\n\
         Dir::Cache::pkgcache \"\";\nDir::Cache::srcpkgcache \"\";\nDir::Log \"{t}/log/\";\n\
         Debug::NoLocking \"true\";\nDPkg::Options:: \"--admindir={r}/var/lib/dpkg\";\n"
    );
    std::fs::write(tmp.path().join("apt.conf"), conf).unwrap();
    Command::new("apt")
        .args(["list", "--upgradable"])
        .env("APT_CONFIG", tmp.path().join("apt.conf"))
        .env("LC_ALL", "C")
        .output()
        .unwrap()
}

fn apt_upgradable(root: &Path) -> Upgradable {
    let out = apt_on_root(root);
    assert!(
        out.status.success(),
        "apt failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_apt_list(&String::from_utf8_lossy(&out.stdout), "amd64")
}

fn ours(results: &[CheckResult], native: &str) -> Upgradable {
    let pending = get(results, "packages.pending_updates");
    assert!(
        matches!(pending.status, Status::Pass | Status::Fail),
        "{}",
        pending.summary
    );
    pending
        .evidence
        .offenders
        .iter()
        .map(|o| {
            let (name, arch) = o.id.split_once(':').unwrap();
            let shown = if arch == native || arch == "all" {
                name.to_string()
            } else {
                o.id.clone()
            };
            let fact = |k: &str| o.facts[k].as_str().unwrap().to_string();
            (shown, fact("installed"), fact("candidate"))
        })
        .collect()
}

/// Our pending set on `root`, checked against apt's (when apt is installed), without and with
/// the list cache.
fn same_as_apt(root: &Path) -> Upgradable {
    let plain = ours(&run_at(root, None), "amd64");
    let cache = tempfile::tempdir().unwrap();
    let cold = ours(&run_at(root, Some(cache.path().to_path_buf())), "amd64");
    let warm = ours(&run_at(root, Some(cache.path().to_path_buf())), "amd64");
    assert_eq!(plain, cold);
    assert_eq!(plain, warm);
    if apt_installed() {
        assert_eq!(
            plain,
            apt_upgradable(root),
            "ours (left) vs apt list --upgradable (right)"
        );
    } else {
        eprintln!("apt is not installed: the comparison with apt was skipped");
    }
    plain
}

fn set(items: &[(&str, &str, &str)]) -> Upgradable {
    items
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect()
}

/// A root with a dpkg database and apt lists, built for one scenario.
struct Tree {
    dir: tempfile::TempDir,
}

fn compress(name: &str, data: &[u8]) -> Vec<u8> {
    if name.ends_with(".gz") {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    } else if name.ends_with(".xz") {
        let mut e = xz2::write::XzEncoder::new(Vec::new(), 1);
        e.write_all(data).unwrap();
        e.finish().unwrap()
    } else if name.ends_with(".zst") {
        zstd::stream::encode_all(data, 3).unwrap()
    } else if name.ends_with(".bz2") {
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    } else if name.ends_with(".lz4") {
        let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    } else {
        data.to_vec()
    }
}

impl Tree {
    fn new() -> Tree {
        let dir = tempfile::tempdir().unwrap();
        for d in [
            "var/lib/dpkg",
            "var/lib/apt/lists",
            "etc/apt/sources.list.d",
            "etc/apt/preferences.d",
            "etc/apt/apt.conf.d",
        ] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        std::fs::write(dir.path().join("var/lib/dpkg/arch"), "amd64\n").unwrap();
        Tree { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, rel: &str, content: &str) {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    /// A list (or Release) file in the lists directory, compressed by its extension.
    fn list(&self, name: &str, stanzas: &[String]) {
        let text = stanzas.join("\n");
        let p = self.path().join("var/lib/apt/lists").join(name);
        std::fs::write(p, compress(name, text.as_bytes())).unwrap();
    }

    fn release(&self, name: &str, fields: &str) {
        self.write(
            &format!("var/lib/apt/lists/{name}"),
            &format!("{fields}Date: Fri, 29 May 2026 08:00:00 UTC\n"),
        );
    }

    fn status(&self, stanzas: &[String]) {
        let mut all = vec![installed("dpkg", "1.21.22", "amd64", "")];
        all.extend_from_slice(stanzas);
        self.write("var/lib/dpkg/status", &all.join("\n"));
    }
}

fn pkg(name: &str, version: &str, arch: &str, extra: &str) -> String {
    format!("Package: {name}\nVersion: {version}\nArchitecture: {arch}\n{extra}")
}

fn installed(name: &str, version: &str, arch: &str, extra: &str) -> String {
    with_status(name, version, arch, "install ok installed", extra)
}

fn with_status(name: &str, version: &str, arch: &str, status: &str, extra: &str) -> String {
    format!("Package: {name}\nStatus: {status}\nVersion: {version}\nArchitecture: {arch}\n{extra}")
}

const EX: &str = "deb.example.org_debian_dists_stable";
const EXSEC: &str = "deb.example.org_debian-security_dists_stable-security";
const EXBPO: &str = "deb.example.org_debian_dists_stable-backports";

fn debian_like_sources(tree: &Tree) {
    tree.write(
        "etc/apt/sources.list",
        "# main archive\ndeb http://deb.example.org/debian stable main contrib\n\
         deb-src http://deb.example.org/debian stable main\n\
         deb http://deb.example.org/debian-security stable-security main\n\
         deb http://deb.example.org/debian stable-backports main\n",
    );
    tree.release(
        &format!("{EX}_InRelease"),
        "Origin: Debian\nLabel: Debian\nSuite: stable\nCodename: trixie\nVersion: 13.1\n",
    );
    tree.release(
        &format!("{EXSEC}_InRelease"),
        "Origin: Debian\nLabel: Debian-Security\nSuite: stable-security\nCodename: trixie-security\nVersion: 13\n",
    );
    tree.release(
        &format!("{EXBPO}_Release"),
        "Origin: Debian Backports\nLabel: Debian Backports\nSuite: stable-backports\nCodename: trixie-backports\n\
         NotAutomatic: yes\nButAutomaticUpgrades: yes\n",
    );
}

#[test]
fn differential_defaults_backports_versions_and_compression() {
    let t = Tree::new();
    debian_like_sources(&t);
    t.write(
        "etc/apt/sources.list.d/experimental.list",
        "deb http://deb.example.org/debian experimental main\n",
    );
    t.release(
        "deb.example.org_debian_dists_experimental_InRelease",
        "Origin: Debian\nLabel: Debian\nSuite: experimental\nCodename: rc-buggy\nNotAutomatic: yes\n",
    );
    t.list(
        &format!("{EX}_main_binary-amd64_Packages.xz"),
        &[
            pkg("a", "1.0", "amd64", ""),
            pkg("b", "1.0", "amd64", ""),
            pkg("d", "2.0", "amd64", ""),
            pkg("e", "1.0", "amd64", ""),
            pkg("f", "1.0", "amd64", "Depends: libx (>= 2)\n"),
            pkg("g", "1.0", "amd64", ""),
            pkg("h", "2.0", "amd64", ""),
            pkg("i", "1.1", "amd64", ""),
            pkg("j", "1.0.2", "amd64", ""),
            pkg("k", "1.1", "amd64", "Phased-Update-Percentage: 0\n"),
            pkg(
                "m",
                "1.0",
                "amd64",
                "Depends: libc6 (>= 2.36)\nInstalled-Size: 10\n",
            ),
            pkg("n", "1.0", "amd64", "Multi-Arch: same\n"),
        ],
    );
    t.list(
        &format!("{EXSEC}_main_binary-amd64_Packages.zst"),
        &[pkg("g", "1.1", "amd64", ""), pkg("j", "1.0.1", "amd64", "")],
    );
    t.list(
        &format!("{EXBPO}_main_binary-amd64_Packages.bz2"),
        &[
            pkg("a", "2.0~bpo13+1", "amd64", ""),
            pkg("b", "2.0~bpo13+1", "amd64", ""),
            pkg("b", "2.1~bpo13+1", "amd64", ""),
        ],
    );
    t.list(
        "deb.example.org_debian_dists_experimental_main_binary-amd64_Packages.lz4",
        &[pkg("c", "3.0", "amd64", "")],
    );
    t.status(&[
        installed("a", "1.0", "amd64", ""),
        installed("b", "2.0~bpo13+1", "amd64", ""),
        installed("c", "1.0", "amd64", ""),
        installed("d", "1:1.0", "amd64", ""),
        installed("e", "1.0~rc1", "amd64", ""),
        installed("f", "1.0", "amd64", ""),
        with_status("g", "1.0", "amd64", "hold ok installed", ""),
        with_status("h", "1.0", "amd64", "deinstall ok config-files", ""),
        installed("i", "1.0", "all", ""),
        installed("j", "1.0", "amd64", ""),
        installed("k", "1.0", "amd64", ""),
        // same contents, dependency spacing and '=' reformatted by dpkg: the same version
        installed(
            "m",
            "1.0",
            "amd64",
            "Installed-Size: 10\nDepends: libc6 (>=2.36)\n",
        ),
        // a different Multi-Arch makes a different version too
        installed("n", "1.0", "amd64", "Multi-Arch: foreign\n"),
    ]);
    let got = same_as_apt(t.path());
    assert_eq!(
        got,
        set(&[
            ("b", "2.0~bpo13+1", "2.1~bpo13+1"),
            ("e", "1.0~rc1", "1.0"),
            ("f", "1.0", "1.0"),
            ("g", "1.0", "1.1"),
            ("i", "1.0", "1.1"),
            ("j", "1.0", "1.0.2"),
            ("k", "1.0", "1.1"),
            ("n", "1.0", "1.0"),
        ])
    );
    let results = run_at(t.path(), None);
    let pending = get(&results, "packages.pending_updates");
    let g = pending
        .evidence
        .offenders
        .iter()
        .find(|o| o.id == "g:amd64")
        .unwrap();
    assert_eq!(g.facts["held"], Value::Bool(true));
    assert_eq!(g.facts["security"], Value::Bool(true));
    let k = pending
        .evidence
        .offenders
        .iter()
        .find(|o| o.id == "k:amd64")
        .unwrap();
    assert_eq!(k.facts["phased_update_percentage"], Value::Int(0));
    assert_eq!(
        offenders(get(&results, "packages.pending_security")),
        ["g:amd64"]
    );
}

/// Which upgrades `apt-get -s upgrade` defers for phasing on `root`.
fn apt_deferred(root: &Path) -> BTreeSet<String> {
    let tmp = tempfile::tempdir().unwrap();
    let r = root.display();
    let t = tmp.path().display();
    let conf = format!(
        "Dir \"{r}/\";\nDir::State::status \"{r}/var/lib/dpkg/status\";\nDir::Cache \"{t}/cache/\";\n\
         Dir::Cache::pkgcache \"\";\nDir::Cache::srcpkgcache \"\";\nDir::Log \"{t}/log/\";\n\
         Debug::NoLocking \"true\";\nDPkg::Options:: \"--admindir={r}/var/lib/dpkg\";\n"
    );
    std::fs::write(tmp.path().join("apt.conf"), conf).unwrap();
    let out = Command::new("apt-get")
        .args(["-s", "upgrade"])
        .env("APT_CONFIG", tmp.path().join("apt.conf"))
        .env("LC_ALL", "C")
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut deferred = BTreeSet::new();
    let mut in_block = false;
    for line in text.lines() {
        // apt 2.6 says "kept back"; later versions "deferred due to phasing". Nothing else
        // holds these packages back (no dependencies at all).
        if line.starts_with("The following upgrades have been deferred due to phasing:")
            || line.starts_with("The following packages have been kept back:")
        {
            in_block = true;
            continue;
        }
        if in_block {
            if !line.starts_with(' ') {
                break;
            }
            deferred.extend(line.split_whitespace().map(str::to_string));
        }
    }
    deferred
}

#[test]
fn differential_phased_updates() {
    let t = Tree::new();
    debian_like_sources(&t);
    t.write("etc/machine-id", "3d1219c7c4c5404aaa1f6d2a48adfda4\n");
    let mut main = Vec::new();
    let mut status = Vec::new();
    let mut names = Vec::new();
    for i in 0..16 {
        let name = format!("ph{i}");
        let percent = [0, 10, 50, 90][i % 4];
        main.push(pkg(
            &name,
            "1.1",
            "amd64",
            &format!(
                "Source: src{i} (1.1-{i})\nPhased-Update-Percentage: {percent}\nFilename: pool/{name}.deb\nSize: 100\n"
            ),
        ));
        status.push(installed(&name, "1.0", "amd64", ""));
        names.push(name);
    }
    // a security fix between the installed version and the phased one is never held back
    main.push(pkg(
        "sec",
        "1.2",
        "amd64",
        "Phased-Update-Percentage: 0\nFilename: pool/sec.deb\nSize: 100\n",
    ));
    status.push(installed("sec", "1.0", "amd64", ""));
    t.list(&format!("{EX}_main_binary-amd64_Packages"), &main);
    t.list(
        &format!("{EXSEC}_main_binary-amd64_Packages"),
        &[pkg("sec", "1.1", "amd64", "")],
    );
    t.status(&status);
    let listed = same_as_apt(t.path());
    assert_eq!(
        listed.len(),
        17,
        "apt list --upgradable shows phased updates too"
    );
    let results = run_at(t.path(), None);
    let pending = get(&results, "packages.pending_updates");
    let ours: BTreeSet<String> = pending
        .evidence
        .offenders
        .iter()
        .filter(|o| o.facts.get("phasing_deferred") == Some(&Value::Bool(true)))
        .map(|o| o.id.split(':').next().unwrap().to_string())
        .collect();
    assert!(ours.len() >= 4, "0% updates are always deferred: {ours:?}");
    assert!(ours.len() < 16, "some are not: {ours:?}");
    assert!(!ours.contains("sec"));
    if apt_installed() {
        assert_eq!(ours, apt_deferred(t.path()));
    }
}

#[test]
fn differential_pins_of_every_kind() {
    let t = Tree::new();
    debian_like_sources(&t);
    t.write(
        "etc/apt/sources.list.d/third.sources",
        "Types: deb\nURIs: http://repo.example.org/apt\nSuites: stable\nComponents: main\n\n\
         Types: deb\nURIs: https://evil.example.net/apt\nSuites: stable\nComponents: main\n\n\
         Types: deb\nURIs: http://never.example.net/apt\nSuites: stable\nComponents: main\n",
    );
    t.release(
        "repo.example.org_apt_dists_stable_InRelease",
        "Origin: Example\nLabel: Example\nSuite: stable\n",
    );
    t.release(
        "evil.example.net_apt_dists_stable_InRelease",
        "Origin: Evil\nLabel: Evil\nSuite: stable\n",
    );
    t.release(
        "never.example.net_apt_dists_stable_InRelease",
        "Origin: Never\nLabel: NeverLabel\nSuite: stable\n",
    );
    t.list(
        &format!("{EX}_main_binary-amd64_Packages"),
        &[
            pkg("pa", "1.1", "amd64", ""),
            pkg("pa", "1.2", "amd64", ""),
            pkg("pc", "1.1", "amd64", ""),
            pkg("pd", "1.6", "amd64", ""),
            pkg("pe2", "1.2", "amd64", ""),
            pkg("pi", "1.1", "amd64", ""),
            pkg("pj", "1.1", "amd64", ""),
            pkg("pm", "1.1", "amd64", ""),
            pkg("pn", "1.6", "amd64", ""),
            pkg("pn", "1.5", "amd64", ""),
            pkg("po", "1.2", "amd64", ""),
            pkg("pq", "1.1", "amd64", ""),
        ],
    );
    t.list(
        &format!("{EX}_contrib_binary-amd64_Packages.gz"),
        &[pkg("pd", "1.5", "amd64", "")],
    );
    t.list(
        &format!("{EXSEC}_main_binary-amd64_Packages"),
        &[
            pkg("pc", "1.2", "amd64", ""),
            pkg("pj", "1.2", "amd64", ""),
            pkg("po", "1.1", "amd64", ""),
        ],
    );
    t.list(
        &format!("{EXBPO}_main_binary-amd64_Packages"),
        &[
            pkg("pb", "2.0", "amd64", ""),
            pkg("pb2", "2.0", "amd64", ""),
            pkg("pf1", "2.0", "amd64", ""),
            pkg("pg1", "2.0", "amd64", ""),
            pkg("ph", "2.0", "amd64", "Source: phsrc\n"),
            pkg("pk", "2.0", "amd64", ""),
            pkg("pl", "2.0", "amd64", ""),
        ],
    );
    t.list(
        "repo.example.org_apt_dists_stable_main_binary-amd64_Packages",
        &[
            pkg("pe", "1.5", "amd64", ""),
            pkg("pe2", "1.1", "amd64", ""),
        ],
    );
    t.list(
        "evil.example.net_apt_dists_stable_main_binary-amd64_Packages",
        &[pkg("pi", "9.0", "amd64", "")],
    );
    t.list(
        "never.example.net_apt_dists_stable_main_binary-amd64_Packages",
        &[pkg("pm", "5.0", "amd64", "")],
    );
    t.write(
        "etc/apt/preferences",
        "Package: pa\nPin: version 1.1*\nPin-Priority: 900\n",
    );
    t.write(
        "etc/apt/preferences.d/10pins",
        "# comment line\nExplanation: backports for pb\nPackage: pb\nPin: release a=stable-backports\nPin-Priority: 500\n\n\
         Package: pb2\nPin: release n=trixie-backports\nPin-Priority: 500\n\n\
         Package: pc\nPin: release l=Debian-Security\nPin-Priority: -1\n\n\
         Package: pd\nPin: release c=main\nPin-Priority: -1\n\n\
         Package: pe\nPin: origin \"repo.example.org\"\nPin-Priority: 1001\n\n\
         Package: pe2\nPin: release o=Example\nPin-Priority: 700\n\n\
         Package: pf*\nPin: release a=stable-backports\nPin-Priority: 600\n\n\
         Package: /^pg[0-9]$/\nPin: release a=stable-backports\nPin-Priority: 600\n\n\
         Package: src:phsrc\nPin: release a=stable-backports\nPin-Priority: 600\n",
    );
    t.write(
        "etc/apt/preferences.d/20more.pref",
        "Package: *\nPin: release o=Evil\nPin-Priority: -10\n\n\
         Package: pj\nPin: release a=stable-security\nPin-Priority: -1\n\n\
         Package: pj\nPin: release a=stable-security\nPin-Priority: 900\n\n\
         Package: *\nPin: release a=stable-backports\nPin-Priority: 400\n\n\
         Package: pk\nPin: release a=stable-backports\nPin-Priority: 50\n\n\
         Package: *\nPin: release l=NeverLabel\nPin-Priority: never\n\n\
         Package: pn\nPin: version /^1\\.5/\nPin-Priority: 990\n\n\
         Package: po\nPin: release b=amd64, a=stable\nPin-Priority: -1\n\n\
         Package: pq\nPin: release x=unknown\nPin-Priority: 600\n",
    );
    // Not read by apt: wrong extension.
    t.write(
        "etc/apt/preferences.d/zz.pref.disabled",
        "Package: *\nPin: release a=stable\nPin-Priority: -1\n",
    );
    t.status(&[
        installed("pa", "1.0", "amd64", ""),
        installed("pb", "1.0", "amd64", ""),
        installed("pb2", "1.0", "amd64", ""),
        installed("pc", "1.0", "amd64", ""),
        installed("pd", "1.0", "amd64", ""),
        installed("pe", "2.0", "amd64", ""),
        installed("pe2", "1.0", "amd64", ""),
        installed("pf1", "1.0", "amd64", ""),
        installed("pg1", "1.0", "amd64", ""),
        installed("ph", "1.0", "amd64", "Source: phsrc\n"),
        installed("pi", "1.0", "amd64", ""),
        installed("pj", "1.0", "amd64", ""),
        installed("pk", "1.0", "amd64", ""),
        installed("pl", "1.0", "amd64", ""),
        installed("pm", "1.0", "amd64", ""),
        installed("pn", "1.0", "amd64", ""),
        installed("po", "1.0", "amd64", ""),
        // a release pin naming no known field matches only the status file: it holds pq
        installed("pq", "1.0", "amd64", ""),
    ]);
    let got = same_as_apt(t.path());
    assert_eq!(
        got,
        set(&[
            ("pa", "1.0", "1.1"),
            ("pb", "1.0", "2.0"),
            ("pb2", "1.0", "2.0"),
            ("pc", "1.0", "1.1"),
            ("pd", "1.0", "1.5"),
            ("pe2", "1.0", "1.1"),
            ("pf1", "1.0", "2.0"),
            ("pg1", "1.0", "2.0"),
            ("ph", "1.0", "2.0"),
            ("pi", "1.0", "1.1"),
            ("pj", "1.0", "1.1"),
            ("pl", "1.0", "2.0"),
            ("pm", "1.0", "1.1"),
            ("pn", "1.0", "1.5"),
            ("po", "1.0", "1.1"),
        ])
    );
}

#[test]
fn differential_default_release() {
    let t = Tree::new();
    debian_like_sources(&t);
    t.write(
        "etc/apt/apt.conf.d/01release",
        "APT::Default-Release \"trixie-backports\";\n",
    );
    t.write(
        "etc/apt/preferences.d/backports",
        "Package: *\nPin: release a=stable-backports\nPin-Priority: 100\n",
    );
    t.list(
        &format!("{EX}_main_binary-amd64_Packages"),
        &[pkg("qa", "1.2", "amd64", ""), pkg("qb", "1.1", "amd64", "")],
    );
    t.list(
        &format!("{EXBPO}_main_binary-amd64_Packages"),
        &[pkg("qa", "1.1", "amd64", "")],
    );
    t.status(&[
        installed("qa", "1.0", "amd64", ""),
        installed("qb", "1.0", "amd64", ""),
    ]);
    assert_eq!(
        same_as_apt(t.path()),
        set(&[("qa", "1.0", "1.1"), ("qb", "1.0", "1.1")])
    );
}

#[test]
fn an_unknown_default_release_is_an_error_like_in_apt() {
    let t = Tree::new();
    debian_like_sources(&t);
    t.write(
        "etc/apt/apt.conf.d/01release",
        "APT::Default-Release \"nosuch\";\n",
    );
    t.list(
        &format!("{EX}_main_binary-amd64_Packages"),
        &[pkg("qa", "1.2", "amd64", "")],
    );
    t.status(&[installed("qa", "1.0", "amd64", "")]);
    let results = run_at(t.path(), None);
    let pending = get(&results, "packages.pending_updates");
    assert_eq!(pending.status, Status::Error);
    assert!(pending.error.as_deref().unwrap_or("").contains("nosuch"));
    if apt_installed() {
        let out = apt_on_root(t.path());
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("nosuch"));
    }
}

#[test]
fn broken_sources_are_an_error_like_in_apt() {
    let t = Tree::new();
    t.write(
        "etc/apt/sources.list",
        "deb http://deb.example.org/debian\n",
    );
    t.status(&[installed("qa", "1.0", "amd64", "")]);
    let results = run_at(t.path(), None);
    assert_eq!(
        get(&results, "packages.pending_updates").status,
        Status::Error
    );
    assert_eq!(
        get(&results, "packages.pending_security").status,
        Status::Error
    );
    if apt_installed() {
        assert!(!apt_on_root(t.path()).status.success());
    }
}

#[test]
fn differential_multiarch() {
    let t = Tree::new();
    t.write("var/lib/dpkg/arch", "amd64\ni386\n");
    t.write(
        "etc/apt/sources.list",
        "deb http://deb.example.org/debian stable main\n\
         deb http://deb.example.org/debian-security stable-security main\n\
         deb [arch=amd64] http://extra.example/apt x main\n",
    );
    t.release(
        &format!("{EX}_InRelease"),
        "Origin: Debian\nLabel: Debian\nSuite: stable\n",
    );
    t.release(
        &format!("{EXSEC}_InRelease"),
        "Origin: Debian\nLabel: Debian-Security\nSuite: stable-security\n",
    );
    t.list(
        &format!("{EX}_main_binary-amd64_Packages"),
        &[
            pkg("libfoo", "1.1", "amd64", "Multi-Arch: same\n"),
            pkg("bar", "1.1", "amd64", ""),
        ],
    );
    t.list(
        &format!("{EX}_main_binary-i386_Packages"),
        &[
            pkg("libfoo", "1.1", "i386", "Multi-Arch: same\n"),
            pkg("tool", "1.1", "i386", ""),
        ],
    );
    t.list(
        &format!("{EX}_main_binary-all_Packages"),
        &[pkg("data", "1.1", "all", "Multi-Arch: foreign\n")],
    );
    t.list(
        &format!("{EXSEC}_main_binary-amd64_Packages"),
        &[pkg("libfoo", "1.2", "amd64", "Multi-Arch: same\n")],
    );
    t.list(
        &format!("{EXSEC}_main_binary-i386_Packages"),
        &[pkg("libfoo", "1.2", "i386", "Multi-Arch: same\n")],
    );
    t.list(
        "extra.example_apt_dists_x_main_binary-amd64_Packages",
        &[pkg("bar", "1.0", "amd64", "")],
    );
    // Left from before the source was restricted to amd64: apt no longer reads it.
    t.list(
        "extra.example_apt_dists_x_main_binary-i386_Packages",
        &[pkg("tool", "5.0", "i386", "")],
    );
    t.write(
        "etc/apt/preferences.d/arch",
        "Package: libfoo:i386\nPin: version 1.1\nPin-Priority: 1001\n\n\
         Package: tool\nPin: version 1.1\nPin-Priority: -1\n",
    );
    t.status(&[
        installed("libfoo", "1.0", "amd64", "Multi-Arch: same\n"),
        installed("libfoo", "1.0", "i386", "Multi-Arch: same\n"),
        installed("tool", "1.0", "i386", ""),
        installed("data", "1.0", "all", "Multi-Arch: foreign\n"),
        installed("bar", "1.0", "amd64", ""),
    ]);
    assert_eq!(
        same_as_apt(t.path()),
        set(&[
            ("bar", "1.0", "1.1"),
            ("data", "1.0", "1.1"),
            ("libfoo", "1.0", "1.2"),
            ("libfoo:i386", "1.0", "1.1"),
            ("tool:i386", "1.0", "1.1"),
        ])
    );
}

#[test]
fn differential_sources_and_list_naming() {
    let t = Tree::new();
    t.write(
        "etc/apt/sources.list",
        "deb http://user:secret@mirror.example:8080/deb_ian~x stable main\n\
         deb [trusted=yes] file:/srv/local ./\n\
         deb file:///srv/flat2 /\n",
    );
    t.write(
        "etc/apt/sources.list.d/multi.sources",
        "Types: deb\nURIs: http://m1.example/debian http://m2.example/debian\nSuites: s1 s2\nComponents: main\n\n\
         Types: deb\nEnabled: no\nURIs: http://off.example/debian\nSuites: s\nComponents: main\n",
    );
    t.write(
        "etc/apt/sources.list.d/old.list.disabled",
        "deb http://old.example/debian s main\n",
    );
    t.write(
        "etc/apt/sources.list.d/both.list",
        "deb http://two.example/debian s main\n",
    );
    t.list(
        "mirror.example:8080_deb%5fian%7ex_dists_stable_main_binary-amd64_Packages",
        &[pkg("z5", "1.1", "amd64", "")],
    );
    t.list("_srv_local_._Packages.gz", &[pkg("z6", "1.1", "amd64", "")]);
    t.list("_srv_flat2_Packages", &[pkg("z7", "1.3", "amd64", "")]);
    t.list(
        "m1.example_debian_dists_s1_main_binary-amd64_Packages",
        &[pkg("z3", "1.1", "amd64", "")],
    );
    t.list(
        "m2.example_debian_dists_s2_main_binary-amd64_Packages",
        &[pkg("z4", "1.2", "amd64", "")],
    );
    t.list(
        "off.example_debian_dists_s_main_binary-amd64_Packages",
        &[pkg("z1", "2.0", "amd64", "")],
    );
    t.list(
        "old.example_debian_dists_s_main_binary-amd64_Packages",
        &[pkg("z2", "2.0", "amd64", "")],
    );
    // Two compressed copies of one list: apt reads .xz before .lz4.
    t.list(
        "two.example_debian_dists_s_main_binary-amd64_Packages.xz",
        &[pkg("z8", "2.0", "amd64", "")],
    );
    t.list(
        "two.example_debian_dists_s_main_binary-amd64_Packages.lz4",
        &[pkg("z8", "3.0", "amd64", "")],
    );
    let mut status = Vec::new();
    for n in ["z1", "z2", "z3", "z4", "z5", "z6", "z7", "z8"] {
        status.push(installed(n, "1.0", "amd64", ""));
    }
    t.status(&status);
    assert_eq!(
        same_as_apt(t.path()),
        set(&[
            ("z3", "1.0", "1.1"),
            ("z4", "1.0", "1.2"),
            ("z5", "1.0", "1.1"),
            ("z6", "1.0", "1.1"),
            ("z7", "1.0", "1.3"),
            ("z8", "1.0", "2.0"),
        ])
    );
}

#[test]
fn differential_misconfigured_fixture() {
    let got = same_as_apt(&fixture("misconfigured"));
    assert_eq!(
        got,
        set(&[
            ("base-files", "12.4+deb12u5", "12.4+deb12u8"),
            ("libssl3", "3.0.11-1~deb12u2", "3.0.15-1~deb12u1"),
            ("openssl", "3.0.11-1~deb12u2", "3.0.15-1~deb12u1"),
            ("tzdata", "2024a-0+deb12u1", "2024b-0+deb12u1"),
        ])
    );
    assert!(same_as_apt(&fixture("healthy")).is_empty());
}

/// The pending set on this very host equals `apt list --upgradable`, cold and warm.
#[test]
fn differential_live_host() {
    if !apt_installed() {
        eprintln!("apt is not installed: live comparison skipped");
        return;
    }
    let root = Path::new("/");
    if !root.join("var/lib/dpkg/status").exists() {
        eprintln!("no dpkg database on this host: live comparison skipped");
        return;
    }
    let out = Command::new("apt")
        .args(["list", "--upgradable"])
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let native = String::from_utf8_lossy(
        &Command::new("dpkg")
            .arg("--print-architecture")
            .output()
            .unwrap()
            .stdout,
    )
    .trim()
    .to_string();
    let apt = parse_apt_list(&String::from_utf8_lossy(&out.stdout), &native);
    let cache = tempfile::tempdir().unwrap();
    let first = run_at(root, Some(cache.path().to_path_buf()));
    let pending = get(&first, "packages.pending_updates");
    if pending.status == Status::NoData {
        // No sources or no lists on this host (a slim container image): apt sees nothing either.
        assert!(apt.is_empty(), "{}: but apt lists {apt:?}", pending.summary);
        return;
    }
    let cold = ours(&first, &native);
    let warm = ours(&run_at(root, Some(cache.path().to_path_buf())), &native);
    assert_eq!(cold, apt, "ours (left) vs apt list --upgradable (right)");
    assert_eq!(warm, apt);
}

// ---------------------------------------------------------------------------------------------
// Other hosts and edge cases

fn settings_with(f: impl FnOnce(&mut ChecksConfig)) -> ChecksConfig {
    let mut s = ChecksConfig::default();
    f(&mut s);
    s
}

fn run_with(root: &Path, settings: &ChecksConfig) -> Vec<CheckResult> {
    let host = HostRoot::new(root).unwrap();
    let ctx = CheckContext {
        root: &host,
        now: now(),
        settings,
        cache_dir: None,
    };
    run_check(&Packages, &ctx)
}

#[test]
fn rpm_hosts_read_the_sqlite_database() {
    use super::rpm::tests::package_header;
    let t = Tree::new();
    std::fs::remove_dir_all(t.path().join("var/lib/dpkg")).unwrap();
    let db = t.path().join("usr/lib/sysimage/rpm");
    std::fs::create_dir_all(&db).unwrap();
    std::os::unix::fs::symlink("../../usr/lib/sysimage/rpm", t.path().join("var/lib/rpm")).unwrap();
    let conn = rusqlite::Connection::open(db.join("rpmdb.sqlite")).unwrap();
    conn.execute_batch(
        "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL);",
    )
    .unwrap();
    // 2026-05-20 and 2026-05-25 (UTC)
    for blob in [
        package_header("bash", None, "5.1.8", "9.el9", "x86_64", 1_779_235_200),
        package_header(
            "kernel-core",
            None,
            "5.14.0",
            "427.13.1.el9_4",
            "x86_64",
            1_779_235_200,
        ),
        package_header(
            "kernel-core",
            None,
            "5.14.0",
            "503.14.1.el9_5",
            "x86_64",
            1_779_667_200,
        ),
        package_header(
            "kernel",
            None,
            "5.14.0",
            "503.14.1.el9_5",
            "x86_64",
            1_779_667_200,
        ),
        package_header(
            "openssl",
            Some(1),
            "3.0.7",
            "28.el9_4",
            "x86_64",
            1_779_235_200,
        ),
    ] {
        conn.execute("INSERT INTO Packages (blob) VALUES (?1)", [blob])
            .unwrap();
    }
    drop(conn);
    t.write(
        "proc/sys/kernel/osrelease",
        "5.14.0-427.13.1.el9_4.x86_64\n",
    );
    let results = run_at(t.path(), None);
    let inv = get(&results, "packages.inventory");
    assert_eq!(inv.status, Status::Pass);
    assert_eq!(inv.values["package_manager"], Value::from("rpm"));
    assert_eq!(int(inv, "installed"), 5);
    let openssl = inv
        .evidence
        .checked
        .iter()
        .find(|s| s.id == "openssl:x86_64")
        .unwrap();
    assert_eq!(openssl.facts["version"], Value::from("1:3.0.7-28.el9_4"));
    assert_eq!(inv.evidence.sources, ["/var/lib/rpm/rpmdb.sqlite"]);
    for id in ["packages.pending_updates", "packages.pending_security"] {
        assert_eq!(get(&results, id).status, Status::NoData);
    }
    let kernel = get(&results, "packages.kernel");
    assert_eq!(kernel.status, Status::Fail);
    assert_eq!(offenders(kernel), ["5.14.0-503.14.1.el9_5.x86_64"]);
    let last = get(&results, "packages.last_update");
    assert_eq!(last.status, Status::Pass);
    assert_eq!(int(last, "days_since_update"), 7);
}

#[test]
fn truncated_berkeley_db_rpm_databases_are_an_error_and_ndb_is_reported_not_read() {
    // A real Berkeley DB database is read (agent/tests/rpmdb.rs); a 4-byte one is damage.
    let t = Tree::new();
    std::fs::remove_dir_all(t.path().join("var/lib/dpkg")).unwrap();
    t.write("var/lib/rpm/Packages", "\u{0}\u{6}\u{15}\u{61}");
    let results = run_at(t.path(), None);
    let inv = get(&results, "packages.inventory");
    assert_eq!(inv.status, Status::Error);
    let said = format!("{} {:?}", inv.summary, inv.error);
    assert!(said.contains("/var/lib/rpm/Packages"), "{said}");

    let t = Tree::new();
    std::fs::remove_dir_all(t.path().join("var/lib/dpkg")).unwrap();
    t.write("usr/lib/sysimage/rpm/Packages.db", "ndb");
    let results = run_at(t.path(), None);
    let inv = get(&results, "packages.inventory");
    assert_eq!(inv.status, Status::NoData);
    assert!(inv.summary.contains("ndb"), "{}", inv.summary);
}

#[test]
fn kernel_edge_cases() {
    let kernel_status = |t: &Tree, versions: &[(&str, &str)]| {
        let stanzas: Vec<String> = versions
            .iter()
            .map(|(name, v)| installed(name, v, "amd64", ""))
            .collect();
        t.status(&stanzas);
    };
    // an image that is not running: only the reboot marker is judged
    let t = Tree::new();
    kernel_status(
        &t,
        &[
            ("linux-image-6.1.0-28-amd64", "6.1.119-1"),
            ("linux-image-amd64", "6.1.119-1"),
        ],
    );
    let r = run_at(t.path(), None);
    let k = get(&r, "packages.kernel");
    assert_eq!(k.status, Status::Pass, "{}", k.summary);
    assert!(k.summary.contains("not running"));
    std::fs::create_dir_all(t.path().join("run")).unwrap();
    std::os::unix::fs::symlink("/run", t.path().join("var/run")).unwrap();
    t.write("run/reboot-required", "*** System restart required ***\n");
    let r = run_at(t.path(), None);
    assert_eq!(
        offenders(get(&r, "packages.kernel")),
        ["/var/run/reboot-required"]
    );

    // the same release rebuilt: Debian's build stamp in /proc/sys/kernel/version tells
    let t = Tree::new();
    kernel_status(&t, &[("linux-image-6.1.0-28-amd64", "6.1.119-2")]);
    t.write("proc/sys/kernel/osrelease", "6.1.0-28-amd64\n");
    t.write(
        "proc/sys/kernel/version",
        "#1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22)\n",
    );
    let r = run_at(t.path(), None);
    let k = get(&r, "packages.kernel");
    assert_eq!(k.status, Status::Fail);
    assert_eq!(
        k.evidence.offenders[0].facts["running_build"],
        Value::from("6.1.119-1")
    );
    t.write(
        "proc/sys/kernel/version",
        "#1 SMP PREEMPT_DYNAMIC Debian 6.1.119-2 (2024-12-01)\n",
    );
    assert_eq!(
        get(&run_at(t.path(), None), "packages.kernel").status,
        Status::Pass
    );

    // a running kernel that is not an installed package, older or newer than the installed
    let t = Tree::new();
    kernel_status(&t, &[("linux-image-6.1.0-28-amd64", "6.1.119-1")]);
    t.write("proc/sys/kernel/osrelease", "6.1.0-10-amd64\n");
    assert_eq!(
        get(&run_at(t.path(), None), "packages.kernel").status,
        Status::Fail
    );
    t.write("proc/sys/kernel/osrelease", "6.12.9-custom\n");
    let k = get(&run_at(t.path(), None), "packages.kernel").clone();
    assert_eq!(k.status, Status::Pass);
    assert!(
        k.summary.contains("not one of the installed kernels"),
        "{}",
        k.summary
    );

    // two flavours of the same build: neither is newer
    let t = Tree::new();
    kernel_status(
        &t,
        &[
            ("linux-image-5.15.0-92-generic", "5.15.0-92.102"),
            ("linux-image-5.15.0-92-lowlatency", "5.15.0-92.102"),
        ],
    );
    for running in ["5.15.0-92-generic\n", "5.15.0-92-lowlatency\n"] {
        t.write("proc/sys/kernel/osrelease", running);
        assert_eq!(
            get(&run_at(t.path(), None), "packages.kernel").status,
            Status::Pass,
            "{running}"
        );
    }

    // no kernel package: /boot is the fallback
    let t = Tree::new();
    kernel_status(&t, &[("bash", "5.2.15-2+b7")]);
    t.write("boot/vmlinuz-6.1.0-18-amd64", "");
    t.write("boot/vmlinuz-6.1.0-28-amd64", "");
    t.write("boot/vmlinuz-6.1.0-28-amd64.old", "");
    t.write("proc/sys/kernel/osrelease", "6.1.0-18-amd64\n");
    let k = get(&run_at(t.path(), None), "packages.kernel").clone();
    assert_eq!(k.status, Status::Fail);
    assert_eq!(
        k.values["newest_installed_kernel"],
        Value::from("6.1.0-28-amd64")
    );
    assert!(k.evidence.sources.contains(&"/boot".to_string()));
}

#[test]
fn last_update_edge_cases() {
    let t = Tree::new();
    t.status(&[]);
    // rotated and compressed logs are read; the newest event wins
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"2026-05-30 10:00:00 upgrade late:amd64 1 2\n")
        .unwrap();
    std::fs::create_dir_all(t.path().join("var/log/apt")).unwrap();
    std::fs::write(t.path().join("var/log/dpkg.log.2.gz"), gz.finish().unwrap()).unwrap();
    t.write(
        "var/log/dpkg.log",
        "2026-05-01 10:00:00 remove x:amd64 1 <none>\n",
    );
    t.write(
        "var/log/apt/history.log",
        "\nStart-Date: 2026-05-10  10:00:00\nInstall: y:amd64 (1)\nEnd-Date: 2026-05-10  10:01:00\n",
    );
    let r = run_at(t.path(), None);
    let last = get(&r, "packages.last_update");
    assert_eq!(last.status, Status::Pass);
    assert_eq!(int(last, "days_since_update"), 2);
    assert_eq!(last.evidence.sources.len(), 3);
    // a stricter limit fails the same host
    let strict = settings_with(|s| s.packages.max_days_since_update = 1);
    assert_eq!(
        get(&run_with(t.path(), &strict), "packages.last_update").status,
        Status::Fail
    );
    // logs without any install or upgrade: no evidence either way
    let t = Tree::new();
    t.status(&[]);
    t.write("var/log/dpkg.log", "");
    let last = get(&run_at(t.path(), None), "packages.last_update").clone();
    assert_eq!(last.status, Status::NoData);
    assert!(
        last.summary.contains("record no install"),
        "{}",
        last.summary
    );
}

#[test]
fn pending_without_sources_lists_or_security_archive() {
    // no sources at all
    let t = Tree::new();
    t.status(&[installed("a", "1.0", "amd64", "")]);
    let r = run_at(t.path(), None);
    assert_eq!(get(&r, "packages.pending_updates").status, Status::NoData);
    // sources, but apt update never ran
    t.write(
        "etc/apt/sources.list",
        "deb http://deb.example.org/debian stable main\n",
    );
    let r = run_at(t.path(), None);
    let p = get(&r, "packages.pending_updates");
    assert_eq!(p.status, Status::NoData);
    assert!(p.summary.contains("apt update"), "{}", p.summary);
    // lists, but no security archive among the sources
    t.release(
        &format!("{EX}_InRelease"),
        "Origin: Debian\nLabel: Debian\nSuite: stable\n",
    );
    t.list(
        &format!("{EX}_main_binary-amd64_Packages"),
        &[pkg("a", "1.0", "amd64", "")],
    );
    let r = run_at(t.path(), None);
    assert_eq!(get(&r, "packages.pending_updates").status, Status::Pass);
    let s = get(&r, "packages.pending_security");
    assert_eq!(s.status, Status::Fail);
    assert_eq!(offenders(s), ["/etc/apt"]);
    let relaxed = settings_with(|s| s.packages.require_security_source = false);
    assert_eq!(
        get(&run_with(t.path(), &relaxed), "packages.pending_security").status,
        Status::Pass
    );
}

#[test]
fn a_corrupt_list_is_an_error_not_a_guess() {
    let t = Tree::new();
    t.write(
        "etc/apt/sources.list",
        "deb http://deb.example.org/debian stable main\n",
    );
    t.write(
        &format!("var/lib/apt/lists/{EX}_main_binary-amd64_Packages.gz"),
        "not gzip at all",
    );
    t.status(&[installed("a", "1.0", "amd64", "")]);
    let r = run_at(t.path(), None);
    let p = get(&r, "packages.pending_updates");
    assert_eq!(p.status, Status::Error);
    assert!(p.error.as_deref().unwrap_or("").contains("Packages.gz"));
    // the rest of the check still reports
    assert_eq!(get(&r, "packages.inventory").status, Status::Pass);
}

#[test]
fn a_damaged_cache_is_rebuilt_not_trusted() {
    let cache = tempfile::tempdir().unwrap();
    let root = fixture("misconfigured");
    let want = ours(&run_at(&root, None), "amd64");
    let _ = run_at(&root, Some(cache.path().to_path_buf()));
    for entry in std::fs::read_dir(cache.path().join("packages")).unwrap() {
        let path = entry.unwrap().path();
        let mut bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 1] ^= 0xff;
        bytes[n / 2] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
    }
    assert_eq!(
        ours(&run_at(&root, Some(cache.path().to_path_buf())), "amd64"),
        want
    );
    std::fs::write(
        cache.path().join("packages/garbage.list"),
        b"VGPKLST2 nonsense",
    )
    .unwrap();
    assert_eq!(
        ours(&run_at(&root, Some(cache.path().to_path_buf())), "amd64"),
        want
    );
}

#[test]
fn cache_housekeeping_drops_only_unused_old_entries() {
    let cache = tempfile::tempdir().unwrap();
    let root = fixture("misconfigured");
    let _ = run_at(&root, Some(cache.path().to_path_buf()));
    let dir = cache.path().join("packages");
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_767_225_600); // 2026-01-01
    let used: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(used.len(), 4);
    for path in &used {
        std::fs::File::options()
            .append(true)
            .open(path)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    let stale = dir.join("0123456789abcdef0123456789abcdef.list");
    std::fs::write(&stale, b"old").unwrap();
    std::fs::File::options()
        .append(true)
        .open(&stale)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let fresh = dir.join("fedcba9876543210fedcba9876543210.list");
    std::fs::write(&fresh, b"another root's entry, written today").unwrap();
    let _ = run_at(&root, Some(cache.path().to_path_buf()));
    assert!(!stale.exists());
    assert!(
        used.iter().all(|p| p.exists()),
        "entries in use are kept however old"
    );
    // "today" is after the fixture clock, so the entry is young for this run
    assert!(fresh.exists());
}

/// Every parser on random bytes and on mangled real inputs: no panic, whatever the input.
#[test]
fn parsers_never_panic_on_junk() {
    use super::{
        aptconf, debversion, dpkg, history, kernel, lists, pattern, preferences, release, rpm,
        sources, tagfile,
    };
    let seeds: Vec<Vec<u8>> = vec![
        std::fs::read(fixture("misconfigured").join("var/lib/dpkg/status")).unwrap(),
        std::fs::read(fixture("healthy").join("etc/apt/sources.list.d/debian.sources")).unwrap(),
        std::fs::read(fixture("healthy").join("var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease")).unwrap(),
        b"Package: *\nPin: release a=x, o=/[/\nPin-Priority: 1\n\nPackage: src:a:b*\nPin: version [\nPin-Priority: -1\n".to_vec(),
        b"deb [arch=amd64 signed-by=\"/x y\"] http://u:p@[::1]:80/a_b ./ \n#x\ndeb-src http://h s c\n".to_vec(),
        b"APT { Default-Release \"x\"; Architectures { \"a\"; }; };\n#include \"/x\";\n/* c */ A \"b\";\n".to_vec(),
        b"2026-01-01 00:00:00 upgrade a:amd64 1 2\nStart-Date: 2026-01-01  00:00:00\nInstall: a\n".to_vec(),
    ];
    let mut state: u64 = 0x1234_5678_9abc_def0;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..400 {
        let mut input: Vec<u8> = if round % 4 == 0 {
            (0..(next() % 300)).map(|_| (next() & 0xff) as u8).collect()
        } else {
            seeds[(next() as usize) % seeds.len()].clone()
        };
        // mangle: flip, delete and duplicate a few bytes
        for _ in 0..(next() % 8) {
            if input.is_empty() {
                break;
            }
            let i = (next() as usize) % input.len();
            match next() % 3 {
                0 => input[i] = (next() & 0xff) as u8,
                1 => {
                    input.remove(i);
                }
                _ => input.insert(i, input[i]),
            }
        }
        let text = String::from_utf8_lossy(&input);
        let _ = tagfile::parse(&tagfile::strip_comment_lines(&text));
        let _ = dpkg::parse_status(&text);
        let _ = dpkg::parse_arch_file(&text);
        let _ = release::parse_release(&text).map(|r| r.published());
        if let Ok(p) = preferences::parse_preferences(&text, "f") {
            for r in &p.records {
                let _ = r
                    .matcher
                    .version_matches("1.0", &[&preferences::FileFacts::default()]);
            }
        }
        let _ = sources::parse_one_line(&text, "f", "amd64")
            .map(|e| sources::build_indexes(&e, &["amd64".into()]));
        let _ = sources::parse_deb822(&text, "f", "amd64");
        let _ = sources::uri_to_file_name(&text);
        let mut c = aptconf::Config::with_defaults();
        let _ = c.apply_text(&text, "f", 0, &mut |_, _, _| Ok(()));
        let _ = (
            c.find_dir("Dir::State::lists"),
            c.find_vector("APT::Architectures"),
        );
        let _ = history::dpkg_log_last_change(&text);
        let _ = history::apt_history_last_change(&text);
        let _ = kernel::parse_reboot_pkgs(&text);
        let _ = kernel::debian_build_version(&text);
        let _ = lists::parse_bytes(&input);
        let _ = lists::parse_reader(&input[..], "x");
        let _ = rpm::parse_header(&input);
        let words: Vec<&str> = text.split_whitespace().take(4).collect();
        for w in &words {
            let _ = debversion::compare(w, "1:2.0-1~rc1");
            let _ = rpm::rpmvercmp(w, "5.14.0");
            let _ = pattern::Expr::new(w).matches(Some("bookworm-security"));
            let _ = kernel::debian_kernel_release(w);
        }
    }
}

/// Regression (the hostile fixture host, agent/tests/malformed.rs): binary junk in dpkg's
/// status parsed to zero packages and the inventory passed ("0 packages installed"). Junk is
/// an error, not a host without packages.
#[test]
fn junk_dpkg_status_is_an_error_not_an_empty_inventory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("var/lib/dpkg")).unwrap();
    let junk: Vec<u8> = (0..4096u32)
        .map(|i| {
            if i % 61 == 0 {
                b'\n'
            } else {
                (i * 7919 % 251) as u8
            }
        })
        .collect();
    std::fs::write(dir.path().join("var/lib/dpkg/status"), junk).unwrap();
    let results = run_at(dir.path(), None);
    let r = get(&results, "packages.inventory");
    assert_eq!(r.status, Status::Error, "{r:?}");
    assert!(
        r.error
            .as_deref()
            .unwrap_or("")
            .contains("not a dpkg status file"),
        "{r:?}"
    );
}
