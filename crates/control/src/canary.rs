//! Canary releases: a new version serves a share of an app's requests
//! beside the live (stable) one; the node judges it against the stable
//! version over each step and promotes it in steps, or rolls it back on a
//! breach, recording why in the app's rollout history and the audit log.
//!
//! The split is stored with the app ([`stratus_storage::Traffic`]), so a
//! restarted node and every node of a cluster serve it alike. Each node
//! judges the requests it served itself; in a cluster any node that sees a
//! breach rolls the canary back, the safe direction.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use stratus_invoke::{CanaryRoute, LiveFunction, Outcomes, VersionOutcomes};
use stratus_manifest::split_key;
use stratus_storage::{
    AppRecord, AuditEntry, Canary, RolloutAction, RolloutEvent, RolloutPolicy, Sticky, now_ms,
};

use crate::error::ControlError;
use crate::node::{Node, not_found};

/// The longest a step may last, and the shortest.
const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);
const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// A canary is never judged slower by less than this: at microsecond
/// latencies a ratio alone is noise.
const P99_SLACK_MS: f64 = 25.0;
/// Who the node's own decisions are recorded as.
const NODE: &str = "node";

/// How a canary is to run: its first share, the shares it steps through,
/// how long each step lasts, stickiness, and when it is rolled back.
#[derive(Debug, Clone, PartialEq)]
pub struct CanaryPlan {
    pub percent: u8,
    pub steps: Vec<u8>,
    pub interval: Duration,
    pub sticky: Option<Sticky>,
    pub policy: RolloutPolicy,
}

impl Default for CanaryPlan {
    fn default() -> Self {
        CanaryPlan {
            percent: 10,
            steps: Vec::new(),
            interval: Duration::from_secs(60),
            sticky: None,
            policy: RolloutPolicy::default(),
        }
    }
}

impl CanaryPlan {
    /// Refuses a plan that cannot run as written, saying what to change.
    pub fn check(&self) -> Result<(), ControlError> {
        let bad = |m: String| Err(ControlError::Traffic(m));
        if !(1..=99).contains(&self.percent) {
            return bad(format!(
                "a canary's share must be 1 to 99 percent, not {}",
                self.percent
            ));
        }
        let mut last = self.percent;
        for (i, &step) in self.steps.iter().enumerate() {
            if step <= last || step > 100 {
                return bad(format!(
                    "steps must rise above the canary's share ({}) up to at most 100: step {} is {step}",
                    self.percent,
                    i + 1
                ));
            }
            if step == 100 && i + 1 != self.steps.len() {
                return bad("100 (promotion) can only be the last step".into());
            }
            last = step;
        }
        if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&self.interval) {
            return bad(format!(
                "the interval between steps must be 1s to 24h, not {:?}",
                self.interval
            ));
        }
        let p = &self.policy;
        if !(0.0..=100.0).contains(&p.max_error_rate_increase) {
            return bad("max_error_rate_increase is in percentage points, 0 to 100".into());
        }
        if !(p.max_p99_ratio.is_finite() && p.max_p99_ratio >= 1.0) {
            return bad("max_p99_ratio must be a number of at least 1".into());
        }
        if !(1..=1_000_000).contains(&p.min_requests) {
            return bad("min_requests must be 1 to 1000000".into());
        }
        if let Some(sticky) = &self.sticky {
            let name = match sticky {
                Sticky::Header(name) | Sticky::Cookie(name) => name,
            };
            let token = |b: u8| b.is_ascii_alphanumeric() || b"-_.".contains(&b);
            if name.is_empty() || name.len() > 64 || !name.bytes().all(token) {
                return bad(format!(
                    "a sticky header or cookie name is 1 to 64 letters, digits, '-', '_' or '.', not {name:?}"
                ));
            }
            if let Sticky::Header(name) = sticky
                && http::HeaderName::from_bytes(name.as_bytes()).is_err()
            {
                return bad(format!("{name:?} is not a header name"));
            }
        }
        Ok(())
    }

    pub(crate) fn canary(&self, version: u32) -> Canary {
        Canary {
            version,
            percent: self.percent,
            steps: self.steps.clone(),
            interval_ms: u64::try_from(self.interval.as_millis()).unwrap_or(u64::MAX),
            since: now_ms(),
            sticky: self.sticky.as_ref().map(|s| match s {
                // Header names are case-insensitive; store them as served.
                Sticky::Header(name) => Sticky::Header(name.to_ascii_lowercase()),
                cookie => cookie.clone(),
            }),
            policy: self.policy,
        }
    }
}

