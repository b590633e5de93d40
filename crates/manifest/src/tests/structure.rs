//! The shape of the document: unknown keys, missing tables, duplicates
//! across functions, syntax errors and positions.

use super::*;

#[test]
fn refuses_unknown_keys_with_their_line() {
    let top = "[app]\nname = \"shop\"\nversion = 2\n";
    assert_eq!(
        error("title = \"x\"\n[app]\nname = \"shop\"\n"),
        format!("{FILE}:1:1: unknown field `title`, expected `app` or `function`")
    );
    assert_eq!(
        error(top),
        format!("{FILE}:3:1: unknown field `version`, expected `name`")
    );
    assert_eq!(
        function_error("\nmemroy = \"64MiB\""),
        format!(
            "{FILE}:7:1: unknown field `memroy`, expected one of `name`, `component`, `build`, `routes`, `memory`, `timeout`, `max_body`, `max_concurrency`, `min_warm`, `reuse`, `env`, `triggers`, `allowed_outbound`, `keyvalue`, `config`, `secrets`, `max_outbound_requests`, `max_outbound_bytes`, `outbound_timeout`; did you mean `memory`?"
        )
    );
    assert_eq!(
        error("[app]\nname = \"shop\"\n[[functions]]\nname = \"f\"\n"),
        format!(
            "{FILE}:3:3: unknown field `functions`, expected `app` or `function`; did you mean `function`?"
        )
    );
    // A key that is no typo gets no guess.
    assert!(!function_error("\nretries = 3").contains("did you mean"));
}

#[test]
fn reads_capability_grants() {
    let manifest = parse(&one_function(
        "component = \"f.wasm\"\nkeyvalue = [\"default\", \"carts\"]\nconfig = { currency = \"EUR\", \"tax.rate\" = \"0.2\" }\nsecrets = [\"stripe-key\"]",
    ))
    .unwrap();
    let f = &manifest.functions[0];
    assert_eq!(f.keyvalue, ["default", "carts"]);
    assert_eq!(f.config.get("tax.rate").map(String::as_str), Some("0.2"));
    assert_eq!(f.secrets, ["stripe-key"]);
}

#[test]
fn refuses_bad_capability_grants_naming_the_key() {
    let cases = [
        (
            "keyvalue = \"default\"",
            "function \"f\": keyvalue must be an array of strings, not a string (\"default\")",
        ),
        (
            "keyvalue = [\"a/b\"]",
            "function \"f\": keyvalue[0] \"a/b\" is not a valid name: bucket names are",
        ),
        (
            "keyvalue = [\"a\", \"a\"]",
            "function \"f\": keyvalue names \"a\" twice",
        ),
        (
            "config = { port = 80 }",
            "function \"f\": config value port must be a string (quote it), not an integer",
        ),
        (
            "config = { \"a b\" = \"x\" }",
            "function \"f\": config key \"a b\" is not a valid name",
        ),
        (
            "config = { token = \"x\" }\nsecrets = [\"token\"]",
            "function \"f\": \"token\" is both a config key and a secret",
        ),
    ];
    for (text, expected) in cases {
        let err = parse(&one_function(&format!("component = \"f.wasm\"\n{text}"))).unwrap_err();
        assert!(
            err.to_string().contains(expected),
            "{text}: {err} does not contain {expected}"
        );
    }
}

#[test]
fn refuses_a_route_used_twice_naming_both_functions() {
    let text = r#"[app]
name = "shop"

[[function]]
name = "a"
component = "a.wasm"
routes = ["/x/...", "/y"]

[[function]]
name = "b"
component = "b.wasm"
routes = ["/x", "/y"]
"#;
    assert_eq!(
        error(text),
        format!(
            "{FILE}:12:17: route \"/y\" of function \"b\" is already used by function \"a\" (line 7); a route may belong to only one function"
        )
    );
    assert_eq!(
        function_error("routes = [\"/x/...\", \"/x/...\"]"),
        format!(
            "{FILE}:6:21: function \"f\" lists route \"/x/...\" twice (first at line 6); remove one"
        )
    );
}

#[test]
fn refuses_a_function_name_used_twice() {
    let text = "[app]\nname = \"shop\"\n[[function]]\nname = \"a\"\ncomponent = \"a.wasm\"\n[[function]]\nname = \"a\"\ncomponent = \"b.wasm\"\n";
    assert_eq!(
        error(text),
        format!(
            "{FILE}:7:8: function name \"a\" is already used by the function at line 4; function names must be unique within an app"
        )
    );
}

