//! What the OpenAPI document says of the API as a whole, beyond each
//! handler's annotation: the statuses every operation can answer because
//! of the layers in front of it (the token check, the namespace scope, the
//! body limit, axum's own refusals), the grammar of each parameter, the
//! links between operations, and each endpoint again under
//! `/v1/namespaces/{namespace}/…`.
//!
//! It works on the document as JSON after utoipa made it. The statuses come
//! from the same access table the token check enforces and the parameter
//! grammars from the constants the handlers parse with, so the document
//! cannot promise what the node does not do. A property-based fuzzer
//! (schemathesis: `crates/cli/tests/api_contract.rs`) holds the node to it.

use http::Method;
use serde_json::{Map, Value, json};
use stratus_storage::Role;

use crate::access::access;
use crate::common::{MAX_LIMIT, SPAN_PATTERN};
use crate::tokens::LIFETIME_PATTERN;
use crate::traffic::STEPS_PATTERN;

/// An app's, namespace's or function's name ([`stratus_manifest::NAME_RULE`]).
pub(crate) const NAME_PATTERN: &str = "^[a-z][a-z0-9-]{0,62}$";
/// A function as a path names it: `NAME` or `APP/NAME`.
pub(crate) const FUNCTION_PATTERN: &str = "^[a-z][a-z0-9-]{0,62}(/[a-z][a-z0-9-]{0,62})?$";
/// A queue's name ([`stratus_manifest::valid_queue_name`]).
pub(crate) const QUEUE_PATTERN: &str = "^[a-z0-9][a-z0-9._-]{0,63}$";
/// A secret's name ([`stratus_manifest::CONFIG_KEY_RULE`]).
pub(crate) const SECRET_NAME_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$";
/// An invocation's id: a UUID v7 as 32 hex digits.
pub(crate) const ID_PATTERN: &str = "^[0-9a-f]{32}$";
/// A token's id: 16 hex digits.
pub(crate) const TOKEN_ID_PATTERN: &str = "^[0-9a-f]{16}$";
/// The path an invocation hands the function.
pub(crate) const PATH_PATTERN: &str = "^/([A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2})*$";
const ERROR_SCHEMA: &str = "#/components/schemas/ErrorResponse";

/// The document, completed.
pub(crate) fn complete(doc: &mut Value) {
    unsigned(doc);
    bodies(doc);
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        for (method, operation) in operations(item) {
            parameters(path, operation);
            responses(path, &method, operation);
        }
    }
    links(paths);
    namespaced(paths);
}

/// Unsigned integers as what they are: utoipa spells a `u32` as `int32`
/// from 0, whose range ends at 2^31 - 1 where the node's goes on to
/// 2^32 - 1.
fn unsigned(value: &mut Value) {
    match value {
        Value::Object(schema) => {
            let from_zero = schema
                .get("minimum")
                .and_then(Value::as_f64)
                .is_some_and(|m| m >= 0.0);
            let bits = match schema.get("format").and_then(Value::as_str) {
                Some("int32") => Some(u64::from(u32::MAX)),
                Some("int64") => Some(u64::MAX),
                _ => None,
            };
            if let Some(max) = bits.filter(|_| from_zero) {
                schema.remove("format");
                schema.entry("maximum").or_insert(json!(max));
            }
            schema.values_mut().for_each(unsigned);
        }
        Value::Array(items) => items.iter_mut().for_each(unsigned),
        _ => {}
    }
}

/// What the handlers check of request bodies beyond their types.
fn bodies(doc: &mut Value) {
    let patches = [
        (
            "/components/schemas/CreateToken/properties/expires/pattern",
            json!(LIFETIME_PATTERN),
        ),
        // A canary's steps are shares in percent.
        (
            "/components/schemas/TrafficBody/properties/steps/items",
            json!({"type": "integer", "minimum": 1, "maximum": 100}),
        ),
        // A form of exactly these parts.
        (
            "/components/schemas/DeployForm/additionalProperties",
            json!(false),
        ),
        (
            "/paths/~1v1~1apps~1{app}~1secrets~1{name}/put/requestBody/content/text~1plain/schema",
            json!({"type": "string", "minLength": 1}),
        ),
        // Each part's media type: the manifest is text (TOML), a
        // component a WebAssembly binary. The node reads neither header.
        (
            "/paths/~1v1~1apps/post/requestBody/content/multipart~1form-data/encoding",
            json!({
                "manifest": {"contentType": "text/plain"},
                "component": {"contentType": "application/wasm"},
            }),
        ),
        // A function or a queue's consumers may be handed nothing.
        (
            "/paths/~1v1~1functions~1{function}~1invocations/post/requestBody/required",
            json!(false),
        ),
        (
            "/paths/~1v1~1apps~1{app}~1queues~1{queue}~1events/post/requestBody/required",
            json!(false),
        ),
    ];
    for (pointer, value) in patches {
        let Some((parent, key)) = pointer.rsplit_once('/') else {
            continue;
        };
        if let Some(Value::Object(parent)) = doc.pointer_mut(parent) {
            parent.insert(key.replace("~1", "/").replace("~0", "~"), value);
        }
    }
}

