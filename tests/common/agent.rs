//! The real agents: `zabbix_agentd` with the module and `zabbix_agent2`
//! with the plugin, one-shot (`-t`) and as daemons. Every agent config file
//! of the tests is written by `AgentConf::write`.

use super::*;
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

pub const AGENTD: &str = "/usr/sbin/zabbix_agentd";
pub const AGENT2: &str = "/usr/sbin/zabbix_agent2";

/// Which agent: `zabbix_agentd` with `LoadModule=` the module, or
/// `zabbix_agent2` with the plugin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgentKind {
    Agentd,
    Agent2,
}

impl AgentKind {
    pub fn program(self) -> &'static str {
        [AGENTD, AGENT2][self as usize]
    }
}

/// What goes into an agent's config file and environment.
#[derive(Clone, Debug)]
pub struct AgentOptions {
    pub kind: AgentKind,
    /// zabbix_agentd's StartAgents= (agent 2 has none).
    pub start_agents: u32,
    /// The agent's Timeout= (what the module uses for nodes without `timeout`).
    pub timeout: u32,
    /// 3 (warnings) or 4 (debug: the agent logs every key and value it sends).
    pub debug_level: u32,
    /// Run as user `zabbix` (the agent drops root), as installed agents do.
    pub as_zabbix: bool,
    /// Extra environment variables for the agent (e.g. HTTP_PROXY).
    pub env: Vec<(String, String)>,
    /// Extra config lines (e.g. UserParameter=...).
    pub extra: String,
}

impl Default for AgentOptions {
    fn default() -> Self {
        AgentOptions {
            kind: AgentKind::Agentd,
            start_agents: 3,
            timeout: 3,
            debug_level: 4,
            as_zabbix: false,
            env: Vec::new(),
            extra: String::new(),
        }
    }
}

impl AgentOptions {
    /// zabbix_agentd with `start_agents` listeners, at DebugLevel=3.
    pub fn agentd(start_agents: u32) -> AgentOptions {
        AgentOptions {
            start_agents,
            debug_level: 3,
            ..AgentOptions::default()
        }
    }

    /// zabbix_agent2 with the plugin, at DebugLevel=3.
    pub fn agent2() -> AgentOptions {
        AgentOptions {
            kind: AgentKind::Agent2,
            debug_level: 3,
            ..AgentOptions::default()
        }
    }
}

/// Where an agent's files are, as the agent names them (a chrooted agent
/// names paths inside its root).
pub struct AgentFiles {
    pub log: String,
    pub pid: String,
    /// zabbix_agentd's LoadModule=.
    pub module: String,
    /// Agent 2's ControlSocket=, PluginSocket= and the plugin.
    pub control_socket: String,
    pub plugin_socket: String,
    pub plugin: String,
}

impl AgentOptions {
    /// The text of the agent's config file, listening on `port`: every
    /// agent config of the tests is this.
    pub fn conf_text(&self, port: u16, files: &AgentFiles) -> String {
        let kind_lines = match self.kind {
            AgentKind::Agentd => format!(
                "StartAgents={}\n{}{}",
                self.start_agents,
                if self.as_zabbix {
                    "User=zabbix\n"
                } else {
                    "AllowRoot=1\n"
                },
                load_module_line(&files.module)
            ),
            AgentKind::Agent2 => format!(
                "Hostname=exalate-test\nControlSocket={}\nPluginSocket={}\n\
                 Plugins.Exalate.System.Path={}\n",
                files.control_socket, files.plugin_socket, files.plugin
            ),
        };
        format!(
            "LogType=file\nLogFile={}\nPidFile={}\n\
             ListenIP=127.0.0.1\nListenPort={port}\nServer=127.0.0.1\nServerActive=\n\
             Timeout={}\nDebugLevel={}\n{kind_lines}{}\n",
            files.log, files.pid, self.timeout, self.debug_level, self.extra
        )
    }
}

/// zabbix_agentd's line that loads the module at `module`: the one writer
/// of it, for whole configs and the packages' snippet alike.
pub fn load_module_line(module: &str) -> String {
    format!("LoadModule={module}\n")
}

/// An agent config file in a directory: its own port, log, pid file and (for
/// agent 2) ControlSocket and PluginSocket, numbered so that agents can run
/// side by side there.
pub struct AgentConf {
    pub path: PathBuf,
    pub log: PathBuf,
    pub plugin_socket: PathBuf,
    pub port: u16,
}

