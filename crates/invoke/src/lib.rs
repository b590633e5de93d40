//! The invocation core: which functions are live, and the one path that
//! runs any of them.
//!
//! The *live set* — the routing table and every function of every app's
//! live version — sits behind an atomic pointer. Activating a version
//! builds a new live set and swaps it in one store; an invocation takes its
//! snapshot when it arrives, so invocations in flight finish on the version
//! they started on and none ever sees half a deploy.
//!
//! [`Invoker::invoke`] is the path every entry point takes (the HTTP
//! gateway, event delivery, the admin API's invoke, `.svc` calls between
//! functions): admission, metering, the guest, the cost receipt.

mod admission;
mod calls;
mod canary;
mod error;
mod invoker;
mod live;
mod metering;
mod routes;
mod series;
mod tenancy;
pub mod timeline;
mod traces;

pub use admission::{Admission, Admitted, Shed};
pub use calls::{DEFAULT_MAX_CALLS_PER_TREE, FunctionCalls, MAX_CALL_DEPTH};
pub use canary::{CanaryRoute, Outcomes, VersionOutcomes};
pub use error::{ErrorBody, ErrorDetail, PlatformError, full_body};
pub use invoker::{INVOCATION_ID_HEADER, Invoker, new_invocation_id, with_id};
pub use live::{LiveFunction, LiveSet, RouteConflict};
pub use routes::RouteTable;
pub use series::{
    DURATION_BUCKETS, Ending, EventOutcome, FunctionSeries, Histogram, HistogramReading,
    PhaseSeries, TriggerReading,
};
pub use stratus_runtime::{SharedWarnLimit, WarnLimit};
pub use tenancy::{Guard, Tenancy};

/// The address of the client a request came from, in the request's
/// extensions (absent for a request that did not come over a socket, as
/// in tests that drive a router directly). Set by the listeners; read by
/// the gateway (Spin's `spin-client-addr`) and the admin API's audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub std::net::SocketAddr);