/// An item's operations with their methods.
fn operations(item: &mut Value) -> Vec<(Method, &mut Value)> {
    let Some(item) = item.as_object_mut() else {
        return Vec::new();
    };
    item.iter_mut()
        .filter_map(|(name, operation)| {
            let method = Method::from_bytes(name.to_ascii_uppercase().as_bytes()).ok()?;
            operation.is_object().then_some((method, operation))
        })
        .collect()
}

/// The grammar of each parameter, by its name: one name means one thing
/// across the API.
fn parameters(path: &str, operation: &mut Value) {
    let Some(parameters) = operation
        .get_mut("parameters")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for parameter in parameters {
        let location = parameter["in"].as_str().unwrap_or_default().to_owned();
        let name = parameter["name"].as_str().unwrap_or_default().to_owned();
        if let Some(schema) = grammar(path, &location, &name) {
            parameter["schema"] = schema;
        }
        if let Some(example) = example(&location, &name) {
            parameter["example"] = json!(example);
        }
    }
}

/// The schema of the parameter `name` in `location` of `path`, where the
/// handler's annotation says less than the handler checks.
pub(crate) fn grammar(path: &str, location: &str, name: &str) -> Option<Value> {
    let pattern = |pattern: &str| json!({"type": "string", "pattern": pattern});
    Some(match (location, name) {
        ("path", "app" | "namespace") | ("query", "app") => pattern(NAME_PATTERN),
        ("path", "function") => pattern(FUNCTION_PATTERN),
        ("path", "queue") => pattern(QUEUE_PATTERN),
        ("path", "name") => pattern(SECRET_NAME_PATTERN),
        ("path", "version") => json!({"type": "integer", "minimum": 0, "maximum": u32::MAX}),
        ("path", "id") if path.starts_with("/v1/tokens/") => pattern(TOKEN_ID_PATTERN),
        // A CloudEvent's id is its publisher's: any text.
        ("path", "id") if path.starts_with("/v1/events/") || path.ends_with("/replay") => {
            json!({"type": "string", "minLength": 1})
        }
        ("path", "id") | ("query", "invocation") => pattern(ID_PATTERN),
        ("query", "since" | "until") => json!({"anyOf": [
            {"type": "string", "pattern": SPAN_PATTERN},
            {"type": "string", "format": "date-time"},
        ]}),
        ("query", "steps") => pattern(STEPS_PATTERN),
        ("query", "limit") => json!({"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}),
        ("query", "min_duration_ms") => {
            json!({"type": "integer", "minimum": 0, "maximum": u64::MAX})
        }
        ("query", "mode") => json!({"type": "string", "enum": ["sync", "async"]}),
        ("query", "method") => json!({"type": "string", "enum": INVOKE_METHODS}),
        ("query", "path") => pattern(PATH_PATTERN),
        _ => return None,
    })
}

/// An example of the parameter, where one name fits every use: the app of
/// the contract test (`shop`, whose function `orders` consumes the queue
/// `orders`) and the names a reader would pick.
fn example(location: &str, name: &str) -> Option<&'static str> {
    Some(match (location, name) {
        ("path" | "query", "app") => "shop",
        ("path", "function") => "orders",
        ("path", "queue") => "orders",
        ("path", "name") => "STRIPE_KEY",
        ("query", "since") => "24h",
        _ => return None,
    })
}

/// The methods an invocation may hand a function.
pub(crate) const INVOKE_METHODS: [&str; 7] =
    ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

/// Why an operation can answer a status it does not name itself.
fn responses(path: &str, method: &Method, operation: &mut Value) {
    let secured = operation["security"]
        .as_array()
        .is_some_and(|s| !s.is_empty());
    let takes_input = operation["parameters"]
        .as_array()
        .is_some_and(|p| !p.is_empty());
    let has_body = operation.get("requestBody").is_some();
    // An operation with a `default` answer (an invocation: the function's
    // own, of any status) describes every other status there.
    let open_ended = operation["responses"].get("default").is_some();
    let mut add = Vec::new();
    if !open_ended {
        if takes_input || has_body {
            add.push((400, "a parameter or the body does not follow its schema"));
        }
        if secured {
            add.push((
                401,
                "no `Authorization: Bearer` token, or one that is unknown, expired or revoked",
            ));
            let needs = access(method, path);
            if needs.role > Role::Viewer || needs.node_wide {
                add.push((403, forbidden(needs.role, needs.node_wide)));
            }
            if !needs.node_wide {
                add.push((
                    404,
                    "the namespace is not the token's: answered as if it held nothing",
                ));
            }
            add.push((
                503,
                "a cluster's store (tokens, apps) is out of reach for now; `Retry-After` says when to ask again",
            ));
        }
        if has_body {
            add.push((413, "the body is over the node's limit (`--max-upload`)"));
        }
    }
    let responses = operation
        .as_object_mut()
        .map(|o| o.entry("responses").or_insert_with(|| json!({})));
    let Some(Value::Object(responses)) = responses else {
        return;
    };
    for (status, why) in add {
        let response = responses
            .entry(status.to_string())
            .or_insert_with(|| json!({"description": ""}));
        let description = response["description"].as_str().unwrap_or_default();
        response["description"] = Value::String(if description.is_empty() {
            why.to_owned()
        } else if description.contains(why) {
            description.to_owned()
        } else {
            format!("{description}; or {why}")
        });
    }
    for (status, response) in responses.iter_mut() {
        let Some(response) = response.as_object_mut() else {
            continue;
        };
        let error = status.starts_with('4') || status.starts_with('5');
        // Every error of the API is the one error shape (health's 503 is
        // its own report, and a function's answer is its own).
        if error && !response.contains_key("content") && status != "default" {
            response.insert(
                "content".into(),
                json!({"application/json": {"schema": {"$ref": ERROR_SCHEMA}}}),
            );
        }
        if status == "429" || status == "503" {
            response.insert(
                "headers".into(),
                json!({"Retry-After": {
                    "description": "seconds to wait before asking again",
                    "schema": {"type": "integer", "minimum": 0},
                }}),
            );
        }
        if response
            .get("description")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            response.insert("description".into(), Value::String(reason(status)));
        }
    }
}

