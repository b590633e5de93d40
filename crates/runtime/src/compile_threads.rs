//! The threads compiles run on: every core, below the requests served.
//!
//! A deploy's compile is the moment a developer waits on the node, and on a
//! large component it is nearly all of the wait (Winch's compile took
//! 4.3 s of a 4.5 s Python deploy on one core). Wasmtime compiles a
//! component's functions in parallel, so every core roughly divides it; but
//! the node also serves requests, which a compile on every core at their
//! priority would stall. So compile threads run at a lower scheduling
//! priority: whenever a request thread and a compile thread want the same
//! core, the kernel gives the request about ten times the compile's share
//! (nice 10 against 0), and a deploy still takes every core requests leave
//! idle. The tier-up queue runs lower still (nice 19): a deploy someone
//! waits for comes before a background compile no one does.
//!
//! Only Linux keeps a priority per thread (`setpriority` on "this
//! process" changes the calling thread there); elsewhere the threads keep
//! the process's priority, and a node that must keep a core for requests
//! there sets `--compile-threads`.

use crate::error::RuntimeError;

/// How far below the requests a compile thread runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Priority {
    /// A deploy's compile, which someone waits for.
    Deploy,
    /// The tier-up queue's optimized compiles.
    Background,
}

impl Priority {
    /// The nice value: 0 is the requests', 19 the lowest there is.
    fn nice(self) -> i32 {
        match self {
            Priority::Deploy => 10,
            Priority::Background => 19,
        }
    }
}

/// A rayon pool of `threads` threads named `name-<i>`, at `priority`.
/// Wasmtime's parallel compile runs on whichever pool `install`s it.
pub(crate) fn pool(
    name: &'static str,
    threads: usize,
    priority: Priority,
) -> Result<rayon::ThreadPool, RuntimeError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .thread_name(move |i| format!("{name}-{i}"))
        .start_handler(move |_| lower_priority(priority))
        .build()
        .map_err(|e| RuntimeError::Config(format!("cannot start the {name} threads: {e}")))
}

/// Every core: the default number of a deploy's compile threads.
pub(crate) fn all_cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

#[cfg(target_os = "linux")]
fn lower_priority(priority: Priority) {
    // On Linux the nice value is per thread, and "this process" (no pid)
    // means the calling thread: the rest of the node is untouched.
    if let Err(e) = rustix::process::setpriority_process(None, priority.nice()) {
        // Lowering one's own priority needs no privilege, so this is a
        // seccomp policy or the like: compiles then compete with requests
        // as equals, which is slower for them, not wrong.
        tracing::debug!("cannot lower a compile thread's priority: {e}");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority(_: Priority) {}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use rustix::process::getpriority_process;

    #[test]
    fn pool_threads_run_at_their_priority_and_the_caller_keeps_its_own() {
        let own = getpriority_process(None).unwrap();
        for priority in [Priority::Deploy, Priority::Background] {
            let pool = pool("stratus-test-compile", 2, priority).unwrap();
            let nice = pool.install(|| getpriority_process(None).unwrap());
            assert_eq!(nice, priority.nice().max(own));
        }
        assert_eq!(getpriority_process(None).unwrap(), own);
    }
}
