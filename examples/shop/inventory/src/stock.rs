//! Stock levels and reservations over a key-value bucket. No WASI here: the
//! bucket is the [`Store`] trait, which the handler implements with
//! `wasi:keyvalue` and the tests with a map.
//!
//! # Why two counters per SKU
//!
//! The bucket has no compare-and-swap, only `get`/`set` and an atomic
//! `increment` by a non-negative delta. A read-check-write of one stock
//! number would let two concurrent reservations both read 1 and both take
//! it. So the stock of a SKU is two counters that only ever grow:
//!
//! - `stock/<sku>/in`: units that came in (stock added, units given back);
//! - `stock/<sku>/out`: units that went out (reservations, stock removed);
//!
//! and the stock is `in - out`. A reservation of `q` units reads `in` (an
//! increment by 0), *then* adds `q` to `out`, and keeps the units only if
//! the new `out` is at most the `in` it read; otherwise it gives them back
//! by adding `q` to `in`. Each increment is atomic, so the `out` value a
//! reservation gets counts every reservation before it, and every unit
//! given back that it counted in `in` was taken out before its own
//! increment: the units kept never exceed the stock (no overselling, for
//! any number of concurrent requests on the node). The price is that a
//! reservation racing with one that is about to give its units back may be
//! refused although stock would have sufficed a moment later (a spurious
//! 409 the client can retry), and that `GET` may briefly show less stock.
//!
//! # Idempotency by order
//!
//! Each reservation is recorded at `reservation/<order>/<sku>` (quantity
//! and state), so the same order reserving the same SKU again is answered
//! from the record instead of taking stock twice. Two *concurrent* requests
//! for one order (a double click) could both miss the record, so the record
//! is read and written under a try-lock per order and SKU, built from two
//! growing counters the same way (`lock/<order>/<sku>/taken` and `/freed`):
//! the request that finds every earlier ticket freed holds the lock; any
//! other is refused at once with `reservation_in_progress` (409) rather
//! than waiting. Should the function die while holding it (a trap or a
//! timeout between the two increments), that order's SKU stays locked: the
//! client then uses a new order id. Setting the stock (`PUT`, admin use) is
//! not coordinated with reservations in flight.

use serde_json::{Value, json};

/// Most stock one SKU may have (far from `u64` overflow).
pub const MAX_STOCK: u64 = 1_000_000_000;
/// Most units one reservation may take.
pub const MAX_QUANTITY: u64 = 1000;

/// The bucket, as the logic needs it. Errors are messages.
pub trait Store {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String>;
    fn set(&self, key: &str, value: &[u8]) -> Result<(), String>;
    /// Adds `delta` atomically and returns the sum (unset: 0).
    fn increment(&self, key: &str, delta: u64) -> Result<u64, String>;
}

fn units_in(sku: &str) -> String {
    format!("stock/{sku}/in")
}

fn units_out(sku: &str) -> String {
    format!("stock/{sku}/out")
}

/// The stock of `sku` (0 for a SKU never stocked).
pub fn stock(store: &impl Store, sku: &str) -> Result<u64, String> {
    // `in` first, as in `take`: a reservation in flight can only make this
    // read lower, never higher.
    let came_in = store.increment(&units_in(sku), 0)?;
    let went_out = store.increment(&units_out(sku), 0)?;
    Ok(came_in.saturating_sub(went_out))
}

/// Sets the stock of `sku` to `target` by adding to `in` or `out`, and
/// returns it. Not atomic with reservations in flight (admin use).
pub fn set_stock(store: &impl Store, sku: &str, target: u64) -> Result<u64, String> {
    let current = stock(store, sku)?;
    if target > current {
        store.increment(&units_in(sku), target - current)?;
    } else if current > target {
        store.increment(&units_out(sku), current - target)?;
    }
    Ok(target)
}

