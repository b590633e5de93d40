//! The harness shared by the integration tests: builds the guest components
//! once, starts the real `stratus server` binary on ephemeral loopback ports
//! and talks to it over HTTP and through the real CLI.

#![allow(dead_code, clippy::unwrap_used)]

pub mod jetstream;
pub mod nats;
pub mod otlp;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

#[allow(unused_imports)]
pub use jetstream::{JetStream, NATS};

pub const TOKEN: &str = "test-token-0123456789";

/// Shares the two cores between tests that bound how long something takes
/// and tests that keep every core busy for many seconds (building Python
/// and JavaScript components and compiling them, compiling a huge
/// component). The end-to-end tests run two to a core, so without it a
/// latency bound would measure the neighbouring test's compiler, not the
/// node under test. A tokio lock: held across awaits, never poisoned.
static CORES: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// Held by a test whose assertions bound a latency: no [`busy`] test runs
/// meanwhile, nor another timed one.
pub async fn timed() -> tokio::sync::RwLockWriteGuard<'static, ()> {
    CORES.write().await
}

/// Held by a test that keeps the cores busy; such tests run together.
pub async fn busy() -> tokio::sync::RwLockReadGuard<'static, ()> {
    CORES.read().await
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Builds a guest workspace for wasm32-wasip2 (once per run of the tests:
/// its callers keep the answer in a `OnceLock`).
fn build_guests(workspace: &str) -> PathBuf {
    let root = repo_root();
    let manifest = root.join(workspace).join("Cargo.toml");
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--quiet",
            "--manifest-path",
        ])
        .arg(&manifest)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .status()
        .expect("run cargo to build the guests");
    assert!(status.success(), "building {} failed", manifest.display());
    root.join(workspace).join("target/wasm32-wasip2/release")
}

pub fn test_guest(name: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| build_guests("tests/guests"))
        .join(format!("{name}.wasm"))
}

/// The Spin application of tests/spin-app, built as Spin's tooling builds
/// it (`wasm32-wasip1`), once per run: its directory, holding `spin.toml`.
pub fn spin_app() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = repo_root().join("tests/spin-app");
        let status = Command::new(env!("CARGO"))
            .args(["build", "--release", "--target", "wasm32-wasip1", "--quiet"])
            .current_dir(&dir)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET")
            .status()
            .expect("run cargo to build the Spin app");
        assert!(status.success(), "building tests/spin-app failed");
        dir
    })
    .clone()
}

pub fn example_guest(name: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| build_guests("examples"))
        .join(format!("{name}.wasm"))
}

/// A running `stratus server` process, killed on drop.
pub struct Server {
    pub child: Option<Child>,
    pub gateway: String,
    pub admin: String,
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    pub http: reqwest::Client,
    /// Every line the node wrote to stdout and stderr so far.
    pub log: Arc<Mutex<Vec<String>>>,
    /// Whether its compile cache was seeded from, and goes back to, the
    /// one the test servers share.
    shares_compiled: bool,
}

impl Server {
    pub fn start() -> Server {
        Self::start_with(&[])
    }

