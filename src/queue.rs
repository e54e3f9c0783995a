//! The six queues of a relation and the streaming parser of their answers.
//!
//! A queue answer is a JSON array that can hold hundreds of thousands of
//! entries, each with a large `encodedPayload`. The parser reads it straight
//! from the socket: it counts entries and tallies error reasons without
//! building them, keeps the entries themselves (payload dropped while
//! parsing) only while the answer is small, enforces the size cap as it
//! reads, and checks that the answer is UTF-8.

use crate::error::{Error, ErrorKind, Result};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read};
use std::rc::Rc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Queue {
    SyncRequests,
    BlobRequests,
    SyncResponses,
    BlobResponses,
    ErrorResponses,
    BlobErrorResponses,
}

impl Queue {
    pub const ALL: [Queue; 6] = [
        Queue::SyncRequests,
        Queue::BlobRequests,
        Queue::SyncResponses,
        Queue::BlobResponses,
        Queue::ErrorResponses,
        Queue::BlobErrorResponses,
    ];

    /// The name used in item keys, stats and the URL's last segment.
    pub fn name(self) -> &'static str {
        match self {
            Queue::SyncRequests => "syncrequests",
            Queue::BlobRequests => "blobrequests",
            Queue::SyncResponses => "syncresponses",
            Queue::BlobResponses => "blobresponses",
            Queue::ErrorResponses => "errorresponses",
            Queue::BlobErrorResponses => "bloberrorresponses",
        }
    }

    /// The path below `relations/{relation}/`.
    pub fn path(self) -> &'static str {
        match self {
            Queue::SyncRequests => "syncevents/syncrequests",
            Queue::BlobRequests => "syncevents/blobrequests",
            Queue::SyncResponses => "syncrequests/syncresponses",
            Queue::BlobResponses => "syncrequests/blobresponses",
            Queue::ErrorResponses => "syncrequests/errorresponses",
            Queue::BlobErrorResponses => "syncrequests/bloberrorresponses",
        }
    }

    /// The entry field that says why an error entry failed.
    pub fn reason_field(self) -> Option<&'static str> {
        match self {
            Queue::ErrorResponses => Some("errorReason"),
            Queue::BlobErrorResponses => Some("blobErrorReason"),
            _ => None,
        }
    }

    pub fn parse(name: &str) -> Result<Queue> {
        Queue::ALL
            .into_iter()
            .find(|q| q.name() == name)
            .ok_or_else(|| {
                let valid: Vec<&str> = Queue::ALL.iter().map(|q| q.name()).collect();
                Error::new(
                    ErrorKind::UnknownQueue,
                    format!(
                        "unknown queue {}; valid queues: {}",
                        crate::error::quoted(name),
                        valid.join(", ")
                    ),
                )
            })
    }
}

impl fmt::Display for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The reason tallied for an error entry without one.
pub const UNKNOWN_REASON: &str = "UNKNOWN";
/// The entry field dropped from kept entries.
const PAYLOAD_FIELD: &str = "encodedPayload";

/// What one fetch of a queue tells.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueueSnapshot {
    pub count: u64,
    /// Error reason -> entries (error queues only).
    pub reasons: BTreeMap<String, u64>,
    /// The entries without `encodedPayload`; None when the answer was too
    /// large to keep (see [`Keep`]).
    pub entries: Option<Vec<Value>>,
}

/// How many entries a fetch keeps for `queue.get`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Keep entries while the answer read so far is under this many bytes;
    /// past it, drop them and only count (memory stays flat).
    WhileUnder(u64),
    /// Keep every entry (the answer is capped by max_response_bytes anyway).
    All,
}

/// Parses a queue answer from `body`, reading at most `max_bytes`.
pub fn read_queue(
    queue: Queue,
    body: impl Read,
    max_bytes: u64,
    keep: Keep,
) -> Result<QueueSnapshot> {
    let consumed = Rc::new(Cell::new(0u64));
    let reader = CheckedReader {
        inner: body,
        consumed: consumed.clone(),
        max_bytes,
        utf8_tail: Vec::new(),
    };
    let mut de =
        serde_json::Deserializer::from_reader(io::BufReader::with_capacity(64 * 1024, reader));
    let visitor = QueueVisitor {
        queue,
        consumed,
        keep,
    };
    let snapshot = de::Deserializer::deserialize_any(&mut de, visitor).map_err(json_error)?;
    de.end().map_err(json_error)?;
    Ok(snapshot)
}

