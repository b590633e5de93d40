//! The JSON bodies of the admin API. They are the API's contract (and the
//! source of its OpenAPI schemas), kept separate from the store's records so
//! the storage layout can change without breaking clients.

use serde::{Deserialize, Serialize};
use stratus_manifest::FunctionSpec;
use stratus_storage::{AppRecord, BudgetStatus, FunctionRecord, Quotas, VersionRecord};
use utoipa::ToSchema;

/// The platform's error shape, shared by every surface of the node; its
/// OpenAPI schemas are named `ErrorResponse` and `ErrorInfo`.
pub use stratus_invoke::{ErrorBody, ErrorDetail};

/// An app in the list of apps.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AppSummary {
    /// The app's name: within `default`, as the manifest names it;
    /// elsewhere `<namespace>/<name>`.
    pub name: String,
    pub namespace: String,
    /// The version serving traffic; absent if none is live.
    pub live_version: Option<u32>,
    /// How many versions the app has.
    pub versions: u32,
    /// Unix time in milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
    /// The version serving a share of its requests beside the live one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryShare>,
    /// The code its live functions serve with on this node: `baseline`
    /// while any of them waits for its optimized code, `optimized` once
    /// all have it; absent when none is in memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
}

/// A canary's version and its share of the app's requests.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub struct CanaryShare {
    pub version: u32,
    pub percent: u8,
}

/// An app with the functions of its live version.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AppDetail {
    #[serde(flatten)]
    pub app: AppSummary,
    pub functions: Vec<FunctionInfo>,
}

/// A function of one version, with its limits.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FunctionInfo {
    pub name: String,
    pub component_sha256: String,
    pub routes: Vec<String>,
    pub memory_bytes: u64,
    pub timeout_ms: u64,
    pub max_body_bytes: u64,
    pub max_concurrency: u32,
    /// The function's manifest table as deployed, defaults applied: its
    /// limits and capabilities (outbound allow-list, key-value buckets,
    /// config, the names of the secrets it reads, triggers), for reading a
    /// version and comparing two.
    #[schema(value_type = Object)]
    pub spec: serde_json::Value,
}

/// One version of an app.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VersionSummary {
    pub version: u32,
    pub created_at: i64,
    pub live: bool,
    pub functions: Vec<FunctionInfo>,
}

/// The answer to a deploy.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeployResponse {
    /// The app's name, `<namespace>/<name>` outside `default`.
    pub app: String,
    /// The app's name within its namespace: what `/v1/…/apps/{app}` takes.
    pub name: String,
    pub namespace: String,
    pub version: u32,
    pub functions: Vec<DeployedFunction>,
    pub timings: DeployTimings,
    /// What this version may do that the version live before it could not
    /// (for an app's first version, everything it may do).
    #[serde(default)]
    pub gained: stratus_control::gains::Gains,
    /// Set when the version was deployed as a canary: its share of the
    /// app's requests (it is not the live version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_percent: Option<u8>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeployedFunction {
    pub name: String,
    pub sha256: String,
    pub size: u64,
    pub routes: Vec<String>,
    /// False when identical bytes were already stored.
    pub stored_new: bool,
    /// True when no compilation was needed (cached native code).
    pub compiled_from_cache: bool,
    /// `baseline` (Winch code, served while the optimized code compiles in
    /// the background) or `optimized` (Cranelift code).
    pub tier: String,
}

/// Milliseconds spent in each phase of a deploy on the node.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeployTimings {
    /// Receiving the upload.
    pub receive_ms: f64,
    pub validate_ms: f64,
    pub compile_ms: f64,
    /// Writing blobs and the version, and activating it.
    pub commit_ms: f64,
}

/// The multipart form of a deploy: one `manifest` part (the stratus.toml
/// text) and one `component` part per component, whose file name is the
/// manifest's `component` value.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct DeployForm {
    pub manifest: String,
    #[schema(format = Binary)]
    pub component: Vec<String>,
}

