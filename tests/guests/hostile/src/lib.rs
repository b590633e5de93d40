//! The containment tests' adversary: a `wasi:http` guest that attacks its
//! host in the way the request asks. Like the testbed, it dispatches on the
//! LAST segment of the request path, so a test can mount it anywhere:
//!
//! | last segment | attack |
//! | --- | --- |
//! | `stream?chunks=N&size=S&gap_ms=G` | 200, then N chunks (0: without end) of S bytes (default 64 KiB), G ms apart (default 0), until the host stops taking them |
//! | `trap-after-body` | 200 and a first chunk, then (300 ms later) a trap |
//! | `hang-after-body` | 200 and a first chunk, then waits forever (the function's timeout ends it) |
//! | `fields?count=N&size=S` | creates N `fields` of one S-byte header each and keeps them all; 200 `created N`, or `refused at K: …` when the host says no |
//! | `recurse` | unbounded recursion: a stack overflow |
//! | `exit?code=N` | exits with code N (0 to 255, `exit-with-code`) before answering |
//! | `log?lines=N&size=S` | N lines of S bytes to stdout (default 1 line of 80), then 200 |
//! | `escape` | prints terminal escape sequences (screen clear, title change), then 200 |
//! | `fanout?to=F&n=N` | calls `http://F.svc/fanout?to=F&n=N` N times in a row (each call fans out again), then 200 with how many calls answered 200 |
//! | `fetch?url=http://HOST:PORT/PATH` | an outbound GET: 200 `reached: STATUS` or `denied: CODE` |
//! | anything else | 200 `hostile` |
//!
//! A missing or malformed query parameter answers 400.

use std::io::{Read as _, Write as _};

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{
    Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingResponse,
    ResponseOutparam, Scheme,
};

struct Hostile;

wasip2::http::proxy::export!(Hostile);

impl Guest for Hostile {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let path_with_query = request.path_with_query().unwrap_or_else(|| "/".to_string());
        let (path, query) = match path_with_query.split_once('?') {
            Some((path, query)) => (path, query),
            None => (path_with_query.as_str(), ""),
        };
        let command = path.rsplit('/').find(|segment| !segment.is_empty()).unwrap_or("");

        match command {
            "stream" => {
                let chunks = number_param(query, "chunks").unwrap_or(0);
                let size = number_param(query, "size").unwrap_or(64 * 1024) as usize;
                let gap_ms = number_param(query, "gap_ms").unwrap_or(0);
                let chunk = vec![b'x'; size.max(1)];
                let body = start(response_out, 200);
                {
                    let mut out = body.write().expect("stream is taken only once");
                    let mut sent = 0;
                    while chunks == 0 || sent < chunks {
                        if out.write_all(&chunk).and_then(|()| std::io::Write::flush(&mut out)).is_err() {
                            break;
                        }
                        sent += 1;
                        if gap_ms > 0 {
                            sleep_ms(gap_ms);
                        }
                    }
                }
                let _ = OutgoingBody::finish(body, None);
            }
            "trap-after-body" => {
                let body = start(response_out, 200);
                {
                    let mut out = body.write().expect("stream is taken only once");
                    let _ = out.write_all(b"the first part of the answer\n");
                    let _ = out.flush();
                }
                // Long enough for the headers and the first part to reach
                // the client: the failure is plainly after the headers.
                sleep_ms(300);
                panic!("hostile: trap after the headers");
            }
            "hang-after-body" => {
                let body = start(response_out, 200);
                {
                    let mut out = body.write().expect("stream is taken only once");
                    let _ = out.write_all(b"the first part of the answer\n");
                    let _ = out.flush();
                }
                loop {
                    sleep_ms(60_000);
                }
            }
            "fields" => {
                let count = number_param(query, "count").unwrap_or(1000);
                let size = number_param(query, "size").unwrap_or(120 * 1024) as usize;
                let value = vec![b'v'; size];
                let mut kept = Vec::new();
                let mut outcome = None;
                for i in 0..count {
                    match Fields::from_list(&[("x-flood".to_string(), value.clone())]) {
                        Ok(fields) => kept.push(fields),
                        Err(e) => {
                            outcome = Some(format!("refused at {i}: {e:?}"));
                            break;
                        }
                    }
                }
                let text = outcome.unwrap_or_else(|| format!("created {}", kept.len()));
                send_text(response_out, 200, &text);
            }
            "recurse" => {
                let depth = recurse(std::hint::black_box(1));
                send_text(response_out, 200, &depth.to_string());
            }
            // `exit-with-code`, not `std::process::exit`: WASI 0.2's plain
            // `exit` carries only success or failure, so the host would see
            // 1 for any code but 0.
            "exit" => match number_param(query, "code").and_then(|code| u8::try_from(code).ok()) {
                Some(code) => wasip2::cli::exit::exit_with_code(code),
                None => send_text(response_out, 400, "exit needs ?code=N (0 to 255)"),
            },
            "log" => {
                let lines = number_param(query, "lines").unwrap_or(1);
                let size = number_param(query, "size").unwrap_or(80) as usize;
                let line = "l".repeat(size);
                let mut stdout = std::io::stdout().lock();
                for _ in 0..lines {
                    if writeln!(stdout, "{line}").is_err() {
                        break;
                    }
                }
                let _ = stdout.flush();
                send_text(response_out, 200, &format!("logged {lines}"));
            }
            "escape" => {
                println!("before\x1b[2J\x1b]0;owned\x07\x1b[31mred\rafter\u{9b}31m");
                let _ = std::io::stdout().flush();
                send_text(response_out, 200, "escaped");
            }
            "fanout" => match (query_param(query, "to"), number_param(query, "n")) {
                (Some(to), Some(n)) => {
                    let mut ok = 0;
                    for _ in 0..n {
                        let url = format!("http://{to}.svc/fanout?to={to}&n={n}");
                        if get(&url).is_ok_and(|(status, _)| status == 200) {
                            ok += 1;
                        }
                    }
                    send_text(response_out, 200, &format!("{ok} of {n}"));
                }
                _ => send_text(response_out, 400, "fanout needs ?to=F&n=N"),
            },
            "fetch" => match query_param(query, "url") {
                Some(url) => {
                    let text = match get(&url) {
                        Ok((status, _)) => format!("reached: {status}"),
                        Err(code) => format!("denied: {code}"),
                    };
                    send_text(response_out, 200, &text);
                }
                None => send_text(response_out, 400, "fetch needs ?url=URL"),
            },
            _ => {
                drop(read_body(&request));
                send_text(response_out, 200, "hostile");
            }
        }
    }
}

