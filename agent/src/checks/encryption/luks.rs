//! LUKS on-disk header parsing (LUKS1 and LUKS2, primary or secondary header): version, UUID,
//! data cipher, key-derivation functions and active key slots, from the first bytes of a
//! device. Pure: the caller reads the bytes.
//!
//! Layouts follow the published specifications: LUKS1 (`LUKS\xba\xbe`, big-endian fields,
//! 592-byte header, 8 key slots of 48 bytes at offset 208) and LUKS2 (a 4096-byte binary
//! header followed by a NUL-terminated JSON area; a secondary copy with magic `SKUL\xba\xbe`
//! sits at the primary's `hdr_size`, one of 16 KiB … 4 MiB).

use serde_json::Value as Json;

/// `LUKS\xba\xbe`: the primary header magic of both versions.
const MAGIC_PRIMARY: &[u8; 6] = b"LUKS\xba\xbe";
/// `SKUL\xba\xbe`: the LUKS2 secondary header magic.
const MAGIC_SECONDARY: &[u8; 6] = b"SKUL\xba\xbe";
/// Size of the LUKS2 binary header that precedes the JSON area.
pub const LUKS2_BINARY_HEADER: usize = 4096;
/// Offsets where LUKS2 may keep its secondary header (the primary's `hdr_size`).
pub const LUKS2_SECONDARY_OFFSETS: [usize; 9] = [
    0x4000, 0x8000, 0x1_0000, 0x2_0000, 0x4_0000, 0x8_0000, 0x10_0000, 0x20_0000, 0x40_0000,
];
/// Largest LUKS2 `hdr_size` the specification allows (binary header + JSON area).
pub const LUKS2_MAX_HEADER: usize = 0x40_0000;
/// LUKS1 key slot `active` marker.
const LUKS1_KEY_ENABLED: u32 = 0x00AC_71F3;

/// What a LUKS header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LuksHeader {
    /// 1 or 2 (other values are reported as found).
    pub version: u16,
    pub uuid: String,
    /// Data cipher in `cryptsetup` notation: `aes-xts-plain64`; `None` when the JSON area was
    /// not (fully) read.
    pub cipher: Option<String>,
    /// LUKS1 hash spec (PBKDF2 hash, `sha256`).
    pub hash: Option<String>,
    /// Key-derivation functions of the key slots, sorted, deduplicated (`argon2id`,
    /// `pbkdf2`). LUKS1 is always `pbkdf2`.
    pub kdfs: Vec<String>,
    /// Number of key slots in use, when known.
    pub active_keyslots: Option<usize>,
    /// LUKS2 `hdr_size`: where the secondary header starts.
    pub header_size: Option<u64>,
    /// LUKS2 label, when set.
    pub label: Option<String>,
    /// True when only the secondary header was found (the primary is damaged or wiped).
    pub from_secondary: bool,
}

impl LuksHeader {
    /// True when the data segment cipher is `cipher_null`: a LUKS container that stores
    /// data in clear (used by installers as a placeholder, or by mistake).
    pub fn is_cipher_null(&self) -> bool {
        self.cipher
            .as_deref()
            .is_some_and(|c| c.starts_with("cipher_null"))
    }

    /// One line for evidence: `LUKS2 aes-xts-plain64 (argon2id)`.
    pub fn describe(&self) -> String {
        let mut text = format!("LUKS{}", self.version);
        if let Some(cipher) = &self.cipher {
            text.push(' ');
            text.push_str(cipher);
        }
        if !self.kdfs.is_empty() {
            text.push_str(&format!(" ({})", self.kdfs.join(", ")));
        }
        if self.from_secondary {
            text.push_str(" [secondary header only]");
        }
        text
    }
}

/// True when the bytes start with a primary LUKS header magic.
pub fn has_primary_magic(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC_PRIMARY)
}

/// The LUKS2 `hdr_size` of a primary header (how many bytes to read for the whole JSON area).
pub fn luks2_header_size(bytes: &[u8]) -> Option<u64> {
    if !has_primary_magic(bytes) || be_u16(bytes, 6)? != 2 {
        return None;
    }
    be_u64(bytes, 8)
}

/// Parses the header at the start of `bytes`; when there is none, looks for a LUKS2
/// secondary header at the offsets the specification allows. `None` when no LUKS magic is
/// found at all.
pub fn parse_header(bytes: &[u8]) -> Option<LuksHeader> {
    if has_primary_magic(bytes) {
        return parse_at(bytes, 0);
    }
    LUKS2_SECONDARY_OFFSETS
        .iter()
        .filter(|&&offset| bytes.get(offset..offset + 6) == Some(MAGIC_SECONDARY.as_slice()))
        .find_map(|&offset| {
            let mut header = parse_at(bytes, offset)?;
            header.from_secondary = true;
            Some(header)
        })
}

