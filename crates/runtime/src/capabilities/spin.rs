//! Spin 2's own interfaces, `fermyon:spin/key-value` and
//! `fermyon:spin/variables`, which Spin applications import (the Rust SDK's
//! `key_value::Store` and `variables::get`). They are other names for
//! capabilities the node already has, so each call goes to the same
//! implementation and the same grant as `wasi:keyvalue` and `wasi:config`:
//! a Spin component opens the buckets its `key_value_stores` name and reads
//! the variables its `[component.x.variables]` declare, and nothing else.

use wasmtime::component::{HasData, Linker, Resource};

use super::config::ConfigState;
use super::keyvalue::bindings::wasi::keyvalue::store as wasi_store;
use super::keyvalue::{Bucket, KeyValueData, KeyValueView};
use super::{CapabilityInfo, Grants};
use crate::host::InstanceState;

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "fermyon:spin/imports@2.0.0",
        imports: { default: async | trappable },
        with: {
            "fermyon:spin/key-value.store": crate::capabilities::keyvalue::Bucket,
        },
    });
}

use bindings::fermyon::spin::{key_value, variables};

pub const KEY_VALUE: CapabilityInfo = CapabilityInfo {
    package: "fermyon:spin",
    versions: &["2.0.0"],
    interfaces: &["key-value"],
    grant: "`keyvalue = [\"<bucket>\", ...]` (in a spin.toml, `key_value_stores`)",
    granted: |grants: &Grants| !grants.keyvalue.buckets.is_empty(),
};

pub const VARIABLES: CapabilityInfo = CapabilityInfo {
    package: "fermyon:spin",
    versions: &["2.0.0"],
    interfaces: &["variables"],
    grant: "`config = { <key> = \"<value>\" }` or `secrets = [\"<name>\"]` (in a spin.toml, `[component.<id>.variables]`)",
    granted: |grants: &Grants| {
        !grants.config.values.is_empty() || !grants.config.secrets.is_empty()
    },
};

struct VariablesData;

impl HasData for VariablesData {
    type Data<'a> = &'a ConfigState;
}

pub(crate) fn add_to_linker(linker: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    key_value::add_to_linker::<_, KeyValueData>(linker, super::keyvalue::view)?;
    variables::add_to_linker::<_, VariablesData>(linker, |state| &state.capabilities.config)?;
    Ok(())
}

type KvAnswer<T> = wasmtime::Result<Result<T, key_value::Error>>;

fn kv_error(error: wasi_store::Error) -> key_value::Error {
    match error {
        wasi_store::Error::NoSuchStore => key_value::Error::NoSuchStore,
        wasi_store::Error::AccessDenied => key_value::Error::AccessDenied,
        wasi_store::Error::Other(message) => key_value::Error::Other(message),
    }
}

impl key_value::Host for KeyValueView<'_> {}

impl key_value::HostStore for KeyValueView<'_> {
    async fn open(&mut self, label: String) -> KvAnswer<Resource<Bucket>> {
        Ok(wasi_store::Host::open(self, label).await?.map_err(kv_error))
    }

    async fn get(&mut self, store: Resource<Bucket>, key: String) -> KvAnswer<Option<Vec<u8>>> {
        Ok(wasi_store::HostBucket::get(self, store, key)
            .await?
            .map_err(kv_error))
    }

    async fn set(&mut self, store: Resource<Bucket>, key: String, value: Vec<u8>) -> KvAnswer<()> {
        Ok(wasi_store::HostBucket::set(self, store, key, value)
            .await?
            .map_err(kv_error))
    }

    async fn delete(&mut self, store: Resource<Bucket>, key: String) -> KvAnswer<()> {
        Ok(wasi_store::HostBucket::delete(self, store, key)
            .await?
            .map_err(kv_error))
    }

    async fn exists(&mut self, store: Resource<Bucket>, key: String) -> KvAnswer<bool> {
        Ok(wasi_store::HostBucket::exists(self, store, key)
            .await?
            .map_err(kv_error))
    }

    /// Every key of the store, as Spin answers: page after page of
    /// `list-keys`. The app's key quota bounds how many there are.
    async fn get_keys(&mut self, store: Resource<Bucket>) -> KvAnswer<Vec<String>> {
        let mut keys = Vec::new();
        let mut cursor = None;
        loop {
            let page = Resource::<Bucket>::new_borrow(store.rep());
            match wasi_store::HostBucket::list_keys(self, page, cursor).await? {
                Ok(response) => {
                    keys.extend(response.keys);
                    match response.cursor {
                        Some(next) => cursor = Some(next),
                        None => return Ok(Ok(keys)),
                    }
                }
                Err(e) => return Ok(Err(kv_error(e))),
            }
        }
    }

    async fn drop(&mut self, store: Resource<Bucket>) -> wasmtime::Result<()> {
        wasi_store::HostBucket::drop(self, store).await
    }
}

/// A name Spin accepts for a variable: lowercase ASCII letters, digits and
/// underscores, starting with a letter.
fn valid_variable_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl variables::Host for &ConfigState {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, variables::Error>> {
        if !valid_variable_name(&name) {
            let shown: String = name.chars().take(64).collect();
            return Ok(Err(variables::Error::InvalidName(format!(
                "{shown:?}: a variable name is lowercase letters, digits and '_', starting with a letter"
            ))));
        }
        Ok(match self.value(&name).await {
            Ok(Some(value)) => Ok(value),
            Ok(None) => Err(variables::Error::Undefined(format!(
                "no variable {name:?}: declare it in the component's variables"
            ))),
            Err(failure) => Err(variables::Error::Provider(failure.0)),
        })
    }
}
