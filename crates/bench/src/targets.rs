//! The processes under load, and the in-process instantiate measurement.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use stratus_runtime::{
    Function, FunctionIdentity, FunctionLimits, FunctionOptions, Runtime, RuntimeConfig,
};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `target/release/stratus`, next to this benchmark's own binary (or
/// `target/debug/stratus` when the benchmark is a debug build).
pub fn stratus_bin() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let bin = me.with_file_name("stratus");
    if !bin.exists() {
        bail!(
            "{} is missing; build it with `cargo build --release -p stratus -p stratus-bench`",
            bin.display()
        );
    }
    Ok(bin)
}

/// A component of the test guests (`tests/guests`), e.g. `capabilities`.
pub fn test_component(name: &str) -> anyhow::Result<PathBuf> {
    let path = repo_root().join(format!(
        "tests/guests/target/wasm32-wasip2/release/{name}.wasm"
    ));
    if !path.exists() {
        bail!(
            "{} is missing; build the test guests with `cargo build --release --target wasm32-wasip2 --manifest-path tests/guests/Cargo.toml`",
            path.display()
        );
    }
    Ok(path)
}

/// The component under load and its memory cap, when not the hello
/// example (`--component`, `--memory`): set once, before any target starts.
static UNDER_TEST: std::sync::OnceLock<(PathBuf, String)> = std::sync::OnceLock::new();

/// Measures `component` with `memory` (e.g. "64MiB") instead of hello.
pub fn set_component(component: PathBuf, memory: String) -> anyhow::Result<()> {
    if !component.exists() {
        bail!("{} is missing", component.display());
    }
    UNDER_TEST
        .set((component, memory))
        .map_err(|_| anyhow::anyhow!("the component under test is set once"))
}

/// The memory cap of the function under load.
pub fn function_memory() -> String {
    UNDER_TEST
        .get()
        .map_or_else(|| "16MiB".to_owned(), |(_, memory)| memory.clone())
}

/// The component under load: the hello example unless `--component`.
pub fn hello_component() -> anyhow::Result<PathBuf> {
    if let Some((component, _)) = UNDER_TEST.get() {
        return Ok(component.clone());
    }
    let path = repo_root().join("examples/target/wasm32-wasip2/release/hello.wasm");
    if !path.exists() {
        bail!(
            "{} is missing; build the examples with `cargo build --release --target wasm32-wasip2 --manifest-path examples/Cargo.toml`",
            path.display()
        );
    }
    Ok(path)
}

