//! The task that writes what a node records: it gathers records for a
//! moment, publishes one message per app (more when an app's batch is
//! large), and, once JetStream has acknowledged them, rewrites this
//! writer's hourly sums of the functions they ran. While JetStream does
//! not answer it keeps what it holds (bounded) and tries again with the
//! same message ids, so a publish whose acknowledgement was lost is not
//! stored twice.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::HeaderMap;
use bytes::Bytes;
use futures_util::StreamExt;
use stratus_storage::{InvocationRecord, LedgerStats, LogLine, UsageSums};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::wire::{self, Batch, Entry};
use crate::api::JetStream;
use crate::kv::Kv;

/// How long records gather before a batch goes out: the delay a follower
/// of logs on another node sees, and what keeps the stream at a few
/// messages a second per node.
const GATHER: Duration = Duration::from_millis(50);
/// The most records in one round of publishing.
const ROUND_RECORDS: usize = 4096;
/// A message is closed once its entries reach this size.
const MESSAGE_BYTES: usize = 256 << 10;
/// Records held while JetStream does not answer; beyond them new records
/// are dropped (and counted).
pub(super) const HELD_RECORDS: usize = 100_000;
/// Writes in flight at once.
const CONCURRENT: usize = 32;
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(5);

pub(super) enum Command {
    /// A record, its lines, and whether the record is kept (else it is
    /// only counted in usage: sampled out).
    Record(Box<(InvocationRecord, Vec<LogLine>, bool)>),
    /// Answered once everything recorded before it is written.
    Flush(oneshot::Sender<()>),
}

/// Where and as whom the writer writes.
pub(super) struct Writer {
    pub js: JetStream,
    /// `<name>.ledger.`: an app's subject is this and the app's token.
    pub subject_prefix: String,
    /// `<name>.ledger-id.`: where a record whose id does not tell when it
    /// ran is also stored.
    pub index_prefix: String,
    pub usage: Kv,
    /// This process's id in roll-up keys: its sums are its own.
    pub id: String,
    pub stats: Arc<LedgerStats>,
}

/// A roll-up key's parts: app, hour, function.
type Rollup = (String, u64, String);

/// A message formed from a round of records: kept, with its id, until
/// JetStream acknowledges it.
struct Message {
    subject: String,
    id: String,
    payload: Bytes,
    acked: bool,
}

/// One writer's sums of a roll-up key.
#[derive(Debug, Default, Clone, Copy)]
struct Slot {
    sums: UsageSums,
    /// Whether `sums` includes what the key held before this process
    /// first added to it.
    loaded: bool,
}

/// A round of records on its way.
struct Round {
    /// Each record, its count of lines, and whether it is kept.
    records: Vec<(InvocationRecord, usize, bool)>,
    messages: Vec<Message>,
}

#[derive(Default)]
struct State {
    pending: VecDeque<(InvocationRecord, Vec<LogLine>, bool)>,
    round: Option<Round>,
    rounds: u64,
    /// Records taken in, written (acknowledged), and whose sums are stored.
    received: u64,
    written: u64,
    rolled: u64,
    sums: BTreeMap<Rollup, Slot>,
    dirty: BTreeSet<Rollup>,
    waiters: Vec<(u64, oneshot::Sender<()>)>,
    closed: bool,
}

impl State {
    fn idle(&self) -> bool {
        self.pending.is_empty() && self.round.is_none() && self.dirty.is_empty()
    }

    fn take(&mut self, command: Command, stats: &LedgerStats) {
        match command {
            Command::Record(boxed) => {
                if self.pending.len() >= HELD_RECORDS {
                    stats.records_dropped.fetch_add(1, Ordering::Relaxed);
                } else {
                    self.pending.push_back(*boxed);
                    self.received += 1;
                }
            }
            Command::Flush(answer) => self.waiters.push((self.received, answer)),
        }
    }

    fn answer_waiters(&mut self) {
        let rolled = self.rolled;
        let (done, waiting) = std::mem::take(&mut self.waiters)
            .into_iter()
            .partition(|(target, _)| *target <= rolled);
        self.waiters = waiting;
        for (_, answer) in done {
            let _ = answer.send(());
        }
    }
}

