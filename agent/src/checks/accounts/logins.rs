//! Last logins from every place Linux records them: the binary `lastlog` (indexed by uid) and
//! `wtmp` files, util-linux's lastlog2 database and wtmpdb (Debian 13 and later).
//!
//! Binary layouts are glibc's on x86_64 and the other common 64-bit ports, checked with
//! `offsetof` against Debian 12's headers: `struct lastlog` is 292 bytes (`int32_t ll_time`,
//! `char ll_line[32]`, `char ll_host[256]`); `struct utmp` is 384 bytes with `ut_type` (i16) at
//! 0, `ut_line` at 8, `ut_user` at 44, `ut_host` at 76 and `ut_tv.tv_sec` (i32) at 340.
//! Little-endian is assumed (every Debian architecture but s390x). Times are read as unsigned
//! 32-bit values, which keeps them valid past 2038 the way newer tools read them.

use std::collections::BTreeMap;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::sync::mpsc;
use std::time::Duration;

use crate::hostroot::{HostError, HostRoot};

pub const LASTLOG_PATH: &str = "/var/log/lastlog";
pub const WTMP_PATHS: &[&str] = &["/var/log/wtmp", "/var/log/wtmp.1"];
pub const LASTLOG2_PATH: &str = "/var/lib/lastlog/lastlog2.db";
pub const WTMPDB_PATH: &str = "/var/lib/wtmpdb/wtmp.db";

pub const LASTLOG_RECORD: usize = 292;
pub const UTMP_RECORD: usize = 384;
const UTMP_USER_PROCESS: i16 = 7;
/// wtmpdb's own numbering: USER_PROCESS is 3 there, not 7.
const WTMPDB_USER_PROCESS: i64 = 3;

/// Most of a wtmp file read: the newest records are at the end, so a larger file is read
/// from this far before its end.
pub const WTMP_READ_LIMIT: u64 = 256 * 1024 * 1024;

/// How long a login database may keep us busy before we give up on it.
const DB_DEADLINE: Duration = Duration::from_secs(10);

/// One recorded login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// Seconds since the epoch.
    pub time: i64,
    /// The host file it came from.
    pub source: String,
    pub tty: Option<String>,
    pub host: Option<String>,
}

/// Why a login database could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoginDbError {
    #[error(transparent)]
    Host(#[from] HostError),
    #[error("{path}: {source}")]
    Sqlite {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
}

/// A NUL-terminated (or full-width) C string field.
fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn non_empty(s: String) -> Option<String> {
    if s.is_empty() { None } else { Some(s) }
}

fn le_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let chunk = bytes.get(at..at + 4)?;
    Some(u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
}

/// Parses one lastlog record; `None` for "never logged in" (time 0) or a short record.
pub fn parse_lastlog_record(record: &[u8], source: &str) -> Option<Login> {
    if record.len() < LASTLOG_RECORD {
        return None;
    }
    let time = le_u32(record, 0)?;
    if time == 0 {
        return None;
    }
    Some(Login {
        time: i64::from(time),
        source: source.to_string(),
        tty: non_empty(c_string(&record[4..36])),
        host: non_empty(c_string(&record[36..292])),
    })
}

/// One utmp/wtmp record, the fields this check uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UtmpRecord {
    pub kind: i16,
    pub user: String,
    pub line: String,
    pub host: String,
    pub time: i64,
}

/// Parses one 384-byte utmp record; `None` for a short record or a type no libc writes.
pub fn parse_utmp_record(record: &[u8]) -> Option<UtmpRecord> {
    if record.len() < UTMP_RECORD {
        return None;
    }
    let kind = i16::from_le_bytes([record[0], record[1]]);
    if !(0..=9).contains(&kind) {
        return None;
    }
    Some(UtmpRecord {
        kind,
        line: c_string(&record[8..40]),
        user: c_string(&record[44..76]),
        host: c_string(&record[76..332]),
        time: i64::from(le_u32(record, 340)?),
    })
}

