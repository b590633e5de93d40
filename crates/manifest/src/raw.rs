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
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
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

/// One `[[function]]` table. The field order is the order the "unknown
/// field" error lists the keys in, so related keys stay together.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[function]] table")]
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
}

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