/// A split asked for by hand: `(version, percent)` pairs, one version at
/// 100 or two summing to 100, and how a canary among them is to run (its
/// share comes from the split).
#[derive(Debug, Clone)]
pub struct SplitRequest {
    pub split: Vec<(u32, u8)>,
    pub plan: CanaryPlan,
    /// Who asked (a token's name), for the history.
    pub by: String,
}

/// An app's traffic as this node serves and measures it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrafficReport {
    pub app: String,
    pub live_version: Option<u32>,
    pub canary: Option<Canary>,
    /// The current step as this node measured it (none without a canary).
    pub window: Option<TrafficWindow>,
    /// Oldest first.
    pub history: Vec<RolloutEvent>,
}

/// Both versions over the current step, on this node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrafficWindow {
    pub stable: VersionWindow,
    pub canary: VersionWindow,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionWindow {
    pub version: u32,
    pub requests: u64,
    pub errors: u64,
    pub error_percent: f64,
    pub p99_ms: Option<f64>,
}

impl VersionWindow {
    fn of(version: u32, o: &Outcomes) -> Self {
        VersionWindow {
            version,
            requests: o.requests,
            errors: o.errors,
            error_percent: o.error_percent(),
            p99_ms: o.p99_ms(),
        }
    }
}

/// Where a step began on this node: both versions' counters then.
#[derive(Debug, Clone)]
pub(crate) struct StepStart {
    canary: u32,
    since: i64,
    stable: Outcomes,
    canary_read: Outcomes,
}

/// What the judge decided about one canary.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Not enough requests yet, or the step is not over.
    Hold,
    RollBack(String),
    Step(u8, String),
    Promote(String),
}

/// Judges a canary's step: a breach of `canary.policy` rolls it back (as
/// soon as it has `min_requests`); a step lived through without one moves
/// it on.
pub fn judge(canary: &Canary, stable: &Outcomes, tried: &Outcomes, now: i64) -> Verdict {
    let p = &canary.policy;
    if tried.requests < p.min_requests {
        return Verdict::Hold;
    }
    let (rate, base) = (tried.error_percent(), stable.error_percent());
    if rate > base + p.max_error_rate_increase {
        return Verdict::RollBack(format!(
            "error rate {rate:.1}% over {} requests against {base:.1}% on the stable version (at most {:.1} points more allowed)",
            tried.requests, p.max_error_rate_increase
        ));
    }
    if let (Some(p99), Some(base)) = (tried.p99_ms(), stable.p99_ms())
        && p99 > base * p.max_p99_ratio
        && p99 > base + P99_SLACK_MS
    {
        return Verdict::RollBack(format!(
            "p99 {p99:.1} ms over {} requests against {base:.1} ms on the stable version (at most {:.2}× allowed)",
            tried.requests, p.max_p99_ratio
        ));
    }
    let elapsed = u64::try_from(now.saturating_sub(canary.since)).unwrap_or(0);
    let Some(&next) = canary.steps.first() else {
        return Verdict::Hold;
    };
    if elapsed < canary.interval_ms {
        return Verdict::Hold;
    }
    let healthy = format!(
        "{} requests at {:.1}% errors, p99 {} (stable {:.1}%, p99 {})",
        tried.requests,
        rate,
        ms(tried.p99_ms()),
        base,
        ms(stable.p99_ms())
    );
    if next >= 100 {
        Verdict::Promote(healthy)
    } else {
        Verdict::Step(next, healthy)
    }
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.1} ms"))
}

impl Node {
    /// The counters of `version` of `app` while it serves (stable or
    /// canary), else fresh ones: every function of a version shares them.
    pub(crate) fn outcomes_for(&self, app: &str, version: u32) -> Arc<VersionOutcomes> {
        let live = self.invoker.live();
        live.functions()
            .chain(live.canary_functions())
            .find(|f| f.app == app && f.version == version)
            .map(|f| f.outcomes.clone())
            .unwrap_or_default()
    }

