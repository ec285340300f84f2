//! The one place that wires the collector together and owns shutdown: open the store, bind the
//! listener (HTTP or HTTPS), serve ingest and the read API, and on the shutdown signal stop
//! accepting, drain in-flight requests for the grace period, then close the store (which
//! finishes every queued write).
//!
//! Later stages (evaluate, outputs) hang off the same store and the same shutdown here.

#[cfg(test)]
mod tests;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use tokio::task::JoinHandle;

use crate::engine::{self, Clock, Engine, EngineHandle, SystemClock};
use crate::http::{self, AppState, Limits};
use crate::isms::{Isms, Problem};
use crate::settings::{CollectorConfig, StorageBackend};
use crate::store::sqlite::SqliteStore;
use crate::store::{Store, StoreError};
use crate::tls::{self, TlsError};

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
    #[error("the HTTP server task failed: {0}")]
    Join(tokio::task::JoinError),
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
    #[error(transparent)]
    EvaluatorLock(#[from] crate::evaluator_lock::LockError),
    #[error("cannot start the webhooks: {0}")]
    Webhooks(String),
    #[error("the ISMS definition in {dir} has {} problem(s):\n{}", problems.len(), problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Isms {
        dir: std::path::PathBuf,
        problems: Vec<Problem>,
    },
}

/// Loads and validates the ISMS the configuration names (none when `[isms] dir` is unset).
/// Warnings are logged; errors refuse the start.
pub fn load_isms(config: &CollectorConfig) -> Result<Option<Arc<Isms>>, PipelineError> {
    let Some(dir) = &config.isms.dir else {
        return Ok(None);
    };
    match crate::isms::load_dir(dir) {
        Ok((isms, warnings)) => {
            for w in &warnings {
                tracing::warn!(problem = %w, "ISMS definition");
            }
            tracing::info!(
                dir = %dir.display(),
                controls = isms.controls.len(),
                rules = isms.rules.len(),
                kpis = isms.kpis.len(),
                objectives = isms.objectives.len(),
                "ISMS definition loaded"
            );
            Ok(Some(Arc::new(isms)))
        }
        Err(problems) => Err(PipelineError::Isms {
            dir: dir.clone(),
            problems,
        }),
    }
}

/// How to start beyond the configuration file.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// The clock for received times and evaluations.
    pub clock: Arc<dyn Clock>,
    /// The ISMS to evaluate (see [`load_isms`]).
    pub isms: Option<Arc<Isms>>,
    /// Evaluate every `policy.evaluation_interval`; otherwise only when asked through the
    /// engine handle (tests that drive a manual clock).
    pub scheduled_engine: bool,
}

impl Default for StartOptions {
    fn default() -> Self {
        StartOptions {
            clock: Arc::new(SystemClock),
            isms: None,
            scheduled_engine: true,
        }
    }
}

/// Opens the store the configuration names.
pub async fn open_store(config: &CollectorConfig) -> Result<Arc<dyn Store>, PipelineError> {
    match config.storage.backend {
        StorageBackend::Sqlite => {
            let dir = config.storage.data_dir.clone();
            let store = tokio::task::spawn_blocking(move || SqliteStore::open(&dir))
                .await
                .map_err(PipelineError::Join)??;
            Ok(Arc::new(store))
        }
        StorageBackend::Clickhouse => {
            let store =
                crate::store::clickhouse::ClickHouseStore::open(&config.storage.clickhouse).await?;
            Ok(Arc::new(store))
        }
    }
}

/// A collector that is serving.
pub struct Running {
    local_addr: SocketAddr,
    tls: bool,
    handle: Handle<SocketAddr>,
    in_flight: Arc<AtomicUsize>,
    server: JoinHandle<std::io::Result<()>>,
    store: Arc<dyn Store>,
    grace: Duration,
    engine: Option<EngineHandle>,
    engine_task: Option<JoinHandle<()>>,
    stop_engine: tokio::sync::watch::Sender<bool>,
    /// Held while the engine may evaluate (one evaluator per store).
    evaluator_lock: Option<crate::evaluator_lock::EvaluatorLock>,
    webhooks: Option<crate::webhooks::WebhooksHandle>,
    webhooks_task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("local_addr", &self.local_addr)
            .field("tls", &self.tls)
            .finish()
    }
}

/// Opens the store, binds the listener and starts serving in the background, with the ISMS
/// the configuration names evaluated on the system clock.
pub async fn start(config: &CollectorConfig) -> Result<Running, PipelineError> {
    let isms = load_isms(config)?;
    start_with(
        config,
        StartOptions {
            isms,
            ..StartOptions::default()
        },
    )
    .await
}