/// The answer to an activation or rollback.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ActivateResponse {
    pub app: String,
    pub live_version: u32,
}

/// `/healthz` and `/readyz`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: String,
    /// Apps whose live version is serving.
    pub live_apps: usize,
    /// What keeps the node from serving everything it should.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// Broker connections the triggers use (only those in use).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub brokers: Vec<BrokerHealth>,
    /// Every cron, NATS, JetStream and MQTT trigger of a live function.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<TriggerHealth>,
    /// The store of functions' key-value buckets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyvalue: Option<KeyValueHealth>,
    /// The data directory and its disk (readiness only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<DiskHealth>,
}

/// The data directory's size, the ledger's share of it against its budget,
/// and the disk's free space.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct DiskHealth {
    pub data_dir: String,
    /// Every file under the data directory (apps, components, compiled
    /// code, ledger, queue, key-value, secrets).
    pub data_dir_bytes: u64,
    /// The ledger's files (`ledger.sqlite` and its journal); 0 in a
    /// cluster, whose ledger is a JetStream stream.
    pub ledger_bytes: u64,
    /// `--ledger-max-size`: the most raw records and logs may take (the
    /// file is held to it; a freed page is reused before the file grows).
    /// Absent in a cluster, whose budget is the ledger stream's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ledger_max_bytes: Option<u64>,
    /// Free space on the data directory's disk for the node's user.
    pub disk_free_bytes: u64,
    pub disk_total_bytes: u64,
    /// Why something could not be measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Whether the key-value store answers. A store that does not is detail,
/// not unreadiness: functions that use it get an error, the rest serve.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KeyValueHealth {
    /// `sqlite` or `redis`.
    pub backend: String,
    /// The file, or the server's URL without its password.
    pub location: String,
    pub reachable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BrokerHealth {
    /// `nats` or `mqtt`.
    pub broker: String,
    pub url: String,
    /// Whether every connection to it is up.
    pub connected: bool,
    /// Why a connection is down, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When a connection last changed, RFC 3339.
    pub since: String,
    /// Connections the node holds to it: one for NATS, shared by its
    /// triggers; one per trigger for MQTT.
    #[serde(default)]
    pub connections: usize,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TriggerHealth {
    /// `app/function`.
    pub function: String,
    /// As written in the manifest, e.g. `mqtt "sensors/+/telemetry"`.
    pub trigger: String,
    /// `starting`, `running` or `retrying`.
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When it last changed, RFC 3339.
    pub since: String,
}

impl From<AppRecord> for AppSummary {
    fn from(r: AppRecord) -> Self {
        AppSummary {
            namespace: stratus_manifest::split_key(&r.name).0.to_owned(),
            name: r.name,
            live_version: r.live_version,
            versions: r.versions,
            created_at: r.created_at,
            updated_at: r.updated_at,
            canary: r.traffic.canary.map(|c| CanaryShare {
                version: c.version,
                percent: c.percent,
            }),
            tier: None,
        }
    }
}

impl From<&FunctionRecord> for FunctionInfo {
    fn from(r: &FunctionRecord) -> Self {
        // Specs are written by this node from a validated manifest; if one
        // ever fails to read back, show the function without limits rather
        // than failing the whole listing.
        let spec: Option<FunctionSpec> = serde_json::from_value(r.spec.clone()).ok();
        FunctionInfo {
            name: r.name.clone(),
            component_sha256: r.component_sha256.clone(),
            routes: spec
                .as_ref()
                .map(|s| s.routes.iter().map(ToString::to_string).collect())
                .unwrap_or_default(),
            memory_bytes: spec.as_ref().map_or(0, |s| s.memory.0),
            timeout_ms: spec.as_ref().map_or(0, |s| s.timeout.as_millis() as u64),
            max_body_bytes: spec.as_ref().map_or(0, |s| s.max_body.0),
            max_concurrency: spec.as_ref().map_or(0, |s| s.max_concurrency),
            spec: r.spec.clone(),
        }
    }
}

impl From<VersionRecord> for VersionSummary {
    fn from(r: VersionRecord) -> Self {
        VersionSummary {
            version: r.number,
            created_at: r.created_at,
            live: r.live,
            functions: r.functions.iter().map(FunctionInfo::from).collect(),
        }
    }
}

impl From<stratus_control::DeployReport> for DeployResponse {
    fn from(r: stratus_control::DeployReport) -> Self {
        DeployResponse {
            name: stratus_manifest::split_key(&r.app).1.to_owned(),
            app: r.app,
            namespace: r.namespace,
            version: r.version,
            functions: r
                .functions
                .into_iter()
                .map(|f| DeployedFunction {
                    name: f.name,
                    sha256: f.sha256,
                    size: f.size,
                    routes: f.routes,
                    stored_new: f.stored_new,
                    compiled_from_cache: f.compiled_from_cache,
                    tier: f.tier.to_owned(),
                })
                .collect(),
            timings: DeployTimings {
                receive_ms: 0.0,
                validate_ms: r.timings.validate_ms,
                compile_ms: r.timings.compile_ms,
                commit_ms: r.timings.commit_ms,
            },
            gained: r.gained,
            canary_percent: r.canary_percent,
        }
    }
}

/// Metered usage over a period, per function, priced.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UsageReport {
    /// Start of the period (RFC 3339), when one was asked for.
    pub since: Option<String>,
    /// `invocation` (from raw records) or `hour` (from hourly roll-ups,
    /// counting from the top of the hour: when the period reaches back past
    /// the raw records kept, or some of its records were sampled out).
    /// The totals are exact counts either way.
    pub granularity: String,
    pub prices: Prices,
    pub functions: Vec<UsageRow>,
    pub total: UsageRow,
    /// The namespace's budget this period, when it has one: used, percent,
    /// exhausted, and a warning from 80 %.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetStatus>,
}

