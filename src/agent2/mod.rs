//! Front end 2: Zabbix agent 2's loadable-plugin protocol, spoken directly
//! (no Go, no SDK). Agent 2 starts the plugin as `PATH SOCKET true|false`;
//! the plugin connects to the agent's socket and answers framed JSON
//! (`frame`, `message`). The registration run (`true`) only names the
//! plugin and its keys; the operational run (`false`) answers exports, each
//! on a pool thread (`pool`) through the shared item layer.
//!
//! Agent 2 has no plugin restart: a plugin that dies takes the whole agent
//! down, and a 6.0 agent can panic if the registration run exits late. So:
//! SIGINT/SIGTERM are ignored (the agent terminates us itself), terminate
//! exits at once, nothing but the protocol is done before it, every export
//! runs under `catch_unwind`, and nothing is written to stdout/stderr (the
//! agent's log gets protocol log messages). Facts and sources:
//! `zabbix-agent2-plugin-protocol.md` of the shared reference.

pub mod frame;
pub mod message;
mod options;
mod pool;
mod reap_guard;

use crate::config;
use crate::items::{self, Item, ItemTiming};
use crate::lock::lock;
use crate::monitor::Monitor;
use crate::timeout;
use message::{kind, Request, Severity};
use options::PrivateOptions;
use serde_json::Value;
use std::ffi::OsString;
use std::io::{ErrorKind as IoErrorKind, Write};
use std::os::unix::net::UnixStream;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The plugin's name: agent 2's config says `Plugins.Exalate.System.Path=...`.
pub(crate) const PLUGIN_NAME: &str = "Exalate";
/// Protocol versions agents send (6.0.0-era, 6.0.13+, 6.2, 6.4 and 7.0);
/// others are accepted with a warning, the wire format has only grown.
pub(crate) const KNOWN_VERSIONS: [&str; 4] = ["1.0", "6.0.13", "6.2.7", "6.4.0"];
/// The agent's socket is there at once; the Go SDK also retries for 3 s.
const CONNECT_FOR: Duration = Duration::from_secs(3);
/// The registration run exits when the agent says nothing for longer than
/// its longest PluginTimeout (30 s): a 7.0 agent that refused the
/// registration waits for us to exit and would otherwise hang.
const REGISTRATION_WATCHDOG: Duration = Duration::from_secs(35);
/// Exports answered at once; more wait in the queue (agent 2 itself sends at
/// most its Capacity, 100 in 6.0 and 1000 in 7.0, at a time). At most
/// MAX_THREADS ask nodes, at most PER_NODE_THREADS of them the same node (a
/// hung node holds only those), and LOCAL_THREADS more answer the items
/// without network (module.version, discovery), which never wait behind
/// network jobs.
const MAX_THREADS: usize = 64;
const PER_NODE_THREADS: usize = 16;
const LOCAL_THREADS: usize = 4;
const MAX_QUEUED: usize = 4096;
/// A write the agent does not take within this is given up (the frame it
/// cut is finished later; see [`Writer`]).
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Test builds: `PATH SOCKET false --write-timeout-ms=N` sets a shorter one.
#[cfg(feature = "fault-injection")]
const WRITE_TIMEOUT_ARG: &str = "--write-timeout-ms=";

/// The register response's key list: every item of the contract, with the
/// description `zabbix_agent2 -R metrics` shows.
pub(crate) fn metrics() -> Vec<(&'static str, &'static str)> {
    Item::ALL
        .iter()
        .map(|&i| (i.key(), i.spec().description))
        .collect()
}

/// The executable's whole life; never returns.
pub fn main() -> ! {
    let args: Vec<OsString> = std::env::args_os().collect();
    // The reap guard must end on a stop's SIGTERM (see `reap_guard::run`).
    if args.get(1).is_none_or(|a| a != reap_guard::FLAG) {
        ignore_group_signals();
    }
    // Panics are caught and reported through the items; never to stderr.
    std::panic::set_hook(Box::new(|_| {}));
    let code = catch_unwind(AssertUnwindSafe(|| run(&args))).unwrap_or(1);
    std::process::exit(code)
}