    /// The app's traffic: what the store holds, with this node's measure
    /// of the current step.
    pub async fn traffic(&self, app: &str) -> Result<TrafficReport, ControlError> {
        let record = self.app(app).await?;
        let window = record
            .traffic
            .canary
            .as_ref()
            .and_then(|c| self.window(app, c))
            .map(|(stable, canary, sv, cv)| TrafficWindow {
                stable: VersionWindow::of(sv, &stable),
                canary: VersionWindow::of(cv, &canary),
            });
        Ok(TrafficReport {
            app: record.name,
            live_version: record.live_version,
            canary: record.traffic.canary,
            window,
            history: record.traffic.history,
        })
    }

    /// Both versions' outcomes since the canary's step began on this node
    /// (when it first saw the step), with their version numbers.
    fn window(&self, app: &str, canary: &Canary) -> Option<(Outcomes, Outcomes, u32, u32)> {
        let live = self.invoker.live();
        let stable = live.functions().find(|f| f.app == app)?.clone();
        let serving = live.canary(app).filter(|c| c.version == canary.version)?;
        let tried = serving.functions().first()?.clone();
        let (stable_now, tried_now) = (stable.outcomes.read(), tried.outcomes.read());
        let mut starts = self.canary_steps.lock().ok()?;
        let begun = || StepStart {
            canary: canary.version,
            since: canary.since,
            stable: stable_now.clone(),
            canary_read: tried_now.clone(),
        };
        let start = starts.entry(app.to_owned()).or_insert_with(begun);
        // Another canary, or another step of it: a new window.
        if start.canary != canary.version || start.since != canary.since {
            *start = begun();
        }
        Some((
            stable_now.since(&start.stable),
            tried_now.since(&start.canary_read),
            stable.version,
            canary.version,
        ))
    }

    /// Serves `set`, the window of `app`'s canary (if it has one) starting
    /// now: measured from when the step began serving, not from whenever
    /// it is first looked at.
    fn serve_split(&self, app: &str, set: stratus_invoke::LiveSet) {
        self.invoker.activate(set);
        let canary = self.invoker.live().canary(app).map(|c| c.plan.clone());
        if let Some(canary) = canary {
            self.window(app, &canary);
        }
    }

    /// Sets a split by hand: one version at 100 makes it live alone (ending
    /// any canary); two versions make the live one (or else the larger
    /// share) stable and the other its canary at its share.
    pub async fn set_split(
        &self,
        app: &str,
        request: SplitRequest,
    ) -> Result<TrafficReport, ControlError> {
        let bad = |m: String| Err(ControlError::Traffic(m));
        let mut split = request.split.clone();
        split.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        if split.iter().map(|(_, p)| u32::from(*p)).sum::<u32>() != 100 {
            return bad("the shares of a split must add up to 100".into());
        }
        if split.windows(2).any(|w| w[0].0 == w[1].0) {
            return bad("a version may appear only once in a split".into());
        }
        let serialized = self.deploy_lock.lock().await;
        let record = self.app(app).await?;
        let (stable, canary) = match split.as_slice() {
            [(only, _)] => (*only, None),
            [(a, pa), (b, pb)] => {
                if record.live_version == Some(*b) {
                    (*b, Some((*a, *pa)))
                } else {
                    (*a, Some((*b, *pb)))
                }
            }
            _ => return bad("a split names one version at 100, or two (stable and canary)".into()),
        };
        let mut traffic = record.traffic.clone();
        let previous = traffic.canary.take();
        let now = now_ms();
        let event = |action, canary: u32, percent, reason: String| RolloutEvent {
            at: now,
            action,
            stable,
            canary,
            percent,
            by: request.by.clone(),
            reason,
        };
        let plan = match canary {
            Some((version, percent)) => {
                let plan = CanaryPlan {
                    percent,
                    ..request.plan.clone()
                };
                plan.check()?;
                let canary = plan.canary(version);
                let action = match &previous {
                    Some(p) if p.version == version => RolloutAction::Stepped,
                    _ => RolloutAction::Started,
                };
                traffic.record(event(action, version, percent, "split set by hand".into()));
                traffic.canary = Some(canary.clone());
                Some(canary)
            }
            None => {
                if let Some(p) = &previous {
                    let action = if p.version == stable {
                        RolloutAction::Promoted
                    } else {
                        RolloutAction::Ended
                    };
                    traffic.record(event(action, p.version, 0, "split set by hand".into()));
                }
                None
            }
        };
        // Load what will serve before anything is written.
        let mut set = (*self.invoker.live()).clone();
        if record.live_version != Some(stable) {
            let functions = self.load_stored(app, stable).await?;
            set = set
                .with_app(app, functions)
                .map_err(ControlError::RouteConflict)?;
        }
        let route = match &plan {
            Some(canary) => Some(self.canary_route(app, canary).await?),
            None => None,
        };
        let set = set
            .with_canary(app, route)
            .map_err(ControlError::RouteConflict)?;
        let live = (record.live_version != Some(stable)).then_some(stable);
        self.apps
            .set_traffic(app, live, traffic)
            .await
            .map_err(|e| not_found(e, app))?;
        self.serve_split(app, set);
        drop(serialized);
        tracing::info!(app, stable, canary = ?canary, "traffic split set");
        self.traffic(app).await
    }

