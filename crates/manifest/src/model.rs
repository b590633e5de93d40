//! The validated manifest: what the rest of Stratus works with.
//!
//! These types exist only in a valid state when they come from
//! [`Manifest::parse`]. They are also the form the node stores: each
//! function's spec is kept as JSON (sizes in bytes, the timeout in
//! milliseconds; routes, outbound patterns, schedules and zones as written)
//! and read back as is, without parsing the manifest again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ManifestError;
use crate::outbound::OutboundRule;
use crate::route::Route;
use crate::schedule::Schedule;
use crate::units::ByteSize;

/// The file name `Manifest::load` looks for when given a directory.
pub const MANIFEST_FILE: &str = "stratus.toml";

/// Linear-memory cap when `memory` is not set.
pub const DEFAULT_MEMORY: ByteSize = ByteSize::mib(128);
/// Wall-clock limit per invocation when `timeout` is not set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Request body limit when `max_body` is not set.
pub const DEFAULT_MAX_BODY: ByteSize = ByteSize::mib(10);
/// Concurrent invocations per function when `max_concurrency` is not set.
pub const DEFAULT_MAX_CONCURRENCY: u32 = 100;

/// Outbound requests per invocation when `max_outbound_requests` is not set.
pub const DEFAULT_MAX_OUTBOUND_REQUESTS: u32 = 50;
/// Largest accepted `max_outbound_requests`.
pub const MAX_MAX_OUTBOUND_REQUESTS: u32 = 10_000;
/// Outbound body bytes per invocation when `max_outbound_bytes` is not set.
pub const DEFAULT_MAX_OUTBOUND_BYTES: ByteSize = ByteSize::mib(16);
/// Largest accepted `max_outbound_bytes`.
pub const MAX_MAX_OUTBOUND_BYTES: ByteSize = ByteSize::gib(1);
/// Per-request outbound timeout when `outbound_timeout` is not set.
pub const DEFAULT_OUTBOUND_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest accepted manifest text. Real manifests are a few KiB; the cap
/// bounds what parsing a deploy's manifest can cost the node.
pub const MAX_MANIFEST_SIZE: ByteSize = ByteSize::kib(256);
/// Most routes an app may have, over all its functions. A prefix route
/// (`"/api/..."`) serves a whole tree of paths, so real apps need few.
pub const MAX_ROUTES_PER_APP: usize = 256;

/// Smallest accepted `memory`: less cannot hold a typical guest's stack and data.
pub const MIN_MEMORY: ByteSize = ByteSize::mib(1);
/// Largest accepted `memory`: the 32-bit linear-memory limit.
pub const MAX_MEMORY: ByteSize = ByteSize::gib(4);
/// Largest accepted `timeout`.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Largest accepted `max_body`.
pub const MAX_MAX_BODY: ByteSize = ByteSize::gib(1);
/// Largest accepted `max_concurrency`.
pub const MAX_MAX_CONCURRENCY: u32 = 10_000;
/// Largest accepted `reuse`.
pub const MAX_REUSE: u32 = 1_000_000;

/// A validated app manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub app: AppSpec,
    /// In manifest order; never empty, names unique, routes unique.
    pub functions: Vec<FunctionSpec>,
}

/// The `[app]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppSpec {
    pub name: String,
}

