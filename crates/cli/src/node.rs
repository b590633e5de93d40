//! Running a node: `stratus server` (long-lived, persistent data dir) and
//! `stratus up` (a throwaway node for the developer loop).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use stratus_admin::AdminState;
use stratus_control::{CapabilityBackends, Node, Upload};
use stratus_events::{DispatchConfig, Dispatcher};
use stratus_gateway::{Admission, Gateway};
use stratus_ledger::{Ledger, PriceSheet, Retention};
use stratus_manifest::Manifest;
use stratus_queue::{Queue, RetryPolicy};
use stratus_runtime::{Runtime, RuntimeConfig};
use stratus_store::Store;
use stratus_triggers::{TriggerConfig, Triggers};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::args::{KeyValueKind, NodeOpts, ServerArgs, UpArgs};

/// How long handled and dead events stay queryable.
const SETTLED_EVENTS_KEPT: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

/// Node options checked and converted before any socket is bound.
struct NodeConfig {
    listen: SocketAddr,
    admin_listen: SocketAddr,
    max_upload: usize,
    max_instances: u32,
    queue_timeout: std::time::Duration,
    memory_budget: u64,
    idle_ttl: std::time::Duration,
    /// `None` with `--no-metering`.
    metering: Option<(Retention, PriceSheet)>,
    retry: RetryPolicy,
    max_attempts: u32,
    nats_url: String,
    mqtt_url: String,
    /// `None`: the SQLite file in the data directory.
    keyvalue_redis: Option<String>,
}

impl NodeConfig {
    fn from_opts(opts: &NodeOpts) -> anyhow::Result<NodeConfig> {
        let max_upload = stratus_manifest::ByteSize::parse(&opts.max_upload)
            .map(|size| size.bytes())
            .map_err(|e| anyhow::anyhow!("--max-upload: {e}"))?;
        if opts.max_instances == 0 {
            bail!("--max-instances must be at least 1");
        }
        if opts.listen == opts.admin_listen && opts.listen.port() != 0 {
            bail!(
                "--listen and --admin-listen must differ (both are {})",
                opts.listen
            );
        }
        let queue_timeout = humantime::parse_duration(&opts.queue_timeout).map_err(|e| {
            anyhow::anyhow!(
                "--queue-timeout \"{}\": {e}; use e.g. \"1s\" or \"250ms\"",
                opts.queue_timeout
            )
        })?;
        let idle_ttl = humantime::parse_duration(&opts.idle_ttl).map_err(|e| {
            anyhow::anyhow!(
                "--idle-ttl \"{}\": {e}; use e.g. \"5m\" or \"0s\"",
                opts.idle_ttl
            )
        })?;
        let metering = if opts.no_metering {
            None
        } else {
            Some((retention(opts)?, prices(opts)?))
        };
        let retry_base = humantime::parse_duration(&opts.retry_base).map_err(|e| {
            anyhow::anyhow!(
                "--retry-base \"{}\": {e}; use e.g. \"1s\" or \"200ms\"",
                opts.retry_base
            )
        })?;
        if opts.max_attempts == 0 {
            bail!("--max-attempts must be at least 1");
        }
        stratus_triggers::check_addresses(&opts.nats_url, &opts.mqtt_url)
            .map_err(|e| anyhow::anyhow!(e))?;
        let memory_budget = match &opts.memory_budget {
            Some(text) => stratus_manifest::ByteSize::parse(text)
                .map(|size| size.bytes())
                .map_err(|e| anyhow::anyhow!("--memory-budget: {e}"))?,
            None => half_of_physical_memory(),
        };
        Ok(NodeConfig {
            listen: opts.listen,
            admin_listen: opts.admin_listen,
            max_upload: usize::try_from(max_upload).unwrap_or(usize::MAX),
            max_instances: opts.max_instances,
            queue_timeout,
            memory_budget,
            idle_ttl,
            metering,
            retry: RetryPolicy {
                base: retry_base,
                ..RetryPolicy::default()
            },
            max_attempts: opts.max_attempts,
            nats_url: opts.nats_url.clone(),
            mqtt_url: opts.mqtt_url.clone(),
            keyvalue_redis: match (opts.keyvalue, &opts.keyvalue_url) {
                (KeyValueKind::Sqlite, None) => None,
                (KeyValueKind::Sqlite, Some(url)) => bail!(
                    "--keyvalue-url {url:?} is given but the key-value store is SQLite; add `--keyvalue redis` to use that server, or drop the URL"
                ),
                (KeyValueKind::Redis, url) => Some(
                    url.clone()
                        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_string()),
                ),
            },
        })
    }
}

