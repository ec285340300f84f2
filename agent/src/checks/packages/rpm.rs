//! The RPM database: `rpmdb.sqlite` (RHEL 9+, Fedora 33+; `/var/lib/rpm` or
//! `/usr/lib/sysimage/rpm`) read offline, header blobs parsed for name, epoch, version,
//! release, architecture and install time; rpm's own version ordering (`rpmvercmp`) for
//! kernels. Berkeley DB (`Packages`, RHEL ≤ 8, Amazon Linux 2) is read by `bdb.rs`; ndb
//! (`Packages.db`, SUSE 15) is recognised but not read.

use std::cmp::Ordering;
use std::path::Path;

/// Fields of one installed package.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RpmPackage {
    pub name: String,
    pub epoch: Option<u32>,
    pub version: String,
    pub release: String,
    pub arch: String,
    pub install_time: Option<i64>,
    pub source_rpm: String,
}

impl RpmPackage {
    /// `[epoch:]version-release`.
    pub fn evr(&self) -> String {
        match self.epoch {
            Some(e) if e > 0 => format!("{e}:{}-{}", self.version, self.release),
            _ => format!("{}-{}", self.version, self.release),
        }
    }
}

/// Why a header blob was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("header blob too short")]
    Short,
    #[error("header index count {0} or data size {1} out of range")]
    Bounds(u32, u32),
    #[error("header has no {0} tag")]
    Missing(&'static str),
}

const TAG_NAME: u32 = 1000;
const TAG_VERSION: u32 = 1001;
const TAG_RELEASE: u32 = 1002;
const TAG_EPOCH: u32 = 1003;
const TAG_INSTALLTIME: u32 = 1008;
const TAG_ARCH: u32 = 1022;
const TAG_SOURCERPM: u32 = 1044;

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_I18NSTRING: u32 = 9;

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// Parses an rpm header as stored in the database: index count, data length, index entries
/// (tag, type, offset, count; big-endian), then the data store.
pub fn parse_header(blob: &[u8]) -> Result<RpmPackage, HeaderError> {
    // Some tools store the header with its 8-byte magic (8e ad e8 01 + reserved).
    let blob = if blob.starts_with(&[0x8e, 0xad, 0xe8, 0x01]) {
        blob.get(8..).unwrap_or(&[])
    } else {
        blob
    };
    let il = be32(blob, 0).ok_or(HeaderError::Short)?;
    let dl = be32(blob, 4).ok_or(HeaderError::Short)?;
    // rpm's own limits: 0xffff entries, 256 MiB of data.
    if il == 0 || il > 0xffff || dl > 256 << 20 {
        return Err(HeaderError::Bounds(il, dl));
    }
    let index_start = 8usize;
    let data_start = index_start + il as usize * 16;
    let data_end = data_start + dl as usize;
    let data = blob.get(data_start..data_end).ok_or(HeaderError::Short)?;
    let mut pkg = RpmPackage::default();
    let (mut has_name, mut has_version, mut has_release) = (false, false, false);
    for i in 0..il as usize {
        let at = index_start + i * 16;
        let (Some(tag), Some(kind), Some(offset), Some(count)) = (
            be32(blob, at),
            be32(blob, at + 4),
            be32(blob, at + 8),
            be32(blob, at + 12),
        ) else {
            return Err(HeaderError::Short);
        };
        let offset = offset as usize;
        let string = || -> Option<String> {
            if kind != TYPE_STRING && kind != TYPE_I18NSTRING {
                return None;
            }
            let rest = data.get(offset..)?;
            let end = rest.iter().position(|&b| b == 0)?;
            Some(String::from_utf8_lossy(&rest[..end]).into_owned())
        };
        let int32 = || -> Option<u32> {
            if kind != TYPE_INT32 || count == 0 {
                return None;
            }
            be32(data, offset)
        };
        match tag {
            TAG_NAME => {
                if let Some(s) = string() {
                    pkg.name = s;
                    has_name = true;
                }
            }
            TAG_VERSION => {
                if let Some(s) = string() {
                    pkg.version = s;
                    has_version = true;
                }
            }
            TAG_RELEASE => {
                if let Some(s) = string() {
                    pkg.release = s;
                    has_release = true;
                }
            }
            TAG_EPOCH => pkg.epoch = int32(),
            TAG_INSTALLTIME => pkg.install_time = int32().map(i64::from),
            TAG_ARCH => pkg.arch = string().unwrap_or_default(),
            TAG_SOURCERPM => pkg.source_rpm = string().unwrap_or_default(),
            _ => {}
        }
    }
    if !has_name {
        return Err(HeaderError::Missing("NAME"));
    }
    if !has_version {
        return Err(HeaderError::Missing("VERSION"));
    }
    if !has_release {
        return Err(HeaderError::Missing("RELEASE"));
    }
    Ok(pkg)
}

