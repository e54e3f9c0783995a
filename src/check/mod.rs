//! Front end 4: `exalate-zabbix check`, the whole configuration checked in
//! one run. A report over the monitor and the core (`Config`, `Monitor`,
//! the node's CA set): it holds no policy of its own, and says per node,
//! relation and file what works, what does not, and how to fix it.
//!
//! - `net`: the path to a node (DNS, connect, proxy, TLS with its certificate);
//! - `der`: enough DER to name a certificate's issuer and expiry;
//! - `agent`: the agent's side (its user's access, its configs, `Timeout=`);
//! - `report`: the table and the JSON document.

mod agent;
mod der;
mod net;
mod report;

pub use report::{Check, NodeReport, Report, Status};

use crate::config::{self, AuthHeader, Config, Credential, ExpUnit, NodeConfig};
use crate::error::{quoted, ErrorKind};
use crate::monitor::Monitor;
use crate::queue::Queue;
use crate::timeout;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Relations of one node asked at once, at most.
const RELATIONS_AT_ONCE: usize = 8;

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
(DNS, connect, proxy, TLS, credentials, customer monitor) and each of its
relations (found or not, the six queue counts), and the agent's side (can
its user read every file, does an agent config load the module or the
plugin, its Timeout against the config's timeout).

  --config PATH      the config file (default: $EXALATE_ZABBIX_CONFIG, else
                     /etc/zabbix/exalate_zabbix.toml)
  --json             print one JSON document instead of the table
  --user NAME        the agent's user whose access is checked (default: zabbix;
                     run as root to check another user's)
  --zabbix-dir DIR   where the agents' configs are (default: /etc/zabbix)

Exit status: 0 every node, relation and file works (agent-side findings are
warnings), 1 something fails (each FAIL line says how to fix it), 2 the config
cannot be read or the command line is wrong.
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
        config_check: Check::ok("config", String::new()),
        nodes: Vec::new(),
        agent: Vec::new(),
        failures: 0,
        warnings: 0,
        exit_code: 0,
    };
    let config = match Config::load(&options.config) {
        Ok(config) => config,
        Err(e) => {
            report.config_check = Check::fail(
                "config",
                e.message().to_string(),
                "correct the file at the line named (docs: exalate-zabbix(1), /usr/share/doc/exalate-zabbix/configuration.md)",
            );
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
    report.agent = agent::checks(&config, &options.user, &options.zabbix_dir);
    let agent_timeout = agent::agent_configs(&options.zabbix_dir)
        .agentd_timeout
        .map_or(timeout::DEFAULT_AGENT_TIMEOUT_SECS, |(_, t)| t);
    let monitor = match Monitor::open(options.config.clone()) {
        Ok(monitor) => monitor,
        Err(e) => {
            report.config_check =
                Check::fail("config", e.message().to_string(), "correct the file");
            report.finish();
            return report;
        }
    };
    monitor.set_agent_timeout(agent_timeout);
    let agent_timeout = Duration::from_secs(timeout::clamp_agent_timeout(agent_timeout));
    if progress {
        eprintln!(
            "exalate-zabbix check: {} node(s), each checked at once...",
            config.nodes.len()
        );
    }
    report.nodes = std::thread::scope(|scope| {
        let handles: Vec<_> = config
            .nodes
            .values()
            .map(|node| {
                let monitor = &monitor;
                scope.spawn(move || {
                    let report = check_node(monitor, node, agent_timeout);
                    if progress {
                        eprintln!("  node {} checked ({} ms)", node.name, report.elapsed_ms);
                    }
                    report
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    report.finish();
    report
}

/// Everything about one node.
fn check_node(monitor: &Monitor, node: &NodeConfig, agent_timeout: Duration) -> NodeReport {
    let started = Instant::now();
    let timeout = node.timeout.unwrap_or(agent_timeout);
    let mut checks = net::probe(node, timeout);
    checks.push(credentials(monitor, node));
    if let Some(check) = customer_monitor(monitor, node) {
        checks.push(check);
    }
    let mut relations = Vec::with_capacity(node.relations.len());
    for chunk in node.relations.chunks(RELATIONS_AT_ONCE) {
        let done: Vec<Check> = std::thread::scope(|scope| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|r| scope.spawn(move || relation(monitor, node, r)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        relations.extend(done);
    }
    NodeReport {
        name: node.name.clone(),
        settings: settings(node, agent_timeout),
        checks,
        relations,
        elapsed_ms: started.elapsed().as_millis() as u64,
    }
}

/// `exalate.node.ping`, and why it is 0.
fn credentials(monitor: &Monitor, node: &NodeConfig) -> Check {
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
        Ok(true) => Check::ok("credentials", format!("exalate.node.ping = 1 ({with})")),
        Ok(false) => {
            let reason = monitor
                .queue_count(&node.name, relation, Queue::BlobErrorResponses.name())
                .err()
                .map_or_else(
                    || "no reason given".to_string(),
                    |e| e.message().to_string(),
                );
            Check::fail(
                "credentials",
                format!("exalate.node.ping = 0 ({with}): {reason}"),
                "see the reason; the lines above show whether the node is reachable",
            )
        }
        Err(e) => Check::fail("credentials", e.message().to_string(), &fix_for(e.kind())),
    }
}

/// The customer monitor, where the node has one: one line with its
/// `numErrors` or its failure.
fn customer_monitor(monitor: &Monitor, node: &NodeConfig) -> Option<Check> {
    node.cmonitor.as_ref()?;
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
        node.relations
            .iter()
            .map(|r| quoted(r))
            .collect::<Vec<_>>()
            .join(", "),
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