/// The login record for `uid`: one positioned read, never the whole file (lastlog is sparse
/// and, with a uid like 4294967294 on the system, terabytes long on paper).
pub fn read_lastlog(root: &HostRoot, path: &str, uid: u32) -> Result<Option<Login>, HostError> {
    let file = root.open_regular(path)?;
    let len = file
        .metadata()
        .map_err(|source| HostError::Io {
            path: path.into(),
            source,
        })?
        .len();
    let offset = u64::from(uid) * LASTLOG_RECORD as u64;
    if offset + LASTLOG_RECORD as u64 > len {
        return Ok(None);
    }
    let mut record = [0u8; LASTLOG_RECORD];
    file.read_exact_at(&mut record, offset)
        .map_err(|source| HostError::Io {
            path: path.into(),
            source,
        })?;
    Ok(parse_lastlog_record(&record, path))
}

/// What a wtmp file says about logins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WtmpScan {
    /// Newest USER_PROCESS record per user name.
    pub logins: BTreeMap<String, Login>,
    /// Records of no known type (corruption or another layout).
    pub junk_records: u64,
    /// Only the newest [`WTMP_READ_LIMIT`] bytes were read.
    pub truncated: bool,
}

impl WtmpScan {
    fn add(&mut self, record: &[u8], source: &str) {
        let Some(rec) = parse_utmp_record(record) else {
            self.junk_records += 1;
            return;
        };
        if rec.kind != UTMP_USER_PROCESS || rec.user.is_empty() || rec.time == 0 {
            return;
        }
        let newer = self
            .logins
            .get(&rec.user)
            .is_none_or(|existing| existing.time < rec.time);
        if newer {
            self.logins.insert(
                rec.user,
                Login {
                    time: rec.time,
                    source: source.to_string(),
                    tty: non_empty(rec.line),
                    host: non_empty(rec.host),
                },
            );
        }
    }
}

/// Scans wtmp records in a byte buffer (tests and small files).
pub fn parse_wtmp(bytes: &[u8], source: &str) -> WtmpScan {
    let mut scan = WtmpScan::default();
    for record in bytes.chunks_exact(UTMP_RECORD) {
        scan.add(record, source);
    }
    scan
}

/// Streams a wtmp file record by record, reading at most `limit` bytes from its end.
pub fn read_wtmp(root: &HostRoot, path: &str, limit: u64) -> Result<WtmpScan, HostError> {
    let io_err = |source| HostError::Io {
        path: path.into(),
        source,
    };
    let mut file = root.open_regular(path)?;
    let len = file.metadata().map_err(io_err)?.len();
    let mut scan = WtmpScan::default();
    if len > limit {
        // Stay on a record boundary counted from the start of the file.
        let start = (len - limit).div_ceil(UTMP_RECORD as u64) * UTMP_RECORD as u64;
        file.seek(SeekFrom::Start(start)).map_err(io_err)?;
        scan.truncated = true;
    }
    let mut reader = BufReader::with_capacity(UTMP_RECORD * 256, file);
    let mut record = [0u8; UTMP_RECORD];
    loop {
        match read_full(&mut reader, &mut record) {
            Ok(true) => scan.add(&record, path),
            Ok(false) => break,
            Err(e) => return Err(io_err(e)),
        }
    }
    Ok(scan)
}

/// Fills `buf` completely; `false` at end of file (a trailing partial record is dropped).
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => return Ok(false),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Opens a login database read-only. A plain read-only open sees committed WAL content; if
/// that is impossible (no write access for the WAL index on a read-only image) the file is
/// read as an immutable snapshot. Nothing is ever written to the host.
fn open_db(root: &HostRoot, path: &str) -> Result<Option<rusqlite::Connection>, LoginDbError> {
    let meta = match root.metadata(path) {
        Ok(m) => m,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if !meta.is_file() {
        return Err(HostError::NotAFile { path: path.into() }.into());
    }
    let real = root.real_path(path)?;
    let encoded = uri_encode(real.as_os_str().as_bytes());
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
        | rusqlite::OpenFlags::SQLITE_OPEN_URI
        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let sqlite = |source| LoginDbError::Sqlite {
        path: path.into(),
        source,
    };
    let attempt = |uri: String| -> Result<rusqlite::Connection, rusqlite::Error> {
        let conn = rusqlite::Connection::open_with_flags(uri, flags)?;
        conn.busy_timeout(Duration::from_secs(2))?;
        // Touch the schema now so that an unusable WAL setup fails here, not mid-query.
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))?;
        Ok(conn)
    };
    match attempt(format!("file:{encoded}?mode=ro")) {
        Ok(conn) => Ok(Some(conn)),
        Err(first) => match attempt(format!("file:{encoded}?mode=ro&immutable=1")) {
            Ok(conn) => Ok(Some(conn)),
            Err(_) => Err(sqlite(first)),
        },
    }
}

