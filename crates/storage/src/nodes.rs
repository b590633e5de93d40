//! The nodes of a platform, as `stratus nodes` lists them: one node on its
//! own, or every node that has said it is alive to a cluster lately.

use std::future::Future;
use std::pin::Pin;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One node and its load. Timestamps are unix milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Unique to this run of the node.
    pub id: String,
    pub hostname: String,
    /// Where the node's gateway and admin API listen.
    pub gateway: String,
    pub admin: String,
    /// The `stratus` release it runs.
    pub version: String,
    pub started_at: i64,
    /// When the node last said it was alive.
    pub seen_at: i64,
    pub live_apps: u32,
    /// Invocations running now and the most it runs at once.
    pub in_flight: u32,
    pub capacity: u32,
    /// The version of each app the node serves: what a rollout waits for.
    #[serde(default)]
    pub apps: BTreeMap<String, u32>,
}

/// What listing the nodes resolves to.
pub type NodesFuture = Pin<Box<dyn Future<Output = Result<Vec<NodeRecord>, NodesError>> + Send>>;

/// The nodes could not be listed (the cluster's store is out of reach).
#[derive(Debug, thiserror::Error)]
#[error("cannot list the cluster's nodes: {0}")]
pub struct NodesError(pub String);

/// Where the admin API finds the platform's nodes.
pub trait NodeDirectory: Send + Sync + std::fmt::Debug + 'static {
    /// Every live node, ordered by id.
    fn nodes(&self) -> NodesFuture;
}
