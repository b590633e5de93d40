//! What a node is configured with, typed and checked before anything is
//! opened or bound.

use std::net::SocketAddr;
use std::time::Duration;
use stratus_telemetry::TracingConfig;

use stratus_gateway::{ConnectionLimits, TlsFiles};
use stratus_keyvalue::Quota;
use stratus_runtime::CompileLimits;
use stratus_storage::{PriceSheet, Retention, RetryPolicy, Sampling};

/// Everything a node is started with. [`NodeConfig::default`] is what
/// `stratus server` runs with when given no flags (the binary checks that
/// the two agree); the names in comments are those flags.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// `--listen`: the gateway.
    pub listen: SocketAddr,
    /// `--reuse-port`: share the gateway's port with other processes that
    /// bind it so (a node per core on one machine).
    pub reuse_port: bool,
    /// `--admin-listen`: the admin API.
    pub admin_listen: SocketAddr,
    /// `--tls-cert`, `--tls-key`: serve the gateway over TLS (HTTP/2 by
    /// ALPN); `None` serves plain HTTP/1.1.
    pub tls: Option<TlsFiles>,
    /// `--admin-tls-cert`, `--admin-tls-key`: the same for the admin API.
    pub admin_tls: Option<TlsFiles>,
    /// `--max-upload`: the largest deploy upload, in bytes.
    pub max_upload: u64,
    /// `--max-instances`: instances that may run at once (the pool size).
    pub max_instances: u32,
    /// `--queue-timeout`: how long an invocation waits for capacity.
    pub queue_timeout: Duration,
    /// `--max-connections`: gateway connections at once; `None` picks 8192
    /// or half the process's descriptor limit, whichever is lower.
    pub max_connections: Option<usize>,
    /// `--read-timeout`, `--body-timeout`, `--write-timeout`.
    pub read_timeout: Duration,
    pub body_timeout: Duration,
    pub write_timeout: Duration,
    /// `--compile-timeout`, `--compile-max-functions`, `--compile-max-code`.
    pub compile: CompileLimits,
    /// `--memory-budget`: memory running instances may reserve together;
    /// `None` is half of the machine's.
    pub memory_budget: Option<u64>,
    /// `--idle-ttl`: compiled code idle this long is dropped (zero keeps
    /// everything resident).
    pub idle_ttl: Duration,
    /// Retention and prices of the invocation ledger; `None` with
    /// `--no-metering`.
    pub metering: Option<Metering>,
    /// `--log-max-per-invocation`, at most [`MAX_LOG_PER_INVOCATION`].
    pub log_per_invocation: u64,
    /// `--log-max-per-app-day`.
    pub log_per_app_day: u64,
    /// `--max-calls-per-request`.
    pub calls_per_request: u32,
    /// `--retry-base` (the rest of the policy is fixed).
    pub retry: RetryPolicy,
    /// `--max-attempts`.
    pub max_attempts: u32,
    /// `--nats-url`, `--mqtt-url`.
    pub nats_url: String,
    pub mqtt_url: String,
    /// `--keyvalue`, `--keyvalue-url`.
    pub keyvalue: KeyValueStore,
    /// `--keyvalue-max-bytes-per-app`, `--keyvalue-max-keys-per-app`.
    pub keyvalue_quota: Quota,
    /// `--outbound-allow-private`.
    pub outbound_allow_private: bool,
    /// `--audit-retention`: how long the audit log keeps an entry.
    pub audit_retention: Duration,
    /// Whether the data directory outlives the process (`stratus server`;
    /// not `stratus up`), so that broker sessions may too.
    pub persistent: bool,
    /// `--otlp-endpoint`, `--trace-sample-ratio` (and the standard
    /// `OTEL_*` variables): where invocations' spans are exported.
    pub tracing: TracingConfig,
    /// `--cluster`: share apps and components with the other nodes of a
    /// NATS JetStream cluster instead of keeping them in the data
    /// directory.
    pub cluster: Option<Cluster>,
}

/// The JetStream cluster a node shares its apps and components through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// `--cluster`: NATS servers of the cluster, any one of which lets the
    /// node in.
    pub servers: Vec<String>,
    /// `--cluster-name`: the prefix of the buckets, so several Stratus
    /// clusters can share one NATS cluster.
    pub name: String,
    /// `--cluster-replicas`: copies JetStream keeps of every bucket (3
    /// survives the loss of one server of three).
    pub replicas: usize,
}

/// Where functions' key-value buckets live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyValueStore {
    /// `keyvalue.sqlite` in the data directory.
    Sqlite,
    /// A Redis server.
    Redis { url: String },
}

/// What the ledger keeps and how it prices it.
#[derive(Debug, Clone)]
pub struct Metering {
    pub retention: Retention,
    pub prices: PriceSheet,
    /// Which raw records are kept past a rate per function
    /// (`--ledger-sample-above`, `--ledger-sample-one-in`).
    pub sampling: Sampling,
}

