//! `stratus-bench`: measures the gateway the way a user would see it.
//!
//! It starts the real `stratus server` binary (release build) with the hello
//! example deployed and a raw hyper hello-world server as the ceiling, each
//! in its own process, drives both with the same closed-loop HTTP/1.1 load
//! (keep-alive connections on loopback), and measures per-request
//! instantiation in-process. It prints a Markdown table for
//! `docs/benchmarks.md`. This is a benchmark program, not a test: it
//! asserts nothing and its numbers depend on the machine.

mod capabilities;
mod cluster;
mod cluster_events;
mod density;
mod events;
mod first_answer;
mod load;
mod nats;
mod raw;
mod scrape;
mod soak;
mod targets;

use std::time::Duration;

use clap::{Parser, Subcommand};

/// The rows the summary compares.
const FRESH: &str = "Stratus gateway, hello, fresh instance per request (default)";
const UNMETERED: &str = "Stratus gateway, hello, fresh instance, `--no-metering`";
const REUSED: &str = "Stratus gateway, hello, `reuse = 128`";
const RAW: &str = "raw hyper hello world (ceiling)";
const WASMTIME_FRESH: &str = "wasmtime serve -Scli (fresh instance per request)";
const WASMTIME_REUSED: &str = "wasmtime serve -Scli --max-instance-reuse-count=128";

/// The row of the `--baseline` build.
const BASELINE: &str = "baseline build, hello, fresh instance per request (default)";

#[derive(Debug, Parser)]
#[command(name = "stratus-bench")]
struct Args {
    /// Seconds of measured load per target and round.
    #[arg(long, default_value_t = 5)]
    duration: u64,
    /// Rounds over all targets; each row reports the median round.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Seconds of unmeasured warm-up per target and round.
    #[arg(long, default_value_t = 1)]
    warmup: u64,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Load-generator threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Instantiations for the per-request instantiate measurement.
    #[arg(long, default_value_t = 5000)]
    instantiations: u32,
    /// Also measure `wasmtime serve` (this binary of wasmtime-cli 48.0.8) on
    /// the same component, with a fresh instance per request and with
    /// `--max-instance-reuse-count=128`.
    #[arg(long)]
    wasmtime: Option<std::path::PathBuf>,
    /// Also measure another build of `stratus` (e.g. the last release) with
    /// the default variant, to compare two builds in one run.
    #[arg(long)]
    baseline: Option<std::path::PathBuf>,
    /// Measure this component instead of the hello example (it must
    /// export `wasi:http/incoming-handler` and import nothing `wasmtime
    /// serve` lacks), e.g. a Python or JavaScript function.
    #[arg(long)]
    component: Option<std::path::PathBuf>,
    /// The memory cap of the function under load (with --component).
    #[arg(long, default_value = "16MiB", requires = "component")]
    memory: String,
    /// A flag for every Stratus node the bench starts, after its own
    /// (repeatable), e.g. `--node-arg=--keep-resident=32MiB`.
    #[arg(long, allow_hyphen_values = true)]
    node_arg: Vec<String>,
    #[command(subcommand)]
    mode: Option<Mode>,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Internal: serve a raw hyper hello world and print its address.
    RawHyper,
    /// Drive load at one URL and print its row (for profiling a node).
    Load { url: String },
    /// Async invocations through the durable queue to the hello function.
    Events {
        /// Events to submit.
        #[arg(long, default_value_t = 20000)]
        count: usize,
        /// How events arrive: `api` (async invocations over the admin
        /// API) or `nats` (a core NATS subject with a trigger).
        #[arg(long, default_value = "api")]
        via: String,
    },
    /// Deploy → first 200 of hello and the Python and JavaScript examples
    /// on a fresh node, tiered and not, and req/s once optimized code
    /// serves (`--rounds` nodes each; `--duration` seconds of load).
    FirstAnswer {
        /// Only the components whose name contains this (e.g. `python`).
        #[arg(long)]
        only: Option<String>,
    },
    /// Key-value gets and sets from inside a function (SQLite and Redis),
    /// and what a `.svc` call between functions adds.
    Capabilities,
    /// Deploy many functions: deploy time, idle RSS, random-request latency.
    Density {
        /// Function counts to measure, each on a fresh node.
        #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
        functions: Vec<usize>,
        /// Requests to randomly chosen functions after they went idle.
        #[arg(long, default_value_t = 2000)]
        requests: usize,
    },
    /// Cluster mode on loopback (3 NATS servers, 3 nodes): deploy
    /// propagation, the request path against a node on its own, and the
    /// loss of one NATS server.
    Cluster {
        /// Deploys through node 1, each timed until nodes 2 and 3 serve it.
        #[arg(long, default_value_t = 30)]
        deploys: usize,
        /// The nats-server binary (default: the pinned one that
        /// `scripts/nats-server.sh` installs and prints).
        #[arg(long)]
        nats_server: Option<std::path::PathBuf>,
    },
    /// What `/metrics` costs with many functions, each with its series:
    /// body size and scrape time in both formats.
    Scrape {
        /// Functions deployed and called.
        #[arg(long, default_value_t = 1000)]
        functions: usize,
        /// Scrapes timed per format.
        #[arg(long, default_value_t = 200)]
        scrapes: usize,
    },
    /// Minutes of load on one fresh-instance function with a side stream
    /// of traps, timeouts, large allocations and bodies: RSS, disk and
    /// answers over time.
    Soak {
        /// How long.
        #[arg(long, default_value_t = 30)]
        minutes: u64,
        /// Seconds between samples.
        #[arg(long, default_value_t = 30)]
        every: u64,
        /// The node's `--ledger-max-size`.
        #[arg(long, default_value = "1GiB")]
        ledger_max_size: String,
    },
    /// Async invocations through a cluster's JetStream queue (3 NATS
    /// servers, 3 nodes, submitted round-robin) against a node on its own
    /// (SQLite), one after the other; `--connections` clients submit.
    ClusterEvents {
        /// Events to submit to each.
        #[arg(long, default_value_t = 20000)]
        count: usize,
        /// The nats-server binary (default: the pinned one that
        /// `scripts/nats-server.sh` installs and prints).
        #[arg(long)]
        nats_server: Option<std::path::PathBuf>,
    },
}

