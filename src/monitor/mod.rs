//! The monitor: what every front end (the Zabbix module, agent 2's plugin,
//! the C API) asks. It watches the config file (`reload`), keeps one session
//! per node (`session`: HTTP client, credentials, fetching within a deadline)
//! each with its cache of queue snapshots (`cache`: bytes, TTL, budget), all
//! created lazily in the process that uses them.

mod cache;
mod reload;
mod session;

use crate::error::{quoted, Error, ErrorKind, Result};
use crate::queue::{Queue, QueueSnapshot};
use crate::secret::Secret;
use reload::{ConfigWatch, Setup};
use session::{Deadline, Need, NodeSession};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// At most this much before an item's timeout its requests give up.
const ENFORCEMENT_MARGIN: Duration = Duration::from_millis(250);
/// Relation names longer than this are refused before any request.
const MAX_RELATION_CHARS: usize = 1000;
/// The relation asked by `node.ping` when a node lists none: any answer but
/// 401/403 shows the node is up and takes our credentials.
const PING_RELATION: &str = "exalate-zabbix-ping";

pub struct Monitor {
    config: ConfigWatch,
    /// The host's timeout in seconds (the agent's Timeout), used for items
    /// that bring none and nodes without a `timeout` of their own.
    host_timeout_secs: AtomicU64,
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
}

impl Monitor {
    /// A monitor that reads `path` on first use (the Zabbix module: the agent
    /// must start even when the config is broken).
    pub fn new_lazy(path: PathBuf) -> Monitor {
        Monitor {
            config: ConfigWatch::new(path),
            host_timeout_secs: AtomicU64::new(3),
        }
    }

    /// A monitor whose config must be valid now (the C API).
    pub fn open(path: PathBuf) -> Result<Monitor> {
        let monitor = Monitor::new_lazy(path);
        monitor.setup()?;
        Ok(monitor)
    }

    pub fn config_path(&self) -> &Path {
        self.config.path()
    }

    pub fn set_host_timeout(&self, seconds: u64) {
        self.host_timeout_secs
            .store(seconds.clamp(1, 30), Ordering::Relaxed);
    }

    /// Entries in `queue` of `relation` on `node` now.
    pub fn queue_count(&self, node: &str, relation: &str, queue: &str) -> Result<u64> {
        Ok(self
            .queue_snapshot(node, relation, queue, Need::Summary)?
            .count)
    }

    /// The entries of a queue as a JSON array, without `encodedPayload`:
    /// the text kept by the fetch, shared with the cache, not copied.
    pub fn queue_get(&self, node: &str, relation: &str, queue: &str) -> Result<Arc<String>> {
        let snapshot = self.queue_snapshot(node, relation, queue, Need::Text)?;
        Ok(snapshot.text.clone().expect("a fetch for text keeps it"))
    }

    fn queue_snapshot(
        &self,
        node: &str,
        relation: &str,
        queue: &str,
        need: Need,
    ) -> Result<Arc<QueueSnapshot>> {
        let (session, queue) = self.target(node, relation, Some(queue))?;
        let queue = queue.expect("queue given");
        let deadline = self.deadline(&session);
        session
            .snapshot(relation, queue, need, deadline)
            .map_err(|e| e.context(&place(&session, relation, Some(queue))))
    }

