//! The W3C trace context: read from a request, handed to the guest and to
//! what it calls.

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};

use crate::w3c::trace_context;

pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// The caller's span, if `headers` carry a valid W3C `traceparent` (and
/// its `tracestate`). An invalid one is ignored, as the specification
/// asks: the invocation starts a trace of its own. The grammar is checked
/// by [`trace_context`] before the SDK's parser sees the value (it takes
/// ids of too few digits).
pub(crate) fn extract(headers: &HeaderMap) -> Option<SpanContext> {
    let (Some(parent), state) = trace_context(headers) else {
        return None;
    };
    let checked = Checked {
        parent: &parent,
        state: state.as_deref(),
    };
    let cx = TraceContextPropagator::new()
        .extract_with_context(&opentelemetry::Context::new(), &checked);
    let span = cx.span();
    let context = span.span_context();
    context.is_valid().then(|| context.clone())
}

/// A trace context that passed [`trace_context`].
struct Checked<'a> {
    parent: &'a str,
    state: Option<&'a str>,
}

impl Extractor for Checked<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => Some(self.parent),
            "tracestate" => self.state,
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent", "tracestate"]
    }
}

/// An invocation's span as those it calls see it: the context its guest
/// gets in its request's `traceparent`, and the parent of each outbound
/// call. Cheap to clone; carries no exporter, so the runtime can hold it.
#[derive(Debug, Clone)]
pub struct TraceParent {
    pub(crate) context: SpanContext,
}

/// A span made for one outbound call before it is sent: its id goes out in
/// the request's `traceparent` and comes back in the [`OutboundCall`]
/// recorded when it ends.
///
/// [`OutboundCall`]: crate::OutboundCall
#[derive(Debug, Clone)]
pub struct ChildSpan {
    pub id: [u8; 8],
    context: SpanContext,
}

impl TraceParent {
    /// Whether the span is exported (its sampled flag).
    pub fn sampled(&self) -> bool {
        self.context.is_sampled()
    }

    /// The trace's id, as 32 hexadecimal digits.
    pub fn trace_id(&self) -> String {
        self.context.trace_id().to_string()
    }

    /// Sets `traceparent` (and `tracestate`, when there is one) in
    /// `headers` to this span, replacing what was there.
    pub fn inject(&self, headers: &mut HeaderMap) {
        inject(&self.context, headers);
    }

    /// A new span under this one, for a call about to be made.
    pub fn child(&self) -> ChildSpan {
        let id = RandomIdGenerator::default().new_span_id();
        ChildSpan {
            id: id.to_bytes(),
            context: SpanContext::new(
                self.context.trace_id(),
                id,
                self.context.trace_flags(),
                false,
                self.context.trace_state().clone(),
            ),
        }
    }
}

impl ChildSpan {
    /// Sets `traceparent` (and `tracestate`) in `headers` to this span.
    pub fn inject(&self, headers: &mut HeaderMap) {
        inject(&self.context, headers);
    }
}

fn inject(context: &SpanContext, headers: &mut HeaderMap) {
    let parent = traceparent(context.trace_id(), context.span_id(), context.trace_flags());
    if let Ok(value) = HeaderValue::from_str(&parent) {
        headers.insert(TRACEPARENT, value);
    }
    let state = context.trace_state().header();
    match HeaderValue::from_str(&state) {
        Ok(value) if !state.is_empty() => {
            headers.insert(TRACESTATE, value);
        }
        _ => {
            headers.remove(TRACESTATE);
        }
    }
}

/// `traceparent` in version 00 (the only flag it defines is `sampled`).
fn traceparent(trace: TraceId, span: SpanId, flags: TraceFlags) -> String {
    format!(
        "00-{trace}-{span}-{:02x}",
        (flags & TraceFlags::SAMPLED).to_u8()
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn headers(parent: &str, state: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(TRACEPARENT, HeaderValue::from_str(parent).unwrap());
        if let Some(state) = state {
            headers.insert(TRACESTATE, HeaderValue::from_str(state).unwrap());
        }
        headers
    }

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_is_continued_with_its_state() {
        let context = extract(&headers(VALID, Some("vendor=x"))).unwrap();
        assert_eq!(
            context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(context.is_sampled());
        let parent = TraceParent { context };
        let child = parent.child();
        let mut out = HeaderMap::new();
        child.inject(&mut out);
        let sent = out[TRACEPARENT].to_str().unwrap();
        assert!(sent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert!(sent.ends_with("-01"));
        assert_eq!(&sent[36..52], hex(&child.id));
        assert_eq!(out[TRACESTATE], "vendor=x");
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn hostile_traceparents_are_ignored() {
        for bad in [
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "",
        ] {
            assert!(extract(&headers(bad, None)).is_none(), "{bad:?}");
        }
        let long_state = "k=".to_owned() + &"v".repeat(10_000);
        // The parent is kept; a state the spec would not keep is dropped.
        let context = extract(&headers(VALID, Some(&long_state)));
        if let Some(context) = context {
            assert!(context.trace_state().header().len() <= 512);
        }
    }
}
