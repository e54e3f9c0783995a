//! The monitor: what every front end (the Zabbix module, agent 2's plugin,
//! the C API) asks. It watches the config file (`watch`, `reload`), keeps one session
//! per node (`session`: HTTP client, credentials, fetching within a deadline)
//! each with its cache of queue snapshots (`cache`: bytes, TTL, budget), all
//! created lazily in the process that uses them.

mod cache;
mod reload;
mod session;
mod watch;

use crate::api::Direction;
use crate::error::{quoted, Error, ErrorKind, Result};
use crate::queue::{Queue, QueueSnapshot};
use crate::secret::Secret;
use crate::timeout::{self, Deadline, ItemTiming};
use reload::{ConfigWatch, LoadedConfig};
use session::{NodeSession, SnapshotFor};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Relation names longer than this are refused before any request.
const MAX_RELATION_CHARS: usize = 1000;

/// What every front end asks: one per process (per C client), cheap to
/// create, reading its config on first use.
pub struct Monitor {
    config: ConfigWatch,
    /// The agent's Timeout in seconds, for calls whose node has no config
    /// timeout and whose item brings none (see [`timeout`]).
    agent_timeout_secs: AtomicU64,
}

/// The value of `exalate.relation.stats`, fields in the queues' order.
#[derive(serde::Serialize)]
struct RelationStats<'a> {
    syncrequests: u64,
    blobrequests: u64,
    syncresponses: u64,
    blobresponses: u64,
    errorresponses: u64,
    bloberrorresponses: u64,
    error_reasons: BTreeMap<&'a str, u64>,
    oldest_event_id: OldestEventIds,
}

/// Per queue the smallest `syncEventId` present (0 when none), in the
/// queues' order.
#[derive(serde::Serialize)]
struct OldestEventIds {
    syncrequests: u64,
    blobrequests: u64,
    syncresponses: u64,
    blobresponses: u64,
    errorresponses: u64,
    bloberrorresponses: u64,
}

impl Monitor {
    /// A monitor that reads `path` on first use (the Zabbix module: the agent
    /// must start even when the config is broken).
    pub fn new_lazy(path: PathBuf) -> Monitor {
        Monitor {
            config: ConfigWatch::new(path),
            agent_timeout_secs: AtomicU64::new(timeout::DEFAULT_AGENT_TIMEOUT_SECS),
        }
    }

    /// A monitor whose config must be valid now (the C API).
    pub fn open(path: PathBuf) -> Result<Monitor> {
        let monitor = Monitor::new_lazy(path);
        monitor.loaded_config()?;
        Ok(monitor)
    }

    /// The config file this monitor reads.
    pub(crate) fn config_path(&self) -> &Path {
        self.config.path()
    }

    /// Sets the agent's Timeout (clamped to 1 to 30 s): it bounds calls
    /// whose node has no config timeout and whose item brings none.
    pub(crate) fn set_agent_timeout(&self, seconds: u64) {
        self.agent_timeout_secs
            .store(timeout::clamp_agent_timeout(seconds), Ordering::Relaxed);
    }

    /// Entries in `queue` of `relation` on `node` now, within the agent's
    /// timeout (or the node's config timeout).
    pub fn queue_count(&self, node: &str, relation: &str, queue: &str) -> Result<u64> {
        self.queue_count_within(node, relation, queue, ItemTiming::now(None))
    }

    /// [`Monitor::queue_count`] for an item that brings its own timeout.
    pub(crate) fn queue_count_within(
        &self,
        node: &str,
        relation: &str,
        queue: &str,
        timing: ItemTiming,
    ) -> Result<u64> {
        let snapshot = self.queue_snapshot(node, relation, queue, SnapshotFor::Count, timing)?;
        Ok(snapshot.count)
    }

    /// The entries of a queue as a JSON array, without `encodedPayload`:
    /// the text kept by the fetch, shared with the cache, not copied.
    pub fn queue_get(&self, node: &str, relation: &str, queue: &str) -> Result<Arc<String>> {
        self.queue_get_within(node, relation, queue, ItemTiming::now(None))
    }

    /// [`Monitor::queue_get`] for an item that brings its own timeout.
    pub(crate) fn queue_get_within(
        &self,
        node: &str,
        relation: &str,
        queue: &str,
        timing: ItemTiming,
    ) -> Result<Arc<String>> {
        let snapshot = self.queue_snapshot(node, relation, queue, SnapshotFor::Get, timing)?;
        Ok(snapshot.text.clone().expect("a fetch for text keeps it"))
    }

