//! `manifest.json`: what a bundle holds (every file with its SHA-256 and size), for which
//! period, made when and by what; and `export verify`, which re-checks a bundle against it.
//!
//! The format is versioned (`format_version`): later versions may add fields (signatures, a
//! hash chain) and readers ignore fields they do not know; a reader refuses a newer major
//! version than it understands.

use std::fmt;
use std::io::{Read, Seek};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Name of the manifest inside the bundle. It lists every other file, never itself.
pub const MANIFEST: &str = "manifest.json";
/// The collector's ed25519 signature (hex) over the manifest's bytes; not listed either.
pub const MANIFEST_SIG: &str = "manifest.sig";
/// Value of `format`.
pub const FORMAT: &str = "vigil-evidence-bundle";
/// The manifest version this build writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    /// Lowercase hex SHA-256 of the file's (uncompressed) bytes.
    pub sha256: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeriodJson {
    /// Inclusive start.
    pub from: DateTime<Utc>,
    /// Exclusive end.
    pub to: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub period: PeriodJson,
    pub generated_at: DateTime<Utc>,
    pub collector_version: String,
    /// `sha256:` and the digest of the ISMS pack the bundle was judged against (see
    /// `export::pack_digest`).
    pub isms_pack_digest: String,
    /// Hex ed25519 public key of the collector that signed `manifest.sig` (absent in bundles
    /// made before signing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collector_key: Option<String>,
    pub files: Vec<FileEntry>,
}

/// One thing wrong with a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The zip itself cannot be read.
    Unreadable(String),
    /// `manifest.json` is missing, not JSON, or of an unknown format.
    BadManifest(String),
    /// A file's bytes differ from what the manifest says.
    Modified {
        path: String,
        expected_sha256: String,
        actual_sha256: String,
        expected_size: u64,
        actual_size: u64,
    },
    /// A file the manifest lists is not in the bundle.
    Missing { path: String },
    /// A file in the bundle that the manifest does not list.
    Added { path: String },
    /// A file whose bytes cannot be read (its zip checksum fails, for one).
    Corrupt { path: String, error: String },
    /// The manifest lists a path twice, or the zip holds a name twice.
    Duplicate { path: String },
    /// The manifest's signature is missing, invalid, or by another key than expected.
    ManifestSignature(String),
    /// A signed report whose signature, key or body does not check out.
    ReportSignature(String),
    /// A broken link in a host's hash chain.
    Chain(String),
    /// An evidence record that does not match a signed report (edited or inserted), or one a
    /// signed report holds that is missing (deleted).
    Evidence(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Unreadable(e) => write!(f, "the bundle is not a readable zip: {e}"),
            Problem::BadManifest(e) => write!(f, "{MANIFEST}: {e}"),
            Problem::Modified {
                path,
                expected_sha256,
                actual_sha256,
                expected_size,
                actual_size,
            } => write!(
                f,
                "{path}: modified (sha256 {actual_sha256}, {actual_size} bytes; the manifest \
                 says sha256 {expected_sha256}, {expected_size} bytes)"
            ),
            Problem::Missing { path } => {
                write!(
                    f,
                    "{path}: listed in the manifest but missing from the bundle"
                )
            }
            Problem::Added { path } => {
                write!(
                    f,
                    "{path}: in the bundle but not listed in the manifest (added)"
                )
            }
            Problem::Corrupt { path, error } => write!(f, "{path}: unreadable: {error}"),
            Problem::Duplicate { path } => write!(f, "{path}: appears more than once"),
            Problem::ManifestSignature(e) => write!(f, "{MANIFEST_SIG}: {e}"),
            Problem::ReportSignature(e) => write!(f, "signed report: {e}"),
            Problem::Chain(e) => write!(f, "hash chain: {e}"),
            Problem::Evidence(e) => write!(f, "evidence: {e}"),
        }
    }
}

/// What `export verify` found.
#[derive(Debug, Clone, PartialEq)]
pub struct Verification {
    pub manifest: Option<Manifest>,
    /// Files whose hash and size match.
    pub verified: usize,
    pub problems: Vec<Problem>,
    /// Fingerprint of the collector key whose signature over the manifest verified.
    pub collector_key: Option<String>,
    /// Signed reports whose agent signature verified, and evidence records checked against
    /// them.
    pub signed_reports: usize,
    pub evidence_checked: usize,
}

impl Verification {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// The report printed by `export verify`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Some(m) = &self.manifest {
            out.push_str(&format!(
                "bundle: period {} .. {}, generated {} by vigil-collector {}, ISMS pack {}\n",
                m.period.from.to_rfc3339(),
                m.period.to.to_rfc3339(),
                m.generated_at.to_rfc3339(),
                m.collector_version,
                m.isms_pack_digest
            ));
        }
        match &self.collector_key {
            Some(fp) => out.push_str(&format!("signed by collector key {fp}\n")),
            None => out.push_str("collector signature: not verified\n"),
        }
        out.push_str(&format!(
            "{} signed reports verified, {} evidence records match them\n",
            self.signed_reports, self.evidence_checked
        ));
        for p in &self.problems {
            out.push_str(&format!("FAIL {p}\n"));
        }
        if self.is_ok() {
            out.push_str(&format!("ok: {} files match the manifest\n", self.verified));
        } else {
            out.push_str(&format!(
                "{} problem(s); {} files match the manifest\n",
                self.problems.len(),
                self.verified
            ));
        }
        out
    }
}

fn hash_entry(reader: &mut impl Read) -> std::io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// Re-checks every file of a bundle against its manifest: hashes, sizes, and that no file was
/// added or removed. Reads one file at a time; never holds a file in memory.
pub fn verify<R: Read + Seek>(bundle: R) -> Verification {
    verify_with(bundle, None)
}

