//! The node's own API (issuehub 4.0) in the check: whether its
//! credentials work (a login logged in), both totals, and the node's
//! connections against the config's relations. One step, one deadline:
//! the three calls share the node's timeout, and the first that fails
//! for want of credentials or of an answer ends the step (a wrong
//! password is tried once, never once per call).

use super::report::Check;
use crate::config::{Credential, NodeConfig};
use crate::error::{quoted, Error, ErrorKind};
use crate::items::Item;
use crate::monitor::Monitor;
use crate::timeout::ItemTiming;
use serde::Deserialize;

/// What line `what` the credentials' outcome is on.
pub(super) const CREDENTIALS: &str = "api credentials";

/// A connection as `exalate.node.connections` lists it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub(super) struct Connection {
    pub(super) name: String,
    pub(super) status: String,
    #[serde(default)]
    pub(super) remote: String,
}

/// What the API step found on a node.
pub(super) struct Findings {
    /// `exalate.node.ping` of a node without 2.4 credentials: its outgoing
    /// total answered or not (what the item asks).
    pub(super) ping: Option<Check>,
    /// The credentials and the totals.
    pub(super) checks: Vec<Check>,
    /// The node's connections, where they were listed.
    pub(super) connections: Option<Vec<Connection>>,
    /// Why they were not: a failed or skipped `connections` line.
    pub(super) connections_line: Option<Check>,
}

/// One call's outcome; None: not asked (an earlier call ended the step).
type Outcome<T> = Option<Result<T, Error>>;

/// The API step of a node with API credentials.
pub(super) fn check(monitor: &Monitor, node: &NodeConfig, credential: &Credential) -> Findings {
    let timing = ItemTiming::now(None);
    let mut ended = false;
    let mut ask = |call: &dyn Fn() -> Result<String, Error>| -> Outcome<String> {
        if ended {
            return None;
        }
        let outcome = call();
        if let Err(e) = &outcome {
            ended = is_credentials(e) || ends_the_step(e.kind());
        }
        Some(outcome)
    };
    let total = |direction: &'static str| {
        move || {
            monitor
                .node_queue_within(&node.name, direction, timing)
                .map(|n| n.to_string())
        }
    };
    let outgoing = ask(&total("outgoing"));
    let incoming = ask(&total("incoming"));
    let listed = ask(&|| monitor.node_connections_within(&node.name, timing));
    let outcomes = [&outgoing, &incoming, &listed];

    let credential_failure = outcomes.iter().find_map(|o| {
        o.as_ref()
            .and_then(|r| r.as_ref().err())
            .filter(|e| is_credentials(e))
    });
    let answered = outcomes.iter().any(|o| matches!(o, Some(Ok(_))));
    let described = super::describe(credential);
    let credentials = match (credential_failure, answered) {
        (Some(e), _) => Check::fail(
            CREDENTIALS,
            e.message().to_string(),
            &fix(e.kind(), credential),
        ),
        (None, true) => {
            let verdict = match credential {
                Credential::Login { .. } => "logged in",
                _ => "accepted",
            };
            Check::ok(CREDENTIALS, format!("{described}: {verdict}"))
        }
        (None, false) => Check::skip(
            CREDENTIALS,
            format!("{described}: not known, the API did not answer (see below)"),
        ),
    };
    let queues = queues_line(&outgoing, &incoming, credential);
    let (connections, connections_line) = match &listed {
        Some(Ok(json)) => match serde_json::from_str::<Vec<Connection>>(json) {
            Ok(connections) => (Some(connections), None),
            Err(_) => (None, Some(super::failed_unexpectedly("connections"))),
        },
        Some(Err(e)) if is_credentials(e) => (
            None,
            Some(Check::skip("connections", SEE_CREDENTIALS.into())),
        ),
        Some(Err(e)) => (
            None,
            Some(Check::fail(
                "connections",
                e.message().to_string(),
                &fix(e.kind(), credential),
            )),
        ),
        None if credential_failure.is_some() => (
            None,
            Some(Check::skip("connections", SEE_CREDENTIALS.into())),
        ),
        None => (None, Some(Check::skip("connections", NOT_ASKED.into()))),
    };
    let ping = node.auth.is_none().then(|| ping(&outgoing));
    Findings {
        ping,
        checks: vec![credentials, queues],
        connections,
        connections_line,
    }
}

/// A line whose call failed for want of credentials: shown once, above.
const SEE_CREDENTIALS: &str = "not known: the API credentials fail (see above)";
/// A line whose call an earlier failure spared.
const NOT_ASKED: &str = "not asked after the failure above";