impl AgentConf {
    /// Writes `options`' config for an agent listening on `port` in `dir`.
    pub fn write(dir: &Path, port: u16, options: &AgentOptions) -> AgentConf {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let base = ["zabbix_agentd", "zabbix_agent2"][options.kind as usize];
        let at = |what: &str| dir.join(format!("{base}-{n}.{what}"));
        let conf = AgentConf {
            path: at("conf"),
            log: at("log"),
            plugin_socket: dir.join(format!("plugin-{n}.sock")),
            port,
        };
        let module = match options.as_zabbix {
            true => dir.join("libexalate_zabbix.so"),
            false => module_path(),
        };
        let files = AgentFiles {
            log: conf.log.display().to_string(),
            pid: at("pid").display().to_string(),
            module: module.display().to_string(),
            control_socket: dir.join(format!("control-{n}.sock")).display().to_string(),
            plugin_socket: conf.plugin_socket.display().to_string(),
            plugin: plugin_path().display().to_string(),
        };
        std::fs::write(&conf.path, options.conf_text(port, &files)).unwrap();
        conf
    }
}

/// A zabbix_agentd config that loads the module, in `dir`.
pub fn agent_config(dir: &Path, port: u16, start_agents: u32) -> PathBuf {
    AgentConf::write(dir, port, &AgentOptions::agentd(start_agents)).path
}

/// The cdylib cargo built for this test run, next to this test binary in
/// target/<profile>/deps (only `cargo build` copies it up a level).
pub fn module_path() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.with_file_name("libexalate_zabbix.so");
    assert!(path.exists(), "{} not built", path.display());
    path
}

/// The agent 2 plugin cargo built for this test run.
pub fn plugin_path() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_zabbix-agent2-plugin-exalate"))
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

