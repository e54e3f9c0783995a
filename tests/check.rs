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
        "  ok    credentials                exalate.node.ping = 1 (the node's credentials, asking relation 'AllContent')",
        "  ok    relation 'Service Desk'    syncrequests 0, blobrequests 0, syncresponses 1, blobresponses 0, errorresponses 0, bloberrorresponses 0",
        "RESULT  0 failures, ",
    ] {
        assert!(text.contains(line), "{line:?} in {text}");
    }
    // The effective values: defaults applied, the relation's own file named.
    assert!(
        text.contains("        cache_ttl                10 s\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "auth of 'Jira Cloud/EU'  jwt_secret_file {} (iss 'EXALATE'",
            env.dir.join("eu.secret").display()
        )),
        "{text}"
    );
    let report = json(&env, &zdir);
    assert_eq!(report["exit_code"], 0);
    assert_eq!(report["failures"], 0);
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
            "  FAIL  config                     config {} line 7: ",
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
            "  FAIL  read jwt_secret_file       {} not readable by zabbix: Permission denied",
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
        "  FAIL  relation 'AllContnet'      node 'demo', relation 'AllContnet': credentials rejected (HTTP 401)",
        "  FAIL  relation 'Jira Cloud/EU'   node 'demo', relation 'Jira Cloud/EU': credentials rejected (HTTP 401)",
        "  ok    relation 'Service Desk' ",
        "  FAIL  dns                        cannot resolve exalate.far.invalid",
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
        terminal.contains("exalate-zabbix check: 1 node(s), each checked at once...")
            && terminal.contains("  node demo checked ("),
        "{terminal}"
    );
    let report = std::fs::read_to_string(env.dir.join("stdout")).unwrap();
    assert!(
        report.contains("  ok    relation 'AllContent' "),
        "{report}"
    );
    assert!(!report.contains("checked at once"), "{report}");
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
        let line = node_line(&report, "demo", "customer monitor");
        assert_eq!(line["status"], status, "{line}");
        assert!(line.to_string().contains(detail), "{detail:?} in {line}");
        assert_eq!(report["exit_code"], code, "{report}");
    }
}
