//! `stratus deploy`.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use stratus_admin::model::DeployResponse;
use stratus_manifest::Manifest;

use crate::args::{ClientOpts, DeployArgs, Format};
use crate::client::{Client, read_json};
use crate::node::{manifest_path, read_components};
use crate::output;

pub async fn run(opts: &ClientOpts, args: DeployArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(opts)?;
    let path = args.file.unwrap_or_else(|| manifest_path(&args.dir));
    let loaded = Manifest::load(&path)?;
    let upload = read_components(&loaded)?;
    let size: usize = upload.components.values().map(|b| b.len()).sum();

    let mut form = Form::new().text("manifest", upload.manifest);
    for (name, bytes) in upload.components {
        let part = Part::stream(reqwest::Body::from(bytes))
            .file_name(name)
            .mime_str("application/wasm")
            .context("building the upload")?;
        form = form.part("component", part);
    }
    let started = Instant::now();
    let response = client
        .send(client.request(Method::POST, "/v1/apps").multipart(form))
        .await?;
    let total_ms = started.elapsed().as_secs_f64() * 1000.0;
    let report: DeployResponse = read_json(response).await?;

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
                if f.compiled_from_cache {
                    "cached"
                } else {
                    "compiled"
                }
                .to_string(),
            ]
        })
        .collect::<Vec<_>>();
    output::table(&["FUNCTION", "ROUTES", "SHA256", "SIZE", "CODE"], &rows);
    Ok(ExitCode::SUCCESS)
}
