//! Through the real zabbix_agentd (cargo bench --bench agent; make bench):
//! values per second for exalate.queue.count on a cache hit and a miss,
//! against the agent's own agent.ping (the ceiling) and the way users do it
//! today, a UserParameter running `curl | jq length` (the same fake node, the
//! same 8 concurrent clients, StartAgents=3); in the same rounds, through
//! the real zabbix_agent2 and the plugin: agent 2's own agent.ping, the
//! plugin's floor (exalate.module.version: a constant, no config, cache or
//! node, the least a loadable plugin can answer), its cache hit and miss; then peak RSS and time of
//! `zabbix_agentd -t` counting queues of 1k to 200k entries, against
//! `-t agent.ping` and against parsing the answer into serde_json::Value.

pub mod common;

use common::*;
use std::io::BufReader;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const CLIENTS: usize = 8;
const RUN_FOR: Duration = Duration::from_secs(2);
const ROUNDS: usize = 3;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    // Child mode: the comparator, parse one answer into a Value.
    if let Some(i) = args.iter().position(|a| a == "--parse-value") {
        let response = ureq::get(&args[i + 1])
            .header("X-Exalate-Jwt", BENCH_TOKEN)
            .call()
            .unwrap();
        let mut body = response.into_body();
        let reader = BufReader::new(body.with_config().limit(u64::MAX).reader());
        let value: serde_json::Value = serde_json::from_reader(reader).unwrap();
        println!("{}", value.as_array().unwrap().len());
        return;
    }
    for tool in [
        "/usr/bin/curl",
        "/usr/bin/jq",
        "/usr/bin/time",
        AGENTD,
        AGENT2,
    ] {
        assert!(
            Path::new(tool).exists(),
            "{tool} missing: run `make bench`, which installs it"
        );
    }

    let env = BenchEnv::new("bench-agent");
    let (node, dir, config) = (&env.node, &env.dir, &env.config);
    // curl reads the header from a file: the token stays off command lines.
    let header_file = dir.join("curl.headers");
    write_file(
        &header_file,
        &format!("X-Exalate-Jwt: {BENCH_TOKEN}\n"),
        0o600,
    );
    let user_parameter = format!(
        "UserParameter=curl.count[*],curl -s -H @{} '{}' | jq length",
        header_file.display(),
        env.queue_url("$1", "syncevents/syncrequests")
    );
    let agent = AgentDaemon::start_with(dir, config, 3, &user_parameter);
    let agent2 = AgentDaemon::start_agent2(dir, config, "");

    println!(
        "through zabbix_agentd {} (StartAgents=3) and zabbix_agent2 {} (the plugin), {CLIENTS} clients; median of {ROUNDS} interleaved rounds of {} s:",
        agent_version(AGENTD),
        agent_version(AGENT2),
        RUN_FOR.as_secs()
    );
    let keys = [
        (&agent, "agent.ping", "1"),
        (
            &agent,
            "exalate.queue.count[hit,AllContent,syncrequests]",
            "3",
        ),
        (
            &agent,
            "exalate.queue.count[miss,AllContent,syncrequests]",
            "3",
        ),
        (&agent, "curl.count[AllContent]", "3"),
        (&agent2, "agent.ping", "1"),
        (&agent2, "exalate.module.version", exalate_zabbix::VERSION),
        (
            &agent2,
            "exalate.queue.count[hit,AllContent,syncrequests]",
            "3",
        ),
        (
            &agent2,
            "exalate.queue.count[miss,AllContent,syncrequests]",
            "3",
        ),
    ];
    let mut rounds = vec![Vec::new(); keys.len()];
    for _ in 0..ROUNDS {
        for (i, (agent, key, expected)) in keys.iter().enumerate() {
            rounds[i].push(rate(agent, key, expected));
        }
    }
    let medians: Vec<f64> = rounds
        .into_iter()
        .map(|mut r| {
            r.sort_by(f64::total_cmp);
            r[r.len() / 2]
        })
        .collect();
    println!("| agent | key | values/s |");
    println!("|---|---|---|");
    for ((agent, key, _), rate) in keys.iter().zip(&medians) {
        let name = if std::ptr::eq(*agent, &agent2) {
            "zabbix_agent2"
        } else {
            "zabbix_agentd"
        };
        println!("| {name} | {key} | {rate:.0} |");
    }
    let [ping, hit, miss, curl, ping2, floor2, hit2, miss2] = medians[..] else {
        unreachable!()
    };
    println!(
        "module: cache hit / agent.ping = {:.2}x (target >= 0.8x); cache miss / curl|jq = {:.1}x (target >= 10x)",
        hit / ping,
        miss / curl
    );
    println!(
        "plugin: cache hit / agent 2's agent.ping = {:.2}x (target >= 0.8x); cache miss / agent 2's agent.ping = {:.2}x; plugin hit / module hit = {:.2}x",
        hit2 / ping2,
        miss2 / ping2,
        hit2 / hit
    );
    println!(
        "plugin floor (exalate.module.version) / agent 2's agent.ping = {:.2}x: the most any loadable plugin gets; cache hit / floor = {:.2}x\n",
        floor2 / ping2,
        hit2 / floor2
    );
    // Where a plugin value's time goes: CPU of agent 2 and of the plugin
    // process per value, against agent 2's own agent.ping.
    let plugin = plugin_processes(agent2.pid())[0];
    let cpu_per_value = |key: &str, expected: &str| {
        let before = (cpu_ticks(agent2.pid()), cpu_ticks(plugin));
        let start = Instant::now();
        let values = rate(&agent2, key, expected) * start.elapsed().as_secs_f64();
        let per = |ticks: u64| ticks as f64 / ticks_per_second() * 1e6 / values;
        (
            per(cpu_ticks(agent2.pid()) - before.0),
            per(cpu_ticks(plugin) - before.1),
        )
    };
    let (ping_agent, _) = cpu_per_value("agent.ping", "1");
    let (floor_agent, floor_plugin) =
        cpu_per_value("exalate.module.version", exalate_zabbix::VERSION);
    let (hit_agent, hit_plugin) =
        cpu_per_value("exalate.queue.count[hit,AllContent,syncrequests]", "3");
    println!(
        "CPU per value through agent 2: agent.ping {ping_agent:.0} µs (agent 2); plugin floor {floor_agent:.0} µs (agent 2) + {floor_plugin:.0} µs (plugin); plugin cache hit {hit_agent:.0} µs (agent 2) + {hit_plugin:.0} µs (plugin)\n\
         (agent 2 spends {:.1}x its agent.ping's CPU relaying a value to and from any loadable plugin)\n",
        floor_agent / ping_agent
    );
    drop(agent2);
    drop(agent);

    println!("zabbix_agentd -t, one process each (peak RSS from /usr/bin/time -v):");
    println!("| entries | answer MB | count: time, MB/s | count RSS above agent.ping | stats: time, RSS above | Value parse: time, RSS |");
    println!("|---|---|---|---|---|---|");
    let conf = agent_config(dir, free_port(), 1);
    let (_, ping_rss) = timed(&["-c", conf.to_str().unwrap(), "-t", "agent.ping"], config);
    for n in [1_000u64, 10_000, 100_000, 200_000] {
        let mb = env.load_bulk(n);
        let (count_time, count_rss) = timed(
            &[
                "-c",
                conf.to_str().unwrap(),
                "-t",
                "exalate.queue.count[miss,Bulk,syncrequests]",
            ],
            config,
        );
        let (stats_time, stats_rss) = timed(
            &[
                "-c",
                conf.to_str().unwrap(),
                "-t",
                "exalate.relation.stats[miss,Bulk]",
            ],
            config,
        );
        let url = format!(
            "{}/rest/issuehub/2.4/relations/Bulk/syncevents/syncrequests",
            node.url()
        );
        let (value_time, value_rss) = time_command(
            Command::new(std::env::current_exe().unwrap()).args(["--parse-value", &url]),
        );
        println!(
            "| {n} | {mb:.1} | {:.3} s, {:.0} MB/s | {:+.1} MiB | {:.3} s, {:+.1} MiB | {:.3} s, {:.1} MiB |",
            count_time.as_secs_f64(),
            mb / count_time.as_secs_f64(),
            (count_rss - ping_rss) as f64 / 1024.0,
            stats_time.as_secs_f64(),
            (stats_rss - ping_rss) as f64 / 1024.0,
            value_time.as_secs_f64(),
            value_rss as f64 / 1024.0
        );
    }
    println!(
        "(zabbix_agentd -t agent.ping itself: {:.1} MiB peak RSS)",
        ping_rss as f64 / 1024.0
    );
    dense_queues(&env, &conf, ping_rss);
}