/// `PROGRAM -c CONF -t KEY` with the module config `config`: its result line.
fn one_shot(kind: AgentKind, dir: &Path, config: &Path, key: &str) -> String {
    let conf = AgentConf::write(
        dir,
        free_port(),
        &AgentOptions {
            kind,
            ..AgentOptions::agentd(1)
        },
    );
    let program = kind.program();
    let out = Command::new(program)
        .arg("-c")
        .arg(&conf.path)
        .args(["-t", key])
        .env("EXALATE_ZABBIX_CONFIG", config)
        .output()
        .unwrap_or_else(|e| panic!("run {program} -t: {e}"));
    let log = std::fs::read_to_string(&conf.log).unwrap_or_default();
    assert!(
        out.status.success(),
        "{program} -t {key} failed: {}; log: {log}",
        describe(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    match kind {
        AgentKind::Agentd => stdout.trim().to_string(),
        AgentKind::Agent2 => agent2_test_line(&stdout, key),
    }
}

/// `zabbix_agentd -t KEY` with the module and the module config `config`;
/// returns its stdout.
pub fn agent_test(dir: &Path, config: &Path, key: &str) -> String {
    one_shot(AgentKind::Agentd, dir, config, key)
}

/// `zabbix_agent2 -t KEY` with the plugin and the plugin config `config`;
/// returns its result line.
pub fn agent2_test(dir: &Path, config: &Path, key: &str) -> String {
    one_shot(AgentKind::Agent2, dir, config, key)
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

/// A running `zabbix_agentd -f` with the module, or `zabbix_agent2` with
/// the plugin; stopped on drop. An audited one (`Agent::start_audited`)
/// hands every answer and, at the end, its log to the leak audit.
pub struct AgentDaemon {
    child: Child,
    pub addr: SocketAddr,
    pub conf: AgentConf,
    /// Where the audit says collected texts came from; None: not audited.
    audit_as: Option<String>,
}

/// The robustness tests' name for it.
pub type Agent = AgentDaemon;

impl AgentDaemon {
    /// zabbix_agentd with `start_agents` listeners and the module config `config`.
    pub fn start(dir: &Path, config: &Path, start_agents: u32) -> AgentDaemon {
        AgentDaemon::start_with(dir, config, start_agents, "")
    }

    /// The same, with `extra` lines in its config.
    pub fn start_with(dir: &Path, config: &Path, start_agents: u32, extra: &str) -> AgentDaemon {
        let extra = extra.into();
        let options = AgentOptions {
            extra,
            ..AgentOptions::agentd(start_agents)
        };
        AgentDaemon::start_options(dir, config, &options)
    }

    /// `zabbix_agent2` with the plugin, the plugin's config `config`
    /// (through the environment, as the module's) and the `extra` lines.
    pub fn start_agent2(dir: &Path, config: &Path, extra: &str) -> AgentDaemon {
        let extra = extra.into();
        let options = AgentOptions {
            extra,
            ..AgentOptions::agent2()
        };
        AgentDaemon::start_options(dir, config, &options)
    }

    /// `start_options`, audited as `name` (see `leaks`).
    pub fn start_audited(name: &str, dir: &Path, config: &Path, options: AgentOptions) -> Agent {
        let mut daemon = AgentDaemon::start_options(dir, config, &options);
        daemon.audit_as = Some(name.to_string());
        daemon
    }

    /// Runs the agent `options` describe (`-f`) with the module config
    /// `config`, and waits until agent.ping answers and, for
    /// zabbix_agentd, every listener is up.
    pub fn start_options(dir: &Path, config: &Path, options: &AgentOptions) -> AgentDaemon {
        if options.as_zabbix {
            prepare_for_user_zabbix(dir);
        }
        let conf = AgentConf::write(dir, free_port(), options);
        let program = options.kind.program();
        // Agent 2 reports its own panics (Go) on stderr, not in its log.
        let stderr = std::fs::File::create(conf.log.with_extension("stderr")).unwrap();
        let child = Command::new(program)
            .arg("-f")
            .arg("-c")
            .arg(&conf.path)
            .envs(options.env.iter().map(|(k, v)| (k, v)))
            .env("EXALATE_ZABBIX_CONFIG", config)
            // As installed: a panic's report stays short in the agent log.
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("start {program}: {e}"));
        let addr = SocketAddr::from(([127, 0, 0, 1], conf.port));
        let mut daemon = AgentDaemon {
            child,
            addr,
            conf,
            audit_as: None,
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
        // zabbix_agentd: every listener is up once the parent lists all its children.
        let expected = match options.kind {
            AgentKind::Agentd => 2 + options.start_agents as usize,
            AgentKind::Agent2 => 1,
        };
        while daemon.process_ids().len() < expected {
            let pids = daemon.process_ids();
            assert!(Instant::now() < deadline, "agent processes: {pids:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
        daemon
    }

    /// One passive check (collected when audited).
    pub fn get(&self, key: &str) -> Reply {
        let reply = zabbix_get(self.addr, key)
            .unwrap_or_else(|e| panic!("{key}: {e}; log:\n{}", self.log()));
        if let Some(name) = &self.audit_as {
            let text = match &reply {
                Reply::Value(v) => v.clone(),
                Reply::NotSupported(m) => format!("ZBX_NOTSUPPORTED {m}"),
            };
            collect(&format!("{name}: {key}"), &text);
        }
        reply
    }

    /// A check and how long it took.
    pub fn timed_get(&self, key: &str) -> (Reply, Duration) {
        let started = Instant::now();
        let reply = self.get(key);
        (reply, started.elapsed())
    }

    /// agent.ping answers 1 right now.
    pub fn assert_serving(&self) {
        assert_eq!(self.get("agent.ping"), Reply::Value("1".into()));
    }

    /// The agent's log file, then what it wrote to stderr, if anything.
    pub fn log(&self) -> String {
        let log = std::fs::read_to_string(&self.conf.log).unwrap_or_default();
        match std::fs::read_to_string(self.conf.log.with_extension("stderr")) {
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

impl Drop for AgentDaemon {
    fn drop(&mut self) {
        self.stop();
        if let Some(name) = &self.audit_as {
            collect(&format!("{name}: agent log"), &self.log());
        }
    }
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

/// An agent that drops root to user zabbix writes its log and pid in `dir`
/// and loads a copy of the module from there (the build tree may be private).
fn prepare_for_user_zabbix(dir: &Path) {
    let (uid, gid) = zabbix_ids();
    chown(dir, uid, gid);
    // Whatever the umask, user zabbix may pass through the test dirs.
    let top = std::env::temp_dir();
    for parent in dir
        .ancestors()
        .skip(1)
        .take_while(|p| p.starts_with(&top) && *p != top)
    {
        let mode = std::fs::metadata(parent).unwrap().permissions().mode();
        std::fs::set_permissions(parent, std::fs::Permissions::from_mode(mode | 0o011)).unwrap();
    }
    let copy = dir.join("libexalate_zabbix.so");
    std::fs::copy(module_path(), &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// uid and gid of the `zabbix` user that Debian's agent package creates.
pub fn zabbix_ids() -> (u32, u32) {
    // SAFETY: getpwnam returns NULL or a pointer valid until the next call;
    // the fields are copied at once.
    let pw = unsafe { libc::getpwnam(c"zabbix".as_ptr()) };
    assert!(!pw.is_null(), "no user zabbix (install zabbix-agent)");
    unsafe { ((*pw).pw_uid, (*pw).pw_gid) }
}

pub fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
}

/// Whether this process can make files others cannot read (not root).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
