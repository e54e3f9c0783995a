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

/// What became of the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigState {
    /// Read and valid: the nodes are checked.
    Valid,
    /// Not read (missing, not permitted, too large, not UTF-8).
    Unreadable,
    /// Read, and not valid: its line says where.
    Invalid,
    /// Read, valid, and without a node yet (the file as installed).
    NoNode,
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
    /// A relation's six counts by queue name, or the node's two totals
    /// (`outgoing`, `incoming`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<serde_json::Map<String, serde_json::Value>>,
    /// A connection of the node: its `name`, `status` and `remote` as the
    /// node gives them, and whether it is `monitored` (in relations).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection: Option<Box<serde_json::Value>>,
}

impl Check {
    fn new(what: &str, status: Status, detail: String, fix: Option<String>) -> Check {
        Check {
            what: what.to_string(),
            status,
            detail,
            fix,
            counts: None,
            connection: None,
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
    /// The path to it, its credentials, its customer monitor, its 4.0
    /// API's credentials and totals.
    pub checks: Vec<Check>,
    /// One line per relation.
    pub relations: Vec<Check>,
    /// One line per connection on the node (its 4.0 API), or one saying
    /// why they are not known; empty for a node without API credentials.
    pub connections: Vec<Check>,
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
    /// What became of it.
    pub config_state: ConfigState,
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
    /// The exit status: 0 works, 1 something fails, 2 the config cannot be
    /// read, is not valid or has no node yet.
    pub exit_code: i32,
}

impl Report {
    /// Counts failures and warnings, and sets the exit status.
    pub(crate) fn finish(&mut self) {
        let all: Vec<&Check> = std::iter::once(&self.config_check)
            .chain(
                self.nodes
                    .iter()
                    .flat_map(|n| n.checks.iter().chain(&n.relations).chain(&n.connections)),
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
                labelled(&mut out, "", key, value);
            }
            for check in node
                .checks
                .iter()
                .chain(&node.relations)
                .chain(&node.connections)
            {
                line(&mut out, check);
            }
        }
        let _ = writeln!(out, "\nAGENT");
        for check in &self.agent {
            line(&mut out, check);
        }
        let verdict = match (self.exit_code, self.config_state) {
            (2, ConfigState::NoNode) => "the config has no node yet",
            (2, ConfigState::Invalid) => "the config is not valid",
            (2, _) => "the config cannot be read",
            (0, _) if self.warnings == 0 => "everything works",
            (0, _) => "it works; see the WARN lines",
            _ => "fix the FAIL lines",
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
    labelled(out, status, &check.what, &check.detail);
    if let Some(fix) = &check.fix {
        labelled(out, "", "", &format!("fix: {fix}"));
    }
}

/// Width of the labels' column: the longest fixed label
/// ("read cmonitor_password_file") and a space.
const LABEL_WIDTH: usize = 28;

/// `value` in the column after `label`, after `status`; a longer label
/// (a long relation name) has a line of its own, so the values stay in one column.
fn labelled(out: &mut String, status: &str, label: &str, value: &str) {
    if label.chars().count() > LABEL_WIDTH {
        let _ = writeln!(out, "  {status:<5} {label}");
        let _ = writeln!(out, "  {:<5} {:<LABEL_WIDTH$} {value}", "", "");
    } else {
        let _ = writeln!(out, "  {status:<5} {label:<LABEL_WIDTH$} {value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 25: a label longer than the column gets a line of its own;
    /// every value starts in the same column.
    #[test]
    fn values_stay_in_one_column() {
        let mut out = String::new();
        line(
            &mut out,
            &Check::ok(
                "read cmonitor_password_file",
                "/p readable by zabbix".into(),
            ),
        );
        line(
            &mut out,
            &Check::fail(
                "relation 'a very long relation name, longer'",
                "x".into(),
                "y",
            ),
        );
        labelled(&mut out, "", "cache_ttl", "10 s");
        let columns: Vec<usize> = out
            .lines()
            .filter_map(|l| {
                ["/p readable by zabbix", "x", "fix: y", "10 s"]
                    .iter()
                    .find_map(|v| l.strip_suffix(v).filter(|p| p.ends_with(' ')))
                    .map(str::len)
            })
            .collect();
        assert_eq!(columns, vec![LABEL_WIDTH + 9; 4], "{out}");
        assert!(
            out.contains("\n  FAIL  relation 'a very long relation name, longer'\n"),
            "{out}"
        );
    }
}
