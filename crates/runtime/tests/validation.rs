//! Deploy-time validation of components, with the messages users see.

#![allow(clippy::unwrap_used)]

use stratus_runtime::{CompileLimits, Runtime, RuntimeConfig, RuntimeError, ValidationError};

fn runtime(dir: &std::path::Path) -> Runtime {
    let mut config = RuntimeConfig::new(dir);
    config.max_instances = 4;
    Runtime::new(config).unwrap()
}

fn message(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    match rt.prepare("test", bytes) {
        Ok(_) => panic!("expected a validation error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn garbage_is_not_wasm() {
    let msg = message(b"this is not wasm at all");
    assert!(msg.contains("not WebAssembly"), "{msg}");
}

#[test]
fn core_module_is_told_how_to_make_a_component() {
    let msg = message(&wat::parse_str("(module)").unwrap());
    assert!(
        msg.contains("core WebAssembly module without a component type"),
        "{msg}"
    );
    assert!(msg.contains("wasm32-wasip2"), "{msg}");
    assert!(msg.contains("`wasm32-wasip1` with wit-bindgen"), "{msg}");
}

#[test]
fn every_unsupported_import_is_named() {
    let wasm = wat::parse_str(
        r#"(component
            (import "wasi:keyvalue/store@0.1.0" (instance))
            (import "acme:billing/charge@1.0.0" (instance))
            (import "wasi:keyvalue/store@0.2.0-draft" (instance))
            (import "wasi:io/error@0.2.0" (instance)))"#,
    )
    .unwrap();
    let msg = message(&wasm);
    assert!(msg.contains("wasi:keyvalue/store@0.1.0"), "{msg}");
    assert!(msg.contains("acme:billing/charge@1.0.0"), "{msg}");
    assert!(
        !msg.contains("0.2.0-draft"),
        "a capability is granted per function, not refused here: {msg}"
    );
    assert!(
        !msg.contains("wasi:io/error"),
        "provided imports are not offending: {msg}"
    );
}

#[test]
fn a_component_without_the_handler_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let err = rt
        .prepare("empty", &wat::parse_str("(component)").unwrap())
        .unwrap_err();
    assert!(matches!(
        err,
        RuntimeError::Invalid(ValidationError::NoHttpHandler { .. })
    ));
    assert!(err.to_string().contains("exports nothing"), "{err}");
}

#[test]
fn a_wasi_0_3_component_is_told_what_it_is_and_what_is_served() {
    // Component-model async, as every WASI 0.3 component uses it.
    let wasm = wat::parse_str("(component (type (stream u8)))").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = runtime(dir.path()).prepare("async", &wasm).unwrap_err();
    assert!(
        matches!(
            err,
            RuntimeError::Invalid(ValidationError::ComponentModelAsync(_))
        ),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("WASI 0.3"), "{msg}");
    assert!(msg.contains("wasi:http/incoming-handler@0.2.x"), "{msg}");
}

#[test]
fn malformed_component_bytes_are_reported() {
    // A component header followed by junk.
    let mut bytes = b"\0asm\x0d\0\x01\0".to_vec();
    bytes.extend_from_slice(&[0xff; 16]);
    let msg = message(&bytes);
    assert!(msg.contains("component is invalid"), "{msg}");
}

#[test]
fn a_table_larger_than_a_pool_slot_is_refused_naming_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let wasm = wat::parse_str("(component (core module (table 5000000 funcref)))").unwrap();
    let err = rt.prepare("big-table", &wasm).unwrap_err();
    assert!(
        matches!(
            err,
            RuntimeError::Invalid(ValidationError::OverNodeLimit {
                setting: "table_elements",
                ..
            })
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "the component declares a table of 5000000 elements; this node allows at most 20000 (table_elements)"
    );
    let compiled = std::fs::read_dir(dir.path()).map_or(0, |entries| entries.count());
    assert_eq!(compiled, 0, "refused before compiling anything");
}

