//! The one test harness: `TestEnv` (a temp dir, a fake node, a module
//! config), the real agents (`agent`), their protocol (`zbxd`), processes
//! and RSS (`process`), C programs, the leak audit (`leaks`), local servers
//! (`http`, `tls`). Crates include it as `pub mod common;` (a `pub` module
//! is not linted for what a crate leaves unused).

pub mod agent;
pub mod api;
pub mod cmonitor;
pub mod http;
pub mod leaks;
pub mod process;
pub mod tls;
pub mod zbxd;

pub use agent::*;
pub use api::*;
pub use cmonitor::*;
pub use http::*;
pub use leaks::*;
pub use process::*;
pub use zbxd::*;

use fake_exalate_node::{Auth, AuthHeader, ExpUnit, FakeNode, NodeConfig};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const SECRET: &str = "test-shared-secret-6f1d2a9c";
/// The per-relation secrets of [`TestEnv::with_relation_secrets`].
pub const SD_SECRET: &str = "service-desk-secret-0b7e51d3";
pub const EU_SECRET: &str = "jira-cloud-eu-secret-94c2a8f0";

/// The six queue names, in the contract's order.
pub const QUEUES: [&str; 6] = [
    "syncrequests",
    "blobrequests",
    "syncresponses",
    "blobresponses",
    "errorresponses",
    "bloberrorresponses",
];

/// valgrind that fails on any error or leak (see tests/valgrind.supp for
/// the two process-lifetime statics it is told about).
pub const VALGRIND: [&str; 6] = [
    "valgrind",
    "--error-exitcode=99",
    "--leak-check=full",
    "--keep-debuginfo=yes",
    concat!(
        "--suppressions=",
        env!("CARGO_MANIFEST_DIR"),
        "/tests/valgrind.supp"
    ),
    "--errors-for-leak-kinds=definite,indirect,possible",
];

/// Builds tests/c/module_host.c (the agent's module loader, in small) into
/// `dir`/`name`, with extra compiler flags (e.g. the 7.0 request layout).
pub fn build_module_host(dir: &Path, name: &str, flags: &[&str]) -> PathBuf {
    let exe = dir.join(name);
    let out = Command::new("cc")
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-g"])
        .args(flags)
        .arg("-o")
        .arg(&exe)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/c/module_host.c"
        ))
        .arg("-ldl")
        .output()
        .expect("run cc");
    assert!(out.status.success(), "cc failed: {}", describe(&out));
    exe
}

/// `exe`, run under `wrapper` (e.g. VALGRIND) when one is given.
pub fn wrapped(wrapper: &[&str], exe: &Path) -> Command {
    match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(exe);
            c
        }
        None => Command::new(exe),
    }
}

/// A fresh directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join("exalate-zabbix-tests")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn write_file(path: &Path, content: &str, mode: u32) {
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

