//! The `myshard` binary: `myshard --config FILE` serves; `myshard check FILE [--schema]`
//! validates a shard map (and checks its shards); `myshard explain --config FILE SQL` prints
//! a statement's route.

mod admin;
mod backend;
mod catalog;
mod check;
mod connection;
mod consistency;
mod digest;
mod drift;
mod error;
mod exec;
mod executor;
mod ids;
mod local;
mod merge;
mod metrics;
use myshard_proxy::protocol;
mod planning;
mod prepared;
mod server;
mod session;
mod sessions;
mod subquery;
mod tls;
mod transaction;
mod xa;

use clap::{Parser, Subcommand};
use myshard_config::{Config, ConfigError};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "myshard",
    version,
    about = "A sharding proxy for MySQL and MariaDB"
)]
struct Cli {
    /// Configuration file (TOML) to serve with.
    #[arg(long, short)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Validate a configuration file and print every problem; then warn about backend
    /// accounts with more rights than myshard needs (SUPER, FILE, GRANT OPTION).
    Check {
        /// The file to check.
        file: PathBuf,
        /// Also compare every sharded table's definition across its shards and physical
        /// tables (exit status 1 when one differs or a shard cannot be read).
        #[arg(long)]
        schema: bool,
    },
    /// Print the route of a statement.
    Explain {
        /// Configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// Logical schema the statement runs in.
        #[arg(long)]
        schema: Option<String>,
        /// The statement.
        sql: String,
    },
}

fn load(path: &std::path::Path) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|e| {
        match e {
            ConfigError::Invalid(problems) => {
                eprintln!("{}: {} problem(s)", path.display(), problems.len());
                for p in problems {
                    eprintln!("  {p}");
                }
            }
            other => eprintln!("{other}"),
        }
        ExitCode::from(2)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MYSHARD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Some(Cmd::Check { file, schema }) => match load(&file) {
            Ok(config) => {
                println!("{}: ok", file.display());
                check::run(&config, schema)
            }
            Err(code) => code,
        },
        Some(Cmd::Explain {
            config,
            schema,
            sql,
        }) => {
            let config = match load(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let router = myshard_router::Router::new(Arc::new(config));
            let mut ids = myshard_router::CountingIds(0);
            // The server's own planner (statements given here are canonical UTF-8 text).
            let facts = myshard_sql_rewrite::staged::Facts {
                schema: schema.as_deref(),
                allowed: None,
                mode: Default::default(),
            };
            match myshard_sql_rewrite::staged::plan_tree(&router, &facts, &sql, &mut ids) {
                myshard_sql_rewrite::staged::Plan::Refuse(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(1)
                }
                plan => {
                    println!("{plan}");
                    ExitCode::SUCCESS
                }
            }
        }
        None => {
            let Some(path) = cli.config else {
                eprintln!("usage: myshard --config FILE (see --help)");
                return ExitCode::from(2);
            };
            let config = match load(&path) {
                Ok(c) => c,
                Err(code) => return code,
            };
            serve(config, path)
        }
    }
}

fn serve(config: Config, path: PathBuf) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Parsing and rewriting recurse over the statement; ORM-sized statements need room.
        .thread_stack_size(16 << 20)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let config = Arc::new(config);
        let (tx, rx) = tokio::sync::watch::channel(false);
        let shared = match server::Shared::new(config.clone(), Some(path), rx) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        };
        // In-doubt XA branches from an earlier run are resolved before any port opens.
        crate::xa::recover(&shared, true).await;
        crate::xa::spawn_recovery_loop(
            shared.clone(),
            std::time::Duration::from_millis(config.transactions.recovery_interval_ms.max(100)),
        );
        // SIGHUP's handler is in place before the port opens: a reload signal sent as soon as
        // myshard accepts connections must not meet the default action (the process ends).
        let hup = {
            use tokio::signal::unix::{signal, SignalKind};
            signal(SignalKind::hangup())
        };
        let listener = match tokio::net::TcpListener::bind(&config.server.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("cannot listen on {}: {e}", config.server.listen);
                return ExitCode::FAILURE;
            }
        };
        tracing::info!("myshard listening on {}", config.server.listen);
        if let Some(admin) = &config.admin {
            match tokio::net::TcpListener::bind(&admin.listen).await {
                Ok(l) => {
                    tracing::info!("admin interface on {}", admin.listen);
                    tokio::spawn(server::run_admin(l, shared.clone()));
                }
                Err(e) => {
                    eprintln!("cannot listen for admin on {}: {e}", admin.listen);
                    return ExitCode::FAILURE;
                }
            }
        }
        if let Some(addr) = &config.server.metrics_listen {
            match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => {
                    tracing::info!("metrics on http://{addr}/metrics");
                    tokio::spawn(metrics::serve(l, shared.clone()));
                }
                Err(e) => {
                    eprintln!("cannot listen for metrics on {addr}: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        let reloading = shared.clone();
        tokio::spawn(async move {
            let mut hup = match hup {
                Ok(h) => h,
                Err(e) => {
                    tracing::error!(
                        "SIGHUP cannot be handled ({e}); configuration reloads are off"
                    );
                    return;
                }
            };
            while hup.recv().await.is_some() {
                match reloading.reload() {
                    Ok(msg) => tracing::info!("{msg}"),
                    Err(msg) => tracing::error!("{msg}"),
                }
            }
        });
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutting down: no new connections, finishing running statements");
            let _ = tx.send(true);
        });
        server::run(listener, shared).await;
        ExitCode::SUCCESS
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
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
