//! Deploy → first 200, per component, on a fresh node (nothing cached):
//! with tiered compilation (the default: Winch code serves while Cranelift
//! compiles in the background) and without (`--no-tiered-compilation`), and
//! the throughput each reaches once its optimized code serves.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::load::{self, LoadSpec};
use crate::targets::{StratusNode, hello_component, repo_root};

/// A component under measure: its manifest keys and the path it answers.
struct Subject {
    name: &'static str,
    component: std::path::PathBuf,
    /// `[[function]]` keys besides name, component and routes.
    keys: &'static str,
    route: &'static str,
}

/// One node's measure.
pub struct FirstAnswer {
    pub deploy_to_200: Duration,
    /// From the deploy until the optimized code served (tiered only).
    pub tier_up: Option<Duration>,
    pub rps: f64,
}

fn subjects() -> anyhow::Result<Vec<Subject>> {
    let examples = repo_root().join("examples");
    let subjects = vec![
        Subject {
            name: "hello (Rust)",
            component: hello_component()?,
            keys: "memory = \"16MiB\"",
            route: "/hello",
        },
        Subject {
            name: "python-notes (componentize-py)",
            component: examples.join("python-notes/python_notes.wasm"),
            keys: "memory = \"32MiB\"\nkeyvalue = [\"default\"]\nconfig = { greeting = \"Hello from Python\" }",
            route: "/py/hello",
        },
        Subject {
            name: "js-counter (componentize-js)",
            component: examples.join("js-counter/js_counter.wasm"),
            keys: "memory = \"32MiB\"\nkeyvalue = [\"default\"]\nconfig = { greeting = \"Hello from JavaScript\" }",
            route: "/js/hello",
        },
    ];
    for s in &subjects {
        if !s.component.exists() {
            bail!(
                "{} is not built (bash scripts/guest-toolchains.sh builds the Python and JavaScript examples)",
                s.component.display()
            );
        }
    }
    Ok(subjects)
}

/// Measures every subject, tiered and not, `rounds` times each on a fresh
/// node, and prints the table (medians).
pub fn table(rounds: usize, spec: &LoadSpec, only: Option<&str>) -> anyhow::Result<()> {
    let subjects: Vec<_> = subjects()?
        .into_iter()
        .filter(|s| only.is_none_or(|only| s.name.contains(only)))
        .collect();
    println!(
        "| component | size | tiered: deploy → first 200 | tiered: optimized code serving after | tiered: req/s after tier-up | not tiered: deploy → first 200 | not tiered: req/s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for subject in &subjects {
        let mut tiered = Vec::new();
        let mut plain = Vec::new();
        for round in 0..rounds {
            eprintln!("first-answer: {} round {}", subject.name, round + 1);
            tiered.push(measure(subject, true, spec)?);
            plain.push(measure(subject, false, spec)?);
        }
        let size = std::fs::metadata(&subject.component)?.len();
        let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1e3);
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let first = |runs: &[FirstAnswer]| {
            median(runs.iter().map(|r| r.deploy_to_200.as_secs_f64()).collect())
        };
        let rps = |runs: &[FirstAnswer]| median(runs.iter().map(|r| r.rps).collect());
        let tier_up = median(
            tiered
                .iter()
                .filter_map(|r| r.tier_up.map(|d| d.as_secs_f64()))
                .collect(),
        );
        println!(
            "| {} | {:.1} MB | {} | {} | {:.0} | {} | {:.0} |",
            subject.name,
            size as f64 / 1e6,
            ms(Duration::from_secs_f64(first(&tiered))),
            ms(Duration::from_secs_f64(tier_up)),
            rps(&tiered),
            ms(Duration::from_secs_f64(first(&plain))),
            rps(&plain),
        );
    }
    Ok(())
}

fn measure(subject: &Subject, tiered: bool, spec: &LoadSpec) -> anyhow::Result<FirstAnswer> {
    let flags: &[&str] = if tiered {
        &[]
    } else {
        &["--no-tiered-compilation"]
    };
    let node = StratusNode::start_empty(flags)?;
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()?;
    let manifest = format!(
        "[app]\nname = \"subject\"\n\n[[function]]\nname = \"subject\"\ncomponent = \"subject.wasm\"\nroutes = [\"{}\"]\n{}\n",
        subject.route, subject.keys
    );
    let component = std::fs::read(&subject.component)?;
    let url = format!("{}{}", node.url, subject.route);
    let started = Instant::now();
    node.post_app(&client, manifest, "subject.wasm", component)
        .with_context(|| format!("deploying {}", subject.name))?;
    loop {
        if client.get(&url).send().is_ok_and(|r| r.status() == 200) {
            break;
        }
        if started.elapsed() > Duration::from_secs(300) {
            bail!("{} never answered 200", subject.name);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let deploy_to_200 = started.elapsed();
    let tier_up = if tiered {
        node.wait_until_optimized()?;
        Some(started.elapsed())
    } else {
        None
    };
    let rps = load::run(&url, spec)?.rps;
    Ok(FirstAnswer {
        deploy_to_200,
        tier_up,
        rps,
    })
}
