//! `~/.ssh/authorized_keys`: lines parsed the way sshd parses them (options, key type, base64
//! blob, comment), key sizes taken from the blob itself, `ssh-keygen -l` fingerprints, and the
//! ownership and mode checks of sshd's StrictModes.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;

use sha2::{Digest, Sha256};

use super::{LineProblem, Parsed};
use crate::hostroot::{HostError, HostRoot};

/// The key files sshd reads by default (`AuthorizedKeysFile .ssh/authorized_keys
/// .ssh/authorized_keys2`), relative to the home directory.
pub const KEY_FILES: &[&str] = &[".ssh/authorized_keys", ".ssh/authorized_keys2"];

/// Largest keys file read; real ones are a few KiB.
const KEY_FILE_LIMIT: u64 = 1024 * 1024;

/// Shortest RSA modulus accepted.
pub const MIN_RSA_BITS: u32 = 2048;

/// One option before the key (`from="10.0.0.0/8"`, `restrict`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOption {
    /// Lower-cased, as sshd compares them.
    pub name: String,
    pub value: Option<String>,
}

/// One key line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizedKey {
    pub line: usize,
    pub options: Vec<KeyOption>,
    /// The key type as written (`ssh-ed25519`, `ssh-rsa-cert-v01@openssh.com`).
    pub key_type: String,
    /// Modulus or curve size in bits, from the blob.
    pub bits: Option<u32>,
    /// `SHA256:…` as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    pub comment: String,
    /// Why the key is too weak to keep, if it is.
    pub weakness: Option<String>,
}

impl AuthorizedKey {
    pub fn option(&self, name: &str) -> Option<&KeyOption> {
        self.options.iter().find(|o| o.name == name)
    }
}

/// The algorithm family behind a key type name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Rsa,
    Dsa,
    Ecdsa,
    SkEcdsa,
    Ed25519,
    SkEd25519,
    Xmss,
}

/// Key type names sshd accepts, with their family and whether they are certificates.
const KEY_TYPES: &[(&str, Family, bool)] = &[
    ("ssh-ed25519", Family::Ed25519, false),
    ("ssh-ed25519-cert-v01@openssh.com", Family::Ed25519, true),
    ("sk-ssh-ed25519@openssh.com", Family::SkEd25519, false),
    (
        "sk-ssh-ed25519-cert-v01@openssh.com",
        Family::SkEd25519,
        true,
    ),
    ("ecdsa-sha2-nistp256", Family::Ecdsa, false),
    ("ecdsa-sha2-nistp384", Family::Ecdsa, false),
    ("ecdsa-sha2-nistp521", Family::Ecdsa, false),
    (
        "ecdsa-sha2-nistp256-cert-v01@openssh.com",
        Family::Ecdsa,
        true,
    ),
    (
        "ecdsa-sha2-nistp384-cert-v01@openssh.com",
        Family::Ecdsa,
        true,
    ),
    (
        "ecdsa-sha2-nistp521-cert-v01@openssh.com",
        Family::Ecdsa,
        true,
    ),
    ("sk-ecdsa-sha2-nistp256@openssh.com", Family::SkEcdsa, false),
    (
        "webauthn-sk-ecdsa-sha2-nistp256@openssh.com",
        Family::SkEcdsa,
        false,
    ),
    (
        "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
        Family::SkEcdsa,
        true,
    ),
    ("ssh-rsa", Family::Rsa, false),
    ("rsa-sha2-256", Family::Rsa, false),
    ("rsa-sha2-512", Family::Rsa, false),
    ("ssh-rsa-cert-v01@openssh.com", Family::Rsa, true),
    ("rsa-sha2-256-cert-v01@openssh.com", Family::Rsa, true),
    ("rsa-sha2-512-cert-v01@openssh.com", Family::Rsa, true),
    ("ssh-dss", Family::Dsa, false),
    ("ssh-dss-cert-v01@openssh.com", Family::Dsa, true),
    ("ssh-xmss@openssh.com", Family::Xmss, false),
    ("ssh-xmss-cert-v01@openssh.com", Family::Xmss, true),
];

