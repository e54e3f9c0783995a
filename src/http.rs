//! The HTTP client of one node: a ureq agent (kept alive, reused), no
//! redirects, certificates checked against the system roots plus `ca_file`,
//! and every failure turned into one specific error.

use crate::config::{io_reason, NodeConfig};
use crate::error::{Error, ErrorKind, Result};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use ureq::http::Uri;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

/// How long a resolved host name is reused.
const DNS_CACHE_TTL: Duration = Duration::from_secs(60);

pub struct HttpClient {
    agent: ureq::Agent,
}

/// A response whose status is known and whose body is not read yet.
pub struct HttpResponse {
    pub status: u16,
    pub content_length: Option<u64>,
    pub body: ureq::BodyReader<'static>,
}

impl HttpClient {
    pub fn new(node: &NodeConfig) -> Result<HttpClient> {
        let mut config = ureq::Agent::config_builder()
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
        Ok(HttpClient {
            agent: ureq::Agent::with_parts(
                config.build(),
                DefaultConnector::new(),
                CachingResolver::default(),
            ),
        })
    }

    /// GETs `url` with one extra header, the whole exchange bounded by `timeout`.
    pub fn get(&self, url: &str, header: (&str, &str), timeout: Duration) -> Result<HttpResponse> {
        let response = self
            .agent
            .get(url)
            .header("Accept", "application/json")
            .header(header.0, header.1)
            .config()
            .timeout_global(Some(timeout))
            .build()
            .call()
            .map_err(classify)?;
        let content_length = response
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        Ok(HttpResponse {
            status: response.status().as_u16(),
            content_length,
            body: response.into_body().into_reader(),
        })
    }
}

/// ureq's resolver runs each lookup on a new thread whenever a timeout is
/// set, which made every request ~1 ms slower. This one answers IP literals
/// at once and reuses a node's resolved addresses for a minute; only a real
/// lookup goes through ureq's resolver (and its thread, for the timeout).
#[derive(Debug, Default)]
struct CachingResolver {
    inner: DefaultResolver,
    cached: Mutex<Option<(String, Instant, ResolvedSocketAddrs)>>,
}

impl Resolver for CachingResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> std::result::Result<ResolvedSocketAddrs, ureq::Error> {
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("https") {
                443
            } else {
                80
            });
        let host = uri
            .host()
            .unwrap_or("")
            .trim_start_matches('[')
            .trim_end_matches(']');
        if let Ok(ip) = host.parse::<IpAddr>() {
            let mut addrs = self.empty();
            addrs.push(SocketAddr::new(ip, port));
            return Ok(addrs);
        }
        let key = format!("{host}:{port}");
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((k, at, addrs)) = cached.as_ref() {
            if *k == key && at.elapsed() < DNS_CACHE_TTL {
                return Ok(addrs.clone());
            }
        }
        let addrs = self.inner.resolve(uri, config, timeout)?;
        *cached = Some((key, Instant::now(), addrs.clone()));
        Ok(addrs)
    }
}

/// Percent-encodes `name` as one path segment: everything but RFC 3986's
/// unreserved characters is escaped, and so is a dot, so "." and ".." stay
/// names and never become path steps.
pub fn encode_segment(name: &str) -> String {
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
pub fn classify(e: ureq::Error) -> Error {
    use ureq::Error as U;
    match e {
        U::Timeout(_) => Error::new(ErrorKind::Timeout, "timed out"),
        U::Io(io) => io_error(&io),
        U::HostNotFound => Error::new(
            ErrorKind::ConnectionFailed,
            "cannot resolve the node's host name",
        ),
        U::ConnectionFailed => Error::new(ErrorKind::ConnectionFailed, "connection failed"),
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

/// The error for an I/O failure, also one that wraps a ureq error (body reads).
pub fn io_error(e: &io::Error) -> Error {
    if let Some(inner) = e.get_ref().and_then(|r| r.downcast_ref::<ureq::Error>()) {
        if let ureq::Error::Timeout(_) = inner {
            return Error::new(ErrorKind::Timeout, "timed out");
        }
        return Error::new(
            ErrorKind::ConnectionFailed,
            format!("HTTP request failed: {inner}"),
        );
    }
    if let Some(tls) = e.get_ref().and_then(|r| r.downcast_ref::<rustls::Error>()) {
        return Error::new(ErrorKind::Tls, format!("TLS failure: {tls}"));
    }
    use io::ErrorKind as K;
    let message = match e.kind() {
        K::ConnectionRefused => "connection refused".to_string(),
        K::ConnectionReset => "connection reset by the node".to_string(),
        K::UnexpectedEof => {
            "the node closed the connection before the answer was complete".to_string()
        }
        K::TimedOut | K::WouldBlock => return Error::new(ErrorKind::Timeout, "timed out"),
        _ => format!("connection failed: {}", io_reason(e)),
    };
    Error::new(ErrorKind::ConnectionFailed, message)
}

/// The system's trusted roots (read per client, once per node and process:
/// no static, so nothing outlives the module).
fn system_roots() -> Vec<Certificate<'static>> {
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
                return certs;
            }
        }
    }
    Vec::new()
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
    let pem =
        crate::config::read_file(path).map_err(|e| format!("cannot read: {}", io_reason(&e)))?;
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

    #[test]
    fn io_errors_are_specific() {
        let e = io_error(&io::Error::from(io::ErrorKind::ConnectionRefused));
        assert_eq!(
            (e.kind(), e.message()),
            (ErrorKind::ConnectionFailed, "connection refused")
        );
        let wrapped = io::Error::other(ureq::Error::Timeout(ureq::Timeout::Global));
        assert_eq!(io_error(&wrapped).kind(), ErrorKind::Timeout);
    }
}