fn forbidden(role: Role, node_wide: bool) -> &'static str {
    match (node_wide, role) {
        (true, _) => "the token is a namespace's, and this is the node's endpoint",
        (false, Role::Invoker) => "the token's role is below `invoker`",
        (false, Role::Deployer) => "the token's role is below `deployer`",
        (false, _) => "the token's role is below `admin`",
    }
}

fn reason(status: &str) -> String {
    status
        .parse::<u16>()
        .ok()
        .and_then(|s| http::StatusCode::from_u16(s).ok())
        .and_then(|s| s.canonical_reason())
        .unwrap_or("the answer")
        .to_owned()
}

/// A link: from `(operation, status)` to the operation a client goes on
/// to, with its parameters as runtime expressions.
struct LinkRule {
    from: &'static str,
    status: &'static str,
    name: &'static str,
    to: &'static str,
    parameters: &'static [(&'static str, &'static str)],
}

const LINKS: &[LinkRule] = &[
    LinkRule {
        from: "deploy",
        status: "201",
        name: "ShowApp",
        to: "show_app",
        parameters: &[("app", "$response.body#/name")],
    },
    LinkRule {
        from: "deploy",
        status: "201",
        name: "ListVersions",
        to: "list_versions",
        parameters: &[("app", "$response.body#/name")],
    },
    LinkRule {
        from: "deploy",
        status: "201",
        name: "ActivateVersion",
        to: "activate_version",
        parameters: &[
            ("app", "$response.body#/name"),
            ("version", "$response.body#/version"),
        ],
    },
    LinkRule {
        from: "deploy",
        status: "201",
        name: "Rollback",
        to: "rollback",
        parameters: &[("app", "$response.body#/name")],
    },
    LinkRule {
        from: "deploy",
        status: "201",
        name: "DeleteApp",
        to: "delete_app",
        parameters: &[("app", "$response.body#/name")],
    },
    LinkRule {
        from: "list_versions",
        status: "200",
        name: "ActivateVersion",
        to: "activate_version",
        parameters: &[
            ("app", "$request.path.app"),
            ("version", "$response.body#/0/version"),
        ],
    },
    LinkRule {
        from: "create_token",
        status: "201",
        name: "RevokeToken",
        to: "revoke_token",
        parameters: &[("id", "$response.body#/id")],
    },
    LinkRule {
        from: "invoke",
        status: "202",
        name: "Event",
        to: "event",
        parameters: &[("id", "$response.body#/id")],
    },
    LinkRule {
        from: "publish",
        status: "202",
        name: "Event",
        to: "event",
        parameters: &[("id", "$response.body#/id")],
    },
    LinkRule {
        from: "set_secret",
        status: "204",
        name: "ListSecrets",
        to: "list_secrets",
        parameters: &[("app", "$request.path.app")],
    },
    LinkRule {
        from: "set_secret",
        status: "204",
        name: "DeleteSecret",
        to: "delete_secret",
        parameters: &[("app", "$request.path.app"), ("name", "$request.path.name")],
    },
    LinkRule {
        from: "set_quotas",
        status: "200",
        name: "ShowQuotas",
        to: "show_quotas",
        parameters: &[],
    },
];

