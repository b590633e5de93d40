//! The execution core of a Stratus node.
//!
//! Everything that touches wasmtime lives here, so the rest of the node can
//! treat a function as "something that turns an HTTP request into an HTTP
//! response within limits". The crate owns:
//!
//! - the [`Runtime`]: one wasmtime `Engine` per node, configured once with the
//!   component model, the pooling allocator, copy-on-write memory images,
//!   async support and epoch interruption, plus the thread that ticks epochs;
//! - the compile cache: a component is compiled once, at deploy, and the
//!   native artifact is kept on disk keyed by (component SHA-256, engine
//!   settings) so a restart loads it instead of compiling again;
//! - deploy-time validation: is it a component at all, does it export
//!   `wasi:http/incoming-handler`, does it import only what the node provides,
//!   and only the capabilities its function was granted;
//! - per-request execution ([`Function::handle`]): a fresh `Store` and instance
//!   from a pre-instantiated `ProxyPre`, with a memory cap, a wall-clock
//!   deadline, an empty filesystem, denied sockets, outbound HTTP only to the
//!   node's in-process services (`http://<name>.svc/`) and what
//!   `allowed_outbound` allows, within per-invocation limits;
//! - the host capabilities ([`capabilities`]): `wasi:keyvalue` and
//!   `wasi:config`, each checked against the function's grant on every call.

mod adapt;
pub mod capabilities;
mod capture;
mod compile;
mod compile_threads;
mod egress;
mod engine;
mod error;
mod function;
mod host;
mod meter;
mod residency;
mod reuse;
mod services;
mod tier;
mod traced;
mod validate;
mod warn_limit;

pub use capabilities::config::{ConfigGrant, SecretSource};
pub use capabilities::keyvalue::{
    BucketId, KeyValueBackend, KeyValueError, KeyValueFuture, KeyValueGrant, Pairs,
};
pub use capabilities::{CAPABILITIES, CapabilityStats, Grants};
pub use capture::{OutputKind, OutputLine};
pub use compile::{CompileTimings, PreparedComponent};
pub use engine::{CompileLimits, Runtime, RuntimeConfig};
pub use error::{InvokeError, RuntimeError, ValidationError};
pub use function::{
    Function, FunctionLimits, FunctionOptions, Invocation, OUTPUT_CAPACITY, ResponseBody,
};
pub use meter::{CallInfo, CallTree, Meter, Reading};
pub use residency::ResidencyStats;
pub use services::{
    FunctionIdentity, InProcessServices, OutboundLimits, SERVICE_BODY_LIMIT, ServiceCaller,
    ServiceFuture,
};
pub use tier::{Tier, TierStats};

pub use validate::PROVIDED_INTERFACES;
pub use warn_limit::{SharedWarnLimit, WarnLimit};
/// The error type of request and response bodies exchanged with guests.
pub use wasmtime_wasi_http::Error as BodyError;
