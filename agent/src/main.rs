//! `vigil-agent`: the command line. The work lives in the library; this file parses flags,
//! sets up logging and decides exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};

use vigil_agent::collect::{self, Collection};
use vigil_agent::enroll;
use vigil_agent::hostroot::HostRoot;
use vigil_agent::identity;
use vigil_agent::service::{self, RunOptions};
use vigil_agent::settings::{AgentConfig, CollectorSection};
use vigil_agent::spool::Spool;
use vigil_agent::state::AgentState;
use vigil_agent::status;

#[derive(Parser)]
#[command(
    name = "vigil-agent",
    version,
    about = "Gathers ISO/IEC 27001:2022 control evidence on this host"
)]
struct Cli {
    /// Log filter (tracing syntax), e.g. `info` or `vigil_agent=debug`.
    #[arg(long, global = true, default_value = "info", env = "VIGIL_LOG")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every check once and print the report.
    Collect {
        /// Root prefix of the filesystem to audit (a mounted image, a container's root).
        #[arg(long)]
        root: Option<PathBuf>,
        /// Output format: `json` is the wire format, `table` is for people.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Configuration file for check settings and labels (optional).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Run only these checks (repeatable).
        #[arg(long = "check", value_name = "NAME")]
        checks: Vec<String>,
        /// Judge ages against this time instead of the clock (RFC 3339).
        #[arg(long)]
        now: Option<DateTime<Utc>>,
        /// Directory for parsed package-list caches; `none` disables caching.
        #[arg(long)]
        cache_dir: Option<String>,
    },
    /// Run as a service: checks on their schedules, reports spooled and pushed to the collector.
    Run {
        #[arg(long)]
        config: PathBuf,
        /// Collect every enabled check once, deliver the spool, and exit (exit code 3 when a
        /// report stays undelivered or the collector refused one).
        #[arg(long)]
        once: bool,
    },
    /// Check a configuration file and exit.
    Validate {
        #[arg(long)]
        config: PathBuf,
        /// Also require what `run` needs: a [collector] section and a credential (a configured
        /// token, an enrollment record in the state directory, or an enrollment token file).
        #[arg(long)]
        service: bool,
    },
    /// Exchange an enrollment token for this agent's own identity and credential, stored in
    /// the state directory (mode 0600).
    Enroll {
        #[arg(long, default_value = "/etc/vigil/agent.toml")]
        config: PathBuf,
        /// Collector base URL (default: collector.url of the configuration).
        #[arg(long)]
        server: Option<String>,
        /// The enrollment token (visible to other users in the process list: prefer
        /// --token-file).
        #[arg(long, conflicts_with = "token_file")]
        token: Option<String>,
        /// File holding the enrollment token.
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// Name to enroll under (default: agent.id, else this host's name).
        #[arg(long)]
        name: Option<String>,
    },
    /// Show identity, collector, last push, spool depth and the last result of every check.
    Status {
        #[arg(long, default_value = "/etc/vigil/agent.toml")]
        config: PathBuf,
        /// `table` for people, `json` for scripts.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Json,
    Table,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vigil-agent: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never into the journal or a file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn run(cli: Cli) -> Result<ExitCode> {
    let env = vigil_shared::config::process_env();
    match cli.command {
        Command::Validate {
            config: path,
            service,
        } => {
            let config = AgentConfig::load(&path, &env)?;
            if service {
                validate_for_service(&config)?;
            }
            println!("{}: ok", path.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Enroll {
            config,
            server,
            token,
            token_file,
            name,
        } => {
            let config = AgentConfig::load(&config, &env)?;
            enroll(config, server, token, token_file, name)
        }
        Command::Status { config, format } => {
            let config = AgentConfig::load(&config, &env)?;
            let overview = status_overview(&config);
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&overview)?),
                Format::Table => print!("{}", status::render(&overview)),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { config, once } => {
            let config = AgentConfig::load(&config, &env)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .max_blocking_threads(4)
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            let summary = runtime.block_on(async move {
                let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
                tokio::spawn(async move {
                    wait_for_signal().await;
                    tracing::info!("shutdown signal received");
                    let _ = stop_tx.send(true);
                });
                service::run(config, RunOptions { once }, stop_rx).await
            })?;
            if once && (summary.spool_pending > 0 || summary.reports_refused > 0) {
                eprintln!(
                    "vigil-agent: {} report(s) wait in the spool for the collector, {} refused \
                     (kept under the spool's rejected/ folder)",
                    summary.spool_pending, summary.reports_refused
                );
                return Ok(ExitCode::from(3));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Collect {
            root,
            format,
            config,
            checks,
            now,
            cache_dir,
        } => {
            let config = match &config {
                Some(path) => AgentConfig::load(path, &env)?,
                None => AgentConfig::default(),
            };
            let registry = vigil_agent::checks::registry(&config.checks)?;
            for name in &checks {
                if !registry.iter().any(|c| collect::selects(c.as_ref(), name)) {
                    let known = collect::check_names(&registry);
                    bail!("unknown check {name:?}; known checks: {}", known.join(", "));
                }
            }
            let root_path = root.unwrap_or_else(|| config.agent.root.clone());
            let root = HostRoot::new(&root_path)
                .with_context(|| format!("cannot open root {}", root_path.display()))?;
            let cache_dir = match cache_dir.as_deref() {
                Some("none") => None,
                Some(dir) => Some(PathBuf::from(dir)),
                None => default_cache_dir(&config),
            };
            let now = now.unwrap_or_else(Utc::now);
            let collection = Collection {
                root: &root,
                settings: &config.checks,
                now,
                cache_dir,
                checks: &registry,
            };
            let results = collection.run(&checks);
            let host = identity::identify(&root, &config.agent.labels, None);
            let agent_id = config
                .agent
                .id
                .clone()
                .unwrap_or_else(|| "local".to_string());
            let report = collect::build_report(&agent_id, host, 1, now, results, None);
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
                Format::Table => print!("{}", vigil_agent::table::render(&report)),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// What `validate --service` adds: `run` must be able to find out who it is.
fn validate_for_service(config: &AgentConfig) -> Result<()> {
    let Some(collector) = &config.collector else {
        bail!("a [collector] section is required to run as a service");
    };
    if service::settled_identity(config, collector)?.is_some() {
        return Ok(());
    }
    match &collector.enroll_token_file {
        Some(path) => {
            vigil_agent::enroll::read_token_file(path)?;
            Ok(())
        }
        None => bail!(
            "no credential: enroll this agent (`vigil-agent enroll --token-file FILE`), set \
             collector.enroll_token_file, or set agent.id and collector.token_file"
        ),
    }
}

fn enroll(
    config: AgentConfig,
    server: Option<String>,
    token: Option<String>,
    token_file: Option<PathBuf>,
    name: Option<String>,
) -> Result<ExitCode> {
    let mut section = config
        .collector
        .clone()
        .unwrap_or_else(|| CollectorSection {
            url: String::new(),
            token_file: None,
            token: None,
            enroll_token_file: None,
            ca_file: None,
            client_cert: None,
            client_key: None,
            timeout_secs: 30,
            max_backoff_secs: 300,
        });
    if let Some(server) = server {
        section.url = server;
    }
    if !(section.url.starts_with("https://") || section.url.starts_with("http://")) {
        bail!("--server URL (https://…) is required when the configuration has no collector.url");
    }
    let enrollment_token = match (token, token_file, &section.enroll_token_file) {
        (Some(token), _, _) => token.trim().to_string(),
        (None, Some(path), _) => enroll::read_token_file(&path)?,
        (None, None, Some(path)) => enroll::read_token_file(path)?,
        (None, None, None) => bail!("give the enrollment token with --token-file FILE or --token"),
    };
    let state_dir = &config.agent.state_dir;
    if let Some(existing) = enroll::load(state_dir)? {
        return Err(enroll::EnrollError::AlreadyEnrolled {
            agent: existing.agent_id,
            url: existing.collector_url,
            path: enroll::path(state_dir),
        }
        .into());
    }
    let state = AgentState::open(state_dir)?;
    let root = HostRoot::new(&config.agent.root)
        .with_context(|| format!("cannot open root {}", config.agent.root.display()))?;
    let host = identity::identify(&root, &config.agent.labels, Some(&state.host_id()?));
    vigil_agent::state::give_to_dir_owner(&state_dir.join("host-id"), state_dir)
        .context("cannot give the host id to the state directory's owner")?;
    let name = match name {
        Some(name) => name,
        None => service::enrollment_name(&config, &host.hostname)?,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let key = vigil_agent::keys::load_or_create(state_dir)
        .context("cannot create the agent's signing key")?;
    let enrollment = runtime.block_on(enroll::request(
        &section,
        &enrollment_token,
        &name,
        &host.hostname,
        &host.machine_id,
        &key.verifying_key(),
    ))?;
    enroll::save(state_dir, &enrollment)?;
    println!(
        "enrolled as {:?} with {}; credential stored in {} (mode 0600)",
        enrollment.agent_id,
        enrollment.collector_url,
        enroll::path(state_dir).display()
    );
    if config.collector.is_none() {
        println!(
            "set [collector] url = {:?} in the configuration before `run`",
            section.url
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn status_overview(config: &AgentConfig) -> status::Overview {
    let state_dir = &config.agent.state_dir;
    let enrollment = enroll::load(state_dir).ok().flatten();
    let service = status::load(state_dir);
    let spool = Spool::inspect(&state_dir.join("spool"));
    let last_seq = std::fs::read_to_string(state_dir.join("seq"))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0);
    let configured_id = config
        .collector
        .as_ref()
        .filter(|c| c.token.is_some() || c.token_file.is_some())
        .and(config.agent.id.clone());
    let (agent_id, source) = match (&configured_id, &enrollment) {
        (Some(id), _) => (Some(id.clone()), Some("config".to_string())),
        (None, Some(e)) => (Some(e.agent_id.clone()), Some("enrollment".to_string())),
        (None, None) => (None, None),
    };
    status::Overview {
        agent_id,
        identity_source: source,
        enrolled_at: enrollment.as_ref().map(|e| e.enrolled_at),
        collector_url: config.collector.as_ref().map(|c| c.url.clone()),
        running: service.as_ref().is_some_and(|s| status::is_running(s.pid)),
        service,
        spool_pending: spool.pending,
        spool_bytes: spool.bytes,
        spool_dropped_total: spool.dropped_total,
        spool_compacted_total: spool.compacted_total,
        spool_rejected: spool.rejected,
        last_seq,
    }
}

/// `<state_dir>/cache` when the state directory exists and is writable; otherwise no cache,
/// so that a one-off `collect` by an unprivileged user never fails for lack of a cache.
fn default_cache_dir(config: &AgentConfig) -> Option<PathBuf> {
    let dir = config.agent.state_dir.join("cache");
    if std::fs::create_dir_all(&dir).is_ok() {
        let probe = dir.join(".probe");
        if std::fs::write(&probe, b"").is_ok() {
            let _ = std::fs::remove_file(probe);
            return Some(dir);
        }
    }
    None
}

/// Resolves on SIGTERM or SIGINT.
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
