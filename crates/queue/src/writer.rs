//! The queue handle and its writer thread.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use rusqlite::Connection;
use stratus_sqlite::{
    Batcher, During, SqliteError, WriterConfig, from_unix_micros, spawn_writer, unix_micros,
};
use stratus_storage::{
    Backlog, Delivery, EventQueue, EventStatus, NewEvent, QueueError, QueueFuture, RetryPolicy,
    Settled,
};
use tokio::sync::oneshot;

use crate::error::{DB, NoThread, backend};
use crate::schema;
use crate::store;

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
    Extend {
        seq: i64,
        lease: Duration,
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

/// The durable queue of one node, in `queue.sqlite`: writes go to the
/// writer thread, reads to a connection of their own on the blocking pool.
pub struct SqliteQueue {
    path: PathBuf,
    tx: mpsc::Sender<Op>,
    reader: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for SqliteQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteQueue")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteQueue {
    /// The queue's file within a data directory.
    pub const FILE: &'static str = "queue.sqlite";

    /// Opens (creating or migrating) the queue at `path`. Failed deliveries
    /// are retried with `policy`'s backoff; settled events are kept for
    /// `keep_settled` after they settled.
    pub fn open(
        path: &Path,
        policy: RetryPolicy,
        keep_settled: Duration,
    ) -> Result<SqliteQueue, QueueError> {
        let writer = schema::open(path).map_err(backend)?;
        let recovered = store::recover(&writer, unix_micros(SystemTime::now())).map_err(backend)?;
        if recovered > 0 {
            tracing::info!(
                events = recovered,
                "events in delivery when the node stopped are due again"
            );
        }
        let reader = stratus_sqlite::open(path, false).map_err(backend)?;
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
        let tx =
            spawn_writer(writer, batcher, config).map_err(|e| QueueError::backend(NoThread(e)))?;
        Ok(SqliteQueue {
            path: path.to_path_buf(),
            tx,
            reader: Arc::new(Mutex::new(reader)),
        })
    }

    /// Sends `op` to the writer now; the future answers after its commit.
    fn call<T: Send + 'static>(&self, op: impl FnOnce(Reply<T>) -> Op) -> QueueFuture<T> {
        let (reply, answer) = oneshot::channel();
        let sent = self.tx.send(op(reply)).is_ok();
        Box::pin(async move {
            if !sent {
                return Err(QueueError::Stopped);
            }
            answer.await.map_err(|_| QueueError::Stopped)?
        })
    }

    /// Runs `read` on the reader connection, on the blocking pool.
    fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, SqliteError> + Send + 'static,
    ) -> QueueFuture<T> {
        let reader = self.reader.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                // Reads hold no transaction across a panic.
                let conn = reader.lock().unwrap_or_else(PoisonError::into_inner);
                read(&conn).map_err(backend)
            })
            .await
            .map_err(QueueError::backend)?
        })
    }
}

impl EventQueue for SqliteQueue {
    fn enqueue(&self, event: NewEvent) -> QueueFuture<i64> {
        self.call(|reply| Op::Enqueue(event, reply))
    }

    fn fire(
        &self,
        event: Option<NewEvent>,
        trigger: &str,
        tick: SystemTime,
    ) -> QueueFuture<Option<i64>> {
        let trigger = trigger.to_owned();
        let tick_us = unix_micros(tick);
        self.call(|reply| Op::Fire {
            event,
            trigger,
            tick_us,
            reply,
        })
    }

    fn last_tick(&self, trigger: &str) -> QueueFuture<Option<SystemTime>> {
        let trigger = trigger.to_owned();
        self.read(move |conn| Ok(store::last_tick(conn, &trigger)?.map(from_unix_micros)))
    }

    fn bury(&self, event: NewEvent, attempts: u32, error: String) -> QueueFuture<i64> {
        self.call(|reply| Op::Bury {
            event,
            attempts,
            error,
            reply,
        })
    }

    fn lease(
        &self,
        queue: Option<&str>,
        max: usize,
        lease: Duration,
    ) -> QueueFuture<Vec<Delivery>> {
        let queue = queue.map(str::to_owned);
        self.call(|reply| Op::Lease {
            queue,
            max,
            lease,
            reply,
        })
    }

    fn succeed(&self, seq: i64, result: Option<(u16, Vec<u8>)>) -> QueueFuture<()> {
        self.call(|reply| Op::Succeed { seq, result, reply })
    }

    fn fail(&self, seq: i64, error: String) -> QueueFuture<Settled> {
        self.call(|reply| Op::Fail { seq, error, reply })
    }

    fn release(&self, seq: i64, delay: Duration) -> QueueFuture<()> {
        self.call(|reply| Op::Release { seq, delay, reply })
    }