    /// Starts a server with extra flags; `--max-instances 64` unless given
    /// (a smaller pool keeps parallel test servers light). Its compile
    /// cache starts with what other test servers compiled (see
    /// [`compile_cache`]).
    pub fn start_with(extra: &[&str]) -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = tmp.path().join("data");
        compile_cache::seed(&data_dir);
        let mut server = Self::start_in(&data_dir, extra);
        server._tmp = Some(tmp);
        server.shares_compiled = true;
        server
    }

    /// [`Server::start_with`], with variables set in the node's environment.
    pub fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = tmp.path().join("data");
        compile_cache::seed(&data_dir);
        let mut command = Command::new(env!("CARGO_BIN_EXE_stratus"));
        command.envs(env.iter().copied());
        let mut server = Self::start_command(command, &data_dir, extra);
        server._tmp = Some(tmp);
        server.shares_compiled = true;
        server
    }

    /// A server whose compile cache starts empty, for tests that count
    /// what is compiled or left in it.
    pub fn start_own_cache() -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = tmp.path().join("data");
        let mut server = Self::start_in(&data_dir, &[]);
        server._tmp = Some(tmp);
        server
    }

    /// Starts a server whose process may open at most `descriptors` files
    /// (soft and hard limit, set with util-linux's `prlimit`).
    pub fn start_with_descriptors(descriptors: u32, extra: &[&str]) -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = tmp.path().join("data");
        let mut command = Command::new("prlimit");
        command
            .arg(format!("--nofile={descriptors}:{descriptors}"))
            .arg(env!("CARGO_BIN_EXE_stratus"));
        let mut server = Self::start_command(command, &data_dir, extra);
        server._tmp = Some(tmp);
        server
    }

    /// Starts a server on an existing data dir (restart tests).
    pub fn start_in(data_dir: &Path, extra: &[&str]) -> Server {
        Self::start_command(Command::new(env!("CARGO_BIN_EXE_stratus")), data_dir, extra)
    }

    fn start_command(mut command: Command, data_dir: &Path, extra: &[&str]) -> Server {
        let mut child = command
            .arg("server")
            .arg("--data-dir")
            .arg(data_dir)
            .args(if extra.contains(&"--listen") {
                &[][..]
            } else {
                &["--listen", "127.0.0.1:0"][..]
            })
            .args(["--admin-listen", "127.0.0.1:0"])
            .args(["--admin-token", TOKEN])
            .args(if extra.contains(&"--max-instances") {
                &[][..]
            } else {
                &["--max-instances", "64"][..]
            })
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        // Forward the node's log to the test output (shown on failure) and
        // keep it for tests that search it.
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[node] {line}");
                kept.lock().unwrap().push(line);
            }
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                println!("[node stdout] {line}");
                kept.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        let (mut gateway, mut admin) = (None, None);
        let deadline = Instant::now() + Duration::from_secs(60);
        while gateway.is_none() || admin.is_none() {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("the server did not print its addresses");
            if let Some(url) = line.trim().strip_prefix("gateway:") {
                gateway = Some(url.trim().to_string());
            }
            if let Some(url) = line.trim().strip_prefix("admin:") {
                admin = Some(url.trim().to_string());
            }
        }
        Server {
            child: Some(child),
            gateway: gateway.unwrap(),
            admin: admin.unwrap(),
            data_dir: data_dir.to_path_buf(),
            _tmp: None,
            http: http_client(),
            log,
            shares_compiled: false,
        }
    }

    /// The node's output so far, one line each.
    pub fn node_log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Whether the node logs a line containing `needle` within 10 s (its
    /// output reaches the test through a pipe, a little after the fact).
    pub async fn logs(&self, needle: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self
                .log
                .lock()
                .unwrap()
                .iter()
                .any(|line| line.contains(needle))
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// POSTs a deploy form to the admin API — `manifest` and one component
    /// part named `file_name` — and returns the status and the JSON answer.
    pub async fn post_deploy(
        &self,
        manifest: &str,
        file_name: &str,
        component: Vec<u8>,
    ) -> (u16, serde_json::Value) {
        let form = reqwest::multipart::Form::new()
            .text("manifest", manifest.to_string())
            .part(
                "component",
                reqwest::multipart::Part::bytes(component).file_name(file_name.to_string()),
            );
        let response = self
            .http
            .post(self.admin_url("/v1/apps"))
            .bearer_auth(TOKEN)
            .multipart(form)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), json(response).await)
    }

    /// Runs the real CLI against this server.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_in(&repo_root(), args)
    }

    pub fn cli_in(&self, dir: &Path, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_stratus"))
            .args(args)
            .current_dir(dir)
            .env("STRATUS_SERVER", &self.admin)
            .env("STRATUS_TOKEN", TOKEN)
            .output()
            .unwrap()
    }

    /// Deploys through the CLI and asserts success.
    pub fn deploy(&self, app_dir: &Path) -> String {
        let out = self.cli(&["deploy", app_dir.to_str().unwrap()]);
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "deploy failed: {}{}",
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// Deploys through the CLI and returns the error line it printed.
    pub fn deploy_err(&self, app_dir: &Path) -> String {
        let out = self.cli(&["deploy", app_dir.to_str().unwrap()]);
        assert!(!out.status.success(), "deploy unexpectedly succeeded");
        String::from_utf8_lossy(&out.stderr).to_string()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway)
    }

    /// Sends `method` with `body` to the gateway's `path`: the status and
    /// the body as text.
    pub async fn send(&self, method: &str, path: &str, body: &[u8]) -> (u16, String) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = self
            .http
            .request(method, self.url(path))
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.unwrap()
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("{}{path}", self.admin)
    }

    /// Waits (up to 10 s) until `function` has at least `n` invocations
    /// running, as `GET /v1/functions` reports them: a condition to wait on
    /// instead of a sleep that hopes a request has arrived.
    pub async fn wait_in_flight(&self, function: &str, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (_, functions) = self.admin_get("/v1/functions").await;
            let running = functions
                .as_array()
                .into_iter()
                .flatten()
                .filter(|f| f["name"] == function)
                .filter_map(|f| f["in_flight"].as_u64())
                .sum::<u64>();
            if running >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{function} never had {n} invocations running: {functions}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits (up to 10 s) until the metric `name` reaches at least `n`.
    pub async fn metric_reaching(&self, name: &str, n: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let value = self.metric(name).await;
            if value >= n {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "{name} stayed at {value}, below {n}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The node's `/metrics` as text (the classic format).
    pub async fn metrics_text(&self) -> String {
        self.http
            .get(self.admin_url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn metric(&self, name: &str) -> u64 {
        let text = self.metrics_text().await;
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("metric {name} missing in:\n{text}"))
            .trim()
            .parse()
            .unwrap()
    }

    /// Sends SIGTERM and waits for the process to exit; returns its status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        let pid = child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if self.shares_compiled {
            compile_cache::harvest(&self.data_dir);
        }
    }
}

/// Compiled code shared by the test servers: a new server's cache is
/// seeded with hard links to what others compiled, and what a server
/// compiled is linked back when it stops. A component is then compiled
/// once per engine rather than once per server, and each node's cache
/// stays its own directory (what it deletes is only its link). Artifacts
/// are named by engine hash and component hash, and written complete
/// (temp file, rename), so a link is always to a whole artifact.
pub mod compile_cache {
    use std::path::{Path, PathBuf};

    fn shared() -> PathBuf {
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("stratus-compiled")
    }

    /// `(engine hash, file name)` of every artifact under `root`.
    fn artifacts(root: &Path) -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
        let Ok(engines) = std::fs::read_dir(root) else {
            return Vec::new();
        };
        let mut found = Vec::new();
        for engine in engines.flatten() {
            let Ok(files) = std::fs::read_dir(engine.path()) else {
                continue;
            };
            for file in files.flatten() {
                if file.path().extension().is_some_and(|e| e == "cwasm") {
                    found.push((engine.file_name(), file.file_name()));
                }
            }
        }
        found
    }

    pub fn seed(data_dir: &Path) {
        // The data directory is made as the node makes it (0700): one open
        // to others gets a warning in the node's log.
        let mut private = std::fs::DirBuilder::new();
        private.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut private, 0o700);
        let _ = private.create(data_dir);
        let cache = data_dir.join("compiled");
        for (engine, file) in artifacts(&shared()) {
            let _ = std::fs::create_dir_all(cache.join(&engine));
            let _ = std::fs::hard_link(
                shared().join(&engine).join(&file),
                cache.join(&engine).join(&file),
            );
        }
    }

    pub fn harvest(data_dir: &Path) {
        let cache = data_dir.join("compiled");
        for (engine, file) in artifacts(&cache) {
            let to = shared().join(&engine).join(&file);
            if to.exists() || std::fs::create_dir_all(shared().join(&engine)).is_err() {
                continue;
            }
            // Linked under a name of its own, then renamed: another test
            // binary seeding at the same time sees all of it or nothing.
            let temp = to.with_extension(format!("part{}", std::process::id()));
            if std::fs::hard_link(cache.join(&engine).join(&file), &temp).is_ok()
                && std::fs::rename(&temp, &to).is_err()
            {
                let _ = std::fs::remove_file(&temp);
            }
        }
    }
}