/// Takes `quantity` units of `sku` if there are enough: `Ok(left)`, or
/// `Err(available)` with nothing taken. See the module comment.
fn take(store: &impl Store, sku: &str, quantity: u64) -> Result<Result<u64, u64>, String> {
    let came_in = store.increment(&units_in(sku), 0)?;
    let went_out = store.increment(&units_out(sku), quantity)?;
    if went_out <= came_in {
        return Ok(Ok(came_in - went_out));
    }
    store.increment(&units_in(sku), quantity)?; // give them back
    Ok(Err(came_in.saturating_sub(went_out - quantity)))
}

/// A request to reserve stock for an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub order: String,
    pub sku: String,
    pub quantity: u64,
}

/// What became of a reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reserved {
    /// Units taken now; `left` in stock after.
    Taken { left: u64 },
    /// This order already holds this reservation: nothing taken again.
    Replayed,
    /// Not enough stock: nothing taken.
    Insufficient { available: u64 },
    /// This order already holds a reservation of this SKU for another
    /// quantity.
    Conflict { held: u64 },
    /// Another request for this order and SKU is being handled.
    InProgress,
}

/// What became of a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Released {
    /// The units went back into stock.
    Returned {
        quantity: u64,
    },
    /// Nothing was held (never reserved, or released before).
    NothingHeld,
    InProgress,
}

/// The record of an order's reservation of one SKU.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    quantity: u64,
    held: bool,
}

fn record_key(order: &str, sku: &str) -> String {
    format!("reservation/{order}/{sku}")
}

fn read_record(store: &impl Store, key: &str) -> Result<Option<Record>, String> {
    let Some(bytes) = store.get(key)? else {
        return Ok(None);
    };
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|err| format!("the record at {key:?} is not JSON: {err}"))?;
    match (value["quantity"].as_u64(), value["state"].as_str()) {
        (Some(quantity), Some(state)) => Ok(Some(Record {
            quantity,
            held: state == "reserved",
        })),
        _ => Err(format!(
            "the record at {key:?} is not a reservation: {value}"
        )),
    }
}

fn write_record(store: &impl Store, key: &str, at: &Reservation, held: bool) -> Result<(), String> {
    let record = json!({
        "order": at.order,
        "sku": at.sku,
        "quantity": at.quantity,
        "state": if held { "reserved" } else { "released" },
    });
    store.set(key, record.to_string().as_bytes())
}

/// Reserves `at.quantity` units of `at.sku` for `at.order`, at most once per
/// order and SKU.
pub fn reserve(store: &impl Store, at: &Reservation) -> Result<Reserved, String> {
    let Some(lock) = Lock::try_take(store, &at.order, &at.sku)? else {
        return Ok(Reserved::InProgress);
    };
    let outcome = reserve_locked(store, at);
    lock.free(store)?;
    outcome
}

fn reserve_locked(store: &impl Store, at: &Reservation) -> Result<Reserved, String> {
    let key = record_key(&at.order, &at.sku);
    match read_record(store, &key)? {
        Some(record) if record.held && record.quantity == at.quantity => {
            return Ok(Reserved::Replayed);
        }
        Some(record) if record.held => {
            return Ok(Reserved::Conflict {
                held: record.quantity,
            });
        }
        _ => {} // none yet, or released: reserve anew
    }
    match take(store, &at.sku, at.quantity)? {
        Ok(left) => {
            if let Err(err) = write_record(store, &key, at, true) {
                // Unrecorded units would be lost to a retry: give them back.
                store.increment(&units_in(&at.sku), at.quantity)?;
                return Err(err);
            }
            Ok(Reserved::Taken { left })
        }
        Err(available) => Ok(Reserved::Insufficient { available }),
    }
}

/// Gives the units `order` holds of `sku` back to stock (checkout's undo
/// when a later step fails). Releasing twice returns them once.
pub fn release(store: &impl Store, order: &str, sku: &str) -> Result<Released, String> {
    let Some(lock) = Lock::try_take(store, order, sku)? else {
        return Ok(Released::InProgress);
    };
    let outcome = release_locked(store, order, sku);
    lock.free(store)?;
    outcome
}

