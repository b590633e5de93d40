//! Apps in a key-value bucket, shared by every node of a cluster.
//!
//! Each app has one *head* (`apps.<app>`): its live version and the list of
//! its versions with the components each uses. Every change to an app is
//! one compare-and-set of its head on the revision read, so two nodes
//! deploying the same app at once cannot both win: the loser gets
//! [`AppStoreError::Conflict`] and writes nothing. A version's manifest and
//! functions (up to the manifest's 256 KiB) live apart, under a key unique
//! to the attempt (`versions.<app>.<number>-<nonce>`), written before the
//! head that names it: a reader never meets a head naming a version that
//! is not there, and a loser's document can never overwrite the winner's.

use std::collections::BTreeSet;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use stratus_storage::{
    AppFuture, AppRecord, AppStore, AppStoreError, FunctionRecord, LiveFunctionRecord, NewFunction,
    Traffic, VersionRecord, now_ms,
};

use crate::api::JetStreamError;
use crate::kv::Kv;
use crate::watch::{Change, Watch};

const HEADS: &str = "apps";
const VERSIONS: &str = "versions";

/// What the bucket keeps of an app besides its versions' documents.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Head {
    name: String,
    created_at: i64,
    updated_at: i64,
    live: Option<u32>,
    /// The highest number ever given, so numbers are never reused.
    last: u32,
    /// Oldest first.
    versions: Vec<VersionEntry>,
    /// Absent in heads written before canaries.
    #[serde(default)]
    traffic: Traffic,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct VersionEntry {
    number: u32,
    /// The key of the version's document.
    key: String,
    created_at: i64,
    /// The components the version's functions use, each once.
    components: BTreeSet<String>,
}

/// A version's document.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct VersionDoc {
    manifest: String,
    /// Ordered by name.
    functions: Vec<StoredFunction>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredFunction {
    name: String,
    component_sha256: String,
    spec: serde_json::Value,
}

impl From<StoredFunction> for FunctionRecord {
    fn from(f: StoredFunction) -> Self {
        FunctionRecord {
            name: f.name,
            component_sha256: f.component_sha256,
            spec: f.spec,
        }
    }
}

impl Head {
    fn record(&self) -> AppRecord {
        AppRecord {
            name: self.name.clone(),
            live_version: self.live,
            versions: self.versions.len() as u32,
            created_at: self.created_at,
            updated_at: self.updated_at,
            traffic: self.traffic.clone(),
        }
    }

    fn version(&self, number: u32) -> Result<&VersionEntry, AppStoreError> {
        self.versions
            .iter()
            .find(|v| v.number == number)
            .ok_or_else(|| AppStoreError::VersionNotFound {
                app: self.name.clone(),
                number,
            })
    }
}

/// The app store of a cluster.
#[derive(Clone, Debug)]
pub struct JetStreamApps {
    kv: Kv,
}

impl JetStreamApps {
    pub fn new(kv: Kv) -> Self {
        JetStreamApps { kv }
    }

    /// The bucket the apps are kept in.
    pub fn bucket(&self) -> &Kv {
        &self.kv
    }

    /// Follows every app's head: first each app as it is, then every
    /// deploy, activation, rollback and deletion as it happens, by any node.
    /// [`JetStreamApps::app_of`] names the app a change is about.
    pub async fn watch(&self) -> Result<Watch, JetStreamError> {
        self.kv.watch(HEADS).await
    }

    /// The app a change seen by [`JetStreamApps::watch`] is about.
    pub fn app_of(change: &Change) -> Option<&str> {
        change.key.strip_prefix(HEADS)?.strip_prefix('.')
    }

    async fn head(&self, app: &str) -> Result<Option<(Head, u64)>, AppStoreError> {
        // A name the bucket cannot hold names no app, as an unknown name
        // does in any store.
        let Ok(key) = head_key(app) else {
            return Ok(None);
        };
        // From the leader: a node follows a head write its watch delivered,
        // and a replica behind it would make it think itself in step.
        let Some(entry) = self.kv.latest(&key).await.map_err(AppStoreError::from)? else {
            return Ok(None);
        };
        let head = decode(&entry.value)?;
        Ok(Some((head, entry.revision)))
    }

    async fn existing(&self, app: &str) -> Result<(Head, u64), AppStoreError> {
        self.head(app)
            .await?
            .ok_or_else(|| AppStoreError::AppNotFound(app.to_owned()))
    }

    /// Every app's head, by name, and how many heads could not be read: a
    /// record damaged in the bucket (by hand, or by another release) is
    /// left out of listings rather than failing them for every app.
    async fn heads(&self) -> Result<(Vec<Head>, usize), AppStoreError> {
        let entries = self.kv.entries(HEADS).await.map_err(AppStoreError::from)?;
        let mut heads = Vec::with_capacity(entries.len());
        let mut unreadable = 0;
        for entry in &entries {
            match decode::<Head>(&entry.value) {
                Ok(head) => heads.push(head),
                Err(e) => {
                    tracing::warn!(key = %entry.key, error = %e, "left an unreadable app record out");
                    unreadable += 1;
                }
            }
        }
        heads.sort_by(|a, b| a.name.cmp(&b.name));
        Ok((heads, unreadable))
    }