#[inline(never)]
fn recurse(n: u64) -> u64 {
    let frame = std::hint::black_box([n; 64]);
    // Never true, but the compiler cannot know: the recursion stays real.
    if std::hint::black_box(frame[5]) == u64::MAX {
        return 0;
    }
    recurse(frame[7].wrapping_add(1)).wrapping_add(frame[3])
}

fn sleep_ms(ms: u64) {
    let pollable = wasip2::clocks::monotonic_clock::subscribe_duration(ms.saturating_mul(1_000_000));
    wasip2::io::poll::poll(&[&pollable]);
}

/// An outbound GET of `url` (`http://authority/path`): the status and body,
/// or the error code's debug form.
fn get(url: &str) -> Result<(u16, Vec<u8>), String> {
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::OutgoingRequest;

    let (scheme, rest) = match url.split_once("://") {
        Some(("https", rest)) => (Scheme::Https, rest),
        Some((_, rest)) => (Scheme::Http, rest),
        None => (Scheme::Http, url),
    };
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    let _ = request.set_method(&Method::Get);
    let _ = request.set_scheme(Some(&scheme));
    let _ = request.set_authority(Some(authority));
    let _ = request.set_path_with_query(Some(path));
    let future = outgoing_handler::handle(request, None).map_err(|code| format!("{code:?}"))?;
    future.subscribe().block();
    let response = match future.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(format!("{code:?}")),
        other => return Err(format!("{other:?}")),
    };
    let mut answer = Vec::new();
    if let Ok(body) = response.consume() {
        if let Ok(mut stream) = body.stream() {
            let _ = stream.read_to_end(&mut answer);
            drop(stream);
        }
        drop(IncomingBody::finish(body));
    }
    Ok((response.status(), answer))
}

/// Sends the status and headers; the body is the caller's to write.
fn start(response_out: ResponseOutparam, status: u16) -> OutgoingBody {
    let fields = Fields::from_list(&[(
        "content-type".to_string(),
        b"application/octet-stream".to_vec(),
    )])
    .expect("valid response headers");
    let response = OutgoingResponse::new(fields);
    response.set_status_code(status).expect("valid status code");
    let body = response.body().expect("body is taken only once");
    ResponseOutparam::set(response_out, Ok(response));
    body
}

fn read_body(request: &IncomingRequest) -> Vec<u8> {
    let mut bytes = Vec::new();
    let Ok(body) = request.consume() else {
        return bytes;
    };
    if let Ok(mut stream) = body.stream() {
        let _ = stream.read_to_end(&mut bytes);
        drop(stream);
    }
    drop(IncomingBody::finish(body));
    bytes
}

fn send_text(response_out: ResponseOutparam, status: u16, text: &str) {
    let body = start(response_out, status);
    {
        let mut out = body.write().expect("stream is taken only once");
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
    let _ = OutgoingBody::finish(body, None);
}

fn number_param(query: &str, name: &str) -> Option<u64> {
    query_param(query, name)?.trim().parse().ok()
}

/// The first value of query parameter `name` (only `%3A` and `%2F` are
/// decoded, enough for the URLs the tests pass).
fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| value.replace("%3A", ":").replace("%2F", "/"))
    })
}