/// Links between operations, for clients and for stateful testing.
fn links(paths: &mut Map<String, Value>) {
    for item in paths.values_mut() {
        for (_, operation) in operations(item) {
            let id = operation["operationId"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            for rule in LINKS.iter().filter(|r| r.from == id) {
                let parameters: Map<String, Value> = rule
                    .parameters
                    .iter()
                    .map(|(name, expression)| ((*name).to_owned(), json!(expression)))
                    .collect();
                let Some(response) = operation
                    .get_mut("responses")
                    .and_then(|r| r.get_mut(rule.status))
                    .and_then(Value::as_object_mut)
                else {
                    continue;
                };
                let links = response.entry("links").or_insert_with(|| json!({}));
                links[rule.name] = json!({"operationId": rule.to, "parameters": parameters});
            }
        }
    }
}

/// Paths under `/v1` that are the node's, not a namespace's.
const NODE_WIDE: &[&str] = &["/v1/nodes", "/v1/namespaces", "/v1/openapi.json"];

/// Every namespace's endpoint at `/v1/namespaces/{namespace}/…` too, as
/// `namespaces::scope` serves it: the same operations with the namespace
/// as a path parameter, and operation ids (and links) of their own.
fn namespaced(paths: &mut Map<String, Value>) {
    let namespace = json!({
        "name": "namespace",
        "in": "path",
        "required": true,
        "description": "The namespace; `/v1/…` without it is the `default` namespace's",
        "schema": {"type": "string", "pattern": NAME_PATTERN},
        "example": "team-a",
    });
    let scoped: Vec<(String, Value)> = paths
        .iter()
        .filter(|(path, _)| !NODE_WIDE.contains(&path.as_str()))
        .filter_map(|(path, item)| {
            let rest = path.strip_prefix("/v1/")?;
            let mut item = item.clone();
            for (_, operation) in operations(&mut item) {
                if let Some(id) = operation["operationId"].as_str() {
                    operation["operationId"] = json!(format!("{id}_in_namespace"));
                }
                if let Some(responses) = operation
                    .get_mut("responses")
                    .and_then(Value::as_object_mut)
                    && !responses.contains_key("default")
                {
                    responses.entry("400").or_insert_with(|| {
                        json!({
                            "description": "a parameter or the body does not follow its schema",
                            "content": {"application/json": {"schema": {"$ref": ERROR_SCHEMA}}},
                        })
                    });
                }
                if let Some(parameters) = operation
                    .get_mut("parameters")
                    .and_then(Value::as_array_mut)
                {
                    parameters.insert(0, namespace.clone());
                } else {
                    operation["parameters"] = json!([namespace.clone()]);
                }
                if let Some(responses) = operation
                    .get_mut("responses")
                    .and_then(Value::as_object_mut)
                {
                    for response in responses.values_mut() {
                        let Some(links) = response.get_mut("links").and_then(Value::as_object_mut)
                        else {
                            continue;
                        };
                        for link in links.values_mut() {
                            let to = link["operationId"].as_str().unwrap_or_default();
                            link["operationId"] = json!(format!("{to}_in_namespace"));
                            link["parameters"]["namespace"] = json!("$request.path.namespace");
                        }
                    }
                }
            }
            Some((format!("/v1/namespaces/{{namespace}}/{rest}"), item))
        })
        .collect();
    paths.extend(scoped);
}
