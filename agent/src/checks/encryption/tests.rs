//! Tests of the whole encryption check: the three fixture hosts, trees built for one storage
//! layout each (RAID, btrfs, loop, zram, key files, containers, offline images), and the
//! live host.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use vigil_shared::{CheckResult, Status, Value};

use super::Encryption;
use crate::checks::{CheckContext, run_check};
use crate::hostroot::HostRoot;
use crate::settings::ChecksConfig;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-06-01T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn run_with(root: &HostRoot, settings: &ChecksConfig) -> Vec<CheckResult> {
    let ctx = CheckContext {
        root,
        now: now(),
        settings,
        cache_dir: None,
    };
    let results = run_check(&Encryption, &ctx);
    for result in &results {
        assert!(
            result.status != Status::Fail || !result.evidence.offenders.is_empty(),
            "{}: a failure must name offenders",
            result.check
        );
        assert!(
            result.status != Status::Error || result.error.is_some(),
            "{}: an error must say why",
            result.check
        );
    }
    results
}

fn run(root: &HostRoot) -> Vec<CheckResult> {
    run_with(root, &ChecksConfig::default())
}

fn fixture(name: &str) -> HostRoot {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/hosts")
        .join(name);
    HostRoot::new(path).unwrap()
}

fn get<'a>(results: &'a [CheckResult], id: &str) -> &'a CheckResult {
    results.iter().find(|r| r.check == id).unwrap()
}

fn offenders(result: &CheckResult) -> Vec<&str> {
    result
        .evidence
        .offenders
        .iter()
        .map(|s| s.id.as_str())
        .collect()
}

fn checked(result: &CheckResult) -> Vec<&str> {
    result
        .evidence
        .checked
        .iter()
        .map(|s| s.id.as_str())
        .collect()
}

fn int(result: &CheckResult, key: &str) -> i64 {
    result
        .values
        .get(key)
        .and_then(Value::as_i64)
        .unwrap_or_else(|| panic!("{}: no integer value {key}", result.check))
}

fn fact<'a>(result: &'a CheckResult, subject: &str, key: &str) -> Option<&'a Value> {
    result
        .evidence
        .offenders
        .iter()
        .chain(&result.evidence.checked)
        .find(|s| s.id == subject)
        .and_then(|s| s.facts.get(key))
}

fn text_fact(result: &CheckResult, subject: &str, key: &str) -> String {
    fact(result, subject, key)
        .map(ToString::to_string)
        .unwrap_or_default()
}

fn reason(result: &CheckResult, subject: &str) -> String {
    result
        .evidence
        .offenders
        .iter()
        .chain(&result.evidence.checked)
        .find(|s| s.id == subject)
        .and_then(|s| s.reason.clone())
        .unwrap_or_default()
}

fn statuses(results: &[CheckResult]) -> Vec<(&str, Status)> {
    results
        .iter()
        .map(|r| (r.check.as_str(), r.status))
        .collect()
}

// ---------------------------------------------------------------- fixture hosts

#[test]
fn healthy_host_passes_everything_with_luks2_under_lvm() {
    let results = run(&fixture("healthy"));
    assert_eq!(
        statuses(&results),
        [
            ("encryption.root", Status::Pass),
            ("encryption.home", Status::Pass),
            ("encryption.swap", Status::Pass),
            ("encryption.volumes", Status::Pass),
        ]
    );
    let root = get(&results, "encryption.root");
    assert_eq!(
        text_fact(root, "/", "chain"),
        "/dev/mapper/vg-root ← /dev/mapper/sda3_crypt ← /dev/sda3"
    );
    assert_eq!(int(root, "luks_version"), 2);
    assert_eq!(root.values["judged_from"], Value::Text("live".into()));
    // The LUKS2 header under the mapping was read: cipher and KDF from its JSON area.
    assert_eq!(
        text_fact(root, "/", "encryption"),
        "[LUKS2 /dev/mapper/sda3_crypt [LUKS2 aes-xts-plain64 (pbkdf2)]]"
    );
    assert_eq!(text_fact(root, "/", "crypttab"), "[sda3_crypt]");
    assert!(root.evidence.sources.contains(&"/dev/sda3".to_string()));
    assert!(
        root.evidence
            .sources
            .contains(&"/proc/self/mountinfo".to_string())
    );

    let home = get(&results, "encryption.home");
    assert_eq!(home.values["own_mount"], Value::Bool(true));
    assert_eq!(
        text_fact(home, "/home", "chain"),
        "/dev/mapper/vg-home ← /dev/mapper/sda3_crypt ← /dev/sda3"
    );

    let swap = get(&results, "encryption.swap");
    assert_eq!(checked(swap), ["/dev/dm-3"]);
    assert_eq!(
        text_fact(swap, "/dev/dm-3", "chain"),
        "/dev/mapper/vg-swap ← /dev/mapper/sda3_crypt ← /dev/sda3"
    );
    assert_eq!(int(swap, "encrypted"), 1);

    let volumes = get(&results, "encryption.volumes");
    assert!(volumes.evidence.offenders.is_empty());
    assert_eq!(
        checked(volumes),
        ["/", "/boot", "/boot/efi", "/home", "/mnt/backup"]
    );
    assert!(reason(volumes, "/boot").starts_with("exempt"));
    assert!(reason(volumes, "/mnt/backup").contains("network filesystem"));
    assert_eq!(int(volumes, "filesystems"), 2);
    assert_eq!(int(volumes, "encrypted"), 2);
    assert_eq!(int(volumes, "unencrypted"), 0);
    assert_eq!(int(volumes, "exempt"), 2);
    assert_eq!(int(volumes, "network"), 1);
    // The docker overlay mount is not local storage of its own.
    assert_eq!(int(volumes, "not_local"), 1);
    assert_eq!(int(volumes, "crypttab_entries"), 1);
}

