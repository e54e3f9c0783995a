//! What the robustness tests share on top of `tests/common`: a leak collector
//! that every output goes through, a configurable agent daemon, a canned-answer
//! HTTP server and a TLS terminator in front of the fake node.

pub use crate::common::*;
use fake_exalate_node::FakeNode;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// The leak collector.
//
// Every value, message, `-t` output and agent log line of these tests is
// collected here (one collector per test binary); every secret a test wrote
// and every token a fake node received is registered. `audit` checks every
// text against every secret and also refuses any JWT-shaped string at all, so
// a token that never reached a node (TLS failure, refused connection) is
// caught too. Each `Env` audits everything collected so far when it ends, so
// the last test to finish audits the output of all of them.
// ---------------------------------------------------------------------------

#[derive(Default)]
pub struct Collector {
    texts: Vec<(String, String)>,
    secrets: BTreeSet<String>,
}

impl Collector {
    pub fn collect(&mut self, source: &str, text: &str) {
        self.texts.push((source.to_string(), text.to_string()));
    }

    /// A secret or token; for a JWT its signature on its own counts too.
    pub fn add_secret(&mut self, secret: &str) {
        let secret = secret.trim();
        if secret.len() < 8 {
            return;
        }
        self.secrets.insert(secret.to_string());
        let parts: Vec<&str> = secret.split('.').collect();
        if parts.len() == 3 && parts[2].len() >= 16 {
            self.secrets.insert(parts[2].to_string());
        }
    }

    pub fn add_tokens_of(&mut self, node: &FakeNode) {
        for request in node.requests() {
            for (name, value) in &request.headers {
                if name.eq_ignore_ascii_case("x-exalate-jwt")
                    || name.eq_ignore_ascii_case("authorization")
                {
                    self.add_secret(value.trim_start_matches("Bearer "));
                }
            }
        }
    }

    /// Where a secret or a JWT-shaped string appears; never the secret itself.
    pub fn leaks(&self) -> Vec<String> {
        let mut found = Vec::new();
        for (source, text) in &self.texts {
            for (i, secret) in self.secrets.iter().enumerate() {
                if text.contains(secret.as_str()) {
                    found.push(format!(
                        "{source}: holds registered secret #{i} ({} chars)",
                        secret.len()
                    ));
                }
            }
            if let Some(at) = jwt_shaped(text) {
                found.push(format!(
                    "{source}: holds a JWT-shaped string at byte {at}: {:?}",
                    &text[at..at + 3]
                ));
            }
        }
        found
    }

    pub fn texts(&self) -> usize {
        self.texts.len()
    }

    pub fn bytes(&self) -> usize {
        self.texts.iter().map(|(_, t)| t.len()).sum()
    }
}

/// Offset of `eyJ` (base64 of `{"`) followed by 16 or more base64url
/// characters: the start of a JWT's header or payload.
pub fn jwt_shaped(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(i) = text[from..].find("eyJ") {
        let at = from + i;
        let run = bytes[at..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
            .count();
        if run >= 19 {
            return Some(at);
        }
        from = at + 3;
    }
    None
}

fn collector() -> &'static Mutex<Collector> {
    static COLLECTOR: OnceLock<Mutex<Collector>> = OnceLock::new();
    COLLECTOR.get_or_init(|| {
        let mut c = Collector::default();
        c.add_secret(SECRET);
        Mutex::new(c)
    })
}

fn with_collector<T>(f: impl FnOnce(&mut Collector) -> T) -> T {
    let mut c = collector().lock().unwrap_or_else(|p| p.into_inner());
    f(&mut c)
}

pub fn collect(source: &str, text: &str) {
    with_collector(|c| c.collect(source, text));
}

pub fn add_secret(secret: &str) {
    with_collector(|c| c.add_secret(secret));
}

/// How many texts and bytes were collected so far.
pub fn with_collector_stats(f: impl FnOnce(usize, usize)) {
    let (texts, bytes) = with_collector(|c| (c.texts(), c.bytes()));
    f(texts, bytes);
}

/// Panics when anything collected so far holds a secret or a token.
pub fn audit() {
    let (leaks, texts, bytes) = with_collector(|c| (c.leaks(), c.texts(), c.bytes()));
    assert!(
        leaks.is_empty(),
        "secrets leaked into output ({} texts, {bytes} bytes audited):\n{}",
        texts,
        leaks.join("\n")
    );
}

