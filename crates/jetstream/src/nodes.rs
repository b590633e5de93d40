//! Nodes that said they are alive: each node writes its record every few
//! seconds to a bucket whose entries expire, so a node that dies leaves the
//! list by itself, with no one to decide that it did.

use std::time::Duration;

use bytes::Bytes;
use stratus_storage::{NodeRecord, NodesError};

use crate::api::JetStreamError;
use crate::kv::Kv;

const PREFIX: &str = "nodes";

/// How often a node says it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// How long a record outlives its last heartbeat: three missed beats.
pub const EXPIRY: Duration = Duration::from_secs(15);

/// The cluster's node list.
#[derive(Clone, Debug)]
pub struct JetStreamNodes {
    kv: Kv,
}

impl JetStreamNodes {
    /// Over a bucket opened with `max_age` [`EXPIRY`].
    pub fn new(kv: Kv) -> Self {
        JetStreamNodes { kv }
    }

    /// Says that the node is alive, with its current load.
    pub async fn heartbeat(&self, record: &NodeRecord) -> Result<(), JetStreamError> {
        let value = serde_json::to_vec(record).map_err(|e| JetStreamError::Protocol {
            subject: record.id.clone(),
            reason: e.to_string(),
        })?;
        self.kv
            .put(&key(&record.id), Bytes::from(value))
            .await
            .map(|_| ())
    }

    /// Takes the node off the list at once (a clean stop).
    pub async fn leave(&self, id: &str) -> Result<(), JetStreamError> {
        self.kv.delete(&key(id), None).await.map(|_| ())
    }

    /// Every node heard from within [`EXPIRY`], ordered by id.
    pub async fn list(&self) -> Result<Vec<NodeRecord>, NodesError> {
        let entries = self
            .kv
            .entries(PREFIX)
            .await
            .map_err(|e| NodesError(e.to_string()))?;
        let mut nodes: Vec<NodeRecord> = entries
            .iter()
            .filter_map(|entry| match serde_json::from_slice(&entry.value) {
                Ok(record) => Some(record),
                Err(e) => {
                    tracing::warn!(key = %entry.key, error = %e, "skipped a node record that is not one");
                    None
                }
            })
            .collect();
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(nodes)
    }
}

fn key(id: &str) -> String {
    // Ids are made by the node (hex); anything else would not be a key.
    let id: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    format!("{PREFIX}.{id}")
}
