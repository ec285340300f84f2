//! apt's package lists (`/var/lib/apt/lists/*_Packages[.lz4|.gz|.xz|.zst|.bz2|.lzma]`):
//! streaming decompression, a byte-level stanza scanner that keeps only the fields candidate
//! selection needs, and a compact per-list cache so that unchanged lists are not parsed again.
//!
//! The cache lives in the agent's own state directory (never on the audited host). One file
//! per list, keyed by the list's real path, size, modification time, inode and device, with a
//! checksum over its body; anything that does not match exactly is ignored and rebuilt. Files
//! are written to a temporary name and renamed, so a crash never leaves half a cache behind.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::dpkg::{multi_arch_code, version_hash};

/// Compression extensions in the order apt tries them when several variants exist
/// (`Acquire::CompressionTypes`), after the uncompressed file.
pub const EXTENSIONS: [&str; 7] = ["", ".xz", ".bz2", ".lzma", ".gz", ".lz4", ".zst"];

/// Largest decompressed list we accept (a real `main` list is about 50 MB).
const MAX_DECOMPRESSED: u64 = 2 << 30;
/// Read granularity of the streaming scanner.
const CHUNK: usize = 1 << 20;

const MAGIC: &[u8; 8] = b"VGPKLST3";

/// The fields of one stanza that candidate selection needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Lower-cased package name.
    pub name: &'a str,
    /// `Architecture` as written (`none` when missing).
    pub arch: &'a str,
    pub version: &'a str,
    /// Source package name; empty when it is the package name.
    pub source: &'a str,
    /// Source version (`Source: name (version)`); empty when it is the package version.
    pub source_version: &'a str,
    pub hash: u32,
    pub size: u64,
    pub multi_arch: u8,
    /// `Phased-Update-Percentage` (100 when absent).
    pub phased: u8,
}

/// Why a list could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{path}: decompressed size exceeds {limit} bytes")]
    TooLarge { path: String, limit: u64 },
}

/// A parsed list in its compact form (the same bytes the cache stores): all strings in one
/// UTF-8 blob, validated once, and a record stream of lengths and numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedList {
    count: u32,
    strings: String,
    records: Vec<u8>,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

impl ParsedList {
    fn push(&mut self, e: &RawEntry<'_>) {
        let fields = [e.name, e.arch, e.version, e.source, e.source_version];
        // Names and versions are ASCII in practice; a stanza that is not UTF-8 cannot match an
        // installed package and is left out.
        let Ok(texts) = fields
            .map(std::str::from_utf8)
            .into_iter()
            .collect::<Result<Vec<&str>, _>>()
        else {
            return;
        };
        for t in texts {
            put_varint(&mut self.records, t.len() as u64);
            self.strings.push_str(t);
        }
        self.records.extend_from_slice(&e.hash.to_le_bytes());
        put_varint(&mut self.records, e.size);
        self.records.push(e.multi_arch);
        self.records.push(e.phased);
        self.count += 1;
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.count as usize
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Calls `f` for every entry; `false` when the records are malformed (a corrupt cache).
    pub fn for_each(&self, mut f: impl FnMut(&Entry<'_>)) -> bool {
        let mut pos = 0usize;
        let mut text = 0usize;
        for _ in 0..self.count {
            let Some(entry) = self.read_entry(&mut pos, &mut text) else {
                return false;
            };
            f(&entry);
        }
        pos == self.records.len() && text == self.strings.len()
    }

    fn read_entry(&self, pos: &mut usize, text: &mut usize) -> Option<Entry<'_>> {
        let buf = &self.records;
        let mut next = |pos: &mut usize| -> Option<&str> {
            let len = usize::try_from(get_varint(buf, pos)?).ok()?;
            let end = text.checked_add(len)?;
            let s = self.strings.get(*text..end)?;
            *text = end;
            Some(s)
        };
        let name = next(pos)?;
        let arch = next(pos)?;
        let version = next(pos)?;
        let source = next(pos)?;
        let source_version = next(pos)?;
        let hash_bytes: [u8; 4] = buf.get(*pos..*pos + 4)?.try_into().ok()?;
        *pos += 4;
        let size = get_varint(buf, pos)?;
        let multi_arch = *buf.get(*pos)?;
        let phased = *buf.get(*pos + 1)?;
        *pos += 2;
        Some(Entry {
            name,
            arch,
            version,
            source,
            source_version,
            hash: u32::from_le_bytes(hash_bytes),
            size,
            multi_arch,
            phased,
        })
    }
}

/// One stanza's fields as byte slices, before encoding.
struct RawEntry<'a> {
    name: &'a [u8],
    arch: &'a [u8],
    version: &'a [u8],
    source: &'a [u8],
    source_version: &'a [u8],
    hash: u32,
    size: u64,
    multi_arch: u8,
    phased: u8,
}