/// A test's fake node and config (see `TestEnv`); when it ends, the node's
/// tokens are registered and everything collected so far is audited.
pub struct Env {
    pub env: TestEnv,
    pub name: String,
}

impl Env {
    pub fn new(name: &str) -> Env {
        Env {
            env: TestEnv::new(name),
            name: name.to_string(),
        }
    }

    /// With a node serving `node`'s relations.
    pub fn with_node(name: &str, node: fake_exalate_node::NodeConfig) -> Env {
        Env {
            env: TestEnv::with_node(name, node),
            name: name.to_string(),
        }
    }

    /// `[defaults]` with `defaults` lines, then the node section with `extra`.
    pub fn config(&self, defaults: &[&str], extra: &[&str]) -> String {
        format!(
            "[defaults]\n{}\n{}",
            defaults.join("\n"),
            self.env.node_section("demo", extra)
        )
    }

    pub fn start_agent(&self, options: AgentOptions) -> Agent {
        Agent::start(&self.name, &self.env.dir, &self.env.config_path, options)
    }
}

impl std::ops::Deref for Env {
    type Target = TestEnv;
    fn deref(&self) -> &TestEnv {
        &self.env
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        with_collector(|c| c.add_tokens_of(&self.env.node));
        if !std::thread::panicking() {
            audit();
        }
    }
}

// ---------------------------------------------------------------------------
// The real agent as a daemon, with the options these tests need.
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct AgentOptions {
    pub start_agents: u32,
    /// The agent's Timeout= (what the module uses for nodes without `timeout`).
    pub timeout: u32,
    /// 3 (warnings) or 4 (debug: the agent logs every key and value it sends).
    pub debug_level: u32,
    /// Run as user `zabbix` (the agent drops root), as installed agents do.
    pub as_zabbix: bool,
    /// Extra environment variables for the agent (e.g. HTTP_PROXY).
    pub env: Vec<(String, String)>,
}

impl Default for AgentOptions {
    fn default() -> Self {
        AgentOptions {
            start_agents: 3,
            timeout: 3,
            debug_level: 4,
            as_zabbix: false,
            env: Vec::new(),
        }
    }
}

/// A running `zabbix_agentd -f`; stopped on drop, its log collected.
pub struct Agent {
    daemon: AgentDaemon,
    pub addr: SocketAddr,
    name: String,
}

