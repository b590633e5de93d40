//! `stratus-bench`: measures the gateway the way a user would see it.
//!
//! It starts the real `stratus server` binary (release build) with the hello
//! example deployed and a raw hyper hello-world server as the ceiling, each
//! in its own process, drives both with the same closed-loop HTTP/1.1 load
//! (keep-alive connections on loopback), and measures per-request
//! instantiation in-process. It prints a Markdown table for
//! `docs/benchmarks.md`. This is a benchmark program, not a test: it
//! asserts nothing and its numbers depend on the machine.

mod load;
mod raw;
mod targets;

use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "stratus-bench")]
struct Args {
    /// Seconds of measured load per target.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Seconds of unmeasured warm-up per target.
    #[arg(long, default_value_t = 2)]
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
    #[command(subcommand)]
    mode: Option<Mode>,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Internal: serve a raw hyper hello world and print its address.
    RawHyper,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(Mode::RawHyper) = args.mode {
        return raw::serve();
    }
    let load = load::LoadSpec {
        duration: Duration::from_secs(args.duration),
        warmup: Duration::from_secs(args.warmup),
        connections: args.connections,
        threads: args.threads,
    };

    let node = targets::StratusNode::start()?;
    let raw = targets::RawHyper::start()?;
    eprintln!("measuring {} (gateway)…", node.url);
    let gateway = load::run(&node.url, &load)?;
    eprintln!("measuring {} (raw hyper)…", raw.url);
    let ceiling = load::run(&raw.url, &load)?;
    drop(node);
    drop(raw);
    let mut peers = Vec::new();
    if let Some(bin) = &args.wasmtime {
        for (name, reuse) in [
            ("wasmtime serve -Scli (fresh instance per request)", None),
            (
                "wasmtime serve -Scli --max-instance-reuse-count=128",
                Some(128),
            ),
        ] {
            let peer = targets::WasmtimeServe::start(bin, reuse)?;
            eprintln!("measuring {} ({name})…", peer.url);
            peers.push((name, load::run(&peer.url, &load)?));
        }
    }
    eprintln!("measuring per-request instantiation…");
    let instantiate = targets::measure_instantiate(args.instantiations)?;

    println!(
        "Load: {} connections, {} threads, {} s measured after {} s warm-up, HTTP/1.1 keep-alive on loopback.\n",
        load.connections, load.threads, args.duration, args.warmup
    );
    println!("| target | requests/s | p50 | p99 | errors |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    let rows = [
        (
            "Stratus gateway, hello example (fresh instance per request)",
            gateway,
        ),
        ("raw hyper hello world (ceiling)", ceiling),
    ];
    for (name, r) in rows.iter().chain(peers.iter()) {
        println!(
            "| {name} | {:.0} | {} | {} | {} |",
            r.rps,
            fmt_us(r.p50_us),
            fmt_us(r.p99_us),
            r.errors
        );
    }
    println!(
        "\nGateway throughput is {:.0}% of the raw hyper ceiling.",
        100.0 * gateway.rps / ceiling.rps.max(1.0)
    );
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
