//! `exalate-zabbix check` (front end 4) against the fake node: a good
//! setup, each typical first-day fault one at a time and all together,
//! the exit codes, the JSON parsed, a secret file the zabbix user cannot
//! read found while running as root, and no secret or token in any output.

pub mod common;

use common::tls::{TestCa, TlsFront};
use common::*;
use fake_exalate_node::{FakeProxy, NodeConfig};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn check_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_exalate-zabbix"))
}

/// An agent config dir as the packages leave it: zabbix_agentd.conf with
/// `Timeout=`, and the module's snippet when `load_module`.
fn zabbix_dir(env: &TestEnv, timeout: u64, load_module: bool) -> PathBuf {
    let dir = env.dir.join("etc-zabbix");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("zabbix_agentd.d")).unwrap();
    write_file(
        &dir.join("zabbix_agentd.conf"),
        &format!("# stock\nLogType=console\nTimeout={timeout}\nInclude=/etc/zabbix/zabbix_agentd.d/*.conf\n"),
        0o644,
    );
    if load_module {
        write_file(
            &dir.join("zabbix_agentd.d/exalate_zabbix.conf"),
            &load_module_line(&module_path().display().to_string()),
            0o644,
        );
    }
    dir
}

/// Runs the check; (exit code, stdout, stderr).
fn run(env: &TestEnv, zdir: &Path, extra: &[&str]) -> (i32, String, String) {
    let out = Command::new(check_exe())
        .arg("check")
        .arg("--config")
        .arg(&env.config_path)
        .arg("--zabbix-dir")
        .arg(zdir)
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    env.assert_no_secrets(&stdout);
    env.assert_no_secrets(&stderr);
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

/// The check's command line for `env`'s config and the agent configs in `zdir`.
fn check_command(env: &TestEnv, zdir: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(check_exe());
    command
        .arg("check")
        .arg("--config")
        .arg(&env.config_path)
        .arg("--zabbix-dir")
        .arg(zdir)
        .args(extra);
    command
}

/// How a watched run of the check ended.
struct Watched {
    /// None: still running at the limit (then killed).
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
    /// The most threads the process had at once (sampled from /proc).
    peak_threads: usize,
}

/// Runs `command` (its output to files in `env`'s directory), killed
/// after `limit`, sampling its thread count meanwhile.
fn watch(env: &TestEnv, mut command: Command, limit: Duration) -> Watched {
    let (out, err) = (env.dir.join("check.stdout"), env.dir.join("check.stderr"));
    let started = Instant::now();
    let mut child = command
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let mut peak_threads = 0;
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status.code().unwrap_or(-1));
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        let threads = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
            .ok()
            .and_then(|s| {
                let line = s.lines().find(|l| l.starts_with("Threads:"))?.to_string();
                line.split_whitespace().nth(1)?.parse().ok()
            });
        peak_threads = peak_threads.max(threads.unwrap_or(0));
        std::thread::sleep(Duration::from_millis(2));
    };
    let took = started.elapsed();
    let stdout = std::fs::read_to_string(&out).unwrap();
    let stderr = std::fs::read_to_string(&err).unwrap();
    env.assert_no_secrets(&stdout);
    env.assert_no_secrets(&stderr);
    Watched {
        code,
        stdout,
        stderr,
        took,
        peak_threads,
    }
}

fn json(env: &TestEnv, zdir: &Path) -> Value {
    let (code, stdout, _) = run(env, zdir, &["--json"]);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(report["exit_code"], code, "{stdout}");
    report
}

/// The line `what` of node `node` in a JSON report.
fn node_line<'a>(report: &'a Value, node: &str, what: &str) -> &'a Value {
    let node = report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == node)
        .unwrap_or_else(|| panic!("no node {node}: {report}"));
    node["checks"]
        .as_array()
        .unwrap()
        .iter()
        .chain(node["relations"].as_array().unwrap())
        .chain(node["connections"].as_array().unwrap())
        .find(|c| c["what"] == what)
        .unwrap_or_else(|| panic!("no line {what}: {node}"))
}

fn agent_line<'a>(report: &'a Value, what: &str) -> &'a Value {
    report["agent"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["what"] == what)
        .unwrap_or_else(|| panic!("no agent line {what}: {report}"))
}

/// The secrets and the config readable by the zabbix user (root:zabbix
/// 0640), as the packages' docs say; only as root.
fn share_with_zabbix(env: &TestEnv) {
    if !is_root() {
        return;
    }
    let (_, gid) = zabbix_ids();
    for f in [
        "demo.secret",
        "sd.secret",
        "eu.secret",
        "cmonitor.password",
        "api.password",
        "api.token",
        "wrong.password",
        "exalate_zabbix.toml",
    ] {
        let path = env.dir.join(f);
        if path.exists() {
            chown(&path, 0, gid);
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o640))
                .unwrap();
        }
    }
}

#[test]
fn a_good_setup_passes_with_every_count() {
    let env = TestEnv::with_relation_secrets("check-good");
    share_with_zabbix(&env);
    let zdir = zabbix_dir(&env, 3, true);
    let (code, text, stderr) = run(&env, &zdir, &[]);
    assert_eq!(code, 0, "{text}");
    // Not a terminal: no progress on stderr.
    assert_eq!(stderr, "");
    for line in [
        "  ok    dns ",
        "  ok    connect ",
        "  ok    credentials                  exalate.node.ping = 1 (the node's credentials, asking relation 'AllContent')",
        "  ok    relation 'Service Desk'      syncrequests 0, blobrequests 0, syncresponses 1, blobresponses 0, errorresponses 0, bloberrorresponses 0",
        // No API credentials: what the node items need, not a failure.
        "  --    api credentials              none: the node items (exalate.node.queue, exalate.node.connections) need them: set api_user with api_password_file (add api_login = true where the node wants a login), or api_token_file\n",
        "RESULT  0 failures, ",
    ] {
        assert!(text.contains(line), "{line:?} in {text}");
    }
    assert!(!text.contains("connection '"), "{text}");
    // The effective values: defaults applied, the relation's own file named.
    assert!(
        text.contains("        cache_ttl                    10 s\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "auth of 'Jira Cloud/EU'      jwt_secret_file {} (iss 'EXALATE'",
            env.dir.join("eu.secret").display()
        )),
        "{text}"
    );
    let report = json(&env, &zdir);
    assert_eq!(report["exit_code"], 0);
    assert_eq!(report["failures"], 0);
    assert_eq!(
        node_line(&report, "demo", "api credentials")["status"],
        "skip"
    );
    assert_eq!(report["nodes"][0]["connections"], serde_json::json!([]));
    let demo = NodeConfig::demo();
    for relation in ["AllContent", "Service Desk", "Jira Cloud/EU"] {
        let line = node_line(&report, "demo", &format!("relation '{relation}'"));
        assert_eq!(line["status"], "ok", "{line}");
        for (queue, n) in QUEUES.iter().zip(demo.relations[relation].counts) {
            assert_eq!(line["counts"][queue], n, "{relation} {queue}");
        }
    }
    assert_eq!(agent_line(&report, "agentd")["status"], "ok", "{report}");
    assert_eq!(agent_line(&report, "timeout zabbix_agentd")["status"], "ok");
    if is_root() {
        for what in ["read config", "read jwt_secret_file"] {
            assert_eq!(agent_line(&report, what)["status"], "ok", "{report}");
        }
    }
}

