//! Running a node: `stratus server` (long-lived, persistent data dir) and
//! `stratus up` (a throwaway node for the developer loop).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use stratus_control::Upload;
use stratus_manifest::Manifest;
use stratus_node::{Cluster, KeyValueStore, Metering, NodeConfig, Stratus, TracingConfig};
use stratus_storage::{PriceSheet, Retention, RetryPolicy, Sampling};

use crate::args::{KeyValueKind, NodeOpts, ServerArgs, UpArgs};
use crate::up_token;

/// The node's configuration from its flags (typed and parsed by clap;
/// checked as a whole by the node).
fn node_config(opts: &NodeOpts, persistent: bool) -> anyhow::Result<NodeConfig> {
    let keyvalue = match (opts.keyvalue, &opts.keyvalue_url) {
        (KeyValueKind::Sqlite, None) => KeyValueStore::Sqlite,
        (KeyValueKind::Sqlite, Some(url)) => bail!(
            "--keyvalue-url {url:?} is given but the key-value store is SQLite; add `--keyvalue redis` to use that server, or drop the URL"
        ),
        (KeyValueKind::Redis, url) => KeyValueStore::Redis {
            url: url
                .clone()
                .unwrap_or_else(|| "redis://127.0.0.1:6379".to_string()),
        },
    };
    let metering = (!opts.no_metering).then(|| Metering {
        retention: Retention {
            records: opts.record_retention,
            logs: opts.log_retention,
            usage: opts.usage_retention,
            max_bytes: opts.ledger_max_size,
        },
        prices: PriceSheet {
            currency: opts.currency.trim().to_string(),
            per_gb_second: opts.price_gb_second,
            per_million_requests: opts.price_million_requests,
        },
        sampling: Sampling {
            keep_per_second: opts.ledger_sample_above,
            then_one_in: opts.ledger_sample_one_in,
        },
    });
    let config = NodeConfig {
        listen: opts.listen,
        reuse_port: opts.reuse_port,
        admin_listen: opts.admin_listen,
        tls: tls_files(&opts.tls_cert, &opts.tls_key),
        admin_tls: tls_files(&opts.admin_tls_cert, &opts.admin_tls_key),
        max_upload: opts.max_upload,
        max_instances: opts.max_instances,
        queue_timeout: opts.queue_timeout,
        max_connections: opts.max_connections,
        read_timeout: opts.read_timeout,
        body_timeout: opts.body_timeout,
        write_timeout: opts.write_timeout,
        compile: stratus_runtime::CompileLimits {
            max_functions: opts.compile_max_functions,
            max_code_bytes: opts.compile_max_code,
            timeout: opts.compile_timeout,
            tiered: !opts.no_tiered_compilation,
            threads: opts.compile_threads.map_or_else(
                || stratus_runtime::CompileLimits::default().threads,
                usize::from,
            ),
        },
        memory_budget: opts.memory_budget,
        idle_ttl: opts.idle_ttl,
        metering,
        log_per_invocation: opts.log_max_per_invocation,
        log_per_app_day: opts.log_max_per_app_day,
        calls_per_request: opts.max_calls_per_request,
        retry: RetryPolicy {
            base: opts.retry_base,
            ..RetryPolicy::default()
        },
        max_attempts: opts.max_attempts,
        nats_url: opts.nats_url.clone(),
        mqtt_url: opts.mqtt_url.clone(),
        keyvalue,
        keyvalue_quota: stratus_storage::Quota {
            max_bytes: opts.keyvalue_max_bytes_per_app,
            max_keys: opts.keyvalue_max_keys_per_app,
        },
        outbound_allow_private: opts.outbound_allow_private,
        tracing: TracingConfig {
            endpoint: opts.otlp_endpoint.clone(),
            sample_ratio: opts.trace_sample_ratio,
        },
        audit_retention: opts.audit_retention,
        persistent,
        cluster: (!opts.cluster.is_empty()).then(|| Cluster {
            servers: opts.cluster.clone(),
            name: opts.cluster_name.clone(),
            replicas: opts.cluster_replicas,
        }),
    };
    // Refused before the data directory is created or anything is built.
    config.check()?;
    Ok(config)
}

/// A node whose stored apps are live, with its sockets bound.
struct Bound {
    node: Stratus,
    gateway: tokio::net::TcpListener,
    admin: tokio::net::TcpListener,
    /// The listeners' URLs: `https://` for one serving TLS.
    gateway_url: String,
    admin_url: String,
    admin_port: u16,
}

