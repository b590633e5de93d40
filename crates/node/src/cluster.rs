//! A node of a cluster: apps and components are kept in NATS JetStream
//! (`stratus-jetstream`) instead of the data directory, and the node
//! follows the apps bucket, so a deploy through any node is served by
//! every node. NATS stays off the request path: what a node serves is in
//! its memory, and an outage of NATS stops only deploys.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use stratus_control::Node;
use stratus_jetstream::{
    JetStream, JetStreamApps, JetStreamArtifacts, JetStreamNodes, JetStreamSecrets, Kv, KvSettings,
    NODE_EXPIRY, Watch,
};

use crate::config::Cluster;
use crate::error::NodeError;

/// Attempts to bring an app in step before waiting for its next change.
const FOLLOW_ATTEMPTS: u32 = 5;

/// The cluster's stores, opened.
pub(crate) struct Shared {
    pub(crate) apps: Arc<JetStreamApps>,
    pub(crate) artifacts: Arc<JetStreamArtifacts>,
    pub(crate) nodes: JetStreamNodes,
    /// Cron triggers' last ticks, claimed by one node each.
    pub(crate) ticks: Kv,
    /// Apps' sealed secrets, replicated on every node.
    pub(crate) secrets: Arc<JetStreamSecrets>,
}

/// Connects to the cluster's NATS servers and opens (creating when
/// missing) the apps bucket and the components' object store.
pub(crate) async fn open(cluster: &Cluster, data_dir: &Path) -> Result<Shared, NodeError> {
    let addresses = cluster
        .servers
        .iter()
        .map(|server| {
            server
                .trim()
                .parse::<async_nats::ServerAddr>()
                .map_err(|e| {
                    NodeError::Cluster(format!(
                        "--cluster: {server:?} is not a NATS server URL: {e}"
                    ))
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let servers = cluster.servers.join(",");
    // Once connected, the client reconnects by itself for as long as the
    // node runs: an outage stops deploys, never the node.
    let client = async_nats::ConnectOptions::new()
        .name("stratus node")
        .connection_timeout(Duration::from_secs(5))
        .max_reconnects(None)
        .connect(addresses)
        .await
        .map_err(|e| NodeError::Cluster(format!("cannot reach NATS at {servers}: {e}")))?;
    let js = JetStream::new(client);
    let settings = KvSettings {
        replicas: cluster.replicas,
        history: 1,
        max_age: None,
    };
    let bucket = format!("{}_apps", cluster.name);
    let kv = Kv::open(js.clone(), &bucket, &settings)
        .await
        .map_err(|e| NodeError::Cluster(format!("cannot open the apps bucket {bucket}: {e}")))?;
    let bucket = format!("{}_nodes", cluster.name);
    let expiring = KvSettings {
        max_age: Some(NODE_EXPIRY),
        ..settings.clone()
    };
    let nodes = Kv::open(js.clone(), &bucket, &expiring)
        .await
        .map_err(|e| NodeError::Cluster(format!("cannot open the nodes bucket {bucket}: {e}")))?;
    let bucket = format!("{}_ticks", cluster.name);
    let ticks = Kv::open(js.clone(), &bucket, &settings)
        .await
        .map_err(|e| NodeError::Cluster(format!("cannot open the ticks bucket {bucket}: {e}")))?;
    let bucket = format!("{}_secrets", cluster.name);
    let secrets = Kv::open(js.clone(), &bucket, &settings)
        .await
        .map_err(|e| NodeError::Cluster(format!("cannot open the secrets bucket {bucket}: {e}")))?;
    let secrets = JetStreamSecrets::open(secrets)
        .await
        .map_err(|e| NodeError::Cluster(format!("cannot read the secrets bucket {bucket}: {e}")))?;
    let objects = format!("{}_components", cluster.name);
    let artifacts = JetStreamArtifacts::open(
        js,
        &objects,
        cluster.replicas,
        &data_dir.join("components-cache"),
    )
    .await
    .map_err(|e| NodeError::Cluster(format!("cannot open the object store {objects}: {e}")))?;
    Ok(Shared {
        apps: Arc::new(JetStreamApps::new(kv)),
        artifacts: Arc::new(artifacts),
        nodes: JetStreamNodes::new(nodes),
        ticks,
        secrets: Arc::new(secrets),
    })
}

/// Serves every app the cluster has live (the replay of the apps bucket),
/// marks the node ready, then follows the bucket for as long as the node
/// runs.
pub(crate) async fn follow(apps: &JetStreamApps, node: Arc<Node>) -> Result<(), NodeError> {
    let mut watch = apps
        .watch()
        .await
        .map_err(|e| NodeError::Cluster(format!("cannot watch the apps bucket: {e}")))?;
    let mut replayed = 0;
    while let Some(change) = watch
        .next_until_current()
        .await
        .map_err(|e| NodeError::Cluster(format!("the apps bucket's replay stopped: {e}")))?
    {
        if let Some(app) = JetStreamApps::app_of(&change) {
            follow_app(&node, app.to_owned()).await;
            replayed += 1;
        }
    }
    tracing::info!(apps = replayed, "serving the cluster's apps");
    node.set_ready();
    tokio::spawn(follow_changes(watch, Arc::downgrade(&node)));
    Ok(())
}

async fn follow_changes(mut watch: Watch, node: std::sync::Weak<Node>) {
    loop {
        let change = match watch.next().await {
            Ok(change) => change,
            Err(e) => {
                tracing::error!(error = %e, "stopped following the cluster's apps");
                return;
            }
        };
        let Some(node) = node.upgrade() else { return };
        if let Some(app) = JetStreamApps::app_of(&change) {
            // A slow load of one app must not hold up the others.
            tokio::spawn(follow_app(&node, app.to_owned()));
        }
    }
}

/// Brings one app in step, trying again with a growing pause when it
/// cannot (its component not yet readable, a route another app holds).
fn follow_app(node: &Arc<Node>, app: String) -> impl Future<Output = ()> + Send + 'static {
    let node = node.clone();
    async move {
        let mut pause = Duration::from_millis(500);
        for attempt in 1..=FOLLOW_ATTEMPTS {
            match node.follow_app(&app).await {
                Ok(followed) => {
                    tracing::debug!(app, ?followed, "followed");
                    return;
                }
                Err(e) if attempt == FOLLOW_ATTEMPTS => {
                    tracing::error!(app, error = %e, "cannot serve the cluster's live version; waiting for its next change");
                }
                Err(e) => {
                    tracing::warn!(app, error = %e, attempt, "cannot serve the cluster's live version yet");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
            }
        }
    }
}
