//! Command-line arguments. Names follow the product contract
//! (`../shared/product.md`): users' scripts depend on them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "stratus",
    version,
    about = "A self-hosted serverless platform for WebAssembly components"
)]
pub struct Cli {
    /// `--server` before the command name, as the product contract's
    /// global options allow (`stratus --server URL apps`); hidden here, as
    /// help shows it under each client command.
    #[arg(
        long = "server",
        id = "leading_server",
        value_name = "URL",
        hide = true
    )]
    pub leading_server: Option<String>,
    /// `--token` before the command name.
    #[arg(long = "token", id = "leading_token", hide = true)]
    pub leading_token: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses the command line, refusing `--server`/`--token` before a
    /// command that does not talk to a node (clap cannot say that on its
    /// own, as the leading options belong to every command).
    pub fn try_parse_checked<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::CommandFactory;
        let cli = Self::try_parse_from(args)?;
        let leading = cli.leading_server.is_some() || cli.leading_token.is_some();
        let local = matches!(
            cli.command,
            Command::Server(_) | Command::Up(_) | Command::New(_)
        );
        if leading && local {
            return Err(Self::command().error(
                clap::error::ErrorKind::ArgumentConflict,
                "--server and --token are for the commands that talk to a node; \
                 `server` and `up` take --admin-listen and --admin-token",
            ));
        }
        Ok(cli)
    }
}

/// How a client command reaches a node. Only the client commands take
/// these (`server`, `up` and `new` start or write things locally), each
/// after its name: `stratus apps --server URL`, `stratus dlq ls F --token T`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Node")]
pub struct ClientOpts {
    /// The node's admin API.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "STRATUS_SERVER",
        hide_env_values = true,
        default_value = "http://127.0.0.1:8081"
    )]
    pub server: String,
    /// The node's admin token (default: the token a `stratus up` on this
    /// machine left for its port, else ./.stratus/admin-token when present).
    #[arg(long, global = true, env = "STRATUS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Trust this CA certificate (PEM) for an https:// --server, besides the system's
    /// (a node serving the admin API with --admin-tls-cert signed by a private CA).
    #[arg(
        long,
        global = true,
        env = "STRATUS_CA_CERT",
        hide_env_values = true,
        value_name = "PEM"
    )]
    pub ca_cert: Option<PathBuf>,
    /// The namespace whose apps the command addresses.
    #[arg(
        long,
        short = 'n',
        global = true,
        env = "STRATUS_NAMESPACE",
        hide_env_values = true,
        value_name = "NAMESPACE",
        default_value = "default"
    )]
    pub namespace: String,
}

/// A client command: its own arguments, then how to reach the node.
#[derive(Debug, Args)]
pub struct Remote<A: Args> {
    #[command(flatten)]
    pub args: A,
    #[command(flatten)]
    pub client: ClientOpts,
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
    Deploy(Remote<DeployArgs>),
    /// List apps.
    Apps(Remote<ListArgs>),
    /// List the nodes serving the platform: this one, or every node of its cluster, with their load.
    Nodes(Remote<ListArgs>),
    /// List live functions: routes, triggers, resident or scaled to zero, last error.
    Functions(Remote<FunctionsArgs>),
    /// The node at a glance: readiness, functions, brokers, triggers, key-value store, problems.
    Status(Remote<StatusArgs>),
    /// List an app's versions and which one is live.
    Versions(Remote<VersionsArgs>),
    /// Activate an earlier version of an app atomically.
    Rollback(Remote<RollbackArgs>),
    /// Show or set how an app's requests split between versions (canary releases).
    Traffic(Remote<TrafficArgs>),
    /// Delete an app and all its versions.
    Delete(Remote<DeleteArgs>),
    /// Call a function directly and print its response.
    Invoke(Remote<InvokeArgs>),
    /// Print a function's invocation logs (`-f` follows them live).
    Logs(Remote<LogsArgs>),
    /// Report metered usage and cost per function.
    Usage(Remote<UsageArgs>),
    /// A function's dead letters: list them, or redrive them.
    Dlq(Remote<DlqArgs>),
    /// List a function's recorded invocations, newest first, by outcome,
    /// trigger, time and duration.
    Invocations(Remote<InvocationsArgs>),
    /// Queue a copy of one of a function's events for it again, under a
    /// new id (to try a fixed function on an event it handled wrongly).
    Replay(Remote<ReplayArgs>),
    /// An app's secrets: set one (value on stdin), list names, remove one.
    Secrets(Remote<SecretsArgs>),
    /// API tokens scoped to a namespace and a role: create, list, revoke.
    Tokens(Remote<TokensArgs>),
    /// The namespace's audit log: every change through the API, and every
    /// refused attempt at one.
    Audit(Remote<AuditArgs>),
    /// The namespace's quotas and budget: show them, or set them (the
    /// node's token or a node-wide admin).
    Quotas(Remote<QuotasArgs>),
}

