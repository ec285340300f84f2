//! The kernel hardening check through `run_check`: the three fixture hosts, trees built for
//! one rule each (precedence, masking, offline roots, settings), and the live host.

use std::path::Path;

use vigil_shared::{CheckResult, Status, Value};

use super::KernelHardening;
use crate::checks::support::testing::{
    fixture, offender_reasons as offenders, result as get, run_in_order, write_file as write,
};
use crate::settings::ChecksConfig;

fn run_with(root: &Path, settings: &ChecksConfig) -> Vec<CheckResult> {
    run_in_order(&KernelHardening, root, settings)
}

fn run(root: &Path) -> Vec<CheckResult> {
    run_with(root, &ChecksConfig::default())
}

fn offender_ids(result: &CheckResult) -> Vec<&str> {
    result
        .evidence
        .offenders
        .iter()
        .map(|s| s.id.as_str())
        .collect()
}

#[test]
fn healthy_host_passes_everything() {
    let results = run(&fixture("healthy"));
    for r in &results {
        assert_eq!(r.status, Status::Pass, "{}: {}", r.check, r.summary);
    }
    let kernel = get(&results, "kernel_hardening.kernel_sysctl");
    assert_eq!(kernel.values["settings_checked"], Value::Int(10));
    assert_eq!(kernel.values["basis"], Value::from("running"));
    let network = get(&results, "kernel_hardening.network_sysctl");
    assert_eq!(network.values["settings_checked"], Value::Int(23));
    assert_eq!(network.values["drift"], Value::Int(0));
    // The glob line sets rp_filter for all and default alike.
    let rp = network
        .evidence
        .checked
        .iter()
        .find(|s| s.id == "net.ipv4.conf.default.rp_filter")
        .unwrap();
    assert_eq!(
        rp.facts["configured_in"],
        Value::from("/etc/sysctl.d/60-hardening.conf:24")
    );
    // /etc/sysctl.conf is read once, through its 99-sysctl.conf link.
    assert_eq!(
        network.evidence.sources,
        [
            "/etc/sysctl.d/60-hardening.conf",
            "/usr/lib/sysctl.d/99-protect-links.conf",
            "/etc/sysctl.d/99-sysctl.conf",
            "/proc/sys"
        ]
    );
    let modules = get(&results, "kernel_hardening.modules");
    assert_eq!(modules.values["modules_checked"], Value::Int(11));
    assert_eq!(
        get(&results, "kernel_hardening.secure_boot").values["secure_boot"],
        Value::Bool(true)
    );
}

#[test]
fn misconfigured_host_shows_every_seeded_problem() {
    let results = run(&fixture("misconfigured"));
    let kernel = get(&results, "kernel_hardening.kernel_sysctl");
    assert_eq!(kernel.status, Status::Fail);
    assert_eq!(
        offenders(kernel),
        [
            (
                "kernel.randomize_va_space",
                "running value 2 passes, but /etc/sysctl.d/99-sysctl.conf:5 sets 0 (expected 2), applied at the next boot"
            ),
            (
                "kernel.kptr_restrict",
                "running value 0, expected at least 1: /etc/sysctl.d/60-hardening.conf:2 sets 1 but it is not applied"
            ),
            (
                "kernel.yama.ptrace_scope",
                "not present in the running kernel, so the protection is missing (processes cannot trace arbitrary processes of the same user)"
            ),
            (
                "fs.suid_dumpable",
                "running value 2, expected 0: /etc/sysctl.d/60-hardening.conf:19 sets 0 but it is not applied"
            ),
        ]
    );
    assert_eq!(kernel.values["drift"], Value::Int(3));
    let network = get(&results, "kernel_hardening.network_sysctl");
    assert_eq!(
        offender_ids(network),
        [
            "net.ipv4.ip_forward",
            "net.ipv4.conf.all.send_redirects",
            "net.ipv4.conf.all.accept_redirects",
            "net.ipv4.conf.default.accept_redirects",
            "net.ipv4.conf.all.rp_filter",
            "net.ipv4.conf.default.rp_filter",
        ]
    );
    let rp = &network.evidence.offenders[4];
    assert_eq!(
        rp.reason.as_deref(),
        Some(
            "running value 1 passes but no sysctl file sets it: the kernel default 0 returns at reboot"
        )
    );
    let secure_boot = get(&results, "kernel_hardening.secure_boot");
    assert_eq!(secure_boot.status, Status::Fail);
    assert_eq!(
        secure_boot.evidence.offenders[0].facts["setup_mode"],
        Value::Bool(false)
    );
    let modules = get(&results, "kernel_hardening.modules");
    assert_eq!(
        offenders(modules),
        [
            (
                "cramfs",
                "only blacklisted: `modprobe` or a dependency still loads it; add `install <module> /bin/false`"
            ),
            (
                "hfs",
                "only blacklisted: `modprobe` or a dependency still loads it; add `install <module> /bin/false`"
            ),
            (
                "hfsplus",
                "only blacklisted: `modprobe` or a dependency still loads it; add `install <module> /bin/false`"
            ),
            (
                "sctp",
                "the install command \"/sbin/modprobe --ignore-install sctp $CMDLINE_OPTS\" still loads the module"
            ),
            ("usb_storage", "loaded in the running kernel"),
        ]
    );
    assert_eq!(modules.values["modules_loaded"], Value::Int(1));
}

