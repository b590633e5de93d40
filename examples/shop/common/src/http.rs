//! HTTP plumbing over `wasi:http`: the incoming request read whole, a JSON
//! reply, and [`call`], an outbound request to another function of the app
//! (`http://<function>.svc/<path>`) or to the node's queue
//! (`http://queue.svc/<queue>`). Such a request never leaves the node: it
//! runs the callee in process and hands back its response.

// `Write::flush` blocks until the bytes are out; the stream's own `flush`
// only starts flushing.
use std::io::{Read as _, Write};

use serde_json::Value;
use wasip2::clocks::monotonic_clock;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingRequest, OutgoingResponse,
    ResponseOutparam, Scheme,
};
use wasip2::io::poll;

use crate::text::error_body;

/// Largest response body [`call`] reads from another function.
const MAX_ANSWER: u64 = 1024 * 1024;

/// An incoming request, read whole.
pub struct Request {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query, without `?` (empty if none).
    pub query: String,
    pub body: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
}

impl Request {
    /// Reads `request` and its body (at most `max_body` bytes: 413 beyond).
    pub fn read(request: IncomingRequest, max_body: u64) -> Result<Request, Reply> {
        let method = method_name(&request.method());
        let target = request.path_with_query().unwrap_or_else(|| "/".into());
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path.to_string(), query.to_string()),
            None => (target, String::new()),
        };
        // Copied out: the `fields` resource is a child of the request and
        // must not outlive it.
        let headers = request.headers().entries();
        let body = read_body(&request, max_body)?;
        Ok(Request {
            method,
            path,
            query,
            body,
            headers,
        })
    }

    /// The first value of header `name`, if present and not blank.
    pub fn header(&self, name: &str) -> Option<String> {
        let (_, value) = self
            .headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))?;
        let value = String::from_utf8_lossy(value).trim().to_string();
        (!value.is_empty()).then_some(value)
    }

    /// The body as JSON, or a 400 that says why it is not.
    pub fn json(&self) -> Result<Value, Reply> {
        serde_json::from_slice(&self.body).map_err(|err| {
            Reply::error(
                400,
                "invalid_json",
                &format!("the body is not valid JSON: {err}"),
            )
        })
    }
}

fn method_name(method: &Method) -> String {
    match method {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
        Method::Connect => "CONNECT",
        Method::Options => "OPTIONS",
        Method::Trace => "TRACE",
        Method::Patch => "PATCH",
        Method::Other(other) => other,
    }
    .to_string()
}

fn read_body(request: &IncomingRequest, max_body: u64) -> Result<Vec<u8>, Reply> {
    let unavailable = |what: &str| Reply::error(400, "bad_request", what);
    let body = request
        .consume()
        .map_err(|()| unavailable("the request body was already consumed"))?;
    let mut stream = body
        .stream()
        .map_err(|()| unavailable("the request body stream is unavailable"))?;
    let mut bytes = Vec::new();
    let result = (&mut stream).take(max_body + 1).read_to_end(&mut bytes);
    // The stream is a child of the body: drop it first, then finish the body.
    drop(stream);
    drop(IncomingBody::finish(body));
    match result {
        Err(err) => Err(unavailable(&format!(
            "reading the request body failed: {err}"
        ))),
        Ok(_) if bytes.len() as u64 > max_body => Err(Reply::error(
            413,
            "body_too_large",
            &format!("the body is larger than {max_body} bytes"),
        )),
        Ok(_) => Ok(bytes),
    }
}

/// A JSON answer about to be sent.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Reply {
    pub fn new(status: u16, body: Value) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body,
        }
    }

    pub fn ok(body: Value) -> Reply {
        Reply::new(200, body)
    }

    /// `{"error":{"code":…,"message":…}}` with `status`.
    pub fn error(status: u16, code: &str, message: &str) -> Reply {
        Reply::new(status, error_body(code, message))
    }

    pub fn not_found(path: &str) -> Reply {
        Reply::error(404, "not_found", &format!("nothing at {path}"))
    }

    /// 405 naming the methods `allow`ed (`"GET, PUT"`).
    pub fn method_not_allowed(method: &str, path: &str, allow: &str) -> Reply {
        let mut reply = Reply::error(
            405,
            "method_not_allowed",
            &format!("{method} is not allowed on {path}; use {allow}"),
        );
        reply.headers.push(("allow".into(), allow.into()));
        reply
    }

    /// Sends the reply as the response to the incoming request.
    pub fn send(self, response_out: ResponseOutparam) {
        let mut headers = vec![("content-type".to_string(), b"application/json".to_vec())];
        headers.extend(self.headers.into_iter().map(|(k, v)| (k, v.into_bytes())));
        let mut body = self.body.to_string();
        body.push('\n');

        let fields = Fields::from_list(&headers).unwrap_or_else(|_| Fields::new());
        let response = OutgoingResponse::new(fields);
        // Every status used here is valid; 500 if one ever is not.
        if response.set_status_code(self.status).is_err() {
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
}

/// What another function (or the queue) answered.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The start of the body, for error messages.
    pub fn snippet(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let text = text.trim();
        let mut end = text.len().min(300);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text[..end].to_string()
    }
}

