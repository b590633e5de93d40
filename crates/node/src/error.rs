//! Why a node could not start or stopped serving.

use std::net::SocketAddr;

use crate::config::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// One of the node's stores or its runtime could not be opened. The
    /// cause is in the message and not also the error's source, which a
    /// report of the chain (`{:#}`) would print a second time.
    #[error("cannot open the {what}: {cause}")]
    Open {
        what: &'static str,
        cause: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The cluster's NATS servers or its buckets could not be reached.
    #[error("cluster: {0}")]
    Cluster(String),
    #[error("cannot load the deployed apps: {0}")]
    Load(Box<stratus_control::ControlError>),
    #[error("{}", bind_message(.addr, .flag, .source))]
    Bind {
        addr: SocketAddr,
        flag: &'static str,
        source: std::io::Error,
    },
    /// A listener's certificate or key could not be loaded.
    #[error("{flag}: {source}")]
    Tls {
        flag: &'static str,
        source: stratus_gateway::TlsError,
    },
    /// Traces were asked for in a way the node cannot export them.
    #[error("tracing: {0}")]
    Tracing(#[from] stratus_telemetry::TelemetryError),
    #[error("{0} task failed: {1}")]
    Task(&'static str, tokio::task::JoinError),
    #[error("{0} failed: {1}")]
    Serve(&'static str, std::io::Error),
}

impl NodeError {
    pub(crate) fn open(
        what: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> NodeError {
        NodeError::Open {
            what,
            cause: Box::new(source),
        }
    }
}

fn bind_message(addr: &SocketAddr, flag: &str, source: &std::io::Error) -> String {
    if source.kind() == std::io::ErrorKind::AddrInUse {
        format!("{addr} is already in use; choose another address with {flag}")
    } else {
        format!("cannot listen on {addr} ({flag}): {source}")
    }
}