fn release_locked(store: &impl Store, order: &str, sku: &str) -> Result<Released, String> {
    let key = record_key(order, sku);
    let Some(record) = read_record(store, &key)?.filter(|r| r.held) else {
        return Ok(Released::NothingHeld);
    };
    let at = Reservation {
        order: order.to_string(),
        sku: sku.to_string(),
        quantity: record.quantity,
    };
    // Recorded as released first: should the function die in between, the
    // units stay out of stock (lost) rather than be returned twice.
    write_record(store, &key, &at, false)?;
    store.increment(&units_in(sku), record.quantity)?;
    Ok(Released::Returned {
        quantity: record.quantity,
    })
}

/// A try-lock on one order's reservation of one SKU: tickets counted by two
/// growing counters (see the module comment).
struct Lock {
    freed: String,
}

impl Lock {
    fn try_take(store: &impl Store, order: &str, sku: &str) -> Result<Option<Lock>, String> {
        let taken = format!("lock/{order}/{sku}/taken");
        let lock = Lock {
            freed: format!("lock/{order}/{sku}/freed"),
        };
        // `freed` first: a ticket freed before this read was drawn before
        // ours, so if every ticket before ours is counted, none is held.
        let freed = store.increment(&lock.freed, 0)?;
        let ticket = store.increment(&taken, 1)?;
        if ticket == freed + 1 {
            return Ok(Some(lock));
        }
        lock.free(store)?; // our ticket, not the holder's
        Ok(None)
    }

