//! The SQL of each queue operation, run inside the writer's transaction
//! (or, for reads, on the reader connection).

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use stratus_sqlite::from_unix_micros;

use crate::error::DB;
use stratus_sqlite::{During, SqliteError};
use stratus_storage::{Backlog, Delivery, EventState, EventStatus, NewEvent, RetryPolicy, Settled};

/// What a statement of this module answers: SQLite's error names the
/// database and what the node was doing, shown as it is.
type Result<T> = std::result::Result<T, SqliteError>;

/// Stores the event (once per `(queue, origin, id)`); returns its sequence
/// number.
pub(crate) fn enqueue(conn: &Connection, e: &NewEvent, now: i64) -> Result<i64> {
    const ACTION: &str = "enqueueing an event";
    // The queue's own events are stored with origin '' rather than NULL:
    // SQLite's UNIQUE treats NULLs as distinct, which would end
    // de-duplication.
    let origin = e.origin.as_deref().unwrap_or("");
    conn.prepare_cached(
        "INSERT INTO event (queue, origin, id, source, kind, subject, path, content_type, data,
                            state, max_attempts, created_us, updated_us, next_us,
                            traceparent, tracestate)
         VALUES (?1, ?11, ?2, ?3, ?4, ?5, ?10, ?6, ?7, 'queued', ?8, ?9, ?9, ?9, ?12, ?13)
         ON CONFLICT (queue, origin, id) DO NOTHING",
    )
    .during(DB, ACTION)?
    .execute(params![
        e.queue,
        e.id,
        e.source,
        e.kind,
        e.subject,
        e.content_type,
        e.data,
        e.max_attempts.max(1),
        now,
        e.path,
        origin,
        e.traceparent,
        e.tracestate
    ])
    .during(DB, ACTION)?;
    conn.prepare_cached("SELECT seq FROM event WHERE queue = ?1 AND origin = ?2 AND id = ?3")
        .during(DB, ACTION)?
        .query_row(params![e.queue, origin, e.id], |row| row.get(0))
        .during(DB, ACTION)
}

/// Stores a cron tick's event (if any: a first start only marks where the
/// schedule begins) and records the tick as fired, in one savepoint: after
/// a crash either both happened or neither.
pub(crate) fn fire(
    conn: &Connection,
    e: Option<&NewEvent>,
    trigger: &str,
    tick_us: i64,
    now: i64,
) -> Result<Option<i64>> {
    let seq = e.map(|e| enqueue(conn, e, now)).transpose()?;
    conn.prepare_cached(
        "INSERT INTO cron_tick (trigger, tick_us) VALUES (?1, ?2)
         ON CONFLICT (trigger) DO UPDATE SET tick_us = max(tick_us, excluded.tick_us)",
    )
    .during(DB, "recording a cron tick")?
    .execute(params![trigger, tick_us])
    .during(DB, "recording a cron tick")?;
    Ok(seq)
}

/// The last tick a cron trigger fired, if it ever did.
pub(crate) fn last_tick(conn: &Connection, trigger: &str) -> Result<Option<i64>> {
    conn.prepare_cached("SELECT tick_us FROM cron_tick WHERE trigger = ?1")
        .during(DB, "reading a cron tick")?
        .query_row([trigger], |row| row.get(0))
        .optional()
        .during(DB, "reading a cron tick")
}

/// Stores an event straight into the dead-letter state: one that was
/// delivered elsewhere (a JetStream message) until its attempts ran out, or
/// that could not be read as an event at all. Redrive then delivers it
/// through this queue. An id already stored stays as it is, as `enqueue`
/// leaves it: a duplicate never ends the event it duplicates.
pub(crate) fn bury(
    conn: &Connection,
    e: &NewEvent,
    attempts: u32,
    error: &str,
    now: i64,
) -> Result<i64> {
    const ACTION: &str = "storing a dead letter";
    let seq = enqueue(conn, e, now)?;
    if conn.changes() == 0 {
        return Ok(seq);
    }
    conn.prepare_cached(
        "UPDATE event SET state = 'dead', attempts = ?2, last_error = ?3, updated_us = ?4
         WHERE seq = ?1 AND state = 'queued' AND attempts = 0",
    )
    .during(DB, ACTION)?
    .execute(params![seq, attempts, error, now])
    .during(DB, ACTION)?;
    Ok(seq)
}