#[derive(Debug, Args)]
pub struct QuotasArgs {
    #[command(subcommand)]
    pub command: QuotasCommand,
}

#[derive(Debug, Subcommand)]
pub enum QuotasCommand {
    /// The namespace's quotas, what it uses, and its budget this period.
    Show {
        /// How to print it: an aligned table, or JSON for scripts.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Replace the namespace's quotas whole; what is not given is unlimited.
    Set(QuotaSetArgs),
}

#[derive(Debug, Args)]
pub struct QuotaSetArgs {
    /// Apps at once.
    #[arg(long)]
    pub max_apps: Option<u32>,
    /// Functions over all its apps' live versions.
    #[arg(long)]
    pub max_functions: Option<u32>,
    /// Memory of any one function, e.g. "256MiB".
    #[arg(long, value_parser = bytes)]
    pub max_memory: Option<u64>,
    /// Invocations running at once over all its functions.
    #[arg(long)]
    pub max_concurrency: Option<u32>,
    /// Requests per second through the gateway.
    #[arg(long)]
    pub requests_per_second: Option<u32>,
    /// What it may spend per --budget-period, in --budget-unit.
    #[arg(long)]
    pub budget: Option<f64>,
    /// `money` (the node's price sheet's currency) or `gb-seconds`.
    #[arg(long, default_value = "money", value_parser = ["money", "gb-seconds"])]
    pub budget_unit: String,
    /// `day` or `month` (UTC).
    #[arg(long, default_value = "month", value_parser = ["day", "month"])]
    pub budget_period: String,
    /// At 100 %: `reject` (429 budget_exhausted) or `alert` (keep serving).
    #[arg(long, default_value = "reject", value_parser = ["reject", "alert"])]
    pub on_exhausted: String,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only entries since then: a duration back from now ("24h") or an RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// The newest this many entries.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// The node's own entries (node-wide tokens) instead of the namespace's.
    #[arg(long)]
    pub node_wide: bool,
    /// How to print it: an aligned table, or JSON for scripts.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct TokensArgs {
    #[command(subcommand)]
    pub command: TokensCommand,
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Make a token for the namespace (--namespace) and print it, once.
    Create(TokenCreateArgs),
    /// List the namespace's tokens: name, role, scope, created, expires, last used.
    Ls(TokensListArgs),
    /// Revoke a token by its id, on every node at once.
    Revoke(TokenRevokeArgs),
}

#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// What it may do: viewer reads; invoker also invokes and publishes;
    /// deployer also deploys, rolls back, sets secrets and redrives; admin
    /// also manages tokens.
    #[arg(long, value_parser = ["viewer", "invoker", "deployer", "admin"])]
    pub role: String,
    /// What it is for, shown by `tokens ls`.
    #[arg(long, default_value = "token")]
    pub name: String,
    /// Its lifetime ("30d", "12h"); without one it lasts until revoked.
    #[arg(long, value_name = "DURATION")]
    pub expires: Option<String>,
    /// A token for every namespace and the node's own endpoints, instead
    /// of one namespace's (only with the node's token or a node-wide admin).
    #[arg(long)]
    pub node_wide: bool,
}

