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
    /// Create a function directory from a template, ready for `stratus up`.
    New(NewArgs),
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
    /// Print a function's invocation logs (`-f` follows them live).
    Logs(LogsArgs),
    /// Report metered usage and cost per function.
    Usage(UsageArgs),
    /// A function's dead letters: list them, or redrive them.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// An app's secrets: set one (value on stdin), list names, remove one.
    #[command(subcommand)]
    Secrets(SecretsCommand),
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Store a secret, encrypted; its value is read from stdin.
    Set(SecretArgs),
    /// List an app's secrets (names only: values are never shown).
    Ls(SecretsListArgs),
    /// Remove a secret.
    Rm(SecretArgs),
}

#[derive(Debug, Args)]
pub struct SecretArgs {
    pub app: String,
    pub name: String,
}

#[derive(Debug, Args)]
pub struct SecretsListArgs {
    pub app: String,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List a function's dead letters with their last error.
    Ls(DlqListArgs),
    /// Put a function's dead letters (or one) back in its queue.
    Redrive(DlqRedriveArgs),
}

#[derive(Debug, Args)]
pub struct DlqListArgs {
    /// Function name, or APP/NAME.
    pub function: String,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct DlqRedriveArgs {
    /// Function name, or APP/NAME.
    pub function: String,
    /// Only this dead letter (default: all).
    #[arg(long)]
    pub id: Option<String>,
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
    /// Keep no invocation records, usage or logs (for measuring their cost).
    #[arg(long)]
    pub no_metering: bool,
    /// Price per GB-second (peak memory × billed duration); the default is
    /// the AWS Lambda x86 list price.
    #[arg(
        long,
        env = "STRATUS_PRICE_GB_SECOND",
        default_value_t = 0.000_016_666_7
    )]
    pub price_gb_second: f64,
    /// Price per million invocations.
    #[arg(long, env = "STRATUS_PRICE_MILLION_REQUESTS", default_value_t = 0.20)]
    pub price_million_requests: f64,
    /// Currency the prices are in.
    #[arg(long, env = "STRATUS_CURRENCY", default_value = "USD")]
    pub currency: String,
    /// How long raw invocation records are kept, e.g. "7d".
    #[arg(long, default_value = "7d")]
    pub record_retention: String,
    /// How long function logs are kept, e.g. "7d".
    #[arg(long, default_value = "7d")]
    pub log_retention: String,
    /// How long hourly usage totals are kept, e.g. "400d".
    #[arg(long, default_value = "400d")]
    pub usage_retention: String,
    /// Wait before the first retry of a failed event, doubled per attempt
    /// (with jitter) up to 5 minutes, e.g. "1s".
    #[arg(long, default_value = "1s")]
    pub retry_base: String,
    /// Deliveries of an async invocation before it is dead.
    #[arg(long, default_value_t = 3)]
    pub max_attempts: u32,
    /// NATS server for `nats` and `jetstream` triggers (connected only when
    /// a function has one).
    #[arg(
        long,
        env = "STRATUS_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub nats_url: String,
    /// MQTT broker for `mqtt` triggers (connected only when a function has
    /// one).
    #[arg(
        long,
        env = "STRATUS_MQTT_URL",
        default_value = "mqtt://127.0.0.1:1883"
    )]
    pub mqtt_url: String,
    /// Where functions' key-value buckets live: `sqlite` (keyvalue.sqlite in
    /// the data directory) or `redis` (the server at --keyvalue-url).
    #[arg(long, env = "STRATUS_KEYVALUE", value_enum, default_value_t = KeyValueKind::Sqlite)]
    pub keyvalue: KeyValueKind,
    /// The Redis server of `--keyvalue redis` (default
    /// redis://127.0.0.1:6379); refused with `--keyvalue sqlite`, where it
    /// would be ignored.
    #[arg(long, env = "STRATUS_KEYVALUE_URL")]
    pub keyvalue_url: Option<String>,
}

/// The key-value backends a node can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyValueKind {
    Sqlite,
    Redis,
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
    /// Queue the call durably and print its id at once; the function gets
    /// it as a CloudEvent, retried on failure (`GET /v1/events/ID`).
    #[arg(long = "async", conflicts_with = "include")]
    pub asynchronous: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Function name, or APP/NAME (also for a function no longer deployed).
    pub function: String,
    /// Keep printing new lines as they are written.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only lines newer than this: a duration ("10m", "2h") or an RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// Only the lines of this invocation.
    #[arg(long)]
    pub invocation: Option<String>,
    /// The newest this many lines.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// `json` prints one JSON object per line.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UsageFormat {
    Table,
    Json,
    Csv,
}

#[derive(Debug, Args)]
pub struct UsageArgs {
    /// Only this app.
    #[arg(long)]
    pub app: Option<String>,
    /// Only usage since: a duration ("24h", "30d") or an RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    #[arg(long, value_enum, default_value_t = UsageFormat::Table)]
    pub format: UsageFormat,
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The function's language.
    #[arg(value_enum)]
    pub language: Language,
    /// Name of the app, its function and its route: lowercase letters,
    /// digits and '-', starting with a letter.
    pub name: String,
    /// Directory to create (default: ./NAME); never an existing one.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// The languages `stratus new` has templates for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Language {
    /// cargo for wasm32-wasip2, with the `wasip2` crate.
    Rust,
    /// componentize-py.
    #[value(alias = "py")]
    Python,
    /// jco componentize (componentize-js).
    #[value(alias = "javascript")]
    Js,
}
