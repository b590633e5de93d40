//! Opening a node's data directory and wiring its crates together.

use std::path::Path;
use std::sync::Arc;
use stratus_telemetry::Tracer;

use stratus_admin::AdminState;
use stratus_admin::disk::{DataDir, LedgerFiles};
use stratus_control::{CapabilityBackends, Node};
use stratus_events::{DispatchConfig, Dispatcher, QUEUE_SERVICE_HOST, QueueService};
use stratus_gateway::{ConnectionLimits, Gateway, Tls, TlsFiles};
use stratus_invoke::{Admission, FunctionCalls, Invoker};
use stratus_jetstream::{JetStreamNodes, SharedTicks};
use stratus_ledger::SqliteLedger;
use stratus_queue::SqliteQueue;
use stratus_runtime::{Runtime, RuntimeConfig};
use stratus_secrets::SecretStore;
use stratus_storage::{
    AppStore, ArtifactStore, AuditLog, EventQueue, Ledger, LedgerStore, NamespaceStore,
    NodeDirectory, TokenStore,
};
use stratus_store::{FileArtifacts, SqliteAppStore};
use stratus_triggers::{TriggerConfig, Triggers};

use crate::config::{KeyValueStore, NodeConfig};
use crate::error::NodeError;
use crate::presence::{ClusterNodes, Presence, ThisNode};

/// How long handled and dead events stay queryable.
const SETTLED_EVENTS_KEPT: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

/// A node whose data directory is open and whose stored apps are live,
/// not yet serving: [`Stratus::serve`] binds nothing itself, so tests can
/// drive [`Stratus::gateway`] and [`Stratus::admin`] in process instead.
pub struct Stratus {
    pub(crate) control: Arc<Node>,
    pub(crate) gateway: Arc<Gateway>,
    pub(crate) admin: axum::Router,
    pub(crate) limits: ConnectionLimits,
    /// The listeners' TLS, when configured.
    pub(crate) gateway_tls: Option<Arc<Tls>>,
    pub(crate) admin_tls: Option<Arc<Tls>>,
    pub(crate) ledger: Option<Arc<Ledger>>,
    pub(crate) dispatcher: Arc<Dispatcher>,
    pub(crate) triggers: Triggers,
    pub(crate) presence: Arc<Presence>,
    /// In a cluster: where this node's heartbeat goes.
    pub(crate) registry: Option<JetStreamNodes>,
    /// Exports invocations' spans, when the node traces.
    pub(crate) tracer: Option<Arc<Tracer>>,
}