#[test]
fn misconfigured_host_has_every_seeded_problem_found() {
    let results = run(&fixture("misconfigured"));
    assert_eq!(
        statuses(&results),
        [
            ("encryption.root", Status::Fail),
            ("encryption.home", Status::Pass),
            ("encryption.swap", Status::Fail),
            ("encryption.volumes", Status::Fail),
        ]
    );
    let root = get(&results, "encryption.root");
    assert_eq!(offenders(root), ["/"]);
    assert_eq!(reason(root, "/"), "no encryption layer above /dev/sda2");
    assert_eq!(text_fact(root, "/", "chain"), "/dev/sda2");
    assert_eq!(root.values["encrypted"], Value::Bool(false));

    let home = get(&results, "encryption.home");
    assert_eq!(int(home, "luks_version"), 1);
    assert_eq!(
        text_fact(home, "/home", "chain"),
        "/dev/mapper/sda4_crypt ← /dev/sda4"
    );
    assert_eq!(
        text_fact(home, "/home", "encryption"),
        "[LUKS1 /dev/mapper/sda4_crypt [LUKS1 aes-xts-plain64 (pbkdf2)]]"
    );

    let swap = get(&results, "encryption.swap");
    assert_eq!(offenders(swap), ["/dev/sda3"]);
    assert_eq!(
        reason(swap, "/dev/sda3"),
        "no encryption layer above /dev/sda3"
    );

    let volumes = get(&results, "encryption.volumes");
    assert_eq!(offenders(volumes), ["/", "/srv"]);
    assert_eq!(
        reason(volumes, "/srv"),
        "no encryption layer above /dev/sdb1"
    );
    assert_eq!(checked(volumes), ["/boot/efi", "/home"]);
    assert_eq!(int(volumes, "unencrypted"), 2);
    assert_eq!(int(volumes, "encrypted"), 1);
    assert_eq!(int(volumes, "luks_version"), 1);
    assert!(volumes.summary.contains("/, /srv"), "{}", volumes.summary);
}

#[test]
fn minimal_host_has_no_data() {
    let results = run(&fixture("minimal"));
    for result in &results {
        assert_eq!(result.status, Status::NoData, "{}", result.check);
        assert!(
            result.summary.contains("no mount table"),
            "{}",
            result.summary
        );
    }
    assert_eq!(results.len(), 4);
}

#[test]
fn exempt_mounts_come_from_settings() {
    let mut settings = ChecksConfig::default();
    settings.encryption.exempt_mounts = vec!["/srv/".into(), "/boot/efi".into()];
    let results = run_with(&fixture("misconfigured"), &settings);
    let volumes = get(&results, "encryption.volumes");
    assert_eq!(offenders(volumes), ["/"]);
    assert!(reason(volumes, "/srv").starts_with("exempt"));
}

// ---------------------------------------------------------------- built trees

/// A host tree with sysfs, written the way the kernel lays it out (absolute links inside the
/// root stand in for the kernel's relative ones; `HostRoot` resolves both).
struct Tree {
    dir: tempfile::TempDir,
    mountinfo: Vec<String>,
}

impl Tree {
    fn new() -> Tree {
        Tree {
            dir: tempfile::tempdir().unwrap(),
            mountinfo: Vec::new(),
        }
    }

    fn path(&self, host_path: &str) -> PathBuf {
        self.dir.path().join(host_path.trim_start_matches('/'))
    }