#[derive(Debug, Args)]
pub struct TokensListArgs {
    /// The node-wide tokens instead of the namespace's.
    #[arg(long)]
    pub node_wide: bool,
    /// How to print it: an aligned table, or JSON for scripts.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct TokenRevokeArgs {
    /// The token's id, as `tokens ls` shows it.
    pub id: String,
}

#[derive(Debug, Args)]
pub struct SecretsArgs {
    #[command(subcommand)]
    pub command: SecretsCommand,
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
    /// The app the secret belongs to.
    pub app: String,
    /// The secret's name, as its functions' `secrets` key lists it.
    pub name: String,
}

#[derive(Debug, Args)]
pub struct SecretsListArgs {
    /// The app whose secrets to list.
    pub app: String,
    /// How to print it: an aligned table, or JSON for scripts.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct DlqArgs {
    #[command(subcommand)]
    pub command: DlqCommand,
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
    /// How to print it: an aligned table, or JSON for scripts.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct InvocationsArgs {
    /// Function name, or APP/NAME.
    pub function: String,
    /// `ok`, `error` (a trap, a timeout, a limit, a refusal or a 5xx), or a
    /// status code.
    #[arg(long)]
    pub status: Option<String>,
    /// `http`, `api`, `event` or `service`.
    #[arg(long)]
    pub trigger: Option<String>,
    /// Only invocations newer than this: a duration ("10m", "2h") or an
    /// RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// Only invocations that took at least this many milliseconds.
    #[arg(long)]
    pub min_duration_ms: Option<u64>,
    /// The newest this many.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// How to print it: an aligned table, or JSON for scripts.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Function name, or APP/NAME.
    pub function: String,
    /// The event's id (`stratus dlq ls`, or the id a publish answered).
    pub id: String,
}

#[derive(Debug, Args)]
pub struct DlqRedriveArgs {
    /// Function name, or APP/NAME.
    pub function: String,
    /// Only this dead letter (default: all).
    #[arg(long)]
    pub id: Option<String>,
}

/// A size flag: "64MiB", "512KiB", "1GB" (a bare number is refused, as
/// in the manifest, so "64" is not taken for 64 bytes by mistake).
fn bytes(text: &str) -> Result<u64, String> {
    use stratus_manifest::SizeError;
    stratus_manifest::ByteSize::parse(text)
        .map(|size| size.bytes())
        .map_err(|e| match e {
            SizeError::MissingUnit(_) => format!(
                "\"{text}\" has no unit; add one (B, KiB, MiB, GiB, KB, MB, GB), e.g. \"{}B\"",
                text.trim()
            ),
            e => e.to_string(),
        })
}

/// A duration flag: "250ms", "30s", "5m", "7d".
fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("{e}; use e.g. \"250ms\", \"30s\", \"5m\" or \"7d\""))
}

