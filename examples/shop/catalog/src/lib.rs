//! `catalog`, the shop's product list: static data compiled into the
//! component, answered as JSON.
//!
//! ```text
//! GET /shop/products          200 {"currency":"EUR","products":[{"sku","name","description","price_cents"}, …]}
//! GET /shop/products/<sku>    200 {"sku","name","description","price_cents","currency"}
//!                             404 {"error":{"code":"unknown_sku",…}}
//! ```
//!
//! `pricing` reads base prices from here with
//! `GET http://catalog.svc/shop/products/<sku>`: one place owns them.
//! The data lives in [`products`], which does not use WASI and is
//! unit-tested on the host; the handler is compiled for wasm32 only.

pub mod products;

#[cfg(target_arch = "wasm32")]
mod handler;
