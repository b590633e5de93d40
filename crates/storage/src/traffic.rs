//! An app's traffic: the canary that shares its requests with the live
//! (stable) version, and the history of its rollouts. Kept with the app by
//! every [`AppStore`](crate::AppStore), so a restarted node and every node
//! of a cluster split traffic alike.

use serde::{Deserialize, Serialize};

/// The rollout events an app keeps, newest last; older ones fall off.
pub const MAX_ROLLOUT_HISTORY: usize = 32;

/// An app's canary (if one runs) and what its rollouts did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Traffic {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<Canary>,
    /// Oldest first, at most [`MAX_ROLLOUT_HISTORY`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<RolloutEvent>,
}

impl Traffic {
    /// Appends `event`, dropping the oldest past [`MAX_ROLLOUT_HISTORY`].
    pub fn record(&mut self, event: RolloutEvent) {
        self.history.push(event);
        let excess = self.history.len().saturating_sub(MAX_ROLLOUT_HISTORY);
        self.history.drain(..excess);
    }
}

/// A version serving a share of the app's requests beside the live one,
/// and how it is to be judged and promoted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Canary {
    pub version: u32,
    /// Its share of requests, 1..=99 percent.
    pub percent: u8,
    /// The shares it moves to next, one per `interval_ms` without a
    /// breach, ascending; 100 promotes it. Empty: it stays at `percent`
    /// until someone changes the split (it is still rolled back on a
    /// breach).
    #[serde(default)]
    pub steps: Vec<u8>,
    pub interval_ms: u64,
    /// When the current step began (unix ms): the window it is judged on.
    pub since: i64,
    /// Keeps a client on one version by a request header or cookie.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticky: Option<Sticky>,
    pub policy: RolloutPolicy,
}

/// What keeps a client on one version: the same value of this request
/// header or cookie always lands on the same side of the split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Sticky {
    Header(String),
    Cookie(String),
}

/// When a canary is rolled back: measured over the current step against
/// the stable version over the same time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RolloutPolicy {
    /// The canary's error rate (failures and 5xx answers) may exceed the
    /// stable version's by at most this many percentage points.
    pub max_error_rate_increase: f64,
    /// The canary's p99 may be at most this many times the stable
    /// version's (and is never judged slower by less than 25 ms).
    pub max_p99_ratio: f64,
    /// Requests the canary must have served in a step before it is judged
    /// or promoted.
    pub min_requests: u64,
}

impl Default for RolloutPolicy {
    fn default() -> Self {
        RolloutPolicy {
            max_error_rate_increase: 2.0,
            max_p99_ratio: 1.5,
            min_requests: 20,
        }
    }
}

/// One thing that happened to an app's traffic, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RolloutEvent {
    /// Unix ms.
    pub at: i64,
    pub action: RolloutAction,
    /// The stable (live) version when it happened.
    pub stable: u32,
    pub canary: u32,
    /// The canary's share after it (0 once it ended).
    pub percent: u8,
    /// Who or what decided: a token's name, or `node` for the node's own
    /// judgement.
    pub by: String,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RolloutAction {
    /// A canary began serving.
    Started,
    /// Its share changed (a step, or a new split set by hand).
    Stepped,
    /// It became the live version.
    Promoted,
    /// It was stopped for breaching its policy.
    RolledBack,
    /// It was stopped by hand, or by a deploy, activation or rollback.
    Ended,
}

impl RolloutAction {
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutAction::Started => "started",
            RolloutAction::Stepped => "stepped",
            RolloutAction::Promoted => "promoted",
            RolloutAction::RolledBack => "rolled_back",
            RolloutAction::Ended => "ended",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keeps_the_newest() {
        let mut traffic = Traffic::default();
        for at in 0..(MAX_ROLLOUT_HISTORY as i64 + 5) {
            traffic.record(RolloutEvent {
                at,
                action: RolloutAction::Stepped,
                stable: 1,
                canary: 2,
                percent: 10,
                by: "node".into(),
                reason: String::new(),
            });
        }
        assert_eq!(traffic.history.len(), MAX_ROLLOUT_HISTORY);
        assert_eq!(traffic.history[0].at, 5);
    }

    #[test]
    fn an_empty_traffic_reads_from_an_empty_object() {
        let traffic: Traffic = serde_json::from_str("{}").unwrap();
        assert_eq!(traffic, Traffic::default());
        assert_eq!(serde_json::to_string(&traffic).unwrap(), "{}");
    }
}
