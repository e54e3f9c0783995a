//! A C program that loads the module exactly as zabbix_agentd does (dlopen,
//! api version, item list written in place, agent-shaped request/result,
//! results freed with free()), run plain and under valgrind.

pub mod common;

use common::*;

fn run_host(env: &TestEnv, wrapper: &[&str], calls: &[&str]) -> (String, String) {
    let exe = build_module_host(&env.dir, "module_host", &[]);
    let out = wrapped(wrapper, &exe)
        .arg(module_path())
        .args(calls)
        .env("EXALATE_ZABBIX_CONFIG", &env.config_path)
        .output()
        .expect("run module_host");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let summary: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("SUMMARY") || l.contains("lost:"))
        .collect();
    assert!(
        out.status.success(),
        "module_host failed: {:?}\n{}\n{summary:#?}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    env.assert_no_secrets(&stdout);
    (stdout, stderr)
}

const CALLS: [&str; 12] = [
    "--list",
    // Room for a value under valgrind on a busy machine (3 s by default).
    "--agent-timeout=8",
    "exalate.queue.count|demo|AllContent|syncrequests",
    "exalate.queue.get|demo|AllContent|errorresponses",
    "exalate.relation.stats||Service Desk",
    "exalate.discovery",
    "exalate.module.version",
    "exalate.queue.count|demo|Gone|syncrequests",
    "exalate.queue.count|demo|AllContent",
    "exalate.node.errors|demo",
    "exalate.node.queue|demo|incoming",
    "exalate.node.connections|demo",
];

/// The test env's demo node, its 4.0 API through a login as well.
fn with_api(env: &TestEnv) {
    add_api_secrets();
    add_secret(fake_exalate_node::DEMO_API_PASSWORD);
    let password = env.dir.join("api.password");
    write_file(&password, fake_exalate_node::DEMO_API_PASSWORD, 0o600);
    let user = format!("api_user = \"{}\"", fake_exalate_node::DEMO_API_USER);
    let file = format!("api_password_file = \"{}\"", password.display());
    env.write_config(&env.node_section("demo", &[&user, &file, "api_login = true"]));
}

fn check_lines(stdout: &str) {
    let lines: Vec<&str> = stdout.lines().collect();
    let items: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("ITEM "))
        .copied()
        .collect();
    assert_eq!(
        items,
        [
            "ITEM exalate.queue.count flags=3 test_param=,AllContent,syncrequests",
            "ITEM exalate.queue.get flags=3 test_param=,AllContent,errorresponses",
            "ITEM exalate.relation.stats flags=3 test_param=,AllContent",
            "ITEM exalate.discovery flags=2 test_param=(null)",
            "ITEM exalate.node.ping flags=3 test_param=",
            "ITEM exalate.node.errors flags=3 test_param=",
            "ITEM exalate.node.queue flags=3 test_param=,outgoing",
            "ITEM exalate.node.connections flags=3 test_param=",
            "ITEM exalate.module.version flags=2 test_param=(null)",
        ]
    );
    let results = &lines[items.len()..];
    assert_eq!(results[0], "OK u 3");
    assert!(
        results[1].starts_with("OK t [{") && results[1].contains("errorReason"),
        "{}",
        results[1]
    );
    assert!(
        results[2].starts_with("OK t {\"syncrequests\":0,"),
        "{}",
        results[2]
    );
    assert!(
        results[3]
            .starts_with("OK t [{\"{#API}\":\"1\",\"{#CMONITOR}\":\"0\",\"{#NODE}\":\"demo\""),
        "{}",
        results[3]
    );
    assert_eq!(results[4], format!("OK s {}", env!("CARGO_PKG_VERSION")));
    assert!(results[5]
        .starts_with("FAIL node 'demo', relation 'Gone', queue syncrequests: relation not found"));
    assert!(results[6].starts_with("FAIL wrong number of parameters"));
    assert!(
        results[7].starts_with(
            "FAIL node 'demo': no customer monitor endpoint configured (cmonitor_url)"
        ),
        "{}",
        results[7]
    );
    assert_eq!(results[8], "OK u 420");
    assert!(
        results[9].starts_with("OK t [{\"name\":\"AllContent\",\"status\":\"ACTIVE\","),
        "{}",
        results[9]
    );
    assert_eq!(results.len(), 10);
}

#[test]
fn c_host_loads_and_calls_the_module() {
    let env = TestEnv::new("module-host");
    with_api(&env);
    let (stdout, _) = run_host(&env, &[], &CALLS);
    check_lines(&stdout);
}

#[test]
fn c_host_under_valgrind_has_no_errors_or_leaks() {
    let env = TestEnv::new("module-host-valgrind");
    with_api(&env);
    let (stdout, stderr) = run_host(&env, &VALGRIND, &CALLS);
    check_lines(&stdout);
    assert!(stderr.contains("ERROR SUMMARY: 0 errors"), "{stderr}");
    assert!(
        stderr.contains("definitely lost: 0 bytes")
            || stderr.contains("All heap blocks were freed"),
        "{stderr}"
    );
}

/// Issue 11: zbx_module_uninit took the monitor inside catch_unwind but
/// dropped it outside: a panic in a drop there aborted the agent. With
/// fault injection, a secret of a magic text panics when dropped in uninit.
#[cfg(feature = "fault-injection")]
#[test]
fn a_panic_while_uninit_drops_the_monitor_does_not_abort_the_host() {
    let env = TestEnv::new("module-host-uninit-panic");
    write_file(
        &env.dir.join("demo.secret"),
        "exalate-test-panic-on-drop",
        0o600,
    );
    let exe = build_module_host(&env.dir, "module_host", &[]);
    let out = std::process::Command::new(&exe)
        .arg(module_path())
        .arg("exalate.queue.count|demo|AllContent|syncrequests")
        .env("EXALATE_ZABBIX_CONFIG", &env.config_path)
        .output()
        .expect("run module_host");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("FAIL node 'demo', relation 'AllContent', queue syncrequests: credentials rejected (HTTP 401)"),
        "{stdout}"
    );
    // The panic is caught: uninit reports ZBX_MODULE_FAIL (the host exits
    // 1), where it used to abort (SIGABRT).
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
}