/// The node's price sheet.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Prices {
    pub currency: String,
    pub per_gb_second: f64,
    pub per_million_requests: f64,
}

/// Usage of one function (or the total, with empty names).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UsageRow {
    pub app: String,
    pub function: String,
    pub requests: u64,
    pub errors: u64,
    pub cold_starts: u64,
    /// Billed memory (peak, MiB rounded up) × billed duration (ms rounded up).
    pub gb_seconds: f64,
    pub cpu_seconds: f64,
    pub duration_seconds: f64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Of `requests`, those whose raw record was sampled out (successful
    /// warm invocations past `--ledger-sample-above` per second): counted
    /// in every total here, not kept one by one.
    #[serde(default)]
    pub sampled: u64,
    pub cost: f64,
}

impl From<stratus_storage::UsageReport> for UsageReport {
    fn from(r: stratus_storage::UsageReport) -> Self {
        UsageReport {
            since: r.since,
            granularity: r.granularity.to_string(),
            prices: Prices {
                currency: r.prices.currency,
                per_gb_second: r.prices.per_gb_second,
                per_million_requests: r.prices.per_million_requests,
            },
            functions: r.functions.into_iter().map(UsageRow::from).collect(),
            total: r.total.into(),
            budget: None,
        }
    }
}

impl From<stratus_storage::UsageRow> for UsageRow {
    fn from(r: stratus_storage::UsageRow) -> Self {
        UsageRow {
            app: r.app,
            function: r.function,
            requests: r.requests,
            errors: r.errors,
            cold_starts: r.cold_starts,
            gb_seconds: r.gb_seconds,
            cpu_seconds: r.cpu_seconds,
            duration_seconds: r.duration_seconds,
            bytes_in: r.bytes_in,
            bytes_out: r.bytes_out,
            sampled: r.sampled,
            cost: r.cost,
        }
    }
}

