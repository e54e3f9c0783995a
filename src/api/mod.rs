//! One small client per Exalate API, over the shared HTTP layer (`http`)
//! and the credentials (`auth`): `relation`, the issuehub 2.4 queues of a
//! relation; `cmonitor`, the customer monitor endpoint; `node`, issuehub
//! 4.0 for the node as a whole (its queue totals, its connections, a login). What they share: reading an answer
//! within a byte limit, and a failed status in the items' words.

mod cmonitor;
mod node;
mod relation;

pub(crate) use cmonitor::num_errors;
pub(crate) use node::{connections, ping, total, Direction};
pub(crate) use relation::{fetch_queue, QueueRequest};

use crate::error::{body_excerpt, io_error, Error, ErrorKind, Result};
use crate::http::{HttpClient, HttpResponse};
use crate::timeout::Deadline;
use std::io::Read;
use std::time::{Duration, Instant};

/// One call of an API: the client, the credentials' secrets to keep out
/// of messages, and its deadline.
pub(crate) struct Call<'a> {
    /// The node's (or the endpoint's) HTTP client.
    pub(crate) http: &'a HttpClient,
    /// The secrets to keep out of what a node's body is quoted in.
    pub(crate) secrets: &'a [&'a str],
    /// When the item's time is up.
    pub(crate) deadline: Deadline,
}

impl Call<'_> {
    /// The time left, or a timeout when none is.
    fn remaining(&self) -> Result<Duration> {
        match self.deadline.at.saturating_duration_since(Instant::now()) {
            left if left.is_zero() => Err(Error::new(ErrorKind::Timeout, "timed out")),
            left => Ok(left),
        }
    }

    /// The start of an error body, read with a small cap, without secrets.
    fn excerpt(&self, body: &mut impl Read) -> String {
        let mut start = Vec::new();
        let _ = body.take(4096).read_to_end(&mut start);
        match body_excerpt(&start, self.secrets) {
            e if e.is_empty() => "empty body".to_string(),
            e => e,
        }
    }

    /// The failure of a status other than 200 of a request that sent
    /// credentials in `header` to a URL from `url_key`: `hint` says what to
    /// check after a 401 or 403, `not_found` what a 404 means here and
    /// what to check.
    fn status_error(
        &self,
        response: &mut HttpResponse,
        (header, url_key): (&str, &str),
        hint: &str,
        (not_found, check): (&str, &str),
    ) -> Error {
        match response.status {
            401 => Error::new(
                ErrorKind::AuthRejected,
                format!("credentials rejected (HTTP 401): {hint}"),
            ),
            403 => Error::new(
                ErrorKind::NotAuthenticated,
                format!("not authenticated (HTTP 403): the endpoint took no credentials from the {header} header; {hint}"),
            ),
            404 => Error::new(
                ErrorKind::BadResponse,
                format!("{not_found} (HTTP 404: {}): {check}", self.excerpt(&mut response.body)),
            ),
            status @ 500..=599 => Error::new(
                ErrorKind::NodeError,
                format!("node error (HTTP {status}: {})", self.excerpt(&mut response.body)),
            ),
            status @ 300..=399 => Error::new(
                ErrorKind::BadResponse,
                format!("unexpected redirect (HTTP {status}); redirects are not followed: check {url_key}"),
            ),
            status => Error::new(
                ErrorKind::BadResponse,
                format!("unexpected HTTP status {status}: {}", self.excerpt(&mut response.body)),
            ),
        }
    }
}

/// The body of `response`, refused past `max` bytes (`what` says what the
/// answer should be) without reading further.
fn read_within(response: &mut HttpResponse, max: u64, what: &str) -> Result<Vec<u8>> {
    let too_large = || {
        Error::new(
            ErrorKind::TooLarge,
            format!("response larger than {max} bytes, the most {what} may be"),
        )
    };
    if response.content_length.is_some_and(|n| n > max) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    (&mut response.body)
        .take(max + 1)
        .read_to_end(&mut body)
        .map_err(|e| io_error(&e))?;
    if body.len() as u64 > max {
        return Err(too_large());
    }
    Ok(body)
}

/// The body as JSON, or what it is instead.
fn parse_json(body: &[u8]) -> Result<serde_json::Value> {
    serde_json::from_slice(body).map_err(|e| json_error(body, &e))
}

/// Why `body` could not be read as the JSON wanted: not JSON at all
/// (malformed), or JSON of another shape (unexpected).
fn json_error(body: &[u8], e: &serde_json::Error) -> Error {
    let message = if e.is_data() {
        format!("unexpected JSON: {e}")
    } else if std::str::from_utf8(body).is_err() {
        "malformed JSON: the response is not valid UTF-8".to_string()
    } else {
        format!("malformed JSON: {e}")
    };
    Error::new(ErrorKind::BadResponse, message)
}

/// "a string", "an array", ... of a JSON value, for messages.
fn kind_of(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// `key` of a JSON object as a non-negative integer, or what the answer
/// is instead (`expected` shows its shape).
fn count_field(value: &serde_json::Value, key: &str, expected: &str) -> Result<u64> {
    let unexpected = |what: &str| {
        Error::new(
            ErrorKind::BadResponse,
            format!("unexpected JSON: {what}, expected {expected}"),
        )
    };
    let Some(object) = value.as_object() else {
        return Err(unexpected(kind_of(value)));
    };
    match object.get(key) {
        None => Err(unexpected(&format!("no {key}"))),
        Some(n) => n.as_u64().ok_or_else(|| {
            unexpected(&format!(
                "{key} is {}, not a non-negative integer",
                kind_of(n)
            ))
        }),
    }
}