/// Percent-encodes a path for an SQLite `file:` URI.
fn uri_encode(path: &[u8]) -> String {
    let mut out = String::with_capacity(path.len());
    for &b in path {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn text_value(value: rusqlite::types::ValueRef<'_>) -> Option<String> {
    match value {
        rusqlite::types::ValueRef::Text(t) => non_empty(String::from_utf8_lossy(t).into_owned()),
        _ => None,
    }
}

fn int_value(value: rusqlite::types::ValueRef<'_>) -> Option<i64> {
    match value {
        rusqlite::types::ValueRef::Integer(i) => Some(i),
        rusqlite::types::ValueRef::Real(f) if f.is_finite() => Some(f as i64),
        rusqlite::types::ValueRef::Text(t) => std::str::from_utf8(t).ok()?.trim().parse().ok(),
        _ => None,
    }
}

/// Runs a query with a watchdog that interrupts it after [`DB_DEADLINE`]: a crafted or
/// enormous database must not hold the check.
fn query_logins(
    conn: &rusqlite::Connection,
    path: &str,
    sql: &str,
    time_divisor: i64,
) -> Result<BTreeMap<String, Login>, LoginDbError> {
    let handle = conn.get_interrupt_handle();
    let (done, finished) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = finished.recv_timeout(DB_DEADLINE) {
            handle.interrupt();
        }
    });
    let result = collect_logins(conn, path, sql, time_divisor);
    let _ = done.send(());
    let _ = watchdog.join();
    result
}

/// Runs a `(name, time, tty, host)` query; rows of the wrong shape are skipped.
fn collect_logins(
    conn: &rusqlite::Connection,
    path: &str,
    sql: &str,
    time_divisor: i64,
) -> Result<BTreeMap<String, Login>, LoginDbError> {
    let sqlite = |source| LoginDbError::Sqlite {
        path: path.into(),
        source,
    };
    let mut statement = conn.prepare(sql).map_err(sqlite)?;
    let mut rows = statement.query([]).map_err(sqlite)?;
    let mut logins: BTreeMap<String, Login> = BTreeMap::new();
    while let Some(row) = rows.next().map_err(sqlite)? {
        let (Ok(name), Ok(time)) = (row.get_ref(0), row.get_ref(1)) else {
            continue;
        };
        let (Some(name), Some(time)) = (text_value(name), int_value(time)) else {
            continue;
        };
        let time = time / time_divisor;
        if time <= 0 {
            continue;
        }
        let login = Login {
            time,
            source: path.to_string(),
            tty: row.get_ref(2).ok().and_then(text_value),
            host: row.get_ref(3).ok().and_then(text_value),
        };
        if logins.get(&name).is_none_or(|l| l.time < time) {
            logins.insert(name, login);
        }
    }
    Ok(logins)
}

/// util-linux's lastlog2: `Lastlog2(Name TEXT PRIMARY KEY, Time INTEGER, TTY TEXT,
/// RemoteHost TEXT, Service TEXT)`, times in seconds. `Ok(None)` when the file is absent.
pub fn read_lastlog2(
    root: &HostRoot,
    path: &str,
) -> Result<Option<BTreeMap<String, Login>>, LoginDbError> {
    let Some(conn) = open_db(root, path)? else {
        return Ok(None);
    };
    query_logins(
        &conn,
        path,
        "SELECT Name, Time, TTY, RemoteHost FROM Lastlog2",
        1,
    )
    .map(Some)
}