/// The typical first-day faults, one at a time: each fails its own line
/// (exit 1) with a fix; the agent-side ones are warnings (exit 0).
#[test]
fn each_fault_one_at_a_time() {
    let env = TestEnv::with_relation_secrets("check-faults");
    share_with_zabbix(&env);
    let zdir = zabbix_dir(&env, 3, true);
    let base = env.relation_secrets_section("demo", true);

    // A typo'd relation: the node's own 400 message.
    env.write_config(&base.replace("\"AllContent\"", "\"AllContnet\""));
    share_with_zabbix(&env);
    let r = json(&env, &zdir);
    assert_eq!(r["exit_code"], 1);
    let line = node_line(&r, "demo", "relation 'AllContnet'");
    assert_eq!(line["status"], "fail");
    assert!(
        line["detail"]
            .as_str()
            .unwrap()
            .contains("HTTP 400: Connection `AllContnet` not found"),
        "{line}"
    );
    assert!(
        line["fix"].as_str().unwrap().contains("Connections page"),
        "{line}"
    );
    assert_eq!(r["failures"], 1, "only that line: {r}");

    // The wrong jwt_exp_unit: the node rejects every token.
    env.write_config(&format!("{base}jwt_exp_unit = \"s\"\n"));
    share_with_zabbix(&env);
    let r = json(&env, &zdir);
    assert_eq!(r["exit_code"], 1);
    let line = node_line(&r, "demo", "credentials");
    assert_eq!(line["status"], "fail", "{line}");
    assert!(
        line["detail"]
            .as_str()
            .unwrap()
            .contains("credentials rejected (HTTP 401)"),
        "{line}"
    );
    // All six queues fail alike: none is named.
    assert!(
        !line["detail"].as_str().unwrap().contains("queue "),
        "{line}"
    );
    assert_eq!(
        node_line(&r, "demo", "relation 'AllContent'")["status"],
        "fail"
    );
    // The relations with their own secret are not touched by the node's key.
    assert_eq!(
        node_line(&r, "demo", "relation 'Service Desk'")["status"],
        "ok"
    );

    // A relation's wrong secret: that relation fails, naming its file.
    write_file(&env.dir.join("eu.secret"), SD_SECRET, 0o600);
    env.write_config(&base);
    share_with_zabbix(&env);
    let r = json(&env, &zdir);
    let line = node_line(&r, "demo", "relation 'Jira Cloud/EU'");
    assert_eq!(line["status"], "fail");
    assert!(
        line["detail"].as_str().unwrap().contains("eu.secret"),
        "{line}"
    );
    assert_eq!(r["failures"], 1, "{r}");
    write_file(&env.dir.join("eu.secret"), EU_SECRET, 0o600);
    share_with_zabbix(&env);

    // A node behind a proxy the config does not name: DNS fails, the fix says proxy.
    env.write_config(&format!(
        "{}\n[nodes.far]\nurl = \"https://exalate.far.invalid\"\ntoken_file = \"{}\"\n",
        base,
        env.dir.join("demo.secret").display()
    ));
    share_with_zabbix(&env);
    let r = json(&env, &zdir);
    let line = node_line(&r, "far", "dns");
    assert_eq!(line["status"], "fail", "{line}");
    assert!(line["fix"].as_str().unwrap().contains("proxy = "), "{line}");

    // The module line missing from the agent's config: a warning only.
    env.write_config(&base);
    share_with_zabbix(&env);
    let bare = zabbix_dir(&env, 3, false);
    let (code, text, _) = run(&env, &bare, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("  WARN  agentd ") && text.contains("fix: add LoadModule="),
        "{text}"
    );

    // The agent's Timeout shorter than the config's timeout: a warning.
    env.write_config(&format!("[defaults]\ntimeout = 5\n{base}"));
    share_with_zabbix(&env);
    let short = zabbix_dir(&env, 2, true);
    let r = json(&env, &short);
    assert_eq!(r["exit_code"], 0, "{r}");
    let line = agent_line(&r, "timeout zabbix_agentd");
    assert_eq!(line["status"], "warn");
    assert!(
        line["detail"].as_str().unwrap().contains("Timeout=2"),
        "{line}"
    );

    // A config that cannot be read: exit 2, the file and line.
    env.write_config(&format!("{base}jwt_ttl = \"sixty\"\n"));
    let (code, text, _) = run(&env, &zdir, &[]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains(&format!(
            "  FAIL  config                       config {} line 7: ",
            env.config_path.display()
        )),
        "{text}"
    );
    let r = json(&env, &zdir);
    assert_eq!(r["config_check"]["status"], "fail");
    assert_eq!(r["exit_code"], 2);
}