fn json_error(e: serde_json::Error) -> Error {
    use serde_json::error::Category;
    match e.classify() {
        Category::Io => {
            let io: io::Error = e.into();
            if let Some(limit) = io.get_ref().and_then(|r| r.downcast_ref::<TooLarge>()) {
                return Error::new(
                    ErrorKind::TooLarge,
                    format!(
                        "response larger than max_response_bytes ({} bytes)",
                        limit.0
                    ),
                );
            }
            if io.get_ref().is_some_and(|r| r.is::<NotUtf8>()) {
                return Error::new(
                    ErrorKind::BadResponse,
                    "malformed JSON: the response is not valid UTF-8",
                );
            }
            crate::http::io_error(&io)
        }
        Category::Syntax | Category::Eof => {
            Error::new(ErrorKind::BadResponse, format!("malformed JSON: {e}"))
        }
        Category::Data => Error::new(ErrorKind::BadResponse, format!("unexpected JSON: {e}")),
    }
}

#[derive(Debug)]
struct TooLarge(u64);
impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "response larger than {} bytes", self.0)
    }
}
impl std::error::Error for TooLarge {}

#[derive(Debug)]
struct NotUtf8;
impl fmt::Display for NotUtf8 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("response is not UTF-8")
    }
}
impl std::error::Error for NotUtf8 {}

/// Counts what is read, stops past `max_bytes`, and checks UTF-8 across
/// chunk boundaries (serde_json does not check strings it skips).
struct CheckedReader<R> {
    inner: R,
    consumed: Rc<Cell<u64>>,
    max_bytes: u64,
    utf8_tail: Vec<u8>,
}

impl<R: Read> Read for CheckedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let total = self.consumed.get() + n as u64;
        if total > self.max_bytes {
            return Err(io::Error::other(TooLarge(self.max_bytes)));
        }
        self.consumed.set(total);
        if n == 0 {
            return if self.utf8_tail.is_empty() {
                Ok(0)
            } else {
                Err(io::Error::other(NotUtf8))
            };
        }
        let chunk = &buf[..n];
        // Only a sequence split by the chunk boundary is carried over (≤ 3 bytes).
        let checked = if self.utf8_tail.is_empty() {
            check_utf8(chunk).map(|tail| tail.map(<[u8]>::to_vec))
        } else {
            let mut joined = std::mem::take(&mut self.utf8_tail);
            joined.extend_from_slice(chunk);
            check_utf8(&joined).map(|tail| tail.map(<[u8]>::to_vec))
        };
        match checked {
            Ok(tail) => {
                self.utf8_tail = tail.unwrap_or_default();
                Ok(n)
            }
            Err(()) => Err(io::Error::other(NotUtf8)),
        }
    }
}

/// Ok(Some(tail)) when `bytes` ends inside a multi-byte sequence.
fn check_utf8(bytes: &[u8]) -> std::result::Result<Option<&[u8]>, ()> {
    match std::str::from_utf8(bytes) {
        Ok(_) => Ok(None),
        Err(e) if e.error_len().is_none() => Ok(Some(&bytes[e.valid_up_to()..])),
        Err(_) => Err(()),
    }
}

struct QueueVisitor {
    queue: Queue,
    consumed: Rc<Cell<u64>>,
    keep: Keep,
}

impl<'de> Visitor<'de> for QueueVisitor {
    type Value = QueueSnapshot;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON array of queue entries")
    }

    fn visit_seq<A: SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<QueueSnapshot, A::Error> {
        let reason_field = self.queue.reason_field();
        let mut snapshot = QueueSnapshot {
            entries: Some(Vec::new()),
            ..QueueSnapshot::default()
        };
        loop {
            let keeping = match (self.keep, &snapshot.entries) {
                (_, None) => false,
                (Keep::All, _) => true,
                (Keep::WhileUnder(limit), Some(_)) => self.consumed.get() < limit,
            };
            if !keeping {
                snapshot.entries = None;
            }
            let seed = EntrySeed {
                reason_field,
                keep: keeping,
                index: snapshot.count,
            };
            let Some(entry) = seq.next_element_seed(seed)? else {
                break;
            };
            snapshot.count += 1;
            if let Some(reason) = entry.reason {
                *snapshot.reasons.entry(reason).or_insert(0) += 1;
            }
            if let (Some(entries), Some(value)) = (snapshot.entries.as_mut(), entry.value) {
                entries.push(value);
            }
        }
        Ok(snapshot)
    }
}

