//! `make compat-test`: the release modules (the glibc 2.28 builds that
//! packages ship, x86_64 and aarch64) in the real Zabbix agents of three
//! Debian suites: bullseye's 5.0.8 (glibc 2.31), bookworm's 6.0.14 and
//! trixie's 7.0. The amd64 agents run each in its own chroot under
//! target/compat/roots; the arm64 agents, Debian's own arm64 binaries, under
//! qemu-user with a sysroot each under target/compat/roots-arm64. Each agent
//! answers every item key, good and failing, through `-t`, and as a daemon
//! with the module over TCP; `-p` as well; on 7.0 the JSON request form
//! carries an item timeout other than the agent's Timeout, and the module
//! keeps to it. Where an amd64 root has Zabbix agent 2 too (trixie's
//! 7.0.22), the release agent 2 plugin goes through the same checks in a
//! column of its own, with the module's values and messages. Prints a
//! matrix, check by agent, then fails if any cell failed.
//!
//! These need root, the roots and the glibc-2.28 builds, which `make
//! compat-test` provides. Plain `cargo test` lists them as ignored; run by
//! hand without that environment, they fail and say why.

pub mod common;

use common::*;
use fake_exalate_node::NodeConfig;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MODULE_IN_ROOT: &str = "/usr/lib/zabbix/modules/libexalate_zabbix.so";
const AGENTD_IN_ROOT: &str = "/usr/sbin/zabbix_agentd";
const AGENT2_IN_ROOT: &str = "/usr/sbin/zabbix_agent2";
/// Where the packages put the agent 2 plugin.
const PLUGIN_IN_ROOT: &str = "/usr/sbin/zabbix-agent2-plugin/zabbix-agent2-plugin-exalate";
/// The plugin, built next to each architecture's module.
const PLUGIN_FILE: &str = "zabbix-agent2-plugin-exalate";
/// Runs Debian's arm64 agents here (package qemu-user-static).
const QEMU_ARM64: &str = "qemu-aarch64-static";
/// Everything a run writes inside a chroot (configs, secrets, logs).
const WORK_IN_ROOT: &str = "/var/tmp/exalate-compat";
/// The agents' global Timeout; the 7.0 checks use item timeouts on both sides of it.
const AGENT_TIMEOUT: u64 = 3;
const WRONG_SECRET: &str = "compat-wrong-secret-0b7e44d1";

fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: these tests need root, the agent chroots and the glibc-2.28 build; run `make compat-test`")
    })
}

/// `readelf` on `lib`: it reads any CPU's ELF, where objdump knows this one's.
fn readelf(args: &[&str], lib: &Path) -> String {
    let out = Command::new("readelf")
        .args(args)
        .arg(lib)
        .output()
        .expect("run readelf");
    assert!(out.status.success(), "readelf {args:?}: {}", describe(&out));
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The highest `GLIBC_x.y` symbol version `lib` needs.
fn max_glibc(lib: &Path) -> (u32, u32) {
    let text = readelf(&["-W", "--dyn-syms"], lib);
    let versions: Vec<(u32, u32)> = text
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == '@')
        .filter_map(|w| w.strip_prefix("GLIBC_"))
        .filter_map(|v| {
            let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
            Some((parts.next()??, parts.next().flatten().unwrap_or(0)))
        })
        .collect();
    *versions
        .iter()
        .max()
        .unwrap_or_else(|| panic!("{}: no GLIBC symbol versions", lib.display()))
}

fn parse_version(v: &str) -> (u32, u32) {
    let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap());
    (parts.next().unwrap(), parts.next().unwrap_or(0))
}

/// A CPU architecture the packages are built for, by its Debian name.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Arch {
    Amd64,
    Arm64,
}

impl Arch {
    const ALL: [Arch; 2] = [Arch::Amd64, Arch::Arm64];

    fn name(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }

    /// What `readelf -h` says of this CPU's binaries.
    fn elf_machine(self) -> &'static str {
        match self {
            Arch::Amd64 => "Advanced Micro Devices X86-64",
            Arch::Arm64 => "AArch64",
        }
    }

    /// `make compat-test`'s variables: the module, the roots dir, the suites.
    fn env(self) -> [&'static str; 3] {
        match self {
            Arch::Amd64 => [
                "EXALATE_COMPAT_SO",
                "EXALATE_COMPAT_ROOTS",
                "EXALATE_COMPAT_SUITES",
            ],
            Arch::Arm64 => [
                "EXALATE_COMPAT_ARM64_SO",
                "EXALATE_COMPAT_ARM64_ROOTS",
                "EXALATE_COMPAT_ARM64_SUITES",
            ],
        }
    }

    fn module(self) -> PathBuf {
        let module = PathBuf::from(required_env(self.env()[0]));
        assert!(
            module.exists(),
            "{} not built: run make release-compat",
            module.display()
        );
        module
    }

    fn suites(self) -> Vec<Suite> {
        let roots = PathBuf::from(required_env(self.env()[1]));
        let module = self.module();
        required_env(self.env()[2])
            .split_whitespace()
            .map(|name| Suite::find(&roots, name, self, &module))
            .collect()
    }
}

