//! A function's last hour, minute by minute, for the console's charts:
//! requests, errors, cold starts, peak concurrency and a duration histogram
//! fine enough for p50 and p99.
//!
//! Prometheus keeps history for those who run one; the console must show
//! the last hour without one. So each live function keeps a ring of sixty
//! one-minute slots, written with atomics on the invocation's way out (no
//! lock on the request path) and allocated on the function's first
//! invocation, so the thousand functions that never run cost nothing.
//! `/metrics`' histogram cannot serve: its eight bounds are Prometheus'
//! choice, too coarse to read a p99 from.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One slot's length.
pub const STEP: Duration = Duration::from_secs(60);
/// How many slots: an hour.
pub const SLOTS: usize = 60;
/// Duration buckets: bucket `i` holds durations up to `FIRST_BOUND ×
/// 2^(i/2)` (0.25 ms to 11.6 s, each √2 wider than the one before, so a
/// quantile read as its bucket's middle is within 19 % of the truth); one
/// more holds the rest.
const BUCKETS: usize = 32;
/// The counters a duration histogram of these buckets needs.
pub(crate) const DURATION_SLOTS: usize = BUCKETS + 1;
const FIRST_BOUND_MS: f64 = 0.25;
/// A slot being cleared for a new minute.
const CLEARING: u64 = u64::MAX;

/// One minute of one function.
#[derive(Debug)]
struct Slot {
    /// Which minute (unix minutes) the counts are of.
    minute: AtomicU64,
    requests: AtomicU32,
    errors: AtomicU32,
    cold_starts: AtomicU32,
    peak_in_flight: AtomicU32,
    durations: [AtomicU32; BUCKETS + 1],
}

impl Default for Slot {
    fn default() -> Self {
        Slot {
            minute: AtomicU64::new(0),
            requests: AtomicU32::new(0),
            errors: AtomicU32::new(0),
            cold_starts: AtomicU32::new(0),
            peak_in_flight: AtomicU32::new(0),
            durations: std::array::from_fn(|_| AtomicU32::new(0)),
        }
    }
}

/// A function's ring of minutes.
#[derive(Debug, Default)]
pub struct Timeline {
    slots: OnceLock<Box<[Slot]>>,
}

/// One minute as read.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// The minute's start.
    pub at: SystemTime,
    pub requests: u32,
    pub errors: u32,
    pub cold_starts: u32,
    /// The most invocations that were running at once when one ended.
    pub peak_in_flight: u32,
    /// Median and 99th percentile duration in milliseconds (none without
    /// requests).
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// What one invocation adds.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    pub at: SystemTime,
    pub failed: bool,
    pub cold: bool,
    pub wall: Duration,
    pub in_flight: u32,
}

fn minute_of(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / STEP.as_secs())
}

pub(crate) fn bucket_of(wall: Duration) -> usize {
    let ms = wall.as_secs_f64() * 1000.0;
    if ms <= FIRST_BOUND_MS {
        return 0;
    }
    // ms ≤ FIRST × 2^(i/2)  ⇔  i ≥ 2·log2(ms / FIRST)
    let i = (2.0 * (ms / FIRST_BOUND_MS).log2()).ceil();
    (i as usize).min(BUCKETS)
}

fn bound_ms(bucket: usize) -> f64 {
    FIRST_BOUND_MS * 2f64.powf(bucket as f64 / 2.0)
}

fn middle_ms(bucket: usize) -> f64 {
    match bucket {
        BUCKETS.. => bound_ms(BUCKETS - 1),
        _ => FIRST_BOUND_MS * 2f64.powf((bucket as f64 - 0.5) / 2.0),
    }
}

impl Timeline {
    pub fn mark(&self, mark: Mark) {
        let slots = self
            .slots
            .get_or_init(|| (0..SLOTS).map(|_| Slot::default()).collect());
        let minute = minute_of(mark.at);
        let slot = &slots[(minute % SLOTS as u64) as usize];
        let seen = slot.minute.load(Ordering::Acquire);
        if seen != minute {
            if seen == CLEARING || seen > minute {
                // Another invocation is starting this minute afresh, or
                // the slot already holds a newer minute (a clock step):
                // one mark less in a chart beats a wait on the way out.
                return;
            }
            if slot
                .minute
                .compare_exchange(seen, CLEARING, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                return;
            }
            for counter in [
                &slot.requests,
                &slot.errors,
                &slot.cold_starts,
                &slot.peak_in_flight,
            ]
            .into_iter()
            .chain(&slot.durations)
            {
                counter.store(0, Ordering::Relaxed);
            }
            slot.minute.store(minute, Ordering::Release);
        }
        slot.requests.fetch_add(1, Ordering::Relaxed);
        if mark.failed {
            slot.errors.fetch_add(1, Ordering::Relaxed);
        }
        if mark.cold {
            slot.cold_starts.fetch_add(1, Ordering::Relaxed);
        }
        slot.peak_in_flight
            .fetch_max(mark.in_flight, Ordering::Relaxed);
        slot.durations[bucket_of(mark.wall)].fetch_add(1, Ordering::Relaxed);
    }

