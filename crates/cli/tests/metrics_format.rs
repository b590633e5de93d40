//! `/metrics` as Prometheus expects (issue 16, item 7): the classic text
//! format unless `Accept` prefers OpenMetrics, each family named like its
//! samples, read back by Prometheus's own parser (`promtool`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};

use crate::common::*;

/// What Prometheus sends when it scrapes.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
const CLASSIC: &str = "text/plain; version=0.0.4; charset=utf-8";
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Scrapes `/metrics` with `accept` (none when `None`): its content type and body.
async fn scrape(server: &Server, accept: Option<&str>) -> (String, String) {
    let mut request = server.http.get(server.admin_url("/metrics"));
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    assert_eq!(header("vary"), "Accept", "{accept:?}");
    let content_type = header("content-type");
    (content_type, response.text().await.unwrap())
}

/// A text body as families: the name of each `# TYPE` line with its type,
/// each `# HELP` line's name, and every sample (name and labels) with its
/// value.
struct Parsed {
    types: BTreeMap<String, String>,
    helps: BTreeSet<String>,
    samples: BTreeMap<String, String>,
}

impl Parsed {
    /// The names of the families the samples belong to: a sample's name
    /// without its labels, and without `_bucket`, `_sum` or `_count` when
    /// that names a histogram.
    fn sampled_families(&self) -> BTreeSet<String> {
        self.samples
            .keys()
            .map(|sample| {
                let name = sample.split('{').next().unwrap();
                ["_bucket", "_sum", "_count"]
                    .iter()
                    .filter_map(|suffix| name.strip_suffix(suffix))
                    .find(|base| self.types.get(*base).is_some_and(|k| k == "histogram"))
                    .unwrap_or(name)
                    .to_owned()
            })
            .collect()
    }
}

fn parse(text: &str) -> Parsed {
    let mut parsed = Parsed {
        types: BTreeMap::new(),
        helps: BTreeSet::new(),
        samples: BTreeMap::new(),
    };
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["#", "TYPE", name, kind] => {
                let fresh = parsed.types.insert(name.to_string(), kind.to_string());
                assert!(fresh.is_none(), "{name} typed twice:\n{text}");
            }
            ["#", "HELP", name, ..] => {
                assert!(parsed.helps.insert(name.to_string()), "{name} twice");
            }
            ["#", ..] => {}
            [name, value] => {
                let fresh = parsed.samples.insert(name.to_string(), value.to_string());
                assert!(fresh.is_none(), "sample {name} twice:\n{text}");
            }
            _ => panic!("unexpected line {line:?} in:\n{text}"),
        }
    }
    parsed
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_speak_the_format_the_scraper_asks_for() {
    let server = Server::start();
    server.deploy(testbed_app("metered", "metered", &["/metered"], "").path());
    // A request, so the per-function families (a histogram among them)
    // have samples to be read.
    assert_eq!(server.send("GET", "/metered", b"").await.0, 200);
    let counted = "stratus_function_duration_seconds_count{namespace=\"default\",app=\"metered\",function=\"metered\",trigger=\"http\"}";
    assert_eq!(server.metric_reaching(counted, 1).await, 1);

    for (accept, expected) in [
        (None, CLASSIC),
        (Some("*/*"), CLASSIC),
        (Some("text/plain;version=0.0.4"), CLASSIC),
        (Some(PROMETHEUS_ACCEPT), OPENMETRICS),
        (Some("application/openmetrics-text"), OPENMETRICS),
    ] {
        let (content_type, _) = scrape(&server, accept).await;
        assert_eq!(content_type, expected, "Accept: {accept:?}");
    }

    // The classic format: every family named like its one sample, counters
    // ending in `_total`, and nothing of OpenMetrics.
    let (_, classic) = scrape(&server, Some("text/plain;version=0.0.4")).await;
    for absent in ["# EOF", "# UNIT", "_created"] {
        assert!(!classic.contains(absent), "{absent} in:\n{classic}");
    }
    let parsed = parse(&classic);
    let typed: BTreeSet<&String> = parsed.types.keys().collect();
    let sampled = parsed.sampled_families();
    assert_eq!(
        typed,
        sampled.iter().collect(),
        "a # TYPE per sample family:\n{classic}"
    );
    assert_eq!(typed, parsed.helps.iter().collect(), "{classic}");
    assert!(parsed.types.len() >= 20, "{classic}");
    for (name, kind) in &parsed.types {
        assert!(
            kind == "gauge"
                || kind == "histogram"
                || (kind == "counter" && name.ends_with("_total")),
            "{name} {kind}"
        );
    }
    assert_eq!(parsed.samples["stratus_deploys_total"], "1");
    assert_eq!(parsed.types["stratus_deploys_total"], "counter");
    // The one request, in each phase but the queue's length (0 s: at most
    // the first bound).
    assert_eq!(
        parsed.types["stratus_invocation_phase_seconds"],
        "histogram"
    );
    for phase in ["queue", "instantiate", "execution"] {
        let count = format!("stratus_invocation_phase_seconds_count{{phase=\"{phase}\"}}");
        assert_eq!(parsed.samples[&count], "1", "{phase}:\n{classic}");
    }
    assert_eq!(
        parsed.samples["stratus_invocation_phase_seconds_bucket{phase=\"queue\",le=\"0.005\"}"],
        "1"
    );
    promtool_reads(&classic, &typed);

    // OpenMetrics: a counter's family without `_total`, its sample with it,
    // the same samples, and `# EOF` last.
    let (_, open) = scrape(&server, Some(PROMETHEUS_ACCEPT)).await;
    assert!(open.ends_with("\n# EOF\n"), "{open}");
    let om = parse(&open);
    assert_eq!(
        om.samples.keys().collect::<BTreeSet<_>>(),
        parsed.samples.keys().collect()
    );
    assert_eq!(om.samples["stratus_deploys_total"], "1");
    let om_sampled = om.sampled_families();
    for (family, kind) in &om.types {
        let sample = match kind.as_str() {
            "counter" => format!("{family}_total"),
            _ => family.clone(),
        };
        assert!(om_sampled.contains(&sample), "{family}: no samples");
    }
    assert_eq!(om.types.len(), om_sampled.len());
    assert_eq!(om.types["stratus_deploys"], "counter");
}

/// `promtool check metrics`, Prometheus's own reader and linter of the
/// classic format: it must find no problem and read exactly the families
/// the body types (it drops a family without samples, so a `# TYPE` with
/// none would be missing from its list).
fn promtool_reads(classic: &str, typed: &BTreeSet<&String>) {
    let child = Command::new("promtool")
        .args(["check", "metrics", "--extended"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
            assert!(
                !ci,
                "promtool is needed in CI: apt-get install -y --no-install-recommends prometheus"
            );
            eprintln!(
                "skipping the promtool check: promtool is not installed \
                 (apt-get install -y --no-install-recommends prometheus)"
            );
            return;
        }
        Err(e) => panic!("cannot run promtool: {e}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(classic.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool: {report}\n{classic}");
    // The table of --extended: a header, one line per family, a total.
    let read: BTreeSet<String> = report
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| name.starts_with("stratus_"))
        .map(str::to_string)
        .collect();
    assert_eq!(
        read.iter().collect::<BTreeSet<_>>(),
        *typed,
        "promtool read other families: {report}"
    );
}
