//! Sending a guest's allowed request to the network, and where it may go.
//!
//! `allowed_outbound` names hosts, but what a name reaches is decided by
//! DNS, which the function's author (or whoever controls that zone) can
//! point anywhere — at `127.0.0.1`, where the node's own admin API listens,
//! or at a cloud's metadata service on `169.254.169.254`. So the node
//! resolves the name itself, checks every address it gets ([`reserved`]),
//! and connects to one of those checked addresses: resolving once means a
//! second lookup cannot answer differently between the check and the
//! connection (DNS rebinding).
//!
//! Because the connection goes to an address, not a name,
//! wasmtime-wasi-http's `default_send_request` (which connects to the
//! authority and resolves it itself) cannot be used; [`send`] does the same
//! work — TCP, TLS with rustls and the webpki roots, an HTTP/1 exchange
//! with hyper, the same three timeouts — from a list of addresses.
//!
//! Neither path follows redirects: a `3xx` answer is handed to the guest as
//! it is, and a guest that follows it sends a new request, which goes
//! through the outbound hook and these checks again, hop by hop.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::{Pin, pin};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

/// A range of addresses that reaches the node itself or the network it sits
/// in, rather than the internet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reserved {
    /// `0.0.0.0/8`, `::`: on Linux, connecting to `0.0.0.0` reaches the
    /// node's own listeners.
    Unspecified,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16` (RFC 1918).
    Private,
    /// `100.64.0.0/10`, carrier-grade NAT (RFC 6598): a provider's own
    /// network, private in all but name.
    Shared,
    /// `169.254.0.0/16`, `fe80::/10`: cloud metadata services live here.
    LinkLocal,
    /// `fc00::/7`, IPv6's private addresses (RFC 4193).
    UniqueLocal,
    /// `fec0::/10`, deprecated but still routed as local by some networks.
    SiteLocal,
}

impl fmt::Display for Reserved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reserved::Unspecified => "unspecified",
            Reserved::Loopback => "loopback",
            Reserved::Private => "private",
            Reserved::Shared => "shared (carrier-grade NAT)",
            Reserved::LinkLocal => "link-local",
            Reserved::UniqueLocal => "unique local",
            Reserved::SiteLocal => "site-local",
        })
    }
}

/// The reserved range `ip` is in, if any.
pub(crate) fn reserved(ip: IpAddr) -> Option<Reserved> {
    match ip {
        IpAddr::V4(v4) => reserved_v4(v4),
        IpAddr::V6(v6) => reserved_v6(v6),
    }
}

fn reserved_v4(ip: Ipv4Addr) -> Option<Reserved> {
    match ip.octets() {
        [0, ..] => Some(Reserved::Unspecified),
        [127, ..] => Some(Reserved::Loopback),
        [10, ..] | [172, 16..=31, ..] | [192, 168, ..] => Some(Reserved::Private),
        [100, 64..=127, ..] => Some(Reserved::Shared),
        [169, 254, ..] => Some(Reserved::LinkLocal),
        _ => None,
    }
}

fn reserved_v6(ip: Ipv6Addr) -> Option<Reserved> {
    if ip.is_unspecified() {
        return Some(Reserved::Unspecified);
    }
    if ip.is_loopback() {
        return Some(Reserved::Loopback);
    }
    // An IPv4 address written as IPv6 reaches that IPv4 address, so it is
    // judged as one.
    if let Some(v4) = embedded_v4(ip) {
        return reserved_v4(v4);
    }
    match ip.segments()[0] {
        first if first & 0xfe00 == 0xfc00 => Some(Reserved::UniqueLocal),
        first if first & 0xffc0 == 0xfe80 => Some(Reserved::LinkLocal),
        first if first & 0xffc0 == 0xfec0 => Some(Reserved::SiteLocal),
        _ => None,
    }
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`),
/// IPv4-compatible (`::a.b.c.d`, deprecated) or NAT64 (`64:ff9b::a.b.c.d`,
/// translated to IPv4 by the network's gateway) IPv6 address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let [a, b, c, d, e, f, _, _] = ip.segments();
    let [.., w, x, y, z] = ip.octets();
    match (a, b, c, d, e, f) {
        (0, 0, 0, 0, 0, 0xffff) | (0, 0, 0, 0, 0, 0) | (0x64, 0xff9b, 0, 0, 0, 0) => {
            Some(Ipv4Addr::new(w, x, y, z))
        }
        _ => None,
    }
}

