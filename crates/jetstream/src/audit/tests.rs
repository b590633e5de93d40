//! The JetStream audit log against the storage crate's suite, on the NATS
//! server at 127.0.0.1:4222 (`scripts/brokers.sh`).
#![allow(clippy::unwrap_used)]

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use stratus_storage::AuditLog;
use stratus_storage::conformance::Opened;

use crate::JetStreamAudit;
use crate::testing::{Scratch, bucket_name};

fn open_jetstream() -> Opened<Arc<dyn AuditLog>> {
    Box::pin(async move {
        let scratch = Scratch::connect().await;
        let name = bucket_name("audit");
        let log = JetStreamAudit::open(scratch.js(), &name, 1, Duration::from_secs(3600))
            .await
            .unwrap();
        let scratch = scratch.removing(format!("{name}_audit"));
        (
            Arc::new(log) as Arc<dyn AuditLog>,
            Box::new(scratch) as Box<dyn Any>,
        )
    })
}

mod conformance {
    stratus_storage::audit_conformance!(super::open_jetstream);
}
