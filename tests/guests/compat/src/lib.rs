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
            _ => (200, "compat".into()),
        };
        send_text(response_out, status, &text);
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