/// Both totals, or what became of each.
fn queues_line(
    outgoing: &Outcome<String>,
    incoming: &Outcome<String>,
    credential: &Credential,
) -> Check {
    const WHAT: &str = "node queues";
    if let (Some(Ok(out)), Some(Ok(inc))) = (outgoing, incoming) {
        let mut check = Check::ok(WHAT, format!("outgoing {out}, incoming {inc}"));
        let mut counts = serde_json::Map::new();
        for (direction, n) in [("outgoing", out), ("incoming", inc)] {
            counts.insert(direction.into(), n.parse::<u64>().unwrap_or(0).into());
        }
        check.counts = Some(counts);
        return check;
    }
    let failed = [outgoing, incoming].into_iter().find_map(|o| {
        o.as_ref()
            .and_then(|r| r.as_ref().err())
            .filter(|e| !is_credentials(e))
    });
    let Some(failed) = failed else {
        return Check::skip(WHAT, SEE_CREDENTIALS.into());
    };
    let part = |direction: &str, outcome: &Outcome<String>| match outcome {
        Some(Ok(n)) => format!("{direction} {n}"),
        Some(Err(e)) if is_credentials(e) => format!("{direction}: see the api credentials line"),
        Some(Err(e)) => format!("{direction}: {}", e.message()),
        None => format!("{direction} not asked"),
    };
    Check::fail(
        WHAT,
        format!(
            "{}; {}",
            part("outgoing", outgoing),
            part("incoming", incoming)
        ),
        &fix(failed.kind(), credential),
    )
}

/// `exalate.node.ping` of a node watched through the 4.0 API only: what
/// the item asks is the outgoing total.
fn ping(outgoing: &Outcome<String>) -> Check {
    let ping = Item::NodePing.key();
    let with = "through the 4.0 API: the node has no issuehub 2.4 credentials";
    match outgoing {
        Some(Ok(_)) => Check::ok("credentials", format!("{ping} = 1 ({with})")),
        // The item fails as the config does.
        Some(Err(e)) if e.kind() == ErrorKind::Config => Check::fail(
            "credentials",
            e.message().to_string(),
            "see the api credentials line below",
        ),
        Some(Err(e)) => Check::fail(
            "credentials",
            format!("{ping} = 0 ({with}): {}", e.message()),
            "see the api credentials and node queues lines below",
        ),
        None => super::failed_unexpectedly("credentials"),
    }
}

/// A failure that says the credentials do not work: rejected, not seen,
/// unusable (their file), or the login itself failed.
fn is_credentials(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::AuthRejected | ErrorKind::NotAuthenticated | ErrorKind::Config
    ) || e.message().contains("API: login ")
}

/// A failure after which a further call within the same deadline would
/// fail alike (or wait for nothing).
fn ends_the_step(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::Timeout | ErrorKind::ConnectionFailed | ErrorKind::Tls
    )
}

/// How to fix an API failure of this kind.
fn fix(kind: ErrorKind, credential: &Credential) -> String {
    match kind {
        ErrorKind::AuthRejected => match credential {
            Credential::Login { .. } => "check that api_user can log in to the node's Exalate with the password in api_password_file (a user of the node, not a connection's secret)",
            Credential::Bearer { .. } => "check the token in api_token_file: issued for this node, not expired or revoked",
            _ => "check api_user and its password in api_password_file (a user of the node, not a connection's secret); a node that wants a login: api_login = true",
        },
        ErrorKind::NotAuthenticated => "the node took no credentials: for a login, url must be the node's own address (the login's Origin); else check any proxy that drops the Authorization header",
        ErrorKind::Config => "fix the file named (readable by the agent's user, not by others: chmod 0640)",
        ErrorKind::Timeout => "the node's API did not answer in time: see the lines above (DNS, connect, proxy), or raise timeout",
        ErrorKind::ConnectionFailed => "check url's host and port, the network, or set proxy",
        ErrorKind::Tls => "see the tls line: ca_file, the certificate's name and expiry",
        ErrorKind::NodeError => "the node failed (HTTP 5xx): see its logs",
        ErrorKind::BadResponse => "the answer is not issuehub 4.0's: check url (its base path); an Exalate older than 4.x has no such API (its relations' queues still work without it)",
        ErrorKind::TooLarge => "the connections' listing: raise max_response_bytes; a total: the node lists events despite limit=0 (see the message)",
        _ => "see the message",
    }
    .to_string()
}

/// The line of a node without API credentials: not a failure, what the
/// node items need.
pub(super) fn none_configured() -> Check {
    Check::skip(
        CREDENTIALS,
        format!(
            "none: the node items ({}, {}) need them: set api_user with api_password_file (add api_login = true where the node wants a login), or api_token_file",
            Item::NodeQueue.key(),
            Item::NodeConnections.key()
        ),
    )
}

