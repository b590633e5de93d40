//! Cluster mode on loopback (issue 13): how long a deploy through one node
//! takes to be served by the others, what following the cluster costs the
//! request path, and what losing one NATS server of three does.
//!
//! Three NATS servers form a JetStream cluster and three `stratus server`
//! processes join it with `--cluster-replicas 3`. The app is the testbed
//! guest, whose answers carry its env var WHO as `x-who`: every deploy
//! sets a new WHO, so a node serves the new version exactly when it
//! answers with it. Each part prints its table as soon as it is measured.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::fmt_us;
use crate::load::{self, LoadResult, LoadSpec};
use crate::nats::{self, NatsCluster};
use crate::targets::{StratusNode, stratus_bin, test_component};

pub struct Settings {
    pub nats_server: Option<PathBuf>,
    pub deploys: usize,
    pub load: LoadSpec,
    pub rounds: usize,
}

/// The gateway path every node answers for the app.
const PATH: &str = "/bench/echo";

/// Load on all three nodes right after a NATS server was killed.
const FAILOVER_LOAD: Duration = Duration::from_secs(5);

/// `$STRATUS_SECRETS_KEY` of every node: the nodes of a cluster share
/// their secrets, so they need one key (32 bytes in base64).
const SECRETS_KEY: &str = "c3RyYXR1cy1iZW5jaC1jbHVzdGVyLXNlY3JldC1rZXk=";

/// The running cluster and what each part needs to talk to it.
struct Bench {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    component: Vec<u8>,
    nodes: Vec<StratusNode>,
    /// `PATH` on each node's gateway.
    at: Vec<String>,
}

/// Three NATS servers in one JetStream cluster and three `stratus server`
/// nodes joined to it with `--cluster-replicas 3`, all on loopback. The
/// fields drop in order: the nodes are killed before the servers.
pub struct Cluster {
    pub nodes: Vec<StratusNode>,
    pub nats: NatsCluster,
    /// What the NATS server says it is, e.g. `nats-server: v2.15.1`.
    pub version: String,
    /// The `stratus` binary the nodes run.
    pub bin: PathBuf,
}

impl Cluster {
    /// Starts the servers from `nats_server` (default: the pinned binary),
    /// waits until JetStream takes a stream with a replica on each, then
    /// starts the nodes.
    pub fn start(
        nats_server: Option<&Path>,
        runtime: &tokio::runtime::Runtime,
    ) -> anyhow::Result<Cluster> {
        let nats_bin = match nats_server {
            Some(path) => path.to_path_buf(),
            None => nats::pinned_binary()?,
        };
        let version = nats::version(&nats_bin)?;
        eprintln!("cluster: starting 3 NATS servers ({version})…");
        let nats = NatsCluster::start(&nats_bin, 3)?;
        runtime.block_on(nats.wait_for_jetstream())?;
        let urls = nats.urls.join(",");
        let flags = [
            "--cluster",
            &urls,
            "--cluster-name",
            "bench",
            "--cluster-replicas",
            "3",
        ];
        let bin = stratus_bin()?;
        eprintln!("cluster: starting 3 Stratus nodes of {}…", bin.display());
        let nodes = (0..3)
            .map(|_| {
                StratusNode::start_empty_env(&bin, &flags, &[("STRATUS_SECRETS_KEY", SECRETS_KEY)])
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Cluster {
            nodes,
            nats,
            version,
            bin,
        })
    }
}

pub fn run(settings: &Settings) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let Cluster {
        nodes,
        mut nats,
        version,
        bin,
    } = Cluster::start(settings.nats_server.as_deref(), &runtime)?;
    let bench = Bench {
        runtime,
        // No request of the benchmark may hang it for good.
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?,
        component: std::fs::read(test_component("testbed")?)?,
        at: nodes.iter().map(|n| format!("{}{PATH}", n.url)).collect(),
        nodes,
    };
    let load = &settings.load;
    println!(
        "`{}` ({} cores); {version}; 3 NATS servers and 3 nodes on loopback, `--cluster-replicas 3`; the testbed guest at `{PATH}`. {} deploys through node 1; load: {} connections, {} threads, {} s measured after {} s warm-up, median of {} rounds.\n",
        bin.display(),
        std::thread::available_parallelism().map_or(0, usize::from),
        settings.deploys,
        load.connections,
        load.threads,
        load.duration.as_secs_f64(),
        load.warmup.as_secs_f64(),
        settings.rounds,
    );
    bench.propagation(settings.deploys)?;
    bench.overhead(load, settings.rounds, &format!("v{}", settings.deploys))?;
    bench.failover(&mut nats, load.connections)
}