/// How long the audit log keeps an entry unless told otherwise: a year,
/// what audits of a year's changes need.
pub const DEFAULT_AUDIT_RETENTION: Duration = Duration::from_secs(366 * 24 * 3600);

/// The smallest `--ledger-max-size`.
const MIN_LEDGER_BYTES: u64 = 16 << 20;

/// An invocation's log is held in memory until it ends.
pub const MAX_LOG_PER_INVOCATION: u64 = 16 << 20;

/// A setting the node cannot start with, naming the flag that set it.
#[derive(Debug)]
pub struct ConfigError {
    /// Empty when the message names it.
    pub flag: &'static str,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.flag {
            "" => f.write_str(&self.message),
            flag => write!(f, "{flag} {}", self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

fn refuse(flag: &'static str, message: impl Into<String>) -> Result<(), ConfigError> {
    Err(ConfigError {
        flag,
        message: message.into(),
    })
}

impl Default for NodeConfig {
    fn default() -> Self {
        let loopback = |port| SocketAddr::from(([127, 0, 0, 1], port));
        NodeConfig {
            listen: loopback(8080),
            reuse_port: false,
            admin_listen: loopback(8081),
            tls: None,
            admin_tls: None,
            max_upload: 64 << 20,
            max_instances: 1000,
            queue_timeout: Duration::from_secs(1),
            max_connections: None,
            read_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(300),
            write_timeout: Duration::from_secs(30),
            compile: CompileLimits::default(),
            memory_budget: None,
            idle_ttl: Duration::from_secs(300),
            metering: Some(Metering {
                retention: Retention::default(),
                prices: PriceSheet {
                    currency: "USD".into(),
                    per_gb_second: 0.000_016_666_7,
                    per_million_requests: 0.20,
                },
                sampling: Sampling::default(),
            }),
            log_per_invocation: 64 << 10,
            log_per_app_day: 256 << 20,
            calls_per_request: stratus_invoke::DEFAULT_MAX_CALLS_PER_TREE,
            retry: RetryPolicy::default(),
            max_attempts: 3,
            nats_url: "nats://127.0.0.1:4222".into(),
            mqtt_url: "mqtt://127.0.0.1:1883".into(),
            keyvalue: KeyValueStore::Sqlite,
            keyvalue_quota: Quota::default(),
            outbound_allow_private: false,
            audit_retention: DEFAULT_AUDIT_RETENTION,
            persistent: true,
            tracing: TracingConfig::default(),
            cluster: None,
        }
    }
}

impl NodeConfig {
    /// Refuses settings the node cannot run with, naming the flag, before
    /// anything is opened.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.max_instances == 0 {
            refuse("--max-instances", "must be at least 1")?;
        }
        if self.listen == self.admin_listen && self.listen.port() != 0 {
            refuse(
                "--listen",
                format!("and --admin-listen must differ (both are {})", self.listen),
            )?;
        }
        for (flag, timeout) in [
            ("--read-timeout", self.read_timeout),
            ("--body-timeout", self.body_timeout),
            ("--write-timeout", self.write_timeout),
        ] {
            if timeout.is_zero() {
                refuse(flag, "must be longer than 0s")?;
            }
        }
        if self.max_connections == Some(0) {
            refuse("--max-connections", "must be at least 1")?;
        }
        if self.log_per_invocation > MAX_LOG_PER_INVOCATION {
            refuse(
                "--log-max-per-invocation",
                "may be at most 16MiB (an invocation's log is kept in memory until it ends)",
            )?;
        }
        if self.calls_per_request == 0 {
            refuse("--max-calls-per-request", "must be at least 1")?;
        }
        if self.max_attempts == 0 {
            refuse("--max-attempts", "must be at least 1")?;
        }
        if let Some(cluster) = &self.cluster {
            cluster.check()?;
        }
        if let Some(metering) = &self.metering {
            let prices = &metering.prices;
            for (flag, price) in [
                ("--price-gb-second", prices.per_gb_second),
                ("--price-million-requests", prices.per_million_requests),
            ] {
                if !price.is_finite() || price < 0.0 {
                    refuse(
                        flag,
                        format!("must be a price of zero or more, not {price}"),
                    )?;
                }
            }
            if prices.currency.trim().is_empty() {
                refuse("--currency", "must not be empty")?;
            }
            // A budget smaller than a batch or two of records would be
            // trimmed to nothing at every check.
            if metering.retention.max_bytes < MIN_LEDGER_BYTES {
                refuse(
                    "--ledger-max-size",
                    format!(
                        "must be at least 16MiB, not {} bytes",
                        metering.retention.max_bytes
                    ),
                )?;
            }
            if metering.sampling.then_one_in == 0 {
                refuse(
                    "--ledger-sample-one-in",
                    "must be 1 or more (1 keeps every record)",
                )?;
            }
        }
        stratus_triggers::check_addresses(&self.nats_url, &self.mqtt_url).map_err(|message| {
            // The message names the flag already.
            ConfigError { flag: "", message }
        })?;
        Ok(())
    }