/// ~15 MiB answers made of tiny entries (the most entries per byte) and of
/// realistic ones: peak RSS of `-t` get and count above `-t agent.ping`.
fn dense_queues(env: &BenchEnv, conf: &Path, ping_rss: i64) {
    use fake_exalate_node::{queue_body, Queue, RelationData};
    const TARGET_BYTES: usize = 15 << 20;
    println!("\ndense queues, ~15 MiB answers, zabbix_agentd -t (peak RSS above -t agent.ping):");
    println!("| entries | answer MiB | queue.get RSS | get / answer | queue.count RSS |");
    println!("|---|---|---|---|---|");
    for tiny in [true, false] {
        let data = |n: u64| {
            let d = RelationData::with_counts([n, 0, 0, 0, 0, 0]);
            if tiny {
                d.tiny()
            } else {
                d
            }
        };
        let per_entry = queue_body("Dense", &data(1000), Queue::SyncRequests).len() / 1000;
        let n = (TARGET_BYTES / per_entry) as u64;
        let answer = queue_body("Dense", &data(n), Queue::SyncRequests).len() as f64;
        env.node.add_relation("Dense", data(n));
        let run = |key: &str| timed(&["-c", conf.to_str().unwrap(), "-t", key], &env.config).1;
        let get = (run("exalate.queue.get[miss,Dense,syncrequests]") - ping_rss) as f64 * 1024.0;
        let count =
            (run("exalate.queue.count[miss,Dense,syncrequests]") - ping_rss) as f64 * 1024.0;
        println!(
            "| {n} {} | {:.1} | {:+.1} MiB | {:.2}x (target <= 3x) | {:+.1} MiB (target <= 8) |",
            if tiny { "tiny" } else { "realistic" },
            answer / 1048576.0,
            get / 1048576.0,
            get / answer,
            count / 1048576.0
        );
    }
}

