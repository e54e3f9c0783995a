//! Front end 4: `exalate-zabbix check`, the whole configuration checked in
//! one run. A report over the monitor and the core (`Config`, `Monitor`,
//! the node's CA set): it holds no policy of its own, and says per node,
//! relation and file what works, what does not, and how to fix it.
//!
//! - `net`: the path to a node (DNS, connect, proxy, TLS with its certificate);
//! - `der`: enough DER to name a certificate's issuer and expiry;
//! - `agent`: the agent's side (its user's access, its configs, `Timeout=`);
//! - `api`: the node's own API (issuehub 4.0): credentials, totals, connections;
//! - `report`: the table and the JSON document.

mod agent;
mod api;
mod der;
mod net;
mod report;

pub use report::{Check, ConfigState, NodeReport, Report, Status};

use crate::config::{self, AuthHeader, Config, Credential, ExpUnit, NodeConfig};
use crate::error::{quoted, ErrorKind};
use crate::items::Item;
use crate::monitor::Monitor;
use crate::queue::Queue;
use crate::timeout;
use std::io::{IsTerminal, Write};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What the command line asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `--config PATH`; else `$EXALATE_ZABBIX_CONFIG`, else the default.
    pub config: PathBuf,
    /// `--json`: one JSON document on stdout.
    pub json: bool,
    /// `--user NAME`: the agent's user (default `zabbix`).
    pub user: String,
    /// `--zabbix-dir DIR`: where the agents' configs are (default `/etc/zabbix`).
    pub zabbix_dir: PathBuf,
}

/// What `exalate-zabbix --help` prints.
pub const USAGE: &str = "\
usage: exalate-zabbix check [--config PATH] [--json] [--user NAME] [--zabbix-dir DIR]
       exalate-zabbix --help | --version

Checks the whole exalate-zabbix configuration in one run: the config file
(errors with file and line, the effective values per node), each node
(DNS, connect, proxy, TLS, credentials, customer monitor; its own API:
credentials or login, both totals, its connections with their status),
each of its relations (found or not, a connection on the node or not, the
six queue counts), and the agent's side (can its user read every file,
does an agent config load the module or the plugin, its Timeout against
the config's timeout).

  --config PATH      the config file (default: $EXALATE_ZABBIX_CONFIG, else
                     /etc/zabbix/exalate_zabbix.toml)
  --json             print one JSON document instead of the table
  --user NAME        the agent's user whose access is checked (default: zabbix;
                     run as root to check another user's)
  --zabbix-dir DIR   where the agents' configs are (default: /etc/zabbix)

Exit status: 0 every node, relation and file works (agent-side findings are
warnings), 1 something fails (each FAIL line says how to fix it), 2 the config
cannot be read, is not valid or has no node yet, or the command line is wrong.
";

/// Parses the arguments after the program name: the options, or what to
/// print and the exit status (help, version, a usage error).
pub fn parse_args(args: &[String]) -> Result<Options, (String, i32)> {
    let mut args = args.iter();
    match args.next().map(String::as_str) {
        Some("check") => {}
        Some("--help" | "-h" | "help") => return Err((USAGE.to_string(), 0)),
        Some("--version" | "-V") => {
            return Err((format!("exalate-zabbix {}\n", crate::VERSION), 0))
        }
        Some(other) => return Err((usage_error(&format!("unknown command {other:?}")), 2)),
        None => return Err((usage_error("no command"), 2)),
    }
    let mut options = Options {
        config: config::default_path(),
        json: false,
        user: "zabbix".to_string(),
        zabbix_dir: PathBuf::from("/etc/zabbix"),
    };
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = |what: &str| {
            inline
                .clone()
                .or_else(|| args.next().cloned())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| (usage_error(&format!("{name} needs {what}")), 2))
        };
        match name {
            "--config" | "-c" => options.config = PathBuf::from(value("a path")?),
            "--user" | "-u" => options.user = value("a user name")?,
            "--zabbix-dir" => options.zabbix_dir = PathBuf::from(value("a directory")?),
            "--json" if inline.is_none() => options.json = true,
            "--help" | "-h" => return Err((USAGE.to_string(), 0)),
            "--version" | "-V" => return Err((format!("exalate-zabbix {}\n", crate::VERSION), 0)),
            _ => return Err((usage_error(&format!("unknown option {arg:?}")), 2)),
        }
    }
    Ok(options)
}

