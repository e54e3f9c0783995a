//! Load and soak (`make stress`, ignored by `make test`): a running agent with
//! StartAgents=5 and the module, hit by 16 concurrent clients for a bounded
//! time with a mix of every key, failing ones included. No crash, no
//! unexpected answer, every agent process alive, RSS flat after warm-up.

use crate::common::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const CLIENTS: usize = 16;
const START_AGENTS: u32 = 5;

/// What a key must answer.
enum Check {
    Value(&'static str),
    Error(String),
    ErrorStarts(String),
    Json(fn(&serde_json::Value) -> bool),
}

impl Check {
    fn accepts(&self, reply: &Reply) -> bool {
        match (self, reply) {
            (Check::Value(v), Reply::Value(got)) => got == v,
            (Check::Error(m), Reply::NotSupported(got)) => got == m,
            (Check::ErrorStarts(m), Reply::NotSupported(got)) => got.starts_with(m.as_str()),
            (Check::Json(f), Reply::Value(got)) => {
                serde_json::from_str(got).map(|v| f(&v)).unwrap_or(false)
            }
            _ => false,
        }
    }
}

/// The process's role from its title ("listener #3 [waiting for connection]").
fn role(pid: u32) -> String {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    let text = text.trim();
    // Children retitle themselves "zabbix_agentd: listener #1 [...]".
    match text.split_once(": ") {
        Some((_, title)) => title.split(" [").next().unwrap_or(title).to_string(),
        None => "main".into(),
    }
}

/// A relation with thousands of entries (3.5 MB answers), so memory of
/// large parses is exercised too.
fn soak_env(name: &str) -> Env {
    let env = Env::with_node(
        name,
        fake_exalate_node::NodeConfig::demo().with_relation("Big", [5_000, 100, 0, 0, 500, 300]),
    );
    // Counting Big in a debug build, 16 clients on 2 cores, needs more than 1 s.
    env.write_config(&env.config(&["timeout = 2", "cache_ttl = 1"], &[]));
    env
}

/// The soak's mix: every key, failing ones included, and what each must answer.
fn soak_keys() -> Vec<(String, Check)> {
    let on = |relation: &str, reason: &str| {
        format!("node 'demo', relation '{relation}', queue syncrequests: {reason}.")
    };
    let mut keys: Vec<(String, Check)> = vec![
        ("agent.ping".into(), Check::Value("1")),
        ("exalate.module.version".into(), Check::Value(env!("CARGO_PKG_VERSION"))),
        ("exalate.node.ping[demo]".into(), Check::Value("1")),
        ("exalate.node.ping".into(), Check::Value("1")),
        (
            "exalate.discovery".into(),
            Check::Json(|v| v.as_array().is_some_and(|a| a.len() == 3)),
        ),
        (
            "exalate.relation.stats[demo,AllContent]".into(),
            Check::Json(|v| v["syncrequests"] == 3 && v["error_reasons"]["CHECKSUM_MISMATCH"] == 1),
        ),
        (
            "exalate.relation.stats[,\"Jira Cloud/EU\"]".into(),
            Check::Json(|v| v["syncrequests"] == 1 && v["blobresponses"] == 1),
        ),
        (
            "exalate.queue.get[demo,AllContent,errorresponses]".into(),
            Check::Json(|v| v.as_array().is_some_and(|a| a.len() == 2)),
        ),
        (
            "exalate.queue.get[demo,AllContent,syncrequests]".into(),
            Check::Json(|v| {
                v.as_array().is_some_and(|a| a.len() == 3) && !v.to_string().contains("encodedPayload")
            }),
        ),
        ("exalate.queue.count[demo,Big,syncrequests]".into(), Check::Value("5000")),
        (
            "exalate.relation.stats[demo,Big]".into(),
            Check::Json(|v| {
                v["syncrequests"] == 5000
                    && v["error_reasons"]["NO_ISSUE_TO_CONNECT_TO"] == 250
                    && v["error_reasons"]["CHECKSUM_MISMATCH"] == 150
            }),
        ),
        (
            "exalate.queue.get[demo,Big,errorresponses]".into(),
            Check::Json(|v| v.as_array().is_some_and(|a| a.len() == 500)),
        ),
        (
            "exalate.queue.count[demo,Gone,syncrequests]".into(),
            Check::Error(on("Gone", "relation not found on the node (HTTP 400: Connection `Gone` not found. Seems like it was removed on the Destination side.)")),
        ),
        (
            "exalate.queue.count[demo,fault-status-500,syncrequests]".into(),
            Check::Error(on("fault-status-500", "node error (HTTP 500: {\"message\":\"NullPointerException\"})")),
        ),
        (
            "exalate.queue.count[demo,fault-status-503,syncrequests]".into(),
            Check::Error(on("fault-status-503", "node error (HTTP 503: 503 Service Unavailable)")),
        ),
        (
            "exalate.queue.count[demo,fault-malformed,syncrequests]".into(),
            Check::Error(on("fault-malformed", "malformed JSON: EOF while parsing a value at line 1 column 19")),
        ),
        (
            "exalate.queue.count[demo,fault-hang,syncrequests]".into(),
            Check::Error(on("fault-hang", "timeout after 2 s")),
        ),
        (
            "exalate.queue.count[demo,fault-reset,syncrequests]".into(),
            Check::ErrorStarts("node 'demo', relation 'fault-reset', queue syncrequests: ".into()),
        ),
        (
            "exalate.queue.count[staging,AllContent,syncrequests]".into(),
            Check::Error("unknown node 'staging'; configured nodes: demo.".into()),
        ),
        (
            "exalate.queue.count[demo,AllContent,errors]".into(),
            Check::ErrorStarts("unknown queue 'errors'; valid queues: ".into()),
        ),
        (
            "exalate.queue.count[demo,AllContent]".into(),
            Check::ErrorStarts("wrong number of parameters: ".into()),
        ),
    ];
    for (queue, count) in [
        ("syncrequests", "3"),
        ("blobrequests", "1"),
        ("syncresponses", "2"),
        ("blobresponses", "0"),
        ("errorresponses", "2"),
        ("bloberrorresponses", "1"),
    ] {
        keys.push((
            format!("exalate.queue.count[demo,AllContent,{queue}]"),
            Check::Value(count),
        ));
    }
    if cfg!(feature = "fault-injection") {
        keys.push((
            "exalate.queue.count[demo,exalate-test-panic,syncrequests]".into(),
            Check::Error("internal error in the exalate module (injected panic for relation exalate-test-panic); the agent goes on.".into()),
        ));
    }

    keys
}

/// Every key of the mix, asked once: each answers as the soak expects.
#[test]
fn each_soak_key_answers_as_expected_once() {
    let env = soak_env("soak-keys");
    let agent = env.start_agent(AgentOptions {
        start_agents: 2,
        debug_level: 3,
        ..AgentOptions::default()
    });
    for (key, check) in soak_keys() {
        let reply = agent.get(&key);
        assert!(check.accepts(&reply), "{key}: {reply:?}");
    }
}

#[test]
#[ignore = "soak: a minute long; run by `make stress`"]
fn sixteen_clients_for_a_minute_nothing_crashes_or_grows() {
    let duration = soak_duration(60);
    let env = soak_env("soak");
    let mut agent = env.start_agent(AgentOptions {
        start_agents: START_AGENTS,
        debug_level: 3,
        ..AgentOptions::default()
    });
    let pids = agent.process_ids();
    assert_eq!(pids.len(), 2 + START_AGENTS as usize);

    let keys = soak_keys();
    let started = Instant::now();
    let end = started + duration;
    let answered = AtomicU64::new(0);
    let big_timeouts = AtomicU64::new(0);
    let unexpected: Mutex<Vec<String>> = Mutex::new(Vec::new());
    // pid -> (seconds since start, VmRSS KiB)
    let samples: Mutex<BTreeMap<u32, Vec<(u64, u64)>>> = Mutex::new(BTreeMap::new());
    // One RSS sample (KiB) of every agent process, `at` seconds in.
    let sample_all = |at: u64| {
        for &pid in &pids {
            if let Some(kib) = rss_kib(pid) {
                samples
                    .lock()
                    .unwrap()
                    .entry(pid)
                    .or_default()
                    .push((at, kib));
            }
        }
    };
    let mut per_key = vec![0u64; keys.len()];
    std::thread::scope(|s| {
        let mut clients = Vec::new();
        for client in 0..CLIENTS {
            let (agent, keys, answered, big_timeouts, unexpected) =
                (&agent, &keys, &answered, &big_timeouts, &unexpected);
            clients.push(s.spawn(move || {
                let mut counts = vec![0u64; keys.len()];
                let mut i = client * 7;
                while Instant::now() < end {
                    let k = i % keys.len();
                    i += 1;
                    let (key, check) = &keys[k];
                    let reply = match zabbix_get(agent.addr, key) {
                        Ok(reply) => reply,
                        Err(e) => Reply::NotSupported(format!("no answer: {e}")),
                    };
                    // A big relation may time out when 16 clients parse
                    // 3.5 MB answers at once on a busy machine: counted.
                    if key.contains("Big")
                        && matches!(&reply, Reply::NotSupported(m) if m.ends_with("timeout after 2 s."))
                    {
                        big_timeouts.fetch_add(1, Ordering::Relaxed);
                    } else if !check.accepts(&reply) {
                        collect("soak: unexpected", &format!("{key}: {reply:?}"));
                        let mut u = unexpected.lock().unwrap();
                        if u.len() < 20 {
                            u.push(format!("{key}: {reply:?}"));
                        }
                    }
                    counts[k] += 1;
                    answered.fetch_add(1, Ordering::Relaxed);
                }
                counts
            }));
        }
        // RSS of every agent process every second.
        let sample_all = &sample_all;
        s.spawn(move || {
            while Instant::now() < end {
                sample_all(started.elapsed().as_secs());
                let next = Instant::now() + Duration::from_secs(1);
                while Instant::now() < next.min(end) {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        });
        for c in clients {
            for (k, n) in c.join().unwrap().into_iter().enumerate() {
                per_key[k] += n;
            }
        }
    });
    let elapsed = started.elapsed();
    // The last sample, after the load.
    sample_all(elapsed.as_secs());
    let answered = answered.into_inner();
    eprintln!(
        "soak: {CLIENTS} clients, {} s, {answered} answers ({:.0}/s), {} keys, {} timeouts of Big",
        elapsed.as_secs(),
        answered as f64 / elapsed.as_secs_f64(),
        keys.len(),
        big_timeouts.into_inner()
    );
    let unexpected = unexpected.into_inner().unwrap();
    assert!(
        unexpected.is_empty(),
        "unexpected answers:\n{}",
        unexpected.join("\n")
    );
    let never: Vec<&str> = keys
        .iter()
        .zip(&per_key)
        .filter(|(_, &n)| n == 0)
        .map(|((key, _), _)| key.as_str())
        .collect();
    assert!(never.is_empty(), "keys never asked: {never:?}");

    // Every process alive, none replaced.
    assert!(
        agent.is_running(),
        "the agent exited; log:\n{}",
        agent.log()
    );
    assert_eq!(agent.process_ids(), pids, "an agent process died");
    let log = agent.log();
    for bad in [
        "Got signal",
        "One child process died",
        "segmentation",
        "Shutting down",
    ] {
        assert!(!log.contains(bad), "agent log has {bad:?}");
    }

    // RSS after warm-up is flat: parsing a large answer makes short peaks,
    // so halves are compared by their median.
    let samples = samples.into_inner().unwrap();
    let mut grown = Vec::new();
    for &pid in &pids {
        let s = &samples[&pid];
        let rss = RssTrend::of(s, duration);
        if pid == pids[0] {
            let (warm_from, half, end) = rss.windows;
            eprintln!(
                "RSS (KiB) of each agent process: at start; median {warm_from}-{half} s; median {half}-{end} s; after the load; max",
            );
        }
        eprintln!(
            "  pid {pid:>7} {:<12} {:>7} {:>7} {:>7} {:>7} {:>7}",
            role(pid),
            rss.first,
            rss.warm,
            rss.late,
            rss.end,
            rss.max
        );
        let trend: Vec<String> = s
            .iter()
            .filter(|(t, _)| t % 10 == 0)
            .map(|(t, k)| format!("{t}s:{k}"))
            .collect();
        eprintln!("      every 10 s: {}", trend.join(" "));
        if rss.grew() {
            grown.push(format!(
                "{pid}: {} -> {} (median), {} (end) KiB",
                rss.warm, rss.late, rss.end
            ));
        }
    }
    assert!(grown.is_empty(), "RSS grew after warm-up: {grown:?}");
}
