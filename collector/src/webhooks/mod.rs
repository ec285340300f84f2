//! Alert webhooks (an outputs stage): events derived from what the store committed
//! ([`derive`]), queued durably in their own SQLite outbox ([`outbox`]), filtered per webhook
//! ([`filter`]), rendered per format ([`format`]), signed ([`sign`]) and delivered with
//! exponential backoff and jitter until a configured maximum age. User documentation:
//! `collector/WEBHOOKS.md`.
//!
//! Crash safety: the outbox keeps a cursor (engine clock) of how far events were derived, and
//! moves it in the same transaction that queues the events. Each pass re-reads the store from
//! the cursor minus [`REREAD`], so a happening committed just before a crash (or committed
//! later than its own timestamp) is derived again after the restart; its id, derived from the
//! happening, makes the second derivation a no-op. Delivery is at least once: a delivery whose
//! answer was lost is sent again with the same `Vigil-Idempotency-Key`.

pub mod config;
pub mod derive;
pub mod event;
pub mod filter;
pub mod format;
pub mod outbox;
pub mod sign;

#[cfg(test)]
pub(crate) mod testdata;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use rand::Rng;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{Format, Webhook, WebhookConfig, WebhookOptions};
pub use event::{Event, EventKind};
use outbox::{Outbox, OutboxError};

use crate::engine::Clock;
use crate::isms::Isms;
use crate::store::Store;

/// How far before the cursor each pass re-reads (engine clock).
pub const REREAD: chrono::Duration = chrono::Duration::minutes(10);

/// Stale hosts are looked for after every evaluation and at least this often (real time).
const HOST_SCAN: Duration = Duration::from_secs(60);

/// Deliveries attempted per pass at most.
const BATCH: usize = 200;

/// Counters since the collector started, per webhook.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub delivered: u64,
    pub attempts_failed: u64,
    pub given_up: u64,
}

/// What `/metrics` shows about webhooks: [`WebhookStats::render_prometheus`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookStats {
    /// Deliveries queued since the collector started.
    pub deliveries_queued: u64,
    /// Per webhook: counters since start, and the outbox's durable figures.
    pub webhooks: BTreeMap<String, (Counters, outbox::WebhookCounts)>,
}

impl WebhookStats {
    /// Prometheus text exposition lines (HELP/TYPE included), to append to `/metrics`.
    pub fn render_prometheus(&self) -> String {
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str, values: Vec<(String, u64)>| {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
            for (webhook, v) in values {
                out.push_str(&format!("{name}{{webhook=\"{webhook}\"}} {v}\n"));
            }
        };
        let per = |f: &dyn Fn(&(Counters, outbox::WebhookCounts)) -> u64| {
            self.webhooks
                .iter()
                .map(|(k, v)| (k.clone(), f(v)))
                .collect::<Vec<_>>()
        };
        family(
            "vigil_webhook_deliveries_total",
            "counter",
            "Webhook deliveries acknowledged with a 2xx since the collector started.",
            per(&|v| v.0.delivered),
        );
        family(
            "vigil_webhook_delivery_failures_total",
            "counter",
            "Webhook delivery attempts that failed (and were retried or given up) since the collector started.",
            per(&|v| v.0.attempts_failed),
        );
        family(
            "vigil_webhook_deliveries_given_up_total",
            "counter",
            "Webhook deliveries given up after their maximum age since the collector started.",
            per(&|v| v.0.given_up),
        );
        family(
            "vigil_webhook_outbox_pending",
            "gauge",
            "Webhook deliveries waiting in the outbox.",
            per(&|v| v.1.pending),
        );
        family(
            "vigil_webhook_outbox_failed",
            "gauge",
            "Webhook deliveries recorded as failed in the outbox (kept 30 days).",
            per(&|v| v.1.failed),
        );
        out.push_str(
            "# HELP vigil_webhook_deliveries_queued_total Webhook deliveries queued since the collector started.\n\
             # TYPE vigil_webhook_deliveries_queued_total counter\n",
        );
        out.push_str(&format!(
            "vigil_webhook_deliveries_queued_total {}\n",
            self.deliveries_queued
        ));
        out
    }
}

