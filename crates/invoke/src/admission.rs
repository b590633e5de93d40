//! Admission control: back-pressure instead of errors.
//!
//! An invocation needs three things before it may run: a slot of its own
//! function (`max_concurrency`), an instance slot of the node (the pooling
//! allocator's size) and its memory cap out of the node's memory budget. It
//! waits for them in a short bounded queue and is then shed with 429 and
//! `Retry-After`. The function's own slot is taken first, so a function at
//! its cap waits on itself and never holds node capacity that other
//! functions need: a flood on one function cannot starve the rest.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Node-wide capacity, shared by every function.
#[derive(Debug)]
pub struct Admission {
    slots: Arc<Semaphore>,
    /// In MiB, so a permit count fits a `u32` for any real machine.
    memory_mib: Arc<Semaphore>,
    memory_budget_mib: u32,
    queue_timeout: Duration,
    /// Instance slots in all.
    capacity: u32,
}

/// What an admitted invocation holds until it ends.
#[derive(Debug)]
pub struct Admitted {
    _function: OwnedSemaphorePermit,
    /// Its namespace's, when the namespace's concurrency is capped.
    _namespace: Option<OwnedSemaphorePermit>,
    _slot: OwnedSemaphorePermit,
    _memory: OwnedSemaphorePermit,
    /// How long the invocation waited in the queue.
    pub waited: Duration,
}

/// Why an invocation was shed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shed {
    /// The function is at its `max_concurrency`.
    FunctionBusy,
    /// The node has no free instance slot or memory.
    NodeBusy,
    /// The function's namespace is at its `max_concurrency` quota.
    NamespaceBusy,
}

impl Admission {
    /// `slots` instances at once, `memory_budget` bytes of linear memory caps
    /// at once, waiting at most `queue_timeout` for both.
    pub fn new(slots: u32, memory_budget: u64, queue_timeout: Duration) -> Admission {
        let memory_budget_mib = u32::try_from(memory_budget >> 20)
            .unwrap_or(u32::MAX)
            .max(1);
        Admission {
            slots: Arc::new(Semaphore::new(slots as usize)),
            memory_mib: Arc::new(Semaphore::new(memory_budget_mib as usize)),
            memory_budget_mib,
            queue_timeout,
            capacity: slots,
        }
    }

    pub fn queue_timeout(&self) -> Duration {
        self.queue_timeout
    }

    /// Invocations the node runs at once at most: its instance slots.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Invocations admitted and running now: with [`Admission::capacity`],
    /// the load an autoscaler or a node list shows.
    pub fn in_flight(&self) -> u32 {
        let free = u32::try_from(self.slots.available_permits()).unwrap_or(u32::MAX);
        self.capacity.saturating_sub(free)
    }

    /// Waits (bounded) for the function's slot, its namespace's when that
    /// is capped, a node slot and the memory the invocation may use.
    pub async fn admit(
        &self,
        function: &Arc<Semaphore>,
        namespace: Option<&Arc<Semaphore>>,
        memory: u64,
    ) -> Result<Admitted, Shed> {
        let started = tokio::time::Instant::now();
        let deadline = started + self.queue_timeout;
        let own = tokio::time::timeout_at(deadline, function.clone().acquire_owned())
            .await
            .map_err(|_| Shed::FunctionBusy)?
            .map_err(|_| Shed::FunctionBusy)?;
        // After the function's own: a busy function waits on itself, not
        // holding a slot its namespace's other functions need.
        let team = match namespace {
            Some(namespace) => Some(
                tokio::time::timeout_at(deadline, namespace.clone().acquire_owned())
                    .await
                    .map_err(|_| Shed::NamespaceBusy)?
                    .map_err(|_| Shed::NamespaceBusy)?,
            ),
            None => None,
        };
        let slot = tokio::time::timeout_at(deadline, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| Shed::NodeBusy)?
            .map_err(|_| Shed::NodeBusy)?;
        // A cap larger than the whole budget still runs, alone.
        let mib = u32::try_from(memory.div_ceil(1 << 20))
            .unwrap_or(u32::MAX)
            .clamp(1, self.memory_budget_mib);
        let memory =
            tokio::time::timeout_at(deadline, self.memory_mib.clone().acquire_many_owned(mib))
                .await
                .map_err(|_| Shed::NodeBusy)?
                .map_err(|_| Shed::NodeBusy)?;
        Ok(Admitted {
            _function: own,
            _namespace: team,
            _slot: slot,
            _memory: memory,
            waited: started.elapsed(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_busy_function_is_shed_without_taking_node_capacity() {
        let admission = Admission::new(2, 1 << 30, Duration::from_millis(50));
        let busy = Arc::new(Semaphore::new(1));
        let other = Arc::new(Semaphore::new(10));
        let first = admission.admit(&busy, None, 1 << 20).await.unwrap();
        assert_eq!(
            admission.admit(&busy, None, 1 << 20).await.unwrap_err(),
            Shed::FunctionBusy
        );
        // The shed request held nothing: another function still gets in.
        let _second = admission.admit(&other, None, 1 << 20).await.unwrap();
        assert_eq!(
            admission.admit(&other, None, 1 << 20).await.unwrap_err(),
            Shed::NodeBusy
        );
        drop(first);
        assert!(admission.admit(&other, None, 1 << 20).await.is_ok());
    }

    #[tokio::test]
    async fn memory_caps_count_against_the_budget() {
        let admission = Admission::new(100, 256 << 20, Duration::from_millis(50));
        let f = Arc::new(Semaphore::new(100));
        let _a = admission.admit(&f, None, 128 << 20).await.unwrap();
        let _b = admission.admit(&f, None, 128 << 20).await.unwrap();
        assert_eq!(
            admission.admit(&f, None, 1 << 20).await.unwrap_err(),
            Shed::NodeBusy
        );
    }

    #[tokio::test]
    async fn a_waiting_request_gets_in_when_a_slot_frees() {
        let admission = Admission::new(1, 1 << 30, Duration::from_secs(2));
        let f = Arc::new(Semaphore::new(1));
        let first = admission.admit(&f, None, 1 << 20).await.unwrap();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(first);
        });
        let admitted = admission.admit(&f, None, 1 << 20).await.unwrap();
        assert!(admitted.waited >= Duration::from_millis(40));
    }

    #[tokio::test]
    async fn a_busy_namespace_is_shed_holding_nothing_of_the_node() {
        let admission = Admission::new(10, 1 << 30, Duration::from_millis(50));
        let team = Arc::new(Semaphore::new(1));
        let (f, g) = (Arc::new(Semaphore::new(10)), Arc::new(Semaphore::new(10)));
        let first = admission.admit(&f, Some(&team), 1 << 20).await.unwrap();
        // Another function of the namespace waits for it, then is shed.
        assert_eq!(
            admission.admit(&g, Some(&team), 1 << 20).await.unwrap_err(),
            Shed::NamespaceBusy
        );
        assert_eq!(admission.in_flight(), 1);
        // Another namespace's function is not held up.
        assert!(admission.admit(&g, None, 1 << 20).await.is_ok());
        drop(first);
        assert!(admission.admit(&g, Some(&team), 1 << 20).await.is_ok());
    }
}