    fn file(&self, host_path: &str, content: impl AsRef<[u8]>) -> &Tree {
        let path = self.path(host_path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
        self
    }

    fn link(&self, host_path: &str, target: &str) {
        let path = self.path(host_path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let _ = std::fs::remove_file(&path);
        symlink(target, path).unwrap();
    }

    /// A block device at `/sys/devices/<devpath>` named by its last component.
    fn block(&self, devpath: &str, number: &str) -> String {
        let dir = format!("/sys/devices/{devpath}");
        let name = devpath.rsplit('/').next().unwrap();
        self.file(&format!("{dir}/dev"), format!("{number}\n"));
        self.link(&format!("/sys/dev/block/{number}"), &dir);
        self.link(&format!("/sys/class/block/{name}"), &dir);
        dir
    }

    fn disk(&self, name: &str, number: &str) -> String {
        self.block(
            &format!("pci0000:00/0000:00:1f.2/ata1/block/{name}"),
            number,
        )
    }

    fn part(&self, disk_dir: &str, name: &str, number: &str) -> String {
        let devpath = format!("{}/{name}", disk_dir.trim_start_matches("/sys/devices/"));
        let dir = self.block(&devpath, number);
        self.file(&format!("{dir}/partition"), "1\n");
        dir
    }

    fn slaves(&self, dir: &str, slaves: &[&str]) {
        std::fs::create_dir_all(self.path(&format!("{dir}/slaves"))).unwrap();
        for slave in slaves {
            let name = slave.rsplit('/').next().unwrap();
            self.link(&format!("{dir}/slaves/{name}"), slave);
        }
    }

    fn dm(&self, n: u32, name: &str, uuid: &str, slaves: &[&str]) -> String {
        let dir = self.block(&format!("virtual/block/dm-{n}"), &format!("254:{n}"));
        self.file(&format!("{dir}/dm/name"), format!("{name}\n"));
        self.file(&format!("{dir}/dm/uuid"), format!("{uuid}\n"));
        self.slaves(&dir, slaves);
        dir
    }

    fn md(&self, name: &str, number: &str, slaves: &[&str]) -> String {
        let dir = self.block(&format!("virtual/block/{name}"), number);
        self.file(&format!("{dir}/md/level"), "raid1\n");
        self.slaves(&dir, slaves);
        dir
    }

    fn loop_dev(&self, name: &str, number: &str, backing: &str) -> String {
        let dir = self.block(&format!("virtual/block/{name}"), number);
        self.file(&format!("{dir}/loop/backing_file"), format!("{backing}\n"));
        dir
    }

    fn mount(&mut self, number: &str, mount_point: &str, fs_type: &str, source: &str) -> &mut Tree {
        let id = 20 + self.mountinfo.len();
        self.mountinfo.push(format!(
            "{id} 1 {number} / {mount_point} rw,relatime shared:1 - {fs_type} {source} rw"
        ));
        self
    }

    fn bind(&mut self, number: &str, fs_root: &str, mount_point: &str, source: &str) -> &mut Tree {
        let id = 20 + self.mountinfo.len();
        self.mountinfo.push(format!(
            "{id} 1 {number} {fs_root} {mount_point} rw,relatime shared:1 - ext4 {source} rw"
        ));
        self
    }

    fn swaps(&self, lines: &[(&str, &str)]) {
        let mut text = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n".to_string();
        for (path, kind) in lines {
            text.push_str(&format!("{path}\t{kind}\t1048572\t0\t-2\n"));
        }
        self.file("/proc/swaps", text);
    }

    fn finish(&self) -> HostRoot {
        let mut text = self.mountinfo.join("\n");
        text.push('\n');
        if !self.mountinfo.is_empty() {
            self.file("/proc/self/mountinfo", text);
        }
        HostRoot::new(self.dir.path()).unwrap()
    }
}

const LUKS2_UUID: &str = "CRYPT-LUKS2-5b1f7c2e8d3a4e6f9a0b1c2d3e4f5a6b-";

/// A plain disk `sda` with partitions 1-3, and `/` mounted from the given device number.
fn base_tree() -> (Tree, String) {
    let mut tree = Tree::new();
    let sda = tree.disk("sda", "8:0");
    tree.part(&sda, "sda1", "8:1");
    tree.part(&sda, "sda2", "8:2");
    tree.part(&sda, "sda3", "8:3");
    tree.mount("0:21", "/proc", "proc", "proc")
        .mount("0:22", "/sys", "sysfs", "sysfs");
    (tree, sda)
}

#[test]
fn raid_of_encrypted_legs_is_encrypted_and_one_plain_leg_is_not() {
    let (mut tree, sda) = base_tree();
    let sdb = tree.disk("sdb", "8:16");
    let sdb1 = tree.part(&sdb, "sdb1", "8:17");
    let sda1 = format!("{sda}/sda1");
    let sda2 = format!("{sda}/sda2");
    let c0 = tree.dm(0, "leg0", &format!("{LUKS2_UUID}leg0"), &[&sda1]);
    let c1 = tree.dm(1, "leg1", &format!("{LUKS2_UUID}leg1"), &[&sdb1]);
    tree.md("md0", "9:0", &[&c0, &c1]);
    // md1 mirrors an encrypted leg with a plain one: the plain leg leaks the data.
    tree.md("md1", "9:1", &[&c0, &sda2]);
    tree.mount("9:0", "/", "ext4", "/dev/md0")
        .mount("9:1", "/srv", "xfs", "/dev/md1");
    tree.swaps(&[]);
    let results = run(&tree.finish());
    let root = get(&results, "encryption.root");
    assert_eq!(root.status, Status::Pass, "{}", root.summary);
    assert_eq!(
        text_fact(root, "/", "chain"),
        "/dev/md0 ← (/dev/mapper/leg0 ← /dev/sda1 + /dev/mapper/leg1 ← /dev/sdb1)"
    );
    let volumes = get(&results, "encryption.volumes");
    assert_eq!(offenders(volumes), ["/srv"]);
    assert_eq!(
        reason(volumes, "/srv"),
        "no encryption layer above /dev/sda2"
    );
    // The header of the legs is not in this tree: reported, not fatal.
    assert!(text_fact(root, "/", "encryption").contains("no /dev/sda1 under this root"));
    let swap = get(&results, "encryption.swap");
    assert_eq!(swap.status, Status::Pass);
    assert_eq!(swap.summary, "no swap area is in use");
}

#[test]
fn lvm_spanning_an_encrypted_and_a_plain_pv_is_unencrypted() {
    let (mut tree, sda) = base_tree();
    let crypt = tree.dm(
        0,
        "sda3_crypt",
        &format!("{LUKS2_UUID}sda3_crypt"),
        &[&format!("{sda}/sda3")],
    );
    tree.dm(
        1,
        "vg-root",
        "LVM-abcdefabcdefabcdefabcdefabcdef12root",
        &[&crypt, &format!("{sda}/sda2")],
    );
    tree.mount("254:1", "/", "ext4", "/dev/mapper/vg-root");
    let results = run(&tree.finish());
    let root = get(&results, "encryption.root");
    assert_eq!(root.status, Status::Fail);
    assert_eq!(reason(root, "/"), "no encryption layer above /dev/sda2");
    assert_eq!(
        text_fact(root, "/", "chain"),
        "/dev/mapper/vg-root ← (/dev/mapper/sda3_crypt ← /dev/sda3 + /dev/sda2)"
    );
}

#[test]
fn btrfs_is_judged_over_every_member_device() {
    for (second_encrypted, expected) in [(true, Status::Pass), (false, Status::Fail)] {
        let (mut tree, sda) = base_tree();
        let a = tree.dm(
            0,
            "luks-a",
            &format!("{LUKS2_UUID}luks-a"),
            &[&format!("{sda}/sda2")],
        );
        let second = if second_encrypted {
            tree.dm(
                1,
                "luks-b",
                &format!("{LUKS2_UUID}luks-b"),
                &[&format!("{sda}/sda3")],
            )
        } else {
            format!("{sda}/sda3")
        };
        let fsid = "/sys/fs/btrfs/2b3c4d5e-0000-4000-8000-000000000001/devices";
        tree.link(&format!("{fsid}/dm-0"), &a);
        let name = second.rsplit('/').next().unwrap().to_string();
        tree.link(&format!("{fsid}/{name}"), &second);
        // btrfs reports an anonymous device number; the source names one member.
        tree.mount("0:45", "/", "btrfs", "/dev/mapper/luks-a");
        let results = run(&tree.finish());
        let root = get(&results, "encryption.root");
        assert_eq!(root.status, expected, "{}", root.summary);
        if !second_encrypted {
            assert_eq!(reason(root, "/"), "no encryption layer above /dev/sda3");
        }
    }
}

#[test]
fn loop_devices_are_judged_by_the_filesystem_holding_their_file() {
    let (mut tree, sda) = base_tree();
    let crypt = tree.dm(
        0,
        "root_crypt",
        &format!("{LUKS2_UUID}root_crypt"),
        &[&format!("{sda}/sda2")],
    );
    let _ = crypt;
    tree.loop_dev("loop0", "7:0", "/var/lib/images/secure.img");
    tree.loop_dev("loop1", "7:1", "/data/plain.img (deleted)");
    tree.mount("254:0", "/", "ext4", "/dev/mapper/root_crypt")
        .mount("8:3", "/data", "ext4", "/dev/sda3")
        .mount("7:0", "/srv/secure", "ext4", "/dev/loop0")
        .mount("7:1", "/srv/plain", "ext4", "/dev/loop1");
    let results = run(&tree.finish());
    let volumes = get(&results, "encryption.volumes");
    assert_eq!(offenders(volumes), ["/data", "/srv/plain"]);
    assert_eq!(
        reason(volumes, "/srv/plain"),
        "/dev/loop1 is backed by /data/plain.img on the unencrypted filesystem /data \
         (no encryption layer above /dev/sda3)"
    );
    assert_eq!(text_fact(volumes, "/srv/secure", "protection"), "encrypted");
    assert_eq!(
        text_fact(volumes, "/srv/secure", "chain"),
        "/dev/loop0 ← file /var/lib/images/secure.img"
    );
}

#[test]
fn a_loop_device_backed_by_a_file_on_itself_terminates() {
    let (mut tree, _) = base_tree();
    tree.loop_dev("loop0", "7:0", "/mnt/x/self.img");
    tree.mount("8:2", "/", "ext4", "/dev/sda2")
        .mount("7:0", "/mnt/x", "ext4", "/dev/loop0");
    let results = run(&tree.finish());
    let volumes = get(&results, "encryption.volumes");
    assert_eq!(offenders(volumes), ["/"]);
    assert!(
        reason(volumes, "/mnt/x").contains("nested deeper"),
        "{}",
        reason(volumes, "/mnt/x")
    );
}

#[test]
fn zram_swap_is_memory_backed_and_swap_files_follow_their_filesystem() {
    let (mut tree, sda) = base_tree();
    tree.block("virtual/block/zram0", "253:0");
    let zram1 = tree.block("virtual/block/zram1", "253:1");
    // zram1 writes idle pages back to a plain partition.
    tree.file(&format!("{zram1}/backing_dev"), "/dev/sda3\n");
    tree.dm(
        0,
        "root_crypt",
        &format!("{LUKS2_UUID}root_crypt"),
        &[&format!("{sda}/sda2")],
    );
    tree.mount("254:0", "/", "ext4", "/dev/mapper/root_crypt")
        .mount("8:1", "/data", "ext4", "/dev/sda1");
    tree.swaps(&[
        ("/dev/zram0", "partition"),
        ("/swap\\040file", "file"),
        ("/data/swapfile", "file"),
        ("/dev/zram1", "partition"),
    ]);
    let results = run(&tree.finish());
    let swap = get(&results, "encryption.swap");
    assert_eq!(swap.status, Status::Fail);
    assert_eq!(offenders(swap), ["/data/swapfile", "/dev/zram1"]);
    assert_eq!(checked(swap), ["/dev/zram0", "/swap file"]);
    assert_eq!(
        reason(swap, "/data/swapfile"),
        "a swap file on /data: no encryption layer above /dev/sda1"
    );
    assert_eq!(
        reason(swap, "/dev/zram1"),
        "/dev/zram1 writes back to storage: no encryption layer above /dev/sda3"
    );
    assert_eq!(text_fact(swap, "/dev/zram0", "protection"), "memory_backed");
    assert_eq!(int(swap, "memory_backed"), 1);
    assert_eq!(int(swap, "encrypted"), 1);
}

#[test]
fn a_key_file_on_an_unencrypted_filesystem_defeats_the_encryption() {
    let (mut tree, sda) = base_tree();
    let sdb = tree.disk("sdb", "8:16");
    let sdb1 = tree.part(&sdb, "sdb1", "8:17");
    let sdb2 = tree.part(&sdb, "sdb2", "8:18");
    tree.dm(
        0,
        "root_crypt",
        &format!("{LUKS2_UUID}root_crypt"),
        &[&format!("{sda}/sda2")],
    );
    tree.dm(
        1,
        "data_crypt",
        &format!("{LUKS2_UUID}data_crypt"),
        &[&sdb1],
    );
    tree.dm(
        2,
        "logs_crypt",
        &format!("{LUKS2_UUID}logs_crypt"),
        &[&sdb2],
    );
    tree.file(
        "/etc/crypttab",
        "root_crypt UUID=1 none luks\n\
         data_crypt /dev/sdb1 /boot/keys/data.key luks\n\
         logs_crypt /dev/sdb2 /etc/keys/logs.key luks\n",
    );
    tree.mount("254:0", "/", "ext4", "/dev/mapper/root_crypt")
        .mount("8:1", "/boot", "ext4", "/dev/sda1")
        .mount("254:1", "/srv/data", "ext4", "/dev/mapper/data_crypt")
        .mount("254:2", "/var/log", "ext4", "/dev/mapper/logs_crypt");
    let results = run(&tree.finish());
    let volumes = get(&results, "encryption.volumes");
    assert_eq!(offenders(volumes), ["/srv/data"]);
    assert_eq!(
        reason(volumes, "/srv/data"),
        "the key file /boot/keys/data.key of data_crypt lies on the unencrypted filesystem /boot"
    );
    assert_eq!(text_fact(volumes, "/var/log", "protection"), "encrypted");
}

#[test]
fn cipher_null_luks_and_integrity_only_layers_do_not_count_as_encryption() {
    let (mut tree, sda) = base_tree();
    // A LUKS2 header whose data segment uses cipher_null.
    let json =
        r#"{"keyslots":{},"segments":{"0":{"type":"crypt","encryption":"cipher_null-ecb"}}}"#;
    let mut header = vec![0u8; 0x4000];
    header[..6].copy_from_slice(b"LUKS\xba\xbe");
    header[6..8].copy_from_slice(&2u16.to_be_bytes());
    header[8..16].copy_from_slice(&0x4000u64.to_be_bytes());
    header[4096..4096 + json.len()].copy_from_slice(json.as_bytes());
    tree.file("/dev/sda2", &header);
    tree.dm(
        0,
        "nullcrypt",
        &format!("{LUKS2_UUID}nullcrypt"),
        &[&format!("{sda}/sda2")],
    );
    // dm-verity over a plain partition protects integrity only.
    tree.dm(
        1,
        "usr",
        "CRYPT-VERITY-0123456789abcdef-usr",
        &[&format!("{sda}/sda3")],
    );
    // LUKS2 with authenticated encryption: dm-crypt over a dm-integrity subdevice.
    let sdb = tree.disk("sdb", "8:16");
    let sdb1 = tree.part(&sdb, "sdb1", "8:17");
    let dif = tree.dm(
        2,
        "secure_dif",
        "CRYPT-SUBDEV-0123456789abcdef-secure_dif",
        &[&sdb1],
    );
    tree.dm(3, "secure", &format!("{LUKS2_UUID}secure"), &[&dif]);
    tree.mount("254:0", "/", "ext4", "/dev/mapper/nullcrypt")
        .mount("254:1", "/usr", "erofs-not", "/dev/mapper/usr")
        .mount("254:3", "/secure", "ext4", "/dev/mapper/secure");
    let results = run(&tree.finish());
    let root = get(&results, "encryption.root");
    assert_eq!(root.status, Status::Fail);
    assert_eq!(
        reason(root, "/"),
        "/dev/mapper/nullcrypt uses cipher_null and no encryption layer above /dev/sda2"
    );
    let volumes = get(&results, "encryption.volumes");
    assert_eq!(offenders(volumes), ["/", "/usr"]);
    assert_eq!(
        text_fact(volumes, "/secure", "chain"),
        "/dev/mapper/secure ← /dev/mapper/secure_dif ← /dev/sdb1"
    );
    // The header of /secure's mapping lies under the integrity device: not in this tree.
    assert_eq!(text_fact(volumes, "/secure", "protection"), "encrypted");
}

#[test]
fn an_unreadable_header_is_reported_and_never_fatal() {
    let (mut tree, sda) = base_tree();
    // A directory where the device node should be: reading it fails.
    std::fs::create_dir_all(tree.path("/dev/sda2")).unwrap();
    tree.dm(
        0,
        "root_crypt",
        &format!("{LUKS2_UUID}root_crypt"),
        &[&format!("{sda}/sda2")],
    );
    tree.mount("254:0", "/", "ext4", "/dev/mapper/root_crypt");
    let results = run(&tree.finish());
    let root = get(&results, "encryption.root");
    assert_eq!(root.status, Status::Pass);
    assert_eq!(int(root, "luks_version"), 2);
    assert!(
        text_fact(root, "/", "encryption")
            .contains("header unreadable: /dev/sda2: not a regular file"),
        "{}",
        text_fact(root, "/", "encryption")
    );
}

#[test]
fn a_container_root_is_no_data_not_a_failure() {
    let mut tree = Tree::new();
    tree.mount("0:120", "/", "overlay", "overlay")
        .mount("0:121", "/proc", "proc", "proc")
        .mount("0:122", "/dev", "tmpfs", "tmpfs");
    tree.file("/proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n");
    let results = run(&tree.finish());
    let root = get(&results, "encryption.root");
    assert_eq!(root.status, Status::NoData);
    assert!(
        root.summary
            .contains("overlay filesystem (as in a container)"),
        "{}",
        root.summary
    );
    let home = get(&results, "encryption.home");
    assert_eq!(home.status, Status::NoData);
    assert!(
        home.summary
            .starts_with("/home has no filesystem of its own; it lies on /, which is an overlay"),
        "{}",
        home.summary
    );
    let volumes = get(&results, "encryption.volumes");
    assert_eq!(volumes.status, Status::NoData);
    assert_eq!(int(volumes, "filesystems"), 0);
}

#[test]
fn bind_mounts_of_a_mounted_filesystem_are_listed_once() {
    let (mut tree, _) = base_tree();
    tree.mount("8:2", "/", "ext4", "/dev/sda2")
        .bind(
            "8:2",
            "/var/lib/kubelet/pods/a/volumes/x",
            "/srv/a",
            "/dev/sda2",
        )
        .bind(
            "8:2",
            "/var/lib/kubelet/pods/b/volumes/y",
            "/srv/b",
            "/dev/sda2",
        )
        // Only a part of sda3 is mounted: it stays, as the only view of that filesystem.
        .bind("8:3", "/exports", "/mnt/exports", "/dev/sda3");
    let results = run(&tree.finish());
    let volumes = get(&results, "encryption.volumes");
    assert_eq!(offenders(volumes), ["/", "/mnt/exports"]);
    assert_eq!(
        text_fact(volumes, "/", "also_mounted_at"),
        "[/srv/a, /srv/b]"
    );
    assert_eq!(int(volumes, "bind_mounts"), 2);
    assert_eq!(int(volumes, "filesystems"), 2);
}

#[test]
fn network_and_zfs_roots_are_no_data() {
    let mut tree = Tree::new();
    tree.mount("0:50", "/", "nfs4", "10.0.0.5:/roots/web01");
    let results = run(&tree.finish());
    let root = get(&results, "encryption.root");
    assert_eq!(root.status, Status::NoData);
    assert!(root.summary.contains("encryption at rest is the server's"));

    let mut tree = Tree::new();
    tree.mount("0:51", "/", "zfs", "rpool/ROOT/debian");
    let results = run(&tree.finish());
    assert_eq!(get(&results, "encryption.root").status, Status::NoData);
    let volumes = get(&results, "encryption.volumes");
    assert_eq!(volumes.status, Status::NoData);
    assert_eq!(int(volumes, "undetermined"), 1);
}

#[test]
fn proc_mounts_is_the_fallback_and_mapper_names_are_found_in_sysfs() {
    let (mut tree, sda) = base_tree();
    tree.mountinfo.clear();
    tree.dm(
        0,
        "sda3_crypt",
        &format!("{LUKS2_UUID}sda3_crypt"),
        &[&format!("{sda}/sda3")],
    );
    tree.dm(
        1,
        "vg-root",
        "LVM-abcdefabcdefabcdefabcdefabcdef12root",
        &["/sys/devices/virtual/block/dm-0"],
    );
    tree.file(
        "/proc/mounts",
        "/dev/mapper/vg-root / ext4 rw,relatime 0 0\n\
         /dev/sda2 /srv/team\\040share ext4 rw 0 0\n\
         tmpfs /run tmpfs rw 0 0\n",
    );
    let results = run(&tree.finish());
    let root = get(&results, "encryption.root");
    assert_eq!(root.status, Status::Pass, "{}", root.summary);
    assert!(root.evidence.sources.contains(&"/proc/mounts".to_string()));
    let volumes = get(&results, "encryption.volumes");
    assert_eq!(offenders(volumes), ["/srv/team share"]);
}

#[test]
fn home_behind_a_symlink_is_judged_where_it_lands() {
    let (mut tree, sda) = base_tree();
    tree.dm(
        0,
        "var_crypt",
        &format!("{LUKS2_UUID}var_crypt"),
        &[&format!("{sda}/sda3")],
    );
    tree.link("/home", "var/home");
    std::fs::create_dir_all(tree.path("/var/home")).unwrap();
    tree.mount("8:2", "/", "ext4", "/dev/sda2").mount(
        "254:0",
        "/var",
        "xfs",
        "/dev/mapper/var_crypt",
    );
    let results = run(&tree.finish());
    let home = get(&results, "encryption.home");
    assert_eq!(home.status, Status::Pass, "{}", home.summary);
    assert_eq!(home.values["mount_point"], Value::Text("/var".into()));
    assert_eq!(home.values["own_mount"], Value::Bool(false));
    assert!(
        home.summary
            .starts_with("/home (→ /var/home) has no filesystem of its own")
    );
}

#[test]
fn an_unreadable_mount_table_is_an_error_for_every_output() {
    let tree = Tree::new();
    std::fs::create_dir_all(tree.path("/proc/self/mountinfo")).unwrap();
    let results = run(&tree.finish());
    for result in &results {
        assert_eq!(result.status, Status::Error);
        assert!(
            result
                .error
                .as_deref()
                .unwrap_or("")
                .contains("not a regular file")
        );
    }
}

#[test]
fn missing_sysfs_makes_block_filesystems_undetermined() {
    let mut tree = Tree::new();
    tree.mount("8:2", "/", "ext4", "/dev/sda2");
    let results = run(&tree.finish());
    let root = get(&results, "encryption.root");
    assert_eq!(root.status, Status::NoData);
    assert!(
        root.summary.contains("/sys/dev/block/8:2: not found"),
        "{}",
        root.summary
    );
    // Without /proc/swaps on a non-live root and without fstab the swap areas are unknown.
    assert_eq!(get(&results, "encryption.swap").status, Status::NoData);
}

// ---------------------------------------------------------------- offline images

#[test]
fn an_offline_image_is_judged_from_its_configuration() {
    let tree = Tree::new();
    tree.file(
        "/etc/fstab",
        "/dev/mapper/web01--vg-root / ext4 errors=remount-ro 0 1\n\
         UUID=2f6c1b8e /boot ext4 defaults 0 2\n\
         /dev/mapper/web01--vg-home /home ext4 defaults 0 2\n\
         /dev/mapper/cswap none swap sw 0 0\n\
         PARTUUID=aa-04 /srv ext4 defaults 0 2\n\
         tmpfs /tmp tmpfs defaults 0 0\n\
         nas:/export /mnt/nas nfs defaults 0 0\n",
    );
    tree.file(
        "/etc/crypttab",
        "sda3_crypt UUID=5b1f7c2e none luks,discard\n\
         cswap /dev/sda2 /dev/urandom swap,cipher=aes-xts-plain64,size=256\n",
    );
    tree.file(
        "/etc/lvm/backup/web01-vg",
        "web01-vg {\n\tphysical_volumes {\n\t\tpv0 {\n\t\t\tdevice = \"/dev/mapper/sda3_crypt\"\t# Hint only\n\t\t}\n\t}\n}\n",
    );
    let results = run(&tree.finish());
    assert_eq!(
        statuses(&results),
        [
            ("encryption.root", Status::Pass),
            ("encryption.home", Status::Pass),
            ("encryption.swap", Status::Pass),
            ("encryption.volumes", Status::Fail),
        ]
    );
    let root = get(&results, "encryption.root");
    assert_eq!(
        root.values["judged_from"],
        Value::Text("configuration".into())
    );
    assert!(
        root.summary
            .contains("judged from /etc/fstab and /etc/crypttab"),
        "{}",
        root.summary
    );
    assert_eq!(
        text_fact(root, "/", "chain"),
        "/dev/mapper/web01--vg-root ← /dev/mapper/sda3_crypt ← UUID=5b1f7c2e"
    );
    assert!(
        root.evidence
            .sources
            .contains(&"/etc/lvm/backup/web01-vg".to_string())
    );
    let volumes = get(&results, "encryption.volumes");
    assert_eq!(offenders(volumes), ["/srv"]);
    assert_eq!(
        reason(volumes, "/srv"),
        "PARTUUID=aa-04 names a partition or disk: no dm-crypt mapping in between"
    );
    // /boot by UUID with crypttab entries present: it could be inside a mapping.
    assert_eq!(text_fact(volumes, "/boot", "protection"), "undetermined");
    let swap = get(&results, "encryption.swap");
    assert_eq!(checked(swap), ["/dev/mapper/cswap"]);
}

#[test]
fn an_offline_image_without_crypttab_is_unencrypted_by_configuration() {
    let tree = Tree::new();
    tree.file(
        "/etc/fstab",
        "UUID=0c5e / ext4 errors=remount-ro 0 1\nUUID=d1a7 none swap sw 0 0\n/swapfile none swap sw 0 0\n",
    );
    let results = run(&tree.finish());
    let root = get(&results, "encryption.root");
    assert_eq!(root.status, Status::Fail);
    assert!(reason(root, "/").contains("no /etc/crypttab entries"));
    let swap = get(&results, "encryption.swap");
    assert_eq!(offenders(swap), ["UUID=d1a7", "/swapfile"]);
    assert!(reason(swap, "/swapfile").starts_with("a swap file on /:"));
}

// ---------------------------------------------------------------- the live host

#[test]
fn the_live_host_is_judged_without_errors() {
    let root = HostRoot::new("/").unwrap();
    let results = run(&root);
    assert_eq!(results.len(), 4);
    for result in &results {
        assert_ne!(
            result.status,
            Status::Error,
            "{}: {:?}",
            result.check,
            result.error
        );
        assert!(!result.summary.is_empty());
    }
    let root_result = get(&results, "encryption.root");
    if root_result.status != Status::NoData {
        assert_eq!(
            root_result.values["judged_from"],
            Value::Text("live".into())
        );
    }
}
