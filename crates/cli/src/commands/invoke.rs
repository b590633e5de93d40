//! `stratus invoke`: a synchronous call through the admin API.

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;

use anyhow::{Context, bail};
use reqwest::Method;

use crate::args::{ClientOpts, InvokeArgs};
use crate::client::Client;
use crate::commands::apps::segment;
use crate::output;

pub async fn run(opts: &ClientOpts, args: InvokeArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(opts)?;
    let body = read_data(args.data.as_deref())?;
    let path = format!("/v1/functions/{}/invocations", segment(&args.function));
    let method = args.method.to_ascii_uppercase();
    let mut request = client
        .request(Method::POST, &path)
        .query(&[
            ("path", args.path.as_str()),
            ("method", method.as_str()),
            ("mode", if args.asynchronous { "async" } else { "sync" }),
        ])
        .body(body);
    for header in &args.header {
        let Some((name, value)) = header.split_once(':') else {
            bail!("--header \"{header}\" must look like \"Name: value\"");
        };
        request = request.header(name.trim(), value.trim());
    }
    if args.asynchronous {
        let response = client.send(request).await?;
        let accepted: stratus_admin::model::AsyncAccepted =
            crate::client::read_json(response).await?;
        println!("{}", accepted.id);
        return Ok(ExitCode::SUCCESS);
    }
    let response = client.send_raw(request).await?;
    let status = response.status();
    if args.include {
        println!("{:?} {}", response.version(), status);
        for (name, value) in response.headers() {
            println!("{name}: {}", value.to_str().unwrap_or("<binary>"));
        }
        println!();
    }
    let bytes = response
        .bytes()
        .await
        .context("reading the function's response")?;
    // A platform error (no route, trap, timeout, unknown function...) is
    // shown as one sentence; a function's own error answer is printed as is.
    if !status.is_success()
        && !args.include
        && let Some(message) = platform_error_message(&bytes)
    {
        bail!("{message} ({status})");
    }
    // The answer goes out byte for byte into a pipe or a file; on a
    // terminal its control characters are shown escaped instead, as `logs`
    // does, so a function cannot take over the operator's screen.
    let mut stdout = std::io::stdout();
    if stdout.is_terminal() {
        let text = String::from_utf8_lossy(&bytes);
        stdout.write_all(output::escape_text(&text).as_bytes())?;
    } else {
        stdout.write_all(&bytes)?;
    }
    Ok(if status.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn read_data(data: Option<&str>) -> anyhow::Result<Vec<u8>> {
    match data {
        None => Ok(Vec::new()),
        Some("@-") => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("reading stdin")?;
            Ok(buf)
        }
        Some(arg) => match arg.strip_prefix('@') {
            Some(file) => {
                std::fs::read(file).with_context(|| format!("cannot read --data file {file}"))
            }
            None => Ok(arg.as_bytes().to_vec()),
        },
    }
}

/// The message of the platform's `{"error": {"code", "message"}}` shape.
fn platform_error_message(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let error = value.get("error")?;
    error.get("code")?.as_str()?;
    error.get("message")?.as_str().map(str::to_string)
}
