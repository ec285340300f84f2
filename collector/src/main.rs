//! `vigil-collector`: the command line. The work lives in the library; this file parses flags,
//! sets up logging and decides exit codes (0 success, 1 failure, 2 bad usage or configuration).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use chrono::Utc;
use clap::{Parser, Subcommand, ValueEnum};

use vigil_collector::admin::{self, Kind};
use vigil_collector::auth::{Role, Token};
use vigil_collector::commands;
use vigil_collector::enroll;
use vigil_collector::evaluate::NcState;
use vigil_collector::evaluate::nonconformities::NcAction;
use vigil_collector::pipeline;
use vigil_collector::settings::{CollectorConfig, SettingsError};
use vigil_collector::store::Principal;
use vigil_collector::tls;

#[derive(Parser)]
#[command(
    name = "vigil-collector",
    version,
    about = "Receives ISO/IEC 27001:2022 control evidence from Vigil agents and serves it"
)]
struct Cli {
    /// Configuration file (TOML); `VIGIL_COLLECTOR_<SECTION>__<KEY>` variables override it.
    #[arg(long, global = true, default_value = "/etc/vigil/collector.toml")]
    config: PathBuf,
    /// Log filter (tracing syntax), e.g. `info` or `vigil_collector=debug`.
    #[arg(long, global = true, default_value = "info", env = "VIGIL_LOG")]
    log: String,
    /// Log format: `text` for people, `json` for log pipelines.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve ingest and the read API until SIGTERM or SIGINT.
    Serve,
    /// Check the configuration (TLS files, the ISMS definition) and exit; with `--isms DIR`,
    /// check only that ISMS definition.
    Validate {
        /// An ISMS directory to check on its own (every problem with file and line).
        #[arg(long)]
        isms: Option<PathBuf>,
    },
    /// Run one ISMS evaluation now (or as of `--now`) against the store. Do not run it while
    /// `serve` evaluates the same store.
    Evaluate {
        /// Evaluate as of this time (RFC 3339 or a date) instead of the clock.
        #[arg(long)]
        now: Option<String>,
    },
    /// The live Statement of Applicability.
    Soa {
        /// The SoA as it stood at this time (RFC 3339, or a date meaning its end).
        #[arg(long)]
        at: Option<String>,
        #[arg(long, value_enum, default_value_t = SoaFormat::Csv)]
        format: SoaFormat,
    },
    /// KPIs with their latest value and analysis.
    Kpis {
        #[arg(long)]
        at: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Objectives with their status.
    Objectives {
        #[arg(long)]
        at: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// The nonconformity register and the corrective-action workflow.
    #[command(subcommand)]
    Nc(NcCommand),
    /// The management review pack (Clause 9.3) for a period.
    Review {
        /// Start of the period (default: 90 days before --to).
        #[arg(long)]
        from: Option<String>,
        /// End of the period (default: now).
        #[arg(long)]
        to: Option<String>,
        #[arg(long, value_enum, default_value_t = ReviewFormat::Md)]
        format: ReviewFormat,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The alert webhook outbox: deliveries pending, delivered and failed per webhook, and the
    /// last error of each failed one (collector/WEBHOOKS.md).
    Webhooks,
    /// Manage agents: each agent has a name and a token to push reports with.
    #[command(subcommand)]
    Agents(AgentsCommand),
    /// Manage API tokens for people and tools that read the API.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Manage enrollment tokens: short-lived secrets agents exchange for their own identity
    /// (`vigil-agent enroll`).
    #[command(subcommand, name = "enroll-token")]
    EnrollToken(EnrollTokenCommand),
    /// The auditor evidence bundle for a period (zip: manifest with SHA-256 of every file, SoA,
    /// registers, raw evidence per control, HTML report, OSCAL); `export verify BUNDLE` re-checks one.
    Export(ExportArgs),
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
struct ExportArgs {
    #[command(subcommand)]
    verify: Option<ExportCommand>,
    /// Start of the period (RFC 3339, or a date meaning its start, UTC).
    #[arg(long)]
    from: Option<String>,
    /// End of the period, exclusive (RFC 3339, or a date meaning the end of that day, UTC).
    #[arg(long)]
    to: Option<String>,
    /// The bundle to write (written beside it first, renamed into place when complete).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Subcommand)]
enum ExportCommand {
    /// Re-check a bundle offline: the manifest's signature, every file against the manifest,
    /// the agents' signatures, the hash chains, and every evidence record against the signed
    /// reports; exit code 1 on any problem.
    Verify {
        bundle: PathBuf,
        /// The collector key the bundle must be signed with (its public key in hex, or its
        /// `SHA256:` fingerprint, as `export key` prints them).
        #[arg(long, value_name = "KEY")]
        expect_key: Option<String>,
    },
    /// Print the collector's public key and fingerprint (the key that signs bundles; created
    /// in the data directory on first use).
    Key,
}

#[derive(Subcommand)]
enum EnrollTokenCommand {
    /// Create an enrollment token and print it once.
    Create {
        /// Name to list and revoke it by (default: `enroll-` and 6 hex digits).
        #[arg(long)]
        name: Option<String>,
        /// Labels every agent enrolled with it receives (`key=value`, repeatable or
        /// comma-separated); the agents cannot change them.
        #[arg(long = "labels", value_name = "KEY=VALUE", value_delimiter = ',', value_parser = admin::parse_label)]
        labels: Vec<(String, String)>,
        /// When it stops working: a duration (`30m`, `12h`, `7d`; at most 30 days) or an
        /// RFC 3339 time.
        #[arg(long, default_value = "24h")]
        expires: String,
        /// Enroll one agent only.
        #[arg(long, conflicts_with = "uses")]
        single_use: bool,
        /// Enroll at most this many agents (default: any number until it expires).
        #[arg(long)]
        uses: Option<u64>,
    },
    /// List enrollment tokens (never the tokens themselves).
    List,
    /// Revoke an enrollment token; agents already enrolled with it keep working.
    Revoke { name: String },
    /// List the agents enrolled so far, with the token each one used.
    Enrollments,
}

#[derive(Clone, Copy, ValueEnum)]
enum SoaFormat {
    Csv,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum ReviewFormat {
    Md,
    Html,
}

#[derive(Subcommand)]
enum NcCommand {
    /// List nonconformities (as they stood at `--at`).
    List {
        #[arg(long)]
        at: Option<String>,
        /// Only this state: open, action_planned, resolved, verified, closed.
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// One nonconformity with every event.
    Show {
        id: u64,
        #[arg(long)]
        json: bool,
    },
    /// Record the corrective-action plan: owner, root cause, action and due date.
    Plan {
        id: u64,
        #[arg(long)]
        owner: String,
        #[arg(long)]
        root_cause: String,
        #[arg(long)]
        action: String,
        /// Due date (YYYY-MM-DD).
        #[arg(long)]
        due: chrono::NaiveDate,
        /// Who takes the step (recorded in the event).
        #[arg(long, default_value_t = default_actor())]
        actor: String,
    },
    /// Mark an audit finding corrected.
    Resolve {
        id: u64,
        #[arg(long)]
        note: String,
        #[arg(long, default_value_t = default_actor())]
        actor: String,
    },
    /// Confirm an audit finding's correction is effective.
    Verify {
        id: u64,
        #[arg(long)]
        note: String,
        #[arg(long, default_value_t = default_actor())]
        actor: String,
    },
    /// Close with a reason.
    Close {
        id: u64,
        #[arg(long)]
        reason: String,
        #[arg(long, default_value_t = default_actor())]
        actor: String,
    },
}

fn default_actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}

#[derive(Subcommand)]
enum AgentsCommand {
    /// Register an agent and print its token once.
    Add {
        /// The agent's name; its reports must carry it as `agent.id`.
        name: String,
        /// Labels assigned by the collector's operator (`key=value`, repeatable or
        /// comma-separated); unlike labels the agent sends, the agent cannot change them.
        #[arg(long = "labels", value_name = "KEY=VALUE", value_delimiter = ',', value_parser = admin::parse_label)]
        labels: Vec<(String, String)>,
        /// The token stops working this long after it is issued (`90d`, `12h`, `2w`; at most
        /// 3650 days); default: never.
        #[arg(long, value_name = "DURATION", value_parser = admin::parse_lifetime)]
        expires_in: Option<chrono::Duration>,
    },
    /// List agents (never their tokens).
    List,
    /// Revoke an agent's token; its reports are refused from now on, its data stays.
    Revoke { name: String },
    /// Issue a new token for an agent (the old one stops working) and print it once.
    Rotate {
        name: String,
        /// The new token stops working this long after the rotation (`90d`, `12h`, `2w`).
        #[arg(long, value_name = "DURATION", value_parser = admin::parse_lifetime, conflicts_with = "no_expiry")]
        expires_in: Option<chrono::Duration>,
        /// The new token never expires (needed to rotate a token that had an expiry without
        /// giving the new one an expiry).
        #[arg(long)]
        no_expiry: bool,
    },
    /// List the public keys an agent signs (or signed) its reports with.
    Keys { name: String },
    /// Register an agent's public key (64 hex characters, from `vigil-agent key`), retiring
    /// the current one; reports signed with another key are refused from now on.
    SetKey { name: String, public_key: String },
    /// Retire an agent's key (a reinstalled host lost it): the next key the agent registers
    /// itself is trusted on first use. Retired keys stay to verify the reports they signed.
    ResetKey { name: String },
}

#[derive(Subcommand)]
enum TokensCommand {
    /// Issue a token for reading the API and print it once.
    Add {
        name: String,
        /// What the token may do: all three roles read the API; none may push reports.
        #[arg(long, value_enum)]
        role: ApiRole,
        /// The token stops working this long after it is issued (`90d`, `12h`, `2w`; at most
        /// 3650 days); default: never.
        #[arg(long, value_name = "DURATION", value_parser = admin::parse_lifetime)]
        expires_in: Option<chrono::Duration>,
    },
    /// List API tokens (never the tokens themselves).
    List,
    /// Revoke an API token.
    Revoke { name: String },
    /// Replace an API token and print the new one once.
    Rotate {
        name: String,
        /// The new token stops working this long after the rotation (`90d`, `12h`, `2w`).
        #[arg(long, value_name = "DURATION", value_parser = admin::parse_lifetime, conflicts_with = "no_expiry")]
        expires_in: Option<chrono::Duration>,
        /// The new token never expires (needed to rotate a token that had an expiry without
        /// giving the new one an expiry).
        #[arg(long)]
        no_expiry: bool,
    },
}

fn rotation_expiry(expires_in: Option<chrono::Duration>, no_expiry: bool) -> admin::RotationExpiry {
    match (expires_in, no_expiry) {
        (Some(lifetime), _) => admin::RotationExpiry::After(lifetime),
        (None, true) => admin::RotationExpiry::Never,
        (None, false) => admin::RotationExpiry::Unspecified,
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum ApiRole {
    Viewer,
    Auditor,
    Admin,
}

impl From<ApiRole> for Role {
    fn from(role: ApiRole) -> Role {
        match role {
            ApiRole::Viewer => Role::Viewer,
            ApiRole::Auditor => Role::Auditor,
            ApiRole::Admin => Role::Admin,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log, cli.log_format);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil-collector: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}

/// The one place that maps failures to exit codes.
fn exit_code(error: &anyhow::Error) -> u8 {
    if error.chain().any(|cause| {
        cause.downcast_ref::<SettingsError>().is_some()
            || cause.downcast_ref::<IsmsInvalid>().is_some()
            || matches!(
                cause.downcast_ref::<pipeline::PipelineError>(),
                Some(pipeline::PipelineError::Isms { .. })
            )
    }) {
        2
    } else {
        1
    }
}

fn init_logging(filter: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never into the journal or a file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn load_config(path: &Path) -> Result<CollectorConfig> {
    Ok(CollectorConfig::load(
        path,
        &vigil_shared::config::process_env(),
    )?)
}

fn run(cli: Cli) -> Result<()> {
    if let Command::Validate { isms: Some(dir) } = &cli.command {
        return validate_isms(dir);
    }
    if let Command::Export(ExportArgs {
        verify: Some(ExportCommand::Verify { bundle, expect_key }),
        ..
    }) = &cli.command
    {
        return export_verify(bundle, expect_key.as_deref());
    }
    let config = load_config(&cli.config)?;
    if let Command::Validate { .. } = cli.command {
        validate(&cli.config, &config)?;
        if let Some(dir) = &config.isms.dir {
            validate_isms(dir)?;
        }
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve => Ok(pipeline::run(&config, pipeline::shutdown_signal()).await?),
            Command::Validate { .. } => Ok(()),
            Command::Evaluate { now } => {
                let isms = require_isms(&config)?;
                let now = match now {
                    Some(t) => time_arg("--now", &t)?,
                    None => Utc::now(),
                };
                let store = pipeline::open_store(&config).await?;
                let lock = vigil_collector::evaluator_lock::EvaluatorLock::acquire(
                    &config.storage.data_dir,
                    "evaluate",
                );
                let lock = match lock {
                    Ok(lock) => lock,
                    Err(e) => {
                        store.close().await.context("closing the store")?;
                        return Err(e.into());
                    }
                };
                let result = commands::evaluate(isms, std::sync::Arc::clone(&store), now).await;
                drop(lock);
                store.close().await.context("closing the store")?;
                print!("{}", result?);
                Ok(())
            }
            Command::Soa { at, format } => {
                let isms = require_isms(&config)?;
                let at = at.map(|t| time_arg("--at", &t)).transpose()?;
                with_store(&config, async |store| {
                    print!(
                        "{}",
                        commands::soa(&isms, store, at, matches!(format, SoaFormat::Json)).await?
                    );
                    Ok(())
                })
                .await
            }
            Command::Kpis { at, json } => {
                let isms = require_isms(&config)?;
                let at = at.map(|t| time_arg("--at", &t)).transpose()?;
                with_store(&config, async |store| {
                    print!("{}", commands::kpis(&isms, store, at, json).await?);
                    Ok(())
                })
                .await
            }
            Command::Objectives { at, json } => {
                let isms = require_isms(&config)?;
                let at = at.map(|t| time_arg("--at", &t)).transpose()?;
                with_store(&config, async |store| {
                    print!("{}", commands::objectives(&isms, store, at, json).await?);
                    Ok(())
                })
                .await
            }
            Command::Nc(command) => nc(&config, command).await,
            Command::Review {
                from,
                to,
                format,
                out,
            } => {
                let isms = require_isms(&config)?;
                let from = from.map(|t| time_arg("--from", &t)).transpose()?;
                let to = to.map(|t| time_arg("--to", &t)).transpose()?;
                let text = with_store(&config, async |store| {
                    Ok(commands::review(
                        &isms,
                        store,
                        from,
                        to,
                        matches!(format, ReviewFormat::Html),
                        Utc::now(),
                    )
                    .await?)
                })
                .await?;
                match out {
                    Some(path) => {
                        std::fs::write(&path, text)
                            .with_context(|| format!("cannot write {}", path.display()))?;
                        eprintln!("wrote {}", path.display());
                    }
                    None => print!("{text}"),
                }
                Ok(())
            }
            Command::Webhooks => {
                print!(
                    "{}",
                    vigil_collector::webhooks::outbox::status_text(&config.storage.data_dir)?
                );
                Ok(())
            }
            Command::Agents(command) => agents(&config, command).await,
            Command::Tokens(command) => tokens(&config, command).await,
            Command::EnrollToken(command) => enroll_tokens(&config, command).await,
            Command::Export(args) => export(&config, args).await,
        }
    })
}

fn validate(path: &Path, config: &CollectorConfig) -> Result<()> {
    if let Some((cert, key)) = config.server.tls() {
        tls::server_config_with_clients(cert, key, config.server.client_ca.as_deref())?;
    }
    let data_dir = &config.storage.data_dir;
    if data_dir.exists() && !data_dir.is_dir() {
        bail!(
            "storage.data_dir {} exists and is not a directory",
            data_dir.display()
        );
    }
    println!(
        "{}: ok (listen {}, {}, storage sqlite in {})",
        path.display(),
        config.server.listen,
        if config.server.tls().is_some() {
            "https"
        } else {
            "plain http"
        },
        data_dir.display()
    );
    Ok(())
}

/// A bad ISMS definition is a configuration error (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct IsmsInvalid(String);

fn validate_isms(dir: &Path) -> Result<()> {
    match vigil_collector::isms::load_dir(dir) {
        Ok((isms, warnings)) => {
            for w in &warnings {
                eprintln!("{w}");
            }
            println!(
                "{}: ok ({} controls, {} rules, {} KPIs, {} objectives, {} risks, {} audits{})",
                dir.display(),
                isms.controls.len(),
                isms.rules.len(),
                isms.kpis.len(),
                isms.objectives.len(),
                isms.risks.len(),
                isms.audits.len(),
                if warnings.is_empty() {
                    String::new()
                } else {
                    format!(", {} warnings", warnings.len())
                }
            );
            Ok(())
        }
        Err(problems) => {
            for p in &problems {
                eprintln!("{p}");
            }
            Err(IsmsInvalid(format!(
                "the ISMS definition in {} has {} problem(s)",
                dir.display(),
                problems
                    .iter()
                    .filter(|p| p.level == vigil_collector::isms::Level::Error)
                    .count()
            ))
            .into())
        }
    }
}

fn require_isms(config: &CollectorConfig) -> Result<std::sync::Arc<vigil_collector::isms::Isms>> {
    match pipeline::load_isms(config) {
        Ok(Some(isms)) => Ok(isms),
        Ok(None) => Err(IsmsInvalid(
            "no ISMS definition: set [isms] dir in the configuration (the default pack is packaging/isms/)".into(),
        )
        .into()),
        Err(e) => Err(IsmsInvalid(e.to_string()).into()),
    }
}

fn time_arg(flag: &str, text: &str) -> Result<chrono::DateTime<Utc>> {
    commands::parse_time(text).map_err(|e| anyhow::anyhow!("{flag}: {e}"))
}

async fn nc(config: &CollectorConfig, command: NcCommand) -> Result<()> {
    with_store(config, async |store| {
        let text = match command {
            NcCommand::List { at, state, json } => {
                let at = at.map(|t| time_arg("--at", &t)).transpose()?;
                let state = state
                    .map(|s| {
                        NcState::parse(&s).ok_or_else(|| {
                            anyhow::anyhow!("--state {s:?}: use open, action_planned, resolved, verified or closed")
                        })
                    })
                    .transpose()?;
                commands::nc_list(store, at, state, json).await?
            }
            NcCommand::Show { id, json } => commands::nc_show(store, id, json).await?,
            NcCommand::Plan { id, owner, root_cause, action, due, actor } => {
                let step = NcAction::Plan { owner, root_cause, corrective_action: action, due };
                commands::nc_action(store, id, step, &actor, Utc::now()).await?
            }
            NcCommand::Resolve { id, note, actor } => {
                commands::nc_action(store, id, NcAction::Resolve { note }, &actor, Utc::now()).await?
            }
            NcCommand::Verify { id, note, actor } => {
                commands::nc_action(store, id, NcAction::Verify { note }, &actor, Utc::now()).await?
            }
            NcCommand::Close { id, reason, actor } => {
                commands::nc_action(store, id, NcAction::Close { reason }, &actor, Utc::now()).await?
            }
        };
        print!("{text}");
        Ok(())
    })
    .await
}

/// Prints a new token on stdout (alone, for scripts) and the advice on stderr.
fn print_token(what: &str, principal: &Principal, token: &Token) {
    let expiry = principal.expires_at.map_or_else(
        || "never expires".to_string(),
        |at| format!("expires at {}", at.to_rfc3339()),
    );
    eprintln!(
        "{what} {:?} ({}, {expiry}). Its token follows; it is shown only this once (the \
         collector keeps only a SHA-256 hash). Store it in a file readable only by its user \
         (mode 0600).",
        principal.name, principal.role
    );
    println!("{}", token.expose());
}

async fn with_store<T>(
    config: &CollectorConfig,
    work: impl AsyncFnOnce(&dyn vigil_collector::store::Store) -> Result<T>,
) -> Result<T> {
    let store = pipeline::open_store(config).await?;
    let result = work(store.as_ref()).await;
    store.close().await.context("closing the store")?;
    result
}

async fn agents(config: &CollectorConfig, command: AgentsCommand) -> Result<()> {
    with_store(config, async |store| match command {
        AgentsCommand::Add {
            name,
            labels,
            expires_in,
        } => {
            let labels: BTreeMap<String, String> = labels.into_iter().collect();
            let (principal, token) =
                admin::add_expiring(store, &name, Role::Agent, labels, Utc::now(), expires_in)
                    .await?;
            print_token("created agent", &principal, &token);
            Ok(())
        }
        AgentsCommand::List => {
            print!("{}", admin::list(store, Kind::Agent).await?);
            Ok(())
        }
        AgentsCommand::Revoke { name } => {
            let principal = admin::revoke(store, &name, Kind::Agent, Utc::now()).await?;
            eprintln!(
                "revoked agent {:?}; its stored evidence is kept",
                principal.name
            );
            Ok(())
        }
        AgentsCommand::Rotate {
            name,
            expires_in,
            no_expiry,
        } => {
            let expiry = rotation_expiry(expires_in, no_expiry);
            let (principal, token) =
                admin::rotate(store, &name, Kind::Agent, Utc::now(), expiry).await?;
            print_token("new token for agent", &principal, &token);
            Ok(())
        }
        AgentsCommand::Keys { name } => {
            print!("{}", admin::list_keys(store, &name).await?);
            Ok(())
        }
        AgentsCommand::SetKey { name, public_key } => {
            let fingerprint = admin::set_key(store, &name, &public_key, Utc::now()).await?;
            eprintln!("agent {name:?} now signs with key {fingerprint}");
            Ok(())
        }
        AgentsCommand::ResetKey { name } => {
            match admin::reset_key(store, &name, Utc::now()).await? {
                Some(old) => eprintln!(
                    "retired key {old} of agent {name:?}; the next key the agent registers is \
                     trusted on first use"
                ),
                None => eprintln!(
                    "agent {name:?} had no current key; the next key it registers is trusted"
                ),
            }
            Ok(())
        }
    })
    .await
}

async fn tokens(config: &CollectorConfig, command: TokensCommand) -> Result<()> {
    with_store(config, async |store| match command {
        TokensCommand::Add {
            name,
            role,
            expires_in,
        } => {
            let (principal, token) = admin::add_expiring(
                store,
                &name,
                role.into(),
                BTreeMap::new(),
                Utc::now(),
                expires_in,
            )
            .await?;
            print_token("created API token", &principal, &token);
            Ok(())
        }
        TokensCommand::List => {
            print!("{}", admin::list(store, Kind::ApiToken).await?);
            Ok(())
        }
        TokensCommand::Revoke { name } => {
            let principal = admin::revoke(store, &name, Kind::ApiToken, Utc::now()).await?;
            eprintln!("revoked API token {:?}", principal.name);
            Ok(())
        }
        TokensCommand::Rotate {
            name,
            expires_in,
            no_expiry,
        } => {
            let expiry = rotation_expiry(expires_in, no_expiry);
            let (principal, token) =
                admin::rotate(store, &name, Kind::ApiToken, Utc::now(), expiry).await?;
            print_token("new API token", &principal, &token);
            Ok(())
        }
    })
    .await
}

async fn enroll_tokens(config: &CollectorConfig, command: EnrollTokenCommand) -> Result<()> {
    with_store(config, async |store| match command {
        EnrollTokenCommand::Create {
            name,
            labels,
            expires,
            single_use,
            uses,
        } => {
            let now = Utc::now();
            let options = enroll::CreateOptions {
                name,
                labels: labels.into_iter().collect(),
                expires_at: enroll::parse_expiry(&expires, now)?,
                max_uses: if single_use { Some(1) } else { uses },
            };
            let (token, secret) = enroll::create(store, options, now).await?;
            eprintln!(
                "created enrollment token {:?}, valid until {}{}. It follows; it is shown only \
                 this once. Give it to the hosts to enroll: `vigil-agent enroll --server URL \
                 --token-file FILE` (or collector.enroll_token_file in agent.toml).",
                token.name,
                token.expires_at.to_rfc3339(),
                match token.max_uses {
                    Some(1) => ", single use".to_string(),
                    Some(n) => format!(", for {n} agents"),
                    None => String::new(),
                }
            );
            println!("{}", secret.expose());
            Ok(())
        }
        EnrollTokenCommand::List => {
            let tokens = store.list_enrollment_tokens().await?;
            print!("{}", enroll::format_tokens(&tokens, Utc::now()));
            Ok(())
        }
        EnrollTokenCommand::Revoke { name } => {
            let token = store.revoke_enrollment_token(&name, Utc::now()).await?;
            eprintln!(
                "revoked enrollment token {:?}; agents enrolled with it keep working (revoke \
                 them with `vigil-collector agents revoke NAME`)",
                token.name
            );
            Ok(())
        }
        EnrollTokenCommand::Enrollments => {
            let enrollments = store.list_enrollments().await?;
            print!("{}", enroll::format_enrollments(&enrollments));
            Ok(())
        }
    })
    .await
}

fn export_verify(bundle: &Path, expect_key: Option<&str>) -> Result<()> {
    let file =
        std::fs::File::open(bundle).with_context(|| format!("cannot open {}", bundle.display()))?;
    let verification = vigil_collector::export::manifest::verify_with(file, expect_key);
    print!("{}", verification.render());
    if verification.is_ok() {
        Ok(())
    } else {
        bail!(
            "{}: {} problem(s) found",
            bundle.display(),
            verification.problems.len()
        )
    }
}

async fn export(config: &CollectorConfig, args: ExportArgs) -> Result<()> {
    let collector_key = vigil_collector::export::collector_key(&config.storage.data_dir)?;
    if let Some(ExportCommand::Key) = args.verify {
        let key = collector_key.verifying_key();
        println!("{}", vigil_shared::signing::public_key_hex(&key));
        eprintln!(
            "collector key fingerprint {} ({})",
            vigil_shared::signing::fingerprint(&key),
            vigil_collector::export::collector_key_path(&config.storage.data_dir).display()
        );
        return Ok(());
    }
    let (Some(from), Some(to), Some(out)) = (args.from, args.to, args.out) else {
        bail!("export needs --from, --to and --out (or `export verify BUNDLE`)");
    };
    let from = vigil_collector::export::parse_bound(&from, false)
        .map_err(|e| anyhow::anyhow!("--from: {e}"))?;
    let to = vigil_collector::export::parse_bound(&to, true)
        .map_err(|e| anyhow::anyhow!("--to: {e}"))?;
    vigil_collector::export::check_period(from, to)?;
    let isms = require_isms(config)?;
    let digest = match &config.isms.dir {
        Some(dir) => vigil_collector::export::pack_digest(dir)
            .with_context(|| format!("cannot read the ISMS pack {}", dir.display()))?,
        None => String::new(),
    };
    let options = vigil_collector::export::ExportOptions {
        from,
        to,
        generated_at: Utc::now(),
        isms_pack_digest: digest,
        collector_key: std::sync::Arc::new(collector_key),
    };
    let store = pipeline::open_store(config).await?;
    let result = vigil_collector::export::export_to_path(
        std::sync::Arc::clone(&store),
        isms,
        &options,
        &out,
    )
    .await;
    store.close().await.context("closing the store")?;
    let summary = result?;
    eprintln!(
        "wrote {}: {} files, {} evidence records, {} hosts",
        out.display(),
        summary.files,
        summary.evidence_records,
        summary.hosts
    );
    Ok(())
}