/// As root, a secret file root can read and the zabbix user cannot
/// (0600 root:root) is found and fails, since the agent runs here.
#[test]
fn a_secret_unreadable_by_zabbix_is_found_as_root() {
    if !is_root() {
        eprintln!("skipped: needs root (to test as the zabbix user)");
        return;
    }
    let env = TestEnv::with_relation_secrets("check-unreadable");
    share_with_zabbix(&env);
    let sd = env.dir.join("sd.secret");
    chown(&sd, 0, 0);
    std::fs::set_permissions(&sd, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let zdir = zabbix_dir(&env, 3, true);
    let (code, text, _) = run(&env, &zdir, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(&format!(
            "  FAIL  read jwt_secret_file         {} not readable by zabbix: Permission denied",
            sd.display()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "fix: let the agent's user read it, not others: chgrp zabbix {}",
            sd.display()
        )),
        "{text}"
    );
    // Root reads it: the relation itself works.
    assert!(text.contains("  ok    relation 'Service Desk' "), "{text}");
    // Another user: named in the line.
    let (_, text, _) = run(&env, &zdir, &["--user", "nobody"]);
    assert!(text.contains("not readable by nobody"), "{text}");
    // No agent config loads the module here: a warning, exit 0.
    let (code, text, _) = run(&env, &zabbix_dir(&env, 3, false), &[]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("  WARN  read jwt_secret_file "), "{text}");
}

/// https: the certificate's issuer and expiry, the CA used; without the CA
/// the line fails and says to set ca_file; through a proxy (CONNECT).
#[test]
fn tls_and_proxy_are_described() {
    let env = TestEnv::new("check-tls");
    let ca = TestCa::new("check");
    let front = TlsFront::start(ca.server_cert(&["127.0.0.1"], false), env.node.addr());
    let ca_file = env.dir.join("ca.pem");
    write_file(&ca_file, &ca.pem, 0o644);
    let node = |extra: &str| {
        format!(
            "[nodes.tls]\nurl = \"{}\"\nrelations = [\"AllContent\"]\njwt_secret_file = \"{}\"\n{extra}\n",
            front.url("/jira"),
            env.dir.join("demo.secret").display()
        )
    };
    share_with_zabbix(&env);
    let zdir = zabbix_dir(&env, 3, true);

    env.write_config(&node(""));
    share_with_zabbix(&env);
    let r = json(&env, &zdir);
    assert_eq!(r["exit_code"], 1);
    let tls = node_line(&r, "tls", "tls");
    assert_eq!(tls["status"], "fail", "{tls}");
    let detail = tls["detail"].as_str().unwrap();
    assert!(
        detail.contains("issuer \"exalate-zabbix test CA check\""),
        "{tls}"
    );
    assert!(
        tls["fix"].as_str().unwrap().contains("set ca_file"),
        "{tls}"
    );

    env.write_config(&node(&format!("ca_file = \"{}\"", ca_file.display())));
    share_with_zabbix(&env);
    let r = json(&env, &zdir);
    assert_eq!(r["exit_code"], 0, "{r}");
    let detail = node_line(&r, "tls", "tls")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        detail.starts_with("issuer \"exalate-zabbix test CA check\", expires ")
            && detail.contains(&format!(
                "; CA: \"exalate-zabbix test CA check\" from ca_file {}",
                ca_file.display()
            )),
        "{detail}"
    );
    assert_eq!(
        node_line(&r, "tls", "relation 'AllContent'")["status"],
        "ok"
    );

    // An expired certificate: the line says so and how to fix it.
    let expired = TlsFront::start(ca.server_cert(&["127.0.0.1"], true), env.node.addr());
    env.write_config(
        &node(&format!("ca_file = \"{}\"", ca_file.display()))
            .replace(&front.url(""), &expired.url("")),
    );
    share_with_zabbix(&env);
    let r = json(&env, &zdir);
    let tls = node_line(&r, "tls", "tls");
    assert_eq!(tls["status"], "fail", "{tls}");
    assert!(
        tls["detail"]
            .as_str()
            .unwrap()
            .contains("expires 2001-01-01 ("),
        "{tls}"
    );
    assert!(
        tls["fix"]
            .as_str()
            .unwrap()
            .contains("has expired: renew it"),
        "{tls}"
    );

    let proxy = FakeProxy::start().unwrap();
    env.write_config(&node(&format!(
        "ca_file = \"{}\"\nproxy = \"{}\"",
        ca_file.display(),
        proxy.url()
    )));
    share_with_zabbix(&env);
    let r = json(&env, &zdir);
    assert_eq!(r["exit_code"], 0, "{r}");
    assert_eq!(node_line(&r, "tls", "proxy connect")["status"], "ok");
    let line = node_line(&r, "tls", "proxy");
    assert!(
        line["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("CONNECT {} accepted", front.addr)),
        "{line}"
    );
    assert_eq!(node_line(&r, "tls", "tls")["status"], "ok");
}

/// Every fault at once: one run names each, exit 1.
#[test]
fn all_faults_together() {
    let env = TestEnv::with_relation_secrets("check-all");
    write_file(&env.dir.join("eu.secret"), SD_SECRET, 0o600);
    env.write_config(&format!(
        "[defaults]\ntimeout = 5\n{}jwt_exp_unit = \"s\"\n[nodes.far]\nurl = \"https://exalate.far.invalid\"\ntoken_file = \"{}\"\nrelations = [\"X\"]\n",
        env.relation_secrets_section("demo", true)
            .replace("\"AllContent\"", "\"AllContnet\""),
        env.dir.join("demo.secret").display()
    ));
    let zdir = zabbix_dir(&env, 2, false);
    let (code, text, _) = run(&env, &zdir, &[]);
    assert_eq!(code, 1, "{text}");
    for line in [
        "  FAIL  relation 'AllContnet'        node 'demo', relation 'AllContnet': credentials rejected (HTTP 401)",
        "  FAIL  relation 'Jira Cloud/EU'     node 'demo', relation 'Jira Cloud/EU': credentials rejected (HTTP 401)",
        "  ok    relation 'Service Desk' ",
        "  FAIL  dns                          cannot resolve exalate.far.invalid",
        "  WARN  agentd ",
        "  WARN  timeout zabbix_agentd ",
    ] {
        assert!(text.contains(line), "{line:?} in {text}");
    }
    if is_root() {
        // Root-owned 0600 secrets: the zabbix user reads none (a warning:
        // no agent config here loads the module).
        assert!(text.contains("  WARN  read jwt_secret_file "), "{text}");
    }
}

#[test]
fn help_version_and_usage_errors() {
    let out = Command::new(check_exe()).arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout)
        .starts_with("usage: exalate-zabbix check [--config PATH] [--json]"));
    let out = Command::new(check_exe()).arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("exalate-zabbix {}\n", env!("CARGO_PKG_VERSION"))
    );
    for bad in [&["check", "--bogus"][..], &[], &["check", "--config"]] {
        let out = Command::new(check_exe()).args(bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(out.stdout.is_empty());
        assert!(
            String::from_utf8_lossy(&out.stderr).starts_with("exalate-zabbix: "),
            "{bad:?}"
        );
    }
    // The config from $EXALATE_ZABBIX_CONFIG when --config is not given.
    let out = Command::new(check_exe())
        .arg("check")
        .env("EXALATE_ZABBIX_CONFIG", "/nonexistent/x.toml")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("config /nonexistent/x.toml: cannot read")
    );
}