fn key_type(name: &str) -> Option<(Family, bool)> {
    KEY_TYPES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, family, cert)| (*family, *cert))
}

/// Parses an authorized_keys file. Lines sshd would skip (unknown types, broken base64, a
/// blob of another type than announced) are problems, not keys.
pub fn parse_authorized_keys(text: &str) -> Parsed<AuthorizedKey> {
    let mut parsed = Parsed::default();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let content = raw
            .strip_suffix('\r')
            .unwrap_or(raw)
            .trim_start_matches([' ', '\t']);
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        match parse_key_line(content) {
            Ok(mut key) => {
                key.line = line;
                parsed.entries.push(key);
            }
            Err(message) => parsed.problem(line, message),
        }
    }
    parsed
}

fn parse_key_line(content: &str) -> Result<AuthorizedKey, String> {
    let (first, rest) = split_token(content);
    // sshd first tries the line as a bare key and only then skips an options prefix.
    let (options, type_name, rest) = if key_type(first).is_some() {
        (Vec::new(), first, rest)
    } else {
        let (options_text, after) = split_options(content)?;
        let (type_name, rest) = split_token(after.trim_start_matches([' ', '\t']));
        (parse_options(options_text)?, type_name, rest)
    };
    let Some((family, cert)) = key_type(type_name) else {
        let shown: String = type_name.chars().take(40).collect();
        return Err(format!(
            "unknown key type {shown:?}: sshd ignores this line"
        ));
    };
    let (blob_text, comment) = split_token(rest.trim_start_matches([' ', '\t']));
    let blob = base64_decode(blob_text).ok_or("key data is not valid base64")?;
    let DecodedKey { bits, plain_blob } = decode_key(&blob, type_name, family, cert)?;
    let fingerprint = format!(
        "SHA256:{}",
        base64_encode_unpadded(&Sha256::digest(&plain_blob))
    );
    let weakness = match family {
        Family::Dsa => Some(
            "DSA key (ssh-dss): limited to 1024 bits, disabled since OpenSSH 7.0 and removed in 10.0"
                .to_string(),
        ),
        Family::Rsa => match bits {
            Some(b) if b < MIN_RSA_BITS => {
                Some(format!("RSA key of {b} bits, shorter than {MIN_RSA_BITS}"))
            }
            _ => None,
        },
        _ => None,
    };
    Ok(AuthorizedKey {
        line: 0,
        options,
        key_type: type_name.to_string(),
        bits,
        fingerprint,
        comment: comment.trim().to_string(),
        weakness,
    })
}

/// The first run of non-blank characters and what follows it.
fn split_token(s: &str) -> (&str, &str) {
    match s.find([' ', '\t']) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

/// The options prefix ends at the first blank outside double quotes (sshd's
/// `sshkey_advance_past_options`; `\"` inside quotes does not end them).
fn split_options(s: &str) -> Result<(&str, &str), String> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ' ' | '\t' if !quoted => return Ok((&s[..i], &s[i..])),
            _ => {}
        }
    }
    Err(if quoted {
        "unterminated quote in key options: sshd ignores this line".to_string()
    } else {
        "options without a key: sshd ignores this line".to_string()
    })
}

fn parse_options(text: &str) -> Result<Vec<KeyOption>, String> {
    let mut options = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut escaped = false;
    let mut pieces = Vec::new();
    for c in text.chars() {
        match c {
            _ if escaped => {
                current.push(c);
                escaped = false;
            }
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => pieces.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    pieces.push(current);
    for piece in pieces {
        if piece.is_empty() {
            return Err("empty key option: sshd ignores this line".into());
        }
        let (name, value) = match piece.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (piece.as_str(), None),
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            let shown: String = name.chars().take(40).collect();
            return Err(format!(
                "malformed key option {shown:?}: sshd ignores this line"
            ));
        }
        options.push(KeyOption {
            name: name.to_ascii_lowercase(),
            value,
        });
    }
    Ok(options)
}

/// Reads one SSH wire-format string (`uint32` length, then bytes).
fn read_string<'a>(buf: &mut &'a [u8]) -> Option<&'a [u8]> {
    let (len_bytes, rest) = buf.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_be_bytes(*len_bytes)).ok()?;
    if rest.len() < len {
        return None;
    }
    let (value, rest) = rest.split_at(len);
    *buf = rest;
    Some(value)
}

