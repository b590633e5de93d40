//! `stratus`: the one binary. `stratus server` runs a node; every other
//! command is a client of a node's admin API (or, for `up`, of a node it
//! starts itself).

mod args;
mod client;
mod commands;
mod node;
mod output;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli.command);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            // One line a person can act on: the chain of contexts, no
            // debug dump and no backtrace.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let client_opts = cli.client;
    match cli.command {
        Command::Server(args) => node::server(args).await.map(|()| ExitCode::SUCCESS),
        Command::Up(args) => node::up(args).await.map(|()| ExitCode::SUCCESS),
        Command::New(args) => commands::new::run(args).map(|()| ExitCode::SUCCESS),
        Command::Deploy(args) => commands::deploy::run(&client_opts, args).await,
        Command::Apps(args) => commands::apps::list(&client_opts, args).await,
        Command::Versions(args) => commands::apps::versions(&client_opts, args).await,
        Command::Rollback(args) => commands::apps::rollback(&client_opts, args).await,
        Command::Delete(args) => commands::apps::delete(&client_opts, args).await,
        Command::Invoke(args) => commands::invoke::run(&client_opts, args).await,
        Command::Logs(args) => commands::logs::run(&client_opts, args).await,
        Command::Usage(args) => commands::usage::run(&client_opts, args).await,
        Command::Dlq(command) => commands::dlq::run(&client_opts, command).await,
        Command::Secrets(command) => commands::secrets::run(&client_opts, command).await,
    }
}

/// `server` logs at info by default; `up` and the client commands only show
/// warnings so what they print (URLs, answers) stands out. `RUST_LOG`
/// overrides both.
fn init_tracing(command: &Command) {
    let default = match command {
        Command::Server(_) => "info",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}
