//! Namespaces' deploy-time quotas: apps, functions and memory per function,
//! checked under the deploy lock so two deploys cannot both take the last
//! app (on one node; nodes of a cluster check against what they follow).

use stratus_manifest::{Manifest, Namespace};
use stratus_storage::{NamespaceStore, NamespaceStoreError, Quotas};

use crate::error::ControlError;
use crate::node::Node;

impl From<NamespaceStoreError> for ControlError {
    fn from(e: NamespaceStoreError) -> Self {
        match e {
            // Out of reach for now, like the app store beside it: 503.
            NamespaceStoreError::Unavailable(_) => {
                ControlError::Apps(stratus_storage::AppStoreError::Unavailable(format!(
                    "cannot read the namespace's quotas: {e}"
                )))
            }
            NamespaceStoreError::Backend(_) => {
                ControlError::Internal(format!("cannot read the namespace's quotas: {e}"))
            }
        }
    }
}

impl Node {
    /// Uses `store` for namespaces' quotas.
    pub fn with_namespaces(mut self, store: std::sync::Arc<dyn NamespaceStore>) -> Node {
        self.namespaces = Some(store);
        self
    }

    /// Sets `namespace`'s quotas and applies its run-time ones on this node
    /// at once (other nodes of a cluster within the quota follower's
    /// period).
    pub async fn set_quotas(
        &self,
        namespace: &Namespace,
        quotas: Quotas,
    ) -> Result<(), ControlError> {
        let Some(store) = &self.namespaces else {
            return Err(ControlError::Internal("this node keeps no quotas".into()));
        };
        store.set_quotas(namespace.name(), quotas.clone()).await?;
        self.invoker.tenancy().set(namespace.name(), &quotas);
        Ok(())
    }

    /// What `namespace` has now against its count quotas: apps, and
    /// functions of their live versions.
    pub async fn namespace_use(
        &self,
        namespace: &Namespace,
    ) -> Result<(usize, usize), ControlError> {
        let apps = self
            .apps
            .list_apps()
            .await?
            .iter()
            .filter(|a| namespace.owns(&a.name))
            .count();
        let functions = self
            .invoker
            .live()
            .functions()
            .filter(|f| namespace.owns(&f.app))
            .count();
        Ok((apps, functions))
    }

    /// The quotas of `namespace` (none without a store).
    pub async fn quotas(&self, namespace: &Namespace) -> Result<Quotas, ControlError> {
        match &self.namespaces {
            Some(store) => Ok(store.quotas(namespace.name()).await?),
            None => Ok(Quotas::default()),
        }
    }

    /// Refuses a deploy of `manifest` as app `app` of `namespace` that
    /// would take the namespace past a quota, naming it.
    pub(crate) async fn check_quotas(
        &self,
        namespace: &Namespace,
        app: &str,
        manifest: &Manifest,
    ) -> Result<(), ControlError> {
        let quotas = self.quotas(namespace).await?;
        let over = |quota: &str, message: String| ControlError::Quota {
            namespace: namespace.to_string(),
            quota: quota.to_owned(),
            message,
        };
        if let Some(max) = quotas.max_memory
            && let Some(f) = manifest.functions.iter().find(|f| f.memory.bytes() > max)
        {
            return Err(over(
                "max_memory",
                format!(
                    "function \"{}\" asks for {} bytes of memory; the namespace allows {max} per function",
                    f.name,
                    f.memory.bytes()
                ),
            ));
        }
        if quotas.max_apps.is_none() && quotas.max_functions.is_none() {
            return Ok(());
        }
        let apps = self.apps.list_apps().await?;
        let others: Vec<&str> = apps
            .iter()
            .map(|a| a.name.as_str())
            .filter(|name| namespace.owns(name) && *name != app)
            .collect();
        if let Some(max) = quotas.max_apps
            && others.len() as u64 + 1 > u64::from(max)
        {
            return Err(over(
                "max_apps",
                format!(
                    "the namespace has {} other apps and allows {max}; delete one first",
                    others.len()
                ),
            ));
        }
        if let Some(max) = quotas.max_functions {
            let live = self.invoker.live();
            let theirs = live
                .functions()
                .filter(|f| namespace.owns(&f.app) && f.app != app)
                .count();
            let total = theirs + manifest.functions.len();
            if total as u64 > u64::from(max) {
                return Err(over(
                    "max_functions",
                    format!(
                        "the app's {} functions and the {theirs} of the namespace's other apps make {total}; the namespace allows {max}",
                        manifest.functions.len()
                    ),
                ));
            }
        }
        Ok(())
    }
}
