//! `payments`: an idempotent payment handler, reachable over HTTP
//! (`POST /payments`) and as the consumer of the `payments` queue.
//!
//! ```text
//! POST /payments     idempotency-key: order-42      (or, for an event, ce-id: order-42)
//! {"amount": 1250, "currency": "EUR", "account": "acc-1"}
//!
//! 200 {"account":"acc-1","amount":1250,"currency":"EUR","idempotency_key":"order-42",
//!      "status":"charged","transaction":"txn-…"}
//! ```
//!
//! The transaction id is derived from the idempotency key alone (`txn-` and
//! 16 hex digits of its FNV-1a hash), so every delivery of one event (the
//! `ce-id` is the same on each retry) yields the same transaction, and the
//! processor downstream sees a retry as a repeat, not a second charge.
//!
//! | status | code | when |
//! | --- | --- | --- |
//! | 400 | `missing_idempotency_key`, `invalid_idempotency_key` | neither `ce-id` nor `idempotency-key`, or an unusable one |
//! | 402 | `card_declined` | account `acc-declined` |
//! | 405 | `method_not_allowed` | not a `POST` |
//! | 413 | `body_too_large` | a body over 64 KiB |
//! | 422 | `invalid_payment` | the body is not a valid payment |
//! | 503 | `processor_unavailable` | account `acc-flaky` |
//!
//! The logic lives in [`payment`], which does not use WASI and is
//! unit-tested on the host; the handler is compiled for wasm32 only.

pub mod payment;

#[cfg(target_arch = "wasm32")]
mod handler;
