//! Criterion micro-benchmarks: share_sync's enqueue cost through the C entry point (100 B,
//! 1 KiB, 100 KiB; worker idle and busy), key parsing, and coalescing with 10 000 keys pending.
//!
//!     cargo bench --bench micro

#[path = "compare/services/legacy.rs"]
#[allow(dead_code)] // micro uses the v1 service and its latency only
mod service;

use std::ffi::CString;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use opencode_share::ffi::share_status;
use opencode_share::queue::{Limits, Queue};
use opencode_share::{api, ffi, key};

const SESSION: &str = "ses_80c5d89ffffekQQ8blAcavcm0S";

/// A text part of about `size` bytes, as opencode stores it.
fn part(size: usize) -> CString {
    let head = r#"{"id":"prt_7f3a2981f0010WacShqQt0yC1V","messageID":"msg_7f3a293c1001dGP7YTh3CSghDk","type":"text","text":""#;
    let text = "lorem ipsum ".repeat(size / 12 + 1);
    let json = format!("{head}{}\"}}", &text[..size.saturating_sub(head.len() + 2)]);
    CString::new(json).unwrap()
}

fn sync(key: &CString, content: &CString) {
    // SAFETY: both are NUL-terminated strings that live through the call.
    let status = unsafe { ffi::share_sync(key.as_ptr(), content.as_ptr()) };
    assert_eq!(status, share_status::SHARE_OK);
}

fn share_sync(c: &mut Criterion) {
    let service = service::ShareService::start();
    // no pace: the idle case writes the key again right after its request, and measures the
    // call that wakes a worker (with the default 25 ms pace it would park the key instead)
    api::init(Some(&format!(
        r#"{{"url":"{}","max_pending_bytes":1099511627776,"min_interval_ms":0}}"#,
        service.url()
    )))
    .unwrap();
    api::create(SESSION).unwrap();
    let key = CString::new(format!(
        "session/part/{SESSION}/msg_7f3a293c1001dGP7YTh3CSghDk/prt_7f3a2981f0010WacShqQt0yC1V"
    ))
    .unwrap();
    let mut group = c.benchmark_group("share_sync");
    for (label, size) in [("100B", 100), ("1KiB", 1024), ("100KiB", 100 * 1024)] {
        let content = part(size);
        group.throughput(Throughput::Bytes(size as u64));
        // idle: every call finds the workers parked, so it queues the key and wakes one
        service.set_latency(Duration::ZERO);
        group.bench_with_input(BenchmarkId::new("idle", label), &content, |b, content| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    api::flush(Duration::from_secs(10)).unwrap();
                    let start = Instant::now();
                    sync(&key, black_box(content));
                    spent += start.elapsed();
                }
                spent
            })
        });
        // busy: the key's request is in flight (1 s away), so calls coalesce behind it
        service.set_latency(Duration::from_secs(1));
        sync(&key, &content);
        group.bench_with_input(BenchmarkId::new("busy", label), &content, |b, content| {
            b.iter(|| sync(&key, black_box(content)))
        });
        service.set_latency(Duration::ZERO);
        api::flush(Duration::from_secs(10)).unwrap();
    }
    group.finish();
    api::shutdown(Duration::from_secs(10)).unwrap();
}

fn key_parsing(c: &mut Criterion) {
    let part = format!(
        "session/part/{SESSION}/msg_7f3a293c1001dGP7YTh3CSghDk/prt_7f3a2981f0010WacShqQt0yC1V"
    );
    let mut group = c.benchmark_group("key::classify");
    group.bench_function("part", |b| {
        b.iter(|| key::classify(black_box(&part)).unwrap())
    });
    group.bench_function("info", |b| {
        b.iter(|| key::classify(black_box("session/info/ses_80c5d89ffffekQQ8blAcavcm0S")).unwrap())
    });
    group.bench_function("foreign", |b| {
        b.iter(|| key::classify(black_box("project/global/abc")).unwrap())
    });
    group.finish();
}

fn coalescing(c: &mut Criterion) {
    let limits = Limits {
        concurrency: 8,
        max_retries: 10,
        max_pending_bytes: usize::MAX,
        // no interval: a key offered again right after its request would be parked, not ready
        min_interval: Duration::ZERO,
        probe_interval: Duration::from_secs(30),
        batch: None,
    };
    let keys: Vec<String> = (0..10_000)
        .map(|n| format!("session/part/{SESSION}/msg_1/prt_{n:026}"))
        .collect();
    let text: Arc<str> = Arc::from(part(1024).to_str().unwrap());
    let mut queue = Queue::new(limits);
    for key in &keys {
        queue
            .offer(key, SESSION, text.clone(), Instant::now)
            .unwrap();
    }
    let mut group = c.benchmark_group("queue, 10000 keys pending");
    let mut n = 0;
    group.bench_function("offer (coalesce)", |b| {
        b.iter(|| {
            n = (n + 7919) % keys.len();
            queue
                .offer(black_box(&keys[n]), SESSION, text.clone(), Instant::now)
                .unwrap()
        })
    });
    group.bench_function("dispatch + sent + offer", |b| {
        b.iter(|| {
            let now = Instant::now();
            let d = queue.next_dispatch(now).unwrap();
            let key = &d.items[0].key;
            queue.sent(key, now);
            queue.offer(key, SESSION, text.clone(), || now).unwrap()
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = share_sync, key_parsing, coalescing
}
criterion_main!(benches);
