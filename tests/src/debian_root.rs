//! Throwaway Debian 12 roots for the package tests (`package.rs`, `rpm.rs`): a copy of the
//! cached debootstrap root (`tests/package/base-root`), commands run inside it with chroot, and
//! a boot under `systemd-nspawn -b` until a probe unit powers it off.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::run_ok;

pub use crate::repo;

/// Fails with what to install unless running as root with every `(tool, package)` present.
pub fn require(tools: &[(&str, &str)]) -> Result<()> {
    let uid = run_ok(Command::new("id").arg("-u"))?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        bail!("the package tests must run as root (chroot, systemd-nspawn); tests/run does");
    }
    for (tool, package) in tools {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            bail!("{tool} is missing: apt-get install {package} (tests/run does)");
        }
    }
    Ok(())
}

/// Whether `cargo <subcommand> --version` works.
pub fn cargo_has(subcommand: &str) -> bool {
    Command::new("cargo")
        .args([subcommand, "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Standard output and error together.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A fresh copy of the cached pristine Debian 12 root at `work/root`.
pub fn fresh(work: &Path) -> Result<PathBuf> {
    let base = run_ok(&mut Command::new(repo().join("tests/package/base-root")))?;
    let base = PathBuf::from(String::from_utf8_lossy(&base.stdout).trim());
    let root = work.join("root");
    run_ok(
        Command::new("cp")
            .args(["-a", "--reflink=auto"])
            .arg(&base)
            .arg(&root),
    )?;
    Ok(root)
}

/// Runs a command inside the root; its output.
pub fn chroot(root: &Path, args: &[&str]) -> Result<String> {
    Ok(text(&run_ok(Command::new("chroot").arg(root).args(args))?))
}

/// `mode owner group` of a path inside the root, as the root's own users see it.
pub fn stat(root: &Path, path: &str) -> Result<String> {
    Ok(chroot(root, &["stat", "-c", "%a %U %G", path])?
        .trim()
        .to_string())
}

/// `systemctl show` style `Key=Value` (or `Key: value`) lines as a map.
pub fn key_values(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(['=', ':']))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// What a boot left: how nspawn ended, the console, and the probe's files.
#[derive(Debug)]
pub struct Boot {
    pub status: Option<ExitStatus>,
    pub console: String,
    pub out: PathBuf,
}

impl Boot {
    /// A file the probe wrote (empty when missing).
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.out.join(name)).unwrap_or_default()
    }

    /// Whether the probe finished (it touches `done` before powering off).
    pub fn done(&self) -> bool {
        self.out.join("done").exists()
    }
}

/// Installs `probe` (a script) as a oneshot unit ordered after `after`, boots the root with
/// systemd as PID 1 until the probe powers it off (at most three minutes), with the probe's
/// output directory bound at `/probe`. `extra` goes to systemd-nspawn (`--hostname=…`,
/// `--private-network`).
pub fn boot_with_probe(
    work: &Path,
    root: &Path,
    probe: &str,
    after: &str,
    extra: &[String],
) -> Result<Boot> {
    let script = root.join("usr/local/sbin/vigil-probe");
    std::fs::create_dir_all(script.parent().context("probe path")?)?;
    std::fs::write(&script, probe)?;
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    std::fs::write(
        root.join("etc/systemd/system/vigil-probe.service"),
        format!(
            "[Unit]\nDescription=vigil package test probe\nAfter={after}\n\n\
             [Service]\nType=oneshot\nExecStart=/usr/local/sbin/vigil-probe\n"
        ),
    )?;
    std::os::unix::fs::symlink(
        "/etc/systemd/system/vigil-probe.service",
        root.join("etc/systemd/system/multi-user.target.wants/vigil-probe.service"),
    )?;
    let out = work.join("probe");
    std::fs::create_dir_all(&out)?;
    let console_path = work.join("console.log");
    let console = std::fs::File::create(&console_path)?;
    let mut boot = Command::new("systemd-nspawn")
        .args(["-q", "--register=no", "--keep-unit", "-b", "--console=pipe"])
        .arg("-D")
        .arg(root)
        .args(extra)
        .arg(format!("--bind={}:/probe", out.display()))
        .stdin(Stdio::null())
        .stdout(console.try_clone()?)
        .stderr(console)
        .spawn()
        .context("systemd-nspawn starts")?;
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(status) = boot.try_wait()? {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = boot.kill();
            let _ = boot.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Ok(Boot {
        status,
        console: std::fs::read_to_string(&console_path).unwrap_or_default(),
        out,
    })
}
