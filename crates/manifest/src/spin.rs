//! Spin application manifests (`spin.toml`, manifest version 2), read as
//! Stratus apps.
//!
//! A Spin app is already what Stratus runs: components that export
//! `wasi:http/incoming-handler`, routed by path. So a `spin.toml` is turned
//! into the equivalent `stratus.toml` and validated by the same rules, and a
//! Spin user moves an app without rebuilding it. What maps:
//!
//! | `spin.toml` | Stratus |
//! | --- | --- |
//! | `[application] name` | `[app] name` |
//! | `[component.<id>]` named by an HTTP trigger | a `[[function]]` called `<id>` |
//! | `source = "path.wasm"` | `component` |
//! | `[[trigger.http]] route` (with `[application.trigger.http] base`) | `routes` (Spin's `/x/...` is Stratus's) |
//! | `route = { private = true }` | a function without routes (`.svc` calls and `invoke` only) |
//! | `build = { command, workdir }` | `build` |
//! | `environment` | `env` |
//! | `allowed_outbound_hosts` (http and https) | `allowed_outbound` |
//! | `key_value_stores` | `keyvalue` |
//! | `variables` with a default | `config` values, templates expanded |
//! | `variables` without a default (`required = true`) | `secrets`, set with `stratus secrets set` |
//!
//! Anything whose meaning Stratus cannot keep (files, non-HTTP triggers,
//! SQLite databases, AI models, outbound databases, components fetched from
//! a URL or registry, WAGI) is refused by name with what to do instead,
//! never dropped in silence: an app that deploys behaves as its manifest
//! says.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use toml::{Spanned, Value};

use crate::error::{Location, ManifestError};
use crate::lines::LineIndex;
use crate::model::{Manifest, SpinRoute};
use crate::outbound::OutboundRule;
use crate::route::Route;
use crate::validate::{valid_bucket_name, valid_config_key, valid_name};

/// The file name `Manifest::load` falls back to in a directory without a
/// `stratus.toml`.
pub const SPIN_MANIFEST_FILE: &str = "spin.toml";