    /// The hour up to `now`, oldest minute first, one point per minute:
    /// always sixty, zero where nothing ran (or the node had not started);
    /// the last point is the current minute, still filling.
    pub fn read(&self, now: SystemTime) -> Vec<Point> {
        let current = minute_of(now);
        let first = current.saturating_sub(SLOTS as u64 - 1);
        let Some(slots) = self.slots.get() else {
            return (first..=current).map(empty).collect();
        };
        (first..=current)
            .map(|minute| {
                let slot = &slots[(minute % SLOTS as u64) as usize];
                if slot.minute.load(Ordering::Acquire) != minute {
                    return empty(minute);
                }
                let durations: Vec<u32> = slot
                    .durations
                    .iter()
                    .map(|c| c.load(Ordering::Relaxed))
                    .collect();
                Point {
                    at: UNIX_EPOCH + STEP * minute as u32,
                    requests: slot.requests.load(Ordering::Relaxed),
                    errors: slot.errors.load(Ordering::Relaxed),
                    cold_starts: slot.cold_starts.load(Ordering::Relaxed),
                    peak_in_flight: slot.peak_in_flight.load(Ordering::Relaxed),
                    p50_ms: quantile(&durations, 0.5),
                    p99_ms: quantile(&durations, 0.99),
                }
            })
            .collect()
    }
}

fn empty(minute: u64) -> Point {
    Point {
        at: UNIX_EPOCH + STEP * minute as u32,
        requests: 0,
        errors: 0,
        cold_starts: 0,
        peak_in_flight: 0,
        p50_ms: None,
        p99_ms: None,
    }
}

/// The middle (on the log scale the buckets follow) of the bucket the `q`
/// quantile falls in: within a factor of 2^¼ (19 %) of the truth. The
/// last bucket, unbounded, answers its lower bound.
pub(crate) fn quantile(durations: &[u32], q: f64) -> Option<f64> {
    let total: u64 = durations.iter().map(|&n| u64::from(n)).sum();
    if total == 0 {
        return None;
    }
    let rank = (q * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (bucket, &n) in durations.iter().enumerate() {
        seen += u64::from(n);
        if seen >= rank {
            return Some(middle_ms(bucket));
        }
    }
    Some(middle_ms(BUCKETS))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(at: SystemTime, ms: u64, failed: bool) -> Mark {
        Mark {
            at,
            failed,
            cold: false,
            wall: Duration::from_millis(ms),
            in_flight: 1,
        }
    }

    #[test]
    fn a_minute_counts_its_invocations_and_reads_its_quantiles() {
        let timeline = Timeline::default();
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let quiet = timeline.read(now);
        assert_eq!(quiet.len(), SLOTS, "an hour of zeros before anything ran");
        assert!(quiet.iter().all(|p| p.requests == 0 && p.p50_ms.is_none()));
        for i in 0..100 {
            let ms = if i < 98 { 10 } else { 900 };
            timeline.mark(mark(now, ms, i == 99));
        }
        let points = timeline.read(now);
        assert_eq!(points.len(), SLOTS);
        let p = points.last().expect("an hour");
        assert_eq!((p.requests, p.errors, p.peak_in_flight), (100, 1, 1));
        // Within 2^¼ of the truth either way.
        let near = |got: f64, truth: f64| (truth / 1.19..=truth * 1.19).contains(&got);
        let p50 = p.p50_ms.expect("requests ran");
        assert!(near(p50, 10.0), "{p50}");
        let p99 = p.p99_ms.expect("requests ran");
        assert!(near(p99, 900.0), "{p99}");
    }

    #[test]
    fn minutes_roll_over_and_an_hour_later_a_slot_starts_afresh() {
        let timeline = Timeline::default();
        let start = UNIX_EPOCH + Duration::from_secs(1_800_000_000 / 60 * 60);
        timeline.mark(mark(start, 1, false));
        timeline.mark(mark(start + STEP * 2, 1, false));
        timeline.mark(mark(start + STEP * 2, 1, false));
        let points = timeline.read(start + STEP * 2);
        let requests: Vec<u32> = points.iter().map(|p| p.requests).collect();
        assert_eq!(requests[SLOTS - 3..], [1, 0, 2]);
        assert_eq!(requests.iter().sum::<u32>(), 3);
        let at = |p: &Point| p.at.duration_since(UNIX_EPOCH).expect("after 1970");
        assert_eq!(at(&points[SLOTS - 1]) - at(&points[SLOTS - 2]), STEP);

        // The same slot an hour on: the old minute's counts are gone.
        let later = start + STEP * SLOTS as u32;
        timeline.mark(mark(later, 1, false));
        let requests: Vec<u32> = timeline.read(later).iter().map(|p| p.requests).collect();
        assert_eq!(
            requests.iter().sum::<u32>(),
            3,
            "the first minute's 1 is gone"
        );
        assert_eq!(requests.last(), Some(&1));
    }

    #[test]
    fn buckets_cover_sub_millisecond_to_minutes() {
        assert_eq!(bucket_of(Duration::ZERO), 0);
        assert_eq!(bucket_of(Duration::from_micros(250)), 0);
        assert_eq!(bucket_of(Duration::from_micros(300)), 1);
        assert_eq!(bucket_of(Duration::from_secs(600)), BUCKETS);
        for ms in [1, 7, 50, 333, 4000] {
            let wall = Duration::from_millis(ms);
            let b = bucket_of(wall);
            assert!(bound_ms(b) >= ms as f64 && (b == 0 || bound_ms(b - 1) < ms as f64));
        }
    }
}
