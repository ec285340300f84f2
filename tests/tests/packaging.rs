//! The packaging metadata holds together without building anything: the .deb and .rpm of each
//! binary ship the same files (the unit under Debian's /lib or RPM's /usr/lib), every script
//! and asset they name exists and parses, the configuration is a conffile in both, and both
//! units verify their syntax and keep their `systemd-analyze security` exposure. The .deb
//! itself is installed and booted by `tests/package.rs`.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test helpers outside #[test] fns

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use vigil_tests::repo;

fn metadata(krate: &str) -> toml::Value {
    let text = std::fs::read_to_string(repo().join(krate).join("Cargo.toml")).unwrap();
    let manifest: toml::Value = toml::from_str(&text).unwrap();
    manifest["package"]["metadata"].clone()
}

fn normalise(dest: &str, source: &str) -> String {
    let dest = format!("/{}", dest.trim_start_matches('/'));
    let dest = dest
        .replace("/lib/systemd/", "/usr/lib/systemd/")
        .replace("/usr/usr/", "/usr/");
    if dest.ends_with('/') {
        format!(
            "{dest}{}",
            Path::new(source).file_name().unwrap().to_string_lossy()
        )
    } else {
        dest
    }
}

#[test]
fn deb_and_rpm_ship_the_same_files_with_the_same_modes() {
    for krate in ["agent", "collector"] {
        let meta = metadata(krate);
        let deb = &meta["deb"];
        let rpm = &meta["generate-rpm"];
        let mut deb_files: Vec<(String, String)> = deb["assets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                let a = a.as_array().unwrap();
                let (source, dest) = (a[0].as_str().unwrap(), a[1].as_str().unwrap());
                (normalise(dest, source), a[2].as_str().unwrap().to_string())
            })
            .collect();
        let mut rpm_files: Vec<(String, String)> = rpm["assets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                let source = a["source"].as_str().unwrap();
                (
                    normalise(a["dest"].as_str().unwrap(), source),
                    a["mode"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        deb_files.sort();
        rpm_files.sort();
        assert_eq!(deb_files, rpm_files, "{krate}");

        // Sources exist (the binary is built by cargo).
        let sources = deb["assets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a[0].as_str().unwrap().to_string())
            .chain(
                rpm["assets"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a["source"].as_str().unwrap().to_string()),
            );
        for source in sources.filter(|s| !s.starts_with("target/")) {
            assert!(
                repo().join(krate).join(&source).is_file(),
                "{krate}: {source}"
            );
        }

        // The configuration is a conffile in both formats.
        let conf = format!("/etc/vigil/{krate}.toml");
        let conffiles: Vec<&str> = deb["conf-files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        assert_eq!(conffiles, [conf.as_str()]);
        let rpm_conf = rpm["assets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["dest"].as_str() == Some(conf.as_str()))
            .unwrap();
        assert_eq!(rpm_conf["config"].as_str(), Some("noreplace"));

        // Maintainer scripts exist, are executable where dpkg needs it, and parse.
        let deb_scripts = repo()
            .join(krate)
            .join(deb["maintainer-scripts"].as_str().unwrap());
        let mut scripts: Vec<PathBuf> = ["postinst", "prerm", "postrm"]
            .iter()
            .map(|s| deb_scripts.join(s))
            .collect();
        for script in &scripts {
            let mode = std::fs::metadata(script).unwrap().permissions().mode();
            assert_eq!(
                mode & 0o111,
                0o111,
                "{} must be executable",
                script.display()
            );
        }
        for key in [
            "pre_install_script",
            "post_install_script",
            "pre_uninstall_script",
            "post_uninstall_script",
        ] {
            scripts.push(repo().join(krate).join(rpm[key].as_str().unwrap()));
        }
        for script in scripts {
            let status = Command::new("sh").arg("-n").arg(&script).status().unwrap();
            assert!(status.success(), "{} does not parse", script.display());
        }
    }
}

#[test]
fn the_collector_packages_list_every_file_of_the_default_isms_pack() {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, base, out);
            } else {
                out.push(path.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let base = repo().join("packaging/isms");
    let mut files = Vec::new();
    walk(&base, &base, &mut files);
    assert!(files.len() > 10, "{files:?}");
    let meta = metadata("collector");
    let deb: Vec<String> = meta["deb"]["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| normalise(a[1].as_str().unwrap(), a[0].as_str().unwrap()))
        .collect();
    let rpm: Vec<String> = meta["generate-rpm"]["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| normalise(a["dest"].as_str().unwrap(), a["source"].as_str().unwrap()))
        .collect();
    for file in files {
        let dest = format!("/usr/share/vigil-collector/isms/{file}");
        assert!(deb.contains(&dest), "the .deb misses {dest}");
        assert!(rpm.contains(&dest), "the .rpm misses {dest}");
    }
}

#[test]
fn both_units_keep_their_security_exposure() {
    // Measured exposure (documented in packaging/INSTALL.md): agent 1.8, collector 1.1.
    for (unit, max) in [("vigil-agent", 2.0), ("vigil-collector", 1.5)] {
        let path = repo().join(format!("packaging/systemd/{unit}.service"));
        let output = Command::new("systemd-analyze")
            .args(["security", "--offline=true"])
            .arg(&path)
            .output()
            .expect("systemd-analyze (package systemd) is installed");
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        let score: f64 = text
            .lines()
            .find_map(|l| l.split(&format!("{unit}.service: ")).nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no exposure score for {unit}:\n{text}"));
        assert!(score <= max, "{unit}: exposure {score} > {max}\n{text}");
        // Syntax and directives (the binaries themselves are checked in the installed root).
        let verify = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()
            .unwrap();
        let complaints: Vec<String> = String::from_utf8_lossy(&verify.stderr)
            .lines()
            .filter(|l| !l.contains("is not executable: No such file or directory"))
            .map(str::to_string)
            .collect();
        assert!(complaints.is_empty(), "{unit}: {complaints:?}");
    }
}