impl Agent {
    pub fn start(name: &str, dir: &Path, config: &Path, options: AgentOptions) -> Agent {
        let port = free_port();
        let conf = dir.join("zabbix_agentd.conf");
        let user = if options.as_zabbix {
            "User=zabbix\n"
        } else {
            "AllowRoot=1\n"
        };
        std::fs::write(
            &conf,
            format!(
                "LogType=file\nLogFile={dir}/zabbix_agentd.log\nPidFile={dir}/zabbix_agentd.pid\n\
                 ListenIP=127.0.0.1\nListenPort={port}\nServer=127.0.0.1\nStartAgents={}\n\
                 ServerActive=\n{user}Timeout={}\nDebugLevel={}\nLoadModule={module}\n",
                options.start_agents,
                options.timeout,
                options.debug_level,
                dir = dir.display(),
                module = if options.as_zabbix {
                    dir.join("libexalate_zabbix.so")
                } else {
                    module_path()
                }
                .display()
            ),
        )
        .unwrap();
        let _ = std::fs::remove_file(dir.join("zabbix_agentd.log"));
        if options.as_zabbix {
            // The agent drops root: it writes its log and pid here, and loads
            // a copy of the module from here (the build tree may be private).
            let (uid, gid) = zabbix_ids();
            chown(dir, uid, gid);
            // Whatever the umask, user zabbix may pass through the test dirs.
            let top = std::env::temp_dir();
            for parent in dir
                .ancestors()
                .skip(1)
                .take_while(|p| p.starts_with(&top) && *p != top)
            {
                let mode = std::fs::metadata(parent).unwrap().permissions().mode();
                std::fs::set_permissions(parent, std::fs::Permissions::from_mode(mode | 0o011))
                    .unwrap();
            }
            let copy = dir.join("libexalate_zabbix.so");
            std::fs::copy(module_path(), &copy).unwrap();
            std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let agent = Agent {
            daemon: AgentDaemon::spawn_with_env(dir, &conf, port, config, &options.env),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            name: name.to_string(),
        };
        // Every listener is up once the parent lists all its children.
        let expected = 2 + options.start_agents as usize;
        let deadline = Instant::now() + Duration::from_secs(10);
        while agent.process_ids().len() < expected {
            assert!(
                Instant::now() < deadline,
                "agent processes: {:?}",
                agent.process_ids()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        agent
    }

    /// One passive check, collected.
    pub fn get(&self, key: &str) -> Reply {
        let reply = zabbix_get(self.addr, key)
            .unwrap_or_else(|e| panic!("{key}: {e}; log:\n{}", self.log()));
        let text = match &reply {
            Reply::Value(v) => v.clone(),
            Reply::NotSupported(m) => format!("ZBX_NOTSUPPORTED {m}"),
        };
        collect(&format!("{}: {key}", self.name), &text);
        reply
    }

    /// A check and how long it took.
    pub fn timed_get(&self, key: &str) -> (Reply, Duration) {
        let started = Instant::now();
        let reply = self.get(key);
        (reply, started.elapsed())
    }

    /// agent.ping answers 1 right now.
    pub fn assert_serving(&self) {
        assert_eq!(self.get("agent.ping"), Reply::Value("1".into()));
    }

    pub fn log(&self) -> String {
        self.daemon.log()
    }

    /// The parent and its forked children (collector, listeners).
    pub fn process_ids(&self) -> Vec<u32> {
        self.daemon.process_ids()
    }

    pub fn is_running(&mut self) -> bool {
        self.daemon.is_running()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.daemon.stop();
        collect(&format!("{}: agent log", self.name), &self.log());
    }
}

/// uid and gid of the `zabbix` user that Debian's agent package creates.
pub fn zabbix_ids() -> (u32, u32) {
    // SAFETY: getpwnam returns NULL or a pointer valid until the next call;
    // the fields are copied at once.
    let pw = unsafe { libc::getpwnam(c"zabbix".as_ptr()) };
    assert!(!pw.is_null(), "no user zabbix (install zabbix-agent)");
    unsafe { ((*pw).pw_uid, (*pw).pw_gid) }
}

pub fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
}

/// Whether this process can make files others cannot read (not root).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

// ---------------------------------------------------------------------------
// A server that answers every connection from its request head alone.
// ---------------------------------------------------------------------------

pub struct CannedServer {
    pub addr: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl CannedServer {
    /// Reads each request head, answers `response`, closes.
    pub fn start(response: Vec<u8>) -> CannedServer {
        CannedServer::answering(move |_| response.clone())
    }

    /// Reads each request head, answers what `reply` makes of it, closes.
    pub fn answering(reply: impl Fn(&str) -> Vec<u8> + Send + 'static) -> CannedServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (t_heads, t_stop) = (heads.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if t_stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let response = reply(&head);
                t_heads.lock().unwrap().push(head);
                let _ = stream.write_all(&response);
                let _ = stream.shutdown(std::net::Shutdown::Both);
            }
        });
        CannedServer {
            addr,
            heads,
            stop,
            thread: Some(thread),
        }
    }

