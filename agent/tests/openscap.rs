//! Vigil against OpenSCAP: on this machine and on a debootstrap'd Debian 12 root (stock, and
//! with `tests/openscap/hardened/` laid over it), every OpenSCAP rule of
//! `tests/openscap/mapping.tsv` is evaluated by `oscap` and by `vigil-agent collect`, and the
//! verdicts are compared. A disagreement fails the test unless the mapping explains it for that
//! context. The table is printed and written to `target/openscap/comparison.txt`.
//!
//! Needs root, `unshare`, OpenSCAP and the prepared root: run `tests/openscap/prepare.sh` and
//! export what it prints (`VIGIL_OPENSCAP_DS`, `VIGIL_OPENSCAP_DEBIAN_ROOT`). Without them the
//! test says so and passes, unless `VIGIL_OPENSCAP_REQUIRED=1` (CI), where it fails.
//!
//! How each side sees the roots: OpenSCAP runs inside the root (`chroot`, with `/proc` mounted,
//! in a private mount namespace) so that its package probes work; the agent reads the same
//! tree with `--root`. This machine is evaluated through an overlay of `/` without
//! `/.dockerenv`, whose presence makes the SCAP content treat the host as a container and skip
//! every kernel rule; the agent reads `/` itself.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test helpers outside #[test] fns

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use vigil_shared::{Report, Status};

const PREFIX: &str = "xccdf_org.ssgproject.content_";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One row of the mapping table.
#[derive(Debug, Clone)]
struct Mapping {
    rule: String,
    output: String,
    subject: Option<String>,
    reason: Option<String>,
    /// Contexts where a disagreement is understood, and why.
    known: Vec<(Vec<String>, String)>,
}

fn dash(s: &str) -> Option<String> {
    (s != "-" && !s.is_empty()).then(|| s.to_string())
}

