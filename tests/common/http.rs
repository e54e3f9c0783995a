//! Local servers: an accept loop, and one that answers from the request head alone.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A local listener whose thread hands each connection to `serve` until it
/// is dropped; then it joins the threads `serve` started.
pub struct Acceptor {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Acceptor {
    pub fn start(
        mut serve: impl FnMut(TcpStream, &Arc<AtomicBool>) -> Option<JoinHandle<()>> + Send + 'static,
    ) -> Acceptor {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let t_stop = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut threads = Vec::new();
            for stream in listener.incoming() {
                if t_stop.load(Ordering::SeqCst) {
                    break;
                }
                threads.extend(stream.ok().and_then(|s| serve(s, &t_stop)));
            }
            for t in threads {
                let _ = t.join();
            }
        });
        let thread = Some(thread);
        Acceptor { addr, stop, thread }
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A server that reads each request head and answers from it alone.
pub struct CannedServer {
    pub addr: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
    _acceptor: Acceptor,
}

impl CannedServer {
    /// Reads each request head, answers `response`, closes.
    pub fn start(response: Vec<u8>) -> CannedServer {
        CannedServer::answering(move |_| response.clone())
    }

    /// Reads each request head, answers what `reply` makes of it, closes.
    pub fn answering(reply: impl Fn(&str) -> Vec<u8> + Send + 'static) -> CannedServer {
        let heads = Arc::new(Mutex::new(Vec::new()));
        let t_heads = heads.clone();
        let acceptor = Acceptor::start(move |mut stream, _| {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    // EINTR: stopped and continued (signal(7)); read again.
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let head = String::from_utf8_lossy(&head).to_string();
            let response = reply(&head);
            t_heads.lock().unwrap().push(head);
            let _ = stream.write_all(&response);
            let _ = stream.shutdown(std::net::Shutdown::Both);
            None
        });
        let addr = acceptor.addr;
        CannedServer {
            addr,
            heads,
            _acceptor: acceptor,
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

/// A peer that never finishes anything: to every connection it sends
/// `head` at once, then `fill`, one byte every `interval`, until the client
/// goes or it is dropped. Each read of the client gets a byte within
/// `interval`, so only a whole-step deadline ends a step against it.
pub struct Trickle {
    pub addr: SocketAddr,
    _acceptor: Acceptor,
}

impl Trickle {
    pub fn start(head: &[u8], fill: u8, interval: Duration) -> Trickle {
        let head = head.to_vec();
        let acceptor = Acceptor::start(move |mut stream, stop| {
            let (head, stop) = (head.clone(), stop.clone());
            Some(std::thread::spawn(move || {
                if stream.write_all(&head).is_err() {
                    return;
                }
                while !stop.load(Ordering::SeqCst) && stream.write_all(&[fill]).is_ok() {
                    std::thread::sleep(interval);
                }
            }))
        });
        let addr = acceptor.addr;
        Trickle {
            addr,
            _acceptor: acceptor,
        }
    }

    /// A TLS server that never ends its handshake: a record header
    /// announcing 16 KiB, then its bytes trickling.
    pub fn tls(interval: Duration) -> Trickle {
        Trickle::start(&[0x16, 0x03, 0x03, 0x40, 0x00], 0, interval)
    }

    /// A proxy that answers CONNECT with a status line, then a header that
    /// never ends.
    pub fn proxy(interval: Duration) -> Trickle {
        Trickle::start(
            b"HTTP/1.1 200 Connection established\r\nX-Trickle: ",
            b'a',
            interval,
        )
    }
}