/// What `main` runs, with the process's arguments; the exit code. Public so
/// that a test can run the plugin in its own process and count its heap.
pub fn run(args: &[OsString]) -> i32 {
    if args.get(1).is_some_and(|a| a == reap_guard::FLAG) {
        return reap_guard::run(
            args.get(2).map(|a| a.as_os_str()),
            args.get(3).map(|a| a.as_os_str()),
        );
    }
    let Some(socket) = args
        .get(1)
        .filter(|a| !a.as_encoded_bytes().starts_with(b"-"))
    else {
        // Not started by the agent: a person at a terminal.
        eprintln!(
            "zabbix-agent2-plugin-exalate {}: a Zabbix agent 2 plugin; agent 2 starts it itself.\n\
             Configure it with Plugins.{PLUGIN_NAME}.System.Path=<this file> (README: \"Zabbix agent 2\").",
            crate::VERSION
        );
        return 2;
    };
    let registration = args.get(2).is_some_and(|a| a == "true");
    let Some(stream) = connect(socket) else {
        return 1;
    };
    let Ok(write_half) = stream.try_clone() else {
        return 1;
    };
    #[allow(unused_mut)]
    let mut write_timeout = WRITE_TIMEOUT;
    #[cfg(feature = "fault-injection")]
    if let Some(ms) = args
        .get(3)
        .and_then(|a| a.to_str()?.strip_prefix(WRITE_TIMEOUT_ARG)?.parse().ok())
    {
        write_timeout = Duration::from_millis(ms);
    }
    let _ = write_half.set_write_timeout(Some(write_timeout));
    if registration {
        let _ = stream.set_read_timeout(Some(REGISTRATION_WATCHDOG));
    }
    let plugin = Plugin {
        writer: Arc::new(Writer::new(write_half)),
        config_path: Mutex::new(None),
        agent_timeout_secs: AtomicU64::new(0),
        monitor: OnceLock::new(),
        pool: pool::Pool::with_limits(
            pool::Limits {
                network: MAX_THREADS,
                per_node: PER_NODE_THREADS,
                local: LOCAL_THREADS,
            },
            MAX_QUEUED,
        ),
        registration,
        guard_on_exit: AtomicBool::new(false),
    };
    if !registration {
        bound_malloc();
    }
    plugin.serve(stream)
}

/// Before anything else: systemd and Ctrl+C signal the whole process group,
/// and the agent must be the one to stop the plugin (reference §2).
#[allow(unsafe_code)]
fn ignore_group_signals() {
    // SAFETY: setting a signal disposition to SIG_IGN.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGTERM, libc::SIG_IGN);
    }
}

