//! Manifest parsing end to end: text in, values or exact messages out.

use std::time::Duration;

use super::*;

mod load;
mod props;
mod route_props;
mod scale;
mod spin;
mod stored;
mod structure;
mod values;

const FILE: &str = "examples/shop/stratus.toml";

const FULL: &str = r#"[app]
name = "shop"

[[function]]
name = "pricing"
component = "target/wasm32-wasip2/release/pricing.wasm"
build = "cargo build --release --target wasm32-wasip2"
routes = ["/pricing/...", "/price"]
memory = "64MiB"
timeout = "2s"
max_body = "1MB"
max_concurrency = 50
env = { CURRENCY = "EUR", "WITH SPACE" = "ok" }

[[function]]
name = "catch-all"
component = "all.wasm"
routes = ["/..."]
"#;

fn parse(text: &str) -> Result<Manifest, ManifestError> {
    Manifest::parse(text, FILE)
}

fn error(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

/// A valid app with one function whose body is `function_body`, which starts
/// on line 5.
fn one_function(function_body: &str) -> String {
    format!("[app]\nname = \"shop\"\n[[function]]\nname = \"f\"\n{function_body}\n")
}

/// The error for one function whose component is set and whose remaining
/// keys (starting on line 6) are `rest`.
fn function_error(rest: &str) -> String {
    error(&one_function(&format!("component = \"f.wasm\"\n{rest}")))
}

#[test]
fn parses_a_full_manifest() {
    let m = parse(FULL).unwrap();
    assert_eq!(m.app.name, "shop");
    assert_eq!(m.functions.len(), 2);
    let f = &m.functions[0];
    assert_eq!(f.name, "pricing");
    assert_eq!(f.component, "target/wasm32-wasip2/release/pricing.wasm");
    assert_eq!(
        f.build.as_deref(),
        Some("cargo build --release --target wasm32-wasip2")
    );
    assert_eq!(
        f.routes,
        vec![
            Route::from(RoutePath::Prefix("/pricing".into())),
            Route::from(RoutePath::Exact("/price".into()))
        ]
    );
    assert_eq!(f.memory, ByteSize(64 << 20));
    assert_eq!(f.timeout, Duration::from_secs(2));
    assert_eq!(f.max_body, ByteSize(1_000_000));
    assert_eq!(f.max_concurrency, 50);
    assert_eq!(f.env.get("CURRENCY").map(String::as_str), Some("EUR"));
    assert_eq!(f.env.get("WITH SPACE").map(String::as_str), Some("ok"));
    assert_eq!(
        m.function("catch-all").unwrap().routes,
        vec![Route::from(RoutePath::Prefix(String::new()))]
    );
    assert!(m.function("nope").is_none());

    let json = serde_json::to_string(&m).unwrap();
    assert_eq!(serde_json::from_str::<Manifest>(&json).unwrap(), m);
}

#[test]
fn applies_defaults() {
    let m = parse(&one_function("component = \"f.wasm\"")).unwrap();
    let f = &m.functions[0];
    assert_eq!(f.build, None);
    assert!(f.routes.is_empty());
    assert_eq!(f.memory, DEFAULT_MEMORY);
    assert_eq!(DEFAULT_MEMORY, ByteSize(128 << 20));
    assert_eq!(f.timeout, DEFAULT_TIMEOUT);
    assert_eq!(DEFAULT_TIMEOUT, Duration::from_secs(30));
    assert_eq!(f.max_body, DEFAULT_MAX_BODY);
    assert_eq!(DEFAULT_MAX_BODY, ByteSize(10 << 20));
    assert_eq!(f.max_concurrency, DEFAULT_MAX_CONCURRENCY);
    assert_eq!(DEFAULT_MAX_CONCURRENCY, 100);
    assert!(f.env.is_empty());
}

#[test]
fn function_spec_json_round_trips_exactly() {
    let m = parse(FULL).unwrap();
    let f = &m.functions[0];
    let json = serde_json::to_string(f).unwrap();
    assert_eq!(
        json,
        r#"{"name":"pricing","component":"target/wasm32-wasip2/release/pricing.wasm","build":"cargo build --release --target wasm32-wasip2","routes":["/pricing/...","/price"],"memory":67108864,"timeout_ms":2000,"max_body":1000000,"max_concurrency":50,"min_warm":false,"env":{"CURRENCY":"EUR","WITH SPACE":"ok"},"max_outbound_requests":50,"max_outbound_bytes":16777216,"outbound_timeout_ms":10000}"#
    );
    let back: FunctionSpec = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, f);
    // A spec stored before the outbound limits existed reads with their
    // defaults.
    let stored_earlier = json.replace(
        r#","max_outbound_requests":50,"max_outbound_bytes":16777216,"outbound_timeout_ms":10000"#,
        "",
    );
    assert_eq!(
        &serde_json::from_str::<FunctionSpec>(&stored_earlier).unwrap(),
        f
    );
    assert_eq!(serde_json::to_string(&back).unwrap(), json);

    let defaults = &parse(&one_function(
        "component = \"f.wasm\"\ntimeout = \"1500ms\"",
    ))
    .unwrap()
    .functions[0];
    let json = serde_json::to_string(defaults).unwrap();
    assert!(json.contains(r#""timeout_ms":1500"#), "{json}");
    assert!(!json.contains("build"), "{json}");
    assert_eq!(
        &serde_json::from_str::<FunctionSpec>(&json).unwrap(),
        defaults
    );
}