/// Reads a child's stdout until a line starting with each prefix was seen;
/// returns the rest of those lines, in the order of `prefixes`.
fn wait_for_lines(child: &mut Child, prefixes: &[&str]) -> anyhow::Result<Vec<String>> {
    let stdout = child.stdout.take().context("child stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let mut found: Vec<Option<String>> = vec![None; prefixes.len()];
    while found.iter().any(Option::is_none) {
        let line = lines
            .next()
            .and_then(Result::ok)
            .with_context(|| format!("the process never printed all of {prefixes:?}"))?;
        for (slot, prefix) in found.iter_mut().zip(prefixes) {
            if let Some(rest) = line.trim().strip_prefix(prefix) {
                *slot = Some(rest.trim().to_string());
            }
        }
    }
    // Keep draining so the child never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Ok(found.into_iter().flatten().collect())
}

pub struct StratusNode {
    child: Child,
    pub url: String,
    pub admin: String,
    _data: tempfile::TempDir,
    /// Where a traced node exports its spans: a hyper server that takes
    /// every export (answering as a collector that keeps nothing).
    _sink: Option<RawHyper>,
}

/// How the node under load is set up.
#[derive(Debug, Clone, Copy)]
pub struct Variant {
    /// `reuse` of the hello function (1: a fresh instance per request).
    pub reuse: u32,
    /// Metering and invocation logs on (the default) or `--no-metering`.
    pub metering: bool,
    /// The app in a namespace with every quota set (none reached): what
    /// checking them costs.
    pub quotas: bool,
    /// Every invocation traced and exported (`--otlp-endpoint`): what
    /// tracing costs when it is on.
    pub traced: bool,
}

/// Flags given to every `stratus server` the bench starts, after its own:
/// one setting compared across runs (e.g. `--keep-resident=32MiB`).
static NODE_ARGS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();

impl StratusNode {
    /// Starts a node with `extra` flags, no app deployed.
    pub fn start_empty(extra: &[&str]) -> anyhow::Result<StratusNode> {
        Self::start_empty_binary(&stratus_bin()?, extra)
    }

    /// As [`StratusNode::start_empty`], running the server binary `bin`
    /// (another build, to compare two in one run).
    /// Sets the flags every node started from now on gets after its own
    /// (`--node-arg`); the first call wins.
    pub fn set_node_args(args: Vec<String>) {
        let _ = NODE_ARGS.set(args);
    }

    pub fn start_empty_binary(bin: &Path, extra: &[&str]) -> anyhow::Result<StratusNode> {
        Self::start_empty_env(bin, extra, &[])
    }

    /// As [`StratusNode::start_empty_binary`], with `env` set in the node's
    /// environment (e.g. the secrets key the nodes of a cluster share).
    pub fn start_empty_env(
        bin: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> anyhow::Result<StratusNode> {
        let data = tempfile::tempdir()?;
        let mut child = Command::new(bin)
            .arg("server")
            .arg("--data-dir")
            .arg(data.path())
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .args(["--admin-token", "bench"])
            .args(extra)
            .args(NODE_ARGS.get().into_iter().flatten())
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting stratus server")?;
        let found = wait_for_lines(&mut child, &["gateway:", "admin:"])?;
        Ok(StratusNode {
            child,
            url: found[0].clone(),
            admin: found[1].clone(),
            _data: data,
            _sink: None,
        })
    }

    /// Starts a node serving the hello example at `url`.
    pub fn start(variant: Variant) -> anyhow::Result<StratusNode> {
        Self::start_with(variant, "")
    }

    /// Like [`StratusNode::start`], with `function_toml` lines in the function's
    /// manifest table (e.g. its triggers).
    pub fn start_with(variant: Variant, function_toml: &str) -> anyhow::Result<StratusNode> {
        Self::start_binary(&stratus_bin()?, variant, function_toml)
    }

    /// As [`StratusNode::start_with`], running the server binary `bin`.
    pub fn start_binary(
        bin: &Path,
        variant: Variant,
        function_toml: &str,
    ) -> anyhow::Result<StratusNode> {
        let mut extra: Vec<String> = Vec::new();
        if !variant.metering {
            extra.push("--no-metering".into());
        }
        let sink = if variant.traced {
            let sink = RawHyper::start()?;
            extra.extend(["--otlp-endpoint".into(), sink.url.clone()]);
            Some(sink)
        } else {
            None
        };
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let mut node = Self::start_empty_binary(bin, &extra)?;
        node._sink = sink;
        let app = node._data.path().join("app");
        std::fs::create_dir_all(&app)?;
        std::fs::write(
            app.join("stratus.toml"),
            format!(
                "[app]\nname = \"hello\"\n\n[[function]]\nname = \"hello\"\ncomponent = \"{}\"\nroutes = [\"/hello\"]\nmemory = \"{}\"\nreuse = {}\n{function_toml}\n",
                hello_component()?.display(),
                function_memory(),
                variant.reuse
            ),
        )?;
        let namespace = if variant.quotas { "bench" } else { "default" };
        if variant.quotas {
            let status = Command::new(stratus_bin()?)
                .args(["quotas", "set", "--namespace", namespace])
                .args([
                    "--max-apps",
                    "10",
                    "--max-functions",
                    "100",
                    "--max-memory",
                    "1GiB",
                ])
                .args([
                    "--max-concurrency",
                    "100000",
                    "--requests-per-second",
                    "100000000",
                ])
                .args(["--budget", "1000000000"])
                .env("STRATUS_SERVER", &node.admin)
                .env("STRATUS_TOKEN", "bench")
                .stdout(Stdio::null())
                .status()?;
            if !status.success() {
                bail!("setting the bench namespace's quotas failed");
            }
        }
        let status = Command::new(stratus_bin()?)
            .arg("deploy")
            .arg(&app)
            .args(["--namespace", namespace])
            .env("STRATUS_SERVER", &node.admin)
            .env("STRATUS_TOKEN", "bench")
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("deploying the hello example failed");
        }
        node.url = format!("{}/hello", node.url);
        node.wait_until_optimized()?;
        Ok(node)
    }

    /// Waits until no live function serves baseline code: a component new
    /// to the node first serves on Winch's code while Cranelift's compiles
    /// in the background, and the rows measure the code it then keeps. A
    /// node without the metric (a build before tiers) has nothing to wait
    /// for.
    pub fn wait_until_optimized(&self) -> anyhow::Result<std::time::Duration> {
        let started = Instant::now();
        let client = reqwest::blocking::Client::new();
        loop {
            let metrics = client
                .get(format!("{}/metrics", self.admin))
                .bearer_auth("bench")
                .send()
                .and_then(reqwest::blocking::Response::text)
                .context("reading /metrics")?;
            let baseline = metrics
                .lines()
                .find_map(|l| l.strip_prefix("stratus_baseline_functions "))
                .and_then(|v| v.trim().parse::<f64>().ok());
            if baseline.is_none_or(|n| n == 0.0) {
                return Ok(started.elapsed());
            }
            if started.elapsed() > std::time::Duration::from_secs(600) {
                bail!("the optimized code never replaced the baseline code");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Deploys the app described by `manifest` (written to a directory of
    /// the node's data dir named after `name`).
    pub fn deploy(&self, name: &str, manifest: &str) -> anyhow::Result<()> {
        let app = self._data.path().join(name);
        std::fs::create_dir_all(&app)?;
        std::fs::write(app.join("stratus.toml"), manifest)?;
        let status = Command::new(stratus_bin()?)
            .arg("deploy")
            .arg(&app)
            .env("STRATUS_SERVER", &self.admin)
            .env("STRATUS_TOKEN", "bench")
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("deploying {name} failed");
        }
        self.wait_until_optimized()?;
        Ok(())
    }

    /// `POST /v1/apps` of `manifest` with one component, named `file` as
    /// the manifest names it; fails on any answer but success.
    pub fn post_app(
        &self,
        client: &reqwest::blocking::Client,
        manifest: String,
        file: &str,
        component: Vec<u8>,
    ) -> anyhow::Result<()> {
        use reqwest::blocking::multipart::{Form, Part};
        let form = Form::new()
            .part("manifest", Part::text(manifest).file_name("stratus.toml"))
            .part(
                "component",
                Part::bytes(component).file_name(file.to_owned()),
            );
        let response = client
            .post(format!("{}/v1/apps", self.admin))
            .bearer_auth("bench")
            .multipart(form)
            .send()
            .context("deploying")?;
        if !response.status().is_success() {
            bail!("the deploy failed: {}", response.text().unwrap_or_default());
        }
        Ok(())
    }

    /// The node's data directory.
    pub fn data_dir(&self) -> &Path {
        self._data.path()
    }

    /// The node's resident set size in bytes.
    pub fn rss(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .context("no VmRSS in /proc/PID/status")?;
        Ok(kib * 1024)
    }
}

impl Drop for StratusNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `wasmtime serve` on the same component: the peer to compare against.
/// Install it outside the repository (`cargo install wasmtime-cli --version
/// 48.0.8 --locked`); never commit it.
pub struct WasmtimeServe {
    child: Child,
    pub url: String,
}

impl WasmtimeServe {
    pub fn start(bin: &Path, reuse: Option<u32>) -> anyhow::Result<WasmtimeServe> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr = format!("127.0.0.1:{port}");
        let mut command = Command::new(bin);
        command.args(["serve", "-Scli", "--addr", &addr]);
        if let Some(n) = reuse {
            command.arg(format!("--max-instance-reuse-count={n}"));
        }
        let child = command
            .arg(hello_component()?)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let deadline = Instant::now() + std::time::Duration::from_secs(60);
        while std::net::TcpStream::connect(&addr).is_err() {
            if Instant::now() > deadline {
                bail!("wasmtime serve did not start listening on {addr}");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Ok(WasmtimeServe {
            child,
            url: format!("http://{addr}/hello"),
        })
    }
}

impl Drop for WasmtimeServe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct RawHyper {
    child: Child,
    pub url: String,
}

impl RawHyper {
    pub fn start() -> anyhow::Result<RawHyper> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("raw-hyper")
            .stdout(Stdio::piped())
            .spawn()
            .context("starting the raw hyper server")?;
        let url = wait_for_lines(&mut child, &["listening on"])?.remove(0);
        Ok(RawHyper { child, url })
    }
}

impl Drop for RawHyper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct InstantiateResult {
    pub mean_us: f64,
    pub p50_us: f64,
    pub p99_us: f64,
}

/// Per-request instantiation (warm) and a cold start after scale to zero.
pub struct Instantiation {
    pub warm: InstantiateResult,
    pub cold: InstantiateResult,
}

fn summarize(
    mut samples: Vec<std::time::Duration>,
    total: std::time::Duration,
) -> InstantiateResult {
    samples.sort_unstable();
    let at = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    InstantiateResult {
        mean_us: total.as_secs_f64() * 1e6 / samples.len().max(1) as f64,
        p50_us: at(0.5).as_secs_f64() * 1e6,
        p99_us: at(0.99).as_secs_f64() * 1e6,
    }
}

/// Instantiates the hello component `n` times from its `ProxyPre`, each in
/// a fresh store, exactly as a request does before calling the handler.
pub fn measure_instantiate(n: u32) -> anyhow::Result<Instantiation> {
    let bytes = std::fs::read(hello_component()?)?;
    let cache = tempfile::tempdir()?;
    let runtime = Arc::new(Runtime::new(RuntimeConfig::new(cache.path()))?);
    let (component, _) = runtime.prepare("bench", &bytes)?;
    let memory: stratus_manifest::ByteSize = function_memory()
        .parse()
        .map_err(|e| anyhow::anyhow!("--memory: {e}"))?;
    let limits = FunctionLimits {
        memory: memory.0,
        timeout: std::time::Duration::from_secs(5),
        outbound: Default::default(),
    };
    let options = FunctionOptions {
        identity: FunctionIdentity::new("bench", "hello"),
        allowed_outbound: Vec::new(),
        grants: Default::default(),
        limits,
        env: Vec::new(),
        min_warm: false,
        reuse: 1,
        source: hello_component()?,
    };
    let function = Function::new(runtime, component, options);
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    tokio.block_on(async {
        for _ in 0..n.min(100) {
            function.probe_instantiate().await?;
        }
        let mut samples = Vec::with_capacity(n as usize);
        let started = Instant::now();
        for _ in 0..n {
            samples.push(function.probe_instantiate().await?);
        }
        let warm = summarize(samples, started.elapsed());

        // Cold: drop the compiled code (as the idle evictor does), then
        // instantiate — which first maps the artifact from disk again.
        let rounds = (n / 10).max(10);
        let mut samples = Vec::with_capacity(rounds as usize);
        let mut total = std::time::Duration::ZERO;
        for _ in 0..rounds {
            function.evict_if_idle(std::time::Duration::ZERO);
            let sample = function.probe_instantiate().await?;
            total += sample;
            samples.push(sample);
        }
        let cold = summarize(samples, total);
        Ok::<_, anyhow::Error>(Instantiation { warm, cold })
    })
}
