//! Host capabilities a function must be granted: key-value stores and
//! configuration (with secrets).
//!
//! Each capability is a self-contained module in the manner of Spin's
//! factors: its WIT bindings, the manifest key that grants it, the per-function
//! grant it is configured with, its per-instance state, and the trait its
//! backends implement. Adding one means a module here plus one line in each
//! of [`Grants`], [`CapabilityStates`], [`add_to_linker`] and
//! [`CAPABILITIES`].
//!
//! Grants are checked twice. At deploy, a component that imports a
//! capability its function was not granted is refused, naming the import and
//! the manifest key (see [`check_grants`]). At run time, every call checks
//! the grant's details again (which bucket, which secret), so a component
//! cannot reach what its manifest does not name.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use wasmtime::component::Linker;

use crate::error::ValidationError;
use crate::host::InstanceState;

pub mod config;
pub mod keyvalue;
mod keyvalue_draft2;
pub mod spin;

/// What one function was granted, built from its manifest entry. An empty
/// grant (the default) denies the capability.
#[derive(Clone, Default)]
pub struct Grants {
    pub keyvalue: keyvalue::KeyValueGrant,
    pub config: config::ConfigGrant,
}

impl std::fmt::Debug for Grants {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grants")
            .field("keyvalue", &self.keyvalue)
            .field("config", &self.config)
            .finish()
    }
}

/// What functions did with their capabilities and outbound HTTP, node-wide,
/// for `/metrics`.
#[derive(Debug, Default)]
pub struct CapabilityStats {
    /// Key-value operations on an open bucket (each batch counts once).
    pub keyvalue_operations: AtomicU64,
    /// Of those, the ones the backend failed (Redis down, say).
    pub keyvalue_errors: AtomicU64,
    /// Buckets a function tried to open without a grant.
    pub keyvalue_denied: AtomicU64,
    /// Key-value writes refused because they would take the app past its
    /// quota (bytes or keys); not counted as errors.
    pub keyvalue_over_quota: AtomicU64,
    /// Secrets read by functions through `wasi:config`.
    pub secret_reads: AtomicU64,
    /// Outbound requests functions made (network and `.svc`).
    pub outbound_requests: AtomicU64,
    /// Of those, the ones refused: no `allowed_outbound` pattern allowed
    /// them, or their host resolved to a loopback, private or link-local
    /// address (see `egress.rs`).
    pub outbound_denied: AtomicU64,
    /// Of those, the ones refused for passing `max_outbound_requests`.
    pub outbound_over_limit: AtomicU64,
    /// Of those, the ones answered by an in-process service (`*.svc`).
    pub service_calls: AtomicU64,
}

/// The per-instance state of every capability, built fresh with each
/// instance from the function's [`Grants`].
pub(crate) struct CapabilityStates {
    pub(crate) keyvalue: keyvalue::KeyValueState,
    pub(crate) config: config::ConfigState,
}

impl CapabilityStates {
    pub(crate) fn new(grants: &Arc<Grants>, stats: &Arc<CapabilityStats>) -> Self {
        CapabilityStates {
            keyvalue: keyvalue::KeyValueState::new(grants.clone(), stats.clone()),
            config: config::ConfigState::new(grants.clone(), stats.clone()),
        }
    }
}

/// Links every capability's host functions. A function that was not granted
/// one can still be linked against it (the linker is shared by all
/// functions); the deploy check and the grant inside each call keep it out.
pub(crate) fn add_to_linker(linker: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    keyvalue::add_to_linker(linker)?;
    keyvalue_draft2::add_to_linker(linker)?;
    config::add_to_linker(linker)?;
    spin::add_to_linker(linker)?;
    Ok(())
}

