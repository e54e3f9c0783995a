//! Agent generations through the C host (tests/c/module_host.c), under
//! valgrind: a 6.0-shaped request (48 bytes) is never read past its end and
//! the agent's global Timeout applies; a 7.0-shaped request in a process that
//! exports what 7.0 agents export gives the item's own timeout. A control run
//! proves valgrind would catch the read: a 48-byte request in a process that
//! claims to be 7.0 is reported.

pub mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How the C host is built: the request layout and whether it exports the
/// 7.0 marker symbol.
#[derive(Clone, Copy, Debug)]
enum Host {
    /// 5.0 to 6.4: 48-byte request, no marker.
    Agent60,
    /// 7.0+: 56-byte request with `timeout`, marker exported.
    Agent70,
    /// Not a real agent: a 48-byte request, marker exported.
    Mismatch,
}

fn build_host(dir: &Path, host: Host) -> PathBuf {
    let defines: &[&str] = match host {
        Host::Agent60 => &[],
        Host::Agent70 => &[
            "-DAGENT_REQUEST_TIMEOUT",
            "-DEXPORT_ITEM_TIMEOUT_MARKER",
            "-rdynamic",
        ],
        Host::Mismatch => &["-DEXPORT_ITEM_TIMEOUT_MARKER", "-rdynamic"],
    };
    build_module_host(dir, &format!("module_host_{host:?}"), defines)
}

struct Run {
    ok: bool,
    stdout: String,
    valgrind: String,
    took: Duration,
}

fn valgrind_host(env: &TestEnv, host: Host, calls: &[&str]) -> Run {
    let exe = build_host(&env.dir, host);
    let started = Instant::now();
    let out = wrapped(&VALGRIND, &exe)
        .arg(module_path())
        .args(calls)
        .env("EXALATE_ZABBIX_CONFIG", &env.config_path)
        .output()
        .expect("run valgrind");
    let run = Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).to_string(),
        valgrind: String::from_utf8_lossy(&out.stderr).to_string(),
        took: started.elapsed(),
    };
    env.assert_no_secrets(&run.stdout);
    env.assert_no_secrets(&run.valgrind);
    run
}

const HANG: &str = "exalate.queue.count|demo|fault-hang|syncrequests";
const GOOD: &str = "exalate.queue.count|demo|AllContent|syncrequests";

/// The agent Timeout the runs hand the module: room for a value under
/// valgrind on a busy machine, where the default 3 s is not.
const AGENT_TIMEOUT: &str = "--agent-timeout=8";
const AGENT_TIMEOUT_SECS: u64 = 8;

fn hang_message(secs: u64) -> String {
    format!("FAIL node 'demo', relation 'fault-hang', queue syncrequests: timeout after {secs} s.")
}

fn assert_clean(run: &Run) {
    assert!(run.ok, "{}\n{}", run.stdout, excerpt_errors(&run.valgrind));
    assert!(
        run.valgrind.contains("ERROR SUMMARY: 0 errors"),
        "{}",
        run.valgrind
    );
}

fn excerpt_errors(valgrind: &str) -> String {
    valgrind
        .lines()
        .filter(|l| l.contains("Invalid") || l.contains("SUMMARY") || l.contains("after a block"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn agent_6_0_request_is_never_read_past_and_uses_the_global_timeout() {
    let env = TestEnv::new("abi-60");
    // The per-item timeout option is ignored: a 6.0 request has no such field.
    // (The hang goes first: valgrind's slow start-up counts against no value.)
    let run = valgrind_host(
        &env,
        Host::Agent60,
        &[AGENT_TIMEOUT, "--item-timeout=1", HANG, GOOD],
    );
    assert_clean(&run);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines, [hang_message(AGENT_TIMEOUT_SECS).as_str(), "OK u 3"]);
    assert!(
        run.took >= Duration::from_secs(AGENT_TIMEOUT_SECS),
        "{:?}",
        run.took
    );
}

#[test]
fn agent_7_0_request_gives_the_item_timeout() {
    let env = TestEnv::new("abi-70");
    let run = valgrind_host(
        &env,
        Host::Agent70,
        &[
            AGENT_TIMEOUT,
            "--item-timeout=1",
            HANG,
            "--item-timeout=30",
            GOOD,
            "--item-timeout=0",
            GOOD,
        ],
    );
    assert_clean(&run);
    let lines: Vec<&str> = run.stdout.lines().collect();
    // Timeout 1 s from the request, not the agent's; 0 (undefined) falls back.
    assert_eq!(lines, [hang_message(1).as_str(), "OK u 3", "OK u 3"]);
}

#[test]
fn agent_7_0_request_past_the_agent_timeout() {
    // An item timeout longer than the agent's Timeout (3) is used as is.
    let env = TestEnv::new("abi-70-long");
    let run = valgrind_host(&env, Host::Agent70, &["--item-timeout=4", HANG]);
    assert_clean(&run);
    assert_eq!(run.stdout.trim(), hang_message(4));
    assert!(run.took >= Duration::from_secs(4), "{:?}", run.took);
}

#[test]
fn control_valgrind_would_see_a_read_past_a_6_0_request() {
    // A process that exports the 7.0 marker but passes 6.0's 48-byte request
    // (no real agent does): the module reads offset 48, and valgrind says so.
    // This is what the 6.0 test above would report, were the field read there.
    let env = TestEnv::new("abi-mismatch");
    let run = valgrind_host(&env, Host::Mismatch, &[GOOD]);
    assert!(!run.ok, "valgrind should fail the run:\n{}", run.valgrind);
    assert!(
        run.valgrind.contains("Invalid read of size 4")
            && run
                .valgrind
                .contains("0 bytes after a block of size 48 alloc'd"),
        "{}",
        excerpt_errors(&run.valgrind)
    );
}
