//! The durable on-disk queue of reports the collector has not acknowledged yet.
//!
//! One file per report (`<seq>.vgs`): a header with magic, sequence number, payload length and
//! CRC-32, then the gzip-compressed report. A record is written to a temporary file, fsynced,
//! renamed into place and the directory fsynced before `append` returns; it is deleted only
//! when the collector acknowledges it (`ack`) or refuses it for good (`reject`, which moves it
//! to `rejected/` for a person to inspect, never silently).
//!
//! Bounds: at most `max_reports` records and `max_bytes` bytes. When a new report would exceed
//! them, the *oldest* records are discarded to make room (the newest evidence is the most
//! useful to the ISMS) and the discards are counted in `dropped` — a durable counter the agent
//! sends with every report (`spool_dropped_total`), so evidence gaps are visible at the
//! collector. A record that fails its checksum on start-up is moved to `corrupt/` and counted.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::state::{ensure_private_dir, sync_dir, write_atomic};

const MAGIC: &[u8; 4] = b"VGS1";
const HEADER_LEN: usize = 4 + 8 + 4 + 4;
const EXTENSION: &str = "vgs";

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("spool record {path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("spool has no record with sequence number {0}")]
    Missing(u64),
    #[error("a report of {size} bytes is larger than the whole spool ({max_bytes} bytes)")]
    TooLarge { size: u64, max_bytes: u64 },
}

/// Spool bounds.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_reports: u64,
    pub max_bytes: u64,
}

/// The spool directory and its in-memory index.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    limits: Limits,
    /// seq → record size in bytes.
    records: BTreeMap<u64, u64>,
    dropped_total: u64,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Encodes one record.
