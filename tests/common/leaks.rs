//! The leak audit.
//!
//! Every value, message, `-t` output and agent log line of an audited agent
//! (`TestEnv::start_agent`) is collected here (one collector per test
//! binary); every secret a test wrote and every token a fake node received
//! is registered. `audit` checks every text against every secret and also
//! refuses any JWT-shaped string at all, so a token that never reached a
//! node (TLS failure, refused connection) is caught too. Each `TestEnv`
//! audits everything collected so far when it ends, so the last test to
//! finish audits the output of all of them.

use super::SECRET;
use fake_exalate_node::FakeNode;
use std::collections::BTreeSet;
use std::sync::{Mutex, OnceLock};

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
pub fn collected() -> (usize, usize) {
    with_collector(|c| (c.texts.len(), c.texts.iter().map(|(_, t)| t.len()).sum()))
}

/// Panics when anything collected so far holds a secret or a token.
pub fn audit() {
    let ((texts, bytes), leaks) = (collected(), with_collector(|c| c.leaks()));
    assert!(
        leaks.is_empty(),
        "secrets leaked into output ({} texts, {bytes} bytes audited):\n{}",
        texts,
        leaks.join("\n")
    );
}

/// The tokens `node` received (X-Exalate-Jwt or Authorization: Bearer).
pub fn tokens_of(node: &FakeNode) -> Vec<String> {
    let mut tokens = Vec::new();
    for request in node.requests() {
        for (name, value) in &request.headers {
            if name.eq_ignore_ascii_case("x-exalate-jwt")
                || name.eq_ignore_ascii_case("authorization")
            {
                tokens.push(value.trim_start_matches("Bearer ").trim().to_string());
            }
        }
    }
    tokens
}
