//! The network path to a node, step by step, for the report: DNS, connect,
//! the proxy, TLS (a separate handshake through the node's CA set, to read
//! the peer certificate). The requests themselves are the monitor's.

use super::der::{self, CertInfo};
use super::report::Check;
use crate::config::NodeConfig;
use crate::http::{ca_set, CaSet};
use crate::proxy::split_authority;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Certificates expiring sooner than this are a warning.
const EXPIRY_WARNING_DAYS: i64 = 14;

/// The checks of the path to `node`, each bounded by `timeout`.
pub(crate) fn probe(node: &NodeConfig, timeout: Duration) -> Vec<Check> {
    let mut checks = Vec::new();
    let https = node.url.starts_with("https://");
    let (host, port) = host_port(&node.url, if https { 443 } else { 80 });
    let (target_host, target_port, via_proxy) = match &node.proxy {
        Some(proxy) => {
            let (h, p) = host_port(proxy, 80);
            (h, p, true)
        }
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
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
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
        (Some(proxy), true) => match tunnel(&mut stream, &host, port) {
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
        checks.push(tls(node, &host, stream));
    } else {
        checks.push(Check::skip("tls", "none: url is http://".to_string()));
    }
    checks
}

/// Host (brackets of an IPv6 literal removed) and port of a URL.
fn host_port(url: &str, default_port: u16) -> (String, u16) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let (host, port) = split_authority(authority);
    let port = port.and_then(|p| p.parse().ok()).unwrap_or(default_port);
    (
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        port,
    )
}

/// Resolves on a thread of its own, waited for at most `timeout` (a DNS
/// server that never answers leaves the thread behind; the check ends soon).
fn resolve(host: &str, port: u16, timeout: Duration) -> Result<Vec<SocketAddr>, String> {
    let (tx, rx) = mpsc::channel();
    let name = host.to_string();
    std::thread::spawn(move || {
        let _ = tx.send(
            (name.as_str(), port)
                .to_socket_addrs()
                .map(Iterator::collect),
        );
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(addrs)) => {
            let addrs: Vec<SocketAddr> = addrs;
            if addrs.is_empty() {
                Err("no address".into())
            } else {
                Ok(addrs)
            }
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", timeout.as_secs())),
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
            Err(e) => last = crate::fs::io_reason(&e),
        }
    }
    Err(last)
}

/// CONNECT through the proxy; Ok once it answers 2xx.
fn tunnel(stream: &mut TcpStream, host: &str, port: u16) -> Result<(), String> {
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| crate::fs::io_reason(&e))?;
    // Byte by byte up to the blank line: nothing of the tunnel is read.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
        match stream.read(&mut byte) {
            Ok(0) => return Err("the proxy closed the connection".into()),
            Ok(_) => head.push(byte[0]),
            Err(e) => return Err(crate::fs::io_reason(&e)),
        }
    }
    let line = String::from_utf8_lossy(&head);
    let status = line.lines().next().unwrap_or("").trim();
    match status.split_whitespace().nth(1) {
        Some(code) if code.starts_with('2') => Ok(()),
        Some(_) => Err(format!("the proxy answered {:?}", truncate(status, 80))),
        None => Err("the proxy's answer is not HTTP".into()),
    }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
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

fn tls(node: &NodeConfig, host: &str, stream: TcpStream) -> Check {
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
    let mut stream = stream;
    let handshake = {
        let mut tls = rustls::Stream::new(&mut connection, &mut stream);
        tls.flush()
    };
    let seen = recording
        .seen
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    let Some((chain, verdict)) = seen else {
        let reason = handshake
            .err()
            .map_or("no certificate".to_string(), |e| crate::fs::io_reason(&e));
        return Check::fail(
            "tls",
            format!("handshake failed: {reason}"),
            "check that url's port speaks TLS (https); a plain-http node needs http://",
        );
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
