//! Exalate's own REST API for the node as a whole (issuehub 4.0), with a
//! platform user's credentials (Basic, Bearer, or a login's JWT): the
//! node's outgoing and incoming sync queue totals (always asked with
//! `limit=0`: without it the node lists every outstanding event) and its
//! connections with their status.

use super::{count_field, kind_of, parse_json, read_within, Call};
use crate::auth::{Credentials, LoginRequest};
use crate::error::{quoted, Error, ErrorKind, Result};
use crate::secret::Secret;
use serde::Serialize;

/// The API's root below the node's URL.
const ROOT: &str = "/rest/issuehub/4.0";
/// The most a total's answer (or a login's) may be: `limit=0` lists no
/// event, so it is one small object; a node that lists events anyway is
/// refused here, not read.
const MAX_SMALL_ANSWER_BYTES: u64 = 64 * 1024;
/// A total's shape, for messages.
const TOTAL: &str = "{\"total\": N}";

/// Which of the node's sync queues: `exalate.node.queue`'s direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Outgoing sync transactions (`syncevents`).
    Outgoing,
    /// Incoming sync transactions (`syncrequests`).
    Incoming,
}

impl Direction {
    /// The direction an item names.
    pub(crate) fn parse(name: &str) -> Result<Direction> {
        match name {
            "outgoing" => Ok(Direction::Outgoing),
            "incoming" => Ok(Direction::Incoming),
            other => Err(Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "unknown direction {}; valid directions: outgoing, incoming",
                    quoted(other)
                ),
            )),
        }
    }

    /// The request's path and query below the API's root.
    fn path(self) -> &'static str {
        match self {
            Direction::Outgoing => "/syncevents?limit=0",
            Direction::Incoming => "/syncrequests?limit=0",
        }
    }
}

/// A connection of the node as `exalate.node.connections` lists it.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub(crate) struct Connection {
    /// Its name (what the 2.4 API calls the relation).
    pub(crate) name: String,
    /// As the node spells it: ACTIVE, DEACTIVATED, PENDING, ...
    pub(crate) status: String,
    /// `communication.remoteUrl`, "" when absent.
    pub(crate) remote: String,
}

/// The node's whole sync queue in `direction`: its `total`.
pub(crate) fn total(
    call: &Call<'_>,
    base_url: &str,
    credentials: &Credentials,
    direction: Direction,
) -> Result<u64> {
    let what = format!("an answer with limit=0, {TOTAL}");
    let body = get(
        call,
        base_url,
        credentials,
        direction.path(),
        MAX_SMALL_ANSWER_BYTES,
        &what,
    )?;
    count_field(&parse_json(&body)?, "total", TOTAL)
}

/// Whether the API answers and takes the credentials: the outgoing total,
/// asked as an item would.
pub(crate) fn ping(call: &Call<'_>, base_url: &str, credentials: &Credentials) -> Result<()> {
    total(call, base_url, credentials, Direction::Outgoing).map(|_| ())
}

/// The node's connections, in its order.
pub(crate) fn connections(
    call: &Call<'_>,
    base_url: &str,
    credentials: &Credentials,
    max_response_bytes: u64,
) -> Result<Vec<Connection>> {
    let body = get(
        call,
        base_url,
        credentials,
        "/connections",
        max_response_bytes,
        "an answer (max_response_bytes)",
    )?;
    parse_connections(&parse_json(&body)?)
}

/// `{"results": [{"name", "status", "communication": {"remoteUrl"}}]}`
/// (a bare array is taken too); a connection without a name or status is
/// an unexpected answer, not one to skip.
fn parse_connections(value: &serde_json::Value) -> Result<Vec<Connection>> {
    const EXPECTED: &str = "{\"results\": [{\"name\": ..., \"status\": ...}]}";
    let unexpected = |what: String| {
        Error::new(
            ErrorKind::BadResponse,
            format!("unexpected JSON: {what}, expected {EXPECTED}"),
        )
    };
    let results = match value {
        serde_json::Value::Array(results) => results,
        serde_json::Value::Object(o) => match o.get("results") {
            Some(serde_json::Value::Array(results)) => results,
            Some(other) => return Err(unexpected(format!("results is {}", kind_of(other)))),
            None => return Err(unexpected("no results".into())),
        },
        other => return Err(unexpected(kind_of(other).into())),
    };
    results
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let text = |key: &str| match c.get(key) {
                Some(serde_json::Value::String(s)) => Ok(s.clone()),
                Some(other) => Err(unexpected(format!(
                    "connection {} has {key} {}, not a string",
                    i + 1,
                    kind_of(other)
                ))),
                None => Err(unexpected(format!("connection {} has no {key}", i + 1))),
            };
            let remote = c
                .pointer("/communication/remoteUrl")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default();
            Ok(Connection {
                name: text("name")?,
                status: text("status")?,
                remote: remote.to_string(),
            })
        })
        .collect()
}