    fn extend(&self, seq: i64, lease: Duration) -> QueueFuture<()> {
        self.call(|reply| Op::Extend { seq, lease, reply })
    }

    fn reject(&self, seq: i64, error: String) -> QueueFuture<()> {
        self.call(|reply| Op::Reject { seq, error, reply })
    }

    fn redrive(&self, queue: &str, id: Option<&str>) -> QueueFuture<usize> {
        let (queue, id) = (queue.to_owned(), id.map(str::to_owned));
        self.call(|reply| Op::Redrive { queue, id, reply })
    }

    fn status(&self, id: &str) -> QueueFuture<Option<EventStatus>> {
        let id = id.to_owned();
        self.read(move |conn| store::status(conn, &id))
    }

    fn published(&self, queue: &str, id: &str) -> QueueFuture<Option<NewEvent>> {
        let (queue, id) = (queue.to_owned(), id.to_owned());
        self.read(move |conn| store::published(conn, &queue, &id))
    }

    fn recent(&self, queue: &str, limit: usize) -> QueueFuture<Vec<EventStatus>> {
        let queue = queue.to_owned();
        self.read(move |conn| store::recent(conn, &queue, limit))
    }

    fn dead_letters(&self, queue: &str, limit: usize) -> QueueFuture<Vec<EventStatus>> {
        let queue = queue.to_owned();
        self.read(move |conn| store::dead(conn, &queue, limit))
    }

    fn backlog(&self) -> QueueFuture<Vec<Backlog>> {
        self.read(store::backlog)
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

    /// Every operation is answered, whether its write went through or not.
    fn apply(&mut self, conn: &mut Connection, pending: &mut Vec<Op>) -> bool {
        apply(conn, std::mem::take(pending), &self.policy);
        true
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
    let committed = (|| -> Result<(), SqliteError> {
        let mut tx = conn.transaction().during(DB, "starting a batch")?;
        for op in ops {
            let mut sp = tx.savepoint().during(DB, "starting an operation")?;
            let (ok, done) = match op {
                Op::Enqueue(event, reply) => {
                    let r = store::enqueue(&sp, &event, now).map_err(backend);
                    (r.is_ok(), answer(reply, r))
                }
                Op::Fire {
                    event,
                    trigger,
                    tick_us,
                    reply,
                } => {
                    let r =
                        store::fire(&sp, event.as_ref(), &trigger, tick_us, now).map_err(backend);
                    (r.is_ok(), answer(reply, r))
                }
                Op::Bury {
                    event,
                    attempts,
                    error,
                    reply,
                } => {
                    let r = store::bury(&sp, &event, attempts, &error, now).map_err(backend);
                    (r.is_ok(), answer(reply, r))
                }
                Op::Lease {
                    queue,
                    max,
                    lease,
                    reply,
                } => {
                    let r = store::lease(&sp, queue.as_deref(), max, lease, now).map_err(backend);
                    (r.is_ok(), answer(reply, r))
                }
                Op::Succeed { seq, result, reply } => {
                    let r = leased(seq, store::succeed(&sp, seq, result.as_ref(), now));
                    (r.is_ok(), answer(reply, r))
                }
                Op::Fail { seq, error, reply } => {
                    let r = store::fail(&sp, seq, &error, policy, now)
                        .map_err(backend)
                        .and_then(|settled| settled.ok_or(QueueError::NotFound(seq)));
                    (r.is_ok(), answer(reply, r))
                }
                Op::Release { seq, delay, reply } => {
                    let r = leased(seq, store::release(&sp, seq, delay, now));
                    (r.is_ok(), answer(reply, r))
                }
                Op::Extend { seq, lease, reply } => {
                    let until = now + lease.as_micros() as i64;
                    let r = leased(seq, store::extend(&sp, seq, until, now));
                    (r.is_ok(), answer(reply, r))
                }
                Op::Reject { seq, error, reply } => {
                    let r = leased(seq, store::reject(&sp, seq, &error, now));
                    (r.is_ok(), answer(reply, r))
                }
                Op::Redrive { queue, id, reply } => {
                    let r = store::redrive(&sp, &queue, id.as_deref(), now).map_err(backend);
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
        tx.commit().during(DB, "committing a batch")
    })();
    let failed = committed.err().map(|e| {
        tracing::error!("queue batch not committed: {e}");
        e.to_string()
    });
    for done in answers {
        done(failed.as_deref());
    }
}

/// A settle's answer: not found when `seq` was not leased.
fn leased(seq: i64, settled: Result<bool, SqliteError>) -> Result<(), QueueError> {
    match settled {
        Ok(true) => Ok(()),
        Ok(false) => Err(QueueError::NotFound(seq)),
        Err(e) => Err(backend(e)),
    }
}
