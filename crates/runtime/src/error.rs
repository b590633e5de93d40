//! Errors of the runtime, split by when they happen: building the engine,
//! validating a component at deploy, and running one invocation.

use std::path::PathBuf;

/// A failure to build the runtime or to prepare a component.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("invalid runtime configuration: {0}")]
    Config(String),
    #[error("{0}")]
    Invalid(#[from] ValidationError),
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Why a component cannot be deployed. Each message is written for the user
/// who uploaded the component: it says what is wrong and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ValidationError {
    #[error("the file is not WebAssembly (it does not start with the `\\0asm` magic bytes)")]
    NotWasm,
    #[error(
        "the file is a core WebAssembly module, not a component; build it for the \
         `wasm32-wasip2` target (e.g. `cargo build --target wasm32-wasip2`) or wrap it with \
         `wasm-tools component new`"
    )]
    CoreModule,
    #[error("the component is invalid: {0}")]
    Malformed(String),
    #[error(
        "the component does not export `wasi:http/incoming-handler@0.2.x`{found}; a Stratus \
         function must be an HTTP handler (the `wasi:http/proxy` world), e.g. built with \
         `wasip2::http::proxy::export!`"
    )]
    NoHttpHandler { found: String },
    #[error(
        "the component imports {} the node does not provide: {}",
        if .imports.len() == 1 { "an interface" } else { "interfaces" },
        .imports.join(", ")
    )]
    UnsupportedImports { imports: Vec<String> },
    #[error(
        "the component imports {}",
        .missing.iter().map(|(import, key)| format!("`{import}`, which the function was not granted: add {key} to its [[function]] entry in stratus.toml")).collect::<Vec<_>>().join("; and it imports ")
    )]
    NotGranted {
        /// Each ungranted import with the manifest key that would grant it.
        missing: Vec<(String, &'static str)>,
    },
    #[error("the component cannot be linked: {0}")]
    Link(String),
}

/// Why one invocation did not produce a response. The gateway turns each
/// kind into its status code; none of them affects other invocations.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InvokeError {
    #[error("the function trapped: {0}")]
    Trap(String),
    #[error("the function exceeded its memory limit of {limit_mib} MiB (the `memory` key)")]
    MemoryLimit { limit_mib: u64 },
    #[error("the function did not answer within its timeout of {0:?} (the `timeout` key)")]
    Timeout(std::time::Duration),
    #[error("the function returned without sending a response")]
    NoResponse,
    #[error("the function sent an invalid response: {0}")]
    BadResponse(String),
    #[error("the node has no free instance slot")]
    Capacity,
    #[error("internal error: {0}")]
    Internal(String),
}
