//! Whether a filesystem or swap area is encrypted at rest: from the live mount table and the
//! block device stacks in sysfs (`Live`), or, for an offline image, from `/etc/fstab`,
//! `/etc/crypttab` and LVM metadata backups (`Configured`).
//!
//! "Persistent local storage" is data that outlives a reboot on a device of this host. Not
//! part of it: kernel interfaces (proc, sysfs, cgroup, devtmpfs…), memory filesystems (tmpfs,
//! ramfs: their pages can reach swap, which the swap verdict covers), network and host-shared
//! filesystems (nfs, cifs, 9p, virtiofs: at rest on the server), stacking filesystems
//! (overlay: its layers are directories of other filesystems, judged with those — in a
//! container, the host's), and read-only images (squashfs, erofs, iso9660: published software
//! such as snaps; the file holding them is judged with its own filesystem).

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::hostroot::HostRoot;

use super::luks::{self, LuksHeader};
use super::sysfs::{CryptType, Device, Layer, Sysfs};
use super::tables::{
    CrypttabEntry, DevNum, DeviceSpec, FstabEntry, MountEntry, SwapEntry, SwapKind,
    parse_lvm_pv_hints, split_lvm_mapper_name,
};

/// Loops through loop devices and key files deeper than this are not followed.
const MAX_JUDGE_DEPTH: usize = 6;
/// First read of a device header: a LUKS1 header and a default LUKS2 primary header with its
/// JSON area fit.
const HEADER_FIRST_READ: usize = 16 * 1024;

/// What kind of storage a filesystem type is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsClass {
    /// Kernel interfaces holding no user data.
    Pseudo,
    /// Memory only: gone at power-off.
    Memory,
    /// Stacked on directories of other filesystems (overlay, aufs, bindfs, mergerfs).
    Stacked,
    /// A stacked filesystem that encrypts each file (eCryptfs, gocryptfs, EncFS, CryFS).
    StackedEncrypted,
    /// Data at rest on another machine (or the hypervisor host).
    Network,
    /// Read-only images (squashfs, erofs, iso9660, udf).
    Image,
    /// A FUSE filesystem without a block device (lxcfs, portals, gvfs).
    Userspace,
    /// ZFS: no block device is visible in `/proc` or `/sys`.
    Zfs,
    /// A filesystem on a block device: judged by the device stack.
    Block,
}

impl FsClass {
    pub fn describe(self) -> &'static str {
        match self {
            FsClass::Pseudo => "kernel interface",
            FsClass::Memory => "memory filesystem",
            FsClass::Stacked => "stacking filesystem",
            FsClass::StackedEncrypted => "encrypting stacked filesystem",
            FsClass::Network => "network or host-shared filesystem",
            FsClass::Image => "read-only image",
            FsClass::Userspace => "userspace filesystem without a block device",
            FsClass::Zfs => "zfs dataset",
            FsClass::Block => "block device filesystem",
        }
    }

    /// Whether the class is persistent local storage that the volumes verdict must judge.
    pub fn is_persistent_local(self) -> bool {
        matches!(
            self,
            FsClass::Block | FsClass::Zfs | FsClass::StackedEncrypted
        )
    }
}

/// Classifies a filesystem type (`mountinfo` or `fstab` spelling).
pub fn classify(fs_type: &str, source: &str) -> FsClass {
    let fs_type = fs_type.trim();
    match fs_type {
        "proc" | "sysfs" | "cgroup" | "cgroup2" | "devtmpfs" | "devpts" | "securityfs"
        | "debugfs" | "tracefs" | "configfs" | "fusectl" | "mqueue" | "hugetlbfs" | "pstore"
        | "bpf" | "binfmt_misc" | "autofs" | "efivarfs" | "selinuxfs" | "rpc_pipefs" | "nsfs"
        | "nfsd" | "sockfs" | "pipefs" | "devfs" | "usbfs" | "xenfs" | "smackfs" | "apparmorfs"
        | "cpuset" | "resctrl" | "ramfs-internal" | "none" => FsClass::Pseudo,
        "tmpfs" | "ramfs" | "rootfs" | "shm" => FsClass::Memory,
        "overlay"
        | "overlayfs"
        | "aufs"
        | "unionfs"
        | "shiftfs"
        | "fuse.fuse-overlayfs"
        | "fuse.mergerfs"
        | "fuse.unionfs"
        | "fuse.unionfs-fuse"
        | "fuse.bindfs" => FsClass::Stacked,
        "ecryptfs" | "fuse.gocryptfs" | "fuse.encfs" | "fuse.cryfs" | "fuse.securefs" => {
            FsClass::StackedEncrypted
        }
        "nfs" | "nfs4" | "cifs" | "smb3" | "smbfs" | "ncpfs" | "afs" | "ceph" | "glusterfs"
        | "9p" | "virtiofs" | "lustre" | "gpfs" | "beegfs" | "orangefs" | "pvfs2" | "vboxsf"
        | "prl_fs" | "vmhgfs" | "davfs" | "coda" | "drvfs" | "sshfs" => FsClass::Network,
        "squashfs" | "erofs" | "iso9660" | "udf" | "cramfs" | "romfs" => FsClass::Image,
        "zfs" => FsClass::Zfs,
        "fuseblk" => FsClass::Block,
        _ if fs_type.starts_with("fuse.") || fs_type == "fuse" => {
            let subtype = fs_type.strip_prefix("fuse.").unwrap_or("");
            if NETWORK_FUSE.contains(&subtype) {
                FsClass::Network
            } else if matches!(subtype, "squashfuse" | "snapfuse" | "archivemount") {
                FsClass::Image
            } else if source.starts_with("/dev/") {
                FsClass::Block
            } else {
                FsClass::Userspace
            }
        }
        _ => FsClass::Block,
    }
}

