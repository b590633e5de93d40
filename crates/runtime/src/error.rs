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
    #[error(
        "the file is not WebAssembly (it does not start with the `\\0asm` magic bytes); \
         set `component` to the .wasm file the build writes"
    )]
    NotWasm,
    #[error(
        "the file is a core WebAssembly module without a component type, not a component; \
         build it for the `wasm32-wasip2` target (e.g. `cargo build --target wasm32-wasip2`), \
         build it for `wasm32-wasip1` with wit-bindgen bindings (as Spin's SDKs do), or wrap it \
         with `wasm-tools component new`"
    )]
    CoreModule,
    /// A `wasm32-wasip1` core module whose component type the WASI
    /// preview 1 adapter cannot wrap.
    #[error("the core module cannot be made a component with the WASI preview 1 adapter: {0}")]
    Adapt(String),
    #[error("the component is invalid: {0}")]
    Malformed(String),
    /// What wasmtime 48 serves only behind its experimental flags: WASI
    /// 0.3 (`wasi:http@0.3`) and anything else built on component-model
    /// async (`stream`, `future`, async functions).
    #[error(
        "the component uses component-model async (`stream`, `future` or async functions),          as WASI 0.3 components (`wasi:http@0.3.x`) do; Stratus serves WASI 0.2 components          (`wasi:http/incoming-handler@0.2.x`): build the function for WASI 0.2 (Rust's          `wasm32-wasip2` target with the `wasip2` crate, componentize-py or jco against          `wasi:http@0.2`) ({0})"
    )]
    ComponentModelAsync(String),
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
    /// The component needs more of an instance slot than the node's pool
    /// gives (`setting` names the pooling allocator's limit).
    #[error("the component declares {what}; this node allows at most {limit} ({setting})")]
    OverNodeLimit {
        what: String,
        limit: String,
        setting: &'static str,
    },
    /// Wasmtime refused to load the compiled component into the node's
    /// pool for a reason the checks before compiling do not cover.
    #[error("the component does not fit this node's instance pool: {0}")]
    DoesNotFit(String),
    /// The compiler did not finish within the node's bound.
    #[error(
        "compiling the component took longer than {0:?} (--compile-timeout), so it is refused; \
         compile time grows with the number and size of its functions"
    )]
    CompileTimeout(std::time::Duration),
}

/// Why one invocation did not produce a response. The gateway turns each
/// kind into its status code; none of them affects other invocations.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InvokeError {
    #[error("the function trapped: {0}")]
    Trap(String),
    /// The guest called `exit` (WASI's `I32Exit`) instead of finishing the
    /// request.
    #[error("the function exited with code {0} (it called exit) before finishing the request")]
    Exited(i32),
    #[error("the function exceeded its memory limit of {limit_mib} MiB (the `memory` key)")]
    MemoryLimit { limit_mib: u64 },
    #[error("the function did not answer within its timeout of {0:?} (the `timeout` key)")]
    Timeout(std::time::Duration),
    #[error("the function returned without sending a response")]
    NoResponse,
    /// A reused instance returned without answering, where its first
    /// request had answered: the guest's language runtime cannot serve two
    /// requests on one instance, so its function stops reusing instances.
    #[error(
        "the function returned without sending a response on a reused instance (the instance's \
         request number {0}); its language runtime cannot serve two requests on one instance \
         (componentize-js cannot), so the node now gives this function a fresh instance per \
         request: remove `reuse` from its [[function]] entry in stratus.toml"
    )]
    NotReusable(u32),
    #[error("the function sent an invalid response: {0}")]
    BadResponse(String),
    #[error("the node has no free instance slot")]
    Capacity,
    #[error("internal error: {0}")]
    Internal(String),
}

impl InvokeError {
    /// A trap wasmtime raised, named by its cause. A stack overflow shows
    /// two ways: wasmtime's own limit on the native stack
    /// (`Trap::StackOverflow`), or, for guests that keep their stack in
    /// linear memory (Rust, C), an out-of-bounds access when the stack
    /// pointer moves below address 0 — deep in a recursion.
    pub(crate) fn trapped(trap: wasmtime::Trap, error: &wasmtime::Error) -> InvokeError {
        use wasmtime::Trap;
        let text = match trap {
            Trap::StackOverflow => {
                "stack overflow: its call stack grew past the node's limit (unbounded recursion?)"
                    .to_string()
            }
            Trap::MemoryOutOfBounds => match deep_recursion(error) {
                Some(recursion) => format!(
                    "stack overflow (most likely): an out-of-bounds memory access deep in a recursion ({recursion}), which is how a stack kept in linear memory overflows"
                ),
                None => trap.to_string(),
            },
            trap => trap.to_string(),
        };
        InvokeError::Trap(text)
    }