    /// Writes the head if it is still at `revision` (`None`: absent).
    async fn commit(&self, head: &Head, revision: Option<u64>) -> Result<(), AppStoreError> {
        let key = head_key(&head.name)?;
        let value = Bytes::from(serde_json::to_vec(head).map_err(AppStoreError::backend)?);
        let written = match revision {
            Some(revision) => self.kv.update(&key, value, revision).await,
            None => self.kv.create(&key, value).await,
        };
        match written {
            Ok(_) => Ok(()),
            Err(e) if e.is_wrong_last_sequence() => Err(AppStoreError::Conflict(head.name.clone())),
            Err(e) => Err(AppStoreError::from(e)),
        }
    }

    async fn document(&self, head: &Head, number: u32) -> Result<VersionDoc, AppStoreError> {
        let key = &head.version(number)?.key;
        let entry = self.kv.entry(key).await.map_err(AppStoreError::from)?.ok_or_else(|| {
            AppStoreError::backend(format!(
                "version {number} of app \"{}\" is named by the app but its document {key} is gone",
                head.name
            ))
        })?;
        decode(&entry.value)
    }

    async fn version_record(
        &self,
        head: &Head,
        number: u32,
    ) -> Result<VersionRecord, AppStoreError> {
        let entry = head.version(number)?;
        let doc = self.document(head, number).await?;
        Ok(VersionRecord {
            app: head.name.clone(),
            number,
            created_at: entry.created_at,
            live: head.live == Some(number),
            functions: doc.functions.into_iter().map(Into::into).collect(),
        })
    }

    async fn create(
        &self,
        app: String,
        manifest: String,
        mut functions: Vec<NewFunction>,
        activate: bool,
    ) -> Result<VersionRecord, AppStoreError> {
        functions.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(pair) = functions.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(AppStoreError::DuplicateFunction {
                app,
                function: pair[0].name.clone(),
            });
        }
        let now = now_ms();
        let (mut head, revision) = match self.head(&app).await? {
            Some((head, revision)) => (head, Some(revision)),
            None => (
                Head {
                    name: app.clone(),
                    created_at: now,
                    updated_at: now,
                    live: None,
                    last: 0,
                    versions: Vec::new(),
                    traffic: Traffic::default(),
                },
                None,
            ),
        };
        let number = head
            .last
            .checked_add(1)
            .ok_or(AppStoreError::VersionNumbersExhausted {
                app: app.clone(),
                last: head.last,
            })?;
        let nonce = uuid::Uuid::now_v7().simple().to_string();
        let key = format!("{VERSIONS}.{app}.{number}-{nonce}");
        let functions: Vec<StoredFunction> = functions
            .into_iter()
            .map(|f| StoredFunction {
                name: f.name,
                component_sha256: f.component_sha256,
                spec: f.spec,
            })
            .collect();
        let doc = VersionDoc {
            manifest,
            functions,
        };
        let value = Bytes::from(serde_json::to_vec(&doc).map_err(AppStoreError::backend)?);
        self.kv
            .put(&key, value)
            .await
            .map_err(AppStoreError::from)?;

        head.last = number;
        head.updated_at = now;
        if activate {
            head.live = Some(number);
            head.traffic.canary = None;
        }
        head.versions.push(VersionEntry {
            number,
            key: key.clone(),
            created_at: now,
            components: doc
                .functions
                .iter()
                .map(|f| f.component_sha256.clone())
                .collect(),
        });
        if let Err(e) = self.commit(&head, revision).await {
            // The head does not name it: nobody will read it.
            if let Err(purge) = self.kv.purge(&key).await {
                tracing::warn!(%key, error = %purge, "left an unused version document behind");
            }
            return Err(e);
        }
        Ok(VersionRecord {
            app,
            number,
            created_at: now,
            live: activate,
            functions: doc.functions.into_iter().map(Into::into).collect(),
        })
    }

    async fn remove(&self, app: String) -> Result<Vec<String>, AppStoreError> {
        let (head, revision) = self.existing(&app).await?;
        match self.kv.delete(&head_key(&app)?, Some(revision)).await {
            Ok(_) => {}
            Err(e) if e.is_wrong_last_sequence() => return Err(AppStoreError::Conflict(app)),
            Err(e) => return Err(AppStoreError::from(e)),
        }
        for version in &head.versions {
            if let Err(e) = self.kv.purge(&version.key).await {
                tracing::warn!(key = %version.key, error = %e, "left a deleted version's document behind");
            }
        }
        let mut unused: BTreeSet<String> = head
            .versions
            .iter()
            .flat_map(|v| v.components.iter().cloned())
            .collect();
        let (others, unreadable) = self.heads().await?;
        if unreadable > 0 {
            // An app whose record cannot be read may use any of them.
            tracing::warn!(
                app,
                "kept the deleted app's components: an app record is unreadable"
            );
            return Ok(Vec::new());
        }
        for other in others {
            for version in &other.versions {
                for component in &version.components {
                    unused.remove(component);
                }
            }
        }
        Ok(unused.into_iter().collect())
    }
}