/// Significant bits of an unsigned big-endian integer (mpint), as BN_num_bits counts them.
fn bit_length(mpint: &[u8]) -> u32 {
    let Some(start) = mpint.iter().position(|&b| b != 0) else {
        return 0;
    };
    let significant = &mpint[start..];
    let whole = u32::try_from(significant.len() - 1).unwrap_or(u32::MAX / 16);
    whole.saturating_mul(8) + (8 - significant[0].leading_zeros())
}

/// Writes one SSH wire-format string.
fn write_string(out: &mut Vec<u8>, value: &[u8]) {
    let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(value);
}

/// A decoded public key: its size and the plain-key blob that fingerprints are taken over
/// (for a certificate, `ssh-keygen -l` fingerprints the certified key, not the certificate).
struct DecodedKey {
    bits: Option<u32>,
    plain_blob: Vec<u8>,
}

/// Checks that the blob carries the announced type, reads the key fields and rebuilds the
/// plain key.
fn decode_key(
    blob: &[u8],
    type_name: &str,
    family: Family,
    cert: bool,
) -> Result<DecodedKey, String> {
    let broken =
        || format!("{type_name} key data is truncated or malformed: sshd ignores this line");
    let mut buf = blob;
    let inner_bytes = read_string(&mut buf).ok_or_else(broken)?;
    let inner = std::str::from_utf8(inner_bytes).map_err(|_| broken())?;
    match key_type(inner) {
        Some((inner_family, inner_cert)) if inner_family == family && inner_cert == cert => {}
        _ => {
            let shown: String = inner.chars().take(40).collect();
            return Err(format!(
                "line announces {type_name} but the key data is {shown:?}: sshd ignores this line"
            ));
        }
    }
    if cert {
        read_string(&mut buf).ok_or_else(broken)?; // nonce
    }
    let field_count = match family {
        Family::Rsa | Family::Ecdsa | Family::Xmss => 2,
        Family::Dsa => 4,
        Family::SkEcdsa => 3,
        Family::Ed25519 => 1,
        Family::SkEd25519 => 2,
    };
    let mut fields = Vec::with_capacity(field_count);
    for _ in 0..field_count {
        fields.push(read_string(&mut buf).ok_or_else(broken)?);
    }
    if !cert && !buf.is_empty() {
        return Err(format!(
            "{type_name} key data has trailing bytes: sshd ignores this line"
        ));
    }
    let field = |i: usize| fields.get(i).copied().unwrap_or_default();
    let (bits, plain_type) = match family {
        Family::Rsa => (Some(bit_length(field(1))), "ssh-rsa".to_string()),
        Family::Dsa => (Some(bit_length(field(0))), "ssh-dss".to_string()),
        Family::Ecdsa | Family::SkEcdsa => {
            let curve = std::str::from_utf8(field(0)).map_err(|_| broken())?;
            let bits = match curve {
                "nistp256" => 256,
                "nistp384" => 384,
                "nistp521" => 521,
                _ => return Err(broken()),
            };
            if !inner.contains(curve) {
                return Err(broken());
            }
            let plain = if family == Family::Ecdsa {
                format!("ecdsa-sha2-{curve}")
            } else {
                "sk-ecdsa-sha2-nistp256@openssh.com".to_string()
            };
            (Some(bits), plain)
        }
        Family::Ed25519 | Family::SkEd25519 => {
            if field(0).len() != 32 {
                return Err(broken());
            }
            let plain = if family == Family::Ed25519 {
                "ssh-ed25519"
            } else {
                "sk-ssh-ed25519@openssh.com"
            };
            (Some(256), plain.to_string())
        }
        Family::Xmss => (None, "ssh-xmss@openssh.com".to_string()),
    };
    let plain_blob = if cert {
        let mut plain = Vec::new();
        write_string(&mut plain, plain_type.as_bytes());
        for f in &fields {
            write_string(&mut plain, f);
        }
        plain
    } else {
        blob.to_vec()
    };
    Ok(DecodedKey { bits, plain_blob })
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_value(c: u8) -> Option<u32> {
    BASE64
        .iter()
        .position(|&b| b == c)
        .and_then(|p| u32::try_from(p).ok())
}

/// Strict standard base64 as OpenSSH's `b64_pton` reads it: padding required, no stray bits.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if bytes.is_empty() || !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let chunks = bytes.chunks_exact(4);
    let last = chunks.len() - 1;
    for (i, chunk) in chunks.enumerate() {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && i != last) {
            return None;
        }
        let mut acc: u32 = 0;
        for &c in &chunk[..4 - pad] {
            acc = (acc << 6) | base64_value(c)?;
        }
        acc <<= 6 * u32::try_from(pad).ok()?;
        let [_, a, b, c] = acc.to_be_bytes();
        match pad {
            0 => out.extend_from_slice(&[a, b, c]),
            1 if c == 0 => out.extend_from_slice(&[a, b]),
            2 if b == 0 && c == 0 => out.push(a),
            _ => return None,
        }
    }
    Some(out)
}

