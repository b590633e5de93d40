//! `alerts`, the second function of the `iot-telemetry` app: it consumes the
//! `alerts` queue that `ingest` publishes to (through `http://queue.svc/alerts`)
//! and reports each alert on stdout, which the node keeps as the function's
//! log (`stratus logs alerts`):
//!
//! ```text
//! ALERT dev-7: 31.2 °C above 30 °C (event alert-…)
//! ```
//!
//! It answers `200 {"alerted":"dev-7","event":<ce-id>}`; a body that is not
//! an alert is `422 {"error":{"code":"invalid_alert","message":…}}` (which,
//! after the trigger's attempts, leaves the event in the dead-letter queue).
//!
//! The logic lives in [`alert`], which does not use WASI and is unit-tested
//! on the host; the handler is compiled for wasm32 only.

pub mod alert;

#[cfg(target_arch = "wasm32")]
mod handler;
