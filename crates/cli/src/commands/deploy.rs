//! `stratus deploy`: uploads an app's manifest and components; the node
//! validates, compiles and activates them. On a terminal it says what it is
//! doing meanwhile (a large component takes seconds to upload and compile).

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use stratus_admin::model::{DeployResponse, Rollout};
use stratus_manifest::Manifest;

use crate::args::{CanaryOpts, ClientOpts, DeployArgs, Format};
use crate::client::{Client, read_json};
use crate::node::{manifest_path, read_components};
use crate::output;

use super::deploy_progress::Progress;

pub async fn run(opts: &ClientOpts, args: DeployArgs) -> anyhow::Result<ExitCode> {
    let client = Arc::new(Client::new(opts)?);
    if args.canary.is_none() && args.rollout != CanaryOpts::default() {
        anyhow::bail!(
            "--steps, --interval, --sticky-* and the limits describe a canary: add --canary PERCENT"
        );
    }
    let path = args.file.unwrap_or_else(|| manifest_path(&args.dir));
    let loaded = Manifest::load(&path)?;
    let upload = read_components(&loaded)?;
    let size: usize = upload.components.values().map(|b| b.len()).sum();
    let progress = std::io::stderr().is_terminal().then(|| {
        let target = opts.server.trim_end_matches('/');
        let app = loaded.manifest.app.name.clone();
        Progress::start(size as u64, target, client.clone(), app)
    });

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
