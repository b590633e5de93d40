//! CloudEvents 1.0, HTTP binary content mode.

use bytes::Bytes;
use http::{HeaderValue, Method, Uri, header};
use stratus_invoke::LiveFunction;
use stratus_storage::Delivery;

/// An event no request can carry: one of its attributes cannot be an HTTP
/// header value (it holds a newline or another control character) or its
/// path is no request path. Delivering it again would fail the same way,
/// so such an event is dead at once rather than retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undeliverable(String);

impl std::fmt::Display for Undeliverable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the event cannot be delivered as a CloudEvent: {}",
            self.0
        )
    }
}

impl std::error::Error for Undeliverable {}

/// Longest part of an offending value quoted in an error.
const QUOTED: usize = 64;

/// `value` as the header `name` (`ce-id`, `ce-source`, …), or why it cannot
/// be one. Event sources check attributes with it before queueing, so an
/// event that could never be delivered is refused where it comes in.
pub fn header_value(name: &str, value: &str) -> Result<HeaderValue, Undeliverable> {
    HeaderValue::from_str(value).map_err(|_| {
        // Debug formatting escapes the control characters, so the message
        // shows which one it was without carrying it into logs.
        let quoted: String = value.chars().take(QUOTED).collect();
        let more = if value.chars().count() > QUOTED {
            "…"
        } else {
            ""
        };
        Undeliverable(format!(
            "its {name} {quoted:?}{more} cannot be an HTTP header value \
             (control characters such as a newline are not allowed)"
        ))
    })
}

/// Why `function` cannot take an event whose data is `len` bytes, if it
/// cannot: its `max_body` applies to every event as to every request. The
/// reason starts with `body_too_large`, the code a request that large gets.
pub fn check_size(len: usize, function: &LiveFunction) -> Result<(), String> {
    if len as u64 <= function.max_body {
        return Ok(());
    }
    Err(format!(
        "body_too_large: the event's data is {len} bytes, more than the {} bytes \
         function {}/{} accepts (its max_body); it is not delivered",
        function.max_body, function.app, function.name
    ))
}

/// The request that delivers `d` to its function.
pub fn request_for(d: &Delivery) -> Result<http::Request<Bytes>, Undeliverable> {
    let uri: Uri = d.path.parse().map_err(|_| {
        let quoted: String = d.path.chars().take(QUOTED).collect();
        Undeliverable(format!("its path {quoted:?} is not a request path"))
    })?;
    let mut request = http::Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header("ce-specversion", HeaderValue::from_static("1.0"))
        .header("ce-id", header_value("ce-id", &d.id)?)
        .header("ce-source", header_value("ce-source", &d.source)?)
        .header("ce-type", header_value("ce-type", &d.kind)?)
        .header("ce-time", stratus_storage::format_time(d.time));
    if let Some(subject) = &d.subject {
        request = request.header("ce-subject", header_value("ce-subject", subject)?);
    }
    if let Some(content_type) = &d.content_type {
        request = request.header(
            header::CONTENT_TYPE,
            header_value("content-type", content_type)?,
        );
    }
    // The publisher's trace context, twice: as W3C Trace Context headers,
    // so the invocation continues the publisher's trace, and as the
    // CloudEvents distributed-tracing extension's attributes, so the
    // function sees them as attributes of the event.
    for (name, attribute, value) in [
        ("traceparent", "ce-traceparent", &d.traceparent),
        ("tracestate", "ce-tracestate", &d.tracestate),
    ] {
        if let Some(value) = value {
            let value = header_value(attribute, value)?;
            request = request.header(name, value.clone()).header(attribute, value);
        }
    }
    // Every part was checked above; what could still fail is reported the
    // same way rather than assumed away.
    request
        .body(Bytes::from(d.data.clone()))
        .map_err(|e| Undeliverable(e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::SystemTime;

    fn delivery(id: &str, subject: Option<&str>) -> Delivery {
        Delivery {
            seq: 1,
            queue: "fn:a/f".into(),
            id: id.into(),
            source: "/s".into(),
            kind: "t".into(),
            subject: subject.map(str::to_owned),
            path: "/".into(),
            content_type: Some("text/plain".into()),
            data: b"hi".to_vec(),
            traceparent: None,
            tracestate: None,
            time: SystemTime::now(),
            attempt: 1,
            max_attempts: 3,
        }
    }

    #[test]
    fn a_valid_event_becomes_a_binary_mode_request() {
        let request = request_for(&delivery("e-1", Some("orders"))).unwrap();
        assert_eq!(request.headers()["ce-id"], "e-1");
        assert_eq!(request.headers()["ce-subject"], "orders");
        assert_eq!(request.headers()["content-type"], "text/plain");
        assert_eq!(request.body().as_ref(), b"hi");
        // Published without a trace context: none is made up.
        for name in [
            "traceparent",
            "tracestate",
            "ce-traceparent",
            "ce-tracestate",
        ] {
            assert!(!request.headers().contains_key(name), "{name}");
        }
    }

    #[test]
    fn the_publishers_trace_context_is_both_headers_and_attributes() {
        const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let traced = Delivery {
            traceparent: Some(PARENT.into()),
            tracestate: Some("rojo=00f067aa0ba902b7".into()),
            ..delivery("e-1", None)
        };
        let request = request_for(&traced).unwrap();
        for name in ["traceparent", "ce-traceparent"] {
            assert_eq!(request.headers().get_all(name).iter().count(), 1, "{name}");
            assert_eq!(request.headers()[name], PARENT, "{name}");
        }
        for name in ["tracestate", "ce-tracestate"] {
            assert_eq!(request.headers()[name], "rojo=00f067aa0ba902b7", "{name}");
        }
        // A parent without a state carries no state.
        let parent_only = Delivery {
            tracestate: None,
            ..traced.clone()
        };
        let request = request_for(&parent_only).unwrap();
        assert_eq!(request.headers()["ce-traceparent"], PARENT);
        assert!(!request.headers().contains_key("tracestate"));
        assert!(!request.headers().contains_key("ce-tracestate"));

        // Stored by another way than a publish (no check on the way in), a
        // value no header can carry makes the event undeliverable, named.
        let broken = Delivery {
            tracestate: Some("rojo=1\r\nx-injected: 1".into()),
            ..traced
        };
        let error = request_for(&broken).unwrap_err().to_string();
        assert!(error.contains("its ce-tracestate"), "{error}");
    }

    #[test]
    fn an_attribute_no_header_can_carry_is_named() {
        let error = request_for(&delivery("a\nb", None)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the event cannot be delivered as a CloudEvent: its ce-id \"a\\nb\" cannot be an \
             HTTP header value (control characters such as a newline are not allowed)"
        );
        let error = request_for(&delivery("ok", Some("x\u{7f}"))).unwrap_err();
        assert!(error.to_string().contains("its ce-subject"), "{error}");
        let long = "x".repeat(500) + "\r";
        let error = header_value("ce-id", &long).unwrap_err().to_string();
        assert!(error.len() < 300, "the value is quoted in part: {error}");
    }
}
