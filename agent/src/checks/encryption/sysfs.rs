//! The block device stack under a filesystem, read from sysfs through the root: partitions to
//! their disk, device-mapper and md devices to their `slaves/`, loop devices to their backing
//! file, zram to its writeback device. Reading only: the verdict is in `judge`.

use crate::hostroot::{HostRoot, join};

use super::tables::DevNum;

/// Stacks deeper than this are treated as broken (real ones are a handful of layers).
const MAX_DEPTH: usize = 24;

/// What a device-mapper `CRYPT-<TYPE>-…` uuid says the mapping is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CryptType {
    Luks1,
    Luks2,
    /// Plain dm-crypt: no header, the key comes from the passphrase or key file directly.
    Plain,
    /// Other formats cryptsetup opens: `LOOPAES`, `TCRYPT` (VeraCrypt), `BITLK`, `FVAULT2`.
    Other(String),
}

impl CryptType {
    pub fn label(&self) -> String {
        match self {
            CryptType::Luks1 => "LUKS1".into(),
            CryptType::Luks2 => "LUKS2".into(),
            CryptType::Plain => "PLAIN".into(),
            CryptType::Other(kind) => kind.clone(),
        }
    }

    pub fn luks_version(&self) -> Option<u16> {
        match self {
            CryptType::Luks1 => Some(1),
            CryptType::Luks2 => Some(2),
            _ => None,
        }
    }
}

/// One layer of a block device stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layer {
    /// A dm-crypt mapping: the layer that encrypts.
    Crypt(CryptType),
    /// An LVM logical volume (`LVM-…`), including snapshots, thin volumes and their parts.
    Lvm,
    /// A software RAID array (`md/` present).
    Md,
    /// A partition of the device below it.
    Partition,
    /// dm-integrity or dm-verity (`CRYPT-INTEGRITY-`, `CRYPT-VERITY-`, `CRYPT-SUBDEV-`):
    /// protects integrity, not confidentiality.
    Integrity(String),
    /// Any other device-mapper target (multipath, kpartx partitions, VDO, cache…), by the
    /// prefix of its uuid.
    OtherDm(String),
    /// A loop device and the file that holds its data (`None` when detached or unknown).
    Loop(Option<String>),
    /// A compressed RAM disk; pages written back go to the device below, if any.
    Zram,
    /// A RAM disk (`brd`).
    Ram,
    /// A device with nothing below it: a disk, an NVMe namespace, a virtual disk.
    Disk,
    /// The device could not be read; the text says why.
    Unreadable(String),
}

/// A block device and the devices it is built on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Kernel name: `sda3`, `dm-1`, `md0`.
    pub name: String,
    /// The name people use: `/dev/mapper/vg-root`, `/dev/sda3`.
    pub node: String,
    /// The device-mapper name (`sda3_crypt`), for crypttab lookups.
    pub dm_name: Option<String>,
    /// The device-mapper uuid, for the record.
    pub dm_uuid: Option<String>,
    pub layer: Layer,
    pub below: Vec<Device>,
}

impl Device {
    fn unreadable(name: &str, node: &str, reason: String) -> Device {
        Device {
            name: name.into(),
            node: node.into(),
            dm_name: None,
            dm_uuid: None,
            layer: Layer::Unreadable(reason),
            below: Vec::new(),
        }
    }

    /// The stack written for people: `/dev/mapper/vg-root ← /dev/mapper/sda3_crypt ←
    /// /dev/sda3`; branches in parentheses joined with `+`.
    pub fn chain(&self) -> String {
        let mut text = self.node.clone();
        if let Layer::Loop(Some(file)) = &self.layer {
            text.push_str(&format!(" ← file {file}"));
        }
        // A partition's disk is implied by its name unless the disk is itself stacked.
        let shown: Vec<&Device> = match self.layer {
            Layer::Partition => self
                .below
                .iter()
                .filter(|d| !matches!(d.layer, Layer::Disk))
                .collect(),
            _ => self.below.iter().collect(),
        };
        match shown.as_slice() {
            [] => {}
            [only] => {
                text.push_str(" ← ");
                text.push_str(&only.chain());
            }
            many => {
                let parts: Vec<String> = many.iter().map(|d| d.chain()).collect();
                text.push_str(&format!(" ← ({})", parts.join(" + ")));
            }
        }
        text
    }
}

/// Reads block device stacks through a host root.
#[derive(Debug)]
pub struct Sysfs<'a> {
    root: &'a HostRoot,
}

