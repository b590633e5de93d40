//! Property tests of the deploy form (`read_upload`): whatever a client
//! sends as `multipart/form-data`, the reader answers with the upload or a
//! 4xx error saying what is wrong, never panics, keeps no more than the
//! body it was sent, and takes time linear in the body.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use bytes::Bytes;
use futures_util::Stream;
use http::StatusCode;
use proptest::prelude::*;
use stratus_control::Upload;
use tower::{Layer, ServiceExt};

use crate::error::ApiError;
use crate::form::MAX_FRAMING;
use crate::upload::{deploy_form, read_upload};

/// The upload limit of the generated cases: small, so that many of them
/// cross it.
const MAX_UPLOAD: usize = 4096;

/// Hands a body over in chunks, answering "not yet" before each one the way
/// a socket does, so the parser sees one chunk per poll instead of the whole
/// body at once (which hides work repeated on every poll).
struct Trickle {
    chunks: VecDeque<Bytes>,
    ready: bool,
    /// Bytes handed over so far.
    sent: Arc<AtomicUsize>,
}

impl Stream for Trickle {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if !self.ready {
            self.ready = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.ready = false;
        let chunk = self.chunks.pop_front();
        if let Some(chunk) = &chunk {
            self.sent.fetch_add(chunk.len(), Ordering::Relaxed);
        }
        Poll::Ready(chunk.map(Ok))
    }
}

fn trickle(body: &[u8], chunk: usize) -> Body {
    trickle_counted(body, chunk, Arc::default())
}

fn trickle_counted(body: &[u8], chunk: usize, sent: Arc<AtomicUsize>) -> Body {
    let chunks = body
        .chunks(chunk.max(1))
        .map(Bytes::copy_from_slice)
        .collect();
    Body::from_stream(Trickle {
        chunks,
        ready: false,
        sent,
    })
}

/// Reads `body` as the deploy handler does: under the body limit the admin
/// router sets, `deploy_form` (the framing guard and axum's `Multipart`
/// extractor, `Multipart::from_request`), then `read_upload`.
async fn read(content_type: &[u8], body: Body, max_upload: usize) -> Result<Upload, ApiError> {
    let mut request = http::Request::post("/v1/apps").body(body).unwrap();
    if let Ok(value) = http::HeaderValue::from_bytes(content_type) {
        request
            .headers_mut()
            .insert(http::header::CONTENT_TYPE, value);
    }
    let handler = tower::service_fn(|request: http::Request<Body>| async move {
        let upload = match deploy_form(request).await {
            Ok(multipart) => read_upload(multipart, max_upload).await,
            Err(e) => Err(e),
        };
        Ok::<_, Infallible>(upload)
    });
    let Ok(upload) = DefaultBodyLimit::max(max_upload)
        .layer(handler)
        .oneshot(request)
        .await;
    upload
}

fn block_on<T>(future: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(future)
}

/// One part of a generated form.
#[derive(Debug, Clone)]
struct Part {
    name: Option<String>,
    file_name: Option<String>,
    /// Headers besides `Content-Disposition`, sent as they are.
    headers: Vec<String>,
    body: Vec<u8>,
}

