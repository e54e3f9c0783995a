//! One node: its HTTP client (connections kept alive), its credentials, its
//! cache, and fetching a queue within a deadline.

use super::cache::{Cache, Join, Waited};
use super::watch::WatchedFile;
use crate::api::{self, Call, Direction, QueueRequest};
use crate::auth::Credentials;
use crate::config::NodeConfig;
use crate::error::{Error, ErrorKind, Redactor, Result};
use crate::http::HttpClient;
use crate::lock::lock;
use crate::queue::{KeepText, Queue, QueueSnapshot};
use crate::secret::{self, Secret};
use crate::timeout::Deadline;
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A count keeps the `queue.get` text of answers under this size, so that a
/// get of a small queue is served by the same fetch; a larger queue is only
/// counted (and a get of it fetches again). Bounds what counting holds.
const KEEP_TEXT_BYTES: u64 = 256 * 1024;

/// What a snapshot is fetched for, so what it must give beyond the count.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum SnapshotFor {
    /// A count, stats or a ping: the count and the error reasons.
    Count,
    /// `queue.get`: the entries' text as well.
    Get,
}

pub(crate) struct NodeSession {
    pub(crate) config: NodeConfig,
    /// The 2.4 credentials, one per distinct credential (the node's first,
    /// where it has them), so minted tokens are kept per credential.
    credentials: Vec<Credentials>,
    /// The relations with their own credentials: index into `credentials`.
    by_relation: HashMap<String, usize>,
    /// The 4.0 API's credentials (a login's token kept here: one login per
    /// process and node).
    api: Option<Credentials>,
    http: Mutex<HttpState>,
    pub(crate) cache: Cache,
    /// The customer monitor endpoint, where the node has one.
    cmonitor: Option<CmonitorSession>,
}

/// The customer monitor endpoint: its own client (its URL may be another
/// host or scheme than the node's; proxy, ca_file and limits are the
/// node's) and its own credentials. Not cached: one item per node asks it,
/// for a few bytes, and each poll should see the node's count now.
struct CmonitorSession {
    /// The node's config with `url` = `cmonitor_url`, for its client.
    client_config: NodeConfig,
    credentials: Credentials,
    http: Mutex<HttpState>,
}

/// The client, rebuilt when it could not be built (a missing `ca_file` is
/// retried on the next call) or when the `ca_file` changed.
#[derive(Default)]
struct HttpState {
    client: Option<Arc<HttpClient>>,
    ca_file: WatchedFile,
}

impl NodeSession {
    pub(crate) fn new(mut config: NodeConfig) -> NodeSession {
        let mut distinct: Vec<_> = config.auth.iter().cloned().collect();
        let mut by_relation = HashMap::new();
        for (relation, credential) in &config.relation_auth {
            let index = distinct
                .iter()
                .position(|c| c == credential)
                .unwrap_or_else(|| {
                    distinct.push(credential.clone());
                    distinct.len() - 1
                });
            by_relation.insert(relation.clone(), index);
        }
        let credentials = distinct.into_iter().map(Credentials::new).collect();
        let cache = Cache::new(config.cache_ttl, config.cache_max_bytes);
        // The relations (maybe many) are not the endpoint's: not copied.
        let relations = std::mem::take(&mut config.relations);
        let relation_auth = std::mem::take(&mut config.relation_auth);
        let cmonitor = config.cmonitor.as_ref().map(|c| CmonitorSession {
            client_config: NodeConfig {
                url: c.url.clone(),
                cmonitor: None,
                ..config.clone()
            },
            credentials: Credentials::new(c.auth.clone()),
            http: Mutex::new(HttpState::default()),
        });
        config.relations = relations;
        config.relation_auth = relation_auth;
        NodeSession {
            api: config.api.clone().map(Credentials::new),
            config,
            credentials,
            by_relation,
            http: Mutex::new(HttpState::default()),
            cache,
            cmonitor,
        }
    }