/// [`verify`], then the tamper evidence: the manifest's signature (by `expect_key` when given:
/// hex public key or `SHA256:` fingerprint), the agents' signatures, the hash chains, and every
/// evidence record against the signed reports (see `super::signed`).
pub fn verify_with<R: Read + Seek>(bundle: R, expect_key: Option<&str>) -> Verification {
    let mut result = Verification {
        manifest: None,
        verified: 0,
        problems: Vec::new(),
        collector_key: None,
        signed_reports: 0,
        evidence_checked: 0,
    };
    let mut archive = match zip::ZipArchive::new(bundle) {
        Ok(a) => a,
        Err(e) => {
            result.problems.push(Problem::Unreadable(e.to_string()));
            return result;
        }
    };
    let mut manifest_bytes = Vec::new();
    let manifest: Manifest = match archive.by_name(MANIFEST) {
        Ok(mut file) => {
            let mut text = Vec::new();
            if let Err(e) = file.read_to_end(&mut text) {
                result.problems.push(Problem::BadManifest(e.to_string()));
                return result;
            }
            manifest_bytes.clone_from(&text);
            match serde_json::from_slice(&text) {
                Ok(m) => m,
                Err(e) => {
                    result
                        .problems
                        .push(Problem::BadManifest(format!("not a valid manifest: {e}")));
                    return result;
                }
            }
        }
        Err(_) => {
            result
                .problems
                .push(Problem::BadManifest("missing from the bundle".into()));
            return result;
        }
    };
    let bad_format = if manifest.format != FORMAT {
        Some(format!("format {:?}, expected {FORMAT:?}", manifest.format))
    } else if manifest.format_version > FORMAT_VERSION || manifest.format_version == 0 {
        Some(format!(
            "format_version {} is not one this collector reads (1..={FORMAT_VERSION}); use a \
             newer vigil-collector",
            manifest.format_version
        ))
    } else {
        None
    };
    if let Some(why) = bad_format {
        result.problems.push(Problem::BadManifest(why));
        result.manifest = Some(manifest);
        return result;
    }
    let mut expected = std::collections::BTreeMap::new();
    for f in &manifest.files {
        if f.path == MANIFEST
            || f.path == MANIFEST_SIG
            || expected.insert(f.path.clone(), f.clone()).is_some()
        {
            result.problems.push(Problem::Duplicate {
                path: f.path.clone(),
            });
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..archive.len() {
        let mut entry = match archive.by_index(i) {
            Ok(e) => e,
            Err(e) => {
                result.problems.push(Problem::Corrupt {
                    path: format!("entry #{i}"),
                    error: e.to_string(),
                });
                continue;
            }
        };
        let path = entry.name().to_string();
        if !seen.insert(path.clone()) {
            result.problems.push(Problem::Duplicate { path });
            continue;
        }
        if path == MANIFEST || path == MANIFEST_SIG {
            continue;
        }
        let Some(want) = expected.get(&path) else {
            result.problems.push(Problem::Added { path });
            continue;
        };
        match hash_entry(&mut entry) {
            Ok((sha256, size)) if sha256 == want.sha256 && size == want.size => {
                result.verified += 1;
            }
            Ok((sha256, size)) => result.problems.push(Problem::Modified {
                path,
                expected_sha256: want.sha256.clone(),
                actual_sha256: sha256,
                expected_size: want.size,
                actual_size: size,
            }),
            Err(e) => result.problems.push(Problem::Corrupt {
                path,
                error: e.to_string(),
            }),
        }
    }
    for path in expected.keys() {
        if !seen.contains(path) {
            result
                .problems
                .push(Problem::Missing { path: path.clone() });
        }
    }
    check_manifest_signature(
        &mut archive,
        &manifest,
        &manifest_bytes,
        expect_key,
        &mut result,
    );
    super::verify_signed::check(&mut archive, &manifest, &mut result);
    result.manifest = Some(manifest);
    result
}

fn check_manifest_signature<R: Read + Seek>(
    archive: &mut zip::ZipArchive<R>,
    manifest: &Manifest,
    bytes: &[u8],
    expect_key: Option<&str>,
    result: &mut Verification,
) {
    use vigil_shared::signing;
    let mut problem = |m: String| result.problems.push(Problem::ManifestSignature(m));
    let Some(key_hex) = &manifest.collector_key else {
        problem("the manifest names no collector key: the bundle is not signed".into());
        return;
    };
    let Ok(key) = signing::parse_public_key(key_hex) else {
        problem(format!(
            "collector_key {key_hex:?} is not an ed25519 public key"
        ));
        return;
    };
    let fingerprint = signing::fingerprint(&key);
    if let Some(expected) = expect_key {
        let expected = expected.trim();
        if expected != fingerprint && expected != signing::public_key_hex(&key) {
            problem(format!(
                "signed by collector key {fingerprint}, not by the expected {expected}"
            ));
            return;
        }
    }
    let mut text = String::new();
    match archive.by_name(MANIFEST_SIG) {
        Ok(mut f) => {
            if f.read_to_string(&mut text).is_err() {
                problem("unreadable".into());
                return;
            }
        }
        Err(_) => {
            problem("missing: the manifest is not signed".into());
            return;
        }
    }
    let Some(signature) = signing::parse_signature(&text) else {
        problem("not a hex ed25519 signature".into());
        return;
    };
    if signing::verify(&key, bytes, &signature).is_err() {
        problem(format!(
            "does not verify against collector key {fingerprint}: the manifest was changed"
        ));
        return;
    }
    result.collector_key = Some(fingerprint);
}