/// FUSE subtypes whose data lives on a remote service.
const NETWORK_FUSE: &[&str] = &[
    "sshfs",
    "glusterfs",
    "s3fs",
    "rclone",
    "davfs",
    "ceph-fuse",
    "cephfs",
    "juicefs",
    "gcsfuse",
    "goofys",
    "blobfuse",
    "blobfuse2",
    "s3ql",
    "vmhgfs-fuse",
    "curlftpfs",
    "moosefs",
    "mfs",
    "lizardfs",
    "seaweedfs",
];

/// The verdict on one filesystem, swap area or device stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    /// Every path to the physical devices passes an encryption layer.
    Encrypted,
    /// Only memory holds the data.
    MemoryBacked,
    /// Some data reaches persistent storage in clear.
    Unencrypted,
    /// The evidence does not settle it; the reason says why.
    Undetermined,
    /// Not local storage (network, stacked, pseudo, image): not judged.
    NotJudged,
}

impl Protection {
    pub fn as_str(self) -> &'static str {
        match self {
            Protection::Encrypted => "encrypted",
            Protection::MemoryBacked => "memory_backed",
            Protection::Unencrypted => "unencrypted",
            Protection::Undetermined => "undetermined",
            Protection::NotJudged => "not_judged",
        }
    }
}

/// What was learned about a LUKS header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderState {
    Read(LuksHeader),
    /// Reading was refused or failed (normal on hardened hosts): the reason.
    Unreadable(String),
    /// The device (node) is not under this root.
    Missing(String),
    /// The device was read but starts with no LUKS header (detached header?).
    Absent(String),
    /// Not a LUKS mapping (plain dm-crypt, BitLocker…), or judged from configuration.
    NotApplicable,
}

/// One encryption layer found on a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptLayer {
    /// `/dev/mapper/sda3_crypt`.
    pub node: String,
    /// `LUKS2`, `PLAIN`, `BITLK`, or `crypttab` when known from configuration only.
    pub kind: String,
    pub luks_version: Option<u16>,
    pub header: HeaderState,
    /// The crypttab line configuring it, if any.
    pub crypttab: Option<CrypttabEntry>,
}

impl CryptLayer {
    pub fn describe(&self) -> String {
        let mut text = format!("{} {}", self.kind, self.node);
        match &self.header {
            HeaderState::Read(header) => text.push_str(&format!(" [{}]", header.describe())),
            HeaderState::Unreadable(why) => text.push_str(&format!(" [header unreadable: {why}]")),
            HeaderState::Missing(why) | HeaderState::Absent(why) => {
                text.push_str(&format!(" [{why}]"));
            }
            HeaderState::NotApplicable => {}
        }
        text
    }
}

/// The verdict on one thing with its evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged {
    pub protection: Protection,
    /// Why, for people: names the unencrypted device or the missing evidence.
    pub reason: String,
    /// The device stack(s), `/dev/mapper/vg-root ← /dev/mapper/sda3_crypt ← /dev/sda3`.
    pub chain: Option<String>,
    pub crypt: Vec<CryptLayer>,
}

impl Judged {
    fn new(protection: Protection, reason: impl Into<String>) -> Judged {
        Judged {
            protection,
            reason: reason.into(),
            chain: None,
            crypt: Vec::new(),
        }
    }

    /// The lowest LUKS version among the encryption layers (the weakest link).
    pub fn luks_version(&self) -> Option<u16> {
        self.crypt.iter().filter_map(|c| c.luks_version).min()
    }
}

/// A mounted (or configured) filesystem with its verdict.
#[derive(Debug, Clone)]
pub struct FsVerdict {
    pub mount_point: String,
    /// The directory of the filesystem mounted here: `/` unless a bind mount (or a btrfs
    /// subvolume).
    pub fs_root: String,
    pub fs_type: String,
    pub source: String,
    pub device: Option<DevNum>,
    pub class: FsClass,
    pub judged: Judged,
}

/// A swap area with its verdict.
#[derive(Debug, Clone)]
pub struct SwapVerdict {
    pub path: String,
    /// `partition`, `file`, or the kernel's word.
    pub kind: String,
    pub size_kib: Option<u64>,
    pub judged: Judged,
}

/// The verdict on the block device stack(s) under something.
#[derive(Debug, Clone, Default)]
struct StackVerdict {
    unencrypted: Vec<String>,
    undetermined: Vec<String>,
    memory: bool,
    encrypted: bool,
    crypt: Vec<CryptLayer>,
}

impl StackVerdict {
    fn memory() -> Self {
        StackVerdict {
            memory: true,
            ..Default::default()
        }
    }

    fn unencrypted(why: String) -> Self {
        StackVerdict {
            unencrypted: vec![why],
            ..Default::default()
        }
    }

    fn undetermined(why: String) -> Self {
        StackVerdict {
            undetermined: vec![why],
            ..Default::default()
        }
    }

    fn merge(&mut self, other: StackVerdict) {
        self.unencrypted.extend(other.unencrypted);
        self.undetermined.extend(other.undetermined);
        self.memory |= other.memory;
        self.encrypted |= other.encrypted;
        for layer in other.crypt {
            if !self.crypt.contains(&layer) {
                self.crypt.push(layer);
            }
        }
    }