impl Bench {
    /// Part 1: deploys through node 1, each timed until nodes 2 and 3
    /// answer with it. An unmeasured first deploy creates the app and has
    /// every node compile the component, so each measured deploy is a new
    /// version of a live app, as in production.
    fn propagation(&self, deploys: usize) -> anyhow::Result<()> {
        self.runtime.block_on(async {
            self.deploy_ok(&self.nodes[0].admin, "v0").await?;
            let now = Instant::now();
            for url in &self.at {
                serves(&self.client, url, "v0", now).await?;
            }
            anyhow::Ok(())
        })?;
        eprintln!("cluster: {deploys} deploys through node 1…");
        let mut samples: [Vec<Duration>; 3] = Default::default();
        for n in 1..=deploys {
            let who = format!("v{n}");
            let [deploy, two, three] = &mut samples;
            self.runtime.block_on(async {
                let sent = Instant::now();
                self.deploy_ok(&self.nodes[0].admin, &who).await?;
                let acked = Instant::now();
                deploy.push(acked - sent);
                let (a, b) = tokio::try_join!(
                    serves(&self.client, &self.at[1], &who, acked),
                    serves(&self.client, &self.at[2], &who, acked)
                )?;
                two.push(a);
                three.push(b);
                anyhow::Ok(())
            })?;
        }
        println!("| deploy through node 1 ({deploys} deploys) | p50 | p99 | max |");
        println!("| --- | ---: | ---: | ---: |");
        let names = [
            "`POST /v1/apps` → 201",
            "201 → node 2 serves the new version",
            "201 → node 3 serves the new version",
        ];
        for (name, mut v) in names.into_iter().zip(samples) {
            v.sort_unstable();
            let f = |p: f64| fmt_us(percentile(&v, p).as_secs_f64() * 1e6);
            println!("| {name} | {} | {} | {} |", f(0.5), f(0.99), f(1.0));
        }
        Ok(())
    }

    /// Part 2: the request path of node 1 against a node on its own (no
    /// `--cluster`) serving the same app, taking turns round by round.
    fn overhead(&self, load: &LoadSpec, rounds: usize, who: &str) -> anyhow::Result<()> {
        let single = StratusNode::start_empty(&[])?;
        let alone = format!("{}{PATH}", single.url);
        self.runtime.block_on(async {
            self.deploy_ok(&single.admin, who).await?;
            serves(&self.client, &alone, who, Instant::now()).await
        })?;
        let targets = [&self.at[0], &alone];
        let mut runs: [Vec<LoadResult>; 2] = Default::default();
        let rounds = rounds.max(1);
        for round in 1..=rounds {
            // Each round starts with the other target.
            for i in [round % 2, (round + 1) % 2] {
                eprintln!("cluster: round {round}/{rounds}: {}…", targets[i]);
                runs[i].push(load::run(targets[i], load)?);
            }
        }
        drop(single);
        let [cluster, alone] = runs.map(|mut runs| {
            runs.sort_by(|a, b| a.rps.total_cmp(&b.rps));
            runs[runs.len() / 2]
        });
        println!("\n| target (testbed `{PATH}`) | requests/s | p50 | p99 | errors |");
        println!("| --- | ---: | ---: | ---: | ---: |");
        for (name, r) in [
            ("node 1 of the cluster", cluster),
            ("a node on its own (no `--cluster`)", alone),
        ] {
            println!(
                "| {name} | {:.0} | {} | {} | {} |",
                r.rps,
                fmt_us(r.p50_us),
                fmt_us(r.p99_us),
                r.errors
            );
        }
        println!(
            "\nCluster mode: {:.1}% of the single node's requests/s, p50 {:.2}×.",
            100.0 * cluster.rps / alone.rps.max(1.0),
            cluster.p50_us / alone.p50_us.max(f64::MIN_POSITIVE)
        );
        Ok(())
    }

