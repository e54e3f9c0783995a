//! The core against the fake node, without Zabbix: what one fetch serves
//! (the cache), connection reuse, refresh after the TTL, and that counting a
//! 200,000-entry queue does not hold the queue in memory.

pub mod common;

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

/// Issue 21: the six counts, stats and two gets of one relation asked at
/// once (agent 2 serves concurrently) of a node answering in 1 s: a fetch in
/// flight serves everyone asking for its queue meanwhile, a get joining a
/// count's fetch included: six requests in all.
#[test]
fn concurrent_items_of_a_relation_share_the_fetches_in_flight() {
    let env = TestEnv::new("monitor-cache-concurrent");
    let monitor = monitor_with(&env, &["cache_ttl = 60", "timeout = 10"]);
    env.node.set_response_delay(Duration::from_secs(1));
    let started = Instant::now();
    std::thread::scope(|s| {
        let monitor = &monitor;
        let mut calls = Vec::new();
        for queue in QUEUES {
            calls.push(
                s.spawn(move || monitor.queue_count("demo", "AllContent", queue).map(|_| ())),
            );
        }
        calls.push(s.spawn(|| monitor.relation_stats("demo", "AllContent").map(|_| ())));
        for queue in ["errorresponses", "syncrequests"] {
            calls.push(s.spawn(move || monitor.queue_get("demo", "AllContent", queue).map(|_| ())));
        }
        for call in calls {
            call.join().unwrap().unwrap();
        }
    });
    let took = started.elapsed();
    let requests = env.node.requests();
    assert_eq!(
        requests.len(),
        6,
        "at most one request per queue: {:?}",
        requests.iter().map(|r| &r.raw_path).collect::<Vec<_>>()
    );
    // Everyone was served by the fetches of the first second.
    assert!(took < Duration::from_millis(2500), "took {took:?}");
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
        // The same pass found the oldest event of the 200k (what stats reports).
        let stats: serde_json::Value =
            serde_json::from_str(&monitor.relation_stats("demo", "Bulk").unwrap()).unwrap();
        // Entry 0 holds the smallest id; rendered alone, it tells which.
        let first_id = |q: &str| {
            let one = RelationData::with_counts([1, 0, 0, 0, 1, 0]);
            let queue = fake_exalate_node::Queue::ALL[QUEUES.iter().position(|n| *n == q).unwrap()];
            let text = fake_exalate_node::queue_body("Bulk", &one, queue);
            serde_json::from_slice::<serde_json::Value>(&text).unwrap()[0]["syncEventId"]
                .as_u64()
                .unwrap()
        };
        assert_eq!(stats["oldest_event_id"][queue], first_id(queue), "{stats}");
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

/// `oldest_event_id` in stats is per queue the smallest `syncEventId` that
/// `queue.get` shows, 0 for an empty queue.
#[test]
fn stats_give_the_oldest_event_of_each_queue() {
    let env = TestEnv::new("monitor-oldest");
    let monitor = monitor_with(&env, &["cache_ttl = 600"]);
    let stats: serde_json::Value =
        serde_json::from_str(&monitor.relation_stats("demo", "AllContent").unwrap()).unwrap();
    let oldest = stats["oldest_event_id"].as_object().unwrap();
    let mut queues = QUEUES.to_vec();
    queues.sort();
    assert_eq!(oldest.keys().collect::<Vec<_>>(), queues, "{stats}");
    for queue in QUEUES {
        let text = monitor.queue_get("demo", "AllContent", queue).unwrap();
        let entries: serde_json::Value = serde_json::from_str(&text).unwrap();
        let min = entries
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["syncEventId"].as_u64())
            .min()
            .unwrap_or(0);
        assert_eq!(oldest[queue], min, "{queue}: {stats}");
    }
    assert_eq!(oldest["blobresponses"], 0, "empty: {stats}");
    assert_ne!(oldest["syncrequests"], 0, "{stats}");
}