/// One line a function wrote.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LogLineInfo {
    /// RFC 3339, UTC, milliseconds.
    pub at: String,
    pub invocation_id: String,
    pub app: String,
    pub function: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    pub text: String,
}

impl From<&stratus_storage::LogLine> for LogLineInfo {
    fn from(l: &stratus_storage::LogLine) -> Self {
        LogLineInfo {
            at: stratus_storage::format_time(l.at),
            invocation_id: l.invocation_id.clone(),
            app: l.app.clone(),
            function: l.function.clone(),
            stream: l.stream.as_str().to_string(),
            text: l.text.clone(),
        }
    }
}

/// Log lines, oldest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LogLines {
    pub lines: Vec<LogLineInfo>,
}

/// One invocation as metered, with its log.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InvocationDetail {
    #[serde(flatten)]
    pub invocation: InvocationSummary,
    pub logs: Vec<LogLineInfo>,
    /// The invocations it called through `http://<function>.svc/`, by
    /// start (each one's own calls are on its own page): with `caller`,
    /// the tree of calls it belongs to.
    pub calls: Vec<InvocationSummary>,
}

/// A function's invocations, newest first
/// (`GET /v1/functions/{function}/invocations`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InvocationList {
    pub invocations: Vec<InvocationSummary>,
}

/// One invocation as metered.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InvocationSummary {
    pub id: String,
    pub app: String,
    pub function: String,
    pub version: u32,
    /// `http` (gateway), `api` (admin invoke), `event` (queue, cron,
    /// brokers) or `service` (another function's `.svc` call).
    pub trigger: String,
    /// The invocation that called this one through `http://<function>.svc/`.
    pub caller: Option<String>,
    pub started_at: String,
    pub duration_ms: f64,
    pub cpu_ms: f64,
    pub billed_ms: u64,
    pub billed_memory_mib: u64,
    pub peak_memory_bytes: u64,
    /// Peak host memory the guest made the node hold for it (headers it
    /// built), sampled while it ran; bounded by a budget from its `memory`
    /// cap (docs/SECURITY.md).
    pub peak_host_memory_bytes: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub status: u16,
    pub error: Option<String>,
    pub cold: bool,
    /// Outbound HTTP requests and `.svc` calls the invocation made.
    pub outbound_requests: u32,
    /// Their request and response bodies, in bytes.
    pub outbound_bytes: u64,
    /// Time spent waiting for their answers.
    pub outbound_ms: f64,
}

impl InvocationDetail {
    pub fn new(
        r: &stratus_storage::InvocationRecord,
        logs: &[stratus_storage::LogLine],
        calls: &[stratus_storage::InvocationRecord],
    ) -> Self {
        InvocationDetail {
            invocation: InvocationSummary::from(r),
            logs: logs.iter().map(LogLineInfo::from).collect(),
            calls: calls.iter().map(InvocationSummary::from).collect(),
        }
    }
}

impl From<&stratus_storage::InvocationRecord> for InvocationSummary {
    fn from(r: &stratus_storage::InvocationRecord) -> Self {
        InvocationSummary {
            id: r.id.clone(),
            app: r.app.clone(),
            function: r.function.clone(),
            version: r.version,
            trigger: r.trigger.as_str().to_string(),
            caller: r.caller.clone(),
            started_at: stratus_storage::format_time(r.started_at),
            duration_ms: r.wall.as_secs_f64() * 1000.0,
            cpu_ms: r.cpu.as_secs_f64() * 1000.0,
            billed_ms: r.billed_ms(),
            billed_memory_mib: r.billed_mib(),
            peak_memory_bytes: r.peak_memory,
            peak_host_memory_bytes: r.peak_host_memory,
            bytes_in: r.bytes_in,
            bytes_out: r.bytes_out,
            status: r.status,
            error: r.error.clone(),
            cold: r.cold,
            outbound_requests: r.outbound.requests,
            outbound_bytes: r.outbound.bytes,
            outbound_ms: r.outbound.time.as_secs_f64() * 1000.0,
        }
    }
}

