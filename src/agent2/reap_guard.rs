//! How the registration run keeps clear of a 6.0 agent 2's start-up race.
//!
//! Agent 2 6.0.x reaps a plugin's registration run from a goroutine that
//! calls `wait4(-1, WNOHANG)` on SIGCHLD and panics when that fails; moments
//! later its daemon installs a SIGCHLD handler of its own that also calls
//! `wait4(-1)`. An exit that reaches the agent after that wakes both, and if
//! the daemon's handler reaps the plugin first, the goroutine finds no child
//! at all: "panic: failed to obtain PID of dead child process: no child
//! processes" (reference §7.1). Exiting at once narrows the window, but not
//! enough on a loaded machine.
//!
//! `wait4` with WNOHANG fails only when the agent has no child left. So just
//! before it exits, the registration run gives the agent one more child for
//! a moment: a sibling made with `clone(CLONE_PARENT)`, which runs this
//! executable as `--reap-guard PID AGENT` (nothing else in it looks like the
//! plugin). While it lives, the goroutine's `wait4` reaps the plugin or
//! returns 0, never an error. The guard waits until the agent has reaped
//! PID, a little more for the goroutine, and exits; the daemon's handler
//! reaps it and finds it is no plugin's process. Only for agents whose
//! protocol version says 6.0 or 6.2: later ones wait for their plugin's own
//! pid and have no such race.

use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

/// The guard's first argument.
pub(crate) const FLAG: &str = "--reap-guard";
/// Protocol versions of agents with the race (6.0.0-era, 6.0.13+, 6.2).
pub(crate) const RACY_VERSIONS: [&str; 3] = ["1.0", "6.0.13", "6.2.7"];
/// The agent reaps the registration run within milliseconds; a guard that
/// sees no reap gives up after this.
const WAIT_FOR_REAP: Duration = Duration::from_secs(10);
/// After the reap, the goroutine's own `wait4` follows at once; this is
/// ample even when the machine is busy.
const AFTER_REAP: Duration = Duration::from_millis(500);

/// Leaves the guard behind as a child of the agent; best effort (without
/// it, the plain exit that follows is what the SDK's plugins do).
#[allow(unsafe_code)]
pub(crate) fn spawn() {
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    // SAFETY: getppid cannot fail.
    let agent = unsafe { libc::getppid() };
    let (Ok(exe), Ok(flag), Ok(pid), Ok(agent)) = (
        CString::new(exe.as_os_str().as_bytes()),
        CString::new(FLAG),
        CString::new(std::process::id().to_string()),
        CString::new(agent.to_string()),
    ) else {
        return;
    };
    let argv = [
        exe.as_ptr(),
        flag.as_ptr(),
        pid.as_ptr(),
        agent.as_ptr(),
        std::ptr::null(),
    ];
    // SAFETY: clone with no new stack behaves as fork. The registration run
    // has a single thread, and the child only calls execv and _exit, both
    // async-signal-safe; the socket is close-on-exec, so the agent still
    // sees it close when the plugin exits.
    unsafe {
        let child = libc::syscall(
            libc::SYS_clone,
            (libc::CLONE_PARENT | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        );
        if child == 0 {
            libc::execv(exe.as_ptr(), argv.as_ptr());
            libc::_exit(0);
        }
    }
}

/// The guard's whole life: until the agent has reaped `pid` (or `pid` is a
/// zombie: exited, the agent's to reap now), then a moment. It ends at once
/// when its agent is gone (it was reparented) and on SIGTERM or SIGINT: a
/// systemd stop signals the whole group and must not wait for it.
#[allow(unsafe_code)]
pub(crate) fn run(pid: Option<&OsStr>, agent: Option<&OsStr>) -> i32 {
    // SAFETY: setting signal dispositions back to the default; the
    // registration run ignored these, and an ignored signal stays ignored
    // across execv.
    unsafe {
        libc::signal(libc::SIGTERM, libc::SIG_DFL);
        libc::signal(libc::SIGINT, libc::SIG_DFL);
    }
    let Some(pid) = pid
        .and_then(|p| std::str::from_utf8(p.as_bytes()).ok())
        .and_then(|p| p.parse::<u32>().ok())
    else {
        return 2;
    };
    // The agent, the guard's parent (CLONE_PARENT): named by the plugin, as
    // it may be gone before the guard runs.
    let agent = agent
        .and_then(|p| std::str::from_utf8(p.as_bytes()).ok())
        .and_then(|p| p.parse::<libc::pid_t>().ok())
        // SAFETY: getppid cannot fail.
        .unwrap_or_else(|| unsafe { libc::getppid() });
    // SAFETY: as above.
    let agent_gone = || unsafe { libc::getppid() } != agent;
    // A sibling, not the parent: the reap shows only as /proc/PID going away.
    let started = Instant::now();
    while !is_gone_or_zombie(pid) && started.elapsed() < WAIT_FOR_REAP {
        if agent_gone() {
            return 0;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let after = Instant::now();
    while after.elapsed() < AFTER_REAP {
        if agent_gone() {
            return 0;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    0
}

/// Whether process `pid` is gone or a zombie (state 'Z' in /proc/PID/stat;
/// 'X' dead): /proc/PID exists for a zombie too.
fn is_gone_or_zombie(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    // The name, in parentheses, may hold anything: the state follows the last ')'.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    matches!(state, None | Some('Z') | Some('X'))
}