/// Standard base64 without padding, as `ssh-keygen -l` prints SHA256 fingerprints.
pub fn base64_encode_unpadded(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let mut acc = [0u8; 3];
        acc[..chunk.len()].copy_from_slice(chunk);
        let n = (u32::from(acc[0]) << 16) | (u32::from(acc[1]) << 8) | u32::from(acc[2]);
        for i in 0..=chunk.len() {
            let index = (n >> (18 - 6 * i)) & 63;
            out.push(char::from(BASE64[index as usize]));
        }
    }
    out
}

/// What the StrictModes checks need to know about the account.
#[derive(Debug, Clone)]
pub struct Owner<'a> {
    pub name: &'a str,
    pub uid: u32,
    /// The home directory, resolved inside the root: the walk up from the key file stops
    /// there, as sshd's does.
    pub home: &'a str,
    /// Judge file owners (false when the tree's owners do not come from the host).
    pub judge_owners: bool,
}

/// One keys file as found on the host.
#[derive(Debug, Clone)]
pub struct KeyFile {
    /// Host path, symlinks resolved.
    pub path: String,
    pub keys: Vec<AuthorizedKey>,
    pub problems: Vec<LineProblem>,
    /// Why sshd's StrictModes would refuse the file, one reason per offending path.
    pub unsafe_reasons: Vec<String>,
}