/// Binds the node's sockets, then opens it in `data_dir`: a port already
/// taken is reported before anything is opened or compiled.
async fn start(config: NodeConfig, data_dir: &Path, token: &str) -> anyhow::Result<Bound> {
    let (listen, admin_listen) = (config.listen, config.admin_listen);
    let gateway = match config.reuse_port {
        true => stratus_node::bind_shared(listen, "--listen").await?,
        false => stratus_node::bind(listen, "--listen").await?,
    };
    let admin = stratus_node::bind(admin_listen, "--admin-listen").await?;
    let url = |tls: bool, addr: std::net::SocketAddr| {
        format!("{}://{addr}", if tls { "https" } else { "http" })
    };
    let gateway_url = url(config.tls.is_some(), gateway.local_addr()?);
    let admin_addr = admin.local_addr()?;
    let admin_url = url(config.admin_tls.is_some(), admin_addr);
    let node = Stratus::open(config, data_dir, token).await?;
    Ok(Bound {
        node,
        gateway_url,
        admin_url,
        admin_port: admin_addr.port(),
        gateway,
        admin,
    })
}

impl Bound {
    /// Serves until SIGINT/SIGTERM, then drains both servers and returns.
    async fn serve(self) -> anyhow::Result<()> {
        Ok(self
            .node
            .serve(self.gateway, self.admin, shutdown_signal())
            .await?)
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
    let config = node_config(&args.node, true)?;
    let data_dir = args.data_dir;
    create_private_dir(&data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    let (token, token_source) = resolve_token(args.node.admin_token, &data_dir)?;
    let running = start(config, &data_dir, &token).await?;
    let live = running.node.control().invoker().live();
    println!("Stratus node ready");
    println!("  gateway: {}", running.gateway_url);
    println!("  admin:   {}", running.admin_url);
    println!("  token:   {token_source}");
    println!(
        "  data:    {} ({} functions live)",
        data_dir.display(),
        live.functions().count()
    );
    running.serve().await
}

/// Creates the data directory (and missing parents) with mode 0700: it
/// holds the admin token, the secrets key and every database. One that
/// exists already keeps the mode its owner gave it, with a warning when
/// others may enter it.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        if let Ok(metadata) = std::fs::metadata(dir) {
            let mode = metadata.permissions().mode();
            if metadata.is_dir() && mode & 0o077 != 0 {
                tracing::warn!(
                    "the data directory {} is open to other users (mode {:o}); `chmod 700` it",
                    dir.display(),
                    mode & 0o777
                );
            }
        }
        builder.mode(0o700);
    }
    builder.create(dir)
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

pub(crate) fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
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
    let config = node_config(&args.node, false)?;
    let mut uploads = Vec::new();
    for dir in &args.dirs {
        uploads.push(prepare_app(dir, !args.no_build).await?);
    }
    let data_dir = tempfile::Builder::new()
        .prefix("stratus-up-")
        .tempdir()
        .context("cannot create a temporary data directory")?;
    let token = args.node.admin_token.clone().unwrap_or_else(random_token);
    let running = start(config, data_dir.path(), &token).await?;
    println!(
        "Stratus is up (data in {}, removed on exit)",
        data_dir.path().display()
    );
    for (dir, upload) in args.dirs.iter().zip(uploads) {
        let report = running
            .node
            .control()
            .deploy(upload)
            .await
            .with_context(|| format!("cannot deploy the app in {}", dir.display()))?;
        println!("\napp {} (version {}):", report.app, report.version);
        for f in &report.functions {
            for route in &f.routes {
                println!(
                    "  {:<12} {}",
                    f.name,
                    route_url(&running.gateway_url, route)
                );
            }
        }
    }
    let admin = running.admin_url.clone();
    println!("\n  admin:   {admin}");
    println!("  console: {admin}/ui/ (sign in with the token below)");
    // Kept until the node stops, then removed.
    let _published = match up_token::publish(&admin, running.admin_port, &token) {
        Ok(published) => {
            println!(
                "  the CLI in another shell of this machine finds this node by its port \
                 (token in {}); elsewhere:",
                published.path().display()
            );
            Some(published)
        }
        Err(e) => {
            println!("  cannot leave the token for the CLI ({e}); in another shell:");
            None
        }
    };
    println!("  export STRATUS_SERVER={admin} STRATUS_TOKEN={token}");
    if args.watch {
        for dir in &args.dirs {
            println!("Watching {} for changes.", dir.display());
            tokio::spawn(crate::watch::watch(
                running.node.control().clone(),
                dir.clone(),
            ));
        }
    }
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