    /// Starts `canary` beside the live version after a deploy stored it
    /// (not live): the caller holds the deploy lock.
    pub(crate) async fn start_canary(
        &self,
        app: &str,
        record: &AppRecord,
        functions: Vec<Arc<LiveFunction>>,
        canary: Canary,
        by: &str,
    ) -> Result<(), ControlError> {
        let stable = record.live_version.unwrap_or_default();
        let route = CanaryRoute::new(canary.clone(), functions);
        let set = self
            .invoker
            .live()
            .with_canary(app, Some(route))
            .map_err(ControlError::RouteConflict)?;
        let mut traffic = record.traffic.clone();
        if let Some(previous) = traffic.canary.take() {
            traffic.record(RolloutEvent {
                at: now_ms(),
                action: RolloutAction::Ended,
                stable,
                canary: previous.version,
                percent: 0,
                by: by.to_owned(),
                reason: format!("replaced by version {}", canary.version),
            });
        }
        traffic.record(RolloutEvent {
            at: now_ms(),
            action: RolloutAction::Started,
            stable,
            canary: canary.version,
            percent: canary.percent,
            by: by.to_owned(),
            reason: "deployed as a canary".into(),
        });
        traffic.canary = Some(canary);
        self.apps
            .set_traffic(app, None, traffic)
            .await
            .map_err(|e| not_found(e, app))?;
        self.serve_split(app, set);
        Ok(())
    }

    /// The canary `canary` of `app` ready to serve: the serving one's
    /// functions when it is the same version, else loaded from the store.
    pub(crate) async fn canary_route(
        &self,
        app: &str,
        canary: &Canary,
    ) -> Result<CanaryRoute, ControlError> {
        let live = self.invoker.live();
        if let Some(serving) = live.canary(app).filter(|c| c.version == canary.version) {
            return Ok(serving.at(canary.clone()));
        }
        // A canary that was the stable version a moment ago keeps its code.
        let stable: Vec<_> = live
            .functions()
            .filter(|f| f.app == app && f.version == canary.version)
            .cloned()
            .collect();
        let functions = if stable.is_empty() {
            self.load_stored(app, canary.version).await?
        } else {
            stable
        };
        Ok(CanaryRoute::new(canary.clone(), functions))
    }

    /// Loads every function of a stored version of `app`.
    pub(crate) async fn load_stored(
        &self,
        app: &str,
        version: u32,
    ) -> Result<Vec<Arc<LiveFunction>>, ControlError> {
        let stored = self
            .apps
            .version(app, version)
            .await
            .map_err(|e| not_found(e, app))?;
        self.load_version(app, version, stored.functions).await
    }

    /// Serves the canary the store holds for `app` (or none), when it is
    /// not what serves: at start-up, and when another node changed it.
    pub(crate) async fn follow_canary(
        &self,
        app: &str,
        canary: Option<&Canary>,
    ) -> Result<(), ControlError> {
        let live = self.invoker.live();
        let serving = live.canary(app).map(|c| &c.plan);
        if serving == canary {
            return Ok(());
        }
        let route = match canary {
            Some(canary) => Some(self.canary_route(app, canary).await?),
            None => None,
        };
        let set = self
            .invoker
            .live()
            .with_canary(app, route)
            .map_err(ControlError::RouteConflict)?;
        self.serve_split(app, set);
        Ok(())
    }