fn encode(seq: u64, payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(HEADER_LEN + payload.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&seq.to_be_bytes());
    bytes.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    bytes.extend_from_slice(&crc32fast::hash(payload).to_be_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// Decodes one record, checking magic, length, sequence number and checksum.
fn decode(expected_seq: u64, bytes: &[u8]) -> Result<Vec<u8>, String> {
    if bytes.len() < HEADER_LEN {
        return Err(format!("{} bytes is shorter than the header", bytes.len()));
    }
    if &bytes[..4] != MAGIC {
        return Err("bad magic".into());
    }
    let field = |range: std::ops::Range<usize>| -> [u8; 8] {
        let mut out = [0u8; 8];
        let slice = &bytes[range];
        out[8 - slice.len()..].copy_from_slice(slice);
        out
    };
    let seq = u64::from_be_bytes(field(4..12));
    let len = u64::from_be_bytes(field(12..16)) as usize;
    let crc = u64::from_be_bytes(field(16..20)) as u32;
    if seq != expected_seq {
        return Err(format!(
            "holds sequence number {seq}, file name says {expected_seq}"
        ));
    }
    let payload = &bytes[HEADER_LEN..];
    if payload.len() != len {
        return Err(format!(
            "payload is {} bytes, header says {len}",
            payload.len()
        ));
    }
    if crc32fast::hash(payload) != crc {
        return Err("checksum mismatch".into());
    }
    Ok(payload.to_vec())
}

impl Spool {
    /// Opens the spool, removing leftovers of interrupted writes and quarantining corrupt
    /// records.
    pub fn open(dir: &Path, limits: Limits) -> Result<Self, SpoolError> {
        ensure_private_dir(dir).map_err(|e| SpoolError::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let mut spool = Spool {
            dir: dir.to_path_buf(),
            limits,
            records: BTreeMap::new(),
            dropped_total: 0,
        };
        spool.dropped_total = spool.read_counter()?;
        for entry in fs::read_dir(dir).map_err(io_err(dir))? {
            let entry = entry.map_err(io_err(dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.starts_with(".tmp-") {
                // An append that never reached its rename: it was never reported as spooled.
                fs::remove_file(&path).map_err(io_err(&path))?;
                continue;
            }
            let Some(seq) = name
                .strip_suffix(&format!(".{EXTENSION}"))
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            let bytes = fs::read(&path).map_err(io_err(&path))?;
            match decode(seq, &bytes) {
                Ok(_) => {
                    spool.records.insert(seq, bytes.len() as u64);
                }
                Err(reason) => {
                    tracing::error!(path = %path.display(), %reason, "corrupt spool record quarantined");
                    spool.quarantine(&path, "corrupt")?;
                    spool.dropped_total += 1;
                    spool.write_counter()?;
                }
            }
        }
        Ok(spool)
    }

    fn counter_path(&self) -> PathBuf {
        self.dir.join("dropped")
    }

    fn read_counter(&self) -> Result<u64, SpoolError> {
        let path = self.counter_path();
        match fs::read_to_string(&path) {
            Ok(text) => text.trim().parse().map_err(|_| SpoolError::Corrupt {
                path: path.clone(),
                reason: format!("expected a number, found {:?}", text.trim()),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    fn write_counter(&self) -> Result<(), SpoolError> {
        let path = self.counter_path();
        write_atomic(&path, format!("{}\n", self.dropped_total).as_bytes(), 0o600)
            .map_err(io_err(&path))
    }

    fn record_path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}.{EXTENSION}"))
    }

    fn quarantine(&self, path: &Path, folder: &str) -> Result<PathBuf, SpoolError> {
        let target_dir = self.dir.join(folder);
        fs::create_dir_all(&target_dir).map_err(io_err(&target_dir))?;
        let target = target_dir.join(path.file_name().unwrap_or_default());
        fs::rename(path, &target).map_err(io_err(path))?;
        sync_dir(&self.dir).map_err(io_err(&self.dir))?;
        Ok(target)
    }

    /// Stores a report durably. Returns the sequence numbers discarded to make room.
    pub fn append(&mut self, seq: u64, payload: &[u8]) -> Result<Vec<u64>, SpoolError> {
        let record = encode(seq, payload);
        let size = record.len() as u64;
        if size > self.limits.max_bytes {
            return Err(SpoolError::TooLarge {
                size,
                max_bytes: self.limits.max_bytes,
            });
        }
        let mut dropped = Vec::new();
        while !self.records.is_empty()
            && (self.records.len() as u64 + 1 > self.limits.max_reports
                || self.bytes() + size > self.limits.max_bytes)
        {
            let Some((&oldest, _)) = self.records.iter().next() else {
                break;
            };
            let path = self.record_path(oldest);
            fs::remove_file(&path).map_err(io_err(&path))?;
            self.records.remove(&oldest);
            dropped.push(oldest);
        }
        if !dropped.is_empty() {
            self.dropped_total += dropped.len() as u64;
            self.write_counter()?;
            tracing::warn!(
                discarded = dropped.len(),
                dropped_total = self.dropped_total,
                "spool full: oldest reports discarded"
            );
        }
        let path = self.record_path(seq);
        write_atomic(&path, &record, 0o600).map_err(io_err(&path))?;
        self.records.insert(seq, size);
        Ok(dropped)
    }

    /// The oldest record not yet acknowledged.
    pub fn oldest(&self) -> Option<u64> {
        self.records.keys().next().copied()
    }

    /// The payload of a record, checksum verified.
    pub fn read(&self, seq: u64) -> Result<Vec<u8>, SpoolError> {
        if !self.records.contains_key(&seq) {
            return Err(SpoolError::Missing(seq));
        }
        let path = self.record_path(seq);
        let bytes = fs::read(&path).map_err(io_err(&path))?;
        decode(seq, &bytes).map_err(|reason| SpoolError::Corrupt { path, reason })
    }

    /// The collector acknowledged the record: delete it.
    pub fn ack(&mut self, seq: u64) -> Result<(), SpoolError> {
        if self.records.remove(&seq).is_none() {
            return Ok(());
        }
        let path = self.record_path(seq);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&path)(e)),
        }
        sync_dir(&self.dir).map_err(io_err(&self.dir))
    }

    /// The collector refused the record for good: keep it under `rejected/` with the reason.
    pub fn reject(&mut self, seq: u64, reason: &str) -> Result<PathBuf, SpoolError> {
        self.records.remove(&seq);
        let path = self.record_path(seq);
        let target = self.quarantine(&path, "rejected")?;
        let note = target.with_extension("reason");
        write_atomic(&note, reason.as_bytes(), 0o600).map_err(io_err(&note))?;
        Ok(target)
    }

    /// Moves a record that turned out unreadable to `corrupt/` and counts it as dropped.
    pub fn quarantine_corrupt(&mut self, seq: u64) -> Result<(), SpoolError> {
        self.records.remove(&seq);
        let path = self.record_path(seq);
        self.quarantine(&path, "corrupt")?;
        self.dropped_total += 1;
        self.write_counter()
    }

    /// Records waiting for acknowledgement.
    pub fn pending(&self) -> u64 {
        self.records.len() as u64
    }

    /// Bytes on disk of the waiting records.
    pub fn bytes(&self) -> u64 {
        self.records.values().sum()
    }

    /// Reports discarded since the spool was created (full spool or corruption).
    pub fn dropped_total(&self) -> u64 {
        self.dropped_total
    }

    /// The highest sequence number present, if any.
    pub fn newest(&self) -> Option<u64> {
        self.records.keys().next_back().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOMY: Limits = Limits {
        max_reports: 100,
        max_bytes: 1 << 20,
    };

    #[test]
    fn records_survive_reopening_in_order_until_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), ROOMY).unwrap();
        spool.append(2, b"second").unwrap();
        spool.append(1, b"first").unwrap();
        spool.append(3, b"third").unwrap();
        drop(spool);
        let mut spool = Spool::open(dir.path(), ROOMY).unwrap();
        assert_eq!(spool.pending(), 3);
        assert_eq!(spool.oldest(), Some(1));
        assert_eq!(spool.read(1).unwrap(), b"first");
        spool.ack(1).unwrap();
        assert_eq!(spool.oldest(), Some(2));
        drop(spool);
        let spool = Spool::open(dir.path(), ROOMY).unwrap();
        assert_eq!(spool.pending(), 2);
        assert_eq!(spool.read(3).unwrap(), b"third");
    }

    #[test]
    fn a_flipped_byte_is_quarantined_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), ROOMY).unwrap();
        spool.append(1, b"good").unwrap();
        spool.append(2, b"will rot").unwrap();
        let path = spool.record_path(2);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        fs::write(&path, bytes).unwrap();
        // A half-written temporary file from a crash is cleaned up too.
        fs::write(dir.path().join(".tmp-00000000000000000003.vgs-1"), b"VGS1").unwrap();
        drop(spool);
        let spool = Spool::open(dir.path(), ROOMY).unwrap();
        assert_eq!(spool.pending(), 1);
        assert_eq!(spool.dropped_total(), 1);
        assert!(
            dir.path()
                .join("corrupt")
                .join("00000000000000000002.vgs")
                .exists()
        );
        assert!(!dir.path().join(".tmp-00000000000000000003.vgs-1").exists());
    }

    #[test]
    fn a_full_spool_discards_the_oldest_and_counts_durably() {
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits {
            max_reports: 2,
            max_bytes: 1 << 20,
        };
        let mut spool = Spool::open(dir.path(), limits).unwrap();
        assert!(spool.append(1, b"a").unwrap().is_empty());
        assert!(spool.append(2, b"b").unwrap().is_empty());
        assert_eq!(spool.append(3, b"c").unwrap(), [1]);
        assert_eq!(spool.oldest(), Some(2));
        drop(spool);
        let spool = Spool::open(dir.path(), limits).unwrap();
        assert_eq!(spool.dropped_total(), 1);
        assert_eq!(spool.pending(), 2);
    }

    #[test]
    fn byte_bound_applies_too() {
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits {
            max_reports: 100,
            max_bytes: 100,
        };
        let mut spool = Spool::open(dir.path(), limits).unwrap();
        spool.append(1, &[0u8; 40]).unwrap();
        assert_eq!(spool.append(2, &[0u8; 40]).unwrap(), [1]);
        assert!(matches!(
            spool.append(3, &[0u8; 200]),
            Err(SpoolError::TooLarge { .. })
        ));
        assert_eq!(spool.pending(), 1);
    }

    #[test]
    fn rejected_records_are_kept_with_their_reason() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), ROOMY).unwrap();
        spool.append(7, b"x").unwrap();
        let kept = spool.reject(7, "422: results[0].check: bad id").unwrap();
        assert!(kept.exists());
        assert_eq!(
            fs::read_to_string(kept.with_extension("reason")).unwrap(),
            "422: results[0].check: bad id"
        );
        assert_eq!(spool.pending(), 0);
        drop(spool);
        assert_eq!(Spool::open(dir.path(), ROOMY).unwrap().pending(), 0);
    }

    #[test]
    fn decode_refuses_truncation_and_mismatched_names() {
        let record = encode(5, b"payload");
        assert_eq!(decode(5, &record).unwrap(), b"payload");
        assert!(decode(6, &record).is_err());
        assert!(decode(5, &record[..record.len() - 1]).is_err());
        assert!(decode(5, &record[..3]).is_err());
    }
}
