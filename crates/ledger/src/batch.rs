//! The packed form of a batch of invocation records.
//!
//! One SQLite row per committed batch rather than one per invocation: at
//! tens of thousands of invocations a second, a row each cost more CPU in
//! SQLite (2–7 µs per record, measured) than the rest of the request's
//! metering together. Packed, a record is ~80 bytes of plain little-endian
//! fields and SQLite sees one insert per batch. Reads (usage, one
//! invocation) unpack the batches of the time range they need; the row
//! keeps the smallest and largest invocation id it holds so that range is
//! found by index.

use std::time::Duration;

use stratus_storage::{InvocationRecord, Outbound, Trigger};

use crate::keys::{from_unix_micros, id_key, id_text, unix_micros};

/// A record as unpacked, with the function by number.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Packed {
    pub key: Vec<u8>,
    pub function_id: i64,
    pub record: InvocationRecord,
}

pub(crate) fn push(out: &mut Vec<u8>, function_id: i64, r: &InvocationRecord) {
    let key = id_key(&r.id);
    out.push(key.len() as u8);
    out.extend_from_slice(&key[..key.len().min(255)]);
    out.extend_from_slice(&function_id.to_le_bytes());
    out.extend_from_slice(&r.version.to_le_bytes());
    // The high bit says the record carries the fields added later (caller,
    // outbound usage) after its error: batches written before them still
    // read as they are.
    out.push(
        EXTENDED
            | HOST_MEMORY
            | match r.trigger {
                Trigger::Http => 0,
                Trigger::Api => 1,
                Trigger::Event => 2,
                Trigger::Service => 3,
            },
    );
    out.extend_from_slice(&unix_micros(r.started_at).to_le_bytes());
    for n in [
        r.wall.as_micros() as u64,
        r.cpu.as_micros() as u64,
        r.peak_memory,
        r.bytes_in,
        r.bytes_out,
    ] {
        out.extend_from_slice(&n.to_le_bytes());
    }
    out.extend_from_slice(&r.status.to_le_bytes());
    out.push(u8::from(r.cold));
    let error = r.error.as_deref().unwrap_or("").as_bytes();
    let error = &error[..error.len().min(255)];
    out.push(error.len() as u8);
    out.extend_from_slice(error);
    let caller = r.caller.as_deref().map(id_key).unwrap_or_default();
    let caller = &caller[..caller.len().min(255)];
    out.push(caller.len() as u8);
    out.extend_from_slice(caller);
    out.extend_from_slice(&r.outbound.requests.to_le_bytes());
    out.extend_from_slice(&r.outbound.bytes.to_le_bytes());
    out.extend_from_slice(&(r.outbound.time.as_micros() as u64).to_le_bytes());
    out.extend_from_slice(&r.peak_host_memory.to_le_bytes());
}

/// Set in the trigger byte of a record with the later fields.
const EXTENDED: u8 = 0x80;
/// Set in the trigger byte of a record with its peak host memory (after the
/// `EXTENDED` fields).
const HOST_MEMORY: u8 = 0x40;

/// Unpacks a batch; `None` if the bytes are not a valid batch.
pub(crate) fn unpack(mut bytes: &[u8]) -> Option<Vec<Packed>> {
    let mut records = Vec::new();
    while !bytes.is_empty() {
        let mut take = |n: usize| -> Option<&[u8]> {
            let (head, rest) = bytes.split_at_checked(n)?;
            bytes = rest;
            Some(head)
        };
        let key_len = take(1)?[0] as usize;
        let key = take(key_len)?.to_vec();
        let function_id = i64::from_le_bytes(take(8)?.try_into().ok()?);
        let version = u32::from_le_bytes(take(4)?.try_into().ok()?);
        let trigger_byte = take(1)?[0];
        let trigger = match trigger_byte & !(EXTENDED | HOST_MEMORY) {
            1 => Trigger::Api,
            2 => Trigger::Event,
            3 => Trigger::Service,
            _ => Trigger::Http,
        };
        let started = i64::from_le_bytes(take(8)?.try_into().ok()?);
        let mut numbers = [0u64; 5];
        for n in &mut numbers {
            *n = u64::from_le_bytes(take(8)?.try_into().ok()?);
        }
        let status = u16::from_le_bytes(take(2)?.try_into().ok()?);
        let cold = take(1)?[0] == 1;
        let error_len = take(1)?[0] as usize;
        let error = take(error_len)?;
        let error = (!error.is_empty()).then(|| String::from_utf8_lossy(error).into_owned());
        let (mut caller, mut outbound) = (None, Outbound::default());
        if trigger_byte & EXTENDED != 0 {
            let caller_len = take(1)?[0] as usize;
            let caller_key = take(caller_len)?;
            caller = (!caller_key.is_empty()).then(|| id_text(caller_key));
            outbound.requests = u32::from_le_bytes(take(4)?.try_into().ok()?);
            outbound.bytes = u64::from_le_bytes(take(8)?.try_into().ok()?);
            outbound.time = Duration::from_micros(u64::from_le_bytes(take(8)?.try_into().ok()?));
        }
        let mut peak_host_memory = 0;
        if trigger_byte & HOST_MEMORY != 0 {
            peak_host_memory = u64::from_le_bytes(take(8)?.try_into().ok()?);
        }
        let [wall, cpu, peak_memory, bytes_in, bytes_out] = numbers;
        records.push(Packed {
            record: InvocationRecord {
                id: id_text(&key),
                app: String::new(),
                function: String::new(),
                version,
                trigger,
                started_at: from_unix_micros(started),
                wall: Duration::from_micros(wall),
                cpu: Duration::from_micros(cpu),
                peak_memory,
                peak_host_memory,
                bytes_in,
                bytes_out,
                status,
                error,
                cold,
                caller,
                outbound,
            },
            key,
            function_id,
        });
    }
    Some(records)
}
