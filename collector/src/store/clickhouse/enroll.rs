//! Enrollment tokens and the enrollment audit trail on ClickHouse. Tokens are replacing rows
//! (the newest `version` of a name wins, read with `LIMIT 1 BY name`); enrollments are
//! append-only.

use chrono::DateTime;
use serde::{Deserialize, Serialize};

use super::{ClickHouseStore, PrincipalRow, ch, nanos};
use crate::auth::Role;
use crate::store::StoreError;
use crate::store::enrollment::{
    EnrollOutcome, EnrollRequest, Enrollment, EnrollmentToken, NewEnrollmentToken,
};

pub(super) fn schema(db: &str) -> Vec<String> {
    vec![
        format!(
            "CREATE TABLE IF NOT EXISTS {db}.enrollment_tokens (
                name String, token_sha256 String, labels_json String, created_at Int64,
                expires_at Int64, has_max_uses UInt8, max_uses UInt64, uses UInt64,
                revoked UInt8, revoked_at Int64, used UInt8, last_used_at Int64, version Int64
            ) ENGINE = ReplacingMergeTree(version) ORDER BY name"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {db}.enrollments (
                agent String, token String, hostname String, machine_id String,
                enrolled_at Int64, version Int64
            ) ENGINE = MergeTree ORDER BY (enrolled_at, agent)"
        ),
    ]
}

#[derive(Debug, Clone, clickhouse::Row, Serialize, Deserialize)]
struct TokenRow {
    name: String,
    token_sha256: String,
    labels_json: String,
    created_at: i64,
    expires_at: i64,
    has_max_uses: u8,
    max_uses: u64,
    uses: u64,
    revoked: u8,
    revoked_at: i64,
    used: u8,
    last_used_at: i64,
    version: i64,
}

#[derive(Debug, clickhouse::Row, Serialize, Deserialize)]
struct EnrollmentRow {
    agent: String,
    token: String,
    hostname: String,
    machine_id: String,
    enrolled_at: i64,
    version: i64,
}

const TOKENS_LATEST: &str = "SELECT name, token_sha256, labels_json, created_at, expires_at,
        has_max_uses, max_uses, uses, revoked, revoked_at, used, last_used_at, version
    FROM enrollment_tokens ORDER BY name, version DESC LIMIT 1 BY name";

impl TokenRow {
    fn to_token(&self) -> Result<EnrollmentToken, StoreError> {
        let at = DateTime::from_timestamp_nanos;
        Ok(EnrollmentToken {
            name: self.name.clone(),
            labels: serde_json::from_str(&self.labels_json).map_err(|e| StoreError::Corrupt {
                what: format!("enrollment token labels: {e}"),
            })?,
            created_at: at(self.created_at),
            expires_at: at(self.expires_at),
            max_uses: (self.has_max_uses != 0).then_some(self.max_uses),
            uses: self.uses,
            revoked_at: (self.revoked != 0).then(|| at(self.revoked_at)),
            last_used_at: (self.used != 0).then(|| at(self.last_used_at)),
        })
    }
}

impl ClickHouseStore {
    async fn tokens_where(
        &self,
        condition: &str,
        value: &str,
    ) -> Result<Vec<TokenRow>, StoreError> {
        self.check_open()?;
        let sql = format!("SELECT * FROM ({TOKENS_LATEST}) WHERE {condition} ORDER BY name");
        self.client
            .query(&sql)
            .bind(value)
            .fetch_all::<TokenRow>()
            .await
            .map_err(ch("read enrollment tokens"))
    }

    async fn write_token(&self, mut row: TokenRow) -> Result<EnrollmentToken, StoreError> {
        row.version = self.next_version();
        let mut insert = self
            .inserter
            .insert::<TokenRow>("enrollment_tokens")
            .await
            .map_err(ch("write an enrollment token"))?;
        insert
            .write(&row)
            .await
            .map_err(ch("write an enrollment token"))?;
        insert
            .end()
            .await
            .map_err(ch("write an enrollment token"))?;
        row.to_token()
    }

