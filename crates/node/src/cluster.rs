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
    JetStream, JetStreamApps, JetStreamArtifacts, JetStreamAudit, JetStreamError, JetStreamLedger,
    JetStreamNamespaces, JetStreamNodes, JetStreamQueue, JetStreamSecrets, JetStreamTokens, Kv,
    KvSettings, LEASE_TERM, NODE_EXPIRY, OpenArtifactsError, Singleton, Watch,
};
use stratus_storage::RetryPolicy;

use crate::config::{Cluster, Metering};
use crate::error::NodeError;

/// How long an event a node leased waits, after that node died, before
/// another node delivers it. The delivering node renews the lease while the
/// function runs, so it bounds nothing else.
pub(crate) const EVENT_LEASE: Duration = Duration::from_secs(15);

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
    /// Async invocations, named queues' and brokers' events, cron ticks'
    /// events: delivered by whichever node leases them.
    pub(crate) queue: Arc<JetStreamQueue>,
    /// Leases on the work one node does at a time.
    pub(crate) leases: Kv,
    /// API tokens, valid on every node.
    pub(crate) tokens: Arc<JetStreamTokens>,
    /// Every node's changes through the API.
    pub(crate) audit: Arc<JetStreamAudit>,
    /// Namespaces' quotas, enforced by every node.
    pub(crate) namespaces: Arc<JetStreamNamespaces>,
    /// Every node's invocation records, lines and usage, when metering is
    /// on.
    pub(crate) ledger: Option<Arc<JetStreamLedger>>,
}

/// How long a starting node waits for JetStream to answer (a cluster just
/// started, electing leaders, or busy) before it gives up.
const STARTUP_PATIENCE: Duration = Duration::from_secs(120);