impl std::fmt::Debug for Stratus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stratus")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Stratus {
    /// Opens every store in `data_dir` (which must exist), builds the
    /// runtime, the invoker, the event dispatcher and the triggers, and
    /// makes the stored live versions live. `token` guards the admin API.
    pub async fn open(
        config: NodeConfig,
        data_dir: &Path,
        token: &str,
    ) -> Result<Stratus, NodeError> {
        config.check()?;
        // Certificates first: a typo in a path is reported before any
        // store is opened.
        let load_tls = |files: &Option<TlsFiles>, flag| {
            files
                .clone()
                .map(|files| Tls::load(files).map(Arc::new))
                .transpose()
                .map_err(|source| NodeError::Tls { flag, source })
        };
        let gateway_tls = load_tls(&config.tls, "--tls-cert/--tls-key")?;
        let admin_tls = load_tls(&config.admin_tls, "--admin-tls-cert/--admin-tls-key")?;
        let limits = config.connection_limits()?;
        let tracer = Tracer::from_config(&config.tracing)?.map(Arc::new);
        let shared = match &config.cluster {
            Some(cluster) => Some(
                crate::cluster::open(
                    cluster,
                    data_dir,
                    config.retry,
                    config.metering.as_ref(),
                    config.audit_retention,
                )
                .await?,
            ),
            None => None,
        };
        type Stores = (
            Arc<dyn AppStore>,
            Arc<dyn ArtifactStore>,
            Arc<dyn TokenStore>,
            Arc<dyn AuditLog>,
            Arc<dyn NamespaceStore>,
        );
        let (apps, artifacts, tokens, audit, namespaces): Stores = match &shared {
            Some(shared) => (
                shared.apps.clone(),
                shared.artifacts.clone(),
                shared.tokens.clone(),
                shared.audit.clone(),
                shared.namespaces.clone(),
            ),
            None => {
                let apps = SqliteAppStore::open(data_dir)
                    .map_err(|e| NodeError::open("data directory", e))?;
                let tokens = Arc::new(apps.tokens());
                let audit = Arc::new(apps.audit(config.audit_retention));
                let namespaces = Arc::new(apps.namespaces());
                (
                    Arc::new(apps),
                    Arc::new(
                        FileArtifacts::open(data_dir)
                            .map_err(|e| NodeError::open("data directory", e))?,
                    ),
                    tokens,
                    audit,
                    namespaces,
                )
            }
        };
        let mut runtime_config = RuntimeConfig::new(data_dir.join("compiled"));
        runtime_config.max_instances = config.max_instances;
        runtime_config.output_capacity =
            usize::try_from(config.log_per_invocation).unwrap_or(usize::MAX);
        runtime_config.compile = config.compile;
        runtime_config.outbound_allow_private = config.outbound_allow_private;
        let runtime = Runtime::new(runtime_config).map_err(|e| NodeError::open("runtime", e))?;
        // The ledger's files, for `/readyz`, when they are in the data
        // directory.
        let mut ledger_files = None;
        let ledger = match &config.metering {
            Some(metering) => {
                // A cluster's nodes share one ledger, so usage and logs
                // cover every node.
                let store: Arc<dyn LedgerStore> =
                    match shared.as_ref().and_then(|s| s.ledger.clone()) {
                        Some(shared) => shared,
                        None => {
                            ledger_files = Some(LedgerFiles {
                                file: SqliteLedger::FILE,
                                max_bytes: metering.retention.max_bytes,
                            });
                            Arc::new(
                                SqliteLedger::open(
                                    &data_dir.join(SqliteLedger::FILE),
                                    metering.retention,
                                    metering.prices.clone(),
                                )
                                .map_err(|e| NodeError::open("invocation ledger", e))?,
                            )
                        }
                    };
                let ledger = Ledger::new(store);
                ledger.set_log_budget(config.log_per_app_day);
                ledger.set_sampling(metering.sampling);
                Some(Arc::new(ledger))
            }
            None => None,
        };
        let admission = Admission::new(
            runtime.request_slots(),
            config.memory_budget(),
            config.queue_timeout,
        );
        let invoker = Invoker::new(
            admission,
            ledger.as_ref().map(|l| l.recorder()),
            tracer.clone(),
        );
        let gateway = Gateway::new(invoker.clone(), limits);
        let queue: Arc<dyn EventQueue> = match &shared {
            // The cluster's queue, and each cron tick fired by one node.
            Some(shared) => Arc::new(SharedTicks::new(shared.queue.clone(), shared.ticks.clone())),
            None => Arc::new(
                SqliteQueue::open(
                    &data_dir.join(SqliteQueue::FILE),
                    config.retry,
                    SETTLED_EVENTS_KEPT,
                )
                .map_err(|e| NodeError::open("event queue", e))?,
            ),
        };
        let dispatcher = Dispatcher::new(
            queue,
            invoker.clone(),
            DispatchConfig {
                max_attempts: config.max_attempts,
                lease: match &shared {
                    Some(_) => crate::cluster::EVENT_LEASE,
                    None => DispatchConfig::default().lease,
                },
                ..DispatchConfig::default()
            },
        );
        // Functions publish with `POST http://queue.svc/<queue>`, and call
        // the other functions of their app at `http://<function>.svc/`.
        runtime.add_service(QUEUE_SERVICE_HOST, QueueService::new(&dispatcher));
        runtime.set_function_calls(FunctionCalls::new(&invoker, config.calls_per_request));
        let triggers = Triggers::new(
            dispatcher.clone(),
            invoker.clone(),
            TriggerConfig {
                nats_url: config.nats_url.clone(),
                mqtt_url: config.mqtt_url.clone(),
                node_identity: node_identity(data_dir),
                persistent_sessions: config.persistent,
                retry: config.retry,
            },
        );
        let secrets = match &shared {
            Some(shared) => Arc::new(
                SecretStore::shared(shared.secrets.clone())
                    .map_err(|e| NodeError::open("secret store", e))?,
            ),
            None => Arc::new(
                SecretStore::open(data_dir).map_err(|e| NodeError::open("secret store", e))?,
            ),
        };
        let backends = capability_backends(&config, data_dir, &secrets)?;
        crate::quotas::follow(namespaces.clone(), &invoker, ledger.clone()).await;
        let control = Arc::new(
            Node::new(apps, artifacts, Arc::new(runtime), invoker)
                .with_backends(backends)
                .with_namespaces(namespaces)
                .with_audit(audit.clone()),
        );
        match &shared {
            Some(shared) => {
                crate::cluster::follow(&shared.apps, control.clone()).await?;
                crate::cluster::spawn_singletons(shared, SETTLED_EVENTS_KEPT);
            }
            None => {
                control
                    .load_live()
                    .await
                    .map_err(|e| NodeError::Load(Box::new(e)))?;
            }
        }
        if !config.idle_ttl.is_zero() {
            control.spawn_evictor(config.idle_ttl);
        }
        // Canaries are judged each second; a step lasts at least that.
        control.spawn_canary_judge(std::time::Duration::from_secs(1));
        let presence = Presence::new(control.clone());
        let registry = shared.as_ref().map(|shared| shared.nodes.clone());
        let nodes: Arc<dyn NodeDirectory> = match &registry {
            Some(registry) => Arc::new(ClusterNodes {
                registry: registry.clone(),
            }),
            None => Arc::new(ThisNode(presence.clone())),
        };
        let admin = stratus_admin::router(AdminState {
            node: control.clone(),
            token: token.into(),
            max_upload: usize::try_from(config.max_upload).unwrap_or(usize::MAX),
            ledger: ledger.clone(),
            dispatcher: dispatcher.clone(),
            triggers: triggers.health(),
            secrets,
            tokens,
            audit,
            touched: Default::default(),
            nodes,
            data_dir: Arc::new(DataDir::new(data_dir, ledger_files)),
        });
        Ok(Stratus {
            control,
            gateway,
            admin,
            limits,
            gateway_tls,
            admin_tls,
            ledger,
            dispatcher,
            triggers,
            presence,
            registry,
            tracer,
        })
    }

    /// The control plane: deploy, activate, roll back, delete.
    pub fn control(&self) -> &Arc<Node> {
        &self.control
    }

    /// The gateway, to serve or to drive with [`Gateway::handle_request`].
    pub fn gateway(&self) -> &Arc<Gateway> {
        &self.gateway
    }

    /// The admin API (`/v1`, `/healthz`, `/readyz`, `/metrics`), to serve
    /// or to drive with `tower::ServiceExt::oneshot`.
    pub fn admin(&self) -> axum::Router {
        self.admin.clone()
    }

    /// The event dispatcher (the durable queue and its delivery loop).
    pub fn dispatcher(&self) -> &Arc<Dispatcher> {
        &self.dispatcher
    }
}

/// Stable for this machine and data directory, so a broker's persistent
/// session is found again after a restart.
fn node_identity(data_dir: &Path) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into());
    let dir = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    format!("{host}:{}", dir.display())
}

/// The key-value backend and the secret store functions' grants are
/// served from.
fn capability_backends(
    config: &NodeConfig,
    data_dir: &Path,
    secrets: &Arc<SecretStore>,
) -> Result<CapabilityBackends, NodeError> {
    let keyvalue = match &config.keyvalue {
        KeyValueStore::Sqlite => stratus_keyvalue::KeyValueConfig::Sqlite {
            path: data_dir.join("keyvalue.sqlite"),
        },
        KeyValueStore::Redis { url } => {
            stratus_keyvalue::KeyValueConfig::Redis { url: url.clone() }
        }
    };
    let keyvalue = stratus_keyvalue::open(&keyvalue, config.keyvalue_quota)
        .map_err(|e| NodeError::open("key-value store", e))?;
    Ok(CapabilityBackends {
        keyvalue: Some(keyvalue),
        secrets: Some(secrets.clone()),
    })
}
