//! In-process benchmarks (cargo bench --bench inprocess; make bench):
//! 1. an item call through the module's own item function, on a cache hit and
//!    on a cache miss, against the floor: a bare ureq GET of the same URL on a
//!    kept-alive connection plus `serde_json::from_reader::<IgnoredAny>`;
//! 2. counting queues of 1k to 200k entries (time, MB/s) against parsing the
//!    same answer into `serde_json::Value`;
//! 3. a loaded node (every answer 600 ms late): stats against one count;
//! 4. a burst of one relation's items at once: requests to the node (six);
//! 5. agent 2's plugin: a healthy item beside N exports for a hung node;
//! 6. what the cache keeps after `queue.get` of 100 relations of ~250 KB.
//!
//! Everything runs against the fake node on loopback; figures are ratios
//! taken in one run, rounds interleaved so drift hits both sides alike.

pub mod common;

use common::{rss_kib, write_file, BenchEnv, BENCH_TOKEN};
use exalate_zabbix::agentd::{self, AgentRequest, AgentResult};
use exalate_zabbix::Monitor;
use fake_exalate_node::{FakeNode, RelationData};
use serde::de::IgnoredAny;
use std::ffi::{c_char, CStr, CString};
use std::io::BufReader;
use std::time::{Duration, Instant};

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let env = BenchEnv::new("bench-inprocess");
    let (node, config) = (&env.node, &env.config);
    // SAFETY: single-threaded here; the module reads it on its first item call.
    std::env::set_var("EXALATE_ZABBIX_CONFIG", config);

    println!("in-process item calls (fake node on loopback, 3-entry queue, keep-alive):");
    let hit = ["hit", "AllContent", "syncrequests"];
    let miss = ["miss", "AllContent", "syncrequests"];
    assert_eq!(item_count(&hit), 3);
    let hit_time = median_per_call(5, 20_000, || assert_eq!(item_count(&hit), 3));

    let url = format!(
        "{}/rest/issuehub/2.4/relations/AllContent/syncevents/syncrequests",
        node.url()
    );
    let agent = ureq::Agent::new_with_defaults();
    let floor = || {
        let response = agent
            .get(&url)
            .header("X-Exalate-Jwt", BENCH_TOKEN)
            .call()
            .unwrap();
        let reader = BufReader::new(response.into_body().into_reader());
        let _: IgnoredAny = serde_json::from_reader(reader).unwrap();
    };
    floor();
    assert_eq!(item_count(&miss), 3);
    let (mut miss_rounds, mut floor_rounds) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        miss_rounds.push(per_call(400, || assert_eq!(item_count(&miss), 3)));
        floor_rounds.push(per_call(400, floor));
    }
    let (miss_time, floor_time) = (median(miss_rounds), median(floor_rounds));
    println!("| measurement | per call | calls/s |");
    println!("|---|---|---|");
    row("exalate.queue.count, cache hit", hit_time);
    row("exalate.queue.count, cache miss (one GET)", miss_time);
    row(
        "floor: bare ureq GET + from_reader::<IgnoredAny>",
        floor_time,
    );
    println!(
        "cache miss / floor = {:.2}x (target <= 1.3x); cache hit is {:.0}x faster than a miss\n",
        miss_time.as_secs_f64() / floor_time.as_secs_f64(),
        miss_time.as_secs_f64() / hit_time.as_secs_f64()
    );

    println!("counting large queues (one GET each, cache off) vs parsing into serde_json::Value:");
    println!("| entries | answer MB | count | count MB/s | stats (6 queues) | Value parse | Value MB/s |");
    println!("|---|---|---|---|---|---|---|");
    let monitor = Monitor::open(config.clone()).unwrap();
    for n in [1_000u64, 10_000, 100_000, 200_000] {
        let mb = env.load_bulk(n);
        let rounds = if n >= 100_000 { 3 } else { 7 };
        let count = median_per_call(rounds, 1, || {
            assert_eq!(
                monitor.queue_count("miss", "Bulk", "syncrequests").unwrap(),
                n
            )
        });
        let stats = median_per_call(rounds, 1, || {
            assert!(monitor
                .relation_stats("miss", "Bulk")
                .unwrap()
                .starts_with(&format!("{{\"syncrequests\":{n},")))
        });
        let bulk_url = env.queue_url("Bulk", "syncevents/syncrequests");
        let value = median_per_call(rounds, 1, || {
            let response = agent
                .get(&bulk_url)
                .header("X-Exalate-Jwt", BENCH_TOKEN)
                .call()
                .unwrap();
            let mut body = response.into_body();
            let reader = BufReader::new(body.with_config().limit(u64::MAX).reader());
            let v: serde_json::Value = serde_json::from_reader(reader).unwrap();
            assert_eq!(v.as_array().unwrap().len() as u64, n);
        });
        println!(
            "| {n} | {mb:.1} | {} | {:.0} | {} | {} | {:.0} |",
            fmt(count),
            mb / count.as_secs_f64(),
            fmt(stats),
            fmt(value),
            mb / value.as_secs_f64()
        );
    }
    loaded_node(&env);
    // Before the rows that start hundreds of threads: their freed arenas
    // would blur the RSS this table prints.
    cache_budget(&env);
    burst_of_items(&env);
    hung_exports(&env);
}

