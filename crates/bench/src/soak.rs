//! `stratus-bench soak`: sustained load on one fresh-instance function for
//! minutes on end, with a side stream of traps, timeouts, 40 MiB
//! allocations and 1 MiB bodies, printing the node's RSS, its data
//! directory and ledger on disk, and the answers, at each interval: what
//! issue 18 asks to see level off (memory) and stay within a budget (disk).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::load::{self, LoadSpec};
use crate::targets::{StratusNode, test_component};

#[derive(Debug, Clone)]
pub struct Settings {
    pub minutes: u64,
    pub interval: Duration,
    /// `--ledger-max-size` for the node, e.g. "64MiB".
    pub ledger_max_size: String,
    pub connections: usize,
}

/// Answers of the side stream, by kind of answer.
#[derive(Default)]
struct Side {
    ok: AtomicU64,
    bad_gateway: AtomicU64,
    timeout: AtomicU64,
    other: AtomicU64,
}

pub fn run(settings: &Settings) -> anyhow::Result<()> {
    let node = StratusNode::start_empty(&["--ledger-max-size", &settings.ledger_max_size])?;
    let testbed = test_component("testbed")?;
    node.deploy(
        "soak",
        &format!(
            "[app]\nname = \"soak\"\n\n[[function]]\nname = \"soak\"\ncomponent = \"{}\"\nroutes = [\"/soak/...\"]\nmemory = \"64MiB\"\ntimeout = \"1s\"\nreuse = 1\n",
            testbed.display()
        ),
    )?;
    let main_url = format!("{}/soak/print?text=a%20line%20of%20the%20soak", node.url);
    let side = Arc::new(Side::default());
    let stop = Arc::new(AtomicBool::new(false));
    let side_thread = {
        let (side, stop, base) = (side.clone(), stop.clone(), node.url.clone());
        std::thread::spawn(move || side_stream(&base, &side, &stop))
    };
    let data = node.data_dir().to_path_buf();
    println!(
        "soak: {} min, main load {} connections on `/soak/print` (a fresh instance per request, one log line each), side stream of traps, 2 s sleeps against a 1 s timeout, 40 MiB allocations and 1 MiB bodies; `--ledger-max-size {}`; sampled every {} s.\n",
        settings.minutes,
        settings.connections,
        settings.ledger_max_size,
        settings.interval.as_secs()
    );
    println!(
        "| minute | requests (main) | req/s | main errors | RSS | data dir | ledger file + WAL | side: 200 / 502 / 504 / other |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let started = Instant::now();
    let end = started + Duration::from_secs(settings.minutes * 60);
    let mut total = 0u64;
    let mut errors = 0u64;
    let mut samples = Vec::new();
    while Instant::now() < end {
        let spec = LoadSpec {
            duration: settings.interval,
            warmup: Duration::ZERO,
            connections: settings.connections,
            threads: 1,
        };
        let round = load::run(&main_url, &spec)?;
        let requests = (round.rps * settings.interval.as_secs_f64()) as u64;
        total += requests;
        errors += round.errors;
        let rss = node.rss()?;
        let disk = dir_bytes(&data);
        let size = |file: &str| std::fs::metadata(data.join(file)).map_or(0, |m| m.len());
        let (ledger_db, ledger_wal) = (size("ledger.sqlite"), size("ledger.sqlite-wal"));
        let ledger = ledger_db + ledger_wal;
        samples.push((total, rss, disk, ledger));
        println!(
            "| {:.1} | {total} | {:.0} | {errors} | {} | {} | {} + {} | {} / {} / {} / {} |",
            started.elapsed().as_secs_f64() / 60.0,
            round.rps,
            mib(rss),
            mib(disk),
            mib(ledger_db),
            mib(ledger_wal),
            side.ok.load(Ordering::Relaxed),
            side.bad_gateway.load(Ordering::Relaxed),
            side.timeout.load(Ordering::Relaxed),
            side.other.load(Ordering::Relaxed),
        );
    }
    stop.store(true, Ordering::Relaxed);
    let _ = side_thread.join();
    summary(&samples);
    counters(&node.admin, &side)?;
    Ok(())
}

/// What the node counted, against what was sent: usage totals come from
/// exact counters whatever was sampled, so they must cover every request
/// (the main stream's count is its rate times the time, so approximate).
fn counters(admin: &str, side: &Side) -> anyhow::Result<()> {
    let client = reqwest::blocking::Client::new();
    let get = |path: &str| {
        client
            .get(format!("{admin}{path}"))
            .bearer_auth("bench")
            .send()
            .and_then(reqwest::blocking::Response::text)
    };
    // Read once what was served is all written: two readings a second
    // apart agree (or 30 s have gone by).
    let read_usage = || -> anyhow::Result<serde_json::Value> {
        Ok(serde_json::from_str(&get("/v1/usage?app=soak")?)?)
    };
    let mut usage = read_usage()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(1));
        let again = read_usage()?;
        let settled = again["total"]["requests"] == usage["total"]["requests"];
        usage = again;
        if settled {
            break;
        }
    }
    let metrics = get("/metrics")?;
    let metric = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let side_sent: u64 = [&side.ok, &side.bad_gateway, &side.timeout, &side.other]
        .iter()
        .map(|n| n.load(Ordering::Relaxed))
        .sum();
    println!(
        "Usage counted {} invocations ({} errors, granularity {}), {} of them sampled out; the side stream sent {side_sent}. Records written {}, sampled {}, dropped {}; log lines written {}, over budget {}; followers dropped {}.",
        usage["total"]["requests"],
        usage["total"]["errors"],
        usage["granularity"],
        usage["total"]["sampled"],
        metric("stratus_invocation_records_written_total"),
        metric("stratus_invocation_records_sampled_total"),
        metric("stratus_invocation_records_dropped_total"),
        metric("stratus_log_lines_written_total"),
        metric("stratus_log_lines_over_budget_total"),
        metric("stratus_log_followers_dropped_total"),
    );
    Ok(())
}