/// One process answers many exports at once, where the module's agent
/// processes answer one at a time: glibc would give each thread an arena of
/// its own and keep what large answers' parses freed, so the process would
/// settle at the worst overlap it ever saw. Two arenas, and large blocks
/// (answer buffers, entry lists) mapped on their own and returned when
/// freed, keep its size to what is in use.
#[allow(unsafe_code)]
fn bound_malloc() {
    // SAFETY: mallopt, before any thread is started.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Exits at once, skipping even atexit handlers.
#[allow(unsafe_code)]
fn exit_now(code: i32) -> ! {
    // SAFETY: _exit ends the process; nothing is left half-written (a frame
    // goes out in one write under the writer's lock).
    unsafe { libc::_exit(code) }
}

fn connect(socket: &OsString) -> Option<UnixStream> {
    let started = Instant::now();
    loop {
        match UnixStream::connect(socket) {
            Ok(stream) => return Some(stream),
            Err(_) if started.elapsed() < CONNECT_FOR => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(_) => return None,
        }
    }
}

/// The socket's sending side: one whole frame at a time, from any thread.
///
/// A write the agent does not take within the write timeout leaves a frame
/// cut: the agent has read its header and waits for the rest. Writing any
/// other frame then would put it inside the cut one's announced length, and
/// the agent would read every later frame out of step, for good. So the
/// rest of a cut frame goes out first, whenever the agent reads again (the
/// thread that cut it keeps at it); meanwhile other messages are dropped
/// (agent 2 has given up on those answers, and drops late ones anyway), and
/// once the stream is whole again a log message says so. Closing the socket
/// instead would not help: agent 2 never restarts a plugin (6.0.14's reader
/// would log an EOF error in a loop; 7.0 would fail every item) and the
/// plugin must not exit on its own (reference §7.1, §9).
pub(crate) struct Writer {
    state: Mutex<WriterState>,
}

struct WriterState {
    stream: UnixStream,
    /// The rest of a cut frame, to be sent before anything else.
    pending: Vec<u8>,
    /// The cut frame's size, and the messages dropped since it was cut.
    cut_frame_bytes: usize,
    dropped: u64,
    /// The agent is gone (a write failed other than by the timeout).
    broken: bool,
}

impl Writer {
    fn new(stream: UnixStream) -> Writer {
        Writer {
            state: Mutex::new(WriterState {
                stream,
                pending: Vec::new(),
                cut_frame_bytes: 0,
                dropped: 0,
                broken: false,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WriterState> {
        lock(&self.state)
    }

    fn send(&self, message: &Value) {
        let frame = frame::encode(message);
        let mut state = self.lock();
        if state.broken {
            return;
        }
        if !state.pending.is_empty() {
            if !state.finish_pending() {
                state.dropped += 1;
                return;
            }
            if !state.send_recovery_log() {
                state.dropped += 1;
                drop(state);
                return self.finish_cut_frame();
            }
        }
        if !state.write_frame(&frame) {
            drop(state);
            self.finish_cut_frame();
        }
    }

    /// The thread that cut a frame stays until its rest is sent (the agent
    /// reads again) or the agent is gone; others may finish it first. The
    /// lock is let go between tries (each blocks up to the write timeout),
    /// so others drop their messages rather than wait long.
    fn finish_cut_frame(&self) {
        loop {
            let mut state = self.lock();
            if state.pending.is_empty() || state.broken {
                return;
            }
            if state.finish_pending() && state.send_recovery_log() {
                return;
            }
            drop(state);
            std::thread::yield_now();
        }
    }

    fn log(&self, severity: Severity, text: &str) {
        self.send(&message::log(severity, text));
    }
}

impl WriterState {
    /// Writes what it can of `bytes` within the write timeout; how much.
    fn write_some(&mut self, bytes: &[u8]) -> usize {
        let mut written = 0;
        while written < bytes.len() {
            match self.stream.write(&bytes[written..]) {
                Ok(0) => {
                    self.broken = true;
                    break;
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == IoErrorKind::Interrupted => {}
                // The write timeout: the agent does not read now.
                Err(e) if matches!(e.kind(), IoErrorKind::WouldBlock | IoErrorKind::TimedOut) => {
                    break
                }
                // The agent is gone; the reader then sees the end of the
                // stream and the run ends.
                Err(_) => {
                    self.broken = true;
                    break;
                }
            }
        }
        written
    }

    /// Writes a whole frame; false when it was cut (its rest is pending).
    fn write_frame(&mut self, frame: &[u8]) -> bool {
        let written = self.write_some(frame);
        if written == frame.len() || self.broken {
            return true;
        }
        self.pending = frame[written..].to_vec();
        self.cut_frame_bytes = frame.len();
        self.dropped = 0;
        false
    }

    /// Sends (more of) the rest of a cut frame; whether it is all out.
    fn finish_pending(&mut self) -> bool {
        let pending = std::mem::take(&mut self.pending);
        let written = self.write_some(&pending);
        if written < pending.len() && !self.broken {
            self.pending = pending;
            self.pending.drain(..written);
            return false;
        }
        !self.broken
    }

    /// Once a cut frame is whole again, the agent's log says what happened;
    /// false when this message was cut in turn.
    fn send_recovery_log(&mut self) -> bool {
        let text = format!(
            "the agent did not read for longer than the write timeout: an answer of {} bytes went out late and {} messages were dropped meanwhile",
            self.cut_frame_bytes, self.dropped
        );
        self.dropped = 0;
        self.write_frame(&frame::encode(&message::log(Severity::Warning, &text)))
    }
}

struct Plugin {
    writer: Arc<Writer>,
    /// `Plugins.Exalate.Config`, from configure.
    config_path: Mutex<Option<PathBuf>>,
    /// The agent's Timeout from configure (0: not given).
    agent_timeout_secs: AtomicU64,
    /// Created on configure or the first export, never in the registration run.
    monitor: OnceLock<Arc<Monitor>>,
    pool: pool::Pool,
    /// Started with `true`: answer register (and validate), then exit.
    registration: bool,
    /// Whether terminate leaves a reap guard: a registration run for a 6.0
    /// agent (see `reap_guard`).
    guard_on_exit: AtomicBool,
}

impl Plugin {
    /// Reads requests until terminate or the end of the stream; the exit code.
    fn serve(&self, mut stream: UnixStream) -> i32 {
        loop {
            match frame::read(&mut stream) {
                Ok(Some(frame::Frame::Json(body))) => match Request::parse(&body) {
                    Ok(request) => {
                        let handled = catch_unwind(AssertUnwindSafe(|| self.handle(request)));
                        if let Err(panic) = handled {
                            let what = crate::panic::panic_message(&*panic, &[]);
                            self.writer.log(
                                Severity::Err,
                                &format!("internal error handling a request ({what}); the plugin goes on"),
                            );
                        }
                    }
                    Err(e) => self.writer.log(
                        Severity::Err,
                        &format!("ignored a request that is not a protocol message: {e}"),
                    ),
                },
                Ok(Some(frame::Frame::Skipped { kind, len })) => self.writer.log(
                    Severity::Err,
                    &format!("ignored a frame of type {kind}, {len} bytes (expected JSON, type 1, at most {} bytes)", frame::MAX_INCOMING),
                ),
                // The registration run's watchdog: the agent gave up on us.
                Err(e) if matches!(e.kind(), IoErrorKind::WouldBlock | IoErrorKind::TimedOut) => {
                    return 1
                }
                // The agent closed the socket: nothing is left to answer.
                Ok(None) | Err(_) => return 0,
            }
        }
    }

    fn handle(&self, request: Request) {
        match request.kind {
            kind::REGISTER_REQUEST => self.register(&request),
            kind::VALIDATE_REQUEST => {
                self.warn_unknown(&PrivateOptions::from_tree(request.private_options.as_ref()));
                self.writer.send(&message::validate_response(request.id));
            }
            kind::CONFIGURE_REQUEST => self.configure(&request),
            kind::START_REQUEST => {}
            // At once, skipping even atexit handlers: a 6.0 agent reaps the
            // registration run from two places once its start-up moves on,
            // and panics if the wrong one wins (`reap_guard`).
            kind::TERMINATE_REQUEST => {
                if self.guard_on_exit.load(Ordering::Relaxed) {
                    reap_guard::spawn();
                }
                exit_now(0)
            }
            kind::EXPORT_REQUEST => self.export(request),
            other => self.writer.log(
                Severity::Debug,
                &format!("ignored a message of type {other}"),
            ),
        }
    }

    /// Static data only: registration never fails because of our config.
    fn register(&self, request: &Request) {
        if self.registration {
            self.guard_on_exit.store(
                reap_guard::RACY_VERSIONS.contains(&request.version.as_str()),
                Ordering::Relaxed,
            );
        }
        self.writer.send(&message::register_response(
            request.id,
            PLUGIN_NAME,
            &metrics(),
        ));
        if !KNOWN_VERSIONS.contains(&request.version.as_str()) {
            self.writer.log(
                Severity::Warning,
                &format!(
                    "agent plugin protocol version {:?} is not one this plugin was tested with ({}); accepted",
                    request.version,
                    KNOWN_VERSIONS.join(", ")
                ),
            );
        }
    }

    fn configure(&self, request: &Request) {
        let options = PrivateOptions::from_tree(request.private_options.as_ref());
        self.warn_unknown(&options);
        if let Some(path) = options.config {
            *lock(&self.config_path) = Some(path);
        }
        if let Some(seconds) = request.global_options.as_ref().and_then(|g| g.timeout()) {
            self.agent_timeout_secs.store(seconds, Ordering::Relaxed);
        }
        let monitor = self.monitor();
        self.writer.log(
            Severity::Debug,
            &format!(
                "exalate-zabbix {} ready, config {}",
                crate::VERSION,
                monitor.config_path().display()
            ),
        );
    }

    fn warn_unknown(&self, options: &PrivateOptions) {
        for name in &options.unknown {
            self.writer.log(
                Severity::Warning,
                &format!(
                    "unknown option Plugins.{PLUGIN_NAME}.{name} ignored; the only option is Plugins.{PLUGIN_NAME}.{}",
                    options::CONFIG
                ),
            );
        }
    }

    fn monitor(&self) -> Arc<Monitor> {
        self.monitor
            .get_or_init(|| {
                let path = lock(&self.config_path)
                    .clone()
                    .unwrap_or_else(config::default_path);
                let monitor = Monitor::new_lazy(path);
                match self.agent_timeout_secs.load(Ordering::Relaxed) {
                    0 => {}
                    seconds => monitor.set_agent_timeout(seconds),
                }
                Arc::new(monitor)
            })
            .clone()
    }

    /// Answers on a pool thread: a slow node delays only its own items.
    fn export(&self, request: Request) {
        // The item's time counts from here, waiting in the queue included.
        let arrived = Instant::now();
        let id = request.id;
        let Some(item) = Item::from_key(&request.key) else {
            let error = format!("Unknown metric {:?} for plugin {PLUGIN_NAME}.", request.key);
            self.writer.send(&message::export_response(id, Err(error)));
            return;
        };
        // As zabbix_agentd answers for the module's keys without parameters.
        if item.arity() == 0 && request.parameters.is_some() {
            let error = "Item does not allow parameters.".to_string();
            self.writer.send(&message::export_response(id, Err(error)));
            return;
        }
        let item_timeout = timeout::agent2_item_timeout(
            request.item_timeout(),
            self.agent_timeout_secs.load(Ordering::Relaxed),
        );
        let params = request.parameters.unwrap_or_default();
        let lane = match item {
            Item::Discovery | Item::ModuleVersion => pool::Lane::Local,
            _ => pool::Lane::Node(params.first().cloned().unwrap_or_default()),
        };
        let monitor = self.monitor();
        let writer = self.writer.clone();
        let job = move || -> pool::Finish {
            let params: Vec<&str> = params.iter().map(String::as_str).collect();
            // Past its deadline, an item fails at once as a timed-out one.
            let timing = ItemTiming {
                asked: arrived,
                item_timeout,
            };
            let answer =
                items::value_or_failure(&monitor, item, &params, timing).map(|v| v.to_text());
            Box::new(move || writer.send(&message::export_response(id, answer)))
        };
        let expires = item_timeout.map(|t| arrived + t);
        if self.pool.submit_to(lane, expires, job).is_err() {
            let error = format!(
                "The exalate plugin is busy: {MAX_THREADS} requests running and {MAX_QUEUED} waiting."
            );
            self.writer.send(&message::export_response(id, Err(error)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The agent's rules for the key list (reference §5.3); a 6.0 agent
    /// panics at start-up on a violation, so they are checked here.
    #[test]
    fn metric_list_follows_the_agents_rules() {
        let metrics = metrics();
        assert_eq!(metrics.len(), Item::ALL.len());
        let mut seen = std::collections::HashSet::new();
        for (key, description) in metrics {
            assert!(
                !key.is_empty()
                    && key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c)),
                "{key}"
            );
            assert!(seen.insert(key), "{key} twice");
            let first = description.chars().next().unwrap();
            assert!(!first.is_lowercase(), "{description}");
            assert!(description.ends_with('.'), "{description}");
        }
    }

    #[test]
    fn known_versions_cover_6_0_and_7_0() {
        for v in ["1.0", "6.0.13", "6.4.0"] {
            assert!(KNOWN_VERSIONS.contains(&v));
        }
    }
}
