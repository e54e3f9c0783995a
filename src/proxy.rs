//! The `proxy` key: an HTTP proxy in front of a node. The environment
//! (`HTTP_PROXY`, `https_proxy`, `ALL_PROXY`, ...) is never read: ureq's
//! defaults would, and the agent's environment is not the admin's intent.
//!
//! - https nodes: `CONNECT host:port` (ureq's own), TLS end to end.
//! - http nodes: absolute-form requests (`GET http://host:port/path`), what
//!   HTTP proxies expect for plain http (many refuse CONNECT to a port other
//!   than 443). The connection goes to the proxy (the resolver gives its
//!   address for the node's host) and [`AbsoluteForm`] rewrites each
//!   request line on its way out.

use std::fmt;
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, DefaultConnector, NextTimeout, Transport,
};

/// How one node's requests travel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    Direct,
    /// ureq's CONNECT proxy (https nodes).
    Connect(String),
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
        if url.starts_with("https://") {
            return Route::Connect(proxy.to_string());
        }
        let (host, port) = split_authority(proxy.trim_start_matches("http://"));
        let port = port.and_then(|p| p.parse().ok()).unwrap_or(80);
        Route::AbsoluteForm {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
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

    #[test]
    fn routes() {
        assert_eq!(Route::new("http://n:8080", None), Route::Direct);
        assert_eq!(
            Route::new("https://n", Some("http://p:3128")),
            Route::Connect("http://p:3128".into())
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