fn encode(boundary: &str, parts: &[Part]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in parts {
        out.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data").as_bytes());
        if let Some(name) = &part.name {
            out.extend_from_slice(format!("; name=\"{name}\"").as_bytes());
        }
        if let Some(file_name) = &part.file_name {
            out.extend_from_slice(format!("; filename=\"{file_name}\"").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        for header in &part.headers {
            out.extend_from_slice(header.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&part.body);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}

fn content_type(boundary: &str) -> Vec<u8> {
    format!("multipart/form-data; boundary=\"{boundary}\"").into_bytes()
}

/// What `read_upload` should make of a well-formed form within the limit:
/// the upload, or the status of the first refusal (422: the form is read,
/// its parts are not a deploy).
fn expected(parts: &[Part]) -> Result<Upload, StatusCode> {
    let mut upload = Upload::default();
    let mut manifest = None;
    for part in parts {
        match (part.name.as_deref(), &part.file_name) {
            (Some("manifest"), _) => {
                if manifest.is_some() {
                    return Err(StatusCode::UNPROCESSABLE_ENTITY);
                }
                let text = String::from_utf8(part.body.clone()).ok();
                manifest = Some(text.ok_or(StatusCode::UNPROCESSABLE_ENTITY)?);
            }
            (Some("component"), Some(path)) => {
                if upload.components.contains_key(path) {
                    return Err(StatusCode::UNPROCESSABLE_ENTITY);
                }
                let bytes = Bytes::copy_from_slice(&part.body);
                upload.components.insert(path.clone(), bytes);
            }
            _ => return Err(StatusCode::UNPROCESSABLE_ENTITY),
        }
    }
    upload.manifest = manifest.ok_or(StatusCode::UNPROCESSABLE_ENTITY)?;
    Ok(upload)
}

/// Holds for any body: an upload no larger than the body, or a client
/// error with a code and a message.
fn check_any(sent: usize, result: &Result<Upload, ApiError>) -> Result<(), TestCaseError> {
    match result {
        Ok(upload) => {
            let kept =
                upload.manifest.len() + upload.components.values().map(Bytes::len).sum::<usize>();
            prop_assert!(kept <= sent, "kept {kept} bytes of a {sent}-byte body");
            prop_assert!(sent <= MAX_UPLOAD, "a {sent}-byte body was accepted");
        }
        Err(e) => {
            prop_assert!(e.status.is_client_error(), "{e:?}");
            prop_assert!(!e.code.is_empty(), "{e:?}");
            prop_assert!(!e.message.trim().is_empty(), "{e:?}");
        }
    }
    Ok(())
}

fn boundary() -> impl Strategy<Value = String> {
    "[A-Za-z0-9'()+_,./:=?-]{1,70}"
}

fn part() -> impl Strategy<Value = Part> {
    let name = prop_oneof![
        4 => Just(Some("manifest".to_string())),
        6 => Just(Some("component".to_string())),
        1 => Just(None),
        1 => "[a-z]{0,8}".prop_map(Some),
    ];
    let file_name = prop_oneof![
        1 => Just(None),
        4 => "[a-z0-9/._ -]{0,16}".prop_map(Some),
    ];
    let header = prop_oneof![
        Just("Content-Type: application/wasm".to_string()),
        // Sizes a part claims are not believed: only the bytes count.
        Just("Content-Length: 18446744073709551615".to_string()),
        Just("Content-Length: 99999999999999999999999".to_string()),
        "X-[a-z]{1,6}: [ -~]{0,20}",
    ];
    let body = prop_oneof![
        3 => "[ -~\n]{0,300}".prop_map(String::into_bytes),
        2 => proptest::collection::vec(any::<u8>(), 0..600),
        1 => proptest::collection::vec(any::<u8>(), 2000..3000),
    ];
    (
        name,
        file_name,
        proptest::collection::vec(header, 0..3),
        body,
    )
        .prop_map(|(name, file_name, headers, body)| Part {
            name,
            file_name,
            headers,
            body,
        })
}

fn parts() -> impl Strategy<Value = Vec<Part>> {
    proptest::collection::vec(part(), 0..6)
}

/// A change to a well-formed body.
#[derive(Debug, Clone)]
enum Mutation {
    Truncate(prop::sample::Index),
    Duplicate(prop::sample::Index, usize),
    Delete(prop::sample::Index, usize),
    Insert(prop::sample::Index, Vec<u8>),
    Flip(prop::sample::Index, u8),
    /// Bare `\n` line ends, as some hand-written clients send.
    BareNewlines,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    use prop::sample::Index;
    prop_oneof![
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), 1..400usize).prop_map(|(at, n)| Mutation::Duplicate(at, n)),
        (any::<Index>(), 1..64usize).prop_map(|(at, n)| Mutation::Delete(at, n)),
        (
            any::<Index>(),
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 1..32),
                Just(b"\r\n".to_vec()),
                Just(b"\r\n\r\n".to_vec()),
                Just(b"--".to_vec()),
            ]
        )
            .prop_map(|(at, bytes)| Mutation::Insert(at, bytes)),
        (any::<Index>(), 1..=255u8).prop_map(|(at, x)| Mutation::Flip(at, x)),
        Just(Mutation::BareNewlines),
    ]
}

