//! The `proxy` key: an HTTP proxy in front of a node. The environment
//! (`HTTP_PROXY`, `https_proxy`, `ALL_PROXY`, ...) is never read: ureq's
//! defaults would, and the agent's environment is not the admin's intent.
//!
//! Either way the connection goes to the proxy (the resolver gives its
//! address for the node's host):
//!
//! - https nodes: `CONNECT host:port` ([`Tunnel`]), then TLS end to end.
//! - http nodes: absolute-form requests (`GET http://host:port/path`), what
//!   HTTP proxies expect for plain http (many refuse CONNECT to a port other
//!   than 443); [`AbsoluteForm`] rewrites each request line on its way out.

use std::fmt;
use std::io::{self, Read, Write};
use ureq::unversioned::transport::time::{Duration as UreqDuration, Instant as UreqInstant};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, DefaultConnector, NextTimeout, Transport,
    TransportAdapter,
};

/// How one node's requests travel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    Direct,
    /// `CONNECT` through the proxy at (host, port) (https nodes).
    Connect {
        host: String,
        port: u16,
    },
    /// Absolute-form through the proxy at (host, port) (http nodes).
    AbsoluteForm {
        host: String,
        port: u16,
    },
}

impl Route {
    /// The route for a node at `url` with the validated `proxy`, if any.
    pub(crate) fn new(url: &str, proxy: Option<&str>) -> Route {
        let Some(proxy) = proxy else {
            return Route::Direct;
        };
        let (host, port) = split_authority(proxy.trim_start_matches("http://"));
        let port = port.and_then(|p| p.parse().ok()).unwrap_or(80);
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if url.starts_with("https://") {
            Route::Connect { host, port }
        } else {
            Route::AbsoluteForm { host, port }
        }
    }

    /// The proxy's (host, port), where the connections go.
    pub(crate) fn proxy(&self) -> Option<(String, u16)> {
        match self {
            Route::Direct => None,
            Route::Connect { host, port } | Route::AbsoluteForm { host, port } => {
                Some((host.clone(), *port))
            }
        }
    }
}

/// The host and port of `host`, `host:port`, `[v6]` or `[v6]:port`; after
/// a bracketed host, anything but `:port` comes back as the port, to fail.
pub(crate) fn split_authority(authority: &str) -> (&str, Option<&str>) {
    if let Some(end) = authority.find(']').filter(|_| authority.starts_with('[')) {
        let (host, rest) = authority.split_at(end + 1);
        return match rest {
            "" => (host, None),
            rest => (host, Some(rest.strip_prefix(':').unwrap_or(rest))),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    }
}

/// Opens the tunnel of a CONNECT route on the TCP connection to the proxy
/// (ureq's TLS comes after it), its exchange bounded as a whole by what is
/// left of the connection's time. ureq's own CONNECT (3.5) gives every read
/// of the proxy's answer the whole remaining budget again: a proxy sending
/// a byte now and then never trips it, and the item hangs for good. Here
/// every read and write waits only for what is left (ureq's
/// `TransportAdapter`, as its TLS handshake does).
#[derive(Debug, Default)]
pub(crate) struct Tunnel;

impl<In: Transport> Connector<In> for Tunnel {
    type Out = In;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else {
            return Ok(None);
        };
        // The budget was set when the connection began (`details.now`);
        // the TCP connect has spent some.
        let spent = match ((details.current_time)(), details.now) {
            (UreqInstant::Exact(now), UreqInstant::Exact(then)) => {
                now.saturating_duration_since(then)
            }
            _ => std::time::Duration::ZERO,
        };
        let after = match details.timeout.after {
            UreqDuration::Exact(after) => UreqDuration::Exact(after.saturating_sub(spent)),
            UreqDuration::NotHappening => UreqDuration::NotHappening,
        };
        let mut io = TransportAdapter::new(transport, details.current_time.clone());
        io.set_timeout(NextTimeout {
            after,
            ..details.timeout
        });
        let host = details.uri.host().unwrap_or("");
        let port = details.uri.port_u16().unwrap_or(443);
        match open_tunnel(&mut io, &format!("{host}:{port}")) {
            Ok(()) => Ok(Some(io.into_inner())),
            // A timeout comes back as ureq's own (unwrapped by `from`).
            Err(TunnelError::Send(e) | TunnelError::Receive(e)) => Err(ureq::Error::from(e)),
            Err(TunnelError::Refused(reason)) => Err(ureq::Error::ConnectProxyFailed(reason)),
        }
    }
}

/// Why a CONNECT failed.
#[derive(Debug)]
pub(crate) enum TunnelError {
    /// Sending the request failed (or timed out).
    Send(io::Error),
    /// Reading the answer failed (or timed out).
    Receive(io::Error),
    /// The proxy's answer says no, or is no answer; what it was, briefly.
    Refused(String),
}