    fn protection(&self) -> Protection {
        if !self.unencrypted.is_empty() {
            Protection::Unencrypted
        } else if !self.undetermined.is_empty() {
            Protection::Undetermined
        } else if self.encrypted {
            Protection::Encrypted
        } else if self.memory {
            Protection::MemoryBacked
        } else {
            Protection::Undetermined
        }
    }

    fn into_judged(self, chain: Option<String>) -> Judged {
        let protection = self.protection();
        let reason = match protection {
            Protection::Unencrypted => self.unencrypted.join("; "),
            Protection::Undetermined if self.undetermined.is_empty() => {
                "no device was found under it".to_string()
            }
            Protection::Undetermined => self.undetermined.join("; "),
            Protection::Encrypted => {
                let kinds: Vec<String> = self.crypt.iter().map(CryptLayer::describe).collect();
                format!("encrypted by {}", kinds.join(", "))
            }
            Protection::MemoryBacked => "held in memory only".to_string(),
            Protection::NotJudged => String::new(),
        };
        Judged {
            protection,
            reason,
            chain,
            crypt: self.crypt,
        }
    }
}

/// Judges the live state: mount table, `/proc/swaps`, sysfs, device headers.
#[derive(Debug)]
pub struct Live<'a> {
    root: &'a HostRoot,
    sysfs: Sysfs<'a>,
    /// Visible mounts: for a mount point mounted more than once, the last (topmost) one.
    mounts: Vec<MountEntry>,
    crypttab: Vec<CrypttabEntry>,
    headers: RefCell<BTreeMap<String, HeaderState>>,
    /// Verdicts of top-level block mounts by device number: a device mounted many times
    /// (bind mounts on container hosts) is walked once.
    by_device: RefCell<BTreeMap<DevNum, Judged>>,
    sources: RefCell<Vec<String>>,
}

impl<'a> Live<'a> {
    pub fn new(root: &'a HostRoot, mounts: Vec<MountEntry>, crypttab: Vec<CrypttabEntry>) -> Self {
        // Container hosts carry thousands of mounts: find the topmost of each mount point
        // in one pass.
        let mut last: std::collections::HashMap<&str, usize> =
            std::collections::HashMap::with_capacity(mounts.len());
        for (index, mount) in mounts.iter().enumerate() {
            last.insert(mount.mount_point.as_str(), index);
        }
        let keep: Vec<bool> = mounts
            .iter()
            .enumerate()
            .map(|(index, m)| last.get(m.mount_point.as_str()) == Some(&index))
            .collect();
        let visible: Vec<MountEntry> = mounts
            .into_iter()
            .zip(keep)
            .filter_map(|(mount, keep)| keep.then_some(mount))
            .collect();
        Live {
            root,
            sysfs: Sysfs::new(root),
            mounts: visible,
            crypttab,
            headers: RefCell::new(BTreeMap::new()),
            by_device: RefCell::new(BTreeMap::new()),
            sources: RefCell::new(Vec::new()),
        }
    }

    /// Host files read while judging, in the order first read.
    pub fn sources(&self) -> Vec<String> {
        self.sources.borrow().clone()
    }

    fn note_source(&self, path: &str) {
        let mut sources = self.sources.borrow_mut();
        if !sources.iter().any(|s| s == path) {
            sources.push(path.to_string());
        }
    }

    /// Every visible mount, in mount-table order, with its verdict.
    pub fn filesystems(&self) -> Vec<FsVerdict> {
        self.mounts.iter().map(|m| self.verdict_of(m, 0)).collect()
    }

    /// The verdict on the filesystem holding `path` and its mount point.
    pub fn filesystem_holding(&self, path: &str) -> Option<FsVerdict> {
        let resolved = self
            .root
            .canonical(path)
            .unwrap_or_else(|_| path.to_string());
        let mount = containing_mount(&self.mounts, &resolved)?;
        Some(self.verdict_of(mount, 0))
    }

    fn verdict_of(&self, mount: &MountEntry, depth: usize) -> FsVerdict {
        let class = classify(&mount.fs_type, &mount.source);
        FsVerdict {
            mount_point: mount.mount_point.clone(),
            fs_root: mount.fs_root.clone(),
            fs_type: mount.fs_type.clone(),
            source: mount.source.clone(),
            device: mount.device,
            class,
            judged: self.judge_mount(mount, class, depth),
        }
    }

    fn judge_mount(&self, mount: &MountEntry, class: FsClass, depth: usize) -> Judged {
        match class {
            FsClass::Block => {
                let cacheable = depth == 0
                    && mount.fs_type != "btrfs"
                    && mount.device.is_some_and(|d| !d.is_anonymous());
                let key = mount.device.filter(|_| cacheable);
                if let Some(key) = key
                    && let Some(judged) = self.by_device.borrow().get(&key)
                {
                    return judged.clone();
                }
                let judged = self.judge_block_mount(mount, depth);
                if let Some(key) = key {
                    self.by_device.borrow_mut().insert(key, judged.clone());
                }
                judged
            }
            FsClass::Memory => Judged::new(
                Protection::MemoryBacked,
                format!("{} keeps its data in memory", mount.fs_type),
            ),
            FsClass::StackedEncrypted => {
                let mut judged = Judged::new(
                    Protection::Encrypted,
                    format!("{} encrypts every file it stores", mount.fs_type),
                );
                judged.chain = Some(format!("{} ← {}", mount.fs_type, mount.source));
                judged
            }
            FsClass::Zfs => Judged::new(
                Protection::Undetermined,
                "a zfs dataset: its pool devices and native encryption are not visible in /proc \
                 or /sys",
            ),
            other => Judged::new(
                Protection::NotJudged,
                format!(
                    "{} ({}): not local storage",
                    other.describe(),
                    mount.fs_type
                ),
            ),
        }
    }