fn usage_error(what: &str) -> String {
    format!(
        "exalate-zabbix: {what}\n{}",
        USAGE.lines().take(2).collect::<Vec<_>>().join("\n") + "\n"
    )
}

/// `exalate-zabbix`: parses the arguments, runs the check, prints the
/// report and exits with its status.
pub fn main() -> ! {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse_args(&args) {
        Ok(options) => options,
        Err((text, code)) => {
            if code == 0 {
                print!("{text}");
            } else {
                eprint!("{text}");
            }
            std::process::exit(code)
        }
    };
    let progress = !options.json && std::io::stderr().is_terminal();
    let report = run(&options, progress);
    let text = if options.json {
        report.to_json()
    } else {
        report.to_text()
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
    std::process::exit(report.exit_code)
}

/// Runs every check; `progress` writes what is awaited to stderr.
pub fn run(options: &Options, progress: bool) -> Report {
    let mut report = Report {
        version: crate::VERSION.to_string(),
        config: options.config.display().to_string(),
        config_state: ConfigState::Valid,
        config_check: Check::ok("config", String::new()),
        nodes: Vec::new(),
        agent: Vec::new(),
        failures: 0,
        warnings: 0,
        exit_code: 0,
    };
    let config = match load_config(&options.config) {
        Ok(config) => config,
        Err(failed) => {
            let (state, check) = *failed;
            report.config_state = state;
            report.config_check = check;
            // The agent's side all the same: its configs, and whether its
            // user can read the config file.
            report.agent = agent::checks(None, &options.config, &options.user, &options.zabbix_dir);
            report.finish();
            return report;
        }
    };
    let relations: usize = config.nodes.values().map(|n| n.relations.len()).sum();
    report.config_check = Check::ok(
        "config",
        format!(
            "{}: {} node{}, {relations} relation{}",
            config.path.display(),
            config.nodes.len(),
            if config.nodes.len() == 1 { "" } else { "s" },
            if relations == 1 { "" } else { "s" },
        ),
    );
    // Before any thread: the user's access is tested in a forked child.
    report.agent = agent::checks(
        Some(&config),
        &options.config,
        &options.user,
        &options.zabbix_dir,
    );
    let agent_timeout = agent::agent_configs(&options.zabbix_dir)
        .agentd_timeout
        .map_or(timeout::DEFAULT_AGENT_TIMEOUT_SECS, |(_, t)| t);
    let monitor = match Monitor::open(options.config.clone()) {
        Ok(monitor) => monitor,
        Err(e) => {
            report.config_state = ConfigState::Invalid;
            report.config_check = Check::fail("config", e.message().to_string(), &config_fix(&e));
            report.finish();
            return report;
        }
    };
    monitor.set_agent_timeout(agent_timeout);
    let agent_timeout = Duration::from_secs(timeout::clamp_agent_timeout(agent_timeout));
    if progress {
        eprintln!(
            "exalate-zabbix check: {} node(s), up to {CHECKS_AT_ONCE} checks at once...",
            config.nodes.len()
        );
    }
    let nodes: Vec<&NodeConfig> = config.nodes.values().collect();
    report.nodes = check_nodes(&monitor, &nodes, agent_timeout, progress);
    report.finish();
    report
}

/// Where the packages put docs/configuration.md: gzip-compressed in the
/// .deb, as is in the .rpm.
fn configuration_docs() -> &'static str {
    const DOCS: &str = "/usr/share/doc/exalate-zabbix/docs/configuration.md";
    const DOCS_GZ: &str = "/usr/share/doc/exalate-zabbix/docs/configuration.md.gz";
    if std::path::Path::new(DOCS_GZ).exists() {
        DOCS_GZ
    } else {
        DOCS
    }
}

/// How to fix a config error: at its line, when it names one.
fn config_fix(e: &crate::Error) -> String {
    let docs = format!("docs: exalate-zabbix(1), {}", configuration_docs());
    if names_a_line(e.message()) {
        format!("correct the file at the line named ({docs})")
    } else {
        format!("correct the file ({docs})")
    }
}