    /// The six counts and the error reasons of a relation as one JSON object.
    /// The six queues are asked at once, within one deadline.
    pub fn relation_stats(&self, node: &str, relation: &str) -> Result<String> {
        let (session, _) = self.target(node, relation, None)?;
        let deadline = self.deadline(&session);
        let results = session.snapshots(relation, &Queue::ALL, Need::Summary, deadline);
        let snapshots = stats_outcome(&results)
            .map_err(|(queue, e)| e.context(&place(&session, relation, queue)))?;
        let mut error_reasons = BTreeMap::new();
        for snapshot in &snapshots {
            for (reason, n) in &snapshot.reasons {
                *error_reasons.entry(reason.as_str()).or_insert(0) += n;
            }
        }
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
        };
        Ok(serde_json::to_string(&stats).expect("stats serialize"))
    }

    /// Low-level discovery: every configured (node, relation) pair.
    pub fn discovery(&self) -> Result<String> {
        let setup = self.setup()?;
        let pairs: Vec<serde_json::Value> = setup
            .config
            .nodes
            .values()
            .flat_map(|n| {
                n.relations
                    .iter()
                    .map(move |r| serde_json::json!({"{#NODE}": n.name, "{#RELATION}": r}))
            })
            .collect();
        Ok(serde_json::Value::Array(pairs).to_string())
    }

    /// Whether the node answers and accepts our credentials.
    pub fn node_ping(&self, node: &str) -> Result<bool> {
        let setup = self.setup()?;
        let session = setup.session(node)?;
        let relation = session
            .config
            .relations
            .first()
            .map_or(PING_RELATION, String::as_str);
        let deadline = self.deadline(&session);
        match session.snapshot(relation, Queue::BlobErrorResponses, Need::Summary, deadline) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::RelationNotFound => Ok(true),
            Err(e) if e.kind() == ErrorKind::Config => {
                Err(e.context(&place(&session, relation, Some(Queue::BlobErrorResponses))))
            }
            Err(_) => Ok(false),
        }
    }

    /// The configured node names and their relations.
    pub fn relations(&self) -> Result<Vec<(String, Vec<String>)>> {
        let setup = self.setup()?;
        Ok(setup
            .config
            .nodes
            .values()
            .map(|n| (n.name.clone(), n.relations.clone()))
            .collect())
    }

    /// The bytes this process's caches hold, over every node (each within
    /// its `cache_max_bytes`).
    pub fn cache_bytes(&self) -> usize {
        self.setup().map_or(0, |setup| {
            setup.sessions.values().map(|s| s.cache.bytes()).sum()
        })
    }

    /// The secret and the tokens sent of every node loaded now, to scrub
    /// text that did not come through a node's fetch (a panic's message).
    pub fn known_secrets(&self) -> Vec<Secret> {
        self.config.loaded().map_or_else(Vec::new, |setup| {
            setup
                .sessions
                .values()
                .flat_map(|s| s.known_secrets())
                .collect()
        })
    }

    fn setup(&self) -> Result<Arc<Setup>> {
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
        let setup = self.setup()?;
        let session = setup.session(node)?;
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

    /// The item's deadline: the smaller of the node's `timeout` and the
    /// item's own (a 7.0 agent's per-item timeout); else whichever is given;
    /// else the host's.
    fn deadline(&self, session: &NodeSession) -> Deadline {
        let timeout = match (session.config.timeout, call_timeout()) {
            (Some(own), Some(call)) => own.min(call),
            (own, call) => own.or(call).unwrap_or_else(|| {
                Duration::from_secs(self.host_timeout_secs.load(Ordering::Relaxed))
            }),
        };
        // Requests give up a little before the timeout, so that even a late
        // wake-up answers within it (agent 2 drops an answer past it).
        let margin = (timeout / 10).min(ENFORCEMENT_MARGIN);
        Deadline {
            at: call_started().unwrap_or_else(Instant::now) + timeout - margin,
            timeout,
        }
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

thread_local! {
    /// The host's timeout for the call running on this thread, when it gave
    /// one (a 7.0 agent's per-item timeout); see [`Monitor::with_call_timeout`].
    static CALL_TIMEOUT: std::cell::Cell<Option<Duration>> = const { std::cell::Cell::new(None) };
}

fn call_timeout() -> Option<Duration> {
    CALL_TIMEOUT.with(|t| t.get())
}

thread_local! {
    /// When the call running on this thread was asked, where it waited
    /// before it ran (agent 2's queue); see [`Monitor::with_call_timeout_since`].
    static CALL_STARTED: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
}

fn call_started() -> Option<Instant> {
    CALL_STARTED.with(|t| t.get())
}

impl Monitor {
    /// Runs `f` with `timeout`, when given, in place of the host timeout for
    /// nodes without a `timeout` of their own: a 7.0 agent passes each item's
    /// timeout with the call. Scoped to this thread and this call.
    pub fn with_call_timeout<R>(&self, timeout: Option<Duration>, f: impl FnOnce() -> R) -> R {
        struct Restore(Option<Duration>);
        impl Drop for Restore {
            fn drop(&mut self) {
                CALL_TIMEOUT.with(|t| t.set(self.0));
            }
        }
        let _restore = Restore(CALL_TIMEOUT.with(|t| t.replace(timeout)));
        f()
    }

    /// As [`Monitor::with_call_timeout`], for a call asked at `asked`: its
    /// deadline counts from then, not from when it runs.
    pub fn with_call_timeout_since<R>(
        &self,
        timeout: Option<Duration>,
        asked: Instant,
        f: impl FnOnce() -> R,
    ) -> R {
        struct Restore(Option<Instant>);
        impl Drop for Restore {
            fn drop(&mut self) {
                CALL_STARTED.with(|t| t.set(self.0));
            }
        }
        let _restore = Restore(CALL_STARTED.with(|t| t.replace(Some(asked))));
        self.with_call_timeout(timeout, f)
    }
}

#[cfg(test)]
mod call_timeout_tests {
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

    fn picked(monitor: &Monitor, session: &NodeSession) -> u64 {
        monitor.deadline(session).timeout.as_secs()
    }

    #[test]
    fn node_timeout_then_call_timeout_then_host_timeout() {
        let monitor = Monitor::new_lazy("/nonexistent".into());
        monitor.set_host_timeout(3);
        let plain = session(None);
        let own = session(Some(5));
        assert_eq!(picked(&monitor, &plain), 3);
        assert_eq!(picked(&monitor, &own), 5);
        monitor.with_call_timeout(Some(Duration::from_secs(9)), || {
            assert_eq!(picked(&monitor, &plain), 9);
            assert_eq!(picked(&monitor, &own), 5, "the smaller wins");
            monitor.with_call_timeout(Some(Duration::from_secs(2)), || {
                assert_eq!(picked(&monitor, &own), 2, "the smaller wins");
            });
            // Nested: the inner call's own value, then the outer one again.
            monitor.with_call_timeout(None, || assert_eq!(picked(&monitor, &plain), 3));
            assert_eq!(picked(&monitor, &plain), 9);
        });
        assert_eq!(picked(&monitor, &plain), 3, "scoped to the call");
    }

    #[test]
    fn a_panic_inside_does_not_leak_the_override() {
        let monitor = Monitor::new_lazy("/nonexistent".into());
        monitor.set_host_timeout(4);
        let plain = session(None);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            monitor.with_call_timeout(Some(Duration::from_secs(1)), || panic!("boom"))
        }));
        assert!(result.is_err());
        assert_eq!(picked(&monitor, &plain), 4);
    }
}
