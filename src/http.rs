//! The HTTP client of one node: a ureq agent (kept alive, reused), no
//! redirects, certificates checked against the system roots plus `ca_file`,
//! and every failure turned into one specific error.

use crate::config::NodeConfig;
use crate::error::{io_error, io_reason, Error, ErrorKind, Result};
use crate::lock::lock;
use crate::proxy::{AbsoluteForm, Route, Tunnel};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use ureq::http::Uri;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    Connector, DefaultConnector, NextTimeout, RustlsConnector, TcpConnector,
};

/// How long a resolved host name is reused.
const DNS_CACHE_TTL: Duration = Duration::from_secs(60);
/// How long a failed lookup (or one that outlived a caller's deadline)
/// answers "cannot resolve" at once, instead of each call waiting again.
const DNS_FAILURE_TTL: Duration = Duration::from_secs(5);

pub(crate) struct HttpClient {
    /// Makes an agent for the node: its config (TLS roots read once), its
    /// connector and resolver.
    make: Box<dyn Fn() -> ureq::Agent + Send + Sync>,
    /// The agent of the process using the client now (see [`ProcessAgent`]).
    agent: Mutex<ProcessAgent>,
}

/// An agent and the process it was made in. Its pooled connections are
/// that process's sockets: after fork() the child holds copies of them,
/// and a request the child wrote on one would share the connection with
/// the parent's (each reading the other's answers). A client used in
/// another process than its agent's makes a fresh agent there. The
/// inherited one is leaked, never dropped: dropping it would close its
/// connections (for TLS, sending close_notify on a socket the parent still
/// uses); leaking costs the child a few file descriptors and buffers once.
struct ProcessAgent {
    pid: u32,
    /// Always Some, but for the leak in `drop`.
    agent: Option<ureq::Agent>,
}

impl ProcessAgent {
    fn new(agent: ureq::Agent) -> ProcessAgent {
        ProcessAgent {
            pid: std::process::id(),
            agent: Some(agent),
        }
    }
}

impl Drop for ProcessAgent {
    fn drop(&mut self) {
        if self.pid != std::process::id() {
            std::mem::forget(self.agent.take());
        }
    }
}

/// A response whose status is known and whose body is not read yet.
pub(crate) struct HttpResponse {
    pub(crate) status: u16,
    pub(crate) content_length: Option<u64>,
    headers: ureq::http::HeaderMap,
    pub(crate) body: ureq::BodyReader<'static>,
}

impl HttpClient {
    /// A client resolving with the system's resolver; what it knows of host
    /// names (and the lookups under way) is the process's, shared with every
    /// client: a lookup that never returns is not started again by the next
    /// client (a reload, a C API client opened after one freed).
    pub(crate) fn new(node: &NodeConfig) -> Result<HttpClient> {
        HttpClient::with_resolver(node, Arc::new(SystemLookup), system_hosts)
    }

    /// A client whose host names are looked up by `lookup`.
    #[cfg(test)]
    pub(crate) fn with_lookup(node: &NodeConfig, lookup: Arc<dyn Lookup>) -> Result<HttpClient> {
        let hosts = Hosts::default();
        HttpClient::with_resolver(node, lookup, move || hosts.clone())
    }

    /// `hosts` gives the host table of each agent made (one per process).
    fn with_resolver(
        node: &NodeConfig,
        lookup: Arc<dyn Lookup>,
        hosts: impl Fn() -> Hosts + Send + Sync + 'static,
    ) -> Result<HttpClient> {
        let route = Route::new(&node.url, node.proxy.as_deref());
        let mut config = ureq::Agent::config_builder()
            // Never ureq's proxy: its default reads HTTP_PROXY & co., and
            // the `proxy` key's routes are the connectors' (see proxy.rs).
            .proxy(None)
            .http_status_as_error(false)
            // A redirect could carry the token to another host: never follow.
            .max_redirects(0)
            .user_agent(concat!("exalate-zabbix/", env!("CARGO_PKG_VERSION")))
            .max_idle_connections_per_host(8);
        if node.url.starts_with("https://") {
            config = config.tls_config(
                TlsConfig::builder()
                    .root_certs(root_certs(node.ca_file.as_deref())?)
                    .build(),
            );
        }
        let config = config.build();
        let via = route.proxy();
        let make = move || {
            let resolver = CachingResolver::new(lookup.clone(), hosts(), via.clone());
            let config = config.clone();
            match route {
                Route::Direct => ureq::Agent::with_parts(config, DefaultConnector::new(), resolver),
                Route::Connect { .. } => {
                    let tunnel =
                        ().chain(TcpConnector::default())
                            .chain(Tunnel)
                            .chain(RustlsConnector::default());
                    ureq::Agent::with_parts(config, tunnel, resolver)
                }
                Route::AbsoluteForm { .. } => {
                    ureq::Agent::with_parts(config, AbsoluteForm::default(), resolver)
                }
            }
        };
        let agent = Mutex::new(ProcessAgent::new(make()));
        Ok(HttpClient {
            make: Box::new(make),
            agent,
        })
    }

