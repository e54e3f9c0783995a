//! Shared test harness: temp dirs, a fake node with its config file, the
//! real `zabbix_agentd` with the module and the real `zabbix_agent2` with
//! the plugin (one-shot `-t` and as daemons), and a passive-check client
//! speaking the agent's ZBXD protocol (Debian ships no zabbix_get).
#![allow(dead_code)]

use fake_exalate_node::{Auth, AuthHeader, ExpUnit, FakeNode, NodeConfig, RelationData};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const SECRET: &str = "test-shared-secret-6f1d2a9c";
pub const AGENTD: &str = "/usr/sbin/zabbix_agentd";
pub const AGENT2: &str = "/usr/sbin/zabbix_agent2";

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

/// A fresh directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join("exalate-zabbix-tests")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// target/<profile>: where cargo put the cdylib next to this test binary.
pub fn target_profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// The cdylib cargo built for this test run (`cargo test` leaves it in
/// deps/; only `cargo build` copies it up a level).
pub fn module_path() -> PathBuf {
    let path = target_profile_dir()
        .join("deps")
        .join("libexalate_zabbix.so");
    assert!(path.exists(), "{} not built", path.display());
    path
}

pub fn write_file(path: &Path, content: &str, mode: u32) {
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A fake node with the demo relations, HS256 auth, and a config naming it.
pub struct TestEnv {
    pub dir: PathBuf,
    pub node: FakeNode,
    pub config_path: PathBuf,
}

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
        };
        env.write_config(&env.node_section("demo", &[]));
        env
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

    pub fn write_config(&self, text: &str) {
        write_file(&self.config_path, text, 0o640);
    }

    /// Asserts that `text` holds neither the secret nor any token the node saw.
    pub fn assert_no_secrets(&self, text: &str) {
        assert!(!text.contains(SECRET), "the secret leaked into output");
        for request in self.node.requests() {
            for (name, value) in &request.headers {
                if name.eq_ignore_ascii_case("x-exalate-jwt")
                    || name.eq_ignore_ascii_case("authorization")
                {
                    let token = value.trim_start_matches("Bearer ").trim();
                    assert!(
                        token.len() < 8 || !text.contains(token),
                        "a token leaked into output"
                    );
                }
            }
        }
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

/// An agent config that loads the module, in `dir`.
pub fn agent_config(dir: &Path, port: u16, start_agents: u32) -> PathBuf {
    agent_config_with(dir, port, start_agents, "")
}

/// The same, with `extra` lines (e.g. UserParameter=...).
pub fn agent_config_with(dir: &Path, port: u16, start_agents: u32, extra: &str) -> PathBuf {
    let path = dir.join("zabbix_agentd.conf");
    let text = format!(
        "LogType=file\nLogFile={dir}/zabbix_agentd.log\nPidFile={dir}/zabbix_agentd.pid\n\
         ListenIP=127.0.0.1\nListenPort={port}\nServer=127.0.0.1\nStartAgents={start_agents}\n\
         ServerActive=\nAllowRoot=1\nTimeout=3\nLoadModule={module}\n{extra}\n",
        dir = dir.display(),
        module = module_path().display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

pub fn agent_test(dir: &Path, config: &Path, key: &str) -> String {
    let conf = agent_config(dir, free_port(), 1);
    let out = Command::new(AGENTD)
        .arg("-c")
        .arg(&conf)
        .arg("-t")
        .arg(key)
        .env("EXALATE_ZABBIX_CONFIG", config)
        .output()
        .expect("run zabbix_agentd -t");
    assert!(
        out.status.success(),
        "zabbix_agentd -t {key} failed: {}",
        describe(&out)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn describe(out: &Output) -> String {
    format!(
        "status {:?}, stdout {:?}, stderr {:?}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A port free now, in the range the agent's ListenPort accepts (1024-32767).
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 20_000 + (std::process::id() % 1000) as u16 * 12;
    for _ in 0..12_000 {
        let port = 20_000 + (base - 20_000 + NEXT.fetch_add(1, Ordering::Relaxed)) % 12_000;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000-32000");
}

/// A running `zabbix_agentd -f` with the module, or `zabbix_agent2` with
/// the plugin; stopped on drop.
pub struct AgentDaemon {
    child: Child,
    pub addr: SocketAddr,
    pub dir: PathBuf,
    log_file: PathBuf,
}

impl AgentDaemon {
    pub fn start(dir: &Path, config: &Path, start_agents: u32) -> AgentDaemon {
        AgentDaemon::start_with(dir, config, start_agents, "")
    }

    /// Starts an agent whose config also has the `extra` lines.
    pub fn start_with(dir: &Path, config: &Path, start_agents: u32, extra: &str) -> AgentDaemon {
        let port = free_port();
        let conf = agent_config_with(dir, port, start_agents, extra);
        AgentDaemon::spawn(dir, &conf, port, config)
    }

    /// Runs `zabbix_agentd -f -c CONF` (listening on `port`, logging in
    /// `dir`) with the module config `config`, and waits until agent.ping
    /// answers over the protocol.
    pub fn spawn(dir: &Path, conf: &Path, port: u16, config: &Path) -> AgentDaemon {
        AgentDaemon::spawn_with_env(dir, conf, port, config, &[])
    }

    /// The same, with extra environment variables for the agent.
    pub fn spawn_with_env(
        dir: &Path,
        conf: &Path,
        port: u16,
        config: &Path,
        env: &[(String, String)],
    ) -> AgentDaemon {
        let log_file = dir.join("zabbix_agentd.log");
        AgentDaemon::spawn_program(AGENTD, conf, port, config, env, log_file)
    }

    /// `zabbix_agent2` with the plugin, its own ports and sockets in `dir`,
    /// the plugin's config `config` (through the environment, as the
    /// module's) and the `extra` lines in its config.
    pub fn start_agent2(dir: &Path, config: &Path, extra: &str) -> AgentDaemon {
        let port = free_port();
        let conf = Agent2Conf::new(dir, port, extra);
        AgentDaemon::spawn_program(AGENT2, &conf.path, port, config, &[], conf.log)
    }

    /// Runs `PROGRAM -f -c CONF` with `env` and waits until agent.ping
    /// answers on `port`.
    pub fn spawn_program(
        program: &str,
        conf: &Path,
        port: u16,
        config: &Path,
        env: &[(String, String)],
        log_file: PathBuf,
    ) -> AgentDaemon {
        let dir = log_file.parent().unwrap().to_path_buf();
        // Agent 2 reports its own panics (Go) on stderr, not in its log.
        let stderr = std::fs::File::create(log_file.with_extension("stderr")).unwrap();
        let child = Command::new(program)
            .arg("-f")
            .arg("-c")
            .arg(conf)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("EXALATE_ZABBIX_CONFIG", config)
            // As installed: a panic's report stays short in the agent log.
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("start {program}: {e}"));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut daemon = AgentDaemon {
            child,
            addr,
            dir,
            log_file,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(reply) = zabbix_get(addr, "agent.ping") {
                assert_eq!(reply, Reply::Value("1".into()));
                break;
            }
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!(
                    "{program} exited at start ({status}); log:\n{}",
                    daemon.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{program} not ready; log:\n{}",
                daemon.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        daemon
    }

    pub fn get(&self, key: &str) -> Reply {
        zabbix_get(self.addr, key).unwrap_or_else(|e| panic!("{key}: {e}; log:\n{}", self.log()))
    }

    /// The agent's log file, then what it wrote to stderr, if anything.
    pub fn log(&self) -> String {
        let log = std::fs::read_to_string(&self.log_file).unwrap_or_default();
        match std::fs::read_to_string(self.log_file.with_extension("stderr")) {
            Ok(stderr) if !stderr.is_empty() => format!("{log}\nstderr:\n{stderr}"),
            _ => log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The agent's processes: the parent and its forked children.
    pub fn process_ids(&self) -> Vec<u32> {
        process_and_children(self.pid())
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl AgentDaemon {
    /// Stops the agent now (dropping it does the same).
    pub fn stop(&mut self) {
        stop_agent(&mut self.child);
    }

    /// Stops the agent with SIGTERM and returns how it exited.
    pub fn stop_status(&mut self) -> std::process::ExitStatus {
        stop_agent(&mut self.child);
        self.child.wait().expect("agent reaped")
    }
}

/// The agent 2 plugin cargo built for this test run.
pub fn plugin_path() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_zabbix-agent2-plugin-exalate"))
}

/// An agent 2 config of its own: port, ControlSocket, PluginSocket and log
/// file in `dir`, numbered so that agents can run side by side there;
/// loads the plugin, then the `extra` lines.
pub struct Agent2Conf {
    pub path: PathBuf,
    pub log: PathBuf,
    pub plugin_socket: PathBuf,
}

impl Agent2Conf {
    pub fn new(dir: &Path, port: u16, extra: &str) -> Agent2Conf {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let conf = Agent2Conf {
            path: dir.join(format!("zabbix_agent2-{n}.conf")),
            log: dir.join(format!("zabbix_agent2-{n}.log")),
            plugin_socket: dir.join(format!("plugin-{n}.sock")),
        };
        let text = format!(
            "LogType=file\nLogFile={log}\nPidFile={dir}/zabbix_agent2-{n}.pid\n\
             ListenIP=127.0.0.1\nListenPort={port}\nServer=127.0.0.1\nServerActive=\n\
             Hostname=exalate-test\nControlSocket={dir}/control-{n}.sock\n\
             PluginSocket={socket}\nTimeout=3\n\
             Plugins.Exalate.System.Path={plugin}\n{extra}\n",
            log = conf.log.display(),
            dir = dir.display(),
            socket = conf.plugin_socket.display(),
            plugin = plugin_path().display(),
        );
        std::fs::write(&conf.path, text).unwrap();
        conf
    }
}

/// `zabbix_agent2 -t KEY` with the plugin and the plugin config `config`;
/// returns its stdout.
pub fn agent2_test(dir: &Path, config: &Path, key: &str) -> String {
    let conf = Agent2Conf::new(dir, free_port(), "");
    let out = Command::new(AGENT2)
        .arg("-c")
        .arg(&conf.path)
        .arg("-t")
        .arg(key)
        .env("EXALATE_ZABBIX_CONFIG", config)
        .output()
        .expect("run zabbix_agent2 -t");
    assert!(
        out.status.success(),
        "zabbix_agent2 -t {key} failed: {}; log: {}",
        describe(&out),
        std::fs::read_to_string(&conf.log).unwrap_or_default()
    );
    agent2_test_line(&String::from_utf8_lossy(&out.stdout), key)
}

/// The result line of `zabbix_agent2 -t KEY`, as `KEY [t|value]`. 6.0 also
/// prints its log there (a burst of errors when a plugin exits, reference
/// §7.1), and a key wider than its column gets no space before `[`.
pub fn agent2_test_line(stdout: &str, key: &str) -> String {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with(key))
        .unwrap_or_else(|| panic!("no result for {key} in {stdout:?}"));
    format!("{key} {}", line[key.len()..].trim())
}

/// VmRSS of a process in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A soak's length: EXALATE_SOAK_SECONDS, else `default`.
pub fn soak_duration(default: u64) -> Duration {
    let seconds = std::env::var("EXALATE_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    Duration::from_secs(seconds)
}

/// Whether a process's command line has `arg` as one of its arguments.
pub fn has_arg(pid: u32, arg: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| c.split(|&b| b == 0).any(|a| a == arg.as_bytes()))
        .unwrap_or(false)
}

/// Processes whose command line has `arg` (e.g. a plugin's socket path).
pub fn processes_with_arg(arg: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| has_arg(*pid, arg))
        .collect()
}

impl Drop for AgentDaemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A process and its children (an agent's parent and its forks, or agent
/// 2 and its plugin processes).
pub fn process_and_children(pid: u32) -> Vec<u32> {
    let mut pids = vec![pid];
    pids.extend(children_of(pid));
    pids
}

/// Agent 2's plugin processes in their operational run (`PATH SOCKET
/// false`): a 6.0 agent 2 also has, for half a second after its start, the
/// registration run's reap guard as a child.
pub fn plugin_processes(agent2: u32) -> Vec<u32> {
    children_of(agent2)
        .into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.ends_with(b"\0false\0"))
        })
        .collect()
}

/// The children of a process, whichever of its threads started them (agent
/// 2 is a Go program: any thread may).
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut children: Vec<u32> = tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok())
                .collect::<Vec<_>>()
        })
        .collect();
    children.sort_unstable();
    children
}

/// SIGTERM (the agent stops its children and runs zbx_module_uninit), then
/// SIGKILL if it has not ended within 10 s.
pub fn stop_agent(child: &mut Child) {
    // Already reaped: its pid may belong to another process by now.
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A passive check's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Value(String),
    NotSupported(String),
}

impl Reply {
    pub fn value(&self) -> &str {
        match self {
            Reply::Value(v) => v,
            Reply::NotSupported(m) => panic!("expected a value, got ZBX_NOTSUPPORTED: {m}"),
        }
    }

    pub fn error(&self) -> &str {
        match self {
            Reply::NotSupported(m) => m,
            Reply::Value(v) => panic!("expected ZBX_NOTSUPPORTED, got value {v:?}"),
        }
    }
}

/// One passive check over the agent protocol: `ZBXD\x01`, u32 LE length,
/// u32 reserved, then the key; the reply has the same header.
pub fn zabbix_get(addr: SocketAddr, key: &str) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut packet = b"ZBXD\x01".to_vec();
    packet.extend_from_slice(&(key.len() as u32).to_le_bytes());
    packet.extend_from_slice(&0u32.to_le_bytes());
    packet.extend_from_slice(key.as_bytes());
    stream.write_all(&packet)?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply)?;
    if reply.len() < 13 || &reply[..5] != b"ZBXD\x01" {
        return Err(std::io::Error::other(format!(
            "bad reply header: {:?}",
            String::from_utf8_lossy(&reply)
        )));
    }
    let len = u32::from_le_bytes(reply[5..9].try_into().unwrap()) as usize;
    let data = &reply[13..];
    if data.len() != len {
        return Err(std::io::Error::other(format!(
            "reply length {} != header {len}",
            data.len()
        )));
    }
    let text = String::from_utf8_lossy(data).to_string();
    Ok(match text.strip_prefix("ZBX_NOTSUPPORTED\0") {
        Some(reason) => Reply::NotSupported(reason.to_string()),
        None => Reply::Value(text),
    })
}

/// Parses `zabbix_agentd -t` output: `key [t|value]`.
pub fn test_value(output: &str) -> (char, String) {
    let start = output
        .find(" [")
        .unwrap_or_else(|| panic!("no value in {output:?}"));
    let rest = output[start + 2..].trim_end();
    let kind = rest.chars().next().unwrap();
    let value = rest[2..]
        .strip_suffix(']')
        .unwrap_or(&rest[2..])
        .to_string();
    (kind, value)
}

/// Growth of a process's RSS allowed after the warm-up in the soaks. RSS
/// moves by a few MiB as answers of MBs are parsed and kept-alive
/// connections come and go; the heap tests (`robustness/heap.rs`) bound
/// what the library keeps by bytes.
pub const RSS_SLACK_KIB: u64 = 2048;

/// A soak's RSS samples of one process, as (second, KiB), after a warm-up of
/// half the run: on a slow machine allocator arenas, thread stacks and
/// connections settle over most of a minute.
pub struct RssTrend {
    pub first: u64,
    /// Median of the first half after the warm-up.
    pub warm: u64,
    /// Median of the second half.
    pub late: u64,
    pub end: u64,
    pub max: u64,
    /// The seconds the medians cover: warm-up end, middle, end.
    pub windows: (u64, u64, u64),
}

impl RssTrend {
    pub fn of(samples: &[(u64, u64)], duration: Duration) -> RssTrend {
        let total = duration.as_secs();
        let (warm_from, half) = (total / 2, total / 2 + total / 4);
        let median = |from: u64, to: u64| {
            let mut v: Vec<u64> = samples
                .iter()
                .filter(|(t, _)| (from..to).contains(t))
                .map(|(_, k)| *k)
                .collect();
            assert!(!v.is_empty(), "no RSS samples in {from}-{to} s");
            v.sort_unstable();
            v[v.len() / 2]
        };
        RssTrend {
            first: samples[0].1,
            warm: median(warm_from, half),
            late: median(half, u64::MAX),
            end: samples.last().unwrap().1,
            max: samples.iter().map(|(_, k)| *k).max().unwrap(),
            windows: (warm_from, half, total),
        }
    }

    /// The medians, and the end: the soaks take their last sample after
    /// the load, when no parse is making a peak.
    pub fn grew(&self) -> bool {
        self.late > self.warm + RSS_SLACK_KIB || self.end > self.warm + RSS_SLACK_KIB
    }
}
