//! HTTP ingress: the accept loop shared with the admin API (connection cap,
//! read, body and write timeouts) and the gateway, which routes a request
//! to the live function serving its path and hands it to the invoker.

mod body;
mod conn;
mod server;
mod spin;

pub use body::{ReadError, TimedBody};
pub use conn::{ConnectionLimits, PeerAddr, serve_connections};
pub use server::Gateway;
