//! `stratus functions` and `stratus status`: what is live and whether the
//! node is well, each in one screen.

use std::process::ExitCode;

use reqwest::Method;
use serde::Serialize;
use stratus_admin::model::{DiskHealth, FunctionStatus, Health};

use crate::args::{ClientOpts, Format, FunctionsArgs, StatusArgs};
use crate::client::{Client, read_json};
use crate::commands::apps::segment;
use crate::output;

pub async fn functions(opts: &ClientOpts, args: FunctionsArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(opts)?;
    let path = match &args.app {
        Some(app) => format!("/v1/functions?app={}", segment(app)),
        None => "/v1/functions".to_string(),
    };
    let functions: Vec<FunctionStatus> = client.get_json(&path).await?;
    output::print(
        args.format,
        &functions,
        &[
            "FUNCTION",
            "VERSION",
            "ROUTES",
            "TRIGGERS",
            "STATE",
            "IN FLIGHT",
            "LAST ERROR",
        ],
        || functions.iter().map(row).collect(),
        &nothing_live(args.app.as_deref()),
    )?;
    Ok(ExitCode::SUCCESS)
}

fn nothing_live(app: Option<&str>) -> String {
    match app {
        Some(app) => format!(
            "no live functions in app \"{app}\" (`stratus apps` lists the apps; `stratus deploy DIR` deploys one)"
        ),
        None => "no live functions yet; deploy an app with `stratus deploy DIR`".to_string(),
    }
}

fn row(f: &FunctionStatus) -> Vec<String> {
    let none = || "-".to_string();
    let routes = if f.routes.is_empty() {
        none()
    } else {
        f.routes.join(" ")
    };
    let triggers = if f.triggers.is_empty() {
        none()
    } else {
        f.triggers
            .iter()
            .map(|t| match &t.state {
                Some(state) if state != "running" => format!("{} ({state})", t.trigger),
                _ => t.trigger.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let tier = f.tier.as_deref().unwrap_or("-");
    let state = match (f.state.as_str(), f.min_warm) {
        ("resident", true) => format!("resident {tier} (min_warm)"),
        ("resident", false) => format!("resident {tier}, idle {}", idle(f.idle_seconds)),
        ("scaled_to_zero", _) => "scaled to zero".to_string(),
        (other, _) => other.to_string(),
    };
    let last_error = f.last_error.as_ref().map_or_else(none, |e| {
        format!("{} {} ({}) {}", e.at, e.code, e.status, e.invocation_id)
    });
    vec![
        format!("{}/{}", f.app, f.name),
        f.version.to_string(),
        routes,
        triggers,
        state,
        format!("{}/{}", f.in_flight, f.max_concurrency),
        last_error,
    ]
}

/// "data dir /d 1.2 GiB (ledger 1.0 GiB of its 1.0 GiB budget); 40.1 GiB
/// free of 50.0 GiB".
fn disk_line(disk: &DiskHealth) -> String {
    let ledger = match disk.ledger_max_bytes {
        Some(budget) if disk.ledger_bytes > 0 => format!(
            " (ledger {} of its {} budget)",
            size(disk.ledger_bytes),
            size(budget)
        ),
        _ => String::new(),
    };
    let free = match &disk.error {
        Some(e) => e.clone(),
        None => format!(
            "{} free of {}",
            size(disk.disk_free_bytes),
            size(disk.disk_total_bytes)
        ),
    };
    format!(
        "data dir {} {}{ledger}; {free}",
        disk.data_dir,
        size(disk.data_dir_bytes)
    )
}

/// Bytes in binary units with one decimal.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn idle(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s => format!("{}h{}m", s / 3600, s % 3600 / 60),
    }
}

/// What `status --format json` prints.
#[derive(Serialize)]
struct Status<'a> {
    server: &'a str,
    health: &'a Health,
    functions: &'a [FunctionStatus],
}

/// Exits 0 when the node is ready, 1 while it starts (as `/readyz`);
/// problems are listed either way, as the node keeps serving through them.
pub async fn status(opts: &ClientOpts, args: StatusArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(opts)?;
    let response = client
        .send_raw(client.request(Method::GET, "/readyz"))
        .await?;
    let health: Health = read_json(response).await?;
    let functions: Vec<FunctionStatus> = client.get_json("/v1/functions").await?;
    let ready = health.status == "ready";
    if args.format == Format::Json {
        output::json(&Status {
            server: client.base(),
            health: &health,
            functions: &functions,
        })?;
    } else {
        print_status(client.base(), &health, &functions);
    }
    Ok(if ready {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn print_status(server: &str, health: &Health, functions: &[FunctionStatus]) {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut add = |label: &str, value: String| rows.push(vec![label.to_string(), value]);
    add("node", format!("{server} {}", health.status));
    let resident = functions.iter().filter(|f| f.state == "resident").count();
    let failing = functions.iter().filter(|f| f.last_error.is_some()).count();
    let in_flight: u32 = functions.iter().map(|f| f.in_flight).sum();
    add(
        "functions",
        format!(
            "{} live in {}: {resident} resident, {} scaled to zero; {in_flight} running now; \
             {failing} with an error since the node started",
            plural(functions.len(), "function"),
            plural(health.live_apps, "app"),
            functions.len() - resident,
        ),
    );
    if let Some(kv) = &health.keyvalue {
        add(
            "key-value",
            match &kv.error {
                None => format!("{} {} (reachable)", kv.backend, kv.location),
                Some(e) => format!("{} {} NOT REACHABLE: {e}", kv.backend, kv.location),
            },
        );
    }
    if let Some(disk) = &health.disk {
        add("disk", disk_line(disk));
    }
    if health.brokers.is_empty() {
        add("brokers", "none in use".to_string());
    }
    for b in &health.brokers {
        let connections = match b.connections {
            1 => String::new(),
            n => format!(", {n} connections"),
        };
        add(
            "brokers",
            match &b.error {
                None if b.connected => format!("{} {} connected{connections}", b.broker, b.url),
                error => format!(
                    "{} {} NOT CONNECTED{connections}: {}; its triggers retry",
                    b.broker,
                    b.url,
                    error.as_deref().unwrap_or("down")
                ),
            },
        );
    }
    for t in &health.triggers {
        let state = match &t.error {
            Some(e) => format!("{}: {e}", t.state),
            None => t.state.clone(),
        };
        add("triggers", format!("{} {} {state}", t.function, t.trigger));
    }
    if health.problems.is_empty() {
        add("problems", "none".to_string());
    }
    for p in &health.problems {
        add("problems", p.clone());
    }
    // One label per group: the rest of its lines are indented under it.
    let mut previous = String::new();
    for row in &mut rows {
        if row[0] == previous {
            row[0].clear();
        } else {
            previous.clone_from(&row[0]);
        }
    }
    for row in rows {
        println!("{:<10} {}", row[0], output::escape_line(&row[1]));
    }
}
