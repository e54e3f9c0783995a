//! The monitor: what every host (the Zabbix module, the C API) asks.
//! It owns the config (re-read when the file changes), one session per node
//! (HTTP agent and credentials, created lazily in the process that uses
//! them) and the per-process cache of queue snapshots.

use crate::auth::Credentials;
use crate::config::{Config, NodeConfig};
use crate::error::{body_excerpt, quoted, Error, ErrorKind, Result};
use crate::http::{encode_segment, HttpClient};
use crate::queue::{read_queue, Keep, Queue, QueueSnapshot};
use crate::secret::Secret;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime};

/// How often the config file is checked for changes.
const RELOAD_CHECK: Duration = Duration::from_secs(1);
/// Entries of a count/stats fetch are kept for `queue.get` while the answer
/// is under this size; a larger queue is only counted (and a `queue.get` of
/// it fetches again). Bounds what counting holds in memory.
const KEEP_ENTRIES_BYTES: u64 = 256 * 1024;
/// Relation names longer than this are refused before any request.
const MAX_RELATION_CHARS: usize = 1000;
/// Past this many cached queues, expired ones are dropped.
const CACHE_SOFT_LIMIT: usize = 512;
/// The relation asked by `node.ping` when a node lists none: any answer but
/// 401/403 shows the node is up and takes our credentials.
const PING_RELATION: &str = "exalate-zabbix-ping";

pub struct Monitor {
    path: PathBuf,
    /// The host's timeout in seconds (the agent's Timeout), used for nodes
    /// without a `timeout` of their own.
    host_timeout_secs: AtomicU64,
    loaded: Mutex<Loaded>,
    cache: Mutex<HashMap<CacheKey, Cached>>,
}

#[derive(Default)]
struct Loaded {
    current: Option<Result<Arc<Setup>>>,
    stamp: Option<FileStamp>,
    checked_at: Option<Instant>,
}

/// What tells a changed config file from the one already loaded.
#[derive(Clone, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

struct Setup {
    config: Config,
    sessions: BTreeMap<String, Arc<NodeSession>>,
}

struct NodeSession {
    config: NodeConfig,
    credentials: Credentials,
    http: OnceLock<std::result::Result<HttpClient, Error>>,
}

type CacheKey = (String, String, Queue);

struct Cached {
    fetched_at: Instant,
    result: Result<Arc<QueueSnapshot>>,
}

/// The value of `exalate.relation.stats`, fields in the queues' order.
#[derive(serde::Serialize)]
struct RelationStats {
    syncrequests: u64,
    blobrequests: u64,
    syncresponses: u64,
    blobresponses: u64,
    errorresponses: u64,
    bloberrorresponses: u64,
    error_reasons: BTreeMap<String, u64>,
}

/// What a fetch must give beyond the count.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Need {
    Summary,
    Entries,
}

