//! The streaming parser of a queue's answer.
//!
//! A queue answer is a JSON array that can hold hundreds of thousands of
//! entries, each with a large `encodedPayload`. The parser reads it straight
//! from the socket: it counts entries and tallies error reasons without
//! building them, keeps the entries themselves (payload dropped while
//! parsing) only while the answer is small, enforces the size cap as it
//! reads, and checks that the answer is UTF-8.

use super::Queue;
use crate::error::{Error, ErrorKind, Redactor, Result};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The reason tallied for an error entry without one.
pub const UNKNOWN_REASON: &str = "UNKNOWN";
/// Where reasons past [`MAX_REASONS`] distinct ones are tallied.
pub(crate) const OTHER_REASONS: &str = "OTHER";
/// Distinct error reasons kept per queue: a hostile node cannot grow the
/// tally (and the stats value) with the number of entries.
pub(crate) const MAX_REASONS: usize = 64;
/// Longer reasons are cut to this many bytes (at a character boundary).
pub(crate) const MAX_REASON_BYTES: usize = 200;
/// The entry field dropped from `queue.get` text.
const PAYLOAD_FIELD: &str = "encodedPayload";
/// The entry field that numbers its event: the smallest is the oldest.
const EVENT_ID_FIELD: &str = "syncEventId";

/// What one fetch of a queue tells.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueueSnapshot {
    /// Entries in the queue.
    pub count: u64,
    /// Error reason -> entries (error queues only).
    pub reasons: BTreeMap<String, u64>,
    /// The smallest numeric `syncEventId` of the entries (the oldest event
    /// still waiting); 0 when the queue is empty or no entry has one.
    pub oldest_event_id: u64,
    /// The entries as a JSON array without `encodedPayload`, written while
    /// parsing; None when the answer was too large to keep (see [`KeepText`]).
    pub text: Option<Arc<String>>,
}

impl QueueSnapshot {
    /// Heap bytes this snapshot holds, for the cache's budget.
    pub(crate) fn heap_bytes(&self) -> usize {
        const NODE_OVERHEAD: usize = 48;
        self.text.as_ref().map_or(0, |t| t.len())
            + self
                .reasons
                .keys()
                .map(|r| r.capacity() + NODE_OVERHEAD)
                .sum::<usize>()
    }
}

/// How much of the answer a fetch keeps as `queue.get` text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepText {
    /// Keep the text while the answer read so far is under this many bytes;
    /// past it, drop it and only count (memory stays flat).
    WhileUnder(u64),
    /// Keep all of it (the answer is capped by max_response_bytes anyway).
    All,
}

/// Parses a queue answer from `body`, reading at most `max_bytes`.
pub fn read_queue(
    queue: Queue,
    body: impl Read,
    max_bytes: u64,
    keep: KeepText,
) -> Result<QueueSnapshot> {
    read_queue_redacted(queue, body, max_bytes, keep, None, None)
}

/// As [`read_queue`], each error reason redacted by `redactor` before it is
/// cut to [`MAX_REASON_BYTES`]: a cut token no longer matches itself. Once
/// `keep_all` is set (a `queue.get` joined this fetch while it was under
/// way), [`KeepText::WhileUnder`] keeps all the text, if it still has it.
pub(crate) fn read_queue_redacted(
    queue: Queue,
    body: impl Read,
    max_bytes: u64,
    keep: KeepText,
    redactor: Option<&Redactor>,
    keep_all: Option<&AtomicBool>,
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
        redactor,
        keep_all,
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
            crate::error::io_error(&io)
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

struct QueueVisitor<'r> {
    queue: Queue,
    consumed: Rc<Cell<u64>>,
    keep: KeepText,
    redactor: Option<&'r Redactor>,
    keep_all: Option<&'r AtomicBool>,
}