fn parse_at(bytes: &[u8], offset: usize) -> Option<LuksHeader> {
    let header = bytes.get(offset..)?;
    let version = be_u16(header, 6)?;
    match version {
        1 => Some(parse_luks1(header)),
        _ => Some(parse_luks2(header, version)),
    }
}

fn parse_luks1(h: &[u8]) -> LuksHeader {
    // cipher-name[32] @8, cipher-mode[32] @40, hash-spec[32] @72, uuid[40] @168,
    // key slots 8 × 48 bytes @208 (active u32 first).
    // A short read still identifies the version; every field that fits is used.
    let field = |range: std::ops::Range<usize>| h.get(range).map(c_string).unwrap_or_default();
    let cipher_name = field(8..40);
    let cipher_mode = field(40..72);
    let hash = field(72..104);
    let uuid = field(168..208);
    let cipher = match (cipher_name.is_empty(), cipher_mode.is_empty()) {
        (true, _) => None,
        (false, true) => Some(cipher_name),
        (false, false) => Some(format!("{cipher_name}-{cipher_mode}")),
    };
    let active_keyslots = (0..8)
        .map(|slot| be_u32(h, 208 + slot * 48))
        .collect::<Option<Vec<u32>>>()
        .map(|states| states.iter().filter(|&&s| s == LUKS1_KEY_ENABLED).count());
    LuksHeader {
        version: 1,
        uuid,
        cipher,
        hash: (!hash.is_empty()).then_some(hash),
        kdfs: vec!["pbkdf2".into()],
        active_keyslots,
        header_size: None,
        label: None,
        from_secondary: false,
    }
}

fn parse_luks2(h: &[u8], version: u16) -> LuksHeader {
    // hdr_size u64 @8, label[48] @24, uuid[40] @168; JSON from 4096 to hdr_size.
    let header_size = be_u64(h, 8);
    let label = h.get(24..72).map(c_string).filter(|l| !l.is_empty());
    let uuid = h.get(168..208).map(c_string).unwrap_or_default();
    let json_end = header_size
        .and_then(|size| usize::try_from(size).ok())
        .filter(|&size| size > LUKS2_BINARY_HEADER && size <= LUKS2_MAX_HEADER)
        .unwrap_or(LUKS2_MAX_HEADER)
        .min(h.len());
    let metadata = h.get(LUKS2_BINARY_HEADER..json_end).and_then(|area| {
        // A JSON area cut short by the read has no NUL: then it is incomplete, not junk.
        let end = area.iter().position(|&b| b == 0)?;
        serde_json::from_slice::<Json>(&area[..end]).ok()
    });
    let (cipher, kdfs, active_keyslots) = match &metadata {
        Some(json) => (
            luks2_cipher(json),
            luks2_kdfs(json),
            json.get("keyslots")
                .and_then(Json::as_object)
                .map(|slots| slots.len()),
        ),
        None => (None, Vec::new(), None),
    };
    LuksHeader {
        version,
        uuid,
        cipher,
        hash: None,
        kdfs,
        active_keyslots,
        header_size,
        label,
        from_secondary: false,
    }
}

/// The cipher of the first `crypt` segment (segments are keyed by their decimal index).
fn luks2_cipher(json: &Json) -> Option<String> {
    let segments = json.get("segments")?.as_object()?;
    let mut crypt: Vec<(u64, &str)> = segments
        .iter()
        .filter(|(_, segment)| segment.get("type").and_then(Json::as_str) == Some("crypt"))
        .filter_map(|(key, segment)| {
            Some((key.parse().ok()?, segment.get("encryption")?.as_str()?))
        })
        .collect();
    crypt.sort_unstable();
    crypt.first().map(|(_, cipher)| (*cipher).to_string())
}

fn luks2_kdfs(json: &Json) -> Vec<String> {
    let mut kdfs: Vec<String> = json
        .get("keyslots")
        .and_then(Json::as_object)
        .map(|slots| {
            slots
                .values()
                .filter_map(|slot| slot.get("kdf")?.get("type")?.as_str())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    kdfs.sort();
    kdfs.dedup();
    kdfs
}

fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end])
        .chars()
        .filter(|c| !c.is_control())
        .collect()
}

