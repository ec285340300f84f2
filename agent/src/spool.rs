//! The durable on-disk queue of reports the collector has not acknowledged yet.
//!
//! One file per report (`<seq>.vgs`): a header with magic, sequence number, the names of the
//! checks the report carries, payload length and a CRC-32 over names and payload, then the
//! gzip-compressed report. A record is written to a temporary file, fsynced, renamed into place
//! and the directory fsynced before `append` returns, so a crash at any moment leaves either
//! no record or a whole one (a leftover temporary file is removed on the next start); it is
//! deleted only when the collector acknowledges it (`ack`) or refuses it for good (`reject`,
//! which moves it to `rejected/` for a person to inspect, never silently).
//!
//! Why files and not append-only segments: reports are large (KiB to MiB) and rare (a few per
//! hour), so one inode and two fsyncs per report cost nothing, while a file gives what segments
//! must rebuild by hand — an atomic, never-torn record (rename), deletion of any record on
//! acknowledgement or compaction without rewriting a segment, and order by name.
//!
//! Bounds: at most `max_reports` records and `max_bytes` bytes. When a new report would exceed
//! them, the spool first *compacts*: it discards the oldest record whose every check also
//! appears in a newer record (the newest result of every check stays queued), counting it in
//! `compacted`. Only when no record can be compacted (every one holds some check's newest
//! result) is the oldest discarded and counted in `dropped`, a real evidence gap. Both counters
//! are durable and travel with every report (`agent.health`), so the collector sees why a
//! host's history has holes. A record that fails its checksum is moved to `corrupt/` and
//! counted as dropped.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::state::{ensure_private_dir, sync_dir, write_atomic};

/// Records of the first format (no check names); still read, never written.
const MAGIC_V1: &[u8; 4] = b"VGS1";
const MAGIC: &[u8; 4] = b"VGS2";
/// Magic, sequence number, payload length, CRC-32 (both formats); then, in VGS2, the length of
/// the check-name block.
const HEADER_V1_LEN: usize = 4 + 8 + 4 + 4;
const HEADER_LEN: usize = HEADER_V1_LEN + 4;
const EXTENSION: &str = "vgs";
/// Durable counter files in the spool directory.
const DROPPED: &str = "dropped";
const COMPACTED: &str = "compacted";
/// Longest check-name block accepted when reading (names are short; this bounds junk).
const MAX_NAMES_LEN: usize = 64 * 1024;

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

/// What the index knows about one record.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    size: u64,
    /// Names of the checks whose results the report carries; empty for VGS1 records, which
    /// are never compacted (nothing says what they hold).
    checks: Vec<String>,
}

/// What `append` had to discard to make room.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discarded {
    /// Superseded records (every check they held has a newer result queued).
    pub compacted: Vec<u64>,
    /// Records that held the newest result of some check.
    pub dropped: Vec<u64>,
}

/// The spool directory and its in-memory index.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    limits: Limits,
    records: BTreeMap<u64, Entry>,
    dropped_total: u64,
    compacted_total: u64,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Encodes one record.
