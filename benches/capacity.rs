//! Capacity (cargo bench --bench capacity; make bench): how many relations
//! one agent keeps fresh. exalate.relation.stats (one call per relation and
//! interval) with cache_ttl = 0, the fake node answering every request 100
//! ms or 600 ms late; zabbix_agentd with StartAgents=3 (the package default)
//! against zabbix_agent2 with the plugin; 16 concurrent clients (the
//! server's pollers) and one client asking in turn (active checks). Each
//! cell runs a few seconds: stats/s, and the relations one agent keeps
//! fresh at a one-minute interval at that rate.

pub mod common;

use common::*;
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
