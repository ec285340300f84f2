//! The evaluator election on ClickHouse: several collectors may ingest into one database, and
//! exactly one of them evaluates the ISMS. Each candidate writes a heartbeat row at every
//! evaluation tick; the live candidate (heartbeat within the TTL) that has been a candidate the
//! longest evaluates. A newcomer never preempts a live evaluator; when the evaluator stops
//! beating, the next oldest takes over after the TTL. ClickHouse has no compare-and-set, so two
//! candidates starting within the same instant both see each other only after their inserts:
//! the engine confirms a new leadership after a short settle delay before it evaluates.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ClickHouseStore, ch, nanos};
use crate::store::{EvaluatorCandidate, StoreError};

pub(super) fn schema(db: &str) -> Vec<String> {
    vec![format!(
        "CREATE TABLE IF NOT EXISTS {db}.evaluator_heartbeats (
            holder String, since Int64, at Int64
        ) ENGINE = ReplacingMergeTree(at) ORDER BY holder"
    )]
}

#[derive(Debug, clickhouse::Row, Serialize)]
struct Heartbeat {
    holder: String,
    since: i64,
    at: i64,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct Live {
    holder: String,
    since: i64,
}

impl ClickHouseStore {
    pub(super) async fn heartbeat(
        &self,
        candidate: &EvaluatorCandidate,
        now: DateTime<Utc>,
        ttl: std::time::Duration,
    ) -> Result<EvaluatorCandidate, StoreError> {
        self.check_open()?;
        let at = nanos(now, "now")?;
        let mut insert = self
            .inserter
            .insert::<Heartbeat>("evaluator_heartbeats")
            .await
            .map_err(ch("write the evaluator heartbeat"))?;
        insert
            .write(&Heartbeat {
                holder: candidate.holder.clone(),
                since: nanos(candidate.since, "since")?,
                at,
            })
            .await
            .map_err(ch("write the evaluator heartbeat"))?;
        insert
            .end()
            .await
            .map_err(ch("write the evaluator heartbeat"))?;
        let ttl = i64::try_from(ttl.as_nanos()).unwrap_or(i64::MAX);
        let live = self
            .client
            .query(
                "SELECT holder, argMax(since, at) AS s FROM evaluator_heartbeats
                 GROUP BY holder HAVING max(at) > ?
                 ORDER BY s, holder LIMIT 1",
            )
            .bind(at.saturating_sub(ttl))
            .fetch_optional::<Live>()
            .await
            .map_err(ch("read the evaluator heartbeats"))?;
        Ok(match live {
            Some(l) => EvaluatorCandidate {
                holder: l.holder,
                since: DateTime::from_timestamp_nanos(l.since),
            },
            None => candidate.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::Utc;

    use crate::store::clickhouse::test_server::TestServer;
    use crate::store::clickhouse::tests::open;
    use crate::store::{EvaluatorCandidate, Store};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_oldest_live_candidate_evaluates_and_another_takes_over() {
        let Some(server) = TestServer::start_or_skip("clickhouse evaluator election") else {
            return;
        };
        // Two collectors on one database.
        let a_store = open(&server, "vigil_election").await;
        let b_store = open(&server, "vigil_election").await;
        let t0 = Utc::now();
        let ttl = Duration::from_secs(30);
        let a = EvaluatorCandidate {
            holder: "collector-a".into(),
            since: t0,
        };
        let b = EvaluatorCandidate {
            holder: "collector-b".into(),
            since: t0 + chrono::Duration::seconds(1),
        };
        assert_eq!(a_store.evaluator_heartbeat(&a, t0, ttl).await.unwrap(), a);
        // The newcomer does not preempt the live evaluator, whatever its name.
        let t1 = t0 + chrono::Duration::seconds(2);
        assert_eq!(b_store.evaluator_heartbeat(&b, t1, ttl).await.unwrap(), a);
        assert_eq!(a_store.evaluator_heartbeat(&a, t1, ttl).await.unwrap(), a);
        // A stops beating; after the TTL, B evaluates.
        let t2 = t1 + chrono::Duration::seconds(31);
        assert_eq!(b_store.evaluator_heartbeat(&b, t2, ttl).await.unwrap(), b);
        // A comes back as a new candidate (a restart): B keeps evaluating.
        let a2 = EvaluatorCandidate {
            holder: "collector-a2".into(),
            since: t2,
        };
        let t3 = t2 + chrono::Duration::seconds(1);
        assert_eq!(a_store.evaluator_heartbeat(&a2, t3, ttl).await.unwrap(), b);
    }
}