    /// Any other error that ended the guest: its call of `exit`, or a host
    /// error, told without the wasm backtrace wasmtime wraps around it
    /// (whose heading would otherwise be all the message said).
    pub(crate) fn ended(error: &wasmtime::Error) -> InvokeError {
        if let Some(exit) = error.downcast_ref::<wasmtime_wasi::I32Exit>() {
            return InvokeError::Exited(exit.0);
        }
        let backtrace = error
            .downcast_ref::<wasmtime::WasmBacktrace>()
            .map(ToString::to_string);
        let text = error
            .chain()
            .map(ToString::to_string)
            .filter(|layer| Some(layer) != backtrace.as_ref())
            .map(|layer| layer.lines().next().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
            .join(": ");
        InvokeError::Trap(text)
    }
}

/// Frames wasmtime keeps of a trap's backtrace (its default), and how many
/// of them one function must fill to count as a deep recursion.
const KEPT_FRAMES: usize = 20;
const RECURSING_FRAMES: usize = KEPT_FRAMES / 2;

/// Which function fills the trap's backtrace, if one does: a backtrace cut
/// at wasmtime's limit with one function in at least half its frames is a
/// recursion far deeper than ordinary code goes.
fn deep_recursion(error: &wasmtime::Error) -> Option<String> {
    let frames = error.downcast_ref::<wasmtime::WasmBacktrace>()?.frames();
    if frames.len() < KEPT_FRAMES {
        return None;
    }
    let same = |a: &wasmtime::FrameInfo, b: &wasmtime::FrameInfo| {
        a.func_index() == b.func_index() && wasmtime::Module::same(a.module(), b.module())
    };
    frames.iter().find_map(|frame| {
        let count = frames.iter().filter(|other| same(frame, other)).count();
        (count >= RECURSING_FRAMES).then(|| {
            let name = match frame.func_name() {
                Some(name) => format!("`{name}`"),
                None => format!("wasm function {}", frame.func_index()),
            };
            format!("{name} is {count} of the {} innermost frames", frames.len())
        })
    })
}

#[cfg(test)]
mod tests {
    use wasmtime::{Engine, Instance, Linker, Module, Store, Trap};

    use super::InvokeError;

    /// Runs export `run` of a core module whose import `host.fail`
    /// fails with `host_error`, and classifies how it ended.
    fn classify(wat: &str, host_error: fn() -> wasmtime::Error) -> InvokeError {
        let engine = Engine::default();
        let module = Module::new(&engine, wat::parse_str(wat).unwrap()).unwrap();
        let mut linker = Linker::new(&engine);
        linker
            .func_wrap("host", "fail", move || -> wasmtime::Result<()> {
                Err(host_error())
            })
            .unwrap();
        let mut store = Store::new(&engine, ());
        let instance: Instance = linker.instantiate(&mut store, &module).unwrap();
        let run = instance
            .get_typed_func::<(), ()>(&mut store, "run")
            .unwrap();
        let error = run.call(&mut store, ()).unwrap_err();
        match error.downcast_ref::<Trap>() {
            Some(trap) => InvokeError::trapped(*trap, &error),
            None => InvokeError::ended(&error),
        }
    }

    fn no_host_error() -> wasmtime::Error {
        wasmtime::Error::msg("unused")
    }

    #[test]
    fn a_native_stack_overflow_is_named() {
        let wat = r#"(module (import "host" "fail" (func))
            (func $run (export "run") (call $run)))"#;
        let message = classify(wat, no_host_error).to_string();
        assert!(message.contains("stack overflow"), "{message}");
    }

    #[test]
    fn a_stack_in_linear_memory_running_out_is_named() {
        // What a Rust guest compiles recursion with a big frame to: the
        // stack pointer (a global) moves down 512 bytes a call and wraps
        // below 0, into an out-of-bounds store.
        let wat = r#"(module (import "host" "fail" (func))
            (memory 2)
            (global $sp (mut i32) (i32.const 65536))
            (func $run (export "run")
                (global.set $sp (i32.sub (global.get $sp) (i32.const 512)))
                (i64.store (global.get $sp) (i64.const 7))
                (call $run)))"#;
        let message = classify(wat, no_host_error).to_string();
        assert!(
            message.contains("stack overflow (most likely)"),
            "{message}"
        );
        assert!(message.contains("of the 20 innermost frames"), "{message}");
    }

    #[test]
    fn an_ordinary_out_of_bounds_access_is_not_a_stack_overflow() {
        let wat = r#"(module (import "host" "fail" (func))
            (memory 1)
            (func (export "run") (i64.store (i32.const -8) (i64.const 7))))"#;
        let message = classify(wat, no_host_error).to_string();
        assert!(message.contains("out of bounds memory access"), "{message}");
        assert!(!message.contains("stack overflow"), "{message}");
    }

    #[test]
    fn an_exit_keeps_its_code_and_a_host_error_its_message() {
        let wat = r#"(module (import "host" "fail" (func $fail))
            (func (export "run") (call $fail)))"#;
        let exited = classify(wat, || wasmtime::Error::new(wasmtime_wasi::I32Exit(3)));
        assert!(matches!(exited, InvokeError::Exited(3)), "{exited:?}");
        assert!(
            exited.to_string().contains("exited with code 3"),
            "{exited}"
        );

        let failed = classify(wat, || {
            wasmtime::Error::msg("the disk is on fire").context("cannot write the answer")
        });
        assert_eq!(
            failed.to_string(),
            "the function trapped: cannot write the answer: the disk is on fire",
            "the wasm backtrace around it is left out"
        );
    }
}
