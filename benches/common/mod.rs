//! The benchmarks' helpers: the test harness (`tests/common`), and `BenchEnv`,
//! a node with a static token, a module config with a cached and an uncached node.

#[path = "../../tests/common/mod.rs"]
pub mod harness;

pub use harness::*;

use fake_exalate_node::{Auth, AuthHeader, FakeNode, NodeConfig, RelationData};
use std::path::PathBuf;

/// For benchmarks: a fake node with the demo relations and a static token,
/// and a config with node `hit` (cache on) and node `miss` (cache off).
pub struct BenchEnv {
    pub node: FakeNode,
    pub dir: PathBuf,
    pub config: PathBuf,
}

pub const BENCH_TOKEN: &str = "bench-static-token-0123456789";

impl BenchEnv {
    pub fn new(name: &str) -> BenchEnv {
        let node = FakeNode::start(NodeConfig::demo().with_base_path("").with_auth(
            Auth::StaticToken(BENCH_TOKEN.into()),
            AuthHeader::XExalateJwt,
        ))
        .unwrap();
        let dir = temp_dir(name);
        let token_file = dir.join("bench.jwt");
        write_file(&token_file, BENCH_TOKEN, 0o600);
        let config = dir.join("exalate_zabbix.toml");
        let node_table = |name: &str, ttl: u32| {
            format!(
                "[nodes.{name}]\nurl = \"{}\"\nrelations = [\"AllContent\"]\ntoken_file = \"{}\"\n\
                 cache_ttl = {ttl}\ntimeout = 30\nmax_response_bytes = 536870912\n",
                node.url(),
                token_file.display()
            )
        };
        write_file(
            &config,
            &format!("{}\n{}", node_table("hit", 3600), node_table("miss", 0)),
            0o600,
        );
        BenchEnv { node, dir, config }
    }

    /// Gives relation "Bulk" `n` sync requests and error responses (a tenth
    /// of that in three other queues); returns its syncrequests answer in MB.
    pub fn load_bulk(&self, n: u64) -> f64 {
        self.node.add_relation(
            "Bulk",
            RelationData::with_counts([n, n / 10, n / 10, 0, n, n / 10]),
        );
        let body = fake_exalate_node::queue_body(
            "Bulk",
            &RelationData::with_counts([n, 0, 0, 0, 0, 0]),
            fake_exalate_node::Queue::SyncRequests,
        );
        body.len() as f64 / 1e6
    }

    /// The URL of a queue on the fake node.
    pub fn queue_url(&self, relation: &str, path: &str) -> String {
        format!(
            "{}/rest/issuehub/2.4/relations/{relation}/{path}",
            self.node.url()
        )
    }
}