fn retention(opts: &NodeOpts) -> anyhow::Result<Retention> {
    let parse = |flag: &str, text: &str| {
        humantime::parse_duration(text)
            .map_err(|e| anyhow::anyhow!("{flag} \"{text}\": {e}; use e.g. \"7d\" or \"12h\""))
    };
    Ok(Retention {
        records: parse("--record-retention", &opts.record_retention)?,
        logs: parse("--log-retention", &opts.log_retention)?,
        usage: parse("--usage-retention", &opts.usage_retention)?,
    })
}

fn prices(opts: &NodeOpts) -> anyhow::Result<PriceSheet> {
    for (flag, price) in [
        ("--price-gb-second", opts.price_gb_second),
        ("--price-million-requests", opts.price_million_requests),
    ] {
        if !price.is_finite() || price < 0.0 {
            bail!("{flag} must be a price of zero or more, not {price}");
        }
    }
    if opts.currency.trim().is_empty() {
        bail!("--currency must not be empty");
    }
    Ok(PriceSheet {
        currency: opts.currency.trim().to_string(),
        per_gb_second: opts.price_gb_second,
        per_million_requests: opts.price_million_requests,
    })
}

/// A node whose sockets are bound and whose stored apps are live.
struct RunningNode {
    node: Arc<Node>,
    gateway_addr: SocketAddr,
    admin_addr: SocketAddr,
    gateway_listener: TcpListener,
    admin_listener: TcpListener,
    token: String,
    max_upload: usize,
    ledger: Option<Arc<Ledger>>,
    dispatcher: Arc<Dispatcher>,
    triggers: Triggers,
    secrets: Arc<stratus_secrets::SecretStore>,
}

/// `persistent`: the data directory outlives this process (`stratus
/// server`), so broker sessions may too.
async fn start(
    config: NodeConfig,
    data_dir: &Path,
    token: String,
    persistent: bool,
) -> anyhow::Result<RunningNode> {
    let store = Store::open(data_dir)
        .with_context(|| format!("cannot open the data directory {}", data_dir.display()))?;
    let mut runtime_config = RuntimeConfig::new(data_dir.join("compiled"));
    runtime_config.max_instances = config.max_instances;
    let runtime = Runtime::new(runtime_config).context("cannot start the WebAssembly runtime")?;
    let ledger = match config.metering {
        Some((retention, prices)) => Some(Arc::new(
            Ledger::open(&data_dir.join(Ledger::FILE), retention, prices)
                .context("cannot open the invocation ledger")?,
        )),
        None => None,
    };
    let admission = Admission::new(
        runtime.request_slots(),
        config.memory_budget,
        config.queue_timeout,
    );
    let gateway = Gateway::new(admission, ledger.as_ref().map(|l| l.recorder()));
    let queue = Queue::open(
        &data_dir.join(Queue::FILE),
        config.retry,
        SETTLED_EVENTS_KEPT,
    )
    .context("cannot open the event queue")?;
    let dispatcher = Dispatcher::new(
        Arc::new(queue),
        gateway.clone(),
        DispatchConfig {
            max_attempts: config.max_attempts,
            ..DispatchConfig::default()
        },
    );
    // Functions publish with `POST http://queue.svc/<queue>`.
    runtime.add_service(stratus_events::QueueService::new(&dispatcher, &gateway));
    // `http://<function>.svc/`: calls to other functions of the same app.
    // Last, so node services such as `queue.svc` keep their names.
    runtime.add_service(stratus_gateway::FunctionCalls::new(&gateway));
    let trigger_config = TriggerConfig {
        nats_url: config.nats_url.clone(),
        mqtt_url: config.mqtt_url.clone(),
        node_identity: format!(
            "{}:{}",
            hostname(),
            std::fs::canonicalize(data_dir)
                .unwrap_or_else(|_| data_dir.to_path_buf())
                .display()
        ),
        persistent_sessions: persistent,
        retry: config.retry,
    };
    let triggers = Triggers::new(dispatcher.clone(), gateway.clone(), trigger_config);
    let (backends, secrets) = capability_backends(&config.keyvalue_redis, data_dir)?;
    let node =
        Arc::new(Node::new(Arc::new(store), Arc::new(runtime), gateway).with_backends(backends));

    let gateway_listener = bind(config.listen, "--listen").await?;
    let admin_listener = bind(config.admin_listen, "--admin-listen").await?;
    let gateway_addr = gateway_listener.local_addr()?;
    let admin_addr = admin_listener.local_addr()?;
    node.load_live()
        .await
        .context("cannot load the deployed apps")?;
    if !config.idle_ttl.is_zero() {
        node.spawn_evictor(config.idle_ttl);
    }
    Ok(RunningNode {
        node,
        gateway_addr,
        admin_addr,
        gateway_listener,
        admin_listener,
        token,
        max_upload: config.max_upload,
        ledger,
        dispatcher,
        triggers,
        secrets,
    })
}