fn be_u16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn be_u64(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;

    fn luks1_bytes() -> Vec<u8> {
        let mut h = vec![0u8; 1024];
        h[..6].copy_from_slice(MAGIC_PRIMARY);
        h[6..8].copy_from_slice(&1u16.to_be_bytes());
        h[8..11].copy_from_slice(b"aes");
        h[40..51].copy_from_slice(b"xts-plain64");
        h[72..78].copy_from_slice(b"sha256");
        h[168..204].copy_from_slice(b"cda3a5d1-7870-452e-bb54-000000000001");
        h[208..212].copy_from_slice(&LUKS1_KEY_ENABLED.to_be_bytes());
        for slot in 1..8 {
            h[208 + slot * 48..212 + slot * 48].copy_from_slice(&0x0000_DEADu32.to_be_bytes());
        }
        h
    }

    fn luks2_bytes(magic: &[u8; 6], json: &str) -> Vec<u8> {
        let mut h = vec![0u8; 0x4000];
        h[..6].copy_from_slice(magic);
        h[6..8].copy_from_slice(&2u16.to_be_bytes());
        h[8..16].copy_from_slice(&0x4000u64.to_be_bytes());
        h[24..28].copy_from_slice(b"data");
        h[168..204].copy_from_slice(b"42119046-9e4a-462e-be6b-c38f99286efc");
        h[4096..4096 + json.len()].copy_from_slice(json.as_bytes());
        h
    }

    const JSON: &str = r#"{"keyslots":{"0":{"type":"luks2","kdf":{"type":"argon2id"}},
        "1":{"type":"luks2","kdf":{"type":"pbkdf2","hash":"sha256"}}},
        "segments":{"1":{"type":"crypt","encryption":"serpent-xts-plain64"},
        "0":{"type":"crypt","encryption":"aes-xts-plain64"}},"digests":{},"config":{}}"#;

    #[test]
    fn luks1_fields_are_read() {
        let header = parse_header(&luks1_bytes()).unwrap();
        assert_eq!(header.version, 1);
        assert_eq!(header.cipher.as_deref(), Some("aes-xts-plain64"));
        assert_eq!(header.hash.as_deref(), Some("sha256"));
        assert_eq!(header.uuid, "cda3a5d1-7870-452e-bb54-000000000001");
        assert_eq!(header.active_keyslots, Some(1));
        assert_eq!(header.describe(), "LUKS1 aes-xts-plain64 (pbkdf2)");
        // Cut short: still a LUKS1 header, fields that fit are read.
        let short = parse_header(&luks1_bytes()[..100]).unwrap();
        assert_eq!(short.version, 1);
        assert_eq!(short.cipher.as_deref(), Some("aes-xts-plain64"));
        assert_eq!(short.active_keyslots, None);
    }

    #[test]
    fn luks2_json_gives_cipher_and_kdfs() {
        let header = parse_header(&luks2_bytes(MAGIC_PRIMARY, JSON)).unwrap();
        assert_eq!(header.version, 2);
        assert_eq!(header.cipher.as_deref(), Some("aes-xts-plain64"));
        assert_eq!(header.kdfs, ["argon2id", "pbkdf2"]);
        assert_eq!(header.active_keyslots, Some(2));
        assert_eq!(header.label.as_deref(), Some("data"));
        assert_eq!(header.header_size, Some(0x4000));
        assert!(!header.from_secondary);
        assert_eq!(
            luks2_header_size(&luks2_bytes(MAGIC_PRIMARY, JSON)),
            Some(0x4000)
        );
    }

    #[test]
    fn luks2_with_truncated_or_broken_json_still_gives_the_version() {
        let full = luks2_bytes(MAGIC_PRIMARY, JSON);
        let cut = parse_header(&full[..4200]).unwrap();
        assert_eq!(cut.version, 2);
        assert_eq!(cut.cipher, None);
        let broken = parse_header(&luks2_bytes(MAGIC_PRIMARY, "{\"segments\": [1,")).unwrap();
        assert_eq!(broken.cipher, None);
        assert_eq!(parse_header(&full[..7]), None);
    }

    #[test]
    fn the_secondary_header_is_found_when_the_primary_is_wiped() {
        let mut disk = vec![0u8; 0x4000];
        disk.extend(luks2_bytes(MAGIC_SECONDARY, JSON));
        let header = parse_header(&disk).unwrap();
        assert!(header.from_secondary);
        assert_eq!(header.cipher.as_deref(), Some("aes-xts-plain64"));
        assert!(header.describe().ends_with("[secondary header only]"));
        // The secondary magic at an offset the spec does not allow is not a header.
        let mut odd = vec![0u8; 0x5000];
        odd[0x4800..0x4806].copy_from_slice(MAGIC_SECONDARY);
        assert_eq!(parse_header(&odd), None);
    }

    #[test]
    fn cipher_null_is_recognised() {
        let json =
            r#"{"keyslots":{},"segments":{"0":{"type":"crypt","encryption":"cipher_null-ecb"}}}"#;
        let header = parse_header(&luks2_bytes(MAGIC_PRIMARY, json)).unwrap();
        assert!(header.is_cipher_null());
        let mut luks1 = luks1_bytes();
        luks1[8..40].fill(0);
        luks1[8..19].copy_from_slice(b"cipher_null");
        luks1[40..72].fill(0);
        luks1[40..43].copy_from_slice(b"ecb");
        assert!(parse_header(&luks1).unwrap().is_cipher_null());
    }

    #[test]
    fn non_luks_bytes_and_junk_are_not_headers() {
        assert_eq!(parse_header(b""), None);
        assert_eq!(parse_header(&[0u8; 8192]), None);
        let mut ext4 = vec![0u8; 2048];
        ext4[0x438..0x43a].copy_from_slice(&[0x53, 0xef]);
        assert_eq!(parse_header(&ext4), None);
        let junk: Vec<u8> = (0..70_000u32).map(|i| (i * 131 % 251) as u8).collect();
        assert_eq!(parse_header(&junk), None);
        // Magic with garbage after it: a header of an unknown version, never a panic.
        let mut weird = MAGIC_PRIMARY.to_vec();
        weird.extend([0xff; 10]);
        assert_eq!(parse_header(&weird).map(|h| h.version), Some(0xffff));
    }

    /// Formats real LUKS containers with the installed cryptsetup and reads their headers.
    /// CI installs `cryptsetup-bin`; without it there is nothing to compare against.
    #[test]
    fn headers_written_by_real_cryptsetup_are_read() {
        let Some(cryptsetup) = [
            "/usr/sbin/cryptsetup",
            "/sbin/cryptsetup",
            "/usr/bin/cryptsetup",
        ]
        .into_iter()
        .find(|p| Path::new(p).exists()) else {
            eprintln!("cryptsetup not installed: skipping the real-header test");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        std::fs::write(&key, b"vigil-test-passphrase").unwrap();
        for (kind, uuid, cipher) in [
            (
                "luks1",
                "11111111-2222-4333-8444-555555555555",
                "aes-xts-plain64",
            ),
            (
                "luks2",
                "66666666-7777-4888-9999-aaaaaaaaaaaa",
                "aes-xts-plain64",
            ),
            // Kernel-checked ciphers only: cryptsetup refuses what /proc/crypto lacks.
            (
                "luks1",
                "bbbbbbbb-cccc-4ddd-8eee-ffffffffffff",
                "aes-cbc-essiv:sha256",
            ),
            (
                "luks2",
                "cccccccc-dddd-4eee-8fff-000000000000",
                "aes-cbc-essiv:sha256",
            ),
        ] {
            let image = dir.path().join(format!("{kind}-{uuid}.img"));
            let file = std::fs::File::create(&image).unwrap();
            file.set_len(20 * 1024 * 1024).unwrap();
            drop(file);
            let output = Command::new(cryptsetup)
                .args(["luksFormat", "-q", "--type", kind, "--pbkdf", "pbkdf2"])
                .args([
                    "--pbkdf-force-iterations",
                    "1000",
                    "--uuid",
                    uuid,
                    "--cipher",
                    cipher,
                ])
                .arg("--key-file")
                .arg(&key)
                .arg(&image)
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "cryptsetup {kind}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let bytes = std::fs::read(&image).unwrap();
            let first = &bytes[..LUKS2_BINARY_HEADER];
            let header = if kind == "luks2" {
                let size = luks2_header_size(first).unwrap() as usize;
                assert!((0x4000..=LUKS2_MAX_HEADER).contains(&size), "{size}");
                parse_header(&bytes[..size]).unwrap()
            } else {
                parse_header(first).unwrap()
            };
            let version = if kind == "luks1" { 1 } else { 2 };
            assert_eq!(header.version, version, "{kind}");
            assert_eq!(header.uuid, uuid);
            assert_eq!(header.cipher.as_deref(), Some(cipher), "{kind}");
            assert_eq!(header.kdfs, ["pbkdf2"]);
            assert_eq!(header.active_keyslots, Some(1));
            assert!(!header.is_cipher_null());
            if kind == "luks2" {
                // Wipe the primary: the secondary copy still identifies the container.
                let size = header.header_size.unwrap() as usize;
                let mut wiped = bytes[..2 * size].to_vec();
                wiped[..size].fill(0);
                let secondary = parse_header(&wiped).unwrap();
                assert!(secondary.from_secondary);
                assert_eq!(secondary.uuid, uuid);
                assert_eq!(secondary.cipher.as_deref(), Some(cipher));
            } else {
                assert_eq!(header.hash.as_deref(), Some("sha256"));
            }
        }
    }
}