/// Field slots the scanner fills; indexes into `StanzaFields::values`.
const F_PACKAGE: usize = 0;
const F_VERSION: usize = 1;
const F_ARCH: usize = 2;
const F_SOURCE: usize = 3;
const F_SIZE: usize = 4;
const F_MULTI_ARCH: usize = 5;
const F_PHASED: usize = 6;
const F_HASHED: usize = 7; // 7..13: Installed-Size, Depends, Pre-Depends, Conflicts, Breaks, Replaces
const SLOTS: usize = 13;

fn field_slot(name: &[u8]) -> Option<usize> {
    let eq = |s: &str| name.eq_ignore_ascii_case(s.as_bytes());
    // Dispatch on length first: most fields of a list are not wanted.
    match name.len() {
        4 if eq("Size") => Some(F_SIZE),
        6 if eq("Source") => Some(F_SOURCE),
        6 if eq("Breaks") => Some(F_HASHED + 4),
        7 if eq("Package") => Some(F_PACKAGE),
        7 if eq("Version") => Some(F_VERSION),
        7 if eq("Depends") => Some(F_HASHED + 1),
        8 if eq("Replaces") => Some(F_HASHED + 5),
        9 if eq("Conflicts") => Some(F_HASHED + 3),
        10 if eq("Multi-Arch") => Some(F_MULTI_ARCH),
        11 if eq("Pre-Depends") => Some(F_HASHED + 2),
        12 if eq("Architecture") => Some(F_ARCH),
        14 if eq("Installed-Size") => Some(F_HASHED),
        24 if eq("Phased-Update-Percentage") => Some(F_PHASED),
        _ => None,
    }
}

fn trim(b: &[u8]) -> &[u8] {
    b.trim_ascii()
}

/// `strtoull`-like: leading digits, 0 when none.
fn parse_u64(b: &[u8]) -> u64 {
    let mut v: u64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            break;
        }
        v = v.saturating_mul(10).saturating_add(u64::from(c - b'0'));
    }
    v
}

/// Scans complete stanzas in `region` (which ends at a stanza boundary or at EOF) and appends
/// the wanted ones to `out`.
fn scan_region(region: &[u8], out: &mut ParsedList) {
    let mut slots: [Option<(usize, usize)>; SLOTS] = [None; SLOTS];
    let mut current: Option<usize> = None;
    let mut any_field = false;
    let mut line_start = 0usize;
    let len = region.len();
    while line_start <= len {
        let line_end = memchr::memchr(b'\n', &region[line_start..]).map_or(len, |i| line_start + i);
        let line = &region[line_start..line_end];
        let blank = line.iter().all(|&b| b == b'\r');
        if blank {
            if any_field {
                emit(region, &slots, out);
            }
            slots = [None; SLOTS];
            current = None;
            any_field = false;
        } else if line[0] == b' ' || line[0] == b'\t' {
            if let Some(slot) = current
                && let Some((_, end)) = slots[slot].as_mut()
            {
                *end = line_end;
            }
        } else {
            any_field = true;
            current = None;
            if let Some(colon) = memchr::memchr(b':', line) {
                let name = &line[..colon];
                let name = &name[..name.len()
                    - name
                        .iter()
                        .rev()
                        .take_while(|b| b.is_ascii_whitespace())
                        .count()];
                if let Some(slot) = field_slot(name) {
                    // Repeated fields: the last one wins, as in apt.
                    slots[slot] = Some((line_start + colon + 1, line_end));
                    current = Some(slot);
                }
            }
        }
        if line_end == len {
            break;
        }
        line_start = line_end + 1;
    }
    if any_field {
        emit(region, &slots, out);
    }
}

