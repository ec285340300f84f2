//! Pure parsers for the text tables the encryption check reads: `/proc/self/mountinfo`,
//! `/proc/mounts`, `/proc/swaps`, `/etc/fstab`, `/etc/crypttab` and the PV hints of LVM
//! metadata backups. None of them touches the host; all of them accept any input.

use std::fmt;

/// A block device number, `major:minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DevNum {
    pub major: u32,
    pub minor: u32,
}

impl DevNum {
    /// Parses `8:3`.
    pub fn parse(text: &str) -> Option<DevNum> {
        let (major, minor) = text.trim().split_once(':')?;
        Some(DevNum {
            major: major.parse().ok()?,
            minor: minor.parse().ok()?,
        })
    }

    /// Splits a Linux `dev_t` (`st_rdev`) the way glibc's `major()`/`minor()` do.
    pub fn from_dev_t(dev: u64) -> DevNum {
        let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
        let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
        DevNum {
            major: u32::try_from(major).unwrap_or(u32::MAX),
            minor: u32::try_from(minor).unwrap_or(u32::MAX),
        }
    }

    /// Major 0 is the kernel's anonymous device range: btrfs, zfs, fuse, tmpfs, overlay and
    /// every pseudo filesystem report it, so it names no block device.
    pub fn is_anonymous(self) -> bool {
        self.major == 0
    }
}

impl fmt::Display for DevNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

/// Lines a parser could not use, by 1-based line number, beside what it could.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed<T> {
    pub entries: Vec<T>,
    pub malformed: Vec<usize>,
}

impl<T> Default for Parsed<T> {
    fn default() -> Self {
        Parsed {
            entries: Vec::new(),
            malformed: Vec::new(),
        }
    }
}

/// Undoes the kernel's and libmount's octal escapes (`\040` space, `\011` tab, `\012` newline,
/// `\134` backslash). A backslash not followed by three octal digits is kept as written, and
/// escapes that do not form UTF-8 are replaced, never dropped silently.
pub fn unescape_octal(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value = u32::from(bytes[i + 1] - b'0') * 64
                + u32::from(bytes[i + 2] - b'0') * 8
                + u32::from(bytes[i + 3] - b'0');
            if let Ok(byte) = u8::try_from(value) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One line of `/proc/self/mountinfo` (or of `/proc/mounts`, which lacks ids and numbers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// The device number the kernel reports for the filesystem (`st_dev`); absent in
    /// `/proc/mounts`.
    pub device: Option<DevNum>,
    /// The directory of the filesystem that is mounted here: `/` unless a bind mount.
    pub fs_root: String,
    pub mount_point: String,
    pub fs_type: String,
    /// What was mounted: `/dev/sda1`, `server:/export`, `tmpfs`, `none`.
    pub source: String,
    /// Per-mount options (`rw,relatime`).
    pub options: String,
}

/// Parses `proc(5)` mountinfo: `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root
/// rw`. Optional fields end at a lone `-`; the source and super options may be missing on
/// odd filesystems and are tolerated.
pub fn parse_mountinfo(text: &str) -> Parsed<MountEntry> {
    let mut parsed = Parsed::default();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        match parse_mountinfo_line(line) {
            Some(entry) => parsed.entries.push(entry),
            None => parsed.malformed.push(index + 1),
        }
    }
    parsed
}

fn parse_mountinfo_line(line: &str) -> Option<MountEntry> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() < 8 {
        return None;
    }
    fields[0].parse::<u64>().ok()?;
    fields[1].parse::<u64>().ok()?;
    let device = DevNum::parse(fields[2])?;
    let separator = fields[6..].iter().position(|f| *f == "-")? + 6;
    let fs_type = fields.get(separator + 1)?;
    let source = fields.get(separator + 2).copied().unwrap_or("none");
    let mount_point = unescape_octal(fields[4]);
    if !mount_point.starts_with('/') {
        return None;
    }
    Some(MountEntry {
        device: Some(device),
        fs_root: unescape_octal(fields[3]),
        mount_point,
        fs_type: unescape_octal(fs_type),
        source: unescape_octal(source),
        options: fields[5].to_string(),
    })
}