/// `host` without the brackets a URI puts around an IPv6 address.
pub(crate) fn bare_host(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// The addresses `host` (as [`bare_host`] gives it) resolves to, once. An
/// IP address is its own and needs no lookup.
pub(crate) async fn resolve(
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<Vec<SocketAddr>, Error> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let found = tokio::time::timeout(timeout, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| Error::DnsTimeout)?
        // The system's "failed to lookup address information" error, which
        // wasmtime-wasi-http turns into the guest's `DNS-error`, as it would
        // for its own lookups.
        .map_err(Error::Connect)?;
    let addrs: Vec<SocketAddr> = found.collect();
    if addrs.is_empty() {
        return Err(Error::DnsError {
            rcode: Some(format!("{host} has no address")),
            info_code: None,
        });
    }
    Ok(addrs)
}

/// The future that drives the rest of an exchange after the answer's
/// headers, reporting how the connection ended.
pub(crate) type Io = Box<dyn Future<Output = Result<(), Error>> + Send>;

/// Sends `request` to the first of `addrs` that accepts a connection, over
/// TLS for `https` (the certificate checked against `host`, as
/// [`bare_host`] gives it), and returns the answer once its headers have
/// come. `options` carries the connect, first-byte and between-bytes
/// timeouts.
pub(crate) async fn send(
    request: http::Request<WasiBody>,
    addrs: &[SocketAddr],
    host: &str,
    https: bool,
    options: RequestOptions,
) -> Result<(http::Response<WasiBody>, Io), Error> {
    let connect_timeout = options.connect_timeout.unwrap_or(DEFAULT_TIMEOUT);
    let stream = connect(addrs, connect_timeout).await?;
    if https {
        let name = ServerName::try_from(host.to_owned())?;
        let connector = tokio_rustls::TlsConnector::from(tls_config()?);
        let stream = tokio::time::timeout(connect_timeout, connector.connect(name, stream))
            .await
            .map_err(|_| Error::ConnectionTimeout)?
            .map_err(Error::Tls)?;
        exchange(stream, request, options).await
    } else {
        exchange(stream, request, options).await
    }
}

/// What the timeouts are when neither the guest nor the function set one
/// (the hooks always set all three; this is the backstop).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// A TCP connection to the first address that takes one, all within
/// `timeout`; the last address's error when none does.
async fn connect(addrs: &[SocketAddr], timeout: Duration) -> Result<TcpStream, Error> {
    let attempts = async {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address to connect to");
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(stream) => return Ok(stream),
                Err(e) => last = e,
            }
        }
        Err(Error::Connect(last))
    };
    tokio::time::timeout(timeout, attempts)
        .await
        .map_err(|_| Error::ConnectionTimeout)?
}

/// The client TLS settings, built once: rustls with the ring provider (the
/// one wasmtime-wasi-http uses, named so no process-wide default is needed)
/// and the webpki roots, as `default_send_request` has them.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, Error> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.into(),
            };
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map(|builder| Arc::new(builder.with_root_certificates(roots).with_no_client_auth()))
            .map_err(|e| format!("TLS settings: {e}"))
        })
        .clone()
        .map_err(|message| Error::InternalError(Some(message)))
}

/// One HTTP/1 request and its answer's headers over `stream`.
async fn exchange<S>(
    stream: S,
    mut request: http::Request<WasiBody>,
    options: RequestOptions,
) -> Result<(http::Response<WasiBody>, Io), Error>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let connect_timeout = options.connect_timeout.unwrap_or(DEFAULT_TIMEOUT);
    let first_byte_timeout = options.first_byte_timeout.unwrap_or(DEFAULT_TIMEOUT);
    let between_bytes_timeout = options.between_bytes_timeout.unwrap_or(DEFAULT_TIMEOUT);
    let (mut sender, connection) = tokio::time::timeout(
        connect_timeout,
        hyper::client::conn::http1::handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)??;
    // The request line carries the path only: a scheme and authority there
    // would address a proxy. (The `host` header, set by wasmtime-wasi-http,
    // names the server.)
    *request.uri_mut() = request
        .uri()
        .path_and_query()
        .cloned()
        .map_or_else(|| http::Uri::from_static("/"), http::Uri::from);

    // hyper's connection does the I/O and must be polled while the request
    // waits for its answer; afterwards it carries the answer's body, and is
    // handed back to wasmtime-wasi-http to drive.
    let mut connection = Box::pin(connection);
    let answer = async {
        tokio::time::timeout(first_byte_timeout, sender.send_request(request))
            .await
            .map_err(|_| Error::ConnectionReadTimeout)?
            .map_err(from_hyper)
    };
    let mut answer = pin!(answer);
    enum First {
        Answer(Result<http::Response<Incoming>, Error>),
        Closed(Result<(), hyper::Error>),
    }
    let first = tokio::select! {
        answer = &mut answer => First::Answer(answer),
        closed = &mut connection => First::Closed(closed),
    };
    let (response, io): (_, Io) = match first {
        First::Answer(answer) => (
            answer?,
            Box::new(async move { connection.await.map_err(from_hyper) }),
        ),
        // The server answered and closed before the answer was taken (it is
        // waiting), or the exchange failed and the request says why.
        First::Closed(Ok(())) => (answer.await?, Box::new(async { Ok(()) })),
        First::Closed(Err(e)) => return Err(from_hyper(e)),
    };
    let response = response.map(|body| {
        Paced {
            inner: body,
            gap: between_bytes_timeout,
            timer: Box::pin(tokio::time::sleep(between_bytes_timeout)),
        }
        .boxed_unsync()
    });
    Ok((response, io))
}