    fn queue_snapshot(
        &self,
        node: &str,
        relation: &str,
        queue: &str,
        wanted: SnapshotFor,
        timing: ItemTiming,
    ) -> Result<Arc<QueueSnapshot>> {
        let (session, queue) = self.target(node, relation, Some(queue))?;
        let queue = queue.expect("queue given");
        let deadline = self.deadline(&session, timing);
        session
            .snapshot(relation, queue, wanted, deadline)
            .map_err(|e| e.context(&place(&session, relation, Some(queue))))
    }

    /// The six counts, the error reasons and per queue the oldest event's
    /// id (`oldest_event_id`) of a relation as one JSON object.
    /// The six queues are asked at once, within one deadline.
    pub fn relation_stats(&self, node: &str, relation: &str) -> Result<String> {
        self.relation_stats_within(node, relation, ItemTiming::now(None))
    }

    /// [`Monitor::relation_stats`] for an item that brings its own timeout.
    pub(crate) fn relation_stats_within(
        &self,
        node: &str,
        relation: &str,
        timing: ItemTiming,
    ) -> Result<String> {
        let (session, _) = self.target(node, relation, None)?;
        let deadline = self.deadline(&session, timing);
        let results = session.snapshots(relation, &Queue::ALL, SnapshotFor::Count, deadline);
        let snapshots = stats_outcome(&results)
            .map_err(|(queue, e)| e.context(&place(&session, relation, queue)))?;
        let mut error_reasons = BTreeMap::new();
        for snapshot in &snapshots {
            for (reason, n) in &snapshot.reasons {
                *error_reasons.entry(reason.as_str()).or_insert(0) += n;
            }
        }
        let [syncrequests, blobrequests, syncresponses, blobresponses, errorresponses, bloberrorresponses] =
            [0, 1, 2, 3, 4, 5].map(|i| snapshots[i].oldest_event_id);
        let oldest_event_id = OldestEventIds {
            syncrequests,
            blobrequests,
            syncresponses,
            blobresponses,
            errorresponses,
            bloberrorresponses,
        };
        let [syncrequests, blobrequests, syncresponses, blobresponses, errorresponses, bloberrorresponses] =
            [0, 1, 2, 3, 4, 5].map(|i| snapshots[i].count);
        let stats = RelationStats {
            syncrequests,
            blobrequests,
            syncresponses,
            blobresponses,
            errorresponses,
            bloberrorresponses,
            error_reasons,
            oldest_event_id,
        };
        Ok(serde_json::to_string(&stats).expect("stats serialize"))
    }

    /// Low-level discovery: every configured (node, relation) pair, and
    /// whether its node has a customer monitor endpoint (`{#CMONITOR}`)
    /// and 4.0 API credentials (`{#API}`); a node without relations gets
    /// one row with an empty `{#RELATION}`, so its node items are found.
    pub fn discovery(&self) -> Result<String> {
        let loaded = self.loaded_config()?;
        let flag = |set: bool| if set { "1" } else { "0" };
        let rows: Vec<serde_json::Value> = loaded
            .config
            .nodes
            .values()
            .flat_map(|n| {
                let row = move |relation: &str| {
                    serde_json::json!({
                        "{#NODE}": n.name,
                        "{#RELATION}": relation,
                        "{#CMONITOR}": flag(n.cmonitor.is_some()),
                        "{#API}": flag(n.api.is_some()),
                    })
                };
                let relations: Vec<&str> = match n.relations.as_slice() {
                    [] => vec![""],
                    relations => relations.iter().map(String::as_str).collect(),
                };
                relations.into_iter().map(row).collect::<Vec<_>>()
            })
            .collect();
        Ok(serde_json::Value::Array(rows).to_string())
    }

    /// Whether the node answers and accepts our credentials: its 2.4
    /// credentials where it has them, else its 4.0 API's.
    pub fn node_ping(&self, node: &str) -> Result<bool> {
        self.node_ping_within(node, ItemTiming::now(None))
    }