fn mutate(mut body: Vec<u8>, mutation: &Mutation) -> Vec<u8> {
    if body.is_empty() {
        return body;
    }
    match mutation {
        Mutation::Truncate(at) => body.truncate(at.index(body.len())),
        Mutation::Duplicate(at, n) => {
            let start = at.index(body.len());
            let end = (start + n).min(body.len());
            let copy = body[start..end].to_vec();
            body.splice(end..end, copy);
        }
        Mutation::Delete(at, n) => {
            let start = at.index(body.len());
            body.drain(start..(start + n).min(body.len()));
        }
        Mutation::Insert(at, bytes) => {
            let at = at.index(body.len() + 1);
            body.splice(at..at, bytes.iter().copied());
        }
        Mutation::Flip(at, x) => {
            let at = at.index(body.len());
            body[at] ^= x;
        }
        Mutation::BareNewlines => {
            let mut out = Vec::with_capacity(body.len());
            for (i, b) in body.iter().enumerate() {
                if !(*b == b'\r' && body.get(i + 1) == Some(&b'\n')) {
                    out.push(*b);
                }
            }
            body = out;
        }
    }
    body
}

/// `Content-Type` headers with boundaries that are missing, empty, quoted,
/// long, or unlike the body's.
fn odd_content_type() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"multipart/form-data".to_vec()),
        Just(b"multipart/form-data; boundary=".to_vec()),
        Just(b"multipart/form-data; boundary=\"\"".to_vec()),
        Just(b"application/octet-stream".to_vec()),
        Just(b"text/plain; boundary=B".to_vec()),
        Just(Vec::new()),
        boundary().prop_map(|b| format!("multipart/form-data; boundary=\"{b}\"").into_bytes()),
        "[A-Za-z0-9-]{71,2000}"
            .prop_map(|b| format!("multipart/form-data; boundary={b}").into_bytes()),
        proptest::collection::vec(any::<u8>(), 0..80),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A well-formed form within the limit is read exactly: the manifest
    /// and every component by its file name, or the refusal its parts call
    /// for; one over the limit is refused, 413 unless a part before the
    /// limit was wrong already.
    #[test]
    fn well_formed_forms_are_read_exactly(
        boundary in boundary(),
        parts in parts(),
        chunk in 1..2048usize,
    ) {
        let body = encode(&boundary, &parts);
        prop_assume!(!parts.iter().any(|p| {
            let needle = format!("--{boundary}").into_bytes();
            p.body.windows(needle.len()).any(|w| w == needle)
        }));
        let result = block_on(read(&content_type(&boundary), trickle(&body, chunk), MAX_UPLOAD));
        check_any(body.len(), &result)?;
        match (expected(&parts), result) {
            (_, Err(e)) if body.len() > MAX_UPLOAD => {
                prop_assert!(
                    e.status == StatusCode::PAYLOAD_TOO_LARGE || e.status == StatusCode::BAD_REQUEST,
                    "{e:?}"
                );
            }
            (Ok(want), Ok(got)) => {
                prop_assert_eq!(&got.manifest, &want.manifest);
                let got: BTreeMap<_, _> = got.components.into_iter().collect();
                prop_assert_eq!(got, want.components);
            }
            (Err(status), Err(e)) => prop_assert_eq!(e.status, status, "{:?}", e),
            (want, got) => prop_assert!(false, "expected {want:?}, got {got:?}"),
        }
    }

    /// A damaged form, or one whose boundary is missing or odd, is read or
    /// refused with a 4xx, never a panic or a server error.
    #[test]
    fn damaged_forms_are_refused_with_a_client_error(
        boundary in boundary(),
        parts in parts(),
        mutations in proptest::collection::vec(mutation(), 1..4),
        odd in proptest::option::weighted(0.25, odd_content_type()),
        chunk in 1..2048usize,
    ) {
        let mut body = encode(&boundary, &parts);
        for m in &mutations {
            body = mutate(body, m);
        }
        let content_type = odd.unwrap_or_else(|| content_type(&boundary));
        let result = block_on(read(&content_type, trickle(&body, chunk), MAX_UPLOAD));
        check_any(body.len(), &result)?;
    }

    /// Random bytes under a valid header are refused with a 4xx.
    #[test]
    fn random_bytes_are_refused_with_a_client_error(
        body in proptest::collection::vec(any::<u8>(), 0..6000),
        boundary in boundary(),
        chunk in 1..2048usize,
    ) {
        let result = block_on(read(&content_type(&boundary), trickle(&body, chunk), MAX_UPLOAD));
        check_any(body.len(), &result)?;
        prop_assert!(result.is_err(), "random bytes were read as a form");
    }
}