fn encode(seq: u64, checks: &[String], payload: &[u8]) -> Vec<u8> {
    let names = checks.join("\n");
    let mut crc = crc32fast::Hasher::new();
    crc.update(names.as_bytes());
    crc.update(payload);
    let mut bytes = Vec::with_capacity(HEADER_LEN + names.len() + payload.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&seq.to_be_bytes());
    bytes.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    bytes.extend_from_slice(&crc.finalize().to_be_bytes());
    bytes.extend_from_slice(&(names.len() as u32).to_be_bytes());
    bytes.extend_from_slice(names.as_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// A decoded record: the check names and the payload.
#[derive(Debug, PartialEq, Eq)]
struct Decoded {
    checks: Vec<String>,
    payload: Vec<u8>,
}

/// Decodes one record, checking magic, lengths, sequence number and checksum.
fn decode(expected_seq: u64, bytes: &[u8]) -> Result<Decoded, String> {
    if bytes.len() < HEADER_V1_LEN {
        return Err(format!("{} bytes is shorter than the header", bytes.len()));
    }
    let v1 = &bytes[..4] == MAGIC_V1;
    if !v1 && &bytes[..4] != MAGIC {
        return Err("bad magic".into());
    }
    let u32_at = |at: usize| -> u32 {
        let mut out = [0u8; 4];
        out.copy_from_slice(&bytes[at..at + 4]);
        u32::from_be_bytes(out)
    };
    let mut seq_bytes = [0u8; 8];
    seq_bytes.copy_from_slice(&bytes[4..12]);
    let seq = u64::from_be_bytes(seq_bytes);
    let len = u32_at(12) as usize;
    let crc = u32_at(16);
    if seq != expected_seq {
        return Err(format!(
            "holds sequence number {seq}, file name says {expected_seq}"
        ));
    }
    let (names, payload) = if v1 {
        (&[][..], &bytes[HEADER_V1_LEN..])
    } else {
        if bytes.len() < HEADER_LEN {
            return Err(format!("{} bytes is shorter than the header", bytes.len()));
        }
        let names_len = u32_at(20) as usize;
        if names_len > MAX_NAMES_LEN || names_len > bytes.len() - HEADER_LEN {
            return Err(format!(
                "check-name block of {names_len} bytes does not fit"
            ));
        }
        bytes[HEADER_LEN..].split_at(names_len)
    };
    if payload.len() != len {
        return Err(format!(
            "payload is {} bytes, header says {len}",
            payload.len()
        ));
    }
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(names);
    hasher.update(payload);
    if hasher.finalize() != crc {
        return Err("checksum mismatch".into());
    }
    let names = std::str::from_utf8(names).map_err(|_| "check names are not UTF-8".to_string())?;
    Ok(Decoded {
        checks: names
            .split('\n')
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect(),
        payload: payload.to_vec(),
    })
}

/// What `status` shows about a spool, read without changing anything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub pending: u64,
    pub bytes: u64,
    pub dropped_total: u64,
    pub compacted_total: u64,
    pub rejected: u64,
}

impl Spool {
    /// Counts records and reads the counters of the spool in `dir` without opening it (no
    /// clean-up, no quarantine), so that it is safe beside a running service.
    pub fn inspect(dir: &Path) -> Summary {
        let count = |dir: &Path| -> (u64, u64) {
            let mut n = 0;
            let mut bytes = 0;
            if let Ok(entries) = fs::read_dir(dir) {
                for entry in entries.flatten() {
                    let name = entry.file_name();
                    let name = name.to_string_lossy();
                    if name.ends_with(&format!(".{EXTENSION}")) && !name.starts_with('.') {
                        n += 1;
                        bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
                    }
                }
            }
            (n, bytes)
        };
        let counter = |name: &str| {
            fs::read_to_string(dir.join(name))
                .ok()
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(0)
        };
        let (pending, bytes) = count(dir);
        Summary {
            pending,
            bytes,
            dropped_total: counter(DROPPED),
            compacted_total: counter(COMPACTED),
            rejected: count(&dir.join("rejected")).0,
        }
    }

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
            compacted_total: 0,
        };
        spool.dropped_total = spool.read_counter(DROPPED)?;
        spool.compacted_total = spool.read_counter(COMPACTED)?;
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
                Ok(decoded) => {
                    spool.records.insert(
                        seq,
                        Entry {
                            size: bytes.len() as u64,
                            checks: decoded.checks,
                        },
                    );
                }
                Err(reason) => {
                    tracing::error!(path = %path.display(), %reason, "corrupt spool record quarantined");
                    spool.quarantine(&path, "corrupt")?;
                    spool.dropped_total += 1;
                    spool.write_counter(DROPPED, spool.dropped_total)?;
                }
            }
        }
        Ok(spool)
    }

    fn read_counter(&self, name: &str) -> Result<u64, SpoolError> {
        let path = self.dir.join(name);
        match fs::read_to_string(&path) {
            Ok(text) => text.trim().parse().map_err(|_| SpoolError::Corrupt {
                path: path.clone(),
                reason: format!("expected a number, found {:?}", text.trim()),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    fn write_counter(&self, name: &str, value: u64) -> Result<(), SpoolError> {
        let path = self.dir.join(name);
        write_atomic(&path, format!("{value}\n").as_bytes(), 0o600).map_err(io_err(&path))
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

    /// Stores a report durably; `checks` names the checks whose results it carries. Returns
    /// what had to be discarded to make room (see the module documentation).
    pub fn append(
        &mut self,
        seq: u64,
        checks: &[String],
        payload: &[u8],
    ) -> Result<Discarded, SpoolError> {
        let record = encode(seq, checks, payload);
        let size = record.len() as u64;
        if size > self.limits.max_bytes {
            return Err(SpoolError::TooLarge {
                size,
                max_bytes: self.limits.max_bytes,
            });
        }
        let mut discarded = Discarded::default();
        while !self.records.is_empty()
            && (self.records.len() as u64 + 1 > self.limits.max_reports
                || self.bytes() + size > self.limits.max_bytes)
        {
            let (victim, superseded) = match self.superseded(checks) {
                Some(seq) => (seq, true),
                None => match self.records.keys().next() {
                    Some(&oldest) => (oldest, false),
                    None => break,
                },
            };
            let path = self.record_path(victim);
            fs::remove_file(&path).map_err(io_err(&path))?;
            self.records.remove(&victim);
            if superseded {
                discarded.compacted.push(victim);
            } else {
                discarded.dropped.push(victim);
            }
        }
        if !discarded.compacted.is_empty() {
            self.compacted_total += discarded.compacted.len() as u64;
            self.write_counter(COMPACTED, self.compacted_total)?;
            tracing::info!(
                compacted = discarded.compacted.len(),
                compacted_total = self.compacted_total,
                "spool full: superseded reports discarded (newest result of every check kept)"
            );
        }
        if !discarded.dropped.is_empty() {
            self.dropped_total += discarded.dropped.len() as u64;
            self.write_counter(DROPPED, self.dropped_total)?;
            tracing::warn!(
                discarded = discarded.dropped.len(),
                dropped_total = self.dropped_total,
                "spool full and nothing superseded: oldest reports discarded (evidence gap)"
            );
        }
        let path = self.record_path(seq);
        write_atomic(&path, &record, 0o600).map_err(io_err(&path))?;
        self.records.insert(
            seq,
            Entry {
                size,
                checks: checks.to_vec(),
            },
        );
        Ok(discarded)
    }

    /// The oldest record all of whose checks also appear in a newer record or in the report
    /// about to be appended (`incoming`).
    fn superseded(&self, incoming: &[String]) -> Option<u64> {
        let mut newer: std::collections::HashSet<&str> =
            incoming.iter().map(String::as_str).collect();
        let mut found = None;
        // Newest first: a record is superseded when everything it holds was seen already.
        for (&seq, entry) in self.records.iter().rev() {
            if !entry.checks.is_empty() && entry.checks.iter().all(|c| newer.contains(c.as_str())) {
                found = Some(seq);
            }
            newer.extend(entry.checks.iter().map(String::as_str));
        }
        found
    }

    /// Test support (see `service::Stall`): writes the first half of the record the way an
    /// interrupted `append` leaves it, makes it durable, and blocks the calling thread for
    /// good, so that a test can SIGKILL the process in the middle of a write.
    pub fn stall_mid_write(&self, seq: u64, checks: &[String], payload: &[u8]) {
        let record = encode(seq, checks, payload);
        let name = format!("{seq:020}.{EXTENSION}");
        let tmp = self.dir.join(format!(".tmp-{name}-{}", std::process::id()));
        if let Ok(mut file) = fs::File::create(&tmp) {
            use std::io::Write;
            let _ = file.write_all(&record[..record.len() / 2]);
            let _ = file.sync_all();
        }
        let _ = sync_dir(&self.dir);
        tracing::warn!(seq, path = %tmp.display(), "test stall in the middle of a spool write");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
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
        decode(seq, &bytes)
            .map(|d| d.payload)
            .map_err(|reason| SpoolError::Corrupt { path, reason })
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
        self.write_counter(DROPPED, self.dropped_total)
    }

    /// Records waiting for acknowledgement.
    pub fn pending(&self) -> u64 {
        self.records.len() as u64
    }

    /// Bytes on disk of the waiting records.
    pub fn bytes(&self) -> u64 {
        self.records.values().map(|e| e.size).sum()
    }

    /// Reports discarded since the spool was created while they held the newest result of
    /// some check (full spool with nothing to compact, or corruption).
    pub fn dropped_total(&self) -> u64 {
        self.dropped_total
    }

    /// Superseded reports discarded by a full spool since it was created.
    pub fn compacted_total(&self) -> u64 {
        self.compacted_total
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

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn records_survive_reopening_in_order_until_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), ROOMY).unwrap();
        spool.append(2, &names(&["a"]), b"second").unwrap();
        spool.append(1, &names(&["a"]), b"first").unwrap();
        spool.append(3, &names(&["a", "b"]), b"third").unwrap();
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
        assert_eq!(spool.records[&3].checks, names(&["a", "b"]));
    }

    #[test]
    fn a_flipped_byte_is_quarantined_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), ROOMY).unwrap();
        spool.append(1, &names(&["a"]), b"good").unwrap();
        spool.append(2, &names(&["a"]), b"will rot").unwrap();
        let path = spool.record_path(2);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        fs::write(&path, bytes).unwrap();
        // A half-written temporary file from a crash is cleaned up too.
        fs::write(dir.path().join(".tmp-00000000000000000003.vgs-1"), b"VGS2").unwrap();
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
    fn every_truncation_of_a_record_is_detected() {
        // What a crash in the middle of a write could leave if the rename were not atomic:
        // no prefix of a record passes as a record.
        let record = encode(9, &names(&["packages", "accounts"]), b"payload bytes");
        for cut in 0..record.len() {
            assert!(decode(9, &record[..cut]).is_err(), "prefix of {cut} bytes");
        }
        for i in 0..record.len() {
            let mut flipped = record.clone();
            flipped[i] ^= 0x80;
            assert!(decode(9, &flipped).is_err(), "byte {i} flipped");
        }
        let decoded = decode(9, &record).unwrap();
        assert_eq!(decoded.payload, b"payload bytes");
        assert_eq!(decoded.checks, names(&["packages", "accounts"]));
    }

    #[test]
    fn first_format_records_are_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let payload = b"old agent";
        let mut v1 = Vec::new();
        v1.extend_from_slice(MAGIC_V1);
        v1.extend_from_slice(&4u64.to_be_bytes());
        v1.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        v1.extend_from_slice(&crc32fast::hash(payload).to_be_bytes());
        v1.extend_from_slice(payload);
        fs::write(dir.path().join("00000000000000000004.vgs"), v1).unwrap();
        let spool = Spool::open(dir.path(), ROOMY).unwrap();
        assert_eq!(spool.read(4).unwrap(), payload);
        assert!(spool.records[&4].checks.is_empty());
    }

    #[test]
    fn a_full_spool_compacts_superseded_reports_first() {
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits {
            max_reports: 3,
            max_bytes: 1 << 20,
        };
        let mut spool = Spool::open(dir.path(), limits).unwrap();
        // 1: every check once; then the fast check alone, again and again.
        spool.append(1, &names(&["slow", "fast"]), b"1").unwrap();
        spool.append(2, &names(&["fast"]), b"2").unwrap();
        spool.append(3, &names(&["fast"]), b"3").unwrap();
        // Full: 1 holds the only "slow" result, so the oldest *superseded* one (2) goes.
        let discarded = spool.append(4, &names(&["fast"]), b"4").unwrap();
        assert_eq!(discarded.compacted, [2]);
        assert!(discarded.dropped.is_empty());
        let discarded = spool.append(5, &names(&["fast"]), b"5").unwrap();
        assert_eq!(discarded.compacted, [3]);
        assert_eq!(spool.records.keys().copied().collect::<Vec<_>>(), [1, 4, 5]);
        // A new "slow" result supersedes report 1 at last.
        let discarded = spool.append(6, &names(&["slow"]), b"6").unwrap();
        assert_eq!(discarded.compacted, [1]);
        assert_eq!(spool.compacted_total(), 3);
        assert_eq!(spool.dropped_total(), 0);
        drop(spool);
        let spool = Spool::open(dir.path(), limits).unwrap();
        assert_eq!(spool.compacted_total(), 3, "the counter is durable");
        assert_eq!(spool.records.keys().copied().collect::<Vec<_>>(), [4, 5, 6]);
    }

    #[test]
    fn with_nothing_superseded_the_oldest_is_dropped_and_counted_durably() {
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits {
            max_reports: 2,
            max_bytes: 1 << 20,
        };
        let mut spool = Spool::open(dir.path(), limits).unwrap();
        assert_eq!(
            spool.append(1, &names(&["a"]), b"a").unwrap(),
            Discarded::default()
        );
        spool.append(2, &names(&["b"]), b"b").unwrap();
        let discarded = spool.append(3, &names(&["c"]), b"c").unwrap();
        assert_eq!(discarded.dropped, [1]);
        assert!(discarded.compacted.is_empty());
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
        spool.append(1, &names(&["a"]), &[0u8; 40]).unwrap();
        assert_eq!(
            spool
                .append(2, &names(&["a"]), &[0u8; 40])
                .unwrap()
                .compacted,
            [1]
        );
        assert!(matches!(
            spool.append(3, &names(&["a"]), &[0u8; 200]),
            Err(SpoolError::TooLarge { .. })
        ));
        assert_eq!(spool.pending(), 1);
    }

    #[test]
    fn rejected_records_are_kept_with_their_reason() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), ROOMY).unwrap();
        spool.append(7, &names(&["a"]), b"x").unwrap();
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
    fn decode_refuses_mismatched_names_and_junk() {
        let record = encode(5, &names(&["a"]), b"payload");
        assert_eq!(decode(5, &record).unwrap().payload, b"payload");
        assert!(decode(6, &record).is_err());
        let mut huge = record.clone();
        huge[20..24].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(decode(5, &huge).is_err());
        assert!(decode(5, b"VGS2 and some junk that is long enough").is_err());
    }
}
