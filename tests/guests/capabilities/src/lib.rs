//! A `wasi:http` guest for the capability tests. Like `testbed`, it
//! dispatches on the last path segment, with parameters in the query:
//!
//! | last segment | behaviour |
//! | --- | --- |
//! | `get?bucket=B&key=K` | 200 with the value, 404 `missing`, or 500 with the error |
//! | `set?bucket=B&key=K` | sets K to the request body: 200 `set` or 500 with the error |
//! | `delete?bucket=B&key=K` | 200 `deleted` |
//! | `exists?bucket=B&key=K` | 200 `true` or `false` |
//! | `incr?bucket=B&key=K&by=N` | 200 with the new number |
//! | `keys?bucket=B` | 200 with every key (all pages), sorted, one per line |
//! | `setmany?bucket=B` | body `k=v` lines, set in one batch: 200 `set N` |
//! | `getmany?bucket=B&keys=a,b` | 200 with `k=v` or `k absent` lines |
//! | `config?key=K` | 200 with the value, 404 `missing`, or 500 with the error |
//! | `configall` | 200 with every `k=v`, sorted |
//! | `call?url=U` | `GET U` (e.g. `http://other.svc/x`): 200 `<status> <body>` or 502 `denied: <code>` |
//! | `callmany?url=U&n=N` | `call` N times: 200 with one `<status> <body>` line per call |
//! | `post?url=U&kb=N` | `call` as a `POST` of N KiB |
//! | `callid?url=U` | `call`, answering the callee's `x-stratus-invocation-id` |
//! | `kvloop?bucket=B&op=get\|set&n=N` | N gets or sets of 100-byte values in a row: 200 with the nanoseconds they took |
//! | `kvfill?bucket=B&n=N&kb=S&prefix=P` | sets keys `P0000`, `P0001`, ... to S KiB each, N of them, stopping at the first error: 200 `wrote N`, or 500 `wrote I` and the error on the next line |
//! | `kvsize?bucket=B` | 200 `<bytes> <keys>`: the bucket's keys and values, summed |
//! | `big?kb=N` | 200 with N KiB of `x` |
//! | `chain?n=N` | calls `http://<own name>.svc/chain?n=N-1` (name from `?self=`) until N is 0 |
//! | anything else | 200 `capabilities` |
//!
//! Every error is answered in the body (with `Debug` formatting), so a test
//! can check exactly what the guest saw.