/// Why the rpm database could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RpmError {
    #[error("{path}: {message}")]
    Sqlite { path: String, message: String },
    #[error("{path}: {message}")]
    BerkeleyDb { path: String, message: String },
}

/// Reads every package header from a Berkeley DB `Packages` file. Record 0 holds rpm's
/// next-instance counter, not a header; headers that do not parse and records the reader had
/// to skip are counted, not fatal.
pub fn read_bdb(file: &std::fs::File, shown: &str) -> Result<(Vec<RpmPackage>, usize), RpmError> {
    let mut pkgs = Vec::new();
    let mut bad = 0usize;
    let skipped = super::bdb::for_each(file, |key, value| {
        if key == 0u32.to_le_bytes() || key == 0u32.to_be_bytes() {
            return;
        }
        match parse_header(value) {
            Ok(p) => pkgs.push(p),
            Err(_) => bad += 1,
        }
    })
    .map_err(|e| RpmError::BerkeleyDb {
        path: shown.to_string(),
        message: e.to_string(),
    })?;
    Ok((pkgs, bad + skipped.values + skipped.pages))
}

/// Reads every package header from an `rpmdb.sqlite`, without writing anything next to it
/// (read-only, falling back to `immutable=1` for read-only media). Headers that do not parse
/// are counted, not fatal.
pub fn read_sqlite(real_path: &Path, shown: &str) -> Result<(Vec<RpmPackage>, usize), RpmError> {
    use rusqlite::{Connection, OpenFlags};
    let err = |e: rusqlite::Error| RpmError::Sqlite {
        path: shown.to_string(),
        message: e.to_string(),
    };
    let query = |conn: &Connection| -> Result<(Vec<RpmPackage>, usize), rusqlite::Error> {
        let mut stmt = conn.prepare("SELECT blob FROM Packages")?;
        let mut rows = stmt.query([])?;
        let mut pkgs = Vec::new();
        let mut bad = 0usize;
        while let Some(row) = rows.next()? {
            let blob: Vec<u8> = row.get(0)?;
            match parse_header(&blob) {
                Ok(p) => pkgs.push(p),
                Err(_) => bad += 1,
            }
        }
        Ok((pkgs, bad))
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let first = Connection::open_with_flags(real_path, flags).and_then(|c| query(&c));
    match first {
        Ok(r) => Ok(r),
        Err(_) => {
            let mut uri = String::from("file:");
            for ch in real_path.display().to_string().chars() {
                match ch {
                    '%' => uri.push_str("%25"),
                    '?' => uri.push_str("%3f"),
                    '#' => uri.push_str("%23"),
                    c => uri.push(c),
                }
            }
            uri.push_str("?immutable=1");
            let conn = Connection::open_with_flags(&uri, flags | OpenFlags::SQLITE_OPEN_URI)
                .map_err(err)?;
            query(&conn).map_err(err)
        }
    }
}

/// rpm's `rpmvercmp`: alternating numeric and alphabetic segments, `~` sorts before
/// everything, `^` after the base version.
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0usize, 0usize);
    let sep = |c: u8| !c.is_ascii_alphanumeric() && c != b'~' && c != b'^';
    while i < a.len() || j < b.len() {
        while i < a.len() && sep(a[i]) {
            i += 1;
        }
        while j < b.len() && sep(b[j]) {
            j += 1;
        }
        let (ca, cb) = (a.get(i).copied(), b.get(j).copied());
        if ca == Some(b'~') || cb == Some(b'~') {
            if ca != Some(b'~') {
                return Ordering::Greater;
            }
            if cb != Some(b'~') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        if ca == Some(b'^') || cb == Some(b'^') {
            if ca.is_none() {
                return Ordering::Less;
            }
            if cb.is_none() {
                return Ordering::Greater;
            }
            if ca != Some(b'^') {
                return Ordering::Greater;
            }
            if cb != Some(b'^') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        if ca.is_none() || cb.is_none() {
            break;
        }
        let numeric = a[i].is_ascii_digit();
        let seg = |s: &[u8], from: usize| {
            let mut k = from;
            while k < s.len()
                && (if numeric {
                    s[k].is_ascii_digit()
                } else {
                    s[k].is_ascii_alphabetic()
                })
            {
                k += 1;
            }
            k
        };
        let (ei, ej) = (seg(a, i), seg(b, j));
        if ej == j {
            // Different segment types: numeric beats alphabetic.
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let (mut sa, mut sb) = (&a[i..ei], &b[j..ej]);
        if numeric {
            while sa.first() == Some(&b'0') {
                sa = &sa[1..];
            }
            while sb.first() == Some(&b'0') {
                sb = &sb[1..];
            }
            match sa.len().cmp(&sb.len()) {
                Ordering::Equal => {}
                other => return other,
            }
        }
        match sa.cmp(sb) {
            Ordering::Equal => {}
            other => return other,
        }
        i = ei;
        j = ej;
    }
    match (i >= a.len(), j >= b.len()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        _ => Ordering::Greater,
    }
}

/// Compares epoch, version, release (a missing epoch is 0).
pub fn compare_evr(a: &RpmPackage, b: &RpmPackage) -> Ordering {
    a.epoch
        .unwrap_or(0)
        .cmp(&b.epoch.unwrap_or(0))
        .then_with(|| rpmvercmp(&a.version, &b.version))
        .then_with(|| rpmvercmp(&a.release, &b.release))
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// Builds a header blob the way rpm stores it: (tag, type, value) entries.
    pub fn build_header(entries: &[(u32, u32, Vec<u8>)]) -> Vec<u8> {
        let mut index = Vec::new();
        let mut data: Vec<u8> = Vec::new();
        for (tag, kind, value) in entries {
            if *kind == TYPE_INT32 {
                while !data.len().is_multiple_of(4) {
                    data.push(0);
                }
            }
            index.extend_from_slice(&tag.to_be_bytes());
            index.extend_from_slice(&kind.to_be_bytes());
            index.extend_from_slice(&(data.len() as u32).to_be_bytes());
            index.extend_from_slice(&1u32.to_be_bytes());
            data.extend_from_slice(value);
        }
        let mut blob = Vec::new();
        blob.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        blob.extend_from_slice(&(data.len() as u32).to_be_bytes());
        blob.extend_from_slice(&index);
        blob.extend_from_slice(&data);
        blob
    }

    fn s(v: &str) -> Vec<u8> {
        let mut b = v.as_bytes().to_vec();
        b.push(0);
        b
    }

    pub fn package_header(
        name: &str,
        epoch: Option<u32>,
        version: &str,
        release: &str,
        arch: &str,
        installed: u32,
    ) -> Vec<u8> {
        let mut e = vec![
            (63, 7, vec![0u8; 16]), // the immutable region marker rpm puts first
            (TAG_NAME, TYPE_STRING, s(name)),
            (TAG_VERSION, TYPE_STRING, s(version)),
            (TAG_RELEASE, TYPE_STRING, s(release)),
            (TAG_ARCH, TYPE_STRING, s(arch)),
            (
                TAG_INSTALLTIME,
                TYPE_INT32,
                installed.to_be_bytes().to_vec(),
            ),
            (
                TAG_SOURCERPM,
                TYPE_STRING,
                s(&format!("{name}-{version}-{release}.src.rpm")),
            ),
        ];
        if let Some(ep) = epoch {
            e.push((TAG_EPOCH, TYPE_INT32, ep.to_be_bytes().to_vec()));
        }
        build_header(&e)
    }

    #[test]
    fn header_parsing() {
        let blob = package_header(
            "kernel-core",
            None,
            "5.14.0",
            "362.8.1.el9_3",
            "x86_64",
            1_700_000_000,
        );
        let p = parse_header(&blob).unwrap();
        assert_eq!(p.name, "kernel-core");
        assert_eq!(p.evr(), "5.14.0-362.8.1.el9_3");
        assert_eq!(p.arch, "x86_64");
        assert_eq!(p.install_time, Some(1_700_000_000));
        assert_eq!(p.source_rpm, "kernel-core-5.14.0-362.8.1.el9_3.src.rpm");
        let blob = package_header("openssl", Some(1), "3.0.7", "25.el9_3", "x86_64", 1);
        assert_eq!(parse_header(&blob).unwrap().evr(), "1:3.0.7-25.el9_3");
        let mut with_magic = vec![0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0];
        with_magic.extend_from_slice(&blob);
        assert_eq!(parse_header(&with_magic).unwrap().name, "openssl");
    }

    #[test]
    fn broken_headers_are_errors() {
        assert_eq!(parse_header(&[]), Err(HeaderError::Short));
        assert!(matches!(
            parse_header(&[0, 0, 0, 0, 0, 0, 0, 0]),
            Err(HeaderError::Bounds(0, 0))
        ));
        assert!(matches!(
            parse_header(&[0xff; 8]),
            Err(HeaderError::Bounds(..))
        ));
        let blob = package_header("x", None, "1", "1", "noarch", 0);
        assert_eq!(
            parse_header(&blob[..blob.len() - 5]),
            Err(HeaderError::Short)
        );
        let no_name = build_header(&[(TAG_VERSION, TYPE_STRING, s("1"))]);
        assert_eq!(parse_header(&no_name), Err(HeaderError::Missing("NAME")));
        // offsets pointing outside the data store are ignored, not followed
        let mut bad = package_header("x", None, "1", "1", "noarch", 0);
        bad[8 + 16 + 8..8 + 16 + 12].copy_from_slice(&0xffff_0000u32.to_be_bytes());
        assert_eq!(parse_header(&bad), Err(HeaderError::Missing("NAME")));
        for n in 0..64 {
            let junk: Vec<u8> = (0..n).map(|i| (i * 37 % 256) as u8).collect();
            let _ = parse_header(&junk);
        }
    }

    #[test]
    fn rpm_version_ordering() {
        use Ordering::*;
        for (a, b, want) in [
            ("1.0", "1.0", Equal),
            ("1.0", "2.0", Less),
            ("2.0.1", "2.0", Greater),
            ("5.14.0", "5.14.0", Equal),
            ("362.8.1.el9_3", "284.11.1.el9_2", Greater),
            ("1.0a", "1.0", Greater),
            ("1.0", "1.0a", Less),
            ("1.0~rc1", "1.0", Less),
            ("1.0^git1", "1.0", Greater),
            ("1.0^git1", "1.0.1", Less),
            ("10", "9", Greater),
            ("010", "10", Equal),
            ("a", "1", Less),
            ("1.0.", "1.0", Equal),
            ("1_0", "1.0", Equal),
        ] {
            assert_eq!(rpmvercmp(a, b), want, "{a} vs {b}");
            assert_eq!(rpmvercmp(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn sqlite_database_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rpmdb.sqlite");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL);",
        )
        .unwrap();
        for blob in [
            package_header("bash", None, "5.1.8", "6.el9_1", "x86_64", 1_690_000_000),
            package_header(
                "kernel-core",
                None,
                "5.14.0",
                "362.8.1.el9_3",
                "x86_64",
                1_700_000_000,
            ),
            vec![1, 2, 3],
        ] {
            conn.execute("INSERT INTO Packages (blob) VALUES (?1)", [blob])
                .unwrap();
        }
        drop(conn);
        let (pkgs, bad) = read_sqlite(&path, "/var/lib/rpm/rpmdb.sqlite").unwrap();
        assert_eq!(pkgs.len(), 2);
        assert_eq!(bad, 1);
        assert!(read_sqlite(&dir.path().join("missing.sqlite"), "x").is_err());
    }
}