/// How a capability appears in a component and in a manifest.
#[derive(Debug)]
pub struct CapabilityInfo {
    /// The WIT package, e.g. `wasi:keyvalue`.
    pub package: &'static str,
    /// The package versions the node links, each to the same
    /// implementation: toolchains and platforms publish the same interface
    /// under different versions.
    pub versions: &'static [&'static str],
    /// The interfaces of the package the node links.
    pub interfaces: &'static [&'static str],
    /// The manifest key(s) that grant it, as shown in errors (quoted).
    pub grant: &'static str,
    /// Whether a function's grants include this capability.
    pub granted: fn(&Grants) -> bool,
}

impl CapabilityInfo {
    /// Whether `import` (a component's import name, such as
    /// `wasi:keyvalue/store@0.2.0-draft`) is one of this capability's
    /// interfaces.
    fn provides(&self, import: &str) -> bool {
        let Some((path, version)) = import.split_once('@') else {
            return false;
        };
        self.versions.contains(&version)
            && path.strip_prefix(self.package).is_some_and(|rest| {
                rest.strip_prefix('/')
                    .is_some_and(|name| self.interfaces.contains(&name))
            })
    }
}

/// Every capability a function may be granted.
pub const CAPABILITIES: &[&CapabilityInfo] = &[
    &keyvalue::INFO,
    &config::INFO,
    &spin::KEY_VALUE,
    &spin::VARIABLES,
];

/// The capability that provides `import`, if any.
pub(crate) fn capability_of(import: &str) -> Option<&'static CapabilityInfo> {
    CAPABILITIES.iter().copied().find(|c| c.provides(import))
}

/// Refuses a component whose imports need a capability `grants` lacks,
/// naming each such import and the key that would grant it.
pub(crate) fn check_grants(imports: &[String], grants: &Grants) -> Result<(), ValidationError> {
    let missing: Vec<(String, &'static str)> = imports
        .iter()
        .filter_map(|import| {
            let capability = capability_of(import)?;
            (!(capability.granted)(grants)).then(|| (import.clone(), capability.grant))
        })
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ValidationError::NotGranted { missing })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_are_matched_by_package_interface_and_version() {
        assert!(capability_of("wasi:keyvalue/store@0.2.0-draft").is_some());
        assert!(capability_of("wasi:keyvalue/atomics@0.2.0-draft").is_some());
        assert!(capability_of("wasi:config/store@0.2.0-draft").is_some());
        assert!(capability_of("wasi:config/store@0.2.0-rc.1").is_some());
        assert!(capability_of("wasi:config/store@0.2.0-draft-2024-09-27").is_some());
        assert!(capability_of("wasi:config/store@0.2.0").is_none());
        assert!(capability_of("fermyon:spin/key-value@2.0.0").is_some());
        assert!(capability_of("fermyon:spin/variables@2.0.0").is_some());
        assert!(capability_of("fermyon:spin/sqlite@2.0.0").is_none());
        assert!(capability_of("wasi:keyvalue/store@0.2.0-draft2").is_some());
        assert!(capability_of("wasi:keyvalue/batch@0.2.0-draft2").is_some());
        assert!(capability_of("wasi:keyvalue/watcher@0.2.0-draft2").is_none());
        assert!(capability_of("wasi:keyvalue/watcher@0.2.0-draft").is_none());
        assert!(capability_of("wasi:keyvalues/store@0.2.0-draft").is_none());
        assert!(capability_of("wasi:http/types@0.2.0").is_none());
    }

    #[test]
    fn an_ungranted_import_is_named_with_its_key() {
        let imports = vec![
            "wasi:http/types@0.2.3".to_string(),
            "wasi:keyvalue/store@0.2.0-draft".to_string(),
            "wasi:config/store@0.2.0-draft".to_string(),
        ];
        let Err(ValidationError::NotGranted { missing }) =
            check_grants(&imports, &Grants::default())
        else {
            panic!("an empty grant must refuse key-value and config");
        };
        assert_eq!(missing.len(), 2);
        assert_eq!(missing[0].0, "wasi:keyvalue/store@0.2.0-draft");
        assert!(missing[0].1.contains("keyvalue = ["), "{}", missing[0].1);
        assert!(missing[1].1.contains("config = {"), "{}", missing[1].1);
    }
}
