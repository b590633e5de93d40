//! `wasi:keyvalue@0.2.0-draft2`, the version Spin 3 links, on the same
//! grant, buckets and backend as `0.2.0-draft` (`keyvalue`): a bucket
//! written through one version is read through the other.
//!
//! Most calls are the draft's under other types. Three differ: `list-keys`
//! cursors are strings (the draft's number, in decimal); `get-many` answers
//! every key asked, a missing one as none; and `atomics` subtracts
//! (`increment` takes an `s64`) and adds compare-and-swap. A `cas` handle
//! holds the value its key had when it was made; `swap` writes only if the
//! key still holds it, as one step of the backend, and otherwise answers a
//! fresh handle holding what the key holds now, ready for the retry.

use std::sync::atomic::Ordering;

use wasmtime::component::{Linker, Resource};

use super::keyvalue::bindings::wasi::keyvalue::{batch as draft_batch, store as draft};
use super::keyvalue::{Bucket, BucketId, KeyValueData, KeyValueView, check_key, check_value};
use crate::host::InstanceState;

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "wasi:keyvalue/imports@0.2.0-draft2",
        imports: { default: async | trappable },
        with: {
            "wasi:keyvalue/store.bucket": crate::capabilities::keyvalue::Bucket,
            "wasi:keyvalue/atomics.cas": super::Cas,
        },
    });
}

use bindings::wasi::keyvalue::{atomics, batch, store};

/// A compare-and-swap handle: the key and the value it held when the
/// handle was made (none: not set).
#[derive(Debug)]
pub struct Cas {
    bucket: BucketId,
    key: String,
    current: Option<Vec<u8>>,
}

impl Cas {
    /// What the handle holds on the host, with a floor per handle so that
    /// many handles on empty keys count too.
    fn held(&self) -> usize {
        256 + self.key.len() + self.current.as_ref().map_or(0, Vec::len)
    }
}

/// The most bytes one instance's open `cas` handles may hold: four values
/// of the largest size. The values are copies on the host, outside the
/// guest's memory limit, so without a bound a guest making handles in a
/// loop could take the node's memory.
pub const MAX_CAS_HELD_BYTES: usize = 4 << 20;

pub(crate) fn add_to_linker(linker: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    store::add_to_linker::<_, KeyValueData>(linker, super::keyvalue::view)?;
    atomics::add_to_linker::<_, KeyValueData>(linker, super::keyvalue::view)?;
    batch::add_to_linker::<_, KeyValueData>(linker, super::keyvalue::view)?;
    Ok(())
}

type Answer<T> = wasmtime::Result<Result<T, store::Error>>;

fn from_draft(error: draft::Error) -> store::Error {
    match error {
        draft::Error::NoSuchStore => store::Error::NoSuchStore,
        draft::Error::AccessDenied => store::Error::AccessDenied,
        draft::Error::Other(message) => store::Error::Other(message),
    }
}

/// The draft's answer under this version's error type.
fn answer<T>(done: wasmtime::Result<Result<T, draft::Error>>) -> Answer<T> {
    Ok(done?.map_err(from_draft))
}

impl store::Host for KeyValueView<'_> {
    async fn open(&mut self, identifier: String) -> Answer<Resource<Bucket>> {
        answer(draft::Host::open(self, identifier).await)
    }
}

impl store::HostBucket for KeyValueView<'_> {
    async fn get(&mut self, bucket: Resource<Bucket>, key: String) -> Answer<Option<Vec<u8>>> {
        answer(draft::HostBucket::get(self, bucket, key).await)
    }

    async fn set(&mut self, bucket: Resource<Bucket>, key: String, value: Vec<u8>) -> Answer<()> {
        answer(draft::HostBucket::set(self, bucket, key, value).await)
    }

    async fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Answer<()> {
        answer(draft::HostBucket::delete(self, bucket, key).await)
    }

    async fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> Answer<bool> {
        answer(draft::HostBucket::exists(self, bucket, key).await)
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<String>,
    ) -> Answer<store::KeyResponse> {
        let cursor = match cursor.map(|c| c.parse::<u64>().map_err(|_| c)).transpose() {
            Ok(cursor) => cursor,
            Err(c) => {
                let shown: String = c.chars().take(64).collect();
                return Ok(Err(store::Error::Other(format!(
                    "the cursor {shown:?} is not one that list-keys answered"
                ))));
            }
        };
        Ok(draft::HostBucket::list_keys(self, bucket, cursor)
            .await?
            .map(|page| store::KeyResponse {
                keys: page.keys,
                cursor: page.cursor.map(|c| c.to_string()),
            })
            .map_err(from_draft))
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl batch::Host for KeyValueView<'_> {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Answer<Vec<(String, Option<Vec<u8>>)>> {
        let found = draft_batch::Host::get_many(self, bucket, keys.clone()).await?;
        // The draft's pairs come one per key asked, in order.
        Ok(found
            .map(|pairs| {
                keys.into_iter()
                    .zip(pairs)
                    .map(|(key, pair)| (key, pair.map(|(_, value)| value)))
                    .collect()
            })
            .map_err(from_draft))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Answer<()> {
        answer(draft_batch::Host::set_many(self, bucket, key_values).await)
    }

    async fn delete_many(&mut self, bucket: Resource<Bucket>, keys: Vec<String>) -> Answer<()> {
        answer(draft_batch::Host::delete_many(self, bucket, keys).await)
    }
}

