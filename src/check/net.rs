//! The network path to a node, step by step, for the report: DNS, connect,
//! the proxy, TLS (a separate handshake through the node's CA set, to read
//! the peer certificate). The requests themselves are the monitor's.

use super::der::{self, CertInfo};
use super::report::Check;
use crate::config::NodeConfig;
use crate::http::{ca_set, CaSet};
use crate::proxy::{open_tunnel, split_authority, TunnelError};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Certificates expiring sooner than this are a warning.
const EXPIRY_WARNING_DAYS: i64 = 14;

/// Where a node is: the host and port of its url and, through a proxy,
/// the proxy's. The check asks nothing of a node whose url (or proxy) has
/// a port that is not one: a guessed port would send its credentials to
/// whatever listens there.
pub(crate) struct Target {
    host: String,
    port: u16,
    https: bool,
    proxy: Option<(String, u16)>,
}

impl Target {
    /// The node's target, or the line that says why it has none.
    pub(crate) fn of(node: &NodeConfig) -> Result<Target, Check> {
        let https = node.url.starts_with("https://");
        let (host, port) =
            host_port(&node.url, if https { 443 } else { 80 }).ok_or_else(|| bad_port("url"))?;
        let proxy = match &node.proxy {
            Some(proxy) => Some(host_port(proxy, 80).ok_or_else(|| bad_port("proxy"))?),
            None => None,
        };
        Ok(Target {
            host,
            port,
            https,
            proxy,
        })
    }
}

/// The line for a URL (of `key`) whose port is not a port.
fn bad_port(key: &str) -> Check {
    Check::fail(
        key,
        format!("the port of {key} is not a number from 1 to 65535"),
        &format!("write {key} as scheme://host:port with a port from 1 to 65535, or without a port (80 for http, 443 for https)"),
    )
}

/// None where `url` (of `key`: cmonitor_url) has a port that is one, or
/// none; else the line that says it has not.
pub(crate) fn port_error(key: &str, url: &str) -> Option<Check> {
    host_port(url, 80).is_none().then(|| bad_port(key))
}

/// The checks of the path to `node` at `target`, each step bounded as a
/// whole by `timeout`.
pub(crate) fn probe(node: &NodeConfig, target: &Target, timeout: Duration) -> Vec<Check> {
    let mut checks = Vec::new();
    let (host, port, https) = (&target.host, target.port, target.https);
    let (target_host, target_port, via_proxy) = match &target.proxy {
        Some((h, p)) => (h.clone(), *p, true),
        None => (host.clone(), port, false),
    };
    let what = if via_proxy { "proxy dns" } else { "dns" };
    let addrs = match resolve(&target_host, target_port, timeout) {
        Ok(addrs) => {
            let shown: Vec<String> = addrs.iter().take(3).map(|a| a.ip().to_string()).collect();
            checks.push(Check::ok(
                what,
                format!("{target_host} -> {}", shown.join(", ")),
            ));
            addrs
        }
        Err(reason) => {
            checks.push(Check::fail(
                what,
                format!("cannot resolve {target_host}: {reason}"),
                if via_proxy {
                    "check the host in proxy, and this host's resolver (/etc/resolv.conf)"
                } else {
                    "check the host in url, and this host's resolver (/etc/resolv.conf); a node reached only through a proxy needs proxy = \"http://host:port\""
                },
            ));
            return checks;
        }
    };
    let what = if via_proxy {
        "proxy connect"
    } else {
        "connect"
    };
    let mut stream = match connect(&addrs, timeout) {
        Ok((stream, addr, took)) => {
            checks.push(Check::ok(
                what,
                format!("{addr} in {} ms", took.as_millis()),
            ));
            stream
        }
        Err(reason) => {
            checks.push(Check::fail(
                what,
                format!("{target_host}:{target_port}: {reason}"),
                if via_proxy {
                    "check proxy (host and port) and that the proxy runs"
                } else {
                    "check the port in url and any firewall between this host and the node; if the node is reached through a proxy, set proxy"
                },
            ));
            return checks;
        }
    };
    match (&node.proxy, https) {
        (None, _) => {
            let env: Vec<&str> = ["https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"]
                .into_iter()
                .filter(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()))
                .collect();
            let detail = match env.first() {
                None => "none".to_string(),
                Some(v) => format!(
                    "none ({v} is set here but ignored: only the config's proxy key chooses one)"
                ),
            };
            checks.push(Check::skip("proxy", detail));
        }
        (Some(proxy), false) => checks.push(Check::ok(
            "proxy",
            format!("{proxy}: requests to {host}:{port} go through it (absolute form)"),
        )),
        (Some(proxy), true) => match tunnel(&mut stream, host, port, timeout) {
            Ok(()) => checks.push(Check::ok(
                "proxy",
                format!("{proxy}: CONNECT {host}:{port} accepted"),
            )),
            Err(reason) => {
                checks.push(Check::fail(
                    "proxy",
                    format!("{proxy}: CONNECT {host}:{port}: {reason}"),
                    "the proxy must allow CONNECT to the node's port, without credentials (a proxy asking for them, 407, is not supported)",
                ));
                return checks;
            }
        },
    }
    if https {
        checks.push(tls(node, host, stream, timeout));
    } else {
        checks.push(Check::skip("tls", "none: url is http://".to_string()));
    }
    checks
}