/// Connects to the cluster's NATS servers and opens (creating when
/// missing) its buckets, object store and event queue, waiting for
/// JetStream while it does not answer.
pub(crate) async fn open(
    cluster: &Cluster,
    data_dir: &Path,
    retry: RetryPolicy,
    metering: Option<&Metering>,
    audit_retention: Duration,
) -> Result<Shared, NodeError> {
    let js = connect(cluster).await?;
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(250);
    loop {
        match open_stores(&js, cluster, data_dir, retry, metering, audit_retention).await {
            Ok(shared) => return Ok(shared),
            Err(Failure {
                what,
                error: Some(error),
            }) if error.is_unavailable() && started.elapsed() < STARTUP_PATIENCE => {
                tracing::warn!(%error, "waiting for JetStream to open {what}");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            Err(Failure { what, error }) => {
                let error = error.map_or_else(String::new, |e| format!(": {e}"));
                return Err(NodeError::Cluster(format!("cannot open {what}{error}")));
            }
        }
    }
}

async fn connect(cluster: &Cluster) -> Result<JetStream, NodeError> {
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
    Ok(JetStream::new(client))
}

/// What could not be opened, and JetStream's answer when it was one.
struct Failure {
    what: String,
    error: Option<JetStreamError>,
}

impl Failure {
    fn of(what: impl Into<String>) -> impl FnOnce(JetStreamError) -> Failure {
        let what = what.into();
        move |error| Failure {
            what,
            error: Some(error),
        }
    }
}

async fn open_stores(
    js: &JetStream,
    cluster: &Cluster,
    data_dir: &Path,
    retry: RetryPolicy,
    metering: Option<&Metering>,
    audit_retention: Duration,
) -> Result<Shared, Failure> {
    let settings = KvSettings {
        replicas: cluster.replicas,
        history: 1,
        max_age: None,
    };
    let bucket = |what: &str| format!("{}_{what}", cluster.name);
    let apps = Kv::open(js.clone(), &bucket("apps"), &settings)
        .await
        .map_err(Failure::of(format!("the apps bucket {}", bucket("apps"))))?;
    let expiring = KvSettings {
        max_age: Some(NODE_EXPIRY),
        ..settings.clone()
    };
    let nodes = Kv::open(js.clone(), &bucket("nodes"), &expiring)
        .await
        .map_err(Failure::of(format!("the nodes bucket {}", bucket("nodes"))))?;
    let ticks = Kv::open(js.clone(), &bucket("ticks"), &settings)
        .await
        .map_err(Failure::of(format!("the ticks bucket {}", bucket("ticks"))))?;
    let secrets = Kv::open(js.clone(), &bucket("secrets"), &settings)
        .await
        .map_err(Failure::of(format!(
            "the secrets bucket {}",
            bucket("secrets")
        )))?;
    let secrets = JetStreamSecrets::open(secrets)
        .await
        .map_err(Failure::of(format!(
            "the secrets bucket {}",
            bucket("secrets")
        )))?;
    let leasing = KvSettings {
        max_age: Some(LEASE_TERM),
        ..settings.clone()
    };
    let leases = Kv::open(js.clone(), &bucket("leases"), &leasing)
        .await
        .map_err(Failure::of(format!(
            "the leases bucket {}",
            bucket("leases")
        )))?;
    let tokens = Kv::open(js.clone(), &bucket("tokens"), &settings)
        .await
        .map_err(Failure::of(format!(
            "the tokens bucket {}",
            bucket("tokens")
        )))?;
    let namespaces = Kv::open(js.clone(), &bucket("namespaces"), &settings)
        .await
        .map_err(Failure::of(format!(
            "the namespaces bucket {}",
            bucket("namespaces")
        )))?;
    let audit = JetStreamAudit::open(js.clone(), &cluster.name, cluster.replicas, audit_retention)
        .await
        .map_err(Failure::of("the audit log"))?;
    let queue = JetStreamQueue::open(js.clone(), &cluster.name, cluster.replicas, retry)
        .await
        .map_err(Failure::of("the event queue"))?;
    let objects = bucket("components");
    let artifacts = JetStreamArtifacts::open(
        js.clone(),
        &objects,
        cluster.replicas,
        &data_dir.join("components-cache"),
    )
    .await
    .map_err(|e| match e {
        OpenArtifactsError::JetStream(error) => {
            Failure::of(format!("the object store {objects}"))(error)
        }
        other => Failure {
            what: format!("the object store {objects}: {other}"),
            error: None,
        },
    })?;
    let ledger = match metering {
        Some(metering) => Some(Arc::new(
            JetStreamLedger::open(
                js.clone(),
                &cluster.name,
                cluster.replicas,
                metering.retention,
                metering.prices.clone(),
            )
            .await
            .map_err(Failure::of("the invocation ledger"))?,
        )),
        None => None,
    };
    Ok(Shared {
        apps: Arc::new(JetStreamApps::new(apps)),
        artifacts: Arc::new(artifacts),
        nodes: JetStreamNodes::new(nodes),
        ticks,
        secrets: Arc::new(secrets),
        queue: Arc::new(queue),
        leases,
        tokens: Arc::new(JetStreamTokens::new(tokens)),
        audit: Arc::new(audit),
        namespaces: Arc::new(JetStreamNamespaces::new(namespaces)),
        ledger,
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
    let mut replayed = std::collections::BTreeSet::new();
    while let Some(change) = watch
        .next_until_current()
        .await
        .map_err(|e| NodeError::Cluster(format!("the apps bucket's replay stopped: {e}")))?
    {
        if let Some(app) = JetStreamApps::app_of(&change) {
            replay(&node, app).await;
            replayed.insert(app.to_owned());
        }
    }
    // The replay ends when the consumer says nothing is pending, which a
    // busy server may say early: every app the bucket lists is served
    // before the node says it is ready.
    let heads = apps
        .bucket()
        .entries("apps")
        .await
        .map_err(|e| NodeError::Cluster(format!("cannot list the apps bucket: {e}")))?;
    for head in heads {
        if let Some(app) = head.key.strip_prefix("apps.")
            && replayed.insert(app.to_owned())
        {
            replay(&node, app).await;
        }
    }
    tracing::info!(apps = replayed.len(), "serving the cluster's apps");
    node.set_ready();
    tokio::spawn(follow_changes(watch, Arc::downgrade(&node)));
    Ok(())
}

/// One try to serve an app before the node is ready: an app that cannot be
/// served yet (its record damaged, its component unreadable) is retried in
/// the background rather than holding up every other app.
async fn replay(node: &Arc<Node>, app: &str) {
    if let Err(e) = node.follow_app(app).await {
        tracing::warn!(app, error = %e, "cannot serve the cluster's live version yet");
        tokio::spawn(follow_app(node, app.to_owned()));
    }
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

/// How often the holder of the pruning lease prunes settled events.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Work one node of the cluster does at a time, under a lease: pruning the
/// cluster's settled events older than `kept`. Runs for as long as the node.
pub(crate) fn spawn_singletons(shared: &Shared, kept: Duration) {
    let holder = uuid::Uuid::now_v7().simple().to_string();
    let lease = Singleton::new(shared.leases.clone(), "prune-events", &holder);
    let queue = shared.queue.clone();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(LEASE_TERM / 3);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last: Option<tokio::time::Instant> = None;
        loop {
            ticks.tick().await;
            match lease.hold().await {
                Ok(true) if last.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) => {
                    last = Some(tokio::time::Instant::now());
                    let before = std::time::SystemTime::now() - kept;
                    match queue.prune(before).await {
                        Ok(n) => tracing::info!(pruned = n, "pruned the cluster's settled events"),
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot prune the cluster's settled events")
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "cannot take the pruning lease"),
            }
        }
    });
}
