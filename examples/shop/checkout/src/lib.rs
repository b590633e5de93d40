//! `checkout`, which places an order:
//!
//! ```text
//! POST /shop/checkout   {"order":"o-1","items":[{"sku":"mug-stratus","quantity":2}]}
//! 201 {"order":"o-1","status":"placed","currency":"EUR","total_cents":2500,
//!      "items":[{"sku","name","quantity","unit_price_cents","markup_percent","total_cents"}]}
//! ```
//!
//! 1. prices each item with `pricing` (`GET http://pricing.svc/shop/price/<sku>?quantity=N`);
//! 2. reserves each item with `inventory` (`POST http://inventory.svc/reserve`),
//!    and on a refusal gives back what it reserved (`POST http://inventory.svc/release`):
//!    409, nothing published;
//! 3. records the order as `placed` in key-value bucket `orders` (shared with
//!    the `orders` function) and publishes it to queue `orders`
//!    (`POST http://queue.svc/orders`, `ce-id` = the order id), where
//!    `orders` marks it `confirmed`.
//!
//! The order id is the idempotency key: placing an order that is already
//! recorded answers 200 with the record (`"replayed": true`) and reserves
//! nothing again; with other items it is a 409. A malformed body is a 400
//! that names what is wrong, a failing dependency a 502.
//!
//! Parsing and the summary live in [`order`], which does not use WASI and is
//! unit-tested on the host; the handler is compiled for wasm32 only.

pub mod order;

#[cfg(target_arch = "wasm32")]
mod handler;