/// Hands out up to `max` due events of `queue` (of every queue when
/// `None`): waiting ones whose time has come and leased ones whose lease ran
/// out (their deliverer is gone).
pub(crate) fn lease(
    conn: &Connection,
    queue: Option<&str>,
    max: usize,
    lease: Duration,
    now: i64,
) -> Result<Vec<Delivery>> {
    const ACTION: &str = "leasing events";
    let until = now + lease.as_micros() as i64;
    let sql = format!(
        "SELECT seq, queue, id, source, kind, subject, path, content_type, data, created_us,
                attempts, max_attempts, traceparent, tracestate
         FROM event
         WHERE {} state IN ('queued', 'running') AND next_us <= ?2
         ORDER BY next_us, seq LIMIT ?3",
        if queue.is_some() {
            "queue = ?1 AND"
        } else {
            "?1 IS NULL AND"
        }
    );
    let mut select = conn.prepare_cached(&sql).during(DB, ACTION)?;
    let deliveries = select
        .query_map(params![queue, now, max as i64], |row| {
            Ok(Delivery {
                seq: row.get(0)?,
                queue: row.get(1)?,
                id: row.get(2)?,
                source: row.get(3)?,
                kind: row.get(4)?,
                subject: row.get(5)?,
                path: row.get(6)?,
                content_type: row.get(7)?,
                data: row.get(8)?,
                traceparent: row.get(12)?,
                tracestate: row.get(13)?,
                time: from_unix_micros(row.get(9)?),
                attempt: row.get::<_, u32>(10)? + 1,
                max_attempts: row.get(11)?,
            })
        })
        .during(DB, ACTION)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .during(DB, ACTION)?;
    // While leased, `next_us` is when the lease runs out: the same index
    // then finds events whose deliverer died.
    let mut mark = conn
        .prepare_cached(
            "UPDATE event SET state = 'running', attempts = attempts + 1, next_us = ?2,
                              lease_until_us = ?2, updated_us = ?3
             WHERE seq = ?1",
        )
        .during(DB, ACTION)?;
    for d in &deliveries {
        mark.execute(params![d.seq, until, now])
            .during(DB, ACTION)?;
    }
    Ok(deliveries)
}

/// After a restart nothing of this node is delivering: every leased event
/// is due again at once rather than when its lease would have run out.
pub(crate) fn recover(conn: &Connection, now: i64) -> Result<usize> {
    conn.execute(
        "UPDATE event SET state = 'queued', next_us = ?1, lease_until_us = NULL
         WHERE state = 'running'",
        [now],
    )
    .during(DB, "recovering leased events")
}

/// Records a successful delivery and the handler's answer; `false` when
/// `seq` is not leased.
pub(crate) fn succeed(
    conn: &Connection,
    seq: i64,
    result: Option<&(u16, Vec<u8>)>,
    now: i64,
) -> Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE event SET state = 'succeeded', result_status = ?2, result_body = ?3,
                              lease_until_us = NULL, next_us = ?4, updated_us = ?4
             WHERE seq = ?1 AND state = 'running'",
        )
        .during(DB, "settling an event")?
        .execute(params![
            seq,
            result.map(|r| r.0),
            result.map(|r| r.1.as_slice()),
            now
        ])
        .during(DB, "settling an event")?;
    Ok(changed > 0)
}

/// Hands a leased event back without counting the attempt (the function
/// was too busy to take it: back-pressure, not failure), due after `delay`;
/// `false` when `seq` is not leased.
pub(crate) fn release(conn: &Connection, seq: i64, delay: Duration, now: i64) -> Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE event SET state = 'queued', attempts = MAX(attempts - 1, 0), next_us = ?2,
                              lease_until_us = NULL, updated_us = ?3
             WHERE seq = ?1 AND state = 'running'",
        )
        .during(DB, "releasing an event")?
        .execute(params![seq, now + delay.as_micros() as i64, now])
        .during(DB, "releasing an event")?;
    Ok(changed > 0)
}

