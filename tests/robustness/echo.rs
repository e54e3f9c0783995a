//! A node (or a proxy in front of it) that echoes the credentials it got
//! in its error bodies: no message may carry a token, a fragment of one or
//! the shared secret, whatever form the echo takes (issue 11).

use crate::support::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Answers every request with an error body quoting its token; the
/// relation name picks the status and the form of the echo.
struct EchoNode {
    addr: SocketAddr,
    tokens: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EchoNode {
    fn start() -> EchoNode {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let tokens = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (t_tokens, t_stop) = (tokens.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if t_stop.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    answer(stream, &t_tokens);
                }
            }
        });
        EchoNode {
            addr,
            tokens,
            stop,
            thread: Some(thread),
        }
    }

    fn tokens(&self) -> Vec<String> {
        self.tokens.lock().unwrap().clone()
    }
}

fn answer(mut stream: TcpStream, tokens: &Mutex<Vec<String>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
    let token = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("x-exalate-jwt")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_default();
    tokens.lock().unwrap().push(token.clone());
    let (status, body) = if path.contains("/echo-400/") {
        ("400 Bad Request", format!("bad token: {token}"))
    } else if path.contains("/echo-json/") {
        (
            "500 Internal Server Error",
            serde_json::json!({ "message": format!("JWT {token} rejected for secret {SECRET}") })
                .to_string(),
        )
    } else if path.contains("/echo-fragment/") {
        // A node that quotes a slice of the token, and its signature alone.
        let signature = token.rsplit('.').next().unwrap_or("");
        (
            "418 I'm a teapot",
            format!(
                "token {}... has bad signature {signature}",
                &token[20..token.len().min(120)]
            ),
        )
    } else {
        (
            "502 Bad Gateway",
            format!("<html><head><title>proxy: upstream refused {token}</title></head></html>"),
        )
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes());
}

impl Drop for EchoNode {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Fails when `text` holds 12 consecutive characters of `secret`.
fn assert_no_fragment(text: &str, secret: &str) {
    const WINDOW: usize = 12;
    for start in 0..=secret.len().saturating_sub(WINDOW) {
        let window = &secret[start..(start + WINDOW).min(secret.len())];
        assert!(
            !text.contains(window),
            "12 characters of a secret at byte {start} of it are in: {}",
            text.replace(window, "<FRAGMENT>")
        );
    }
}

#[test]
fn tokens_echoed_by_the_node_never_reach_a_message() {
    let env = Env::new("echo-tokens");
    let echo = EchoNode::start();
    env.write_config(&format!(
        "[defaults]\ncache_ttl = 0\n[nodes.demo]\nurl = \"http://{}\"\njwt_secret_file = \"{}\"\n",
        echo.addr,
        env.dir.join("demo.secret").display()
    ));
    let agent = env.start_agent(AgentOptions {
        start_agents: 1,
        ..AgentOptions::default()
    });
    let cases = [
        (
            "echo-400",
            "relation not found on the node (HTTP 400: bad token: ***).",
        ),
        (
            "echo-json",
            "node error (HTTP 500: {\"message\":\"JWT *** rejected for secret ***\"}).",
        ),
        (
            "echo-fragment",
            "unexpected HTTP status 418: token *** has bad signature ***.",
        ),
        (
            "echo-html",
            "node error (HTTP 502: proxy: upstream refused ***).",
        ),
    ];
    for (relation, expected) in cases {
        let message = agent
            .get(&format!(
                "exalate.queue.count[demo,{relation},syncrequests]"
            ))
            .error()
            .to_string();
        for token in echo.tokens() {
            add_secret(&token);
            assert!(token.starts_with("eyJ") && token.len() > 100, "{token}");
            assert_no_fragment(&message, &token);
        }
        assert_no_fragment(&message, SECRET);
        assert_eq!(
            message,
            format!("node 'demo', relation '{relation}', queue syncrequests: {expected}")
        );
    }
}
