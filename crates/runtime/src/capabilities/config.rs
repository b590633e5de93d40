//! `wasi:config/store`: a function's configuration values and the secrets
//! it was granted, read by key.
//!
//! Values come from the manifest's `config` table; a key listed in
//! `secrets` is read from the node's secret store, decrypted only when the
//! guest asks for it. A secret's value is handed to the guest and to nobody
//! else: errors and logs name the secret, never its value.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::{HasData, Linker};

use std::sync::atomic::Ordering;

use super::{CapabilityInfo, CapabilityStats, Grants};
use crate::host::InstanceState;

mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "wasi:config/imports",
        imports: { default: async | trappable },
    });
}

use bindings::wasi::config::store;

pub const INFO: CapabilityInfo = CapabilityInfo {
    package: "wasi:config",
    version: "0.2.0-draft",
    interfaces: &["store"],
    grant: "`config = { <key> = \"<value>\" }` or `secrets = [\"<name>\"]`",
    granted: |grants: &Grants| {
        !grants.config.values.is_empty() || !grants.config.secrets.is_empty()
    },
};

pub use stratus_storage::SecretSource;

/// A function's configuration: plain values and the names of the secrets
/// it may read.
#[derive(Clone, Default)]
pub struct ConfigGrant {
    pub app: String,
    pub values: BTreeMap<String, String>,
    pub secrets: Vec<String>,
    pub source: Option<Arc<dyn SecretSource>>,
}

impl std::fmt::Debug for ConfigGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values are configuration, not secrets, but a grant is printed in
        // logs of deploys: keys are enough there.
        f.debug_struct("ConfigGrant")
            .field("app", &self.app)
            .field("keys", &self.values.keys().collect::<Vec<_>>())
            .field("secrets", &self.secrets)
            .finish_non_exhaustive()
    }
}

/// Per-instance state: the function's grants (shared by all its
/// instances) and the node's counters.
pub(crate) struct ConfigState {
    grants: Arc<Grants>,
    stats: Arc<CapabilityStats>,
}

impl ConfigState {
    pub(crate) fn new(grants: Arc<Grants>, stats: Arc<CapabilityStats>) -> Self {
        ConfigState { grants, stats }
    }

    fn grant(&self) -> &ConfigGrant {
        &self.grants.config
    }

    /// A granted secret's value, or an error naming the secret. The store
    /// is read (and the value decrypted) on the blocking pool, off the
    /// workers that run guests.
    async fn secret(&self, name: &str) -> Result<Option<String>, store::Error> {
        let grant = self.grant();
        let Some(source) = grant.source.clone() else {
            return Err(store::Error::Upstream(
                "this node has no secret store".into(),
            ));
        };
        self.stats.secret_reads.fetch_add(1, Ordering::Relaxed);
        let (app, secret) = (grant.app.clone(), name.to_string());
        let revealed = tokio::task::spawn_blocking(move || source.reveal(&app, &secret))
            .await
            .unwrap_or_else(|e| Err(format!("the secret store task failed: {e}")));
        match revealed {
            Ok(Some(value)) => Ok(Some(value)),
            Ok(None) => Err(store::Error::Upstream(format!(
                "secret {name:?} is granted but not set: run `stratus secrets set {} {name}`",
                grant.app
            ))),
            Err(message) => {
                tracing::warn!(app = %grant.app, secret = name, "cannot read secret: {message}");
                Err(store::Error::Upstream(format!(
                    "cannot read secret {name:?}: {message}"
                )))
            }
        }
    }
}

struct ConfigData;

impl HasData for ConfigData {
    type Data<'a> = &'a ConfigState;
}

pub(crate) fn add_to_linker(linker: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    store::add_to_linker::<_, ConfigData>(linker, |state| &state.capabilities.config)
}

type Answer<T> = wasmtime::Result<Result<T, store::Error>>;

impl store::Host for &ConfigState {
    async fn get(&mut self, key: String) -> Answer<Option<String>> {
        if let Some(value) = self.grant().values.get(&key) {
            return Ok(Ok(Some(value.clone())));
        }
        if self.grant().secrets.contains(&key) {
            return Ok(self.secret(&key).await);
        }
        Ok(Ok(None))
    }

    async fn get_all(&mut self) -> Answer<Vec<(String, String)>> {
        let mut all: Vec<(String, String)> = self
            .grant()
            .values
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for name in self.grant().secrets.iter() {
            match self.secret(name).await {
                Ok(Some(value)) => all.push((name.clone(), value)),
                Ok(None) => {}
                Err(e) => return Ok(Err(e)),
            }
        }
        Ok(Ok(all))
    }
}
