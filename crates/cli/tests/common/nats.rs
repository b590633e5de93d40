//! NATS servers a test starts, kills and restarts itself: one server, or a
//! JetStream cluster of several on loopback. The binary is the pinned
//! release `scripts/nats-server.sh` installs (`STRATUS_TEST_NATS_SERVER`,
//! set by scripts/test.sh; found by running the script otherwise).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::repo_root;

fn binary() -> &'static PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        if let Some(path) = std::env::var_os("STRATUS_TEST_NATS_SERVER") {
            return PathBuf::from(path);
        }
        let out = Command::new("bash")
            .arg(repo_root().join("scripts/nats-server.sh"))
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/nats-server.sh");
        assert!(out.status.success(), "scripts/nats-server.sh failed");
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Member {
    port: u16,
    args: Vec<String>,
    child: Option<Child>,
}

impl Member {
    fn spawn(&mut self) {
        let log = std::fs::File::create(format!("{}.log", self.args[self.args.len() - 1])).unwrap();
        self.child = Some(
            Command::new(binary())
                .args(&self.args)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
    }
}

/// NATS servers with JetStream on loopback, killed when dropped.
pub struct NatsServers {
    members: Vec<Member>,
    _dir: tempfile::TempDir,
}

impl NatsServers {
    /// `n` servers; with more than one, a JetStream cluster whose streams
    /// may keep up to `n` replicas. Returns once JetStream answers.
    pub async fn start(n: usize) -> NatsServers {
        let dir = tempfile::tempdir().unwrap();
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let routes: Vec<String> = ports
            .iter()
            .map(|(_, cluster)| format!("nats://127.0.0.1:{cluster}"))
            .collect();
        let members = ports
            .iter()
            .enumerate()
            .map(|(i, (port, cluster))| {
                let store = dir.path().join(format!("n{i}"));
                let mut args: Vec<String> = vec![
                    "-a".into(),
                    "127.0.0.1".into(),
                    "-p".into(),
                    port.to_string(),
                    "-js".into(),
                    "-n".into(),
                    format!("n{i}"),
                ];
                if n > 1 {
                    args.extend([
                        "--cluster_name".into(),
                        "stratus-test".into(),
                        "--cluster".into(),
                        format!("nats://127.0.0.1:{cluster}"),
                        "--routes".into(),
                        routes.join(","),
                    ]);
                }
                args.extend(["-sd".into(), store.display().to_string()]);
                Member {
                    port: *port,
                    args,
                    child: None,
                }
            })
            .collect();
        let mut servers = NatsServers { members, _dir: dir };
        for member in &mut servers.members {
            member.spawn();
        }
        servers.wait_for_jetstream(n).await;
        servers
    }

    /// Every server's URL, comma-separated: what `--cluster` takes.
    pub fn urls(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("nats://127.0.0.1:{}", m.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `kill -9` of server `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts server `i` again on its port with its store.
    pub fn restart(&mut self, i: usize) {
        self.members[i].spawn();
    }

    /// Waits until a stream with `replicas` copies can be created: the
    /// servers found each other and elected a JetStream leader.
    pub async fn wait_for_jetstream(&self, replicas: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = String::new();
        while Instant::now() < deadline {
            match self.probe(replicas).await {
                Ok(()) => return,
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("JetStream at {} never became ready: {last}", self.urls());
    }

    async fn probe(&self, replicas: usize) -> Result<(), String> {
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(1))
            .connect(
                self.urls()
                    .split(',')
                    .map(|url| url.parse::<async_nats::ServerAddr>().unwrap())
                    .collect::<Vec<_>>(),
            )
            .await
            .map_err(|e| e.to_string())?;
        let api = |subject: String, body: Value| {
            let client = client.clone();
            async move {
                let reply = tokio::time::timeout(
                    Duration::from_secs(3),
                    client.request(subject, body.to_string().into()),
                )
                .await
                .map_err(|_| "no answer".to_string())?
                .map_err(|e| e.to_string())?;
                let answer: Value =
                    serde_json::from_slice(&reply.payload).map_err(|e| e.to_string())?;
                match answer.get("error") {
                    Some(error) => Err(error.to_string()),
                    None => Ok(answer),
                }
            }
        };
        let name = format!("probe_{}", std::process::id());
        api(
            format!("$JS.API.STREAM.CREATE.{name}"),
            json!({ "name": name, "subjects": [format!("probe.{name}")], "num_replicas": replicas, "storage": "memory" }),
        )
        .await?;
        api(format!("$JS.API.STREAM.DELETE.{name}"), json!({})).await?;
        Ok(())
    }
}

impl Drop for NatsServers {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}