/// Whether a config error names its line (`config PATH line N: ...`).
fn names_a_line(message: &str) -> bool {
    message.split_once(": ").is_some_and(|(place, _)| {
        place
            .rsplit_once(" line ")
            .is_some_and(|(_, n)| n.parse::<u64>().is_ok())
    })
}

/// The config at `path`, or what is wrong with it and its line.
fn load_config(path: &std::path::Path) -> Result<Config, Box<(ConfigState, Check)>> {
    let e = match Config::load(path) {
        Ok(config) => return Ok(config),
        Err(e) => e,
    };
    let text = crate::fs::read_file_within(path, crate::fs::MAX_CONFIG_BYTES)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok());
    let Some(text) = text else {
        let fix = format!(
            "see the reason (docs: exalate-zabbix(1), {})",
            configuration_docs()
        );
        return Err(Box::new((
            ConfigState::Unreadable,
            Check::fail("config", e.message().to_string(), &fix),
        )));
    };
    // Valid TOML without a node, and an error that names no line: the
    // file as installed, before any node is written in it.
    let no_node = !names_a_line(e.message())
        && toml::from_str::<toml::Table>(&text).is_ok_and(|table| match table.get("nodes") {
            None => true,
            Some(nodes) => nodes.as_table().is_some_and(toml::Table::is_empty),
        });
    if no_node {
        return Err(Box::new((
            ConfigState::NoNode,
            Check::fail(
                "config",
                format!(
                    "{}: the config has no node yet: add a [nodes.NAME] table",
                    path.display()
                ),
                &format!(
                    "add [nodes.NAME] with url, relations and token_file or jwt_secret_file (the file's comments show one; docs: exalate-zabbix(1), {})",
                    configuration_docs()
                ),
            ),
        )));
    }
    Err(Box::new((
        ConfigState::Invalid,
        Check::fail("config", e.message().to_string(), &config_fix(&e)),
    )))
}

/// Checks at once, at most. A relation's check asks its six queues at
/// once (the monitor's threads), so the check stays near 30 threads
/// however many nodes and relations the config has.
const CHECKS_AT_ONCE: usize = 5;

/// Runs `job` for each of `0..count` on at most [`CHECKS_AT_ONCE`]
/// threads, this one among them (where no thread is to be had, this one
/// runs every job, in turn); None for a job that panicked.
fn in_pool<T: Send>(count: usize, job: impl Fn(usize) -> T + Sync) -> Vec<Option<T>> {
    let results: Vec<Mutex<Option<T>>> = (0..count).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let work = || loop {
        let i = next.fetch_add(1, Ordering::SeqCst);
        if i >= count {
            break;
        }
        let done = std::panic::catch_unwind(AssertUnwindSafe(|| job(i))).ok();
        *lock(&results[i]) = done;
    };
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..CHECKS_AT_ONCE.min(count))
            .map_while(|_| {
                std::thread::Builder::new()
                    .name("exalate-check".into())
                    .spawn_scoped(scope, work)
                    .ok()
            })
            .collect();
        work();
        for helper in helpers {
            let _ = helper.join();
        }
    });
    results
        .into_iter()
        .map(|r| r.into_inner().unwrap_or_else(|p| p.into_inner()))
        .collect()
}

/// The line for a check that panicked (a bug): the report goes on.
fn failed_unexpectedly(what: &str) -> Check {
    Check::fail(
        what,
        "this check failed unexpectedly (a bug)".into(),
        "report it, with the output of exalate-zabbix check",
    )
}

/// When a node's checks started and ended, and how many are left.
#[derive(Default)]
struct NodeClock {
    started: Mutex<Option<Instant>>,
    ended: Mutex<Option<Instant>>,
    left: AtomicUsize,
}

impl NodeClock {
    fn start(&self) {
        lock(&self.started).get_or_insert_with(Instant::now);
    }

    fn end(&self) {
        *lock(&self.ended) = Some(Instant::now());
    }

    fn elapsed_ms(&self) -> u64 {
        match (*lock(&self.started), *lock(&self.ended)) {
            (Some(started), Some(ended)) => ended.duration_since(started).as_millis() as u64,
            _ => 0,
        }
    }
}