    /// `numErrors` of the node's customer monitor endpoint, asked now
    /// within `deadline`. Errors name no place; the caller knows it.
    pub(crate) fn num_errors(&self, deadline: Deadline) -> Result<u64> {
        let Some(cmonitor) = &self.cmonitor else {
            return Err(Error::new(
                ErrorKind::Config,
                "no customer monitor endpoint configured (cmonitor_url): Exalate support enables it on request; set cmonitor_url and its credentials in the node's table",
            ));
        };
        let http = client(&cmonitor.http, &cmonitor.client_config);
        self.ask(http, deadline, |call| {
            let max = self.config.max_response_bytes;
            api::num_errors(
                &call,
                &cmonitor.client_config.url,
                &cmonitor.credentials,
                max,
            )
        })
    }

    /// The node's whole sync queue in `direction` (issuehub 4.0), asked now.
    pub(crate) fn node_total(&self, direction: Direction, deadline: Deadline) -> Result<u64> {
        let credentials = self.api_credentials()?;
        self.ask(self.http(), deadline, |call| {
            api::total(&call, &self.config.url, credentials, direction)
        })
    }

    /// The node's connections as `exalate.node.connections` gives them (a
    /// JSON array), asked now, without our secrets even if echoed.
    pub(crate) fn node_connections(&self, deadline: Deadline) -> Result<String> {
        let credentials = self.api_credentials()?;
        let connections = self.ask(self.http(), deadline, |call| {
            let max = self.config.max_response_bytes;
            api::connections(&call, &self.config.url, credentials, max)
        })?;
        let text = serde_json::to_string(&connections).expect("connections serialize");
        let secrets = self.known_secrets();
        let redactor = Redactor::new(&secret::texts(&secrets));
        Ok(redactor.redact(&text).unwrap_or(text))
    }

    /// Whether the 4.0 API answers and takes the credentials.
    pub(crate) fn api_ping(&self, deadline: Deadline) -> Result<()> {
        let credentials = self.api_credentials()?;
        self.ask(self.http(), deadline, |call| {
            api::ping(&call, &self.config.url, credentials)
        })
    }

    fn api_credentials(&self) -> Result<&Credentials> {
        self.api.as_ref().ok_or_else(|| {
            Error::new(
                ErrorKind::Config,
                "no issuehub 4.0 API credentials configured: set api_user with api_password_file (HTTP Basic; add api_login = true where the node wants a login), or api_token_file (Bearer)",
            )
        })
    }