impl<'de> Visitor<'de> for QueueVisitor<'_> {
    type Value = QueueSnapshot;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON array of queue entries")
    }

    fn visit_seq<A: SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<QueueSnapshot, A::Error> {
        let reason_field = self.queue.reason_field();
        let mut count = 0u64;
        let mut reasons = BTreeMap::new();
        let mut oldest: Option<u64> = None;
        let mut text = Some(TextWriter::default());
        if let Some(out) = text.as_mut() {
            out.push(b'[');
        }
        loop {
            let keeping = match self.keep {
                KeepText::All => true,
                KeepText::WhileUnder(_)
                    if self.keep_all.is_some_and(|k| k.load(Ordering::Relaxed)) =>
                {
                    true
                }
                KeepText::WhileUnder(limit) => self.consumed.get() < limit,
            };
            if !keeping {
                text = None;
            }
            let seed = EntrySeed {
                reason_field,
                out: text.as_mut(),
                index: count,
            };
            let Some(entry) = seq.next_element_seed(seed)? else {
                break;
            };
            count += 1;
            if let Some(id) = entry.event_id {
                oldest = Some(oldest.map_or(id, |o| o.min(id)));
            }
            if let Some(mut reason) = entry.reason {
                if let Some(clean) = self.redactor.and_then(|r| r.redact(&reason)) {
                    reason = clean;
                }
                tally(&mut reasons, reason);
            }
        }
        let text = text.map(|mut out| {
            out.push(b']');
            Arc::new(out.finish())
        });
        Ok(QueueSnapshot {
            count,
            reasons,
            oldest_event_id: oldest.unwrap_or(0),
            text,
        })
    }
}

/// Counts one entry under its reason, within [`MAX_REASONS`] and [`MAX_REASON_BYTES`].
fn tally(reasons: &mut BTreeMap<String, u64>, mut reason: String) {
    if reason.len() > MAX_REASON_BYTES {
        let mut cut = MAX_REASON_BYTES;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
    }
    if let Some(n) = reasons.get_mut(&reason) {
        *n += 1;
    } else if reasons.len() < MAX_REASONS {
        reasons.insert(reason, 1);
    } else {
        *reasons.entry(OTHER_REASONS.to_string()).or_insert(0) += 1;
    }
}

/// What the parser keeps of one entry: nothing of its size.
struct EntryFacts {
    /// Its error reason (error queues only).
    reason: Option<String>,
    /// Its `syncEventId`, when that is a non-negative integer.
    event_id: Option<u64>,
}

/// One entry: gives its reason (error queues) and its `syncEventId` and,
/// with `out`, writes it there as JSON without `encodedPayload`.
struct EntrySeed<'a> {
    reason_field: Option<&'static str>,
    out: Option<&'a mut TextWriter>,
    index: u64,
}

impl<'de> DeserializeSeed<'de> for EntrySeed<'_> {
    type Value = EntryFacts;
    /// Called only when there is an entry: the place for its comma.
    fn deserialize<D: de::Deserializer<'de>>(
        mut self,
        d: D,
    ) -> std::result::Result<EntryFacts, D::Error> {
        if let (Some(out), true) = (self.out.as_deref_mut(), self.index > 0) {
            out.push(b',');
        }
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for EntrySeed<'_> {
    type Value = EntryFacts;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "entry {} to be a JSON object", self.index)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<EntryFacts, A::Error> {
        let mut reason = None;
        let mut event_id = None;
        let mut out = self.out;
        if let Some(out) = out.as_deref_mut() {
            out.push(b'{');
        }
        let mut first = true;
        while let Some(key) = map.next_key::<String>()? {
            let want = if self.reason_field == Some(key.as_str()) {
                Want::Str
            } else if key == EVENT_ID_FIELD {
                Want::Id
            } else {
                Want::Nothing
            };
            let taken = match out.as_deref_mut() {
                Some(out) if key != PAYLOAD_FIELD => {
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    out.write_json_str(&key);
                    out.push(b':');
                    map.next_value_seed(StrippedWriter {
                        out: Some(out),
                        want,
                        comma: false,
                    })?
                }
                _ if want != Want::Nothing => map.next_value_seed(StrippedWriter {
                    out: None,
                    want,
                    comma: false,
                })?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    Taken::Nothing
                }
            };
            match (want, taken) {
                (Want::Str, Taken::Str(r)) => reason = Some(Some(r)),
                (Want::Str, _) => reason = Some(None),
                (Want::Id, Taken::Id(id)) => event_id = Some(id),
                (Want::Id, _) => event_id = None,
                _ => {}
            }
        }
        if let Some(out) = out {
            out.push(b'}');
        }
        Ok(EntryFacts {
            reason: self.reason_field.map(|_| match reason.flatten() {
                Some(r) if !r.is_empty() => r,
                _ => UNKNOWN_REASON.to_string(),
            }),
            event_id,
        })
    }
}

