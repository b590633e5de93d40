//! The WASI side of `payments`: read the key and the body, charge, answer.

// `Write::flush` blocks until the bytes are out; the stream's own `flush`
// only starts flushing.
use std::io::{Read as _, Write};

use serde_json::{Value, json};
use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{
    Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

use crate::payment::{self, Failure};

/// Largest request body read; a payment is well under 1 KiB.
const MAX_BODY: u64 = 64 * 1024;

struct Payments;

wasip2::http::proxy::export!(Payments);

impl Guest for Payments {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let reply = pay(&request);
        send(response_out, reply);
    }
}

fn pay(request: &IncomingRequest) -> Reply {
    if !matches!(request.method(), Method::Post) {
        let mut reply = Reply::error(
            405,
            "method_not_allowed",
            "send a payment with POST /payments",
        );
        reply
            .headers
            .push(("allow".to_string(), "POST".to_string()));
        return reply;
    }
    let (ce_id, key_header) = {
        let headers = request.headers();
        (first(&headers, "ce-id"), first(&headers, "idempotency-key"))
    };
    let key = match payment::idempotency_key(ce_id.as_deref(), key_header.as_deref()) {
        Ok(key) => key,
        Err(failure) => {
            println!("refused: {}", failure.message());
            return Reply::failure(&failure);
        }
    };
    let body = match read_body(request) {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    let charged = payment::parse_payment(&body).and_then(|p| payment::charge(p, &key));
    match charged {
        Ok(charge) => {
            println!("{}", charge.log_line());
            Reply {
                status: 200,
                headers: Vec::new(),
                body: charge.to_json(),
            }
        }
        Err(failure) => {
            println!(
                "not charged (key {key}): {}: {}",
                failure.code(),
                failure.message()
            );
            Reply::failure(&failure)
        }
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
    fn error(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: json!({ "error": { "code": code, "message": message.into() } }),
        }
    }

    fn failure(failure: &Failure) -> Self {
        Self {
            status: failure.status(),
            headers: Vec::new(),
            body: failure.to_json(),
        }
    }
}

/// The first raw value of header `name`, if present.
fn first(headers: &Fields, name: &str) -> Option<Vec<u8>> {
    headers.get(name).into_iter().next()
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
            format!("a payment is at most {MAX_BODY} bytes"),
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
