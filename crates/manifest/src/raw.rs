//! The manifest as written: what serde reads from the TOML, before any value
//! is checked.
//!
//! Every value is kept as a `Spanned<toml::Value>` so that validation can
//! (a) report its own messages about wrong types, naming the key and the
//! function, and (b) point at the exact line and column. Only the shape of
//! the document (which keys exist, tables versus arrays) is enforced here,
//! and the errors for that come from toml with their spans.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use toml::{Spanned, Value};

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a manifest with an [app] table and [[function]] tables"
)]
pub(crate) struct RawManifest {
    pub app: Option<Spanned<RawApp>>,
    pub function: Option<Spanned<RawFunctions>>,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "the [app] table, e.g. [app] name = \"shop\""
)]
pub(crate) struct RawApp {
    pub name: Option<Spanned<Value>>,
}

/// The `[[function]]` array of tables.
#[derive(Debug)]
pub(crate) struct RawFunctions(pub Vec<Spanned<RawFunction>>);

/// One `[[function]]` table.
#[derive(Debug, Default)]
pub(crate) struct RawFunction {
    pub name: Option<Spanned<Value>>,
    pub component: Option<Spanned<Value>>,
    pub build: Option<Spanned<Value>>,
    pub routes: Option<Spanned<RawList>>,
    pub memory: Option<Spanned<Value>>,
    pub timeout: Option<Spanned<Value>>,
    pub max_body: Option<Spanned<Value>>,
    pub max_concurrency: Option<Spanned<Value>>,
    pub min_warm: Option<Spanned<Value>>,
    pub reuse: Option<Spanned<Value>>,
    pub env: Option<Spanned<RawEnv>>,
    pub triggers: Option<Spanned<Value>>,
    pub allowed_outbound: Option<Spanned<Value>>,
    pub keyvalue: Option<Spanned<Value>>,
    pub config: Option<Spanned<Value>>,
    pub secrets: Option<Spanned<Value>>,
    pub max_outbound_requests: Option<Spanned<Value>>,
    pub max_outbound_bytes: Option<Spanned<Value>>,
    pub outbound_timeout: Option<Spanned<Value>>,
    /// Recognised keys that this version does not implement, with the span
    /// of each key.
    pub unsupported: Vec<Spanned<&'static str>>,
}

/// The keys of a `[[function]]` table that this version supports, in the
/// order they are listed in "unknown key" errors.
pub(crate) const FUNCTION_KEYS: &[&str] = &[
    "name",
    "component",
    "build",
    "routes",
    "memory",
    "timeout",
    "max_body",
    "max_concurrency",
    "min_warm",
    "reuse",
    "env",
    "triggers",
    "allowed_outbound",
    "keyvalue",
    "config",
    "secrets",
    "max_outbound_requests",
    "max_outbound_bytes",
    "outbound_timeout",
];

/// Keys of the product contract that later versions implement. They are
/// refused with their own message rather than as unknown, so a user with a
/// newer manifest learns to upgrade rather than to fix a typo.
pub(crate) const UNSUPPORTED_FUNCTION_KEYS: &[&str] = &[];

/// A list whose elements keep their spans (`routes`).
#[derive(Debug)]
pub(crate) struct RawList(pub Vec<Spanned<Value>>);

/// An `env` table whose keys and values keep their spans.
#[derive(Debug)]
pub(crate) struct RawEnv(pub Vec<(Spanned<String>, Spanned<Value>)>);

impl<'de> Deserialize<'de> for RawFunctions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawFunctions;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("[[function]] tables (an array of tables: two brackets)")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawFunctions, A::Error> {
                let mut functions = Vec::new();
                while let Some(function) = seq.next_element()? {
                    functions.push(function);
                }
                Ok(RawFunctions(functions))
            }
        }
        d.deserialize_seq(V)
    }
}