    /// The agent for a request to `url`, once its port is known to be one
    /// (see [`uri_port`]): the client's, or a fresh one when the client
    /// was made (or last used) before a fork() (see [`ProcessAgent`]).
    /// Every request goes through here.
    fn agent_for(&self, url: &str) -> Result<ureq::Agent> {
        if let Ok(uri) = url.parse::<Uri>() {
            uri_port(&uri).map_err(classify)?;
        }
        Ok(self.agent())
    }

    fn agent(&self) -> ureq::Agent {
        let mut slot = lock(&self.agent);
        if slot.pid != std::process::id() {
            // Dropping the old slot leaks its agent (the pid differs).
            *slot = ProcessAgent::new((self.make)());
        }
        slot.agent.clone().expect("an agent until dropped")
    }

    /// GETs `url` with one extra header, the whole exchange bounded by `timeout`.
    pub(crate) fn get(
        &self,
        url: &str,
        header: (&str, &str),
        timeout: Duration,
    ) -> Result<HttpResponse> {
        let request = self
            .agent_for(url)?
            .get(url)
            .header("Accept", "application/json")
            .header(header.0, header.1)
            .config()
            .timeout_global(Some(timeout))
            .build();
        HttpResponse::from(request.call())
    }

    /// POSTs `body` as JSON to `url` with `headers`, the whole exchange
    /// bounded by `timeout`.
    pub(crate) fn post_json(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        timeout: Duration,
    ) -> Result<HttpResponse> {
        let mut request = self
            .agent_for(url)?
            .post(url)
            .header("Accept", "application/json")
            .header("Content-Type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.config().timeout_global(Some(timeout)).build();
        HttpResponse::from(request.send(body))
    }
}

impl HttpResponse {
    fn from(
        outcome: std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<HttpResponse> {
        let response = outcome.map_err(classify)?;
        let content_length = response
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let (parts, body) = response.into_parts();
        Ok(HttpResponse {
            status: parts.status.as_u16(),
            content_length,
            headers: parts.headers,
            body: body.into_reader(),
        })
    }

    /// A response header's value, if it is there and is text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Looks a host name up. Blocking, and possibly for ever (a DNS server
/// that never answers): the resolver bounds every wait by its caller's own
/// deadline. The system's resolver by default; a test passes a fake.
pub(crate) trait Lookup: Send + Sync + 'static {
    fn lookup(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>>;
}

/// getaddrinfo, through std.
struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        use std::net::ToSocketAddrs;
        // Test builds: a DNS server that never answers, for these names.
        #[cfg(feature = "fault-injection")]
        if host.ends_with(".dead-dns.exalate-test") {
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        Ok((host, port).to_socket_addrs()?.collect())
    }
}

/// Resolves a node's host name: IP literals at once, answers reused for a
/// minute, failures for a few seconds. No lock is held while a lookup runs:
/// it runs on its own thread, one per host at a time, and every caller
/// (however many threads share the client) waits for it only until its
/// own deadline. (ureq's resolver also spawns a thread per lookup, and the
/// lock the first version held across it made 4 threads on one client
/// with a dead DNS server return after 2, 4, 6 and 8 s.)
struct CachingResolver {
    lookup: Arc<dyn Lookup>,
    hosts: Hosts,
    /// Resolve this (host, port) whatever the URI says: the node's proxy
    /// (see [`Route`]).
    via: Option<(String, u16)>,
}

impl std::fmt::Debug for CachingResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CachingResolver")
    }
}

/// What is known of each "host:port", shared by the clients of a lookup.
type Hosts = Arc<HostMap>;
type HostMap = Mutex<HashMap<String, HostEntry>>;

