//! `wasi:config`: the values of the function's manifest `config` table.

use crate::bindings::wasi::config::store;

/// The value of `key`, none when the manifest does not set it.
pub fn get(key: &str) -> Result<Option<String>, String> {
    store::get(key).map_err(|err| match err {
        store::Error::Upstream(message) | store::Error::Io(message) => {
            format!("reading config value {key:?} failed: {message}")
        }
    })
}
