//! `orders`, the consumer of queue `orders` and the place to look an order
//! up:
//!
//! ```text
//! (queue orders)  POST /   ce-id: o-1   {"order":"o-1","status":"placed",…}
//!                 200 {"order":"o-1","status":"confirmed"}
//! GET /shop/orders/<id>    200 {"order","status","items","total_cents",…}   404 unknown order
//! ```
//!
//! `checkout` records each order as `placed` in key-value bucket `orders`
//! and publishes it; this function marks it `confirmed` (a real shop would
//! send the confirmation e-mail or start fulfilment here). Setting the
//! status is idempotent, so a redelivered event does no harm.
//!
//! The event checks live in [`event`], which does not use WASI and is
//! unit-tested on the host; the handler is compiled for wasm32 only.

pub mod event;

#[cfg(target_arch = "wasm32")]
mod handler;