/// Reads the keys files under `home` for one account. A missing file is not an error; an
/// unreadable one is, with its path.
pub fn read_key_files(
    root: &HostRoot,
    owner: &Owner<'_>,
    private_groups: &BTreeMap<u32, u32>,
    group_names: &BTreeMap<u32, String>,
) -> (Vec<KeyFile>, Vec<HostError>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for relative in KEY_FILES {
        let requested = crate::hostroot::join(owner.home, relative);
        let path = match root.canonical(&requested) {
            Ok(p) => p,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let bytes = match root.read_bytes(&path, KEY_FILE_LIMIT) {
            Ok(b) => b,
            Err(e) if e.is_not_found() => continue,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let text = String::from_utf8_lossy(&bytes);
        let parsed = parse_authorized_keys(&text);
        let unsafe_reasons = strict_modes(root, &path, owner, private_groups, group_names);
        files.push(KeyFile {
            path,
            keys: parsed.entries,
            problems: parsed.problems,
            unsafe_reasons,
        });
    }
    (files, errors)
}

/// sshd's `secure_path`: the file and every directory above it up to the home directory (or
/// `/`) must be owned by root or the account and not writable by others; group write is
/// allowed only when the group's sole member is the owner (Debian's user-private-group patch).
fn strict_modes(
    root: &HostRoot,
    path: &str,
    owner: &Owner<'_>,
    private_groups: &BTreeMap<u32, u32>,
    group_names: &BTreeMap<u32, String>,
) -> Vec<String> {
    let mut reasons = Vec::new();
    let mut current = path.to_string();
    for _ in 0..64 {
        match root.metadata(&current) {
            Ok(meta) => {
                let what = if current == path { "file" } else { "directory" };
                let file_uid = meta.uid();
                let mode = meta.mode();
                if owner.judge_owners && file_uid != 0 && file_uid != owner.uid {
                    reasons.push(format!(
                        "{current}: {what} owned by uid {file_uid}, not by {} or root",
                        owner.name
                    ));
                }
                if mode & 0o002 != 0 {
                    reasons.push(format!(
                        "{current}: {what} writable by others ({:04o})",
                        mode & 0o7777
                    ));
                }
                if mode & 0o020 != 0 && private_groups.get(&meta.gid()) != Some(&file_uid) {
                    let group = group_names
                        .get(&meta.gid())
                        .cloned()
                        .unwrap_or_else(|| format!("gid {}", meta.gid()));
                    reasons.push(format!(
                        "{current}: {what} writable by group {group} ({:04o})",
                        mode & 0o7777
                    ));
                }
            }
            Err(e) => reasons.push(format!("{current}: cannot check: {e}")),
        }
        if current == owner.home || current == "/" {
            break;
        }
        current = match current.rfind('/') {
            Some(0) | None => "/".to_string(),
            Some(i) => current[..i].to_string(),
        };
    }
    reasons
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    // Public keys made with ssh-keygen 9.2 (Debian 12); the expected fingerprints are what
    // `ssh-keygen -lf` printed for them.
    pub(crate) const ED25519: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIItwt7cCVCeQLlJnb3qjKwwrtQ0rkN7gmuE9LsfgCeof alice@ed25519";
    const ED25519_FP: &str = "SHA256:vRftemU7rck9BxVC0+t59m6fcTAJ9zkqjHv1Ahf2EGk";
    pub(crate) const RSA1024: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDAhjZX5soLak2PLiv9P95W35wZeC1f97dAFmmb5ks4YD4ZgMF0c+hEynTkGal94LKH11NdZYg/LsqfIE+GH20iqzPYXBwPQpWVC36/ZLGN3RA408AP+KVJVnDROE9jnhgDb7E1zvZRIxl3nfLvuoGKjtjCqyzhl+dpNOv0U4h+2Q== root@rsa1024";
    const RSA1024_FP: &str = "SHA256:mdJIHEjbrGOzJQGV+fyfRnrIjcJxHiDO4pbe4jiaFJU";
    const RSA2048: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC/EgXCaTn/6C/7+E/iolEafh6iAZaw3D9tTvWgKrZXM5ROP2iNZS2V5BLyt2tMVMncDct3s065e79tAIWxTIEKPAnTOMCotogXRZW8vhoODEQc/8jk89SbhjLuysrhUzRoDc+KXmp19qBQw5upJgihpGDsnjWrBkwgfzujU7ljDt4IwI7iY53HUwvKulxsb403AqdWZeo/eOLkZUPsnKatQ3CHgnL8VvNHxR26YmPdgHK1oVJyac5OKa9X06PpKgTU66k1158xLYJGrhqoitStsu/WZlo11BI2VSib5TOmU4NEtQ7TWMdca0Q1cdvMRUCBq5/Upshl+AEemDSnqq/L bob@rsa2048";
    pub(crate) const DSA: &str = "ssh-dss AAAAB3NzaC1kc3MAAACBAMf8m3BGVe2Qj+dPTJEV6THGBu4Ka8YwuHjSFO13GvrHMb7DQNxRukIT33fdj+bN9nhBx7EQTvlaryMpYWHo1aQ8m+GA42CAzb0b6teWLesjvuX0Mf40EEC01qC2WPGAuRupA3LTHEaT9lmJAdCymbPT/57Svpa3cJiHTmpGevqvAAAAFQCf2od12FdUKp4G9l53u5J+dTESxQAAAIAkfJO79lZvr53yGdqXFx+TTkemEWyPpVfHbxUscOtGRG9MTlhXJLI4D/O3Q15hWwX7zrnRJMOHzhs+gAnP3pXS4VQajHDb42QqGGcVrDYGrQIjiO6MZ89UmuTXQXNbPkPfLbSLFtggRzosXC76Fa1+cZ1S7uSzfo6/bP2fDTXxigAAAIEAnRPAMPn5KPttyr4A1If2B450uf3A4ORtn1rY33mBkH4tZmAsjiTSWpVHj5V2zdbKwbQNOqUC3ezGI1kbeHhL7LK5HI3SK8kEercpAeJSWMGjvX3iteCw5dT3vxXsqKAUjCa5u+HubN4fTiDgtmx5YW9B23g4Ny47lLYmg6xzI9s= dave@dsa";
    const DSA_FP: &str = "SHA256:K5lQmqx8/Aek9LHMJb+aFnGgwEDOYc9RQtXQ6nOA00I";
    const ECDSA384: &str = "ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBMI5gTTbpHpn0AIbmE7pRrjNbvIQFM7//O0ljrxSVfh8j3tHF5uGliGqY1eVrkoLzDyLGY2q9Kc1SvoKO15OhlLopf5LHmJWngeVPdRpWydx1ulMjuAHo8fFDWM5bbTJRA== alice@ecdsa384";
    const ECDSA384_FP: &str = "SHA256:vd7KjRgAfIaRKf1AoGq+swB1tlb+koj6BQZzCFlw47E";
    const RSA3072_CERT: &str = "ssh-rsa-cert-v01@openssh.com AAAAHHNzaC1yc2EtY2VydC12MDFAb3BlbnNzaC5jb20AAAAgfxNUO+TuLUm1CVrh1rTLWx34zhAQqkd5sPRl8ZjdALMAAAADAQABAAABgQDKSU6L9ijGggIiyskUtOQPOq4Xm1AbbOtGKMcpFk8C92PdZQV3wPpj/PnCFSMrPsuANL15Ay/ddVkpwh4MRiHicDlnw3K0EEJhcbqpaNLZITK1R2FIl09+tFpjDouKTsj/KFUS+NQF/Bu45c7Z7VD1ckAcozZKsQ1ql28PUdyS03JKGth3nDX7ZLamggWSd+UIsjgwNNoR/7zxfxTNkcYwylCyTAxyzxpUnkfZSiNtAqJFhS8xOv3SSTJWGoguv8tZ8CIGORRfqJ+AjJi/pbQaJDOQFXhFGY9eLbF0DIC9JxsCmVa0U3BTLoNi0kbjsopuUOoE6673+y5ZFUV5KDgZeT05+ep5+xwDbiP7T15Zhi39Y/Jv9OqsHqMhDz2LzbWv2f7mNUNwlETc4V9YsHqLe3eAAynz5tucvYv4Rn96Mjb6PHpDijw3r+j0JX3GZXAkdhT+nYKYyJ9CnD6prfos8c14/HbxShuvZ/p/QFRUEqrRP8XJs1221tMqIKNCfpkAAAAAAAAAAAAAAAEAAAAIdGVzdGNlcnQAAAAIAAAABGRhdmUAAAAAawqqlAAAAABs6o0EAAAAAAAAAIIAAAAVcGVybWl0LVgxMS1mb3J3YXJkaW5nAAAAAAAAABdwZXJtaXQtYWdlbnQtZm9yd2FyZGluZwAAAAAAAAAWcGVybWl0LXBvcnQtZm9yd2FyZGluZwAAAAAAAAAKcGVybWl0LXB0eQAAAAAAAAAOcGVybWl0LXVzZXItcmMAAAAAAAAAAAAAADMAAAALc3NoLWVkMjU1MTkAAAAgi3C3twJUJ5AuUmdveqMrDCu1DSuQ3uCa4T0ux+AJ6h8AAABTAAAAC3NzaC1lZDI1NTE5AAAAQECnUltMuPUSeL4gKmAC9MOnHZr6DF0Gkdy6usw1j0RPkR7EjYipCPUKIRzuoS2iM+GgYKDl6kMbXuArIrCtIA8= dave@rsa3072";
    const RSA3072_FP: &str = "SHA256:UTMaFem7Npe7sJQbplU8ZmpAbAuBFtrvVt+MiONAdxE";
    // Hand-built (no security key here); ssh-keygen -lf accepts it and prints this fingerprint.
    const SK_ED25519: &str = "sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tAAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4fAAAABHNzaDo= yubikey@sk";
    const SK_ED25519_FP: &str = "SHA256:/p0CbeE3dk2SyW1OXXsThGc12ezDVD8eGw2/vtztDfk";

    fn one(line: &str) -> AuthorizedKey {
        let parsed = parse_authorized_keys(line);
        assert!(parsed.problems.is_empty(), "{line}: {:?}", parsed.problems);
        assert_eq!(parsed.entries.len(), 1);
        parsed.entries.into_iter().next().unwrap()
    }

    fn problem(line: &str) -> String {
        let parsed = parse_authorized_keys(line);
        assert!(parsed.entries.is_empty(), "{line} parsed as a key");
        assert_eq!(parsed.problems.len(), 1, "{line}");
        parsed.problems[0].message.clone()
    }

    #[test]
    fn keys_get_their_type_size_and_ssh_keygen_fingerprint() {
        let key = one(ED25519);
        assert_eq!(
            (key.key_type.as_str(), key.bits),
            ("ssh-ed25519", Some(256))
        );
        assert_eq!(key.fingerprint, ED25519_FP);
        assert_eq!(key.comment, "alice@ed25519");
        assert_eq!(key.weakness, None);

        let key = one(RSA1024);
        assert_eq!(
            (key.bits, key.fingerprint.as_str()),
            (Some(1024), RSA1024_FP)
        );
        assert_eq!(
            key.weakness.as_deref(),
            Some("RSA key of 1024 bits, shorter than 2048")
        );

        let key = one(RSA2048);
        assert_eq!((key.bits, key.weakness), (Some(2048), None));

        let key = one(DSA);
        assert_eq!((key.bits, key.fingerprint.as_str()), (Some(1024), DSA_FP));
        assert!(key.weakness.unwrap_or_default().starts_with("DSA key"));

        let key = one(ECDSA384);
        assert_eq!(
            (key.bits, key.fingerprint.as_str()),
            (Some(384), ECDSA384_FP)
        );

        // A certificate is fingerprinted over the certified key, as ssh-keygen -l does.
        let key = one(RSA3072_CERT);
        assert_eq!(key.key_type, "ssh-rsa-cert-v01@openssh.com");
        assert_eq!(
            (key.bits, key.fingerprint.as_str()),
            (Some(3072), RSA3072_FP)
        );

        let key = one(SK_ED25519);
        assert_eq!(
            (key.bits, key.fingerprint.as_str()),
            (Some(256), SK_ED25519_FP)
        );
    }

    #[test]
    fn options_with_quotes_commas_and_escapes() {
        let line = format!(
            "restrict,from=\"10.0.0.1,192.168.0.0/16\",command=\"echo \\\"hi there\\\"\",Expiry-Time=\"20300101\" {ED25519}"
        );
        let key = one(&line);
        let names: Vec<&str> = key.options.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["restrict", "from", "command", "expiry-time"]);
        assert_eq!(
            key.option("from").and_then(|o| o.value.as_deref()),
            Some("10.0.0.1,192.168.0.0/16")
        );
        assert_eq!(
            key.option("command").and_then(|o| o.value.as_deref()),
            Some("echo \"hi there\"")
        );
        assert_eq!(key.fingerprint, ED25519_FP);
        // The RSA signature names are key types too.
        let rsa_sha2 = RSA2048.replacen("ssh-rsa", "rsa-sha2-512", 1);
        assert_eq!(one(&rsa_sha2).bits, Some(2048));
    }

    #[test]
    fn files_with_comments_crlf_and_blank_lines() {
        let text = format!("# keys for alice\r\n\r\n   {ED25519}\r\n\t{RSA2048}\n");
        let parsed = parse_authorized_keys(&text);
        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
        let lines: Vec<usize> = parsed.entries.iter().map(|k| k.line).collect();
        assert_eq!(lines, [3, 4]);
        assert_eq!(parsed.entries[0].comment, "alice@ed25519");
    }

    #[test]
    fn lines_sshd_would_skip_are_problems() {
        let blob = ED25519.split(' ').nth(1).unwrap_or_default();
        let rsa_blob = RSA2048.split(' ').nth(1).unwrap_or_default();
        assert!(problem(&format!("ssh-ed25519 {rsa_blob}")).contains("key data is \"ssh-rsa\""));
        assert!(problem("ssh-ed25519 AAAA!!!! x").contains("base64"));
        assert!(problem("ssh-ed25519 AAAAC3NzaC1lZDI1NTE x").contains("base64"));
        assert!(problem("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA x").contains("truncated"));
        assert!(problem(&format!("ssh-foo {blob}")).contains("unknown key type"));
        assert!(problem("no-pty").contains("options without a key"));
        assert!(problem(&format!("command=\"oops {ED25519}")).contains("unterminated"));
        assert!(problem(&format!("no-pty,,restrict {ED25519}")).contains("empty key option"));
        assert!(problem(&format!("no pty {ED25519}")).contains("unknown key type"));
        assert!(problem("\u{0}\u{1}\u{fffd} \u{7f}").contains("sshd ignores this line"));
        assert!(problem("ssh-ed25519").contains("base64"));
        // A plain key with bytes after its last field.
        let mut raw = base64_decode(blob).unwrap_or_default();
        raw.extend_from_slice(&[0, 0, 0, 0]);
        let padded = format!("ssh-ed25519 {}", base64_standard(&raw));
        assert!(problem(&padded).contains("trailing bytes"));
    }

    fn base64_standard(bytes: &[u8]) -> String {
        let mut s = base64_encode_unpadded(bytes);
        while !s.len().is_multiple_of(4) {
            s.push('=');
        }
        s
    }

    #[test]
    fn base64_round_trips_and_is_strict() {
        assert_eq!(base64_decode("aGVsbG8="), Some(b"hello".to_vec()));
        assert_eq!(base64_decode("aGVsbG8h"), Some(b"hello!".to_vec()));
        assert_eq!(base64_decode("aGk="), Some(b"hi".to_vec()));
        assert_eq!(base64_decode("aA=="), Some(b"h".to_vec()));
        for bad in [
            "",
            "aGVsbG8",
            "aGV=bG8=",
            "a===",
            "aB==",
            "aGk*",
            "aGVsbG8=aGk=",
        ] {
            assert_eq!(base64_decode(bad), None, "{bad:?}");
        }
        assert_eq!(base64_encode_unpadded(b"hello"), "aGVsbG8");
        assert_eq!(base64_encode_unpadded(b"hi!"), "aGkh");
        assert_eq!(base64_encode_unpadded(b""), "");
    }

    #[test]
    fn bit_lengths_ignore_leading_zero_bytes() {
        assert_eq!(bit_length(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(bit_length(&[0x01]), 1);
        assert_eq!(bit_length(&[0x00, 0x00]), 0);
        assert_eq!(bit_length(&[]), 0);
    }
}
