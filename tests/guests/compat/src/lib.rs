//! A `wasi:http` guest for the compatibility tests: each route reads a
//! capability through one of the other names the node links for it. It
//! dispatches on the last path segment, with parameters in the query:
//!
//! | last segment | behaviour |
//! | --- | --- |
//! | `rc1?key=K` | `wasi:config/store@0.2.0-rc.1` get: 200 value, 404 `missing`, 500 error |
//! | `rc1all` | its get-all: 200 with every `k=v`, sorted |
//! | `spin3?key=K` | `wasi:config/store@0.2.0-draft-2024-09-27` get, as `rc1` |
//! | `variable?name=N` | `fermyon:spin/variables` get: 200 value or 500 with the error |
//! | `kvset?store=S&key=K` | `fermyon:spin/key-value`: sets K to the body: 200 `set` or 500 error |
//! | `kvget?store=S&key=K` | 200 value, 404 `missing`, or 500 error |
//! | `kvkeys?store=S` | 200 with every key, sorted, one per line |
//! | `kvdelete?store=S&key=K` | 200 `deleted` then `kvexists` says `false` |
//! | `kvexists?store=S&key=K` | 200 `true` or `false` |
//!
//! And `wasi:keyvalue@0.2.0-draft2` (Spin 3's), on bucket `B`:
//!
//! | last segment | behaviour |
//! | --- | --- |
//! | `d2set?bucket=B&key=K` | sets K to the body: 200 `set` or 500 error |
//! | `d2get?bucket=B&key=K` | 200 value, 404 `missing`, or 500 error |
//! | `d2incr?bucket=B&key=K&by=N` | `atomics.increment` by N (signed): 200 the new number |
//! | `d2cas?bucket=B&key=K` | adds one by compare-and-swap, retrying on `cas-failed`: 200 the retries |
//! | `d2stale?bucket=B&key=K` | makes a handle, then sets K to `theirs`, then swaps `mine`: 200 what `cas-failed`'s fresh handle held and the second swap's outcome |
//! | `d2many?bucket=B&keys=K1,K2` | `batch.get-many`: 200 `K=V` or `K=none`, one per line |
//! | `d2setmany?bucket=B&from=F&n=N` | `batch.set-many` of N keys from `k<F>` (4 digits): 200 `set` |
//! | `d2keys?bucket=B` | `list-keys` page by page: 200 `N keys in P pages` |
//! | `d2page?bucket=B&cursor=C` | one `list-keys` page from cursor C: 200 the count or 500 error |
//! | `d2hoard?bucket=B&key=K&n=N` | makes up to N `cas` handles on K, keeping them all, then drops them and makes one more: 200 `made I; then E; after dropping: ok` |

use std::io::{Read as _, Write as _};

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{
    Fields, IncomingBody, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

wit_bindgen::generate!({
    path: "../../../crates/runtime/wit",
    world: "stratus:compatibility/compatibility",
    generate_all,
});

use fermyon::spin::key_value::Store;
use fermyon::spin::variables;
use wasi::config0_2_0_draft_2024_09_27::store as config_spin3;
use wasi::config0_2_0_rc_1::store as config_rc1;
use wasi::keyvalue::{atomics as kv2_atomics, batch as kv2_batch, store as kv2};

struct Compat;

wasip2::http::proxy::export!(Compat);

impl Guest for Compat {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let path_with_query = request.path_with_query().unwrap_or_else(|| "/".to_string());
        let (path, query) = path_with_query
            .split_once('?')
            .unwrap_or((path_with_query.as_str(), ""));
        let param = |name: &str| query_param(query, name);
        let (status, text) = match path.rsplit('/').next().unwrap_or("") {
            "rc1" => match config_rc1::get(&param("key")) {
                Ok(Some(value)) => (200, value),
                Ok(None) => (404, "missing".into()),
                Err(e) => (500, format!("{e:?}")),
            },
            "rc1all" => match config_rc1::get_all() {
                Ok(mut all) => {
                    all.sort();
                    let lines: Vec<String> = all.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    (200, lines.join("\n"))
                }
                Err(e) => (500, format!("{e:?}")),
            },
            "spin3" => match config_spin3::get(&param("key")) {
                Ok(Some(value)) => (200, value),
                Ok(None) => (404, "missing".into()),
                Err(e) => (500, format!("{e:?}")),
            },
            "variable" => match variables::get(&param("name")) {
                Ok(value) => (200, value),
                Err(e) => (500, format!("{e:?}")),
            },
            op @ ("kvset" | "kvget" | "kvkeys" | "kvdelete" | "kvexists") => {
                match Store::open(&param("store")) {
                    Err(e) => (500, format!("{e:?}")),
                    Ok(store) => {
                        let key = param("key");
                        match op {
                            "kvset" => match store.set(&key, &read_body(&request)) {
                                Ok(()) => (200, "set".into()),
                                Err(e) => (500, format!("{e:?}")),
                            },
                            "kvget" => match store.get(&key) {
                                Ok(Some(value)) => (200, String::from_utf8_lossy(&value).into()),
                                Ok(None) => (404, "missing".into()),
                                Err(e) => (500, format!("{e:?}")),
                            },
                            "kvkeys" => match store.get_keys() {
                                Ok(mut keys) => {
                                    keys.sort();
                                    (200, keys.join("\n"))
                                }
                                Err(e) => (500, format!("{e:?}")),
                            },
                            "kvdelete" => match store.delete(&key) {
                                Ok(()) => (200, "deleted".into()),
                                Err(e) => (500, format!("{e:?}")),
                            },
                            _ => match store.exists(&key) {
                                Ok(found) => (200, found.to_string()),
                                Err(e) => (500, format!("{e:?}")),
                            },
                        }
                    }
                }
            }
            op if op.starts_with("d2") => match kv2::open(&param("bucket")) {
                Err(e) => (500, format!("{e:?}")),
                Ok(bucket) => draft2(op, &bucket, &param, &request),
            },
            _ => (200, "compat".into()),
        };
        send_text(response_out, status, &text);
    }
}