/// The six counts, stats and two gets of one relation asked at once (as
/// agent 2 serves them) of a node answering 1 s late, cache_ttl = 60:
/// requests to the node (target: six, one per queue).
fn burst_of_items(env: &BenchEnv) {
    let slow = FakeNode::start(
        fake_exalate_node::NodeConfig::demo()
            .with_base_path("")
            .with_response_delay(Duration::from_secs(1)),
    )
    .unwrap();
    let config = env.dir.join("burst.toml");
    write_file(
        &config,
        &format!(
            "[nodes.slow]\nurl = \"{}\"\ntoken_file = \"{}\"\ncache_ttl = 60\ntimeout = 10\n",
            slow.url(),
            env.dir.join("bench.jwt").display()
        ),
        0o600,
    );
    let monitor = Monitor::open(config).unwrap();
    let queues = [
        "syncrequests",
        "blobrequests",
        "syncresponses",
        "blobresponses",
        "errorresponses",
        "bloberrorresponses",
    ];
    let started = Instant::now();
    std::thread::scope(|s| {
        let monitor = &monitor;
        let mut calls = Vec::new();
        for queue in queues {
            calls.push(s.spawn(move || {
                monitor.queue_count("slow", "AllContent", queue).unwrap();
            }));
        }
        calls.push(s.spawn(|| {
            monitor.relation_stats("slow", "AllContent").unwrap();
        }));
        for queue in ["errorresponses", "syncrequests"] {
            calls.push(s.spawn(move || {
                monitor.queue_get("slow", "AllContent", queue).unwrap();
            }));
        }
        calls.into_iter().for_each(|c| c.join().unwrap());
    });
    println!(
        "\na burst of one relation's items at once (6 counts, stats, 2 gets; node 1 s late, cache_ttl 60): {} requests to the node (target: six), all answered in {}",
        slow.requests().len(),
        fmt(started.elapsed())
    );
}