#[test]
#[ignore = "needs the glibc-2.28 builds: run `make compat-test`"]
fn release_modules_are_for_their_cpu_and_need_at_most_the_glibc_floor() {
    let floor = parse_version(&std::env::var("GLIBC_FLOOR").unwrap_or_else(|_| "2.28".into()));
    let built = Arch::ALL.into_iter().flat_map(|arch| {
        [
            (arch, arch.module()),
            (arch, arch.module().with_file_name(PLUGIN_FILE)),
        ]
    });
    for (arch, lib) in built {
        let header = readelf(&["-h"], &lib);
        let machine = header
            .lines()
            .find_map(|l| l.trim().strip_prefix("Machine:"))
            .map(str::trim)
            .unwrap_or_default();
        println!("{}: {machine}", lib.display());
        assert_eq!(machine, arch.elf_machine(), "{}", lib.display());
        let max = max_glibc(&lib);
        println!(
            "{}: highest GLIBC symbol version needed: {}.{}",
            lib.display(),
            max.0,
            max.1
        );
        assert!(
            max <= floor,
            "{} needs GLIBC {}.{}, above the floor {}.{}",
            lib.display(),
            max.0,
            max.1,
            floor.0,
            floor.1
        );
    }
    let host_build = module_path();
    let host_max = max_glibc(&host_build);
    println!(
        "(this machine's default build, {}: {}.{})",
        host_build.display(),
        host_max.0,
        host_max.1
    );
}

/// Which agent of a suite: `zabbix_agentd` with the module, or
/// `zabbix_agent2` with the plugin (amd64 roots that have it).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Agent {
    Agentd,
    Agent2,
}

impl Agent {
    /// Its files in the work dir are named after it.
    fn name(self) -> &'static str {
        match self {
            Agent::Agentd => "agentd",
            Agent::Agent2 => "agent2",
        }
    }
}

/// One agent: a Debian suite's zabbix_agentd for one architecture, in its
/// root, the version it reports and the module built for it.
struct Suite {
    name: String,
    arch: Arch,
    root: PathBuf,
    module: PathBuf,
    version: String,
}

impl Suite {
    fn find(roots: &Path, name: &str, arch: Arch, module: &Path) -> Suite {
        let root = roots.join(name);
        assert!(
            root.join("usr/sbin/zabbix_agentd").exists(),
            "{}: no zabbix_agentd; run make compat-roots",
            root.display()
        );
        let mut suite = Suite {
            name: name.to_string(),
            arch,
            root,
            module: module.to_path_buf(),
            version: String::new(),
        };
        let out = suite
            .agentd()
            .arg("-V")
            .output()
            .expect("run chroot (as root?) or qemu-user");
        assert!(
            out.status.success(),
            "{name}: zabbix_agentd -V: {}",
            describe(&out)
        );
        suite.version = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().last())
            .unwrap_or_default()
            .to_string();
        suite
    }

    fn major(&self) -> u32 {
        parse_version(&self.version).0
    }

    fn label(&self) -> String {
        format!("{} {} {}", self.version, self.name, self.arch.name())
    }

    /// The suite's zabbix_agentd: chrooted into the root on this machine's
    /// CPU; Debian's arm64 binary under qemu-user with the root as its
    /// sysroot (`-L`), not chrooted (qemu-user reads the host's /proc).
    fn agentd(&self) -> Command {
        match self.arch {
            Arch::Amd64 => {
                let mut cmd = Command::new("chroot");
                cmd.arg(&self.root).arg(AGENTD_IN_ROOT);
                cmd
            }
            Arch::Arm64 => {
                let mut cmd = Command::new(QEMU_ARM64);
                cmd.arg("-L").arg(&self.root).arg(self.path(AGENTD_IN_ROOT));
                cmd
            }
        }
    }

    /// The plugin, when this root has agent 2 to run it (amd64 only).
    fn plugin(&self) -> Option<PathBuf> {
        let plugin = self.module.with_file_name(PLUGIN_FILE);
        (self.arch == Arch::Amd64 && self.path(AGENT2_IN_ROOT).exists() && plugin.exists())
            .then_some(plugin)
    }

    /// The suite's zabbix_agent2, chrooted (amd64 roots only).
    fn agent2(&self) -> Command {
        let mut cmd = Command::new("chroot");
        cmd.arg(&self.root).arg(AGENT2_IN_ROOT);
        cmd
    }

    /// The host path of a path inside the root.
    fn path(&self, inside: &str) -> PathBuf {
        self.root.join(inside.trim_start_matches('/'))
    }

    /// How the agent names a path inside the root: as it is, in a chroot;
    /// by its host path under qemu-user, whose `-L` serves only files that
    /// already exist in the sysroot (a log the agent creates would not).
    fn agent_path(&self, inside: &str) -> String {
        match self.arch {
            Arch::Amd64 => inside.to_string(),
            Arch::Arm64 => self.path(inside).display().to_string(),
        }
    }

    /// `zabbix_agentd` with the module config `module_config` (a path as
    /// the agent names it), one-shot (`-t KEY`, `-p`).
    fn agent(&self, module_config: &str, args: &[&str]) -> Result<String, String> {
        let out = self
            .agentd()
            .arg("-c")
            .arg(self.agent_path(&format!("{WORK_IN_ROOT}/agent-once.conf")))
            .args(args)
            .env("EXALATE_ZABBIX_CONFIG", module_config)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("run zabbix_agentd: {e}"))?;
        if !out.status.success() {
            return Err(format!("zabbix_agentd {args:?}: {}", describe(&out)));
        }
        Ok(String::from_utf8_lossy(&out.stdout).to_string())
    }
}

