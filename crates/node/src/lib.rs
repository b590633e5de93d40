//! A Stratus node assembled from its crates: the one place that knows how
//! they fit together.
//!
//! [`Stratus::open`] opens the data directory's stores, builds the runtime,
//! the invoker, the event dispatcher and the triggers, registers the
//! in-process services functions call (`queue.svc`, `<function>.svc`) and
//! makes the stored apps live. [`Stratus::serve`] then serves the gateway
//! and the admin API until told to stop. The `stratus` binary adds only
//! what a process needs around it (flags, signals, the admin token file,
//! what it prints); tests use the same node without sockets, through
//! [`Stratus::gateway`] and [`Stratus::admin`].

mod assemble;
mod cluster;
mod config;
mod error;
mod presence;
mod quotas;
mod serve;

pub use assemble::Stratus;
pub use config::{
    Cluster, ConfigError, KeyValueStore, MAX_LOG_PER_INVOCATION, Metering, NodeConfig,
};
pub use error::NodeError;
pub use serve::{bind, bind_shared};
pub use stratus_gateway::TlsFiles;
pub use stratus_telemetry::TracingConfig;
