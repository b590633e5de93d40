//! `stratus logs FUNCTION [-f]`: a function's invocation logs.

use std::process::ExitCode;

use anyhow::Context;
use futures_util::StreamExt;
use stratus_admin::model::{LogLineInfo, LogLines};

use crate::args::{ClientOpts, Format, LogsArgs};
use crate::client::{Client, read_json};
use crate::commands::apps::segment;

pub async fn run(opts: &ClientOpts, args: LogsArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(opts)?;
    let mut query = vec![("limit", args.limit.to_string())];
    if let Some(since) = &args.since {
        query.push(("since", since.clone()));
    }
    if let Some(id) = &args.invocation {
        query.push(("invocation", id.clone()));
    }
    if args.follow {
        query.push(("follow", "true".into()));
    }
    let path = format!("/v1/functions/{}/logs", segment(&args.function));
    let request = client.request(reqwest::Method::GET, &path).query(&query);
    let response = client.send(request).await?;
    if !args.follow {
        let logs: LogLines = read_json(response).await?;
        for line in &logs.lines {
            print_line(line, args.format)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    // Server-sent events: `data: {json}` lines, blank-line separated.
    let mut stream = response.bytes_stream();
    let mut pending = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.context("the log stream broke off")?;
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            if let Some(data) = line.trim_end().strip_prefix("data:") {
                match serde_json::from_str::<LogLineInfo>(data.trim_start()) {
                    Ok(info) => print_line(&info, args.format)?,
                    Err(_) => println!("{}", data.trim_start()),
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_line(line: &LogLineInfo, format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string(line)?),
        Format::Table => println!(
            "{}  {}  {:<6}  {}",
            line.at, line.invocation_id, line.stream, line.text
        ),
    }
    Ok(())
}