/// Whether `text` is a Spin manifest: it sets `spin_manifest_version`
/// (a `stratus.toml` never has that key).
pub(crate) fn is_spin_manifest(text: &str) -> bool {
    text.lines().any(|line| {
        line.trim_start()
            .strip_prefix("spin_manifest_version")
            .is_some_and(|rest| rest.trim_start().starts_with('='))
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
struct SpinManifest {
    spin_manifest_version: Spanned<Value>,
    application: Option<Spanned<Application>>,
    #[serde(default)]
    variables: BTreeMap<String, Spanned<Variable>>,
    #[serde(default)]
    trigger: BTreeMap<String, Spanned<Vec<Spanned<Trigger>>>>,
    #[serde(default)]
    component: BTreeMap<String, Spanned<Component>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Application {
    name: Spanned<String>,
    #[allow(dead_code)] // read so that it is accepted
    version: Option<String>,
    #[allow(dead_code)]
    description: Option<String>,
    #[allow(dead_code)]
    authors: Option<Vec<String>>,
    #[serde(default)]
    trigger: BTreeMap<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Variable {
    default: Option<String>,
    #[serde(default)]
    required: bool,
    #[allow(dead_code)] // a secret is kept as any other variable here
    #[serde(default)]
    secret: bool,
    #[allow(dead_code)]
    description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Component {
    source: Spanned<Value>,
    #[allow(dead_code)]
    description: Option<String>,
    #[serde(default)]
    variables: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    files: Option<Spanned<Vec<Value>>>,
    #[allow(dead_code)] // only means something with `files`
    exclude_files: Option<Vec<String>>,
    allowed_http_hosts: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    allowed_outbound_hosts: Vec<Spanned<String>>,
    #[serde(default)]
    key_value_stores: Vec<Spanned<String>>,
    sqlite_databases: Option<Spanned<Vec<String>>>,
    ai_models: Option<Spanned<Vec<String>>>,
    build: Option<Spanned<Build>>,
    #[allow(dead_code)] // for tools such as `spin test`, not for running
    tool: Option<Value>,
    dependencies_inherit_configuration: Option<bool>,
    dependencies: Option<Spanned<Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Build {
    command: Commands,
    workdir: Option<String>,
    #[allow(dead_code)] // `spin watch`'s; Stratus has no watch mode yet
    watch: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Commands {
    One(String),
    Many(Vec<String>),
}

/// One `[[trigger.<kind>]]`: read loosely, since every kind has keys of
/// its own; only HTTP triggers are served, and those keys are checked.
#[derive(Debug, Deserialize)]
struct Trigger {
    component: Option<Spanned<Value>>,
    route: Option<Spanned<Value>>,
    executor: Option<Spanned<Value>>,
}

/// Reads a Spin manifest as a Stratus app. Errors point into the
/// `spin.toml` itself.
pub(crate) fn parse(text: &str, file: &str) -> Result<Manifest, ManifestError> {
    let src = SpinSource {
        file,
        lines: LineIndex::new(text),
    };
    let spin: SpinManifest = toml::from_str(text).map_err(|e| ManifestError::Toml {
        location: src.location(e.span().unwrap_or(0..0)),
        message: format!("{} (reading it as a Spin manifest)", e.message().trim_end()),
    })?;
    let version = &spin.spin_manifest_version;
    if version.get_ref().as_integer() != Some(2) && version.get_ref().as_str() != Some("2") {
        return Err(src.invalid(
            version.span(),
            "spin_manifest_version",
            "Stratus reads Spin manifests of version 2 (Spin 2 and later); run `spin doctor` to upgrade a version 1 manifest".into(),
        ));
    }
    let Some(application) = &spin.application else {
        return Err(src.invalid(
            0..0,
            "application",
            "the Spin manifest has no [application] table naming the app".into(),
        ));
    };
    let app = application.get_ref();
    if !valid_name(app.name.get_ref()) {
        return Err(src.invalid(
            app.name.span(),
            "name",
            format!(
                "the application name {:?} is not a Stratus app name: {}; rename it in spin.toml",
                app.name.get_ref(),
                crate::validate::NAME_RULE
            ),
        ));
    }
    let base = http_base(&src, app, application.span())?;

    // Routes per component, in the order the triggers name them.
    let mut routes: Vec<(String, Vec<SpinRoute>)> = Vec::new();
    for (kind, triggers) in &spin.trigger {
        if kind != "http" {
            return Err(src.invalid(
                triggers.span(),
                "trigger",
                format!(
                    "[[trigger.{kind}]]: Stratus runs the HTTP triggers of a Spin app; a {kind} trigger's components export another interface than wasi:http/incoming-handler. Drop it here and give an HTTP function a Stratus trigger instead (queue, cron, NATS, JetStream or MQTT in stratus.toml)"
                ),
            ));
        }
        for trigger in triggers.get_ref() {
            let (component, route) = http_trigger(&src, trigger, &base)?;
            match routes.iter_mut().find(|(id, _)| *id == component) {
                Some((_, list)) => list.extend(route),
                None => routes.push((component, route.into_iter().collect())),
            }
        }
    }
    if routes.is_empty() {
        return Err(src.invalid(
            0..0,
            "trigger",
            "the Spin manifest has no [[trigger.http]]: nothing would answer; add one with a `route` and a `component`".into(),
        ));
    }

    let mut functions = Vec::new();
    for (id, function_routes) in &routes {
        let Some(component) = spin.component.get(id) else {
            return Err(src.invalid(
                0..0,
                "component",
                format!("a [[trigger.http]] names the component {id:?}, which has no [component.{id}] table"),
            ));
        };
        functions.push(function(
            &src,
            id,
            component,
            &spin.variables,
            function_routes,
        )?);
    }

    let generated = toml::to_string(&Generated {
        app: GeneratedApp {
            name: app.name.get_ref().clone(),
        },
        function: functions,
    })
    .map_err(|e| src.invalid(0..0, "application", format!("cannot convert it: {e}")))?;
    let mut manifest = crate::validate::parse(&generated, file).map_err(|e| {
        // The rules that reach here (limits of env values, route clashes,
        // names reserved by Stratus) are about the Spin manifest's values;
        // the generated text is not the user's, so its place is not shown.
        let message = match &e {
            ManifestError::Toml { message, .. } | ManifestError::Invalid { message, .. } => {
                message.clone()
            }
            other => other.to_string(),
        };
        ManifestError::Invalid {
            location: Location {
                file: file.to_owned(),
                line: 1,
                column: 1,
            },
            key: "component".into(),
            message: format!("as a Stratus app: {message}"),
        }
    })?;
    for function in &mut manifest.functions {
        if let Some((_, spin_routes)) = routes.iter().find(|(id, _)| *id == function.name) {
            function.spin = Some(crate::model::SpinSpec {
                base: base.clone(),
                routes: spin_routes.clone(),
            });
        }
    }
    Ok(manifest)
}

/// `[application.trigger.http] base`: a path every route is under.
fn http_base(
    src: &SpinSource,
    app: &Application,
    span: Range<usize>,
) -> Result<String, ManifestError> {
    let Some(http) = app.trigger.get("http") else {
        return Ok("/".into());
    };
    match http.get("base").map(Value::as_str) {
        None => Ok("/".into()),
        Some(Some(base)) if base.starts_with('/') => Ok(base.to_owned()),
        Some(_) => Err(src.invalid(
            span,
            "base",
            "[application.trigger.http] base must be a path starting with '/'".into(),
        )),
    }
}

/// One `[[trigger.http]]`: the component it names and its route (none
/// for a private one).
fn http_trigger(
    src: &SpinSource,
    trigger: &Spanned<Trigger>,
    base: &str,
) -> Result<(String, Option<SpinRoute>), ManifestError> {
    let span = trigger.span();
    let http = trigger.get_ref();
    if let Some(executor) = &http.executor {
        let kind = executor.get_ref().get("type").and_then(Value::as_str);
        if kind != Some("spin") {
            return Err(src.invalid(
                executor.span(),
                "executor",
                "[[trigger.http]]: only the default executor (`spin`, wasi:http) is served; WAGI components read CGI environment variables, which Stratus does not set: rebuild the component as a wasi:http handler".into(),
            ));
        }
    }
    let component = match http.component.as_ref().map(|c| (c.get_ref(), c.span())) {
        Some((Value::String(id), _)) => id.clone(),
        Some((_, span)) => {
            return Err(src.invalid(
                span,
                "component",
                "[[trigger.http]]: name the component by its id (component = \"hello\") and define it under [component.hello]; inline component tables are not read".into(),
            ));
        }
        None => {
            return Err(src.invalid(
                span,
                "component",
                "[[trigger.http]] has no `component`".into(),
            ));
        }
    };
    let Some(route_value) = &http.route else {
        return Err(src.invalid(
            span,
            "route",
            "[[trigger.http]] has no `route`; add one, e.g. route = \"/hello/...\"".into(),
        ));
    };
    let route = match route_value.get_ref() {
        Value::String(route) => route.clone(),
        Value::Table(t) if t.get("private").and_then(Value::as_bool) == Some(true) => {
            return Ok((component, None));
        }
        _ => {
            return Err(src.invalid(
                route_value.span(),
                "route",
                "[[trigger.http]] route must be a path (\"/hello\", \"/hello/...\") or { private = true }".into(),
            ));
        }
    };
    if route.split('/').any(|segment| segment.starts_with(':')) {
        return Err(src.invalid(
            route_value.span(),
            "route",
            format!(
                "route {route:?}: Stratus routes have no named parameters (\":name\"); use a prefix route such as \"/users/...\" and read the rest of the path in the component"
            ),
        ));
    }
    let full = join_base(base, &route);
    Route::parse(&route)
        .and_then(|_| Route::parse(&full))
        .map_err(|e| {
            src.invalid(
                route_value.span(),
                "route",
                format!("[[trigger.http]]: {e}"),
            )
        })?;
    Ok((
        component,
        Some(SpinRoute {
            route: full,
            raw: route,
        }),
    ))
}

/// A route under the app's base path, as Spin joins them.
fn join_base(base: &str, route: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.is_empty() {
        route.to_owned()
    } else if route == "/" {
        base.to_owned()
    } else {
        format!("{base}{route}")
    }
}

/// One component named by an HTTP trigger, as a `[[function]]`.
fn function(
    src: &SpinSource,
    id: &str,
    component: &Spanned<Component>,
    app_variables: &BTreeMap<String, Spanned<Variable>>,
    routes: &[SpinRoute],
) -> Result<GeneratedFunction, ManifestError> {
    let c = component.get_ref();
    let p = format!("[component.{id}]");
    if !valid_name(id) || crate::validate::RESERVED_FUNCTION_NAMES.contains(&id) {
        return Err(src.invalid(
            component.span(),
            "component",
            format!(
                "{p}: the id {id:?} is not a Stratus function name: {}, and not \"queue\"; rename the component",
                crate::validate::NAME_RULE
            ),
        ));
    }
    let refuse = |span: Range<usize>, key: &str, why: &str| {
        Err(src.invalid(span, key, format!("{p} {key}: {why}")))
    };
    if let Some(files) = c.files.as_ref().filter(|f| !f.get_ref().is_empty()) {
        return refuse(
            files.span(),
            "files",
            "Stratus functions have no file system: embed the files in the component (e.g. include_bytes!) or keep them in a key-value bucket",
        );
    }
    if let Some(dbs) = c
        .sqlite_databases
        .as_ref()
        .filter(|d| !d.get_ref().is_empty())
    {
        return refuse(
            dbs.span(),
            "sqlite_databases",
            "Stratus offers no SQLite interface to functions; use a key-value bucket (key_value_stores) or an outbound HTTP database API",
        );
    }
    if let Some(models) = c.ai_models.as_ref().filter(|m| !m.get_ref().is_empty()) {
        return refuse(
            models.span(),
            "ai_models",
            "Stratus offers no LLM interface to functions; call an inference API over outbound HTTP",
        );
    }
    if let Some(deps) = &c.dependencies {
        return refuse(
            deps.span(),
            "dependencies",
            "Stratus does not compose components at deploy; compose them before (`wac plug`) and deploy the result",
        );
    }
    if c.dependencies_inherit_configuration == Some(true) {
        return refuse(
            component.span(),
            "dependencies_inherit_configuration",
            "Stratus does not compose components at deploy",
        );
    }
    if let Some(hosts) = c
        .allowed_http_hosts
        .as_ref()
        .filter(|h| !h.get_ref().is_empty())
    {
        return refuse(
            hosts.span(),
            "allowed_http_hosts",
            "this Spin 1 key is not read; write allowed_outbound_hosts = [\"https://api.example.com\"]",
        );
    }
    let source = match c.source.get_ref() {
        Value::String(path) => path.clone(),
        _ => {
            return refuse(
                c.source.span(),
                "source",
                "Stratus deploys the component files you have: download it (check its digest) and set source = \"path/to/it.wasm\"",
            );
        }
    };

    let mut allowed_outbound = Vec::new();
    for host in &c.allowed_outbound_hosts {
        let pattern = host.get_ref();
        // Spin's name for the app's own components; Stratus reaches them
        // as `http://<function>.svc/`, always allowed.
        if pattern.starts_with("http://self") || pattern.starts_with("https://self") {
            continue;
        }
        OutboundRule::parse(pattern).map_err(|why| {
            src.invalid(
                host.span(),
                "allowed_outbound_hosts",
                format!(
                    "{p} allowed_outbound_hosts {pattern:?}: {why}; Stratus functions make outbound HTTP requests only (no Redis, MySQL, PostgreSQL or MQTT connections)"
                ),
            )
        })?;
        allowed_outbound.push(pattern.clone());
    }

    let mut keyvalue = Vec::new();
    for store in &c.key_value_stores {
        if !valid_bucket_name(store.get_ref()) {
            return refuse(
                store.span(),
                "key_value_stores",
                &format!("{:?} is not a bucket name Stratus accepts", store.get_ref()),
            );
        }
        keyvalue.push(store.get_ref().clone());
    }

    let mut config = BTreeMap::new();
    let mut secrets = Vec::new();
    for (key, template) in &c.variables {
        if !valid_config_key(key) {
            return refuse(
                template.span(),
                "variables",
                &format!("{key:?}: {}", crate::validate::CONFIG_KEY_RULE),
            );
        }
        match variable(template.get_ref(), app_variables) {
            Ok(Resolved::Value(value)) => {
                config.insert(key.clone(), value);
            }
            Ok(Resolved::Secret(name)) if name == *key => secrets.push(name),
            Ok(Resolved::Secret(name)) => {
                return refuse(
                    template.span(),
                    "variables",
                    &format!(
                        "{key} reads the variable {name:?}, which has no default: Stratus keeps such a value as a secret of the app, read under its own name; name the component variable after it ({name} = \"{{{{ {name} }}}}\")"
                    ),
                );
            }
            Err(why) => return refuse(template.span(), "variables", &format!("{key}: {why}")),
        }
    }

    let build = c.build.as_ref().map(|b| {
        let b = b.get_ref();
        let command = match &b.command {
            Commands::One(one) => one.clone(),
            Commands::Many(many) => many.join(" && "),
        };
        match &b.workdir {
            Some(dir) => format!("cd {} && {command}", shell_quote(dir)),
            None => command,
        }
    });

    Ok(GeneratedFunction {
        name: id.to_owned(),
        component: source,
        build,
        routes: routes.iter().map(|r| r.route.clone()).collect(),
        env: c.environment.clone(),
        allowed_outbound,
        keyvalue,
        config,
        secrets,
    })
}

/// What a component variable's template comes to.
enum Resolved {
    /// Every variable it names has a value in the manifest.
    Value(String),
    /// It is exactly one variable without a default: a secret of the app.
    Secret(String),
}

/// Expands `{{ name }}` references to the app's variables.
fn variable(
    template: &str,
    app_variables: &BTreeMap<String, Spanned<Variable>>,
) -> Result<Resolved, String> {
    let mut out = String::new();
    let mut rest = template;
    let mut without_default = Vec::new();
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(format!("{template:?} opens a `{{{{` it does not close"));
        };
        let name = after[..end].trim();
        let Some(declared) = app_variables.get(name) else {
            return Err(format!(
                "{template:?} names the variable {name:?}, which [variables] does not declare"
            ));
        };
        let declared = declared.get_ref();
        match (&declared.default, declared.required) {
            (Some(value), false) => out.push_str(value),
            (None, true) => without_default.push(name.to_owned()),
            _ => {
                return Err(format!(
                    "the variable {name:?} must have either a default or required = true"
                ));
            }
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    match without_default.as_slice() {
        [] => Ok(Resolved::Value(out)),
        [one]
            if template.trim().starts_with("{{")
                && template.trim().ends_with("}}")
                && out.trim().is_empty() =>
        {
            Ok(Resolved::Secret(one.clone()))
        }
        _ => Err(format!(
            "{template:?} mixes text or other variables with a variable without a default ({}); Stratus reads such a variable whole, as a secret of the app: give it a component variable of its own",
            without_default.join(", ")
        )),
    }
}

/// `dir` quoted for `sh -c`.
fn shell_quote(dir: &str) -> String {
    format!("'{}'", dir.replace('\'', r"'\''"))
}

/// The `stratus.toml` a Spin manifest comes to.
#[derive(serde::Serialize)]
struct Generated {
    app: GeneratedApp,
    function: Vec<GeneratedFunction>,
}

#[derive(serde::Serialize)]
struct GeneratedApp {
    name: String,
}

#[derive(serde::Serialize)]
struct GeneratedFunction {
    name: String,
    component: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    build: Option<String>,
    routes: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    env: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    allowed_outbound: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    keyvalue: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    config: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    secrets: Vec<String>,
}

struct SpinSource<'a> {
    file: &'a str,
    lines: LineIndex<'a>,
}

impl SpinSource<'_> {
    fn location(&self, span: Range<usize>) -> Location {
        self.lines.location(self.file, span.start)
    }

    fn invalid(&self, span: Range<usize>, key: &str, message: String) -> ManifestError {
        ManifestError::Invalid {
            location: self.location(span),
            key: key.to_owned(),
            message,
        }
    }
}