    fn judge_block_mount(&self, mount: &MountEntry, depth: usize) -> Judged {
        let mut dirs = Vec::new();
        let mut problems = Vec::new();
        match mount.device {
            Some(number) if !number.is_anonymous() => match self.sysfs.dir_of_number(number) {
                Ok(dir) => {
                    self.note_source(&format!("/sys/dev/block/{number}"));
                    dirs.push(dir);
                }
                Err(why) => problems.push(why),
            },
            _ => {}
        }
        if dirs.is_empty() {
            // Anonymous device numbers (btrfs, bcachefs, fuseblk) or no sysfs entry: the
            // mount source names the device. bcachefs lists its members joined by `:`.
            let parts: Vec<&str> = if mount.fs_type == "bcachefs" {
                mount.source.split(':').collect()
            } else {
                vec![mount.source.as_str()]
            };
            for part in parts {
                if !part.starts_with("/dev/") {
                    problems.push(format!(
                        "no block device: the source is {:?}{}",
                        part,
                        mount
                            .device
                            .map(|d| format!(" and the device number {d}"))
                            .unwrap_or_default()
                    ));
                    continue;
                }
                match self.sysfs.dir_of_path(part) {
                    Ok(dir) => dirs.push(dir),
                    Err(why) => problems.push(why),
                }
            }
        }
        if dirs.is_empty() {
            return Judged::new(Protection::Undetermined, problems.join("; "));
        }
        if mount.fs_type == "btrfs"
            && let [only] = dirs.as_slice()
            && let Some(members) = self.sysfs.btrfs_members(only)
        {
            self.note_source("/sys/fs/btrfs");
            dirs = members;
        }
        let devices: Vec<Device> = dirs.iter().map(|d| self.sysfs.device(d)).collect();
        self.judge_devices(&devices, depth)
    }

    fn judge_devices(&self, devices: &[Device], depth: usize) -> Judged {
        let mut verdict = StackVerdict::default();
        for device in devices {
            verdict.merge(self.stack_verdict(device, depth));
        }
        let chains: Vec<String> = devices.iter().map(Device::chain).collect();
        let chain = match chains.as_slice() {
            [] => None,
            [one] => Some(one.clone()),
            many => Some(format!("({})", many.join(" + "))),
        };
        verdict.into_judged(chain)
    }

    fn stack_verdict(&self, device: &Device, depth: usize) -> StackVerdict {
        match &device.layer {
            Layer::Crypt(kind) => self.crypt_verdict(device, kind, depth),
            Layer::Disk => {
                StackVerdict::unencrypted(format!("no encryption layer above {}", device.node))
            }
            Layer::Partition => {
                if device.below.iter().all(|d| d.layer == Layer::Disk) {
                    StackVerdict::unencrypted(format!("no encryption layer above {}", device.node))
                } else {
                    self.below_verdict(device, depth)
                }
            }
            Layer::Ram => StackVerdict::memory(),
            Layer::Zram => {
                if device.below.is_empty() {
                    StackVerdict::memory()
                } else {
                    let mut verdict = self.below_verdict(device, depth);
                    verdict.memory = true;
                    verdict.unencrypted = verdict
                        .unencrypted
                        .into_iter()
                        .map(|why| format!("{} writes back to storage: {why}", device.node))
                        .collect();
                    verdict
                }
            }
            Layer::Loop(Some(file)) => self.loop_verdict(device, file, depth),
            Layer::Loop(None) => StackVerdict::undetermined(format!(
                "{} has no backing file recorded in sysfs",
                device.node
            )),
            Layer::Unreadable(why) => StackVerdict::undetermined(format!("{}: {why}", device.node)),
            Layer::Lvm | Layer::Md | Layer::Integrity(_) | Layer::OtherDm(_) => {
                self.below_verdict(device, depth)
            }
        }
    }

    fn below_verdict(&self, device: &Device, depth: usize) -> StackVerdict {
        if device.below.is_empty() {
            return StackVerdict::undetermined(format!(
                "{} lists no underlying device in sysfs",
                device.node
            ));
        }
        let mut verdict = StackVerdict::default();
        for below in &device.below {
            verdict.merge(self.stack_verdict(below, depth));
        }
        verdict
    }

    fn crypt_verdict(&self, device: &Device, kind: &CryptType, depth: usize) -> StackVerdict {
        let crypttab = device
            .dm_name
            .as_deref()
            .and_then(|name| self.crypttab.iter().find(|e| e.name == name))
            .cloned();
        let header = match kind.luks_version() {
            Some(_) => self.header_for(device, crypttab.as_ref()),
            None => HeaderState::NotApplicable,
        };
        let luks_version = match &header {
            HeaderState::Read(h) => Some(h.version),
            _ => kind.luks_version(),
        };
        let layer = CryptLayer {
            node: device.node.clone(),
            kind: kind.label(),
            luks_version,
            header: header.clone(),
            crypttab: crypttab.clone(),
        };
        if let HeaderState::Read(h) = &header
            && h.is_cipher_null()
        {
            // A LUKS container with the null cipher stores data in clear: only what lies
            // below it can still protect the data.
            let mut below = self.below_verdict(device, depth);
            below.unencrypted = below
                .unencrypted
                .into_iter()
                .map(|why| format!("{} uses cipher_null and {why}", device.node))
                .collect();
            return below;
        }
        if depth == 0
            && let Some(entry) = &crypttab
            && let Some(exposed) = self.key_file_exposure(entry, depth)
        {
            let below = self.below_verdict(device, depth);
            if matches!(
                below.protection(),
                Protection::Encrypted | Protection::MemoryBacked
            ) {
                return below;
            }
            let mut verdict = StackVerdict::unencrypted(exposed);
            verdict.crypt.push(layer);
            return verdict;
        }
        StackVerdict {
            encrypted: true,
            crypt: vec![layer],
            ..Default::default()
        }
    }