/// Nodes are checked at once, each within its timeout: three nodes that
/// never answer in time take about as long as one, not three times as long.
#[test]
fn hung_nodes_are_checked_at_once_within_their_timeouts() {
    let env = TestEnv::new("check-hung");
    let slow = |name: &str| {
        fake_exalate_node::FakeNode::start(
            NodeConfig::demo()
                .with_response_delay(std::time::Duration::from_secs(30))
                .with_auth(
                    fake_exalate_node::Auth::None,
                    fake_exalate_node::AuthHeader::XExalateJwt,
                ),
        )
        .map(|n| (name.to_string(), n))
        .unwrap()
    };
    let nodes: Vec<_> = ["a", "b", "c"].iter().map(|n| slow(n)).collect();
    let mut config = String::from("[defaults]\ntimeout = 2\n");
    for (name, node) in &nodes {
        config.push_str(&format!(
            "[nodes.{name}]\nurl = \"{}\"\nrelations = [\"AllContent\", \"Service Desk\"]\njwt_secret_file = \"{}\"\n",
            node.url(),
            env.dir.join("demo.secret").display()
        ));
    }
    env.write_config(&config);
    let zdir = zabbix_dir(&env, 3, true);
    let started = std::time::Instant::now();
    let r = json(&env, &zdir);
    let took = started.elapsed();
    assert_eq!(r["exit_code"], 1);
    for (name, _) in &nodes {
        let line = node_line(&r, name, "relation 'Service Desk'");
        assert_eq!(
            line["detail"],
            format!("node '{name}', relation 'Service Desk': timeout after 2 s"),
            "{line}"
        );
        let ms = r["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == name.as_str())
            .unwrap()["elapsed_ms"]
            .as_u64()
            .unwrap();
        // ping, then the relations (at once): two timeouts and a margin.
        assert!(ms < 6_000, "node {name}: {ms} ms");
    }
    // One after the other would be at least 3 x 4 s.
    assert!(took.as_secs_f64() < 9.0, "three hung nodes took {took:?}");
}

/// On a terminal, progress goes to stderr while nodes are awaited; the
/// report itself is the same.
#[test]
fn progress_on_a_terminal_only() {
    let env = TestEnv::new("check-progress");
    let zdir = zabbix_dir(&env, 3, true);
    let command = format!(
        "{} check --config {} --zabbix-dir {} >{} ",
        check_exe().display(),
        env.config_path.display(),
        zdir.display(),
        env.dir.join("stdout").display()
    );
    // script(1) gives the command a terminal; stdout goes to a file.
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .unwrap();
    let terminal = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        terminal.contains("exalate-zabbix check: 1 node(s), up to 5 checks at once...")
            && terminal.contains("  node demo checked ("),
        "{terminal}"
    );
    let report = std::fs::read_to_string(env.dir.join("stdout")).unwrap();
    assert!(
        report.contains("  ok    relation 'AllContent' "),
        "{report}"
    );
    assert!(!report.contains("checks at once"), "{report}");
    env.assert_no_secrets(&terminal);
}

/// The customer monitor where a node has one: its `numErrors`, or a failed
/// line with the fix when its credentials are wrong.
#[test]
fn the_customer_monitor_is_checked_where_configured() {
    use common::cmonitor::{CMONITOR_PASSWORD, CMONITOR_PATH};
    use fake_exalate_node::{Cmonitor, CmonitorAuth, FakeNode};
    let env = TestEnv::new("check-cmonitor");
    add_secret(CMONITOR_PASSWORD);
    let auth = CmonitorAuth::Basic {
        user: "monitor".into(),
        password: CMONITOR_PASSWORD.into(),
    };
    let cmonitor =
        FakeNode::start(NodeConfig::default().with_cmonitor(Cmonitor::new(auth, 3))).unwrap();
    let zdir = zabbix_dir(&env, 3, true);
    for (password, status, detail, code) in [
        (CMONITOR_PASSWORD, "ok", "numErrors 3", 0),
        ("not-the-password-1234", "fail", "(HTTP 401", 1),
    ] {
        let file = env.dir.join("cmonitor.password");
        write_file(&file, password, 0o600);
        let keys = format!(
            "cmonitor_url = \"{}{CMONITOR_PATH}\"\ncmonitor_user = \"monitor\"\ncmonitor_password_file = \"{}\"",
            cmonitor.url(),
            file.display()
        );
        env.write_config(&env.node_section("demo", &[&keys]));
        share_with_zabbix(&env);
        let report = json(&env, &zdir);
        let (_, text, _) = run(&env, &zdir, &[]);
        assert_aligned(&text, &report);
        if is_root() {
            assert!(text.contains("read cmonitor_password_file"), "{text}");
        }
        let line = node_line(&report, "demo", "customer monitor");
        assert_eq!(line["status"], status, "{line}");
        assert!(line.to_string().contains(detail), "{detail:?} in {line}");
        assert_eq!(report["exit_code"], code, "{report}");
    }
}

/// The secret file a test names in its own node tables.
fn secret_file(env: &TestEnv) -> String {
    env.dir.join("demo.secret").display().to_string()
}

/// Every line's detail starts in the same column, however long its label.
fn assert_aligned(text: &str, report: &Value) {
    let mut checks: Vec<&Value> = vec![&report["config_check"]];
    for node in report["nodes"].as_array().unwrap() {
        checks.extend(node["checks"].as_array().unwrap());
        checks.extend(node["relations"].as_array().unwrap());
        checks.extend(node["connections"].as_array().unwrap());
    }
    checks.extend(report["agent"].as_array().unwrap());
    let columns: std::collections::BTreeSet<(usize, String)> = checks
        .iter()
        .filter_map(|c| c["detail"].as_str().filter(|d| !d.is_empty()))
        .map(|detail| {
            let column = text
                .lines()
                .find_map(|l| l.strip_suffix(detail).map(|p| p.chars().count()))
                .unwrap_or_else(|| panic!("{detail:?} ends no line: {text}"));
            (column, detail.to_string())
        })
        .collect();
    let first = columns.iter().next().unwrap().0;
    assert!(
        columns.iter().all(|(c, _)| *c == first),
        "details in columns {columns:?}: {text}"
    );
}

/// Issue 25, finding 1: a TLS server and a proxy that send a byte every
/// half second and never finish a step. Each step ends at its deadline (the
/// node's timeout, 2 s), not at a read that never times out, and its line
/// names the timeout.
#[test]
fn trickling_tls_and_proxy_end_at_the_step_deadline() {
    let env = TestEnv::new("check-trickle");
    let ca = TestCa::new("trickle");
    let ca_file = env.dir.join("ca.pem");
    write_file(&ca_file, &ca.pem, 0o644);
    let zdir = zabbix_dir(&env, 3, true);
    let tls = Trickle::tls(Duration::from_millis(500));
    let proxy = Trickle::proxy(Duration::from_millis(500));
    for (what, url, extra, expected) in [
        (
            "tls",
            format!("https://{}", tls.addr),
            String::new(),
            "timeout after 2 s during the TLS handshake",
        ),
        (
            "proxy",
            format!("https://{}", env.node.addr()),
            format!("proxy = \"http://{}\"", proxy.addr),
            "timeout after 2 s during the proxy's answer to CONNECT",
        ),
    ] {
        env.write_config(&format!(
            "[nodes.slow]\nurl = \"{url}/jira\"\nrelations = [\"AllContent\"]\njwt_secret_file = \"{}\"\ntimeout = 2\nca_file = \"{}\"\n{extra}\n",
            secret_file(&env),
            ca_file.display()
        ));
        let run = watch(
            &env,
            check_command(&env, &zdir, &["--json"]),
            Duration::from_secs(30),
        );
        let code = run
            .code
            .unwrap_or_else(|| panic!("{what}: still running after {:?}", run.took));
        assert_eq!(code, 1, "{what}: {}", run.stdout);
        let report: Value = serde_json::from_str(&run.stdout).unwrap();
        let line = node_line(&report, "slow", what);
        assert_eq!(line["status"], "fail", "{line}");
        let detail = line["detail"].as_str().unwrap();
        assert!(detail.contains(expected), "{expected:?} in {line}");
        assert!(!detail.contains("temporarily unavailable"), "{line}");
        // The path failed: no request is sent where it would fail too.
        let credentials = node_line(&report, "slow", "credentials");
        assert_eq!(credentials["status"], "skip", "{credentials}");
        // One step's deadline (2 s) and the steps before it; a hang would
        // be hours. Under 3 x the timeout, with room for a busy machine.
        eprintln!("{what}: the check took {:?}", run.took);
        assert!(
            run.took < Duration::from_secs(6),
            "{what}: {:?}: {}",
            run.took,
            run.stdout
        );
    }
}