/// A passed check, a failed one, or one that does not apply to that agent.
#[derive(Clone)]
enum Cell {
    Pass,
    Fail(String),
    NotApplicable,
}

struct Checks {
    cells: Vec<(String, Cell)>,
    /// Every output and log, for the secrets check.
    seen: String,
}

impl Checks {
    fn run(&mut self, name: &str, f: impl FnOnce(&mut String) -> Result<(), String>) {
        let mut seen = String::new();
        let result = f(&mut seen);
        self.seen.push_str(&seen);
        self.cells.push((
            name.to_string(),
            match result {
                Ok(()) => Cell::Pass,
                Err(e) => Cell::Fail(e),
            },
        ));
    }

    fn not_applicable(&mut self, name: &str) {
        self.cells.push((name.to_string(), Cell::NotApplicable));
    }
}

fn expect_eq<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, want {want:?}"))
    }
}

fn expect(what: &str, ok: bool, detail: impl std::fmt::Display) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("{what}: {detail}"))
    }
}

/// One way to ask an agent for an item: over TCP, a running daemon; or a
/// one-shot `zabbix_agentd -t`.
trait Ask {
    fn get(&self, key: &str) -> Result<Reply, String>;

    /// How this agent shows a failure the module reports as `message`: as
    /// it is, but a 7.0 agent 2 capitalizes a plugin's error (the plugin
    /// sends the module's very text; 6.0.14 passes it on as it is).
    fn said(&self, message: &str) -> String {
        message.to_string()
    }

    /// Whether a plain-text request (or `-t`) is bounded by the agent's
    /// Timeout: not through a 7.0 agent 2, which gives such requests 60 s.
    fn plain_requests_use_agent_timeout(&self) -> bool {
        true
    }

    fn value(&self, key: &str) -> Result<String, String> {
        match self.get(key)? {
            Reply::Value(v) => Ok(v),
            Reply::NotSupported(m) => Err(format!("{key}: ZBX_NOTSUPPORTED {m}")),
        }
    }

    fn error(&self, key: &str) -> Result<String, String> {
        match self.get(key)? {
            Reply::NotSupported(m) => Ok(m),
            Reply::Value(v) => Err(format!("{key}: a value ({v}), not a failure")),
        }
    }
}

impl Ask for Daemon {
    fn get(&self, key: &str) -> Result<Reply, String> {
        zabbix_get(self.addr, key).map_err(|e| format!("{key}: {e}"))
    }

    fn said(&self, message: &str) -> String {
        said(self.capitalizes, message)
    }

    fn plain_requests_use_agent_timeout(&self) -> bool {
        !self.capitalizes
    }
}

fn said(capitalizes: bool, message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) if capitalizes => first.to_uppercase().chain(chars).collect(),
        _ => message.to_string(),
    }
}

/// `zabbix_agentd -t KEY` (or agent 2's), a new agent process per key,
/// with a module config.
struct OneShot<'a> {
    suite: &'a Suite,
    agent: Agent,
    module_config: String,
}

impl Ask for OneShot<'_> {
    fn get(&self, key: &str) -> Result<Reply, String> {
        let out = match self.agent {
            Agent::Agentd => self.suite.agent(&self.module_config, &["-t", key])?,
            Agent::Agent2 => {
                let out = self
                    .suite
                    .agent2()
                    .arg("-c")
                    .arg(format!("{WORK_IN_ROOT}/agent2-once.conf"))
                    .args(["-t", key])
                    .env("EXALATE_ZABBIX_CONFIG", &self.module_config)
                    .stdin(Stdio::null())
                    .output()
                    .map_err(|e| format!("run zabbix_agent2: {e}"))?;
                if !out.status.success() {
                    return Err(format!("zabbix_agent2 -t {key}: {}", describe(&out)));
                }
                agent2_test_line(&String::from_utf8_lossy(&out.stdout), key)
            }
        };
        if !out.contains(" [") {
            return Err(format!("-t {key}: no value in {out:?}"));
        }
        Ok(match test_value(&out) {
            ('m', text) => match text.strip_prefix("ZBX_NOTSUPPORTED] [") {
                Some(message) => Reply::NotSupported(message.to_string()),
                None => Reply::Value(text),
            },
            (_, text) => Reply::Value(text),
        })
    }

    fn said(&self, message: &str) -> String {
        said(
            self.agent == Agent::Agent2 && self.suite.major() >= 7,
            message,
        )
    }

    /// A 7.0 agent 2's `-t` gives the item 60 s, as its plain-text requests.
    fn plain_requests_use_agent_timeout(&self) -> bool {
        !(self.agent == Agent::Agent2 && self.suite.major() >= 7)
    }
}

/// A running agent in its root; stopped (and its children with it) on drop.
struct Daemon {
    agent: Agent,
    /// A 7.0 agent 2: see `Ask::said`.
    capitalizes: bool,
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    children: Vec<u32>,
}

