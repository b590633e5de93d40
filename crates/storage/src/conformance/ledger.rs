//! The ledger conformance suite: what every [`LedgerStore`] must do, the
//! same way. A backend's crate runs it with
//! [`ledger_conformance!`](crate::ledger_conformance), one test per check;
//! a new backend (a JetStream one, say) is done when it passes. The last
//! checks drive the store through the node's [`Ledger`], to show the log
//! budget, live following and last errors hold over it.
//!
//! Checks record under app names and invocation ids no other run uses, and
//! read usage of their own apps only, so a backend that outlives the test
//! (a server) needs no cleaning.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::ledger::{
    InvocationQuery, InvocationRecord, Ledger, LedgerStore, LiveLog, LogLine, LogQuery, LogStream,
    Outbound, PriceSheet, Sampling, StatusFilter, Trigger, UsageQuery, UsageReport, UsageRow,
};

/// Opens a fresh backend pricing usage with the sheet, with whatever must
/// live as long as it (say the directory of a SQLite file).
pub type Open = dyn Fn(PriceSheet) -> super::Opened<Arc<dyn LedgerStore>>;

const FLUSH: Duration = Duration::from_secs(10);

static NEXT: AtomicU64 = AtomicU64::new(0);

/// An app name no other test run uses.
fn app(name: &str) -> String {
    super::unique(name)
}

/// A UUIDv7-shaped id (as the node makes them) of an invocation that
/// arrived at `t`, unique to this run.
fn id_at(t: SystemTime) -> String {
    let ms = t.duration_since(UNIX_EPOCH).unwrap().as_millis();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{ms:012x}7{:07x}{n:012x}", std::process::id() & 0xfff_ffff)
}

/// Now, to the microsecond: what a backend must keep of a time.
fn now() -> SystemTime {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros();
    UNIX_EPOCH + Duration::from_micros(micros as u64)
}

/// A successful HTTP invocation of `function` of `app` (100 ms, 128 MiB),
/// for backends' own tests too.
pub fn record(app: &str, function: &str, started_at: SystemTime) -> InvocationRecord {
    InvocationRecord {
        id: id_at(started_at),
        app: app.into(),
        function: function.into(),
        version: 1,
        trigger: Trigger::Http,
        started_at,
        wall: Duration::from_millis(100),
        cpu: Duration::from_micros(250),
        peak_memory: 128 << 20,
        peak_host_memory: 0,
        bytes_in: 10,
        bytes_out: 20,
        status: 200,
        error: None,
        cold: false,
        caller: None,
        outbound: Outbound::default(),
    }
}

/// A line `r` wrote to stdout when it started, for backends' own tests too.
pub fn line(r: &InvocationRecord, text: &str) -> LogLine {
    LogLine {
        invocation_id: r.id.clone(),
        app: r.app.clone(),
        function: r.function.clone(),
        at: r.started_at,
        stream: LogStream::Stdout,
        text: text.into(),
    }
}

fn logs_of(app: &str, function: &str, limit: usize) -> LogQuery {
    LogQuery {
        app: app.into(),
        function: function.into(),
        since: None,
        invocation: None,
        limit,
    }
}

fn texts(lines: &[LogLine]) -> Vec<&str> {
    lines.iter().map(|l| l.text.as_str()).collect()
}

