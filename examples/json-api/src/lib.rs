//! A small, stateless JSON API (every request gets a fresh instance).
//!
//! | route | answer |
//! | --- | --- |
//! | `GET /api/health` | `{"status":"ok"}` |
//! | `POST /api/stats` with a JSON array of numbers | `{"count":n,"mean":..,"min":..,"max":..,"median":..}` |
//! | `GET /api/convert?value=10&from=c&to=f` | `{"value":50.0,"unit":"f"}` (units `c`, `f`, `k`) |
//!
//! Errors are `{"error":"..."}`: 400 for bad input, 404 for unknown paths,
//! 405 (with `allow`) for a wrong method, 413 for a body over 1 MiB. Every
//! response is `application/json` and carries `x-api-name` with the value of
//! the `API_NAME` environment variable (set in `stratus.toml`) when it is set.

use std::io::{Read as _, Write as _};

use serde_json::{Value, json};
use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{
    Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingResponse,
    ResponseOutparam,
};

/// Largest request body read by `POST /api/stats`.
const MAX_BODY: u64 = 1024 * 1024;

struct Api;

wasip2::http::proxy::export!(Api);

impl Guest for Api {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let reply = route(&request);
        send(response_out, reply);
    }
}

/// A response about to be sent: status, extra headers and a JSON body.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Reply {
    fn ok(body: Value) -> Self {
        Self { status: 200, headers: Vec::new(), body }
    }

    fn error(status: u16, message: impl Into<String>) -> Self {
        Self { status, headers: Vec::new(), body: json!({ "error": message.into() }) }
    }

    fn method_not_allowed(allow: &str) -> Self {
        let mut reply = Self::error(405, format!("method not allowed; use {allow}"));
        reply.headers.push(("allow".to_string(), allow.to_string()));
        reply
    }
}

fn route(request: &IncomingRequest) -> Reply {
    let method = request.method();
    let path_with_query = request.path_with_query().unwrap_or_else(|| "/".to_string());
    let (path, query) = match path_with_query.split_once('?') {
        Some((path, query)) => (path, query),
        None => (path_with_query.as_str(), ""),
    };
    let path = match path.trim_end_matches('/') {
        "" => "/",
        trimmed => trimmed,
    };

    match path {
        "/api/health" => match method {
            Method::Get => Reply::ok(json!({ "status": "ok" })),
            _ => Reply::method_not_allowed("GET"),
        },
        "/api/stats" => match method {
            Method::Post => stats(request),
            _ => Reply::method_not_allowed("POST"),
        },
        "/api/convert" => match method {
            Method::Get => convert(query),
            _ => Reply::method_not_allowed("GET"),
        },
        _ => Reply::error(404, format!("no such endpoint: {path}")),
    }
}

// ---------------------------------------------------------------- /api/stats

fn stats(request: &IncomingRequest) -> Reply {
    let body = match read_body(request) {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    let numbers: Vec<f64> = match serde_json::from_slice(&body) {
        Ok(numbers) => numbers,
        Err(err) => {
            return Reply::error(400, format!("expected a JSON array of numbers: {err}"));
        }
    };
    if numbers.is_empty() {
        return Reply::error(400, "the array is empty");
    }

    let count = numbers.len();
    let sum: f64 = numbers.iter().sum();
    let mean = if sum.is_finite() {
        sum / count as f64
    } else {
        // The sum overflowed: fall back to a running mean, which cannot.
        numbers
            .iter()
            .enumerate()
            .fold(0.0, |mean, (i, x)| mean + (x - mean) / (i + 1) as f64)
    };
    let mut sorted = numbers;
    sorted.sort_by(f64::total_cmp);
    let min = sorted[0];
    let max = sorted[count - 1];
    let median = if count % 2 == 1 {
        sorted[count / 2]
    } else {
        let (a, b) = (sorted[count / 2 - 1], sorted[count / 2]);
        a / 2.0 + b / 2.0
    };

    Reply::ok(json!({
        "count": count,
        "mean": mean,
        "min": min,
        "max": max,
        "median": median,
    }))
}

/// Reads the whole request body from its `wasi:io` input stream.
fn read_body(request: &IncomingRequest) -> Result<Vec<u8>, Reply> {
    let body: IncomingBody = request
        .consume()
        .map_err(|()| Reply::error(400, "the request body was already consumed"))?;
    let mut stream = body
        .stream()
        .map_err(|()| Reply::error(400, "the request body stream is unavailable"))?;

    let mut bytes = Vec::new();
    let result = (&mut stream).take(MAX_BODY + 1).read_to_end(&mut bytes);
    // The stream is a child of the body: drop it first, then finish the body.
    drop(stream);
    drop(IncomingBody::finish(body));

    match result {
        Err(err) => Err(Reply::error(400, format!("reading the request body failed: {err}"))),
        Ok(_) if bytes.len() as u64 > MAX_BODY => Err(Reply::error(
            413,
            format!("the request body is larger than {MAX_BODY} bytes"),
        )),
        Ok(_) => Ok(bytes),
    }
}

// -------------------------------------------------------------- /api/convert

#[derive(Clone, Copy)]
enum Unit {
    Celsius,
    Fahrenheit,
    Kelvin,
}

impl Unit {
    fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "c" | "celsius" => Some(Self::Celsius),
            "f" | "fahrenheit" => Some(Self::Fahrenheit),
            "k" | "kelvin" => Some(Self::Kelvin),
            _ => None,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Self::Celsius => "c",
            Self::Fahrenheit => "f",
            Self::Kelvin => "k",
        }
    }

    fn to_kelvin(self, value: f64) -> f64 {
        match self {
            Self::Celsius => value + 273.15,
            Self::Fahrenheit => (value - 32.0) * 5.0 / 9.0 + 273.15,
            Self::Kelvin => value,
        }
    }

    fn express_kelvin(self, kelvin: f64) -> f64 {
        match self {
            Self::Celsius => kelvin - 273.15,
            Self::Fahrenheit => (kelvin - 273.15) * 9.0 / 5.0 + 32.0,
            Self::Kelvin => kelvin,
        }
    }
}

