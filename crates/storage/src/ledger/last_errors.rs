//! The newest failed invocation of each function, kept in memory so that
//! `GET /v1/functions` can show it at a glance without scanning records.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

use super::record::InvocationRecord;

/// Functions remembered at most. Names come from deployed manifests, which
/// an admin token controls, but a bound keeps even a node that has seen
/// many thousands of short-lived apps from growing here.
const MAX_FUNCTIONS: usize = 10_000;

/// One failed invocation, as `stratus functions` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastError {
    pub at: SystemTime,
    pub invocation_id: String,
    pub version: u32,
    pub status: u16,
    /// The platform error code (`function_trapped`, `timeout`, …). A
    /// function that answers a 5xx itself has not failed, as in usage.
    pub code: String,
}

/// Since the node started: the ledger's records keep the full history.
#[derive(Debug, Default)]
pub(crate) struct LastErrors {
    by_function: Mutex<HashMap<(String, String), LastError>>,
}

impl LastErrors {
    /// Remembers `record` when it failed. Only failures take the lock, so
    /// the request path of a healthy function never waits here.
    pub(crate) fn note(&self, record: &InvocationRecord) {
        let Some(code) = &record.error else {
            return;
        };
        let error = LastError {
            at: record.started_at,
            invocation_id: record.id.clone(),
            version: record.version,
            status: record.status,
            code: code.clone(),
        };
        let mut map = self
            .by_function
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let key = (record.app.clone(), record.function.clone());
        if map.len() >= MAX_FUNCTIONS && !map.contains_key(&key) {
            return;
        }
        match map.get(&key) {
            Some(newer) if newer.at > error.at => {}
            _ => {
                map.insert(key, error);
            }
        }
    }

    pub(crate) fn get(&self, app: &str, function: &str) -> Option<LastError> {
        self.by_function
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&(app.to_owned(), function.to_owned()))
            .cloned()
    }
}
