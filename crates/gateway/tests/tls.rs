//! TLS on a listener, driven by a real TLS client (rustls) and real HTTP/1.1
//! and HTTP/2 clients (hyper) over loopback, with certificates made in the
//! test.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use stratus_gateway::{ConnectionLimits, PeerAddr, Tls, TlsError, TlsFiles, serve_connections};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// A self-signed certificate for `localhost`, as PEM, and its DER.
struct Identity {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

fn identity() -> Identity {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    Identity {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().clone(),
    }
}

fn write_identity(dir: &Path, identity: &Identity) -> TlsFiles {
    let files = TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    std::fs::write(&files.cert, &identity.cert_pem).unwrap();
    std::fs::write(&files.key, &identity.key_pem).unwrap();
    files
}

/// Serves, over `tls`, a handler that answers the HTTP version and whether
/// the peer address was known; returns the address.
async fn serve(tls: Arc<Tls>) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = ConnectionLimits {
        read_timeout: Duration::from_secs(2),
        ..ConnectionLimits::default()
    };
    let handler = |request: hyper::Request<_>| async move {
        let peer = request.extensions().get::<PeerAddr>().is_some();
        let text = format!("{:?} peer={peer}", request.version());
        hyper::Response::new(Full::new(Bytes::from(text)))
    };
    tokio::spawn(serve_connections(
        listener,
        limits,
        Some(tls),
        "test",
        handler,
        std::future::pending(),
    ));
    addr
}

/// A TLS connection trusting only `trusted`, offering `alpn`.
async fn connect(
    addr: std::net::SocketAddr,
    trusted: &CertificateDer<'static>,
    alpn: &[u8],
) -> std::io::Result<TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trusted.clone()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
}

async fn body(response: hyper::Response<hyper::body::Incoming>) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn get() -> hyper::Request<Empty<Bytes>> {
    hyper::Request::builder()
        .uri("https://localhost/")
        .body(Empty::new())
        .unwrap()
}

/// An HTTP/1.1 client on `stream`.
async fn http1(
    stream: TlsStream<TcpStream>,
) -> hyper::client::conn::http1::SendRequest<Empty<Bytes>> {
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

#[tokio::test]
async fn http2_and_http1_are_chosen_by_alpn() {
    let dir = tempfile::tempdir().unwrap();
    let id = identity();
    let tls = Arc::new(Tls::load(write_identity(dir.path(), &id)).unwrap());
    let addr = serve(tls).await;

    let stream = connect(addr, &id.der, b"h2").await.unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut h2, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    // Several requests at once on the one connection.
    let answers = in_order((0..8).map(|_| h2.send_request(get())).collect::<Vec<_>>()).await;
    for response in answers {
        assert_eq!(body(response.unwrap()).await, "HTTP/2.0 peer=true");
    }

    let stream = connect(addr, &id.der, b"http/1.1").await.unwrap();
    let mut h1 = http1(stream).await;
    let response = h1.send_request(get()).await.unwrap();
    assert_eq!(body(response).await, "HTTP/1.1 peer=true");
}

/// Awaits every future, in order: HTTP/2 requests are under way once
/// sent, so they still run at once.
async fn in_order<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let handles: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        out.push(handle.await);
    }
    out
}

#[tokio::test]
async fn a_renewed_certificate_reaches_new_connections_and_open_ones_keep_serving() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (identity(), identity());
    let tls = Arc::new(Tls::load(write_identity(dir.path(), &old)).unwrap());
    let reloader = tls.spawn_reloader("test");
    let addr = serve(tls).await;
    let mut open = http1(connect(addr, &old.der, b"http/1.1").await.unwrap()).await;
    assert_eq!(
        body(open.send_request(get()).await.unwrap()).await,
        "HTTP/1.1 peer=true"
    );

    write_identity(dir.path(), &new);
    // New handshakes present the new certificate once the files are read
    // again (checked every second).
    let deadline = Instant::now() + Duration::from_secs(10);
    let stream = loop {
        match connect(addr, &new.der, b"http/1.1").await {
            Ok(stream) => break stream,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "never presented the new certificate: {e}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let presented = stream.get_ref().1.peer_certificates().unwrap()[0].clone();
    assert_eq!(presented, new.der);
    assert!(
        connect(addr, &old.der, b"http/1.1").await.is_err(),
        "the old certificate is no longer presented"
    );
    let mut fresh = http1(stream).await;
    assert_eq!(
        body(fresh.send_request(get()).await.unwrap()).await,
        "HTTP/1.1 peer=true"
    );
    // The connection opened before the renewal was not dropped.
    assert_eq!(
        body(open.send_request(get()).await.unwrap()).await,
        "HTTP/1.1 peer=true"
    );
    reloader.abort();
}

#[tokio::test]
async fn a_broken_pair_keeps_the_last_good_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let good = identity();
    let files = write_identity(dir.path(), &good);
    let tls = Arc::new(Tls::load(files.clone()).unwrap());
    let addr = serve(tls.clone()).await;

    // Half-written: a certificate file that is not PEM yet.
    std::fs::write(&files.cert, "-----BEGIN CERT").unwrap();
    let err = tls.reload_if_changed().unwrap_err();
    assert!(err.to_string().contains("cert.pem"), "{err}");
    // Reported once per change, not every check.
    assert!(!tls.reload_if_changed().unwrap());
    // Another pair's key beside this certificate.
    std::fs::write(&files.cert, &good.cert_pem).unwrap();
    std::fs::write(&files.key, identity().key_pem).unwrap();
    let err = tls.reload_if_changed().unwrap_err();
    assert!(matches!(err, TlsError::Mismatch { .. }), "{err}");

    let mut client = http1(connect(addr, &good.der, b"http/1.1").await.unwrap()).await;
    assert_eq!(
        body(client.send_request(get()).await.unwrap()).await,
        "HTTP/1.1 peer=true"
    );

    std::fs::write(&files.key, &good.key_pem).unwrap();
    assert!(
        tls.reload_if_changed().unwrap(),
        "a good pair again is taken"
    );
}

