//! One writer thread per database: the pattern the queue and the ledger
//! share.
//!
//! SQLite takes one writer at a time, and each commit costs an fsync. So a
//! database written on the request path gets one thread that owns its
//! write connection, takes operations from a channel and applies
//! everything that queued up in one transaction (group commit): the fsync
//! rate follows the commit rate, not the request rate. Whoever waits on an
//! operation is answered by the [`Batcher`] after the commit, so nothing is
//! acknowledged before it is durable.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use rusqlite::Connection;

/// What a writer thread does with the operations it is sent.
pub trait Batcher: Send + 'static {
    type Op: Send + 'static;

    /// How long to let more operations join a batch once one is pending.
    /// Zero (the default) applies at once: someone is waiting.
    fn linger(&self, _pending: &[Self::Op]) -> Duration {
        Duration::ZERO
    }

    /// Applies pending operations in one transaction and removes those it
    /// settled. Answers whether the write went through: what it leaves
    /// then (more than one batch) is applied next, at once; after a failed
    /// write (the disk was full, say) it is applied again after the
    /// writer's `retry_after`, before anything newer.
    fn apply(&mut self, conn: &mut Connection, pending: &mut Vec<Self::Op>) -> bool;

    /// Periodic work, such as pruning old rows, every `maintain_every`
    /// (and once at start).
    fn maintain(&mut self, _conn: &mut Connection) {}

    /// The last chance to write what is pending: every sender is gone.
    fn close(&mut self, conn: &mut Connection, pending: &mut Vec<Self::Op>) {
        self.apply(conn, pending);
    }
}

/// How a writer thread batches and when it retries and maintains.
#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    pub thread_name: &'static str,
    /// The most operations taken into one batch from the channel.
    pub max_batch: usize,
    pub retry_after: Duration,
    pub maintain_every: Duration,
}

/// Starts the writer thread for `conn`; it runs until every sender of the
/// returned channel is dropped.
pub fn spawn_writer<B: Batcher>(
    conn: Connection,
    batcher: B,
    config: WriterConfig,
) -> std::io::Result<mpsc::Sender<B::Op>> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name(config.thread_name.into())
        .spawn(move || write_loop(conn, rx, batcher, config))?;
    Ok(tx)
}

fn write_loop<B: Batcher>(
    mut conn: Connection,
    rx: mpsc::Receiver<B::Op>,
    mut batcher: B,
    config: WriterConfig,
) {
    let mut pending: Vec<B::Op> = Vec::new();
    let mut retry_at: Option<Instant> = None;
    let mut next_maintain = Instant::now();
    loop {
        // A backlog left by a write that went through goes on at once.
        let wake = match retry_at {
            None if !pending.is_empty() => Instant::now(),
            None => next_maintain,
            Some(at) => at.min(next_maintain),
        };
        match rx.recv_timeout(wake.saturating_duration_since(Instant::now())) {
            Ok(op) => pending.push(op),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                if !pending.is_empty() {
                    batcher.close(&mut conn, &mut pending);
                }
                return;
            }
        }
        // Let what arrives over the next moments join the same transaction.
        // Sleeping rather than waiting on the channel matters: a receiver
        // blocked in `recv` must be woken by every send, a syscall on the
        // request path.
        // Only before a write: while a failed batch waits for its retry,
        // lingering would only slow the draining of the channel (and
        // `linger` may look at every pending operation).
        let may_write = retry_at.is_none_or(|at| Instant::now() >= at);
        if may_write && !pending.is_empty() {
            let linger = batcher.linger(&pending);
            if !linger.is_zero() {
                std::thread::sleep(linger);
            }
        }
        while pending.len() < config.max_batch {
            match rx.try_recv() {
                Ok(op) => pending.push(op),
                Err(_) => break,
            }
        }
        if may_write && !pending.is_empty() {
            let wrote = batcher.apply(&mut conn, &mut pending);
            retry_at = (!wrote && !pending.is_empty()).then(|| Instant::now() + config.retry_after);
        }
        if Instant::now() >= next_maintain {
            batcher.maintain(&mut conn);
            next_maintain = Instant::now() + config.maintain_every;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Fails its first batch, then hands every batch it applies to the test.
    struct Recording {
        failures_left: u32,
        applied: mpsc::Sender<Vec<u32>>,
    }

    impl Batcher for Recording {
        type Op = u32;

        fn apply(&mut self, _conn: &mut Connection, pending: &mut Vec<u32>) -> bool {
            if self.failures_left > 0 {
                self.failures_left -= 1;
                return false;
            }
            // A batch at most, as the ledger takes them.
            let batch = pending.drain(..pending.len().min(2)).collect();
            let _ = self.applied.send(batch);
            true
        }
    }

    fn writer(failures: u32) -> (mpsc::Sender<u32>, mpsc::Receiver<Vec<u32>>) {
        writer_retrying_after(failures, Duration::from_millis(10))
    }

    fn writer_retrying_after(
        failures: u32,
        retry_after: Duration,
    ) -> (mpsc::Sender<u32>, mpsc::Receiver<Vec<u32>>) {
        let (applied, batches) = mpsc::channel();
        let conn = Connection::open_in_memory().unwrap();
        let batcher = Recording {
            failures_left: failures,
            applied,
        };
        let config = WriterConfig {
            thread_name: "test-writer",
            max_batch: 2,
            retry_after,
            maintain_every: Duration::from_secs(60),
        };
        (spawn_writer(conn, batcher, config).unwrap(), batches)
    }

    /// Every batch applied until `n` operations were, in order.
    fn applied(batches: &mpsc::Receiver<Vec<u32>>, n: usize) -> Vec<u32> {
        let mut all = Vec::new();
        while all.len() < n {
            let batch = batches.recv_timeout(Duration::from_secs(5)).unwrap();
            assert!(!batch.is_empty());
            all.extend(batch);
        }
        all
    }

    #[test]
    fn a_failed_batch_is_retried_before_anything_newer() {
        let (ops, batches) = writer(1);
        for op in 1..=5 {
            ops.send(op).unwrap();
        }
        assert_eq!(applied(&batches, 5), vec![1, 2, 3, 4, 5]);
    }

    /// A backlog (what gathered while the disk refused writes) is written
    /// batch after batch once a write goes through, not one batch per
    /// retry interval.
    #[test]
    fn a_backlog_of_many_batches_is_written_at_once() {
        let retry = Duration::from_secs(3);
        let (ops, batches) = writer_retrying_after(1, retry);
        let started = Instant::now();
        for op in 1..=9 {
            ops.send(op).unwrap();
        }
        let mut all = Vec::new();
        while all.len() < 9 {
            all.extend(batches.recv_timeout(retry * 5).unwrap());
        }
        assert_eq!(all, (1..=9).collect::<Vec<_>>());
        // One retry interval, not one per batch of two.
        assert!(started.elapsed() < retry * 2, "{:?}", started.elapsed());
    }

    #[test]
    fn what_is_pending_when_the_senders_go_is_written() {
        let (ops, batches) = writer(0);
        ops.send(7).unwrap();
        drop(ops);
        assert_eq!(applied(&batches, 1), vec![7]);
        // The thread ended: its end of the answers hung up.
        assert!(batches.recv_timeout(Duration::from_secs(5)).is_err());
    }
}
