//! The queue handle and its writer thread.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::error::{DB, QueueError};
use crate::model::{Delivery, EventStatus, NewEvent, RetryPolicy, Settled};
use crate::schema;
use crate::store;
use stratus_sqlite::unix_micros;
use stratus_sqlite::{Batcher, During, WriterConfig, spawn_writer};

/// The most operations one transaction takes.
const MAX_BATCH: usize = 4096;
/// How often settled events past their retention are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

type Reply<T> = oneshot::Sender<Result<T, QueueError>>;

enum Op {
    Enqueue(NewEvent, Reply<i64>),
    Fire {
        event: Option<NewEvent>,
        trigger: String,
        tick_us: i64,
        reply: Reply<Option<i64>>,
    },
    Bury {
        event: NewEvent,
        attempts: u32,
        error: String,
        reply: Reply<i64>,
    },
    Lease {
        queue: Option<String>,
        max: usize,
        lease: Duration,
        reply: Reply<Vec<Delivery>>,
    },
    Succeed {
        seq: i64,
        result: Option<(u16, Vec<u8>)>,
        reply: Reply<()>,
    },
    Fail {
        seq: i64,
        error: String,
        reply: Reply<Settled>,
    },
    Redrive {
        queue: String,
        id: Option<String>,
        reply: Reply<usize>,
    },
    Release {
        seq: i64,
        delay: Duration,
        reply: Reply<()>,
    },
    Reject {
        seq: i64,
        error: String,
        reply: Reply<()>,
    },
}

/// An answer held back until its transaction has committed.
type Answer = Box<dyn FnOnce(Option<&str>) + Send>;

fn answer<T: Send + 'static>(reply: Reply<T>, result: Result<T, QueueError>) -> Answer {
    Box::new(move |commit_failed: Option<&str>| {
        let result = match commit_failed {
            Some(why) => Err(QueueError::Commit(why.to_owned())),
            None => result,
        };
        let _ = reply.send(result);
    })
}

/// The durable queue of one node.
pub struct Queue {
    path: PathBuf,
    tx: mpsc::Sender<Op>,
    reader: Mutex<Connection>,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Queue {
    /// The queue's file within a data directory.
    pub const FILE: &'static str = "queue.sqlite";

    /// Opens (creating or migrating) the queue at `path`. Settled events
    /// are kept for `keep_settled` after they settled.
    pub fn open(
        path: &Path,
        policy: RetryPolicy,
        keep_settled: Duration,
    ) -> Result<Queue, QueueError> {
        let writer = schema::open(path)?;
        let recovered = store::recover(&writer, unix_micros(SystemTime::now()))?;
        if recovered > 0 {
            tracing::info!(
                events = recovered,
                "events in delivery when the node stopped are due again"
            );
        }
        let reader = stratus_sqlite::open(path, false)?;
        let config = WriterConfig {
            thread_name: "stratus-queue",
            max_batch: MAX_BATCH,
            // Nothing is left to retry: a failed batch answers its callers.
            retry_after: Duration::ZERO,
            maintain_every: PRUNE_EVERY,
        };
        let batcher = QueueWriter {
            policy,
            keep_settled,
        };
        let tx = spawn_writer(writer, batcher, config).map_err(QueueError::Thread)?;
        Ok(Queue {
            path: path.to_path_buf(),
            tx,
            reader: Mutex::new(reader),
        })
    }

    async fn call<T>(&self, op: impl FnOnce(Reply<T>) -> Op) -> Result<T, QueueError> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(op(reply)).map_err(|_| QueueError::Stopped)?;
        answer.await.map_err(|_| QueueError::Stopped)?
    }

    /// Stores an event; returns once it is durable (its sequence number).
    pub async fn enqueue(&self, event: NewEvent) -> Result<i64, QueueError> {
        self.call(|reply| Op::Enqueue(event, reply)).await
    }

    /// Stores the event of a cron tick and records `tick` as the trigger's
    /// last, atomically; returns once both are durable. Without an event it
    /// only records the tick.
    pub async fn fire(
        &self,
        event: Option<NewEvent>,
        trigger: &str,
        tick: SystemTime,
    ) -> Result<Option<i64>, QueueError> {
        let trigger = trigger.to_owned();
        let tick_us = unix_micros(tick);
        self.call(|reply| Op::Fire {
            event,
            trigger,
            tick_us,
            reply,
        })
        .await
    }

    /// The last tick the cron trigger `trigger` fired (blocking read).
    pub fn last_tick(&self, trigger: &str) -> Result<Option<SystemTime>, QueueError> {
        Ok(store::last_tick(&self.reader(), trigger)?.map(stratus_sqlite::from_unix_micros))
    }

    /// Stores an event as dead after `attempts` deliveries made elsewhere
    /// (or none, for one that could not be read), with the reason; it can
    /// be redriven like any dead letter. Returns once it is durable.
    pub async fn bury(
        &self,
        event: NewEvent,
        attempts: u32,
        error: String,
    ) -> Result<i64, QueueError> {
        self.call(|reply| Op::Bury {
            event,
            attempts,
            error,
            reply,
        })
        .await
    }

    /// Leases up to `max` due events of `queue` (of every queue when
    /// `None`) for `lease`.
    pub async fn lease(
        &self,
        queue: Option<&str>,
        max: usize,
        lease: Duration,
    ) -> Result<Vec<Delivery>, QueueError> {
        let queue = queue.map(str::to_owned);
        self.call(|reply| Op::Lease {
            queue,
            max,
            lease,
            reply,
        })
        .await
    }

    /// Settles a leased event as handled, with the handler's answer.
    pub async fn succeed(
        &self,
        seq: i64,
        result: Option<(u16, Vec<u8>)>,
    ) -> Result<(), QueueError> {
        self.call(|reply| Op::Succeed { seq, result, reply }).await
    }

