//! A cluster's API tokens in a bucket, so a token made through one node
//! works on every node, and one revoked through any node stops working on
//! all of them: every check reads the token from the stream's leader, never
//! from a replica that may not have seen the revocation yet.

use bytes::Bytes;
use stratus_storage::{TokenFuture, TokenRecord, TokenStore, TokenStoreError};

use crate::api::JetStreamError;
use crate::kv::{Kv, is_valid_key};

const PREFIX: &str = "t";

/// The cluster's token store: a key per token (`t.<id>`), written by
/// compare-and-set.
#[derive(Clone)]
pub struct JetStreamTokens {
    kv: Kv,
}

impl std::fmt::Debug for JetStreamTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamTokens")
            .field("bucket", &self.kv.bucket())
            .finish()
    }
}

fn failed(e: JetStreamError) -> TokenStoreError {
    if e.is_unavailable() {
        TokenStoreError::Unavailable(e.to_string())
    } else {
        TokenStoreError::Backend(e.to_string())
    }
}

/// The key of a token; an id that cannot be one names no token.
fn key(id: &str) -> Option<String> {
    let key = format!("{PREFIX}.{id}");
    (is_valid_key(&key) && !id.contains('.')).then_some(key)
}

fn decode(value: &[u8]) -> Result<TokenRecord, TokenStoreError> {
    serde_json::from_slice(value).map_err(|e| {
        TokenStoreError::Backend(format!("a token record in JetStream is corrupt: {e}"))
    })
}

fn encode(record: &TokenRecord) -> Result<Bytes, TokenStoreError> {
    serde_json::to_vec(record)
        .map(Bytes::from)
        .map_err(|e| TokenStoreError::Backend(e.to_string()))
}

/// How often a touch that lost a compare-and-set to another touch tries
/// again before giving up (a last-used time is a hint, not a record).
const TOUCH_ATTEMPTS: usize = 3;

impl JetStreamTokens {
    pub fn new(kv: Kv) -> JetStreamTokens {
        JetStreamTokens { kv }
    }
}

impl TokenStore for JetStreamTokens {
    fn create(&self, record: TokenRecord) -> TokenFuture<()> {
        let kv = self.kv.clone();
        Box::pin(async move {
            let key = key(&record.id).ok_or_else(|| {
                TokenStoreError::Backend(format!("\"{}\" cannot be a token id", record.id))
            })?;
            match kv.create(&key, encode(&record)?).await {
                Ok(_) => Ok(()),
                Err(e) if e.is_wrong_last_sequence() => Err(TokenStoreError::Conflict(record.id)),
                Err(e) => Err(failed(e)),
            }
        })
    }

    fn get(&self, id: &str) -> TokenFuture<Option<TokenRecord>> {
        let (kv, key) = (self.kv.clone(), key(id));
        Box::pin(async move {
            let Some(key) = key else { return Ok(None) };
            match kv.latest(&key).await.map_err(failed)? {
                Some(entry) => decode(&entry.value).map(Some),
                None => Ok(None),
            }
        })
    }

    fn list(&self, namespace: Option<&str>) -> TokenFuture<Vec<TokenRecord>> {
        let (kv, namespace) = (self.kv.clone(), namespace.map(str::to_owned));
        Box::pin(async move {
            let mut tokens = Vec::new();
            for entry in kv.entries(PREFIX).await.map_err(failed)? {
                let record = decode(&entry.value)?;
                if record.namespace == namespace {
                    tokens.push(record);
                }
            }
            tokens.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
            Ok(tokens)
        })
    }

    fn revoke(&self, id: &str) -> TokenFuture<bool> {
        let (kv, key) = (self.kv.clone(), key(id));
        Box::pin(async move {
            let Some(key) = key else { return Ok(false) };
            if kv.latest(&key).await.map_err(failed)?.is_none() {
                return Ok(false);
            }
            // The hash goes with its history: nothing of it stays behind.
            kv.purge(&key).await.map_err(failed)?;
            Ok(true)
        })
    }

    fn touch(&self, id: &str, at: i64) -> TokenFuture<()> {
        let (kv, key) = (self.kv.clone(), key(id));
        Box::pin(async move {
            let Some(key) = key else { return Ok(()) };
            for _ in 0..TOUCH_ATTEMPTS {
                // Gone (revoked): a touch never brings it back.
                let Some(entry) = kv.latest(&key).await.map_err(failed)? else {
                    return Ok(());
                };
                let mut record = decode(&entry.value)?;
                if record.last_used_at.is_some_and(|last| last >= at) {
                    return Ok(());
                }
                record.last_used_at = Some(at);
                match kv.update(&key, encode(&record)?, entry.revision).await {
                    Ok(_) => return Ok(()),
                    Err(e) if e.is_wrong_last_sequence() => continue,
                    Err(e) => return Err(failed(e)),
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests;