impl Args {
    /// The closed-loop load the flags describe.
    fn load_spec(&self) -> load::LoadSpec {
        load::LoadSpec {
            duration: Duration::from_secs(self.duration),
            warmup: Duration::from_secs(self.warmup),
            connections: self.connections,
            threads: self.threads,
        }
    }
}

fn main() -> anyhow::Result<()> {
    // reqwest is built without a TLS provider of its own (see the
    // workspace's Cargo.toml): ring, installed before any client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    if let Some(component) = &args.component {
        targets::set_component(component.clone(), args.memory.clone())?;
        println!("component under load: {}", component.display());
    }
    if !args.node_arg.is_empty() {
        println!("every node also gets: {}", args.node_arg.join(" "));
        targets::StratusNode::set_node_args(args.node_arg.clone());
    }
    let spec = args.load_spec();
    match args.mode {
        Some(Mode::RawHyper) => return raw::serve(),
        Some(Mode::Capabilities) => return capabilities_tables(&args),
        Some(Mode::FirstAnswer { only }) => {
            return first_answer::table(args.rounds, &spec, only.as_deref());
        }
        Some(Mode::Cluster {
            deploys,
            nats_server,
        }) => {
            return cluster::run(&cluster::Settings {
                nats_server,
                deploys,
                load: spec.clone(),
                rounds: args.rounds,
            });
        }
        Some(Mode::Soak {
            minutes,
            every,
            ledger_max_size,
        }) => {
            return soak::run(&soak::Settings {
                minutes,
                interval: Duration::from_secs(every.max(1)),
                ledger_max_size,
                connections: args.connections,
            });
        }
        Some(Mode::ClusterEvents { count, nats_server }) => {
            return cluster_events::run(&cluster_events::Settings {
                nats_server,
                events: count,
                connections: args.connections,
            });
        }
        Some(Mode::Density {
            functions,
            requests,
        }) => return density_table(&functions, requests),
        Some(Mode::Scrape { functions, scrapes }) => return scrape_table(functions, scrapes),
        Some(Mode::Events { count, via }) => {
            let r = match via.as_str() {
                "api" => events::run(count, args.connections)?,
                "nats" => events::run_nats(count)?,
                other => anyhow::bail!("--via {other:?}: use `api` or `nats`"),
            };
            let accepted = if via == "nats" {
                "published (client side)"
            } else {
                "accepted (durably queued)"
            };
            println!(
                "| events ({via}) | {accepted} | handled end to end | accept → handled p50 | p99 |"
            );
            println!("| ---: | ---: | ---: | ---: | ---: |");
            println!(
                "| {} | {:.0} events/s | {:.0} events/s | {} | {} |",
                r.events,
                r.accept_rate,
                r.end_to_end_rate,
                fmt_us(r.latency_p50.as_secs_f64() * 1e6),
                fmt_us(r.latency_p99.as_secs_f64() * 1e6)
            );
            if !r.idle_p50.is_zero() {
                println!(
                    "\nOne event at a time: publish → handled p50 {}, p99 {}",
                    fmt_us(r.idle_p50.as_secs_f64() * 1e6),
                    fmt_us(r.idle_p99.as_secs_f64() * 1e6)
                );
            }
            return Ok(());
        }
        Some(Mode::Load { url }) => {
            let r = load::run(&url, &spec)?;
            println!(
                "| {url} | {:.0} | {} | {} | {} |",
                r.rps,
                fmt_us(r.p50_us),
                fmt_us(r.p99_us),
                r.errors
            );
            return Ok(());
        }
        None => {}
    }
    let load = spec;

    let variants = [
        (
            FRESH,
            targets::Variant {
                reuse: 1,
                metering: true,
                quotas: false,
                traced: false,
            },
        ),
        (
            UNMETERED,
            targets::Variant {
                reuse: 1,
                metering: false,
                quotas: false,
                traced: false,
            },
        ),
        (
            "Stratus gateway, hello, fresh instance, in a namespace with every quota and a budget",
            targets::Variant {
                reuse: 1,
                metering: true,
                quotas: true,
                traced: false,
            },
        ),
        (
            "Stratus gateway, hello, fresh instance, every invocation traced (`--otlp-endpoint`)",
            targets::Variant {
                reuse: 1,
                metering: true,
                quotas: false,
                traced: true,
            },
        ),
        (
            REUSED,
            targets::Variant {
                reuse: 128,
                metering: true,
                quotas: false,
                traced: false,
            },
        ),
    ];
    // Every target runs at once (idle while not measured) and they take
    // turns for several rounds; each row is the median round. On a shared
    // 2-core VM, one long run per target would mostly measure the
    // neighbours' noise at the time.
    let mut targets: Vec<(&str, String, Box<dyn std::any::Any>)> = Vec::new();
    for (name, variant) in variants {
        let node = targets::StratusNode::start(variant)?;
        targets.push((name, node.url.clone(), Box::new(node)));
    }
    let raw = targets::RawHyper::start()?;
    targets.push((RAW, raw.url.clone(), Box::new(raw)));
    if let Some(bin) = &args.wasmtime {
        for (name, reuse) in [(WASMTIME_FRESH, None), (WASMTIME_REUSED, Some(128))] {
            let peer = targets::WasmtimeServe::start(bin, reuse)?;
            targets.push((name, peer.url.clone(), Box::new(peer)));
        }
    }
    if let Some(bin) = &args.baseline {
        let node = targets::StratusNode::start_binary(
            bin,
            targets::Variant {
                reuse: 1,
                metering: true,
                quotas: false,
                traced: false,
            },
            "",
        )?;
        targets.push((BASELINE, node.url.clone(), Box::new(node)));
    }
    let mut runs: Vec<Vec<load::LoadResult>> = vec![Vec::new(); targets.len()];
    for round in 1..=args.rounds {
        // Each round starts with a different target, so no target always
        // runs first (or right after the same neighbour).
        let n = targets.len();
        for i in (0..n).map(|i| (i + round) % n) {
            let (name, url, _) = &targets[i];
            eprintln!("round {round}/{}: {url} ({name})…", args.rounds);
            runs[i].push(load::run(url, &load)?);
        }
    }
    // The latency one request sees when the node is not saturated: one
    // connection, one request at a time, metering on vs off.
    let single = load::LoadSpec {
        connections: 1,
        threads: 1,
        ..load.clone()
    };
    let mut unloaded: Vec<Vec<load::LoadResult>> = vec![Vec::new(); 2];
    for round in 1..=args.rounds {
        for i in [round % 2, (round + 1) % 2] {
            let (name, url, _) = &targets[i];
            eprintln!(
                "round {round}/{}: {url} ({name}, one connection)…",
                args.rounds
            );
            unloaded[i].push(load::run(url, &single)?);
        }
    }
    let unloaded: Vec<load::LoadResult> = unloaded
        .into_iter()
        .map(|mut runs| {
            runs.sort_by(|a, b| a.p50_us.total_cmp(&b.p50_us));
            runs[runs.len() / 2]
        })
        .collect();
    let rows: Vec<(&str, load::LoadResult)> = targets
        .iter()
        .zip(runs)
        .map(|((name, _, _), mut runs)| {
            runs.sort_by(|a, b| a.rps.total_cmp(&b.rps));
            (*name, runs[runs.len() / 2])
        })
        .collect();
    drop(targets);
    eprintln!("measuring per-request instantiation…");
    let instantiate = targets::measure_instantiate(args.instantiations)?;

    println!(
        "Load: {} connections, {} threads, {} s measured after {} s warm-up, HTTP/1.1 keep-alive on loopback; median of {} rounds.\n",
        load.connections, load.threads, args.duration, args.warmup, args.rounds
    );
    println!("| target | requests/s | p50 | p99 | errors |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (name, r) in &rows {
        println!(
            "| {name} | {:.0} | {} | {} | {} |",
            r.rps,
            fmt_us(r.p50_us),
            fmt_us(r.p99_us),
            r.errors
        );
    }
    // By name: rows were added over time, and a position names another.
    let rps = |name: &str| {
        rows.iter()
            .find(|(row, _)| *row == name)
            .map_or(0.0, |(_, r)| r.rps)
    };
    let ratio = |a: f64, b: f64| a / b.max(1.0);
    let (fresh, unmetered, reused, raw) = (rps(FRESH), rps(UNMETERED), rps(REUSED), rps(RAW));
    println!(
        "\nFresh instance: {:.0}% of raw hyper. With metering and logs: {:.1}% of the throughput without. `reuse = 128`: {:.0}% of raw hyper.",
        100.0 * ratio(fresh, raw),
        100.0 * ratio(fresh, unmetered),
        100.0 * ratio(reused, raw),
    );
    if args.wasmtime.is_some() {
        println!(
            "Against `wasmtime serve`: fresh {:.2}×, reuse {:.2}×.",
            ratio(fresh, rps(WASMTIME_FRESH)),
            ratio(reused, rps(WASMTIME_REUSED))
        );
    }
    if let Some((_, baseline)) = rows.iter().find(|(name, _)| *name == BASELINE) {
        println!(
            "This build against the baseline build: {:+.1}% requests/s.",
            100.0 * (ratio(fresh, baseline.rps) - 1.0)
        );
    }
    println!("\n| one connection, one request at a time | requests/s | p50 | p99 |");
    println!("| --- | ---: | ---: | ---: |");
    for (name, r) in ["metering and logs on (default)", "`--no-metering`"]
        .iter()
        .zip(&unloaded)
    {
        println!(
            "| {name} | {:.0} | {} | {} |",
            r.rps,
            fmt_us(r.p50_us),
            fmt_us(r.p99_us)
        );
    }
    println!("\n| instantiation of hello (pooling allocator) | mean | p50 | p99 |");
    println!("| --- | ---: | ---: | ---: |");
    for (name, r) in [
        (
            format!("warm: per request, {} runs", args.instantiations),
            &instantiate.warm,
        ),
        (
            "cold: after scale to zero (reload artifact + instantiate)".to_string(),
            &instantiate.cold,
        ),
    ] {
        println!(
            "| {name} | {} | {} | {} |",
            fmt_us(r.mean_us),
            fmt_us(r.p50_us),
            fmt_us(r.p99_us)
        );
    }
    Ok(())
}

