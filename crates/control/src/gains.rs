//! What a new version of an app may do that its live version may not: the
//! capability diff every deploy reports, and that a pipeline can refuse
//! (`require_no_new_capabilities`).
//!
//! A reviewer reads a change's source; what the change is then *allowed*
//! to do is spread over a manifest, a component's imports and the node's
//! grants. A gain — a new import, an outbound host, a bucket, a secret, a
//! trigger, a route, a larger limit — is what widens what a compromised or
//! mistaken function can reach, so it is named on every deploy. Losses are
//! not: taking a capability away is never a risk.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use stratus_manifest::FunctionSpec;

/// One function's side of a comparison: what its manifest table grants and
/// what its component imports.
#[derive(Debug, Clone)]
pub struct Capabilities<'a> {
    pub spec: &'a FunctionSpec,
    /// The component's imports, as the component names them.
    pub imports: &'a [String],
}

/// What each function of a new version gains over the live version (for
/// an app's first version, everything it may do).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = CapabilityGains))]
pub struct Gains {
    /// Functions with any gain, by name.
    pub functions: Vec<FunctionGains>,
}

/// What one function gains. Every list holds only what is new.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FunctionGains {
    pub function: String,
    /// The live version has no function of this name: everything it may do
    /// is new.
    pub new_function: bool,
    /// Interfaces its component imports (versions aside).
    pub imports: Vec<String>,
    /// Outbound allow-list entries.
    pub outbound: Vec<String>,
    pub keyvalue: Vec<String>,
    pub secrets: Vec<String>,
    /// Config keys (their values are the manifest's).
    pub config: Vec<String>,
    /// Triggers, as written in the manifest.
    pub triggers: Vec<String>,
    pub routes: Vec<String>,
    /// Limits raised: `name: old -> new`.
    pub limits: Vec<String>,
}

impl Gains {
    pub fn is_empty(&self) -> bool {
        self.functions.is_empty()
    }

    /// One line per gain, for a person: `checkout: outbound https://x.io`.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for f in &self.functions {
            if f.new_function {
                lines.push(format!("{}: a new function", f.function));
            }
            for (what, items) in [
                ("import", &f.imports),
                ("outbound", &f.outbound),
                ("key-value bucket", &f.keyvalue),
                ("secret", &f.secrets),
                ("config key", &f.config),
                ("trigger", &f.triggers),
                ("route", &f.routes),
                ("limit", &f.limits),
            ] {
                for item in items {
                    lines.push(format!("{}: {what} {item}", f.function));
                }
            }
        }
        lines
    }
}

/// What `new` gains over `live` (the live version's functions; empty for
/// an app's first version, whose every capability is a gain).
pub fn gains(live: &[Capabilities<'_>], new: &[Capabilities<'_>]) -> Gains {
    let functions = new
        .iter()
        .filter_map(|n| {
            let old = live.iter().find(|o| o.spec.name == n.spec.name);
            let gained = function_gains(old, n);
            (gained
                != FunctionGains {
                    function: n.spec.name.clone(),
                    ..FunctionGains::default()
                })
            .then_some(gained)
        })
        .collect();
    Gains { functions }
}

fn function_gains(old: Option<&Capabilities<'_>>, new: &Capabilities<'_>) -> FunctionGains {
    let (o, n) = (old.map(|c| c.spec), new.spec);
    let mut limits = Vec::new();
    if let Some(o) = o {
        let ms = |d: std::time::Duration| d.as_millis();
        for (name, before, after, unit) in [
            ("memory", o.memory.0.into(), n.memory.0.into(), " bytes"),
            ("timeout", ms(o.timeout), ms(n.timeout), " ms"),
            (
                "max_body",
                o.max_body.0.into(),
                n.max_body.0.into(),
                " bytes",
            ),
            (
                "max_concurrency",
                o.max_concurrency.into(),
                n.max_concurrency.into(),
                "",
            ),
            (
                "max_outbound_requests",
                o.max_outbound_requests.into(),
                n.max_outbound_requests.into(),
                "",
            ),
            (
                "max_outbound_bytes",
                o.max_outbound_bytes.0.into(),
                n.max_outbound_bytes.0.into(),
                " bytes",
            ),
            (
                "outbound_timeout",
                ms(o.outbound_timeout),
                ms(n.outbound_timeout),
                " ms",
            ),
        ] {
            let (before, after): (u128, u128) = (before, after);
            if after > before {
                limits.push(format!("{name}: {before}{unit} -> {after}{unit}"));
            }
        }
    }
    FunctionGains {
        function: n.name.clone(),
        new_function: o.is_none(),
        imports: added(old.map(|c| interfaces(c.imports)), interfaces(new.imports)),
        outbound: added(
            o.map(|o| strings(&o.allowed_outbound)),
            strings(&n.allowed_outbound),
        ),
        keyvalue: added(o.map(|o| strings(&o.keyvalue)), strings(&n.keyvalue)),
        secrets: added(o.map(|o| strings(&o.secrets)), strings(&n.secrets)),
        config: added(
            o.map(|o| o.config.keys().cloned().collect()),
            n.config.keys().cloned().collect(),
        ),
        triggers: added(o.map(|o| strings(&o.triggers)), strings(&n.triggers)),
        routes: added(o.map(|o| strings(&o.routes)), strings(&n.routes)),
        limits,
    }
}

