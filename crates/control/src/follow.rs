//! Following an app store that other nodes write too (a cluster): each
//! node serves from memory and brings itself in step with the store app by
//! app when the store says an app changed. A change this node made itself
//! finds nothing to do, so a node needs no notion of who wrote what.

use std::sync::atomic::Ordering;

use crate::error::ControlError;
use crate::node::{Node, not_found};

/// What following one app did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Followed {
    /// It already served the store's live version (or nothing of an app
    /// with none).
    InStep,
    /// It now serves this version.
    Activated(u32),
    /// It stopped serving the app (deleted, or no live version).
    Stopped,
}

impl Node {
    /// Serves what the store says is live for `app`: loads and activates
    /// the live version when it is not the one serving (another node
    /// deployed, activated or rolled back), stops serving an app the store
    /// no longer has. An app deleted and created again under the same
    /// version number is told apart by its creation time.
    pub async fn follow_app(&self, app: &str) -> Result<Followed, ControlError> {
        let _serialized = self.deploy_lock.lock().await;
        let record = self.apps.app(app).await?;
        let serving = self.invoker.live().app_version(app);
        let created_at = record.as_ref().map(|r| r.created_at);
        let known = self
            .followed
            .lock()
            .map(|followed| followed.get(app).copied())
            .unwrap_or_default();
        let recreated = known.is_some() && known != created_at;
        let canary = record.as_ref().and_then(|r| r.traffic.canary.clone());
        let live = record.and_then(|r| r.live_version);
        let outcome = match live {
            Some(version) if serving == Some(version) && !recreated => Followed::InStep,
            Some(version) => {
                let stored = self
                    .apps
                    .version(app, version)
                    .await
                    .map_err(|e| not_found(e, app))?;
                let functions = self.load_version(app, version, stored.functions).await?;
                self.swap_app(app, functions)?;
                self.stats.activations.fetch_add(1, Ordering::Relaxed);
                tracing::info!(app, version, "activated as the cluster's live version");
                Followed::Activated(version)
            }
            None if serving.is_none() => Followed::InStep,
            None => {
                self.swap_app(app, Vec::new())?;
                tracing::info!(app, "stopped: the cluster no longer serves it");
                Followed::Stopped
            }
        };
        // The split too, whoever set it: a canary started, stepped,
        // promoted or rolled back by another node.
        if outcome != Followed::Stopped {
            self.follow_canary(app, canary.as_ref()).await?;
        }
        if let Ok(mut followed) = self.followed.lock() {
            match created_at {
                Some(created_at) => followed.insert(app.to_owned(), created_at),
                None => followed.remove(app),
            };
        }
        Ok(outcome)
    }

    /// Says the node serves what the store holds: a node that follows a
    /// shared store calls it once its first replay is done, instead of
    /// [`Node::load_live`].
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }
}