#[test]
fn minimal_host_has_no_data() {
    for r in run(&fixture("minimal")) {
        assert_eq!(r.status, Status::NoData, "{}: {}", r.check, r.summary);
    }
}

#[test]
fn offline_roots_are_judged_on_configuration_and_kernel_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    write(base, "etc/os-release", "ID=debian\n");
    write(
        base,
        "usr/lib/sysctl.d/50-default.conf",
        "kernel.kptr_restrict = 1\nnet.ipv4.conf.all.rp_filter = 2\n",
    );
    // /etc hides the vendor file of the same name; /run sorts by name, not by directory.
    write(
        base,
        "etc/sysctl.d/50-default.conf",
        "kernel.kptr_restrict = 2\n",
    );
    write(
        base,
        "run/sysctl.d/10-early.conf",
        "kernel.dmesg_restrict = 0\n",
    );
    write(
        base,
        "etc/sysctl.d/20-late.conf",
        "kernel.dmesg_restrict = 1\n",
    );
    write(base, "etc/sysctl.conf", "kernel.yama.ptrace_scope = 2\n");
    let results = run(base);
    let kernel = get(&results, "kernel_hardening.kernel_sysctl");
    assert_eq!(kernel.values["basis"], Value::from("configured"));
    let ids = offender_ids(kernel);
    // kptr_restrict=2 from /etc, dmesg_restrict=1 from the later file, ptrace from sysctl.conf.
    assert!(!ids.contains(&"kernel.kptr_restrict"), "{ids:?}");
    assert!(!ids.contains(&"kernel.dmesg_restrict"), "{ids:?}");
    assert!(!ids.contains(&"kernel.yama.ptrace_scope"), "{ids:?}");
    // Kernel defaults that fail: protected_* are 0 without procps' file.
    assert!(ids.contains(&"fs.protected_hardlinks"), "{ids:?}");
    let hard = &kernel.evidence.offenders[ids
        .iter()
        .position(|i| *i == "fs.protected_hardlinks")
        .unwrap()];
    assert_eq!(
        hard.reason.as_deref(),
        Some(
            "boots with 0 from kernel default (nothing configures it), expected 1 (hard links to files the user does not own are refused)"
        )
    );
    let network = get(&results, "kernel_hardening.network_sysctl");
    let rp = network
        .evidence
        .offenders
        .iter()
        .find(|s| s.id == "net.ipv4.conf.all.rp_filter")
        .unwrap();
    assert_eq!(
        rp.reason.as_deref(),
        // The vendor file that set it to 2 is hidden by /etc's file of the same name.
        Some(
            "boots with 0 from kernel default (nothing configures it), expected 1 (strict reverse-path filtering drops spoofed sources)"
        )
    );
    // No firmware tree: no Secure Boot state.
    assert_eq!(
        get(&results, "kernel_hardening.secure_boot").status,
        Status::NoData
    );
    // An installed system with no modprobe configuration can load every module.
    assert_eq!(
        get(&results, "kernel_hardening.modules").status,
        Status::Fail
    );
}

#[test]
fn masked_files_and_settings_overrides_apply() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    write(
        base,
        "usr/lib/sysctl.d/60-bad.conf",
        "net.ipv4.ip_forward = 1\n",
    );
    std::fs::create_dir_all(base.join("etc/sysctl.d")).unwrap();
    std::os::unix::fs::symlink("/dev/null", base.join("etc/sysctl.d/60-bad.conf")).unwrap();
    write(
        base,
        "etc/sysctl.d/70-custom.conf",
        "vm.swappiness = 10\nnet.core.bpf_jit_harden = 1\n",
    );
    let results = run(base);
    let network = get(&results, "kernel_hardening.network_sysctl");
    assert!(!offender_ids(network).contains(&"net.ipv4.ip_forward"));

    let mut settings = ChecksConfig::default();
    settings.kernel_hardening.router = true;
    settings
        .kernel_hardening
        .expect
        .insert("net.ipv4.conf.all.rp_filter".into(), "ignore".into());
    settings
        .kernel_hardening
        .expect
        .insert("vm.swappiness".into(), "<=10".into());
    settings
        .kernel_hardening
        .expect
        .insert("net.core.bpf_jit_harden".into(), "2".into());
    settings
        .kernel_hardening
        .expect
        .insert("kernel.kptr_restrict".into(), "0|1|2".into());
    let results = run_with(base, &settings);
    let kernel = get(&results, "kernel_hardening.kernel_sysctl");
    let swappiness = kernel
        .evidence
        .checked
        .iter()
        .find(|s| s.id == "vm.swappiness")
        .unwrap();
    assert_eq!(swappiness.facts["configured"], Value::from("10"));
    assert!(!offender_ids(kernel).contains(&"kernel.kptr_restrict"));
    let network = get(&results, "kernel_hardening.network_sysctl");
    let ids = offender_ids(network);
    assert!(!ids.contains(&"net.ipv4.conf.all.rp_filter"));
    assert!(
        !ids.contains(&"net.ipv4.conf.all.send_redirects"),
        "router: redirects allowed"
    );
    assert!(ids.contains(&"net.core.bpf_jit_harden"));
    assert_eq!(network.values["settings_checked"], Value::Int(19));

    settings
        .kernel_hardening
        .expect
        .insert("kernel.x".into(), ">=".into());
    let results = run_with(base, &settings);
    let kernel = get(&results, "kernel_hardening.kernel_sysctl");
    assert_eq!(kernel.status, Status::Error);
    assert_eq!(
        kernel.error.as_deref(),
        Some(
            "checks.kernel_hardening.expect.kernel.x: expected value \">=\": '>=' needs an integer"
        )
    );
}