/// A request that is no form, or whose boundary is longer than RFC 2046
/// allows, is refused in the API's error shape saying so.
#[test]
fn requests_that_are_no_form_are_refused_saying_why() {
    let manifest = Part {
        name: Some("manifest".into()),
        file_name: None,
        headers: Vec::new(),
        body: b"m".to_vec(),
    };
    let longest = "b".repeat(70);
    let body = encode(&longest, std::slice::from_ref(&manifest));
    let upload = block_on(read(&content_type(&longest), trickle(&body, 7), MAX_UPLOAD));
    assert_eq!(upload.unwrap().manifest, "m");

    let too_long = "b".repeat(71);
    let body = encode(&too_long, std::slice::from_ref(&manifest));
    let e = block_on(read(
        &content_type(&too_long),
        trickle(&body, 7),
        MAX_UPLOAD,
    ))
    .unwrap_err();
    assert_eq!((e.status, e.code), (StatusCode::BAD_REQUEST, "bad_request"));
    assert_eq!(
        e.message,
        "the form's boundary has 71 characters; it must have 1 to 70 (RFC 2046)"
    );

    for content_type in [&b"application/json"[..], b"multipart/form-data", b""] {
        let e = block_on(read(content_type, trickle(&body, 7), MAX_UPLOAD)).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST, "{e:?}");
        assert!(
            e.message
                .contains("send the manifest and components as multipart/form-data"),
            "{e:?}"
        );
    }
}

/// Bodies of 1 MiB built to make a parser repeat work: a preamble that
/// never reaches the boundary, a part whose headers never end, data full of
/// near-boundaries, many tiny parts. Each, sent in 64-byte chunks, is read
/// or refused with the reason within a generous bound (multer alone
/// searches its whole buffer again for each chunk while it looks for a
/// boundary or the end of headers: 2 s for 1 MiB, hours for 64 MiB), and a
/// refusal comes without reading much past the framing limit.
#[test]
fn pathological_bodies_take_linear_time() {
    const SIZE: usize = 1 << 20;
    const CHUNK: usize = 64;
    let boundary = "stratus-boundary-0123456789";
    let fill = |prefix: &str, unit: &str, suffix: &str| {
        let mut body = prefix.as_bytes().to_vec();
        while body.len() + unit.len() + suffix.len() <= SIZE {
            body.extend_from_slice(unit.as_bytes());
        }
        body.extend_from_slice(suffix.as_bytes());
        body
    };
    let part = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"component\"");
    let no_boundary = "the form has no boundary line in its first 16384 bytes";
    let endless = "a part's headers run past 16384 bytes without the blank line";
    let (tiny, components) = tiny_parts(boundary, SIZE);
    let cases: Vec<(&str, Vec<u8>, Result<usize, &str>)> = vec![
        (
            "preamble without a boundary",
            fill("", "--stratus-\r\n", ""),
            Err(no_boundary),
        ),
        (
            "headers that never end",
            fill(&format!("{part}\r\n"), "X-a: b\r\n", ""),
            Err(endless),
        ),
        (
            "one header line of 1 MiB",
            fill(&format!("{part}; filename=\"a"), "\r", ""),
            Err(endless),
        ),
        (
            "padding after a boundary",
            fill(&format!("--{boundary}"), " \t", ""),
            Err(endless),
        ),
        (
            "data of near-boundaries",
            fill(
                &format!("{part}; filename=\"a.wasm\"\r\n\r\n"),
                &format!("\r\n--{}", &boundary[..boundary.len() - 1]),
                &format!("\r\n--{boundary}--\r\n"),
            ),
            Err("the upload has no `manifest` part"),
        ),
        ("many tiny parts", tiny, Ok(components)),
    ];
    for (what, body, expected) in cases {
        let sent = Arc::new(AtomicUsize::new(0));
        let body_stream = trickle_counted(&body, CHUNK, sent.clone());
        let started = Instant::now();
        let result = block_on(read(&content_type(boundary), body_stream, 2 * SIZE));
        let took = started.elapsed();
        let read = sent.load(Ordering::Relaxed);
        eprintln!("info: {what}: {took:?}, {read} bytes read");
        assert!(took < Duration::from_secs(1), "{what} took {took:?}");
        match (expected, result) {
            (Ok(n), Ok(upload)) => assert_eq!(upload.components.len(), n, "{what}"),
            (Err(reason), Err(e)) => {
                let status = if reason == "the upload has no `manifest` part" {
                    StatusCode::UNPROCESSABLE_ENTITY
                } else {
                    StatusCode::BAD_REQUEST
                };
                assert_eq!(e.status, status, "{what}: {e:?}");
                assert!(e.message.contains(reason), "{what}: {e:?}");
                if reason != "the upload has no `manifest` part" {
                    assert!(
                        read <= MAX_FRAMING + 2 * CHUNK + 200,
                        "{what}: {read} bytes read"
                    );
                }
            }
            (expected, result) => panic!("{what}: expected {expected:?}, got {result:?}"),
        }
    }
}