impl AppStore for JetStreamApps {
    fn create_version(
        &self,
        app: &str,
        manifest: &str,
        functions: Vec<NewFunction>,
        activate: bool,
    ) -> AppFuture<VersionRecord> {
        let (store, app, manifest) = (self.clone(), app.to_owned(), manifest.to_owned());
        Box::pin(async move { store.create(app, manifest, functions, activate).await })
    }

    fn set_live(&self, app: &str, number: u32) -> AppFuture<()> {
        let (store, app) = (self.clone(), app.to_owned());
        Box::pin(async move {
            let (mut head, revision) = store.existing(&app).await?;
            head.version(number)?;
            head.live = Some(number);
            head.traffic.canary = None;
            head.updated_at = now_ms();
            store.commit(&head, Some(revision)).await
        })
    }

    fn set_traffic(&self, app: &str, live: Option<u32>, traffic: Traffic) -> AppFuture<()> {
        let (store, app) = (self.clone(), app.to_owned());
        Box::pin(async move {
            let (mut head, revision) = store.existing(&app).await?;
            for number in live
                .iter()
                .chain(traffic.canary.as_ref().map(|c| &c.version))
            {
                head.version(*number)?;
            }
            if live.is_some() {
                head.live = live;
            }
            head.traffic = traffic;
            head.updated_at = now_ms();
            store.commit(&head, Some(revision)).await
        })
    }

    fn delete_app(&self, app: &str) -> AppFuture<Vec<String>> {
        let (store, app) = (self.clone(), app.to_owned());
        Box::pin(async move { store.remove(app).await })
    }

    fn list_apps(&self) -> AppFuture<Vec<AppRecord>> {
        let store = self.clone();
        Box::pin(async move { Ok(store.heads().await?.0.iter().map(Head::record).collect()) })
    }

    fn app(&self, name: &str) -> AppFuture<Option<AppRecord>> {
        let (store, name) = (self.clone(), name.to_owned());
        Box::pin(async move { Ok(store.head(&name).await?.map(|(head, _)| head.record())) })
    }

    fn list_versions(&self, app: &str) -> AppFuture<Vec<VersionRecord>> {
        let (store, app) = (self.clone(), app.to_owned());
        Box::pin(async move {
            let (head, _) = store.existing(&app).await?;
            let mut versions = Vec::with_capacity(head.versions.len());
            for entry in head.versions.iter().rev() {
                versions.push(store.version_record(&head, entry.number).await?);
            }
            Ok(versions)
        })
    }

    fn version(&self, app: &str, number: u32) -> AppFuture<VersionRecord> {
        let (store, app) = (self.clone(), app.to_owned());
        Box::pin(async move {
            let (head, _) = store.existing(&app).await?;
            store.version_record(&head, number).await
        })
    }

    fn manifest(&self, app: &str, number: u32) -> AppFuture<String> {
        let (store, app) = (self.clone(), app.to_owned());
        Box::pin(async move {
            let (head, _) = store.existing(&app).await?;
            Ok(store.document(&head, number).await?.manifest)
        })
    }

    fn live_functions(&self) -> AppFuture<Vec<LiveFunctionRecord>> {
        let store = self.clone();
        Box::pin(async move {
            let mut live = Vec::new();
            for head in store.heads().await?.0 {
                let Some(number) = head.live else { continue };
                for function in store.document(&head, number).await?.functions {
                    live.push(LiveFunctionRecord {
                        app: head.name.clone(),
                        version: number,
                        function: function.into(),
                    });
                }
            }
            Ok(live)
        })
    }
}

/// The head's key; an app name the bucket cannot hold is refused here
/// (the manifest check allows only lowercase letters, digits and `-`).
fn head_key(app: &str) -> Result<String, AppStoreError> {
    let valid = !app.is_empty()
        && app
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if valid {
        Ok(format!("{HEADS}.{app}"))
    } else {
        Err(AppStoreError::AppNotFound(app.to_owned()))
    }
}

fn decode<T: serde::de::DeserializeOwned>(value: &[u8]) -> Result<T, AppStoreError> {
    serde_json::from_slice(value)
        .map_err(|e| AppStoreError::backend(format!("an app record in JetStream is corrupt: {e}")))
}

#[cfg(test)]
mod tests;
