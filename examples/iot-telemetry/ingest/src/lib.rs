//! `ingest`, the first function of the `iot-telemetry` app: it receives
//! sensor telemetry published over MQTT (topic `sensors/+/telemetry`) as a
//! CloudEvent in HTTP binary mode, validates and aggregates it, and raises an
//! alert through the node's queue service when a reading is too hot.
//!
//! ```text
//! POST /            ce-id: …, ce-subject: sensors/dev-7/telemetry
//! {"readings":[{"temperature":31.2,"humidity":40},{"temperature":24}]}
//!
//! 200 {"alert":true,"device":"dev-7","event":"…","max_temperature":31.2,
//!      "mean_humidity":40.0,"mean_temperature":27.6,"min_temperature":24.0,"readings":2}
//! ```
//!
//! When the hottest reading is above `ALERT_ABOVE` (°C, default 30) it
//! publishes `{"device","max_temperature","threshold","readings","source_event"}`
//! with `POST http://queue.svc/alerts` (outbound HTTP) before answering; if
//! that fails it answers 503 so the event is delivered again. Invalid input is
//! `422 {"error":{"code":"invalid_reading","message":…}}`. One line per event
//! goes to stdout, which the node keeps as the function's log.
//!
//! The logic lives in [`telemetry`], which does not use WASI and is
//! unit-tested on the host; the handler is compiled for wasm32 only.

pub mod telemetry;

#[cfg(target_arch = "wasm32")]
mod handler;