/// Host (brackets of an IPv6 literal removed) and port of a URL; None
/// when its port is not a number from 1 to 65535 (no port, or an empty
/// one, is `default_port`, as RFC 3986 says).
fn host_port(url: &str, default_port: u16) -> Option<(String, u16)> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let (host, port) = split_authority(authority);
    let port = match port {
        None | Some("") => default_port,
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return None,
            Ok(p) => p,
        },
        Some(_) => return None,
    };
    Some((
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        port,
    ))
}

/// Lookups on threads of their own at once, at most: those a DNS server
/// that never answers leaves behind count until they end.
const LOOKUPS_AT_ONCE: usize = 8;
static LOOKUPS: AtomicUsize = AtomicUsize::new(0);

/// Resolves on a thread of its own, waited for at most `timeout` (a DNS
/// server that never answers leaves the thread behind; the check ends soon).
fn resolve(host: &str, port: u16, timeout: Duration) -> Result<Vec<SocketAddr>, String> {
    fn lookup(host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        (host, port).to_socket_addrs().map(Iterator::collect)
    }
    let (tx, rx) = mpsc::channel();
    let name = host.to_string();
    let spawned = if LOOKUPS.fetch_add(1, Ordering::SeqCst) < LOOKUPS_AT_ONCE {
        std::thread::Builder::new()
            .name("exalate-check-dns".into())
            .spawn(move || {
                let _ = tx.send(lookup(&name, port));
                LOOKUPS.fetch_sub(1, Ordering::SeqCst);
            })
            .is_ok()
    } else {
        false
    };
    let answer = if spawned {
        rx.recv_timeout(timeout)
            .map_err(|_| format!("no answer within {} s", timeout.as_secs()))?
    } else {
        // Too many lookups hang, or no thread is to be had (limits): here,
        // bounded by the resolver's own timeouts.
        LOOKUPS.fetch_sub(1, Ordering::SeqCst);
        lookup(host, port)
    };
    match answer {
        Ok(addrs) if addrs.is_empty() => Err("no address".into()),
        Ok(addrs) => Ok(addrs),
        Err(e) => Err(e.to_string()),
    }
}

fn connect(
    addrs: &[SocketAddr],
    timeout: Duration,
) -> Result<(TcpStream, SocketAddr, Duration), String> {
    let started = Instant::now();
    let mut last = String::from("no address");
    for addr in addrs {
        let left = timeout.saturating_sub(started.elapsed());
        if left.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(addr, left) {
            Ok(s) => return Ok((s, *addr, started.elapsed())),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                last = format!("no answer within {} s", timeout.as_secs())
            }
            Err(e) => last = crate::error::io_reason(&e),
        }
    }
    Err(last)
}

/// A step of the path bounded as a whole: each read and write waits only
/// for what is left of the step's time, so a peer that sends a byte now and
/// then cannot stretch it (a timeout per read would never trip).
struct Bounded<'a> {
    stream: &'a mut TcpStream,
    deadline: Instant,
}

impl Bounded<'_> {
    fn left(&self) -> std::io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        Ok(left)
    }
}

/// A read or write that waited out its time: a timeout, whatever the
/// platform calls it.
fn timed_out(e: std::io::Error) -> std::io::Error {
    match e.kind() {
        std::io::ErrorKind::WouldBlock => std::io::ErrorKind::TimedOut.into(),
        _ => e,
    }
}

impl Read for Bounded<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.left()?;
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buf).map_err(timed_out)
    }
}

impl Write for Bounded<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let left = self.left()?;
        self.stream.set_write_timeout(Some(left))?;
        self.stream.write(buf).map_err(timed_out)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.stream.flush()
    }
}

