//! `stratus`: the one binary. `stratus server` runs a node; every other
//! command is a client of a node's admin API (or, for `up`, of a node it
//! starts itself).

mod args;
mod client;
mod commands;
mod node;
mod output;
mod tls;
mod up_token;
mod watch;

use std::process::ExitCode;

use crate::args::{Cli, ClientOpts, Command, Remote};

fn main() -> ExitCode {
    let cli = match Cli::try_parse_checked(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    init_tracing(&cli.command);
    // reqwest is built without a rustls provider: the client commands and
    // a node's trace exporter both use the one installed here.
    tls::install_provider();
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
            // debug dump and no backtrace. It may quote a function or a
            // client (a trap's message, a dead letter's error), so terminal
            // controls in it are shown escaped.
            eprintln!("error: {}", output::escape_text(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let leading = (cli.leading_server, cli.leading_token);
    // Given before the command name, they win over the environment and the
    // defaults (and over the same option given after the name as well).
    let remote = |client: ClientOpts| -> ClientOpts {
        ClientOpts {
            server: leading.0.clone().unwrap_or(client.server),
            token: leading.1.clone().or(client.token),
            ca_cert: client.ca_cert,
            namespace: client.namespace,
        }
    };
    match cli.command {
        Command::Server(args) => node::server(args).await.map(|()| ExitCode::SUCCESS),
        Command::Up(args) => node::up(args).await.map(|()| ExitCode::SUCCESS),
        Command::New(args) => commands::new::run(args).map(|()| ExitCode::SUCCESS),
        Command::Deploy(Remote { client, args }) => {
            commands::deploy::run(&remote(client), args).await
        }
        Command::Apps(Remote { client, args }) => commands::apps::list(&remote(client), args).await,
        Command::Nodes(Remote { client, args }) => {
            commands::nodes::list(&remote(client), args).await
        }
        Command::Functions(Remote { client, args }) => {
            commands::status::functions(&remote(client), args).await
        }
        Command::Status(Remote { client, args }) => {
            commands::status::status(&remote(client), args).await
        }
        Command::Versions(Remote { client, args }) => {
            commands::apps::versions(&remote(client), args).await
        }
        Command::Rollback(Remote { client, args }) => {
            commands::apps::rollback(&remote(client), args).await
        }
        Command::Traffic(Remote { client, args }) => {
            commands::traffic::run(&remote(client), args).await
        }
        Command::Delete(Remote { client, args }) => {
            commands::apps::delete(&remote(client), args).await
        }
        Command::Invoke(Remote { client, args }) => {
            commands::invoke::run(&remote(client), args).await
        }
        Command::Logs(Remote { client, args }) => commands::logs::run(&remote(client), args).await,
        Command::Usage(Remote { client, args }) => {
            commands::usage::run(&remote(client), args).await
        }
        Command::Dlq(Remote { client, args }) => {
            commands::dlq::run(&remote(client), args.command).await
        }
        Command::Invocations(Remote { client, args }) => {
            commands::invocations::list(&remote(client), args).await
        }
        Command::Replay(Remote { client, args }) => {
            commands::invocations::replay(&remote(client), args).await
        }
        Command::Secrets(Remote { client, args }) => {
            commands::secrets::run(&remote(client), args.command).await
        }
        Command::Tokens(Remote { client, args }) => {
            commands::tokens::run(&remote(client), args.command).await
        }
        Command::Audit(Remote { client, args }) => {
            commands::audit::run(&remote(client), args).await
        }
        Command::Quotas(Remote { client, args }) => {
            commands::quotas::run(&remote(client), args.command).await
        }
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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match command {
        // A line a log pipeline reads: the event's fields, and those of
        // the invocation span it happened in (its id, app, function).
        Command::Server(args) if args.log_format == args::LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .flatten_event(true)
            .init(),
        _ => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
}