/// [`start`] with explicit options.
pub async fn start_with(
    config: &CollectorConfig,
    options: StartOptions,
) -> Result<Running, PipelineError> {
    tls::install_crypto_provider();
    let store = open_store(config).await?;
    match serve_with(config, Arc::clone(&store), options).await {
        Ok(running) => Ok(running),
        Err(e) => {
            if let Err(close) = store.close().await {
                tracing::warn!(error = %close, "closing the store after a failed start failed");
            }
            Err(e)
        }
    }
}

async fn serve_with(
    config: &CollectorConfig,
    store: Arc<dyn Store>,
    options: StartOptions,
) -> Result<Running, PipelineError> {
    let server_config = &config.server;
    let tls_config = match server_config.tls() {
        Some((cert, key)) => Some(tls::server_config_with_clients(
            cert,
            key,
            server_config.client_ca.as_deref(),
        )?),
        None => None,
    };
    let (stop_engine, engine_stop_rx) = tokio::sync::watch::channel(false);
    let evaluator_lock = match &options.isms {
        Some(_) => Some(crate::evaluator_lock::EvaluatorLock::acquire(
            &config.storage.data_dir,
            "serve",
        )?),
        None => None,
    };
    let metrics = Arc::new(crate::metrics::Metrics::new()?);
    let engine = match &options.isms {
        Some(isms) => {
            let engine = Engine::resume(Arc::clone(isms), Arc::clone(&store)).await?;
            // Collectors sharing a ClickHouse database elect one evaluator; a SQLite store
            // has one user (the evaluator lock above).
            let election = (config.storage.backend == StorageBackend::Clickhouse).then(|| {
                engine::Election::new(
                    options.clock.now(),
                    isms.policy
                        .evaluation_interval
                        .to_std()
                        .unwrap_or(std::time::Duration::from_secs(60)),
                )
            });
            Some(engine::spawn(
                engine,
                Arc::clone(&options.clock),
                options.scheduled_engine,
                engine_stop_rx,
                Arc::clone(&metrics),
                election,
            ))
        }
        None => None,
    };
    let webhooks = start_webhooks(config, &store, &options, &engine, &stop_engine)?;
    let state = AppState {
        store: Arc::clone(&store),
        isms: options.isms.clone(),
        clock: Arc::clone(&options.clock),
        engine: engine.as_ref().map(|(handle, _)| handle.clone()),
        limits: Limits {
            max_body_bytes: server_config.max_body_bytes,
            max_decompressed_bytes: server_config.max_decompressed_bytes,
        },
        request_timeout: server_config.request_timeout(),
        in_flight: Arc::new(AtomicUsize::new(0)),
        metrics: Arc::clone(&metrics),
        webhooks: webhooks.as_ref().map(|(handle, _)| handle.clone()),
        isms_digest: config
            .isms
            .dir
            .as_deref()
            .and_then(|dir| crate::export::pack_digest(dir).ok()),
        collector_key: match crate::export::collector_key(&config.storage.data_dir) {
            Ok(key) => Some(Arc::new(key)),
            Err(e) => {
                tracing::error!(error = %e, "cannot load the collector key; exports are refused");
                None
            }
        },
    };
    let in_flight = Arc::clone(&state.in_flight);
    let rate_limits = http::rate::RateLimits::new(
        server_config.rate_limit.per_address(),
        server_config.rate_limit.per_principal(),
    );
    let app = http::rate::with_rate_limits(http::router(state), rate_limits)
        .into_make_service_with_connect_info::<std::net::SocketAddr>();

    let addr = server_config.listen;
    let bind_error = |source| PipelineError::Bind { addr, source };
    let listener = std::net::TcpListener::bind(addr).map_err(bind_error)?;
    listener.set_nonblocking(true).map_err(bind_error)?;
    let local_addr = listener.local_addr().map_err(bind_error)?;

    let handle = Handle::new();
    let header_timeout = server_config.header_read_timeout();
    let tls = tls_config.is_some();
    let server = match tls_config {
        Some(tls_config) => {
            let mut server =
                axum_server::from_tcp_rustls(listener, RustlsConfig::from_config(tls_config))
                    .map_err(bind_error)?
                    .map(|acceptor| {
                        acceptor.handshake_timeout(server_config.tls_handshake_timeout())
                    })
                    .handle(handle.clone())
                    .first_request_timeout(header_timeout);
            server
                .http_builder()
                .http1()
                .header_read_timeout(header_timeout);
            tokio::spawn(server.serve(app))
        }
        None => {
            let mut server = axum_server::from_tcp(listener)
                .map_err(bind_error)?
                .handle(handle.clone())
                .first_request_timeout(header_timeout);
            server
                .http_builder()
                .http1()
                .header_read_timeout(header_timeout);
            tokio::spawn(server.serve(app))
        }
    };
    tracing::info!(
        listen = %local_addr,
        tls,
        max_body_bytes = server_config.max_body_bytes,
        max_decompressed_bytes = server_config.max_decompressed_bytes,
        "collector listening"
    );
    let (engine, engine_task) = match engine {
        Some((handle, task)) => (Some(handle), Some(task)),
        None => (None, None),
    };
    Ok(Running {
        local_addr,
        tls,
        handle,
        in_flight,
        server,
        store,
        grace: server_config.shutdown_grace(),
        engine,
        engine_task,
        stop_engine,
        evaluator_lock,
        webhooks: webhooks.as_ref().map(|(handle, _)| handle.clone()),
        webhooks_task: webhooks.map(|(_, task)| task),
    })
}