/// A piece of a reachable node's check.
enum Task<'a> {
    /// Its 2.4 credentials (`exalate.node.ping`) and customer monitor.
    Credentials,
    /// One relation.
    Relation(&'a str),
    /// Its 4.0 API, where it has credentials for it.
    Api(&'a Credential),
}

/// What a task found.
enum Done {
    Checks(Vec<Check>),
    Api(Box<api::Findings>),
}

/// Every node: first the path to each (DNS, connect, proxy, TLS), then,
/// where it works, its credentials, relations and 4.0 API, all in [`in_pool`].
fn check_nodes(
    monitor: &Monitor,
    nodes: &[&NodeConfig],
    agent_timeout: Duration,
    progress: bool,
) -> Vec<NodeReport> {
    let timeout = |node: &NodeConfig| node.timeout.unwrap_or(agent_timeout);
    let clocks: Vec<NodeClock> = nodes.iter().map(|_| NodeClock::default()).collect();
    let checked = |i: usize| {
        let clock = &clocks[i];
        clock.end();
        if progress {
            eprintln!(
                "  node {} checked ({} ms)",
                nodes[i].name,
                clock.elapsed_ms()
            );
        }
    };
    // A node whose url (or proxy) has no usable port is asked nothing.
    let targets: Vec<Result<net::Target, Check>> =
        nodes.iter().map(|node| net::Target::of(node)).collect();
    let with_target: Vec<usize> = (0..nodes.len()).filter(|&i| targets[i].is_ok()).collect();
    let paths = in_pool(with_target.len(), |k| {
        let i = with_target[k];
        clocks[i].start();
        match &targets[i] {
            Ok(target) => net::probe(nodes[i], target, timeout(nodes[i])),
            Err(_) => Vec::new(),
        }
    });
    let mut checks: Vec<Vec<Check>> = targets
        .iter()
        .map(|t| t.as_ref().err().cloned().into_iter().collect())
        .collect();
    for (&i, path) in with_target.iter().zip(paths) {
        checks[i] = path.unwrap_or_else(|| vec![failed_unexpectedly("path")]);
    }
    // Where the path fails, a request would fail as well (or be held by a
    // proxy or a TLS server that trickles): none is sent.
    let reachable: Vec<bool> = checks
        .iter()
        .zip(&targets)
        .map(|(c, t)| t.is_ok() && c.iter().all(|c| c.status != Status::Fail))
        .collect();
    let mut tasks: Vec<(usize, Task<'_>)> = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        if !reachable[i] {
            if targets[i].is_ok() {
                checked(i);
            }
            continue;
        }
        let before = tasks.len();
        tasks.push((i, Task::Credentials));
        tasks.extend(
            node.relations
                .iter()
                .map(|r| (i, Task::Relation(r.as_str()))),
        );
        tasks.extend(node.api.as_ref().map(|c| (i, Task::Api(c))));
        clocks[i].left.store(tasks.len() - before, Ordering::SeqCst);
    }
    let done = in_pool(tasks.len(), |k| {
        let (i, task) = &tasks[k];
        let node = nodes[*i];
        let done = match task {
            Task::Credentials => {
                // A node without 2.4 credentials: its ping is the API
                // step's first call (one login, not two).
                let ping = node.auth.is_some().then(|| credentials(monitor, node));
                Done::Checks(
                    ping.into_iter()
                        .chain(customer_monitor(monitor, node))
                        .collect(),
                )
            }
            Task::Relation(r) => Done::Checks(vec![relation(monitor, node, r)]),
            Task::Api(credential) => Done::Api(Box::new(api::check(monitor, node, credential))),
        };
        if clocks[*i].left.fetch_sub(1, Ordering::SeqCst) == 1 {
            checked(*i);
        }
        done
    });
    let mut relations: Vec<Vec<Check>> = nodes.iter().map(|_| Vec::new()).collect();
    let mut found: Vec<Option<api::Findings>> = nodes.iter().map(|_| None).collect();
    let mut api_checks: Vec<Vec<Check>> = nodes.iter().map(|_| Vec::new()).collect();
    for ((i, task), done) in tasks.iter().zip(done) {
        match (task, done) {
            (Task::Credentials, Some(Done::Checks(done))) => checks[*i].extend(done),
            (Task::Relation(_), Some(Done::Checks(done))) => relations[*i].extend(done),
            (Task::Api(_), Some(Done::Api(findings))) => found[*i] = Some(*findings),
            (Task::Credentials, _) => checks[*i].push(failed_unexpectedly("credentials")),
            (Task::Relation(r), _) => {
                relations[*i].push(failed_unexpectedly(&format!("relation {}", quoted(r))))
            }
            (Task::Api(_), _) => api_checks[*i].push(failed_unexpectedly(api::CREDENTIALS)),
        }
    }
    nodes
        .iter()
        .enumerate()
        .zip(checks.into_iter().zip(relations))
        .zip(found.into_iter().zip(api_checks))
        .map(
            |(((i, node), (mut checks, mut relations)), (found, mut api_checks))| {
                let mut connections = Vec::new();
                if !reachable[i] {
                    let why = match &targets[i] {
                        Err(why) => why.detail.clone(),
                        Ok(_) => "the path to the node fails".into(),
                    };
                    let skipped =
                        |what: &str| Check::skip(what, format!("not checked: {why} (see above)"));
                    checks.push(skipped("credentials"));
                    if node.cmonitor.is_some() {
                        checks.push(skipped("customer monitor"));
                    }
                    relations.extend(
                        node.relations
                            .iter()
                            .map(|r| skipped(&format!("relation {}", quoted(r)))),
                    );
                    if node.api.is_some() {
                        api_checks.push(skipped(api::CREDENTIALS));
                    }
                }
                if let Some(found) = found {
                    if let Some(ping) = found.ping {
                        checks.insert(checks.len() - usize::from(node.cmonitor.is_some()), ping);
                    }
                    api_checks.extend(found.checks);
                    if let Some(listed) = &found.connections {
                        relations = relations
                            .into_iter()
                            .zip(&node.relations)
                            .map(|(line, r)| api::relation_on_node(line, r, listed))
                            .collect();
                        connections = api::connection_lines(node, listed);
                    }
                    connections.extend(found.connections_line);
                }
                if node.api.is_none() {
                    api_checks.push(api::none_configured());
                }
                checks.extend(api_checks);
                NodeReport {
                    name: node.name.clone(),
                    settings: settings(node, agent_timeout),
                    checks,
                    relations,
                    connections,
                    elapsed_ms: clocks[i].elapsed_ms(),
                }
            },
        )
        .collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `exalate.node.ping`, and why it is 0.
fn credentials(monitor: &Monitor, node: &NodeConfig) -> Check {
    let ping = Item::NodePing.key();
    let relation = node.ping_relation();
    let with = format!(
        "{} credentials, asking relation {}",
        if node.own_auth {
            "the node's"
        } else {
            "the first relation's"
        },
        quoted(relation)
    );
    match monitor.node_ping(&node.name) {
        Ok(true) => Check::ok("credentials", format!("{ping} = 1 ({with})")),
        Ok(false) => {
            // The relation's six queues: where all fail alike, the reason
            // names none of them (the ping asks one; it is not to blame).
            let reason = monitor
                .relation_stats(&node.name, relation)
                .err()
                .map_or_else(
                    || "no reason given".to_string(),
                    |e| e.message().to_string(),
                );
            Check::fail(
                "credentials",
                format!("{ping} = 0 ({with}): {reason}"),
                "see the reason; the lines above show whether the node is reachable",
            )
        }
        Err(e) => Check::fail("credentials", e.message().to_string(), &fix_for(e.kind())),
    }
}

/// The customer monitor, where the node has one: one line with its
/// `numErrors` or its failure.
fn customer_monitor(monitor: &Monitor, node: &NodeConfig) -> Option<Check> {
    let cmonitor = node.cmonitor.as_ref()?;
    // Its credentials go nowhere but to the port named.
    if let Some(check) = net::port_error("cmonitor_url", &cmonitor.url) {
        return Some(Check {
            what: "customer monitor".into(),
            ..check
        });
    }
    Some(match monitor.node_errors(&node.name) {
        Ok(n) => Check::ok("customer monitor", format!("numErrors {n}")),
        Err(e) => Check::fail(
            "customer monitor",
            e.message().to_string(),
            "check cmonitor_url and its credentials (cmonitor_user with cmonitor_password_file, or cmonitor_token_file)",
        ),
    })
}

/// One relation: found or not, and its six counts.
fn relation(monitor: &Monitor, node: &NodeConfig, relation: &str) -> Check {
    let what = format!("relation {}", quoted(relation));
    match monitor.relation_stats(&node.name, relation) {
        Ok(json) => {
            let stats: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
            let mut counts = serde_json::Map::new();
            let mut shown = Vec::new();
            for queue in Queue::ALL {
                let n = stats[queue.name()].as_u64().unwrap_or(0);
                counts.insert(queue.name().to_string(), n.into());
                shown.push(format!("{} {n}", queue.name()));
            }
            let mut check = Check::ok(&what, shown.join(", "));
            check.counts = Some(counts);
            check
        }
        Err(e) => Check::fail(&what, e.message().to_string(), &fix_for(e.kind())),
    }
}

/// How to fix a failure of this kind.
fn fix_for(kind: ErrorKind) -> String {
    match kind {
        ErrorKind::RelationNotFound => "the node has no relation (connection) of that name: write it in relations exactly as Exalate's Connections page spells it",
        ErrorKind::AuthRejected => "the node rejects the token: check the secret (the relation's own, else the node's), jwt_issuer, jwt_user and jwt_exp_unit (\"ms\" for Exalate's tokens) against the connection",
        ErrorKind::NotAuthenticated => "the node saw no credentials: check auth_header (X-Exalate-Jwt or Authorization) and any proxy that drops headers",
        ErrorKind::Timeout => "the node did not answer in time: check the lines above (DNS, connect, proxy), or raise timeout",
        ErrorKind::ConnectionFailed => "check url's host and port, the network, or set proxy",
        ErrorKind::Tls => "see the tls line: ca_file, the certificate's name and expiry",
        ErrorKind::Config => "fix the file or key named (a secret file must be readable, and not by others: chmod 0640)",
        ErrorKind::NodeError => "the node failed (HTTP 5xx): see its logs",
        ErrorKind::TooLarge => "raise max_response_bytes",
        ErrorKind::BadResponse => "the answer is not the issuehub API's: check url (its base path)",
        _ => "see the message",
    }
    .to_string()
}

/// A node's effective settings: defaults applied, secrets never (paths only).
fn settings(node: &NodeConfig, agent_timeout: Duration) -> Vec<(String, String)> {
    let mut s = Vec::new();
    let mut put = |k: &str, v: String| s.push((k.to_string(), v));
    put("url", node.url.clone());
    put(
        "relations",
        if node.relations.is_empty() {
            "none (the node is watched as a whole, through its 4.0 API)".into()
        } else {
            node.relations
                .iter()
                .map(|r| quoted(r))
                .collect::<Vec<_>>()
                .join(", ")
        },
    );
    put(
        "auth",
        match &node.auth {
            Some(auth) if node.own_auth => describe(auth),
            Some(auth) => format!(
                "none of its own; ping uses the first relation's: {}",
                describe(auth)
            ),
            None => "none (issuehub 2.4): the node is watched through the 4.0 API only".into(),
        },
    );
    for (relation, credential) in &node.relation_auth {
        put(
            &format!("auth of {}", quoted(relation)),
            describe(credential),
        );
    }
    put(
        "timeout",
        match node.timeout {
            Some(t) => format!("{} s", t.as_secs()),
            None => format!("the agent's Timeout ({} s)", agent_timeout.as_secs()),
        },
    );
    put("cache_ttl", format!("{} s", node.cache_ttl.as_secs()));
    put("cache_max_bytes", node.cache_max_bytes.to_string());
    put("max_response_bytes", node.max_response_bytes.to_string());
    put(
        "ca_file",
        node.ca_file
            .as_deref()
            .map_or("none (system roots)".into(), |p| p.display().to_string()),
    );
    put("proxy", node.proxy.clone().unwrap_or_else(|| "none".into()));
    put(
        "api",
        node.api
            .as_ref()
            .map_or("none (no node totals or connections)".into(), describe),
    );
    s
}

/// A credential in words: where its token comes from, never the token.
fn describe(credential: &Credential) -> String {
    let header = |header: &AuthHeader| match header {
        AuthHeader::XExalateJwt => "X-Exalate-Jwt",
        AuthHeader::Bearer => "Authorization: Bearer",
    };
    match credential {
        Credential::Token { file, header: h } => {
            format!("token_file {}, header {}", file.display(), header(h))
        }
        Credential::MintedJwt {
            file,
            issuer,
            user,
            ttl,
            exp_unit,
            header: h,
        } => format!(
            "jwt_secret_file {} (iss {}, user {}, ttl {} s, exp in {}), header {}",
            file.display(),
            quoted(issuer),
            user.as_deref().map_or("unset".to_string(), quoted),
            ttl.as_secs(),
            match exp_unit {
                ExpUnit::Millis => "ms",
                ExpUnit::Seconds => "s",
            },
            header(h)
        ),
        Credential::Basic {
            user,
            password_file,
            keys,
        } => format!(
            "HTTP Basic, {} {}, {} {}",
            keys.user(),
            quoted(user),
            keys.password_file(),
            password_file.display()
        ),
        Credential::Bearer { token_file, keys } => format!(
            "Authorization: Bearer, {} {}",
            keys.token_file(),
            token_file.display()
        ),
        Credential::Login {
            user,
            password_file,
        } => format!(
            "a login (api_login), api_user {}, api_password_file {}, then X-Exalate-Jwt",
            quoted(user),
            password_file.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_config_error_names_a_line_or_not() {
        assert!(names_a_line("config /x.toml line 7: node 'a': bad"));
        assert!(!names_a_line("config /x.toml: no [nodes.NAME] table"));
        assert!(!names_a_line("config /a line b.toml: cannot read: denied"));
    }

    /// Issue 25: every job runs, at most CHECKS_AT_ONCE at once, and a
    /// job that panics is a None, not a panic of the check.
    #[test]
    fn the_pool_is_bounded_and_survives_a_panic() {
        let (now, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let done = in_pool(40, |i| {
            let n = now.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(n, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(5));
            now.fetch_sub(1, Ordering::SeqCst);
            if i == 7 {
                panic!("job 7");
            }
            i * 2
        });
        assert_eq!(done.len(), 40);
        for (i, d) in done.iter().enumerate() {
            assert_eq!(*d, if i == 7 { None } else { Some(i * 2) });
        }
        let most = most.load(Ordering::SeqCst);
        assert!((1..=CHECKS_AT_ONCE).contains(&most), "{most} at once");
        assert!(in_pool(0, |i| i).is_empty());
    }

    #[test]
    fn arguments() {
        let o = parse_args(&args(&[
            "check",
            "--config",
            "/x.toml",
            "--json",
            "--user=nobody",
        ]))
        .unwrap();
        assert_eq!(o.config, Path::new("/x.toml"));
        assert!(o.json);
        assert_eq!(o.user, "nobody");
        assert_eq!(o.zabbix_dir, Path::new("/etc/zabbix"));
        let o = parse_args(&args(&["check", "--config=/y.toml", "--zabbix-dir", "/z"])).unwrap();
        assert_eq!(
            (o.config.as_path(), o.zabbix_dir.as_path(), o.json),
            (Path::new("/y.toml"), Path::new("/z"), false)
        );
        assert_eq!(
            parse_args(&args(&["--help"])).unwrap_err(),
            (USAGE.to_string(), 0)
        );
        assert_eq!(parse_args(&args(&["check", "-h"])).unwrap_err().1, 0);
        assert_eq!(
            parse_args(&args(&["--version"])).unwrap_err(),
            (format!("exalate-zabbix {}\n", crate::VERSION), 0)
        );
        for bad in [
            &["check", "--config"][..],
            &["check", "--bogus"],
            &["chek"],
            &[],
            &["check", "--json=1"],
        ] {
            let (text, code) = parse_args(&args(bad)).unwrap_err();
            assert_eq!(code, 2, "{bad:?}");
            assert!(
                text.starts_with("exalate-zabbix: ") && text.contains("usage:"),
                "{text}"
            );
        }
    }
}