/// An app directory with a stratus.toml written by the test.
pub struct AppDir {
    pub dir: tempfile::TempDir,
}

impl AppDir {
    pub fn new(manifest: &str) -> AppDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("stratus.toml"), manifest).unwrap();
        AppDir { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.dir.path().join(name), bytes).unwrap();
    }
}

/// A manifest with one function named `name` serving the testbed component.
pub fn testbed_app(app: &str, function: &str, routes: &[&str], extra: &str) -> AppDir {
    let routes: Vec<String> = routes.iter().map(|r| format!("\"{r}\"")).collect();
    AppDir::new(&format!(
        "[app]\nname = \"{app}\"\n\n[[function]]\nname = \"{function}\"\ncomponent = \"{}\"\nroutes = [{}]\n{extra}\n",
        test_guest("testbed").display(),
        routes.join(", ")
    ))
}

/// A manifest with one function named like its app serving the hostile
/// guest (tests/guests/hostile) at `route`, with `extra` manifest lines.
pub fn hostile_app(app: &str, route: &str, extra: &str) -> AppDir {
    AppDir::new(&format!(
        "[app]\nname = \"{app}\"\n\n[[function]]\nname = \"{app}\"\ncomponent = \"{}\"\nroutes = [\"{route}\"]\n{extra}\n",
        test_guest("hostile").display()
    ))
}