/// GETs `path` below the API's root, within `max` bytes: with the
/// credentials' header, logging in first where they are a login's; a 401
/// on a renewable token (a login's) gets one new login and one more try.
fn get(
    call: &Call<'_>,
    base_url: &str,
    credentials: &Credentials,
    path: &str,
    max: u64,
    what: &str,
) -> Result<Vec<u8>> {
    let url = format!("{base_url}{ROOT}{path}");
    let mut retried = false;
    loop {
        let (name, value) = credentials.header_with_login(|request| {
            log_in(call, base_url, request, &credentials.rejection_hint())
        })?;
        let mut response = call
            .http
            .get(&url, (name, value.as_str()), call.remaining()?)?;
        drop(value);
        match response.status {
            200 => return read_within(&mut response, max, what),
            401 if !retried && credentials.can_renew() => {
                credentials.forget_token();
                retried = true;
            }
            _ => {
                return Err(call.status_error(
                    &mut response,
                    (name, "url"),
                    &credentials.rejection_hint(),
                    (
                        "no issuehub 4.0 API at url",
                        "an Exalate older than 4.x, or a wrong url (its base path)",
                    ),
                ))
            }
        }
    }
}

/// `POST /rest/issuehub/4.0/authenticate` as Exalate's own front end does
/// (`Origin` and `Referer` the node's, which Exalate 5.6 and later check);
/// the JWT comes back in the `X-Exalate-Jwt` header or, on some nodes,
/// only in the body.
fn log_in(
    call: &Call<'_>,
    base_url: &str,
    request: &LoginRequest<'_>,
    hint: &str,
) -> Result<Secret> {
    let body = Secret::new(
        serde_json::json!({
            "authProtocol": "basic",
            "user": request.user,
            "password": request.password.as_str(),
        })
        .to_string(),
    );
    let referer = format!("{base_url}/");
    let headers = [("Origin", origin(base_url)), ("Referer", referer.as_str())];
    let url = format!("{base_url}{ROOT}/authenticate");
    let mut response =
        call.http
            .post_json(&url, &headers, body.as_str().as_bytes(), call.remaining()?)?;
    drop(body);
    let login_failed = |e: Error| {
        let message = format!("login failed: {}", e.message());
        Error::new(e.kind(), message)
    };
    match response.status {
        200 => {}
        401 => {
            return Err(Error::new(
                ErrorKind::AuthRejected,
                format!("login rejected (HTTP 401): {hint}"),
            ))
        }
        403 => {
            return Err(Error::new(
                ErrorKind::NotAuthenticated,
                "login refused (HTTP 403): the node checks the Origin header against its own URL: check url",
            ))
        }
        _ => {
            return Err(login_failed(call.status_error(
                &mut response,
                ("X-Exalate-Jwt", "url"),
                hint,
                (
                    "no login endpoint at url (/rest/issuehub/4.0/authenticate)",
                    "set api_login = false to send Basic, or check url",
                ),
            )))
        }
    }
    if let Some(token) = response.header("x-exalate-jwt").filter(|t| is_jwt(t)) {
        return Ok(Secret::new(token.to_string()));
    }
    let body = read_within(&mut response, MAX_SMALL_ANSWER_BYTES, "a login's answer")
        .map_err(login_failed)?;
    let body = Secret::new(String::from_utf8_lossy(&body).into_owned());
    token_in_body(body.as_str()).ok_or_else(|| {
        Error::new(
            ErrorKind::BadResponse,
            "login answered without a token (no X-Exalate-Jwt header, no JWT in the body)",
        )
    })
}