/// Issue 25, finding 2: a FIFO or a directory as token_file is not usable
/// (the module reads only regular files), checked through the forked
/// child (`--user zabbix`) and in this process (`--user root`), and the
/// check never blocks opening a FIFO.
#[test]
fn a_fifo_or_a_directory_as_token_file_is_not_usable() {
    if !is_root() {
        eprintln!("skipped: needs root (to test as the zabbix user)");
        return;
    }
    let env = TestEnv::new("check-fifo");
    let (_, gid) = zabbix_ids();
    let fifo = env.dir.join("token.fifo");
    let made = Command::new("mkfifo")
        .args(["-m", "0640"])
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let dir = env.dir.join("token.d");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o750)).unwrap();
    let zdir = zabbix_dir(&env, 3, true);
    for (file, kind) in [(&fifo, "a FIFO"), (&dir, "a directory")] {
        chown(file, 0, gid);
        env.write_config(&format!(
            "[nodes.demo]\nurl = \"{}\"\nrelations = [\"AllContent\"]\ntoken_file = \"{}\"\n",
            env.node.url(),
            file.display()
        ));
        share_with_zabbix(&env);
        for user in ["zabbix", "root"] {
            let run = watch(
                &env,
                check_command(&env, &zdir, &["--json", "--user", user]),
                Duration::from_secs(20),
            );
            let code = run.code.unwrap_or_else(|| {
                panic!("--user {user}, {kind}: still running after {:?}", run.took)
            });
            let report: Value = serde_json::from_str(&run.stdout).unwrap();
            let line = agent_line(&report, "read token_file");
            assert_eq!(line["status"], "fail", "--user {user}, {kind}: {line}");
            let detail = line["detail"].as_str().unwrap();
            assert!(
                detail.contains(&format!("is not a regular file ({kind})")),
                "--user {user}: {line}"
            );
            assert!(!detail.contains("readable by"), "--user {user}: {line}");
            assert_eq!(code, 1, "{}", run.stdout);
            assert!(run.took < Duration::from_secs(10), "{:?}", run.took);
        }
    }
}

/// Issue 25, finding 4: many nodes with many relations on a node that
/// never answers: the check's threads stay bounded (before: a thread per
/// node, per relation and per queue, some 200 here), and it still ends.
#[test]
fn many_nodes_and_relations_keep_the_threads_bounded() {
    let env = TestEnv::new("check-threads");
    let silent = fake_exalate_node::FakeNode::start(
        NodeConfig::demo()
            .with_response_delay(Duration::from_secs(30))
            .with_auth(
                fake_exalate_node::Auth::None,
                fake_exalate_node::AuthHeader::XExalateJwt,
            ),
    )
    .unwrap();
    let relations: Vec<String> = (1..=8).map(|i| format!("\"r{i}\"")).collect();
    let mut config = String::from("[defaults]\ntimeout = 1\n");
    for n in 0..4 {
        config.push_str(&format!(
            "[nodes.n{n}]\nurl = \"{}\"\nrelations = [{}]\njwt_secret_file = \"{}\"\n",
            silent.url(),
            relations.join(", "),
            secret_file(&env)
        ));
    }
    env.write_config(&config);
    let zdir = zabbix_dir(&env, 3, true);
    let run = watch(
        &env,
        check_command(&env, &zdir, &["--json"]),
        Duration::from_secs(90),
    );
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    for n in 0..4 {
        for r in 1..=8 {
            let line = node_line(&report, &format!("n{n}"), &format!("relation 'r{r}'"));
            assert!(
                line["detail"]
                    .as_str()
                    .unwrap()
                    .ends_with("timeout after 1 s"),
                "{line}"
            );
        }
    }
    eprintln!(
        "{} threads at most, {:?} in all",
        run.peak_threads, run.took
    );
    assert!(
        run.peak_threads <= 40,
        "{} threads at once (in {:?})",
        run.peak_threads,
        run.took
    );
}

/// Issue 25, finding 4: where no thread is to be had (RLIMIT_NPROC for an
/// unprivileged user: root ignores it), the check works in turn and prints
/// its report; it never panics (exit 101).
#[test]
fn no_thread_to_be_had_still_gives_the_report() {
    if !is_root() {
        eprintln!("skipped: needs root (to run the check as nobody)");
        return;
    }
    const NOBODY: u32 = 65534;
    let env = TestEnv::new("check-nproc");
    let relations: Vec<String> = (1..=7)
        .map(|i| format!("\"r{i}\""))
        .chain(["\"AllContent\"".to_string()])
        .collect();
    let mut config = String::new();
    for n in 0..2 {
        config.push_str(&format!(
            "[nodes.n{n}]\nurl = \"{}\"\nrelations = [{}]\njwt_secret_file = \"{}\"\n",
            env.node.url(),
            relations.join(", "),
            secret_file(&env)
        ));
    }
    env.write_config(&config);
    for file in [&env.config_path, &env.dir.join("demo.secret")] {
        chown(file, NOBODY, NOBODY);
    }
    let zdir = zabbix_dir(&env, 3, true);
    let mut command = Command::new("prlimit");
    command.arg("--nproc=3").arg("--").arg(check_exe());
    command.args(check_command(&env, &zdir, &[]).get_args());
    std::os::unix::process::CommandExt::uid(&mut command, NOBODY);
    std::os::unix::process::CommandExt::gid(&mut command, NOBODY);
    let run = watch(&env, command, Duration::from_secs(60));
    eprintln!(
        "{} threads at most, {:?} in all",
        run.peak_threads, run.took
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("\nRESULT  "), "{}", run.stdout);
    assert_eq!(
        run.stdout.matches("  FAIL  relation 'r7' ").count(),
        2,
        "{}",
        run.stdout
    );
}