/// An async invocation accepted: durably queued.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AsyncAccepted {
    /// The invocation's id, which its function sees as `ce-id`.
    pub id: String,
    pub state: String,
    /// Where its state and result are: `GET /v1/events/{id}`.
    pub status_url: String,
}

/// A queued event (an async invocation): where it is and how it ended.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventInfo {
    pub id: String,
    pub queue: String,
    /// The app that published it into this function's queue when it is not
    /// the function's own (a publish its trigger's `from` granted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// `queued`, `running`, `succeeded` or `dead` (failed every attempt).
    pub state: String,
    pub attempts: u32,
    pub max_attempts: u32,
    pub created_at: String,
    pub updated_at: String,
    /// When a queued event is next due (its retry time after a failure).
    pub next_at: String,
    pub last_error: Option<String>,
    /// The handler's status and answer (first 64 KiB, as text) on success.
    pub result_status: Option<u16>,
    pub result: Option<String>,
}

impl From<stratus_storage::EventStatus> for EventInfo {
    fn from(e: stratus_storage::EventStatus) -> Self {
        let time = stratus_storage::format_time;
        EventInfo {
            id: e.id,
            queue: e.queue,
            from: e.origin,
            state: e.state.as_str().to_string(),
            attempts: e.attempts,
            max_attempts: e.max_attempts,
            created_at: time(e.created_at),
            updated_at: time(e.updated_at),
            next_at: time(e.next_at),
            last_error: e.last_error,
            result_status: e.result_status,
            result: e
                .result_body
                .map(|b| String::from_utf8_lossy(&b).into_owned()),
        }
    }
}

/// A function's recent events, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventList {
    pub events: Vec<EventInfo>,
}

/// A function's dead letters, oldest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeadLetters {
    pub events: Vec<EventInfo>,
}

/// The functions' queues (`GET /v1/queues`), by app and function.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct QueueList {
    pub queues: Vec<QueueInfo>,
}

/// One function's queue: its async invocations and the events of the
/// named queues it consumes.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct QueueInfo {
    pub app: String,
    pub function: String,
    /// The app's named queues it consumes (manifest `triggers`).
    pub queues: Vec<String>,
    /// Events not yet handled: queued, waiting for a retry, or being
    /// delivered.
    pub waiting: u64,
    /// How long the oldest of them has waited; null when none waits.
    pub oldest_event_age_seconds: Option<f64>,
    /// Dead letters, until redriven or pruned.
    pub dead_letters: u64,
}

impl QueueInfo {
    /// An empty queue of the function `name` of the app keyed `app`.
    pub fn new(app: &str, name: &str, queues: Vec<String>) -> Self {
        QueueInfo {
            app: stratus_manifest::split_key(app).1.to_owned(),
            function: name.to_owned(),
            queues,
            waiting: 0,
            oldest_event_age_seconds: None,
            dead_letters: 0,
        }
    }
}

/// How many dead letters were put back in line.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Redriven {
    pub redriven: usize,
}

/// An event published to a named queue.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Published {
    /// Its `ce-id`; each consumer's copy is at `GET /v1/events/{id}`.
    pub id: String,
    /// The functions it was queued for, as `app/function`.
    pub consumers: Vec<String>,
}

/// A secret as listed: its name and when it was last set. Values are never
/// returned by the API.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SecretSummary {
    pub name: String,
    /// Unix time in milliseconds.
    pub updated_at: i64,
}

/// A node of the platform and its load (`GET /v1/nodes`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NodeInfo {
    /// Unique to this run of the node.
    pub id: String,
    pub hostname: String,
    /// Where its gateway and admin API listen.
    pub gateway: String,
    pub admin: String,
    /// The `stratus` release it runs.
    pub version: String,
    /// Unix time in milliseconds.
    pub started_at: i64,
    /// When it last said it was alive (unix milliseconds).
    pub seen_at: i64,
    pub live_apps: u32,
    /// Invocations running on it now.
    pub in_flight: u32,
    /// The most it runs at once (its instance slots).
    pub capacity: u32,
    /// The version of each app it serves.
    pub apps: std::collections::BTreeMap<String, u32>,
}