#[test]
fn refuses_missing_tables_and_keys() {
    assert_eq!(
        error("[[function]]\nname = \"a\"\ncomponent = \"a.wasm\"\n"),
        format!(
            "{FILE}:1:1: the manifest has no [app] table; add one naming the app, e.g. [app] name = \"shop\""
        )
    );
    assert_eq!(
        error("\n[app]\n"),
        format!("{FILE}:2:1: [app] has no `name`; add one, e.g. name = \"shop\"")
    );
    assert_eq!(
        error("[app]\nname = \"shop\"\n"),
        format!(
            "{FILE}:1:1: app \"shop\" has no functions; add a [[function]] table with a `name` and a `component`"
        )
    );
    assert_eq!(
        error("[app]\nname = \"shop\"\n[function]\nname = \"a\"\n"),
        format!(
            "{FILE}:3:1: invalid type: map, expected [[function]] tables (an array of tables: two brackets)"
        )
    );
    assert_eq!(
        error("function = [1]\n[app]\nname = \"shop\"\n"),
        format!("{FILE}:1:13: invalid type: integer `1`, expected a [[function]] table")
    );
    assert_eq!(
        error("[app]\nname = \"shop\"\n[[function]]\ncomponent = \"a.wasm\"\n"),
        format!("{FILE}:3:1: [[function]] number 1 has no `name`; add one, e.g. name = \"hello\"")
    );
    assert_eq!(
        error(&one_function("")),
        format!(
            "{FILE}:3:1: function \"f\": no `component`; add the path of its .wasm file, e.g. component = \"target/wasm32-wasip2/release/f.wasm\""
        )
    );
}

#[test]
fn refuses_bad_names() {
    assert_eq!(
        error("[app]\nname = \"Shop\"\n"),
        format!(
            "{FILE}:2:8: app name \"Shop\" does not start with a lowercase letter; names are 1-63 characters of lowercase ASCII letters, digits and '-', starting with a letter"
        )
    );
    let long = "a".repeat(64);
    for (name, problem) in [
        ("my_fn", "contains '_'"),
        ("9lives", "does not start with a lowercase letter"),
        ("", "is empty"),
        (long.as_str(), "is longer than 63 characters"),
    ] {
        let text = format!("[app]\nname = \"shop\"\n[[function]]\nname = \"{name}\"\n");
        assert_eq!(
            error(&text),
            format!(
                "{FILE}:4:8: [[function]] number 1 name \"{name}\" {problem}; names are 1-63 characters of lowercase ASCII letters, digits and '-', starting with a letter"
            )
        );
    }
    assert!(
        parse(&format!(
            "[app]\nname = \"{}\"\n[[function]]\nname = \"a-1\"\ncomponent = \"a\"",
            "a".repeat(63)
        ))
        .is_ok()
    );
    assert_eq!(
        error("[app]\nname = 5\n"),
        format!("{FILE}:2:8: app name must be a string, not an integer (5)")
    );
}

#[test]
fn reports_toml_syntax_errors_with_their_position() {
    let err = parse("[app]\nname = \"shop\nx = 1\n").unwrap_err();
    assert!(matches!(err, ManifestError::Toml { .. }), "{err:?}");
    let location = err.location().unwrap();
    assert_eq!((location.file.as_str(), location.line), (FILE, 2));
    assert!(!err.to_string().contains('\n'), "one line: {err}");
}

#[test]
fn locations_count_characters_not_bytes() {
    let text = "é = 1\nnaïve = x";
    assert_eq!(Location::at("f", text, 0).to_string(), "f:1:1");
    assert_eq!(
        Location::at("f", text, text.find(" = 1").unwrap()).to_string(),
        "f:1:2"
    );
    assert_eq!(
        Location::at("f", text, text.find(" = x").unwrap()).to_string(),
        "f:2:6"
    );
    assert_eq!(Location::at("f", text, 1000).to_string(), "f:2:10");
}

#[test]
fn refuses_a_function_named_after_a_node_service() {
    let text = "[app]\nname = \"shop\"\n[[function]]\nname = \"queue\"\ncomponent = \"q.wasm\"\n";
    let err = parse(text).unwrap_err().to_string();
    assert!(
        err.contains("function \"queue\": the name is reserved"),
        "{err}"
    );
    assert!(
        err.contains("http://queue.svc/ is the node's own queue service"),
        "{err}"
    );
}