    /// `response` as an HTTP/1.1 answer with Content-Length.
    pub fn http(status: &str, headers: &[(&str, &str)], body: &[u8]) -> CannedServer {
        CannedServer::start(http_response(status, headers, body))
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The request heads received so far.
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

/// An HTTP/1.1 answer with Content-Length that closes the connection.
pub fn http_response(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut response = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        response.push_str(&format!("{name}: {value}\r\n"));
    }
    response.push_str("Connection: close\r\n\r\n");
    let mut bytes = response.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

impl Drop for CannedServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------------
// TLS: a CA and certificates made here, and a terminator in front of a node.
// ---------------------------------------------------------------------------

pub mod tls {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

    /// A test CA that signs server certificates.
    pub struct TestCa {
        pub pem: String,
        issuer: Issuer<'static, KeyPair>,
    }

    /// A server certificate (DER chain) and its key.
    pub struct ServerCert {
        pub chain: Vec<CertificateDer<'static>>,
        pub key: PrivatePkcs8KeyDer<'static>,
    }

    impl TestCa {
        pub fn new(name: &str) -> TestCa {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params
                .distinguished_name
                .push(DnType::CommonName, format!("exalate-zabbix test CA {name}"));
            params.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            let cert = params.self_signed(&key).unwrap();
            TestCa {
                pem: cert.pem(),
                issuer: Issuer::new(params, key),
            }
        }

        /// A certificate for `names` (DNS names or IP addresses); `expired`
        /// sets its validity to 2000-2001.
        pub fn server_cert(&self, names: &[&str], expired: bool) -> ServerCert {
            let key = KeyPair::generate().unwrap();
            let mut params =
                CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                    .unwrap();
            params
                .distinguished_name
                .push(DnType::CommonName, names.first().copied().unwrap_or("x"));
            if expired {
                params.not_before = rcgen::date_time_ymd(2000, 1, 1);
                params.not_after = rcgen::date_time_ymd(2001, 1, 1);
            }
            let cert = params.signed_by(&key, &self.issuer).unwrap();
            ServerCert {
                chain: vec![cert.der().clone()],
                key: PrivatePkcs8KeyDer::from(key.serialize_der()),
            }
        }
    }

    /// Terminates TLS on a local port and forwards the plain bytes to `backend`.
    pub struct TlsFront {
        pub addr: SocketAddr,
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<()>>,
    }

    impl TlsFront {
        pub fn start(cert: ServerCert, backend: SocketAddr) -> TlsFront {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(cert.chain, PrivateKeyDer::Pkcs8(cert.key))
                .unwrap();
            let config = Arc::new(config);
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let t_stop = stop.clone();
            let thread = std::thread::spawn(move || {
                let mut conns = Vec::new();
                for stream in listener.incoming() {
                    if t_stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (config, stop) = (config.clone(), t_stop.clone());
                    conns.push(std::thread::spawn(move || {
                        let _ = forward(stream, config, backend, &stop);
                    }));
                }
                for c in conns {
                    let _ = c.join();
                }
            });
            TlsFront {
                addr,
                stop,
                thread: Some(thread),
            }
        }

        pub fn url(&self, path: &str) -> String {
            format!("https://{}{path}", self.addr)
        }
    }

    impl Drop for TlsFront {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    /// Pumps one connection both ways until either side closes. Both sockets
    /// have a short read timeout so one thread serves both directions.
    fn forward(
        mut client: TcpStream,
        config: Arc<rustls::ServerConfig>,
        backend: SocketAddr,
        stop: &AtomicBool,
    ) -> std::io::Result<()> {
        let tick = Some(Duration::from_millis(5));
        client.set_read_timeout(tick)?;
        let mut tls = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
        let mut upstream: Option<TcpStream> = None;
        let mut buf = vec![0u8; 64 * 1024];
        let started = Instant::now();
        while !stop.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(60) {
            // Client -> TLS -> backend.
            match tls.read_tls(&mut client) {
                Ok(0) => return Ok(()),
                Ok(_) => {
                    if tls.process_new_packets().is_err() {
                        // Send the alert (e.g. the client refused our certificate).
                        let _ = tls.write_tls(&mut client);
                        return Ok(());
                    }
                    loop {
                        match tls.reader().read(&mut buf) {
                            Ok(0) => return Ok(()),
                            Ok(n) => {
                                if upstream.is_none() {
                                    let s = TcpStream::connect(backend)?;
                                    s.set_read_timeout(tick)?;
                                    upstream = Some(s);
                                }
                                upstream.as_mut().unwrap().write_all(&buf[..n])?;
                            }
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                            Err(e) => return Err(e),
                        }
                    }
                }
                Err(e) if is_tick(&e) => {}
                Err(e) => return Err(e),
            }
            // Backend -> TLS -> client.
            if let Some(up) = upstream.as_mut() {
                match up.read(&mut buf) {
                    Ok(0) => {
                        tls.send_close_notify();
                        while tls.wants_write() {
                            tls.write_tls(&mut client)?;
                        }
                        return Ok(());
                    }
                    Ok(n) => {
                        tls.writer().write_all(&buf[..n])?;
                    }
                    Err(e) if is_tick(&e) => {}
                    Err(e) => return Err(e),
                }
            }
            while tls.wants_write() {
                tls.write_tls(&mut client)?;
            }
        }
        Ok(())
    }

    fn is_tick(e: &std::io::Error) -> bool {
        matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        )
    }
}
