//! An outbound call in the invocation's trace: it carries the invocation's
//! trace context, and its span is kept on the meter when it ends.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use stratus_telemetry::{OutboundCall, TRACEPARENT};
use wasmtime_wasi_http::Error;

use crate::meter::Meter;

/// A call under way whose span will be kept.
pub(crate) struct TracedCall {
    meter: Arc<Meter>,
    call: OutboundCall,
    began: Instant,
}

/// Puts the invocation's trace context on `request` — a new child span's,
/// unless the guest set a `traceparent` of its own (it traces itself) —
/// and, when the trace is sampled, starts keeping the call's span.
pub(crate) fn begin<B>(meter: &Arc<Meter>, request: &mut http::Request<B>) -> Option<TracedCall> {
    let parent = meter.trace()?;
    let child = parent.child();
    if !request.headers().contains_key(TRACEPARENT) {
        child.inject(request.headers_mut());
    }
    if !parent.sampled() {
        return None;
    }
    let uri = request.uri();
    Some(TracedCall {
        meter: meter.clone(),
        call: OutboundCall {
            span_id: child.id,
            started: SystemTime::now(),
            duration: Default::default(),
            method: request.method().as_str().to_owned(),
            scheme: if uri.scheme_str() == Some("https") {
                "https"
            } else {
                "http"
            },
            host: uri.host().unwrap_or_default().to_owned(),
            path: uri.path().to_owned(),
            status: None,
            error: None,
        },
        began: Instant::now(),
    })
}

impl TracedCall {
    /// Ends the call's span: with the status of its answer, or why it got
    /// none.
    pub(crate) fn end(mut self, outcome: Result<u16, &Error>) {
        self.call.duration = self.began.elapsed();
        match outcome {
            Ok(status) => self.call.status = Some(status),
            Err(error) => self.call.error = Some(error.to_string()),
        }
        self.meter.add_call(self.call);
    }
}

/// Ends `call`, if there is one, with `outcome`.
pub(crate) fn end(call: Option<TracedCall>, outcome: Result<u16, &Error>) {
    if let Some(call) = call {
        call.end(outcome);
    }
}