    /// One round of judging: each canary this node serves is judged on
    /// its current step, and rolled back, stepped or promoted.
    pub async fn judge_canaries(&self) -> Vec<(String, Verdict)> {
        let live = self.invoker.live();
        let apps: Vec<(String, Canary)> = live
            .canaries()
            .map(|(app, c)| (app.clone(), c.plan.clone()))
            .collect();
        let mut decided = Vec::new();
        for (app, canary) in apps {
            let Some((stable, tried, ..)) = self.window(&app, &canary) else {
                continue;
            };
            let verdict = judge(&canary, &stable, &tried, now_ms());
            if verdict == Verdict::Hold {
                continue;
            }
            match self.apply(&app, &canary, &verdict).await {
                Ok(true) => decided.push((app, verdict)),
                Ok(false) => {}
                Err(e) => tracing::warn!(app, "could not act on the canary: {e}"),
            }
        }
        decided
    }

    /// Carries out `verdict` on `app`'s canary if it is still `judged`
    /// (nobody changed it meanwhile); says whether it did.
    async fn apply(
        &self,
        app: &str,
        judged: &Canary,
        verdict: &Verdict,
    ) -> Result<bool, ControlError> {
        let _serialized = self.deploy_lock.lock().await;
        let record = self.app(app).await?;
        if record.traffic.canary.as_ref() != Some(judged) {
            return Ok(false);
        }
        let stable = record.live_version.unwrap_or_default();
        let mut traffic = record.traffic.clone();
        let (action, percent, reason) = match verdict {
            Verdict::Hold => return Ok(false),
            Verdict::RollBack(reason) => (RolloutAction::RolledBack, 0, reason),
            Verdict::Step(next, reason) => (RolloutAction::Stepped, *next, reason),
            Verdict::Promote(reason) => (RolloutAction::Promoted, 100, reason),
        };
        traffic.record(RolloutEvent {
            at: now_ms(),
            action,
            stable,
            canary: judged.version,
            percent,
            by: NODE.into(),
            reason: reason.clone(),
        });
        let live = self.invoker.live();
        let (set, new_live) = match verdict {
            Verdict::Step(next, _) => {
                let mut canary = judged.clone();
                canary.percent = *next;
                canary.steps.remove(0);
                canary.since = now_ms();
                let route = self.canary_route(app, &canary).await?;
                traffic.canary = Some(canary);
                (live.with_canary(app, Some(route)), None)
            }
            Verdict::Promote(_) => {
                traffic.canary = None;
                let route = self.canary_route(app, judged).await?;
                let functions = route.functions().to_vec();
                (live.with_app(app, functions), Some(judged.version))
            }
            _ => {
                traffic.canary = None;
                (live.with_canary(app, None), None)
            }
        };
        let set = set.map_err(ControlError::RouteConflict)?;
        self.apps
            .set_traffic(app, new_live, traffic)
            .await
            .map_err(|e| not_found(e, app))?;
        self.serve_split(app, set);
        tracing::info!(
            app,
            canary = judged.version,
            action = action.as_str(),
            "{reason}"
        );
        self.audit_decision(app, action, judged.version, reason)
            .await;
        Ok(true)
    }

    async fn audit_decision(&self, app: &str, action: RolloutAction, version: u32, reason: &str) {
        let Some(audit) = &self.audit else { return };
        let (namespace, name) = split_key(app);
        let entry = AuditEntry {
            time: now_ms(),
            namespace: Some(namespace.to_owned()),
            token_id: NODE.into(),
            token_name: "canary judge".into(),
            role: String::new(),
            source: String::new(),
            action: format!("canary.{}", action.as_str()),
            target: format!("{name} v{version}"),
            status: 200,
            outcome: "ok".into(),
            detail: reason.to_owned(),
        };
        if let Err(e) = audit.append(entry).await {
            tracing::error!(
                app,
                "cannot append the canary's decision to the audit log: {e}"
            );
        }
    }

