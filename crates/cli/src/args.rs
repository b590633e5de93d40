//! Command-line arguments. Names follow the product contract
//! (`../shared/product.md`): users' scripts depend on them.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "stratus",
    version,
    about = "A self-hosted serverless platform for WebAssembly components"
)]
pub struct Cli {
    #[command(flatten)]
    pub client: ClientOpts,
    #[command(subcommand)]
    pub command: Command,
}

/// How client commands reach a node.
#[derive(Debug, Clone, Args)]
pub struct ClientOpts {
    /// The node's admin API.
    #[arg(
        long,
        global = true,
        env = "STRATUS_SERVER",
        default_value = "http://127.0.0.1:8081"
    )]
    pub server: String,
    /// Admin API token (default: read from ./.stratus/admin-token when present).
    #[arg(long, global = true, env = "STRATUS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node: the HTTP gateway, the admin API and the executor.
    Server(ServerArgs),
    /// Build and serve apps on a throwaway local node, ready to curl.
    Up(UpArgs),
    /// Upload an app's components and create and activate a new version.
    Deploy(DeployArgs),
    /// List apps.
    Apps(ListArgs),
    /// List an app's versions and which one is live.
    Versions(VersionsArgs),
    /// Activate an earlier version of an app atomically.
    Rollback(RollbackArgs),
    /// Delete an app and all its versions.
    Delete(DeleteArgs),
    /// Call a function directly and print its response.
    Invoke(InvokeArgs),
}

#[derive(Debug, Clone, Args)]
pub struct NodeOpts {
    /// Gateway address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Admin API address.
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub admin_listen: SocketAddr,
    /// Admin API token (default: generated on first start and stored in the data directory).
    #[arg(long, env = "STRATUS_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Largest deploy upload accepted, e.g. "64MiB".
    #[arg(long, default_value = "64MiB")]
    pub max_upload: String,
    /// Instances that may run at once across all functions (pool size).
    #[arg(long, default_value_t = 1000)]
    pub max_instances: u32,
    /// How long a request may wait for capacity before a 429, e.g. "1s".
    #[arg(long, default_value = "1s")]
    pub queue_timeout: String,
    /// Memory that running instances may reserve together (the sum of their
    /// `memory` caps), e.g. "8GiB"; default: half of the machine's memory.
    #[arg(long)]
    pub memory_budget: Option<String>,
    /// Drop a function's compiled code after it has been idle this long
    /// (scale to zero; "0s" keeps everything resident), e.g. "5m".
    #[arg(long, default_value = "5m")]
    pub idle_ttl: String,
}

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Where the node keeps its database, components and compiled code.
    #[arg(long, env = "STRATUS_DATA_DIR", default_value = "./.stratus")]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub node: NodeOpts,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// App directories (each holding a stratus.toml).
    #[arg(default_value = ".")]
    pub dirs: Vec<PathBuf>,
    /// Skip the manifests' build commands.
    #[arg(long)]
    pub no_build: bool,
    #[command(flatten)]
    pub node: NodeOpts,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// App directory holding stratus.toml.
    #[arg(default_value = ".", conflicts_with = "file")]
    pub dir: PathBuf,
    /// Path of the manifest file.
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct VersionsArgs {
    pub app: String,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    pub app: String,
    /// Version to activate (default: the one before the live version).
    #[arg(long)]
    pub to: Option<u32>,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    pub app: String,
}

#[derive(Debug, Args)]
pub struct InvokeArgs {
    /// Function name, or APP/NAME when several apps have one of that name.
    pub function: String,
    /// Request body; "@FILE" reads a file, "@-" stdin.
    #[arg(long, short = 'd')]
    pub data: Option<String>,
    /// Path the function sees.
    #[arg(long, default_value = "/")]
    pub path: String,
    /// Method the function sees (default POST).
    #[arg(long, short = 'X', default_value = "POST")]
    pub method: String,
    /// Extra request headers, "Name: value".
    #[arg(long, short = 'H')]
    pub header: Vec<String>,
    /// Print the status line and headers before the body.
    #[arg(long, short = 'i')]
    pub include: bool,
}