/// A queue whose oldest entry stays while newer ones come and go keeps its
/// `oldest_event_id`; one that drains at the same length moves it on.
#[test]
fn a_stuck_oldest_event_keeps_its_id_a_draining_queue_moves_on() {
    use fake_exalate_node::Motion;
    let env = TestEnv::new("monitor-motion");
    let every = Duration::from_millis(100);
    let relation = |motion| RelationData::with_counts([5, 0, 0, 0, 0, 0]).with_motion(motion);
    env.node
        .add_relation("Stuck", relation(Motion::StuckOldest { every }));
    env.node
        .add_relation("Draining", relation(Motion::Draining { every }));
    let monitor = monitor_with(&env, &["cache_ttl = 0"]);
    let ids = |relation: &str| {
        let text = monitor.queue_get("demo", relation, "syncrequests").unwrap();
        let entries: serde_json::Value = serde_json::from_str(&text).unwrap();
        let ids: Vec<u64> = entries
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["syncEventId"].as_u64().unwrap())
            .collect();
        let stats: serde_json::Value =
            serde_json::from_str(&monitor.relation_stats("demo", relation).unwrap()).unwrap();
        (
            stats["oldest_event_id"]["syncrequests"].as_u64().unwrap(),
            ids,
        )
    };
    let (stuck_oldest, stuck_ids) = ids("Stuck");
    let (draining_oldest, _) = ids("Draining");
    // Asked until the newest entries have moved on (motion is the node's clock).
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let (oldest, now) = ids("Stuck");
        assert_eq!(
            oldest, stuck_oldest,
            "the stuck event stays the oldest: {now:?}"
        );
        assert_eq!(now.len(), 5);
        if now.iter().max() > stuck_ids.iter().max() {
            break;
        }
        assert!(
            Instant::now() < until,
            "the stuck queue never moved: {now:?}"
        );
    }
    loop {
        let (oldest, now) = ids("Draining");
        assert_eq!(now.len(), 5, "the same length");
        if oldest != draining_oldest {
            assert!(oldest > draining_oldest, "{oldest} after {draining_oldest}");
            break;
        }
        assert!(
            Instant::now() < until,
            "the draining queue never moved: {now:?}"
        );
    }
}

/// `node_errors` over the endpoint's own credentials: the node's JWT is
/// never sent there, each call asks anew (not cached), and a change of the
/// count or of the password file is seen at the next call.
#[test]
fn node_errors_ask_the_endpoint_with_its_own_credentials_each_time() {
    let env = TestEnv::new("monitor-node-errors");
    let nodes = cmonitor_config(&env);
    let monitor = Monitor::open(env.config_path.clone()).unwrap();
    assert_eq!(monitor.node_errors("basic").unwrap(), 3);
    assert!(nodes.basic.set_cmonitor_body(r#"{"numErrors":12}"#));
    assert_eq!(monitor.node_errors("basic").unwrap(), 12);
    let requests = nodes.basic.requests();
    assert_eq!(requests.len(), 2, "not cached");
    for r in &requests {
        assert_eq!(
            r.raw_path,
            format!("{}{CMONITOR_PATH}", nodes.basic.base_path())
        );
        assert_eq!(
            r.header("Authorization"),
            Some(format!("Basic {CMONITOR_BASIC}").as_str())
        );
        assert_eq!(r.header("X-Exalate-Jwt"), None);
        assert!(r.auth_ok);
    }
    assert_eq!(monitor.node_errors("bearer").unwrap(), 0);
    assert_eq!(
        nodes.bearer.requests()[0].header("Authorization"),
        Some(format!("Bearer {CMONITOR_TOKEN}").as_str())
    );
    // A password changed in its file takes effect at once.
    write_file(
        &env.dir.join("cmonitor.password"),
        "changed-password-77",
        0o640,
    );
    let e = monitor.node_errors("basic").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AuthRejected, "{e}");
    // Kinds for the C API and triggers.
    let kind = |node: &str| monitor.node_errors(node).unwrap_err().kind();
    assert_eq!(kind("forbidden"), ErrorKind::NotAuthenticated);
    assert_eq!(kind("malformed"), ErrorKind::BadResponse);
    assert_eq!(kind("string"), ErrorKind::BadResponse);
    assert_eq!(kind("refused"), ErrorKind::ConnectionFailed);
    assert_eq!(kind("open"), ErrorKind::Config);
    assert_eq!(kind("none"), ErrorKind::Config);
    let started = Instant::now();
    assert_eq!(kind("slow"), ErrorKind::Timeout);
    assert!(
        started.elapsed() < Duration::from_millis(3500),
        "{:?}",
        started.elapsed()
    );
}

/// The peak of this thread's heap while `f` runs, above where it started.
fn peak_during<R>(f: impl FnOnce() -> R) -> (R, isize) {
    let before = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(before));
    let result = f();
    (result, PEAK.with(Cell::get) - before)
}

#[test]
fn stats_asks_the_six_queues_at_once() {
    let env = TestEnv::new("monitor-stats-concurrent");
    let monitor = monitor_with(&env, &["cache_ttl = 0", "timeout = 10"]);
    monitor
        .queue_count("demo", "AllContent", "syncrequests")
        .unwrap();
    // Long enough that a busy machine's scheduling is small beside it.
    let delay = Duration::from_millis(800);
    env.node.set_response_delay(delay);
    let started = Instant::now();
    monitor
        .queue_count("demo", "AllContent", "syncrequests")
        .unwrap();
    let one_queue = started.elapsed();
    let started = Instant::now();
    let stats = monitor.relation_stats("demo", "AllContent").unwrap();
    let six_queues = started.elapsed();
    assert!(
        stats.starts_with("{\"syncrequests\":3,\"blobrequests\":1,"),
        "{stats}"
    );
    assert_eq!(
        env.node.max_in_flight(),
        6,
        "the six requests overlap at the node"
    );
    let ratio = six_queues.as_secs_f64() / one_queue.as_secs_f64();
    println!("one queue {one_queue:?}, stats {six_queues:?}: {ratio:.2}x");
    assert!(
        ratio < 1.6,
        "stats took {ratio:.2}x one queue: {six_queues:?} vs {one_queue:?}"
    );
}