/// An I/O error of a step, a timeout named as one.
fn step_error(e: &std::io::Error, timeout: Duration, step: &str) -> String {
    if e.kind() == std::io::ErrorKind::TimedOut {
        format!("timeout after {} s during {step}", timeout.as_secs())
    } else {
        crate::error::io_reason(e)
    }
}

/// CONNECT through the proxy, within `timeout` in all; Ok once it answers
/// 2xx. The exchange is the items' own ([`open_tunnel`]).
fn tunnel(stream: &mut TcpStream, host: &str, port: u16, timeout: Duration) -> Result<(), String> {
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut stream = Bounded {
        stream,
        deadline: Instant::now() + timeout,
    };
    open_tunnel(&mut stream, &authority).map_err(|e| match e {
        TunnelError::Send(e) => step_error(&e, timeout, "the CONNECT request"),
        TunnelError::Receive(e) => step_error(&e, timeout, "the proxy's answer to CONNECT"),
        TunnelError::Refused(reason) => reason,
    })
}

/// The chain a server sent (DER, leaf first) and the verdict on it.
type Seen = (Vec<Vec<u8>>, Result<(), rustls::Error>);

/// Verifies like the module (rustls, webpki, the node's CA set) and
/// records the chain whatever the verdict, to describe it.
#[derive(Debug)]
struct Recording {
    inner: Arc<dyn ServerCertVerifier>,
    seen: Mutex<Option<Seen>>,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
            .map(|_| ());
        let chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.as_ref().to_vec())
            .collect();
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Some((chain, verdict));
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The TLS handshake, within `timeout` in all, and the certificate.
fn tls(node: &NodeConfig, host: &str, mut stream: TcpStream, timeout: Duration) -> Check {
    let cas = match ca_set(node.ca_file.as_deref()) {
        Ok(cas) => cas,
        Err(e) => {
            return Check::fail(
                "tls",
                e.message().to_string(),
                "ca_file must be a PEM file readable here holding the CA that issued the node's certificate",
            )
        }
    };
    if cas.system.is_empty() && cas.extra.is_empty() {
        return Check::skip(
            "tls",
            "no system CA bundle here and no ca_file: the module trusts Mozilla's roots built into it; the requests below verify the certificate".into(),
        );
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for der in cas.system.iter().chain(&cas.extra) {
        let _ = roots.add(CertificateDer::from(der.clone()));
    }
    let inner = match rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    {
        Ok(v) => v,
        Err(e) => {
            return Check::fail(
                "tls",
                format!("no usable CA: {e}"),
                "set ca_file to the node's CA (PEM)",
            )
        }
    };
    let recording = Arc::new(Recording {
        inner,
        seen: Mutex::new(None),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| {
            b.dangerous()
                .with_custom_certificate_verifier(recording.clone())
                .with_no_client_auth()
        });
    let (Ok(config), Ok(name)) = (config, ServerName::try_from(host.to_string())) else {
        return Check::fail(
            "tls",
            format!("cannot set up TLS for {host}"),
            "check the host in url",
        );
    };
    let mut connection = match rustls::ClientConnection::new(Arc::new(config), name) {
        Ok(c) => c,
        Err(e) => return Check::fail("tls", e.to_string(), "check the host in url"),
    };
    let deadline = Instant::now() + timeout;
    let handshake = {
        let mut bounded = Bounded {
            stream: &mut stream,
            deadline,
        };
        rustls::Stream::new(&mut connection, &mut bounded).flush()
    };
    let seen = recording
        .seen
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    let Some((chain, verdict)) = seen else {
        return match handshake {
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Check::fail(
                "tls",
                step_error(&e, timeout, "the TLS handshake"),
                "the node did not finish the handshake in time: check that url's port speaks TLS (https) and any proxy or load balancer before it, or raise timeout",
            ),
            handshake => Check::fail(
                "tls",
                format!(
                    "handshake failed: {}",
                    handshake
                        .err()
                        .map_or("no certificate".to_string(), |e| crate::error::io_reason(&e))
                ),
                "check that url's port speaks TLS (https); a plain-http node needs http://",
            ),
        };
    };
    let leaf = chain.first().and_then(|c| der::cert_info(c));
    let top = chain.last().and_then(|c| der::cert_info(c));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let described = leaf
        .as_ref()
        .map_or("certificate not readable".to_string(), |l| {
            let days = (l.not_after - now).div_euclid(86_400);
            format!(
                "issuer {:?}, expires {} ({})",
                l.issuer_cn,
                der::date(l.not_after),
                if days < 0 {
                    format!("{} days ago", -days)
                } else {
                    format!("in {days} days")
                }
            )
        });
    let ca = ca_used(&cas, node, top.as_ref());
    match verdict {
        Ok(()) => match &leaf {
            Some(l) if (l.not_after - now) < EXPIRY_WARNING_DAYS * 86_400 => Check::warn(
                "tls",
                format!("{described}; CA: {ca}"),
                "renew the node's certificate soon",
            ),
            _ => Check::ok("tls", format!("{described}; CA: {ca}")),
        },
        Err(e) => {
            let fix = match &e {
                rustls::Error::InvalidCertificate(
                    rustls::CertificateError::Expired
                    | rustls::CertificateError::ExpiredContext { .. },
                ) => "the node's certificate has expired: renew it on the node".to_string(),
                rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidYet
                    | rustls::CertificateError::NotValidYetContext { .. },
                ) => "the node's certificate is not valid yet: check this host's clock and the node's".to_string(),
                rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName)
                | rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForNameContext { .. },
                ) => "url's host is not a name of the node's certificate: use the name the certificate is issued for".to_string(),
                _ => format!(
                    "the issuer {:?} is not among the trusted CAs ({ca}): set ca_file to its CA certificate (PEM)",
                    top.as_ref().map_or("?", |t| t.issuer_cn.as_str())
                ),
            };
            Check::fail(
                "tls",
                format!("certificate not accepted: {e}; {described}"),
                &fix,
            )
        }
    }
}