/// The alert webhooks stage, when webhooks are configured; it stops with the engine.
fn start_webhooks(
    config: &CollectorConfig,
    store: &Arc<dyn Store>,
    options: &StartOptions,
    engine: &Option<(EngineHandle, JoinHandle<()>)>,
    stop: &tokio::sync::watch::Sender<bool>,
) -> Result<Option<(crate::webhooks::WebhooksHandle, JoinHandle<()>)>, PipelineError> {
    if config.webhooks.is_empty() {
        return Ok(None);
    }
    let webhooks =
        crate::webhooks::config::validate(&config.webhooks).map_err(PipelineError::Webhooks)?;
    let started = crate::webhooks::spawn(crate::webhooks::Context {
        data_dir: config.storage.data_dir.clone(),
        webhooks,
        options: config.webhook_options.clone(),
        store: Arc::clone(store),
        isms: options.isms.clone(),
        clock: Arc::clone(&options.clock),
        evaluations: engine.as_ref().map(|(handle, _)| handle.evaluations()),
        shutdown: stop.subscribe(),
    })
    .map_err(|e| PipelineError::Webhooks(e.to_string()))?;
    tracing::info!(webhooks = config.webhooks.len(), "alert webhooks started");
    Ok(Some(started))
}

impl Running {
    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The ISMS engine, when an ISMS is configured.
    pub fn engine(&self) -> Option<&EngineHandle> {
        self.engine.as_ref()
    }

    /// The alert webhooks stage, when webhooks are configured (its `stats()` feed `/metrics`).
    pub fn webhooks(&self) -> Option<&crate::webhooks::WebhooksHandle> {
        self.webhooks.as_ref()
    }

    /// Connections currently open.
    pub fn connections(&self) -> usize {
        self.handle.connection_count()
    }

    /// Requests being handled now.
    pub fn requests_in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Stops accepting, lets in-flight requests finish within the grace period (then closes
    /// their connections), and closes the store after its queued writes.
    pub async fn shutdown(self) -> Result<(), PipelineError> {
        let in_flight_now = self.requests_in_flight();
        let Running {
            handle,
            server,
            store,
            grace,
            engine_task,
            stop_engine,
            evaluator_lock,
            webhooks_task,
            ..
        } = self;
        tracing::info!(
            connections = handle.connection_count(),
            requests = in_flight_now,
            grace_secs = grace.as_secs_f64(),
            "shutting down: no new connections, draining requests in flight"
        );
        handle.graceful_shutdown(Some(grace));
        let served = server.await;
        // An evaluation in progress finishes (its batch is one transaction) before the store
        // closes.
        let _ = stop_engine.send(true);
        if let Some(task) = engine_task {
            let _ = task.await;
        }
        drop(evaluator_lock);
        if let Some(task) = webhooks_task {
            let _ = task.await;
        }
        // The store closes whatever happened to the server: acknowledged writes are already
        // durable, queued ones are finished by close().
        let closed = store.close().await;
        served
            .map_err(PipelineError::Join)?
            .map_err(PipelineError::Serve)?;
        closed?;
        tracing::info!("collector stopped");
        Ok(())
    }

    /// Serves until `signal` completes (or the server fails), then shuts down.
    pub async fn run_until(
        mut self,
        signal: impl Future<Output = ()>,
    ) -> Result<(), PipelineError> {
        tokio::select! {
            () = signal => self.shutdown().await,
            served = &mut self.server => {
                // The server stopped on its own: that is a failure, but the store still closes.
                let _ = self.stop_engine.send(true);
                if let Some(task) = self.engine_task.take() {
                    let _ = task.await;
                }
                if let Some(task) = self.webhooks_task.take() {
                    let _ = task.await;
                }
                let closed = self.store.close().await;
                served.map_err(PipelineError::Join)?.map_err(PipelineError::Serve)?;
                closed?;
                Err(PipelineError::Serve(std::io::Error::other("the listener stopped unexpectedly")))
            }
        }
    }
}

/// `vigil-collector serve`: runs until `signal`, then shuts down in order.
pub async fn run(
    config: &CollectorConfig,
    signal: impl Future<Output = ()>,
) -> Result<(), PipelineError> {
    start(config).await?.run_until(signal).await
}

/// Completes on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received"),
        () = term => tracing::info!("SIGTERM received"),
    }
}