fn convert(query: &str) -> Reply {
    let param = |name: &str| {
        query_param(query, name).ok_or_else(|| {
            Reply::error(400, format!("missing query parameter: {name}"))
        })
    };
    let parsed = (|| {
        let raw_value = param("value")?;
        let from = param("from")?;
        let to = param("to")?;
        let value = raw_value
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| Reply::error(400, format!("value is not a number: {raw_value:?}")))?;
        let unit = |name: String| {
            Unit::parse(&name).ok_or_else(|| {
                Reply::error(400, format!("unknown unit: {name:?} (use c, f or k)"))
            })
        };
        Ok::<_, Reply>((value, unit(from)?, unit(to)?))
    })();
    let (value, from, to) = match parsed {
        Ok(parsed) => parsed,
        Err(reply) => return reply,
    };

    let kelvin = from.to_kelvin(value);
    if kelvin < -1e-9 {
        return Reply::error(400, "the temperature is below absolute zero");
    }
    let converted = round6(to.express_kelvin(kelvin.max(0.0)));
    Reply::ok(json!({ "value": converted, "unit": to.symbol() }))
}

/// Rounds to 6 decimal places, hiding floating-point noise such as
/// `26.850000000000023`.
fn round6(value: f64) -> f64 {
    let rounded = (value * 1e6).round() / 1e6;
    if rounded.is_finite() { rounded + 0.0 } else { value } // `+ 0.0` turns -0 into 0
}

/// The first value of query parameter `name`, percent-decoded.
fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key) == name).then(|| percent_decode(value))
        })
        .next()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ------------------------------------------------------------------ sending

fn send(response_out: ResponseOutparam, reply: Reply) {
    let mut headers = vec![(
        "content-type".to_string(),
        b"application/json".to_vec(),
    )];
    if let Ok(api_name) = std::env::var("API_NAME") {
        headers.push(("x-api-name".to_string(), api_name.into_bytes()));
    }
    headers.extend(reply.headers.into_iter().map(|(k, v)| (k, v.into_bytes())));
    let mut body = reply.body.to_string();
    body.push('\n');

    let fields = Fields::from_list(&headers).unwrap_or_else(|_| {
        // Only reachable with an API_NAME that is not a valid header value.
        Fields::from_list(&headers[..1]).expect("content-type is a valid header")
    });
    let response = OutgoingResponse::new(fields);
    response.set_status_code(reply.status).expect("valid status code");
    let out_body = response.body().expect("body is taken only once");
    ResponseOutparam::set(response_out, Ok(response));

    {
        let mut out = out_body.write().expect("stream is taken only once");
        out.write_all(body.as_bytes()).expect("write response body");
        out.flush().expect("flush response body");
    } // the stream must be dropped before the body is finished
    OutgoingBody::finish(out_body, None).expect("finish response body");
}