    /// Part 3: `kill -9` of the NATS server named first, then load on all
    /// three nodes for `FAILOVER_LOAD` while a deploy through node 2 is
    /// retried; both start at the kill.
    fn failover(&self, nats: &mut NatsCluster, connections: usize) -> anyhow::Result<()> {
        eprintln!("cluster: kill -9 of the first NATS server…");
        nats.kill(0);
        let killed = Instant::now();
        let spec = LoadSpec {
            duration: FAILOVER_LOAD,
            warmup: Duration::ZERO,
            connections: (connections / 3).max(1),
            threads: 1,
        };
        let (loads, redeployed) = std::thread::scope(|s| {
            let loads: Vec<_> = self
                .at
                .iter()
                .map(|url| s.spawn(|| load::run(url, &spec)))
                .collect();
            let redeployed = self.runtime.block_on(self.redeploy(killed));
            let loads: Vec<Result<LoadResult, String>> = loads
                .into_iter()
                .map(|h| match h.join() {
                    Ok(r) => r.map_err(|e| format!("{e:#}")),
                    Err(_) => Err("the load thread panicked".to_string()),
                })
                .collect();
            (loads, redeployed)
        });
        println!("\n| after `kill -9` of the first of 3 NATS servers | |");
        println!("| --- | ---: |");
        for (i, r) in loads.iter().enumerate() {
            let cell = match r {
                Ok(r) => format!(
                    "{:.0} requests, **{} failed**",
                    r.rps * FAILOVER_LOAD.as_secs_f64(),
                    r.errors
                ),
                Err(e) => format!("load failed: {e}"),
            };
            println!(
                "| node {}: {} connections for the next {} s | {cell} |",
                i + 1,
                spec.connections,
                FAILOVER_LOAD.as_secs()
            );
        }
        let (acked, refused, served) = redeployed?;
        println!(
            "| deploy through node 2 acknowledged (retried every 50 ms on 503) | {} after the kill ({refused} × 503 before) |",
            fmt_us(acked.as_secs_f64() * 1e6)
        );
        println!(
            "| node 3 serves that version | {} after the 201 |",
            fmt_us(served.as_secs_f64() * 1e6)
        );
        Ok(())
    }

    /// Deploys through node 2 until it is acknowledged, then waits for node
    /// 3 to serve it: (kill → 201, deploys answered 503 before, 201 → served).
    async fn redeploy(&self, killed: Instant) -> anyhow::Result<(Duration, usize, Duration)> {
        let mut refused = 0;
        loop {
            match self.deploy(&self.nodes[1].admin, "failover").await? {
                (201, _) => break,
                (503, _) if killed.elapsed() < Duration::from_secs(60) => refused += 1,
                (status, answer) => {
                    bail!("deploy through node 2 after the kill: {status} {answer}")
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let acked = Instant::now();
        let served = serves(&self.client, &self.at[2], "failover", acked).await?;
        Ok((acked - killed, refused, served))
    }

    /// POSTs the app with `WHO = who` through `admin`: the status and the
    /// answer.
    async fn deploy(&self, admin: &str, who: &str) -> anyhow::Result<(u16, String)> {
        let manifest = format!(
            "[app]\nname = \"bench\"\n\n[[function]]\nname = \"api\"\ncomponent = \"testbed.wasm\"\nroutes = [\"/bench/...\"]\nenv = {{ WHO = \"{who}\" }}\n"
        );
        let component = reqwest::multipart::Part::bytes(self.component.clone());
        let form = reqwest::multipart::Form::new()
            .text("manifest", manifest)
            .part("component", component.file_name("testbed.wasm"));
        let response = self
            .client
            .post(format!("{admin}/v1/apps"))
            .bearer_auth("bench")
            .multipart(form)
            .send()
            .await
            .with_context(|| format!("deploying {who} through {admin}"))?;
        let status = response.status().as_u16();
        Ok((status, response.text().await.unwrap_or_default()))
    }

    async fn deploy_ok(&self, admin: &str, who: &str) -> anyhow::Result<()> {
        match self.deploy(admin, who).await? {
            (201, _) => Ok(()),
            (status, answer) => bail!("deploying {who} through {admin}: {status} {answer}"),
        }
    }
}

/// Asks `url` every millisecond until it answers 200 with `x-who: who`;
/// how long after `since` that answer came. Gives up 30 s after `since`.
async fn serves(
    client: &reqwest::Client,
    url: &str,
    who: &str,
    since: Instant,
) -> anyhow::Result<Duration> {
    loop {
        if let Ok(response) = client.get(url).send().await {
            let took = since.elapsed();
            let new = response.status() == 200
                && response
                    .headers()
                    .get("x-who")
                    .is_some_and(|v| v.as_bytes() == who.as_bytes());
            // Read to the end, so the connection is kept for the next ask.
            let _ = response.bytes().await;
            if new {
                return Ok(took);
            }
        }
        if since.elapsed() > Duration::from_secs(30) {
            bail!("{url} did not serve {who} within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(i).copied().unwrap_or_default()
}