/// Issue 25, finding 3: a url whose port is not a port is never taken for
/// port 80 or 443: the check says so (or the config refuses it) and sends
/// nothing anywhere.
#[test]
fn a_port_that_is_not_a_port_is_never_80_or_443() {
    let env = TestEnv::new("check-port");
    let zdir = zabbix_dir(&env, 3, true);
    for url in [
        "http://127.0.0.1:99999",
        "http://127.0.0.1:18500x/jira",
        "https://127.0.0.1:0",
    ] {
        env.write_config(&format!(
            "[nodes.demo]\nurl = \"{url}\"\nrelations = [\"AllContent\"]\njwt_secret_file = \"{}\"\n",
            secret_file(&env)
        ));
        let (code, text, _) = run(&env, &zdir, &[]);
        assert_ne!(code, 0, "{text}");
        for default in ["127.0.0.1:80", "127.0.0.1:443"] {
            assert!(!text.contains(default), "{url}: {text}");
        }
        // The config refuses such ports too (exit 2); else the check does.
        if code != 2 {
            assert!(
                text.contains("  FAIL  url ")
                    && text.contains("the port of url is not a number from 1 to 65535"),
                "{url}: {text}"
            );
            assert!(text.contains("  --    credentials "), "{url}: {text}");
        }
    }
    // cmonitor_url alike: its credentials go nowhere else.
    env.write_config(&env.node_section(
        "demo",
        &[&format!(
            "cmonitor_url = \"http://127.0.0.1:99999/cmonitor\"\ncmonitor_token_file = \"{}\"",
            secret_file(&env)
        )],
    ));
    let (code, text, _) = run(&env, &zdir, &[]);
    assert_ne!(code, 0, "{text}");
    assert!(!text.contains("127.0.0.1:80"), "{text}");
    if code != 2 {
        assert!(
            text.contains("  FAIL  customer monitor ")
                && text.contains("the port of cmonitor_url is not a number from 1 to 65535"),
            "{text}"
        );
    }
}

/// Issue 25, "check misleads on the first run": the shipped example config
/// (no node yet) with both agents' configs present.
#[test]
fn the_first_run_on_the_shipped_config_says_what_is_true() {
    let env = TestEnv::new("check-first-run");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/exalate_zabbix.toml");
    let zdir = zabbix_dir(&env, 3, true);
    write_file(
        &zdir.join("zabbix_agent2.conf"),
        "# stock\nTimeout=3\n",
        0o644,
    );
    let out = Command::new(check_exe())
        .arg("check")
        .arg("--config")
        .arg(&shipped)
        .arg("--zabbix-dir")
        .arg(&zdir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("the config has no node yet: add a [nodes.NAME] table"),
        "{text}"
    );
    assert!(!text.contains("cannot be read"), "{text}");
    assert!(!text.contains("line named"), "{text}");
    // Where the packages put docs/configuration.md.
    assert!(
        text.contains("/usr/share/doc/exalate-zabbix/docs/configuration.md"),
        "{text}"
    );
    assert!(
        !text.contains("/usr/share/doc/exalate-zabbix/configuration.md"),
        "{text}"
    );
    // The agent's side is checked all the same.
    let agent = text.split("\nAGENT\n").nth(1).unwrap_or("");
    for line in [
        "  ok    agentd ",
        "  WARN  agent2 ",
        "timeout zabbix_agentd",
    ] {
        assert!(agent.contains(line), "{line:?} in {text}");
    }
    // A config error with a line: the fix points at it.
    env.write_config(&format!(
        "{}jwt_ttl = \"sixty\"\n",
        env.node_section("demo", &[])
    ));
    let (code, text, _) = run(&env, &zdir, &[]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains(" line 6: "), "{text}");
    assert!(
        text.contains("fix: correct the file at the line named"),
        "{text}"
    );
    assert!(!text.contains("cannot be read"), "{text}");
    assert!(text.contains("\nAGENT\n  "), "{text}");
}

/// One line of the table as the check prints it (a label that fits the column).
fn row(status: &str, what: &str, detail: &str) -> String {
    format!("  {status:<5} {what:<28} {detail}\n")
}

/// The text of node `name` in the table, up to the next section.
fn node_text<'a>(text: &'a str, name: &str) -> &'a str {
    let start = text
        .find(&format!("\nNODE {name} ("))
        .unwrap_or_else(|| panic!("no node {name}: {text}"));
    let rest = &text[start + 1..];
    let end = rest[1..].find("\n\n").map_or(rest.len(), |e| e + 1);
    &rest[..end]
}

/// Writes the demo API's password (or `password`) to `file` in `env`'s
/// directory; gives its path.
fn api_password(env: &TestEnv, file: &str, password: &str) -> PathBuf {
    let path = env.dir.join(file);
    write_file(&path, password, 0o600);
    path
}

/// The node lines of the demo API's user with the password in `file`, and `extra`.
fn api_lines(file: &Path, extra: &str) -> String {
    format!(
        "api_user = \"{}\"\napi_password_file = \"{}\"\n{extra}",
        fake_exalate_node::DEMO_API_USER,
        file.display()
    )
}

/// The logins the node was asked for, refused ones too.
fn login_requests(node: &fake_exalate_node::FakeNode) -> usize {
    node.requests()
        .iter()
        .filter(|r| r.method == "POST" && r.raw_path.ends_with("/rest/issuehub/4.0/authenticate"))
        .count()
}

