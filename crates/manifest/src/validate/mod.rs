//! From the manifest as written ([`crate::raw`]) to the validated model, in
//! one place: every type check, range check, default and uniqueness rule.
//!
//! Checks stop at the first problem: functions are checked in file order,
//! the keys of each in a fixed order (its name first, so later messages can
//! name the function).

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use toml::{Spanned, Value};

use crate::error::{Location, ManifestError};
use crate::lines::LineIndex;
use crate::model::{
    AppSpec, DEFAULT_MAX_BODY, DEFAULT_MAX_CONCURRENCY, DEFAULT_MAX_OUTBOUND_BYTES,
    DEFAULT_MAX_OUTBOUND_REQUESTS, DEFAULT_MEMORY, DEFAULT_OUTBOUND_TIMEOUT, DEFAULT_TIMEOUT,
    FunctionSpec, MAX_MANIFEST_SIZE, MAX_MAX_BODY, MAX_MAX_CONCURRENCY, MAX_MAX_OUTBOUND_BYTES,
    MAX_MAX_OUTBOUND_REQUESTS, MAX_MEMORY, MAX_REUSE, MAX_ROUTES_PER_APP, MIN_MEMORY, Manifest,
};
use crate::raw::{RawFunction, RawManifest};
use crate::route::Route;
use crate::units::ByteSize;

mod capabilities;
pub use capabilities::{CONFIG_KEY_RULE, valid_bucket_name, valid_config_key};
mod triggers;
pub use triggers::valid_queue_name;
mod values;

/// Accepted app and function names, appended to every name error.
pub const NAME_RULE: &str =
    "names are 1-63 characters of lowercase ASCII letters, digits and '-', starting with a letter";

/// Function names that would shadow a node service at
/// `http://<name>.svc/` (`queue.svc` publishes to queues).
pub const RESERVED_FUNCTION_NAMES: &[&str] = &["queue"];

/// An app or function name the node accepts ([`NAME_RULE`]); the manifest
/// check says which part of a bad one is wrong.
pub fn valid_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The manifest text, the name it is reported under and where its lines
/// start.
struct Source<'a> {
    file: &'a str,
    text: &'a str,
    lines: LineIndex<'a>,
}

/// How much a manifest may hold: what a node accepts by default, or more
/// for tests that measure how validation scales.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Bytes of manifest text.
    pub max_size: ByteSize,
    /// Routes over all functions of the app.
    pub max_routes: usize,
}

impl Limits {
    pub(crate) const DEFAULT: Limits = Limits {
        max_size: MAX_MANIFEST_SIZE,
        max_routes: MAX_ROUTES_PER_APP,
    };
}

pub(crate) fn parse(text: &str, file: &str) -> Result<Manifest, ManifestError> {
    parse_within(text, file, Limits::DEFAULT)
}

pub(crate) fn parse_within(
    text: &str,
    file: &str,
    limits: Limits,
) -> Result<Manifest, ManifestError> {
    let size = text.len() as u64;
    if size > limits.max_size.bytes() {
        return Err(ManifestError::TooLarge {
            file: file.to_owned(),
            size,
            limit: limits.max_size,
        });
    }
    let src = Source {
        file,
        text,
        lines: LineIndex::new(text),
    };
    let raw: RawManifest = toml::from_str(text).map_err(|e| src.toml_error(&e))?;

    let Some(app) = raw.app else {
        return Err(src.invalid(
            0..0,
            "app",
            "the manifest has no [app] table; add one naming the app, e.g. [app] name = \"shop\""
                .into(),
        ));
    };
    let app_span = app.span();
    let name = match &app.get_ref().name {
        Some(name) => src.name(name, "app ")?,
        None => {
            return Err(src.invalid(
                app_span,
                "name",
                "[app] has no `name`; add one, e.g. name = \"shop\"".into(),
            ));
        }
    };

    let (functions_span, raw_functions) = match raw.function {
        Some(functions) => (functions.span(), functions.into_inner().0),
        None => (app_span, Vec::new()),
    };
    if raw_functions.is_empty() {
        return Err(src.invalid(
            functions_span,
            "function",
            format!(
                "app \"{name}\" has no functions; add a [[function]] table with a `name` and a `component`"
            ),
        ));
    }

    let mut functions = Vec::with_capacity(raw_functions.len());
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut routes: HashMap<Route, (String, usize)> = HashMap::new();
    for (index, raw_function) in raw_functions.into_iter().enumerate() {
        let checked = src.function(index, raw_function)?;
        let function = checked.spec;
        // Only lines are kept for what passes; a full location (its column
        // counted in characters) is worked out for the one error reported.
        if let Some(&first_line) = names.get(&function.name) {
            return Err(ManifestError::DuplicateFunction {
                location: src.location(checked.name_span),
                name: function.name,
                first_line,
            });
        }
        names.insert(function.name.clone(), src.line(&checked.name_span));
        for (route, span) in function.routes.iter().zip(checked.route_spans) {
            if routes.len() == limits.max_routes {
                return Err(src.invalid(
                    span,
                    "routes",
                    format!(
                        "function \"{}\": this route makes app \"{name}\" exceed {} routes, the most an app may have (counting the `routes` of all its functions); serve many paths with one prefix route such as \"/api/...\"",
                        function.name, limits.max_routes
                    ),
                ));
            }
            if let Some((other, first_line)) = routes.get(route) {
                return Err(ManifestError::DuplicateRoute {
                    location: src.location(span),
                    route: route.to_string(),
                    function: function.name.clone(),
                    other_function: other.clone(),
                    first_line: *first_line,
                });
            }
            routes.insert(route.clone(), (function.name.clone(), src.line(&span)));
        }
        functions.push(function);
    }

    Ok(Manifest {
        app: AppSpec { name },
        functions,
    })
}

