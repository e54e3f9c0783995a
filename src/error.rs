//! The one error type of the core: a kind that C callers can branch on and a
//! single-line message that names what failed. Messages never carry secrets:
//! they are built from names and statuses, and `redact` scrubs anything a
//! hostile node might echo back.

use std::fmt;

/// What went wrong, coarse enough for a C enum and a Zabbix trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidArgument,
    Config,
    UnknownNode,
    UnknownQueue,
    RelationNotFound,
    AuthRejected,
    NotAuthenticated,
    NodeError,
    Timeout,
    ConnectionFailed,
    Tls,
    BadResponse,
    TooLarge,
    Internal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: one_line(&message.into()),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// Prefixes the message with where it happened, e.g. "node 'prod', relation 'X': ".
    pub fn context(mut self, prefix: &str) -> Self {
        self.message = format!("{prefix}: {}", self.message);
        self
    }

    /// Replaces every occurrence of each secret with `***`.
    pub fn redact(mut self, secrets: &[&str]) -> Self {
        for secret in secrets.iter().filter(|s| s.len() >= 4) {
            if self.message.contains(secret) {
                self.message = self.message.replace(secret, "***");
            }
        }
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// Zabbix shows one line per failure; control characters from names or
/// response bodies must not break it or the log.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A user-supplied or node-supplied name, quoted and shortened for messages.
pub fn quoted(name: &str) -> String {
    const MAX_CHARS: usize = 80;
    let mut shown: String = name.chars().take(MAX_CHARS).collect();
    if name.chars().count() > MAX_CHARS {
        shown.push('…');
    }
    format!("'{}'", one_line(&shown))
}

/// The first line of a response body, shortened, for a message. An HTML
/// page (a proxy's 502, a servlet's 404) gives its title, or else its text:
/// its first line would only be `<html>`.
pub fn body_excerpt(body: &[u8]) -> String {
    const MAX_CHARS: usize = 160;
    let text = String::from_utf8_lossy(body);
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
            body_excerpt(b"  Connection `X` not found.\nmore"),
            "Connection `X` not found."
        );
        assert_eq!(body_excerpt(&[0xff, b'a']), "\u{fffd}a");
    }

    #[test]
    fn html_pages_give_their_title_or_text() {
        let nginx = b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n";
        assert_eq!(body_excerpt(nginx), "502 Bad Gateway");
        assert_eq!(
            body_excerpt(b"<HTML><BODY>Moved <a href=\"x\">here</a>\n</BODY></HTML>"),
            "Moved here"
        );
        assert_eq!(body_excerpt(b"<title></title>"), "");
    }
}