/// Moves a leased event's lease end to `until`; `false` when `seq` is not
/// leased.
pub(crate) fn extend(conn: &Connection, seq: i64, until: i64, now: i64) -> Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE event SET next_us = ?2, lease_until_us = ?2, updated_us = ?3
             WHERE seq = ?1 AND state = 'running'",
        )
        .during(DB, "extending a lease")?
        .execute(params![seq, until, now])
        .during(DB, "extending a lease")?;
    Ok(changed > 0)
}

/// Settles a leased event as dead at once with `error`, its attempt taken
/// back (it was never delivered); `false` when `seq` is not leased.
pub(crate) fn reject(conn: &Connection, seq: i64, error: &str, now: i64) -> Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE event SET state = 'dead', attempts = MAX(attempts - 1, 0), last_error = ?2,
                              next_us = ?3, lease_until_us = NULL, updated_us = ?3
             WHERE seq = ?1 AND state = 'running'",
        )
        .during(DB, "rejecting an event")?
        .execute(params![seq, error, now])
        .during(DB, "rejecting an event")?;
    Ok(changed > 0)
}

/// Records a failed delivery: queued again after a backoff, or dead once
/// its attempts are used up. `None` when `seq` is not leased.
pub(crate) fn fail(
    conn: &Connection,
    seq: i64,
    error: &str,
    policy: &RetryPolicy,
    now: i64,
) -> Result<Option<Settled>> {
    const ACTION: &str = "settling a failed event";
    let found: Option<(u32, u32)> = conn
        .prepare_cached(
            "SELECT attempts, max_attempts FROM event WHERE seq = ?1 AND state = 'running'",
        )
        .during(DB, ACTION)?
        .query_row([seq], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()
        .during(DB, ACTION)?;
    let Some((attempts, max_attempts)) = found else {
        return Ok(None);
    };
    let (state, next, settled) = if attempts >= max_attempts {
        ("dead", now, Settled::Dead)
    } else {
        let next = now + policy.delay(attempts).as_micros() as i64;
        ("queued", next, Settled::Retry(from_unix_micros(next)))
    };
    conn.prepare_cached(
        "UPDATE event SET state = ?2, next_us = ?3, last_error = ?4, lease_until_us = NULL,
                          updated_us = ?5
         WHERE seq = ?1",
    )
    .during(DB, ACTION)?
    .execute(params![seq, state, next, error, now])
    .during(DB, ACTION)?;
    Ok(Some(settled))
}

/// Puts dead events of `queue` (or just the one with `id`) back in line
/// with fresh attempts; returns how many.
pub(crate) fn redrive(conn: &Connection, queue: &str, id: Option<&str>, now: i64) -> Result<usize> {
    conn.prepare_cached(
        "UPDATE event SET state = 'queued', attempts = 0, next_us = ?3, updated_us = ?3
         WHERE queue = ?1 AND state = 'dead' AND (?2 IS NULL OR id = ?2)",
    )
    .during(DB, "redriving dead events")?
    .execute(params![queue, id, now])
    .during(DB, "redriving dead events")
}

/// Deletes settled events (succeeded or dead) last touched before `before`.
pub(crate) fn prune(conn: &Connection, before: i64) -> Result<usize> {
    conn.execute(
        "DELETE FROM event WHERE state IN ('succeeded', 'dead') AND updated_us < ?1",
        [before],
    )
    .during(DB, "pruning settled events")
}

const STATUS_COLUMNS: &str = "seq, queue, id, state, attempts, max_attempts, created_us, \
     updated_us, next_us, last_error, result_status, result_body, origin";

fn status_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<EventStatus> {
    let origin: String = row.get(12)?;
    Ok(EventStatus {
        seq: row.get(0)?,
        queue: row.get(1)?,
        origin: (!origin.is_empty()).then_some(origin),
        id: row.get(2)?,
        state: EventState::parse(&row.get::<_, String>(3)?),
        attempts: row.get(4)?,
        max_attempts: row.get(5)?,
        created_at: from_unix_micros(row.get(6)?),
        updated_at: from_unix_micros(row.get(7)?),
        next_at: from_unix_micros(row.get(8)?),
        last_error: row.get(9)?,
        result_status: row.get(10)?,
        result_body: row.get(11)?,
    })
}

/// A queue's newest events, newest first, in any state.
pub(crate) fn recent(conn: &Connection, queue: &str, limit: usize) -> Result<Vec<EventStatus>> {
    conn.prepare_cached(&format!(
        "SELECT {STATUS_COLUMNS} FROM event WHERE queue = ?1 ORDER BY seq DESC LIMIT ?2"
    ))
    .during(DB, "listing events")?
    .query_map(params![queue, limit as i64], status_row)
    .during(DB, "listing events")?
    .collect::<rusqlite::Result<Vec<_>>>()
    .during(DB, "listing events")
}

/// The newest event with this id, in any queue.
pub(crate) fn status(conn: &Connection, id: &str) -> Result<Option<EventStatus>> {
    conn.prepare_cached(&format!(
        "SELECT {STATUS_COLUMNS} FROM event WHERE id = ?1 ORDER BY seq DESC LIMIT 1"
    ))
    .during(DB, "reading an event")?
    .query_row([id], status_row)
    .optional()
    .during(DB, "reading an event")
}

/// The newest event `id` of `queue`, as it was published.
pub(crate) fn published(conn: &Connection, queue: &str, id: &str) -> Result<Option<NewEvent>> {
    const ACTION: &str = "reading an event to replay";
    conn.prepare_cached(
        "SELECT origin, source, kind, subject, path, content_type, data, traceparent,
                tracestate, max_attempts
         FROM event WHERE queue = ?1 AND id = ?2 ORDER BY seq DESC LIMIT 1",
    )
    .during(DB, ACTION)?
    .query_row(params![queue, id], |row| {
        let origin: String = row.get(0)?;
        Ok(NewEvent {
            queue: queue.to_owned(),
            origin: (!origin.is_empty()).then_some(origin),
            id: id.to_owned(),
            source: row.get(1)?,
            kind: row.get(2)?,
            subject: row.get(3)?,
            path: row.get(4)?,
            content_type: row.get(5)?,
            data: row.get(6)?,
            traceparent: row.get(7)?,
            tracestate: row.get(8)?,
            max_attempts: row.get(9)?,
        })
    })
    .optional()
    .during(DB, ACTION)
}

/// Every queue with events waiting or dead. Reads only those rows, through
/// the index on `state` (settled events, kept a while, are not scanned).
pub(crate) fn backlog(conn: &Connection) -> Result<Vec<Backlog>> {
    const ACTION: &str = "reading the queues' backlog";
    conn.prepare_cached(
        "SELECT queue,
                SUM(state IN ('queued', 'running')),
                MIN(CASE WHEN state IN ('queued', 'running') THEN created_us END),
                SUM(state = 'dead')
         FROM event WHERE state IN ('queued', 'running', 'dead')
         GROUP BY queue ORDER BY queue",
    )
    .during(DB, ACTION)?
    .query_map([], |row| {
        Ok(Backlog {
            queue: row.get(0)?,
            waiting: row.get::<_, i64>(1)?.max(0) as u64,
            oldest: row.get::<_, Option<i64>>(2)?.map(from_unix_micros),
            dead: row.get::<_, i64>(3)?.max(0) as u64,
        })
    })
    .during(DB, ACTION)?
    .collect::<rusqlite::Result<Vec<_>>>()
    .during(DB, ACTION)
}

pub(crate) fn dead(conn: &Connection, queue: &str, limit: usize) -> Result<Vec<EventStatus>> {
    conn.prepare_cached(&format!(
        "SELECT {STATUS_COLUMNS} FROM event WHERE queue = ?1 AND state = 'dead'
         ORDER BY seq LIMIT ?2"
    ))
    .during(DB, "listing dead events")?
    .query_map(params![queue, limit as i64], status_row)
    .during(DB, "listing dead events")?
    .collect::<rusqlite::Result<Vec<_>>>()
    .during(DB, "listing dead events")
}
