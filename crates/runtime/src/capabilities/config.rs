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

/// One set of bindings per published version of `wasi:config`: the
/// interface is the same in each, so one implementation serves them all
/// (see `config_host!`).
mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "wasi:config/imports",
        imports: { default: async | trappable },
    });
}

mod bindings_rc1 {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "wasi:config/imports@0.2.0-rc.1",
        imports: { default: async | trappable },
    });
}

mod bindings_2024_09_27 {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "wasi:config/imports@0.2.0-draft-2024-09-27",
        imports: { default: async | trappable },
    });
}

use bindings::wasi::config::store as store_draft;
use bindings_2024_09_27::wasi::config0_2_0_draft_2024_09_27::store as store_2024_09_27;
use bindings_rc1::wasi::config0_2_0_rc_1::store as store_rc1;

pub const INFO: CapabilityInfo = CapabilityInfo {
    package: "wasi:config",
    // wasmtime 48 links `0.2.0-rc.1`, Spin 3 `0.2.0-draft-2024-09-27`.
    versions: &["0.2.0-draft", "0.2.0-rc.1", "0.2.0-draft-2024-09-27"],
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
    async fn secret(&self, name: &str) -> Result<Option<String>, ConfigFailure> {
        let grant = self.grant();
        let Some(source) = grant.source.clone() else {
            return Err(ConfigFailure("this node has no secret store".into()));
        };
        self.stats.secret_reads.fetch_add(1, Ordering::Relaxed);
        let (app, secret) = (grant.app.clone(), name.to_string());
        let revealed = tokio::task::spawn_blocking(move || source.reveal(&app, &secret))
            .await
            .unwrap_or_else(|e| Err(format!("the secret store task failed: {e}")));
        match revealed {
            Ok(Some(value)) => Ok(Some(value)),
            Ok(None) => Err(ConfigFailure(format!(
                "secret {name:?} is granted but not set: run `stratus secrets set {} {name}`",
                grant.app
            ))),
            Err(message) => {
                tracing::warn!(app = %grant.app, secret = name, "cannot read secret: {message}");
                Err(ConfigFailure(format!(
                    "cannot read secret {name:?}: {message}"
                )))
            }
        }
    }

    /// The value of `key`: a configuration value, or a granted secret's.
    pub(crate) async fn value(&self, key: &str) -> Result<Option<String>, ConfigFailure> {
        if let Some(value) = self.grant().values.get(key) {
            return Ok(Some(value.clone()));
        }
        if self.grant().secrets.iter().any(|s| s == key) {
            return self.secret(key).await;
        }
        Ok(None)
    }

    /// Every value the function may read, secrets included.
    async fn all(&self) -> Result<Vec<(String, String)>, ConfigFailure> {
        let mut all: Vec<(String, String)> = self
            .grant()
            .values
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for name in self.grant().secrets.iter() {
            if let Some(value) = self.secret(name).await? {
                all.push((name.clone(), value));
            }
        }
        Ok(all)
    }
}

/// Why a value cannot be read (a secret not set, the store failing): the
/// message the guest gets, which names the secret and never its value.
#[derive(Debug)]
pub(crate) struct ConfigFailure(pub(crate) String);

struct ConfigData;

impl HasData for ConfigData {
    type Data<'a> = &'a ConfigState;
}

pub(crate) fn add_to_linker(linker: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    store_draft::add_to_linker::<_, ConfigData>(linker, |state| &state.capabilities.config)?;
    store_rc1::add_to_linker::<_, ConfigData>(linker, |state| &state.capabilities.config)?;
    store_2024_09_27::add_to_linker::<_, ConfigData>(linker, |state| &state.capabilities.config)?;
    Ok(())
}

/// `wasi:config/store`'s host functions for the bindings of one version.
macro_rules! config_host {
    ($store:ident) => {
        impl $store::Host for &ConfigState {
            async fn get(
                &mut self,
                key: String,
            ) -> wasmtime::Result<Result<Option<String>, $store::Error>> {
                Ok(self
                    .value(&key)
                    .await
                    .map_err(|e| $store::Error::Upstream(e.0)))
            }

            async fn get_all(
                &mut self,
            ) -> wasmtime::Result<Result<Vec<(String, String)>, $store::Error>> {
                Ok(self.all().await.map_err(|e| $store::Error::Upstream(e.0)))
            }
        }
    };
}

config_host!(store_draft);
config_host!(store_rc1);
config_host!(store_2024_09_27);
