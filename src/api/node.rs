//! Exalate's own REST API for the node as a whole (issuehub 4.0), with a
//! platform user's credentials (Basic, Bearer, or a login's JWT): the
//! node's outgoing and incoming sync queue totals (always asked with
//! `limit=0`: without it the node lists every outstanding event) and its
//! connections with their status.

use super::{count_field, json_error, parse_json, read_within, Call};
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
    parse_connections(&body)
}

/// The shape of the connections' answer, for messages.
const CONNECTIONS: &str = "{\"results\": [{\"name\": ..., \"status\": ...}]}";

/// `{"results": [{"name", "status", "communication": {"remoteUrl"}}]}`,
/// read into what the item gives and no more: other fields, and values of
/// another kind, are skipped, never built, so memory follows the answer's
/// bytes, not its shape. A connection without a name or status is an
/// unexpected answer, not one to skip.
fn parse_connections(body: &[u8]) -> Result<Vec<Connection>> {
    let unexpected = |what: String| {
        Error::new(
            ErrorKind::BadResponse,
            format!("unexpected JSON: {what}, expected {CONNECTIONS}"),
        )
    };
    // serde would take an array for a struct's fields in order: say what it is.
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let not_an_object = match first {
        Some(b'[') => Some("an array"),
        Some(b'"') => Some("a string"),
        Some(b't' | b'f') => Some("a boolean"),
        Some(b'n') => Some("null"),
        Some(b'-' | b'0'..=b'9') => Some("a number"),
        _ => None,
    };
    if let (Some(kind), Ok(_)) = (
        not_an_object,
        serde_json::from_slice::<serde::de::IgnoredAny>(body),
    ) {
        return Err(unexpected(kind.into()));
    }
    let answer: Answer = serde_json::from_slice(body).map_err(|e| json_error(body, &e))?;
    let results = match answer.results {
        Some(Shaped::Is(results)) => results,
        Some(Shaped::Other(kind)) => return Err(unexpected(format!("results is {kind}"))),
        None => return Err(unexpected("no results".into())),
    };
    results
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let text = |key: &str, field: Option<Shaped<String>>| match field {
                Some(Shaped::Is(s)) => Ok(s),
                Some(Shaped::Other(kind)) => Err(unexpected(format!(
                    "connection {} has {key} {kind}, not a string",
                    i + 1
                ))),
                None => Err(unexpected(format!("connection {} has no {key}", i + 1))),
            };
            let remote = match c.communication.and_then(|c| c.remote_url) {
                Some(Shaped::Is(url)) => url,
                _ => String::new(),
            };
            Ok(Connection {
                name: text("name", c.name)?,
                status: text("status", c.status)?,
                remote,
            })
        })
        .collect()
}

#[derive(serde::Deserialize)]
#[serde(expecting = "an object {\"results\": [...]}")]
struct Answer {
    results: Option<Shaped<Vec<RawConnection>>>,
}

#[derive(serde::Deserialize)]
#[serde(expecting = "a connection object")]
struct RawConnection {
    name: Option<Shaped<String>>,
    status: Option<Shaped<String>>,
    communication: Option<Communication>,
}

#[derive(serde::Deserialize)]
#[serde(expecting = "an object")]
struct Communication {
    #[serde(rename = "remoteUrl")]
    remote_url: Option<Shaped<String>>,
}

/// A JSON value of the expected kind (a string, or an array of `T`), or
/// the kind of value found instead ("a number", "an object", ...),
/// skipped without being built.
enum Shaped<T> {
    Is(T),
    Other(&'static str),
}

/// Reads a string, or an array of `T`, or skips what else is there.
struct ShapedVisitor<T>(std::marker::PhantomData<T>);

/// What `ShapedVisitor` builds from a string or an array.
trait ShapedValue<'de>: Sized {
    /// From a string, where that is the expected kind.
    fn from_str(_: &str) -> Option<Self> {
        None
    }
    /// From an array, where that is the expected kind (else skipped).
    fn from_seq<A: serde::de::SeqAccess<'de>>(
        seq: A,
    ) -> std::result::Result<Option<Self>, A::Error>;
}

impl<'de> ShapedValue<'de> for String {
    fn from_str(s: &str) -> Option<Self> {
        Some(s.to_string())
    }
    fn from_seq<A: serde::de::SeqAccess<'de>>(
        mut seq: A,
    ) -> std::result::Result<Option<Self>, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

impl<'de, T: serde::Deserialize<'de>> ShapedValue<'de> for Vec<T> {
    fn from_seq<A: serde::de::SeqAccess<'de>>(
        mut seq: A,
    ) -> std::result::Result<Option<Self>, A::Error> {
        let mut all = Vec::new();
        while let Some(item) = seq.next_element()? {
            all.push(item);
        }
        Ok(Some(all))
    }
}

impl<'de, T: ShapedValue<'de>> serde::de::Visitor<'de> for ShapedVisitor<T> {
    type Value = Shaped<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_str<E>(self, s: &str) -> std::result::Result<Self::Value, E> {
        Ok(T::from_str(s).map_or(Shaped::Other("a string"), Shaped::Is))
    }
    fn visit_bool<E>(self, _: bool) -> std::result::Result<Self::Value, E> {
        Ok(Shaped::Other("a boolean"))
    }
    fn visit_i64<E>(self, _: i64) -> std::result::Result<Self::Value, E> {
        Ok(Shaped::Other("a number"))
    }
    fn visit_u64<E>(self, _: u64) -> std::result::Result<Self::Value, E> {
        Ok(Shaped::Other("a number"))
    }
    fn visit_f64<E>(self, _: f64) -> std::result::Result<Self::Value, E> {
        Ok(Shaped::Other("a number"))
    }
    fn visit_unit<E>(self) -> std::result::Result<Self::Value, E> {
        Ok(Shaped::Other("null"))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        seq: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        Ok(T::from_seq(seq)?.map_or(Shaped::Other("an array"), Shaped::Is))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        while map
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {}
        Ok(Shaped::Other("an object"))
    }
}

impl<'de, T: ShapedValue<'de>> serde::Deserialize<'de> for Shaped<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(ShapedVisitor(std::marker::PhantomData))
    }
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
        match response.status {
            200 => return read_within(&mut response, max, what),
            401 if !retried && credentials.can_renew() => {
                credentials.forget_token(&value);
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
        let parse = |text: &str| parse_connections(text.as_bytes());
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
            parse(r#"{"results":[{"name":"x","status":"PENDING","communication":null,"id":{"a":[1]}}]}"#)
                .unwrap()
                .len(),
            1
        );
        let e = |text: &str| parse(text).unwrap_err().message().to_string();
        assert!(e(r#"[{"name":"x","status":"PENDING"}]"#).starts_with("unexpected JSON: an array"));
        assert!(e(r#"{"total":0}"#).starts_with("unexpected JSON: no results"));
        assert!(e(r#"{"results":{}}"#).starts_with("unexpected JSON: results is an object"));
        assert!(e(r#"{"results":[{"status":"ACTIVE"}]}"#)
            .starts_with("unexpected JSON: connection 1 has no name"));
        assert!(
            e(r#"{"results":[{"name":"a","status":"ACTIVE"},{"name":"b","status":3}]}"#)
                .starts_with("unexpected JSON: connection 2 has status a number, not a string")
        );
        assert!(e("7").starts_with("unexpected JSON: a number, expected"));
        assert!(e(r#"{"results":[3]}"#).starts_with(
            "unexpected JSON: invalid type: integer `3`, expected a connection object"
        ));
        assert!(e(r#"{"results":[{"name":"a"#).starts_with("malformed JSON: EOF"));
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