/// The system resolver's `Hosts`, while a client or a lookup under way
/// holds them; a weak reference, so that nothing is kept once they are all
/// gone (see [`forget_shared_hosts`]). With the process they belong to: a
/// lookup under way in the parent has no thread in a forked child, which
/// starts its own table.
static SYSTEM_HOSTS: Mutex<Option<(u32, std::sync::Weak<HostMap>)>> = Mutex::new(None);

/// The system resolver's `Hosts` of this process, shared by its clients.
fn system_hosts() -> Hosts {
    let pid = std::process::id();
    let mut shared = lock(&SYSTEM_HOSTS);
    let alive = shared
        .as_ref()
        .filter(|(owner, _)| *owner == pid)
        .and_then(|(_, hosts)| hosts.upgrade());
    match alive {
        Some(hosts) => hosts,
        None => {
            let hosts = Hosts::default();
            *shared = Some((pid, Arc::downgrade(&hosts)));
            hosts
        }
    }
}

/// Lets go of the last trace of the shared `Hosts` (the weak reference's
/// allocation), for a module about to be unloaded.
pub fn forget_shared_hosts() {
    lock(&SYSTEM_HOSTS).take();
}

enum HostEntry {
    Resolved(Instant, Vec<SocketAddr>),
    /// The lookup failed or outlived a caller's deadline; `Instant` is when.
    /// A lookup that outlived it may still run (a DNS server that never
    /// answers): once the failure is stale, callers wait for that one
    /// rather than start another, so one lookup of a host runs at a time.
    Failed(Instant, Option<Arc<Flight>>),
    InFlight(Arc<Flight>),
}

/// A lookup running on its thread; callers wait on it with their deadline.
#[derive(Default)]
struct Flight {
    outcome: Mutex<Option<std::result::Result<Vec<SocketAddr>, ()>>>,
    done: Condvar,
}

impl CachingResolver {
    fn new(lookup: Arc<dyn Lookup>, hosts: Hosts, via: Option<(String, u16)>) -> CachingResolver {
        CachingResolver { lookup, hosts, via }
    }

    /// The running lookup of `key`, started here if there is none and no
    /// fresh answer or failure is known.
    fn flight(
        &self,
        key: &str,
        host: &str,
        port: u16,
    ) -> std::result::Result<Arc<Flight>, std::result::Result<Vec<SocketAddr>, ureq::Error>> {
        let mut hosts = lock(&self.hosts);
        match hosts.get(key) {
            Some(HostEntry::Resolved(at, addrs)) if at.elapsed() < DNS_CACHE_TTL => {
                return Err(Ok(addrs.clone()))
            }
            Some(HostEntry::Failed(at, _)) if at.elapsed() < DNS_FAILURE_TTL => {
                return Err(Err(ureq::Error::HostNotFound))
            }
            Some(HostEntry::Failed(_, Some(running))) if lock(&running.outcome).is_none() => {
                return Ok(running.clone())
            }
            Some(HostEntry::InFlight(flight)) => return Ok(flight.clone()),
            _ => {}
        }
        let flight = Arc::new(Flight::default());
        hosts.insert(key.to_string(), HostEntry::InFlight(flight.clone()));
        drop(hosts);
        let (lookup, hosts, entry_key) = (self.lookup.clone(), self.hosts.clone(), key.to_string());
        let (host, theirs) = (host.to_string(), flight.clone());
        let spawned = std::thread::Builder::new()
            .name("exalate-dns".into())
            .spawn(move || {
                let outcome = lookup.lookup(&host, port).map_err(|_| ());
                let outcome = outcome.and_then(|a| if a.is_empty() { Err(()) } else { Ok(a) });
                let entry = match &outcome {
                    Ok(addrs) => HostEntry::Resolved(Instant::now(), addrs.clone()),
                    Err(()) => HostEntry::Failed(Instant::now(), None),
                };
                // A late answer still serves the callers after it.
                lock(&hosts).insert(entry_key, entry);
                *lock(&theirs.outcome) = Some(outcome);
                theirs.done.notify_all();
            });
        if spawned.is_err() {
            lock(&self.hosts).remove(key);
            return Err(Err(ureq::Error::HostNotFound));
        }
        Ok(flight)
    }
}