#[derive(Debug, Clone, Args)]
pub struct NodeOpts {
    /// Gateway address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Share the gateway's port with other `stratus server` processes
    /// started with this flag (SO_REUSEPORT): the kernel spreads the
    /// connections among them. With `--cluster`, one node per core on one
    /// machine (e.g. each under `taskset -c N`) serves functions that write
    /// much memory per instance (Python, JavaScript) several times faster
    /// than one node on every core.
    #[arg(long)]
    pub reuse_port: bool,
    /// Admin API address.
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub admin_listen: SocketAddr,
    /// Serve the gateway over TLS with this certificate chain (PEM), HTTP/2 or HTTP/1.1 by
    /// ALPN. The file and the key are read again when they change: new connections get the
    /// new certificate, open ones keep theirs.
    #[arg(
        long,
        env = "STRATUS_TLS_CERT",
        hide_env_values = true,
        requires = "tls_key",
        value_name = "PEM"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(
        long,
        env = "STRATUS_TLS_KEY",
        hide_env_values = true,
        requires = "tls_cert",
        value_name = "PEM"
    )]
    pub tls_key: Option<PathBuf>,
    /// Serve the admin API over TLS with this certificate chain (PEM), as --tls-cert does.
    #[arg(
        long,
        env = "STRATUS_ADMIN_TLS_CERT",
        hide_env_values = true,
        requires = "admin_tls_key",
        value_name = "PEM"
    )]
    pub admin_tls_cert: Option<PathBuf>,
    /// The private key of --admin-tls-cert (PEM).
    #[arg(
        long,
        env = "STRATUS_ADMIN_TLS_KEY",
        hide_env_values = true,
        requires = "admin_tls_cert",
        value_name = "PEM"
    )]
    pub admin_tls_key: Option<PathBuf>,
    /// Admin API token (default: `server` generates one on first start and stores it in the
    /// data directory; `up` generates one per run and leaves it where the CLI of this user
    /// finds it). Prefer the STRATUS_ADMIN_TOKEN environment variable or the stored file:
    /// other users of the machine can read a command line's flags with `ps`.
    #[arg(long, env = "STRATUS_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// How long a deploy waits for a component to compile before refusing
    /// it, e.g. "2m".
    #[arg(long, default_value = "2m", value_parser = duration)]
    pub compile_timeout: Duration,
    /// The most functions a component may have (all its core modules
    /// together); compile time and memory grow with them.
    #[arg(long, default_value_t = 100_000)]
    pub compile_max_functions: u64,
    /// The most code a component may have (all its core modules together),
    /// e.g. "128MiB".
    #[arg(long, default_value = "128MiB", value_parser = bytes)]
    pub compile_max_code: u64,
    /// Compile every new component with Cranelift before it serves. By
    /// default it serves at once on code from the faster baseline compiler
    /// (Winch) and switches to Cranelift's code when that is compiled in the
    /// background.
    #[arg(long)]
    pub no_tiered_compilation: bool,
    /// Threads a deploy's compile runs on (default: every core). They run
    /// below the priority of the requests being served (on Linux), so a
    /// deploy takes only the cores requests leave idle; set fewer to keep
    /// cores free of compiles altogether.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub compile_threads: Option<u16>,
    /// Largest deploy upload accepted, e.g. "64MiB".
    #[arg(long, default_value = "64MiB", value_parser = bytes)]
    pub max_upload: u64,
    /// Instances that may run at once across all functions (pool size).
    #[arg(long, default_value_t = 1000)]
    pub max_instances: u32,
    /// How long a request may wait for capacity before a 429, e.g. "1s".
    #[arg(long, default_value = "1s", value_parser = duration)]
    pub queue_timeout: Duration,
    /// Gateway connections open at once; more wait until one closes
    /// (default: 8192, or half the process's file descriptor limit if lower).
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// How long a client may take to send its request headers, and the
    /// longest pause within a request body (then 408), e.g. "30s".
    #[arg(long, default_value = "30s", value_parser = duration)]
    pub read_timeout: Duration,
    /// How long a whole request body may take to arrive (then 408), e.g. "5m".
    #[arg(long, default_value = "5m", value_parser = duration)]
    pub body_timeout: Duration,
    /// Close a connection whose response has made no progress into the
    /// client for this long (a client that does not read), e.g. "30s".
    #[arg(long, default_value = "30s", value_parser = duration)]
    pub write_timeout: Duration,
    /// Memory that running instances may reserve together (the sum of their
    /// `memory` caps), e.g. "8GiB"; default: half of the machine's memory.
    #[arg(long, value_parser = bytes)]
    pub memory_budget: Option<u64>,
    /// Drop a function's compiled code after it has been idle this long
    /// (scale to zero; "0s" keeps everything resident), e.g. "5m".
    #[arg(long, default_value = "5m", value_parser = duration)]
    pub idle_ttl: Duration,
    /// Keep no invocation records, usage or logs (for measuring their cost).
    #[arg(long)]
    pub no_metering: bool,
    /// Price per GB-second (peak memory × billed duration); the default is
    /// the AWS Lambda x86 list price.
    #[arg(
        long,
        env = "STRATUS_PRICE_GB_SECOND",
        hide_env_values = true,
        default_value_t = 0.000_016_666_7
    )]
    pub price_gb_second: f64,
    /// Price per million invocations.
    #[arg(
        long,
        env = "STRATUS_PRICE_MILLION_REQUESTS",
        hide_env_values = true,
        default_value_t = 0.20
    )]
    pub price_million_requests: f64,
    /// Currency the prices are in.
    #[arg(
        long,
        env = "STRATUS_CURRENCY",
        hide_env_values = true,
        default_value = "USD"
    )]
    pub currency: String,
    /// The most an invocation may log (stdout and stderr together); the
    /// rest is dropped with a marker, e.g. "64KiB".
    #[arg(long, default_value = "64KiB", value_parser = bytes)]
    pub log_max_per_invocation: u64,
    /// The most log bytes an app keeps per day (UTC); past it its lines are
    /// dropped and counted, e.g. "256MiB".
    #[arg(long, default_value = "256MiB", value_parser = bytes)]
    pub log_max_per_app_day: u64,
    /// The calls between functions (`http://<function>.svc`) one request
    /// or event may set off in all, down its whole tree of calls.
    #[arg(long, default_value_t = stratus_invoke::DEFAULT_MAX_CALLS_PER_TREE)]
    pub max_calls_per_request: u32,
    /// How long raw invocation records are kept, e.g. "7d".
    #[arg(long, default_value = "7d", value_parser = duration)]
    pub record_retention: Duration,
    /// How long function logs are kept, e.g. "7d".
    #[arg(long, default_value = "7d", value_parser = duration)]
    pub log_retention: Duration,
    /// How long hourly usage totals are kept, e.g. "400d".
    #[arg(long, default_value = "400d", value_parser = duration)]
    pub usage_retention: Duration,
    /// The most disk invocation records and logs may take, e.g. "1GiB":
    /// past it the oldest go first, whatever their age (hourly usage is
    /// kept). In a cluster, the ledger stream's size limit.
    #[arg(long, default_value = "1GiB", value_parser = bytes)]
    pub ledger_max_size: u64,
    /// Invocation records per function and second kept whatever they are;
    /// past it, successful warm invocations are sampled
    /// (`--ledger-sample-one-in`). Failures and cold starts are always
    /// kept, and usage counts every invocation. `0` keeps every record.
    #[arg(long, default_value_t = 100)]
    pub ledger_sample_above: u32,
    /// Past `--ledger-sample-above`, one successful warm invocation's
    /// record in this many is kept (`1` keeps them all).
    #[arg(long, default_value_t = 100)]
    pub ledger_sample_one_in: u32,
    /// Wait before the first retry of a failed event, doubled per attempt
    /// (with jitter) up to 5 minutes, e.g. "1s".
    #[arg(long, default_value = "1s", value_parser = duration)]
    pub retry_base: Duration,
    /// Deliveries of an async invocation before it is dead.
    #[arg(long, default_value_t = 3)]
    pub max_attempts: u32,
    /// NATS server for `nats` and `jetstream` triggers (connected only when
    /// a function has one).
    #[arg(
        long,
        env = "STRATUS_NATS_URL",
        hide_env_values = true,
        default_value = "nats://127.0.0.1:4222"
    )]
    pub nats_url: String,
    /// MQTT broker for `mqtt` triggers (connected only when a function has
    /// one).
    #[arg(
        long,
        env = "STRATUS_MQTT_URL",
        hide_env_values = true,
        default_value = "mqtt://127.0.0.1:1883"
    )]
    pub mqtt_url: String,
    /// Where functions' key-value buckets live: `sqlite` (keyvalue.sqlite in
    /// the data directory) or `redis` (the server at --keyvalue-url).
    #[arg(
        long,
        env = "STRATUS_KEYVALUE",
        hide_env_values = true,
        value_enum,
        default_value_t = KeyValueKind::Sqlite
    )]
    pub keyvalue: KeyValueKind,
    /// The Redis server of `--keyvalue redis` (default
    /// redis://127.0.0.1:6379); refused with `--keyvalue sqlite`, where it
    /// would be ignored.
    #[arg(long, env = "STRATUS_KEYVALUE_URL", hide_env_values = true)]
    pub keyvalue_url: Option<String>,
    /// The most key-value data one app may keep, its keys and values in
    /// all its buckets together, e.g. "64MiB". A write past it fails in
    /// the guest and changes nothing; deletes free room.
    #[arg(long, default_value = "64MiB", value_parser = bytes)]
    pub keyvalue_max_bytes_per_app: u64,
    /// The most keys one app may keep in all its buckets together.
    #[arg(long, default_value_t = stratus_storage::Quota::DEFAULT_MAX_KEYS)]
    pub keyvalue_max_keys_per_app: u64,
    /// Let functions reach loopback, private and link-local addresses
    /// (127.0.0.0/8, 10/8, 172.16/12, 192.168/16, 100.64/10, 169.254/16,
    /// ::1, fc00::/7, fe80::/10) through host names their `allowed_outbound`
    /// allows. Without it such a name is refused after resolution, and only
    /// a pattern naming the IP address itself (e.g. "http://10.0.0.5:8080")
    /// reaches it.
    #[arg(long)]
    pub outbound_allow_private: bool,
    /// Export a span per invocation (with its phases and outbound calls)
    /// to this OpenTelemetry collector, over OTLP/HTTP with protobuf: its
    /// base URL, e.g. http://127.0.0.1:4318 (spans go to /v1/traces).
    /// Without it the standard OTEL_EXPORTER_OTLP_ENDPOINT (or
    /// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) turns tracing on; OTEL_*
    /// variables set headers, timeouts and the service name.
    #[arg(long, env = "STRATUS_OTLP_ENDPOINT", hide_env_values = true)]
    pub otlp_endpoint: Option<String>,
    /// The share of traces begun on this node that are exported, from 0 to
    /// 1; a caller's traceparent decides for its own trace. Without it,
    /// OTEL_TRACES_SAMPLER (and OTEL_TRACES_SAMPLER_ARG) decide, by default
    /// every trace.
    #[arg(long, env = "STRATUS_TRACE_SAMPLE_RATIO", hide_env_values = true)]
    pub trace_sample_ratio: Option<f64>,
    /// How long the audit log (`stratus audit`) keeps an entry: every change
    /// through the API and every refused attempt at one.
    #[arg(long, default_value = "366d", value_parser = duration, value_name = "DURATION")]
    pub audit_retention: Duration,
    /// Run as one node of a cluster: keep apps and components in the NATS
    /// JetStream cluster at these servers (comma-separated, e.g.
    /// "nats://10.0.0.5:4222,nats://10.0.0.6:4222") instead of the data
    /// directory. Every node started with the same --cluster and
    /// --cluster-name serves every app, whichever node it was deployed
    /// through.
    #[arg(
        long,
        env = "STRATUS_CLUSTER",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub cluster: Vec<String>,
    /// The prefix of the cluster's JetStream buckets, so several Stratus
    /// clusters can share one NATS cluster.
    #[arg(
        long,
        env = "STRATUS_CLUSTER_NAME",
        hide_env_values = true,
        default_value = "stratus"
    )]
    pub cluster_name: String,
    /// Copies JetStream keeps of the cluster's buckets: 3 on a NATS cluster
    /// of three or more servers (survives the loss of one), 1 on a single
    /// server.
    #[arg(
        long,
        env = "STRATUS_CLUSTER_REPLICAS",
        hide_env_values = true,
        default_value_t = 1
    )]
    pub cluster_replicas: usize,
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
    #[arg(
        long,
        env = "STRATUS_DATA_DIR",
        hide_env_values = true,
        default_value = "./.stratus"
    )]
    pub data_dir: PathBuf,
    /// The node's own log: `text` for people, `json` (one object a line,
    /// the invocation's id, app and function on each line of one) for a
    /// log pipeline.
    #[arg(
        long,
        value_enum,
        env = "STRATUS_LOG_FORMAT",
        hide_env_values = true,
        default_value_t = LogFormat::Text
    )]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub node: NodeOpts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// App directories (each holding a stratus.toml).
    #[arg(default_value = ".")]
    pub dirs: Vec<PathBuf>,
    /// Skip the manifests' build commands.
    #[arg(long)]
    pub no_build: bool,
    /// Rebuild and redeploy an app when a file in its directory changes
    /// (build output aside); a failed build or deploy keeps the last good
    /// version serving.
    #[arg(long, conflicts_with = "no_build")]
    pub watch: bool,
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
    /// How to print the report: a table, or JSON for scripts.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Return only once every node of the cluster serves the new version
    /// (on a node on its own, at once); fail if that takes longer than
    /// --wait-timeout.
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits, e.g. "2m".
    #[arg(long, default_value = "60s", value_parser = duration, requires = "wait")]
    pub wait_timeout: Duration,
    /// Refuse the deploy (nothing is stored or activated) if the new
    /// version gains any capability over the live one: a new import,
    /// outbound host, key-value bucket, secret, config key, trigger, route,
    /// function or a larger limit. For CI pipelines.
    #[arg(long)]
    pub require_no_new_capabilities: bool,
    /// Serve the new version as a canary with this share of requests
    /// (percent) beside the live version, which stays live. The node
    /// judges it against the live version and rolls it back on a breach.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=99))]
    pub canary: Option<u8>,
    #[command(flatten)]
    pub rollout: CanaryOpts,
}