    /// A key file kept on an unencrypted filesystem defeats the encryption it unlocks.
    fn key_file_exposure(&self, entry: &CrypttabEntry, depth: usize) -> Option<String> {
        let key = entry.key_file.as_deref()?;
        if entry.is_ephemeral()
            || entry.option_value("keyscript").is_some()
            || !key.starts_with('/')
            || key.starts_with("/dev/")
            || key.contains(':')
        {
            // Random keys, scripts, removable key devices and `path:device` keys on another
            // device are not files on this host's filesystems.
            return None;
        }
        let holder = self.filesystem_holding_at(key, depth + 1)?;
        (holder.judged.protection == Protection::Unencrypted).then(|| {
            format!(
                "the key file {key} of {} lies on the unencrypted filesystem {}",
                entry.name, holder.mount_point
            )
        })
    }

    fn filesystem_holding_at(&self, path: &str, depth: usize) -> Option<FsVerdict> {
        let resolved = self
            .root
            .canonical(path)
            .unwrap_or_else(|_| path.to_string());
        let mount = containing_mount(&self.mounts, &resolved)?;
        Some(self.verdict_of(mount, depth))
    }

    fn loop_verdict(&self, device: &Device, file: &str, depth: usize) -> StackVerdict {
        if depth >= MAX_JUDGE_DEPTH {
            return StackVerdict::undetermined(format!(
                "{}: loop devices nested deeper than {MAX_JUDGE_DEPTH}",
                device.node
            ));
        }
        let file = file.strip_suffix(" (deleted)").unwrap_or(file);
        let Some(holder) = self.filesystem_holding_at(file, depth + 1) else {
            return StackVerdict::undetermined(format!(
                "no mounted filesystem holds {file}, the backing file of {}",
                device.node
            ));
        };
        match holder.judged.protection {
            Protection::Encrypted => StackVerdict {
                encrypted: true,
                crypt: holder.judged.crypt,
                ..Default::default()
            },
            Protection::MemoryBacked => StackVerdict::memory(),
            Protection::Unencrypted => StackVerdict::unencrypted(format!(
                "{} is backed by {file} on the unencrypted filesystem {} ({})",
                device.node, holder.mount_point, holder.judged.reason
            )),
            Protection::Undetermined | Protection::NotJudged => {
                StackVerdict::undetermined(format!(
                    "{} is backed by {file} on {}: {}",
                    device.node, holder.mount_point, holder.judged.reason
                ))
            }
        }
    }

    /// Reads the LUKS header of a crypt mapping: from its detached header file
    /// (`header=` in crypttab) or from the device below it.
    fn header_for(&self, device: &Device, crypttab: Option<&CrypttabEntry>) -> HeaderState {
        let path = match crypttab.and_then(|e| e.option_value("header")) {
            Some(detached) if detached.starts_with('/') => detached.to_string(),
            _ => match device.below.as_slice() {
                [below] if !below.name.is_empty() => {
                    format!("/dev/{}", below.name.replace('!', "/"))
                }
                _ => {
                    return HeaderState::Missing(format!(
                        "{} does not have exactly one underlying device",
                        device.node
                    ));
                }
            },
        };
        if let Some(cached) = self.headers.borrow().get(&path) {
            return cached.clone();
        }
        let state = self.read_header(&path);
        self.headers.borrow_mut().insert(path, state.clone());
        state
    }

    fn read_header(&self, path: &str) -> HeaderState {
        let first = match self.root.read_prefix(path, HEADER_FIRST_READ) {
            Ok(bytes) => bytes,
            Err(e) if e.is_not_found() => {
                return HeaderState::Missing(format!("no {path} under this root"));
            }
            Err(e) => return HeaderState::Unreadable(e.to_string()),
        };
        self.note_source(path);
        let wanted = if luks::has_primary_magic(&first) {
            luks::luks2_header_size(&first)
                .and_then(|size| usize::try_from(size).ok())
                .filter(|&size| size > first.len() && size <= luks::LUKS2_MAX_HEADER)
        } else if first.len() == HEADER_FIRST_READ {
            // No primary header: the LUKS2 secondary copy may survive further in.
            Some(luks::LUKS2_MAX_HEADER + luks::LUKS2_BINARY_HEADER)
        } else {
            None
        };
        let bytes = match wanted {
            Some(n) => self.root.read_prefix(path, n).unwrap_or(first),
            None => first,
        };
        match luks::parse_header(&bytes) {
            Some(header) => HeaderState::Read(header),
            None => HeaderState::Absent(format!(
                "no LUKS header at the start of {path} (a detached header?)"
            )),
        }
    }

    /// The verdict on every active swap area.
    pub fn swaps(&self, swaps: &[SwapEntry]) -> Vec<SwapVerdict> {
        swaps.iter().map(|swap| self.swap_verdict(swap)).collect()
    }