/// Agent 2's plugin, run in this process on a socket of ours, sent N
/// exports for a node that accepts connections and never answers, then one
/// for a healthy node: how long the healthy one waits (target: within its
/// own timeout, whatever N), and when the last hung one is answered.
fn hung_exports(env: &BenchEnv) {
    use exalate_zabbix::agent2::frame;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixListener;
    const TIMEOUT: u64 = 3;
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming() {
            held.push(stream);
        }
    });
    let config = env.dir.join("hung.toml");
    let token = env.dir.join("bench.jwt");
    write_file(
        &config,
        &format!(
            "[defaults]\ncache_ttl = 0\n[nodes.healthy]\nurl = \"{}\"\ntoken_file = \"{}\"\n[nodes.hung]\nurl = \"{silent_url}\"\ntoken_file = \"{}\"\n",
            env.node.url(),
            token.display(),
            token.display()
        ),
        0o600,
    );
    println!("\nagent 2's plugin: a healthy item sent after N exports for a node that never answers (item timeout {TIMEOUT} s; agent 2 waits {TIMEOUT}.5 s):");
    println!("| N hung exports | healthy answered after | module.version after | last hung answer after |");
    println!("|---|---|---|---|");
    for n in [0u64, 256, 1024, 4000] {
        let socket = env.dir.join(format!("hung-{n}.sock"));
        let _ = std::fs::remove_file(&socket);
        let listener = UnixListener::bind(&socket).unwrap();
        let args = ["plugin".into(), socket.into_os_string(), "false".into()];
        let run = std::thread::spawn(move || exalate_zabbix::agent2::run(&args));
        let (mut stream, _) = listener.accept().unwrap();
        let mut send = |m: serde_json::Value| stream.write_all(&frame::encode(&m)).unwrap();
        send(
            serde_json::json!({"id": 1, "type": 8, "global_options": {"Timeout": TIMEOUT},
            "private_options": {"Name": "Exalate", "Nodes": [{"Name": "Config", "Nodes": [{"Value": base64(config.to_str().unwrap().as_bytes())}]}]}}),
        );
        let export = |id: u64, key: &str, params: &[&str]| {
            let mut m = serde_json::json!({"id": id, "type": 6, "key": key, "timeout": TIMEOUT});
            if !params.is_empty() {
                m["parameters"] = params.into();
            }
            m
        };
        // Warm: config read, connection up.
        send(export(
            2,
            "exalate.queue.count",
            &["healthy", "AllContent", "syncrequests"],
        ));
        let mut reader = stream.try_clone().unwrap();
        let mut answer = || loop {
            let mut header = [0u8; 8];
            reader.read_exact(&mut header).unwrap();
            let mut body = vec![0; u32::from_le_bytes(header[4..].try_into().unwrap()) as usize];
            reader.read_exact(&mut body).unwrap();
            let m: serde_json::Value = serde_json::from_slice(&body).unwrap();
            if m["type"] == 7 {
                return m;
            }
        };
        assert_eq!(answer()["value"], "3");
        let started = Instant::now();
        let mut send = |m: serde_json::Value| stream.write_all(&frame::encode(&m)).unwrap();
        for id in 0..n {
            send(export(
                1000 + id,
                "exalate.queue.count",
                &["hung", "R", "syncrequests"],
            ));
        }
        send(export(
            3,
            "exalate.queue.count",
            &["healthy", "AllContent", "syncrequests"],
        ));
        send(export(4, "exalate.module.version", &[]));
        let (mut healthy, mut version, mut last_hung) = (None, None, Duration::ZERO);
        for _ in 0..n + 2 {
            let m = answer();
            match m["id"].as_u64().unwrap() {
                3 => healthy = Some(started.elapsed()),
                4 => version = Some(started.elapsed()),
                _ => last_hung = started.elapsed(),
            }
        }
        println!(
            "| {n} | {} | {} | {} |",
            fmt(healthy.unwrap()),
            fmt(version.unwrap()),
            if n == 0 {
                "-".to_string()
            } else {
                fmt(last_hung)
            }
        );
        drop(stream);
        drop(reader);
        let _ = run.join();
    }
}

/// Standard base64 with padding, as Go encodes an option's value.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A node that answers every request 600 ms late (a Jira under load, a far
/// Exalate Cloud): stats asks the six queues at once.
fn loaded_node(env: &BenchEnv) {
    const DELAY: Duration = Duration::from_millis(600);
    let slow = FakeNode::start(
        fake_exalate_node::NodeConfig::demo()
            .with_base_path("")
            .with_response_delay(DELAY),
    )
    .unwrap();
    let config = env.dir.join("loaded.toml");
    write_file(
        &config,
        &format!(
            "[nodes.slow]\nurl = \"{}\"\ntoken_file = \"{}\"\ncache_ttl = 0\ntimeout = 10\n",
            slow.url(),
            env.dir.join("bench.jwt").display()
        ),
        0o600,
    );
    let monitor = Monitor::open(config).unwrap();
    let (mut one, mut six) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        one.push(per_call(1, || {
            monitor
                .queue_count("slow", "AllContent", "syncrequests")
                .unwrap();
        }));
        six.push(per_call(1, || {
            monitor.relation_stats("slow", "AllContent").unwrap();
        }));
    }
    let (one, six) = (median(one), median(six));
    println!(
        "\na loaded node, every answer {} ms late (cache off): one queue {}, relation.stats (six queues) {}: {:.2}x (target <= 1.25x; one after another it was 6x)",
        DELAY.as_millis(),
        fmt(one),
        fmt(six),
        six.as_secs_f64() / one.as_secs_f64()
    );
}