/// The manifest `dir` names: the file itself, or a directory's
/// `stratus.toml` (its `spin.toml` when it has none).
pub fn manifest_path(dir: &Path) -> PathBuf {
    if dir.is_file() {
        dir.to_path_buf()
    } else {
        stratus_manifest::manifest_in(dir)
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
            "the build command of function \"{function}\" failed ({status}): {command} (in {}){}",
            dir.display(),
            build_hint(dir, command, status.code())
        );
    }
    Ok(())
}

/// What a failed build most likely needs, when that can be told: the
/// packages of a JavaScript function not installed yet (its `package.json`
/// names the build's tools, e.g. jco), or a program not on the PATH (the
/// shell exits 127 for a command it cannot find).
fn build_hint(dir: &Path, command: &str, code: Option<i32>) -> String {
    if dir.join("package.json").is_file() && !dir.join("node_modules").exists() {
        return format!(
            "; its tools are not installed yet: run `npm install` in {} first",
            dir.display()
        );
    }
    if code != Some(127) {
        return String::new();
    }
    match command.split_whitespace().next() {
        Some(program) if !on_path(dir, program) => format!(
            "; `{program}` was not found: install it, or put it on the PATH"
        ),
        _ => "; a program it runs was not found (the shell named it above): install it, or put it on the PATH".to_string(),
    }
}

/// Whether the shell, run in `dir`, would find `program`: a path that
/// exists, or a name in a directory of the PATH.
fn on_path(dir: &Path, program: &str) -> bool {
    if program.contains('/') {
        return dir.join(program).exists();
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// A listener's certificate and key, when both are given (clap requires
/// each with the other).
fn tls_files(cert: &Option<PathBuf>, key: &Option<PathBuf>) -> Option<stratus_node::TlsFiles> {
    Some(stratus_node::TlsFiles {
        cert: cert.clone()?,
        key: key.clone()?,
    })
}

/// Where a route is reached on a gateway at `gateway` (`http://host:port`):
/// a prefix route at its path with a trailing slash, a host route with the
/// `Host` it needs named, since the gateway's own address does not carry it.
fn route_url(gateway: &str, route: &str) -> String {
    let (host, path) = match route.find('/') {
        Some(at) if at > 0 => (Some(&route[..at]), &route[at..]),
        _ => (None, route),
    };
    let path = path
        .strip_suffix("/...")
        .map_or(path.to_owned(), |p| format!("{p}/"));
    match host {
        Some(host) => format!("{gateway}{path}  (Host: {host})"),
        None => format!("{gateway}{path}"),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::args::{Cli, Command};

    fn server_config(flags: &[&str]) -> Result<stratus_node::NodeConfig, String> {
        let args = ["stratus", "server"].iter().chain(flags);
        let cli = Cli::try_parse_from(args).map_err(|e| e.to_string())?;
        let Command::Server(server) = cli.command else {
            return Err("not `server`".into());
        };
        super::node_config(&server.node, true).map_err(|e| format!("{e:#}"))
    }

    #[test]
    fn the_flags_defaults_are_the_nodes() {
        let config = server_config(&[]).expect("the defaults are valid");
        let expected = stratus_node::NodeConfig::default();
        assert_eq!(format!("{config:?}"), format!("{expected:?}"));
    }

    #[test]
    fn sizes_and_durations_are_typed_flags() {
        let config = server_config(&["--max-upload", "1MiB", "--idle-ttl", "90s"]).expect("valid");
        assert_eq!(config.max_upload, 1 << 20);
        assert_eq!(config.idle_ttl, std::time::Duration::from_secs(90));
        for (flags, named) in [
            (&["--max-upload", "64"][..], "--max-upload"),
            (&["--idle-ttl", "soon"], "--idle-ttl"),
            (&["--max-instances", "0"], "--max-instances"),
            (&["--keyvalue-url", "redis://x"], "--keyvalue-url"),
            (&["--mqtt-url", "mqtt://[::1"], "--mqtt-url"),
        ] {
            let error = server_config(flags).expect_err(named);
            assert!(error.contains(named), "{flags:?}: {error}");
        }
    }

    #[test]
    fn a_route_is_printed_where_it_is_reached() {
        let at = |route| super::route_url("http://127.0.0.1:8080", route);
        assert_eq!(at("/hello"), "http://127.0.0.1:8080/hello");
        assert_eq!(at("/api/..."), "http://127.0.0.1:8080/api/");
        assert_eq!(at("/..."), "http://127.0.0.1:8080/");
        assert_eq!(
            at("shop.test/orders/..."),
            "http://127.0.0.1:8080/orders/  (Host: shop.test)"
        );
    }
}
