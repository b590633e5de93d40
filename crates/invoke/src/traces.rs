//! An invocation's spans: begun when it arrives (so what it calls carries
//! its trace context), handed to the tracer when its meter is read.

use std::sync::Arc;
use std::time::SystemTime;

use stratus_manifest::split_key;
use stratus_runtime::Reading;
use stratus_storage::Trigger;
use stratus_telemetry::{Begun, Invocation, Tracer};

use crate::error::{PlatformError, invoke_error_code};
use crate::live::LiveFunction;

/// A traced invocation under way.
pub(crate) struct Traced {
    pub(crate) tracer: Arc<Tracer>,
    pub(crate) begun: Begun,
    pub(crate) shape: TraceShape,
}

/// What the span says of the invocation apart from how it went.
pub(crate) struct TraceShape {
    id: String,
    namespace: String,
    app: String,
    function: String,
    version: u64,
    trigger: Trigger,
    method: String,
    path: String,
}

impl TraceShape {
    pub(crate) fn of<B>(
        function: &LiveFunction,
        id: &str,
        trigger: Trigger,
        request: &http::Request<B>,
    ) -> TraceShape {
        let (namespace, app) = split_key(&function.app);
        TraceShape {
            id: id.to_owned(),
            namespace: namespace.to_owned(),
            app: app.to_owned(),
            function: function.name.clone(),
            version: u64::from(function.version),
            trigger,
            method: request.method().as_str().to_owned(),
            path: request.uri().path().to_owned(),
        }
    }

    fn invocation(self, started: SystemTime) -> Invocation {
        Invocation {
            id: self.id,
            namespace: self.namespace,
            app: self.app,
            function: self.function,
            version: self.version,
            trigger: self.trigger,
            started,
            ended: SystemTime::now(),
            cold: false,
            method: self.method,
            path: self.path,
            status: None,
            error: None,
            phases: None,
            outbound: Vec::new(),
        }
    }
}

impl Traced {
    /// Exports the spans of an invocation that ran, from its meter's
    /// `reading`.
    pub(crate) fn end(self, reading: &mut Reading) {
        let mut invocation = self.shape.invocation(self.begun.started);
        invocation.cold = reading.cold;
        invocation.status = (reading.status != 0).then_some(reading.status);
        invocation.error = reading
            .failure
            .or_else(|| reading.error.as_ref().map(|e| invoke_error_code(e).1))
            .map(str::to_owned);
        invocation.phases = reading.phases;
        invocation.outbound = std::mem::take(&mut reading.calls);
        self.tracer.end(&self.begun, invocation);
    }
}

/// Exports the span of an invocation refused before it ran.
pub(crate) fn end_refused(trace: Option<Traced>, error: &PlatformError) {
    let Some(trace) = trace else { return };
    let mut invocation = trace.shape.invocation(trace.begun.started);
    invocation.status = Some(error.status.as_u16());
    invocation.error = Some(error.code.to_owned());
    trace.tracer.end(&trace.begun, invocation);
}
