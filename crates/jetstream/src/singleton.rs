//! Work one node of a cluster does at a time (pruning settled events),
//! without an election of our own: the node that holds a key in a bucket
//! whose entries expire does it. A holder renews its key well before it
//! expires; when it dies, the key expires and the next node to try takes it.

use std::time::Duration;

use bytes::Bytes;

use crate::api::JetStreamError;
use crate::kv::Kv;

/// A lease on one piece of singleton work.
#[derive(Clone, Debug)]
pub struct Singleton {
    kv: Kv,
    key: String,
    holder: Bytes,
}

impl Singleton {
    /// The lease on `work` in `kv` (a bucket opened with `max_age` = the
    /// lease's term), for the node `holder`.
    pub fn new(kv: Kv, work: &str, holder: &str) -> Self {
        Singleton {
            kv,
            key: format!("lease.{work}"),
            holder: Bytes::from(holder.to_owned()),
        }
    }

    /// Whether this node holds the lease now: takes it when it is free,
    /// renews it when this node holds it. Call it at least three times per
    /// term, and do the work only on `true`.
    pub async fn hold(&self) -> Result<bool, JetStreamError> {
        let written = match self.kv.entry(&self.key).await? {
            None => self.kv.create(&self.key, self.holder.clone()).await,
            Some(entry) if entry.value == self.holder => {
                self.kv
                    .update(&self.key, self.holder.clone(), entry.revision)
                    .await
            }
            Some(_) => return Ok(false),
        };
        match written {
            Ok(_) => Ok(true),
            Err(e) if e.is_wrong_last_sequence() => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// The term of singleton leases: how long work waits after its holder died.
pub const LEASE_TERM: Duration = Duration::from_secs(60);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use super::Singleton;
    use crate::testing::{Scratch, bucket_name};
    use crate::{Kv, KvSettings};

    #[tokio::test]
    async fn one_node_holds_the_lease_until_it_stops_renewing() {
        let scratch = Scratch::connect().await;
        let bucket = bucket_name("leases");
        let settings = KvSettings {
            max_age: Some(Duration::from_secs(1)),
            ..KvSettings::default()
        };
        let kv = Kv::open(scratch.js(), &bucket, &settings).await.unwrap();
        let _scratch = scratch.removing(format!("KV_{bucket}"));
        let (a, b) = (
            Singleton::new(kv.clone(), "prune", "node-a"),
            Singleton::new(kv, "prune", "node-b"),
        );
        assert!(a.hold().await.unwrap());
        assert!(!b.hold().await.unwrap());
        // Renewed within its term, it stays a's.
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert!(a.hold().await.unwrap());
            assert!(!b.hold().await.unwrap());
        }
        // a stops renewing (it died): once the term is over, b takes it.
        let started = std::time::Instant::now();
        while !b.hold().await.unwrap() {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "never handed over"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(!a.hold().await.unwrap());
    }
}