/// One entry: its reason (error queues) and, when kept, its value.
struct Entry {
    reason: Option<String>,
    value: Option<Value>,
}

struct EntrySeed {
    reason_field: Option<&'static str>,
    keep: bool,
    index: u64,
}

impl<'de> DeserializeSeed<'de> for EntrySeed {
    type Value = Entry;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> std::result::Result<Entry, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for EntrySeed {
    type Value = Entry;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "entry {} to be a JSON object", self.index)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Entry, A::Error> {
        let mut reason = None;
        let mut kept = self.keep.then(Map::new);
        while let Some(key) = map.next_key::<String>()? {
            if self.reason_field == Some(key.as_str()) {
                let value: Value = map.next_value_seed(StrippedValue)?;
                reason = Some(match &value {
                    Value::String(s) if !s.is_empty() => s.clone(),
                    _ => UNKNOWN_REASON.to_string(),
                });
                if let Some(kept) = kept.as_mut() {
                    kept.insert(key, value);
                }
            } else if let Some(kept) = kept.as_mut() {
                if key == PAYLOAD_FIELD {
                    map.next_value::<IgnoredAny>()?;
                } else {
                    let value = map.next_value_seed(StrippedValue)?;
                    kept.insert(key, value);
                }
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        if self.reason_field.is_some() && reason.is_none() {
            reason = Some(UNKNOWN_REASON.to_string());
        }
        Ok(Entry {
            reason,
            value: kept.map(Value::Object),
        })
    }
}

/// A serde_json::Value built without any `encodedPayload` field, at any depth,
/// so a kept entry never holds the payload even for a moment.
struct StrippedValue;

impl<'de> DeserializeSeed<'de> for StrippedValue {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> std::result::Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrippedValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> std::result::Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> std::result::Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> std::result::Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> std::result::Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> std::result::Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> std::result::Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(StrippedValue)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == PAYLOAD_FIELD {
                map.next_value::<IgnoredAny>()?;
            } else {
                object.insert(key, map.next_value_seed(StrippedValue)?);
            }
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(queue: Queue, body: &[u8]) -> Result<QueueSnapshot> {
        read_queue(queue, body, 1 << 20, Keep::WhileUnder(1 << 20))
    }

    #[test]
    fn counts_and_keeps_entries_without_payload() {
        let body =
            br#"[{"syncEventId":4,"replica":{"summary":"s","encodedPayload":"eyJ4IjoxfQ=="}},
                       {"syncEventId":5,"encodedPayload":"x"}]"#;
        let s = read(Queue::SyncRequests, body).unwrap();
        assert_eq!(s.count, 2);
        assert!(s.reasons.is_empty());
        let entries = s.entries.unwrap();
        assert_eq!(
            entries[0],
            serde_json::json!({"syncEventId":4,"replica":{"summary":"s"}})
        );
        assert_eq!(entries[1], serde_json::json!({"syncEventId":5}));
    }

    #[test]
    fn tallies_error_reasons() {
        let body = br#"[{"errorReason":"NO_ISSUE_TO_CONNECT_TO","message":"m"},
                       {"errorReason":"NO_ISSUE_TO_CONNECT_TO"},{"errorReason":null},{}]"#;
        let s = read(Queue::ErrorResponses, body).unwrap();
        assert_eq!(s.count, 4);
        assert_eq!(s.reasons["NO_ISSUE_TO_CONNECT_TO"], 2);
        assert_eq!(s.reasons[UNKNOWN_REASON], 2);
        let blob = read(
            Queue::BlobErrorResponses,
            br#"[{"blobErrorReason":"CHECKSUM_MISMATCH"}]"#,
        )
        .unwrap();
        assert_eq!(blob.reasons["CHECKSUM_MISMATCH"], 1);
    }