    /// Runs one API call on `http` within `deadline`; its failure says
    /// "timeout after N s" and carries none of our secrets.
    fn ask<T>(
        &self,
        http: Result<Arc<HttpClient>>,
        deadline: Deadline,
        request: impl FnOnce(Call<'_>) -> Result<T>,
    ) -> Result<T> {
        let secrets = self.known_secrets();
        let outcome = http.and_then(|http| {
            request(Call {
                http: &http,
                secrets: &secret::texts(&secrets),
                deadline,
            })
        });
        outcome.map_err(|e| {
            let e = if e.kind() == ErrorKind::Timeout {
                timed_out(deadline)
            } else {
                e
            };
            let secrets = self.known_secrets();
            e.redact(&secret::texts(&secrets))
        })
    }

    /// The snapshot of a queue: from the cache while fresh, else fetched.
    /// Errors name no place; the caller knows which item asked.
    pub(crate) fn snapshot(
        &self,
        relation: &str,
        queue: Queue,
        wanted: SnapshotFor,
        deadline: Deadline,
    ) -> Result<Arc<QueueSnapshot>> {
        let with_text = wanted == SnapshotFor::Get;
        loop {
            if let Some(hit) = self.cache.get(relation, queue, with_text) {
                return hit;
            }
            // Its time is up (it waited in agent 2's queue): the failure of a
            // timed-out item, at once, nothing asked, nothing cached.
            if deadline.at <= Instant::now() {
                return Err(timed_out(deadline));
            }
            // A fetch in flight serves whoever asks for its queue meanwhile,
            // each within their own deadline; a get asks a count's fetch to
            // keep the text, and fetches again only if it was too late.
            match self.cache.join(relation, queue, with_text) {
                None => return self.fetch_and_keep(relation, queue, wanted, deadline, None),
                Some(Join::Lead(lead)) => {
                    let outcome = self.fetch_and_keep(
                        relation,
                        queue,
                        wanted,
                        deadline,
                        Some(&lead.flight.keep_all),
                    );
                    lead.land(&outcome);
                    return outcome;
                }
                Some(Join::Wait(flight)) => match flight.wait(deadline.at) {
                    Waited::Done(Ok(snapshot)) if with_text && snapshot.text.is_none() => {}
                    Waited::Done(outcome) => return outcome,
                    Waited::TimedOut => return Err(timed_out(deadline)),
                    Waited::Abandoned => {}
                },
            }
        }
    }

    /// Fetches and keeps the outcome in the cache.
    fn fetch_and_keep(
        &self,
        relation: &str,
        queue: Queue,
        wanted: SnapshotFor,
        deadline: Deadline,
        keep_all: Option<&AtomicBool>,
    ) -> Result<Arc<QueueSnapshot>> {
        let generation = self.cache.generation();
        let keep = match wanted {
            SnapshotFor::Count => KeepText::WhileUnder(KEEP_TEXT_BYTES),
            SnapshotFor::Get => KeepText::All,
        };
        let outcome = self
            .fetch(relation, queue, keep, keep_all, deadline)
            .map(|s| Arc::new(self.scrubbed(s)));
        let cacheable = match &outcome {
            Ok(_) => true,
            // A fixed config or secret file must take effect at once.
            Err(e) => e.kind() != ErrorKind::Config && e.kind() != ErrorKind::InvalidArgument,
        };
        if cacheable {
            self.cache.insert(generation, relation, queue, &outcome);
        }
        outcome
    }

    /// The snapshots of several queues of a relation, the missing ones
    /// fetched at once, each on its own thread and kept-alive connection:
    /// as long as the slowest, not the sum. The threads live in this call.
    pub(crate) fn snapshots(
        &self,
        relation: &str,
        queues: &[Queue],
        wanted: SnapshotFor,
        deadline: Deadline,
    ) -> Vec<Result<Arc<QueueSnapshot>>> {
        let mut results: Vec<Option<Result<Arc<QueueSnapshot>>>> = queues
            .iter()
            .map(|&q| self.cache.get(relation, q, wanted == SnapshotFor::Get))
            .collect();
        let missing: Vec<usize> = (0..queues.len())
            .filter(|&i| results[i].is_none())
            .collect();
        if let Some((&first, rest)) = missing.split_first() {
            std::thread::scope(|scope| {
                let spawned: Vec<_> = rest
                    .iter()
                    .map(|&i| {
                        let fetch = move || self.snapshot(relation, queues[i], wanted, deadline);
                        let handle = std::thread::Builder::new()
                            .name("exalate-fetch".into())
                            .spawn_scoped(scope, fetch);
                        (i, handle)
                    })
                    .collect();
                results[first] = Some(self.snapshot(relation, queues[first], wanted, deadline));
                for (i, handle) in spawned {
                    results[i] = Some(match handle {
                        Ok(handle) => handle
                            .join()
                            .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                        // No thread to be had (limits): fetch here, in turn.
                        Err(_) => self.snapshot(relation, queues[i], wanted, deadline),
                    });
                }
            });
        }
        results
            .into_iter()
            .map(|r| r.expect("every queue answered"))
            .collect()
    }

    fn fetch(
        &self,
        relation: &str,
        queue: Queue,
        keep: KeepText,
        keep_all: Option<&AtomicBool>,
        deadline: Deadline,
    ) -> Result<QueueSnapshot> {
        let credentials = self.credentials(relation)?;
        let request = QueueRequest {
            relation,
            queue,
            keep,
            keep_all,
            max: self.config.max_response_bytes,
        };
        self.ask(self.http(), deadline, |call| {
            api::fetch_queue(&call, &self.config.url, credentials, &request)
        })
    }

    /// The secrets and the tokens this node's credentials sent (every
    /// relation's: a message about one never carries another's), and those
    /// of its customer monitor endpoint.
    pub(crate) fn known_secrets(&self) -> Vec<Secret> {
        let mut known: Vec<Secret> = self
            .credentials
            .iter()
            .flat_map(Credentials::known_secrets)
            .collect();
        if let Some(cmonitor) = &self.cmonitor {
            known.extend(cmonitor.credentials.known_secrets());
        }
        if let Some(api) = &self.api {
            known.extend(api.known_secrets());
        }
        known
    }

    /// The 2.4 credentials of requests about `relation`: its own, else the
    /// node's; a node watched through the 4.0 API only has none.
    fn credentials(&self, relation: &str) -> Result<&Credentials> {
        let index = match self.by_relation.get(relation) {
            Some(&index) => index,
            None if self.config.auth.is_some() => 0,
            None => {
                return Err(Error::new(
                    ErrorKind::Config,
                    "no issuehub 2.4 credentials configured (token_file or jwt_secret_file): this node is watched through the 4.0 API only (exalate.node.queue, exalate.node.connections)",
                ))
            }
        };
        Ok(&self.credentials[index])
    }

    /// The node's client; a `ca_file` that changed (checked at most once a
    /// second) or that failed before is read again.
    fn http(&self) -> Result<Arc<HttpClient>> {
        client(&self.http, &self.config)
    }

    /// What a node answered never carries one of our secrets, a fragment of
    /// one or anything JWT-shaped into a value, even if a hostile node
    /// echoes it back (as is or JSON-escaped): the same redaction as
    /// messages. The reasons were redacted before their cut (see `fetch_once`);
    /// this catches a token minted meanwhile.
    fn scrubbed(&self, mut snapshot: QueueSnapshot) -> QueueSnapshot {
        let secrets = self.known_secrets();
        let redactor = Redactor::new(&secret::texts(&secrets));
        let scrub = |text: &str| redactor.redact(text);
        if let Some(clean) = snapshot.text.as_deref().and_then(|t| scrub(t)) {
            snapshot.text = Some(Arc::new(clean));
        }
        if snapshot.reasons.keys().any(|r| scrub(r).is_some()) {
            let reasons = std::mem::take(&mut snapshot.reasons);
            for (reason, n) in reasons {
                let reason = scrub(&reason).unwrap_or(reason);
                *snapshot.reasons.entry(reason).or_insert(0) += n;
            }
        }
        snapshot
    }
}

/// The client of `state` for `config`; a `ca_file` that changed (checked
/// at most once a second) or that failed before is read again.
fn client(state: &Mutex<HttpState>, config: &NodeConfig) -> Result<Arc<HttpClient>> {
    let mut state = lock(state);
    if let Some(ca_file) = &config.ca_file {
        if state.ca_file.changed(ca_file) {
            state.client = None;
        }
    }
    if let Some(client) = &state.client {
        return Ok(client.clone());
    }
    let client = Arc::new(HttpClient::new(config)?);
    state.client = Some(client.clone());
    Ok(client)
}

/// How an item whose deadline passed fails.
fn timed_out(deadline: Deadline) -> Error {
    Error::new(
        ErrorKind::Timeout,
        format!("timeout after {} s", deadline.timeout.as_secs()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    /// Minted tokens are kept per credential: relations with the same
    /// credential share one `Credentials`, and only those.
    #[test]
    fn one_credentials_per_distinct_credential() {
        let text = "[nodes.n]\nurl = \"http://127.0.0.1:1\"\njwt_secret_file = \"/node\"\n\
            relations = [\"A\", { name = \"B\", jwt_secret_file = \"/node\" },\n\
            { name = \"C\", jwt_secret_file = \"/c\" }, { name = \"D\", jwt_secret_file = \"/c\" },\n\
            { name = \"E\", jwt_secret_file = \"/c\", jwt_exp_unit = \"s\" }]\n";
        let config = Config::parse(Path::new("t.toml"), text).unwrap();
        let s = NodeSession::new(config.nodes["n"].clone());
        assert_eq!(s.credentials.len(), 3);
        let same =
            |a: &str, b: &str| std::ptr::eq(s.credentials(a).unwrap(), s.credentials(b).unwrap());
        assert!(same("A", "B"), "B's own is the node's");
        assert!(same("A", "not listed"));
        assert!(same("C", "D"));
        assert!(!same("C", "E"), "E's claims differ");
        assert!(!same("A", "C"));
    }
}