    fn free(self, store: &impl Store) -> Result<(), String> {
        store.increment(&self.freed, 1).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use super::*;

    /// A bucket in memory; `increment` keeps decimal text, as the node does.
    #[derive(Default)]
    struct Map(RefCell<HashMap<String, Vec<u8>>>);

    impl Store for Map {
        fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
            Ok(self.0.borrow().get(key).cloned())
        }
        fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
            self.0.borrow_mut().insert(key.into(), value.to_vec());
            Ok(())
        }
        fn increment(&self, key: &str, delta: u64) -> Result<u64, String> {
            let mut map = self.0.borrow_mut();
            let entry = map.entry(key.into()).or_insert_with(|| b"0".to_vec());
            let sum = String::from_utf8_lossy(entry)
                .parse::<u64>()
                .map_err(|e| e.to_string())?
                + delta;
            *entry = sum.to_string().into_bytes();
            Ok(sum)
        }
    }

    fn at(order: &str, sku: &str, quantity: u64) -> Reservation {
        Reservation {
            order: order.into(),
            sku: sku.into(),
            quantity,
        }
    }

    #[test]
    fn stock_is_set_up_and_down() {
        let store = Map::default();
        assert_eq!(stock(&store, "mug"), Ok(0));
        assert_eq!(set_stock(&store, "mug", 10), Ok(10));
        assert_eq!(stock(&store, "mug"), Ok(10));
        assert_eq!(set_stock(&store, "mug", 4), Ok(4));
        assert_eq!(stock(&store, "mug"), Ok(4));
        assert_eq!(stock(&store, "tee"), Ok(0), "SKUs are separate");
    }

    #[test]
    fn a_reservation_takes_stock_once_per_order() {
        let store = Map::default();
        set_stock(&store, "mug", 5).unwrap();
        assert_eq!(
            reserve(&store, &at("o-1", "mug", 2)),
            Ok(Reserved::Taken { left: 3 })
        );
        assert_eq!(
            reserve(&store, &at("o-1", "mug", 2)),
            Ok(Reserved::Replayed)
        );
        assert_eq!(stock(&store, "mug"), Ok(3));
        assert_eq!(
            reserve(&store, &at("o-1", "mug", 3)),
            Ok(Reserved::Conflict { held: 2 })
        );
        assert_eq!(
            reserve(&store, &at("o-2", "mug", 3)),
            Ok(Reserved::Taken { left: 0 })
        );
    }

    #[test]
    fn insufficient_stock_takes_nothing() {
        let store = Map::default();
        set_stock(&store, "mug", 2).unwrap();
        assert_eq!(
            reserve(&store, &at("o-1", "mug", 3)),
            Ok(Reserved::Insufficient { available: 2 })
        );
        assert_eq!(stock(&store, "mug"), Ok(2));
        // Nothing recorded: the same order may try again once restocked.
        set_stock(&store, "mug", 3).unwrap();
        assert_eq!(
            reserve(&store, &at("o-1", "mug", 3)),
            Ok(Reserved::Taken { left: 0 })
        );
    }

    #[test]
    fn a_release_returns_the_units_once() {
        let store = Map::default();
        set_stock(&store, "mug", 5).unwrap();
        reserve(&store, &at("o-1", "mug", 2)).unwrap();
        assert_eq!(
            release(&store, "o-1", "mug"),
            Ok(Released::Returned { quantity: 2 })
        );
        assert_eq!(release(&store, "o-1", "mug"), Ok(Released::NothingHeld));
        assert_eq!(release(&store, "o-9", "mug"), Ok(Released::NothingHeld));
        assert_eq!(stock(&store, "mug"), Ok(5));
        // Released, so the order may reserve again.
        assert_eq!(
            reserve(&store, &at("o-1", "mug", 1)),
            Ok(Reserved::Taken { left: 4 })
        );
    }

    #[test]
    fn a_held_lock_refuses_a_concurrent_request() {
        let store = Map::default();
        set_stock(&store, "mug", 5).unwrap();
        let held = Lock::try_take(&store, "o-1", "mug").unwrap().unwrap();
        assert_eq!(
            reserve(&store, &at("o-1", "mug", 1)),
            Ok(Reserved::InProgress)
        );
        assert_eq!(release(&store, "o-1", "mug"), Ok(Released::InProgress));
        assert_eq!(stock(&store, "mug"), Ok(5));
        // Other orders are not affected.
        assert_eq!(
            reserve(&store, &at("o-2", "mug", 1)),
            Ok(Reserved::Taken { left: 4 })
        );
        held.free(&store).unwrap();
        // The refused requests freed their own tickets: the lock is free.
        assert_eq!(
            reserve(&store, &at("o-1", "mug", 1)),
            Ok(Reserved::Taken { left: 3 })
        );
    }

    /// `inner`, except that after the first increment it is asked for,
    /// another request (`meanwhile`) runs to completion on `inner`.
    struct Racing<'a, F: Fn(&Map)> {
        inner: &'a Map,
        meanwhile: RefCell<Option<F>>,
    }

    impl<F: Fn(&Map)> Store for Racing<'_, F> {
        fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
            self.inner.get(key)
        }
        fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
            self.inner.set(key, value)
        }
        fn increment(&self, key: &str, delta: u64) -> Result<u64, String> {
            let sum = self.inner.increment(key, delta)?;
            if let Some(meanwhile) = self.meanwhile.borrow_mut().take() {
                meanwhile(self.inner);
            }
            Ok(sum)
        }
    }

    #[test]
    fn units_given_back_by_a_refusal_in_flight_are_not_sold_twice() {
        // 2 left. B asks for 3; between B's first and second step C asks
        // for 10, is refused and gives its 10 back. Had B added to `out`
        // before reading `in`, it would count C's 10 given back but not C's
        // 10 taken out, and sell 3. Reading `in` first, B is refused.
        let store = Map::default();
        set_stock(&store, "mug", 5).unwrap();
        reserve(&store, &at("a", "mug", 3)).unwrap();
        let racing = Racing {
            inner: &store,
            meanwhile: RefCell::new(Some(|store: &Map| {
                assert!(matches!(take(store, "mug", 10), Ok(Err(_))));
            })),
        };
        let outcome = take(&racing, "mug", 3).unwrap();
        assert!(outcome.is_err(), "sold 3 of 2: {outcome:?}");
        assert_eq!(stock(&store, "mug"), Ok(2));
        assert_eq!(take(&store, "mug", 2), Ok(Ok(0)));
    }
}