/// One `[[function]]` table, with defaults applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionSpec {
    pub name: String,
    /// Path of the `.wasm` component, relative to the manifest's directory.
    pub component: String,
    /// Shell command that builds the component, run in the manifest's directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<String>,
    /// May be empty: such a function is reachable only by `invoke` or triggers.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// Linear-memory cap; stored as bytes.
    pub memory: ByteSize,
    /// Wall-clock limit per invocation; a whole number of milliseconds,
    /// stored as `timeout_ms`.
    #[serde(rename = "timeout_ms", with = "crate::units::duration_ms")]
    pub timeout: Duration,
    /// Maximum request body; stored as bytes.
    pub max_body: ByteSize,
    pub max_concurrency: u32,
    /// Keep the compiled code resident while idle (no cold starts).
    #[serde(default)]
    pub min_warm: bool,
    /// Requests one instance may serve one after another; 1 (the default)
    /// is a fresh instance per request. Opting in trades isolation between
    /// requests of this function for speed.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub reuse: u32,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Event sources the function consumes besides HTTP.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<TriggerSpec>,
    /// Outbound HTTP the function may make (patterns such as
    /// `"https://*.example.com"`); none by default. Stored as written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_outbound: Vec<OutboundRule>,
    /// Key-value buckets the function may open (`wasi:keyvalue`), scoped to
    /// the app.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keyvalue: Vec<String>,
    /// Values the function reads through `wasi:config`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// Names of the app's secrets the function may read through
    /// `wasi:config`; the values live encrypted in the node's secret store.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// Outbound HTTP requests (network and `.svc`) one invocation may make.
    #[serde(default = "default_max_outbound_requests")]
    pub max_outbound_requests: u32,
    /// Request and response bodies of those requests, per invocation.
    #[serde(default = "default_max_outbound_bytes")]
    pub max_outbound_bytes: ByteSize,
    /// How long one outbound request may wait (to connect, for its answer
    /// to start, between parts of the answer); stored as
    /// `outbound_timeout_ms`.
    #[serde(
        rename = "outbound_timeout_ms",
        with = "crate::units::duration_ms",
        default = "default_outbound_timeout"
    )]
    pub outbound_timeout: Duration,
    /// Set when the function comes from a Spin manifest (`spin.toml`): the
    /// gateway then adds the request headers Spin documents
    /// (`spin-path-info`, `spin-matched-route`, ...), which Spin guests
    /// read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spin: Option<SpinSpec>,
}

/// What a Spin guest is told about the route that matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpinSpec {
    /// `[application.trigger.http] base`, `/` by default.
    pub base: String,
    /// The function's routes, each with the route its trigger wrote.
    pub routes: Vec<SpinRoute>,
}

/// One route of a Spin component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpinRoute {
    /// The route Stratus serves: the trigger's under the base.
    pub route: String,
    /// The trigger's `route` as written.
    pub raw: String,
}

// Specs stored before these keys existed read with the defaults.
fn default_max_outbound_requests() -> u32 {
    DEFAULT_MAX_OUTBOUND_REQUESTS
}

fn default_max_outbound_bytes() -> ByteSize {
    DEFAULT_MAX_OUTBOUND_BYTES
}

fn default_outbound_timeout() -> Duration {
    DEFAULT_OUTBOUND_TIMEOUT
}

/// One entry of a function's `triggers`. Every kind delivers its events as
/// CloudEvents and retries a failed delivery up to `max_attempts` times
/// before the event goes to the function's dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum TriggerSpec {
    /// `{ queue = "orders", from = ["shop"] }`: every event published to
    /// the app's queue of this name, by its own functions, the admin API,
    /// and the functions of the apps `from` lists (none by default: queues
    /// are the app's own).
    Queue {
        queue: String,
        // Specs stored before grants existed read as granting no one.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        from: Vec<String>,
        max_attempts: u32,
    },
    /// `{ cron = "0 */5 * * * *", timezone = "Europe/Paris" }`: a schedule
    /// with a seconds field, evaluated in UTC unless a zone is named. Both
    /// are stored as written.
    Cron {
        schedule: Schedule,
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "crate::schedule::zone"
        )]
        timezone: Option<chrono_tz::Tz>,
        max_attempts: u32,
    },
    /// `{ nats = "orders.created" }`: core NATS messages on a subject
    /// (wildcards allowed), queued durably on arrival. Nodes share the
    /// subscription through a queue group, so each message is taken once.
    Nats {
        subject: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queue_group: Option<String>,
        max_attempts: u32,
    },
    /// `{ jetstream = { stream = "ORDERS", consumer = "restock" } }`: a
    /// durable JetStream consumer; a message is acknowledged only after the
    /// function answered 2xx, so the stream redelivers what failed.
    JetStream {
        stream: String,
        consumer: String,
        max_attempts: u32,
    },
    /// `{ mqtt = "sensors/+/temperature" }`: MQTT messages (QoS 1) on a
    /// topic filter, acknowledged to the broker once durably queued.
    Mqtt { topic: String, max_attempts: u32 },
}

impl TriggerSpec {
    pub fn max_attempts(&self) -> u32 {
        match self {
            TriggerSpec::Queue { max_attempts, .. }
            | TriggerSpec::Cron { max_attempts, .. }
            | TriggerSpec::Nats { max_attempts, .. }
            | TriggerSpec::JetStream { max_attempts, .. }
            | TriggerSpec::Mqtt { max_attempts, .. } => *max_attempts,
        }
    }
}

