//! The node's tracer: sampling, and a batch exporter sending OTLP over
//! HTTP/protobuf, configured by flags or the standard `OTEL_*` variables.

use std::time::SystemTime;

use http::HeaderMap;
use opentelemetry::trace::{SpanContext, SpanKind, TraceContextExt, TraceFlags};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, Config, IdGenerator, RandomIdGenerator, Sampler, SamplingDecision,
    ShouldSample, SpanProcessor,
};

use crate::context::{TraceParent, extract};
use crate::spans::{Invocation, spans};

/// How a node exports traces.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TracingConfig {
    /// `--otlp-endpoint`: an OTLP/HTTP collector's base URL, such as
    /// `http://127.0.0.1:4318`; spans go to its `/v1/traces`. Without it,
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT`
    /// decide, and with neither set tracing is off.
    pub endpoint: Option<String>,
    /// `--trace-sample-ratio`: the share of traces begun on this node that
    /// are kept; a caller's decision (its `traceparent`'s sampled flag) is
    /// followed. Without it, `OTEL_TRACES_SAMPLER` (and `_ARG`) decide, by
    /// default every trace.
    pub sample_ratio: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("--otlp-endpoint {0:?} is not an http:// or https:// URL")]
    Endpoint(String),
    #[error(
        "{variable}={value:?}: Stratus exports traces over OTLP/HTTP with protobuf only; \
         set it to http/protobuf (a collector's port 4318) or unset it"
    )]
    Protocol {
        variable: &'static str,
        value: String,
    },
    #[error("--trace-sample-ratio {0} is not between 0 and 1")]
    Ratio(f64),
    #[error("the OTLP exporter could not be built: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
}

/// Exports invocations' spans; `None` of it in a node means tracing is
/// off, and then no invocation does any tracing work.
#[derive(Debug)]
pub struct Tracer {
    processor: BatchSpanProcessor,
    sampler: Box<dyn ShouldSample>,
    ids: RandomIdGenerator,
    scope: InstrumentationScope,
}

/// An invocation's span, begun: sampled or not, it is the parent of what
/// the invocation calls, so the decision travels with the trace.
#[derive(Debug, Clone)]
pub struct Begun {
    pub trace: TraceParent,
    parent: Option<SpanContext>,
    pub started: SystemTime,
}

impl Tracer {
    /// The tracer `config` and the environment ask for, or `None` when
    /// tracing is off. Starts the exporter's thread.
    pub fn from_config(config: &TracingConfig) -> Result<Option<Tracer>, TelemetryError> {
        let endpoint = match &config.endpoint {
            Some(base) => Some(traces_url(base)?),
            None if enabled_by_environment() => None,
            None => return Ok(None),
        };
        check_protocol()?;
        let sampler: Box<dyn ShouldSample> = match config.sample_ratio {
            Some(ratio) if !(0.0..=1.0).contains(&ratio) => {
                return Err(TelemetryError::Ratio(ratio));
            }
            Some(ratio) => Box::new(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                ratio,
            )))),
            // Reads OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG.
            None => Config::default().sampler,
        };
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary);
        if let Some(endpoint) = endpoint {
            exporter = exporter.with_endpoint(endpoint);
        }
        // The batch processor's thread sends; its queue is bounded (2,048
        // spans, `OTEL_BSP_MAX_QUEUE_SIZE`) and drops the newest when a
        // collector is slow or gone, so invocations never wait on it.
        let mut processor = BatchSpanProcessor::builder(exporter.build()?).build();
        processor.set_resource(&resource());
        Ok(Some(Tracer {
            processor,
            sampler,
            ids: RandomIdGenerator::default(),
            scope: InstrumentationScope::builder("stratus")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
        }))
    }

    /// Begins the span of an invocation whose request has `headers`: under
    /// the caller's span when they carry a valid `traceparent`, else in a
    /// new trace, sampled as the sampler decides.
    pub fn begin(&self, headers: &HeaderMap, consumer: bool) -> Begun {
        let parent = extract(headers);
        let cx = match &parent {
            Some(parent) => Context::new().with_remote_span_context(parent.clone()),
            None => Context::new(),
        };
        let trace_id = parent
            .as_ref()
            .map_or_else(|| self.ids.new_trace_id(), SpanContext::trace_id);
        let kind = if consumer {
            SpanKind::Consumer
        } else {
            SpanKind::Server
        };
        let decision =
            self.sampler
                .should_sample(Some(&cx), trace_id, "invocation", &kind, &[], &[]);
        let flags = match decision.decision {
            SamplingDecision::RecordAndSample => TraceFlags::SAMPLED,
            SamplingDecision::RecordOnly | SamplingDecision::Drop => TraceFlags::default(),
        };
        let context = SpanContext::new(
            trace_id,
            self.ids.new_span_id(),
            flags,
            false,
            decision.trace_state,
        );
        Begun {
            trace: TraceParent { context },
            parent,
            started: SystemTime::now(),
        }
    }

    /// Hands the spans of an ended invocation to the exporter, if its trace
    /// is sampled.
    pub fn end(&self, begun: &Begun, invocation: Invocation) {
        if !begun.trace.sampled() {
            return;
        }
        for span in spans(
            invocation,
            &begun.trace.context,
            begun.parent.as_ref(),
            &self.scope,
        ) {
            self.processor.on_end(span);
        }
    }

    /// Sends what is queued and stops the exporter; blocks up to its
    /// timeout, so call it off the async runtime's threads.
    pub fn shutdown(&self) {
        if let Err(error) = self.processor.shutdown() {
            tracing::warn!("the trace exporter did not stop cleanly: {error}");
        }
    }
}

/// `<base>/v1/traces`, as the OTLP specification builds the traces URL
/// from `OTEL_EXPORTER_OTLP_ENDPOINT`.
fn traces_url(base: &str) -> Result<String, TelemetryError> {
    let bad = || TelemetryError::Endpoint(base.to_owned());
    let uri: http::Uri = base.parse().map_err(|_| bad())?;
    match uri.scheme_str() {
        Some("http" | "https") if uri.host().is_some() => {}
        _ => return Err(bad()),
    }
    Ok(format!("{}/v1/traces", base.trim_end_matches('/')))
}

/// Tracing is on without `--otlp-endpoint` when the standard variables
/// name a collector and do not turn the SDK or the exporter off.
fn enabled_by_environment() -> bool {
    let var = |name| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    if var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return false;
    }
    if var("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none")) {
        return false;
    }
    var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some()
        || var("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
}

/// The exporter speaks HTTP/protobuf; a collector configured for gRPC or
/// JSON would refuse every export, so say so at start-up instead.
fn check_protocol() -> Result<(), TelemetryError> {
    for variable in [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ] {
        if let Ok(value) = std::env::var(variable) {
            if !value.is_empty() && value != "http/protobuf" {
                return Err(TelemetryError::Protocol { variable, value });
            }
            // The traces variable wins over the general one.
            return Ok(());
        }
    }
    Ok(())
}

/// `service.name` is `stratus` unless `OTEL_SERVICE_NAME` (or
/// `OTEL_RESOURCE_ATTRIBUTES`, which also names a node's
/// `service.instance.id`) says otherwise.
fn resource() -> Resource {
    let mut builder = Resource::builder();
    let named = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.is_empty())
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|v| v.contains("service.name="));
    if !named {
        builder = builder.with_service_name("stratus");
    }
    builder
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_a_base_url() {
        assert_eq!(
            traces_url("http://127.0.0.1:4318").ok().as_deref(),
            Some("http://127.0.0.1:4318/v1/traces")
        );
        assert_eq!(
            traces_url("https://otel.example/").ok().as_deref(),
            Some("https://otel.example/v1/traces")
        );
        for bad in ["127.0.0.1:4318", "grpc://x:4317", "", "http://"] {
            assert!(traces_url(bad).is_err(), "{bad}");
        }
    }
}
