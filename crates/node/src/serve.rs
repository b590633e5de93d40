//! Serving a node until it is told to stop, then stopping cleanly.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use stratus_gateway::{ConnectionLimits, serve_connections};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::assemble::Stratus;
use crate::config::ADMIN_MAX_CONNECTIONS;
use crate::error::NodeError;

/// How long stopping waits for events being delivered to finish.
const EVENT_DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// How long stopping waits for the last invocation records to be written.
const LEDGER_FLUSH_LIMIT: Duration = Duration::from_secs(10);

/// Listens on `addr`; `flag` names the option that chose it, for the error.
pub async fn bind(addr: SocketAddr, flag: &'static str) -> Result<TcpListener, NodeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| NodeError::Bind { addr, flag, source })
}

/// Listens on `addr` with `SO_REUSEPORT`, so several processes, each
/// binding it so, share the port and the kernel spreads the connections
/// among them. It is how one machine runs a node per core (each node's
/// guests then fault and flush only their own core's address space; see
/// `docs/benchmarks.md`). Unix only; elsewhere a plain bind.
pub async fn bind_shared(addr: SocketAddr, flag: &'static str) -> Result<TcpListener, NodeError> {
    let error = |source| NodeError::Bind { addr, flag, source };
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
    }
    .map_err(error)?;
    // As `TcpListener::bind` does on Unix: a restarted node rebinds at
    // once. (On Windows the same option lets another process take a port
    // in use.)
    #[cfg(unix)]
    {
        socket.set_reuseaddr(true).map_err(error)?;
        socket.set_reuseport(true).map_err(error)?;
    }
    socket.bind(addr).map_err(error)?;
    socket.listen(1024).map_err(error)
}

impl Stratus {
    /// Serves the gateway on `gateway` and the admin API on `admin`, and
    /// delivers events and runs triggers, until `shutdown` resolves. Then
    /// it stops accepting, lets requests in flight finish (within a
    /// limit), and writes the last invocation records.
    pub async fn serve(
        self,
        gateway: TcpListener,
        admin: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), NodeError> {
        let (stop_tx, stop_rx) = watch::channel(false);
        if let (Ok(g), Ok(a)) = (gateway.local_addr(), admin.local_addr()) {
            self.presence.serving_at(g, a);
        }
        let heartbeat = self.registry.clone().map(|registry| {
            tokio::spawn(crate::presence::heartbeat(
                registry,
                self.presence.clone(),
                stop_rx.clone(),
            ))
        });
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        // Renewed certificates are picked up by new connections.
        let reloaders: Vec<_> = [
            self.gateway_tls
                .as_ref()
                .map(|t| t.spawn_reloader("gateway")),
            self.admin_tls
                .as_ref()
                .map(|t| t.spawn_reloader("admin API")),
        ]
        .into_iter()
        .flatten()
        .collect();
        let serving =
            self.gateway
                .clone()
                .serve(gateway, self.gateway_tls.clone(), stopped(stop_rx.clone()));
        // Deliveries stop with the process; an event in delivery then is due
        // again when the node next starts (at least once).
        let delivering = self.dispatcher.spawn();
        // Cron ticks and broker messages are queued durably (or, for
        // JetStream, left unacknowledged), so stopping them at any point
        // loses nothing.
        let triggering = self.triggers.spawn();
        // The admin API is served under the same bounds as the gateway, with
        // its own connection count.
        let admin_limits = ConnectionLimits {
            max_connections: ADMIN_MAX_CONNECTIONS,
            ..self.limits
        };
        let router = self.admin.clone();
        let administering = serve_connections(
            admin,
            admin_limits,
            self.admin_tls.clone(),
            "admin API",
            move |request| {
                let router = router.clone();
                async move {
                    match tower::ServiceExt::oneshot(router, request).await {
                        Ok(response) => response,
                        Err(never) => match never {},
                    }
                }
            },
            stopped(stop_rx),
        );
        let serving = tokio::spawn(serving);
        let administering = tokio::spawn(administering);

        shutdown.await;
        tracing::info!("shutting down: no new connections, finishing requests in flight");
        let _ = stop_tx.send(true);
        // No new deliveries while draining; those under way finish (below,
        // bounded) or are delivered again when their lease runs out.
        delivering.abort();
        triggering.abort();
        reloaders.iter().for_each(tokio::task::JoinHandle::abort);
        let (g, a) = tokio::join!(serving, administering);
        if !self.dispatcher.drain(EVENT_DRAIN_LIMIT).await {
            tracing::warn!(
                "events still being delivered after {}s are left to their leases",
                EVENT_DRAIN_LIMIT.as_secs()
            );
        }
        if let Some(heartbeat) = heartbeat {
            let _ = heartbeat.await;
        }
        g.map_err(|e| NodeError::Task("gateway", e))?
            .map_err(|e| NodeError::Serve("gateway", e))?;
        a.map_err(|e| NodeError::Task("admin API", e))?
            .map_err(|e| NodeError::Serve("admin API", e))?;
        if let Some(ledger) = self.ledger
            && !ledger.flush(LEDGER_FLUSH_LIMIT).await
        {
            tracing::warn!("could not write the last invocation records before stopping");
        }
        // The last spans go out before the process does; the exporter
        // blocks (up to its timeout), so not on a runtime thread.
        if let Some(tracer) = self.tracer {
            let _ = tokio::task::spawn_blocking(move || tracer.shutdown()).await;
        }
        tracing::info!("stopped");
        Ok(())
    }
}