fn emit(region: &[u8], slots: &[Option<(usize, usize)>; SLOTS], out: &mut ParsedList) {
    let get = |i: usize| slots[i].map(|(s, e)| trim(&region[s..e]));
    let Some(name) = get(F_PACKAGE).filter(|n| !n.is_empty()) else {
        return;
    };
    let version = get(F_VERSION).unwrap_or(b"");
    if version.is_empty() {
        // Stanzas without a version only describe packages (Translation files); apt keeps no
        // version for them.
        return;
    }
    let arch_raw = get(F_ARCH).unwrap_or(b"");
    let arch: &[u8] = if arch_raw.is_empty() {
        b"none"
    } else {
        arch_raw
    };
    let source_full = get(F_SOURCE).unwrap_or(b"");
    let source = source_full.split(|&b| b == b' ').next().unwrap_or(b"");
    // "Source: name (version)" when the source version differs from the binary's
    let source_version = source_full
        .iter()
        .position(|&b| b == b'(')
        .and_then(|open| {
            let rest = &source_full[open + 1..];
            rest.iter()
                .position(|&b| b == b')')
                .map(|close| &rest[..close])
        })
        .filter(|v| *v != version)
        .unwrap_or(b"");
    let lower;
    let name: &[u8] = if name.iter().any(u8::is_ascii_uppercase) && !name.contains(&b'/') {
        lower = name.to_ascii_lowercase();
        &lower
    } else {
        name
    };
    let source: &[u8] = if source == name { b"" } else { source };
    let multi_arch = multi_arch_code(
        get(F_MULTI_ARCH).and_then(|v| std::str::from_utf8(v).ok()),
        arch_raw == b"all",
    );
    let phased = get(F_PHASED).map_or(100, parse_u64);
    let phased = if phased <= 100 { phased as u8 } else { 100 };
    let hash = version_hash([
        get(F_HASHED),
        get(F_HASHED + 1),
        get(F_HASHED + 2),
        get(F_HASHED + 3),
        get(F_HASHED + 4),
        get(F_HASHED + 5),
    ]);
    out.push(&RawEntry {
        name,
        arch,
        version,
        source,
        source_version,
        hash,
        size: get(F_SIZE).map_or(0, parse_u64),
        multi_arch,
        phased,
    });
}

/// Parses a whole list from a (decompressed) reader, holding at most a few chunks in memory.
pub fn parse_reader(mut reader: impl Read, path: &str) -> Result<ParsedList, ListError> {
    let io_err = |source: io::Error| ListError::Io {
        path: path.to_string(),
        source,
    };
    let mut out = ParsedList::default();
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK * 2);
    let mut total: u64 = 0;
    let mut eof = false;
    while !eof {
        let start = buf.len();
        buf.resize(start + CHUNK, 0);
        let mut filled = start;
        while filled < buf.len() {
            let n = match reader.read(&mut buf[filled..]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err(e)),
            };
            if n == 0 {
                eof = true;
                break;
            }
            filled += n;
        }
        buf.truncate(filled);
        total += (filled - start) as u64;
        if total > MAX_DECOMPRESSED {
            return Err(ListError::TooLarge {
                path: path.to_string(),
                limit: MAX_DECOMPRESSED,
            });
        }
        if eof {
            scan_region(&buf, &mut out);
            buf.clear();
        } else if let Some(cut) = memchr::memmem::rfind(&buf, b"\n\n") {
            scan_region(&buf[..cut + 1], &mut out);
            buf.drain(..cut + 2);
        }
        // Without a stanza boundary in the buffer (one huge stanza), keep reading.
    }
    Ok(out)
}

/// Parses list text held in memory.
#[cfg(test)]
pub fn parse_bytes(text: &[u8]) -> ParsedList {
    let mut out = ParsedList::default();
    scan_region(text, &mut out);
    out
}

