//! Pruning settled events: what keeps the status bucket and the dead
//! letters from growing for ever.

use std::time::SystemTime;

use stratus_storage::EventState;

use super::record::{Record, dedup_hash, dedup_key, id_key, nanos};
use super::{Inner, consumer};
use crate::api::JetStreamError;

impl Inner {
    pub(super) async fn prune(&self, before: SystemTime) -> Result<usize, JetStreamError> {
        let before = nanos(before);
        let mut pruned = 0;
        for entry in self.status.entries("e").await? {
            let Some(record) = Record::decode(&entry.value) else {
                continue;
            };
            let settled = matches!(record.state(), EventState::Succeeded | EventState::Dead);
            if !settled || record.updated >= before {
                continue;
            }
            // Only if nobody changed it since it was read (a redrive).
            match self.status.delete(&entry.key, Some(entry.revision)).await {
                Ok(_) => {}
                Err(e) if e.is_wrong_last_sequence() => continue,
                Err(e) => return Err(e),
            }
            self.status.forget(&entry.key).await?;
            let dedup = dedup_key(&dedup_hash(
                &record.queue,
                record.origin.as_deref(),
                &record.id,
            ));
            for index in [dedup, id_key(&record.id)] {
                self.unlink(&index, &entry.key).await?;
            }
            if record.state() == EventState::Dead {
                // Its body waits on the dead subject for a redrive that
                // will not come now.
                if let Err(e) = consumer::delete(&self.js, &self.stream, record.msg_seq).await {
                    tracing::debug!(error = %e, "a pruned dead letter's body was gone already");
                }
            }
            pruned += 1;
        }
        Ok(pruned)
    }

    /// Removes an index entry if it still points at `record_key` (a newer
    /// event of the same id keeps its own).
    async fn unlink(&self, index: &str, record_key: &str) -> Result<(), JetStreamError> {
        let Some(entry) = self.status.entry(index).await? else {
            return Ok(());
        };
        if entry.value.as_ref() != record_key.as_bytes() {
            return Ok(());
        }
        match self.status.delete(index, Some(entry.revision)).await {
            Ok(_) => self.status.forget(index).await,
            Err(e) if e.is_wrong_last_sequence() => Ok(()),
            Err(e) => Err(e),
        }
    }
}
