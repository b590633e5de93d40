//! Deploy-time validation of components, with the messages users see.

#![allow(clippy::unwrap_used)]

use stratus_runtime::{Runtime, RuntimeConfig, RuntimeError, ValidationError};

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
        msg.contains("core WebAssembly module, not a component"),
        "{msg}"
    );
    assert!(msg.contains("wasm32-wasip2"), "{msg}");
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
fn malformed_component_bytes_are_reported() {
    // A component header followed by junk.
    let mut bytes = b"\0asm\x0d\0\x01\0".to_vec();
    bytes.extend_from_slice(&[0xff; 16]);
    let msg = message(&bytes);
    assert!(msg.contains("component is invalid"), "{msg}");
}