/// Issue 24: the demo node's own API through a login: "logged in", both
/// totals, every connection with its status (not ACTIVE: a warning), the
/// relations that are connections ok, and the connections the config does
/// not list shown as not monitored. One login for the whole check; no
/// password or JWT in the output.
#[test]
fn the_node_api_through_a_login_with_connections_not_monitored() {
    let env = TestEnv::new("check-api-login");
    let password = api_password(&env, "api.password", fake_exalate_node::DEMO_API_PASSWORD);
    env.write_config(&env.node_section("demo", &[&api_lines(&password, "api_login = true")]));
    share_with_zabbix(&env);
    let zdir = zabbix_dir(&env, 3, true);
    let logins = env.node.login_count();
    let (code, text, _) = run(&env, &zdir, &[]);
    assert_eq!(env.node.login_count(), logins + 1, "one login per check");
    assert_eq!(login_requests(&env.node), 1, "one login asked");
    assert_eq!(code, 0, "{text}");
    let not_monitored = "not monitored: add it to relations to watch its queues";
    for line in [
        row(
            "ok",
            "api credentials",
            &format!(
                "a login (api_login), api_user 'zabbix-monitor', api_password_file {}, then X-Exalate-Jwt: logged in",
                password.display()
            ),
        ),
        row("ok", "node queues", "outgoing 1500, incoming 420"),
        row(
            "ok",
            "connection 'AllContent'",
            "ACTIVE, remote https://partner.example.com/jira; in relations",
        ),
        row(
            "ok",
            "connection 'Service Desk'",
            "ACTIVE, remote https://support.example.net; in relations",
        ),
        row(
            "WARN",
            "connection 'Jira Cloud/EU'",
            "DEACTIVATED, remote https://eu-tenant.atlassian.net; in relations",
        ),
        row(
            "WARN",
            "connection 'Zürich Ops'",
            &format!("PENDING, remote https://zuerich.example.ch/jira; {not_monitored}"),
        ),
        row(
            "--",
            "connection 'Old Partner'",
            &format!("ACTIVE, no remote URL; {not_monitored}"),
        ),
        row(
            "WARN",
            "connection 'Legacy Sync'",
            &format!("ERROR, remote https://legacy.example.org; {not_monitored}"),
        ),
    ] {
        assert!(text.contains(&line), "{line:?} in {text}");
    }
    assert!(
        text.contains("fix: a deactivated connection pauses synchronisation and queues changes without an error: activate it"),
        "{text}"
    );
    // The node's lines in order: the API's credentials and totals, the
    // relations, then the connections.
    let at = |what: &str| {
        text.find(what)
            .unwrap_or_else(|| panic!("{what} in {text}"))
    };
    assert!(at(" api credentials ") < at(" node queues "));
    assert!(at(" node queues ") < at(" relation 'AllContent' "));
    assert!(at(" relation 'Jira Cloud/EU' ") < at(" connection 'AllContent' "));
    assert!(
        text.contains("\nRESULT  0 failures, 3 warnings: it works; see the WARN lines (exit 0)\n"),
        "{text}"
    );

    let report = json(&env, &zdir);
    assert_eq!(
        (report["exit_code"].as_i64(), report["failures"].as_i64()),
        (Some(0), Some(0))
    );
    let credentials = node_line(&report, "demo", "api credentials");
    assert_eq!(credentials["status"], "ok", "{credentials}");
    assert!(
        credentials["detail"]
            .as_str()
            .unwrap()
            .ends_with(", then X-Exalate-Jwt: logged in"),
        "{credentials}"
    );
    let queues = node_line(&report, "demo", "node queues");
    assert_eq!(
        queues["counts"],
        serde_json::json!({"outgoing": 1500, "incoming": 420})
    );
    let connections: Vec<(String, String, bool, String)> = report["nodes"][0]["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["connection"]["name"].as_str().unwrap().to_string(),
                c["connection"]["status"].as_str().unwrap().to_string(),
                c["connection"]["monitored"].as_bool().unwrap(),
                c["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected = [
        ("AllContent", "ACTIVE", true, "ok"),
        ("Service Desk", "ACTIVE", true, "ok"),
        ("Jira Cloud/EU", "DEACTIVATED", true, "warn"),
        ("Zürich Ops", "PENDING", false, "warn"),
        ("Old Partner", "ACTIVE", false, "skip"),
        ("Legacy Sync", "ERROR", false, "warn"),
    ]
    .map(|(n, s, m, l)| (n.to_string(), s.to_string(), m, l.to_string()));
    assert_eq!(connections, expected);
    let old = node_line(&report, "demo", "connection 'Old Partner'");
    assert_eq!(old["connection"]["remote"], "", "{old}");
    assert_eq!(
        node_line(&report, "demo", "connection 'AllContent'")["connection"]["remote"],
        "https://partner.example.com/jira"
    );
}

/// Issue 24: a rejected login is tried once, fails its own line naming
/// the password file (never the password), and the totals and connections
/// say why they are not known; the relations (issuehub 2.4) still work.
#[test]
fn a_rejected_login_fails_once_naming_the_file() {
    let env = TestEnv::new("check-api-rejected");
    let wrong = api_password(&env, "wrong.password", "not-the-password-5678");
    env.write_config(&env.node_section("demo", &[&api_lines(&wrong, "api_login = true")]));
    share_with_zabbix(&env);
    let zdir = zabbix_dir(&env, 3, true);
    let report = json(&env, &zdir);
    assert_eq!(login_requests(&env.node), 1, "one login tried");
    assert_eq!(env.node.login_count(), 0);
    assert_eq!(report["exit_code"], 1, "{report}");
    assert_eq!(report["failures"], 1, "only the credentials: {report}");
    let detail = format!(
        "node 'demo', API: login rejected (HTTP 401): check api_user and the password in api_password_file {}",
        wrong.display()
    );
    let credentials = node_line(&report, "demo", "api credentials");
    assert_eq!(credentials["status"], "fail", "{credentials}");
    assert_eq!(credentials["detail"], detail.as_str());
    assert!(
        credentials["fix"]
            .as_str()
            .unwrap()
            .contains("can log in to the node's Exalate"),
        "{credentials}"
    );
    for what in ["node queues", "connections"] {
        let line = node_line(&report, "demo", what);
        assert_eq!(line["status"], "skip", "{line}");
        assert_eq!(
            line["detail"],
            "not known: the API credentials fail (see above)"
        );
    }
    assert_eq!(
        node_line(&report, "demo", "relation 'AllContent'")["status"],
        "ok"
    );
    let (code, text, _) = run(&env, &zdir, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(&row("FAIL", "api credentials", &detail)),
        "{text}"
    );
    assert!(
        text.contains(&row(
            "--",
            "connections",
            "not known: the API credentials fail (see above)"
        )),
        "{text}"
    );
    assert!(!text.contains("connection '"), "{text}");
    assert!(text.contains("\nRESULT  1 failure, "), "{text}");
}

/// Issue 24: nodes with only API credentials (no relations, no 2.4
/// credentials), over Basic and Bearer: the check works, the ping goes
/// through the 4.0 API, each connection shows its status; rejected
/// credentials fail the ping and the credentials' line.
#[test]
fn a_node_with_only_api_credentials() {
    let env = TestEnv::new("check-api-only");
    let password = api_password(&env, "api.password", fake_exalate_node::DEMO_API_PASSWORD);
    let token = env.dir.join("api.token");
    write_file(&token, fake_exalate_node::DEMO_API_TOKEN, 0o600);
    let wrong = api_password(&env, "wrong.password", "not-the-password-5678");
    let url = env.node.url();
    env.write_config(&format!(
        "[nodes.basic]\nurl = \"{url}\"\n{}\n[nodes.bearer]\nurl = \"{url}\"\napi_token_file = \"{}\"\n\n[nodes.rejected]\nurl = \"{url}\"\n{}",
        api_lines(&password, ""),
        token.display(),
        api_lines(&wrong, ""),
    ));
    share_with_zabbix(&env);
    let zdir = zabbix_dir(&env, 3, true);
    let (code, text, _) = run(&env, &zdir, &[]);
    assert_eq!(code, 1, "{text}");
    let ping =
        "exalate.node.ping = 1 (through the 4.0 API: the node has no issuehub 2.4 credentials)";
    for (node, credentials) in [
        (
            "basic",
            format!(
                "HTTP Basic, api_user 'zabbix-monitor', api_password_file {}: accepted",
                password.display()
            ),
        ),
        (
            "bearer",
            format!(
                "Authorization: Bearer, api_token_file {}: accepted",
                token.display()
            ),
        ),
    ] {
        let section = node_text(&text, node);
        for line in [
            row("ok", "credentials", ping),
            row("ok", "api credentials", &credentials),
            row("ok", "node queues", "outgoing 1500, incoming 420"),
            row(
                "ok",
                "connection 'AllContent'",
                "ACTIVE, remote https://partner.example.com/jira; its status only (the node has no issuehub 2.4 credentials for its queues)",
            ),
            row(
                "ok",
                "connection 'Old Partner'",
                "ACTIVE, no remote URL; its status only (the node has no issuehub 2.4 credentials for its queues)",
            ),
            "        relations                    none (the node is watched as a whole, through its 4.0 API)\n".to_string(),
        ] {
            assert!(section.contains(&line), "{line:?} in {section}");
        }
        assert!(
            section.contains("  WARN  connection 'Legacy Sync' "),
            "{section}"
        );
        assert!(!section.contains(" relation '"), "{section}");
        assert!(!section.contains("FAIL"), "{section}");
    }
    let rejected = format!(
        "node 'rejected', API: credentials rejected (HTTP 401): check api_user and the password in api_password_file {}",
        wrong.display()
    );
    let section = node_text(&text, "rejected");
    for line in [
        row(
            "FAIL",
            "credentials",
            &format!("exalate.node.ping = 0 (through the 4.0 API: the node has no issuehub 2.4 credentials): {rejected}"),
        ),
        row("FAIL", "api credentials", &rejected),
    ] {
        assert!(section.contains(&line), "{line:?} in {section}");
    }

    let report = json(&env, &zdir);
    assert_eq!(
        report["failures"], 2,
        "the rejected node's two lines: {report}"
    );
    for node in report["nodes"].as_array().unwrap() {
        assert_eq!(node["relations"], serde_json::json!([]), "{node}");
    }
    for node in ["basic", "bearer"] {
        assert_eq!(node_line(&report, node, "credentials")["detail"], ping);
        assert_eq!(
            node_line(&report, node, "node queues")["counts"],
            serde_json::json!({"outgoing": 1500, "incoming": 420})
        );
        let legacy = node_line(&report, node, "connection 'Legacy Sync'");
        assert_eq!(legacy["status"], "warn", "{legacy}");
        assert_eq!(legacy["connection"]["monitored"], false, "{legacy}");
    }
    // Neither the 2.4 API nor a login was asked by any of them.
    let requests = env.node.requests();
    assert!(
        requests.iter().all(|r| r.relation.is_none()),
        "a 2.4 request"
    );
    assert_eq!(login_requests(&env.node), 0);
}

/// Issue 24: a configured relation that is not a connection on the node
/// fails by name, listing the node's connections and the nearest name,
/// with what issuehub 2.4 said of it (not found; or found, when only the
/// 4.0 API does not list it: its counts kept).
#[test]
fn a_relation_not_on_the_node_fails_by_name() {
    let env = TestEnv::with_node(
        "check-api-relation",
        NodeConfig::demo().with_relation("Hidden", [4, 0, 0, 0, 0, 0]),
    );
    let password = api_password(&env, "api.password", fake_exalate_node::DEMO_API_PASSWORD);
    env.write_config(
        &env.node_section("demo", &[&api_lines(&password, "api_login = true")])
            .replace("\"AllContent\"", "\"AllContnet\"")
            .replace("\"Jira Cloud/EU\"", "\"Hidden\""),
    );
    share_with_zabbix(&env);
    let zdir = zabbix_dir(&env, 3, true);
    let report = json(&env, &zdir);
    assert_eq!(report["exit_code"], 1, "{report}");
    assert_eq!(report["failures"], 2, "the two relations: {report}");
    let listing = "not a connection on the node (its connections: 'AllContent', 'Service Desk', 'Jira Cloud/EU', 'Zürich Ops', 'Old Partner', 'Legacy Sync')";
    let typo = node_line(&report, "demo", "relation 'AllContnet'");
    assert_eq!(typo["status"], "fail", "{typo}");
    let detail = typo["detail"].as_str().unwrap();
    assert!(
        detail.starts_with(&format!("{listing}; issuehub 2.4: node 'demo', relation 'AllContnet': relation not found on the node (HTTP 400")),
        "{typo}"
    );
    assert!(
        typo["fix"].as_str().unwrap().starts_with("did you mean 'AllContent'? write it in relations exactly as the node names the connection"),
        "{typo}"
    );
    let hidden = node_line(&report, "demo", "relation 'Hidden'");
    assert_eq!(hidden["status"], "fail", "{hidden}");
    assert!(
        hidden["detail"].as_str().unwrap().starts_with(&format!(
            "{listing}; issuehub 2.4 answers for it: syncrequests 4, blobrequests 0,"
        )),
        "{hidden}"
    );
    assert_eq!(hidden["counts"]["syncrequests"], 4, "{hidden}");
    assert!(
        hidden["fix"]
            .as_str()
            .unwrap()
            .starts_with("write it in relations"),
        "no name near 'Hidden': {hidden}"
    );
    assert_eq!(
        node_line(&report, "demo", "relation 'Service Desk'")["status"],
        "ok"
    );
    // The connection the typo meant: not monitored.
    let meant = node_line(&report, "demo", "connection 'AllContent'");
    assert_eq!(
        (
            meant["status"].as_str(),
            meant["connection"]["monitored"].as_bool()
        ),
        (Some("skip"), Some(false)),
        "{meant}"
    );
    let (code, text, _) = run(&env, &zdir, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(&format!(
            "  FAIL  relation 'AllContnet'        {listing}; issuehub 2.4: "
        )),
        "{text}"
    );
    assert!(text.contains("fix: did you mean 'AllContent'? "), "{text}");
}

/// Issue 24 in the check's design: the API step has one deadline (the
/// node's timeout) for its three calls, and the first that times out ends
/// it: a node whose API hangs costs one timeout, not three.
#[test]
fn a_hung_api_costs_one_timeout() {
    use fake_exalate_node::{Api, ApiFault};
    let env = TestEnv::with_node(
        "check-api-hang",
        NodeConfig::demo().with_api(Api::demo().with_fault(ApiFault::from_name("hang").unwrap())),
    );
    let password = api_password(&env, "api.password", fake_exalate_node::DEMO_API_PASSWORD);
    env.write_config(&format!(
        "[nodes.hang]\nurl = \"{}\"\ntimeout = 2\n{}",
        env.node.url(),
        api_lines(&password, "")
    ));
    let zdir = zabbix_dir(&env, 3, true);
    let run = watch(
        &env,
        check_command(&env, &zdir, &["--json"]),
        Duration::from_secs(30),
    );
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let timeout = "node 'hang', API: timeout after 2 s";
    let expected = [
        ("credentials", "fail", format!("exalate.node.ping = 0 (through the 4.0 API: the node has no issuehub 2.4 credentials): {timeout}")),
        ("api credentials", "skip", format!(
            "HTTP Basic, api_user 'zabbix-monitor', api_password_file {}: not known, the API did not answer (see below)",
            password.display()
        )),
        ("node queues", "fail", format!("outgoing: {timeout}; incoming not asked")),
        ("connections", "skip", "not asked after the failure above".to_string()),
    ];
    for (what, status, detail) in expected {
        let line = node_line(&report, "hang", what);
        assert_eq!(
            (line["status"].as_str(), line["detail"].as_str()),
            (Some(status), Some(detail.as_str())),
            "{line}"
        );
    }
    // One timeout (2 s) and the path's steps; three calls in turn would be three.
    eprintln!("the check took {:?}", run.took);
    assert!(
        run.took < Duration::from_secs(4),
        "{:?}: {}",
        run.took,
        run.stdout
    );
}