/// What `after` holds that `before` (none: nothing) does not.
fn added(before: Option<BTreeSet<String>>, after: BTreeSet<String>) -> Vec<String> {
    let before = before.unwrap_or_default();
    after.difference(&before).cloned().collect()
}

fn strings<T: ToString>(items: &[T]) -> BTreeSet<String> {
    items.iter().map(ToString::to_string).collect()
}

/// Imported interfaces without their version (`wasi:http/outgoing-handler`
/// for `wasi:http/outgoing-handler@0.2.3`): a patch release of the same
/// interface is no new capability.
fn interfaces(imports: &[String]) -> BTreeSet<String> {
    imports
        .iter()
        .map(|i| {
            i.split_once('@')
                .map_or(i.as_str(), |(name, _)| name)
                .to_owned()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use stratus_manifest::Manifest;

    fn specs(functions: &str) -> Vec<FunctionSpec> {
        let text = format!("[app]\nname = \"shop\"\n\n{functions}");
        Manifest::parse(&text, "stratus.toml")
            .unwrap_or_else(|e| panic!("{e}"))
            .functions
    }

    fn caps<'a>(specs: &'a [FunctionSpec], imports: &'a [String]) -> Vec<Capabilities<'a>> {
        specs
            .iter()
            .map(|spec| Capabilities { spec, imports })
            .collect()
    }

    const BASE: &str =
        "[[function]]\nname = \"api\"\ncomponent = \"a.wasm\"\nroutes = [\"/api/...\"]\n";

    #[test]
    fn the_same_version_gains_nothing_and_losses_are_no_gain() {
        let old = specs(&format!(
            "{BASE}allowed_outbound = [\"https://a.example.com\"]\nkeyvalue = [\"cart\"]\ntimeout = \"60s\"\n"
        ));
        let imports = vec!["wasi:keyvalue/store@0.2.0-draft".to_owned()];
        assert!(gains(&caps(&old, &imports), &caps(&old, &imports)).is_empty());
        let smaller = specs(BASE);
        assert!(gains(&caps(&old, &imports), &caps(&smaller, &[])).is_empty());
    }

    #[test]
    fn every_kind_of_gain_is_named() {
        let old = specs(BASE);
        let new = specs(&format!(
            "{BASE}allowed_outbound = [\"https://*.example.com\"]\nkeyvalue = [\"cart\"]\n\
             secrets = [\"stripe\"]\nconfig = {{ region = \"eu\" }}\ntriggers = [{{ queue = \"orders\" }}]\n\
             memory = \"256MiB\"\ntimeout = \"60s\"\n\n\
             [[function]]\nname = \"worker\"\ncomponent = \"w.wasm\"\n"
        ));
        let old_imports = vec!["wasi:http/types@0.2.0".to_owned()];
        let new_imports = vec![
            "wasi:http/types@0.2.3".to_owned(),
            "wasi:http/outgoing-handler@0.2.3".to_owned(),
        ];
        let gained = gains(&caps(&old, &old_imports), &caps(&new, &new_imports));
        let api = &gained.functions[0];
        assert_eq!(
            api.imports,
            ["wasi:http/outgoing-handler"],
            "a patch release is no gain"
        );
        assert_eq!(api.outbound, ["https://*.example.com"]);
        assert_eq!(
            (api.keyvalue.len(), api.secrets.len(), api.config.len()),
            (1, 1, 1)
        );
        assert_eq!(api.triggers.len(), 1);
        assert!(api.routes.is_empty());
        assert_eq!(api.limits.len(), 2, "{:?}", api.limits);
        assert!(api.limits[0].starts_with("memory: "), "{:?}", api.limits);
        let worker = &gained.functions[1];
        assert!(worker.new_function);
        assert!(
            gained
                .lines()
                .contains(&"worker: a new function".to_owned())
        );
        assert!(
            gained
                .lines()
                .contains(&"api: outbound https://*.example.com".to_owned())
        );
    }
}