/// A validated function and the positions the app-wide checks report.
struct CheckedFunction {
    spec: FunctionSpec,
    name_span: Range<usize>,
    route_spans: Vec<Range<usize>>,
}

impl Source<'_> {
    fn location(&self, span: Range<usize>) -> Location {
        self.lines.location(self.file, span.start)
    }

    fn line(&self, span: &Range<usize>) -> usize {
        self.lines.line(span.start)
    }

    /// The value as the user wrote it (`"12XB"` with its quotes, `5`).
    fn written(&self, span: &Range<usize>) -> &str {
        self.text.get(span.clone()).unwrap_or("")
    }

    fn invalid(&self, span: Range<usize>, key: &str, message: String) -> ManifestError {
        ManifestError::Invalid {
            location: self.location(span),
            key: key.to_owned(),
            message,
        }
    }

    fn toml_error(&self, error: &toml::de::Error) -> ManifestError {
        ManifestError::Toml {
            location: self.location(error.span().unwrap_or(0..0)),
            message: crate::suggest::unknown_field(error.message().trim_end()),
        }
    }

    fn function(
        &self,
        index: usize,
        raw: Spanned<RawFunction>,
    ) -> Result<CheckedFunction, ManifestError> {
        let table_span = raw.span();
        let raw = raw.into_inner();
        let Some(raw_name) = &raw.name else {
            return Err(self.invalid(
                table_span,
                "name",
                format!(
                    "[[function]] number {} has no `name`; add one, e.g. name = \"hello\"",
                    index + 1
                ),
            ));
        };
        let name = self.name(raw_name, &format!("[[function]] number {} ", index + 1))?;
        let p = format!("function \"{name}\": ");
        if RESERVED_FUNCTION_NAMES.contains(&name.as_str()) {
            return Err(self.invalid(
                raw_name.span(),
                "name",
                format!(
                    "{p}the name is reserved: other functions reach a function at http://<name>.svc/, and http://{name}.svc/ is the node's own {name} service; choose another name"
                ),
            ));
        }

        let component = match &raw.component {
            Some(value) => self.string(value, &p, "component")?,
            None => {
                return Err(self.invalid(
                    table_span,
                    "component",
                    format!(
                        "{p}no `component`; add the path of its .wasm file, e.g. component = \"target/wasm32-wasip2/release/{}.wasm\"",
                        name.replace('-', "_")
                    ),
                ));
            }
        };
        if component.trim().is_empty() {
            let span = raw
                .component
                .as_ref()
                .map(Spanned::span)
                .unwrap_or(table_span);
            return Err(self.invalid(
                span,
                "component",
                format!("{p}component is empty; give the path of its .wasm file"),
            ));
        }

        let build = match &raw.build {
            None => None,
            Some(value) => {
                let command = self.string(value, &p, "build")?;
                if command.trim().is_empty() {
                    return Err(self.invalid(
                        value.span(),
                        "build",
                        format!("{p}build is empty; remove it or give the command that builds the component"),
                    ));
                }
                Some(command.to_owned())
            }
        };

        let mut routes = Vec::new();
        let mut route_spans = Vec::new();
        for value in raw.routes.iter().flat_map(|list| &list.get_ref().0) {
            let text = self.string(value, &p, "routes")?;
            let route = Route::parse(text)
                .map_err(|e| self.invalid(value.span(), "routes", format!("{p}{e}")))?;
            routes.push(route);
            route_spans.push(value.span());
        }

        let memory = match &raw.memory {
            None => DEFAULT_MEMORY,
            Some(value) => self.size(value, &p, "memory", MIN_MEMORY, MAX_MEMORY)?,
        };
        let timeout = match &raw.timeout {
            None => DEFAULT_TIMEOUT,
            Some(value) => self.timeout(value, &p)?,
        };
        let max_body = match &raw.max_body {
            None => DEFAULT_MAX_BODY,
            Some(value) => self.size(value, &p, "max_body", ByteSize(0), MAX_MAX_BODY)?,
        };
        let max_concurrency = match &raw.max_concurrency {
            None => DEFAULT_MAX_CONCURRENCY,
            Some(value) => self.integer(value, &p, "max_concurrency", 1, MAX_MAX_CONCURRENCY)?,
        };
        let min_warm = match &raw.min_warm {
            None => false,
            Some(value) => match value.get_ref() {
                Value::Boolean(b) => *b,
                _ => return Err(self.wrong_type(value, &p, "min_warm", "true or false")),
            },
        };
        let reuse = match &raw.reuse {
            None => 1,
            Some(value) => self.integer(value, &p, "reuse", 1, MAX_REUSE)?,
        };
        let env = match &raw.env {
            None => BTreeMap::new(),
            Some(env) => self.env(env, &p)?,
        };
        let triggers = match &raw.triggers {
            None => Vec::new(),
            Some(value) => self.triggers(value, &p)?,
        };
        let allowed_outbound = match &raw.allowed_outbound {
            None => Vec::new(),
            Some(value) => self.allowed_outbound(value, &p)?,
        };
        let keyvalue = match &raw.keyvalue {
            None => Vec::new(),
            Some(value) => self.keyvalue(value, &p)?,
        };
        let config = match &raw.config {
            None => BTreeMap::new(),
            Some(value) => self.config(value, &p)?,
        };
        let secrets = match &raw.secrets {
            None => Vec::new(),
            Some(value) => self.secrets(value, &p)?,
        };
        let max_outbound_requests = match &raw.max_outbound_requests {
            None => DEFAULT_MAX_OUTBOUND_REQUESTS,
            Some(value) => self.integer(
                value,
                &p,
                "max_outbound_requests",
                0,
                MAX_MAX_OUTBOUND_REQUESTS,
            )?,
        };
        let max_outbound_bytes = match &raw.max_outbound_bytes {
            None => DEFAULT_MAX_OUTBOUND_BYTES,
            Some(value) => self.size(
                value,
                &p,
                "max_outbound_bytes",
                ByteSize(0),
                MAX_MAX_OUTBOUND_BYTES,
            )?,
        };
        let outbound_timeout = match &raw.outbound_timeout {
            None => DEFAULT_OUTBOUND_TIMEOUT,
            Some(value) => self.duration(value, &p, "outbound_timeout")?,
        };
        if let (Some(value), Some(name)) = (
            &raw.secrets,
            secrets.iter().find(|name| config.contains_key(*name)),
        ) {
            return Err(self.invalid(
                value.span(),
                "secrets",
                format!(
                    "{p}{name:?} is both a config key and a secret; a function reads both through wasi:config, so one name cannot be both"
                ),
            ));
        }

        Ok(CheckedFunction {
            name_span: raw_name.span(),
            route_spans,
            spec: FunctionSpec {
                name,
                component: component.to_owned(),
                build,
                routes,
                memory,
                timeout,
                max_body,
                max_concurrency,
                min_warm,
                reuse,
                env,
                triggers,
                allowed_outbound,
                keyvalue,
                config,
                secrets,
                max_outbound_requests,
                max_outbound_bytes,
                outbound_timeout,
                spin: None,
            },
        })
    }
}
