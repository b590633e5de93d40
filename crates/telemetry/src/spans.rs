//! What an ended invocation becomes: its span, with the OpenTelemetry FaaS
//! attributes, and one child span for each phase and each outbound call.
//!
//! Spans are made when the invocation has ended, from what its meter
//! measured, rather than opened and closed around the work: the request
//! path then does no tracing work beyond reading the parent and making ids.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use stratus_storage::Trigger;

/// Outbound calls kept per invocation: a guest making thousands must not
/// make its span thousands of children (the meter counts them all).
pub const MAX_OUTBOUND_SPANS: usize = 64;

/// `faas.trigger`: an event is delivered from a queue (`pubsub`); every
/// other way in is a request.
fn faas_trigger(trigger: Trigger) -> &'static str {
    match trigger {
        Trigger::Event => "pubsub",
        Trigger::Http | Trigger::Api | Trigger::Service => "http",
    }
}

/// Where an invocation's time went before its answer: waiting for a slot,
/// making the instance, running the handler.
#[derive(Debug, Clone, Copy, Default)]
pub struct Phases {
    pub queued: Duration,
    pub instantiate: Duration,
    pub execution: Duration,
}

/// One outbound HTTP request or `.svc` call, as the runtime saw it.
#[derive(Debug, Clone)]
pub struct OutboundCall {
    /// The span id sent in its `traceparent` (see [`ChildSpan`]).
    ///
    /// [`ChildSpan`]: crate::ChildSpan
    pub span_id: [u8; 8],
    pub started: SystemTime,
    pub duration: Duration,
    pub method: String,
    pub scheme: &'static str,
    pub host: String,
    /// The path, without the query (which may hold credentials).
    pub path: String,
    pub status: Option<u16>,
    /// Why it failed, when it got no answer.
    pub error: Option<String>,
}

/// One ended invocation, as the invoker knew it.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub id: String,
    pub namespace: String,
    /// The app's name within its namespace.
    pub app: String,
    pub function: String,
    pub version: u64,
    pub trigger: Trigger,
    pub started: SystemTime,
    pub ended: SystemTime,
    pub cold: bool,
    pub method: String,
    pub path: String,
    /// The status its caller got, if it got one.
    pub status: Option<u16>,
    /// The platform's code when it failed (a trap, a timeout, a refusal).
    pub error: Option<String>,
    pub phases: Option<Phases>,
    pub outbound: Vec<OutboundCall>,
}

/// The spans of `invocation`, whose own span is `context` under `parent`.
pub(crate) fn spans(
    invocation: Invocation,
    context: &SpanContext,
    parent: Option<&SpanContext>,
    scope: &InstrumentationScope,
) -> Vec<SpanData> {
    let mut out = Vec::with_capacity(4 + invocation.outbound.len());
    let kind = match invocation.trigger {
        Trigger::Event => SpanKind::Consumer,
        _ => SpanKind::Server,
    };
    // A failure is the platform's code, else a 5xx answer: it is both the
    // span's error status and its `error.type`.
    let error_type = invocation.error.clone().or_else(|| {
        invocation
            .status
            .filter(|s| *s >= 500)
            .map(|s| s.to_string())
    });
    let status = error_type.clone().map_or(Status::Unset, Status::error);
    let resource_id = format!(
        "stratus:{}/{}/{}",
        invocation.namespace, invocation.app, invocation.function
    );
    let mut attributes = vec![
        KeyValue::new("faas.trigger", faas_trigger(invocation.trigger)),
        KeyValue::new("faas.invocation_id", invocation.id.clone()),
        KeyValue::new("faas.coldstart", invocation.cold),
        KeyValue::new("faas.name", invocation.function.clone()),
        KeyValue::new("faas.version", invocation.version.to_string()),
        KeyValue::new("cloud.resource_id", resource_id),
        KeyValue::new("stratus.namespace", invocation.namespace.clone()),
        KeyValue::new("stratus.app", invocation.app.clone()),
        KeyValue::new("stratus.trigger", invocation.trigger.as_str()),
        KeyValue::new("http.request.method", invocation.method.clone()),
        KeyValue::new("url.path", invocation.path.clone()),
    ];
    if let Some(status) = invocation.status {
        attributes.push(KeyValue::new(
            "http.response.status_code",
            i64::from(status),
        ));
    }
    if let Some(kind) = error_type {
        attributes.push(KeyValue::new("error.type", kind));
    }
    let name = format!("{}/{}", invocation.app, invocation.function);
    out.push(span(
        Base {
            context: context.clone(),
            parent,
            kind,
            name: name.into(),
            start: invocation.started,
            end: invocation.ended.max(invocation.started),
            status,
        },
        attributes,
        scope,
    ));

    if let Some(phases) = invocation.phases {
        let mut at = invocation.started;
        for (name, length) in [
            ("queue", phases.queued),
            ("instantiate", phases.instantiate),
            ("execution", phases.execution),
        ] {
            // A request admitted at once never queued: no span for it.
            if name == "queue" && length.is_zero() {
                continue;
            }
            let child = child_context(context, SpanId::from_bytes(random_id()));
            out.push(span(
                Base {
                    context: child,
                    parent: Some(context),
                    kind: SpanKind::Internal,
                    name: name.into(),
                    start: at,
                    end: at + length,
                    status: Status::Unset,
                },
                Vec::new(),
                scope,
            ));
            at += length;
        }
    }

    for call in invocation.outbound.into_iter().take(MAX_OUTBOUND_SPANS) {
        out.push(outbound_span(call, context, scope));
    }
    out
}