/// Which CA of the set issued the top of the chain: by name.
fn ca_used(cas: &CaSet, node: &NodeConfig, top: Option<&CertInfo>) -> String {
    let issued_by = |ders: &[Vec<u8>]| {
        top.and_then(|t| {
            ders.iter()
                .filter_map(|d| der::cert_info(d))
                .find(|ca| ca.subject_raw == t.issuer_raw)
        })
    };
    if let (Some(ca), Some(file)) = (issued_by(&cas.extra), &node.ca_file) {
        return format!("{:?} from ca_file {}", ca.subject_cn, file.display());
    }
    let bundle = cas
        .system_path
        .as_ref()
        .map_or("no system bundle".to_string(), |p| p.display().to_string());
    match issued_by(&cas.system) {
        Some(ca) => format!("{:?} from the system's roots ({bundle})", ca.subject_cn),
        None => match &node.ca_file {
            Some(file) => format!("system roots ({bundle}) + ca_file {}", file.display()),
            None => format!("system roots ({bundle})"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn a_port_is_a_number_from_1_to_65535_or_none() {
        let hp = |url: &str, default: u16| host_port(url, default);
        assert_eq!(hp("http://h:8080/x", 80), Some(("h".into(), 8080)));
        assert_eq!(hp("https://h/x?y", 443), Some(("h".into(), 443)));
        // An empty port is the scheme's (RFC 3986).
        assert_eq!(hp("https://h:/x", 443), Some(("h".into(), 443)));
        assert_eq!(hp("http://[::1]:99/", 80), Some(("::1".into(), 99)));
        assert_eq!(hp("http://[::1]", 80), Some(("::1".into(), 80)));
        assert_eq!(hp("http://u@h:81", 80), Some(("h".into(), 81)));
        assert_eq!(hp("http://h:65535", 80), Some(("h".into(), 65535)));
        // Issue 25: never the default in place of a port that is not one.
        for bad in [
            "http://h:99999",
            "http://h:18500x",
            "http://h:0",
            "http://h:+80",
            "http://h:-1",
            "http://h:65536/x",
            "http://[::1]x",
            "http://[::1]:8o",
        ] {
            assert_eq!(hp(bad, 80), None, "{bad}");
        }
    }

    /// A peer that sends a byte every 20 ms never trips a timeout per
    /// read; the step's deadline ends it, as a timeout.
    #[test]
    fn a_step_ends_at_its_deadline_whatever_the_reads() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let peer = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(5) && s.write_all(b"a").is_ok() {
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let mut stream = TcpStream::connect(addr).unwrap();
        let started = Instant::now();
        let mut bounded = Bounded {
            stream: &mut stream,
            deadline: started + Duration::from_millis(300),
        };
        let mut buf = [0u8; 1];
        let mut bytes = 0;
        let e = loop {
            match bounded.read(&mut buf) {
                Ok(n) => bytes += n,
                Err(e) => break e,
            }
        };
        let took = started.elapsed();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
        assert!(bytes > 0, "the peer trickled");
        assert!(took < Duration::from_secs(2), "{took:?}");
        assert_eq!(
            step_error(&e, Duration::from_secs(2), "the TLS handshake"),
            "timeout after 2 s during the TLS handshake"
        );
        drop(stream);
        peer.join().unwrap();
    }
}