impl Writer {
    pub(super) async fn run(self, mut commands: mpsc::Receiver<Command>) {
        let mut state = State::default();
        let mut pause = RETRY_FIRST;
        loop {
            if state.idle() {
                state.rolled = state.written;
                state.answer_waiters();
                if state.closed {
                    return;
                }
                match commands.recv().await {
                    Some(command) => state.take(command, &self.stats),
                    None => return,
                }
                let until = Instant::now() + GATHER;
                while state.pending.len() < ROUND_RECORDS {
                    match tokio::time::timeout_at(until, commands.recv()).await {
                        Ok(Some(command)) => state.take(command, &self.stats),
                        Ok(None) => {
                            state.closed = true;
                            break;
                        }
                        Err(_) => break,
                    }
                }
            } else {
                loop {
                    match commands.try_recv() {
                        Ok(command) => state.take(command, &self.stats),
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => {
                            state.closed = true;
                            break;
                        }
                    }
                }
            }
            let published = self.publish(&mut state).await;
            let rolled = published && self.roll_up(&mut state).await;
            state.answer_waiters();
            if published && rolled {
                pause = RETRY_FIRST;
                self.stats.note_write(None);
                continue;
            }
            self.stats.write_failures.fetch_add(1, Ordering::Relaxed);
            let held = state.pending.len() + state.round.as_ref().map_or(0, |r| r.records.len());
            self.stats.note_write(Some(format!(
                "JetStream does not take the records ({held} held)"
            )));
            if state.closed {
                // Nobody will record or flush again, and JetStream does
                // not answer: what is held is lost, and counted.
                let lost =
                    state.pending.len() + state.round.as_ref().map_or(0, |r| r.records.len());
                self.stats
                    .records_dropped
                    .fetch_add(lost as u64, Ordering::Relaxed);
                return;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(RETRY_MAX);
        }
    }

    /// Publishes the round on its way, or forms one from what is pending.
    /// Answers whether nothing is left unacknowledged.
    async fn publish(&self, state: &mut State) -> bool {
        if state.round.is_none() && !state.pending.is_empty() {
            let count = state.pending.len().min(ROUND_RECORDS);
            let taken: Vec<_> = state.pending.drain(..count).collect();
            state.rounds += 1;
            state.round = Some(self.form(taken, state.rounds));
        }
        let Some(round) = state.round.as_mut() else {
            return true;
        };
        let unacked: Vec<(usize, String, String, Bytes)> = round
            .messages
            .iter()
            .enumerate()
            .filter(|(_, m)| !m.acked)
            .map(|(i, m)| (i, m.subject.clone(), m.id.clone(), m.payload.clone()))
            .collect();
        let mut sends = futures_util::stream::iter(unacked)
            .map(|(i, subject, id, payload)| {
                let js = self.js.clone();
                async move {
                    let mut headers = HeaderMap::new();
                    headers.insert("Nats-Msg-Id", id.as_str());
                    (i, js.publish(&subject, headers, payload).await)
                }
            })
            .buffer_unordered(CONCURRENT);
        let mut failed = false;
        while let Some((i, sent)) = sends.next().await {
            let acked = match sent {
                Ok(_) => true,
                Err(e) if e.is_unavailable() => {
                    tracing::debug!(error = %e, "ledger batch not written yet");
                    failed = true;
                    false
                }
                // JetStream refused the message itself (too large for the
                // server's payload limit, say): trying again cannot help.
                Err(e) => {
                    tracing::warn!(error = %e, "ledger batch refused; its records are lost");
                    true
                }
            };
            if let Some(message) = round.messages.get_mut(i) {
                message.acked |= acked;
            }
        }
        drop(sends);
        if failed {
            return false;
        }
        let Some(round) = state.round.take() else {
            return true;
        };
        let lines: usize = round.records.iter().map(|(_, lines, _)| lines).sum();
        let kept = round.records.iter().filter(|(_, _, keep)| *keep).count();
        self.stats
            .records_written
            .fetch_add(kept as u64, Ordering::Relaxed);
        self.stats
            .log_lines_written
            .fetch_add(lines as u64, Ordering::Relaxed);
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        state.written += round.records.len() as u64;
        for (record, _, keep) in &round.records {
            let key = (
                record.app.clone(),
                wire::hour_of(record.started_at),
                record.function.clone(),
            );
            let sums = &mut state.sums.entry(key.clone()).or_default().sums;
            if *keep {
                sums.add(record);
            } else {
                sums.add_sampled(record);
            }
            state.dirty.insert(key);
        }
        true
    }

    /// One message per app (more when an app's entries outgrow one), in
    /// the order recorded.
    fn form(&self, taken: Vec<(InvocationRecord, Vec<LogLine>, bool)>, round: u64) -> Round {
        let mut by_app: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
        let mut records = Vec::with_capacity(taken.len());
        let mut messages = Vec::new();
        for (record, logs, keep) in taken {
            if keep && !super::read::id_tells_time(&record.id, record.started_at) {
                let batch = Batch {
                    app: record.app.clone(),
                    entries: wire::entries(&record, &[], true),
                };
                messages.push(Message {
                    subject: format!("{}{}", self.index_prefix, super::id_digest(&record.id)),
                    id: format!("{}.{round}.i{}", self.id, messages.len()),
                    payload: serde_json::to_vec(&batch).unwrap_or_default().into(),
                    acked: false,
                });
            }
            by_app
                .entry(record.app.clone())
                .or_default()
                .extend(wire::entries(&record, &logs, keep));
            records.push((record, logs.len(), keep));
        }
        for (app, entries) in by_app {
            let subject = format!("{}{}", self.subject_prefix, super::token(&app));
            let mut chunk = Vec::new();
            let mut bytes = 0;
            let mut entries = entries.into_iter().peekable();
            while let Some(entry) = entries.next() {
                bytes += entry.lines.iter().map(|l| l.text.len() + 64).sum::<usize>() + 256;
                chunk.push(entry);
                if bytes >= MESSAGE_BYTES || entries.peek().is_none() {
                    let batch = Batch {
                        app: app.clone(),
                        entries: std::mem::take(&mut chunk),
                    };
                    // Serializing plain data cannot fail.
                    let payload = serde_json::to_vec(&batch).unwrap_or_default();
                    messages.push(Message {
                        subject: subject.clone(),
                        id: format!("{}.{round}.{}", self.id, messages.len()),
                        payload: payload.into(),
                        acked: false,
                    });
                    bytes = 0;
                }
            }
        }
        Round { records, messages }
    }

    /// Rewrites the sums changed since the last time. A key this process
    /// holds no sums of (never written, or let go of) is read back first,
    /// since a late record can add to an hour long past; from then on the
    /// sums in memory are the whole value, so writing them again after a
    /// lost acknowledgement is harmless. Answers whether all are stored.
    async fn roll_up(&self, state: &mut State) -> bool {
        let name = |key: &Rollup| {
            format!(
                "{}.{}.{}.{}",
                super::token(&key.0),
                key.1,
                super::token(&key.2),
                self.id
            )
        };
        let unloaded: Vec<(Rollup, String)> = state
            .dirty
            .iter()
            .filter(|key| state.sums.get(*key).is_none_or(|slot| !slot.loaded))
            .map(|key| (key.clone(), name(key)))
            .collect();
        let mut reads = futures_util::stream::iter(unloaded)
            .map(|(key, name)| {
                let usage = self.usage.clone();
                // From the leader: a replica behind would lose the last
                // sums this process wrote.
                async move { (key, usage.latest(&name).await) }
            })
            .buffer_unordered(CONCURRENT);
        let mut all = true;
        while let Some((key, read)) = reads.next().await {
            let stored = match read {
                Ok(stored) => stored,
                Err(e) => {
                    tracing::debug!(error = %e, "usage roll-up not read yet");
                    all = false;
                    continue;
                }
            };
            let slot = state.sums.entry(key).or_default();
            if let Some(stored) = stored {
                match serde_json::from_slice::<wire::Sums>(&stored.value) {
                    Ok(stored) => slot.sums.absorb(&stored.sums),
                    Err(e) => tracing::warn!(error = %e, "a damaged usage roll-up is written anew"),
                }
            }
            slot.loaded = true;
        }
        drop(reads);
        let loaded: Vec<(Rollup, String, Bytes)> = state
            .dirty
            .iter()
            .filter_map(|key| {
                let slot = state.sums.get(key).filter(|slot| slot.loaded)?;
                let sums = wire::Sums {
                    app: key.0.clone(),
                    function: key.2.clone(),
                    sums: slot.sums,
                };
                let value = serde_json::to_vec(&sums).unwrap_or_default();
                Some((key.clone(), name(key), Bytes::from(value)))
            })
            .collect();
        let mut puts = futures_util::stream::iter(loaded)
            .map(|(key, name, value)| {
                let usage = self.usage.clone();
                async move { (key, usage.put(&name, value).await) }
            })
            .buffer_unordered(CONCURRENT);
        let mut stored = Vec::new();
        while let Some((key, put)) = puts.next().await {
            match put {
                Ok(_) => stored.push(key),
                Err(e) => {
                    tracing::debug!(error = %e, "usage roll-up not written yet");
                    all = false;
                }
            }
        }
        drop(puts);
        for key in stored {
            state.dirty.remove(&key);
        }
        // Hours past are rarely added to again: only the last two stay in
        // memory (a later record reads its key back).
        let now = wire::hour_of(std::time::SystemTime::now());
        let dirty = &state.dirty;
        state
            .sums
            .retain(|key, _| key.1 + 2 > now || dirty.contains(key));
        if all && state.dirty.is_empty() {
            state.rolled = state.written;
        }
        all
    }
}