/// A call to `queue.svc` publishes an event (a producer span, which the
/// event's consumer continues); any other is an HTTP client span.
fn outbound_span(
    call: OutboundCall,
    parent: &SpanContext,
    scope: &InstrumentationScope,
) -> SpanData {
    let context = child_context(parent, SpanId::from_bytes(call.span_id));
    let status = match (&call.error, call.status) {
        (Some(error), _) => Status::error(error.clone()),
        (None, Some(s)) if s >= 400 => Status::error(format!("status {s}")),
        _ => Status::Unset,
    };
    let publish = call.host == "queue.svc";
    let (kind, name): (SpanKind, Cow<'static, str>) = if publish {
        let queue = call.path.trim_start_matches('/').to_owned();
        (SpanKind::Producer, format!("send {queue}").into())
    } else {
        (SpanKind::Client, call.method.clone().into())
    };
    let mut attributes = vec![
        KeyValue::new("http.request.method", call.method.clone()),
        KeyValue::new("server.address", call.host.clone()),
        KeyValue::new(
            "url.full",
            format!("{}://{}{}", call.scheme, call.host, call.path),
        ),
    ];
    if publish {
        attributes.push(KeyValue::new("messaging.system", "stratus"));
        attributes.push(KeyValue::new("messaging.operation.type", "send"));
        attributes.push(KeyValue::new(
            "messaging.destination.name",
            call.path.trim_start_matches('/').to_owned(),
        ));
    }
    if let Some(status) = call.status {
        attributes.push(KeyValue::new(
            "http.response.status_code",
            i64::from(status),
        ));
    }
    if let Some(error) = &call.error {
        attributes.push(KeyValue::new("error.type", error.clone()));
    }
    span(
        Base {
            context,
            parent: Some(parent),
            kind,
            name,
            start: call.started,
            end: call.started + call.duration,
            status,
        },
        attributes,
        scope,
    )
}

struct Base<'a> {
    context: SpanContext,
    parent: Option<&'a SpanContext>,
    kind: SpanKind,
    name: Cow<'static, str>,
    start: SystemTime,
    end: SystemTime,
    status: Status,
}

fn span(base: Base<'_>, attributes: Vec<KeyValue>, scope: &InstrumentationScope) -> SpanData {
    SpanData {
        span_context: base.context,
        parent_span_id: base.parent.map_or(SpanId::INVALID, SpanContext::span_id),
        parent_span_is_remote: base.parent.is_some_and(SpanContext::is_remote),
        span_kind: base.kind,
        name: base.name,
        start_time: base.start,
        end_time: base.end,
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: base.status,
        instrumentation_scope: scope.clone(),
    }
}

fn child_context(parent: &SpanContext, id: SpanId) -> SpanContext {
    SpanContext::new(
        parent.trace_id(),
        id,
        parent.trace_flags(),
        false,
        parent.trace_state().clone(),
    )
}

fn random_id() -> [u8; 8] {
    use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};
    RandomIdGenerator::default().new_span_id().to_bytes()
}