#[derive(Debug, Default)]
struct Shared {
    deliveries_queued: u64,
    counters: BTreeMap<String, Counters>,
}

/// A handle on the running webhooks stage.
#[derive(Debug, Clone)]
pub struct WebhooksHandle {
    outbox: Outbox,
    shared: Arc<Mutex<Shared>>,
    webhooks: Arc<Vec<Webhook>>,
}

impl WebhooksHandle {
    /// Counters and outbox figures for `/metrics`.
    pub async fn stats(&self) -> Result<WebhookStats, OutboxError> {
        let outbox = self.outbox.clone();
        let counts = blocking(move || outbox.counts()).await?;
        let shared = self.shared.lock().map_err(|_| OutboxError::Poisoned)?;
        let mut stats = WebhookStats {
            deliveries_queued: shared.deliveries_queued,
            webhooks: BTreeMap::new(),
        };
        for w in self.webhooks.iter() {
            stats.webhooks.insert(
                w.name.clone(),
                (
                    shared.counters.get(&w.name).cloned().unwrap_or_default(),
                    outbox::WebhookCounts {
                        webhook: w.name.clone(),
                        ..Default::default()
                    },
                ),
            );
        }
        for c in counts {
            if let Some(entry) = stats.webhooks.get_mut(&c.webhook) {
                entry.1 = c;
            }
        }
        Ok(stats)
    }

    /// The outbox (tests and inspection).
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, OutboxError> + Send + 'static,
) -> Result<T, OutboxError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| OutboxError::Join(e.to_string()))?
}

/// What the stage needs.
pub struct Context {
    pub data_dir: PathBuf,
    pub webhooks: Vec<Webhook>,
    pub options: WebhookOptions,
    pub store: Arc<dyn Store>,
    pub isms: Option<Arc<Isms>>,
    /// The engine clock: event times and staleness are judged on it.
    pub clock: Arc<dyn Clock>,
    /// Bumped after every saved evaluation (see `EngineHandle::evaluations`).
    pub evaluations: Option<watch::Receiver<u64>>,
    pub shutdown: watch::Receiver<bool>,
}

/// Opens the outbox and starts the stage.
pub fn spawn(context: Context) -> Result<(WebhooksHandle, JoinHandle<()>), OutboxError> {
    let outbox = Outbox::open(&context.data_dir)?;
    let names: Vec<String> = context.webhooks.iter().map(|w| w.name.clone()).collect();
    let dropped = outbox.fail_unconfigured(&names, Utc::now().timestamp_millis())?;
    if dropped > 0 {
        tracing::warn!(
            deliveries = dropped,
            "pending webhook deliveries to webhooks no longer configured recorded as failed"
        );
    }
    let handle = WebhooksHandle {
        outbox: outbox.clone(),
        shared: Arc::new(Mutex::new(Shared::default())),
        webhooks: Arc::new(context.webhooks),
    };
    let client = http_client()?;
    let stage = Stage {
        handle: handle.clone(),
        client,
        store: context.store,
        isms: context.isms,
        clock: context.clock,
        options: context.options,
    };
    let task = tokio::spawn(Arc::new(stage).run(context.evaluations, context.shutdown));
    Ok((handle, task))
}

fn http_client() -> Result<reqwest::Client, OutboxError> {
    crate::tls::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(native.certs);
    if added == 0 {
        tracing::warn!("no system CA certificates found; HTTPS webhooks will fail");
    }
    let tls = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(format!("vigil-collector/{}", vigil_shared::VERSION))
        .build()
        .map_err(|e| OutboxError::Join(format!("cannot build the HTTP client: {e}")))
}

