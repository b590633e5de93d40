//! What the in-process tests share: the testbed component and a node on
//! a temporary data directory.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use stratus_node::{NodeConfig, Stratus};

pub const TOKEN: &str = "in-process-token";

/// The testbed guest, built once per test binary for wasm32-wasip2.
pub fn testbed() -> Bytes {
    guest("testbed")
}

/// The capabilities guest (key-value and config), built with the others.
pub fn capabilities() -> Bytes {
    guest("capabilities")
}

/// A test guest by name, after building them all once per test binary.
fn guest(name: &str) -> Bytes {
    static BUILT: OnceLock<()> = OnceLock::new();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    BUILT.get_or_init(|| {
        let manifest = root.join("tests/guests/Cargo.toml");
        let status = Command::new(env!("CARGO"))
            .args(["build", "--release", "--target", "wasm32-wasip2", "--quiet"])
            .arg("--manifest-path")
            .arg(&manifest)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET")
            .status()
            .unwrap();
        assert!(status.success(), "building the test guests failed");
    });
    let wasm = root.join(format!(
        "tests/guests/target/wasm32-wasip2/release/{name}.wasm"
    ));
    Bytes::from(std::fs::read(wasm).unwrap())
}

/// A node with a small pool, on `dir`.
pub async fn node_in(dir: &Path) -> Stratus {
    let config = NodeConfig {
        max_instances: 16,
        memory_budget: Some(1 << 30),
        ..NodeConfig::default()
    };
    Stratus::open(config, dir, TOKEN).await.unwrap()
}

/// A node on its own temporary data directory.
pub async fn node() -> (Stratus, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let node = node_in(dir.path()).await;
    (node, dir)
}

/// A GET through the gateway: status and body.
pub async fn get(node: &Stratus, path: &str) -> (StatusCode, String) {
    let request = Request::get(path)
        .header(header::HOST, "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = node.gateway().handle_request(request).await;
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A one-function testbed app routed at `{route}/...`, with `extra` keys.
pub fn manifest(app: &str, route: &str, extra: &str) -> String {
    format!(
        "[app]\nname = \"{app}\"\n\n[[function]]\nname = \"bed\"\ncomponent = \"testbed.wasm\"\nroutes = [\"{route}/...\"]\n{extra}\n"
    )
}

/// `POST {path}` (an apps endpoint, with any query) of a deploy form:
/// `manifest` and one component, named as the manifest names it.
pub fn deploy_request(
    path: &str,
    token: &str,
    manifest: &str,
    (file, bytes): (&str, Bytes),
) -> Request<Full<Bytes>> {
    let boundary = "test-deploy-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"manifest\"\r\n\r\n{manifest}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"component\"; filename=\"{file}\"\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Request::post(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

/// An admin API request with `token`: the status, and the body as JSON
/// (`Null` when it is not).
pub async fn admin_call(
    node: &Stratus,
    token: &str,
    method: http::Method,
    path: &str,
    content_type: &str,
    body: impl Into<Bytes>,
) -> (StatusCode, serde_json::Value) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, content_type)
        .body(Full::new(body.into()))
        .unwrap();
    admin(node, request).await
}

/// `request` through the admin API: the status, and the body as JSON
/// (`Null` when it is not).
pub async fn admin(
    node: &Stratus,
    request: Request<Full<Bytes>>,
) -> (StatusCode, serde_json::Value) {
    use tower::ServiceExt;
    let response = node.admin().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or_default())
}

/// The node's `/metrics` (the Prometheus text format).
pub async fn node_metrics(node: &Stratus) -> String {
    use tower::ServiceExt;
    let request = Request::get("/metrics")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = node.admin().oneshot(request).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}
