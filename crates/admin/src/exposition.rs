//! The two text formats `/metrics` speaks, and which one a scraper asked for.
//!
//! Prometheus reads both: the classic text format (`text/plain;
//! version=0.0.4`), which curl, most exporters' readers and older scrapers
//! expect, and OpenMetrics 1.0, which Prometheus prefers when it may. They
//! differ in how a counter is named: OpenMetrics names the family
//! `stratus_deploys` and its sample `stratus_deploys_total`; the classic
//! format names both `stratus_deploys_total`, and a classic parser given
//! OpenMetrics text reads every counter as two families, one of them
//! without samples. So the format follows the `Accept` header, and the
//! classic one is the default.
//!
//! The node only has counters and gauges of one sample each, so both formats
//! are written here in a few lines rather than with `prometheus_client`,
//! which writes OpenMetrics only.

use std::fmt::Write as _;

/// One metric family, its name without the `stratus_` prefix (and, for a
/// counter, without `_total`).
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub samples: Vec<Sample>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One sample: its suffix after the family's name (a histogram's
/// `_bucket`, `_sum` and `_count`; a counter's `_total` is added in
/// rendering), its labels and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub suffix: &'static str,
    pub labels: Vec<(&'static str, String)>,
    pub value: Number,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    Int(i64),
    Uint(u64),
    Float(f64),
}

impl Family {
    /// A counter of one sample without labels.
    pub fn counter(name: &'static str, help: &'static str, value: u64) -> Family {
        Family {
            name,
            help,
            kind: Kind::Counter,
            samples: vec![Sample::new(Vec::new(), Number::Uint(value))],
        }
    }

    /// A gauge of one sample without labels.
    pub fn gauge(name: &'static str, help: &'static str, value: i64) -> Family {
        Family {
            name,
            help,
            kind: Kind::Gauge,
            samples: vec![Sample::new(Vec::new(), Number::Int(value))],
        }
    }
}

impl Sample {
    pub fn new(labels: Vec<(&'static str, String)>, value: Number) -> Sample {
        Sample {
            suffix: "",
            labels,
            value,
        }
    }
}

/// The exposition formats of `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The classic Prometheus text format, version 0.0.4.
    Classic,
    /// OpenMetrics 1.0.0.
    OpenMetrics,
}

const OPENMETRICS: &str = "application/openmetrics-text";
const CLASSIC: &str = "text/plain";

impl Format {
    /// The format an `Accept` header prefers: OpenMetrics only when it is
    /// asked for with a higher quality than the classic format (Prometheus
    /// asks for it first), the classic format otherwise, for `*/*`, for no
    /// header and for a header naming neither.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Classic;
        };
        if quality(accept, OPENMETRICS) > quality(accept, CLASSIC) {
            Format::OpenMetrics
        } else {
            Format::Classic
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Classic => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// The quality an `Accept` header gives `media_type`: the `q` of its most
/// specific matching range (`type/subtype`, then `type/*`, then `*/*`;
/// the highest among equally specific ones, whatever their `version`), or
/// 0 when none matches.
fn quality(accept: &str, media_type: &str) -> f32 {
    let (kind, _) = media_type.split_once('/').unwrap_or((media_type, ""));
    let mut best: Option<(u8, f32)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let range_type = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let specificity = if range_type == media_type {
            2
        } else if range_type == format!("{kind}/*") {
            1
        } else if range_type == "*/*" {
            0
        } else {
            continue;
        };
        let q = parts
            .filter_map(|p| p.split_once('='))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
            .map_or(1.0, |(_, v)| v.trim().parse::<f32>().unwrap_or(0.0))
            .clamp(0.0, 1.0);
        best = match best {
            Some((s, b)) if s > specificity || (s == specificity && b >= q) => Some((s, b)),
            _ => Some((specificity, q)),
        };
    }
    best.map_or(0.0, |(_, q)| q)
}