/// Opens a decompressing reader for a list file, by its extension (as apt's `FileFd` does).
pub fn decompressor<'a>(file: impl Read + 'a, name: &str) -> Result<Box<dyn Read + 'a>, io::Error> {
    let reader = io::BufReader::with_capacity(1 << 16, file);
    Ok(if name.ends_with(".lz4") {
        Box::new(lz4_flex::frame::FrameDecoder::new(reader))
    } else if name.ends_with(".gz") {
        Box::new(flate2::bufread::MultiGzDecoder::new(reader))
    } else if name.ends_with(".xz") {
        Box::new(xz2::bufread::XzDecoder::new_multi_decoder(reader))
    } else if name.ends_with(".lzma") {
        let stream = xz2::stream::Stream::new_lzma_decoder(u64::MAX).map_err(io::Error::other)?;
        Box::new(xz2::bufread::XzDecoder::new_stream(reader, stream))
    } else if name.ends_with(".zst") {
        Box::new(zstd::stream::read::Decoder::with_buffer(reader)?)
    } else if name.ends_with(".bz2") {
        Box::new(bzip2::bufread::MultiBzDecoder::new(reader))
    } else {
        Box::new(reader)
    })
}

/// What identifies one version of a list file on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey {
    pub real_path: String,
    pub size: u64,
    pub mtime: i64,
    pub mtime_nsec: i64,
    pub inode: u64,
    pub device: u64,
}

impl CacheKey {
    pub fn from_metadata(real_path: &Path, meta: &fs::Metadata) -> CacheKey {
        CacheKey {
            real_path: real_path.display().to_string(),
            size: meta.len(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
            inode: meta.ino(),
            device: meta.dev(),
        }
    }

    fn file_name(&self) -> String {
        file_name_for(&self.real_path)
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.size.to_le_bytes());
        out.extend_from_slice(&self.mtime.to_le_bytes());
        out.extend_from_slice(&self.mtime_nsec.to_le_bytes());
        out.extend_from_slice(&self.inode.to_le_bytes());
        out.extend_from_slice(&self.device.to_le_bytes());
        put_varint(out, self.real_path.len() as u64);
        out.extend_from_slice(self.real_path.as_bytes());
    }
}

fn file_name_for(real_path: &str) -> String {
    let digest = Sha256::digest(real_path.as_bytes());
    format!("{}.list", hex::encode(&digest[..16]))
}

/// A fast 64-bit checksum (multiply-xorshift over 8-byte words): it detects torn or corrupted
/// cache files; the cache directory itself is private to the agent.
fn checksum(data: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h: u64 = K ^ (data.len() as u64);
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(K);
        h ^= h >> 29;
    }
    for &b in chunks.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(K);
        h ^= h >> 29;
    }
    h
}

/// The on-disk list cache.
#[derive(Debug, Clone)]
pub struct ListCache {
    dir: PathBuf,
}