fn read_table(name: &str) -> Vec<Vec<String>> {
    let path = repo().join("tests/openscap").join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

fn mappings() -> Vec<Mapping> {
    read_table("mapping.tsv")
        .into_iter()
        .map(|f| {
            assert_eq!(f.len(), 5, "mapping.tsv row {f:?} needs 5 columns");
            let known = dash(&f[4])
                .map(|k| {
                    k.split(" || ")
                        .map(|entry| {
                            let (contexts, why) =
                                entry.split_once(':').expect("known: CONTEXTS: explanation");
                            (
                                contexts.split(',').map(|c| c.trim().to_string()).collect(),
                                why.trim().to_string(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            Mapping {
                rule: f[0].clone(),
                output: f[1].clone(),
                subject: dash(&f[2]),
                reason: dash(&f[3]),
                known,
            }
        })
        .collect()
}

fn tailoring(rows: &[Mapping]) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xccdf-1.2:Tailoring xmlns:xccdf-1.2=\"http://checklists.nist.gov/xccdf/1.2\" id=\"xccdf_vigil_tailoring_overlap\">\n\
         <xccdf-1.2:version time=\"2026-01-01T00:00:00\">1</xccdf-1.2:version>\n",
    );
    let _ = writeln!(
        xml,
        "<xccdf-1.2:Profile id=\"{PREFIX}profile_vigil_overlap\"><xccdf-1.2:title>Rules Vigil also judges</xccdf-1.2:title>"
    );
    for row in rows {
        let _ = writeln!(
            xml,
            "<xccdf-1.2:select idref=\"{PREFIX}rule_{}\" selected=\"true\"/>",
            row.rule
        );
    }
    for f in read_table("tailoring-values.tsv") {
        let _ = writeln!(
            xml,
            "<xccdf-1.2:set-value idref=\"{PREFIX}value_{}\">{}</xccdf-1.2:set-value>",
            f[0], f[1]
        );
    }
    xml.push_str("</xccdf-1.2:Profile>\n</xccdf-1.2:Tailoring>\n");
    xml
}

/// `Rule\t<id>` … `Result\t<verdict>` pairs of `oscap xccdf eval`'s text output.
fn parse_oscap(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rule = None;
    for line in text.lines() {
        // Without a terminal oscap writes `Rule\r\t…`.
        let line = line.replace('\r', "");
        if let Some(r) = line.strip_prefix("Rule\t") {
            rule = r
                .trim()
                .strip_prefix(&format!("{PREFIX}rule_"))
                .map(str::to_string);
        } else if let Some(v) = line.strip_prefix("Result\t")
            && let Some(r) = rule.take()
        {
            out.insert(r, v.trim().to_string());
        }
    }
    out
}

/// Vigil's verdict for a mapping row: `pass`, `fail` or `n/a` (not evaluated).
fn vigil_verdict(report: &Report, row: &Mapping) -> String {
    let Some(result) = report.results.iter().find(|r| r.check == row.output) else {
        return "n/a".into();
    };
    if matches!(result.status, Status::NoData | Status::Error) {
        return "n/a".into();
    }
    let reason_ok = |reason: Option<&str>| match &row.reason {
        Some(text) => reason.is_some_and(|r| text.split('|').any(|t| r.contains(t))),
        None => true,
    };
    match &row.subject {
        None => {
            let failing = result.status == Status::Fail
                && (row.reason.is_none()
                    || result
                        .evidence
                        .offenders
                        .iter()
                        .any(|s| reason_ok(s.reason.as_deref())));
            if failing { "fail" } else { "pass" }.into()
        }
        Some(subject) => {
            if result
                .evidence
                .offenders
                .iter()
                .any(|s| s.id == *subject && reason_ok(s.reason.as_deref()))
            {
                "fail".into()
            } else if result
                .evidence
                .offenders
                .iter()
                .chain(&result.evidence.checked)
                .any(|s| s.id == *subject)
            {
                "pass".into()
            } else {
                "n/a".into()
            }
        }
    }
}

fn oscap_verdict(v: Option<&String>) -> String {
    match v.map(String::as_str) {
        Some("pass") => "pass".into(),
        Some("fail") => "fail".into(),
        Some(other) => format!("n/a ({other})"),
        None => "n/a (not run)".into(),
    }
}

/// Runs a shell script in a private mount namespace and returns its stdout.
fn in_namespace(script: &str) -> String {
    let output = Command::new("unshare")
        .args(["-m", "sh", "-ec", script])
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("LC_ALL", "C")
        .output()
        .expect("unshare runs");
    assert!(
        output.status.success() || output.status.code() == Some(2),
        "namespace script failed ({}):\n{script}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

struct Context {
    name: &'static str,
    oscap: BTreeMap<String, String>,
    report: Report,
}

fn collect(root: &Path, config: &Path, out: &Path) -> String {
    format!(
        "{} collect --format json --cache-dir none --config {} --root {} --check ssh --check auth_policy --check accounts --check kernel_hardening > {}",
        quote(Path::new(env!("CARGO_BIN_EXE_vigil-agent"))),
        quote(config),
        quote(root),
        quote(out)
    )
}

fn read_report(path: &Path) -> Report {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("the agent wrote a report")
}

/// What every evaluation shares.
struct Inputs<'a> {
    work: &'a Path,
    ds: &'a Path,
    tailoring: &'a Path,
}

/// Evaluates one root: `lower` is laid under an overlay, `upper_setup` runs in the overlay's
/// upper directory (to add or replace files), OpenSCAP runs chrooted in the merged view, and
/// the agent reads the view (or `/` itself for this machine).
fn evaluate(
    name: &'static str,
    inputs: &Inputs<'_>,
    lower: &Path,
    upper_setup: &str,
    agent_on_live: bool,
) -> Context {
    let dir = inputs.work.join(name);
    std::fs::create_dir_all(dir.join("view")).unwrap();
    let config = repo().join("tests/openscap/agent.toml");
    let report_path = dir.join("report.json");
    let merged = dir.join("view/m");
    let agent = collect(
        if agent_on_live {
            Path::new("/")
        } else {
            &merged
        },
        &config,
        &report_path,
    );
    let script = format!(
        "mount --make-rprivate /\n\
         mount -t tmpfs tmpfs {dir}/view\n\
         mkdir {dir}/view/u {dir}/view/w {dir}/view/m\n\
         cd {dir}/view/u\n{upper_setup}\ncd /\n\
         mount -t overlay overlay -o lowerdir={lower},upperdir={dir}/view/u,workdir={dir}/view/w {dir}/view/m\n\
         rm -f {dir}/view/m/.dockerenv {dir}/view/m/run/.containerenv\n\
         mount -t proc proc {dir}/view/m/proc\n\
         mount -t tmpfs tmpfs {dir}/view/m/tmp\n\
         mkdir -p {dir}/view/m/run/vigil-ssg\n\
         mount --bind {dsdir} {dir}/view/m/run/vigil-ssg\n\
         cp {tailoring} {dir}/view/m/run/vigil-ssg-tailoring.xml\n\
         chroot {dir}/view/m oscap xccdf eval --tailoring-file /run/vigil-ssg-tailoring.xml --profile {PREFIX}profile_vigil_overlap /run/vigil-ssg/{dsname} >{dir}/oscap.out 2>{dir}/oscap.err || echo \"oscap exit $?\" >>{dir}/oscap.err\n\
         {agent}\n",
        dir = quote(&dir),
        lower = quote(lower),
        dsdir = quote(inputs.ds.parent().unwrap()),
        dsname = inputs.ds.file_name().unwrap().to_string_lossy(),
        tailoring = quote(inputs.tailoring),
    );
    in_namespace(&script);
    let oscap = parse_oscap(&std::fs::read_to_string(dir.join("oscap.out")).unwrap_or_default());
    assert!(
        !oscap.is_empty(),
        "{name}: oscap gave no result:\n{}",
        std::fs::read_to_string(dir.join("oscap.err")).unwrap_or_default()
    );
    Context {
        name,
        oscap,
        report: read_report(&report_path),
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[test]
fn verdicts_agree_with_openscap_on_every_rule_both_evaluate() {
    let required = std::env::var_os("VIGIL_OPENSCAP_REQUIRED").is_some_and(|v| v == "1");
    let cache = repo().join("target/openscap");
    let ds = std::env::var_os("VIGIL_OPENSCAP_DS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            cache.join("content/usr/share/xml/scap/ssg/content/ssg-debian12-ds.xml")
        });
    let debian = std::env::var_os("VIGIL_OPENSCAP_DEBIAN_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache.join("debian-bookworm"));
    let mut missing = Vec::new();
    if !ds.exists() {
        missing.push(format!("SSG content {}", ds.display()));
    }
    if !debian.join(".vigil-ready").exists() || !debian.join("usr/bin/oscap").exists() {
        missing.push(format!("prepared Debian root {}", debian.display()));
    }
    if !Path::new("/usr/bin/oscap").exists() {
        missing.push("oscap (openscap-scanner)".into());
    }
    if !is_root() {
        missing.push("root".into());
    }
    if !missing.is_empty() {
        let message = format!(
            "OpenSCAP comparison not run, missing: {}; run tests/openscap/prepare.sh and export what it prints",
            missing.join(", ")
        );
        assert!(!required, "{message}");
        eprintln!("{message}");
        return;
    }
    let rows = mappings();
    let work = tempfile::tempdir().unwrap();
    let tailoring_path = work.path().join("tailoring.xml");
    std::fs::write(&tailoring_path, tailoring(&rows)).unwrap();
    let hardened = repo().join("tests/openscap/hardened");
    let harden = format!(
        "cp -a {}/. .\nsed 's/^PASS_MIN_DAYS.*/PASS_MIN_DAYS\t1/' {}/etc/login.defs > etc/login.defs",
        quote(&hardened),
        quote(&debian)
    );
    let inputs = Inputs {
        work: work.path(),
        ds: &ds,
        tailoring: &tailoring_path,
    };
    let contexts = [
        evaluate("live", &inputs, Path::new("/"), "true", true),
        evaluate("debian", &inputs, &debian, "true", false),
        evaluate("debian-hardened", &inputs, &debian, &harden, false),
    ];

    let mut table = String::from(
        "context          rule                                                 openscap        vigil  agreement\n",
    );
    let mut unexplained = Vec::new();
    let mut both = BTreeMap::<&str, usize>::new();
    let mut disagreements = 0;
    for ctx in &contexts {
        for row in &rows {
            let o = oscap_verdict(ctx.oscap.get(&row.rule));
            let v = vigil_verdict(&ctx.report, row);
            let evaluated = !o.starts_with("n/a") && v != "n/a";
            let known = row
                .known
                .iter()
                .find(|(c, _)| c.iter().any(|c| c == ctx.name));
            let agreement = if !evaluated {
                "one side only".to_string()
            } else if o == v {
                *both.entry(ctx.name).or_default() += 1;
                "agree".to_string()
            } else {
                *both.entry(ctx.name).or_default() += 1;
                disagreements += 1;
                match known {
                    Some((_, why)) => format!("DISAGREE (explained: {why})"),
                    None => {
                        unexplained.push(format!(
                            "{} {}: openscap {o}, vigil {v} ({})",
                            ctx.name, row.rule, row.output
                        ));
                        "DISAGREE (unexplained)".to_string()
                    }
                }
            };
            let _ = writeln!(
                table,
                "{:<16} {:<52} {:<15} {:<6} {agreement}",
                ctx.name, row.rule, o, v
            );
        }
    }
    let _ = writeln!(
        table,
        "\nrules compared where both evaluate: {both:?}; disagreements: {disagreements} ({} unexplained)",
        unexplained.len()
    );
    eprintln!("{table}");
    let _ = std::fs::create_dir_all(&cache);
    let _ = std::fs::write(cache.join("comparison.txt"), &table);
    assert!(
        unexplained.is_empty(),
        "unexplained disagreements:\n{}",
        unexplained.join("\n")
    );
    // The comparison must have compared something: every mapped rule on the Debian roots.
    for name in ["debian", "debian-hardened"] {
        assert!(
            both.get(name).copied().unwrap_or(0) >= rows.len() * 9 / 10,
            "{name}: only {:?} of {} rules evaluated by both",
            both.get(name),
            rows.len()
        );
    }
}

#[test]
fn the_mapping_is_well_formed_and_names_real_outputs() {
    let outputs: Vec<String> = vigil_agent::checks::all()
        .iter()
        .flat_map(|c| c.outputs().iter().map(|o| o.id.to_string()))
        .collect();
    let rows = mappings();
    assert!(rows.len() >= 40);
    for row in &rows {
        assert!(
            outputs.contains(&row.output),
            "{}: unknown output {}",
            row.rule,
            row.output
        );
        assert!(
            row.rule
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "{}",
            row.rule
        );
        for (contexts, why) in &row.known {
            assert!(!why.is_empty());
            for c in contexts {
                assert!(
                    ["live", "debian", "debian-hardened"].contains(&c.as_str()),
                    "{c}"
                );
            }
        }
    }
    let xml = tailoring(&rows);
    assert!(xml.contains("content_rule_sshd_disable_root_login"));
    assert_eq!(
        parse_oscap(
            "Title\tx\nRule\r\txccdf_org.ssgproject.content_rule_a_b\nIdent\tCCE-1\nResult\tfail\n\nRule\tother\nResult\tpass\n"
        ),
        BTreeMap::from([("a_b".to_string(), "fail".to_string())])
    );
}