impl Monitor {
    /// A monitor that reads `path` on first use (the Zabbix module: the agent
    /// must start even when the config is broken).
    pub fn new_lazy(path: PathBuf) -> Monitor {
        Monitor {
            path,
            host_timeout_secs: AtomicU64::new(3),
            loaded: Mutex::new(Loaded::default()),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// A monitor whose config must be valid now (the C API).
    pub fn open(path: PathBuf) -> Result<Monitor> {
        let monitor = Monitor::new_lazy(path);
        monitor.setup()?;
        Ok(monitor)
    }

    pub fn config_path(&self) -> &Path {
        &self.path
    }

    pub fn set_host_timeout(&self, seconds: u64) {
        self.host_timeout_secs
            .store(seconds.clamp(1, 30), Ordering::Relaxed);
    }

    /// Entries in `queue` of `relation` on `node` now.
    pub fn queue_count(&self, node: &str, relation: &str, queue: &str) -> Result<u64> {
        let (session, queue) = self.target(node, relation, Some(queue))?;
        let queue = queue.expect("queue given");
        let deadline = self.deadline(&session);
        let snapshot = self.snapshot(&session, relation, queue, Need::Summary, deadline)?;
        Ok(snapshot.count)
    }

    /// The entries of a queue as a JSON array, without `encodedPayload`.
    pub fn queue_get(&self, node: &str, relation: &str, queue: &str) -> Result<String> {
        let (session, queue) = self.target(node, relation, Some(queue))?;
        let queue = queue.expect("queue given");
        let deadline = self.deadline(&session);
        let snapshot = self.snapshot(&session, relation, queue, Need::Entries, deadline)?;
        let entries = snapshot.entries.as_deref().unwrap_or_default();
        let json = serde_json::to_string(entries).expect("values serialize");
        Ok(session.scrub_value(json))
    }

    /// The six counts and the error reasons of a relation as one JSON object.
    pub fn relation_stats(&self, node: &str, relation: &str) -> Result<String> {
        let (session, _) = self.target(node, relation, None)?;
        let deadline = self.deadline(&session);
        let mut counts = [0u64; 6];
        let mut error_reasons: BTreeMap<String, u64> = BTreeMap::new();
        for (i, queue) in Queue::ALL.into_iter().enumerate() {
            let snapshot = self.snapshot(&session, relation, queue, Need::Summary, deadline)?;
            counts[i] = snapshot.count;
            for (reason, n) in &snapshot.reasons {
                *error_reasons.entry(reason.clone()).or_insert(0) += n;
            }
        }
        let [syncrequests, blobrequests, syncresponses, blobresponses, errorresponses, bloberrorresponses] =
            counts;
        let stats = RelationStats {
            syncrequests,
            blobrequests,
            syncresponses,
            blobresponses,
            errorresponses,
            bloberrorresponses,
            error_reasons,
        };
        Ok(session.scrub_value(serde_json::to_string(&stats).expect("stats serialize")))
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
        match self.snapshot(
            &session,
            relation,
            Queue::BlobErrorResponses,
            Need::Summary,
            deadline,
        ) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::RelationNotFound => Ok(true),
            Err(e) if e.kind() == ErrorKind::Config => Err(e),
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

    fn deadline(&self, session: &NodeSession) -> Deadline {
        let timeout = session
            .config
            .timeout
            .or_else(call_timeout)
            .unwrap_or_else(|| Duration::from_secs(self.host_timeout_secs.load(Ordering::Relaxed)));
        Deadline {
            at: Instant::now() + timeout,
            timeout,
        }
    }

    /// The snapshot of a queue: from the cache while fresh, else fetched.
    fn snapshot(
        &self,
        session: &NodeSession,
        relation: &str,
        queue: Queue,
        need: Need,
        deadline: Deadline,
    ) -> Result<Arc<QueueSnapshot>> {
        let ttl = session.config.cache_ttl;
        let key = (session.config.name.clone(), relation.to_string(), queue);
        if !ttl.is_zero() {
            if let Some(cached) = lock(&self.cache).get(&key) {
                let fresh = cached.fetched_at.elapsed() < ttl;
                let enough = match &cached.result {
                    Ok(s) => need == Need::Summary || s.entries.is_some(),
                    Err(_) => true,
                };
                if fresh && enough {
                    return cached.result.clone();
                }
            }
        }
        let keep = match need {
            Need::Summary => Keep::WhileUnder(KEEP_ENTRIES_BYTES),
            Need::Entries => Keep::All,
        };
        let result = session.fetch(relation, queue, keep, deadline).map(Arc::new);
        let cacheable = match &result {
            Ok(_) => true,
            // A fixed config or secret file must take effect at once.
            Err(e) => e.kind() != ErrorKind::Config && e.kind() != ErrorKind::InvalidArgument,
        };
        if !ttl.is_zero() && cacheable {
            let mut cache = lock(&self.cache);
            if cache.len() >= CACHE_SOFT_LIMIT {
                cache.retain(|_, c| c.fetched_at.elapsed() < Duration::from_secs(600));
                if cache.len() >= CACHE_SOFT_LIMIT {
                    cache.clear();
                }
            }
            cache.insert(
                key,
                Cached {
                    fetched_at: Instant::now(),
                    result: result.clone(),
                },
            );
        }
        result
    }

    /// The current setup, re-reading the config when the file changed.
    fn setup(&self) -> Result<Arc<Setup>> {
        let mut loaded = lock(&self.loaded);
        let due = loaded
            .checked_at
            .is_none_or(|t| t.elapsed() >= RELOAD_CHECK);
        if due {
            loaded.checked_at = Some(Instant::now());
            let stamp = file_stamp(&self.path);
            if loaded.current.is_none() || stamp != loaded.stamp {
                let previous = match &loaded.current {
                    Some(Ok(setup)) => Some(setup.clone()),
                    _ => None,
                };
                let next = Config::load(&self.path)
                    .map(|config| Arc::new(Setup::new(config, previous.as_deref())));
                loaded.stamp = stamp;
                loaded.current = Some(next);
                lock(&self.cache).clear();
            }
        }
        loaded.current.clone().expect("loaded above")
    }
}

impl Setup {
    /// Keeps the sessions (connections, tokens) of nodes whose config did not change.
    fn new(config: Config, previous: Option<&Setup>) -> Setup {
        let sessions = config
            .nodes
            .values()
            .map(|node| {
                let kept = previous
                    .and_then(|p| p.sessions.get(&node.name))
                    .filter(|s| s.config == *node)
                    .cloned();
                let session = kept.unwrap_or_else(|| Arc::new(NodeSession::new(node.clone())));
                (node.name.clone(), session)
            })
            .collect();
        Setup { config, sessions }
    }

    fn session(&self, node: &str) -> Result<Arc<NodeSession>> {
        let name = &self.config.node(node)?.name;
        Ok(self.sessions[name].clone())
    }
}

#[derive(Clone, Copy)]
struct Deadline {
    at: Instant,
    timeout: Duration,
}

impl NodeSession {
    fn new(config: NodeConfig) -> NodeSession {
        let credentials = Credentials::new(config.auth.clone(), config.auth_header);
        NodeSession {
            config,
            credentials,
            http: OnceLock::new(),
        }
    }

    fn fetch(
        &self,
        relation: &str,
        queue: Queue,
        keep: Keep,
        deadline: Deadline,
    ) -> Result<QueueSnapshot> {
        let place = format!(
            "node {}, relation {}, queue {queue}",
            quoted(&self.config.name),
            quoted(relation)
        );
        self.fetch_once(relation, queue, keep, deadline, true)
            .map_err(|e| {
                let e = if e.kind() == ErrorKind::Timeout {
                    Error::new(
                        ErrorKind::Timeout,
                        format!("timeout after {} s", deadline.timeout.as_secs()),
                    )
                } else {
                    e
                };
                let secrets = self.credentials.known_secrets();
                e.context(&place)
                    .redact(&secrets.iter().map(Secret::as_str).collect::<Vec<_>>())
            })
    }

    fn fetch_once(
        &self,
        relation: &str,
        queue: Queue,
        keep: Keep,
        deadline: Deadline,
        may_retry: bool,
    ) -> Result<QueueSnapshot> {
        let http = self
            .http
            .get_or_init(|| HttpClient::new(&self.config))
            .as_ref()
            .map_err(Clone::clone)?;
        let url = format!(
            "{}/rest/issuehub/2.4/relations/{}/{}",
            self.config.url,
            encode_segment(relation),
            queue.path()
        );
        let (name, value) = self.credentials.header()?;
        let remaining = deadline.at.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Error::new(ErrorKind::Timeout, "timed out"));
        }
        let mut response = http.get(&url, (name, &value), remaining)?;
        let max = self.config.max_response_bytes;
        match response.status {
            200 => {
                if response.content_length.is_some_and(|n| n > max) {
                    return Err(Error::new(
                        ErrorKind::TooLarge,
                        format!("response larger than max_response_bytes ({max} bytes)"),
                    ));
                }
                read_queue(queue, response.body, max, keep)
            }
            400 => Err(Error::new(
                ErrorKind::RelationNotFound,
                format!("relation not found on the node (HTTP 400: {})", excerpt(&mut response.body, &self.credentials.known_secrets())),
            )),
            401 if may_retry && self.credentials.can_mint() => {
                // The node may have restarted or its clock moved: one fresh token.
                self.credentials.forget_minted();
                self.fetch_once(relation, queue, keep, deadline, false)
            }
            401 => Err(Error::new(
                ErrorKind::AuthRejected,
                format!("credentials rejected (HTTP 401): {}", self.credentials.rejection_hint()),
            )),
            403 => Err(Error::new(
                ErrorKind::NotAuthenticated,
                format!(
                    "not authenticated (HTTP 403): the node saw no credentials; check auth_header (sent: {name})"
                ),
            )),
            status @ 500..=599 => Err(Error::new(
                ErrorKind::NodeError,
                format!("node error (HTTP {status}: {})", excerpt(&mut response.body, &self.credentials.known_secrets())),
            )),
            status @ 300..=399 => Err(Error::new(
                ErrorKind::BadResponse,
                format!("unexpected redirect (HTTP {status}); redirects are not followed: check url"),
            )),
            status => Err(Error::new(
                ErrorKind::BadResponse,
                format!("unexpected HTTP status {status}: {}", excerpt(&mut response.body, &self.credentials.known_secrets())),
            )),
        }
    }

    /// A value built from a node's answer never carries one of our secrets,
    /// even if a hostile node echoes it back.
    fn scrub_value(&self, mut value: String) -> String {
        for secret in self.credentials.known_secrets() {
            let secret = secret.as_str();
            if secret.len() >= 4 && value.contains(secret) {
                value = value.replace(secret, "***");
            }
        }
        value
    }
}

/// The start of an error body, read with a small cap, scrubbed of `secrets`.
fn excerpt(body: &mut impl Read, secrets: &[Secret]) -> String {
    let mut start = Vec::new();
    let _ = body.take(4096).read_to_end(&mut start);
    let secrets: Vec<&str> = secrets.iter().map(Secret::as_str).collect();
    match body_excerpt(&start, &secrets) {
        e if e.is_empty() => "empty body".to_string(),
        e => e,
    }
}

fn file_stamp(path: &Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some(FileStamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        inode: meta.ino(),
    })
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

thread_local! {
    /// The host's timeout for the call running on this thread, when it gave
    /// one (a 7.0 agent's per-item timeout); see [`Monitor::with_call_timeout`].
    static CALL_TIMEOUT: std::cell::Cell<Option<Duration>> = const { std::cell::Cell::new(None) };
}

fn call_timeout() -> Option<Duration> {
    CALL_TIMEOUT.with(|t| t.get())
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
}

impl Monitor {
    /// The secret and the tokens sent of every node loaded now, to scrub
    /// text that did not come through a node's fetch (a panic's message).
    pub fn known_secrets(&self) -> Vec<Secret> {
        let current = lock(&self.loaded).current.clone();
        match current {
            Some(Ok(setup)) => setup
                .sessions
                .values()
                .flat_map(|s| s.credentials.known_secrets())
                .collect(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod call_timeout_tests {
    use super::*;

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
            assert_eq!(picked(&monitor, &own), 5, "the node's own timeout wins");
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