impl KeyValueView<'_> {
    /// A handle on `key` holding what it holds now.
    async fn new_cas(&mut self, bucket: BucketId, key: String) -> Answer<Resource<Cas>> {
        let backend = self.backend()?;
        let current = match backend.get(bucket.clone(), key.clone()).await {
            Ok(current) => current,
            Err(e) => return Ok(Err(from_draft(self.failed(&bucket, e)))),
        };
        let cas = Cas {
            bucket,
            key,
            current,
        };
        let held = &self.state.cas_held;
        let before = held.fetch_add(cas.held(), Ordering::Relaxed);
        if before + cas.held() > MAX_CAS_HELD_BYTES {
            held.fetch_sub(cas.held(), Ordering::Relaxed);
            return Ok(Err(store::Error::Other(format!(
                "this instance's compare-and-swap handles hold {before} bytes; another of \
                 {} bytes would pass the limit of {MAX_CAS_HELD_BYTES} bytes (4 MiB): \
                 swap or drop some first",
                cas.held()
            ))));
        }
        Ok(Ok(self.table.push(cas)?))
    }

    /// Takes a handle out of the table, releasing what it held.
    fn take_cas(&mut self, cas: Resource<Cas>) -> wasmtime::Result<Cas> {
        let cas = self.table.delete(cas)?;
        self.state.cas_held.fetch_sub(cas.held(), Ordering::Relaxed);
        Ok(cas)
    }
}

impl atomics::Host for KeyValueView<'_> {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: i64,
    ) -> Answer<i64> {
        let (backend, id) = self.bucket(&bucket)?;
        if let Err(e) = check_key(&key) {
            return Ok(Err(from_draft(e)));
        }
        Ok(backend
            .increment(id.clone(), key, delta)
            .await
            .map_err(|e| from_draft(self.failed(&id, e))))
    }

    async fn swap(
        &mut self,
        cas: Resource<Cas>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), atomics::CasError>> {
        let Cas {
            bucket,
            key,
            current,
        } = self.take_cas(cas)?;
        if let Err(e) = check_value(&key, &value) {
            return Ok(Err(atomics::CasError::StoreError(from_draft(e))));
        }
        let backend = self.backend()?;
        match backend
            .compare_and_swap(bucket.clone(), key.clone(), current, value)
            .await
        {
            Ok(true) => Ok(Ok(())),
            Ok(false) => Ok(Err(match self.new_cas(bucket, key).await? {
                Ok(fresh) => atomics::CasError::CasFailed(fresh),
                Err(e) => atomics::CasError::StoreError(e),
            })),
            Err(e) => Ok(Err(atomics::CasError::StoreError(from_draft(
                self.failed(&bucket, e),
            )))),
        }
    }
}

impl atomics::HostCas for KeyValueView<'_> {
    async fn new(&mut self, bucket: Resource<Bucket>, key: String) -> Answer<Resource<Cas>> {
        let id = self.table.get(&bucket)?.id.clone();
        if let Err(e) = check_key(&key) {
            return Ok(Err(from_draft(e)));
        }
        self.new_cas(id, key).await
    }

    async fn current(&mut self, cas: Resource<Cas>) -> Answer<Option<Vec<u8>>> {
        Ok(Ok(self.table.get(&cas)?.current.clone()))
    }

    async fn drop(&mut self, cas: Resource<Cas>) -> wasmtime::Result<()> {
        self.take_cas(cas)?;
        Ok(())
    }
}
