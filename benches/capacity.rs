//! Capacity (cargo bench --bench capacity; make bench): how many relations
//! one agent keeps fresh. exalate.relation.stats (one call per relation and
//! interval) with cache_ttl = 0, the fake node answering every request 100
//! ms or 600 ms late; zabbix_agentd with StartAgents=3 (the package default)
//! against zabbix_agent2 with the plugin; 16 concurrent clients (the
//! server's pollers) and one client asking in turn (active checks). Each
//! cell runs a few seconds: stats/s, and the relations one agent keeps
//! fresh at a one-minute interval at that rate. Then a node of many
//! connections watched two ways: six queues per connection (issuehub 2.4,
//! one stats item per relation) against the node's totals and connection
//! statuses (issuehub 4.0, three items per node): requests per poll and
//! the time one round of polls takes through zabbix_agentd.

pub mod common;

use common::*;
use fake_exalate_node::{Api, Connection, FakeNode, NodeConfig};
use std::time::{Duration, Instant};

/// How long each cell's clients start new calls.
const RUN_FOR: Duration = Duration::from_secs(4);
const KEY: &str = "exalate.relation.stats[cap,AllContent]";

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let env = BenchEnv::new("bench-capacity");
    let config = env.dir.join("capacity.toml");
    write_file(
        &config,
        &format!(
            "[nodes.cap]\nurl = \"{}\"\nrelations = [\"AllContent\"]\ntoken_file = \"{}\"\n\
             cache_ttl = 0\ntimeout = 10\n",
            env.node.url(),
            env.dir.join("bench.jwt").display()
        ),
        0o600,
    );
    let agentd = AgentDaemon::start(&env.dir, &config, 3);
    let agent2 = AgentDaemon::start_agent2(&env.dir, &config, "");
    let agents = [
        ("zabbix_agentd, StartAgents=3", &agentd),
        ("zabbix_agent2 + plugin", &agent2),
    ];
    println!(
        "capacity: {KEY}, cache_ttl = 0, each cell {} s of calls; relations/min = stats/s x 60 (one stats call per relation a minute)",
        RUN_FOR.as_secs()
    );
    println!("| agent | clients | node latency | stats/s | relations per minute |");
    println!("|---|---|---|---|---|");
    for latency in [100u64, 600] {
        env.node.set_response_delay(Duration::from_millis(latency));
        for (name, agent) in agents {
            for (clients, what) in [(16, "16 (server pollers)"), (1, "1 in turn (active)")] {
                let rate = stats_rate(agent, clients);
                println!(
                    "| {name} | {what} | {latency} ms | {rate:.1} | {:.0} |",
                    rate * 60.0
                );
            }
        }
    }
    drop((agentd, agent2));
    node_totals(&env);
}

/// A node of `n` connections, answering every request 100 ms late, polled
/// once round by 16 clients through zabbix_agentd (StartAgents=3): every
/// relation's stats (2.4), or the node's two totals and its connections
/// (4.0). Requests as the node counted them.
fn node_totals(env: &BenchEnv) {
    println!();
    println!("node totals: one poll of a node with N connections, node answering in 100 ms, zabbix_agentd StartAgents=3, 16 clients, cache_ttl = 0");
    println!("| connections | 2.4: stats per relation, requests | 2.4: round | 4.0: totals + connections, requests | 4.0: round | 4.0 answers, bytes |");
    println!("|---|---|---|---|---|---|");
    let password = env.dir.join("api.password");
    write_file(&password, "bench-api-password-42", 0o600);
    for n in [10usize, 100, 300] {
        let names: Vec<String> = (0..n).map(|i| format!("connection-{i:04}")).collect();
        let mut config = NodeConfig::default()
            .with_auth(
                fake_exalate_node::Auth::StaticToken(BENCH_TOKEN.into()),
                fake_exalate_node::AuthHeader::XExalateJwt,
            )
            .with_api(
                Api::default()
                    .with_basic("bench", "bench-api-password-42")
                    .with_totals(40 * n as u64, 7 * n as u64)
                    .with_connections(names.iter().map(|c| Connection::new(c, "ACTIVE"))),
            );
        for name in &names {
            config = config.with_relation(name, [3, 1, 2, 0, 2, 1]);
        }
        let node = FakeNode::start(config).unwrap();
        node.set_response_delay(Duration::from_millis(100));
        let relations: Vec<String> = names.iter().map(|c| format!("\"{c}\"")).collect();
        let file = env.dir.join(format!("totals-{n}.toml"));
        write_file(
            &file,
            &format!(
                "[nodes.big]\nurl = \"{}\"\nrelations = [{}]\ntoken_file = \"{}\"\n\
                 api_user = \"bench\"\napi_password_file = \"{}\"\ncache_ttl = 0\ntimeout = 30\n",
                node.url(),
                relations.join(", "),
                env.dir.join("bench.jwt").display(),
                password.display()
            ),
            0o600,
        );
        let agentd = AgentDaemon::start(&env.dir, &file, 3);
        let stats_keys: Vec<String> = names
            .iter()
            .map(|c| format!("exalate.relation.stats[big,\"{c}\"]"))
            .collect();
        let node_keys: Vec<String> = [
            "exalate.node.queue[big,outgoing]",
            "exalate.node.queue[big,incoming]",
            "exalate.node.connections[big]",
        ]
        .map(String::from)
        .to_vec();
        let mut row = format!("| {n} |");
        let mut answer_bytes = 0;
        for keys in [&stats_keys, &node_keys] {
            node.clear_requests();
            let (round, bytes) = poll_round(&agentd, keys);
            answer_bytes = bytes;
            let requests = node.requests().len();
            row += &format!(" {requests} | {:.2} s |", round.as_secs_f64());
        }
        println!("{row} {answer_bytes} |");
    }
}

/// Asks every key once, 16 clients at a time; every answer must be a
/// value. Gives the round's time and the answers' bytes.
fn poll_round(agent: &AgentDaemon, keys: &[String]) -> (Duration, usize) {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let bytes = std::sync::atomic::AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..16 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(key) = keys.get(i) else { break };
                let value = agent.get(key).value().to_string();
                assert!(!value.is_empty(), "{key}");
                bytes.fetch_add(value.len(), std::sync::atomic::Ordering::Relaxed);
            });
        }
    });
    (start.elapsed(), bytes.into_inner())
}

/// Stats calls per second from `clients` clients asking one after another
/// for RUN_FOR; every answer must be the relation's stats. The time runs
/// until the last call started has answered.
fn stats_rate(agent: &AgentDaemon, clients: usize) -> f64 {
    let check = |reply: Reply| {
        let value = reply.value().to_string();
        assert!(value.starts_with("{\"syncrequests\":3,"), "{value}");
    };
    check(agent.get(KEY));
    let start = Instant::now();
    let total: u64 = std::thread::scope(|s| {
        let workers: Vec<_> = (0..clients)
            .map(|_| {
                s.spawn(|| {
                    let mut n = 0u64;
                    while start.elapsed() < RUN_FOR {
                        check(agent.get(KEY));
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