/// The `d2…` routes, on an open `wasi:keyvalue@0.2.0-draft2` bucket.
fn draft2(
    op: &str,
    bucket: &kv2::Bucket,
    param: &dyn Fn(&str) -> String,
    request: &IncomingRequest,
) -> (u16, String) {
    let key = param("key");
    let failed = |e: kv2::Error| (500, format!("{e:?}"));
    match op {
        "d2set" => match bucket.set(&key, &read_body(request)) {
            Ok(()) => (200, "set".into()),
            Err(e) => failed(e),
        },
        "d2get" => match bucket.get(&key) {
            Ok(Some(value)) => (200, String::from_utf8_lossy(&value).into()),
            Ok(None) => (404, "missing".into()),
            Err(e) => failed(e),
        },
        "d2incr" => match kv2_atomics::increment(bucket, &key, param("by").parse().unwrap_or(0)) {
            Ok(n) => (200, n.to_string()),
            Err(e) => failed(e),
        },
        "d2cas" => {
            let mut cas = match kv2_atomics::Cas::new(bucket, &key) {
                Ok(cas) => cas,
                Err(e) => return failed(e),
            };
            let mut retries = 0;
            loop {
                let n: u64 = match cas.current() {
                    Ok(current) => current
                        .and_then(|v| String::from_utf8(v).ok())
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0),
                    Err(e) => return failed(e),
                };
                match kv2_atomics::swap(cas, (n + 1).to_string().as_bytes()) {
                    Ok(()) => return (200, retries.to_string()),
                    Err(kv2_atomics::CasError::CasFailed(fresh)) => {
                        retries += 1;
                        cas = fresh;
                    }
                    Err(kv2_atomics::CasError::StoreError(e)) => return failed(e),
                }
            }
        }
        "d2stale" => {
            let cas = match kv2_atomics::Cas::new(bucket, &key) {
                Ok(cas) => cas,
                Err(e) => return failed(e),
            };
            if let Err(e) = bucket.set(&key, b"theirs") {
                return failed(e);
            }
            match kv2_atomics::swap(cas, b"mine") {
                Ok(()) => (500, "the swap over a changed value was done".into()),
                Err(kv2_atomics::CasError::StoreError(e)) => failed(e),
                Err(kv2_atomics::CasError::CasFailed(fresh)) => {
                    let held = match fresh.current() {
                        Ok(held) => String::from_utf8_lossy(&held.unwrap_or_default()).into_owned(),
                        Err(e) => return failed(e),
                    };
                    match kv2_atomics::swap(fresh, b"mine") {
                        Ok(()) => (200, format!("fresh handle held {held}; swapped")),
                        Err(e) => (500, format!("fresh handle held {held}; {e:?}")),
                    }
                }
            }
        }
        "d2many" => {
            let keys: Vec<String> = param("keys").split(',').map(str::to_string).collect();
            match kv2_batch::get_many(bucket, &keys) {
                Ok(pairs) => {
                    let lines: Vec<String> = pairs
                        .iter()
                        .map(|(k, v)| match v {
                            Some(v) => format!("{k}={}", String::from_utf8_lossy(v)),
                            None => format!("{k}=none"),
                        })
                        .collect();
                    (200, lines.join("\n"))
                }
                Err(e) => failed(e),
            }
        }
        "d2setmany" => {
            let from: usize = param("from").parse().unwrap_or(0);
            let n: usize = param("n").parse().unwrap_or(0);
            let pairs: Vec<(String, Vec<u8>)> = (from..from + n)
                .map(|i| (format!("k{i:04}"), b"v".to_vec()))
                .collect();
            match kv2_batch::set_many(bucket, &pairs) {
                Ok(()) => (200, "set".into()),
                Err(e) => failed(e),
            }
        }
        "d2keys" => {
            let (mut keys, mut pages, mut cursor) = (0, 0, None::<String>);
            loop {
                match bucket.list_keys(cursor.as_deref()) {
                    Ok(page) => {
                        keys += page.keys.len();
                        pages += 1;
                        cursor = page.cursor;
                        if cursor.is_none() {
                            return (200, format!("{keys} keys in {pages} pages"));
                        }
                    }
                    Err(e) => return failed(e),
                }
            }
        }
        "d2page" => match bucket.list_keys(Some(&param("cursor"))) {
            Ok(page) => (200, page.keys.len().to_string()),
            Err(e) => failed(e),
        },
        "d2hoard" => {
            let n: usize = param("n").parse().unwrap_or(0);
            let mut handles = Vec::new();
            let mut stopped = "no refusal".to_string();
            for _ in 0..n {
                match kv2_atomics::Cas::new(bucket, &key) {
                    Ok(cas) => handles.push(cas),
                    Err(e) => {
                        stopped = format!("{e:?}");
                        break;
                    }
                }
            }
            let made = handles.len();
            drop(handles);
            let after = match kv2_atomics::Cas::new(bucket, &key) {
                Ok(_) => "ok".to_string(),
                Err(e) => format!("{e:?}"),
            };
            (
                200,
                format!("made {made}; then {stopped}; after dropping: {after}"),
            )
        }
        _ => (404, format!("no route {op}")),
    }
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
