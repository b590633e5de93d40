//! A `wasi:http` guest for the node's integration tests. It dispatches on the
//! LAST segment of the request path, so a test can mount it under any route
//! (`/t/echo`, `/x/y/echo` and `/echo` all mean `echo`):
//!
//! | last segment | behaviour |
//! | --- | --- |
//! | `echo` | 200, body = request body; `x-echo-method`, `x-echo-path` (path with query) |
//! | `panic` | `panic!("testbed panic requested")`: the component traps |
//! | `spin` | an endless CPU loop; never returns |
//! | `sleep?ms=N` | sleeps N ms on a monotonic-clock pollable, then 200 `slept N` |
//! | `alloc?mb=N` | allocates and touches N MiB, then 200 `allocated N MiB` (traps if memory is capped lower) |
//! | `noresponse` | returns without ever calling `ResponseOutparam::set` |
//! | `env?name=X` | 200 with the value of env var X, or 404 `unset` |
//! | `stdout` | prints `hello stdout` / `hello stderr`, then 200 `printed` |
//! | `print?text=T&times=N` | prints line T (default `line`) N times (default 1) to stdout, then 200 `printed N` |
//! | `header?name=X` | 200 with the value of request header X, or 404 `unset` |
//! | `count` | 200 with how many requests this instance has served (1 in a fresh instance) |
//! | `status?code=N` | answers status N with an empty body |
//! | `fs` | lists `/`: 200 `denied: …` when the host gives no directory |
//! | `connect?to=HOST:PORT` | opens a TCP connection: 200 `denied: …` or `connected` |
//! | `fetch?to=HOST:PORT` | outbound HTTP GET: 200 `denied: <error code>` or `reached: <status>` |
//! | `publish?queue=Q&id=ID` | `POST http://queue.svc/Q` with this request's body and content type (and `ce-id: ID` when given): answers the status and body it got back, or 502 with the error code |
//! | anything else | 200 `testbed`; with the env var `FAIL_PERCENT=N`, N % of them answer 500 at random |
//!
//! A missing or malformed query parameter answers 400.

use std::io::{Read as _, Write as _};

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{
    Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingResponse,
    ResponseOutparam,
};

struct Testbed;

/// Requests this instance has served: shows whether instances are reused.
static SERVED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

wasip2::http::proxy::export!(Testbed);

impl Guest for Testbed {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let path_with_query = request.path_with_query().unwrap_or_else(|| "/".to_string());
        let (path, query) = match path_with_query.split_once('?') {
            Some((path, query)) => (path, query),
            None => (path_with_query.as_str(), ""),
        };
        let command = path.rsplit('/').find(|segment| !segment.is_empty()).unwrap_or("");