/// A key of a `[[function]]` table, told apart from unknown keys while
/// deserializing so the "unknown field" error lists only supported keys.
enum FunctionKey {
    Name,
    Component,
    Build,
    Routes,
    Memory,
    Timeout,
    MaxBody,
    MaxConcurrency,
    MinWarm,
    Reuse,
    Env,
    Triggers,
    AllowedOutbound,
    KeyValue,
    Config,
    Secrets,
    MaxOutboundRequests,
    MaxOutboundBytes,
    OutboundTimeout,
    Unsupported(&'static str),
}

impl FunctionKey {
    fn from_name(key: &str) -> Option<FunctionKey> {
        Some(match key {
            "name" => FunctionKey::Name,
            "component" => FunctionKey::Component,
            "build" => FunctionKey::Build,
            "routes" => FunctionKey::Routes,
            "memory" => FunctionKey::Memory,
            "timeout" => FunctionKey::Timeout,
            "max_body" => FunctionKey::MaxBody,
            "max_concurrency" => FunctionKey::MaxConcurrency,
            "min_warm" => FunctionKey::MinWarm,
            "reuse" => FunctionKey::Reuse,
            "env" => FunctionKey::Env,
            "triggers" => FunctionKey::Triggers,
            "allowed_outbound" => FunctionKey::AllowedOutbound,
            "keyvalue" => FunctionKey::KeyValue,
            "config" => FunctionKey::Config,
            "secrets" => FunctionKey::Secrets,
            "max_outbound_requests" => FunctionKey::MaxOutboundRequests,
            "max_outbound_bytes" => FunctionKey::MaxOutboundBytes,
            "outbound_timeout" => FunctionKey::OutboundTimeout,
            _ => {
                let later = UNSUPPORTED_FUNCTION_KEYS.iter().find(|k| **k == key)?;
                FunctionKey::Unsupported(later)
            }
        })
    }
}

impl<'de> Deserialize<'de> for FunctionKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = FunctionKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a [[function]] key")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<FunctionKey, E> {
                FunctionKey::from_name(key)
                    .ok_or_else(|| de::Error::unknown_field(key, FUNCTION_KEYS))
            }
        }
        d.deserialize_identifier(V)
    }
}

impl<'de> Deserialize<'de> for RawFunction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawFunction;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a [[function]] table")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawFunction, A::Error> {
                let mut f = RawFunction::default();
                while let Some(key) = map.next_key::<Spanned<FunctionKey>>()? {
                    let span = key.span();
                    match key.into_inner() {
                        FunctionKey::Name => f.name = Some(map.next_value()?),
                        FunctionKey::Component => f.component = Some(map.next_value()?),
                        FunctionKey::Build => f.build = Some(map.next_value()?),
                        FunctionKey::Routes => f.routes = Some(map.next_value()?),
                        FunctionKey::Memory => f.memory = Some(map.next_value()?),
                        FunctionKey::Timeout => f.timeout = Some(map.next_value()?),
                        FunctionKey::MaxBody => f.max_body = Some(map.next_value()?),
                        FunctionKey::MaxConcurrency => f.max_concurrency = Some(map.next_value()?),
                        FunctionKey::MinWarm => f.min_warm = Some(map.next_value()?),
                        FunctionKey::Reuse => f.reuse = Some(map.next_value()?),
                        FunctionKey::Env => f.env = Some(map.next_value()?),
                        FunctionKey::Triggers => f.triggers = Some(map.next_value()?),
                        FunctionKey::AllowedOutbound => {
                            f.allowed_outbound = Some(map.next_value()?)
                        }
                        FunctionKey::KeyValue => f.keyvalue = Some(map.next_value()?),
                        FunctionKey::Config => f.config = Some(map.next_value()?),
                        FunctionKey::Secrets => f.secrets = Some(map.next_value()?),
                        FunctionKey::MaxOutboundRequests => {
                            f.max_outbound_requests = Some(map.next_value()?)
                        }
                        FunctionKey::MaxOutboundBytes => {
                            f.max_outbound_bytes = Some(map.next_value()?)
                        }
                        FunctionKey::OutboundTimeout => {
                            f.outbound_timeout = Some(map.next_value()?)
                        }
                        FunctionKey::Unsupported(name) => {
                            map.next_value::<IgnoredAny>()?;
                            f.unsupported.push(Spanned::new(span, name));
                        }
                    }
                }
                Ok(f)
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for RawList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of routes, e.g. routes = [\"/x\", \"/x/...\"]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawList, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(RawList(items))
            }
        }
        d.deserialize_seq(V)
    }
}

impl<'de> Deserialize<'de> for RawEnv {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawEnv;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table of environment variables, e.g. env = { KEY = \"value\" }")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawEnv, A::Error> {
                let mut vars = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    vars.push(entry);
                }
                Ok(RawEnv(vars))
            }
        }
        d.deserialize_map(V)
    }
}