/// Parses `/proc/mounts` (`fstab(5)` layout): `source mountpoint type options 0 0`.
pub fn parse_proc_mounts(text: &str) -> Parsed<MountEntry> {
    let mut parsed = Parsed::default();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let mount_point = fields.get(1).map(|f| unescape_octal(f));
        match (fields.first(), mount_point, fields.get(2)) {
            (Some(source), Some(mount_point), Some(fs_type)) if mount_point.starts_with('/') => {
                parsed.entries.push(MountEntry {
                    device: None,
                    fs_root: "/".into(),
                    mount_point,
                    fs_type: unescape_octal(fs_type),
                    source: unescape_octal(source),
                    options: fields.get(3).copied().unwrap_or("").to_string(),
                });
            }
            _ => parsed.malformed.push(index + 1),
        }
    }
    parsed
}

/// The kind column of `/proc/swaps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwapKind {
    Partition,
    File,
    Other(String),
}

/// One active swap area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwapEntry {
    /// The path the kernel shows, unescaped, without a ` (deleted)` suffix.
    pub path: String,
    pub kind: SwapKind,
    /// Size in KiB, when the column parses.
    pub size_kib: Option<u64>,
    /// True when the kernel marks the swap file as deleted from its directory.
    pub deleted: bool,
}

/// Parses `/proc/swaps`: a header line, then `path type size used priority`. Paths are
/// escaped by the kernel (` `, tab, newline and `\` as octal), so whitespace splits columns.
pub fn parse_swaps(text: &str) -> Parsed<SwapEntry> {
    let mut parsed = Parsed::default();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with("Filename") {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(path), Some(kind)) = (fields.first(), fields.get(1)) else {
            parsed.malformed.push(index + 1);
            continue;
        };
        let mut path = unescape_octal(path);
        if !path.starts_with('/') {
            parsed.malformed.push(index + 1);
            continue;
        }
        let deleted = path.ends_with(" (deleted)");
        if deleted {
            path.truncate(path.len() - " (deleted)".len());
        }
        let kind = match *kind {
            "partition" => SwapKind::Partition,
            "file" => SwapKind::File,
            other => SwapKind::Other(other.to_string()),
        };
        parsed.entries.push(SwapEntry {
            path,
            kind,
            size_kib: fields.get(2).and_then(|s| s.parse().ok()),
            deleted,
        });
    }
    parsed
}

/// How `fstab` and `crypttab` name a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSpec {
    /// `UUID=`: a filesystem (or LUKS container) UUID.
    Uuid(String),
    /// `LABEL=`: a filesystem label.
    Label(String),
    /// `PARTUUID=`: a GPT/MBR partition id.
    PartUuid(String),
    /// `PARTLABEL=`: a GPT partition name.
    PartLabel(String),
    /// `ID=` (util-linux): a hardware id from `/dev/disk/by-id`.
    Id(String),
    /// An absolute path: `/dev/sda2`, `/dev/mapper/vg-root`, `/swapfile`.
    Path(String),
    /// Anything else: `tmpfs`, `proc`, `server:/export`, `//nas/share`.
    Other(String),
}

impl DeviceSpec {
    pub fn parse(text: &str) -> DeviceSpec {
        let text = text.trim();
        let tagged = |prefix: &str| {
            text.strip_prefix(prefix)
                .map(|value| strip_quotes(value).to_string())
        };
        if let Some(v) = tagged("UUID=") {
            DeviceSpec::Uuid(v)
        } else if let Some(v) = tagged("LABEL=") {
            DeviceSpec::Label(v)
        } else if let Some(v) = tagged("PARTUUID=") {
            DeviceSpec::PartUuid(v)
        } else if let Some(v) = tagged("PARTLABEL=") {
            DeviceSpec::PartLabel(v)
        } else if let Some(v) = tagged("ID=") {
            DeviceSpec::Id(v)
        } else if text.starts_with('/') && !text.starts_with("//") {
            DeviceSpec::Path(text.to_string())
        } else {
            DeviceSpec::Other(text.to_string())
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Uuid(v) => write!(f, "UUID={v}"),
            DeviceSpec::Label(v) => write!(f, "LABEL={v}"),
            DeviceSpec::PartUuid(v) => write!(f, "PARTUUID={v}"),
            DeviceSpec::PartLabel(v) => write!(f, "PARTLABEL={v}"),
            DeviceSpec::Id(v) => write!(f, "ID={v}"),
            DeviceSpec::Path(v) | DeviceSpec::Other(v) => f.write_str(v),
        }
    }
}