        match command {
            "echo" => {
                let method = request.method();
                let body = read_body(&request);
                let mut headers = vec![
                    header("x-echo-method", method_name(&method)),
                    header("x-echo-path", &path_with_query),
                ];
                // Keep the request's content type, so echoing JSON stays JSON.
                if let Some(content_type) =
                    request.headers().get("content-type").into_iter().next()
                {
                    headers.push(("content-type".to_string(), content_type));
                }
                send(response_out, 200, headers, &body);
            }
            "panic" => panic!("testbed panic requested"),
            "spin" => spin(),
            "sleep" => match number_param(query, "ms") {
                Some(ms) => {
                    let pollable = wasip2::clocks::monotonic_clock::subscribe_duration(
                        ms.saturating_mul(1_000_000),
                    );
                    wasip2::io::poll::poll(&[&pollable]);
                    send_text(response_out, 200, &format!("slept {ms}"));
                }
                None => send_text(response_out, 400, "sleep needs ?ms=N"),
            },
            "alloc" => match number_param(query, "mb") {
                Some(mb) => {
                    let len = usize::try_from(mb)
                        .ok()
                        .and_then(|mb| mb.checked_mul(1024 * 1024))
                        .unwrap_or(usize::MAX);
                    // Aborts (traps) when the memory cap refuses to grow.
                    let buffer = vec![0xA5_u8; len];
                    std::hint::black_box(&buffer);
                    send_text(response_out, 200, &format!("allocated {mb} MiB"));
                }
                None => send_text(response_out, 400, "alloc needs ?mb=N"),
            },
            "once" => {
                // Answers an instance's first request only; later ones
                // return with the outparam neither set nor dropped, as a
                // componentize-js guest does on its second request.
                let served = SERVED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if served == 1 {
                    send_text(response_out, 200, "first");
                } else {
                    std::mem::forget(response_out);
                }
            }
            "unfinished" => {
                // Sends headers and part of a body, then returns with the
                // body neither finished nor dropped.
                let response = OutgoingResponse::new(Fields::new());
                let out_body = response.body().expect("body is taken only once");
                ResponseOutparam::set(response_out, Ok(response));
                let mut out = out_body.write().expect("stream is taken only once");
                out.write_all(b"partial").expect("write response body");
                out.flush().expect("flush response body");
                std::mem::forget(out);
                std::mem::forget(out_body);
            }
            "noresponse" => {
                // Dropping the outparam without setting it: a malformed answer.
                drop(response_out);
            }
            "env" => match query_param(query, "name") {
                Some(name) if !name.is_empty() => match std::env::var_os(&name) {
                    Some(value) => send_text(response_out, 200, &value.to_string_lossy()),
                    None => send_text(response_out, 404, "unset"),
                },
                _ => send_text(response_out, 400, "env needs ?name=X"),
            },
            "stdout" => {
                println!("hello stdout");
                eprintln!("hello stderr");
                let _ = std::io::stdout().flush();
                send_text(response_out, 200, "printed");
            }
            "print" => {
                let text = query_param(query, "text").unwrap_or_else(|| "line".into());
                let times = number_param(query, "times").unwrap_or(1);
                let mut stdout = std::io::stdout().lock();
                for _ in 0..times {
                    let _ = writeln!(stdout, "{text}");
                }
                let _ = stdout.flush();
                send_text(response_out, 200, &format!("printed {times}"));
            }
            "header" => match query_param(query, "name") {
                Some(name) if !name.is_empty() => {
                    let values = request.headers().get(&name);
                    match values.first() {
                        Some(value) => send_text(response_out, 200, &String::from_utf8_lossy(value)),
                        None => send_text(response_out, 404, "unset"),
                    }
                }
                _ => send_text(response_out, 400, "header needs ?name=X"),
            },
            "count" => {
                let served = SERVED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                send_text(response_out, 200, &served.to_string());
            }
            "status" => match number_param(query, "code") {
                Some(code @ 100..=999) => send(response_out, code as u16, Vec::new(), b""),
                _ => send_text(response_out, 400, "status needs ?code=N (100..=999)"),
            },
            "fs" => {
                let outcome = match std::fs::read_dir("/") {
                    Ok(_) => "listed".to_string(),
                    Err(e) => format!("denied: {e}"),
                };
                send_text(response_out, 200, &outcome);
            }
            "connect" => match query_param(query, "to") {
                Some(to) => {
                    let outcome = match std::net::TcpStream::connect(to.as_str()) {
                        Ok(_) => "connected".to_string(),
                        Err(e) => format!("denied: {e}"),
                    };
                    send_text(response_out, 200, &outcome);
                }
                None => send_text(response_out, 400, "connect needs ?to=HOST:PORT"),
            },
            "fetch" => match query_param(query, "to") {
                Some(to) => send_text(response_out, 200, &fetch(&to)),
                None => send_text(response_out, 400, "fetch needs ?to=HOST:PORT"),
            },
            "publish" => match query_param(query, "queue") {
                Some(queue) => {
                    let (status, headers, body) =
                        publish(&request, &queue, query_param(query, "id").as_deref());
                    send(response_out, status, headers, &body);
                }
                None => send_text(response_out, 400, "publish needs ?queue=NAME"),
            },
            // Events arrive at "/": data starting with "fail" is refused,
            // so tests can make a delivery fail.
            _ => {
                let body = read_body(&request);
                if body.starts_with(b"slowfail") {
                    // Holds the function's one slot for a while, then fails:
                    // tests see each real run as one log line.
                    let pause = wasip2::clocks::monotonic_clock::subscribe_duration(300_000_000);
                    wasip2::io::poll::poll(&[&pause]);
                    println!("slowfail ran");
                    send_text(response_out, 500, "failing slowly as the data asks")
                } else if body.starts_with(b"fail") {
                    send_text(response_out, 500, "failing as the data asks")
                } else if flaky() {
                    send_text(response_out, 500, "failing as FAIL_PERCENT asks")
                } else {
                    send_text(response_out, 200, "testbed")
                }
            }
        }
    }
}

/// Whether this request fails, at the rate the env var `FAIL_PERCENT`
/// (0 to 100) sets: a version that fails some of its requests.
fn flaky() -> bool {
    let percent = std::env::var("FAIL_PERCENT")
        .ok()
        .and_then(|p| p.parse::<u64>().ok())
        .unwrap_or(0);
    percent > 0 && wasip2::random::random::get_random_u64() % 100 < percent
}

/// An outbound `GET http://<to>/` through `wasi:http/outgoing-handler`.
fn fetch(to: &str) -> String {
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{OutgoingRequest, Scheme};

    let request = OutgoingRequest::new(Fields::new());
    let _ = request.set_scheme(Some(&Scheme::Http));
    let _ = request.set_authority(Some(to));
    let _ = request.set_path_with_query(Some("/"));
    let future = match outgoing_handler::handle(request, None) {
        Ok(future) => future,
        Err(code) => return format!("denied: {code:?}"),
    };
    future.subscribe().block();
    match future.get() {
        Some(Ok(Ok(response))) => format!("reached: {}", response.status()),
        Some(Ok(Err(code))) => format!("denied: {code:?}"),
        other => format!("denied: {other:?}"),
    }
}

