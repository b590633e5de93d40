//! What the functions of the `shop` example share, so each of them is only
//! its own logic:
//!
//! - [`http`]: read a request, answer JSON, and call another function of the
//!   app (`http://<function>.svc/…`) or the node's queue (`http://queue.svc/…`)
//!   with an ordinary outbound `wasi:http` request;
//! - [`kv`] and [`config`]: the `wasi:keyvalue` and `wasi:config` imports of
//!   the `stratus:capabilities` world (`wit/world.wit`), generated here once
//!   with `wit-bindgen` and wrapped so that errors are plain messages;
//! - [`text`]: checks and JSON shapes that need no WASI (unit-tested on the
//!   host).
//!
//! A component imports only the functions it calls: `catalog`, which uses
//! neither key-value nor config, imports neither, so it needs no grant.

pub mod text;

#[cfg(target_arch = "wasm32")]
pub mod config;
#[cfg(target_arch = "wasm32")]
pub mod http;
#[cfg(target_arch = "wasm32")]
pub mod kv;

#[cfg(target_arch = "wasm32")]
mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit",
        world: "stratus:capabilities/capabilities",
        // Nothing here is shared with another crate's bindings.
        generate_all,
    });
}
