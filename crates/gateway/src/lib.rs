//! HTTP ingress: the accept loop shared with the admin API (connection cap,
//! read, body and write timeouts, TLS with HTTP/2) and the gateway, which routes a request
//! to the live function serving its path and hands it to the invoker.

mod body;
mod conn;
mod server;
mod spin;
mod tls;

pub use body::{ReadError, TimedBody};
pub use conn::{ConnectionLimits, PeerAddr, serve_connections};
pub use server::Gateway;
pub use tls::{RELOAD_CHECK, Tls, TlsError, TlsFiles};
