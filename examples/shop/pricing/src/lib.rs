//! `pricing`, the shop's dynamic prices:
//!
//! ```text
//! GET /shop/price/<sku>?quantity=2
//! 200 {"sku","name","quantity","base_price_cents","unit_price_cents","total_cents",
//!      "stock","markup_percent","currency"}
//! ```
//!
//! The base price comes from `catalog` (`GET http://catalog.svc/shop/products/<sku>`)
//! and the stock from `inventory` (`GET http://inventory.svc/shop/inventory/<sku>`),
//! both outbound requests the node answers in process. When the stock is at
//! or below `low_stock_threshold`, the unit price carries a markup of
//! `low_stock_markup_percent`; both are read with `wasi:config` from the
//! manifest's `config` table. An unknown SKU is a 404, a failing catalog or
//! inventory a 502.
//!
//! The arithmetic lives in [`price`], which does not use WASI and is
//! unit-tested on the host; the handler is compiled for wasm32 only.

pub mod price;

#[cfg(target_arch = "wasm32")]
mod handler;
