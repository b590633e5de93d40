//! This node as `stratus nodes` lists it: on its own, the only node; in a
//! cluster, one of those whose heartbeat the cluster heard lately.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use stratus_control::Node;
use stratus_jetstream::{HEARTBEAT, JetStreamNodes};
use stratus_storage::{NodeDirectory, NodeRecord, NodesFuture, now_ms};

/// What this node says about itself.
#[derive(Debug)]
pub(crate) struct Presence {
    id: String,
    hostname: String,
    started_at: i64,
    /// Known once the node serves: (gateway, admin).
    addresses: OnceLock<(SocketAddr, SocketAddr)>,
    control: Arc<Node>,
}

impl Presence {
    pub(crate) fn new(control: Arc<Node>) -> Arc<Presence> {
        // The random tail of a v7 UUID: unique per run, short in a table.
        let uuid = uuid::Uuid::now_v7().simple().to_string();
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "localhost".into());
        Arc::new(Presence {
            id: uuid[uuid.len() - 12..].to_owned(),
            hostname,
            started_at: now_ms(),
            addresses: OnceLock::new(),
            control,
        })
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn serving_at(&self, gateway: SocketAddr, admin: SocketAddr) {
        let _ = self.addresses.set((gateway, admin));
    }

    pub(crate) fn record(&self) -> NodeRecord {
        // A node listening on every interface (0.0.0.0 in a pod) is
        // reached by its host name.
        let reachable = |addr: &SocketAddr| match addr.ip().is_unspecified() {
            true => format!("{}:{}", self.hostname, addr.port()),
            false => addr.to_string(),
        };
        let (gateway, admin) = self
            .addresses
            .get()
            .map(|(g, a)| (reachable(g), reachable(a)))
            .unwrap_or_default();
        let admission = self.control.invoker().admission();
        let apps = self
            .control
            .invoker()
            .live()
            .functions()
            .map(|f| (f.app.clone(), f.version))
            .collect();
        NodeRecord {
            id: self.id.clone(),
            hostname: self.hostname.clone(),
            gateway,
            admin,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at: self.started_at,
            seen_at: now_ms(),
            live_apps: u32::try_from(self.control.live_app_count()).unwrap_or(u32::MAX),
            in_flight: admission.in_flight(),
            capacity: admission.capacity(),
            apps,
        }
    }
}

/// A node on its own lists itself.
#[derive(Debug)]
pub(crate) struct ThisNode(pub(crate) Arc<Presence>);

impl NodeDirectory for ThisNode {
    fn nodes(&self) -> NodesFuture {
        let record = self.0.record();
        Box::pin(async move { Ok(vec![record]) })
    }
}

/// A node of a cluster lists what the cluster heard.
#[derive(Debug)]
pub(crate) struct ClusterNodes {
    pub(crate) registry: JetStreamNodes,
}

impl NodeDirectory for ClusterNodes {
    fn nodes(&self) -> NodesFuture {
        let registry = self.registry.clone();
        Box::pin(async move { registry.list().await })
    }
}

/// Says every [`HEARTBEAT`] that this node is alive, and at once when what
/// it serves changes (a rollout waits for that), until `stop` is set; then
/// takes it off the list.
pub(crate) async fn heartbeat(
    registry: JetStreamNodes,
    presence: Arc<Presence>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(HEARTBEAT);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut changes = presence.control.invoker().live_changes();
    let mut failing = false;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            Ok(()) = changes.changed() => {}
            _ = stop.wait_for(|stop| *stop) => break,
        }
        match registry.heartbeat(&presence.record()).await {
            Ok(()) if failing => {
                tracing::info!("the cluster hears this node's heartbeat again");
                failing = false;
            }
            Ok(()) => {}
            Err(e) if !failing => {
                tracing::warn!(error = %e, "cannot send this node's heartbeat; retrying every {}s", HEARTBEAT.as_secs());
                failing = true;
            }
            Err(_) => {}
        }
    }
    match tokio::time::timeout(Duration::from_secs(2), registry.leave(presence.id())).await {
        Ok(Ok(())) => tracing::info!("left the cluster's node list"),
        _ => tracing::warn!("could not leave the cluster's node list; it expires by itself"),
    }
}
