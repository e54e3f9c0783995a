//! The one error type of the core: a kind that C callers can branch on and a
//! single-line message that names what failed. Messages never carry secrets:
//! they are built from names and statuses, and `redact` scrubs anything a
//! hostile node might echo back.

use std::collections::HashSet;
use std::fmt;
use std::io;

/// What went wrong, coarse enough for a C enum and a Zabbix trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A bad parameter (a count, an empty or too long name, not UTF-8).
    InvalidArgument,
    /// The config file is missing or invalid, or a secret/token/CA file is unusable.
    Config,
    /// No node of that name in the config.
    UnknownNode,
    /// Not one of the six queue names.
    UnknownQueue,
    /// The node does not know the relation (HTTP 400).
    RelationNotFound,
    /// The node rejected the credentials (HTTP 401).
    AuthRejected,
    /// The node saw no credentials (HTTP 403).
    NotAuthenticated,
    /// The node failed (HTTP 5xx).
    NodeError,
    /// The node did not answer within the timeout.
    Timeout,
    /// Connection refused, reset, or the host name does not resolve.
    ConnectionFailed,
    /// The TLS handshake or certificate check failed.
    Tls,
    /// Malformed or unexpected JSON, an unexpected status or redirect.
    BadResponse,
    /// The answer is larger than max_response_bytes.
    TooLarge,
    /// A bug (a caught panic).
    Internal,
}