fn from_hyper(e: hyper::Error) -> Error {
    if e.is_timeout() {
        Error::HttpResponseTimeout
    } else {
        Error::Hyper(e)
    }
}

/// An answer's body that fails with `connection-read-timeout` when the
/// server sends nothing for `gap`.
struct Paced {
    inner: Incoming,
    gap: Duration,
    timer: Pin<Box<Sleep>>,
}

impl Body for Paced {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.timer.as_mut().reset(Instant::now() + this.gap);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(from_hyper(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                ready!(this.timer.as_mut().poll(cx));
                Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn range(ip: &str) -> Option<Reserved> {
        reserved(ip.parse().unwrap())
    }

    #[test]
    fn every_reserved_range_is_recognised_at_its_edges() {
        use Reserved::*;
        for (ip, expected) in [
            ("0.0.0.0", Some(Unspecified)),
            ("0.255.255.255", Some(Unspecified)),
            ("127.0.0.1", Some(Loopback)),
            ("127.255.255.254", Some(Loopback)),
            ("10.0.0.0", Some(Private)),
            ("10.255.255.255", Some(Private)),
            ("172.16.0.1", Some(Private)),
            ("172.31.255.255", Some(Private)),
            ("192.168.0.1", Some(Private)),
            ("192.168.255.255", Some(Private)),
            ("100.64.0.1", Some(Shared)),
            ("100.127.255.255", Some(Shared)),
            ("169.254.0.1", Some(LinkLocal)),
            ("169.254.169.254", Some(LinkLocal)),
            ("::", Some(Unspecified)),
            ("::1", Some(Loopback)),
            ("fe80::1", Some(LinkLocal)),
            ("febf:ffff::1", Some(LinkLocal)),
            ("fc00::1", Some(UniqueLocal)),
            ("fd00:ec2::254", Some(UniqueLocal)),
            ("fec0::1", Some(SiteLocal)),
        ] {
            assert_eq!(range(ip), expected, "{ip}");
        }
    }

    #[test]
    fn public_addresses_next_to_the_ranges_are_not_reserved() {
        for ip in [
            "1.0.0.0",
            "9.255.255.255",
            "11.0.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.167.255.255",
            "192.169.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "8.8.8.8",
            "2001:4860:4860::8888",
            "fbff::1",
            "fe00::1",
            "ff02::1",
        ] {
            assert_eq!(range(ip), None, "{ip}");
        }
    }

    #[test]
    fn ipv4_inside_ipv6_is_judged_as_ipv4() {
        use Reserved::*;
        for (ip, expected) in [
            ("::ffff:127.0.0.1", Some(Loopback)),
            ("::ffff:10.1.2.3", Some(Private)),
            ("::ffff:169.254.169.254", Some(LinkLocal)),
            ("::ffff:0.0.0.0", Some(Unspecified)),
            ("::ffff:100.64.0.1", Some(Shared)),
            ("::ffff:8.8.8.8", None),
            ("::127.0.0.1", Some(Loopback)),
            ("::192.168.1.1", Some(Private)),
            ("64:ff9b::127.0.0.1", Some(Loopback)),
            ("64:ff9b::172.20.0.1", Some(Private)),
            ("64:ff9b::8.8.8.8", None),
        ] {
            assert_eq!(range(ip), expected, "{ip}");
        }
    }

    #[test]
    fn a_uri_host_loses_its_ipv6_brackets() {
        assert_eq!(bare_host("[::1]"), "::1");
        assert_eq!(bare_host("example.com"), "example.com");
        assert_eq!(bare_host("127.0.0.1"), "127.0.0.1");
    }

    #[tokio::test]
    async fn an_address_is_its_own_resolution_and_a_bad_name_is_a_dns_error() {
        let addrs = resolve("::1", 8080, Duration::from_secs(5)).await.unwrap();
        assert_eq!(addrs, vec!["[::1]:8080".parse().unwrap()]);
        let addrs = resolve("localhost", 80, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(
            addrs
                .iter()
                .all(|a| range(&a.ip().to_string()) == Some(Reserved::Loopback)),
            "{addrs:?}"
        );
        let missing = resolve("nothing.invalid", 80, Duration::from_secs(5)).await;
        assert!(
            matches!(&missing, Err(Error::Connect(e)) if e.to_string().starts_with("failed to lookup address information")),
            "{missing:?}"
        );
    }
}
