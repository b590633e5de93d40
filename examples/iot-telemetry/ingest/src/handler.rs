//! The WASI side of `ingest`: read the CloudEvent (binary mode: `ce-*`
//! headers, the MQTT payload as body), publish an alert through outbound
//! HTTP to `http://queue.svc/alerts` when needed, and answer.

use std::env::{self, VarError};
// `Write::flush` blocks until the bytes are out; the stream's own `flush`
// only starts flushing.
use std::io::{Read as _, Write};

use serde_json::{Value, json};
use wasip2::clocks::monotonic_clock;
use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    Fields, IncomingBody, IncomingRequest, IncomingResponse, Method, OutgoingBody, OutgoingRequest,
    OutgoingResponse, ResponseOutparam, Scheme,
};
use wasip2::io::poll;

use crate::telemetry::{self, Invalid};

/// Largest message read (1000 readings fit easily).
const MAX_BODY: u64 = 1024 * 1024;
/// Where alerts are published: the node's queue service, queue `alerts`.
const QUEUE_AUTHORITY: &str = "queue.svc";
const ALERTS_PATH: &str = "/alerts";
/// How long to wait for `queue.svc` to answer before giving up (well
/// within the function's `timeout`, so the failure is a clear 503).
const PUBLISH_TIMEOUT_NS: u64 = 5_000_000_000;

struct Ingest;

wasip2::http::proxy::export!(Ingest);

impl Guest for Ingest {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let reply = ingest(&request);
        send(response_out, reply);
    }
}

fn ingest(request: &IncomingRequest) -> Reply {
    if !matches!(request.method(), Method::Post) {
        let mut reply = Reply::error(
            405,
            "method_not_allowed",
            "send the telemetry with POST (the body is the MQTT payload)",
        );
        reply
            .headers
            .push(("allow".to_string(), "POST".to_string()));
        return reply;
    }
    let (event, subject) = {
        let headers = request.headers();
        (header(&headers, "ce-id"), header(&headers, "ce-subject"))
    };
    let label = event.as_deref().unwrap_or("without ce-id");

    let threshold = match alert_threshold() {
        Ok(threshold) => threshold,
        Err(message) => {
            println!("event {label}: not handled: {message}");
            return Reply::error(500, "bad_config", message);
        }
    };
    let body = match read_body(request) {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    let batch = match telemetry::parse_batch(&body, subject.as_deref()) {
        Ok(batch) => batch,
        Err(Invalid(message)) => {
            println!("event {label}: rejected: {message}");
            return Reply::error(422, "invalid_reading", message);
        }
    };

    let summary = batch.summarize();
    let alert = summary.alerts(threshold);
    if alert {
        let alert_body = summary.alert_json(threshold, event.as_deref()).to_string();
        if let Err(reason) = publish_alert(&alert_body, event.as_deref()) {
            println!(
                "{}",
                summary.log_line(&format!("alert NOT published: {reason}"))
            );
            // Not a 2xx, so the node delivers the event again (up to the
            // trigger's max_attempts); no `retry-after`, which would mark
            // the function as merely busy and not use up an attempt.
            return Reply::error(
                503,
                "alert_not_published",
                format!(
                    "publishing the alert to http://{QUEUE_AUTHORITY}{ALERTS_PATH} failed: \
                     {reason}; answering 503 so that the event is delivered again"
                ),
            );
        }
    }
    println!(
        "{}",
        summary.log_line(if alert { "alert raised" } else { "no alert" })
    );
    Reply::ok(summary.to_json(alert, event.as_deref()))
}

/// `ALERT_ABOVE` (set in `stratus.toml`), or the default of 30 °C.
fn alert_threshold() -> Result<f64, String> {
    match env::var("ALERT_ABOVE") {
        Ok(value) => telemetry::threshold(Some(&value)),
        Err(VarError::NotPresent) => telemetry::threshold(None),
        Err(VarError::NotUnicode(_)) => Err("ALERT_ABOVE is not valid UTF-8".to_string()),
    }
}

// --------------------------------------------------------- outbound HTTP

/// `POST http://queue.svc/alerts` with the alert as JSON; `Ok` once the
/// queue answered 2xx, else why not.
fn publish_alert(body: &str, source_event: Option<&str>) -> Result<(), String> {
    let mut headers = vec![
        ("content-type".to_string(), b"application/json".to_vec()),
        (
            "content-length".to_string(),
            body.len().to_string().into_bytes(),
        ),
        ("ce-type".to_string(), b"com.example.iot.alert".to_vec()),
    ];
    if let Some(id) = source_event {
        // A stable id: if this event is delivered again after the alert was
        // already published, the queue can recognise the alert as a repeat.
        headers.push(("ce-id".to_string(), format!("alert-{id}").into_bytes()));
    }
    let headers =
        Fields::from_list(&headers).map_err(|err| format!("invalid request headers: {err}"))?;
    let request = OutgoingRequest::new(headers);
    request
        .set_method(&Method::Post)
        .map_err(|()| "the host refused the method POST".to_string())?;
    request
        .set_scheme(Some(&Scheme::Http))
        .map_err(|()| "the host refused the scheme http".to_string())?;
    request
        .set_authority(Some(QUEUE_AUTHORITY))
        .map_err(|()| format!("the host refused the authority {QUEUE_AUTHORITY}"))?;
    request
        .set_path_with_query(Some(ALERTS_PATH))
        .map_err(|()| format!("the host refused the path {ALERTS_PATH}"))?;
    let out_body = request
        .body()
        .map_err(|()| "the request body was already taken".to_string())?;

    // Send the request first, then stream its body, then wait for the answer.
    let future = outgoing_handler::handle(request, None)
        .map_err(|code| format!("the request was refused: {code}"))?;
    {
        let mut stream = out_body
            .write()
            .map_err(|()| "the request body stream was already taken".to_string())?;
        stream
            .write_all(body.as_bytes())
            .and_then(|()| Write::flush(&mut stream))
            .map_err(|err| format!("sending the alert failed: {err}"))?;
    } // the stream must be dropped before the body is finished
    OutgoingBody::finish(out_body, None)
        .map_err(|code| format!("finishing the request body failed: {code}"))?;

    let ready = future.subscribe();
    let deadline = monotonic_clock::subscribe_duration(PUBLISH_TIMEOUT_NS);
    poll::poll(&[&ready, &deadline]);
    let response = match future.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(format!("the request failed: {code}")),
        Some(Err(())) => return Err("the response was already taken".to_string()),
        None => {
            return Err(format!(
                "no answer within {} s",
                PUBLISH_TIMEOUT_NS / 1_000_000_000
            ));
        }
    };
    let status = response.status();
    if (200..300).contains(&status) {
        Ok(())
    } else {
        let detail = response_snippet(&response);
        Err(format!("{QUEUE_AUTHORITY} answered {status}{detail}"))
    }
}

