//! Retention: evidence older than the configured period is removed by dropping whole monthly
//! partitions (`ALTER TABLE … DROP PARTITION`), which every ClickHouse version supports (TTL
//! clauses need 19.6+, and 18.16 is the oldest server tested). A month is dropped once its last
//! day is older than the cut-off, so up to a month more than the period is kept.
//!
//! Effect on exports: an export of a period before the cut-off has no evidence records for it;
//! the ISMS state (verdicts, KPIs, nonconformities) is not affected.

use std::sync::{Arc, Weak};
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::Deserialize;

use super::{Core, ch};
use crate::store::StoreError;

/// Time-series tables partitioned by `toYYYYMM` of their receive time.
pub(super) const RETAINED_TABLES: &[&str] = &[
    "reports",
    "results",
    "report_keys",
    "report_batches",
    "report_chain",
];

/// How often expired partitions are looked for.
const EVERY: Duration = Duration::from_secs(6 * 3600);

#[derive(Debug, clickhouse::Row, Deserialize)]
struct Part {
    table: String,
    partition: String,
}

/// The first instant after the month `yyyymm` (e.g. "202611" → 2026-12-01T00:00Z).
fn month_end(partition: &str) -> Option<DateTime<Utc>> {
    let n: u32 = partition.trim_matches('\'').parse().ok()?;
    let (year, month) = (i32::try_from(n / 100).ok()?, n % 100);
    let first = NaiveDate::from_ymd_opt(year, month, 1)?;
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(first.year(), month + 1, 1)?
    };
    Some(next.and_hms_opt(0, 0, 0)?.and_utc())
}

impl Core {
    /// Drops every partition whose month ended at or before `cutoff`; returns
    /// `(table, partition)` of those dropped.
    pub(super) async fn drop_expired(
        &self,
        cutoff: DateTime<Utc>,
    ) -> Result<Vec<(String, String)>, StoreError> {
        self.check_open()?;
        let tables = RETAINED_TABLES
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let parts = self
            .client
            .query(&format!(
                "SELECT DISTINCT table, partition FROM system.parts
                 WHERE database = ? AND active AND table IN ({tables})
                 ORDER BY table, partition"
            ))
            .bind(&self.database)
            .fetch_all::<Part>()
            .await
            .map_err(ch("list partitions"))?;
        let mut dropped = Vec::new();
        for part in parts {
            let Some(end) = month_end(&part.partition) else {
                continue;
            };
            if end > cutoff {
                continue;
            }
            // Partition ids of `toYYYYMM` are plain numbers, and table names come from the
            // constant list: nothing user-given is interpolated.
            let id: u32 = part
                .partition
                .trim_matches('\'')
                .parse()
                .unwrap_or_default();
            self.client
                .query(&format!(
                    "ALTER TABLE {}.{} DROP PARTITION {id}",
                    self.database, part.table
                ))
                .execute()
                .await
                .map_err(ch("drop an expired partition"))?;
            tracing::info!(table = %part.table, partition = id, cutoff = %cutoff, "expired evidence dropped");
            dropped.push((part.table, part.partition));
        }
        Ok(dropped)
    }
}

/// Applies the retention period now and every few hours while the store exists.
pub(super) fn spawn(core: Weak<Core>, period: Duration) {
    tokio::spawn(async move {
        loop {
            let Some(core) = core.upgrade() else { return };
            if core.closed.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            let cutoff = Utc::now() - chrono::Duration::from_std(period).unwrap_or_default();
            if let Err(e) = core.drop_expired(cutoff).await {
                tracing::warn!(error = %e, "applying the retention period failed; retried later");
            }
            drop::<Arc<Core>>(core);
            tokio::time::sleep(EVERY).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_end_at_the_next_first_day() {
        assert_eq!(
            month_end("202611").unwrap().to_rfc3339(),
            "2026-12-01T00:00:00+00:00"
        );
        assert_eq!(
            month_end("202612").unwrap().to_rfc3339(),
            "2027-01-01T00:00:00+00:00"
        );
        assert!(month_end("tuple()").is_none());
        assert!(month_end("202613").is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn months_older_than_the_period_are_dropped_and_newer_kept() {
        use crate::auth::Role;
        use crate::store::Store;
        use crate::store::clickhouse::test_server::TestServer;
        use crate::store::clickhouse::tests::{open, request};
        let Some(server) = TestServer::start_or_skip("clickhouse retention") else {
            return;
        };
        let store = open(&server, "vigil_retention").await;
        store
            .create_principal(crate::store::contract::new_principal(
                "r-agent",
                Role::Agent,
            ))
            .await
            .unwrap();
        let now = Utc::now();
        for (seq, age_days) in [(1, 800), (2, 400), (3, 1)] {
            let mut r = request("r-agent", "r-host", seq);
            r.report.sent_at = now - chrono::Duration::days(age_days);
            r.received_at = r.report.sent_at;
            for result in &mut r.report.results {
                result.observed_at = r.report.sent_at;
            }
            store.ingest(r).await.unwrap();
        }
        assert_eq!(store.stats().await.unwrap().reports, 3);
        // A year's retention: the two old months go, from every evidence table.
        let dropped = store
            .drop_expired(now - chrono::Duration::days(365))
            .await
            .unwrap();
        assert_eq!(dropped.len(), 2 * RETAINED_TABLES.len(), "{dropped:?}");
        let stats = store.stats().await.unwrap();
        assert_eq!((stats.reports, stats.hosts), (1, 1));
        let detail = store.host_detail("r-host").await.unwrap().unwrap();
        assert_eq!(detail.host.last_seq, 3);
        // Applying it again changes nothing.
        assert!(
            store
                .drop_expired(now - chrono::Duration::days(365))
                .await
                .unwrap()
                .is_empty()
        );
    }
}