impl Resolver for CachingResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> std::result::Result<ResolvedSocketAddrs, ureq::Error> {
        let _ = config;
        let (host, port) = match &self.via {
            Some((host, port)) => (host.as_str(), *port),
            None => (uri.host().unwrap_or(""), uri_port(uri)?),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let found = if let Ok(ip) = host.parse::<IpAddr>() {
            vec![SocketAddr::new(ip, port)]
        } else {
            let key = format!("{host}:{port}");
            match self.flight(&key, host, port) {
                Err(known) => known?,
                Ok(flight) => {
                    let wait = (!timeout.after.is_not_happening()).then(|| *timeout.after);
                    let deadline = wait.map(|w| Instant::now() + w);
                    let mut outcome = lock(&flight.outcome);
                    loop {
                        if let Some(done) = outcome.as_ref() {
                            break done.clone().map_err(|()| ureq::Error::HostNotFound)?;
                        }
                        match deadline {
                            None => {
                                outcome =
                                    flight.done.wait(outcome).unwrap_or_else(|p| p.into_inner())
                            }
                            Some(deadline) => {
                                let left = deadline.saturating_duration_since(Instant::now());
                                if left.is_zero() {
                                    drop(outcome);
                                    // Later callers fail fast for a while
                                    // instead of each waiting their whole timeout.
                                    let mut hosts = lock(&self.hosts);
                                    let ours = match hosts.get(&key) {
                                        Some(HostEntry::InFlight(f))
                                        | Some(HostEntry::Failed(_, Some(f))) => {
                                            Arc::ptr_eq(f, &flight)
                                        }
                                        _ => false,
                                    };
                                    if ours {
                                        hosts.insert(
                                            key,
                                            HostEntry::Failed(Instant::now(), Some(flight.clone())),
                                        );
                                    }
                                    return Err(ureq::Error::Timeout(timeout.reason));
                                }
                                outcome = flight
                                    .done
                                    .wait_timeout(outcome, left)
                                    .map(|(g, _)| g)
                                    .unwrap_or_else(|p| p.into_inner().0);
                            }
                        }
                    }
                }
            }
        };
        let mut addrs = self.empty();
        // ureq's ResolvedSocketAddrs holds 16 addresses (its MAX_ADDRS).
        for addr in found.into_iter().take(16) {
            addrs.push(addr);
        }
        Ok(addrs)
    }
}

/// The port a request to `uri` goes to: the one written, else the
/// scheme's. A written port that is not one (`:99999`, `:8080x`, `:0`) is
/// an error, never the scheme's port: that would send the node's
/// credentials to whatever listens there.
fn uri_port(uri: &Uri) -> std::result::Result<u16, ureq::Error> {
    // As written: `Uri::port()` is None for a port that does not parse,
    // the same as for none written.
    let authority = uri.authority().map_or("", |a| a.as_str());
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, after)| after);
    match crate::proxy::split_authority(host_port).1 {
        None if uri.scheme_str() == Some("https") => Ok(443),
        None => Ok(80),
        Some(port) if crate::config::valid_port(port) => Ok(port.parse().expect("a valid port")),
        Some(_) => Err(ureq::Error::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            NotAPort,
        ))),
    }
}

/// A URL's port that is not one (see [`uri_port`]); `classify` makes it a
/// config error.
#[derive(Debug)]
struct NotAPort;

impl std::fmt::Display for NotAPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the URL's port is not a number from 1 to 65535")
    }
}

impl std::error::Error for NotAPort {}

/// Percent-encodes `name` as one path segment: everything but RFC 3986's
/// unreserved characters is escaped, and so is a dot, so "." and ".." stay
/// names and never become path steps.
pub(crate) fn encode_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The error for a failed exchange, without the URL or any header.
pub(crate) fn classify(e: ureq::Error) -> Error {
    use ureq::Error as U;
    match e {
        U::Timeout(_) => Error::new(ErrorKind::Timeout, "timed out"),
        U::Io(io) if io.get_ref().is_some_and(|e| e.is::<NotAPort>()) => {
            Error::new(ErrorKind::Config, NotAPort.to_string())
        }
        U::Io(io) => io_error(&io),
        U::HostNotFound => Error::new(
            ErrorKind::ConnectionFailed,
            "cannot resolve the node's host name",
        ),
        U::ConnectionFailed => Error::new(ErrorKind::ConnectionFailed, "connection failed"),
        U::ConnectProxyFailed(reason) => Error::new(
            ErrorKind::ConnectionFailed,
            format!("CONNECT through the proxy failed: {reason}"),
        ),
        U::Tls(reason) => Error::new(ErrorKind::Tls, format!("TLS failure: {reason}")),
        U::Rustls(e) => Error::new(ErrorKind::Tls, format!("TLS failure: {e}")),
        U::Pem(e) => Error::new(ErrorKind::Tls, format!("TLS failure: bad PEM: {e}")),
        U::Protocol(e) => Error::new(ErrorKind::BadResponse, format!("bad HTTP response: {e}")),
        U::LargeResponseHeader(..) => Error::new(ErrorKind::TooLarge, "response headers too large"),
        U::BodyExceedsLimit(n) => Error::new(
            ErrorKind::TooLarge,
            format!("response larger than max_response_bytes ({n} bytes)"),
        ),
        other => Error::new(
            ErrorKind::ConnectionFailed,
            format!("HTTP request failed: {other}"),
        ),
    }
}

