//! `stratus deploy`: uploads an app's manifest and components; the node
//! validates, compiles and activates them. On a terminal it says what it is
//! doing meanwhile (a large component takes seconds to upload and compile).

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use stratus_admin::model::{DeployResponse, Rollout};
use stratus_manifest::Manifest;

use crate::args::{CanaryOpts, ClientOpts, DeployArgs, Format};
use crate::client::{Client, read_json};
use crate::node::{manifest_path, read_components};
use crate::output;

pub async fn run(opts: &ClientOpts, args: DeployArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(opts)?;
    if args.canary.is_none() && args.rollout != CanaryOpts::default() {
        anyhow::bail!(
            "--steps, --interval, --sticky-* and the limits describe a canary: add --canary PERCENT"
        );
    }
    let path = args.file.unwrap_or_else(|| manifest_path(&args.dir));
    let loaded = Manifest::load(&path)?;
    let upload = read_components(&loaded)?;
    let size: usize = upload.components.values().map(|b| b.len()).sum();
    let progress = std::io::stderr()
        .is_terminal()
        .then(|| Progress::start(size as u64, opts.server.trim_end_matches('/')));

    let mut form = Form::new().text("manifest", upload.manifest);
    for (name, bytes) in upload.components {
        let length = bytes.len() as u64;
        let body = match &progress {
            Some(progress) => progress.body(bytes),
            None => reqwest::Body::from(bytes),
        };
        let part = Part::stream_with_length(body, length)
            .file_name(name)
            .mime_str("application/wasm")
            .context("building the upload")?;
        form = form.part("component", part);
    }
    let started = Instant::now();
    let mut request = client.request(Method::POST, "/v1/apps").multipart(form);
    if args.require_no_new_capabilities {
        request = request.query(&[("require_no_new_capabilities", "true")]);
    }
    if let Some(percent) = args.canary {
        request = request.query(&[("canary", percent.to_string())]);
        request = request.query(&crate::commands::traffic::canary_query(&args.rollout));
    }
    let response = client.send(request).await;
    drop(progress);
    let response = response?;
    let total_ms = started.elapsed().as_secs_f64() * 1000.0;
    let report: DeployResponse = read_json(response).await?;
    let rolled_out = match args.wait {
        true => Some(wait_for_rollout(&client, &report, args.wait_timeout).await?),
        false => None,
    };

    if args.format == Format::Json {
        output::json(&report)?;
        return Ok(ExitCode::SUCCESS);
    }
    let t = &report.timings;
    println!(
        "Deployed {} version {} ({} uploaded)",
        report.app,
        report.version,
        output::bytes(size as u64)
    );
    if let Some(percent) = report.canary_percent {
        println!(
            "  a canary: {percent}% of requests; the live version serves the rest (`stratus traffic {}` shows how it does)",
            report.name
        );
    }
    // Upload time is what the node spent receiving; the rest of the round
    // trip not accounted for by the node's phases is network and client.
    println!(
        "  upload {:.1} ms, validation {:.1} ms, compilation {:.1} ms, commit {:.1} ms (total {:.1} ms)",
        t.receive_ms, t.validate_ms, t.compile_ms, t.commit_ms, total_ms
    );
    let rows = report
        .functions
        .iter()
        .map(|f| {
            vec![
                f.name.clone(),
                if f.routes.is_empty() {
                    "-".to_string()
                } else {
                    f.routes.join(", ")
                },
                f.sha256.chars().take(12).collect(),
                output::bytes(f.size),
                format!(
                    "{}, {}",
                    f.tier,
                    if f.compiled_from_cache {
                        "cached"
                    } else {
                        "compiled"
                    }
                ),
            ]
        })
        .collect::<Vec<_>>();
    output::table(&["FUNCTION", "ROUTES", "SHA256", "SIZE", "CODE"], &rows);
    print_gains(&report);
    if let Some((nodes, took)) = rolled_out {
        println!(
            "Version {} serves on {nodes} node{} ({:.0} ms after the deploy)",
            report.version,
            if nodes == 1 { "" } else { "s" },
            took.as_secs_f64() * 1000.0
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// What the version gained over the one live before, one line each.
fn print_gains(report: &DeployResponse) {
    let lines = report.gained.lines();
    if lines.is_empty() {
        println!("Capabilities: nothing gained over the live version");
        return;
    }
    println!("Capabilities gained over the live version:");
    for line in lines {
        println!("  {line}");
    }
}

/// Waits until every node serves the deployed version: how many nodes and
/// how long it took. A newer deploy (or a rollback) meanwhile is an error:
/// this version will never be everywhere.
async fn wait_for_rollout(
    client: &Client,
    report: &DeployResponse,
    timeout: Duration,
) -> anyhow::Result<(usize, Duration)> {
    let started = Instant::now();
    let path = format!(
        "/v1/apps/{}/rollout",
        stratus_manifest::split_key(&report.app).1
    );
    loop {
        let rollout: Rollout = client.get_json(&path).await?;
        if rollout.live_version != Some(report.version) {
            anyhow::bail!(
                "version {} of {} is no longer the live one (now {}): another deploy or a rollback came after it",
                report.version,
                report.app,
                rollout
                    .live_version
                    .map_or("none".to_string(), |v| format!("version {v}"))
            );
        }
        if rollout.complete {
            return Ok((rollout.nodes.len(), started.elapsed()));
        }
        if started.elapsed() >= timeout {
            let lagging: Vec<String> = rollout
                .nodes
                .iter()
                .filter(|n| n.version != Some(report.version))
                .map(|n| {
                    let serving = n
                        .version
                        .map_or("nothing".into(), |v| format!("version {v}"));
                    format!("{} ({}) serves {serving}", n.id, n.hostname)
                })
                .collect();
            anyhow::bail!(
                "version {} of {} is live but not yet on every node after {}s (--wait-timeout): {}",
                report.version,
                report.app,
                timeout.as_secs(),
                lagging.join("; ")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Upload size in chunks of this many bytes, the steps of the progress line.
const CHUNK: usize = 256 * 1024;

/// One line on stderr (a terminal) rewritten as the deploy goes: the share
/// uploaded, then, once the node has every byte, that it is validating and
/// compiling, with the seconds spent waiting. Cleared when dropped, before
/// the report or the error is printed.
struct Progress {
    state: Arc<Mutex<Shown>>,
    ticker: tokio::task::JoinHandle<()>,
}

struct Shown {
    total: u64,
    sent: u64,
    target: String,
    /// When the last byte went out.
    uploaded: Option<Instant>,
}

impl Shown {
    fn line(&self) -> String {
        match self.uploaded {
            None => format!(
                "uploading {} to {} ({}%)…",
                output::bytes(self.total),
                self.target,
                (self.sent * 100).checked_div(self.total).unwrap_or(100)
            ),
            Some(at) => format!(
                "uploaded {}; the node is validating and compiling it ({} s)…",
                output::bytes(self.total),
                at.elapsed().as_secs()
            ),
        }
    }

    fn show(&self) {
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "\r\x1b[2K{}", self.line());
        let _ = stderr.flush();
    }
}

impl Progress {
    fn start(total: u64, target: &str) -> Progress {
        let shown = Shown {
            total,
            sent: 0,
            target: target.to_string(),
            uploaded: None,
        };
        shown.show();
        let state = Arc::new(Mutex::new(shown));
        let ticking = state.clone();
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if let Ok(shown) = ticking.lock() {
                    shown.show();
                }
            }
        });
        Progress { state, ticker }
    }

    /// The component as a body whose chunks move the line on as they are sent.
    fn body(&self, bytes: Bytes) -> reqwest::Body {
        let state = self.state.clone();
        let chunks: Vec<Bytes> = (0..bytes.len())
            .step_by(CHUNK)
            .map(|start| bytes.slice(start..bytes.len().min(start + CHUNK)))
            .collect();
        let stream = futures_util::stream::iter(chunks).map(move |chunk| {
            if let Ok(mut shown) = state.lock() {
                shown.sent += chunk.len() as u64;
                if shown.sent >= shown.total && shown.uploaded.is_none() {
                    shown.uploaded = Some(Instant::now());
                }
                shown.show();
            }
            Ok::<_, std::io::Error>(chunk)
        });
        reqwest::Body::wrap_stream(stream)
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.ticker.abort();
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "\r\x1b[2K");
        let _ = stderr.flush();
    }
}