impl<'a> Sysfs<'a> {
    pub fn new(root: &'a HostRoot) -> Self {
        Sysfs { root }
    }

    /// The sysfs directory of a device number (`/sys/devices/…/block/sda/sda3`), or why not.
    pub fn dir_of_number(&self, number: DevNum) -> Result<String, String> {
        let link = format!("/sys/dev/block/{number}");
        self.existing_dir(&link)
    }

    /// The sysfs directory of a kernel device name (`sda3`, `dm-1`).
    pub fn dir_of_name(&self, name: &str) -> Result<String, String> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(format!("{name:?} is not a block device name"));
        }
        self.existing_dir(&format!("/sys/class/block/{name}"))
    }

    fn existing_dir(&self, link: &str) -> Result<String, String> {
        let dir = self.root.canonical(link).map_err(|e| e.to_string())?;
        match self.root.metadata(&dir) {
            Ok(meta) if meta.is_dir() => Ok(dir),
            Ok(_) => Err(format!("{link}: not a directory")),
            Err(e) if e.is_not_found() => Err(format!("{link}: not found")),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The sysfs directory of the block device a `/dev` path names, within the root:
    /// a symlink to a kernel name (`/dev/mapper/vg-root` → `../dm-1`), a device node (its
    /// number), or a device-mapper name looked up in `dm/name`.
    pub fn dir_of_path(&self, path: &str) -> Result<String, String> {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let resolved = self.root.canonical(path).map_err(|e| e.to_string())?;
        let name = resolved.rsplit('/').next().unwrap_or("");
        if resolved.starts_with("/dev/")
            && let Ok(dir) = self.dir_of_name(name)
        {
            return Ok(dir);
        }
        if let Ok(meta) = self.root.metadata(path)
            && meta.file_type().is_block_device()
        {
            return self.dir_of_number(DevNum::from_dev_t(meta.rdev()));
        }
        if let Some(dm_name) = path.strip_prefix("/dev/mapper/") {
            for candidate in self.root.read_dir("/sys/class/block").unwrap_or_default() {
                if !candidate.starts_with("dm-") {
                    continue;
                }
                let attr = format!("/sys/class/block/{candidate}/dm/name");
                if self.read_attr(&attr).as_deref() == Some(dm_name) {
                    return self.dir_of_name(&candidate);
                }
            }
        }
        Err(format!("{path}: no block device for it under /sys"))
    }

    /// The stack under the device whose sysfs directory is `dir`.
    pub fn device(&self, dir: &str) -> Device {
        self.device_at(dir, 0)
    }

    fn device_at(&self, dir: &str, depth: usize) -> Device {
        let name = dir.rsplit('/').next().unwrap_or(dir).to_string();
        let plain_node = format!("/dev/{}", name.replace('!', "/"));
        if depth > MAX_DEPTH {
            return Device::unreadable(
                &name,
                &plain_node,
                format!("device stack deeper than {MAX_DEPTH} layers"),
            );
        }
        if self.root.exists(&join(dir, "partition")) {
            let parent = match dir.rsplit_once('/') {
                Some((parent, _)) if !parent.is_empty() => parent.to_string(),
                _ => String::new(),
            };
            let below = if self.root.exists(&join(&parent, "dev")) {
                vec![self.device_at(&parent, depth + 1)]
            } else {
                vec![Device::unreadable(
                    "",
                    &plain_node,
                    format!("{dir}: the partition's disk is not in sysfs"),
                )]
            };
            return Device {
                name,
                node: plain_node,
                dm_name: None,
                dm_uuid: None,
                layer: Layer::Partition,
                below,
            };
        }

        let dm_uuid = self.read_attr(&join(dir, "dm/uuid"));
        let dm_name = self.read_attr(&join(dir, "dm/name"));
        let is_dm = self.root.exists(&join(dir, "dm"));
        let node = match &dm_name {
            Some(dm) if !dm.is_empty() => format!("/dev/mapper/{dm}"),
            _ => plain_node.clone(),
        };
        let layer = if is_dm {
            dm_layer(dm_uuid.as_deref().unwrap_or(""))
        } else if self.root.exists(&join(dir, "md")) {
            Layer::Md
        } else if self.root.exists(&join(dir, "loop")) || name.starts_with("loop") {
            Layer::Loop(
                self.read_attr(&join(dir, "loop/backing_file"))
                    .filter(|f| !f.is_empty()),
            )
        } else if name.starts_with("zram") {
            Layer::Zram
        } else if is_ram_disk(&name) {
            Layer::Ram
        } else {
            Layer::Disk
        };

        let below = match &layer {
            Layer::Zram => match self.read_attr(&join(dir, "backing_dev")) {
                Some(backing) if backing != "none" && !backing.is_empty() => {
                    vec![self.device_of_path_at(&backing, depth + 1)]
                }
                _ => Vec::new(),
            },
            Layer::Loop(_) | Layer::Ram => Vec::new(),
            _ => self.slaves(dir, depth),
        };
        let layer = match layer {
            // A "disk" with slaves is a stacking driver sysfs does not name (bcache, drbd…).
            Layer::Disk if !below.is_empty() => Layer::OtherDm(format!("stacked {name}")),
            other => other,
        };
        Device {
            name,
            node,
            dm_name: dm_name.filter(|n| !n.is_empty()),
            dm_uuid: dm_uuid.filter(|u| !u.is_empty()),
            layer,
            below,
        }
    }

    fn device_of_path_at(&self, path: &str, depth: usize) -> Device {
        match self.dir_of_path(path) {
            Ok(dir) => self.device_at(&dir, depth),
            Err(reason) => Device::unreadable("", path, reason),
        }
    }

    fn slaves(&self, dir: &str, depth: usize) -> Vec<Device> {
        let slaves_dir = join(dir, "slaves");
        let names = match self.root.read_dir(&slaves_dir) {
            Ok(names) => names,
            Err(e) if e.is_not_found() => return Vec::new(),
            Err(e) => {
                return vec![Device::unreadable("", &slaves_dir, e.to_string())];
            }
        };
        names
            .iter()
            .map(|slave| {
                let target = self
                    .existing_dir(&join(&slaves_dir, slave))
                    .or_else(|_| self.dir_of_name(slave));
                match target {
                    Ok(slave_dir) => self.device_at(&slave_dir, depth + 1),
                    Err(reason) => Device::unreadable(
                        slave,
                        &format!("/dev/{}", slave.replace('!', "/")),
                        reason,
                    ),
                }
            })
            .collect()
    }

    /// A one-line sysfs attribute, trimmed; `None` when absent or unreadable.
    pub fn read_attr(&self, path: &str) -> Option<String> {
        let text = self.root.read_to_string(path).ok()?;
        Some(text.trim().to_string())
    }

    /// Btrfs keeps every member of a multi-device filesystem in
    /// `/sys/fs/btrfs/<fsid>/devices/`: the members of the filesystem one of whose devices is
    /// `dir`, or `None` when sysfs does not list it.
    pub fn btrfs_members(&self, dir: &str) -> Option<Vec<String>> {
        for fsid in self.root.read_dir("/sys/fs/btrfs").ok()? {
            let devices = format!("/sys/fs/btrfs/{fsid}/devices");
            let Ok(names) = self.root.read_dir(&devices) else {
                continue;
            };
            let members: Vec<String> = names
                .iter()
                .filter_map(|n| self.existing_dir(&join(&devices, n)).ok())
                .collect();
            if members.iter().any(|m| m == dir) {
                return Some(members);
            }
        }
        None
    }
}

/// The layer a device-mapper uuid stands for. Prefixes are the ones the owning tools set:
/// cryptsetup `CRYPT-<TYPE>-<uuid>-<name>`, LVM `LVM-<vg><lv>[-suffix]`, multipath `mpath-`,
/// kpartx `part<N>-`, VDO `VDO-`, Stratis `stratis-`.
pub fn dm_layer(uuid: &str) -> Layer {
    if let Some(rest) = uuid.strip_prefix("CRYPT-") {
        let kind = rest.split('-').next().unwrap_or("");
        return match kind {
            "LUKS1" => Layer::Crypt(CryptType::Luks1),
            "LUKS2" => Layer::Crypt(CryptType::Luks2),
            "PLAIN" => Layer::Crypt(CryptType::Plain),
            "LOOPAES" | "TCRYPT" | "BITLK" | "FVAULT2" => {
                Layer::Crypt(CryptType::Other(kind.to_string()))
            }
            // Old cryptsetup wrote `CRYPT-LUKS-` before LUKS2 existed.
            "LUKS" => Layer::Crypt(CryptType::Luks1),
            other => Layer::Integrity(other.to_string()),
        };
    }
    if uuid.starts_with("LVM-") {
        return Layer::Lvm;
    }
    let prefix = uuid.split('-').next().unwrap_or("");
    if prefix.is_empty() {
        Layer::OtherDm("device-mapper".into())
    } else {
        Layer::OtherDm(prefix.to_string())
    }
}

fn is_ram_disk(name: &str) -> bool {
    name.strip_prefix("ram")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dm_uuids_map_to_layers() {
        assert_eq!(
            dm_layer("CRYPT-LUKS2-6a0c3f4e5a8b4b5e9f3d2c1e0b7a9d41-sda3_crypt"),
            Layer::Crypt(CryptType::Luks2)
        );
        assert_eq!(
            dm_layer("CRYPT-LUKS1-aa-home"),
            Layer::Crypt(CryptType::Luks1)
        );
        assert_eq!(
            dm_layer("CRYPT-PLAIN-cswap"),
            Layer::Crypt(CryptType::Plain)
        );
        assert_eq!(
            dm_layer("CRYPT-BITLK-x-win"),
            Layer::Crypt(CryptType::Other("BITLK".into()))
        );
        assert_eq!(
            dm_layer("CRYPT-VERITY-abc-usr"),
            Layer::Integrity("VERITY".into())
        );
        assert_eq!(
            dm_layer("CRYPT-SUBDEV-abc-x_dif"),
            Layer::Integrity("SUBDEV".into())
        );
        assert_eq!(
            dm_layer("CRYPT-INTEGRITY-x"),
            Layer::Integrity("INTEGRITY".into())
        );
        assert_eq!(
            dm_layer("LVM-Ek2nqvNeFYEcbH1rFdSUVzCZnYUMNLq7wsl1EMrm3f6rX2lIa5Kw3nwe8ivkCY3b"),
            Layer::Lvm
        );
        assert_eq!(dm_layer("LVM-abc-cow"), Layer::Lvm);
        assert_eq!(
            dm_layer("mpath-3600508b4000"),
            Layer::OtherDm("mpath".into())
        );
        assert_eq!(dm_layer("part1-mpath-3600"), Layer::OtherDm("part1".into()));
        assert_eq!(dm_layer(""), Layer::OtherDm("device-mapper".into()));
    }

    #[test]
    fn ram_disks_are_ramn_only() {
        assert!(is_ram_disk("ram0"));
        assert!(is_ram_disk("ram15"));
        assert!(!is_ram_disk("ram"));
        assert!(!is_ram_disk("ramdisk"));
    }

    fn dev(node: &str, layer: Layer, below: Vec<Device>) -> Device {
        Device {
            name: node.rsplit('/').next().unwrap_or("").into(),
            node: node.into(),
            dm_name: None,
            dm_uuid: None,
            layer,
            below,
        }
    }

    #[test]
    fn chains_read_top_down_and_hide_plain_disks_under_partitions() {
        let sda3 = dev(
            "/dev/sda3",
            Layer::Partition,
            vec![dev("/dev/sda", Layer::Disk, vec![])],
        );
        let crypt = dev(
            "/dev/mapper/sda3_crypt",
            Layer::Crypt(CryptType::Luks2),
            vec![sda3],
        );
        let lv = dev("/dev/mapper/vg-root", Layer::Lvm, vec![crypt]);
        assert_eq!(
            lv.chain(),
            "/dev/mapper/vg-root ← /dev/mapper/sda3_crypt ← /dev/sda3"
        );
        let md = dev(
            "/dev/md0",
            Layer::Md,
            vec![
                dev(
                    "/dev/sda1",
                    Layer::Partition,
                    vec![dev("/dev/sda", Layer::Disk, vec![])],
                ),
                dev(
                    "/dev/sdb1",
                    Layer::Partition,
                    vec![dev("/dev/sdb", Layer::Disk, vec![])],
                ),
            ],
        );
        assert_eq!(md.chain(), "/dev/md0 ← (/dev/sda1 + /dev/sdb1)");
        let md_part = dev("/dev/md0p1", Layer::Partition, vec![md]);
        assert_eq!(
            md_part.chain(),
            "/dev/md0p1 ← /dev/md0 ← (/dev/sda1 + /dev/sdb1)"
        );
        let looped = dev(
            "/dev/loop0",
            Layer::Loop(Some("/srv/disk.img".into())),
            vec![],
        );
        assert_eq!(looped.chain(), "/dev/loop0 ← file /srv/disk.img");
    }
}
