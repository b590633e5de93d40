//! `stratus logs FUNCTION [-f]`: a function's invocation logs.

use std::process::ExitCode;

use anyhow::Context;
use futures_util::StreamExt;
use stratus_admin::model::{LogLineInfo, LogLines};

use crate::args::{ClientOpts, Format, LogsArgs};
use crate::client::{Client, read_json};
use crate::commands::apps::segment;
use crate::output;

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
        if logs.lines.is_empty() && args.format == Format::Table {
            output::nothing(&no_lines(&args));
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
                    Err(_) => println!("{}", output::escape_line(data.trim_start())),
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What an empty answer means, in the terms the user asked in.
fn no_lines(args: &LogsArgs) -> String {
    let mut filters = String::new();
    if let Some(id) = &args.invocation {
        filters.push_str(&format!(" in invocation {id}"));
    }
    if let Some(since) = &args.since {
        filters.push_str(&format!(" since {since}"));
    }
    format!(
        "no log lines for function {}{filters}; what it writes to stdout and stderr shows here",
        args.function
    )
}

/// A line's text is whatever the function wrote: shown escaped, so a
/// function cannot clear the operator's screen, retitle the terminal or
/// forge other lines.
fn print_line(line: &LogLineInfo, format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", output::escape_json(&serde_json::to_string(line)?)),
        Format::Table => println!(
            "{}  {}  {:<6}  {}",
            line.at,
            line.invocation_id,
            line.stream,
            output::escape_line(&line.text)
        ),
    }
    Ok(())
}