    /// Judges every canary each `period` until the node is dropped.
    pub fn spawn_canary_judge(self: &Arc<Self>, period: Duration) {
        self.spawn_every(period, |node| async move {
            node.judge_canaries().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcomes(requests: u64, errors: u64, ms: u64) -> Outcomes {
        let o = VersionOutcomes::default();
        for i in 0..requests {
            o.count(i < errors, Duration::from_millis(ms));
        }
        o.read()
    }

    /// A canary whose step began at a fixed time, so that `since + 60 s`
    /// is the end of every step alike.
    fn canary(steps: Vec<u8>) -> Canary {
        let mut canary = CanaryPlan {
            steps,
            ..CanaryPlan::default()
        }
        .canary(2);
        canary.since = 1_700_000_000_000;
        canary
    }

    #[test]
    fn too_few_requests_hold_and_a_breach_rolls_back() {
        let c = canary(vec![50, 100]);
        let stable = outcomes(100, 0, 2);
        assert_eq!(
            judge(&c, &stable, &outcomes(19, 19, 2), c.since),
            Verdict::Hold
        );
        let Verdict::RollBack(why) = judge(&c, &stable, &outcomes(100, 30, 2), c.since) else {
            panic!("30 % errors must roll back");
        };
        assert!(why.contains("error rate 30.0%"), "{why}");
        // Within the allowance: no breach, but the step is not over.
        assert_eq!(
            judge(&c, &outcomes(100, 1, 2), &outcomes(100, 3, 2), c.since),
            Verdict::Hold
        );
        let Verdict::RollBack(why) = judge(&c, &stable, &outcomes(100, 0, 300), c.since) else {
            panic!("a p99 150× the stable's must roll back");
        };
        assert!(why.starts_with("p99"), "{why}");
        // Twice as slow but by less than the slack: not a breach.
        assert_eq!(
            judge(&c, &stable, &outcomes(100, 0, 4), c.since),
            Verdict::Hold
        );
    }

    #[test]
    fn a_healthy_step_moves_on_after_its_interval_and_100_promotes() {
        let c = canary(vec![50, 100]);
        let (stable, tried) = (outcomes(100, 0, 2), outcomes(100, 0, 2));
        let later = c.since + 60_000;
        assert_eq!(judge(&c, &stable, &tried, later - 1), Verdict::Hold);
        assert!(matches!(
            judge(&c, &stable, &tried, later),
            Verdict::Step(50, _)
        ));
        let last = canary(vec![100]);
        assert!(matches!(
            judge(&last, &stable, &tried, later),
            Verdict::Promote(_)
        ));
        // Without steps it stays where it is.
        assert_eq!(
            judge(&canary(vec![]), &stable, &tried, later),
            Verdict::Hold
        );
    }

    #[test]
    fn plans_that_cannot_run_are_refused() {
        let ok = CanaryPlan::default();
        assert!(ok.check().is_ok());
        let cases = [
            CanaryPlan {
                percent: 0,
                ..ok.clone()
            },
            CanaryPlan {
                percent: 100,
                ..ok.clone()
            },
            CanaryPlan {
                steps: vec![5],
                ..ok.clone()
            },
            CanaryPlan {
                steps: vec![50, 40],
                ..ok.clone()
            },
            CanaryPlan {
                steps: vec![100, 100],
                ..ok.clone()
            },
            CanaryPlan {
                steps: vec![101],
                ..ok.clone()
            },
            CanaryPlan {
                interval: Duration::from_millis(10),
                ..ok.clone()
            },
            CanaryPlan {
                sticky: Some(Sticky::Header("bad header".into())),
                ..ok.clone()
            },
            CanaryPlan {
                sticky: Some(Sticky::Cookie(String::new())),
                ..ok.clone()
            },
            CanaryPlan {
                policy: RolloutPolicy {
                    max_p99_ratio: 0.5,
                    ..RolloutPolicy::default()
                },
                ..ok.clone()
            },
            CanaryPlan {
                policy: RolloutPolicy {
                    max_error_rate_increase: f64::NAN,
                    ..RolloutPolicy::default()
                },
                ..ok.clone()
            },
        ];
        for plan in cases {
            assert!(
                matches!(plan.check(), Err(ControlError::Traffic(_))),
                "{plan:?}"
            );
        }
    }
}