pub async fn json(response: reqwest::Response) -> serde_json::Value {
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

impl Server {
    /// GET on the admin API with the token: status and JSON body.
    pub async fn admin_get(&self, path: &str) -> (u16, serde_json::Value) {
        let response = self
            .http
            .get(self.admin_url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), json(response).await)
    }

    /// Polls `GET /v1/usage` until the total request count reaches `n`
    /// (records are written in batches, off the request path).
    pub async fn usage_reaching(&self, query: &str, n: u64) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, usage) = self.admin_get(&format!("/v1/usage{query}")).await;
            assert_eq!(status, 200, "{usage}");
            let total = usage["total"]["requests"].as_u64().unwrap();
            if total >= n || Instant::now() > deadline {
                return usage;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls `GET /v1/invocations/{id}` until the invocation is recorded.
    pub async fn invocation(&self, id: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, detail) = self.admin_get(&format!("/v1/invocations/{id}")).await;
            if status == 200 {
                return detail;
            }
            assert_eq!(status, 404, "{detail}");
            assert!(Instant::now() < deadline, "invocation {id} never recorded");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills the process with SIGKILL: no chance to flush anything.
    pub fn kill_9(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

/// The invocation id header of a gateway response.
pub fn invocation_id(response: &reqwest::Response) -> String {
    response.headers()["x-stratus-invocation-id"]
        .to_str()
        .unwrap()
        .to_string()
}

/// Polls `GET /v1/events/{id}` until the event is settled.
pub async fn settled(server: &Server, id: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, event) = server.admin_get(&format!("/v1/events/{id}")).await;
        assert_eq!(status, 200, "{event}");
        let state = event["state"].as_str().unwrap().to_string();
        if state == "succeeded" || state == "dead" {
            return event;
        }
        assert!(Instant::now() < deadline, "event never settled: {event}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn submit(server: &Server, function: &str, path: &str, body: &str) -> serde_json::Value {
    let response = server
        .http
        .post(server.admin_url(&format!(
            "/v1/functions/{function}/invocations?mode=async&path={path}"
        )))
        .bearer_auth(TOKEN)
        .header("content-type", "text/plain")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let accepted = json(response).await;
    assert_eq!(
        location,
        format!("/v1/events/{}", accepted["id"].as_str().unwrap())
    );
    accepted
}

/// Publishes to `app`'s named queue through the admin API.
pub async fn publish(
    server: &Server,
    app: &str,
    queue: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, serde_json::Value) {
    let mut request = server
        .http
        .post(server.admin_url(&format!("/v1/apps/{app}/queues/{queue}/events")))
        .bearer_auth(TOKEN)
        .body(body.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), json(response).await)
}

/// Polls `GET /v1/events/{id}` until the event exists (a broker's message
/// is stored a moment after it is published) and is settled.
pub async fn arrived(server: &Server, id: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, event) = server.admin_get(&format!("/v1/events/{id}")).await;
        if status == 200 {
            return settled(server, id).await;
        }
        assert!(
            Instant::now() < deadline,
            "event {id} never arrived: {status} {event}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A function's newest events (any state), newest first.
pub async fn function_events(server: &Server, function: &str) -> Vec<serde_json::Value> {
    let (status, body) = server
        .admin_get(&format!("/v1/functions/{function}/events?limit=10000"))
        .await;
    assert_eq!(status, 200, "{body}");
    body["events"].as_array().unwrap().clone()
}

/// Polls a function's dead letters until one has `id`.
pub async fn dead_letter(server: &Server, function: &str, id: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = server
            .admin_get(&format!("/v1/functions/{function}/dead-letters"))
            .await;
        assert_eq!(status, 200, "{body}");
        if let Some(found) = body["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == id)
        {
            return found.clone();
        }
        assert!(Instant::now() < deadline, "no dead letter {id}: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `/readyz` until `check` holds for its body.
pub async fn readyz_until(
    server: &Server,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let body: serde_json::Value = server
            .http
            .get(server.admin_url("/readyz"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if check(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "/readyz never matched: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `/readyz` shows a trigger running (subscribed, or for cron
/// scheduled).
pub async fn a_trigger_running(server: &Server) {
    readyz_until(server, |b| {
        b["triggers"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["state"] == "running"))
    })
    .await;
}

/// A name no other test run uses (brokers outlive test runs).
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    )
}

/// Publishes QoS 1 messages to Mosquitto and waits for their PUBACKs.
pub async fn mqtt_publish(topic: &str, payloads: &[&str]) {
    let mut options = rumqttc::MqttOptions::new(unique("test-pub-"), "127.0.0.1", 1883);
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut events) = rumqttc::AsyncClient::new(options, 64);
    for payload in payloads {
        client
            .publish(
                topic,
                rumqttc::QoS::AtLeastOnce,
                false,
                payload.as_bytes().to_vec(),
            )
            .await
            .unwrap();
    }
    // Drive the connection until every publish is acknowledged.
    let mut acked = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while acked < payloads.len() {
        assert!(Instant::now() < deadline, "the broker did not acknowledge");
        if let Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) = events.poll().await {
            acked += 1;
        }
    }
}

/// Has the testbed route `/pub/publish?{query}` POST `data` (as JSON) to
/// `http://queue.svc/…` from inside the function: the status and body the
/// guest got back (502 and the error code if the request itself failed).
pub async fn publish_from_guest(server: &Server, query: &str, data: &str) -> (u16, String) {
    let response = server
        .http
        .post(server.url(&format!("/pub/publish?{query}")))
        .header("content-type", "application/json")
        .body(data.to_string())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// Runs `stratus secrets set APP NAME` with `value` on stdin.
pub fn set_secret(server: &Server, app: &str, name: &str, value: &str) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stratus"))
        .args(["secrets", "set", app, name])
        .env("STRATUS_SERVER", &server.admin)
        .env("STRATUS_TOKEN", TOKEN)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{value}\n").as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// `stratus logs FUNCTION -f` against a node, its output lines readable
/// as they come; killed when dropped.
pub struct LogFollower {
    child: Child,
    pub lines: std::sync::mpsc::Receiver<String>,
}

impl LogFollower {
    pub fn start(server: &Server, function: &str) -> LogFollower {
        let mut child = Command::new(env!("CARGO_BIN_EXE_stratus"))
            .args(["logs", function, "-f"])
            .env("STRATUS_SERVER", &server.admin)
            .env("STRATUS_TOKEN", TOKEN)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        LogFollower { child, lines }
    }
}

impl Drop for LogFollower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Makes ring the process's TLS provider, once: reqwest is built without
/// one of its own, and every client needs it, even for plain HTTP.
pub fn tls_provider() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// An HTTP client for the tests.
pub fn http_client() -> reqwest::Client {
    tls_provider();
    reqwest::Client::new()
}

/// Sets `examples/shop`'s stock of `sku` through its inventory route.
pub async fn set_stock(server: &Server, sku: &str, stock: u64) {
    let response = server
        .http
        .put(server.url(&format!("/shop/inventory/{sku}")))
        .body(stock.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        json(response).await,
        serde_json::json!({ "sku": sku, "stock": stock })
    );
}

/// Starts `stratus server` on loopback ports (unless `args` names them)
/// and a fresh data directory with `args` and `env` (`None` removes a variable), expecting it to
/// refuse to start: answers what it wrote to stderr. A node that starts
/// anyway is killed after 60 s and fails the test, rather than hanging it.
pub fn server_refuses(args: &[&str], env: &[(&str, Option<&str>)]) -> String {
    let data = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_stratus"));
    command.arg("server");
    for flag in ["--listen", "--admin-listen"] {
        if !args.contains(&flag) {
            command.args([flag, "127.0.0.1:0"]);
        }
    }
    command
        .arg("--data-dir")
        .arg(data.path().join("data"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (name, value) in env {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    let mut child = command.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the node started with {args:?} {env:?}; it should have refused");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut error = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut error).unwrap();
    assert!(!status.success(), "{args:?} {env:?}: {error}");
    error
}
