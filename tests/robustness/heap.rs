//! The heap of a process serving items stays flat (`make stress`): tens of
//! thousands of item calls, failing ones included, through the safe core in
//! this process, with glibc's count of bytes in use read before and after.
//! RSS (see `soak`) shows the agent's view; this shows what the module keeps.
//! The count covers the whole process: `make stress` runs its tests one at
//! a time.

use crate::support::*;
use exalate_zabbix::items::{serve, Item};
use exalate_zabbix::Monitor;

/// Bytes allocated and not freed, over all malloc arenas.
fn in_use() -> usize {
    // SAFETY: mallinfo2 only reads the allocator's counters.
    unsafe { libc::mallinfo2().uordblks }
}

/// Allowed growth after warm-up: glibc counts the chunks parked in each
/// thread's cache as in use, which moves the count by tens of KiB either
/// way. One leaked allocation per call would be over 600 KiB here.
const SLACK_BYTES: usize = 256 * 1024;

#[test]
#[ignore = "tens of thousands of calls; run by `make stress`"]
fn heap_in_use_stays_flat_over_thousands_of_item_calls() {
    let env = Env::with_node(
        "heap",
        fake_exalate_node::NodeConfig::demo().with_relation("Mid", [300, 20, 0, 0, 100, 60]),
    );
    // No cache: every call fetches and parses.
    env.write_config(&env.config(&["timeout = 1", "cache_ttl = 0"], &[]));
    let monitor = Monitor::new_lazy(env.config_path.clone());
    let calls: Vec<(Item, Vec<&str>)> = vec![
        (Item::QueueCount, vec!["demo", "AllContent", "syncrequests"]),
        (Item::QueueGet, vec!["demo", "Mid", "errorresponses"]),
        (Item::QueueCount, vec!["demo", "Mid", "syncrequests"]),
        (Item::QueueCount, vec!["demo", "Gone", "syncrequests"]),
        (
            Item::QueueCount,
            vec!["demo", "fault-status-502", "syncrequests"],
        ),
        (
            Item::QueueCount,
            vec!["demo", "fault-malformed", "syncrequests"],
        ),
        (Item::QueueCount, vec!["demo", "AllContent", "nosuchqueue"]),
        (
            Item::QueueCount,
            vec!["nosuchnode", "AllContent", "syncrequests"],
        ),
        (Item::Discovery, vec![]),
        (Item::NodePing, vec!["demo"]),
    ];
    // Messages are audited once each, after the measurement.
    let mut messages = std::collections::BTreeSet::new();
    let mut failures = 0;
    let mut round = |n: usize| {
        for _ in 0..n {
            for (item, params) in &calls {
                if let Err(e) = serve(&monitor, *item, params) {
                    if messages.len() < 16 {
                        messages.insert(e.message().to_string());
                    }
                    failures += 1;
                }
            }
            // The fake node's own record of requests would grow otherwise.
            env.node.clear_requests();
        }
    };
    round(300);
    let warm = in_use();
    let rounds = 2000;
    round(rounds);
    let end = in_use();
    let calls_made = rounds * calls.len();
    eprintln!(
        "heap in use after warm-up {warm} B, after {calls_made} more calls {end} B ({:+} B)",
        end as i64 - warm as i64
    );
    assert_eq!(
        failures,
        (300 + rounds) * 5,
        "the five failing calls fail every round"
    );
    assert_eq!(messages.len(), 5, "{messages:?}");
    for m in &messages {
        collect("heap: message", m);
    }
    assert!(
        end <= warm + SLACK_BYTES,
        "heap grew by {} B over {calls_made} calls",
        end - warm
    );
}
