//! The seams between a node and where it keeps things, as small traits that
//! know nothing of wasmtime, HTTP or SQLite: the runtime, the control
//! plane, event delivery and metering call them, the backend crates
//! implement them (`stratus-keyvalue`: SQLite and Redis; `stratus-secrets`:
//! the encrypted SQLite store; `stratus-store`: apps in SQLite, components
//! as files; `stratus-queue`: the durable event queue in SQLite;
//! `stratus-ledger`: the invocation ledger in SQLite).
//!
//! Each seam comes with a conformance suite ([`conformance`]) that states
//! its behaviour once; every backend runs it, so adding a backend means
//! implementing the trait and passing the suite.

mod apps;
mod artifacts;
mod audit;
pub mod conformance;
mod keyvalue;
mod ledger;
mod namespaces;
mod nodes;
mod queue;
mod secrets;
mod tokens;
mod traffic;

pub use apps::{
    AppFuture, AppRecord, AppStore, AppStoreError, FunctionRecord, LiveFunctionRecord, NewFunction,
    VersionRecord, now_ms,
};
pub use artifacts::{
    ArtifactError, ArtifactFuture, ArtifactStore, BlobRef, is_sha256_hex, sha256_hex,
};
pub use audit::{AuditEntry, AuditError, AuditFuture, AuditLog, AuditQuery};
pub use keyvalue::{BucketId, KeyValueBackend, KeyValueError, KeyValueFuture, Pairs, Quota, Usage};
pub use ledger::{
    DEFAULT_FOLLOWER_STALL, DEFAULT_LEDGER_MAX_BYTES, DEFAULT_LOG_BYTES_PER_APP_DAY, FlushFuture,
    InvocationQuery, InvocationRecord, LastError, Ledger, LedgerError, LedgerFuture, LedgerStats,
    LedgerStore, LiveLog, LogFeed, LogLine, LogQuery, LogStream, MAX_CALLS, Outbound, PriceSheet,
    Recorder, Retention, Sampling, StatusFilter, Trigger, UsageQuery, UsageReport, UsageRow,
    UsageSums, billed_mib, billed_ms, format_time,
};
pub use namespaces::{
    BUDGET_WARNING, Budget, BudgetPeriod, BudgetStatus, BudgetUnit, NamespaceFuture,
    NamespaceStore, NamespaceStoreError, OnExhausted, Quotas,
};
pub use nodes::{NodeDirectory, NodeRecord, NodesError, NodesFuture};
pub use queue::{
    Backlog, Delivery, EventQueue, EventState, EventStatus, NewEvent, QueueError, QueueFuture,
    RetryPolicy, Settled,
};
pub use secrets::{SealedSecret, SecretBackend, SecretBackendError, SecretInfo, SecretSource};
pub use tokens::{Role, TokenFuture, TokenRecord, TokenStore, TokenStoreError};
pub use traffic::{
    Canary, MAX_ROLLOUT_HISTORY, RolloutAction, RolloutEvent, RolloutPolicy, Sticky, Traffic,
};
