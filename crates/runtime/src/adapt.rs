//! WASI preview 1 core modules, made components at deploy.
//!
//! Spin's Rust apps (and many other toolchains' output) are built for
//! `wasm32-wasip1`: a core module that carries its component type in
//! custom sections (`component-type...`, written by `wit-bindgen`) and
//! imports WASI preview 1. Spin wraps such a module in a component when it
//! loads it, with the WASI preview 1 adapter; Stratus does the same at
//! deploy, so the module deploys without a rebuild. A core module without a
//! component type has no `wasi:http` handler to adapt and is refused as
//! before.

use std::borrow::Cow;

use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};

use crate::error::ValidationError;

/// The component in `bytes`: the bytes themselves, or the component made
/// from a core module that declares one.
pub(crate) fn to_component(bytes: &[u8]) -> Result<Cow<'_, [u8]>, ValidationError> {
    crate::validate::check_bytes(bytes)
        .map(|()| Cow::Borrowed(bytes))
        .or_else(|e| match e {
            ValidationError::CoreModule if declares_component_type(bytes) => {
                adapt(bytes).map(Cow::Owned)
            }
            other => Err(other),
        })
}

/// Whether a core module carries a component type (`wit-bindgen` names the
/// section `component-type` with a suffix of its own).
fn declares_component_type(module: &[u8]) -> bool {
    wasmparser::Parser::new(0)
        .parse_all(module)
        .filter_map(Result::ok)
        .any(|payload| {
            matches!(payload, wasmparser::Payload::CustomSection(section)
                if section.name().starts_with("component-type"))
        })
}

fn adapt(module: &[u8]) -> Result<Vec<u8>, ValidationError> {
    let encode = || {
        wit_component::ComponentEncoder::default()
            .validate(true)
            .module(module)?
            .adapter(
                WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
                WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
            )?
            .encode()
    };
    encode().map_err(|e| ValidationError::Adapt(format!("{e:#}")))
}
