//! Spin manifests read as Stratus apps: what maps, and what is refused by
//! name instead of dropped.

use super::*;

const SPIN_FILE: &str = "apps/greeter/spin.toml";

const SPIN: &str = r#"spin_manifest_version = 2

[application]
name = "greeter"
version = "0.1.0"
authors = ["A. Developer <a@example.com>"]
description = "Says hello"

[application.trigger.http]
base = "/api"

[variables]
greeting = { default = "Hello" }
api_key = { required = true, secret = true }

[[trigger.http]]
route = "/hello/..."
component = "hello"

[[trigger.http]]
route = "/hi"
component = "hello"

[[trigger.http]]
route = { private = true }
component = "backend"

[component.hello]
source = "target/wasm32-wasip1/release/hello.wasm"
allowed_outbound_hosts = ["https://api.example.com", "http://self"]
key_value_stores = ["default"]
environment = { MODE = "prod" }
[component.hello.variables]
message = "{{ greeting }}, world"
api_key = "{{ api_key }}"
[component.hello.build]
command = "cargo build --target wasm32-wasip1 --release"
workdir = "hello"
watch = ["src/**/*.rs"]

[component.backend]
source = "backend.wasm"
"#;

fn spin_err(text: &str) -> String {
    Manifest::parse(text, SPIN_FILE).unwrap_err().to_string()
}

#[test]
fn a_spin_manifest_maps_to_the_same_app() {
    let m = Manifest::parse(SPIN, SPIN_FILE).unwrap();
    assert_eq!(m.app.name, "greeter");
    assert_eq!(m.functions.len(), 2);
    let hello = m.function("hello").unwrap();
    assert_eq!(hello.component, "target/wasm32-wasip1/release/hello.wasm");
    let routes: Vec<String> = hello.routes.iter().map(|r| r.to_string()).collect();
    assert_eq!(routes, ["/api/hello/...", "/api/hi"]);
    assert_eq!(
        hello.build.as_deref(),
        Some("cd 'hello' && cargo build --target wasm32-wasip1 --release")
    );
    assert_eq!(hello.env.get("MODE").map(String::as_str), Some("prod"));
    let outbound: Vec<String> = hello
        .allowed_outbound
        .iter()
        .map(|r| r.to_string())
        .collect();
    assert_eq!(outbound, ["https://api.example.com"]);
    assert_eq!(hello.keyvalue, ["default"]);
    assert_eq!(
        hello.config.get("message").map(String::as_str),
        Some("Hello, world")
    );
    assert_eq!(hello.secrets, ["api_key"]);
    let spin = hello.spin.as_ref().unwrap();
    assert_eq!(spin.base, "/api");
    assert_eq!(spin.routes[0].route, "/api/hello/...");
    assert_eq!(spin.routes[0].raw, "/hello/...");

    let backend = m.function("backend").unwrap();
    assert!(backend.routes.is_empty(), "a private route serves no path");
    assert_eq!(backend.memory, DEFAULT_MEMORY, "Stratus's defaults apply");
}

#[test]
fn a_directory_with_only_a_spin_toml_is_read_from_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("spin.toml"), SPIN).unwrap();
    let loaded = Manifest::load(dir.path()).unwrap();
    assert!(loaded.path.ends_with("spin.toml"));
    assert_eq!(loaded.manifest.app.name, "greeter");
    // With both, stratus.toml is the app's manifest.
    std::fs::write(
        dir.path().join("stratus.toml"),
        "[app]\nname = \"other\"\n[[function]]\nname = \"f\"\ncomponent = \"f.wasm\"\n",
    )
    .unwrap();
    assert_eq!(
        Manifest::load(dir.path()).unwrap().manifest.app.name,
        "other"
    );
}

#[test]
fn what_stratus_cannot_keep_is_refused_by_name() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "[component.hello]\nsource",
            "[component.hello]\nfiles = [\"static/**\"]\nsource",
            "files: Stratus functions have no file system",
        ),
        (
            "[[trigger.http]]\nroute = \"/hi\"",
            "[[trigger.redis]]\nchannel = \"c\"\ncomponent = \"hello\"\n\n[[trigger.http]]\nroute = \"/hi\"",
            "[[trigger.redis]]: Stratus runs the HTTP triggers",
        ),
        (
            "source = \"backend.wasm\"",
            "source = { url = \"https://example.com/b.wasm\", digest = \"sha256:00\" }",
            "download it (check its digest)",
        ),
        (
            "route = \"/hi\"",
            "route = \"/users/:id\"",
            "no named parameters",
        ),
        (
            "message = \"{{ greeting }}, world\"",
            "message = \"key: {{ api_key }}\"",
            "mixes text or other variables with a variable without a default (api_key)",
        ),
        (
            "api_key = \"{{ api_key }}\"",
            "key = \"{{ api_key }}\"",
            "name the component variable after it (api_key = \"{{ api_key }}\")",
        ),
        (
            "message = \"{{ greeting }}, world\"",
            "message = \"{{ farewell }}\"",
            "which [variables] does not declare",
        ),
        (
            "\"http://self\"]",
            "\"redis://cache.example.com\"]",
            "the scheme must be http or https",
        ),
        (
            "name = \"greeter\"",
            "name = \"Greeter App\"",
            "is not a Stratus app name",
        ),
        (
            "component = \"backend\"",
            "component = \"back\"",
            "names the component \"back\", which has no [component.back] table",
        ),
        (
            "component = \"backend\"",
            "component = \"backend\"\nexecutor = { type = \"wagi\" }",
            "WAGI components read CGI environment variables",
        ),
        (
            "spin_manifest_version = 2",
            "spin_manifest_version = 1",
            "Stratus reads Spin manifests of version 2",
        ),
    ];
    for (from, to, words) in cases {
        assert!(SPIN.contains(from), "{from}");
        let err = spin_err(&SPIN.replacen(from, to, 1));
        assert!(err.contains(words), "{to}: {err}");
        assert!(err.starts_with(SPIN_FILE), "{to}: {err}");
    }
}

#[test]
fn spin_errors_point_into_the_spin_manifest() {
    let text = SPIN.replace("route = \"/hi\"", "route = \"hi\"");
    let err = spin_err(&text);
    let line = SPIN.lines().position(|l| l == "route = \"/hi\"").unwrap() + 1;
    assert!(err.starts_with(&format!("{SPIN_FILE}:{line}:")), "{err}");
    assert!(err.contains("must start with '/'"), "{err}");

    // A key Spin does not have is toml's error, at its place.
    let err = spin_err(&SPIN.replace("[variables]", "[variablez]"));
    assert!(err.contains("variablez"), "{err}");
}

#[test]
fn a_stratus_manifest_mentioning_spin_is_not_a_spin_manifest() {
    let text = "[app]\nname = \"spin\"\n# spin_manifest_version = 2 is Spin's\n[[function]]\nname = \"f\"\ncomponent = \"f.wasm\"\nenv = { spin_manifest_version = \"x\" }\n";
    let m = Manifest::parse(text, FILE).unwrap();
    assert_eq!(m.app.name, "spin");
    assert!(m.functions[0].spin.is_none());
}