pub fn describe(out: &Output) -> String {
    format!(
        "status {:?}, stdout {:?}, stderr {:?}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A fake node with the demo relations, HS256 auth, and a config naming it.
/// When it ends, the node's tokens are registered with the leak audit and
/// everything collected so far is audited (see `leaks`).
pub struct TestEnv {
    pub dir: PathBuf,
    pub node: FakeNode,
    pub config_path: PathBuf,
    /// The test's name: its directory's, and where its collected texts came from.
    pub name: String,
}

/// The robustness tests' name for it.
pub type Env = TestEnv;

impl TestEnv {
    pub fn new(name: &str) -> TestEnv {
        TestEnv::with_node(name, NodeConfig::demo())
    }

    pub fn with_node(name: &str, node: NodeConfig) -> TestEnv {
        let dir = temp_dir(name);
        let node = FakeNode::start(node.with_auth(
            Auth::Hs256 {
                secret: SECRET.as_bytes().to_vec(),
                issuer: "EXALATE".into(),
                exp_unit: ExpUnit::Millis,
            },
            AuthHeader::XExalateJwt,
        ))
        .unwrap();
        write_file(&dir.join("demo.secret"), &format!("{SECRET}\n"), 0o600);
        let config_path = dir.join("exalate_zabbix.toml");
        let env = TestEnv {
            dir,
            node,
            config_path,
            name: name.to_string(),
        };
        env.write_config(&env.node_section("demo", &[]));
        env
    }

    /// The demo node where "Service Desk" and "Jira Cloud/EU" accept only
    /// tokens minted with their own secrets (`sd.secret`, `eu.secret` in
    /// the test's directory), and a config giving each its own.
    pub fn with_relation_secrets(name: &str) -> TestEnv {
        let own = |secret: &str| Auth::Hs256 {
            secret: secret.as_bytes().to_vec(),
            issuer: "EXALATE".into(),
            exp_unit: ExpUnit::Millis,
        };
        let mut node = NodeConfig::demo();
        for (relation, secret) in [("Service Desk", SD_SECRET), ("Jira Cloud/EU", EU_SECRET)] {
            let data = node.relations.remove(relation).unwrap();
            node.relations
                .insert(relation.to_string(), data.with_auth(own(secret)));
        }
        let env = TestEnv::with_node(name, node);
        write_file(&env.dir.join("sd.secret"), SD_SECRET, 0o600);
        write_file(&env.dir.join("eu.secret"), &format!("{EU_SECRET}\n"), 0o600);
        env.write_config(&env.relation_secrets_section("demo", true));
        env
    }

    /// The node table of [`TestEnv::with_relation_secrets`]; when
    /// `node_secret` is false, no node `jwt_secret_file` and AllContent
    /// names the node's secret file as its own.
    pub fn relation_secrets_section(&self, name: &str, node_secret: bool) -> String {
        let file = |f: &str| self.dir.join(f).display().to_string();
        let (first, node_line) = if node_secret {
            (
                "\"AllContent\"".to_string(),
                format!("jwt_secret_file = \"{}\"\n", file("demo.secret")),
            )
        } else {
            (
                format!(
                    "{{ name = \"AllContent\", jwt_secret_file = \"{}\" }}",
                    file("demo.secret")
                ),
                String::new(),
            )
        };
        format!(
            "[nodes.{name}]\nurl = \"{}\"\nrelations = [{first},\n  {{ name = \"Service Desk\", jwt_secret_file = \"{}\" }},\n  {{ name = \"Jira Cloud/EU\", jwt_secret_file = \"{}\" }}]\n{node_line}",
            self.node.url(),
            file("sd.secret"),
            file("eu.secret"),
        )
    }

    /// A `[nodes.NAME]` table for the fake node, plus `extra` lines.
    pub fn node_section(&self, name: &str, extra: &[&str]) -> String {
        format!(
            "[nodes.{name}]\nurl = \"{}\"\nrelations = [\"AllContent\", \"Service Desk\", \"Jira Cloud/EU\"]\njwt_secret_file = \"{}\"\n{}\n",
            self.node.url(),
            self.dir.join("demo.secret").display(),
            extra.join("\n")
        )
    }

    /// `[defaults]` with `defaults` lines, then the node section with `extra`.
    pub fn config(&self, defaults: &[&str], extra: &[&str]) -> String {
        format!(
            "[defaults]\n{}\n{}",
            defaults.join("\n"),
            self.node_section("demo", extra)
        )
    }

    pub fn write_config(&self, text: &str) {
        write_file(&self.config_path, text, 0o640);
    }

    /// Asserts that `text` holds neither the secret, nor the 4.0 API's
    /// passwords and tokens (as written, or escaped in JSON), nor any token
    /// the node saw, nor anything JWT-shaped (the leak audit's rules, on
    /// this text now).
    pub fn assert_no_secrets(&self, text: &str) {
        let mut c = Collector::default();
        [SECRET, SD_SECRET, EU_SECRET]
            .iter()
            .for_each(|s| c.add_secret(s));
        for api_secret in [
            API_PASSWORD,
            API_TOKEN,
            fake_exalate_node::DEMO_API_PASSWORD,
            fake_exalate_node::DEMO_API_TOKEN,
        ] {
            c.add_secret(api_secret);
            let escaped = serde_json::to_string(api_secret).unwrap();
            c.add_secret(&escaped[1..escaped.len() - 1]);
        }
        tokens_of(&self.node).iter().for_each(|t| c.add_secret(t));
        c.collect("output", text);
        assert!(c.leaks().is_empty(), "leaked into output: {:?}", c.leaks());
    }

    /// `zabbix_agentd` with the module and this config, as a daemon whose
    /// values and log go to the leak audit.
    pub fn start_agent(&self, options: AgentOptions) -> Agent {
        Agent::start_audited(&self.name, &self.dir, &self.config_path, options)
    }

    /// `zabbix_agentd -t KEY` with the module loaded; returns its stdout.
    pub fn agent_test(&self, key: &str) -> String {
        agent_test(&self.dir, &self.config_path, key)
    }

    /// `zabbix_agent2 -t KEY` with the plugin; returns its stdout.
    pub fn agent2_test(&self, key: &str) -> String {
        agent2_test(&self.dir, &self.config_path, key)
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        for token in tokens_of(&self.node) {
            add_secret(&token);
        }
        [SD_SECRET, EU_SECRET].iter().for_each(|s| add_secret(s));
        if !std::thread::panicking() {
            audit();
        }
    }
}
