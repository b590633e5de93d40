//! The node in process: built on a temporary data directory and driven
//! through its routers with `oneshot`.
//!
//! One test binary with a module per area (as the CLI's end-to-end tests
//! are): each binary would link wasmtime and the whole node again.

#![allow(clippy::unwrap_used)]

mod common;

mod admin_areas;
mod audit;
mod canary;
mod capability_diff;
mod console_api;
mod control_plane;
mod event_traces;
mod in_process;
mod namespaces;
mod quotas;
mod reuse;
mod tiers;
mod tokens;