#[test]
fn a_component_wasmtime_cannot_fit_in_a_slot_is_a_validation_error() {
    // 70,000 globals make one core instance larger than the 1 MiB a pool
    // slot holds, which only wasmtime's own check sees.
    let globals = "(global i64 (i64.const 0))".repeat(70_000);
    let wasm = wat::parse_str(format!("(component (core module {globals}))")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let err = rt.prepare("big-instance", &wasm).unwrap_err();
    assert!(
        matches!(err, RuntimeError::Invalid(ValidationError::DoesNotFit(_))),
        "{err:?}"
    );
    assert!(err.to_string().contains("instance pool"), "{err}");
    assert!(
        err.to_string().contains("pooling allocator"),
        "wasmtime's reason is kept: {err}"
    );
}

/// Every file under `dir`, recursively.
fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files(&path));
        } else {
            found.push(path);
        }
    }
    found
}

fn with_limits(dir: &std::path::Path, limits: CompileLimits) -> Runtime {
    let mut config = RuntimeConfig::new(dir);
    config.max_instances = 4;
    config.compile = limits;
    Runtime::new(config).unwrap()
}

/// A component of one core module with `n` small functions.
fn functions(n: usize) -> Vec<u8> {
    let body = "(func (param i32) (result i32) local.get 0 i32.const 7 i32.mul)";
    wat::parse_str(format!("(component (core module {}))", body.repeat(n))).unwrap()
}

#[test]
fn a_component_with_more_code_than_the_node_compiles_is_refused_before_compiling() {
    let dir = tempfile::tempdir().unwrap();
    let rt = with_limits(
        dir.path(),
        CompileLimits {
            max_functions: 10,
            ..CompileLimits::default()
        },
    );
    let err = rt.prepare("many", &functions(11)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the component declares 11 functions; this node allows at most 10 (--compile-max-functions)"
    );
    let rt = with_limits(
        dir.path(),
        CompileLimits {
            max_code_bytes: 1 << 10,
            ..CompileLimits::default()
        },
    );
    let err = rt.prepare("large", &functions(200)).unwrap_err();
    assert!(err.to_string().contains("(--compile-max-code)"), "{err}");
    assert!(files(dir.path()).is_empty(), "{:?}", files(dir.path()));
}

#[test]
fn a_compile_past_the_timeout_is_refused_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let rt = with_limits(
        dir.path(),
        CompileLimits {
            timeout: std::time::Duration::from_millis(1),
            ..CompileLimits::default()
        },
    );
    let err = rt.prepare("slow", &functions(20_000)).unwrap_err();
    assert!(
        matches!(
            err,
            RuntimeError::Invalid(ValidationError::CompileTimeout(_))
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("--compile-timeout"), "{err}");
    // The abandoned compile runs to its end, then drops its result.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while rt.is_compiling() {
        assert!(
            std::time::Instant::now() < deadline,
            "the compile never ended"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(files(dir.path()).is_empty(), "{:?}", files(dir.path()));
}

#[test]
fn concurrent_deploys_of_one_new_component_do_not_race_and_a_refusal_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let rt = std::sync::Arc::new(runtime(dir.path()));
    // It compiles, then is refused for not being an HTTP handler.
    let wasm = functions(50);
    let errors: Vec<String> = std::thread::scope(|scope| {
        let racers: Vec<_> = (0..4)
            .map(|_| {
                let (rt, wasm) = (rt.clone(), wasm.clone());
                scope.spawn(move || rt.prepare("same", &wasm).unwrap_err().to_string())
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    for error in errors {
        assert!(error.contains("incoming-handler"), "{error}");
    }
    assert!(files(dir.path()).is_empty(), "{:?}", files(dir.path()));
}

/// Winch, the baseline compiler, refuses tail calls, which Cranelift
/// compiles: such a component is compiled by Cranelift at deploy, and
/// judged on what it is (here: not an HTTP handler), not on the baseline
/// compiler's refusal.
#[test]
fn a_component_the_baseline_compiler_refuses_is_compiled_optimized() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let wasm = wat::parse_str(
        r#"(component (core module
            (func $f (result i32) i32.const 1)
            (func (export "g") (result i32) return_call $f)))"#,
    )
    .unwrap();
    let err = rt.prepare("tail", &wasm).unwrap_err();
    assert!(
        matches!(
            err,
            RuntimeError::Invalid(ValidationError::NoHttpHandler { .. })
        ),
        "{err:?}"
    );
    let stats = rt.tier_stats();
    assert_eq!(
        stats
            .baseline_compiles
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    assert!(files(dir.path()).is_empty(), "{:?}", files(dir.path()));
}
