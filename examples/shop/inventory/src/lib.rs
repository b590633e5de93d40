//! `inventory`, the shop's stock levels, kept in key-value bucket
//! `inventory`:
//!
//! ```text
//! GET  /shop/inventory/<sku>   200 {"sku","stock"}           (0 if never stocked)
//! PUT  /shop/inventory/<sku>   body: 25   200 {"sku","stock"} (sets it; admin use)
//! POST /reserve   {"order":"o-1","sku":"mug-stratus","quantity":2}
//!                 200 {"order","sku","quantity","replayed","stock"}
//!                 409 {"error":{"code":"insufficient_stock","available":1,…}}
//! POST /release   {"order":"o-1","sku":"mug-stratus"}
//!                 200 {"order","sku","released"}   (units back in stock)
//! ```
//!
//! `/reserve` and `/release` are internal: no route leads there from the
//! gateway, so only the app's functions reach them, as
//! `http://inventory.svc/reserve` (and an operator, with
//! `stratus invoke inventory --path /reserve`). A reservation is made at
//! most once per order and SKU: repeating it answers `"replayed": true`.
//! How it stays correct under concurrency is explained in [`stock`], which
//! does not use WASI and is unit-tested on the host.

pub mod stock;

#[cfg(target_arch = "wasm32")]
mod handler;