/// The system's trusted roots (read per client, once per node and process:
/// no static, so nothing outlives the module).
/// The system's CA bundle: where it was found and its certificates.
fn system_roots_from() -> (Option<std::path::PathBuf>, Vec<Certificate<'static>>) {
    let env = std::env::var_os("SSL_CERT_FILE").map(std::path::PathBuf::from);
    let candidates = env.into_iter().chain(
        [
            "/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu
            "/etc/pki/tls/certs/ca-bundle.crt",   // RHEL, Fedora
            "/etc/ssl/ca-bundle.pem",             // SUSE
            "/etc/ssl/cert.pem",                  // Alpine
        ]
        .into_iter()
        .map(Into::into),
    );
    for path in candidates {
        if let Ok(certs) = read_pem_certs(&path) {
            if !certs.is_empty() {
                return (Some(path), certs);
            }
        }
    }
    (None, Vec::new())
}

fn system_roots() -> Vec<Certificate<'static>> {
    system_roots_from().1
}

/// The CAs a node's https requests trust, as DER, for the setup check.
pub(crate) struct CaSet {
    /// The system bundle's path, when one was found.
    pub(crate) system_path: Option<std::path::PathBuf>,
    /// Its certificates.
    pub(crate) system: Vec<Vec<u8>>,
    /// Those of `ca_file`.
    pub(crate) extra: Vec<Vec<u8>>,
}

/// The CA set of a node with `ca_file`: the same files and errors as its client.
pub(crate) fn ca_set(ca_file: Option<&Path>) -> Result<CaSet> {
    let (system_path, system) = system_roots_from();
    let extra = match ca_file {
        None => Vec::new(),
        Some(path) => {
            let extra = read_pem_certs(path).map_err(|m| {
                Error::new(
                    ErrorKind::Config,
                    format!("ca_file {}: {m}", path.display()),
                )
            })?;
            if extra.is_empty() {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!("ca_file {}: no PEM certificate in it", path.display()),
                ));
            }
            extra
        }
    };
    let der = |certs: Vec<Certificate<'static>>| certs.iter().map(|c| c.der().to_vec()).collect();
    Ok(CaSet {
        system_path,
        system: der(system),
        extra: der(extra),
    })
}

fn root_certs(ca_file: Option<&Path>) -> Result<RootCerts> {
    let mut roots = system_roots();
    if let Some(path) = ca_file {
        let extra = read_pem_certs(path).map_err(|m| {
            Error::new(
                ErrorKind::Config,
                format!("ca_file {}: {m}", path.display()),
            )
        })?;
        if extra.is_empty() {
            return Err(Error::new(
                ErrorKind::Config,
                format!("ca_file {}: no PEM certificate in it", path.display()),
            ));
        }
        roots.extend(extra);
    }
    if roots.is_empty() {
        // No system bundle on this host and no ca_file: Mozilla's roots.
        return Ok(RootCerts::WebPki);
    }
    Ok(RootCerts::Specific(Arc::new(roots)))
}

