//! Traces of invocations, exported over OTLP.
//!
//! Each invocation is one span with the OpenTelemetry FaaS attributes
//! (`faas.trigger`, `faas.invocation_id`, `faas.coldstart`, …), children
//! for its phases (queue, instantiate, execution) and one for each outbound
//! call it made. A W3C `traceparent` from the caller is continued; the
//! guest's request carries the invocation's own, and so does every request
//! it sends — to the network, to another function (`.svc`) or to a queue,
//! whose event carries it to the invocation that handles it — so one trace
//! shows a request, the functions it called and the events it caused.
//!
//! The crate holds no wasmtime and no HTTP server: the runtime records
//! [`OutboundCall`]s against a [`TraceParent`], the invoker turns an ended
//! invocation into spans with [`Tracer::end`].

mod context;
mod export;
mod spans;
mod w3c;

pub use context::{ChildSpan, TRACEPARENT, TRACESTATE, TraceParent};
pub use export::{Begun, TelemetryError, Tracer, TracingConfig};
pub use spans::{Invocation, MAX_OUTBOUND_SPANS, OutboundCall, Phases};
pub use w3c::trace_context;