#[test]
fn one_deadline_bounds_the_six_queues_of_stats() {
    let env = TestEnv::new("monitor-stats-deadline");
    let monitor = monitor_with(&env, &["cache_ttl = 0", "timeout = 1"]);
    env.node.set_response_delay(Duration::from_secs(3));
    let started = Instant::now();
    let e = monitor.relation_stats("demo", "AllContent").unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(1800),
        "{:?}",
        started.elapsed()
    );
    // All six failed alike: the message names no queue.
    assert_eq!(
        e.message(),
        "node 'demo', relation 'AllContent': timeout after 1 s"
    );
}

#[test]
fn a_queue_failing_in_stats_gives_that_queues_message() {
    let env = TestEnv::new("monitor-stats-one-fails");
    // syncresponses alone is over max_response_bytes.
    let monitor = monitor_with(&env, &["cache_ttl = 600", "max_response_bytes = 20000"]);
    env.node
        .add_relation("Mixed", RelationData::with_counts([1, 1, 100, 1, 1, 1]));
    let e = monitor.relation_stats("demo", "Mixed").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TooLarge);
    assert_eq!(
        e.message(),
        "node 'demo', relation 'Mixed', queue syncresponses: response larger than max_response_bytes (20000 bytes)"
    );
    // The five that answered are cached for the counts.
    assert_eq!(
        monitor
            .queue_count("demo", "Mixed", "errorresponses")
            .unwrap(),
        1
    );
    assert_eq!(env.node.requests().len(), 6);
    let e = monitor.relation_stats("demo", "Gone").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RelationNotFound);
    assert!(
        e.message().starts_with(
            "node 'demo', relation 'Gone': relation not found on the node (HTTP 400: "
        ),
        "{e}"
    );
}

#[test]
fn get_of_tiny_entries_peaks_at_a_small_multiple_of_the_answer() {
    let env = TestEnv::new("monitor-get-memory");
    let monitor = monitor_with(
        &env,
        &[
            "cache_ttl = 0",
            "timeout = 30",
            "max_response_bytes = 67108864",
        ],
    );
    monitor
        .queue_count("demo", "AllContent", "syncrequests")
        .unwrap();
    let n = 100_000;
    env.node
        .add_relation("Tiny", RelationData::with_counts([n, 0, 0, 0, n, 0]).tiny());
    for queue in ["syncrequests", "errorresponses"] {
        let (text, peak) = peak_during(|| monitor.queue_get("demo", "Tiny", queue).unwrap());
        let answer = text.len() as isize;
        assert!(answer > 1 << 20, "{answer}");
        let multiple = peak as f64 / answer as f64;
        println!(
            "{queue}: get of {answer} bytes in {n} entries peaked {peak} bytes ({multiple:.2}x)"
        );
        assert!(multiple < 2.5, "{queue}: peaked {multiple:.2}x the answer");
        let (count, peak) = peak_during(|| monitor.queue_count("demo", "Tiny", queue).unwrap());
        assert_eq!(count, n);
        assert!(peak < 1 << 20, "{queue}: counting peaked {peak} bytes");
    }
}

#[test]
fn the_cache_stays_within_cache_max_bytes() {
    let env = TestEnv::new("monitor-cache-budget");
    let budget = 1 << 20;
    let monitor = monitor_with(
        &env,
        &["cache_ttl = 600", &format!("cache_max_bytes = {budget}")],
    );
    for i in 0..12 {
        let relation = format!("R{i}");
        env.node
            .add_relation(&relation, RelationData::with_counts([900, 0, 0, 0, 0, 0]));
        let text = monitor
            .queue_get("demo", &relation, "syncrequests")
            .unwrap();
        assert!(text.len() > 200_000, "{}", text.len());
        assert!(
            monitor.cache_bytes() <= budget,
            "{} bytes cached",
            monitor.cache_bytes()
        );
    }
    assert!(monitor.cache_bytes() > budget / 2, "the newest are kept");
    // The newest answer is served from the cache, the oldest was dropped.
    let before = env.node.requests().len();
    monitor.queue_get("demo", "R11", "syncrequests").unwrap();
    assert_eq!(env.node.requests().len(), before);
    monitor.queue_get("demo", "R0", "syncrequests").unwrap();
    assert_eq!(env.node.requests().len(), before + 1);
}

