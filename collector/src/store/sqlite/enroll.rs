//! The SQLite side of agent enrollment: migration 3 (enrollment tokens and the enrollment
//! audit trail) and the reads and writes behind the enrollment methods of [`Store`].
//!
//! [`Store`]: crate::store::Store

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::rows::{from_json, from_nanos, i64_to_db, to_json, to_nanos, u64_from_db};
use crate::auth::Role;
use crate::store::enrollment::{
    EnrollOutcome, EnrollRequest, Enrollment, EnrollmentToken, NewEnrollmentToken,
};
use crate::store::{NewPrincipal, StoreError};

/// Migration 3. Enrollments live in their own table (not a column of `principals`) so that
/// principals created by `agents add` and by enrollment keep one shape.
pub(super) const MIGRATION: &str = r#"
CREATE TABLE enrollment_tokens (
    id           INTEGER PRIMARY KEY,
    name         TEXT    NOT NULL UNIQUE,
    token_sha256 BLOB    NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
    labels_json  TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    max_uses     INTEGER CHECK (max_uses IS NULL OR max_uses >= 1),
    uses         INTEGER NOT NULL DEFAULT 0,
    revoked_at   INTEGER,
    last_used_at INTEGER
);

CREATE TABLE enrollments (
    principal_id INTEGER PRIMARY KEY REFERENCES principals (id),
    token_id     INTEGER NOT NULL REFERENCES enrollment_tokens (id),
    hostname     TEXT    NOT NULL,
    machine_id   TEXT    NOT NULL,
    enrolled_at  INTEGER NOT NULL
);
CREATE INDEX enrollments_by_token ON enrollments (token_id);
"#;

fn sql(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| StoreError::backend(op, e)
}

const TOKEN_COLUMNS: &str =
    "id, name, labels_json, created_at, expires_at, max_uses, uses, revoked_at, last_used_at";

struct TokenRow {
    id: i64,
    name: String,
    labels_json: String,
    created_at: i64,
    expires_at: i64,
    max_uses: Option<i64>,
    uses: i64,
    revoked_at: Option<i64>,
    last_used_at: Option<i64>,
}

impl TokenRow {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<TokenRow> {
        Ok(TokenRow {
            id: row.get(0)?,
            name: row.get(1)?,
            labels_json: row.get(2)?,
            created_at: row.get(3)?,
            expires_at: row.get(4)?,
            max_uses: row.get(5)?,
            uses: row.get(6)?,
            revoked_at: row.get(7)?,
            last_used_at: row.get(8)?,
        })
    }

    fn into_token(self) -> Result<EnrollmentToken, StoreError> {
        Ok(EnrollmentToken {
            labels: from_json(&self.labels_json, "enrollment token labels")?,
            name: self.name,
            created_at: from_nanos(self.created_at),
            expires_at: from_nanos(self.expires_at),
            max_uses: self
                .max_uses
                .map(|m| u64_from_db(m, "max_uses"))
                .transpose()?,
            uses: u64_from_db(self.uses, "uses")?,
            revoked_at: self.revoked_at.map(from_nanos),
            last_used_at: self.last_used_at.map(from_nanos),
        })
    }
}

fn token_by_name(conn: &Connection, name: &str) -> Result<Option<EnrollmentToken>, StoreError> {
    conn.query_row(
        &format!("SELECT {TOKEN_COLUMNS} FROM enrollment_tokens WHERE name = ?1"),
        [name],
        TokenRow::from_row,
    )
    .optional()
    .map_err(sql("read an enrollment token"))?
    .map(TokenRow::into_token)
    .transpose()
}

pub(super) fn create_token(
    conn: &Connection,
    new: &NewEnrollmentToken,
) -> Result<EnrollmentToken, StoreError> {
    if token_by_name(conn, &new.name)?.is_some() {
        return Err(StoreError::EnrollmentTokenExists {
            name: new.name.clone(),
        });
    }
    let max_uses = new.max_uses.map(|m| i64_to_db(m, "max_uses")).transpose()?;
    conn.execute(
        "INSERT INTO enrollment_tokens
             (name, token_sha256, labels_json, created_at, expires_at, max_uses)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            new.name,
            &new.token_hash.0[..],
            to_json(&new.labels, "labels")?,
            to_nanos(new.created_at, "created_at")?,
            to_nanos(new.expires_at, "expires_at")?,
            max_uses,
        ],
    )
    .map_err(sql("create an enrollment token"))?;
    token_by_name(conn, &new.name)?.ok_or_else(|| StoreError::EnrollmentTokenNotFound {
        name: new.name.clone(),
    })
}

