//! `wasi:keyvalue` (store and atomics) with errors as messages. A function
//! may open only the buckets its manifest grants (`keyvalue = ["…"]`); the
//! node scopes them to the app, so two functions of one app that are both
//! granted "orders" share it.

use crate::bindings::wasi::keyvalue::{atomics, store};

/// An open bucket.
pub struct Bucket {
    name: String,
    inner: store::Bucket,
}

/// Opens bucket `name`.
pub fn open(name: &str) -> Result<Bucket, String> {
    let inner = store::open(name).map_err(|err| describe(name, err))?;
    Ok(Bucket {
        name: name.to_string(),
        inner,
    })
}

fn describe(bucket: &str, err: store::Error) -> String {
    match err {
        store::Error::NoSuchStore => format!("key-value bucket {bucket:?} does not exist"),
        store::Error::AccessDenied => format!(
            "key-value bucket {bucket:?} is not granted to this function \
             (keyvalue = [\"{bucket}\"] in stratus.toml)"
        ),
        store::Error::Other(message) => format!("key-value bucket {bucket:?}: {message}"),
    }
}

impl Bucket {
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.inner.get(key).map_err(|err| describe(&self.name, err))
    }

    pub fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
        self.inner
            .set(key, value)
            .map_err(|err| describe(&self.name, err))
    }

    pub fn delete(&self, key: &str) -> Result<(), String> {
        self.inner
            .delete(key)
            .map_err(|err| describe(&self.name, err))
    }

    /// Adds `delta` to the number at `key` (unset: 0) in one atomic step and
    /// returns the sum; `delta` 0 reads the number.
    pub fn increment(&self, key: &str, delta: u64) -> Result<u64, String> {
        atomics::increment(&self.inner, key, delta).map_err(|err| describe(&self.name, err))
    }
}