/// How a canary runs (with `deploy --canary` or `traffic`).
#[derive(Debug, Clone, Default, PartialEq, Args)]
pub struct CanaryOpts {
    /// The shares the canary moves to, one per --interval without a
    /// breach, e.g. "50,100"; 100 promotes it to the live version.
    #[arg(long, value_delimiter = ',')]
    pub steps: Vec<u8>,
    /// How long each step lasts, e.g. "1m" (default 1m).
    #[arg(long, value_parser = duration)]
    pub interval: Option<Duration>,
    /// Keep each client on one version by this request header's value.
    #[arg(long, conflicts_with = "sticky_cookie")]
    pub sticky_header: Option<String>,
    /// Keep each client on one version by this cookie's value.
    #[arg(long)]
    pub sticky_cookie: Option<String>,
    /// Roll back when the canary's error rate exceeds the live version's
    /// by more than this many percentage points (default 2).
    #[arg(long)]
    pub max_error_rate_increase: Option<f64>,
    /// Roll back when the canary's p99 exceeds this many times the live
    /// version's (default 1.5).
    #[arg(long)]
    pub max_p99_ratio: Option<f64>,
    /// Requests the canary serves in a step before it is judged
    /// (default 20).
    #[arg(long)]
    pub min_requests: Option<u64>,
}