    /// [`Monitor::node_ping`] for an item that brings its own timeout.
    pub(crate) fn node_ping_within(&self, node: &str, timing: ItemTiming) -> Result<bool> {
        let loaded = self.loaded_config()?;
        let session = loaded.session(node)?;
        let deadline = self.deadline(&session, timing);
        if session.config.auth.is_none() {
            return match session.api_ping(deadline) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == ErrorKind::Config => Err(e.context(&api_place(&session))),
                Err(_) => Ok(false),
            };
        }
        let relation = session.config.ping_relation();
        match session.snapshot(
            relation,
            Queue::BlobErrorResponses,
            SnapshotFor::Count,
            deadline,
        ) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::RelationNotFound => Ok(true),
            Err(e) if e.kind() == ErrorKind::Config => {
                Err(e.context(&place(&session, relation, Some(Queue::BlobErrorResponses))))
            }
            Err(_) => Ok(false),
        }
    }

    /// The node's whole sync queue, `outgoing` or `incoming`: the `total`
    /// of its issuehub 4.0 API (always asked with `limit=0`).
    pub fn node_queue(&self, node: &str, direction: &str) -> Result<u64> {
        self.node_queue_within(node, direction, ItemTiming::now(None))
    }

    /// [`Monitor::node_queue`] for an item that brings its own timeout.
    pub(crate) fn node_queue_within(
        &self,
        node: &str,
        direction: &str,
        timing: ItemTiming,
    ) -> Result<u64> {
        let loaded = self.loaded_config()?;
        let session = loaded.session(node)?;
        let direction = Direction::parse(direction)
            .map_err(|e| e.context(&format!("node {}", quoted(&session.config.name))))?;
        let deadline = self.deadline(&session, timing);
        session
            .node_total(direction, deadline)
            .map_err(|e| node_api_error(&session, e))
    }

    /// The node's connections as a JSON array of `{"name", "status",
    /// "remote"}` (issuehub 4.0).
    pub fn node_connections(&self, node: &str) -> Result<String> {
        self.node_connections_within(node, ItemTiming::now(None))
    }

    /// [`Monitor::node_connections`] for an item that brings its own timeout.
    pub(crate) fn node_connections_within(&self, node: &str, timing: ItemTiming) -> Result<String> {
        let loaded = self.loaded_config()?;
        let session = loaded.session(node)?;
        let deadline = self.deadline(&session, timing);
        session
            .node_connections(deadline)
            .map_err(|e| node_api_error(&session, e))
    }

    /// `numErrors` from the node's customer monitor endpoint (`cmonitor_url`):
    /// the errors Exalate counts on the node, those above single relations
    /// included. A node without the endpoint fails with a message that says so.
    pub fn node_errors(&self, node: &str) -> Result<u64> {
        self.node_errors_within(node, ItemTiming::now(None))
    }

    /// [`Monitor::node_errors`] for an item that brings its own timeout.
    pub(crate) fn node_errors_within(&self, node: &str, timing: ItemTiming) -> Result<u64> {
        let loaded = self.loaded_config()?;
        let session = loaded.session(node)?;
        let deadline = self.deadline(&session, timing);
        session.num_errors(deadline).map_err(|e| {
            let place = format!("node {}", quoted(&session.config.name));
            match e.kind() {
                ErrorKind::Config if session.config.cmonitor.is_none() => e.context(&place),
                _ => e.context(&format!("{place}, customer monitor")),
            }
        })
    }

    /// The configured node names and their relations.
    pub(crate) fn relations(&self) -> Result<Vec<(String, Vec<String>)>> {
        let loaded = self.loaded_config()?;
        Ok(loaded
            .config
            .nodes
            .values()
            .map(|n| (n.name.clone(), n.relations.clone()))
            .collect())
    }

    /// The bytes this process's caches hold, over every node (each within
    /// its `cache_max_bytes`).
    pub fn cache_bytes(&self) -> usize {
        self.loaded_config().map_or(0, |loaded| {
            loaded.sessions.values().map(|s| s.cache.bytes()).sum()
        })
    }

    /// The secret and the tokens sent of every node loaded now, to scrub
    /// text that did not come through a node's fetch (a panic's message).
    pub(crate) fn known_secrets(&self) -> Vec<Secret> {
        self.config.last_good().map_or_else(Vec::new, |loaded| {
            loaded
                .sessions
                .values()
                .flat_map(|s| s.known_secrets())
                .collect()
        })
    }

    fn loaded_config(&self) -> Result<Arc<LoadedConfig>> {
        self.config.current()
    }

    fn target(
        &self,
        node: &str,
        relation: &str,
        queue: Option<&str>,
    ) -> Result<(Arc<NodeSession>, Option<Queue>)> {
        #[cfg(feature = "fault-injection")]
        if relation == "exalate-test-panic" {
            panic!("injected panic for relation {relation}");
        }
        let loaded = self.loaded_config()?;
        let session = loaded.session(node)?;
        let queue = queue.map(Queue::parse).transpose()?;
        if relation.is_empty() {
            return Err(
                Error::new(ErrorKind::InvalidArgument, "relation name is empty")
                    .context(&format!("node {}", quoted(&session.config.name))),
            );
        }
        if relation.chars().count() > MAX_RELATION_CHARS {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("relation name longer than {MAX_RELATION_CHARS} characters"),
            )
            .context(&format!("node {}", quoted(&session.config.name))));
        }
        Ok((session, queue))
    }

    /// The call's deadline, by the one rule ([`timeout::call_timeout`]):
    /// the node's config timeout, the item's, the agent's.
    fn deadline(&self, session: &NodeSession, timing: ItemTiming) -> Deadline {
        let agent_timeout = Duration::from_secs(self.agent_timeout_secs.load(Ordering::Relaxed));
        let timeout =
            timeout::call_timeout(session.config.timeout, timing.item_timeout, agent_timeout);
        Deadline::counted_from(timing.asked, timeout)
    }
}