/// A manifest and as many empty components as fit in `size` bytes, and
/// how many components that is.
fn tiny_parts(boundary: &str, size: usize) -> (Vec<u8>, usize) {
    let mut parts = vec![Part {
        name: Some("manifest".into()),
        file_name: None,
        headers: Vec::new(),
        body: b"x".to_vec(),
    }];
    let mut length = encode(boundary, &parts).len();
    while length < size - 200 {
        let part = Part {
            name: Some("component".into()),
            file_name: Some(format!("c{}", parts.len())),
            headers: Vec::new(),
            body: Vec::new(),
        };
        length += encode(boundary, std::slice::from_ref(&part)).len() - boundary.len() - 6;
        parts.push(part);
    }
    (encode(boundary, &parts), parts.len() - 1)
}

/// A form larger than the chunks the guard hands on, its data full of
/// near-boundaries, is read exactly however the body is cut.
#[test]
fn a_large_form_is_read_exactly_whatever_its_chunks() {
    let boundary = "stratus-0123456789";
    let data = |seed: u8| -> Vec<u8> {
        let mut data = Vec::new();
        let mut i = 0u32;
        while data.len() < 150_000 {
            // The boundary but for its last character.
            data.extend_from_slice(b"\r\n--stratus-012345678x");
            data.extend_from_slice(&i.to_le_bytes());
            data.push(seed);
            data.extend_from_slice(b"\r\n\r\n");
            i += 1;
        }
        data
    };
    let parts: Vec<Part> = (0..3u8)
        .map(|n| Part {
            name: Some("component".into()),
            file_name: Some(format!("c{n}.wasm")),
            headers: vec!["Content-Type: application/wasm".into()],
            body: data(n),
        })
        .chain(std::iter::once(Part {
            name: Some("manifest".into()),
            file_name: None,
            headers: Vec::new(),
            body: b"[app]\nname = \"a\"\n".to_vec(),
        }))
        .collect();
    let body = encode(boundary, &parts);
    let want = expected(&parts).unwrap();
    for chunk in [13, 4096, 70_000, body.len()] {
        let got = block_on(read(
            &content_type(boundary),
            trickle(&body, chunk),
            1 << 20,
        ))
        .unwrap();
        assert_eq!(got.manifest, want.manifest, "chunks of {chunk}");
        assert_eq!(got.components, want.components, "chunks of {chunk}");
    }
}