/// Values per second for `key` from CLIENTS clients for RUN_FOR; every
/// answer must be `expected`.
fn rate(agent: &AgentDaemon, key: &str, expected: &str) -> f64 {
    assert_eq!(agent.get(key), Reply::Value(expected.into()), "{key}");
    let start = Instant::now();
    let total: u64 = std::thread::scope(|s| {
        let workers: Vec<_> = (0..CLIENTS)
            .map(|_| {
                s.spawn(|| {
                    let mut n = 0u64;
                    while start.elapsed() < RUN_FOR {
                        assert_eq!(agent.get(key), Reply::Value(expected.into()), "{key}");
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    total as f64 / start.elapsed().as_secs_f64()
}

/// `zabbix_agentd ARGS` under /usr/bin/time -v: wall time and peak RSS (KiB).
fn timed(args: &[&str], config: &Path) -> (Duration, i64) {
    let mut cmd = Command::new(AGENTD);
    cmd.args(args).env("EXALATE_ZABBIX_CONFIG", config);
    time_command(&mut cmd)
}

fn time_command(cmd: &mut Command) -> (Duration, i64) {
    let program = cmd.get_program().to_owned();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let envs: Vec<_> = cmd
        .get_envs()
        .map(|(k, v)| (k.to_owned(), v.map(|v| v.to_owned())))
        .collect();
    let mut timed = Command::new("/usr/bin/time");
    timed.arg("-v").arg(program).args(args);
    for (k, v) in envs {
        if let Some(v) = v {
            timed.env(k, v);
        }
    }
    let start = Instant::now();
    let out = timed.output().unwrap();
    let took = start.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && !stdout.contains("ZBX_NOTSUPPORTED"),
        "{}",
        describe(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let rss = stderr
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|v| v.parse().ok())
        .expect("time -v reports the peak RSS");
    (took, rss)
}

/// User and system CPU time of a process so far, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) as f64 }
}

fn agent_version(program: &str) -> String {
    let out = Command::new(program).arg("-V").output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .last()
        .unwrap_or("")
        .to_string()
}