#[tokio::test]
async fn a_client_without_tls_loses_only_its_own_connection() {
    let dir = tempfile::tempdir().unwrap();
    let id = identity();
    let tls = Arc::new(Tls::load(write_identity(dir.path(), &id)).unwrap());
    let addr = serve(tls).await;

    // One that connects and says nothing holds only its own slot, until
    // the read timeout.
    let silent = TcpStream::connect(addr).await.unwrap();
    // One that speaks plain HTTP to the TLS port is closed.
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut answer))
        .await
        .expect("the connection is closed");
    assert!(!answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");

    let mut client = http1(connect(addr, &id.der, b"http/1.1").await.unwrap()).await;
    assert_eq!(
        body(client.send_request(get()).await.unwrap()).await,
        "HTTP/1.1 peer=true"
    );
    // The silent one is closed once its handshake has taken the read
    // timeout (2 s here).
    let mut silent = silent;
    let closed = tokio::time::timeout(Duration::from_secs(10), silent.read(&mut [0; 64])).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "a client that never handshakes keeps its connection: {closed:?}"
    );
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed_after_the_read_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let id = identity();
    let tls = Arc::new(Tls::load(write_identity(dir.path(), &id)).unwrap());
    let addr = serve(tls).await;

    // hyper's client answers the server's pings, so only an idle check
    // of the server's own ends this connection.
    let stream = connect(addr, &id.der, b"h2").await.unwrap();
    let (mut h2, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    let connection = tokio::spawn(connection);
    assert_eq!(
        body(h2.send_request(get()).await.unwrap()).await,
        "HTTP/2.0 peer=true"
    );
    let ended = tokio::time::timeout(Duration::from_secs(10), connection).await;
    assert!(
        matches!(ended, Ok(Ok(Ok(())))),
        "the idle connection was not ended with GOAWAY: {ended:?}"
    );

    let stream = connect(addr, &id.der, b"h2").await.unwrap();
    let (mut h2, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    assert_eq!(
        body(h2.send_request(get()).await.unwrap()).await,
        "HTTP/2.0 peer=true",
        "a new connection is served"
    );
}

#[test]
fn unusable_files_are_refused_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let missing = TlsFiles {
        cert: dir.path().join("nope.pem"),
        key: dir.path().join("key.pem"),
    };
    let err = Tls::load(missing).unwrap_err();
    assert!(
        matches!(
            err,
            TlsError::Read {
                what: "certificate",
                ..
            }
        ) && err.to_string().contains("nope.pem"),
        "{err}"
    );

    let id = identity();
    let files = write_identity(dir.path(), &id);
    std::fs::write(&files.cert, "no certificate here\n").unwrap();
    let err = Tls::load(files.clone()).unwrap_err();
    assert!(matches!(err, TlsError::NoCertificate { .. }), "{err}");

    std::fs::write(&files.cert, &id.cert_pem).unwrap();
    std::fs::write(&files.key, &id.cert_pem).unwrap();
    let err = Tls::load(files.clone()).unwrap_err();
    assert!(
        matches!(err, TlsError::Read { what: "key", .. }) && err.to_string().contains("key.pem"),
        "{err}"
    );

    std::fs::write(&files.key, identity().key_pem).unwrap();
    let err = Tls::load(files).unwrap_err();
    assert!(matches!(err, TlsError::Mismatch { .. }), "{err}");
}