/// A request made with [`call`].
pub struct Call<'a> {
    pub method: Method,
    /// `pricing.svc`, `queue.svc`, …
    pub authority: &'a str,
    /// Path and query, such as `/shop/price/mug?quantity=2`.
    pub path: &'a str,
    pub headers: Vec<(&'a str, String)>,
    pub body: Option<Vec<u8>>,
    /// How long to wait for the answer's headers.
    pub timeout_ms: u64,
}

impl<'a> Call<'a> {
    pub fn get(authority: &'a str, path: &'a str) -> Call<'a> {
        Call {
            method: Method::Get,
            authority,
            path,
            headers: Vec::new(),
            body: None,
            timeout_ms: 3000,
        }
    }

    /// A `POST` of `body` as `application/json`.
    pub fn post_json(authority: &'a str, path: &'a str, body: &Value) -> Call<'a> {
        Call {
            method: Method::Post,
            authority,
            path,
            headers: vec![("content-type", "application/json".into())],
            body: Some(body.to_string().into_bytes()),
            timeout_ms: 3000,
        }
    }

    pub fn header(mut self, name: &'a str, value: impl Into<String>) -> Call<'a> {
        self.headers.push((name, value.into()));
        self
    }

    /// Sends the request over plain `http` and reads the whole answer; the
    /// error says what failed, for the caller's 502.
    pub fn send(self) -> Result<Answer, String> {
        let target = format!("http://{}{}", self.authority, self.path);
        let mut headers: Vec<(String, Vec<u8>)> = self
            .headers
            .iter()
            .map(|(name, value)| (name.to_string(), value.clone().into_bytes()))
            .collect();
        if let Some(body) = &self.body {
            headers.push(("content-length".into(), body.len().to_string().into_bytes()));
        }
        let fields = Fields::from_list(&headers)
            .map_err(|err| format!("{target}: invalid request headers: {err}"))?;
        let request = OutgoingRequest::new(fields);
        let refused = |what: &str| format!("{target}: the host refused the {what}");
        request
            .set_method(&self.method)
            .map_err(|()| refused("method"))?;
        request
            .set_scheme(Some(&Scheme::Http))
            .map_err(|()| refused("scheme"))?;
        request
            .set_authority(Some(self.authority))
            .map_err(|()| refused("authority"))?;
        request
            .set_path_with_query(Some(self.path))
            .map_err(|()| refused("path"))?;
        let out_body = request.body().map_err(|()| refused("body"))?;

        // Send the request first, then stream its body, then wait.
        let future = outgoing_handler::handle(request, None)
            .map_err(|code| format!("{target}: the request was refused: {code}"))?;
        if let Some(body) = &self.body {
            let mut stream = out_body.write().map_err(|()| refused("body stream"))?;
            stream
                .write_all(body)
                .and_then(|()| Write::flush(&mut stream))
                .map_err(|err| format!("{target}: sending the body failed: {err}"))?;
        } // the stream must be dropped before the body is finished
        OutgoingBody::finish(out_body, None)
            .map_err(|code| format!("{target}: finishing the body failed: {code}"))?;

        let ready = future.subscribe();
        let deadline = monotonic_clock::subscribe_duration(self.timeout_ms * 1_000_000);
        poll::poll(&[&ready, &deadline]);
        let response = match future.get() {
            Some(Ok(Ok(response))) => response,
            Some(Ok(Err(code))) => return Err(format!("{target}: the request failed: {code}")),
            Some(Err(())) => return Err(format!("{target}: the response was already taken")),
            None => {
                return Err(format!("{target}: no answer within {} ms", self.timeout_ms));
            }
        };
        let status = response.status();
        let body = response
            .consume()
            .map_err(|()| format!("{target}: the response body was already taken"))?;
        let mut bytes = Vec::new();
        {
            let mut stream = body
                .stream()
                .map_err(|()| format!("{target}: the response body stream is unavailable"))?;
            (&mut stream)
                .take(MAX_ANSWER)
                .read_to_end(&mut bytes)
                .map_err(|err| format!("{target}: reading the answer failed: {err}"))?;
        } // the stream is a child of the body: dropped first
        drop(body);
        Ok(Answer {
            status,
            body: bytes,
        })
    }
}