/// Where a version of an app is served (`GET /v1/apps/{app}/rollout`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Rollout {
    pub app: String,
    /// The version the platform says is live (none: the app has none).
    pub live_version: Option<u32>,
    /// Every node heard from lately, with the version of the app it serves.
    pub nodes: Vec<RolloutNode>,
    /// Whether every node serves the live version.
    pub complete: bool,
}

/// One node in a [`Rollout`].
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RolloutNode {
    pub id: String,
    pub hostname: String,
    /// The version of the app it serves; none when it serves none.
    pub version: Option<u32>,
}

impl From<stratus_storage::NodeRecord> for NodeInfo {
    fn from(n: stratus_storage::NodeRecord) -> Self {
        NodeInfo {
            id: n.id,
            hostname: n.hostname,
            gateway: n.gateway,
            admin: n.admin,
            version: n.version,
            started_at: n.started_at,
            seen_at: n.seen_at,
            live_apps: n.live_apps,
            in_flight: n.in_flight,
            capacity: n.capacity,
            apps: n.apps,
        }
    }
}

/// A live function as it is now.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FunctionStatus {
    pub app: String,
    pub name: String,
    /// The app's live version, which this function belongs to.
    pub version: u32,
    /// As written in the manifest (`/x` exact, `/x/...` prefix).
    pub routes: Vec<String>,
    pub triggers: Vec<FunctionTrigger>,
    /// `resident` (compiled code in memory) or `scaled_to_zero` (the next
    /// request loads it: a cold start).
    pub state: String,
    /// The code in memory: `baseline` (Winch, while the optimized code
    /// compiles in the background) or `optimized` (Cranelift); absent when
    /// scaled to zero.
    pub tier: Option<String>,
    /// Never scaled to zero (manifest `min_warm`).
    pub min_warm: bool,
    /// Seconds since a request last began (or the code was loaded).
    pub idle_seconds: u64,
    /// Invocations running now, out of `max_concurrency`.
    pub in_flight: u32,
    pub max_concurrency: u32,
    pub memory_bytes: u64,
    pub timeout_ms: u64,
    /// The newest failed invocation since the node started (absent with
    /// metering off); `stratus logs --invocation ID` shows its log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<LastErrorInfo>,
}

/// A live function's last hour (`GET /v1/functions/{function}/series`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FunctionTimeline {
    pub app: String,
    pub function: String,
    /// Each point's length: 60.
    pub step_seconds: u64,
    /// Sixty, oldest first; the last is the current step, still filling.
    pub points: Vec<TimelinePoint>,
}

/// One step of a function's timeline.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TimelinePoint {
    /// The step's start, RFC 3339, UTC.
    pub at: String,
    /// Invocations that ended in it.
    pub requests: u32,
    pub errors: u32,
    pub cold_starts: u32,
    /// Median and 99th percentile duration in milliseconds, read off a
    /// histogram whose buckets are each √2 wider than the last (so within
    /// 19 % of the truth); null without requests.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// The most invocations running at once as one ended.
    pub in_flight: u32,
    /// The function's `max_concurrency`.
    pub capacity: u32,
}

/// An event source of a function.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FunctionTrigger {
    /// As written in the manifest, e.g. `mqtt "sensors/+/telemetry"`.
    pub trigger: String,
    /// For broker and cron triggers: `starting`, `running`, `retrying` or
    /// `stopped` (as `/readyz` shows). Queue triggers are fed by the node's
    /// own queue and have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LastErrorInfo {
    /// RFC 3339, UTC.
    pub at: String,
    pub invocation_id: String,
    pub version: u32,
    pub status: u16,
    /// The platform error code, e.g. `function_trapped` or `timeout`.
    pub code: String,
}

