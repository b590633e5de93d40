//! Parsing and validating `stratus.toml`, the app manifest.
//!
//! The manifest is the one file a user writes to describe an app: its name,
//! and for each function the component to run, the routes it serves and the
//! limits it runs under. Every part of Stratus that needs this information —
//! the CLI before it builds and uploads, the control plane before it deploys,
//! the gateway when it routes — takes it from the types here, so a manifest
//! is checked once, in one place, and a bad one is refused before anything
//! is built, uploaded or bound.
//!
//! Errors are for the person editing the file: each names the file, line,
//! column and key, and says what to write instead. Keys that later versions
//! of Stratus implement (none at the moment: see `raw::UNSUPPORTED_FUNCTION_KEYS`)
//! are refused as such, rather than as unknown keys.
//!
//! The validated types ([`Manifest`], [`FunctionSpec`]) serialize to JSON in
//! a stable form (sizes in bytes, the timeout in milliseconds, routes as
//! strings), which is how the node stores a deployed function's spec.

mod error;
mod model;
mod outbound;
mod raw;
mod route;
mod schedule;
mod units;
mod validate;

#[cfg(test)]
mod tests;

pub use error::{Location, ManifestError};
pub use model::{
    AppSpec, DEFAULT_MAX_BODY, DEFAULT_MAX_CONCURRENCY, DEFAULT_MEMORY, DEFAULT_TIMEOUT,
    FunctionSpec, LoadedManifest, MANIFEST_FILE, MAX_MAX_BODY, MAX_MAX_CONCURRENCY, MAX_MEMORY,
    MAX_TIMEOUT, MIN_MEMORY, Manifest, TriggerSpec,
};
pub use model::{DEFAULT_MAX_ATTEMPTS, MAX_MAX_ATTEMPTS};
pub use model::{
    DEFAULT_MAX_OUTBOUND_BYTES, DEFAULT_MAX_OUTBOUND_REQUESTS, DEFAULT_OUTBOUND_TIMEOUT,
    MAX_MAX_OUTBOUND_BYTES, MAX_MAX_OUTBOUND_REQUESTS,
};
pub use outbound::OutboundRule;
pub use route::{Route, RouteError};
pub use schedule::{parse_schedule, parse_time_zone};
pub use units::{ByteSize, SizeError};
pub use validate::{
    CONFIG_KEY_RULE, NAME_RULE, RESERVED_FUNCTION_NAMES, valid_bucket_name, valid_config_key,
    valid_name, valid_queue_name,
};