/// A failure: its kind and one line that says what failed, without secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    /// An error of `kind`; the message is made one line.
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: one_line(&message.into()),
        }
    }

    /// What kind of failure it is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The one-line message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Prefixes the message with where it happened, e.g. "node 'prod', relation 'X': ".
    #[must_use]
    pub(crate) fn context(mut self, prefix: &str) -> Self {
        self.message = format!("{prefix}: {}", self.message);
        self
    }

    /// Scrubs the message of secrets, tokens and their fragments (see [`redact`]).
    #[must_use]
    pub(crate) fn redact(mut self, secrets: &[&str]) -> Self {
        self.message = redact(&self.message, secrets);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// A result with the crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Zabbix shows one line per failure; control characters from names or
/// response bodies must not break it or the log.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A user-supplied or node-supplied name, quoted and shortened for messages.
pub(crate) fn quoted(name: &str) -> String {
    const MAX_CHARS: usize = 80;
    let mut shown: String = name.chars().take(MAX_CHARS).collect();
    if name.chars().count() > MAX_CHARS {
        shown.push('…');
    }
    format!("'{}'", one_line(&shown))
}

/// What stands for a removed secret or token.
const REDACTED: &str = "***";
/// A run of token characters at least this long that is also part of a
/// known secret or token is a fragment of it.
const MIN_FRAGMENT_CHARS: usize = 12;
/// `eyJ` (base64 of `{"`) then at least this many token characters: the
/// start of a JWT, known to us or not.
const MIN_JWT_TAIL_CHARS: usize = 8;

/// `text` without any of `secrets` (as written or JSON-escaped), without
/// any fragment of one, and without anything JWT-shaped. Runs on the whole
/// text before anything cuts it: a cut token no longer matches itself.
/// Secrets shorter than 4 bytes are not looked for (they would match
/// ordinary words).
pub(crate) fn redact(text: &str, secrets: &[&str]) -> String {
    let redactor = Redactor::new(secrets);
    redactor.redact(text).unwrap_or_else(|| text.to_string())
}

/// What [`redact`] looks for, worked out once for many texts (the error
/// reasons and the `queue.get` text of one answer): values get the same
/// redaction as messages, before anything cuts them.
pub(crate) struct Redactor {
    forms: SecretForms,
    /// Every run of `MIN_FRAGMENT_CHARS` bytes of a secret (see [`window_key`]).
    windows: Windows,
}

/// The windows of the secrets, looked up once per window of every run of
/// token characters in a value (a `queue.get` text is megabytes): a key of
/// the 12 bytes themselves and a multiply-and-fold hash, not SipHash.
type Windows = HashSet<u128, std::hash::BuildHasherDefault<WindowHasher>>;

fn window_key(window: &[u8]) -> u128 {
    let mut key = [0u8; 16];
    key[..MIN_FRAGMENT_CHARS].copy_from_slice(window);
    u128::from_le_bytes(key)
}

#[derive(Default)]
struct WindowHasher(u64);

impl std::hash::Hasher for WindowHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    fn write_u128(&mut self, n: u128) {
        self.write_u64(n as u64);
        self.write_u64((n >> 64) as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl Redactor {
    pub(crate) fn new(secrets: &[&str]) -> Redactor {
        let windows = secrets
            .iter()
            .flat_map(|s| s.as_bytes().windows(MIN_FRAGMENT_CHARS))
            .map(window_key)
            .collect();
        Redactor {
            forms: SecretForms::new(secrets),
            windows,
        }
    }

    /// `text` redacted as [`redact`] does, or `None` when nothing in it is
    /// a secret, a fragment of one or JWT-shaped.
    pub(crate) fn redact(&self, text: &str) -> Option<String> {
        let replaced = self.forms.replace(text);
        let text_now = replaced.as_deref().unwrap_or(text);
        match scrub_token_runs(text_now, self) {
            Some(scrubbed) => Some(scrubbed),
            None => replaced,
        }
    }
}

/// The forms in which secrets (4 bytes or more) may be written, worked out
/// once for all the texts to clean.
pub(crate) struct SecretForms(Vec<String>);

impl SecretForms {
    pub(crate) fn new(secrets: &[&str]) -> SecretForms {
        SecretForms(
            secrets
                .iter()
                .filter(|s| s.len() >= 4)
                .flat_map(|s| written_forms(s))
                .collect(),
        )
    }

    /// `text` with every form replaced, or `None` when it holds none.
    pub(crate) fn replace(&self, text: &str) -> Option<String> {
        self.0.iter().any(|f| text.contains(f.as_str())).then(|| {
            self.0
                .iter()
                .fold(text.to_string(), |t, f| t.replace(f.as_str(), REDACTED))
        })
    }
}

/// A secret as a node may echo it: as is, and escaped inside a JSON string
/// (quotes, backslashes, control characters; `/` as `\/` too).
fn written_forms(secret: &str) -> Vec<String> {
    let mut forms = vec![secret.to_string()];
    let json = serde_json::to_string(secret).unwrap_or_default();
    let json = json.trim_matches('"');
    for form in [json.to_string(), json.replace('/', "\\/")] {
        if !forms.contains(&form) {
            forms.push(form);
        }
    }
    forms
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+' | b'/' | b'=')
}

/// Replaces each run of token characters (base64, base64url, dots) that is
/// JWT-shaped or shares `MIN_FRAGMENT_CHARS` consecutive characters with a
/// secret. A run ends at anything else (space, quote, colon), so ordinary
/// words, paths and names survive.
fn scrub_token_runs(text: &str, redactor: &Redactor) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = String::new();
    // Bytes of `text` before `copied` are in `out` (redacted) already.
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if !is_token_char(bytes[i]) {
            i += 1;
            continue;
        }
        let end = bytes[i..]
            .iter()
            .position(|&b| !is_token_char(b))
            .map_or(bytes.len(), |n| i + n);
        // Char boundaries are safe: token characters are ASCII.
        let run = &text[i..end];
        if is_jwt_shaped(run) || shares_fragment(run, &redactor.windows) {
            if out.is_empty() {
                out.reserve(text.len());
            }
            out.push_str(&text[copied..i]);
            out.push_str(REDACTED);
            copied = end;
        }
        i = end;
    }
    if copied == 0 {
        return None;
    }
    out.push_str(&text[copied..]);
    Some(out)
}

fn is_jwt_shaped(run: &str) -> bool {
    run.match_indices("eyJ")
        .any(|(at, _)| run.len() - at - 3 >= MIN_JWT_TAIL_CHARS)
}

fn shares_fragment(run: &str, windows: &Windows) -> bool {
    !windows.is_empty()
        && run
            .as_bytes()
            .windows(MIN_FRAGMENT_CHARS)
            .any(|w| windows.contains(&window_key(w)))
}

/// The first line of a response body, shortened, for a message, after
/// `secrets` and tokens are scrubbed from the whole of it (see [`redact`]).
/// An HTML page (a proxy's 502, a servlet's 404) gives its title, or else
/// its text: its first line would only be `<html>`.
pub(crate) fn body_excerpt(body: &[u8], secrets: &[&str]) -> String {
    const MAX_CHARS: usize = 160;
    let text = redact(&String::from_utf8_lossy(body), secrets);
    let text = text.trim();
    let html;
    let text = if text.starts_with('<') {
        html = html_text(text);
        html.as_str()
    } else {
        text
    };
    let line = text.lines().next().unwrap_or("").trim();
    let mut shown: String = line.chars().take(MAX_CHARS).collect();
    if line.chars().count() > MAX_CHARS {
        shown.push('…');
    }
    // Control characters become spaces: trim those too.
    one_line(&shown).trim().to_string()
}

/// The title of an HTML page, or its text without tags, on one line.
fn html_text(html: &str) -> String {
    // ASCII lowercasing keeps byte offsets, and the tags found are ASCII.
    let lower = html.to_ascii_lowercase();
    let text = match (lower.find("<title>"), lower.find("</title>")) {
        (Some(start), Some(end)) if start + 7 <= end => html[start + 7..end].to_string(),
        _ => {
            let mut text = String::with_capacity(html.len());
            let mut in_tag = false;
            for c in html.chars() {
                match c {
                    '<' => {
                        in_tag = true;
                        text.push(' ');
                    }
                    '>' => in_tag = false,
                    c if !in_tag => text.push(c),
                    _ => {}
                }
            }
            text
        }
    };
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// An io::Error's reason without the "(os error N)" noise.
pub(crate) fn io_reason(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// The error for an I/O failure talking to a node (a connection, a body
/// read: the HTTP client's and the queue parser's), also one that wraps a
/// ureq error (body reads).
pub(crate) fn io_error(e: &io::Error) -> Error {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line_and_redacted() {
        let e = Error::new(ErrorKind::NodeError, "bad\nthing eyJsecret.token")
            .redact(&["eyJsecret.token"])
            .context("node 'a'");
        assert_eq!(e.message(), "node 'a': bad thing ***");
        assert_eq!(e.kind(), ErrorKind::NodeError);
    }

    #[test]
    fn long_names_are_shortened() {
        let q = quoted(&"x".repeat(500));
        assert_eq!(q.chars().count(), 83);
        assert_eq!(quoted("a\u{7}b"), "'a b'");
    }

    #[test]
    fn body_excerpt_takes_first_line() {
        assert_eq!(
            body_excerpt(b"  Connection `X` not found.\nmore", &[]),
            "Connection `X` not found."
        );
        assert_eq!(body_excerpt(&[0xff, b'a'], &[]), "\u{fffd}a");
    }

    /// A JWT as Exalate's tokens look: header, claims, signature (157 chars).
    const TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJFWEFMQVRFIiwiaWF0IjoxNzAwMDAwMDAwMDAwLCJleHAiOjE3MDAwMDAwNjAwMDB9.Qk5vZ1m2oH3hS8Jm3WcXr0tBfJYkH6a0y8f2lEw9x1c";

    /// No window of 12 characters of `secret` is left in `text`.
    fn assert_no_fragment(text: &str, secret: &str) {
        for start in 0..=secret.len() - MIN_FRAGMENT_CHARS {
            let window = &secret[start..start + MIN_FRAGMENT_CHARS];
            assert!(!text.contains(window), "{window:?} left in {text:?}");
        }
    }

    #[test]
    fn an_echoed_token_is_scrubbed_before_the_cut() {
        // Issue 11: the excerpt was cut to 160 characters, then redacted:
        // 149 of the token's characters were left.
        let body = format!("bad token: {TOKEN}");
        let excerpt = body_excerpt(body.as_bytes(), &[TOKEN]);
        assert_eq!(excerpt, "bad token: ***");
        // A token we never sent (a proxy's, a stale one) is JWT-shaped.
        assert_eq!(body_excerpt(body.as_bytes(), &[]), "bad token: ***");
        // Fragments: the node quotes half the token, or only its signature.
        let half = &TOKEN[40..120];
        let text = body_excerpt(format!("token {half}... rejected").as_bytes(), &[TOKEN]);
        assert_no_fragment(&text, TOKEN);
        assert_eq!(text, "token *** rejected");
        let signature = TOKEN.rsplit('.').next().unwrap();
        let text = body_excerpt(format!("bad signature '{signature}'").as_bytes(), &[TOKEN]);
        assert_eq!(text, "bad signature '***'");
        // Past the cut: a long body with the token at its end.
        let long = format!("{} {TOKEN}", "x ".repeat(75));
        assert_no_fragment(&body_excerpt(long.as_bytes(), &[TOKEN]), TOKEN);
    }

    #[test]
    fn json_escaped_secrets_are_scrubbed() {
        let secret = "pa\"ss/wo\\rd-7f3a";
        let bodies = [
            format!(
                "{{\"error\":\"bad secret {}\"}}",
                serde_json::to_string(secret).unwrap().trim_matches('"')
            ),
            r#"{"error":"bad secret pa\"ss\/wo\\rd-7f3a"}"#.to_string(),
            format!("bad secret {secret}"),
        ];
        for body in bodies {
            let text = body_excerpt(body.as_bytes(), &[secret]);
            assert!(text.contains("***") && !text.contains("7f3a"), "{text}");
        }
    }

    #[test]
    fn ordinary_words_names_and_paths_survive() {
        let text = "relation 'Service Desk' not found; check token_file /etc/zabbix/exalate/prod.jwt (HTTP/1.1 400)";
        assert_eq!(redact(text, &[TOKEN, "topsecret-value"]), text);
        assert_eq!(redact("eyJ short", &[]), "eyJ short");
    }

    #[test]
    fn html_pages_give_their_title_or_text() {
        let nginx = b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n";
        assert_eq!(body_excerpt(nginx, &[]), "502 Bad Gateway");
        assert_eq!(
            body_excerpt(
                b"<HTML><BODY>Moved <a href=\"x\">here</a>\n</BODY></HTML>",
                &[]
            ),
            "Moved here"
        );
        assert_eq!(body_excerpt(b"<title></title>", &[]), "");
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