    fn swap_verdict(&self, swap: &SwapEntry) -> SwapVerdict {
        let kind = match &swap.kind {
            SwapKind::Partition => "partition".to_string(),
            SwapKind::File => "file".to_string(),
            SwapKind::Other(other) => other.clone(),
        };
        let judged = if swap.kind == SwapKind::File {
            match self.filesystem_holding_at(&swap.path, 1) {
                Some(holder) => {
                    let mut judged = holder.judged.clone();
                    judged.reason = match judged.protection {
                        Protection::Unencrypted | Protection::Undetermined => {
                            format!("a swap file on {}: {}", holder.mount_point, judged.reason)
                        }
                        _ => judged.reason,
                    };
                    if judged.protection == Protection::NotJudged {
                        judged.protection = Protection::Undetermined;
                        judged.reason =
                            format!("a swap file on {} ({})", holder.mount_point, holder.fs_type);
                    }
                    judged.chain = judged
                        .chain
                        .map(|c| format!("file on {} ← {c}", holder.mount_point));
                    judged
                }
                None => Judged::new(
                    Protection::Undetermined,
                    format!("no mounted filesystem holds the swap file {}", swap.path),
                ),
            }
        } else {
            match self.sysfs.dir_of_path(&swap.path) {
                Ok(dir) => {
                    let device = self.sysfs.device(&dir);
                    self.judge_devices(std::slice::from_ref(&device), 0)
                }
                Err(why) => Judged::new(Protection::Undetermined, why),
            }
        };
        SwapVerdict {
            path: swap.path.clone(),
            kind,
            size_kib: swap.size_kib,
            judged,
        }
    }
}

/// The mount whose mount point is the longest whole-component prefix of `path`.
pub fn containing_mount<'m>(mounts: &'m [MountEntry], path: &str) -> Option<&'m MountEntry> {
    mounts
        .iter()
        .filter(|m| path_is_under(path, &m.mount_point))
        .max_by_key(|m| m.mount_point.len())
}

fn path_is_under(path: &str, dir: &str) -> bool {
    let dir = if dir.len() > 1 {
        dir.trim_end_matches('/')
    } else {
        dir
    };
    dir == "/"
        || path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Judges an offline image from its configuration: `/etc/fstab`, `/etc/crypttab`, and the
/// PV hints in `/etc/lvm/backup/<vg>`. What is configured is not necessarily what runs: every
/// verdict says it comes from configuration.
#[derive(Debug)]
pub struct Configured<'a> {
    root: &'a HostRoot,
    fstab: Vec<FstabEntry>,
    crypttab: Vec<CrypttabEntry>,
    sources: RefCell<Vec<String>>,
}

impl<'a> Configured<'a> {
    pub fn new(root: &'a HostRoot, fstab: Vec<FstabEntry>, crypttab: Vec<CrypttabEntry>) -> Self {
        Configured {
            root,
            fstab,
            crypttab,
            sources: RefCell::new(Vec::new()),
        }
    }

    pub fn sources(&self) -> Vec<String> {
        self.sources.borrow().clone()
    }

    /// Every configured filesystem (swap excluded), in fstab order; later lines for the
    /// same mount point win, as at boot.
    pub fn filesystems(&self) -> Vec<FsVerdict> {
        let mut seen: Vec<FsVerdict> = Vec::new();
        for entry in self.fstab.iter().filter(|e| !e.is_swap()) {
            if !entry.mount_point.starts_with('/') {
                continue;
            }
            let verdict = self.verdict_of(entry);
            seen.retain(|v| v.mount_point != verdict.mount_point);
            seen.push(verdict);
        }
        seen
    }

    pub fn filesystem_holding(&self, path: &str) -> Option<FsVerdict> {
        let filesystems = self.filesystems();
        let resolved = self
            .root
            .canonical(path)
            .unwrap_or_else(|_| path.to_string());
        filesystems
            .into_iter()
            .filter(|f| path_is_under(&resolved, &f.mount_point))
            .max_by_key(|f| f.mount_point.len())
    }

    fn verdict_of(&self, entry: &FstabEntry) -> FsVerdict {
        let source = entry.spec.to_string();
        let class = classify(&entry.fs_type, &source);
        let judged = match class {
            FsClass::Block => self.judge_spec(&entry.spec),
            FsClass::Memory => Judged::new(
                Protection::MemoryBacked,
                format!("{} keeps its data in memory", entry.fs_type),
            ),
            FsClass::StackedEncrypted => Judged::new(
                Protection::Encrypted,
                format!("{} encrypts every file it stores", entry.fs_type),
            ),
            FsClass::Zfs => Judged::new(
                Protection::Undetermined,
                "a zfs dataset: pool devices and native encryption are not in fstab",
            ),
            other => Judged::new(
                Protection::NotJudged,
                format!(
                    "{} ({}): not local storage",
                    other.describe(),
                    entry.fs_type
                ),
            ),
        };
        FsVerdict {
            mount_point: entry.mount_point.clone(),
            fs_root: "/".into(),
            fs_type: entry.fs_type.clone(),
            source,
            device: None,
            class,
            judged,
        }
    }

    /// Configured swap areas: the fstab swap lines (a crypttab `swap` mapping is only used
    /// as swap through one of them).
    pub fn swaps(&self) -> Vec<SwapVerdict> {
        let mut out = Vec::new();
        for entry in self.fstab.iter().filter(|e| e.is_swap()) {
            let judged = match &entry.spec {
                DeviceSpec::Path(path) if !path.starts_with("/dev/") => {
                    match self.filesystem_holding(path) {
                        Some(holder) => {
                            let mut judged = holder.judged.clone();
                            judged.reason =
                                format!("a swap file on {}: {}", holder.mount_point, judged.reason);
                            judged
                        }
                        None => Judged::new(
                            Protection::Undetermined,
                            format!("no configured filesystem holds the swap file {path}"),
                        ),
                    }
                }
                spec => self.judge_spec(spec),
            };
            out.push(SwapVerdict {
                path: entry.spec.to_string(),
                kind: "configured".into(),
                size_kib: None,
                judged,
            });
        }
        out
    }

