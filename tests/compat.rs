//! `make compat-test`: the release module (the glibc 2.28 build that packages
//! ship) in the real Zabbix agents of three Debian suites, each in its own
//! chroot under target/compat/roots: bullseye's 5.0.8 (glibc 2.31),
//! bookworm's 6.0.14 and trixie's 7.0. Each agent runs as a daemon with the
//! module and answers every item key, good and failing, over TCP; `-t` and
//! `-p` as well; on 7.0 the JSON request form carries an item timeout other
//! than the agent's Timeout, and the module keeps to it. Prints a matrix,
//! check by agent, then fails if any cell failed.
//!
//! These need root, the chroots and the glibc-2.28 build, which `make
//! compat-test` provides. Plain `cargo test` lists them as ignored; run by
//! hand without that environment, they fail and say why.

mod common;

use common::*;
use fake_exalate_node::NodeConfig;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MODULE_IN_ROOT: &str = "/usr/lib/zabbix/modules/libexalate_zabbix.so";
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

/// The highest `GLIBC_x.y` symbol version `lib` needs, from `objdump -T`.
fn max_glibc(lib: &Path) -> (u32, u32) {
    let out = Command::new("objdump")
        .arg("-T")
        .arg(lib)
        .output()
        .expect("run objdump");
    assert!(out.status.success(), "objdump -T: {}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let versions: Vec<(u32, u32)> = text
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
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

#[test]
#[ignore = "needs the glibc-2.28 build: run `make compat-test`"]
fn release_module_needs_at_most_the_glibc_floor() {
    let lib = PathBuf::from(required_env("EXALATE_COMPAT_SO"));
    let floor = parse_version(&std::env::var("GLIBC_FLOOR").unwrap_or_else(|_| "2.28".into()));
    assert!(
        lib.exists(),
        "{} not built: run make release-compat",
        lib.display()
    );
    let max = max_glibc(&lib);
    println!(
        "{}: highest GLIBC symbol version needed: {}.{}",
        lib.display(),
        max.0,
        max.1
    );
    let host_build = module_path();
    let host_max = max_glibc(&host_build);
    println!(
        "(this machine's default build, {}: {}.{})",
        host_build.display(),
        host_max.0,
        host_max.1
    );
    assert!(
        max <= floor,
        "the release module needs GLIBC {}.{}, above the floor {}.{}",
        max.0,
        max.1,
        floor.0,
        floor.1
    );
}

/// One agent: a suite's chroot and the version of its zabbix_agentd.
struct Suite {
    name: String,
    root: PathBuf,
    version: String,
}

impl Suite {
    fn find(roots: &Path, name: &str) -> Suite {
        let root = roots.join(name);
        assert!(
            root.join("usr/sbin/zabbix_agentd").exists(),
            "{}: no zabbix_agentd; run make compat-roots",
            root.display()
        );
        let out = Command::new("chroot")
            .arg(&root)
            .args(["/usr/sbin/zabbix_agentd", "-V"])
            .output()
            .expect("run chroot (as root?)");
        assert!(
            out.status.success(),
            "{name}: zabbix_agentd -V: {}",
            describe(&out)
        );
        let version = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().last())
            .unwrap_or_default()
            .to_string();
        Suite {
            name: name.to_string(),
            root,
            version,
        }
    }

    fn major(&self) -> u32 {
        parse_version(&self.version).0
    }

    fn label(&self) -> String {
        format!("{} {}", self.version, self.name)
    }

    /// The host path of a path inside the chroot.
    fn path(&self, inside: &str) -> PathBuf {
        self.root.join(inside.trim_start_matches('/'))
    }

    /// `zabbix_agentd` in the chroot with the module config `module_config`
    /// (a path inside), one-shot (`-t KEY`, `-p`).
    fn agent(&self, module_config: &str, args: &[&str]) -> Result<String, String> {
        let out = Command::new("chroot")
            .arg(&self.root)
            .args(["/usr/sbin/zabbix_agentd", "-c"])
            .arg(format!("{WORK_IN_ROOT}/agent-once.conf"))
            .args(args)
            .env("EXALATE_ZABBIX_CONFIG", module_config)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("run chroot: {e}"))?;
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

/// A running agent in a chroot; stopped (and its children with it) on drop.
struct Daemon {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    children: Vec<u32>,
}

impl Daemon {
    fn start(suite: &Suite) -> Result<Daemon, String> {
        let port = free_port();
        let conf = format!(
            "LogType=file\nLogFile={WORK_IN_ROOT}/agentd.log\nPidFile={WORK_IN_ROOT}/agentd.pid\n\
             ListenIP=127.0.0.1\nListenPort={port}\nServer=127.0.0.1\nServerActive=\nStartAgents=3\n\
             Timeout={AGENT_TIMEOUT}\nAllowRoot=1\nLoadModule={MODULE_IN_ROOT}\n"
        );
        std::fs::write(suite.path(&format!("{WORK_IN_ROOT}/agentd.conf")), conf).unwrap();
        let child = Command::new("chroot")
            .arg(&suite.root)
            .args(["/usr/sbin/zabbix_agentd", "-f", "-c"])
            .arg(format!("{WORK_IN_ROOT}/agentd.conf"))
            .env(
                "EXALATE_ZABBIX_CONFIG",
                format!("{WORK_IN_ROOT}/multi.toml"),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("start chroot zabbix_agentd: {e}"))?;
        let mut daemon = Daemon {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log: suite.path(&format!("{WORK_IN_ROOT}/agentd.log")),
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

    fn get(&self, key: &str) -> Result<Reply, String> {
        zabbix_get(self.addr, key).map_err(|e| format!("{key}: {e}"))
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
/// ours only if it runs zabbix_agentd inside this suite's chroot.
fn stop_stale_agent(suite: &Suite) {
    let pid_file = suite.path(&format!("{WORK_IN_ROOT}/agentd.pid"));
    let Some(pid) = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|p| p.trim().parse::<i32>().ok())
    else {
        return;
    };
    let proc_root = std::fs::read_link(format!("/proc/{pid}/root")).ok();
    let proc_exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
    let ours = proc_root.is_some_and(|r| Some(r) == suite.root.canonicalize().ok())
        && proc_exe.is_some_and(|e| e.ends_with("zabbix_agentd"));
    if !ours {
        return;
    }
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn children_of(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Writes the module, its configs and secrets into the suite's chroot.
fn install(suite: &Suite, env: &TestEnv, module: &Path) {
    let work = suite.path(WORK_IN_ROOT);
    stop_stale_agent(suite);
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let module_dest = suite.path(MODULE_IN_ROOT);
    std::fs::create_dir_all(module_dest.parent().unwrap()).unwrap();
    std::fs::copy(module, &module_dest).unwrap();

    write_file(&work.join("demo.secret"), &format!("{SECRET}\n"), 0o600);
    write_file(&work.join("wrong.secret"), WRONG_SECRET, 0o600);
    let url = env.node.url();
    let demo = format!(
        "[nodes.demo]\nurl = \"{url}\"\nrelations = [\"AllContent\", \"Service Desk\", \"Jira Cloud/EU\"]\n\
         jwt_secret_file = \"{WORK_IN_ROOT}/demo.secret\"\n"
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
            "{defaults}{demo}\n[nodes.wrongsecret]\nurl = \"{url}\"\njwt_secret_file = \"{WORK_IN_ROOT}/wrong.secret\"\n\n\
             [nodes.down]\nurl = \"http://127.0.0.1:{closed}\"\njwt_secret_file = \"{WORK_IN_ROOT}/demo.secret\"\n"
        ),
        0o640,
    );
    std::fs::write(
        work.join("agent-once.conf"),
        format!(
            "LogType=file\nLogFile={WORK_IN_ROOT}/agent-once.log\nTimeout={AGENT_TIMEOUT}\nAllowRoot=1\n\
             LoadModule={MODULE_IN_ROOT}\n"
        ),
    )
    .unwrap();
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

/// Every check against one agent.
fn check_suite(suite: &Suite, env: &TestEnv, module: &Path) -> Checks {
    install(suite, env, module);
    let mut c = Checks {
        cells: Vec::new(),
        seen: String::new(),
    };
    let single = format!("{WORK_IN_ROOT}/single.toml");
    let version = env!("CARGO_PKG_VERSION");

    c.run("-t exalate.module.version (loads)", |seen| {
        let out = suite.agent(&single, &["-t", "exalate.module.version"])?;
        seen.push_str(&out);
        expect_eq("value", test_value(&out), ('s', version.to_string()))
    });
    c.run("-t queue.count: value", |seen| {
        let out = suite.agent(
            &single,
            &[
                "-t",
                "exalate.queue.count[demo,\"Jira Cloud/EU\",errorresponses]",
            ],
        )?;
        seen.push_str(&out);
        expect_eq(
            "value",
            test_value(&out),
            ('u', demo_counts("Jira Cloud/EU")[4].to_string()),
        )
    });
    c.run("-t queue.count: failure message", |seen| {
        let out = suite.agent(
            &single,
            &["-t", "exalate.queue.count[demo,Gone,syncrequests]"],
        )?;
        seen.push_str(&out);
        expect_eq(
            "value",
            test_value(&out),
            (
                'm',
                format!("ZBX_NOTSUPPORTED] [{}", not_found("demo", "Gone")),
            ),
        )
    });
    c.run("-p: every key with a real value", |seen| {
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

    let mut daemon = match Daemon::start(suite) {
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
    drop(daemon);
    c.seen.push_str(
        &std::fs::read_to_string(suite.path(&format!("{WORK_IN_ROOT}/agent-once.log")))
            .unwrap_or_default(),
    );
    let seen = std::mem::take(&mut c.seen);
    c.run("no secret or token in any output or log", |_| {
        no_secrets(env, &seen)
    });
    c
}

fn tcp_checks(c: &mut Checks, suite: &Suite, d: &mut Daemon) {
    let version = env!("CARGO_PKG_VERSION");
    c.run("tcp queue.count: all six queues", |seen| {
        for (queue, want) in QUEUES.iter().zip(demo_counts("AllContent")) {
            let v = d.value(&format!("exalate.queue.count[demo,AllContent,{queue}]"))?;
            seen.push_str(&v);
            expect_eq(queue, v, want.to_string())?;
        }
        Ok(())
    });
    c.run("tcp queue.get", |seen| {
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
    c.run("tcp relation.stats", |seen| {
        let v = d.value("exalate.relation.stats[demo,\"Service Desk\"]")?;
        seen.push_str(&v);
        let stats: Value = serde_json::from_str(&v).map_err(|e| format!("{v}: {e}"))?;
        for (queue, want) in QUEUES.iter().zip(demo_counts("Service Desk")) {
            expect_eq(queue, stats[queue].as_u64(), Some(want))?;
        }
        expect("error_reasons", stats["error_reasons"].is_object(), &v)
    });
    c.run("tcp discovery", |seen| {
        let v = d.value("exalate.discovery")?;
        seen.push_str(&v);
        let pairs: Value = serde_json::from_str(&v).map_err(|e| format!("{v}: {e}"))?;
        expect_eq(
            "pairs",
            pairs,
            json!([
                {"{#NODE}": "demo", "{#RELATION}": "AllContent"},
                {"{#NODE}": "demo", "{#RELATION}": "Service Desk"},
                {"{#NODE}": "demo", "{#RELATION}": "Jira Cloud/EU"},
            ]),
        )
    });
    c.run("tcp node.ping: 1, and 0 when rejected or down", |_| {
        expect_eq("demo", d.value("exalate.node.ping[demo]")?, "1".into())?;
        expect_eq(
            "wrongsecret",
            d.value("exalate.node.ping[wrongsecret]")?,
            "0".into(),
        )?;
        expect_eq("down", d.value("exalate.node.ping[down]")?, "0".into())
    });
    c.run("tcp module.version", |_| {
        expect_eq("value", d.value("exalate.module.version")?, version.into())
    });
    c.run("tcp fail: relation not found (HTTP 400)", |seen| {
        let e = d.error("exalate.queue.count[demo,Gone,syncrequests]")?;
        seen.push_str(&e);
        expect_eq("message", e, not_found("demo", "Gone"))
    });
    c.run("tcp fail: credentials rejected (HTTP 401)", |seen| {
        let e = d.error("exalate.queue.count[wrongsecret,AllContent,syncrequests]")?;
        seen.push_str(&e);
        expect(
            "message",
            e.starts_with("node 'wrongsecret', relation 'AllContent', queue syncrequests: credentials rejected (HTTP 401)"),
            &e,
        )
    });
    c.run("tcp fail: node error (HTTP 500)", |seen| {
        let e = d.error("exalate.relation.stats[demo,fault-status-500]")?;
        seen.push_str(&e);
        expect_eq(
            "message",
            e,
            "node 'demo', relation 'fault-status-500': node error (HTTP 500: {\"message\":\"NullPointerException\"}).".into(),
        )
    });
    c.run("tcp fail: malformed JSON", |seen| {
        let e = d.error("exalate.queue.get[demo,fault-malformed,syncrequests]")?;
        seen.push_str(&e);
        expect_eq(
            "message",
            e,
            "node 'demo', relation 'fault-malformed', queue syncrequests: malformed JSON: EOF while parsing a value at line 1 column 19.".into(),
        )
    });
    c.run("tcp fail: connection refused", |_| {
        expect_eq(
            "message",
            d.error("exalate.queue.count[down,AllContent,syncrequests]")?,
            "node 'down', relation 'AllContent', queue syncrequests: connection refused.".into(),
        )
    });
    c.run("tcp fail: unknown node, unknown queue", |_| {
        expect_eq(
            "node",
            d.error("exalate.queue.count[staging,AllContent,syncrequests]")?,
            "unknown node 'staging'; configured nodes: demo, down, wrongsecret.".into(),
        )?;
        expect_eq(
            "queue",
            d.error("exalate.queue.count[demo,AllContent,errors]")?,
            "unknown queue 'errors'; valid queues: syncrequests, blobrequests, syncresponses, blobresponses, errorresponses, bloberrorresponses.".into(),
        )
    });
    c.run("tcp fail: wrong parameters, every key", |_| {
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
                e.starts_with(&format!("wrong number of parameters: {name} takes")),
                &e,
            )?;
        }
        // Keys without parameters: the agent itself refuses them (no CF_HAVEPARAMS).
        for key in ["exalate.discovery[demo]", "exalate.module.version[x]"] {
            expect_eq(key, d.error(key)?, "Item does not allow parameters.".into())?;
        }
        Ok(())
    });
    c.run(
        &format!("tcp timeout: agent Timeout={AGENT_TIMEOUT}"),
        |_| {
            let started = Instant::now();
            let e = d.error(HANG_KEY)?;
            let took = started.elapsed();
            expect_eq("message", e, hang(AGENT_TIMEOUT))?;
            expect(
                "took",
                took < Duration::from_secs(AGENT_TIMEOUT) + Duration::from_millis(1500),
                format!("{took:?}"),
            )
        },
    );
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
            expect_eq("reply", reply, Err(hang(1)))?;
            expect(
                "took",
                took < Duration::from_millis(2500),
                format!("{took:?}, not the item's 1 s"),
            )
        });
        c.run(item_timeouts[2], |_| {
            let (reply, took) = d.json_check(HANG_KEY, "5s")?;
            expect_eq("reply", reply, Err(hang(5)))?;
            expect(
                "took",
                took >= Duration::from_secs(5) && took < Duration::from_millis(6500),
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

fn print_matrix(suites: &[Suite], results: &[Checks]) {
    let names: Vec<&str> = results[0].cells.iter().map(|(n, _)| n.as_str()).collect();
    let width = names.iter().map(|n| n.len()).max().unwrap_or(0);
    let labels: Vec<String> = suites.iter().map(Suite::label).collect();
    let mut out = format!("\n{:width$}", "check \\ agent");
    for label in &labels {
        out.push_str(&format!("  {label:<16}"));
    }
    out.push('\n');
    for (i, name) in names.iter().enumerate() {
        out.push_str(&format!("{name:width$}"));
        for r in results {
            let cell = match r.cells.get(i).map(|(_, c)| c) {
                Some(Cell::Pass) => "ok",
                Some(Cell::Fail(_)) => "FAIL",
                Some(Cell::NotApplicable) => "n/a",
                None => "?",
            };
            out.push_str(&format!("  {cell:<16}"));
        }
        out.push('\n');
    }
    println!("{out}");
}

#[test]
#[ignore = "needs root, the agent chroots and the glibc-2.28 build: run `make compat-test`"]
fn every_agent_answers_every_item() {
    let module = PathBuf::from(required_env("EXALATE_COMPAT_SO"));
    assert!(
        module.exists(),
        "{} not built: run make release-compat",
        module.display()
    );
    let roots = PathBuf::from(required_env("EXALATE_COMPAT_ROOTS"));
    let suites: Vec<Suite> = required_env("EXALATE_COMPAT_SUITES")
        .split_whitespace()
        .map(|name| Suite::find(&roots, name))
        .collect();
    assert!(!suites.is_empty(), "EXALATE_COMPAT_SUITES names no suite");
    let env = TestEnv::new("compat");
    let started = Instant::now();
    let results: Vec<Checks> = std::thread::scope(|scope| {
        let handles: Vec<_> = suites
            .iter()
            .map(|suite| scope.spawn(|| check_suite(suite, &env, &module)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    print_matrix(&suites, &results);
    let failures: Vec<String> = suites
        .iter()
        .zip(&results)
        .flat_map(|(suite, r)| {
            r.cells.iter().filter_map(move |(name, cell)| match cell {
                Cell::Fail(e) => Some(format!("{} / {name}: {e}", suite.label())),
                _ => None,
            })
        })
        .collect();
    let checks: usize = results
        .iter()
        .flat_map(|r| &r.cells)
        .filter(|(_, c)| !matches!(c, Cell::NotApplicable))
        .count();
    println!(
        "{} agents in {:.1} s",
        suites.len(),
        started.elapsed().as_secs_f64()
    );
    println!(
        "compat: {} passed, {} failed",
        checks - failures.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