/// The families as text in `format`, every name prefixed with `prefix_`.
/// A family without samples is left out (a classic parser would read its
/// `# TYPE` alone as a family of its own).
pub fn render(format: Format, prefix: &str, families: &[Family]) -> String {
    let mut out = String::new();
    for family in families.iter().filter(|f| !f.samples.is_empty()) {
        let name = format!("{prefix}_{}", family.name);
        let (kind, total) = match family.kind {
            Kind::Counter => ("counter", "_total"),
            Kind::Gauge => ("gauge", ""),
            Kind::Histogram => ("histogram", ""),
        };
        // The classic format names a counter's family like its samples;
        // OpenMetrics names it without the `_total` of its samples.
        let family_name = match format {
            Format::Classic => format!("{name}{total}"),
            Format::OpenMetrics => name.clone(),
        };
        let help = escape_help(family.help, format);
        let _ = writeln!(out, "# HELP {family_name} {help}.");
        let _ = writeln!(out, "# TYPE {family_name} {kind}");
        for sample in &family.samples {
            let _ = write!(out, "{name}{}{total}", sample.suffix);
            if !sample.labels.is_empty() {
                out.push('{');
                for (i, (label, value)) in sample.labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{label}=\"{}\"", escape_label(value));
                }
                out.push('}');
            }
            let _ = match sample.value {
                Number::Int(n) => writeln!(out, " {n}"),
                Number::Uint(n) => writeln!(out, " {n}"),
                Number::Float(f) => writeln!(out, " {}", float(f)),
            };
        }
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

/// A float as both formats write one: `+Inf`, `-Inf`, `NaN`, else Rust's
/// shortest exact spelling.
pub fn float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        f.to_string()
    }
}

/// A label value with the escapes both formats need: backslash, double
/// quote and newline.
fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Help text with the escapes its format needs: backslash and newline, and
/// in OpenMetrics the double quote too.
fn escape_help(help: &str, format: Format) -> String {
    let mut out = String::with_capacity(help.len());
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if format == Format::OpenMetrics => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Prometheus 2.x and 3.x send when they scrape.
    const PROMETHEUS: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

    #[test]
    fn openmetrics_only_when_preferred() {
        let cases = [
            (None, Format::Classic),
            (Some("*/*"), Format::Classic),
            (Some(""), Format::Classic),
            (Some("text/plain;version=0.0.4"), Format::Classic),
            (
                Some("text/plain; version=0.0.4; q=0.9, */*; q=0.1"),
                Format::Classic,
            ),
            (Some("application/json"), Format::Classic),
            (Some(PROMETHEUS), Format::OpenMetrics),
            (Some("application/openmetrics-text"), Format::OpenMetrics),
            (
                Some("Application/OpenMetrics-Text; version=0.0.1"),
                Format::OpenMetrics,
            ),
            (
                Some("application/openmetrics-text;q=0.4,text/plain;q=0.5"),
                Format::Classic,
            ),
            (
                Some("text/plain;q=0.2,application/openmetrics-text;q=0.3"),
                Format::OpenMetrics,
            ),
            (Some("application/openmetrics-text;q=0"), Format::Classic),
            // A specific range wins over a wildcard, whatever its quality.
            (
                Some("application/*;q=0.9,text/*;q=0.1"),
                Format::OpenMetrics,
            ),
            (Some("*/*;q=1,text/plain;q=0.1"), Format::OpenMetrics),
        ];
        for (accept, expected) in cases {
            assert_eq!(Format::negotiate(accept), expected, "{accept:?}");
        }
    }

    #[test]
    fn a_counter_is_named_for_its_format() {
        let families = [
            Family::counter("deploys", "Versions deployed", 3),
            Family::gauge("live_functions", "Functions of \"live\" versions\\now", 2),
        ];
        assert_eq!(
            render(Format::Classic, "stratus", &families),
            "# HELP stratus_deploys_total Versions deployed.\n\
             # TYPE stratus_deploys_total counter\n\
             stratus_deploys_total 3\n\
             # HELP stratus_live_functions Functions of \"live\" versions\\\\now.\n\
             # TYPE stratus_live_functions gauge\n\
             stratus_live_functions 2\n"
        );
        assert_eq!(
            render(Format::OpenMetrics, "stratus", &families),
            "# HELP stratus_deploys Versions deployed.\n\
             # TYPE stratus_deploys counter\n\
             stratus_deploys_total 3\n\
             # HELP stratus_live_functions Functions of \\\"live\\\" versions\\\\now.\n\
             # TYPE stratus_live_functions gauge\n\
             stratus_live_functions 2\n\
             # EOF\n"
        );
    }
}