use std::io::{Read as _, Write as _};

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{
    Fields, IncomingBody, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

wit_bindgen::generate!({
    path: "../../../wit",
    world: "stratus:capabilities/capabilities",
    generate_all,
});

use wasi::config::store as config;
use wasi::keyvalue::{atomics, batch, store};

struct Capabilities;

wasip2::http::proxy::export!(Capabilities);

impl Guest for Capabilities {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let path_with_query = request.path_with_query().unwrap_or_else(|| "/".to_string());
        let (path, query) = path_with_query
            .split_once('?')
            .unwrap_or((path_with_query.as_str(), ""));
        let param = |name: &str| query_param(query, name);
        let (status, text) = match path.rsplit('/').next().unwrap_or("") {
            "get" => with_bucket(&param("bucket"), |b| match b.get(&param("key")) {
                Ok(Some(value)) => (200, String::from_utf8_lossy(&value).into_owned()),
                Ok(None) => (404, "missing".into()),
                Err(e) => (500, format!("{e:?}")),
            }),
            "set" => {
                let body = read_body(&request);
                with_bucket(&param("bucket"), |b| match b.set(&param("key"), &body) {
                    Ok(()) => (200, "set".into()),
                    Err(e) => (500, format!("{e:?}")),
                })
            }
            "delete" => with_bucket(&param("bucket"), |b| match b.delete(&param("key")) {
                Ok(()) => (200, "deleted".into()),
                Err(e) => (500, format!("{e:?}")),
            }),
            "exists" => with_bucket(&param("bucket"), |b| match b.exists(&param("key")) {
                Ok(found) => (200, found.to_string()),
                Err(e) => (500, format!("{e:?}")),
            }),
            "incr" => with_bucket(&param("bucket"), |b| {
                let by = param("by").parse().unwrap_or(1);
                match atomics::increment(b, &param("key"), by) {
                    Ok(n) => (200, n.to_string()),
                    Err(e) => (500, format!("{e:?}")),
                }
            }),
            "keys" => with_bucket(&param("bucket"), all_keys),
            "setmany" => {
                let body = String::from_utf8_lossy(&read_body(&request)).into_owned();
                let pairs: Vec<(String, Vec<u8>)> = body
                    .lines()
                    .filter_map(|line| line.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                    .collect();
                let n = pairs.len();
                with_bucket(&param("bucket"), |b| match batch::set_many(b, &pairs) {
                    Ok(()) => (200, format!("set {n}")),
                    Err(e) => (500, format!("{e:?}")),
                })
            }
            "getmany" => {
                let keys: Vec<String> = param("keys").split(',').map(str::to_string).collect();
                with_bucket(&param("bucket"), |b| match batch::get_many(b, &keys) {
                    Ok(values) => {
                        let lines: Vec<String> = keys
                            .iter()
                            .zip(values)
                            .map(|(key, value)| match value {
                                Some((k, v)) => format!("{k}={}", String::from_utf8_lossy(&v)),
                                None => format!("{key} absent"),
                            })
                            .collect();
                        (200, lines.join("\n"))
                    }
                    Err(e) => (500, format!("{e:?}")),
                })
            }
            "config" => match config::get(&param("key")) {
                Ok(Some(value)) => (200, value),
                Ok(None) => (404, "missing".into()),
                Err(e) => (500, format!("{e:?}")),
            },
            "configall" => match config::get_all() {
                Ok(mut all) => {
                    all.sort();
                    let lines: Vec<String> = all.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    (200, lines.join("\n"))
                }
                Err(e) => (500, format!("{e:?}")),
            },
            "call" => {
                let (status, body, _) = call(&param("url"));
                (status, body)
            }
            "post" => {
                let kib: usize = param("kb").parse().unwrap_or(0);
                let (status, body, _) = send(&param("url"), &vec![b'x'; kib * 1024]);
                (status, body)
            }
            "callid" => {
                let (status, body, callee) = call(&param("url"));
                if status == 200 {
                    (200, callee)
                } else {
                    (status, body)
                }
            }
            "kvloop" => {
                let n: u64 = param("n").parse().unwrap_or(100);
                let set = param("op") == "set";
                with_bucket(&param("bucket"), |b| kv_loop(b, n, set))
            }
            "kvfill" => {
                let n: u32 = param("n").parse().unwrap_or(1);
                let kib: usize = param("kb").parse().unwrap_or(1);
                let prefix = param("prefix");
                with_bucket(&param("bucket"), |b| kv_fill(b, &prefix, n, kib))
            }
            "kvsize" => with_bucket(&param("bucket"), kv_size),
            "big" => {
                let kib: usize = param("kb").parse().unwrap_or(1);
                (200, "x".repeat(kib * 1024))
            }
            "callmany" => {
                let n: u32 = param("n").parse().unwrap_or(1);
                let url = param("url");
                let lines: Vec<String> = (0..n)
                    .map(|_| {
                        let (status, body, _) = call(&url);
                        format!("{status} {body}")
                    })
                    .collect();
                (200, lines.join("\n"))
            }
            "chain" => {
                let n: u32 = param("n").parse().unwrap_or(0);
                if n == 0 {
                    (200, "bottom".into())
                } else {
                    let me = param("self");
                    let (status, body, _) =
                        call(&format!("http://{me}.svc/chain?n={}&self={me}", n - 1));
                    (status, format!("{n}>{body}"))
                }
            }
            _ => (200, "capabilities".into()),
        };
        send_text(response_out, status, &text);
    }
}

/// `n` sets (or gets) of 100-byte values under 100 keys, timed by the
/// guest's own monotonic clock: what a function sees of the store.
fn kv_loop(bucket: &store::Bucket, n: u64, set: bool) -> (u16, String) {
    let value = vec![b'v'; 100];
    let started = wasip2::clocks::monotonic_clock::now();
    for i in 0..n {
        let key = format!("bench-{}", i % 100);
        let done = if set {
            bucket.set(&key, &value)
        } else {
            bucket.get(&key).map(drop)
        };
        if let Err(e) = done {
            return (500, format!("{e:?}"));
        }
    }
    let elapsed = wasip2::clocks::monotonic_clock::now() - started;
    (200, elapsed.to_string())
}

/// Writes `n` values of `kib` KiB under `<prefix><i>` until one fails:
/// how a runaway function fills its app's key-value quota.
fn kv_fill(bucket: &store::Bucket, prefix: &str, n: u32, kib: usize) -> (u16, String) {
    let value = vec![b'f'; kib * 1024];
    for i in 0..n {
        if let Err(e) = bucket.set(&format!("{prefix}{i:04}"), &value) {
            return (500, format!("wrote {i}\n{e:?}"));
        }
    }
    (200, format!("wrote {n}"))
}

/// The bytes of every key and value in `bucket`, and the number of keys.
fn kv_size(bucket: &store::Bucket) -> (u16, String) {
    let (status, keys) = all_keys(bucket);
    if status != 200 {
        return (status, keys);
    }
    let (mut bytes, mut count) = (0usize, 0usize);
    for key in keys.lines() {
        match bucket.get(key) {
            Ok(value) => bytes += key.len() + value.map_or(0, |v| v.len()),
            Err(e) => return (500, format!("{e:?}")),
        }
        count += 1;
    }
    (200, format!("{bytes} {count}"))
}

/// Opens `bucket` and runs `op` on it, or answers the open's error.
fn with_bucket(bucket: &str, op: impl FnOnce(&store::Bucket) -> (u16, String)) -> (u16, String) {
    match store::open(bucket) {
        Ok(b) => op(&b),
        Err(e) => (500, format!("open: {e:?}")),
    }
}

fn all_keys(bucket: &store::Bucket) -> (u16, String) {
    let mut keys = Vec::new();
    let mut cursor = None;
    loop {
        match bucket.list_keys(cursor) {
            Ok(page) => {
                keys.extend(page.keys);
                match page.cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            Err(e) => return (500, format!("{e:?}")),
        }
    }
    keys.sort();
    keys.dedup();
    (200, keys.join("\n"))
}

/// `GET url` through `wasi:http/outgoing-handler`: 200 with the answer's
/// status and body (and the invocation id header of the answer, for a
/// `.svc` call), or 502 with the error code.
fn call(url: &str) -> (u16, String, String) {
    send(url, &[])
}

/// Like [`call`], as a `POST` of `body` when it is not empty.
fn send(url: &str, body: &[u8]) -> (u16, String, String) {
    use wasip2::http::types::Method;

    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{OutgoingRequest, Scheme};

    let Some(rest) = url.strip_prefix("http://") else {
        return (
            400,
            "call needs ?url=http://HOST/PATH".into(),
            String::new(),
        );
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    let _ = request.set_scheme(Some(&Scheme::Http));
    let _ = request.set_authority(Some(authority));
    let _ = request.set_path_with_query(Some(path));
    if !body.is_empty() {
        let _ = request.set_method(&Method::Post);
    }
    let outgoing = request.body();
    let future = match outgoing_handler::handle(request, None) {
        Ok(future) => future,
        Err(code) => return (502, format!("denied: {code:?}"), String::new()),
    };
    if let Ok(outgoing) = outgoing {
        if let Ok(mut stream) = outgoing.write() {
            for chunk in body.chunks(4096) {
                let _ = stream.write_all(chunk);
            }
            let _ = stream.flush();
        }
        let _ = OutgoingBody::finish(outgoing, None);
    }
    future.subscribe().block();
    let response = match future.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return (502, format!("denied: {code:?}"), String::new()),
        _ => return (502, "no response".into(), String::new()),
    };
    let status = response.status();
    let callee = response
        .headers()
        .get("x-stratus-invocation-id")
        .first()
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default();
    let mut body = Vec::new();
    if let Ok(incoming) = response.consume() {
        if let Ok(mut stream) = incoming.stream() {
            if let Err(e) = stream.read_to_end(&mut body) {
                return (502, format!("body: {e}"), callee);
            }
        }
        IncomingBody::finish(incoming);
    }
    (
        200,
        format!("{status} {}", String::from_utf8_lossy(&body)),
        callee,
    )
}

fn read_body(request: &IncomingRequest) -> Vec<u8> {
    let mut body = Vec::new();
    if let Ok(incoming) = request.consume() {
        if let Ok(mut stream) = incoming.stream() {
            let _ = stream.read_to_end(&mut body);
        }
        IncomingBody::finish(incoming);
    }
    body
}

fn send_text(response_out: ResponseOutparam, status: u16, text: &str) {
    let headers = Fields::new();
    let _ = headers.set("content-type", &[b"text/plain".to_vec()]);
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(status);
    let Ok(body) = response.body() else {
        return;
    };
    ResponseOutparam::set(response_out, Ok(response));
    if let Ok(mut stream) = body.write() {
        let _ = stream.write_all(text.as_bytes());
        let _ = stream.flush();
    }
    let _ = OutgoingBody::finish(body, None);
}

fn query_param(query: &str, name: &str) -> String {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_string())
        .unwrap_or_default()
}