fn read_pem_certs(path: &Path) -> std::result::Result<Vec<Certificate<'static>>, String> {
    let pem = crate::fs::read_file(path).map_err(|e| format!("cannot read: {}", io_reason(&e)))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => return Err(format!("bad PEM: {e}")),
        }
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_encoded_as_one() {
        assert_eq!(encode_segment("AllContent"), "AllContent");
        assert_eq!(encode_segment("Jira Cloud/EU"), "Jira%20Cloud%2FEU");
        assert_eq!(encode_segment(".."), "%2E%2E");
        assert_eq!(encode_segment("a?b#c%"), "a%3Fb%23c%25");
        assert_eq!(encode_segment("Zürich"), "Z%C3%BCrich");
    }

    /// A DNS server that never answers: each lookup blocks until released.
    #[derive(Default)]
    struct DeadDns {
        calls: std::sync::atomic::AtomicUsize,
        released: Mutex<bool>,
        wake: Condvar,
    }

    impl Lookup for DeadDns {
        fn lookup(&self, _: &str, _: u16) -> io::Result<Vec<SocketAddr>> {
            self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut released = lock(&self.released);
            while !*released {
                released = self.wake.wait(released).unwrap();
            }
            Err(io::Error::other("no answer"))
        }
    }

    fn failed_kind(client: &HttpClient) -> ErrorKind {
        match client.get(
            "http://node.invalid:1/x",
            ("X-Test", "1"),
            Duration::from_secs(2),
        ) {
            Ok(_) => panic!("a dead DNS server resolved"),
            Err(e) => e.kind(),
        }
    }

    /// Remembers the ports it was asked for; answers 127.0.0.1.
    #[derive(Default)]
    struct RecordingDns {
        ports: Mutex<Vec<u16>>,
    }

    impl Lookup for RecordingDns {
        fn lookup(&self, _: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
            lock(&self.ports).push(port);
            Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))])
        }
    }

    /// Issue 25: a port that is not a port fell back to 80/443 (a request
    /// with the node's token to another listener); it fails, connecting
    /// nowhere.
    #[test]
    fn a_port_that_is_not_a_port_connects_nowhere() {
        let text = "[nodes.n]\nurl = \"http://node.test:8080\"\ntoken_file = \"/t\"\n";
        let config = crate::config::Config::parse(Path::new("t.toml"), text).unwrap();
        let dns = Arc::new(RecordingDns::default());
        let client = HttpClient::with_lookup(&config.nodes["n"], dns.clone()).unwrap();
        for url in [
            "http://node.test:99999/x",
            "https://node.test:99999/x",
            "http://node.test:18500x/x",
            "http://node.test:0/x",
            "http://127.0.0.1:99999/x",
            "http://[::1]:70000/x",
        ] {
            match client.get(url, ("X-Test", "1"), Duration::from_secs(2)) {
                Ok(r) => panic!("{url}: answered {}", r.status),
                Err(e) => assert!(
                    e.message().contains("port is not a number from 1 to 65535"),
                    "{url}: {}",
                    e.message()
                ),
            }
        }
        assert_eq!(*lock(&dns.ports), Vec::<u16>::new(), "looked up");
    }

    #[test]
    fn threads_sharing_a_client_each_wait_their_own_timeout_for_a_dead_dns_server() {
        let text = "[nodes.n]\nurl = \"http://node.invalid:1\"\ntoken_file = \"/t\"\n";
        let config = crate::config::Config::parse(Path::new("t.toml"), text).unwrap();
        let dns = Arc::new(DeadDns::default());
        let client = Arc::new(HttpClient::with_lookup(&config.nodes["n"], dns.clone()).unwrap());
        let started = Instant::now();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let client = client.clone();
                std::thread::spawn(move || {
                    let call = Instant::now();
                    (failed_kind(&client), call.elapsed())
                })
            })
            .collect();
        let took: Vec<(ErrorKind, Duration)> =
            threads.into_iter().map(|t| t.join().unwrap()).collect();
        // Issue 11: 2, 4, 6 and 8 s behind one lock.
        for (kind, elapsed) in &took {
            assert_eq!(*kind, ErrorKind::Timeout, "{took:?}");
            assert!(
                *elapsed >= Duration::from_millis(1900) && *elapsed < Duration::from_millis(2900),
                "{took:?}"
            );
        }
        assert!(started.elapsed() < Duration::from_millis(2900), "{took:?}");
        let calls = || dns.calls.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(calls(), 1, "one lookup of a host at a time");
        // The failure is kept a few seconds: the next call does not wait.
        let call = Instant::now();
        assert_eq!(failed_kind(&client), ErrorKind::ConnectionFailed);
        assert!(
            call.elapsed() < Duration::from_millis(500),
            "{:?}",
            call.elapsed()
        );
        assert_eq!(calls(), 1);
        *lock(&dns.released) = true;
        dns.wake.notify_all();
    }
}