fn strip_quotes(value: &str) -> &str {
    let bytes = value.as_bytes();
    if bytes.len() >= 2
        && (bytes[0] == b'"' || bytes[0] == b'\'')
        && bytes[bytes.len() - 1] == bytes[0]
    {
        &value[1..value.len() - 1]
    } else {
        value
    }
}

/// One line of `/etc/fstab`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FstabEntry {
    pub spec: DeviceSpec,
    /// Mount point; `none` or `swap` for swap areas.
    pub mount_point: String,
    pub fs_type: String,
    pub options: Vec<String>,
}

impl FstabEntry {
    pub fn is_swap(&self) -> bool {
        self.fs_type == "swap"
    }
}

/// Parses `fstab(5)`: `spec file vfstype [mntops [freq [passno]]]`, `#` comments, octal
/// escapes in the first two fields. Lines with fewer than three fields are malformed.
pub fn parse_fstab(text: &str) -> Parsed<FstabEntry> {
    let mut parsed = Parsed::default();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r').trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 3 {
            parsed.malformed.push(index + 1);
            continue;
        }
        parsed.entries.push(FstabEntry {
            spec: DeviceSpec::parse(&unescape_octal(fields[0])),
            mount_point: unescape_octal(fields[1]),
            fs_type: fields[2].to_string(),
            options: split_options(fields.get(3).copied().unwrap_or("defaults")),
        });
    }
    parsed
}

/// One line of `/etc/crypttab`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrypttabEntry {
    /// The mapping name: the device appears as `/dev/mapper/<name>`.
    pub name: String,
    /// The encrypted (backing) device.
    pub device: DeviceSpec,
    /// The key file; `None` for `none`, `-` or an absent field (a passphrase is asked).
    pub key_file: Option<String>,
    pub options: Vec<String>,
}

impl CrypttabEntry {
    pub fn has_option(&self, name: &str) -> bool {
        self.options.iter().any(|o| o == name)
    }

    /// The value of a `key=value` option.
    pub fn option_value(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .find_map(|o| o.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
    }

    /// True for mappings set up with a fresh random key at every boot (`swap`, `tmp`, or a
    /// key file that is a kernel random source): their data does not outlive the boot.
    pub fn is_ephemeral(&self) -> bool {
        self.has_option("swap")
            || self.has_option("tmp")
            || self.option_value("tmp").is_some()
            || matches!(
                self.key_file.as_deref(),
                Some("/dev/urandom" | "/dev/random" | "/dev/hw_random")
            )
    }
}

/// Parses `crypttab(5)`: `name device [keyfile [options]]`, `#` comments.
pub fn parse_crypttab(text: &str) -> Parsed<CrypttabEntry> {
    let mut parsed = Parsed::default();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r').trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 2 {
            parsed.malformed.push(index + 1);
            continue;
        }
        let key_file = fields
            .get(2)
            .map(|k| strip_quotes(k))
            .filter(|k| !matches!(*k, "none" | "-" | ""))
            .map(str::to_string);
        parsed.entries.push(CrypttabEntry {
            name: strip_quotes(fields[0]).to_string(),
            device: DeviceSpec::parse(fields[1]),
            key_file,
            options: split_options(fields.get(3).copied().unwrap_or("")),
        });
    }
    parsed
}

fn split_options(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(str::to_string)
        .collect()
}

/// The `device = "…"` hints of the physical volumes in an LVM metadata backup
/// (`/etc/lvm/backup/<vg>`): where each PV was when the backup was written. LVM calls them
/// hints because device names can change; they are the only offline record of what a VG
/// sits on.
pub fn parse_lvm_pv_hints(text: &str) -> Vec<String> {
    let mut hints = Vec::new();
    let mut in_pvs = false;
    let mut depth = 0usize;
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if !in_pvs && line.starts_with("physical_volumes") && line.ends_with('{') {
            in_pvs = true;
            depth = 1;
            continue;
        }
        if !in_pvs {
            continue;
        }
        if line.ends_with('{') {
            depth += 1;
        } else if line == "}" {
            depth = depth.saturating_sub(1);
            if depth == 0 {
                in_pvs = false;
            }
        } else if let Some((key, value)) = line.split_once('=')
            && key.trim() == "device"
        {
            let value = strip_quotes(value.trim());
            if value.starts_with('/') {
                hints.push(value.to_string());
            }
        }
    }
    hints
}