/// What a [`StrippedWriter`] gives back of the value it wrote.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    Nothing,
    /// A string (an error reason).
    Str,
    /// A non-negative integer (a `syncEventId`).
    Id,
}

/// The value a [`StrippedWriter`] was asked for, when it was of that kind.
enum Taken {
    Nothing,
    Str(String),
    Id(u64),
}

/// Writes any JSON value to `out` (when given) without any `encodedPayload`
/// field at any depth, so the text never holds a payload even for a moment.
/// Gives the value back when it is of the kind `want` asks for.
struct StrippedWriter<'a> {
    out: Option<&'a mut TextWriter>,
    want: Want,
    /// An array element after the first: its comma goes first.
    comma: bool,
}

impl<'de> DeserializeSeed<'de> for StrippedWriter<'_> {
    type Value = Taken;
    /// Called only when there is a value: the place for its comma.
    fn deserialize<D: de::Deserializer<'de>>(
        mut self,
        d: D,
    ) -> std::result::Result<Taken, D::Error> {
        if let (Some(out), true) = (self.out.as_deref_mut(), self.comma) {
            out.push(b',');
        }
        d.deserialize_any(self)
    }
}

impl StrippedWriter<'_> {
    /// Writes a scalar as serde_json writes it, straight into the text.
    fn json(self, v: &impl serde::Serialize) -> Taken {
        if let Some(out) = self.out {
            serde_json::to_writer(&mut *out, v).expect("writing to memory cannot fail");
        }
        Taken::Nothing
    }
}

