//! `vigil-agent`: the command line. The work lives in the library; this file parses flags,
//! sets up logging and decides exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};

use vigil_agent::collect::{self, Collection};
use vigil_agent::hostroot::HostRoot;
use vigil_agent::identity;
use vigil_agent::service::{self, RunOptions};
use vigil_agent::settings::AgentConfig;

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
        .init();
}

fn run(cli: Cli) -> Result<ExitCode> {
    let env = vigil_shared::config::process_env();
    match cli.command {
        Command::Validate { config } => {
            AgentConfig::load(&config, &env)?;
            println!("{}: ok", config.display());
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