/// Splits a `/dev/mapper/` name of an LVM logical volume into volume group and volume:
/// device-mapper doubles the dashes inside each name and joins the two with a single one
/// (`my--vg-lv--data` is VG `my-vg`, LV `lv-data`).
pub fn split_lvm_mapper_name(name: &str) -> Option<(String, String)> {
    let bytes = name.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'-' {
            if bytes.get(i + 1) == Some(&b'-') {
                i += 2;
                continue;
            }
            let (vg, lv) = (&name[..i], &name[i + 1..]);
            if vg.is_empty() || lv.is_empty() {
                return None;
            }
            return Some((vg.replace("--", "-"), lv.replace("--", "-")));
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_escapes_are_undone_and_junk_is_kept() {
        assert_eq!(unescape_octal(r"/mnt/my\040disk"), "/mnt/my disk");
        assert_eq!(unescape_octal(r"/a\011b\012c\134d"), "/a\tb\nc\\d");
        assert_eq!(unescape_octal(r"/trailing\04"), r"/trailing\04");
        assert_eq!(unescape_octal(r"/not\09octal"), r"/not\09octal");
        assert_eq!(unescape_octal("\\"), "\\");
        // \777 does not fit a byte: kept literally.
        assert_eq!(unescape_octal(r"/x\777"), r"/x\777");
        // UTF-8 spelled as escapes (what the kernel does for nothing, but libmount may).
        assert_eq!(unescape_octal(r"/caf\303\251"), "/café");
        assert_eq!(unescape_octal(r"/bad\377"), "/bad\u{fffd}");
    }

    #[test]
    fn dev_t_splits_like_glibc() {
        assert_eq!(DevNum::from_dev_t(0x0803), DevNum { major: 8, minor: 3 });
        // 259:65536 (large nvme minor) round-trips through the split encoding.
        let dev = (259u64 << 8) | ((65536u64 & !0xff) << 12);
        assert_eq!(
            DevNum::from_dev_t(dev),
            DevNum {
                major: 259,
                minor: 65536
            }
        );
        assert_eq!(
            DevNum::parse(" 254:1 "),
            Some(DevNum {
                major: 254,
                minor: 1
            })
        );
        assert_eq!(DevNum::parse("254"), None);
        assert_eq!(DevNum::parse("a:b"), None);
        assert!(
            DevNum {
                major: 0,
                minor: 31
            }
            .is_anonymous()
        );
    }

    const MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:1 / / rw,relatime shared:1 - ext4 /dev/mapper/vg-root rw,errors=remount-ro
41 27 8:2 / /boot rw,relatime shared:21 master:3 propagate_from:2 - ext4 /dev/sda2 rw
50 27 8:17 /exports/team /srv/team\\040share rw,relatime - xfs /dev/sdb1 rw\r
51 27 0:44 / /mnt/nas rw,relatime - nfs4 nas.example:/vol/a\\040b rw,vers=4.2
52 27 0:45 / /weird rw - tmpfs
53 27 0:46 / /nosource rw -
this is junk
54 27 8:1 / relative rw - ext4 /dev/sda1 rw
\u{0}\u{1}binary\u{ff}
55 27 x:y / /bad rw - ext4 /dev/sda1 rw
56 27 8:1 / /no-separator rw ext4 /dev/sda1 rw
";

    #[test]
    fn mountinfo_lines_parse_with_escapes_optional_fields_and_missing_columns() {
        let parsed = parse_mountinfo(MOUNTINFO);
        let points: Vec<&str> = parsed
            .entries
            .iter()
            .map(|e| e.mount_point.as_str())
            .collect();
        assert_eq!(
            points,
            [
                "/proc",
                "/",
                "/boot",
                "/srv/team share",
                "/mnt/nas",
                "/weird"
            ]
        );
        let root = &parsed.entries[1];
        assert_eq!(
            root.device,
            Some(DevNum {
                major: 254,
                minor: 1
            })
        );
        assert_eq!(root.fs_type, "ext4");
        assert_eq!(root.source, "/dev/mapper/vg-root");
        let boot = &parsed.entries[2];
        assert_eq!(boot.source, "/dev/sda2");
        let team = &parsed.entries[3];
        assert_eq!(team.fs_root, "/exports/team");
        assert_eq!(team.source, "/dev/sdb1");
        assert_eq!(parsed.entries[4].source, "nas.example:/vol/a b");
        // Source missing entirely: tolerated as `none`.
        assert_eq!(parsed.entries[5].source, "none");
        assert_eq!(parsed.malformed, [7, 8, 9, 10, 11, 12]);
    }

    #[test]
    fn proc_mounts_parse_without_device_numbers() {
        let parsed = parse_proc_mounts(
            "/dev/mapper/vg-root / ext4 rw,relatime 0 0\n\
             proc /proc proc rw 0 0\n\
             /dev/sdb1 /media/usb\\040stick vfat rw 0 0\n\
             short line\n\
             /dev/sdc1 nothere ext4 rw 0 0\n",
        );
        assert_eq!(parsed.entries.len(), 3);
        assert_eq!(parsed.entries[0].device, None);
        assert_eq!(parsed.entries[2].mount_point, "/media/usb stick");
        assert_eq!(parsed.malformed, [4, 5]);
    }

    #[test]
    fn swaps_parse_partitions_files_deleted_and_escaped_paths() {
        let parsed = parse_swaps(
            "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n\
             /dev/dm-3                               partition\t1003516\t\t0\t\t-2\n\
             /swap\\040file                           file\t\t524284\t\t0\t\t-3\n\
             /old.swap\\040(deleted)                  file\t\t1024\t\t0\t\t-4\n\
             /dev/zram0                              partition\t4194300\t\t12\t\t100\n\
             /dev/sdz9 weird\n\
             lonely\n\
             relative/path partition 1 0 -1\n",
        );
        assert_eq!(parsed.entries.len(), 5);
        assert_eq!(parsed.entries[0].path, "/dev/dm-3");
        assert_eq!(parsed.entries[0].kind, SwapKind::Partition);
        assert_eq!(parsed.entries[0].size_kib, Some(1_003_516));
        assert_eq!(parsed.entries[1].path, "/swap file");
        assert_eq!(parsed.entries[1].kind, SwapKind::File);
        assert_eq!(parsed.entries[2].path, "/old.swap");
        assert!(parsed.entries[2].deleted);
        assert_eq!(parsed.entries[4].kind, SwapKind::Other("weird".into()));
        assert_eq!(parsed.entries[4].size_kib, None);
        assert_eq!(parsed.malformed, [7, 8]);
        // An empty table (no swap) is just the header.
        assert!(
            parse_swaps("Filename Type Size Used Priority\n")
                .entries
                .is_empty()
        );
    }

    #[test]
    fn fstab_parses_tags_escapes_comments_and_defaults() {
        let parsed = parse_fstab(
            "# <file system> <mount point> <type> <options> <dump> <pass>\n\
             /dev/mapper/vg-root /               ext4    errors=remount-ro 0       1\r\n\
             UUID=\"0a1b-2c3d\" /boot/efi vfat umask=0077 0 1\n\
             \tLABEL=data /srv/my\\040data xfs\n\
             PARTUUID=1234-02 none swap sw 0 0\n\
             //nas/share /mnt/nas cifs credentials=/etc/cifs,_netdev 0 0\n\
             tmpfs /tmp tmpfs\n\
             ID=wwn-0x5000 /mnt/id ext4 noauto\n\
             broken-line /x\n",
        );
        assert_eq!(parsed.malformed, [9]);
        let e = &parsed.entries;
        assert_eq!(e[0].spec, DeviceSpec::Path("/dev/mapper/vg-root".into()));
        assert_eq!(e[0].options, ["errors=remount-ro"]);
        assert_eq!(e[1].spec, DeviceSpec::Uuid("0a1b-2c3d".into()));
        assert_eq!(e[2].spec, DeviceSpec::Label("data".into()));
        assert_eq!(e[2].mount_point, "/srv/my data");
        assert_eq!(e[2].options, ["defaults"]);
        assert!(e[3].is_swap());
        assert_eq!(e[3].spec, DeviceSpec::PartUuid("1234-02".into()));
        assert_eq!(e[4].spec, DeviceSpec::Other("//nas/share".into()));
        assert_eq!(e[5].spec, DeviceSpec::Other("tmpfs".into()));
        assert_eq!(e[6].spec, DeviceSpec::Id("wwn-0x5000".into()));
        assert!(e[6].options.iter().any(|o| o == "noauto"));
        assert_eq!(e[6].spec.to_string(), "ID=wwn-0x5000");
    }

    #[test]
    fn crypttab_parses_key_files_and_options() {
        let parsed = parse_crypttab(
            "# <target name> <source device> <key file> <options>\n\
             sda3_crypt UUID=6a0c3f4e-5a8b-4b5e-9f3d-2c1e0b7a9d41 none luks,discard\n\
             cswap /dev/disk/by-partuuid/aa-03 /dev/urandom swap,cipher=aes-xts-plain64,size=512\n\
             data PARTLABEL=data /etc/keys/data.key luks,header=/boot/data.hdr,noauto\n\
             bare /dev/sdb2\n\
             tmpvol LABEL=scratch - tmp=ext4\r\n\
             lonely\n",
        );
        assert_eq!(parsed.malformed, [7]);
        let e = &parsed.entries;
        assert_eq!(e[0].name, "sda3_crypt");
        assert_eq!(
            e[0].device,
            DeviceSpec::Uuid("6a0c3f4e-5a8b-4b5e-9f3d-2c1e0b7a9d41".into())
        );
        assert_eq!(e[0].key_file, None);
        assert!(e[0].has_option("luks") && !e[0].is_ephemeral());
        assert!(e[1].is_ephemeral());
        assert_eq!(e[1].option_value("size"), Some("512"));
        assert_eq!(e[2].key_file.as_deref(), Some("/etc/keys/data.key"));
        assert_eq!(e[2].option_value("header"), Some("/boot/data.hdr"));
        assert!(e[2].has_option("noauto"));
        assert!(e[3].options.is_empty() && e[3].key_file.is_none());
        assert!(e[4].is_ephemeral());
        assert_eq!(e[4].key_file, None);
    }

    #[test]
    fn lvm_backup_yields_pv_device_hints_only() {
        let text = r#"
# Generated by LVM2 version 2.03.16(2) (2022-05-18): Sat Jan  6 10:00:00 2024
contents = "Text Format Volume Group"
version = 1
vg {
	id = "abc"
	physical_volumes {
		pv0 {
			id = "xyz"
			device = "/dev/mapper/sda3_crypt"	# Hint only
			status = ["ALLOCATABLE"]
		}
		pv1 {
			device = "/dev/sdb1"	# Hint only
		}
	}
	logical_volumes {
		root {
			device = "/dev/not-a-pv"
		}
	}
}
"#;
        assert_eq!(
            parse_lvm_pv_hints(text),
            ["/dev/mapper/sda3_crypt", "/dev/sdb1"]
        );
        assert!(parse_lvm_pv_hints("garbage { { {\n}}}}}\n").is_empty());
    }

    #[test]
    fn lvm_mapper_names_split_on_single_dashes() {
        assert_eq!(
            split_lvm_mapper_name("vg-root"),
            Some(("vg".into(), "root".into()))
        );
        assert_eq!(
            split_lvm_mapper_name("web01--vg-swap_1"),
            Some(("web01-vg".into(), "swap_1".into()))
        );
        assert_eq!(
            split_lvm_mapper_name("a--b-c--d"),
            Some(("a-b".into(), "c-d".into()))
        );
        assert_eq!(split_lvm_mapper_name("sda3_crypt"), None);
        assert_eq!(split_lvm_mapper_name("-x"), None);
        assert_eq!(split_lvm_mapper_name("x-"), None);
    }

    #[test]
    fn parsers_survive_arbitrary_bytes() {
        let mut junk = String::new();
        for i in 0u32..2000 {
            junk.push(char::from_u32((i * 7919) % 0x2FF).unwrap_or(' '));
            if i % 37 == 0 {
                junk.push('\n');
            }
            if i % 91 == 0 {
                junk.push_str(" - \\");
            }
        }
        let _ = parse_mountinfo(&junk);
        let _ = parse_proc_mounts(&junk);
        let _ = parse_swaps(&junk);
        let _ = parse_fstab(&junk);
        let _ = parse_crypttab(&junk);
        let _ = parse_lvm_pv_hints(&junk);
        let _ = split_lvm_mapper_name(&junk);
        let huge = format!(
            "1 2 8:1 / /{} rw - ext4 /dev/sda1 rw\n",
            "a".repeat(1_000_000)
        );
        assert_eq!(parse_mountinfo(&huge).entries.len(), 1);
    }
}