#[derive(Debug, Args)]
pub struct TrafficArgs {
    /// The app's name.
    pub app: String,
    /// The split to serve, e.g. `v7=90 v8=10` (the live version, or else
    /// the larger share, stays stable; the other is its canary), or
    /// `v8=100` to serve one version alone. Without it: show the split.
    pub split: Vec<String>,
    #[command(flatten)]
    pub rollout: CanaryOpts,
    /// How to print it: text, or JSON for scripts.
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
    /// How to print it: an aligned table, or JSON for scripts.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct FunctionsArgs {
    /// Only this app's functions.
    #[arg(long)]
    pub app: Option<String>,
    /// How to print it: an aligned table, or JSON for scripts.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// How to print it: an aligned table, or JSON for scripts.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct VersionsArgs {
    /// The app's name.
    pub app: String,
    /// How to print it: an aligned table, or JSON for scripts.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The app's name.
    pub app: String,
    /// Version to activate (default: the one before the live version).
    #[arg(long)]
    pub to: Option<u32>,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The app's name.
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
    /// Method the function sees.
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
    /// How to print it: an aligned table, JSON, or CSV for spreadsheets.
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

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::{Cli, Command};

    /// Commands that start or write things on this machine: no node to reach.
    const LOCAL: &[&str] = &["server", "up", "new"];