#[test]
fn modules_missing_from_the_running_kernel_pass_and_custom_installs_block() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    write(base, "proc/sys/kernel/osrelease", "6.1.0-28-amd64\n");
    write(base, "proc/modules", "");
    write(
        base,
        "lib/modules/6.1.0-28-amd64/modules.dep",
        "kernel/fs/udf/udf.ko.xz: kernel/lib/crc-itu-t.ko.xz\nkernel/net/sctp/sctp.ko.xz:\n",
    );
    write(
        base,
        "lib/modules/6.1.0-28-amd64/modules.builtin",
        "kernel/fs/hfs/hfs.ko\n",
    );
    write(
        base,
        "etc/modprobe.d/x.conf",
        "install udf /usr/bin/logger -t policy refused udf\n",
    );
    let results = run(base);
    let modules = get(&results, "kernel_hardening.modules");
    // hfs is built in and sctp is loadable with no install line; udf is refused by the logger.
    assert_eq!(offender_ids(modules), ["hfs", "sctp"]);
    assert_eq!(modules.values["modules_checked"], Value::Int(11));
    let cramfs = modules
        .evidence
        .checked
        .iter()
        .find(|s| s.id == "cramfs")
        .unwrap();
    assert_eq!(cramfs.facts["in_running_kernel"], Value::Bool(false));
}

#[test]
fn a_kernel_without_module_support_loads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "proc/sys/kernel/osrelease", "6.18.44-fc\n");
    write(dir.path(), "etc/os-release", "ID=debian\n");
    let results = run(dir.path());
    let modules = get(&results, "kernel_hardening.modules");
    assert_eq!(modules.status, Status::Pass, "{}", modules.summary);
    assert_eq!(modules.values["module_support"], Value::Bool(false));
    // With the sysctl present the kernel has modules, merely none listed: judged as usual.
    write(dir.path(), "proc/sys/kernel/modules_disabled", "0\n");
    let results = run(dir.path());
    assert_eq!(
        get(&results, "kernel_hardening.modules").status,
        Status::Fail
    );
}

#[test]
fn secure_boot_reads_legacy_sysfs_and_reports_junk() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    write(
        base,
        "sys/firmware/efi/vars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c/data",
        "\u{1}",
    );
    let results = run(base);
    assert_eq!(
        get(&results, "kernel_hardening.secure_boot").status,
        Status::Pass
    );
    write(
        base,
        "sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c",
        "ab",
    );
    let results = run(base);
    let sb = get(&results, "kernel_hardening.secure_boot");
    assert_eq!(sb.status, Status::Error);
    assert!(sb.error.as_deref().unwrap().contains("unexpected content"));
    let empty = tempfile::tempdir().unwrap();
    write(empty.path(), "sys/firmware/efi/runtime", "");
    let results = run(empty.path());
    assert!(
        get(&results, "kernel_hardening.secure_boot")
            .summary
            .contains("efivarfs not mounted")
    );
}

#[test]
fn the_live_host_gives_a_verdict_for_every_output() {
    let results = run(Path::new("/"));
    assert_eq!(results.len(), 4);
    for r in &results {
        assert!(r.status != Status::Error, "{}: {}", r.check, r.summary);
    }
    // The running kernel is read on the live host.
    assert_eq!(
        get(&results, "kernel_hardening.kernel_sysctl").values["basis"],
        Value::from("running")
    );
}

#[test]
fn parsers_survive_junk() {
    let mut seed: u64 = 0x1234_5678_9abc_def1;
    let alphabet = b"=-.#;/\\ \t\r\n*?[]!abc019\x00\xff";
    for _ in 0..3000 {
        let len = (seed % 64) as usize;
        let mut bytes = Vec::with_capacity(len);
        for _ in 0..len {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            bytes.push(alphabet[(seed % alphabet.len() as u64) as usize]);
        }
        let text = String::from_utf8_lossy(&bytes);
        let parsed = super::sysctl::parse_sysctl_conf(&text);
        for a in &parsed.assignments {
            let _ = crate::checks::confdir::glob_match(&a.path, "net/ipv4/conf/all/rp_filter");
        }
        let _ = super::modprobe::parse_modprobe_conf(&text);
        let _ = super::modprobe::parse_proc_modules(&text);
        let _ = super::modprobe::parse_module_index(&text);
        let _ = super::sysctl::Expect::parse(&text);
    }
}