async fn usage(store: &Arc<dyn LedgerStore>, app: &str, since: Option<SystemTime>) -> UsageReport {
    let query = UsageQuery {
        app: Some(app.into()),
        since,
    };
    store.usage(query).await.unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

pub async fn a_recorded_invocation_reads_back_whole_after_flush(open: &Open) {
    let (store, _guard) = open(PriceSheet::default()).await;
    let kind = store.kind();
    let app = app("shop");
    let caller = record(&app, "cart", now());
    let mut full = record(&app, "pricing", now());
    full.version = 3;
    full.trigger = Trigger::Service;
    full.caller = Some(caller.id.clone());
    full.wall = Duration::from_micros(12_345);
    full.cpu = Duration::from_micros(6_789);
    full.peak_memory = 3 << 20;
    full.peak_host_memory = 61 << 20;
    full.bytes_in = 1_000_000;
    full.bytes_out = 7;
    full.status = 504;
    full.error = Some("timeout".into());
    full.cold = true;
    full.outbound = Outbound {
        requests: 3,
        bytes: 4096,
        time: Duration::from_micros(1500),
    };
    // An id that is no UUID (the node's are) is kept as it is.
    let mut odd = record(&app, "cart", now());
    odd.id = format!("odd-{}", app);
    odd.trigger = Trigger::Event;
    for r in [&caller, &full, &odd] {
        store.record(r.clone(), vec![]);
    }
    assert!(store.flush(FLUSH).await, "{kind}");
    for r in [caller, full, odd] {
        let found = store.invocation(r.id.clone()).await.unwrap();
        assert_eq!(found, Some(r), "{kind}");
    }
    let missing = store.invocation(id_at(now())).await.unwrap();
    assert_eq!(missing, None, "{kind}");
    assert_eq!(
        store.invocation("nope".into()).await.unwrap(),
        None,
        "{kind}"
    );
}

pub async fn a_flush_with_nothing_recorded_answers_at_once(open: &Open) {
    let (store, _guard) = open(PriceSheet::default()).await;
    let started = std::time::Instant::now();
    assert!(store.flush(FLUSH).await, "{}", store.kind());
    assert!(started.elapsed() < FLUSH / 2, "{}", store.kind());
}

pub async fn logs_come_back_oldest_first_and_limited(open: &Open) {
    let (store, _guard) = open(PriceSheet::default()).await;
    let kind = store.kind();
    let app = app("shop");
    let cart = record(&app, "cart", now());
    let mut lines: Vec<LogLine> = (0..10).map(|i| line(&cart, &format!("line {i}"))).collect();
    lines[4].stream = LogStream::Stderr;
    store.record(cart.clone(), lines.clone());
    let pay = record(&app, "pay", now());
    store.record(pay.clone(), vec![line(&pay, "other")]);
    assert!(store.flush(FLUSH).await, "{kind}");

    let newest = store.logs(logs_of(&app, "cart", 3)).await.unwrap();
    assert_eq!(texts(&newest), ["line 7", "line 8", "line 9"], "{kind}");
    // Every field as written, times to the microsecond.
    let all = store.logs(logs_of(&app, "cart", 100)).await.unwrap();
    assert_eq!(all, lines, "{kind}");
    let other = store.logs(logs_of(&app, "pay", 100)).await.unwrap();
    assert_eq!(texts(&other), ["other"], "{kind}");
    let none = store.logs(logs_of(&app, "gone", 100)).await.unwrap();
    assert!(none.is_empty(), "{kind}");
}

pub async fn logs_filter_by_invocation_and_since(open: &Open) {
    let (store, _guard) = open(PriceSheet::default()).await;
    let kind = store.kind();
    let app = app("shop");
    let earlier = record(&app, "cart", now() - Duration::from_secs(3600));
    let later = record(&app, "cart", now());
    store.record(
        earlier.clone(),
        vec![line(&earlier, "a1"), line(&earlier, "a2")],
    );
    store.record(later.clone(), vec![line(&later, "b1"), line(&later, "b2")]);
    assert!(store.flush(FLUSH).await, "{kind}");

    let mut query = logs_of(&app, "cart", 100);
    query.invocation = Some(earlier.id.clone());
    let of_earlier = store.logs(query.clone()).await.unwrap();
    assert_eq!(texts(&of_earlier), ["a1", "a2"], "{kind}");
    query.limit = 1;
    let last_of_earlier = store.logs(query).await.unwrap();
    assert_eq!(texts(&last_of_earlier), ["a2"], "{kind}");

    let mut query = logs_of(&app, "cart", 100);
    query.since = Some(later.started_at - Duration::from_secs(60));
    let recent = store.logs(query.clone()).await.unwrap();
    assert_eq!(texts(&recent), ["b1", "b2"], "{kind}");
    // `since` is inclusive.
    query.since = Some(later.started_at);
    assert_eq!(store.logs(query.clone()).await.unwrap().len(), 2, "{kind}");
    query.since = Some(later.started_at + Duration::from_secs(1));
    assert!(store.logs(query).await.unwrap().is_empty(), "{kind}");
}

pub async fn invocations_list_newest_first_filtered(open: &Open) {
    let (store, _guard) = open(PriceSheet::default()).await;
    let kind = store.kind();
    let (shop, blog) = (app("shop"), app("blog"));
    let hour_ago = now() - Duration::from_secs(3600);
    let old = record(&shop, "cart", hour_ago);
    let mut slow = record(&shop, "cart", now());
    slow.wall = Duration::from_secs(2);
    // A millisecond apart, so "newest first" has one answer.
    let mut failed = record(&shop, "cart", slow.started_at + Duration::from_millis(1));
    failed.status = 500;
    failed.error = Some("function_trapped".into());
    let mut teapot = record(&shop, "cart", slow.started_at + Duration::from_millis(2));
    teapot.status = 418;
    teapot.trigger = Trigger::Event;
    for r in [&old, &slow, &failed, &teapot] {
        store.record(r.clone(), vec![]);
    }
    store.record(record(&shop, "pay", now()), vec![]);
    store.record(record(&blog, "cart", now()), vec![]);
    assert!(store.flush(FLUSH).await, "{kind}");

    let query = InvocationQuery {
        app: shop.clone(),
        function: "cart".into(),
        since: None,
        until: None,
        status: None,
        trigger: None,
        min_duration: None,
        limit: 100,
    };
    let ids = |records: Vec<InvocationRecord>| -> Vec<String> {
        records.into_iter().map(|r| r.id).collect()
    };
    let all = store.invocations(query.clone()).await.unwrap();
    assert_eq!(
        ids(all.clone()),
        [
            teapot.id.as_str(),
            failed.id.as_str(),
            slow.id.as_str(),
            old.id.as_str()
        ],
        "{kind}: newest first, only this app's function"
    );
    assert_eq!(all[1], failed, "{kind}: every field as recorded");
    let of = |q: InvocationQuery| store.invocations(q);
    let newest = of(InvocationQuery {
        limit: 2,
        ..query.clone()
    })
    .await
    .unwrap();
    assert_eq!(
        ids(newest),
        [teapot.id.as_str(), failed.id.as_str()],
        "{kind}"
    );
    let errors = of(InvocationQuery {
        status: Some(StatusFilter::Error),
        ..query.clone()
    });
    assert_eq!(ids(errors.await.unwrap()), [failed.id.as_str()], "{kind}");
    let ok = of(InvocationQuery {
        status: Some(StatusFilter::Ok),
        ..query.clone()
    });
    assert_eq!(
        ids(ok.await.unwrap()),
        [teapot.id.as_str(), slow.id.as_str(), old.id.as_str()],
        "{kind}"
    );
    let code = of(InvocationQuery {
        status: Some(StatusFilter::Code(418)),
        ..query.clone()
    });
    assert_eq!(ids(code.await.unwrap()), [teapot.id.as_str()], "{kind}");
    let events = of(InvocationQuery {
        trigger: Some(Trigger::Event),
        ..query.clone()
    });
    assert_eq!(ids(events.await.unwrap()), [teapot.id.as_str()], "{kind}");
    let long = of(InvocationQuery {
        min_duration: Some(Duration::from_secs(1)),
        ..query.clone()
    });
    assert_eq!(ids(long.await.unwrap()), [slow.id.as_str()], "{kind}");
    let recent = of(InvocationQuery {
        since: Some(slow.started_at),
        ..query.clone()
    });
    assert_eq!(
        ids(recent.await.unwrap()).len(),
        3,
        "{kind}: since is inclusive"
    );
    let before = of(InvocationQuery {
        until: Some(slow.started_at),
        ..query.clone()
    });
    assert_eq!(
        ids(before.await.unwrap()),
        [old.id.as_str()],
        "{kind}: until is exclusive"
    );
    let gone = of(InvocationQuery {
        function: "gone".into(),
        ..query.clone()
    });
    assert!(gone.await.unwrap().is_empty(), "{kind}");
}

pub async fn an_invocations_calls_are_found_by_their_caller(open: &Open) {
    let (store, _guard) = open(PriceSheet::default()).await;
    let kind = store.kind();
    let (shop, pricing) = (app("shop"), app("pricing"));
    let mut checkout = record(&shop, "checkout", now());
    checkout.wall = Duration::from_millis(200);
    let call = |app: &str, function: &str, after_ms: u64| {
        let mut r = record(
            app,
            function,
            checkout.started_at + Duration::from_millis(after_ms),
        );
        r.trigger = Trigger::Service;
        r.caller = Some(checkout.id.clone());
        r.wall = Duration::from_millis(20);
        r
    };
    let (price, stock) = (call(&pricing, "price", 10), call(&shop, "stock", 50));
    // A call of another invocation, at the same time.
    let mut other = call(&shop, "stock", 60);
    other.caller = Some(record(&shop, "checkout", now()).id);
    for r in [&stock, &other, &price, &checkout] {
        store.record(r.clone(), vec![]);
    }
    assert!(store.flush(FLUSH).await, "{kind}");

    let until = checkout.started_at + checkout.wall;
    let calls = store
        .calls(checkout.id.clone(), checkout.started_at, until)
        .await
        .unwrap();
    assert_eq!(
        calls,
        [price.clone(), stock.clone()],
        "{kind}: by start, of any app"
    );
    let none = store
        .calls(price.id.clone(), price.started_at, until)
        .await
        .unwrap();
    assert!(none.is_empty(), "{kind}");
}

pub async fn apps_do_not_mix(open: &Open) {
    let (store, _guard) = open(PriceSheet::default()).await;
    let kind = store.kind();
    let (shop, blog) = (app("shop"), app("blog"));
    let a = record(&shop, "api", now());
    let b = record(&blog, "api", now());
    store.record(a.clone(), vec![line(&a, "shop says")]);
    store.record(b.clone(), vec![line(&b, "blog says")]);
    store.record(record(&blog, "api", now()), vec![]);
    assert!(store.flush(FLUSH).await, "{kind}");

    let shop_logs = store.logs(logs_of(&shop, "api", 100)).await.unwrap();
    assert_eq!(texts(&shop_logs), ["shop says"], "{kind}");
    // Asking for one app's function with another's invocation finds nothing.
    let mut query = logs_of(&shop, "api", 100);
    query.invocation = Some(b.id.clone());
    assert!(store.logs(query).await.unwrap().is_empty(), "{kind}");
    let found = store.invocation(b.id.clone()).await.unwrap().unwrap();
    assert_eq!(found.app, blog, "{kind}");

    let shop_usage = usage(&store, &shop, None).await;
    assert_eq!(shop_usage.total.requests, 1, "{kind}");
    assert_eq!(shop_usage.functions.len(), 1, "{kind}");
    assert_eq!(usage(&store, &blog, None).await.total.requests, 2, "{kind}");
    // Without an app, each of them has its own rows.
    let everyone = store.usage(UsageQuery::default()).await.unwrap();
    let row = |app: &str| -> Vec<UsageRow> {
        let rows = everyone.functions.iter().filter(|r| r.app == app);
        rows.cloned().collect()
    };
    assert_eq!(row(&shop).len(), 1, "{kind}");
    assert_eq!(row(&blog)[0].requests, 2, "{kind}");
}

pub async fn usage_adds_up_what_was_recorded_and_prices_it(open: &Open) {
    let prices = PriceSheet {
        currency: "EUR".into(),
        per_gb_second: 0.000_02,
        per_million_requests: 0.5,
    };
    let (store, _guard) = open(prices.clone()).await;
    let kind = store.kind();
    let app = app("shop");
    for i in 0..1000 {
        let mut r = record(&app, "cart", now());
        r.cold = i < 3;
        store.record(r, vec![]);
    }
    let mut failed = record(&app, "pay", now());
    failed.error = Some("timeout".into());
    failed.status = 504;
    // Billed as 1 ms and 1 MiB at least.
    failed.wall = Duration::from_micros(10);
    failed.peak_memory = 0;
    store.record(failed, vec![]);
    // A function that answers a 5xx itself has not failed.
    let mut own_500 = record(&app, "pay", now());
    own_500.status = 500;
    store.record(own_500, vec![]);
    assert!(store.flush(FLUSH).await, "{kind}");

    let minute_ago = Some(SystemTime::now() - Duration::from_secs(60));
    for since in [None, minute_ago] {
        let report = usage(&store, &app, since).await;
        assert_eq!(report.prices, prices, "{kind}");
        assert_eq!(report.total.requests, 1002, "{kind}");
        assert_eq!(report.total.errors, 1, "{kind}");
        assert_eq!(report.total.cold_starts, 3, "{kind}");
        let names: Vec<_> = report
            .functions
            .iter()
            .map(|r| r.function.as_str())
            .collect();
        assert_eq!(names, ["cart", "pay"], "{kind}");
        let cart = &report.functions[0];
        assert_eq!((cart.app.as_str(), cart.requests), (app.as_str(), 1000));
        // 1000 × 0.125 GB × 0.1 s = 12.5 GB-s.
        assert!(close(cart.gb_seconds, 12.5), "{kind}: {}", cart.gb_seconds);
        let expected = 1000.0 * 0.5 / 1e6 + 12.5 * 0.000_02;
        assert!(close(cart.cost, expected), "{kind}: {}", cart.cost);
        assert!(close(cart.cpu_seconds, 0.25), "{kind}");
        assert!(close(cart.duration_seconds, 100.0), "{kind}");
        assert_eq!((cart.bytes_in, cart.bytes_out), (10_000, 20_000), "{kind}");
        let pay = &report.functions[1];
        // 1 MiB × 1 ms + 128 MiB × 100 ms.
        let pay_gb_s = (1.0 + 12_800.0) / 1024.0 / 1000.0;
        assert!(
            close(pay.gb_seconds, pay_gb_s),
            "{kind}: {}",
            pay.gb_seconds
        );
        assert!(close(report.total.cost, cart.cost + pay.cost), "{kind}");
    }
    let exact = usage(&store, &app, minute_ago).await;
    assert_eq!(exact.granularity, "invocation", "{kind}");
    assert!(exact.since.is_some(), "{kind}");
    let future = usage(
        &store,
        &app,
        Some(SystemTime::now() + Duration::from_secs(60)),
    )
    .await;
    assert_eq!(future.total.requests, 0, "{kind}");
    assert!(future.functions.is_empty(), "{kind}");
}

pub async fn usage_reaches_back_past_raw_records_by_the_hour(open: &Open) {
    let (store, _guard) = open(PriceSheet::default()).await;
    let kind = store.kind();
    let app = app("shop");
    let hour = 3600;
    let month_ago = SystemTime::now() - Duration::from_secs(30 * 86_400);
    let secs = month_ago.duration_since(UNIX_EPOCH).unwrap().as_secs();
    // Half past an hour, a month ago.
    let old_at = UNIX_EPOCH + Duration::from_secs(secs - secs % hour + hour / 2);
    store.record(record(&app, "cart", old_at), vec![]);
    store.record(record(&app, "cart", now()), vec![]);
    assert!(store.flush(FLUSH).await, "{kind}");

    assert_eq!(usage(&store, &app, None).await.total.requests, 2, "{kind}");
    let before = old_at - Duration::from_secs(86_400);
    let from_before = usage(&store, &app, Some(before)).await;
    assert_eq!(from_before.total.requests, 2, "{kind}");
    let recent = usage(
        &store,
        &app,
        Some(SystemTime::now() - Duration::from_secs(60)),
    )
    .await;
    assert_eq!(recent.total.requests, 1, "{kind}");
    // Later in the same hour: from the roll-ups the whole hour counts;
    // from raw records, it is exact.
    let report = usage(&store, &app, Some(old_at + Duration::from_secs(1))).await;
    let expected = match report.granularity {
        "hour" => 2,
        "invocation" => 1,
        other => panic!("{kind}: granularity {other:?}"),
    };
    assert_eq!(report.total.requests, expected, "{kind}");
}

pub async fn sampled_invocations_count_in_usage_but_are_not_kept(open: &Open) {
    let (store, _guard) = open(PriceSheet::default()).await;
    let kind = store.kind();
    let (busy, calm) = (app("busy"), app("calm"));
    let mut kept = Vec::new();
    let mut sampled = Vec::new();
    for i in 0..100 {
        let r = record(&busy, "cart", now());
        let lines = vec![line(&r, &format!("line {i}"))];
        if i % 10 == 0 {
            kept.push(r.clone());
            store.record(r, lines);
        } else {
            sampled.push(r.clone());
            store.count(r, lines);
        }
    }
    store.record(record(&calm, "cart", now()), vec![]);
    assert!(store.flush(FLUSH).await, "{kind}");

    let minute_ago = Some(SystemTime::now() - Duration::from_secs(60));
    for since in [None, minute_ago] {
        let report = usage(&store, &busy, since).await;
        // Totals count every invocation; the records kept cannot give
        // them, so the hourly roll-ups answer.
        assert_eq!(report.total.requests, 100, "{kind}");
        assert_eq!(report.total.sampled, 90, "{kind}");
        assert_eq!(report.functions[0].sampled, 90, "{kind}");
        assert!(close(report.total.gb_seconds, 1.25), "{kind}");
        assert_eq!(report.granularity, "hour", "{kind}");
    }
    // An app without sampled records is still exact.
    let calm_report = usage(&store, &calm, minute_ago).await;
    assert_eq!(
        (calm_report.granularity, calm_report.total.sampled),
        ("invocation", 0),
        "{kind}"
    );
    let found = store.invocation(kept[3].id.clone()).await.unwrap();
    assert!(found.is_some(), "{kind}");
    let gone = store.invocation(sampled[3].id.clone()).await.unwrap();
    assert!(gone.is_none(), "{kind}");
    // Every line is kept, sampled or not.
    let lines = store.logs(logs_of(&busy, "cart", 1000)).await.unwrap();
    assert_eq!(lines.len(), 100, "{kind}");
    let written = store.stats().records_written.load(Ordering::Relaxed);
    assert_eq!(written, 10 + 1, "{kind}");

    // Through the node's ledger: past one record a second, successes are
    // sampled; failures and cold starts never are.
    let ledger = Ledger::new(store.clone());
    ledger.set_sampling(Sampling {
        keep_per_second: 1,
        then_one_in: u32::MAX,
    });
    let noisy = app("noisy");
    let mut failed = record(&noisy, "cart", now());
    failed.error = Some("timeout".into());
    let mut cold = record(&noisy, "cart", now());
    cold.cold = true;
    for _ in 0..50 {
        ledger
            .recorder()
            .record(record(&noisy, "cart", now()), vec![]);
    }
    ledger.recorder().record(failed.clone(), vec![]);
    ledger.recorder().record(cold.clone(), vec![]);
    assert!(ledger.flush(FLUSH).await, "{kind}");
    let report = usage(&store, &noisy, None).await;
    let sampled_now = store.stats().records_sampled.load(Ordering::Relaxed);
    assert_eq!(report.total.requests, 52, "{kind}");
    assert_eq!(report.total.sampled, sampled_now, "{kind}");
    assert!((48..=49).contains(&sampled_now), "{kind}: {sampled_now}");
    for r in [failed, cold] {
        assert!(ledger.invocation(r.id).await.unwrap().is_some(), "{kind}");
    }
}

pub async fn records_from_many_threads_are_all_kept(open: &Open) {
    let (store, _guard) = open(PriceSheet::default()).await;
    let kind = store.kind();
    let app = app("burst");
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (store, app) = (store.clone(), app.clone());
            std::thread::spawn(move || {
                for _ in 0..250 {
                    let r = record(&app, "cart", now());
                    let lines = vec![line(&r, "x")];
                    store.record(r, lines);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert!(store.flush(FLUSH).await, "{kind}");
    assert_eq!(
        usage(&store, &app, None).await.total.requests,
        2000,
        "{kind}"
    );
    let lines = store.logs(logs_of(&app, "cart", 10_000)).await.unwrap();
    assert_eq!(lines.len(), 2000, "{kind}");
}

pub async fn stats_count_what_was_written(open: &Open) {
    let (store, _guard) = open(PriceSheet::default()).await;
    let kind = store.kind();
    let app = app("stats");
    for n in [1, 0, 4] {
        let r = record(&app, "cart", now());
        let lines = (0..n).map(|i| line(&r, &format!("{i}"))).collect();
        store.record(r, lines);
    }
    assert!(store.flush(FLUSH).await, "{kind}");
    let stats = store.stats();
    let read = |n: &AtomicU64| n.load(Ordering::Relaxed);
    assert_eq!(read(&stats.records_written), 3, "{kind}");
    assert_eq!(read(&stats.log_lines_written), 5, "{kind}");
    assert!(read(&stats.batches) >= 1, "{kind}");
    assert_eq!(read(&stats.records_dropped), 0, "{kind}");
    assert_eq!(read(&stats.write_failures), 0, "{kind}");
}

pub async fn lines_past_an_apps_daily_budget_are_dropped_with_one_marker(open: &Open) {
    let (store, _guard) = open(PriceSheet::default()).await;
    let kind = store.kind();
    let ledger = Ledger::new(store.clone());
    ledger.set_log_budget(1000);
    let (noisy, quiet) = (app("noisy"), app("quiet"));
    let r = record(&noisy, "cart", now());
    // 99 bytes a line (with its newline): 10 fit.
    let lines = (0..15).map(|_| line(&r, &"x".repeat(98))).collect();
    ledger.recorder().record(r, lines);
    let later = record(&noisy, "cart", now());
    ledger
        .recorder()
        .record(later.clone(), vec![line(&later, "more")]);
    let other = record(&quiet, "cart", now());
    ledger
        .recorder()
        .record(other.clone(), vec![line(&other, "fine")]);
    assert!(ledger.flush(FLUSH).await, "{kind}");

    let kept = ledger.logs(logs_of(&noisy, "cart", 100)).await.unwrap();
    assert_eq!(kept.len(), 11, "{kind}");
    let marker = &kept[10];
    assert_eq!(marker.stream, LogStream::Stderr, "{kind}");
    assert!(
        marker.text.contains("--log-max-per-app-day"),
        "{kind}: {marker:?}"
    );
    let over = ledger
        .recorder()
        .stats()
        .log_lines_over_budget
        .load(Ordering::Relaxed);
    assert_eq!(over, 6, "{kind}");
    // The invocations are recorded all the same, and another app logs on.
    let found = ledger.invocation(later.id.clone()).await.unwrap();
    assert!(found.is_some(), "{kind}");
    let fine = ledger.logs(logs_of(&quiet, "cart", 100)).await.unwrap();
    assert_eq!(texts(&fine), ["fine"], "{kind}");
}

pub async fn live_followers_see_lines_as_they_are_recorded(open: &Open) {
    let (store, _guard) = open(PriceSheet::default()).await;
    let kind = store.kind();
    let ledger = Ledger::new(store);
    let recorder = ledger.recorder();
    let app = app("live");
    let mut everything = recorder.subscribe();
    let mut follower = ledger.follow(logs_of(&app, "cart", 100)).await.unwrap();
    let other = record(&app, "pay", now());
    recorder.record(other.clone(), vec![line(&other, "another function")]);
    let r = record(&app, "cart", now());
    recorder.record(r.clone(), vec![line(&r, "live"), line(&r, "again")]);
    // The node's own lines at once, whatever the store.
    assert_eq!(everything.try_recv().unwrap().text, "another function");
    assert_eq!(everything.try_recv().unwrap().text, "live");
    // A follower gets its function's lines once the store has them.
    let mut seen = Vec::new();
    while seen.len() < 2 {
        match tokio::time::timeout(FLUSH, follower.recv()).await {
            Ok(Some(LiveLog::Line(line))) => seen.push(line.text.clone()),
            other => panic!("{kind}: {other:?}"),
        }
    }
    assert_eq!(seen, ["live", "again"], "{kind}");
}

pub async fn a_follower_that_stops_reading_is_dropped(open: &Open) {
    let (store, _guard) = open(PriceSheet::default()).await;
    let kind = store.kind();
    let ledger = Ledger::new(store.clone());
    ledger.set_follower_stall(Duration::from_millis(300));
    let app = app("stalled");
    let mut stuck = ledger.follow(logs_of(&app, "cart", 100)).await.unwrap();
    let mut reader = ledger.follow(logs_of(&app, "cart", 100)).await.unwrap();
    let dropped = || store.stats().log_followers_dropped.load(Ordering::Relaxed);
    let mut read = 0usize;
    let deadline = tokio::time::Instant::now() + FLUSH * 3;
    // Lines keep coming; one follower reads them, the other never does.
    let mut n = 0;
    while dropped() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{kind}: never dropped"
        );
        let r = record(&app, "cart", now());
        let lines = (0..20).map(|i| line(&r, &format!("{n} {i}"))).collect();
        ledger.recorder().record(r, lines);
        n += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
        while let Ok(item) = reader.try_recv() {
            read += usize::from(matches!(item, LiveLog::Line(_)));
        }
    }
    assert_eq!(dropped(), 1, "{kind}");
    // What the stuck one holds is bounded, and then its feed ends.
    let mut held = 0;
    while let Some(_item) = stuck.recv().await {
        held += 1;
    }
    assert!(held <= 2 * 256, "{kind}: {held} lines held");
    // The reader is still followed.
    let r = record(&app, "cart", now());
    ledger
        .recorder()
        .record(r.clone(), vec![line(&r, "still here")]);
    loop {
        match tokio::time::timeout(FLUSH, reader.recv()).await {
            Ok(Some(LiveLog::Line(line))) if line.text == "still here" => break,
            Ok(Some(_)) => read += 1,
            other => panic!("{kind}: {other:?}"),
        }
    }
    assert!(read > 0, "{kind}");
}

pub async fn the_newest_failure_of_each_function_is_remembered(open: &Open) {
    let (store, _guard) = open(PriceSheet::default()).await;
    let ledger = Ledger::new(store);
    let recorder = ledger.recorder();
    let app = app("shop");
    let failed = |at: SystemTime, code: &str| {
        let mut r = record(&app, "cart", at);
        r.error = Some(code.into());
        r.status = 502;
        r
    };
    let newest = failed(now(), "function_trapped");
    recorder.record(newest.clone(), vec![]);
    // An older failure recorded later, and a success, change nothing.
    recorder.record(failed(now() - Duration::from_secs(5), "timeout"), vec![]);
    recorder.record(record(&app, "cart", now()), vec![]);
    let last = ledger.last_error(&app, "cart").unwrap();
    assert_eq!(
        (last.invocation_id, last.code.as_str(), last.status, last.at),
        (newest.id, "function_trapped", 502, newest.started_at)
    );
    assert!(ledger.last_error(&app, "pay").is_none());
}

/// One `#[tokio::test]` per conformance check, each opening its backend
/// with `$open` (a [`conformance::ledger::Open`](crate::conformance::ledger::Open)).
/// Invoke it inside a module of the backend's tests.
#[macro_export]
macro_rules! ledger_conformance {
    (@checks $open:expr; $($check:ident,)*) => {
        $(
            #[tokio::test]
            async fn $check() {
                $crate::conformance::ledger::$check(&$open).await;
            }
        )*
    };
    ($open:expr) => {
        $crate::ledger_conformance!(@checks $open;
            a_recorded_invocation_reads_back_whole_after_flush,
            a_flush_with_nothing_recorded_answers_at_once,
            logs_come_back_oldest_first_and_limited,
            logs_filter_by_invocation_and_since,
            invocations_list_newest_first_filtered,
            an_invocations_calls_are_found_by_their_caller,
            apps_do_not_mix,
            usage_adds_up_what_was_recorded_and_prices_it,
            sampled_invocations_count_in_usage_but_are_not_kept,
            usage_reaches_back_past_raw_records_by_the_hour,
            records_from_many_threads_are_all_kept,
            stats_count_what_was_written,
            lines_past_an_apps_daily_budget_are_dropped_with_one_marker,
            live_followers_see_lines_as_they_are_recorded,
            a_follower_that_stops_reading_is_dropped,
            the_newest_failure_of_each_function_is_remembered,
        );
    };
}
