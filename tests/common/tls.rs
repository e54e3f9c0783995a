//! TLS: a CA and certificates made here, and a terminator in front of a node.

use super::http::Acceptor;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    _acceptor: Acceptor,
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
        let acceptor = Acceptor::start(move |stream, stop| {
            let (config, stop) = (config.clone(), stop.clone());
            Some(std::thread::spawn(move || {
                let _ = forward(stream, config, backend, &stop);
            }))
        });
        let addr = acceptor.addr;
        TlsFront {
            addr,
            _acceptor: acceptor,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
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
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
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
                    flush_tls(&mut tls, &mut client)?;
                    return Ok(());
                }
                Ok(n) => {
                    tls.writer().write_all(&buf[..n])?;
                }
                Err(e) if is_tick(&e) => {}
                Err(e) => return Err(e),
            }
        }
        flush_tls(&mut tls, &mut client)?;
    }
    Ok(())
}

/// Nothing came this time round: the timeout's tick, or a read
/// interrupted (EINTR: a socket read with a timeout is not restarted when
/// the process is stopped and continued, signal(7)).
fn is_tick(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock
            | std::io::ErrorKind::TimedOut
            | std::io::ErrorKind::Interrupted
    )
}

/// Sends what the TLS side has for the client, retrying interrupted writes.
fn flush_tls(tls: &mut rustls::ServerConnection, client: &mut TcpStream) -> std::io::Result<()> {
    while tls.wants_write() {
        match tls.write_tls(client) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            written => {
                written?;
            }
        }
    }
    Ok(())
}