struct Stage {
    handle: WebhooksHandle,
    client: reqwest::Client,
    store: Arc<dyn Store>,
    isms: Option<Arc<Isms>>,
    clock: Arc<dyn Clock>,
    options: WebhookOptions,
}

/// The delay before attempt `attempts + 1`: `initial × 2^attempts`, capped, with jitter
/// (between half and all of it).
pub fn backoff(initial: Duration, max: Duration, attempts: u32, jitter: f64) -> Duration {
    let factor = 2u32.saturating_pow(attempts.min(31));
    let full = initial.saturating_mul(factor).min(max);
    full.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

impl Stage {
    async fn run(
        self: Arc<Self>,
        mut evaluations: Option<watch::Receiver<u64>>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let poll = Duration::from_millis(self.options.poll_ms);
        let mut evaluated = true;
        let mut last_host_scan: Option<std::time::Instant> = None;
        loop {
            if *shutdown.borrow() {
                return;
            }
            let scan_hosts = last_host_scan.is_none_or(|t| t.elapsed() >= HOST_SCAN);
            if scan_hosts || evaluated {
                last_host_scan = Some(std::time::Instant::now());
            }
            if let Err(e) = self.produce(evaluated, scan_hosts).await {
                tracing::error!(error = %e, "deriving webhook events failed; retried at the next pass");
            }
            let mut shutdown_for_delivery = shutdown.clone();
            tokio::select! {
                r = self.deliver() => if let Err(e) = r {
                    tracing::error!(error = %e, "webhook outbox failed; retried at the next pass");
                },
                _ = shutdown_for_delivery.wait_for(|s| *s) => return,
            }
            let now_ms = Utc::now().timestamp_millis();
            let outbox = self.handle.outbox.clone();
            let sleep = match blocking(move || outbox.next_due_ms()).await {
                Ok(Some(due)) => {
                    Duration::from_millis(u64::try_from(due.saturating_sub(now_ms)).unwrap_or(0))
                        .clamp(Duration::from_millis(10), poll)
                }
                _ => poll,
            };
            evaluated = false;
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                changed = async {
                    match evaluations.as_mut() {
                        Some(rx) => rx.changed().await.is_ok(),
                        None => std::future::pending().await,
                    }
                } => {
                    if changed {
                        evaluated = true;
                    } else {
                        evaluations = None;
                    }
                }
                _ = shutdown.wait_for(|s| *s) => return,
            }
        }
    }

    /// Derives events since the cursor and queues them with the cursor, in one transaction.
    async fn produce(&self, evaluation: bool, hosts: bool) -> Result<(), String> {
        let now = self.clock.now();
        let outbox = self.handle.outbox.clone();
        let cursor = blocking(move || outbox.cursor())
            .await
            .map_err(|e| e.to_string())?;
        let cursor = cursor
            .map(chrono::DateTime::from_timestamp_nanos)
            .unwrap_or(now);
        let stale_after = match (self.options.host_stale_after_secs, &self.isms) {
            (Some(secs), _) => {
                chrono::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 1000))
            }
            (None, Some(isms)) => isms.policy.stale_after,
            (None, None) => chrono::Duration::hours(24),
        };
        let from = cursor - REREAD;
        let events = derive::derive(
            self.store.as_ref(),
            self.isms.as_deref(),
            derive::Pass {
                from,
                now,
                evaluation,
                hosts,
                stale_after,
            },
        )
        .await
        .map_err(|e| e.to_string())?;
        let routed: Vec<(Event, Vec<String>)> = events
            .into_iter()
            .map(|e| {
                let to = self
                    .handle
                    .webhooks
                    .iter()
                    .filter(|w| w.filter.accepts(&e))
                    .map(|w| w.name.clone())
                    .collect();
                (e, to)
            })
            .collect();
        let outbox = self.handle.outbox.clone();
        let new_cursor = now.max(cursor).timestamp_nanos_opt().unwrap_or(i64::MAX);
        let forget = (from - REREAD).timestamp_nanos_opt().unwrap_or(i64::MIN);
        let queued = blocking(move || {
            outbox.enqueue(&routed, new_cursor, forget, Utc::now().timestamp_millis())
        })
        .await
        .map_err(|e| e.to_string())?;
        if queued > 0 {
            tracing::info!(deliveries = queued, "webhook deliveries queued");
            if let Ok(mut shared) = self.handle.shared.lock() {
                shared.deliveries_queued += queued as u64;
            }
        }
        Ok(())
    }

    /// Attempts the due deliveries, webhooks in parallel (a slow or dead receiver does not
    /// delay the others), each webhook's oldest first; a webhook that fails waits (with all its
    /// later deliveries) for its backoff.
    async fn deliver(self: &Arc<Self>) -> Result<(), OutboxError> {
        let outbox = self.handle.outbox.clone();
        let now_ms = Utc::now().timestamp_millis();
        let due = blocking(move || outbox.due(now_ms, BATCH)).await?;
        let mut per_webhook: BTreeMap<String, Vec<outbox::Due>> = BTreeMap::new();
        for d in due {
            per_webhook.entry(d.webhook.clone()).or_default().push(d);
        }
        let mut running = tokio::task::JoinSet::new();
        for (name, dues) in per_webhook {
            let Some(index) = self.handle.webhooks.iter().position(|w| w.name == name) else {
                continue;
            };
            let stage = Arc::clone(self);
            running.spawn(async move { stage.deliver_webhook(index, dues).await });
        }
        let mut outcome = Ok(());
        while let Some(joined) = running.join_next().await {
            match joined {
                Ok(Ok(())) => {}
                Ok(Err(e)) => outcome = Err(e),
                Err(e) => outcome = Err(OutboxError::Join(e.to_string())),
            }
        }
        outcome
    }

    /// One webhook's due deliveries in order, until one fails.
    async fn deliver_webhook(
        &self,
        index: usize,
        dues: Vec<outbox::Due>,
    ) -> Result<(), OutboxError> {
        let Some(webhook) = self.handle.webhooks.get(index) else {
            return Ok(());
        };
        for d in dues {
            let outcome = match serde_json::from_str::<Event>(&d.event) {
                Ok(event) => self.attempt(webhook, &event).await,
                Err(e) => Err(format!("stored event unreadable: {e}")),
            };
            let outbox = self.handle.outbox.clone();
            let now_ms = Utc::now().timestamp_millis();
            match outcome {
                Ok(()) => {
                    blocking(move || outbox.delivered(d.seq, now_ms)).await?;
                    self.count(&webhook.name, |c| c.delivered += 1);
                    tracing::debug!(webhook = %webhook.name, event = %d.event_id, "webhook delivered");
                }
                Err(error) => {
                    self.count(&webhook.name, |c| c.attempts_failed += 1);
                    let deadline = d.queued_at_ms.saturating_add(
                        i64::try_from(webhook.max_age.as_millis()).unwrap_or(i64::MAX),
                    );
                    let attempts = d.attempts + 1;
                    if now_ms >= deadline {
                        let why = format!("gave up after {attempts} attempt(s): {error}");
                        tracing::error!(webhook = %webhook.name, event = %d.event_id, attempts, %error, "webhook delivery given up");
                        blocking(move || outbox.give_up(d.seq, &why, now_ms)).await?;
                        self.count(&webhook.name, |c| c.given_up += 1);
                    } else {
                        let delay = backoff(
                            webhook.retry_initial,
                            webhook.retry_max,
                            d.attempts,
                            rand::rng().random::<f64>(),
                        );
                        let next = now_ms
                            .saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX))
                            .min(deadline);
                        tracing::warn!(webhook = %webhook.name, event = %d.event_id, attempts, %error, retry_in_ms = next - now_ms, "webhook delivery failed; will retry");
                        let name = webhook.name.clone();
                        blocking(move || outbox.attempt_failed(d.seq, &name, &error, next)).await?;
                    }
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn count(&self, webhook: &str, f: impl FnOnce(&mut Counters)) {
        if let Ok(mut shared) = self.handle.shared.lock() {
            f(shared.counters.entry(webhook.to_string()).or_default());
        }
    }

    /// One signed POST. The error never contains the URL (Slack and Teams URLs are secrets).
    async fn attempt(&self, webhook: &Webhook, event: &Event) -> Result<(), String> {
        let body = format::render(event, webhook.format);
        let timestamp = Utc::now().timestamp();
        let signature = sign::signature_header(&webhook.secret, timestamp, &body);
        let response = self
            .client
            .post(webhook.url.clone())
            .timeout(webhook.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(sign::SIGNATURE_HEADER, signature)
            .header(sign::IDEMPOTENCY_HEADER, &event.id)
            .header(sign::EVENT_KIND_HEADER, event.kind.as_str())
            .body(body)
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("HTTP {}", status.as_u16()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::engine::ManualClock;
    use crate::store::EvaluationBatch;
    use crate::store::sqlite::SqliteStore;
    use crate::testutil::t0;

    fn nc_change(
        key: &str,
        at: chrono::DateTime<Utc>,
    ) -> crate::evaluate::nonconformities::NcChange {
        use crate::evaluate::*;
        crate::evaluate::nonconformities::NcChange {
            nc: Nonconformity {
                id: 0,
                key: key.into(),
                source: NcSource::Rule,
                title: format!("nc {key}"),
                grade: crate::isms::Grade::Major,
                state: NcState::Open,
                controls: vec!["A.8.2".into()],
                machine_id: None,
                hostname: None,
                subject: "access.no-extra-uid0".into(),
                opened_at: at,
                updated_at: at,
                owner: None,
                root_cause: None,
                corrective_action: None,
                due: None,
                resolved_at: None,
                verified_at: None,
                closed_at: None,
                close_reason: None,
                green_streak: 0,
                last_green: None,
                recurrence_of: None,
            },
            events: vec![NcEvent {
                at,
                actor: SYSTEM_ACTOR.into(),
                kind: NcEventKind::Opened,
                from: None,
                to: NcState::Open,
                note: String::new(),
            }],
            base: None,
        }
    }

    /// Starts the stage with one webhook "down" (nothing listens on its port).
    fn start_stage(
        dir: &std::path::Path,
        store: Arc<dyn Store>,
        now: chrono::DateTime<Utc>,
        extra: &str,
    ) -> (WebhooksHandle, JoinHandle<()>, watch::Sender<bool>) {
        start_stage_with(
            dir,
            store,
            now,
            &[format!(
                "name = \"down\"\nurl = \"http://127.0.0.1:9/\"\nsecret = \"0123456789abcdef\"\n{extra}"
            )],
        )
    }

    fn start_stage_with(
        dir: &std::path::Path,
        store: Arc<dyn Store>,
        now: chrono::DateTime<Utc>,
        webhooks: &[String],
    ) -> (WebhooksHandle, JoinHandle<()>, watch::Sender<bool>) {
        let (stop, shutdown) = watch::channel(false);
        let configs: Vec<WebhookConfig> = webhooks
            .iter()
            .map(|w| toml::from_str(w).unwrap())
            .collect();
        let webhook = config::validate(&configs).unwrap();
        let (handle, task) = spawn(Context {
            data_dir: dir.to_path_buf(),
            webhooks: webhook,
            options: WebhookOptions {
                poll_ms: 20,
                host_stale_after_secs: None,
            },
            store,
            isms: None,
            clock: Arc::new(ManualClock::new(now)),
            evaluations: None,
            shutdown,
        })
        .unwrap();
        (handle, task, stop)
    }

    /// Runs the stage for many passes, stops it and says how many deliveries are pending.
    async fn run_stage(
        dir: &std::path::Path,
        store: Arc<dyn Store>,
        now: chrono::DateTime<Utc>,
    ) -> u64 {
        let (handle, task, stop) = start_stage(dir, store, now, "retry_initial_ms = 60000");
        // Many passes (every 20 ms): a duplicate would show.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let pending = handle.stats().await.unwrap().webhooks["down"].1.pending;
        stop.send(true).unwrap();
        task.await.unwrap();
        pending
    }

    /// The collector dies after the evaluation committed and before the events were queued:
    /// the next start derives them from the store, once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn events_committed_before_a_crash_are_queued_at_the_next_start_once() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("store")).unwrap());
        let cursor = t0() + chrono::Duration::days(1);
        // The outbox had derived everything up to `cursor` when the collector died.
        Outbox::open(dir.path())
            .unwrap()
            .enqueue(&[], cursor.timestamp_nanos_opt().unwrap(), 0, 0)
            .unwrap();
        for (key, at) in [
            ("too-old", cursor - chrono::Duration::minutes(30)),
            ("committed-late", cursor - chrono::Duration::minutes(5)),
            ("after-cursor", cursor + chrono::Duration::minutes(1)),
        ] {
            store
                .save_evaluation(EvaluationBatch {
                    at,
                    nc_changes: vec![nc_change(key, at)],
                    ..Default::default()
                })
                .await
                .unwrap();
        }
        let now = cursor + chrono::Duration::minutes(2);
        assert_eq!(run_stage(dir.path(), Arc::clone(&store), now).await, 2);
        // Restarted again: the same happenings are derived again and recognised.
        assert_eq!(run_stage(dir.path(), Arc::clone(&store), now).await, 2);
        let outbox = Outbox::open(dir.path()).unwrap();
        let due = outbox.due(i64::MAX, 10).unwrap();
        let keys: Vec<String> = due
            .iter()
            .map(|d| {
                serde_json::from_str::<Event>(&d.event)
                    .unwrap()
                    .nonconformity
                    .unwrap()
                    .key
            })
            .collect();
        assert_eq!(keys, ["committed-late", "after-cursor"]);
        store.close().await.unwrap();
    }

    /// A receiver that stays down: retried until `max_age_secs`, then given up, recorded with
    /// its last error, and counted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_delivery_is_given_up_only_after_its_maximum_age_and_the_failure_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("store")).unwrap());
        let at = t0();
        Outbox::open(dir.path())
            .unwrap()
            .enqueue(&[], at.timestamp_nanos_opt().unwrap(), 0, 0)
            .unwrap();
        store
            .save_evaluation(EvaluationBatch {
                at,
                nc_changes: vec![nc_change("doomed", at)],
                ..Default::default()
            })
            .await
            .unwrap();
        let started = std::time::Instant::now();
        let (handle, task, stop) = start_stage(
            dir.path(),
            Arc::clone(&store),
            at,
            "retry_initial_ms = 50\nretry_max_ms = 200\nmax_age_secs = 2",
        );
        let mut given_up_after = None;
        while started.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let stats = handle.stats().await.unwrap();
            let (counters, counts) = &stats.webhooks["down"];
            // The outbox records first, the counter follows: wait for both.
            if counts.failed == 1 && counters.given_up == 1 {
                given_up_after = Some(started.elapsed());
                assert_eq!(counts.pending, 0);
                assert!(
                    counters.attempts_failed >= 5,
                    "{counters:?}: retried meanwhile"
                );
                break;
            }
        }
        let after = given_up_after.expect("given up within 10 s");
        assert!(
            after >= Duration::from_secs(2),
            "not before max_age_secs: {after:?}"
        );
        let failures = handle.outbox().failures().unwrap();
        assert_eq!(failures.len(), 1);
        assert!(failures[0].2.starts_with("gave up after "), "{failures:?}");
        let text = handle.stats().await.unwrap().render_prometheus();
        assert!(text.contains("vigil_webhook_deliveries_given_up_total{webhook=\"down\"} 1"));
        stop.send(true).unwrap();
        task.await.unwrap();
        store.close().await.unwrap();
    }

    /// A receiver that accepts connections and never answers holds only its own webhook: the
    /// other one (processed after it if webhooks were served in turn) is delivered at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hanging_receiver_does_not_delay_the_other_webhooks() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("store")).unwrap());
        let at = t0();
        Outbox::open(dir.path())
            .unwrap()
            .enqueue(&[], at.timestamp_nanos_opt().unwrap(), 0, 0)
            .unwrap();
        for key in ["one", "two", "three"] {
            store
                .save_evaluation(EvaluationBatch {
                    at,
                    nc_changes: vec![nc_change(key, at)],
                    ..Default::default()
                })
                .await
                .unwrap();
        }
        // Accepts, reads nothing, answers nothing.
        let hanging = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hanging_port = hanging.local_addr().unwrap().port();
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = hanging.accept().await {
                held.push(socket);
            }
        });
        let received = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = Arc::clone(&received);
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(move || {
                let counter = Arc::clone(&counter);
                async move {
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    "ok"
                }
            }),
        );
        let fast = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fast_port = fast.local_addr().unwrap().port();
        let serve = tokio::spawn(async move { axum::serve(fast, app).await });
        let secret = "secret = \"0123456789abcdef\"";
        let started = std::time::Instant::now();
        let (_handle, task, stop) = start_stage_with(
            dir.path(),
            Arc::clone(&store),
            at,
            &[
                format!(
                    "name = \"a-hanging\"\nurl = \"http://127.0.0.1:{hanging_port}/\"\n{secret}\ntimeout_secs = 5"
                ),
                format!("name = \"b-fast\"\nurl = \"http://127.0.0.1:{fast_port}/\"\n{secret}"),
            ],
        );
        while received.load(std::sync::atomic::Ordering::SeqCst) < 3 {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "never delivered"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "waited for the hanging receiver: {:?}",
            started.elapsed()
        );
        stop.send(true).unwrap();
        task.await.unwrap();
        hold.abort();
        serve.abort();
        store.close().await.unwrap();
    }

    #[test]
    fn backoff_doubles_caps_and_jitters_within_half() {
        let (i, m) = (Duration::from_millis(100), Duration::from_secs(5));
        assert_eq!(backoff(i, m, 0, 1.0), Duration::from_millis(100));
        assert_eq!(backoff(i, m, 3, 1.0), Duration::from_millis(800));
        assert_eq!(backoff(i, m, 3, 0.0), Duration::from_millis(400));
        assert_eq!(backoff(i, m, 10, 1.0), m, "capped");
        assert_eq!(backoff(i, m, u32::MAX, 1.0), m, "no overflow");
        for attempts in 0..40 {
            let d = backoff(i, m, attempts, 0.37);
            assert!(d >= i / 2 && d <= m, "{attempts}: {d:?}");
        }
    }

    #[test]
    fn the_exposition_names_every_webhook() {
        let mut stats = WebhookStats {
            deliveries_queued: 3,
            ..Default::default()
        };
        stats.webhooks.insert(
            "soc".into(),
            (
                Counters {
                    delivered: 2,
                    attempts_failed: 5,
                    given_up: 1,
                },
                outbox::WebhookCounts {
                    webhook: "soc".into(),
                    pending: 4,
                    delivered: 2,
                    failed: 1,
                },
            ),
        );
        let text = stats.render_prometheus();
        assert!(
            text.contains("vigil_webhook_deliveries_total{webhook=\"soc\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("vigil_webhook_delivery_failures_total{webhook=\"soc\"} 5\n"));
        assert!(text.contains("vigil_webhook_deliveries_given_up_total{webhook=\"soc\"} 1\n"));
        assert!(text.contains("vigil_webhook_outbox_pending{webhook=\"soc\"} 4\n"));
        assert!(text.contains("vigil_webhook_deliveries_queued_total 3\n"));
    }
}