fn fmt_us(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.1} µs")
    }
}

fn density_table(counts: &[usize], requests: usize) -> anyhow::Result<()> {
    let mut results = Vec::new();
    for &n in counts {
        eprintln!("density: deploying {n} functions…");
        results.push(density::run(n, requests)?);
    }
    println!(
        "| functions | deploy total | deploy p50 | deploy p99 | RSS deployed | RSS idle (scaled to zero) | random request p50 | p99 | errors |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for r in &results {
        println!(
            "| {} | {:.1} s | {} | {} | {:.0} MiB | {:.0} MiB | {} | {} | {} |",
            r.functions,
            r.deploy_total.as_secs_f64(),
            fmt_us(r.deploy_p50.as_secs_f64() * 1e6),
            fmt_us(r.deploy_p99.as_secs_f64() * 1e6),
            r.rss_deployed as f64 / f64::from(1 << 20),
            r.rss_idle as f64 / f64::from(1 << 20),
            fmt_us(r.request_p50.as_secs_f64() * 1e6),
            fmt_us(r.request_p99.as_secs_f64() * 1e6),
            r.errors
        );
    }
    Ok(())
}

fn scrape_table(functions: usize, scrapes: usize) -> anyhow::Result<()> {
    eprintln!("scrape: deploying and calling {functions} functions…");
    let results = scrape::run(functions, scrapes)?;
    println!("| functions | format | body | lines | scrape p50 | p99 | max |");
    println!("| ---: | --- | ---: | ---: | ---: | ---: | ---: |");
    for r in &results {
        println!(
            "| {} | {} | {:.2} MB | {} | {} | {} | {} |",
            r.functions,
            r.format,
            r.bytes as f64 / 1e6,
            r.lines,
            fmt_us(r.p50.as_secs_f64() * 1e6),
            fmt_us(r.p99.as_secs_f64() * 1e6),
            fmt_us(r.max.as_secs_f64() * 1e6),
        );
    }
    Ok(())
}