fn summary(samples: &[(u64, u64, u64, u64)]) {
    let Some(&(total, _, disk, ledger)) = samples.last() else {
        return;
    };
    // RSS after warm-up: from the second sample on.
    let rss: Vec<u64> = samples.iter().skip(1).map(|s| s.1).collect();
    if let (Some(low), Some(high)) = (rss.iter().min(), rss.iter().max()) {
        let mid = (low + high) as f64 / 2.0;
        println!(
            "\nRSS after the first sample: {} to {} ({:+.1} % around the middle).",
            mib(*low),
            mib(*high),
            (*high as f64 - mid) / mid * 100.0
        );
    }
    if total > 0 {
        println!(
            "Disk: data dir {} and ledger files {} after {} requests ({} per million requests).",
            mib(disk),
            mib(ledger),
            total,
            mib((disk as f64 / total as f64 * 1e6) as u64)
        );
    }
}

/// Traps, timeouts, large allocations and large bodies, one after another,
/// until told to stop.
fn side_stream(base: &str, side: &Side, stop: &AtomicBool) {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    let client = reqwest::Client::new();
    let body = vec![b'x'; 1 << 20];
    runtime.block_on(async {
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            let request = match n % 4 {
                0 => client.get(format!("{base}/soak/panic")),
                1 => client.get(format!("{base}/soak/sleep?ms=2000")),
                2 => client.get(format!("{base}/soak/alloc?mb=40")),
                _ => client.post(format!("{base}/soak/echo")).body(body.clone()),
            };
            let counter = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let _ = response.bytes().await;
                    match status {
                        200 => &side.ok,
                        502 => &side.bad_gateway,
                        504 => &side.timeout,
                        _ => &side.other,
                    }
                }
                Err(_) => &side.other,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&entry.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}
