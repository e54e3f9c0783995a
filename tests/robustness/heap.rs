//! The heap of a process serving items stays flat (`make stress`): tens of
//! thousands of item calls, failing ones included, with glibc's count of
//! bytes in use read before and after: through the safe core as the module
//! calls it, and through agent 2's plugin (protocol, threads and all) run in
//! this process. RSS (see `soak` and agent2.rs) shows the agents' view; this
//! shows what the library keeps. The count covers the whole process:
//! `make stress` runs its tests one at a time.

use crate::common::*;
use exalate_zabbix::agent2::frame;
use exalate_zabbix::agent2::message::kind;
use exalate_zabbix::items::{get_value, Item, ItemTiming};
use exalate_zabbix::Monitor;
use std::io::Write;
use std::os::unix::net::{UnixListener, UnixStream};

/// Bytes allocated and not freed, over all malloc arenas.
fn in_use() -> usize {
    // SAFETY: mallinfo2 only reads the allocator's counters.
    unsafe { libc::mallinfo2().uordblks }
}

/// Allowed growth after warm-up: glibc counts the chunks parked in each
/// thread's cache as in use, which moves the count by tens of KiB either
/// way. One leaked allocation per call (32 B at least) would be over 400 KiB here.
const SLACK_BYTES: usize = 256 * 1024;
const WARM_UP_ROUNDS: usize = 200;
const ROUNDS: usize = 1200;
/// Calls of each round that fail.
const FAILING: usize = 5;

/// A node with a mid-sized relation, no cache: every call fetches and parses.
fn heap_env(name: &str) -> Env {
    let env = Env::with_node(
        name,
        fake_exalate_node::NodeConfig::demo().with_relation("Mid", [300, 20, 0, 0, 100, 60]),
    );
    env.write_config(&env.config(&["timeout = 1", "cache_ttl = 0"], &[]));
    env
}

/// One round: each key, FAILING of them failing.
fn round_calls() -> Vec<(Item, Vec<&'static str>)> {
    vec![
        (Item::QueueCount, vec!["demo", "AllContent", "syncrequests"]),
        (Item::QueueGet, vec!["demo", "Mid", "errorresponses"]),
        (Item::QueueCount, vec!["demo", "Mid", "syncrequests"]),
        (Item::RelationStats, vec!["demo", "Mid"]),
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
    ]
}

/// Runs `round` WARM_UP_ROUNDS times, then ROUNDS more between two counts
/// of the heap; `round` gives the failures' messages. Asserts the failing
/// calls failed every round with FAILING distinct messages (audited for
/// secrets), and the heap's growth.
fn assert_heap_flat(what: &str, env: &Env, mut round: impl FnMut() -> Vec<String>) {
    let mut messages = std::collections::BTreeSet::new();
    let mut failures = 0;
    let mut rounds = |n: usize| {
        for _ in 0..n {
            let failed = round();
            failures += failed.len();
            if messages.len() < 16 {
                messages.extend(failed);
            }
            // The fake node's own record of requests would grow otherwise.
            env.node.clear_requests();
        }
    };
    rounds(WARM_UP_ROUNDS);
    let warm = in_use();
    rounds(ROUNDS);
    let end = in_use();
    let calls_made = ROUNDS * round_calls().len();
    eprintln!(
        "{what}: heap in use after warm-up {warm} B, after {calls_made} more calls {end} B ({:+} B)",
        end as i64 - warm as i64
    );
    assert_eq!(
        failures,
        (WARM_UP_ROUNDS + ROUNDS) * FAILING,
        "the failing calls fail every round: {messages:?}"
    );
    assert_eq!(messages.len(), FAILING, "{messages:?}");
    for m in &messages {
        collect("heap: message", m);
    }
    assert!(
        end <= warm + SLACK_BYTES,
        "{what}: heap grew by {} B over {calls_made} calls",
        end - warm
    );
}

#[test]
#[ignore = "tens of thousands of calls; run by `make stress`"]
fn heap_in_use_stays_flat_over_thousands_of_item_calls() {
    let env = heap_env("heap");
    let monitor = Monitor::new_lazy(env.config_path.clone());
    let calls = round_calls();
    assert_heap_flat("module's item layer", &env, || {
        calls
            .iter()
            .filter_map(|(item, params)| {
                get_value(&monitor, *item, params, ItemTiming::now(None)).err()
            })
            .map(|e| e.message().to_string())
            .collect()
    });
}

/// The plugin's operational run, in this process, on a socket of ours;
/// exports go one at a time (sent at once, the number of kept-alive
/// connections, 128 KiB of buffers each, would move the count by MBs).
#[test]
#[ignore = "tens of thousands of calls; run by `make stress`"]
fn plugin_heap_in_use_stays_flat_over_thousands_of_exports() {
    let env = heap_env("heap-plugin");
    let socket = env.dir.join("plugin.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    // Where the plugin looks without a Config option; this test runs alone.
    std::env::set_var("EXALATE_ZABBIX_CONFIG", &env.config_path);
    let args = ["plugin".into(), socket.into_os_string(), "false".into()];
    let plugin = std::thread::spawn(move || exalate_zabbix::agent2::run(&args));
    let (mut stream, _) = listener.accept().unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let configure = serde_json::json!({"id": 1, "type": kind::CONFIGURE_REQUEST, "global_options": {"Timeout": 3},
        "private_options": {"Name": "Exalate"}});
    stream.write_all(&frame::encode(&configure)).unwrap();
    let requests: Vec<Vec<u8>> = round_calls()
        .iter()
        .enumerate()
        .map(|(id, (item, params))| {
            let mut request =
                serde_json::json!({"id": id, "type": kind::EXPORT_REQUEST, "key": item.key(), "timeout": 3});
            // As agent 2 sends a key without brackets.
            if !params.is_empty() {
                request["parameters"] = params.as_slice().into();
            }
            frame::encode(&request)
        })
        .collect();
    assert_heap_flat("agent 2 plugin", &env, || {
        let mut failed = Vec::new();
        for request in &requests {
            stream.write_all(request).unwrap();
            let answer = loop {
                let message = receive(&mut stream);
                match message["type"].as_u64().map(|t| t as u32) {
                    Some(kind::EXPORT_RESPONSE) => break message,
                    // The plugin's log messages (debug at most).
                    Some(kind::LOG) => {}
                    _ => panic!("unexpected message: {message}"),
                }
            };
            if let Some(error) = answer["error"].as_str() {
                failed.push(error.to_string());
            }
        }
        failed
    });
    // The agent goes away: the plugin's run ends.
    drop(stream);
    assert_eq!(plugin.join().unwrap(), 0);
    std::env::remove_var("EXALATE_ZABBIX_CONFIG");
}

fn receive(stream: &mut UnixStream) -> serde_json::Value {
    match frame::read(stream).unwrap() {
        Some(frame::Frame::Json(body)) => serde_json::from_slice(&body).unwrap(),
        other => panic!("expected a JSON frame: {other:?}"),
    }
}