/// The key-value backend and the secret store functions' grants are
/// served from (the store also for the admin API, which sets secrets).
fn capability_backends(
    keyvalue_redis: &Option<String>,
    data_dir: &Path,
) -> anyhow::Result<(CapabilityBackends, Arc<stratus_secrets::SecretStore>)> {
    let keyvalue = match keyvalue_redis {
        None => stratus_keyvalue::KeyValueConfig::Sqlite {
            path: data_dir.join("keyvalue.sqlite"),
        },
        Some(url) => stratus_keyvalue::KeyValueConfig::Redis { url: url.clone() },
    };
    let keyvalue = stratus_keyvalue::open(&keyvalue).context("cannot open the key-value store")?;
    let secrets = Arc::new(
        stratus_secrets::SecretStore::open(data_dir).context("cannot open the secret store")?,
    );
    let backends = CapabilityBackends {
        keyvalue: Some(keyvalue),
        secrets: Some(secrets.clone()),
    };
    Ok((backends, secrets))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into())
}

/// The default memory budget: half of `MemTotal`, leaving the rest to the
/// node itself, compiled code and the OS (8 GiB where it cannot be read).
fn half_of_physical_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024 / 2)
        })
        .unwrap_or(8 << 30)
}

async fn bind(addr: SocketAddr, flag: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            anyhow::anyhow!("{addr} is already in use; choose another address with {flag}")
        } else {
            anyhow::anyhow!("cannot listen on {addr} ({flag}): {e}")
        }
    })
}

impl RunningNode {
    /// Serves until SIGINT/SIGTERM, then drains both servers and returns.
    async fn serve(self) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let gateway = self
            .node
            .gateway()
            .clone()
            .serve(self.gateway_listener, stopped(stop_rx.clone()));
        let router = stratus_admin::router(AdminState {
            node: self.node.clone(),
            token: self.token.into(),
            max_upload: self.max_upload,
            ledger: self.ledger.clone(),
            dispatcher: self.dispatcher.clone(),
            triggers: self.triggers.health(),
            secrets: self.secrets.clone(),
        });
        // Deliveries stop with the process; an event in delivery then is due
        // again when the node next starts (at least once).
        let delivering = self.dispatcher.spawn();
        // Cron ticks and broker messages are queued durably (or, for
        // JetStream, left unacknowledged), so stopping them at any point
        // loses nothing.
        let triggering = self.triggers.spawn();
        let admin = axum::serve(self.admin_listener, router)
            .with_graceful_shutdown(stopped(stop_rx))
            .into_future();
        let gateway = tokio::spawn(gateway);
        let admin = tokio::spawn(admin);

        shutdown_signal().await;
        tracing::info!("shutting down: no new connections, finishing requests in flight");
        let _ = stop_tx.send(true);
        // No new deliveries while draining; those under way finish or are
        // delivered again after a restart.
        delivering.abort();
        triggering.abort();
        let (g, a) = tokio::join!(gateway, admin);
        g.context("gateway task failed")?
            .context("gateway failed")?;
        a.context("admin task failed")?
            .context("admin API failed")?;
        if let Some(ledger) = self.ledger {
            let flushed = tokio::task::spawn_blocking(move || {
                ledger.flush(std::time::Duration::from_secs(10))
            })
            .await
            .unwrap_or(false);
            if !flushed {
                tracing::warn!("could not write the last invocation records before stopping");
            }
        }
        tracing::info!("stopped");
        Ok(())
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// `stratus server`.
pub async fn server(args: ServerArgs) -> anyhow::Result<()> {
    let config = NodeConfig::from_opts(&args.node)?;
    let data_dir = args.data_dir;
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    let (token, token_source) = resolve_token(args.node.admin_token, &data_dir)?;
    let running = start(config, &data_dir, token, true).await?;
    let live = running.node.gateway().live();
    println!("Stratus node ready");
    println!("  gateway: http://{}", running.gateway_addr);
    println!("  admin:   http://{}", running.admin_addr);
    println!("  token:   {token_source}");
    println!(
        "  data:    {} ({} functions live)",
        data_dir.display(),
        live.functions().count()
    );
    running.serve().await
}

/// The admin token: given, or stored in the data dir (created on first
/// start with mode 0600). Returns it with a note on where it came from.
fn resolve_token(given: Option<String>, data_dir: &Path) -> anyhow::Result<(String, String)> {
    if let Some(token) = given {
        if token.trim().is_empty() {
            bail!("--admin-token (STRATUS_ADMIN_TOKEN) is empty");
        }
        return Ok((token, "given by --admin-token / STRATUS_ADMIN_TOKEN".into()));
    }
    let path = data_dir.join("admin-token");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let token = existing.trim().to_string();
        if !token.is_empty() {
            return Ok((token, format!("stored in {}", path.display())));
        }
    }
    let token = random_token();
    write_private(&path, &token)
        .with_context(|| format!("cannot store the admin token in {}", path.display()))?;
    Ok((token, format!("generated and stored in {}", path.display())))
}