impl std::fmt::Display for TriggerSpec {
    /// As written in the manifest, for logs and `/readyz`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TriggerSpec::Queue { queue, from, .. } if from.is_empty() => {
                write!(f, "queue {queue:?}")
            }
            TriggerSpec::Queue { queue, from, .. } => {
                write!(f, "queue {queue:?} (from {})", from.join(", "))
            }
            TriggerSpec::Cron {
                schedule, timezone, ..
            } => match timezone {
                Some(zone) => write!(f, "cron {:?} ({zone})", schedule.as_str()),
                None => write!(f, "cron {:?} (UTC)", schedule.as_str()),
            },
            TriggerSpec::Nats { subject, .. } => write!(f, "nats {subject:?}"),
            TriggerSpec::JetStream {
                stream, consumer, ..
            } => write!(f, "jetstream {stream}/{consumer}"),
            TriggerSpec::Mqtt { topic, .. } => write!(f, "mqtt {topic:?}"),
        }
    }
}

/// Deliveries of a queued event when a trigger does not say.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// Most deliveries a trigger may ask for.
pub const MAX_MAX_ATTEMPTS: u32 = 100;

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

impl Manifest {
    /// Parses and validates manifest text. `source_name` is how the file is
    /// named in error messages (e.g. `"examples/hello/stratus.toml"`).
    /// A Spin manifest (`spin_manifest_version = 2`) is read as the
    /// equivalent Stratus app (see `spin.rs`).
    pub fn parse(text: &str, source_name: &str) -> Result<Manifest, ManifestError> {
        if crate::spin::is_spin_manifest(text) {
            if text.len() as u64 > MAX_MANIFEST_SIZE.bytes() {
                return Err(ManifestError::TooLarge {
                    file: source_name.to_owned(),
                    size: text.len() as u64,
                    limit: MAX_MANIFEST_SIZE,
                });
            }
            crate::spin::parse(text, source_name)
        } else {
            crate::validate::parse(text, source_name)
        }
    }

    /// Reads and validates the manifest at `path`. A directory is taken to
    /// mean its `stratus.toml`, or its `spin.toml` when it has none. Component files are not checked here (see
    /// [`LoadedManifest::check_components_exist`]), so a manifest can be
    /// loaded before its build runs.
    pub fn load(path: &Path) -> Result<LoadedManifest, ManifestError> {
        let path = if path.is_dir() {
            manifest_in(path)
        } else {
            path.to_path_buf()
        };
        let text = std::fs::read_to_string(&path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                ManifestError::NotFound { path: path.clone() }
            } else {
                ManifestError::Read {
                    path: path.clone(),
                    source,
                }
            }
        })?;
        let manifest = Manifest::parse(&text, &path.display().to_string())?;
        let dir = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Ok(LoadedManifest {
            manifest,
            dir,
            path,
        })
    }

    /// The function called `name`, if the app has one.
    pub fn function(&self, name: &str) -> Option<&FunctionSpec> {
        self.functions.iter().find(|f| f.name == name)
    }
}

/// The manifest file of the app in `dir`: its `stratus.toml`, or a Spin
/// app's `spin.toml` when there is no `stratus.toml`.
pub fn manifest_in(dir: &Path) -> PathBuf {
    let stratus = dir.join(MANIFEST_FILE);
    let spin = dir.join(crate::spin::SPIN_MANIFEST_FILE);
    if !stratus.exists() && spin.is_file() {
        spin
    } else {
        stratus
    }
}

/// A manifest read from disk, with where it was found so that relative
/// component paths can be resolved.
#[derive(Debug, Clone)]
pub struct LoadedManifest {
    pub manifest: Manifest,
    /// The directory holding the manifest; component paths and `build`
    /// commands are relative to it.
    pub dir: PathBuf,
    /// The manifest file itself (named in errors).
    pub path: PathBuf,
}

impl LoadedManifest {
    /// Where the component of `function` is on disk.
    pub fn component_path(&self, function: &FunctionSpec) -> PathBuf {
        self.dir.join(&function.component)
    }

    /// Fails on the first function whose component file is missing, naming
    /// the function, the resolved path and, if it has one, the `build`
    /// command that would produce it.
    pub fn check_components_exist(&self) -> Result<(), ManifestError> {
        for function in &self.manifest.functions {
            let path = self.component_path(function);
            if !path.is_file() {
                return Err(ManifestError::MissingComponent {
                    manifest: self.path.clone(),
                    function: function.name.clone(),
                    path,
                    build: function.build.clone(),
                });
            }
        }
        Ok(())
    }
}