/// "node 'n', API": where a 4.0 API call failed.
fn api_place(session: &NodeSession) -> String {
    format!("node {}, API", quoted(&session.config.name))
}

/// A 4.0 API call's failure in the items' words: a node without API
/// credentials is the node's config; everything else the API's.
fn node_api_error(session: &NodeSession, e: Error) -> Error {
    match e.kind() {
        ErrorKind::Config if session.config.api.is_none() => {
            e.context(&format!("node {}", quoted(&session.config.name)))
        }
        _ => e.context(&api_place(session)),
    }
}

/// "node 'n', relation 'r'" and the queue, where one is meant.
fn place(session: &NodeSession, relation: &str, queue: Option<Queue>) -> String {
    let mut place = format!(
        "node {}, relation {}",
        quoted(&session.config.name),
        quoted(relation)
    );
    if let Some(queue) = queue {
        place.push_str(&format!(", queue {queue}"));
    }
    place
}

/// The six snapshots of stats, or its failure: where all six failed alike (a
/// node down, a relation gone) no queue is named; else the first that failed.
#[allow(clippy::type_complexity)]
fn stats_outcome(
    results: &[Result<Arc<QueueSnapshot>>],
) -> std::result::Result<Vec<Arc<QueueSnapshot>>, (Option<Queue>, Error)> {
    let failed: Vec<(Queue, &Error)> = Queue::ALL
        .iter()
        .zip(results)
        .filter_map(|(&q, r)| r.as_ref().err().map(|e| (q, e)))
        .collect();
    match failed.first() {
        None => Ok(results.iter().flatten().cloned().collect()),
        Some(&(_, first))
            if failed.len() == results.len() && failed.iter().all(|(_, e)| *e == first) =>
        {
            Err((None, first.clone()))
        }
        Some(&(queue, first)) => Err((Some(queue), first.clone())),
    }
}

#[cfg(test)]
mod deadline_tests {
    use super::*;
    use crate::config::Config;

    fn session(timeout: Option<u64>) -> NodeSession {
        let text = format!(
            "[nodes.n]\nurl = \"http://127.0.0.1:1\"\ntoken_file = \"/nonexistent\"\n{}",
            timeout.map_or(String::new(), |t| format!("timeout = {t}\n"))
        );
        let config = Config::parse(Path::new("t.toml"), &text).unwrap();
        NodeSession::new(config.nodes["n"].clone())
    }

    fn picked(monitor: &Monitor, session: &NodeSession, item_timeout: Option<u64>) -> u64 {
        let item_timeout = item_timeout.map(Duration::from_secs);
        monitor
            .deadline(session, ItemTiming::now(item_timeout))
            .timeout
            .as_secs()
    }

    #[test]
    fn node_timeout_then_item_timeout_then_agent_timeout() {
        let monitor = Monitor::new_lazy("/nonexistent".into());
        monitor.set_agent_timeout(3);
        let plain = session(None);
        let own = session(Some(5));
        assert_eq!(picked(&monitor, &plain, None), 3);
        assert_eq!(picked(&monitor, &own, None), 5);
        assert_eq!(picked(&monitor, &plain, Some(9)), 9);
        assert_eq!(picked(&monitor, &own, Some(9)), 5, "the smaller wins");
        assert_eq!(picked(&monitor, &own, Some(2)), 2, "the smaller wins");
        assert_eq!(picked(&monitor, &plain, None), 3);
        assert_eq!(picked(&monitor, &plain, Some(9)), 9);
        assert_eq!(picked(&monitor, &plain, None), 3, "scoped to the call");
    }

    #[test]
    fn a_panic_inside_does_not_leak_the_item_timeout() {
        let monitor = Monitor::new_lazy("/nonexistent".into());
        monitor.set_agent_timeout(4);
        let plain = session(None);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            picked(&monitor, &plain, Some(1));
            panic!("boom")
        }));
        assert!(result.is_err());
        assert_eq!(picked(&monitor, &plain, None), 4);
    }
}