    /// The connection bounds of the gateway, `--max-connections` checked
    /// against the descriptors the process may open (raised first to the
    /// hard limit).
    pub(crate) fn connection_limits(&self) -> Result<ConnectionLimits, ConfigError> {
        let descriptors = descriptor_limit();
        let room = descriptors.saturating_sub(RESERVED_DESCRIPTORS);
        let max_connections = match self.max_connections {
            Some(n) if n as u64 > room => {
                return Err(ConfigError {
                    flag: "--max-connections",
                    message: format!(
                        "{n} does not fit the process's file descriptor limit ({descriptors}, of which {RESERVED_DESCRIPTORS} are kept for the admin API, databases and outbound requests); raise the limit (ulimit -n) or ask for at most {room}"
                    ),
                });
            }
            Some(n) => n.max(1),
            None => usize::try_from((descriptors / 2).min(8192))
                .unwrap_or(8192)
                .max(1),
        };
        Ok(ConnectionLimits {
            max_connections,
            read_timeout: self.read_timeout,
            body_timeout: self.body_timeout,
            write_timeout: self.write_timeout,
        })
    }

    /// `--memory-budget`, or half of the machine's memory.
    pub(crate) fn memory_budget(&self) -> u64 {
        self.memory_budget.unwrap_or_else(half_of_physical_memory)
    }
}

/// Connections the admin API serves at once: plenty for operators and CI,
/// and its own count, so a flood on the gateway never locks operators out.
pub(crate) const ADMIN_MAX_CONNECTIONS: usize = 256;

/// Descriptors kept for everything but gateway connections: the admin API,
/// databases, brokers, outbound requests of functions.
const RESERVED_DESCRIPTORS: u64 = ADMIN_MAX_CONNECTIONS as u64 + 768;

/// The process's soft limit on open descriptors, raised first to the hard
/// limit: the default soft limit (often 1024) is far below what a gateway
/// under load needs, and raising it is allowed without privilege.
fn descriptor_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            tracing::warn!("cannot raise the open file limit: {e}");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
        }
    }
}

/// Half of `MemTotal`, leaving the rest to the node itself, compiled code
/// and the OS (8 GiB where it cannot be read).
fn half_of_physical_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024 / 2)
        })
        .unwrap_or(8 << 30)
}

impl Cluster {
    fn check(&self) -> Result<(), ConfigError> {
        if self.servers.is_empty() || self.servers.iter().any(|s| s.trim().is_empty()) {
            refuse(
                "--cluster",
                "needs at least one NATS server, e.g. nats://10.0.0.5:4222",
            )?;
        }
        let name_ok = (1..=32).contains(&self.name.len())
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !name_ok {
            refuse(
                "--cluster-name",
                format!(
                    "{:?} must be 1 to 32 lowercase letters, digits, `_` or `-` (it prefixes JetStream bucket names)",
                    self.name
                ),
            )?;
        }
        if !(1..=5).contains(&self.replicas) {
            refuse("--cluster-replicas", "must be 1 to 5 (JetStream's limit)")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_start() {
        NodeConfig::default().check().expect("defaults are valid");
    }

    #[test]
    fn a_bad_setting_names_its_flag() {
        type Change = fn(&mut NodeConfig);
        fn cluster(c: &mut NodeConfig) -> &mut Cluster {
            c.cluster.get_or_insert(Cluster {
                servers: vec!["nats://127.0.0.1:4222".into()],
                name: "stratus".into(),
                replicas: 3,
            })
        }
        let cases: [(Change, &str); 12] = [
            (|c| c.max_instances = 0, "--max-instances"),
            (|c| c.admin_listen = c.listen, "--listen"),
            (|c| c.write_timeout = Duration::ZERO, "--write-timeout"),
            (
                |c| c.log_per_invocation = 17 << 20,
                "--log-max-per-invocation",
            ),
            (|c| c.mqtt_url = "http://x".into(), "--mqtt-url"),
            (
                |c| {
                    if let Some(m) = &mut c.metering {
                        m.prices.per_gb_second = f64::NAN;
                    }
                },
                "--price-gb-second",
            ),
            (
                |c| {
                    if let Some(m) = &mut c.metering {
                        m.retention.max_bytes = 1 << 20;
                    }
                },
                "--ledger-max-size",
            ),
            (
                |c| {
                    if let Some(m) = &mut c.metering {
                        m.sampling.then_one_in = 0;
                    }
                },
                "--ledger-sample-one-in",
            ),
            (|c| cluster(c).servers.clear(), "--cluster"),
            (|c| cluster(c).name = "Prod.EU".into(), "--cluster-name"),
            (|c| cluster(c).name = String::new(), "--cluster-name"),
            (|c| cluster(c).replicas = 7, "--cluster-replicas"),
        ];
        for (change, flag) in cases {
            let mut config = NodeConfig::default();
            change(&mut config);
            let error = config.check().expect_err(flag).to_string();
            assert!(error.contains(flag), "{flag}: {error}");
        }
    }
}