/// One line per connection of the node, in its order: ACTIVE is ok (not
/// in relations: not monitored, `--`, where the node has relations); any
/// other status is a warning, listed or not, since the template raises a
/// problem for it either way.
pub(super) fn connection_lines(node: &NodeConfig, connections: &[Connection]) -> Vec<Check> {
    if connections.is_empty() {
        return vec![Check::ok("connections", "none on the node".into())];
    }
    connections
        .iter()
        .map(|c| {
            let what = format!("connection {}", quoted(&c.name));
            let status = shown(&c.status, 40);
            let remote = match c.remote.as_str() {
                "" => "no remote URL".to_string(),
                remote => format!("remote {}", shown(remote, 200)),
            };
            let monitored = node.relations.contains(&c.name);
            let watched = match (monitored, node.auth.is_some()) {
                (true, _) => "in relations",
                (false, true) => "not monitored: add it to relations to watch its queues",
                // Relations need the connection's secret (issuehub 2.4).
                (false, false) => {
                    "its status only (the node has no issuehub 2.4 credentials for its queues)"
                }
            };
            let detail = format!("{status}, {remote}; {watched}");
            let mut check = if c.status.eq_ignore_ascii_case("ACTIVE") {
                if monitored || node.auth.is_none() {
                    Check::ok(&what, detail)
                } else {
                    Check::skip(&what, detail)
                }
            } else {
                Check::warn(&what, detail, status_fix(&c.status))
            };
            check.connection = Some(Box::new(serde_json::json!({
                "name": c.name,
                "status": c.status,
                "remote": c.remote,
                "monitored": monitored,
            })));
            check
        })
        .collect()
}

/// What a status other than ACTIVE means and what to do.
fn status_fix(status: &str) -> &'static str {
    match status.to_ascii_uppercase().as_str() {
        "DEACTIVATED" => "a deactivated connection pauses synchronisation and queues changes without an error: activate it on Exalate's Connections page (or delete it there if it is gone for good)",
        "PENDING" => "the connection is not established yet (the other side has not accepted it): finish it on Exalate's Connections page",
        _ => "the connection is not ACTIVE: see it on Exalate's Connections page (and the node's errors)",
    }
}

/// A relation's line where the node's connections are known: a relation
/// that is not among them fails by name, with what its 2.4 line found.
pub(super) fn relation_on_node(line: Check, relation: &str, connections: &[Connection]) -> Check {
    if connections.iter().any(|c| c.name == relation) {
        return line;
    }
    const SHOWN: usize = 10;
    let mut names: Vec<String> = connections
        .iter()
        .take(SHOWN)
        .map(|c| quoted(&c.name))
        .collect();
    if connections.len() > SHOWN {
        names.push(format!("... ({} in all)", connections.len()));
    }
    let listing = match names.is_empty() {
        true => "it has none".to_string(),
        false => format!("its connections: {}", names.join(", ")),
    };
    let mut detail = format!("not a connection on the node ({listing})");
    match line.status {
        super::Status::Fail => detail.push_str(&format!("; issuehub 2.4: {}", line.detail)),
        super::Status::Ok => {
            detail.push_str(&format!("; issuehub 2.4 answers for it: {}", line.detail))
        }
        _ => {}
    }
    let mut fix = String::new();
    if let Some(near) = nearest(relation, connections) {
        fix.push_str(&format!("did you mean {}? ", quoted(near)));
    }
    fix.push_str("write it in relations exactly as the node names the connection (Exalate's Connections page), or remove it if the connection is gone");
    Check {
        counts: line.counts,
        ..Check::fail(&line.what, detail, &fix)
    }
}

/// The connection whose name is nearest `name` (case aside, or within
/// two edits), if one is.
fn nearest<'a>(name: &str, connections: &'a [Connection]) -> Option<&'a str> {
    let name = name.to_lowercase();
    connections
        .iter()
        .map(|c| (edits(&name, &c.name.to_lowercase()), c.name.as_str()))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

/// The Levenshtein distance of two names (short: the config's and the node's).
fn edits(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substituted = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substituted.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

/// Node-supplied text on one line, shortened.
fn shown(text: &str, max_chars: usize) -> String {
    let mut shown: String = text
        .chars()
        .take(max_chars)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > max_chars {
        shown.push('…');
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection(name: &str, status: &str) -> Connection {
        Connection {
            name: name.into(),
            status: status.into(),
            remote: String::new(),
        }
    }

    #[test]
    fn nearest_names_a_typo_only() {
        let all = [
            connection("AllContent", "ACTIVE"),
            connection("Service Desk", "ACTIVE"),
        ];
        assert_eq!(nearest("AllContnet", &all), Some("AllContent"));
        assert_eq!(nearest("service desk", &all), Some("Service Desk"));
        assert_eq!(nearest("Legacy", &all), None);
        assert_eq!(edits("kitten", "sitting"), 3);
        assert_eq!(edits("", "abc"), 3);
    }

    #[test]
    fn a_relation_not_on_the_node_fails_by_name_with_its_2_4_line() {
        let all: Vec<Connection> = (0..12)
            .map(|i| connection(&format!("c{i}"), "ACTIVE"))
            .collect();
        let line = Check::fail(
            "relation 'x'",
            "node 'n', relation 'x': timeout after 2 s".into(),
            "y",
        );
        let line = relation_on_node(line, "x", &all);
        assert_eq!(line.status, super::super::Status::Fail);
        assert_eq!(
            line.detail,
            "not a connection on the node (its connections: 'c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7', 'c8', 'c9', ... (12 in all)); issuehub 2.4: node 'n', relation 'x': timeout after 2 s"
        );
        let found = Check::ok("relation 'c3'", "counts".into());
        assert_eq!(
            relation_on_node(found, "c3", &all).status,
            super::super::Status::Ok
        );
    }
}