    #[test]
    fn drops_entries_past_the_keep_limit_but_counts_on() {
        let entry = format!(r#"{{"syncEventId":1,"summary":"{}"}}"#, "a".repeat(1000));
        let body = format!("[{}]", vec![entry; 500].join(","));
        let s = read_queue(
            Queue::SyncRequests,
            body.as_bytes(),
            1 << 20,
            Keep::WhileUnder(100_000),
        )
        .unwrap();
        assert_eq!(s.count, 500);
        assert_eq!(s.entries, None);
        let all = read_queue(Queue::SyncRequests, body.as_bytes(), 1 << 20, Keep::All).unwrap();
        assert_eq!(all.entries.unwrap().len(), 500);
    }

    fn error_of(queue: Queue, body: &[u8]) -> Error {
        read(queue, body).unwrap_err()
    }

    #[test]
    fn rejects_what_is_not_an_array_of_objects() {
        let e = error_of(Queue::SyncRequests, br#"{"error":"unexpected"}"#);
        assert_eq!(e.kind(), ErrorKind::BadResponse);
        assert!(
            e.message()
                .starts_with("unexpected JSON: invalid type: map, expected a JSON array"),
            "{e}"
        );
        let e = error_of(Queue::SyncRequests, br#"[{}, 1]"#);
        assert!(
            e.message().contains("expected entry 1 to be a JSON object"),
            "{e}"
        );
        let e = error_of(Queue::SyncRequests, br#"[{"syncEventId": 1,"#);
        assert!(
            e.message().starts_with("malformed JSON: EOF while parsing"),
            "{e}"
        );
        let e = error_of(Queue::SyncRequests, b"");
        assert!(e.message().starts_with("malformed JSON: EOF"), "{e}");
        let e = error_of(Queue::SyncRequests, b"[] []");
        assert!(
            e.message()
                .starts_with("malformed JSON: trailing characters"),
            "{e}"
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let body = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let e = error_of(Queue::SyncRequests, body.as_bytes());
        assert!(
            e.message().contains("expected entry 0 to be a JSON object"),
            "{e}"
        );
        let body = format!("[{{\"a\":{}{}}}]", "[".repeat(10_000), "]".repeat(10_000));
        let e = read_queue(Queue::SyncRequests, body.as_bytes(), 1 << 20, Keep::All).unwrap_err();
        assert!(e.message().contains("recursion limit exceeded"), "{e}");
        // Counting skips the entry without building it, and survives too.
        let counted = read_queue(
            Queue::SyncRequests,
            body.as_bytes(),
            1 << 20,
            Keep::WhileUnder(0),
        );
        assert!(counted.is_ok() || counted.unwrap_err().message().contains("recursion limit"));
    }

    #[test]
    fn invalid_utf8_is_caught_even_in_skipped_strings() {
        let mut body = br#"[{"summary":""#.to_vec();
        body.extend_from_slice(&[0xff, 0xfe]);
        body.extend_from_slice(br#""}]"#);
        let e =
            read_queue(Queue::SyncRequests, &body[..], 1 << 20, Keep::WhileUnder(0)).unwrap_err();
        assert_eq!(
            e.message(),
            "malformed JSON: the response is not valid UTF-8"
        );
    }

    #[test]
    fn utf8_split_across_reads_is_fine() {
        // A reader that hands out one byte at a time splits every sequence.
        struct OneByte<'a>(&'a [u8]);
        impl Read for OneByte<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let Some((first, rest)) = self.0.split_first() else {
                    return Ok(0);
                };
                buf[0] = *first;
                self.0 = rest;
                Ok(1)
            }
        }
        let body = r#"[{"summary":"Synchronisé ✓ 🚀"}]"#;
        let s = read_queue(
            Queue::SyncRequests,
            OneByte(body.as_bytes()),
            1 << 20,
            Keep::All,
        )
        .unwrap();
        assert_eq!(s.entries.unwrap()[0]["summary"], "Synchronisé ✓ 🚀");
    }

    #[test]
    fn size_cap_is_enforced_while_reading() {
        let body = format!("[{}]", vec!["{}"; 1000].join(","));
        let e = read_queue(Queue::SyncRequests, body.as_bytes(), 100, Keep::All).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TooLarge);
        assert_eq!(
            e.message(),
            "response larger than max_response_bytes (100 bytes)"
        );
        assert!(read_queue(
            Queue::SyncRequests,
            body.as_bytes(),
            body.len() as u64,
            Keep::All
        )
        .is_ok());
    }

    #[test]
    fn queue_names() {
        assert_eq!(
            Queue::parse("bloberrorresponses").unwrap(),
            Queue::BlobErrorResponses
        );
        let e = Queue::parse("errors").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::UnknownQueue);
        assert_eq!(
            e.message(),
            "unknown queue 'errors'; valid queues: syncrequests, blobrequests, syncresponses, blobresponses, errorresponses, bloberrorresponses"
        );
    }
}