/// `stratus-bench capabilities`: two Markdown tables.
fn capabilities_tables(args: &Args) -> anyhow::Result<()> {
    let loaded = args.load_spec();
    println!(
        "| backend | set, in one invocation | get, in one invocation | requests/s, one set each (p50) | requests/s, one get each (p50) |"
    );
    println!("| --- | ---: | ---: | ---: | ---: |");
    for backend in ["sqlite", "redis"] {
        let r = capabilities::keyvalue(backend, &loaded)?;
        println!(
            "| {} | {:.0} ops/s | {:.0} ops/s | {:.0} ({}) | {:.0} ({}) |",
            r.backend,
            r.set_in_function,
            r.get_in_function,
            r.set_requests.rps,
            fmt_us(r.set_requests.p50_us),
            r.get_requests.rps,
            fmt_us(r.get_requests.p50_us)
        );
    }
    let one = capabilities::one_at_a_time(&loaded);
    let unloaded = capabilities::svc_calls(&one)?;
    let under_load = capabilities::svc_calls(&loaded)?;
    println!();
    println!(
        "| request | p50, one at a time | p99, one at a time | requests/s, {} connections | p50 under load |",
        args.connections
    );
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (name, a, b) in [
        (
            "callee straight from the gateway",
            unloaded.direct,
            under_load.direct,
        ),
        (
            "caller alone (no call)",
            unloaded.caller_alone,
            under_load.caller_alone,
        ),
        (
            "caller calling the callee through `.svc`",
            unloaded.through_svc,
            under_load.through_svc,
        ),
    ] {
        println!(
            "| {name} | {} | {} | {:.0} | {} |",
            fmt_us(a.p50_us),
            fmt_us(a.p99_us),
            b.rps,
            fmt_us(b.p50_us)
        );
    }
    println!(
        "\nA `.svc` call adds {} at p50 (caller with the call minus caller alone), against {} for the callee as a gateway request.",
        fmt_us(unloaded.through_svc.p50_us - unloaded.caller_alone.p50_us),
        fmt_us(unloaded.direct.p50_us)
    );
    Ok(())
}