    fn judge_spec(&self, spec: &DeviceSpec) -> Judged {
        let crypttab_names: Vec<&str> = self.crypttab.iter().map(|e| e.name.as_str()).collect();
        match spec {
            DeviceSpec::Path(path) => {
                let mapper = path
                    .strip_prefix("/dev/mapper/")
                    .or_else(|| path.strip_prefix("/dev/disk/by-id/dm-name-"));
                if let Some(name) = mapper {
                    if let Some(entry) = self.crypttab.iter().find(|e| e.name == name) {
                        return crypttab_judged(path, entry);
                    }
                    if let Some((vg, _lv)) = split_lvm_mapper_name(name) {
                        return self.judge_lvm(path, &vg);
                    }
                    return Judged::new(
                        Protection::Undetermined,
                        format!("{path} is not a crypttab mapping and not an LVM volume name"),
                    );
                }
                if is_raw_device_path(path) {
                    return self.configured_unencrypted(
                        path,
                        format!("{path} is a disk or partition: no dm-crypt mapping in between"),
                    );
                }
                // `/dev/<vg>/<lv>`
                let parts: Vec<&str> = path.trim_start_matches("/dev/").split('/').collect();
                if let [vg, _lv] = parts.as_slice()
                    && !matches!(*vg, "disk" | "mapper")
                {
                    return self.judge_lvm(path, vg);
                }
                if let Some(rest) = path.strip_prefix("/dev/disk/by-uuid/") {
                    return self.judge_spec(&DeviceSpec::Uuid(rest.to_string()));
                }
                if let Some(rest) = path.strip_prefix("/dev/disk/by-label/") {
                    return self.judge_spec(&DeviceSpec::Label(rest.to_string()));
                }
                if path.starts_with("/dev/disk/by-partuuid/")
                    || path.starts_with("/dev/disk/by-partlabel/")
                    || path.starts_with("/dev/disk/by-path/")
                {
                    return self.configured_unencrypted(
                        path,
                        format!("{path} names a partition or disk: no dm-crypt mapping in between"),
                    );
                }
                Judged::new(
                    Protection::Undetermined,
                    format!("which device {path} is cannot be told from configuration"),
                )
            }
            DeviceSpec::PartUuid(_) | DeviceSpec::PartLabel(_) | DeviceSpec::Id(_) => {
                let spec = spec.to_string();
                self.configured_unencrypted(
                    &spec,
                    format!("{spec} names a partition or disk: no dm-crypt mapping in between"),
                )
            }
            DeviceSpec::Uuid(_) | DeviceSpec::Label(_) => {
                let spec = spec.to_string();
                if crypttab_names.is_empty() && !self.has_lvm_backups() {
                    self.configured_unencrypted(
                        &spec,
                        format!(
                            "{spec}: nothing is configured to unlock an encrypted device \
                             (no /etc/crypttab entries)"
                        ),
                    )
                } else {
                    Judged::new(
                        Protection::Undetermined,
                        format!(
                            "{spec} names the filesystem itself; whether it sits in one of the \
                             crypttab mappings cannot be told from configuration"
                        ),
                    )
                }
            }
            DeviceSpec::Other(other) => Judged::new(
                Protection::Undetermined,
                format!("{other:?} is not a device"),
            ),
        }
    }

    fn configured_unencrypted(&self, chain: &str, reason: String) -> Judged {
        let mut judged = Judged::new(Protection::Unencrypted, reason);
        judged.chain = Some(chain.to_string());
        judged
    }

    fn has_lvm_backups(&self) -> bool {
        self.root
            .read_dir("/etc/lvm/backup")
            .is_ok_and(|names| !names.is_empty())
    }

    fn judge_lvm(&self, path: &str, vg: &str) -> Judged {
        let backup = format!("/etc/lvm/backup/{vg}");
        let text = match self.root.read_to_string(&backup) {
            Ok(text) => text,
            Err(e) => {
                return Judged::new(
                    Protection::Undetermined,
                    format!("{path}: no LVM metadata for volume group {vg} ({e})"),
                );
            }
        };
        self.note_source(&backup);
        let hints = parse_lvm_pv_hints(&text);
        if hints.is_empty() {
            return Judged::new(
                Protection::Undetermined,
                format!("{backup} lists no physical volume"),
            );
        }
        let mut verdict = StackVerdict::default();
        let mut chains = Vec::new();
        for hint in &hints {
            let crypt = hint
                .strip_prefix("/dev/mapper/")
                .and_then(|name| self.crypttab.iter().find(|e| e.name == name));
            if let Some(entry) = crypt {
                verdict.encrypted = true;
                verdict.crypt.push(crypt_layer_from_config(hint, entry));
                chains.push(format!("{hint} ← {}", entry.device));
            } else if is_raw_device_path(hint) {
                verdict.unencrypted.push(format!(
                    "physical volume {hint} of {vg} is not a crypttab mapping"
                ));
                chains.push(hint.clone());
            } else {
                verdict.undetermined.push(format!(
                    "physical volume {hint} of {vg}: not a crypttab mapping, device unknown"
                ));
                chains.push(hint.clone());
            }
        }
        let below = match chains.as_slice() {
            [one] => one.clone(),
            many => format!("({})", many.join(" + ")),
        };
        verdict.into_judged(Some(format!("{path} ← {below}")))
    }

