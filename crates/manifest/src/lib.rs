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
//! column and key, and says what to write instead.
//!
//! The validated types ([`Manifest`], [`FunctionSpec`]) serialize to JSON in
//! a stable form (sizes in bytes, the timeout in milliseconds; routes,
//! outbound patterns, cron schedules and time zones as written), which is
//! how the node stores a deployed function's spec. Values are kept parsed
//! ([`OutboundRule`], [`Schedule`], `chrono_tz::Tz`), so no consumer parses
//! them again, and a stored value that no longer parses fails to read.

mod error;
mod lines;
mod model;
mod namespace;
mod outbound;
mod raw;
mod route;
mod schedule;
mod spin;
mod suggest;
mod units;
mod validate;

#[cfg(test)]
mod tests;

pub use error::{Location, ManifestError};
pub use model::{
    AppSpec, DEFAULT_MAX_BODY, DEFAULT_MAX_CONCURRENCY, DEFAULT_MEMORY, DEFAULT_TIMEOUT,
    FunctionSpec, LoadedManifest, MANIFEST_FILE, MAX_MAX_BODY, MAX_MAX_CONCURRENCY, MAX_MEMORY,
    MAX_TIMEOUT, MIN_MEMORY, Manifest, SpinRoute, SpinSpec, TriggerSpec, manifest_in,
};
pub use model::{DEFAULT_MAX_ATTEMPTS, MAX_MAX_ATTEMPTS};
pub use model::{
    DEFAULT_MAX_OUTBOUND_BYTES, DEFAULT_MAX_OUTBOUND_REQUESTS, DEFAULT_OUTBOUND_TIMEOUT,
    MAX_MAX_OUTBOUND_BYTES, MAX_MAX_OUTBOUND_REQUESTS,
};
pub use model::{MAX_MANIFEST_SIZE, MAX_ROUTES_PER_APP};
pub use namespace::{NameError, Namespace, split_key, valid_app_key};
pub use outbound::OutboundRule;
pub use route::{Route, RouteError, RoutePath, request_host};
pub use schedule::Schedule;
pub use spin::SPIN_MANIFEST_FILE;
pub use units::{ByteSize, SizeError};
pub use validate::{
    CONFIG_KEY_RULE, NAME_RULE, RESERVED_FUNCTION_NAMES, valid_bucket_name, valid_config_key,
    valid_name, valid_queue_name,
};
