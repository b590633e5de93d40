//! The queue handle and its writer thread.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::error::{DbContext, QueueError};
use crate::model::{Delivery, EventStatus, NewEvent, RetryPolicy, Settled};
use crate::schema;
use crate::store;
use stratus_sqlite::unix_micros;

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
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("stratus-queue".into())
            .spawn(move || write_loop(writer, rx, policy, keep_settled))
            .map_err(QueueError::Thread)?;
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

fn write_loop(
    mut conn: Connection,
    rx: mpsc::Receiver<Op>,
    policy: RetryPolicy,
    keep_settled: Duration,
) {
    let mut next_prune = Instant::now();
    loop {
        let first = match rx.recv_timeout(next_prune.saturating_duration_since(Instant::now())) {
            Ok(op) => Some(op),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        // Group commit: everything that queued up while the last commit
        // was being fsync'd goes into this one.
        let ops: Vec<Op> = first
            .into_iter()
            .chain(std::iter::from_fn(|| rx.try_recv().ok()).take(MAX_BATCH))
            .collect();
        if !ops.is_empty() {
            apply(&mut conn, ops, &policy);
        }
        if Instant::now() >= next_prune {
            let before = SystemTime::now()
                .checked_sub(keep_settled)
                .unwrap_or(SystemTime::UNIX_EPOCH);
            match store::prune(&conn, unix_micros(before)) {
                Ok(0) => {}
                Ok(n) => tracing::info!(events = n, "pruned settled events"),
                Err(e) => tracing::warn!("cannot prune the queue: {e}"),
            }
            next_prune = Instant::now() + PRUNE_EVERY;
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
        let mut tx = conn.transaction().during("starting a batch")?;
        for op in ops {
            let mut sp = tx.savepoint().during("starting an operation")?;
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
                Op::Redrive { queue, id, reply } => {
                    let r = store::redrive(&sp, &queue, id.as_deref(), now);
                    (r.is_ok(), answer(reply, r))
                }
            };
            if ok {
                sp.commit().during("finishing an operation")?;
            } else {
                sp.rollback().during("undoing an operation")?;
            }
            answers.push(done);
        }
        tx.commit().during("committing a batch")
    })();
    let failed = committed.err().map(|e| {
        tracing::error!("queue batch not committed: {e}");
        e.to_string()
    });
    for done in answers {
        done(failed.as_deref());
    }
}