    pub(super) async fn create_token(
        &self,
        new: NewEnrollmentToken,
    ) -> Result<EnrollmentToken, StoreError> {
        let _guard = self.write_lock.lock().await;
        if !self.tokens_where("name = ?", &new.name).await?.is_empty() {
            return Err(StoreError::EnrollmentTokenExists { name: new.name });
        }
        let labels_json = serde_json::to_string(&new.labels).map_err(|e| StoreError::Corrupt {
            what: format!("labels: {e}"),
        })?;
        self.write_token(TokenRow {
            token_sha256: hex::encode(new.token_hash.0),
            labels_json,
            created_at: nanos(new.created_at, "created_at")?,
            expires_at: nanos(new.expires_at, "expires_at")?,
            has_max_uses: u8::from(new.max_uses.is_some()),
            max_uses: new.max_uses.unwrap_or(0),
            uses: 0,
            revoked: 0,
            revoked_at: 0,
            used: 0,
            last_used_at: 0,
            version: 0,
            name: new.name,
        })
        .await
    }

    pub(super) async fn list_tokens(&self) -> Result<Vec<EnrollmentToken>, StoreError> {
        self.tokens_where("name != ?", "")
            .await?
            .iter()
            .map(TokenRow::to_token)
            .collect()
    }

    pub(super) async fn revoke_token(
        &self,
        name: &str,
        at: DateTime<chrono::Utc>,
    ) -> Result<EnrollmentToken, StoreError> {
        let at = nanos(at, "revoked_at")?;
        let _guard = self.write_lock.lock().await;
        let Some(mut row) = self
            .tokens_where("name = ?", name)
            .await?
            .into_iter()
            .next()
        else {
            return Err(StoreError::EnrollmentTokenNotFound { name: name.into() });
        };
        if row.revoked != 0 {
            return row.to_token();
        }
        row.revoked = 1;
        row.revoked_at = at;
        self.write_token(row).await
    }

    pub(super) async fn enroll(&self, request: EnrollRequest) -> Result<EnrollOutcome, StoreError> {
        let _guard = self.write_lock.lock().await;
        let Some(mut row) = self
            .tokens_where("token_sha256 = ?", &hex::encode(request.enrollment_hash.0))
            .await?
            .into_iter()
            .next()
        else {
            return Ok(EnrollOutcome::UnknownToken);
        };
        let token = row.to_token()?;
        if let Some(refused) = token.refusal(request.at) {
            return Ok(refused);
        }
        if self.raw_principal(&request.agent).await?.is_some() {
            return Ok(EnrollOutcome::NameTaken {
                name: request.agent,
            });
        }
        let at = nanos(request.at, "enrolled_at")?;
        let labels_json = row.labels_json.clone();
        // The principal last: until it exists the enrollment has not happened, and a retry
        // finds the name free again.
        row.uses = row.uses.saturating_add(1);
        row.used = 1;
        row.last_used_at = at;
        self.write_token(row).await?;
        let record = EnrollmentRow {
            agent: request.agent.clone(),
            token: token.name.clone(),
            hostname: request.hostname.clone(),
            machine_id: request.machine_id.clone(),
            enrolled_at: at,
            version: self.next_version(),
        };
        let mut insert = self
            .inserter
            .insert::<EnrollmentRow>("enrollments")
            .await
            .map_err(ch("record an enrollment"))?;
        insert
            .write(&record)
            .await
            .map_err(ch("record an enrollment"))?;
        insert.end().await.map_err(ch("record an enrollment"))?;
        let principal = self
            .write_principal(PrincipalRow {
                name: request.agent,
                role: Role::Agent.as_str().into(),
                token_sha256: hex::encode(request.agent_token_hash.0),
                labels_json,
                created_at: at,
                revoked: 0,
                revoked_at: 0,
                expires_at: 0,
            })
            .await?;
        Ok(EnrollOutcome::Enrolled {
            principal,
            token: token.name,
        })
    }

    pub(super) async fn enrollments(&self) -> Result<Vec<Enrollment>, StoreError> {
        self.check_open()?;
        // Only enrollments whose principal exists (the principal row is written last).
        let rows = self
            .client
            .query(
                "SELECT agent, token, hostname, machine_id, enrolled_at, version FROM enrollments
                 WHERE agent IN (SELECT name FROM principals)
                 ORDER BY enrolled_at, agent, version LIMIT 1 BY agent",
            )
            .fetch_all::<EnrollmentRow>()
            .await
            .map_err(ch("list enrollments"))?;
        Ok(rows
            .into_iter()
            .map(|r| Enrollment {
                agent: r.agent,
                token: r.token,
                hostname: r.hostname,
                machine_id: r.machine_id,
                enrolled_at: DateTime::from_timestamp_nanos(r.enrolled_at),
            })
            .collect())
    }
}