/// `POST http://queue.svc/<queue>` through `wasi:http/outgoing-handler`,
/// forwarding this request's body and content type. The body is written
/// after `handle`, as a streaming client would: the host reads it while it
/// is written. Returns the answer's status, content type and body, or 502
/// and the error code when the request itself failed.
fn publish(
    request: &IncomingRequest,
    queue: &str,
    id: Option<&str>,
) -> (u16, Vec<(String, Vec<u8>)>, Vec<u8>) {
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{OutgoingRequest, Scheme};

    let data = read_body(request);
    let mut headers = Vec::new();
    if let Some(content_type) = request.headers().get("content-type").into_iter().next() {
        headers.push(("content-type".to_string(), content_type));
    }
    if let Some(id) = id {
        headers.push(header("ce-id", id));
    }
    let outgoing = OutgoingRequest::new(Fields::from_list(&headers).expect("valid headers"));
    let _ = outgoing.set_method(&Method::Post);
    let _ = outgoing.set_scheme(Some(&Scheme::Http));
    let _ = outgoing.set_authority(Some("queue.svc"));
    let _ = outgoing.set_path_with_query(Some(&format!("/{queue}")));
    let body = outgoing.body().expect("body is taken only once");
    let failed = |code: String| (502, Vec::new(), code.into_bytes());
    let future = match outgoing_handler::handle(outgoing, None) {
        Ok(future) => future,
        Err(code) => return failed(format!("{code:?}")),
    };
    {
        let mut out = body.write().expect("stream is taken only once");
        // A denied request is not read: its stream fails, which is fine.
        let _ = out.write_all(&data);
        let _ = out.flush();
    }
    let _ = OutgoingBody::finish(body, None);
    future.subscribe().block();
    let response = match future.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return failed(format!("{code:?}")),
        other => return failed(format!("{other:?}")),
    };
    let mut headers = Vec::new();
    if let Some(content_type) = response.headers().get("content-type").into_iter().next() {
        headers.push(("content-type".to_string(), content_type));
    }
    let mut answer = Vec::new();
    if let Ok(body) = response.consume() {
        if let Ok(mut stream) = body.stream() {
            let _ = stream.read_to_end(&mut answer);
            drop(stream);
        }
        drop(IncomingBody::finish(body));
    }
    (response.status(), headers, answer)
}

/// Burns CPU forever; only the host's deadline (epoch interruption) stops it.
fn spin() -> ! {
    let mut counter: u64 = 0;
    loop {
        counter = std::hint::black_box(counter.wrapping_add(1));
    }
}

/// Reads the whole request body from its `wasi:io` input stream.
fn read_body(request: &IncomingRequest) -> Vec<u8> {
    let mut bytes = Vec::new();
    let Ok(body) = request.consume() else {
        return bytes;
    };
    if let Ok(mut stream) = body.stream() {
        stream.read_to_end(&mut bytes).expect("read request body");
        // The stream is a child of the body: drop it before finishing the body.
        drop(stream);
    }
    drop(IncomingBody::finish(body));
    bytes
}

fn send_text(response_out: ResponseOutparam, status: u16, text: &str) {
    let headers = vec![header("content-type", "text/plain; charset=utf-8")];
    send(response_out, status, headers, text.as_bytes());
}

fn send(
    response_out: ResponseOutparam,
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: &[u8],
) {
    // Tells tests which deployment (version) answered.
    let mut headers = headers;
    if let Ok(who) = std::env::var("WHO") {
        headers.push(header("x-who", &who));
    }
    let fields = Fields::from_list(&headers).expect("valid response headers");
    let response = OutgoingResponse::new(fields);
    response.set_status_code(status).expect("valid status code");
    let out_body = response.body().expect("body is taken only once");
    ResponseOutparam::set(response_out, Ok(response));
    {
        let mut out = out_body.write().expect("stream is taken only once");
        out.write_all(body).expect("write response body");
        out.flush().expect("flush response body");
    } // the stream must be dropped before the body is finished
    OutgoingBody::finish(out_body, None).expect("finish response body");
}

fn header(name: &str, value: &str) -> (String, Vec<u8>) {
    (name.to_string(), value.as_bytes().to_vec())
}

fn number_param(query: &str, name: &str) -> Option<u64> {
    query_param(query, name)?.trim().parse().ok()
}

/// The first value of query parameter `name` (no percent-decoding: the tests
/// only pass plain names and numbers).
fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| value.to_string())
    })
}

fn method_name(method: &Method) -> &str {
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
}