impl<'de> Visitor<'de> for StrippedWriter<'_> {
    type Value = Taken;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> std::result::Result<Taken, E> {
        Ok(self.json(&v))
    }
    fn visit_i64<E>(self, v: i64) -> std::result::Result<Taken, E> {
        Ok(self.json(&v))
    }
    fn visit_u64<E>(self, v: u64) -> std::result::Result<Taken, E> {
        let id = self.want == Want::Id;
        let written = self.json(&v);
        Ok(if id { Taken::Id(v) } else { written })
    }
    fn visit_f64<E>(self, v: f64) -> std::result::Result<Taken, E> {
        Ok(self.json(&v))
    }
    fn visit_str<E>(self, v: &str) -> std::result::Result<Taken, E> {
        if let Some(out) = self.out {
            out.write_json_str(v);
        }
        Ok(match self.want {
            Want::Str => Taken::Str(v.to_string()),
            _ => Taken::Nothing,
        })
    }
    fn visit_unit<E>(self) -> std::result::Result<Taken, E> {
        Ok(self.json(&()))
    }
    fn visit_none<E>(self) -> std::result::Result<Taken, E> {
        Ok(self.json(&()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Taken, A::Error> {
        let Some(out) = self.out else {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(Taken::Nothing);
        };
        out.push(b'[');
        let mut first = true;
        while seq
            .next_element_seed(StrippedWriter {
                out: Some(&mut *out),
                want: Want::Nothing,
                comma: !first,
            })?
            .is_some()
        {
            first = false;
        }
        out.push(b']');
        Ok(Taken::Nothing)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Taken, A::Error> {
        let Some(out) = self.out else {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(Taken::Nothing);
        };
        out.push(b'{');
        let mut first = true;
        while let Some(key) = map.next_key::<String>()? {
            if key == PAYLOAD_FIELD {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            out.write_json_str(&key);
            out.push(b':');
            map.next_value_seed(StrippedWriter {
                out: Some(&mut *out),
                want: Want::Nothing,
                comma: false,
            })?;
        }
        out.push(b'}');
        Ok(Taken::Nothing)
    }
}

/// The `queue.get` text as it is written: in chunks, so that growing it
/// never copies what is written, and joined once at the end into a string
/// of the exact size (peak: twice the text, never more).
#[derive(Default)]
struct TextWriter {
    chunks: Vec<Vec<u8>>,
    len: usize,
}

const TEXT_CHUNK_BYTES: usize = 64 * 1024;

impl TextWriter {
    fn push(&mut self, byte: u8) {
        self.extend(&[byte]);
    }

    fn extend(&mut self, mut bytes: &[u8]) {
        self.len += bytes.len();
        while !bytes.is_empty() {
            match self.chunks.last_mut() {
                Some(chunk) if chunk.len() < chunk.capacity() => {
                    let n = bytes.len().min(chunk.capacity() - chunk.len());
                    chunk.extend_from_slice(&bytes[..n]);
                    bytes = &bytes[n..];
                }
                _ => self.chunks.push(Vec::with_capacity(TEXT_CHUNK_BYTES)),
            }
        }
    }

    fn write_json_str(&mut self, s: &str) {
        serde_json::to_writer(&mut *self, s).expect("writing to memory cannot fail");
    }

    fn finish(self) -> String {
        let mut bytes = Vec::with_capacity(self.len);
        for chunk in self.chunks {
            bytes.extend_from_slice(&chunk);
        }
        String::from_utf8(bytes).expect("serde_json writes UTF-8")
    }
}

impl io::Write for TextWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.extend(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn read(queue: Queue, body: &[u8]) -> Result<QueueSnapshot> {
        read_queue(queue, body, 1 << 20, KeepText::WhileUnder(1 << 20))
    }

    #[test]
    fn counts_and_keeps_entries_without_payload() {
        let body =
            br#"[{"syncEventId":4,"replica":{"summary":"s","encodedPayload":"eyJ4IjoxfQ=="}},
                       {"syncEventId":5,"encodedPayload":"x"}]"#;
        let s = read(Queue::SyncRequests, body).unwrap();
        assert_eq!(s.count, 2);
        assert!(s.reasons.is_empty());
        assert_eq!(
            &*s.text.unwrap(),
            r#"[{"syncEventId":4,"replica":{"summary":"s"}},{"syncEventId":5}]"#
        );
    }

    #[test]
    fn oldest_event_id_is_the_smallest_numeric_sync_event_id() {
        let oldest = |queue: Queue, body: &str| {
            let counted = read_queue(queue, body.as_bytes(), 1 << 20, KeepText::WhileUnder(0));
            let kept = read_queue(queue, body.as_bytes(), 1 << 20, KeepText::All);
            let (counted, kept) = (counted.unwrap(), kept.unwrap());
            assert_eq!(counted.oldest_event_id, kept.oldest_event_id, "{body}");
            counted.oldest_event_id
        };
        assert_eq!(oldest(Queue::SyncRequests, "[]"), 0, "empty");
        assert_eq!(
            oldest(
                Queue::SyncRequests,
                r#"[{"syncEventId":55},{"syncEventId":4},{"syncEventId":1000000000000}]"#
            ),
            4,
            "unordered"
        );
        // Missing, null, negative, fractional, string or nested ids are skipped;
        // a syncEventId inside a nested object is not the entry's.
        assert_eq!(
            oldest(
                Queue::BlobResponses,
                r#"[{"blobEventId":1},{"syncEventId":null},{"syncEventId":-3},{"syncEventId":2.5},
                    {"syncEventId":"7"},{"replica":{"syncEventId":1}},{"syncEventId":[1]},
                    {"syncEventId":{"a":1}},{"syncEventId":9,"encodedPayload":"x"}]"#
            ),
            9
        );
        assert_eq!(
            oldest(Queue::SyncResponses, r#"[{"syncEventId":"1"},{}]"#),
            0,
            "none numeric"
        );
        // In error queues beside the reason; the text is unchanged by it.
        let body = r#"[{"syncEventId":49,"errorReason":"NO_ISSUE_TO_CONNECT_TO"},{"errorReason":"X","syncEventId":12}]"#;
        let s = read_queue(
            Queue::ErrorResponses,
            body.as_bytes(),
            1 << 20,
            KeepText::All,
        )
        .unwrap();
        assert_eq!(s.oldest_event_id, 12);
        assert_eq!(s.reasons["NO_ISSUE_TO_CONNECT_TO"], 1);
        assert_eq!(s.reasons["X"], 1);
        assert_eq!(&*s.text.unwrap(), body);
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
            KeepText::WhileUnder(100_000),
        )
        .unwrap();
        assert_eq!(s.count, 500);
        assert_eq!(s.text, None);
        let all = read_queue(Queue::SyncRequests, body.as_bytes(), 1 << 20, KeepText::All).unwrap();
        assert_eq!(*all.text.unwrap(), body);
    }

    #[test]
    fn text_is_the_answer_without_payloads_at_any_depth() {
        let body = r#"[ {"a":[1,-2,3.5,true,false,null,"x\"\u00e9"],"encodedPayload":"p",
            "b":{"encodedPayload":{"deep":1},"c":[{"encodedPayload":2,"d":[]}]},"e":{}},{} ]"#;
        let s = read_queue(
            Queue::ErrorResponses,
            body.as_bytes(),
            1 << 20,
            KeepText::All,
        )
        .unwrap();
        let text = s.text.unwrap();
        assert_eq!(
            &*text,
            r#"[{"a":[1,-2,3.5,true,false,null,"x\"é"],"b":{"c":[{"d":[]}]},"e":{}},{}]"#
        );
        // The same as serde_json's own reading, payloads stripped.
        let reread: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(reread[0]["a"][6], "x\"é");
        assert_eq!(s.count, 2);
        assert_eq!(s.reasons[UNKNOWN_REASON], 2);
        assert_eq!(
            &*read(Queue::SyncRequests, b"[]").unwrap().text.unwrap(),
            "[]"
        );
    }

    #[test]
    fn reasons_are_bounded_in_number_and_length() {
        let mut body = String::from("[");
        for i in 0..(MAX_REASONS + 36) {
            body.push_str(&format!(r#"{{"errorReason":"R{i}"}},"#));
        }
        body.push_str(&format!(r#"{{"errorReason":"{}"}}]"#, "é".repeat(300)));
        let s = read_queue(
            Queue::ErrorResponses,
            body.as_bytes(),
            1 << 20,
            KeepText::WhileUnder(0),
        )
        .unwrap();
        assert_eq!(s.count, MAX_REASONS as u64 + 37);
        assert_eq!(s.reasons.len(), MAX_REASONS + 1);
        assert_eq!(s.reasons[OTHER_REASONS], 37);
        assert!(s.reasons.keys().all(|r| r.len() <= MAX_REASON_BYTES));
        assert_eq!(s.text, None);
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
        let e =
            read_queue(Queue::SyncRequests, body.as_bytes(), 1 << 20, KeepText::All).unwrap_err();
        assert!(e.message().contains("recursion limit exceeded"), "{e}");
        // Counting skips the entry without building it, and survives too.
        let counted = read_queue(
            Queue::SyncRequests,
            body.as_bytes(),
            1 << 20,
            KeepText::WhileUnder(0),
        );
        assert!(counted.is_ok() || counted.unwrap_err().message().contains("recursion limit"));
    }

    #[test]
    fn invalid_utf8_is_caught_even_in_skipped_strings() {
        let mut body = br#"[{"summary":""#.to_vec();
        body.extend_from_slice(&[0xff, 0xfe]);
        body.extend_from_slice(br#""}]"#);
        let e = read_queue(
            Queue::SyncRequests,
            &body[..],
            1 << 20,
            KeepText::WhileUnder(0),
        )
        .unwrap_err();
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
            KeepText::All,
        )
        .unwrap();
        assert_eq!(&*s.text.unwrap(), body);
    }

    #[test]
    fn size_cap_is_enforced_while_reading() {
        let body = format!("[{}]", vec!["{}"; 1000].join(","));
        let e = read_queue(Queue::SyncRequests, body.as_bytes(), 100, KeepText::All).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TooLarge);
        assert_eq!(
            e.message(),
            "response larger than max_response_bytes (100 bytes)"
        );
        assert!(read_queue(
            Queue::SyncRequests,
            body.as_bytes(),
            body.len() as u64,
            KeepText::All
        )
        .is_ok());
    }
}