impl Daemon {
    fn start(suite: &Suite, agent: Agent) -> Result<Daemon, String> {
        let port = free_port();
        let at = |file: &str| suite.agent_path(&format!("{WORK_IN_ROOT}/{file}"));
        let name = agent.name();
        let conf = agent_conf(suite, agent, name, port);
        let mut command = match agent {
            Agent::Agentd => suite.agentd(),
            Agent::Agent2 => suite.agent2(),
        };
        std::fs::write(suite.path(&format!("{WORK_IN_ROOT}/{name}.conf")), conf).unwrap();
        let child = command
            .arg("-f")
            .arg("-c")
            .arg(at(&format!("{name}.conf")))
            .env("EXALATE_ZABBIX_CONFIG", at("multi.toml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("start the {name} daemon: {e}"))?;
        let mut daemon = Daemon {
            agent,
            capitalizes: agent == Agent::Agent2 && suite.major() >= 7,
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log: suite.path(&format!("{WORK_IN_ROOT}/{name}.log")),
            children: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Reply::Value(v)) = zabbix_get(daemon.addr, "agent.ping") {
                if v == "1" {
                    break;
                }
            }
            if let Ok(Some(status)) = daemon.child.try_wait() {
                return Err(format!(
                    "agent exited at start ({status}); log:\n{}",
                    daemon.log()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!("agent not ready in 20 s; log:\n{}", daemon.log()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        daemon.children = children_of(daemon.child.id());
        Ok(daemon)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// 7.0's JSON request form: one passive check with its own timeout.
    /// Returns the reply's `value` or `error`, and how long it took.
    fn json_check(
        &self,
        key: &str,
        timeout: &str,
    ) -> Result<(Result<String, String>, Duration), String> {
        let request =
            json!({"request": "passive checks", "data": [{"key": key, "timeout": timeout}]});
        let started = Instant::now();
        let reply = self.get(&request.to_string())?;
        let took = started.elapsed();
        let Reply::Value(text) = reply else {
            return Err(format!("JSON request refused: {reply:?}"));
        };
        let reply: Value =
            serde_json::from_str(&text).map_err(|e| format!("reply {text:?}: {e}"))?;
        let item = &reply["data"][0];
        match (item["value"].as_str(), item["error"].as_str()) {
            (Some(v), _) => Ok((Ok(v.to_string()), took)),
            (None, Some(e)) => Ok((Err(e.to_string()), took)),
            _ => Err(format!("reply without value or error: {text}")),
        }
    }

    fn all_alive(&mut self) -> Result<(), String> {
        expect(
            "agent parent",
            matches!(self.child.try_wait(), Ok(None)),
            "exited",
        )?;
        if self.agent == Agent::Agent2 {
            // One plugin process, started by the first item, never restarted.
            let plugins = children_of(self.child.id());
            return expect(
                "plugin processes",
                plugins.len() == 1 && plugins == self.children,
                format!("{plugins:?}, first {:?}", self.children),
            );
        }
        expect(
            "agent processes",
            self.children.len() >= 4,
            format!("{} children at start", self.children.len()),
        )?;
        for pid in &self.children {
            expect(
                "agent child",
                Path::new(&format!("/proc/{pid}")).exists(),
                format!("{pid} died; log:\n{}", self.log()),
            )?;
        }
        Ok(())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        stop_agent(&mut self.child);
        for pid in &self.children {
            if Path::new(&format!("/proc/{pid}")).exists() {
                unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
            }
        }
    }
}

/// An agent an interrupted run left behind: its pid file names it, and it is
/// ours only if it runs this suite's zabbix_agentd: inside its chroot, or
/// under qemu-user, whose command line names the agent in the sysroot.
fn stop_stale_agent(suite: &Suite) {
    let pid_file = suite.path(&format!("{WORK_IN_ROOT}/agentd.pid"));
    let Some(pid) = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|p| p.trim().parse::<i32>().ok())
    else {
        return;
    };
    let ours = match suite.arch {
        Arch::Amd64 => {
            let proc_root = std::fs::read_link(format!("/proc/{pid}/root")).ok();
            let proc_exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
            proc_root.is_some_and(|r| Some(r) == suite.root.canonicalize().ok())
                && proc_exe.is_some_and(|e| e.ends_with("zabbix_agentd"))
        }
        Arch::Arm64 => {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let agentd = suite.agent_path(AGENTD_IN_ROOT);
            cmdline
                .split(|b| *b == 0)
                .any(|arg| arg == agentd.as_bytes())
        }
    };
    if !ours {
        return;
    }
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An agent's config (the harness's, `AgentOptions::conf_text`) with its
/// files `STEM.*` in the work dir, as the agent names them.
fn agent_conf(suite: &Suite, agent: Agent, stem: &str, port: u16) -> String {
    let at = |file: &str| suite.agent_path(&format!("{WORK_IN_ROOT}/{file}"));
    let options = AgentOptions {
        kind: match agent {
            Agent::Agentd => AgentKind::Agentd,
            Agent::Agent2 => AgentKind::Agent2,
        },
        timeout: AGENT_TIMEOUT as u32,
        ..AgentOptions::agentd(3)
    };
    let files = AgentFiles {
        log: at(&format!("{stem}.log")),
        pid: at(&format!("{stem}.pid")),
        module: suite.agent_path(MODULE_IN_ROOT),
        control_socket: at(&format!("{stem}.ctl")),
        plugin_socket: at(&format!("{stem}.plugin.sock")),
        plugin: PLUGIN_IN_ROOT.to_string(),
    };
    options.conf_text(port, &files)
}

/// Writes the module (and the plugin, where agent 2 runs it), their
/// configs and secrets into the suite's root.
fn install(suite: &Suite, env: &TestEnv) {
    let work = suite.path(WORK_IN_ROOT);
    stop_stale_agent(suite);
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let module_dest = suite.path(MODULE_IN_ROOT);
    std::fs::create_dir_all(module_dest.parent().unwrap()).unwrap();
    std::fs::copy(&suite.module, &module_dest).unwrap();
    if let Some(plugin) = suite.plugin() {
        let plugin_dest = suite.path(PLUGIN_IN_ROOT);
        std::fs::create_dir_all(plugin_dest.parent().unwrap()).unwrap();
        std::fs::copy(plugin, &plugin_dest).unwrap();
        let conf = agent_conf(suite, Agent::Agent2, "agent2-once", free_port());
        std::fs::write(work.join("agent2-once.conf"), conf).unwrap();
    }

    write_file(&work.join("demo.secret"), &format!("{SECRET}\n"), 0o600);
    write_file(&work.join("wrong.secret"), WRONG_SECRET, 0o600);
    let url = env.node.url();
    let at = |file: &str| suite.agent_path(&format!("{WORK_IN_ROOT}/{file}"));
    let (demo_secret, wrong_secret) = (at("demo.secret"), at("wrong.secret"));
    let demo = format!(
        "[nodes.demo]\nurl = \"{url}\"\nrelations = [\"AllContent\", \"Service Desk\", \"Jira Cloud/EU\"]\n\
         jwt_secret_file = \"{demo_secret}\"\n"
    );
    // No reuse between items: each fault is asked afresh.
    let defaults = "[defaults]\ncache_ttl = 0\n\n";
    write_file(
        &work.join("single.toml"),
        &format!("{defaults}{demo}"),
        0o640,
    );
    let closed = free_port();
    write_file(
        &work.join("multi.toml"),
        &format!(
            "{defaults}{demo}\n[nodes.wrongsecret]\nurl = \"{url}\"\njwt_secret_file = \"{wrong_secret}\"\n\n\
             [nodes.down]\nurl = \"http://127.0.0.1:{closed}\"\njwt_secret_file = \"{demo_secret}\"\n"
        ),
        0o640,
    );
    let conf = agent_conf(suite, Agent::Agentd, "agent-once", free_port());
    std::fs::write(work.join("agent-once.conf"), conf).unwrap();
}

fn demo_counts(relation: &str) -> [u64; 6] {
    NodeConfig::demo().relations[relation].counts
}

fn not_found(node: &str, relation: &str) -> String {
    format!("node '{node}', relation '{relation}', queue syncrequests: relation not found on the node (HTTP 400: Connection `{relation}` not found. Seems like it was removed on the Destination side.).")
}

fn hang(secs: u64) -> String {
    format!("node 'demo', relation 'fault-hang', queue syncrequests: timeout after {secs} s.")
}

const HANG_KEY: &str = "exalate.queue.count[demo,fault-hang,syncrequests]";

/// Every check against a suite's agent, then against its agent 2 where it
/// has one (a column each).
fn check_suite(suite: &Suite, env: &TestEnv) -> Vec<(String, Checks)> {
    install(suite, env);
    let mut columns = vec![(suite.label(), check_agent(suite, env, Agent::Agentd))];
    if suite.plugin().is_some() {
        columns.push((
            format!("{} agent2", suite.label()),
            check_agent(suite, env, Agent::Agent2),
        ));
    }
    columns
}

/// Every check against one agent of a suite.
fn check_agent(suite: &Suite, env: &TestEnv, agent: Agent) -> Checks {
    let mut c = Checks {
        cells: Vec::new(),
        seen: String::new(),
    };
    let single = suite.agent_path(&format!("{WORK_IN_ROOT}/single.toml"));
    let version = env!("CARGO_PKG_VERSION");

    c.run("-t exalate.module.version (loads)", |seen| {
        let one_shot = OneShot {
            suite,
            agent,
            module_config: single.clone(),
        };
        let value = one_shot.value("exalate.module.version")?;
        seen.push_str(&value);
        expect_eq("value", value, version.to_string())
    });
    // Agent 2 runs a loadable plugin's keys without parameters for -p.
    let print_all = "-p: every key with a real value";
    if agent == Agent::Agent2 {
        c.not_applicable(print_all);
    } else {
        c.run(print_all, |seen| {
            let out = suite.agent(&single, &["-p"])?;
            seen.push_str(&out);
            let line = |key: &str| {
                out.lines()
                    .find(|l| l.starts_with(key))
                    .map(test_value)
                    .ok_or_else(|| format!("{key} missing from -p"))
            };
            expect_eq(
                "queue.count",
                line("exalate.queue.count[")?,
                ('u', demo_counts("AllContent")[0].to_string()),
            )?;
            let (kind, text) = line("exalate.queue.get[")?;
            expect(
                "queue.get",
                kind == 't' && text.contains("errorReason"),
                &text,
            )?;
            let (kind, text) = line("exalate.relation.stats[")?;
            expect(
                "relation.stats",
                kind == 't' && text.starts_with("{\"syncrequests\":3"),
                &text,
            )?;
            let (kind, text) = line("exalate.discovery")?;
            expect(
                "discovery",
                kind == 't' && text.contains("{#RELATION}"),
                &text,
            )?;
            expect_eq("node.ping", line("exalate.node.ping")?, ('u', "1".into()))?;
            expect_eq(
                "module.version",
                line("exalate.module.version")?,
                ('s', version.into()),
            )
        });
    }

    let one_shot = OneShot {
        suite,
        agent,
        module_config: suite.agent_path(&format!("{WORK_IN_ROOT}/multi.toml")),
    };
    item_checks(&mut c, "-t", &one_shot);

    let mut daemon = match Daemon::start(suite, agent) {
        Ok(d) => {
            c.run("daemon with the module: agent.ping", |_| Ok(()));
            Some(d)
        }
        Err(e) => {
            c.run("daemon with the module: agent.ping", |_| Err(e));
            None
        }
    };
    if let Some(d) = &mut daemon {
        tcp_checks(&mut c, suite, d);
        c.seen.push_str(&d.log());
    }
    let stop = "stop: agent 2 exits 0, no plugin left";
    match (agent, &mut daemon) {
        (Agent::Agentd, _) => c.not_applicable(stop),
        (Agent::Agent2, None) => c.run(stop, |_| Err("not started".into())),
        (Agent::Agent2, Some(d)) => c.run(stop, |_| {
            stop_agent(&mut d.child);
            let status = d.child.wait().map_err(|e| e.to_string())?;
            expect(
                "exit",
                status.success(),
                format!("{status}; log:\n{}", d.log()),
            )?;
            // The plugin exits on the agent's terminate, a moment after the
            // agent may have; a zombie (state Z) has exited too.
            let running = |pid: &&u32| {
                std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|stat| !stat.rsplit(')').next().unwrap_or("").starts_with(" Z"))
            };
            let deadline = Instant::now() + Duration::from_secs(3);
            while d.children.iter().any(|pid| running(&pid)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let left: Vec<&u32> = d.children.iter().filter(running).collect();
            expect("plugins left", left.is_empty(), format!("{left:?}"))
        }),
    }
    drop(daemon);
    let once_log = match agent {
        Agent::Agentd => "agent-once.log",
        Agent::Agent2 => "agent2-once.log",
    };
    c.seen.push_str(
        &std::fs::read_to_string(suite.path(&format!("{WORK_IN_ROOT}/{once_log}")))
            .unwrap_or_default(),
    );
    let seen = std::mem::take(&mut c.seen);
    c.run("no secret or token in any output or log", |_| {
        no_secrets(env, &seen)
    });
    c
}

/// Every item key, good and failing, asked one way (`via`: "tcp" or "-t").
fn item_checks(c: &mut Checks, via: &str, d: &impl Ask) {
    let version = env!("CARGO_PKG_VERSION");
    c.run(&format!("{via} queue.count: all six queues"), |seen| {
        for (queue, want) in QUEUES.iter().zip(demo_counts("AllContent")) {
            let v = d.value(&format!("exalate.queue.count[demo,AllContent,{queue}]"))?;
            seen.push_str(&v);
            expect_eq(queue, v, want.to_string())?;
        }
        Ok(())
    });
    c.run(&format!("{via} queue.get"), |seen| {
        let v = d.value("exalate.queue.get[demo,\"Jira Cloud/EU\",syncrequests]")?;
        seen.push_str(&v);
        let entries: Value = serde_json::from_str(&v).map_err(|e| format!("{v}: {e}"))?;
        expect_eq(
            "entries",
            entries.as_array().map(Vec::len),
            Some(demo_counts("Jira Cloud/EU")[0] as usize),
        )?;
        expect("payload removed", !v.contains("encodedPayload"), &v)
    });
    c.run(&format!("{via} relation.stats"), |seen| {
        let v = d.value("exalate.relation.stats[demo,\"Service Desk\"]")?;
        seen.push_str(&v);
        let stats: Value = serde_json::from_str(&v).map_err(|e| format!("{v}: {e}"))?;
        for (queue, want) in QUEUES.iter().zip(demo_counts("Service Desk")) {
            expect_eq(queue, stats[queue].as_u64(), Some(want))?;
        }
        expect("error_reasons", stats["error_reasons"].is_object(), &v)
    });
    c.run(&format!("{via} discovery"), |seen| {
        let v = d.value("exalate.discovery")?;
        seen.push_str(&v);
        let pairs: Value = serde_json::from_str(&v).map_err(|e| format!("{v}: {e}"))?;
        expect_eq(
            "pairs",
            pairs,
            json!([
                {"{#NODE}": "demo", "{#RELATION}": "AllContent", "{#CMONITOR}": "0", "{#API}": "0"},
                {"{#NODE}": "demo", "{#RELATION}": "Service Desk", "{#CMONITOR}": "0", "{#API}": "0"},
                {"{#NODE}": "demo", "{#RELATION}": "Jira Cloud/EU", "{#CMONITOR}": "0", "{#API}": "0"},
                // Nodes without relations: one row each, for their node items.
                {"{#NODE}": "down", "{#RELATION}": "", "{#CMONITOR}": "0", "{#API}": "0"},
                {"{#NODE}": "wrongsecret", "{#RELATION}": "", "{#CMONITOR}": "0", "{#API}": "0"},
            ]),
        )
    });
    c.run(
        &format!("{via} node.ping: 1, and 0 when rejected or down"),
        |_| {
            expect_eq("demo", d.value("exalate.node.ping[demo]")?, "1".into())?;
            expect_eq(
                "wrongsecret",
                d.value("exalate.node.ping[wrongsecret]")?,
                "0".into(),
            )?;
            expect_eq("down", d.value("exalate.node.ping[down]")?, "0".into())
        },
    );
    c.run(&format!("{via} module.version"), |_| {
        expect_eq("value", d.value("exalate.module.version")?, version.into())
    });
    c.run(
        &format!("{via} fail: relation not found (HTTP 400)"),
        |seen| {
            let e = d.error("exalate.queue.count[demo,Gone,syncrequests]")?;
            seen.push_str(&e);
            expect_eq("message", e, d.said(&not_found("demo", "Gone")))
        },
    );
    c.run(&format!("{via} fail: credentials rejected (HTTP 401)"), |seen| {
        let e = d.error("exalate.queue.count[wrongsecret,AllContent,syncrequests]")?;
        seen.push_str(&e);
        expect(
            "message",
            e.starts_with(&d.said("node 'wrongsecret', relation 'AllContent', queue syncrequests: credentials rejected (HTTP 401)")),
            &e,
        )
    });
    c.run(&format!("{via} fail: node error (HTTP 500)"), |seen| {
        let e = d.error("exalate.relation.stats[demo,fault-status-500]")?;
        seen.push_str(&e);
        expect_eq(
            "message",
            e,
            d.said("node 'demo', relation 'fault-status-500': node error (HTTP 500: {\"message\":\"NullPointerException\"})."),
        )
    });
    c.run(&format!("{via} fail: malformed JSON"), |seen| {
        let e = d.error("exalate.queue.get[demo,fault-malformed,syncrequests]")?;
        seen.push_str(&e);
        expect_eq(
            "message",
            e,
            d.said("node 'demo', relation 'fault-malformed', queue syncrequests: malformed JSON: EOF while parsing a value at line 1 column 19."),
        )
    });
    c.run(&format!("{via} fail: connection refused"), |_| {
        expect_eq(
            "message",
            d.error("exalate.queue.count[down,AllContent,syncrequests]")?,
            d.said("node 'down', relation 'AllContent', queue syncrequests: connection refused."),
        )
    });
    c.run(&format!("{via} fail: unknown node, unknown queue"), |_| {
        expect_eq(
            "node",
            d.error("exalate.queue.count[staging,AllContent,syncrequests]")?,
            d.said("unknown node 'staging'; configured nodes: demo, down, wrongsecret."),
        )?;
        expect_eq(
            "queue",
            d.error("exalate.queue.count[demo,AllContent,errors]")?,
            d.said("unknown queue 'errors'; valid queues: syncrequests, blobrequests, syncresponses, blobresponses, errorresponses, bloberrorresponses."),
        )
    });
    c.run(&format!("{via} fail: wrong parameters, every key"), |_| {
        for (key, name) in [
            (
                "exalate.queue.count[demo,AllContent]",
                "exalate.queue.count",
            ),
            ("exalate.queue.get[demo]", "exalate.queue.get"),
            ("exalate.relation.stats[demo]", "exalate.relation.stats"),
            ("exalate.node.ping[demo,x]", "exalate.node.ping"),
        ] {
            let e = d.error(key)?;
            expect(
                key,
                e.starts_with(&d.said(&format!("wrong number of parameters: {name} takes"))),
                &e,
            )?;
        }
        // Keys without parameters: the agent itself refuses them (no CF_HAVEPARAMS).
        for key in ["exalate.discovery[demo]", "exalate.module.version[x]"] {
            expect_eq(
                key,
                d.error(key)?,
                d.said("Item does not allow parameters."),
            )?;
        }
        Ok(())
    });
    // Timed against a key that answers at once the same way: a one-shot
    // agent's start (slow under qemu-user) is not the module's time.
    let timeout_check = format!("{via} timeout: agent Timeout={AGENT_TIMEOUT}");
    if !d.plain_requests_use_agent_timeout() {
        // The item timeouts of 7.0's JSON requests are tested instead.
        c.not_applicable(&timeout_check);
        return;
    }
    c.run(&timeout_check, |_| {
        let started = Instant::now();
        d.value("exalate.module.version")?;
        let at_once = started.elapsed();
        let started = Instant::now();
        let e = d.error(HANG_KEY)?;
        let took = started.elapsed();
        expect_eq("message", e, d.said(&hang(AGENT_TIMEOUT)))?;
        expect(
            "took",
            took < at_once + Duration::from_secs(AGENT_TIMEOUT) + Duration::from_millis(1500),
            format!("{took:?}, a key answered at once {at_once:?}"),
        )
    });
}

fn tcp_checks(c: &mut Checks, suite: &Suite, d: &mut Daemon) {
    if d.agent == Agent::Agent2 {
        // Agent 2's plugin process, from the first item on.
        let _ = d.get("exalate.module.version");
        d.children = children_of(d.child.id());
    }
    item_checks(c, "tcp", d);
    let item_timeouts = [
        "7.0 JSON request: value",
        "7.0 item timeout 1s (< Timeout)",
        "7.0 item timeout 5s (> Timeout)",
    ];
    if suite.major() >= 7 {
        c.run(item_timeouts[0], |_| {
            let (reply, _) =
                d.json_check("exalate.queue.count[demo,AllContent,syncrequests]", "5s")?;
            expect_eq("value", reply, Ok("3".to_string()))
        });
        c.run(item_timeouts[1], |_| {
            let (reply, took) = d.json_check(HANG_KEY, "1s")?;
            expect_eq("reply", reply, Err(d.said(&hang(1))))?;
            expect(
                "took",
                took < Duration::from_millis(2500),
                format!("{took:?}, not the item's 1 s"),
            )
        });
        c.run(item_timeouts[2], |_| {
            let (reply, took) = d.json_check(HANG_KEY, "5s")?;
            expect_eq("reply", reply, Err(d.said(&hang(5))))?;
            expect(
                "took",
                // The requests give up 250 ms early, so the answer is in time.
                took >= Duration::from_millis(4500) && took < Duration::from_millis(6500),
                format!("{took:?}, not the item's 5 s"),
            )
        });
    } else {
        for name in item_timeouts {
            c.not_applicable(name);
        }
    }
    c.run("all agent processes alive, log clean", |_| {
        d.all_alive()?;
        let log = d.log();
        for bad in [
            "Got signal",
            "SIGSEGV",
            "SIGABRT",
            "cannot load module",
            "panicked",
            "panic:",
        ] {
            expect("log", !log.contains(bad), format!("has {bad:?}:\n{log}"))?;
        }
        Ok(())
    });
}

fn no_secrets(env: &TestEnv, text: &str) -> Result<(), String> {
    expect("secret", !text.contains(SECRET), "the secret leaked")?;
    expect(
        "wrong secret",
        !text.contains(WRONG_SECRET),
        "a secret leaked",
    )?;
    for request in env.node.requests() {
        for (name, value) in &request.headers {
            if name.eq_ignore_ascii_case("x-exalate-jwt")
                || name.eq_ignore_ascii_case("authorization")
            {
                let token = value.trim_start_matches("Bearer ").trim();
                expect(
                    "token",
                    token.len() < 8 || !text.contains(token),
                    "a token leaked",
                )?;
            }
        }
    }
    Ok(())
}

fn print_matrix(results: &[(String, Checks)]) {
    let names: Vec<&str> = results[0].1.cells.iter().map(|(n, _)| n.as_str()).collect();
    let width = names.iter().map(|n| n.len()).max().unwrap_or(0);
    let labels: Vec<&String> = results.iter().map(|(label, _)| label).collect();
    let column = labels.iter().map(|l| l.len()).max().unwrap_or(0);
    let mut out = format!("\n{:width$}", "check \\ agent");
    for label in &labels {
        out.push_str(&format!("  {label:<column$}"));
    }
    out.push('\n');
    for (i, name) in names.iter().enumerate() {
        out.push_str(&format!("{name:width$}"));
        for (_, r) in results {
            let cell = match r.cells.get(i).map(|(_, c)| c) {
                Some(Cell::Pass) => "ok",
                Some(Cell::Fail(_)) => "FAIL",
                Some(Cell::NotApplicable) => "n/a",
                None => "?",
            };
            out.push_str(&format!("  {cell:<column$}"));
        }
        out.push('\n');
    }
    println!("{out}");
}

#[test]
#[ignore = "needs root, the agent roots and the glibc-2.28 builds: run `make compat-test`"]
fn every_agent_answers_every_item() {
    let suites: Vec<Suite> = Arch::ALL.into_iter().flat_map(Arch::suites).collect();
    for arch in Arch::ALL {
        assert!(
            suites.iter().any(|s| s.arch == arch),
            "{} names no suite",
            arch.env()[2]
        );
    }
    let env = TestEnv::new("compat");
    let started = Instant::now();
    let results: Vec<(String, Checks)> = std::thread::scope(|scope| {
        let handles: Vec<_> = suites
            .iter()
            .map(|suite| scope.spawn(|| check_suite(suite, &env)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    print_matrix(&results);
    let failures: Vec<String> = results
        .iter()
        .flat_map(|(label, r)| {
            r.cells.iter().filter_map(move |(name, cell)| match cell {
                Cell::Fail(e) => Some(format!("{label} / {name}: {e}")),
                _ => None,
            })
        })
        .collect();
    let checks: usize = results
        .iter()
        .flat_map(|(_, r)| &r.cells)
        .filter(|(_, c)| !matches!(c, Cell::NotApplicable))
        .count();
    println!(
        "{} agents in {:.1} s",
        results.len(),
        started.elapsed().as_secs_f64()
    );
    println!(
        "compat: {} passed, {} failed",
        checks - failures.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
