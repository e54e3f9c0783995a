//! The core against the fake node, without Zabbix: what one fetch serves
//! (the cache), connection reuse, refresh after the TTL, and that counting a
//! 200,000-entry queue does not hold the queue in memory.

mod common;

use common::*;
use exalate_zabbix::{ErrorKind, Monitor};
use fake_exalate_node::RelationData;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

/// Counts this thread's live and peak heap bytes, to measure what counting
/// keeps (the fake node and other tests allocate on other threads).
struct PeakAlloc;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn track(delta: isize) {
    let _ = LIVE.try_with(|live| {
        live.set(live.get() + delta);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(live.get())));
    });
}

unsafe impl GlobalAlloc for PeakAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            track(layout.size() as isize);
        }
        ptr
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        track(-(layout.size() as isize));
    }
}

#[global_allocator]
static ALLOCATOR: PeakAlloc = PeakAlloc;

fn monitor_with(env: &TestEnv, extra: &[&str]) -> Monitor {
    env.write_config(&env.node_section("demo", extra));
    Monitor::open(env.config_path.clone()).unwrap()
}

#[test]
fn one_fetch_per_queue_serves_counts_stats_and_get() {
    let env = TestEnv::new("monitor-cache");
    let monitor = monitor_with(&env, &["cache_ttl = 600"]);
    for queue in QUEUES {
        monitor.queue_count("demo", "AllContent", queue).unwrap();
    }
    let stats = monitor.relation_stats("demo", "AllContent").unwrap();
    assert!(stats.starts_with("{\"syncrequests\":3,"), "{stats}");
    let errors = monitor
        .queue_get("demo", "AllContent", "errorresponses")
        .unwrap();
    assert!(errors.contains("NO_ISSUE_TO_CONNECT_TO"), "{errors}");
    monitor
        .queue_get("demo", "AllContent", "syncrequests")
        .unwrap();
    for queue in QUEUES {
        monitor.queue_count("demo", "AllContent", queue).unwrap();
    }
    let requests = env.node.requests();
    assert_eq!(
        requests.len(),
        6,
        "one request per queue: {:?}",
        requests.iter().map(|r| &r.raw_path).collect::<Vec<_>>()
    );
    // All on one kept-alive connection.
    assert_eq!(env.node.connections_accepted(), 1);
}

#[test]
fn failures_are_reused_too_so_a_dead_node_costs_one_timeout_per_ttl() {
    let env = TestEnv::new("monitor-cache-errors");
    let monitor = monitor_with(&env, &["cache_ttl = 600"]);
    for _ in 0..3 {
        let e = monitor
            .queue_count("demo", "Gone", "syncrequests")
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RelationNotFound);
    }
    assert_eq!(env.node.requests().len(), 1);
}

#[test]
fn without_cache_every_call_fetches_on_the_same_connection() {
    let env = TestEnv::new("monitor-keepalive");
    let monitor = monitor_with(&env, &["cache_ttl = 0"]);
    for _ in 0..5 {
        assert_eq!(
            monitor
                .queue_count("demo", "AllContent", "syncrequests")
                .unwrap(),
            3
        );
    }
    let requests = env.node.requests();
    assert_eq!(requests.len(), 5);
    assert!(
        requests
            .iter()
            .all(|r| r.connection_id == requests[0].connection_id),
        "connection reused"
    );
    assert_eq!(env.node.connections_accepted(), 1);
}

#[test]
fn expired_entries_are_refetched_on_demand() {
    let env = TestEnv::new("monitor-ttl");
    let monitor = monitor_with(&env, &["cache_ttl = 1"]);
    assert_eq!(
        monitor
            .queue_count("demo", "AllContent", "syncrequests")
            .unwrap(),
        3
    );
    let changed_at = Instant::now();
    assert!(env.node.set_counts("AllContent", [7, 1, 2, 0, 2, 1]));
    // Within the TTL the cached count stands; after it, the new one shows.
    assert_eq!(
        monitor
            .queue_count("demo", "AllContent", "syncrequests")
            .unwrap(),
        3
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while monitor
        .queue_count("demo", "AllContent", "syncrequests")
        .unwrap()
        != 7
    {
        assert!(Instant::now() < deadline, "never refreshed");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(changed_at.elapsed() >= Duration::from_millis(900));
    assert_eq!(env.node.requests().len(), 2);
}

#[test]
fn counting_200k_entries_keeps_memory_flat() {
    let env = TestEnv::new("monitor-memory");
    // Debug builds parse ~20x slower than release.
    let monitor = monitor_with(
        &env,
        &[
            "cache_ttl = 0",
            "timeout = 30",
            "max_response_bytes = 536870912",
        ],
    );
    // Warm up: connection, token, config.
    monitor
        .queue_count("demo", "AllContent", "syncrequests")
        .unwrap();
    let peak_above_start = |n: u64, queue: &str| {
        env.node
            .add_relation("Bulk", RelationData::with_counts([n, 0, 0, 0, n, 0]));
        let before = LIVE.with(Cell::get);
        PEAK.with(|p| p.set(before));
        assert_eq!(monitor.queue_count("demo", "Bulk", queue).unwrap(), n);
        PEAK.with(Cell::get) - before
    };
    for queue in ["syncrequests", "errorresponses"] {
        let small = peak_above_start(20_000, queue);
        let large = peak_above_start(200_000, queue);
        // The 200k answer is 49 to 135 MB; what counting holds must not grow
        // with it (the first 256 KiB of entries, buffers).
        assert!(
            large < 2 << 20,
            "{queue}: counting 200k entries peaked {large} bytes above the start"
        );
        assert!(
            large < small + (256 << 10),
            "{queue}: 20k entries peaked at {small} bytes, 200k at {large}"
        );
    }
}
