//! Event delivery: from the durable queue to a function, as a CloudEvent.
//!
//! Every event reaches its function the same way, whatever produced it (an
//! async invocation, a named queue, a cron tick or a broker's message): a
//! `POST` in CloudEvents HTTP binary mode, `ce-*` headers and the data as
//! the body, through the gateway's own invocation path, so the same limits,
//! admission, metering and logs apply. A 2xx answer settles the event; any
//! other answer, a trap or a timeout is a failure the queue retries.

mod cloudevent;
mod dispatcher;
mod operator;
mod publish;
mod service;

pub use cloudevent::{Undeliverable, check_size, header_value, request_for};
pub use dispatcher::{
    Attempt, DispatchConfig, DispatchStats, Dispatcher, Published, async_queue, queue_function,
};
pub use publish::{Consumers, PublishError, PublishRefusal, check_address, consumers};
pub use service::{QUEUE_SERVICE_HOST, QueueService};
pub use stratus_telemetry::trace_context;