/// A namespace and how many apps it holds.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NamespaceSummary {
    pub name: String,
    pub apps: usize,
}

/// `POST /v1/tokens`: a token to make.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreateToken {
    /// What it is for ("ci", "grafana"); need not be unique.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
    )]
    pub name: String,
    /// `viewer`, `invoker`, `deployer` or `admin`.
    #[schema(pattern = "^(viewer|invoker|deployer|admin)$")]
    pub role: String,
    /// Its lifetime, a whole number and s, m, h or d ("30d", "12h");
    /// without one it lasts until revoked.
    #[serde(default)]
    pub expires: Option<String>,
    /// A node-wide token instead of one of the namespace.
    #[serde(default)]
    pub node_wide: bool,
}

/// A token as listed: never its secret.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub role: String,
    /// The namespace it acts in; null for a node-wide token.
    pub namespace: Option<String>,
    /// Unix time in milliseconds.
    pub created_at: i64,
    pub expires_at: Option<i64>,
    /// When it was last used (noted at most once a minute).
    pub last_used_at: Option<i64>,
}

impl From<stratus_storage::TokenRecord> for TokenInfo {
    fn from(r: stratus_storage::TokenRecord) -> Self {
        TokenInfo {
            id: r.id,
            name: r.name,
            role: r.role.to_string(),
            namespace: r.namespace,
            created_at: r.created_at,
            expires_at: r.expires_at,
            last_used_at: r.last_used_at,
        }
    }
}

/// The token a request was made with, as the console shows it on sign-in.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WhoAmI {
    /// The token's name; `node` for the node's own token.
    pub name: String,
    /// `viewer`, `invoker`, `deployer` or `admin`.
    pub role: String,
    /// The namespace it acts in; null when it acts in every namespace.
    pub namespace: Option<String>,
}

/// A token just made: the only answer that holds its secret.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenCreated {
    /// The bearer token; the node keeps only a salted hash of it.
    pub token: String,
    #[serde(flatten)]
    pub info: TokenInfo,
}

/// One entry of the audit log.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditRecord {
    /// RFC 3339, UTC.
    pub time: String,
    /// The namespace acted on; null for the node's own (node-wide tokens).
    pub namespace: Option<String>,
    /// `node` for the node's own token, else the token's id; empty when
    /// the request was refused before a token was recognised.
    pub token_id: String,
    pub token_name: String,
    pub role: String,
    /// The client's address.
    pub source: String,
    /// `deploy`, `activate`, `rollback`, `delete`, `secret.set`,
    /// `secret.remove`, `token.create`, `token.revoke`, `redrive` or
    /// `quota.set`.
    pub action: String,
    pub target: String,
    /// The answer's status: 2xx done, else refused or failed.
    pub status: u16,
    /// `ok`, or the error code answered.
    pub outcome: String,
    /// What the change made: a version, components' digests, a token id.
    pub detail: String,
}

impl From<stratus_storage::AuditEntry> for AuditRecord {
    fn from(e: stratus_storage::AuditEntry) -> Self {
        let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(e.time.max(0) as u64);
        AuditRecord {
            time: stratus_storage::format_time(time),
            namespace: e.namespace,
            token_id: e.token_id,
            token_name: e.token_name,
            role: e.role,
            source: e.source,
            action: e.action,
            target: e.target,
            status: e.status,
            outcome: e.outcome,
            detail: e.detail,
        }
    }
}

/// A namespace's quotas, what it uses of them, and its budget this period.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct QuotasView {
    pub namespace: String,
    /// Those left out are unlimited.
    pub quotas: Quotas,
    /// Its apps now.
    pub apps: usize,
    /// Its apps' live functions now.
    pub functions: usize,
    /// Where it stands against its budget this period: used, percent,
    /// exhausted, and a warning from 80 %.
    pub budget: Option<BudgetStatus>,
}