#[test]
fn expired_answers_are_gone_after_the_next_call() {
    let env = TestEnv::new("monitor-cache-expiry");
    let monitor = monitor_with(&env, &["cache_ttl = 1"]);
    env.node
        .add_relation("Big", RelationData::with_counts([900, 0, 0, 0, 0, 0]));
    let text = monitor.queue_get("demo", "Big", "syncrequests").unwrap();
    assert!(monitor.cache_bytes() > text.len());
    // The TTL is what is tested: let it pass.
    std::thread::sleep(Duration::from_millis(1100));
    monitor
        .queue_count("demo", "Service Desk", "syncresponses")
        .unwrap();
    assert!(
        monitor.cache_bytes() < 1000,
        "{} bytes still cached",
        monitor.cache_bytes()
    );
}

#[test]
fn a_fetch_in_flight_during_a_reload_does_not_bring_back_old_answers() {
    let env = TestEnv::new("monitor-reload-race");
    let config = env.node_section("demo", &["cache_ttl = 600", "timeout = 10"]);
    env.write_config(&config);
    let monitor = std::sync::Arc::new(Monitor::open(env.config_path.clone()).unwrap());
    let loaded_at = Instant::now();
    env.node.set_response_delay(Duration::from_millis(1500));
    let in_flight = {
        let monitor = monitor.clone();
        std::thread::spawn(move || monitor.queue_count("demo", "AllContent", "syncrequests"))
    };
    env.node.wait_for_requests(1, Duration::from_secs(5));
    // The same nodes, a changed file: a reload that keeps the session.
    env.write_config(&format!("# edited\n{config}"));
    env.node.set_response_delay(Duration::ZERO);
    assert!(env.node.set_counts("AllContent", [9, 1, 2, 0, 2, 1]));
    // The config is looked at once a second: wait for that, then reload.
    std::thread::sleep(Duration::from_millis(1050).saturating_sub(loaded_at.elapsed()));
    monitor
        .queue_count("demo", "AllContent", "blobrequests")
        .unwrap();
    assert_eq!(
        in_flight.join().unwrap().unwrap(),
        3,
        "answered before the change"
    );
    assert_eq!(
        monitor
            .queue_count("demo", "AllContent", "syncrequests")
            .unwrap(),
        9,
        "the old answer was not cached after the reload"
    );
}

/// Issue 24: items of many threads at once need one login: the others wait
/// for it rather than logging in themselves; the login's JWT, the password
/// and the Basic header never reach a value or a message.
#[test]
fn concurrent_items_share_one_login() {
    use fake_exalate_node::{FakeNode, NodeConfig};
    let env = TestEnv::new("monitor-api-login");
    add_api_secrets();
    write_file(&env.dir.join("api.password"), API_PASSWORD, 0o640);
    let node = FakeNode::start(NodeConfig::default().with_api(test_api())).unwrap();
    node.set_response_delay(Duration::from_millis(200));
    env.write_config(&format!(
        "[nodes.cloud]\nurl = \"{}\"\ntimeout = 10\n{}",
        node.url(),
        api_keys(&env.dir, "login")
    ));
    let monitor = Monitor::open(env.config_path.clone()).unwrap();
    let sixteen_items = || -> Vec<String> {
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..16)
                .map(|i| {
                    let monitor = &monitor;
                    s.spawn(move || match i % 3 {
                        0 => monitor
                            .node_queue("cloud", "outgoing")
                            .map(|n| n.to_string()),
                        1 => monitor.node_queue("", "incoming").map(|n| n.to_string()),
                        _ => monitor.node_connections("cloud"),
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap().unwrap())
                .collect()
        })
    };
    let outcomes = sixteen_items();
    assert_eq!(node.login_count(), 1);
    for outcome in &outcomes {
        assert!(
            outcome == "1500" || outcome == "420" || outcome == DEMO_CONNECTIONS,
            "{outcome}"
        );
        env.assert_no_secrets(outcome);
    }
    // 16 items, one login, 16 GETs with its token.
    let requests = node.requests();
    let with_jwt = requests
        .iter()
        .filter(|r| r.auth_ok && r.header("X-Exalate-Jwt").is_some())
        .count();
    assert_eq!((requests.len(), with_jwt), (17, 16));
    // A wrong direction is refused before any request.
    let e = monitor.node_queue("cloud", "both").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert_eq!(node.requests().len(), 17);
    // The node restarts (every token rejected): the 16 items rejected
    // together cause one new login, not one each.
    assert!(node.revoke_logins());
    for outcome in sixteen_items() {
        env.assert_no_secrets(&outcome);
    }
    assert_eq!(node.login_count(), 2);
}
