//! Deploys in progress, function by function: what a client waiting on a
//! deploy shows meanwhile (`stratus deploy` draws a spinner per function
//! from it). A large component takes seconds to compile, and the deploy's
//! own answer comes only when every function is compiled and the version
//! is live; this is read beside it (`GET /v1/deploys`), so the deploy's
//! answer and its audit entry stay one response.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use stratus_runtime::Tier;

/// One deploy being compiled or committed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeployInProgress {
    /// The app's key, as the deploy's report names it.
    pub app: String,
    /// Milliseconds since the node had the whole upload.
    pub elapsed_ms: u64,
    /// The manifest's functions, in its order.
    pub functions: Vec<FunctionProgress>,
}

/// Where one function of a deploy is.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FunctionProgress {
    pub name: String,
    /// Its component's size in bytes.
    pub size: u64,
    pub state: CompileState,
    /// Milliseconds compiling so far, or in all once ready.
    pub compile_ms: u64,
    /// Once ready: the tier of its code (`baseline` or `optimized`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// Once ready: whether the code came from the cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_cache: Option<bool>,
}

/// Where a function's compile is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum CompileState {
    /// Behind the functions before it (one compiles at a time).
    Waiting,
    Compiling,
    Ready,
}

/// The node's deploys in progress, by a number of their own.
#[derive(Default)]
pub(crate) struct InProgress {
    deploys: Mutex<HashMap<u64, Entry>>,
    started: AtomicU64,
}

struct Entry {
    app: String,
    since: Instant,
    functions: Vec<(FunctionProgress, Option<Instant>)>,
}

impl InProgress {
    /// Starts showing a deploy; it is shown until the guard is dropped,
    /// whichever way the deploy ends.
    pub(crate) fn start(
        self: &Arc<Self>,
        app: &str,
        functions: impl IntoIterator<Item = (String, u64)>,
    ) -> Shown {
        let number = self.started.fetch_add(1, Ordering::Relaxed);
        let functions = functions
            .into_iter()
            .map(|(name, size)| {
                let progress = FunctionProgress {
                    name,
                    size,
                    state: CompileState::Waiting,
                    compile_ms: 0,
                    tier: None,
                    from_cache: None,
                };
                (progress, None)
            })
            .collect();
        let entry = Entry {
            app: app.to_owned(),
            since: Instant::now(),
            functions,
        };
        lock(&self.deploys).insert(number, entry);
        Shown {
            all: self.clone(),
            number,
        }
    }

    /// Every deploy in progress whose app `visible` lets through, oldest
    /// first.
    pub(crate) fn list(&self, visible: impl Fn(&str) -> bool) -> Vec<DeployInProgress> {
        let deploys = lock(&self.deploys);
        let mut shown: Vec<_> = deploys
            .iter()
            .filter(|(_, entry)| visible(&entry.app))
            .map(|(number, entry)| {
                let functions = entry
                    .functions
                    .iter()
                    .map(|(progress, compiling_since)| {
                        let mut progress = progress.clone();
                        if let Some(since) = compiling_since {
                            progress.compile_ms = millis(since);
                        }
                        progress
                    })
                    .collect();
                let deploy = DeployInProgress {
                    app: entry.app.clone(),
                    elapsed_ms: millis(&entry.since),
                    functions,
                };
                (*number, deploy)
            })
            .collect();
        shown.sort_by_key(|(number, _)| *number);
        shown.into_iter().map(|(_, deploy)| deploy).collect()
    }
}

/// A deploy shown in progress; dropping it ends the showing.
pub(crate) struct Shown {
    all: Arc<InProgress>,
    number: u64,
}

impl Shown {
    pub(crate) fn compiling(&self, index: usize) {
        self.update(index, |progress, since| {
            progress.state = CompileState::Compiling;
            *since = Some(Instant::now());
        });
    }

    pub(crate) fn ready(&self, index: usize, tier: Tier, from_cache: bool) {
        self.update(index, |progress, since| {
            progress.state = CompileState::Ready;
            progress.compile_ms = since.take().map_or(0, |since| millis(&since));
            progress.tier = Some(tier.name().into());
            progress.from_cache = Some(from_cache);
        });
    }

    fn update(&self, index: usize, f: impl FnOnce(&mut FunctionProgress, &mut Option<Instant>)) {
        let mut deploys = lock(&self.all.deploys);
        if let Some((progress, since)) = deploys
            .get_mut(&self.number)
            .and_then(|entry| entry.functions.get_mut(index))
        {
            f(progress, since);
        }
    }
}

impl Drop for Shown {
    fn drop(&mut self) {
        lock(&self.all.deploys).remove(&self.number);
    }
}

fn millis(since: &Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deploy_is_shown_function_by_function_until_its_guard_drops() {
        let all = Arc::new(InProgress::default());
        let shown = all.start("shop", [("api".to_string(), 10), ("web".to_string(), 20)]);
        let other = all.start("team/blog", [("f".to_string(), 1)]);
        shown.compiling(0);
        let list = all.list(|app| !app.contains('/'));
        assert_eq!(list.len(), 1, "the other namespace's deploy is hidden");
        let states: Vec<_> = list[0].functions.iter().map(|f| f.state).collect();
        assert_eq!(states, [CompileState::Compiling, CompileState::Waiting]);
        shown.ready(0, Tier::Baseline, false);
        shown.compiling(1);
        let list = all.list(|app| app == "shop");
        assert_eq!(list[0].functions[0].state, CompileState::Ready);
        assert_eq!(list[0].functions[0].tier.as_deref(), Some("baseline"));
        assert_eq!(list[0].functions[1].state, CompileState::Compiling);
        drop(shown);
        assert!(all.list(|app| app == "shop").is_empty());
        assert_eq!(all.list(|_| true).len(), 1);
        drop(other);
        assert!(all.list(|_| true).is_empty());
    }
}
