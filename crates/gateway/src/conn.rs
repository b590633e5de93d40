//! Serving HTTP/1.1 connections from a listener under limits a hostile
//! client cannot get around.
//!
//! Every resource a connection holds is bounded in time or count: how many
//! connections are open (`max_connections`, below the process's descriptor
//! limit, so one listener's flood cannot take the descriptors another
//! listener or the node's databases need), how long the headers and each
//! pause in a request body may take (`read_timeout`), how long a whole body
//! may take (`body_timeout`), and how long a response may make no progress
//! into a client that does not read (`write_timeout`). Both the gateway and
//! the admin API are served this way.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};

use crate::body::TimedBody;
use crate::tls::Tls;
use stratus_invoke::WarnLimit;

/// How long shutdown waits for in-flight requests before closing anyway.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// The longest pause between attempts to accept while accepting fails.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// The bounds every connection of one listener is served under.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Connections open at once; beyond them, new ones wait in the kernel's
    /// listen backlog until one closes.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers, and the
    /// longest pause allowed within a request body.
    pub read_timeout: Duration,
    /// How long a whole request body may take to arrive.
    pub body_timeout: Duration,
    /// How long a response may make no progress into the client's socket
    /// before the connection is closed.
    pub write_timeout: Duration,
}

impl ConnectionLimits {
    pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);
    pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(300);
    pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 4096,
            read_timeout: Self::DEFAULT_READ_TIMEOUT,
            body_timeout: Self::DEFAULT_BODY_TIMEOUT,
            write_timeout: Self::DEFAULT_WRITE_TIMEOUT,
        }
    }
}

/// Requests one HTTP/2 connection may have open at once: each is an
/// invocation (held to its function's concurrency like any other), so
/// this bounds what one connection can queue, not what the node runs.
const MAX_HTTP2_STREAMS: u32 = 256;

pub use stratus_invoke::PeerAddr;

/// Accepts connections on `listener` until `shutdown` resolves and serves
/// each with `handler`, then stops accepting and waits (up to a limit) for
/// requests in flight. `name` names the listener in the log.
pub async fn serve_connections<H, F, B>(
    listener: TcpListener,
    limits: ConnectionLimits,
    tls: Option<Arc<Tls>>,
    name: &'static str,
    handler: H,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    H: Fn(hyper::Request<TimedBody<Incoming>>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = hyper::Response<B>> + Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let graceful = GracefulShutdown::new();
    // Tells connections that GracefulShutdown cannot reach (TLS ones,
    // served under an idle check of their own) that the node is stopping.
    let (closing, closing_rx) = tokio::sync::watch::channel(false);
    let open = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut full_warning = WarnLimit::per_second();
    let mut accept_warning = WarnLimit::per_second();
    let mut backoff = Duration::ZERO;
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A connection slot first: at the cap, the node stops accepting
        // and the kernel's backlog holds the rest, so descriptors never run
        // out however many clients connect.
        let permit = match open.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if let Some(count) = full_warning.hit() {
                    tracing::warn!(
                        "{name}: {} connections are open, the most allowed; new ones wait ({count} times since the last warning)",
                        limits.max_connections
                    );
                }
                tokio::select! {
                    permit = open.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                    () = &mut shutdown => break,
                }
            }
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => {
                    backoff = Duration::ZERO;
                    accepted
                }
                Err(e) => {
                    // Out of descriptors and the like: back off rather than
                    // spin, keep serving the connections already open, and
                    // say so at most once a second.
                    if let Some(count) = accept_warning.hit() {
                        tracing::warn!("{name}: cannot accept connections: {e} ({count} times since the last warning)");
                    }
                    backoff = (backoff * 2).clamp(Duration::from_millis(10), MAX_ACCEPT_BACKOFF);
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => continue,
                        () = &mut shutdown => break,
                    }
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let activity = Activity::new();
        // Only TLS connections are checked for idleness (plain ones are
        // HTTP/1.1, timed out by hyper), so only they pay for the clock.
        let requested = tls.is_some().then(|| activity.clone());
        let service = service_fn(move |request: hyper::Request<Incoming>| {
            if let Some(activity) = &requested {
                activity.touch();
            }
            let mut request = request.map(|body| TimedBody::new(body, limits));
            request.extensions_mut().insert(PeerAddr(peer));
            let response = handler(request);
            async move { Ok::<_, Infallible>(response.await) }
        });
        let io = WriteTimeout::new(stream, limits.write_timeout);
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let closing = closing_rx.clone();
        tokio::spawn(async move {
            let served = async move {
                match tls {
                    None => {
                        let connection = http1::Builder::new()
                            .keep_alive(true)
                            // Headers that trickle, or a keep-alive connection
                            // that sends nothing, cannot hold a connection slot
                            // forever.
                            .timer(TokioTimer::new())
                            .header_read_timeout(limits.read_timeout)
                            .serve_connection(TokioIo::new(io), service);
                        watcher.watch(connection).await.map_err(Into::into)
                    }
                    Some(tls) => {
                        // A client that connects and never finishes the
                        // handshake is held to the read timeout too.
                        let handshake =
                            tokio::time::timeout(limits.read_timeout, tls.acceptor().accept(io))
                                .await;
                        let stream = match handshake {
                            Ok(Ok(stream)) => stream,
                            Ok(Err(e)) => Err(format!("TLS handshake failed: {e}"))?,
                            Err(_) => Err("TLS handshake timed out")?,
                        };
                        let mut builder = auto::Builder::new(TokioExecutor::new());
                        builder
                            .http1()
                            .keep_alive(true)
                            .timer(TokioTimer::new())
                            .header_read_timeout(limits.read_timeout);
                        builder
                            .http2()
                            .timer(TokioTimer::new())
                            .max_concurrent_streams(MAX_HTTP2_STREAMS)
                            .keep_alive_interval(Some(limits.read_timeout))
                            .keep_alive_timeout(limits.read_timeout);
                        let connection = builder.serve_connection(TokioIo::new(stream), service);
                        // The drain at shutdown waits for this task while it
                        // holds the watcher.
                        let _draining = watcher;
                        let mut connection = std::pin::pin!(connection);
                        let mut closing = closing.clone();
                        tokio::select! {
                            ended = connection.as_mut() => return ended,
                            // HTTP/2 has no header read timeout: a client that
                            // answers pings but sends no request would hold its
                            // slot forever. Idle for the read timeout, or the
                            // node stopping, ends it with GOAWAY; streams in
                            // flight finish first.
                            () = activity.idle_for(limits.read_timeout) => {}
                            _ = closing.wait_for(|closing| *closing) => {}
                        }
                        connection.as_mut().graceful_shutdown();
                        connection.await
                    }
                }
            };
            let ended: Result<(), Box<dyn std::error::Error + Send + Sync>> = served.await;
            if let Err(e) = ended {
                tracing::debug!("{name} connection ended: {e}");
            }
            drop(permit);
        });
    }
    drop(listener);
    let _ = closing.send(true);
    if tokio::time::timeout(DRAIN_LIMIT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("{name}: gave up waiting for requests in flight after {DRAIN_LIMIT:?}");
    }
    Ok(())
}