    /// Settles a leased event as failed: retried later, or dead.
    pub async fn fail(&self, seq: i64, error: String) -> Result<Settled, QueueError> {
        self.call(|reply| Op::Fail { seq, error, reply }).await
    }

    /// Hands a leased event back uncounted, due again after `delay`: the
    /// function was too busy to take it, which is no failure of the event.
    pub async fn release(&self, seq: i64, delay: Duration) -> Result<(), QueueError> {
        self.call(|reply| Op::Release { seq, delay, reply }).await
    }

    /// Settles a leased event as dead at once, whatever attempts it has
    /// left, and without counting this one: it was never delivered, because
    /// it cannot be as it is (larger than its function's `max_body`, an
    /// attribute no header can carry), so a retry would only fail the same
    /// way. Redrive puts it back, say once `max_body` was raised.
    pub async fn reject(&self, seq: i64, error: String) -> Result<(), QueueError> {
        self.call(|reply| Op::Reject { seq, error, reply }).await
    }

    /// Puts a queue's dead events (or the one with `id`) back in line.
    pub async fn redrive(&self, queue: &str, id: Option<&str>) -> Result<usize, QueueError> {
        let (queue, id) = (queue.to_owned(), id.map(str::to_owned));
        self.call(|reply| Op::Redrive { queue, id, reply }).await
    }

    /// The newest event with this id (blocking read).
    pub fn status(&self, id: &str) -> Result<Option<EventStatus>, QueueError> {
        store::status(&self.reader(), id)
    }

    /// A queue's newest events in any state, newest first (blocking read).
    pub fn recent(&self, queue: &str, limit: usize) -> Result<Vec<EventStatus>, QueueError> {
        store::recent(&self.reader(), queue, limit)
    }

    /// A queue's dead letters, oldest first (blocking read).
    pub fn dead_letters(&self, queue: &str, limit: usize) -> Result<Vec<EventStatus>, QueueError> {
        store::dead(&self.reader(), queue, limit)
    }

    fn reader(&self) -> MutexGuard<'_, Connection> {
        // Reads hold no transaction across a panic.
        self.reader.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The queue's writer: every operation that queued up is applied in one
/// transaction and answered after the commit (none lingers: each has a
/// caller waiting); settled events are pruned now and then.
struct QueueWriter {
    policy: RetryPolicy,
    keep_settled: Duration,
}

impl Batcher for QueueWriter {
    type Op = Op;

    fn apply(&mut self, conn: &mut Connection, pending: &mut Vec<Op>) {
        apply(conn, std::mem::take(pending), &self.policy);
    }

    fn maintain(&mut self, conn: &mut Connection) {
        let before = SystemTime::now()
            .checked_sub(self.keep_settled)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        match store::prune(conn, unix_micros(before)) {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "pruned settled events"),
            Err(e) => tracing::warn!("cannot prune the queue: {e}"),
        }
    }
}

/// Applies a batch of operations in one transaction, each in its own
/// savepoint (one failing does not undo the others), and answers them once
/// the transaction has committed.
fn apply(conn: &mut Connection, ops: Vec<Op>, policy: &RetryPolicy) {
    let now = unix_micros(SystemTime::now());
    let mut answers: Vec<Answer> = Vec::with_capacity(ops.len());
    let committed = (|| -> Result<(), QueueError> {
        let mut tx = conn.transaction().during(DB, "starting a batch")?;
        for op in ops {
            let mut sp = tx.savepoint().during(DB, "starting an operation")?;
            let (ok, done) = match op {
                Op::Enqueue(event, reply) => {
                    let r = store::enqueue(&sp, &event, now);
                    (r.is_ok(), answer(reply, r))
                }
                Op::Fire {
                    event,
                    trigger,
                    tick_us,
                    reply,
                } => {
                    let r = store::fire(&sp, event.as_ref(), &trigger, tick_us, now);
                    (r.is_ok(), answer(reply, r))
                }
                Op::Bury {
                    event,
                    attempts,
                    error,
                    reply,
                } => {
                    let r = store::bury(&sp, &event, attempts, &error, now);
                    (r.is_ok(), answer(reply, r))
                }
                Op::Lease {
                    queue,
                    max,
                    lease,
                    reply,
                } => {
                    let r = store::lease(&sp, queue.as_deref(), max, lease, now);
                    (r.is_ok(), answer(reply, r))
                }
                Op::Succeed { seq, result, reply } => {
                    let r = store::succeed(&sp, seq, result.as_ref(), now);
                    (r.is_ok(), answer(reply, r))
                }
                Op::Fail { seq, error, reply } => {
                    let r = store::fail(&sp, seq, &error, policy, now);
                    (r.is_ok(), answer(reply, r))
                }
                Op::Release { seq, delay, reply } => {
                    let r = store::release(&sp, seq, delay, now);
                    (r.is_ok(), answer(reply, r))
                }
                Op::Reject { seq, error, reply } => {
                    let r = store::reject(&sp, seq, &error, now);
                    (r.is_ok(), answer(reply, r))
                }
                Op::Redrive { queue, id, reply } => {
                    let r = store::redrive(&sp, &queue, id.as_deref(), now);
                    (r.is_ok(), answer(reply, r))
                }
            };
            if ok {
                sp.commit().during(DB, "finishing an operation")?;
            } else {
                sp.rollback().during(DB, "undoing an operation")?;
            }
            answers.push(done);
        }
        Ok(tx.commit().during(DB, "committing a batch")?)
    })();
    let failed = committed.err().map(|e| {
        tracing::error!("queue batch not committed: {e}");
        e.to_string()
    });
    for done in answers {
        done(failed.as_deref());
    }
}