fn random_token() -> String {
    let bytes: [u8; 24] = rand::random();
    hex::encode(bytes)
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

/// `stratus up`: a node on a temporary data dir serving the apps in DIRS.
pub async fn up(args: UpArgs) -> anyhow::Result<()> {
    let config = NodeConfig::from_opts(&args.node)?;
    let mut uploads = Vec::new();
    for dir in &args.dirs {
        uploads.push(prepare_app(dir, !args.no_build).await?);
    }
    let data_dir = tempfile::Builder::new()
        .prefix("stratus-up-")
        .tempdir()
        .context("cannot create a temporary data directory")?;
    let token = args.node.admin_token.clone().unwrap_or_else(random_token);
    let running = start(config, data_dir.path(), token.clone(), false).await?;
    println!(
        "Stratus is up (data in {}, removed on exit)",
        data_dir.path().display()
    );
    for (dir, upload) in args.dirs.iter().zip(uploads) {
        let report = running
            .node
            .deploy(upload)
            .await
            .with_context(|| format!("cannot deploy the app in {}", dir.display()))?;
        println!("\napp {} (version {}):", report.app, report.version);
        for f in &report.functions {
            for route in &f.routes {
                let path = route
                    .strip_suffix("/...")
                    .map_or(route.clone(), |p| format!("{p}/"));
                println!("  {:<12} http://{}{}", f.name, running.gateway_addr, path);
            }
        }
    }
    println!("\n  admin:   http://{} (token {token})", running.admin_addr);
    println!("Press Ctrl-C to stop.");
    running.serve().await
}

/// Loads a manifest, runs its build commands, and reads its components.
pub async fn prepare_app(dir: &Path, build: bool) -> anyhow::Result<Upload> {
    let path = manifest_path(dir);
    let loaded = Manifest::load(&path)?;
    if build {
        for f in &loaded.manifest.functions {
            if let Some(command) = &f.build {
                run_build(&loaded.dir, &f.name, command).await?;
            }
        }
    }
    read_components(&loaded)
}

pub fn manifest_path(dir: &Path) -> PathBuf {
    if dir.is_file() {
        dir.to_path_buf()
    } else {
        dir.join("stratus.toml")
    }
}

pub fn read_components(loaded: &stratus_manifest::LoadedManifest) -> anyhow::Result<Upload> {
    loaded.check_components_exist()?;
    let manifest = std::fs::read_to_string(&loaded.path)
        .with_context(|| format!("cannot read {}", loaded.path.display()))?;
    let mut upload = Upload {
        manifest,
        ..Upload::default()
    };
    for f in &loaded.manifest.functions {
        let path = loaded.component_path(f);
        let bytes = std::fs::read(&path).with_context(|| {
            format!(
                "function \"{}\": cannot read its component {}",
                f.name,
                path.display()
            )
        })?;
        upload.components.insert(f.component.clone(), bytes.into());
    }
    Ok(upload)
}

async fn run_build(dir: &Path, function: &str, command: &str) -> anyhow::Result<()> {
    eprintln!("building {function}: {command}");
    let status = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(dir)
        .status()
        .await
        .with_context(|| format!("cannot run the build command of function \"{function}\""))?;
    if !status.success() {
        bail!(
            "the build command of function \"{function}\" failed ({status}): {command} (in {})",
            dir.display()
        );
    }
    Ok(())
}