/// The start of an error response's body, as `": …"` (empty if none).
fn response_snippet(response: &IncomingResponse) -> String {
    let Ok(body) = response.consume() else {
        return String::new();
    };
    let mut bytes = Vec::new();
    if let Ok(mut stream) = body.stream() {
        let _ = (&mut stream).take(300).read_to_end(&mut bytes);
    }
    drop(body);
    let text = String::from_utf8_lossy(&bytes);
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

// ------------------------------------------------------------ plumbing

/// A response about to be sent: status, extra headers and a JSON body.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Reply {
    fn ok(body: Value) -> Self {
        Self {
            status: 200,
            headers: Vec::new(),
            body,
        }
    }

    fn error(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: json!({ "error": { "code": code, "message": message.into() } }),
        }
    }
}

/// The first value of header `name`, if present and not blank.
fn header(headers: &Fields, name: &str) -> Option<String> {
    let values = headers.get(name);
    let value = String::from_utf8_lossy(values.first()?).trim().to_string();
    (!value.is_empty()).then_some(value)
}

/// Reads the whole request body from its `wasi:io` input stream.
fn read_body(request: &IncomingRequest) -> Result<Vec<u8>, Reply> {
    let unavailable = |what: &str| Reply::error(400, "bad_request", what);
    let body: IncomingBody = request
        .consume()
        .map_err(|()| unavailable("the request body was already consumed"))?;
    let mut stream = body
        .stream()
        .map_err(|()| unavailable("the request body stream is unavailable"))?;

    let mut bytes = Vec::new();
    let result = (&mut stream).take(MAX_BODY + 1).read_to_end(&mut bytes);
    // The stream is a child of the body: drop it first, then finish the body.
    drop(stream);
    drop(IncomingBody::finish(body));

    match result {
        Err(err) => Err(unavailable(&format!(
            "reading the request body failed: {err}"
        ))),
        Ok(_) if bytes.len() as u64 > MAX_BODY => Err(Reply::error(
            413,
            "body_too_large",
            format!("the message is larger than {MAX_BODY} bytes"),
        )),
        Ok(_) => Ok(bytes),
    }
}

fn send(response_out: ResponseOutparam, reply: Reply) {
    let mut headers = vec![("content-type".to_string(), b"application/json".to_vec())];
    headers.extend(reply.headers.into_iter().map(|(k, v)| (k, v.into_bytes())));
    let mut body = reply.body.to_string();
    body.push('\n');

    let fields = Fields::from_list(&headers).unwrap_or_else(|_| Fields::new());
    let response = OutgoingResponse::new(fields);
    // Every status used here is valid; 500 if one ever is not.
    if response.set_status_code(reply.status).is_err() {
        let _ = response.set_status_code(500);
    }
    let Ok(out_body) = response.body() else {
        return; // cannot happen: the body is taken only once
    };
    ResponseOutparam::set(response_out, Ok(response));

    let written = match out_body.write() {
        Ok(mut out) => out
            .write_all(body.as_bytes())
            .and_then(|()| Write::flush(&mut out))
            .is_ok(),
        Err(()) => false,
    }; // the stream must be dropped before the body is finished
    if written {
        let _ = OutgoingBody::finish(out_body, None);
    }
}
