//! HTTP ingress: from a request on the gateway's socket to the live version
//! of the function whose route matches, and back.
//!
//! The gateway holds the *live set* — the routing table and every function of
//! every app's live version — behind an atomic pointer. Activating a version
//! builds a new live set and swaps it in one store; a request takes its
//! snapshot when it arrives, so requests in flight finish on the version they
//! started on and no request ever sees half a deploy.

mod admission;
mod calls;
mod error;
mod live;
mod metering;
mod routes;
mod server;

pub use admission::{Admission, Admitted, Shed};
pub use calls::{FunctionCalls, MAX_CALL_DEPTH};
pub use error::{ErrorBody, ErrorDetail, PlatformError, full_body};
pub use live::{LiveFunction, LiveSet, RouteConflict};
pub use routes::RouteTable;
pub use server::{Gateway, INVOCATION_ID_HEADER, new_invocation_id};