/// `CONNECT authority` on `io` (a connection to the proxy whose reads and
/// writes are bounded by the step's deadline); Ok once the proxy answers
/// 2xx. The answer's head is read byte by byte up to its blank line:
/// nothing of the tunnel is read. The items' tunnel and the check's.
pub(crate) fn open_tunnel(
    io: &mut (impl Read + Write),
    authority: &str,
) -> Result<(), TunnelError> {
    let request = format!(
        "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: exalate-zabbix/{}\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    );
    io.write_all(request.as_bytes())
        .and_then(|()| io.flush())
        .map_err(TunnelError::Send)?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= 8192 {
            return Err(TunnelError::Refused(
                "the proxy's answer has no end of its head in 8 KiB".into(),
            ));
        }
        match io.read(&mut byte) {
            Ok(0) => {
                return Err(TunnelError::Refused(
                    "the proxy closed the connection".into(),
                ))
            }
            Ok(_) => head.push(byte[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(TunnelError::Receive(e)),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let status = head.lines().next().unwrap_or("").trim();
    let mut words = status.split_whitespace();
    match (words.next(), words.next()) {
        (Some(v), Some(code)) if v.starts_with("HTTP/") && code.starts_with('2') => Ok(()),
        (Some(v), Some(_)) if v.starts_with("HTTP/") => Err(TunnelError::Refused(format!(
            "the proxy answered {:?}",
            status.chars().take(80).collect::<String>()
        ))),
        _ => Err(TunnelError::Refused(
            "the proxy's answer is not HTTP".into(),
        )),
    }
}

/// ureq's connectors, with each transport of an absolute-form route
/// wrapped so its request lines name the node.
#[derive(Debug, Default)]
pub(crate) struct AbsoluteForm {
    inner: DefaultConnector,
}

impl Connector<()> for AbsoluteForm {
    type Out = Box<dyn Transport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<()>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let transport = self.inner.connect(details, chained)?;
        let origin = format!(
            "http://{}:{}",
            details.uri.host().unwrap_or(""),
            details.uri.port_u16().unwrap_or(80)
        );
        Ok(transport.map(|inner| Box::new(RequestLineRewrite { inner, origin }) as _))
    }
}

/// Turns `GET /path HTTP/1.1` into `GET http://host:port/path HTTP/1.1`
/// as the head is sent. The module only sends GETs without a body, so
/// every output that starts with "GET /" is a request head.
struct RequestLineRewrite {
    inner: Box<dyn Transport>,
    origin: String,
}

impl fmt::Debug for RequestLineRewrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestLineRewrite").finish_non_exhaustive()
    }
}

impl Transport for RequestLineRewrite {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        const METHOD: &[u8] = b"GET ";
        let origin = self.origin.as_bytes();
        let output = self.inner.buffers().output();
        let amount = if output[..amount].starts_with(b"GET /") {
            let grown = amount + origin.len();
            if grown > output.len() {
                return Err(ureq::Error::LargeResponseHeader(grown, output.len()));
            }
            output.copy_within(METHOD.len()..amount, METHOD.len() + origin.len());
            output[METHOD.len()..METHOD.len() + origin.len()].copy_from_slice(origin);
            grown
        } else {
            amount
        };
        self.inner.transmit_output(amount, timeout)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.inner.await_input(timeout)
    }

    fn is_open(&mut self) -> bool {
        self.inner.is_open()
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A proxy's side of a connection: what it answers, what it was sent.
    struct Peer {
        answer: io::Cursor<Vec<u8>>,
        sent: Vec<u8>,
    }

    impl Read for Peer {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.answer.read(buf)
        }
    }

    impl Write for Peer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.sent.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn tunnel_to(answer: &[u8]) -> (Result<(), TunnelError>, Peer) {
        let mut peer = Peer {
            answer: io::Cursor::new(answer.to_vec()),
            sent: Vec::new(),
        };
        (open_tunnel(&mut peer, "[::1]:8443"), peer)
    }

    fn refusal(answer: &[u8]) -> String {
        match tunnel_to(answer).0 {
            Err(TunnelError::Refused(reason)) => reason,
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(answer)),
        }
    }

    #[test]
    fn a_tunnel_opens_on_2xx_and_reads_nothing_of_it() {
        let (outcome, peer) =
            tunnel_to(b"HTTP/1.1 200 Connection established\r\nVia: p\r\n\r\n\x16\x03");
        assert!(outcome.is_ok(), "{outcome:?}");
        let sent = String::from_utf8(peer.sent).unwrap();
        assert!(
            sent.starts_with("CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n")
                && sent.ends_with("\r\n\r\n"),
            "{sent:?}"
        );
        // The tunnel's first bytes are left for TLS.
        assert_eq!(
            peer.answer.position(),
            peer.answer.get_ref().len() as u64 - 2
        );
    }

    #[test]
    fn a_tunnel_refused_says_why_briefly() {
        assert_eq!(
            refusal(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n"),
            "the proxy answered \"HTTP/1.1 407 Proxy Authentication Required\""
        );
        assert_eq!(
            refusal(b"\x00\xffnot http at all\r\n\r\n"),
            "the proxy's answer is not HTTP"
        );
        assert_eq!(
            refusal(b"HTTP/1.1 200 OK\r\n"),
            "the proxy closed the connection"
        );
        let endless = [b"HTTP/1.1 200 OK\r\nX: ".as_slice(), &[b'a'; 9000]].concat();
        assert_eq!(
            refusal(&endless),
            "the proxy's answer has no end of its head in 8 KiB"
        );
        let long = format!("HTTP/1.1 502 {}\r\n\r\n", "x".repeat(200));
        assert_eq!(refusal(long.as_bytes()).chars().count(), 80 + 21);
    }

    #[test]
    fn routes() {
        assert_eq!(Route::new("http://n:8080", None), Route::Direct);
        assert_eq!(
            Route::new("https://n", Some("http://p:3128")),
            Route::Connect {
                host: "p".into(),
                port: 3128
            }
        );
        assert_eq!(
            Route::new("http://n:8080/jira", Some("http://p:3128")),
            Route::AbsoluteForm {
                host: "p".into(),
                port: 3128
            }
        );
        assert_eq!(
            Route::new("http://n", Some("http://p")),
            Route::AbsoluteForm {
                host: "p".into(),
                port: 80
            }
        );
        for (proxy, port) in [("http://[::1]", 80), ("http://[::1]:3128", 3128)] {
            assert_eq!(
                Route::new("http://n", Some(proxy)),
                Route::AbsoluteForm {
                    host: "::1".into(),
                    port
                }
            );
        }
    }
}