    /// The built command line: global options propagated, help texts final.
    fn built() -> clap::Command {
        let mut cli = Cli::command();
        cli.build();
        cli
    }

    /// Every command, nested ones too, with the path of names to it (not
    /// clap's own `help` commands).
    fn every_command(command: &clap::Command, path: &str, out: &mut Vec<(String, clap::Command)>) {
        for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
            let path = format!("{path} {}", sub.get_name()).trim().to_string();
            out.push((path.clone(), sub.clone()));
            every_command(sub, &path, out);
        }
    }

    fn commands() -> Vec<(String, clap::Command)> {
        let mut out = Vec::new();
        every_command(&built(), "", &mut out);
        out
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn client_options_are_only_on_client_commands() {
        for (path, command) in commands() {
            let local = LOCAL.iter().any(|l| path.split(' ').next() == Some(*l));
            let has = |id: &str| command.get_arguments().any(|a| a.get_id() == id);
            assert_eq!(has("server"), !local, "--server on `{path}`");
            assert_eq!(has("token"), !local, "--token on `{path}`");
        }
        for args in [
            &["up", "--token", "t"][..],
            &["server", "--server", "http://x"],
            &["new", "rust", "f", "--server", "http://x"],
            &["--server", "http://x", "up"],
        ] {
            let refused =
                Cli::try_parse_checked(std::iter::once("stratus").chain(args.iter().copied()));
            assert!(refused.is_err(), "{args:?} was accepted");
        }
    }

    #[test]
    fn client_options_work_after_the_command_name_anywhere() {
        let cases: [&[&str]; 6] = [
            &["apps", "--server", "http://n:1", "--token", "t"],
            &[
                "invoke",
                "--token",
                "t",
                "f",
                "--server",
                "http://n:1",
                "-d",
                "x",
            ],
            &["dlq", "--server", "http://n:1", "ls", "f", "--token", "t"],
            &["dlq", "ls", "--token", "t", "f", "--server", "http://n:1"],
            &[
                "secrets",
                "--token",
                "t",
                "rm",
                "app",
                "key",
                "--server",
                "http://n:1",
            ],
            &[
                "usage",
                "--format",
                "csv",
                "--server",
                "http://n:1",
                "--token",
                "t",
            ],
        ];
        for args in cases {
            let cli = Cli::try_parse_from(std::iter::once("stratus").chain(args.iter().copied()))
                .unwrap_or_else(|e| panic!("{args:?}: {e}"));
            let client = match cli.command {
                Command::Apps(r) => r.client,
                Command::Invoke(r) => r.client,
                Command::Dlq(r) => r.client,
                Command::Secrets(r) => r.client,
                Command::Tokens(r) => r.client,
                Command::Audit(r) => r.client,
                Command::Quotas(r) => r.client,
                Command::Usage(r) => r.client,
                other => panic!("{args:?} parsed as {other:?}"),
            };
            assert_eq!(client.server, "http://n:1", "{args:?}");
            assert_eq!(client.token.as_deref(), Some("t"), "{args:?}");
        }
    }

    #[test]
    fn every_argument_says_what_it_is() {
        for (path, command) in commands() {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                assert!(
                    arg.get_help().is_some() || arg.get_long_help().is_some(),
                    "`stratus {path}`: {id} has no description"
                );
            }
        }
    }

    #[test]
    fn help_says_each_thing_once() {
        for (path, mut command) in commands() {
            let help = command.render_long_help().to_string();
            assert!(
                !help.contains("=]"),
                "`{path} --help` shows an empty env value:\n{help}"
            );
            for arg in command.get_arguments() {
                let help = arg
                    .get_long_help()
                    .or(arg.get_help())
                    .map(ToString::to_string);
                assert!(
                    arg.get_default_values().is_empty()
                        || !help.unwrap_or_default().contains("(default"),
                    "`{path}`: {} says its default, and clap says it again",
                    arg.get_id()
                );
            }
            // Two options described alike (`up` had --token and
            // --admin-token, both "Admin API token") leave the reader to guess.
            let mut seen = std::collections::HashMap::new();
            for arg in command.get_arguments() {
                let Some(text) = arg.get_help().map(ToString::to_string) else {
                    continue;
                };
                let first = text.lines().next().unwrap_or("").to_string();
                if let Some(other) = seen.insert(first.clone(), arg.get_id().to_string()) {
                    panic!(
                        "`{path}`: {other} and {} are both \"{first}\"",
                        arg.get_id()
                    );
                }
            }
        }
    }
}
