//! What the check found: lines of a table for a person, or one JSON
//! document for scripts. Every text here comes from the config (paths,
//! names, values: never a file's content) or from the monitor's messages,
//! which are redacted below it.

use serde::Serialize;
use std::fmt::Write;

/// How one line ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Works.
    Ok,
    /// Works here, may not for the agent (or soon).
    Warn,
    /// Does not work: the fix says how to.
    Fail,
    /// Not applicable, or not checked.
    Skip,
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked ("dns", "relation 'AllContent'", "read config").
    pub what: String,
    /// Its outcome.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// How to fix it, for a warning or a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// A relation's six counts, by queue name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<serde_json::Map<String, serde_json::Value>>,
}

impl Check {
    fn new(what: &str, status: Status, detail: String, fix: Option<String>) -> Check {
        Check {
            what: what.to_string(),
            status,
            detail,
            fix,
            counts: None,
        }
    }
    pub(crate) fn ok(what: &str, detail: String) -> Check {
        Check::new(what, Status::Ok, detail, None)
    }
    pub(crate) fn skip(what: &str, detail: String) -> Check {
        Check::new(what, Status::Skip, detail, None)
    }
    pub(crate) fn warn(what: &str, detail: String, fix: &str) -> Check {
        Check::new(what, Status::Warn, detail, Some(fix.to_string()))
    }
    pub(crate) fn fail(what: &str, detail: String, fix: &str) -> Check {
        Check::new(what, Status::Fail, detail, Some(fix.to_string()))
    }
}

/// One node: its effective settings and its checks.
#[derive(Debug, Clone, Serialize)]
pub struct NodeReport {
    /// The node's name.
    pub name: String,
    /// Its settings, defaults applied, secrets never (only file paths), in
    /// the order shown (a JSON object).
    #[serde(serialize_with = "in_order")]
    pub settings: Vec<(String, String)>,
    /// The path to it, its credentials, its customer monitor.
    pub checks: Vec<Check>,
    /// One line per relation.
    pub relations: Vec<Check>,
    /// How long its checks took, in milliseconds.
    pub elapsed_ms: u64,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// This program's version.
    pub version: String,
    /// The config file checked.
    pub config: String,
    /// Reading the config: one line (its error, with file and line).
    pub config_check: Check,
    /// Each node, in name order.
    pub nodes: Vec<NodeReport>,
    /// The agent's side (the user, the agent configs, Timeout).
    pub agent: Vec<Check>,
    /// Failures, over everything.
    pub failures: usize,
    /// Warnings, over everything.
    pub warnings: usize,
    /// The exit status: 0 works, 1 something fails, 2 the config cannot be read.
    pub exit_code: i32,
}

impl Report {
    /// Counts failures and warnings, and sets the exit status.
    pub(crate) fn finish(&mut self) {
        let all: Vec<&Check> = std::iter::once(&self.config_check)
            .chain(
                self.nodes
                    .iter()
                    .flat_map(|n| n.checks.iter().chain(&n.relations)),
            )
            .chain(&self.agent)
            .collect();
        self.failures = all.iter().filter(|c| c.status == Status::Fail).count();
        self.warnings = all.iter().filter(|c| c.status == Status::Warn).count();
        self.exit_code = if self.config_check.status == Status::Fail {
            2
        } else {
            i32::from(self.failures > 0)
        };
    }

    /// The report as one JSON document.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("report serializes") + "\n"
    }

    /// The report as a table a person reads at a glance.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "exalate-zabbix {} check of {}",
            self.version, self.config
        );
        let _ = writeln!(out, "\nCONFIG");
        line(&mut out, &self.config_check);
        for node in &self.nodes {
            let _ = writeln!(out, "\nNODE {} ({} ms)", node.name, node.elapsed_ms);
            for (key, value) in &node.settings {
                let _ = writeln!(out, "        {key:<24} {value}");
            }
            for check in node.checks.iter().chain(&node.relations) {
                line(&mut out, check);
            }
        }
        let _ = writeln!(out, "\nAGENT");
        for check in &self.agent {
            line(&mut out, check);
        }
        let verdict = match self.exit_code {
            0 if self.warnings == 0 => "everything works".to_string(),
            0 => "the nodes work; see the warnings for the agent's side".to_string(),
            2 => "the config cannot be read".to_string(),
            _ => "fix the FAIL lines".to_string(),
        };
        let _ = writeln!(
            out,
            "\nRESULT  {} failure{}, {} warning{}: {verdict} (exit {})",
            self.failures,
            plural(self.failures),
            self.warnings,
            plural(self.warnings),
            self.exit_code
        );
        out
    }
}

/// Pairs as one JSON object, in their order.
fn in_order<S: serde::Serializer>(pairs: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(pairs.len()))?;
    for (k, v) in pairs {
        map.serialize_entry(k, v)?;
    }
    map.end()
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn line(out: &mut String, check: &Check) {
    let status = match check.status {
        Status::Ok => "ok",
        Status::Warn => "WARN",
        Status::Fail => "FAIL",
        Status::Skip => "--",
    };
    let _ = writeln!(out, "  {status:<5} {:<26} {}", check.what, check.detail);
    if let Some(fix) = &check.fix {
        let _ = writeln!(out, "  {:<5} {:<26} fix: {fix}", "", "");
    }
}