/// When a connection last started a request, for the idle check of
/// connections that hyper does not time out by itself (HTTP/2).
#[derive(Debug)]
struct Activity {
    opened: Instant,
    /// Milliseconds from `opened` to the last request.
    last: AtomicU64,
}

impl Activity {
    fn new() -> Arc<Activity> {
        Arc::new(Activity {
            opened: Instant::now(),
            last: AtomicU64::new(0),
        })
    }

    fn touch(&self) {
        let now = self.opened.elapsed().as_millis();
        self.last
            .store(u64::try_from(now).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Resolves once no request has started for `limit`.
    async fn idle_for(&self, limit: Duration) {
        loop {
            let last = self.opened + Duration::from_millis(self.last.load(Ordering::Relaxed));
            let until = last + limit;
            if Instant::now() >= until {
                return;
            }
            tokio::time::sleep_until(until).await;
        }
    }
}

/// A socket whose writes fail once they have made no progress for the
/// write timeout: a client that stops reading cannot keep its connection,
/// and the response buffered for it, forever.
struct WriteTimeout<T> {
    io: T,
    timeout: Duration,
    /// Armed while a write waits for room in the socket; disarmed by any
    /// progress.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<T> WriteTimeout<T> {
    fn new(io: T, timeout: Duration) -> Self {
        WriteTimeout {
            io,
            timeout,
            stalled: None,
        }
    }

    /// Called when a write could not proceed: `Ready(Err)` once the stall
    /// has lasted the timeout, else `Pending` with the timer registered.
    fn stalled(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let timeout = self.timeout;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(Instant::now() + timeout)));
        ready!(timer.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("the client read nothing for {timeout:?}"),
        )))
    }

    fn progressed<R>(&mut self, result: R) -> Poll<R> {
        self.stalled = None;
        Poll::Ready(result)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteTimeout<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.io).poll_write(cx, buf) {
            Poll::Ready(result) => self.progressed(result),
            Poll::Pending => self.stalled(cx),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.io).poll_write_vectored(cx, bufs) {
            Poll::Ready(result) => self.progressed(result),
            Poll::Pending => self.stalled(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