impl ListCache {
    pub fn new(dir: PathBuf) -> ListCache {
        ListCache { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Name of the cache file for a key.
    pub fn file_for(&self, key: &CacheKey) -> PathBuf {
        self.dir.join(key.file_name())
    }

    /// Name of the cache file of a list, whatever its version (for housekeeping).
    pub fn file_for_path(&self, real_path: &Path) -> PathBuf {
        self.dir
            .join(file_name_for(&real_path.display().to_string()))
    }

    /// The cached parse of a list, if a valid one for exactly this file version exists.
    pub fn load(&self, key: &CacheKey) -> Option<ParsedList> {
        let mut bytes = fs::read(self.file_for(key)).ok()?;
        let mut expected_header = Vec::new();
        expected_header.extend_from_slice(MAGIC);
        key.encode(&mut expected_header);
        let rest = bytes.strip_prefix(expected_header.as_slice())?;
        let word = |at: usize| -> Option<u64> {
            Some(u64::from_le_bytes(rest.get(at..at + 8)?.try_into().ok()?))
        };
        let count = u32::try_from(word(0)?).ok()?;
        let strings_len = usize::try_from(word(8)?).ok()?;
        let records_len = usize::try_from(word(16)?).ok()?;
        let sum = word(24)?;
        let body = rest.get(32..)?;
        if body.len() != strings_len.checked_add(records_len)? || checksum(body) != sum {
            return None;
        }
        let body_start = bytes.len() - body.len();
        let records = bytes.split_off(body_start + strings_len);
        let strings = String::from_utf8(bytes.split_off(body_start)).ok()?;
        // Records are checked while they are read: `for_each` reports a malformed stream and
        // the caller then parses the list itself.
        Some(ParsedList {
            count,
            strings,
            records,
        })
    }

    /// Writes a cache entry atomically (temporary file + rename).
    pub fn store(&self, key: &CacheKey, list: &ParsedList) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let mut body = Vec::with_capacity(list.strings.len() + list.records.len());
        body.extend_from_slice(list.strings.as_bytes());
        body.extend_from_slice(&list.records);
        let mut bytes = Vec::with_capacity(body.len() + 128);
        bytes.extend_from_slice(MAGIC);
        key.encode(&mut bytes);
        bytes.extend_from_slice(&u64::from(list.count).to_le_bytes());
        bytes.extend_from_slice(&(list.strings.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&(list.records.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&checksum(&body).to_le_bytes());
        bytes.extend_from_slice(&body);
        let target = self.file_for(key);
        let tmp = self.dir.join(format!(
            ".{}.{}.{:x}.tmp",
            key.file_name(),
            std::process::id(),
            rand::random::<u64>()
        ));
        let result = (|| {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &target)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = "Package: openssl\nVersion: 3.0.15-1~deb12u1\nInstalled-Size: 2293\nMaintainer: Debian OpenSSL Team <pkg-openssl-devel@alioth-lists.debian.net>\nArchitecture: amd64\nDepends: libc6 (>= 2.34), libssl3 (>= 3.0.9)\nSuggests: ca-certificates\nDescription: Secure Sockets Layer toolkit\nSize: 1428704\nSHA256: 00\n\n\
        Package: libssl3\nSource: openssl\nVersion: 3.0.15-1~deb12u1\nArchitecture: amd64\nMulti-Arch: same\nDepends: libc6 (>= 2.34)\nSize: 2025000\n\n\
        Package: tzdata\nVersion: 2024b-0+deb12u1\nArchitecture: all\nMulti-Arch: foreign\nPhased-Update-Percentage: 10\n\n\
        Package: Mixed-Case\nSource: mixed (1.0-1)\nVersion: 1.0-1+b1\nArchitecture: amd64\nDepends: a,\n b (>= 0:1)\n\n\
        Package: no-version\nDescription-md5: 00\n\n\
        Package: weird\nVersion: 1\nPhased-Update-Percentage: 250\n";

    type Row = (String, String, String, String, u32, u64, u8, u8, String);

    fn entries(list: &ParsedList) -> Vec<Row> {
        let mut v = Vec::new();
        assert!(list.for_each(|e| v.push((
            e.name.to_string(),
            e.arch.to_string(),
            e.version.to_string(),
            e.source.to_string(),
            e.hash,
            e.size,
            e.multi_arch,
            e.phased,
            e.source_version.to_string()
        ))));
        v
    }

    #[test]
    fn scanner_keeps_the_needed_fields() {
        let list = parse_bytes(LIST.as_bytes());
        let e = entries(&list);
        assert_eq!(e.len(), 5);
        assert_eq!(e[0].0, "openssl");
        assert_eq!(e[0].5, 1428704);
        assert_eq!(
            e[0].4,
            version_hash([
                Some(b"2293"),
                Some(b"libc6 (>= 2.34), libssl3 (>= 3.0.9)"),
                None,
                None,
                None,
                None
            ])
        );
        assert_eq!((e[1].3.as_str(), e[1].6), ("openssl", 4));
        assert_eq!((e[2].1.as_str(), e[2].6, e[2].7), ("all", 3, 10));
        assert_eq!((e[3].0.as_str(), e[3].3.as_str()), ("mixed-case", "mixed"));
        assert_eq!(e[3].8, "1.0-1", "binNMU: the source version differs");
        assert_eq!(e[1].8, "");
        assert_eq!(
            e[3].4,
            version_hash([None, Some(b"a, b (>= 1)"), None, None, None, None])
        );
        assert_eq!(
            (e[4].1.as_str(), e[4].7),
            ("none", 100),
            "missing arch; invalid phasing ignored"
        );
    }

    #[test]
    fn streaming_matches_in_memory_across_chunk_boundaries() {
        let mut big = String::new();
        for i in 0..40_000 {
            big.push_str(&format!(
                "Package: pkg{i}\nVersion: 1.{i}\nArchitecture: amd64\nDepends: libc6 (>= 2.{i})\nDescription: {}\n continuation line\n\n",
                "x".repeat(i % 97)
            ));
        }
        let in_memory = parse_bytes(big.as_bytes());
        let streamed = parse_reader(big.as_bytes(), "t").unwrap();
        assert_eq!(in_memory.len(), 40_000);
        assert_eq!(in_memory, streamed);
    }

    #[test]
    fn crlf_and_junk_do_not_break_the_scanner() {
        let list = parse_bytes(b"Package: a\r\nVersion: 1\r\n\r\nPackage: b\r\nVersion: 2\r\n");
        let e = entries(&list);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].2, "1");
        let junk: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        let _ = parse_bytes(&junk);
        let _ = parse_reader(&junk[..], "j").unwrap();
        assert!(parse_bytes(b"").is_empty());
        assert!(parse_bytes(b"\n\n\n").is_empty());
    }

    #[test]
    fn every_compression_apt_supports() {
        let text = LIST.as_bytes();
        let want = parse_bytes(text);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(text).unwrap();
        let gz = gz.finish().unwrap();
        let mut lz4 = lz4_flex::frame::FrameEncoder::new(Vec::new());
        lz4.write_all(text).unwrap();
        let lz4 = lz4.finish().unwrap();
        let mut xz = xz2::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(text).unwrap();
        let xz = xz.finish().unwrap();
        let zst = zstd::stream::encode_all(text, 1).unwrap();
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bz.write_all(text).unwrap();
        let bz = bz.finish().unwrap();
        let opts = xz2::stream::LzmaOptions::new_preset(1).unwrap();
        let mut lzma = xz2::write::XzEncoder::new_stream(
            Vec::new(),
            xz2::stream::Stream::new_lzma_encoder(&opts).unwrap(),
        );
        lzma.write_all(text).unwrap();
        let lzma = lzma.finish().unwrap();
        for (name, data) in [
            ("x_Packages.gz", gz),
            ("x_Packages.lz4", lz4),
            ("x_Packages.xz", xz),
            ("x_Packages.zst", zst),
            ("x_Packages.bz2", bz),
            ("x_Packages.lzma", lzma),
            ("x_Packages", text.to_vec()),
        ] {
            let reader = decompressor(&data[..], name).unwrap();
            assert_eq!(parse_reader(reader, name).unwrap(), want, "{name}");
        }
        // corrupt data is an error, not a panic
        let reader = decompressor(&b"not lz4 at all"[..], "x.lz4").unwrap();
        assert!(parse_reader(reader, "x.lz4").is_err());
    }

    #[test]
    fn cache_round_trip_and_distrust() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ListCache::new(dir.path().join("lists"));
        let key = CacheKey {
            real_path: "/var/lib/apt/lists/x_Packages.lz4".into(),
            size: 10,
            mtime: 1,
            mtime_nsec: 2,
            inode: 3,
            device: 4,
        };
        let list = parse_bytes(LIST.as_bytes());
        assert!(cache.load(&key).is_none());
        cache.store(&key, &list).unwrap();
        assert_eq!(cache.load(&key).unwrap(), list);
        // a different file version misses
        let newer = CacheKey {
            mtime: 5,
            ..key.clone()
        };
        assert!(cache.load(&newer).is_none());
        // a flipped byte in the body is detected
        let path = cache.file_for(&key);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 3;
        bytes[last] ^= 0x55;
        fs::write(&path, &bytes).unwrap();
        assert!(cache.load(&key).is_none());
        // a valid checksum over malformed records is caught when reading them
        let forged = ParsedList {
            count: 2,
            strings: list.strings.clone(),
            records: list.records.clone(),
        };
        assert!(!forged.for_each(|_| {}));
        // truncation too
        fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        assert!(cache.load(&key).is_none());
        fs::write(&path, b"").unwrap();
        assert!(cache.load(&key).is_none());
        // no temporary files are left behind
        cache.store(&key, &list).unwrap();
        let names: Vec<_> = fs::read_dir(cache.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn malformed_bodies_are_rejected() {
        let list = ParsedList {
            count: 3,
            strings: "a".into(),
            records: vec![5],
        };
        assert!(!list.for_each(|_| {}));
        let list = ParsedList {
            count: 0,
            strings: String::new(),
            records: vec![1],
        };
        assert!(!list.for_each(|_| {}), "trailing bytes");
        // lengths that cut a multi-byte character are refused, not a panic
        let list = ParsedList {
            count: 1,
            strings: "é".into(),
            records: vec![1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        };
        assert!(!list.for_each(|_| {}));
        let mut pos = 0;
        assert_eq!(get_varint(&[0xff; 12], &mut pos), None);
    }
}