/// `queue.get` of 100 relations of ~250 KB answers, with the default cache
/// budget and a small one: what the cache counts and what the process grew.
fn cache_budget(env: &BenchEnv) {
    for n in 0..100 {
        env.node.add_relation(
            &format!("R{n}"),
            RelationData::with_counts([900, 0, 0, 0, 0, 0]),
        );
    }
    let answer = env.queue_url("R0", "syncevents/syncrequests");
    let answer_kb = ureq::get(&answer)
        .header("X-Exalate-Jwt", BENCH_TOKEN)
        .call()
        .unwrap()
        .into_body()
        .read_to_vec()
        .unwrap()
        .len() as f64
        / 1e3;
    let text_kb = Monitor::open(env.config.clone())
        .unwrap()
        .queue_get("miss", "R0", "syncrequests")
        .unwrap()
        .len() as f64
        / 1e3;
    println!(
        "\nthe cache after exalate.queue.get of 100 relations, answers of {answer_kb:.0} KB ({text_kb:.0} KB of text without payloads), cache_ttl 3600:"
    );
    println!("| cache_max_bytes | cache holds | process RSS grew |");
    println!("|---|---|---|");
    for budget in [None, Some(8u64 << 20)] {
        let config = env.dir.join("budget.toml");
        let url = env.node.url();
        let token = env.dir.join("bench.jwt");
        let budget_line = budget.map_or(String::new(), |b| format!("cache_max_bytes = {b}\n"));
        write_file(
            &config,
            &format!(
                "[nodes.b]\nurl = \"{url}\"\ntoken_file = \"{}\"\ncache_ttl = 3600\n{budget_line}",
                token.display()
            ),
            0o600,
        );
        let monitor = Monitor::open(config).unwrap();
        let before = rss_bytes();
        for n in 0..100 {
            monitor
                .queue_get("b", &format!("R{n}"), "syncrequests")
                .unwrap();
        }
        let held = monitor.cache_bytes();
        let grew = rss_bytes().saturating_sub(before);
        let limit = budget.unwrap_or(exalate_zabbix::config::DEFAULT_CACHE_MAX_BYTES);
        assert!(held as u64 <= limit);
        println!(
            "| {} MiB | {:.1} MiB | {:.1} MiB |",
            limit >> 20,
            held as f64 / 1048576.0,
            grew as f64 / 1048576.0
        );
    }
}

/// This process's resident set, from /proc.
fn rss_bytes() -> u64 {
    rss_kib(std::process::id()).unwrap() * 1024
}

/// One call of exalate.queue.count through the module's item function,
/// with an agent-shaped request and result, freed as the agent frees them.
fn item_count(params: &[&str]) -> u64 {
    let list = agentd::zbx_module_item_list();
    // SAFETY: the module's table, entry 0 is exalate.queue.count.
    let item = unsafe { &*list };
    // SAFETY: a static C string.
    assert_eq!(
        unsafe { CStr::from_ptr(item.key) }.to_str().unwrap(),
        "exalate.queue.count"
    );
    let owned: Vec<CString> = params.iter().map(|p| CString::new(*p).unwrap()).collect();
    let mut pointers: Vec<*mut c_char> = owned.iter().map(|p| p.as_ptr() as *mut c_char).collect();
    let mut request = AgentRequest {
        key: c"exalate.queue.count".as_ptr() as *mut c_char,
        nparam: pointers.len() as i32,
        params: pointers.as_mut_ptr(),
        lastlogsize: 0,
        mtime: 0,
    };
    // SAFETY: all-zero is the agent's initial AGENT_RESULT.
    let mut result: AgentResult = unsafe { std::mem::zeroed() };
    // SAFETY: valid request and result for the call.
    let rc = unsafe { (item.function.unwrap())(&mut request, &mut result) };
    // SAFETY: strings in the result come from malloc.
    unsafe {
        libc::free(result.msg.cast());
        libc::free(result.text.cast());
        libc::free(result.str_.cast());
    }
    assert_eq!(rc.0, agentd::SYSINFO_RET_OK);
    result.ui64
}

fn per_call(iterations: u32, mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..iterations {
        f();
    }
    start.elapsed() / iterations
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn median_per_call(rounds: usize, iterations: u32, mut f: impl FnMut()) -> Duration {
    median((0..rounds).map(|_| per_call(iterations, &mut f)).collect())
}

fn fmt(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 0.1 {
        format!("{s:.2} s")
    } else if s >= 1e-4 {
        format!("{:.1} ms", s * 1e3)
    } else if s >= 1e-6 {
        format!("{:.1} µs", s * 1e6)
    } else {
        format!("{:.0} ns", s * 1e9)
    }
}

fn row(name: &str, d: Duration) {
    println!("| {name} | {} | {:.0} |", fmt(d), 1.0 / d.as_secs_f64());
}