    fn note_source(&self, path: &str) {
        let mut sources = self.sources.borrow_mut();
        if !sources.iter().any(|s| s == path) {
            sources.push(path.to_string());
        }
    }
}

fn crypttab_judged(path: &str, entry: &CrypttabEntry) -> Judged {
    Judged {
        protection: Protection::Encrypted,
        reason: format!("configured in /etc/crypttab as {}", entry.name),
        chain: Some(format!("{path} ← {}", entry.device)),
        crypt: vec![crypt_layer_from_config(path, entry)],
    }
}

fn crypt_layer_from_config(node: &str, entry: &CrypttabEntry) -> CryptLayer {
    let kind = if entry.has_option("plain") || entry.is_ephemeral() {
        "PLAIN"
    } else if entry.has_option("tcrypt") {
        "TCRYPT"
    } else if entry.has_option("bitlk") {
        "BITLK"
    } else {
        "crypttab"
    };
    CryptLayer {
        node: node.to_string(),
        kind: kind.to_string(),
        luks_version: None,
        header: HeaderState::NotApplicable,
        crypttab: Some(entry.clone()),
    }
}

/// `/dev/sda2`, `/dev/nvme0n1p3`, `/dev/vdb`, `/dev/xvda1`, `/dev/mmcblk0p2`, `/dev/hda1`:
/// kernel names of disks and their partitions, which are never dm-crypt mappings.
fn is_raw_device_path(path: &str) -> bool {
    let Some(name) = path.strip_prefix("/dev/") else {
        return false;
    };
    ["sd", "vd", "xvd", "hd", "nvme", "mmcblk"]
        .iter()
        .any(|prefix| {
            name.strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_alphanumeric()))
        })
        && !name.contains('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filesystem_types_are_classified() {
        assert_eq!(classify("ext4", "/dev/sda1"), FsClass::Block);
        assert_eq!(classify("xfs", "/dev/mapper/vg-root"), FsClass::Block);
        assert_eq!(classify("btrfs", "/dev/sda2"), FsClass::Block);
        assert_eq!(classify("vfat", "/dev/sda1"), FsClass::Block);
        assert_eq!(classify("fuseblk", "/dev/sdb1"), FsClass::Block);
        assert_eq!(classify("fuse.ntfs-3g", "/dev/sdb1"), FsClass::Block);
        assert_eq!(classify("tmpfs", "tmpfs"), FsClass::Memory);
        assert_eq!(classify("ramfs", "none"), FsClass::Memory);
        assert_eq!(classify("proc", "proc"), FsClass::Pseudo);
        assert_eq!(classify("cgroup2", "cgroup2"), FsClass::Pseudo);
        assert_eq!(classify("devtmpfs", "udev"), FsClass::Pseudo);
        assert_eq!(classify("overlay", "overlay"), FsClass::Stacked);
        assert_eq!(classify("nfs4", "srv:/x"), FsClass::Network);
        assert_eq!(classify("cifs", "//nas/x"), FsClass::Network);
        assert_eq!(classify("fuse.sshfs", "me@host:"), FsClass::Network);
        assert_eq!(classify("virtiofs", "share"), FsClass::Network);
        assert_eq!(classify("squashfs", "/dev/loop3"), FsClass::Image);
        assert_eq!(
            classify("ecryptfs", "/home/.ecryptfs/a/.Private"),
            FsClass::StackedEncrypted
        );
        assert_eq!(classify("fuse.lxcfs", "lxcfs"), FsClass::Userspace);
        assert_eq!(classify("zfs", "rpool/ROOT/debian"), FsClass::Zfs);
        assert_eq!(classify("some-new-fs", "/dev/sdc1"), FsClass::Block);
    }

    fn mount(point: &str) -> MountEntry {
        MountEntry {
            device: None,
            fs_root: "/".into(),
            mount_point: point.into(),
            fs_type: "ext4".into(),
            source: "/dev/sda1".into(),
            options: String::new(),
        }
    }

    #[test]
    fn the_longest_whole_component_prefix_holds_a_path() {
        let mounts = vec![
            mount("/"),
            mount("/home"),
            mount("/home/alice"),
            mount("/srv/"),
        ];
        let at = |p: &str| containing_mount(&mounts, p).map(|m| m.mount_point.clone());
        assert_eq!(at("/home").as_deref(), Some("/home"));
        assert_eq!(at("/home/alice/x").as_deref(), Some("/home/alice"));
        assert_eq!(at("/home/alicia").as_deref(), Some("/home"));
        assert_eq!(at("/homework").as_deref(), Some("/"));
        assert_eq!(at("/srv/data").as_deref(), Some("/srv/"));
        assert_eq!(containing_mount(&[mount("/home")], "/etc"), None);
    }

    #[test]
    fn raw_device_paths_are_recognised() {
        for raw in [
            "/dev/sda2",
            "/dev/nvme0n1p3",
            "/dev/vdb",
            "/dev/xvda1",
            "/dev/mmcblk0p2",
        ] {
            assert!(is_raw_device_path(raw), "{raw}");
        }
        for other in [
            "/dev/mapper/x",
            "/dev/vg/root",
            "/dev/md0",
            "/dev/dm-1",
            "/dev/sd",
            "/swapfile",
        ] {
            assert!(!is_raw_device_path(other), "{other}");
        }
    }
}
