//! Subcommands: `run`, `check`, `simulate`, `status`, `events`, `bench`.
//!
//! This is the edge of the program, so errors here are `anyhow` and exit codes follow
//! sysexits: 64 (EX_USAGE) for a configuration (or `RUST_LOG`) that does not validate, 1
//! for anything that went wrong at run time; and 2 for a benchmark that missed a target.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use tokio::net::TcpListener;

use crate::app::App;
use crate::config::{self, StoreBackend, TlsFiles};
use crate::embedded;
use crate::simulator::{SimConfig, Simulator};
use crate::store::{Credentials, EtcdOptions, Store};
use crate::telemetry::LogLevel;

mod admin;
mod control;
mod events;
mod status;

/// Exit code for a configuration that does not validate (sysexits EX_USAGE).
pub const EXIT_CONFIG: u8 = 64;

/// Exit code of `bench` when a figure missed its target.
pub const EXIT_TARGET_MISSED: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "pullkeeper",
    version,
    about = "Keeps Agora Media Pull cloud players alive and fails over in seconds"
)]
pub struct Cli {
    /// Log format: `text` for people, `json` for Kubernetes.
    #[arg(
        long,
        global = true,
        env = "PULLKEEPER_LOG_FORMAT",
        default_value = "text"
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Supervise the configured scenes until SIGTERM or Ctrl-C.
    Run {
        /// The settings file; it names the scenes file.
        #[arg(long, env = "PULLKEEPER_CONFIG")]
        config: PathBuf,
        /// Start an Agora simulator inside the process and point every project at it
        /// (the demo; nothing leaves the machine).
        #[arg(long)]
        embedded_simulator: bool,
        /// Serve HTTPS on server.listen with this PEM certificate chain (re-read when it
        /// changes); for deployments without a TLS-terminating proxy.
        #[arg(long, env = "PULLKEEPER_TLS_CERT", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long, env = "PULLKEEPER_TLS_KEY", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Validate the settings and scenes files; print every problem; exit 64 if any.
    Check {
        #[arg(long, env = "PULLKEEPER_CONFIG")]
        config: PathBuf,
        /// Do not read the `{ env }` and `{ file }` secrets, only check how they are
        /// written: for a lint (e.g. GitOps pre-merge) that has no credentials.
        #[arg(long)]
        no_secrets: bool,
    },
    /// Print the scenes of a running pullkeeper: slot, role, UID, status, strikes, on air
    /// (`-o wide`: also source, held, over quota, source down; `-o json`).
    Status(status::StatusArgs),
    /// Print a scene's event history, newest first: failures detected (and by which
    /// signal), on-air switches, creates, deletes, holds, rejections (`-o json`).
    Events(events::EventsArgs),
    /// Put a scene's slot on air now (if its player runs); `--pin` keeps it there.
    Switch(control::SwitchArgs),
    /// Release a scene's pin: the failback policy decides again.
    Unpin(control::UnpinArgs),
    /// Pause (`on`) or resume (`off`) a scene's supervision: no create, delete or update.
    Maintenance(control::MaintenanceArgs),
    /// Start a failover drill on a scene (`--replace`: replace the master too).
    Drill(control::DrillArgs),
    /// Run the Agora Media Pull simulator alone.
    Simulate {
        #[arg(long, default_value = "127.0.0.1:9000")]
        listen: SocketAddr,
        /// Simulator settings (YAML); defaults follow Agora's documented limits.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Run a scenario benchmark against the simulator and print its figures next to
    /// their limits (see BENCHMARKS.md; build with --release).
    Bench {
        #[arg(value_enum, default_value = "all")]
        scenario: crate::bench::Scenario,
        /// Smaller scenarios for a smoke run; the figures are not the published ones.
        #[arg(long)]
        quick: bool,
        /// Projects in the scale scenario (25 scenes x 2 players each), to size a process
        /// or profile a smaller run; the published figures use the default.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=5000))]
        projects: u32,
        /// Where the failover scenario keeps state (etcd: a local etcd-server it starts).
        #[arg(long, value_enum, default_value = "sled")]
        store: crate::bench::BenchStore,
    },
}

pub fn execute(cli: Cli) -> ExitCode {
    let log_level = match crate::telemetry::init_logging(matches!(cli.log_format, LogFormat::Json))
    {
        Ok(level) => level,
        Err(e) => {
            // Logging is not set up, so this goes to stderr directly.
            eprintln!("pullkeeper: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    // A benchmark creates tens of thousands of players; logging each would be measured too.
    // An empty RUST_LOG counts as unset, as in init_logging.
    if matches!(cli.command, Command::Bench { .. })
        && std::env::var_os("RUST_LOG").is_none_or(|v| v.is_empty())
    {
        let _ = log_level.set("warn");
    }
    match cli.command {
        Command::Check { config, no_secrets } => {
            let mut out = std::io::stdout();
            let env: &dyn config::Env = if no_secrets {
                &config::NoSecrets
            } else {
                &config::ProcessEnv
            };
            ExitCode::from(config::check(&config, env, &mut out) as u8)
        }
        Command::Run {
            config,
            embedded_simulator,
            tls_cert,
            tls_key,
        } => {
            let mut loaded = match config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
            for warning in &loaded.warnings {
                tracing::warn!("{warning}");
            }
            if let (Some(cert), Some(key)) = (tls_cert, tls_key) {
                loaded.settings.server.tls = Some(TlsFiles {
                    cert,
                    key,
                    reload_every: TlsFiles::RELOAD_EVERY,
                });
            }
            exit(runtime().and_then(|rt| rt.block_on(run(loaded, embedded_simulator, log_level))))
        }
        Command::Status(args) => exit(runtime().and_then(|rt| rt.block_on(status::run(args)))),
        Command::Events(args) => exit(runtime().and_then(|rt| rt.block_on(events::run(args)))),
        Command::Switch(args) => exit(runtime().and_then(|rt| rt.block_on(control::switch(args)))),
        Command::Unpin(args) => exit(runtime().and_then(|rt| rt.block_on(control::unpin(args)))),
        Command::Maintenance(args) => {
            exit(runtime().and_then(|rt| rt.block_on(control::maintenance(args))))
        }
        Command::Drill(args) => exit(runtime().and_then(|rt| rt.block_on(control::drill(args)))),
        Command::Simulate { listen, config } => {
            exit(runtime().and_then(|rt| rt.block_on(simulate(listen, config))))
        }
        Command::Bench {
            scenario,
            quick,
            projects,
            store,
        } => ExitCode::from(bench_exit_code(runtime().and_then(|rt| {
            rt.block_on(crate::bench::run(scenario, quick, projects as usize, store))
        }))),
    }
}

/// `bench`'s exit status from its run: 0 when every target was met,
/// [`EXIT_TARGET_MISSED`] when the run completed but missed a target (so a CI job fails on
/// it, and can tell it from a run that broke), 1 when it could not run.
fn bench_exit_code(missed: anyhow::Result<usize>) -> u8 {
    match missed {
        Ok(0) => 0,
        Ok(_) => EXIT_TARGET_MISSED,
        Err(e) => {
            tracing::error!("{e:#}");
            1
        }
    }
}

fn exit(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The store the settings name: the embedded one in its directory, or etcd (where
/// nothing is read until this replica leads a project, so an unreachable cluster delays
/// work, not the start).
fn open_store(settings: &config::Settings) -> anyhow::Result<Store> {
    let etcd = match &settings.store.backend {
        StoreBackend::Etcd(etcd) => etcd,
        StoreBackend::Sled => {
            let path = &settings.store.path;
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).with_context(|| {
                    format!("cannot create the store directory {}", parent.display())
                })?;
            }
            let opening = tokio::time::Instant::now();
            let store = Store::open_or_recover(path, crate::clock::Clock::new().now_ms())
                .with_context(|| format!("cannot open the store at {}", path.display()))?;
            let size = store.size().with_context(|| {
                format!("cannot read the size of the store at {}", path.display())
            })?;
            tracing::info!(path = %path.display(), open_ms = opening.elapsed().as_millis() as u64,
                disk_bytes = size.disk_bytes, slots = size.slots, "store opened");
            return Ok(store);
        }
    };
    let options = EtcdOptions {
        endpoints: etcd.endpoints.clone(),
        prefix: etcd.prefix.clone(),
        ttl: settings.leader.ttl,
        credentials: etcd
            .user
            .clone()
            .zip(etcd.password.clone())
            .map(|(user, password)| Credentials { user, password }),
        ca_file: etcd.ca_file.clone(),
        installation: etcd.installation.clone(),
        replica: settings.leader.replica.clone(),
        projects: settings.projects.iter().map(|p| p.id.clone()).collect(),
    };
    tracing::info!(endpoints = ?options.endpoints, prefix = %options.prefix,
        replica = %options.replica, ttl_s = options.ttl.as_secs(), "store: etcd");
    Store::etcd(&options).context("cannot set up the etcd store")
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

async fn run(
    mut config: config::Config,
    embedded_simulator: bool,
    log_level: LogLevel,
) -> anyhow::Result<()> {
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "pullkeeper starting");
    let simulator = if embedded_simulator {
        let sim = embedded::start(&mut config).await?;
        tracing::info!(url = %sim.base_url(), "embedded Agora simulator running; projects point at it");
        Some(sim)
    } else {
        None
    };
    let store = open_store(&config.settings)?;
    let listen = config.settings.server.listen;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let scheme = if config.settings.server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let projects: Vec<(String, String)> = config
        .settings
        .projects
        .iter()
        .map(|p| (p.id.clone(), p.app_id.clone()))
        .collect();
    let app = App::start_with_log_level(config, store, listener, Some(log_level.clone())).await?;
    if let Some(sim) = &simulator {
        embedded::deliver_notices_to(sim, scheme, app.addr(), &projects);
    }
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => {
                tracing::info!("shutting down; players keep running");
                break;
            }
            _ = unix_signal(Unix::Hangup) => app.reload_scenes(),
            _ = unix_signal(Unix::User1) => match log_level.toggle_debug() {
                Ok(directive) => tracing::warn!(directive, "SIGUSR1: log level toggled"),
                Err(e) => tracing::error!(error = %e, "SIGUSR1: cannot change the log level"),
            },
            _ = app.stopped() => break,
        }
    }
    app.shutdown().await;
    Ok(())
}

async fn simulate(listen: SocketAddr, config: Option<PathBuf>) -> anyhow::Result<()> {
    let sim_config = match config {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            serde_saphyr::from_str::<SimConfig>(&text)
                .with_context(|| format!("invalid simulator config {}", path.display()))?
        }
        None => SimConfig::default(),
    };
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let sim = Simulator::start(sim_config, listener).await?;
    tracing::info!(url = %sim.base_url(), "Agora simulator running");
    shutdown_signal().await;
    Ok(())
}

/// Signals with a job while running: SIGHUP re-reads the scenes file, SIGUSR1 toggles
/// debug logs.
#[derive(Clone, Copy)]
enum Unix {
    Hangup,
    User1,
}

/// The next `which` signal. Never resolves where there is none.
async fn unix_signal(which: Unix) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let kind = match which {
            Unix::Hangup => SignalKind::hangup(),
            Unix::User1 => SignalKind::user_defined1(),
        };
        if let Ok(mut stream) = signal(kind) {
            stream.recv().await;
            return;
        }
    }
    #[cfg(not(unix))]
    let _ = which;
    std::future::pending::<()>().await
}

/// SIGTERM (what Kubernetes sends) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_fails_when_a_target_is_missed_and_tells_it_from_a_broken_run() {
        assert_eq!(bench_exit_code(Ok(0)), 0);
        assert_eq!(bench_exit_code(Ok(1)), EXIT_TARGET_MISSED);
        assert_eq!(bench_exit_code(Ok(7)), EXIT_TARGET_MISSED);
        assert_eq!(bench_exit_code(Err(anyhow::anyhow!("no runtime"))), 1);
        assert_eq!(EXIT_TARGET_MISSED, 2, "the README states it");
    }
}