/// `scheme://host[:port]` of a URL, as a browser sends `Origin`.
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

/// The JWT in a login's body: a JSON object's `token`, `jwt` or
/// `accessToken` or any of its string values that is a JWT, a JSON
/// string, or the bare text.
fn token_in_body(body: &str) -> Option<Secret> {
    let found = match serde_json::from_str::<serde_json::Value>(body) {
        Ok(serde_json::Value::String(s)) => Some(s),
        Ok(serde_json::Value::Object(o)) => ["token", "jwt", "accessToken", "access_token"]
            .iter()
            .filter_map(|k| o.get(*k).and_then(|v| v.as_str()))
            .chain(o.values().filter_map(|v| v.as_str()))
            .find(|t| is_jwt(t))
            .map(str::to_string),
        _ => Some(body.trim().to_string()),
    };
    found.filter(|t| is_jwt(t)).map(Secret::new)
}

/// Three base64url segments, the first a JSON header: the shape of a JWT.
fn is_jwt(text: &str) -> bool {
    let parts: Vec<&str> = text.split('.').collect();
    parts.len() == 3
        && text.starts_with("eyJ")
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directions_and_their_paths() {
        assert_eq!(
            Direction::parse("outgoing").unwrap().path(),
            "/syncevents?limit=0"
        );
        assert_eq!(
            Direction::parse("incoming").unwrap().path(),
            "/syncrequests?limit=0"
        );
        let e = Direction::parse("sideways").unwrap_err();
        assert_eq!(
            (e.kind(), e.message()),
            (
                ErrorKind::InvalidArgument,
                "unknown direction 'sideways'; valid directions: outgoing, incoming"
            )
        );
    }

    #[test]
    fn connections_or_what_the_answer_is_instead() {
        let parse = |text: &str| parse_connections(&serde_json::from_str(text).unwrap());
        let ok = parse(
            r#"{"total":2,"results":[{"id":1,"name":"A/B ü","status":"ACTIVE","communication":{"remoteUrl":"https://r"}},
                {"name":"C","status":"DEACTIVATED"}]}"#,
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(&ok).unwrap(),
            r#"[{"name":"A/B ü","status":"ACTIVE","remote":"https://r"},{"name":"C","status":"DEACTIVATED","remote":""}]"#
        );
        assert_eq!(
            parse(r#"[{"name":"x","status":"PENDING"}]"#).unwrap().len(),
            1
        );
        let e = |text: &str| parse(text).unwrap_err().message().to_string();
        assert!(e(r#"{"total":0}"#).starts_with("unexpected JSON: no results"));
        assert!(e(r#"{"results":{}}"#).starts_with("unexpected JSON: results is an object"));
        assert!(e(r#"{"results":[{"status":"ACTIVE"}]}"#)
            .starts_with("unexpected JSON: connection 1 has no name"));
        assert!(
            e(r#"{"results":[{"name":"a","status":"ACTIVE"},{"name":"b","status":3}]}"#)
                .starts_with("unexpected JSON: connection 2 has status a number, not a string")
        );
        assert!(e("7").starts_with("unexpected JSON: a number"));
    }

    #[test]
    fn a_login_token_from_the_header_or_the_body() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjF9.c2ln";
        assert!(is_jwt(jwt) && !is_jwt("eyJ.x") && !is_jwt("a.b.c"));
        for body in [
            format!(r#"{{"token":"{jwt}"}}"#),
            format!(r#"{{"user":"u","session":"{jwt}"}}"#),
            format!(r#""{jwt}""#),
            format!(" {jwt}\n"),
        ] {
            assert_eq!(token_in_body(&body).unwrap().as_str(), jwt, "{body}");
        }
        assert!(token_in_body(r#"{"token":"not a jwt"}"#).is_none());
        assert!(token_in_body("<html>welcome</html>").is_none());
        assert_eq!(
            origin("https://n.exalate.cloud/jira"),
            "https://n.exalate.cloud"
        );
        assert_eq!(origin("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
    }
}