/// wtmpdb: `wtmp(ID, Type, User, Login, Logout, TTY, RemoteHost, Service)`, login times in
/// microseconds, user sessions of type 3. `Ok(None)` when the file is absent.
pub fn read_wtmpdb(
    root: &HostRoot,
    path: &str,
) -> Result<Option<BTreeMap<String, Login>>, LoginDbError> {
    let Some(conn) = open_db(root, path)? else {
        return Ok(None);
    };
    // SQLite returns the other columns of the row that holds MAX(Login).
    let sql = format!(
        "SELECT User, MAX(Login), TTY, RemoteHost FROM wtmp WHERE Type = {WTMPDB_USER_PROCESS} GROUP BY User"
    );
    query_logins(&conn, path, &sql, 1_000_000).map(Some)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A lastlog record as glibc lays it out.
    pub(crate) fn lastlog_record(time: u32, line: &str, host: &str) -> Vec<u8> {
        let mut record = vec![0u8; LASTLOG_RECORD];
        record[0..4].copy_from_slice(&time.to_le_bytes());
        record[4..4 + line.len()].copy_from_slice(line.as_bytes());
        record[36..36 + host.len()].copy_from_slice(host.as_bytes());
        record
    }

    /// A utmp record as glibc lays it out.
    pub(crate) fn utmp_record(kind: i16, user: &str, line: &str, host: &str, time: u32) -> Vec<u8> {
        let mut record = vec![0u8; UTMP_RECORD];
        record[0..2].copy_from_slice(&kind.to_le_bytes());
        record[4..8].copy_from_slice(&4242u32.to_le_bytes());
        record[8..8 + line.len()].copy_from_slice(line.as_bytes());
        record[44..44 + user.len()].copy_from_slice(user.as_bytes());
        record[76..76 + host.len()].copy_from_slice(host.as_bytes());
        record[340..344].copy_from_slice(&time.to_le_bytes());
        record
    }

    #[test]
    fn lastlog_records() {
        let login =
            parse_lastlog_record(&lastlog_record(1_780_000_000, "pts/0", "192.0.2.7"), "/l")
                .unwrap();
        assert_eq!(login.time, 1_780_000_000);
        assert_eq!(login.tty.as_deref(), Some("pts/0"));
        assert_eq!(login.host.as_deref(), Some("192.0.2.7"));
        assert_eq!(parse_lastlog_record(&lastlog_record(0, "", ""), "/l"), None);
        assert_eq!(parse_lastlog_record(&[1, 2, 3], "/l"), None);
        // Past 2038: the 32-bit field is read unsigned.
        let late = parse_lastlog_record(&lastlog_record(0x9000_0000, "", ""), "/l").unwrap();
        assert_eq!(late.time, 0x9000_0000);
        // Full-width fields without a NUL and binary junk do not break anything.
        let mut junk = vec![0xffu8; LASTLOG_RECORD];
        junk[0..4].copy_from_slice(&5u32.to_le_bytes());
        let login = parse_lastlog_record(&junk, "/l").unwrap();
        assert_eq!(login.tty.map(|t| t.chars().count()), Some(32));
    }

    #[test]
    fn wtmp_keeps_the_newest_user_login_and_counts_junk() {
        let mut bytes = Vec::new();
        bytes.extend(utmp_record(2, "reboot", "~", "6.1.0-21-amd64", 1_000));
        bytes.extend(utmp_record(7, "alice", "pts/0", "192.0.2.7", 2_000));
        bytes.extend(utmp_record(8, "", "pts/0", "", 2_500));
        bytes.extend(utmp_record(7, "alice", "pts/1", "192.0.2.8", 3_000));
        bytes.extend(utmp_record(7, "alice", "pts/2", "192.0.2.9", 2_900));
        bytes.extend(utmp_record(7, "bob", "tty1", "", 1_500));
        bytes.extend(utmp_record(7, "", "tty2", "", 1_600));
        bytes.extend(utmp_record(99, "mallory", "tty3", "", 9_999));
        bytes.extend(utmp_record(7, &"x".repeat(32), "tty4", "", 1_700));
        bytes.extend([7u8; 100]); // a torn record at the end
        let scan = parse_wtmp(&bytes, "/var/log/wtmp");
        assert_eq!(scan.junk_records, 1);
        let alice = &scan.logins["alice"];
        assert_eq!((alice.time, alice.tty.as_deref()), (3_000, Some("pts/1")));
        assert_eq!(scan.logins["bob"].host, None);
        assert!(scan.logins.contains_key(&"x".repeat(32)));
        assert!(!scan.logins.contains_key("mallory"));
        assert_eq!(scan.logins.len(), 3);
    }

    fn tree() -> (tempfile::TempDir, HostRoot) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("var/log")).unwrap();
        let root = HostRoot::new(dir.path()).unwrap();
        (dir, root)
    }

    #[test]
    fn lastlog_is_read_at_the_uid_offset_only() {
        let (dir, root) = tree();
        let mut bytes = vec![0u8; 3 * LASTLOG_RECORD];
        bytes.extend(lastlog_record(1_700_000_000, "tty1", ""));
        bytes.extend([1, 2, 3]); // a torn record for uid 4
        std::fs::write(dir.path().join("var/log/lastlog"), bytes).unwrap();
        let login = read_lastlog(&root, LASTLOG_PATH, 3).unwrap().unwrap();
        assert_eq!(
            (login.time, login.tty.as_deref()),
            (1_700_000_000, Some("tty1"))
        );
        assert_eq!(read_lastlog(&root, LASTLOG_PATH, 0).unwrap(), None);
        assert_eq!(read_lastlog(&root, LASTLOG_PATH, 4).unwrap(), None);
        assert_eq!(read_lastlog(&root, LASTLOG_PATH, u32::MAX).unwrap(), None);
        assert!(
            read_lastlog(&root, "/var/log/none", 1)
                .unwrap_err()
                .is_not_found()
        );
    }

    #[test]
    fn a_large_wtmp_is_read_from_its_end() {
        let (dir, root) = tree();
        let mut bytes = Vec::new();
        for i in 0..10u32 {
            bytes.extend(utmp_record(7, &format!("u{i}"), "pts/0", "", 1_000 + i));
        }
        std::fs::write(dir.path().join("var/log/wtmp"), &bytes).unwrap();
        let full = read_wtmp(&root, "/var/log/wtmp", WTMP_READ_LIMIT).unwrap();
        assert_eq!((full.logins.len(), full.truncated), (10, false));
        let tail = read_wtmp(&root, "/var/log/wtmp", 3 * UTMP_RECORD as u64 + 100).unwrap();
        assert!(tail.truncated);
        let users: Vec<&str> = tail.logins.keys().map(String::as_str).collect();
        assert_eq!(users, ["u7", "u8", "u9"]);
        assert_eq!(tail.junk_records, 0, "reads stay on record boundaries");
    }

    #[test]
    fn login_databases_absent_or_of_another_shape() {
        let (dir, root) = tree();
        assert!(read_lastlog2(&root, LASTLOG2_PATH).unwrap().is_none());
        assert!(read_wtmpdb(&root, WTMPDB_PATH).unwrap().is_none());
        let path = dir.path().join("var/log/other.db");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE unrelated(x);").unwrap();
        drop(conn);
        let err = read_lastlog2(&root, "/var/log/other.db").unwrap_err();
        assert!(err.to_string().starts_with("/var/log/other.db: "), "{err}");
        assert!(
            read_wtmpdb(&root, "/var/log").is_err(),
            "a directory is not a database"
        );
    }

    #[test]
    fn uri_encoding_escapes_query_characters() {
        assert_eq!(
            uri_encode(b"/var/lib/x?y#z%.db"),
            "/var/lib/x%3Fy%23z%25.db"
        );
        assert_eq!(uri_encode("/tmp/é".as_bytes()), "/tmp/%C3%A9");
    }
}