pub(super) fn list_tokens(conn: &Connection) -> Result<Vec<EnrollmentToken>, StoreError> {
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {TOKEN_COLUMNS} FROM enrollment_tokens ORDER BY name"
        ))
        .map_err(sql("list enrollment tokens"))?;
    let rows = stmt
        .query_map([], TokenRow::from_row)
        .map_err(sql("list enrollment tokens"))?;
    rows.map(|row| {
        row.map_err(sql("list enrollment tokens"))
            .and_then(TokenRow::into_token)
    })
    .collect()
}

pub(super) fn revoke_token(
    conn: &Connection,
    name: &str,
    at: i64,
) -> Result<EnrollmentToken, StoreError> {
    conn.execute(
        "UPDATE enrollment_tokens SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL",
        params![name, at],
    )
    .map_err(sql("revoke an enrollment token"))?;
    token_by_name(conn, name)?
        .ok_or_else(|| StoreError::EnrollmentTokenNotFound { name: name.into() })
}

pub(super) fn enroll(
    conn: &Connection,
    request: &EnrollRequest,
) -> Result<EnrollOutcome, StoreError> {
    let row = conn
        .query_row(
            &format!("SELECT {TOKEN_COLUMNS} FROM enrollment_tokens WHERE token_sha256 = ?1"),
            [&request.enrollment_hash.0[..]],
            TokenRow::from_row,
        )
        .optional()
        .map_err(sql("look up an enrollment token"))?;
    let Some(row) = row else {
        return Ok(EnrollOutcome::UnknownToken);
    };
    let token_id = row.id;
    let token = row.into_token()?;
    if let Some(refused) = token.refusal(request.at) {
        return Ok(refused);
    }
    if super::read::principal_by_name(conn, &request.agent)?.is_some() {
        return Ok(EnrollOutcome::NameTaken {
            name: request.agent.clone(),
        });
    }
    let principal = super::write::create_principal(
        conn,
        &NewPrincipal {
            name: request.agent.clone(),
            role: Role::Agent,
            labels: token.labels.clone(),
            token_hash: request.agent_token_hash,
            created_at: request.at,
            // Enrolled agents keep their token until it is rotated or revoked, like agents
            // added by hand without `--expires-in`.
            expires_at: None,
        },
    )?;
    let at = to_nanos(request.at, "enrolled_at")?;
    conn.execute(
        "UPDATE enrollment_tokens SET uses = uses + 1, last_used_at = ?2 WHERE id = ?1",
        params![token_id, at],
    )
    .map_err(sql("count an enrollment"))?;
    conn.execute(
        "INSERT INTO enrollments (principal_id, token_id, hostname, machine_id, enrolled_at)
         SELECT id, ?2, ?3, ?4, ?5 FROM principals WHERE name = ?1",
        params![
            request.agent,
            token_id,
            request.hostname,
            request.machine_id,
            at
        ],
    )
    .map_err(sql("record an enrollment"))?;
    Ok(EnrollOutcome::Enrolled {
        principal,
        token: token.name,
    })
}

pub(super) fn list_enrollments(conn: &Connection) -> Result<Vec<Enrollment>, StoreError> {
    let mut stmt = conn
        .prepare(
            "SELECT p.name, t.name, e.hostname, e.machine_id, e.enrolled_at
             FROM enrollments e
             JOIN principals p ON p.id = e.principal_id
             JOIN enrollment_tokens t ON t.id = e.token_id
             ORDER BY e.enrolled_at, p.name",
        )
        .map_err(sql("list enrollments"))?;
    let rows = stmt
        .query_map([], |r| {
            Ok(Enrollment {
                agent: r.get(0)?,
                token: r.get(1)?,
                hostname: r.get(2)?,
                machine_id: r.get(3)?,
                enrolled_at: from_nanos(r.get(4)?),
            })
        })
        .map_err(sql("list enrollments"))?;
    rows.map(|r| r.map_err(sql("list enrollments"))).collect()
}
