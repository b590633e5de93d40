//! NATS servers the cluster benchmark starts and kills itself: a
//! JetStream cluster on loopback, run from the pinned binary the cluster
//! tests use (`scripts/nats-server.sh`) unless told another.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};

use crate::targets::repo_root;

/// The NATS server `scripts/nats-server.sh` installs (the version the
/// cluster tests pin), whose path it prints.
pub fn pinned_binary() -> anyhow::Result<PathBuf> {
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/nats-server.sh"))
        .stderr(Stdio::inherit())
        .output()
        .context("running scripts/nats-server.sh")?;
    if !out.status.success() {
        bail!("scripts/nats-server.sh failed; pass --nats-server PATH");
    }
    Ok(PathBuf::from(String::from_utf8(out.stdout)?.trim()))
}

/// What `bin --version` prints, e.g. `nats-server: v2.15.1`.
pub fn version(bin: &Path) -> anyhow::Result<String> {
    let out = Command::new(bin)
        .arg("--version")
        .output()
        .with_context(|| format!("running {} --version", bin.display()))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// NATS servers with JetStream on loopback, routed into one cluster, each
/// storing into a temporary directory; killed (then the directory removed)
/// when dropped, so an error anywhere leaves nothing running.
pub struct NatsCluster {
    servers: Vec<Option<Child>>,
    /// Each server's client URL.
    pub urls: Vec<String>,
    _dir: tempfile::TempDir,
}

impl NatsCluster {
    pub fn start(bin: &Path, n: usize) -> anyhow::Result<NatsCluster> {
        let free_port = || -> anyhow::Result<u16> {
            Ok(std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port())
        };
        let ports = (0..n)
            .map(|_| Ok((free_port()?, free_port()?)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let routes: Vec<String> = ports
            .iter()
            .map(|(_, route)| format!("nats://127.0.0.1:{route}"))
            .collect();
        let mut cluster = NatsCluster {
            servers: Vec::new(),
            urls: ports
                .iter()
                .map(|(port, _)| format!("nats://127.0.0.1:{port}"))
                .collect(),
            _dir: tempfile::tempdir()?,
        };
        for (i, (port, route)) in ports.iter().enumerate() {
            let store = cluster._dir.path().join(format!("n{i}"));
            let log = std::fs::File::create(store.with_extension("log"))?;
            let child = Command::new(bin)
                .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js"])
                .args(["-n", &format!("n{i}"), "--cluster_name", "stratus-bench"])
                .args(["--cluster", &format!("nats://127.0.0.1:{route}")])
                .args(["--routes", &routes.join(",")])
                .arg("-sd")
                .arg(&store)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .with_context(|| format!("starting {}", bin.display()))?;
            cluster.servers.push(Some(child));
        }
        Ok(cluster)
    }

    /// `kill -9` of server `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.servers.get_mut(i).and_then(Option::take) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits (up to 30 s) until a stream with a replica on every server can
    /// be created: the servers found each other and elected a leader.
    pub async fn wait_for_jetstream(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.probe().await {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() > deadline => {
                    return Err(e.context("JetStream never became ready"));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    async fn probe(&self) -> anyhow::Result<()> {
        let addrs = self
            .urls
            .iter()
            .map(|url| url.parse::<async_nats::ServerAddr>())
            .collect::<Result<Vec<_>, _>>()?;
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(1))
            .connect(addrs)
            .await?;
        let name = format!("probe_{}", std::process::id());
        let create = serde_json::json!({
            "name": name, "subjects": [format!("probe.{name}")],
            "num_replicas": self.servers.len(), "storage": "memory",
        });
        for (subject, body) in [
            (format!("$JS.API.STREAM.CREATE.{name}"), create),
            (
                format!("$JS.API.STREAM.DELETE.{name}"),
                serde_json::json!({}),
            ),
        ] {
            let reply = tokio::time::timeout(
                Duration::from_secs(3),
                client.request(subject, body.to_string().into()),
            )
            .await
            .map_err(|_| anyhow!("JetStream did not answer"))??;
            let answer: serde_json::Value = serde_json::from_slice(&reply.payload)?;
            if let Some(error) = answer.get("error") {
                bail!("JetStream: {error}");
            }
        }
        Ok(())
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.servers.len() {
            self.kill(i);
        }
    }
}
