//! Queue response parsing (`read_queue`) on arbitrary bodies, checked
//! against serde_json's own parse: no panic, no stack overflow; a success
//! means the body is a JSON array of objects within max_bytes, with the same
//! count, reasons, oldest event and (payload-free) entries; a body
//! serde_json reads as such an array (not too deep) must succeed.
//!
//! Input: byte 0 picks the queue (mod 6), the keep mode (bit 3) and a small
//! max_bytes (bit 4); the rest is the body.
#![no_main]

use exalate_zabbix::queue::{read_queue, KeepText, Queue, UNKNOWN_REASON};
use exalate_zabbix::ErrorKind;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use std::collections::BTreeMap;

fn strip_payload(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| k.as_str() != "encodedPayload")
                .map(|(k, v)| (k.clone(), strip_payload(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_payload).collect()),
        other => other.clone(),
    }
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let queue = Queue::ALL[(selector % 6) as usize];
    let keep = if selector & 0x08 != 0 {
        KeepText::All
    } else {
        KeepText::WhileUnder(64)
    };
    let max = if selector & 0x10 != 0 { 128 } else { 1 << 20 };
    let got = read_queue(queue, body, max, keep);

    // What serde_json makes of the body: an array of objects, or not.
    let parsed = serde_json::from_slice::<Value>(body);
    // Counting skips entries without building them, so a number beyond f64
    // (valid JSON, which serde_json refuses to build) is fine there.
    let out_of_range = parsed
        .as_ref()
        .is_err_and(|e| e.to_string().starts_with("number out of range"));
    let reference = parsed.ok().and_then(|v| match v {
        Value::Array(a) if a.iter().all(Value::is_object) => Some(a),
        _ => None,
    });
    match got {
        Ok(snapshot) => {
            assert!(body.len() as u64 <= max, "read past max_bytes");
            if out_of_range && snapshot.text.is_none() {
                return;
            }
            let entries =
                reference.expect("accepted what serde_json does not read as an array of objects");
            assert_eq!(snapshot.count, entries.len() as u64);
            // The oldest event: the smallest syncEventId that is a u64 (serde_json
            // keeps the last of duplicate keys, as the parser does), 0 when none.
            let oldest = entries
                .iter()
                .filter_map(|e| e.get("syncEventId").and_then(Value::as_u64))
                .min()
                .unwrap_or(0);
            assert_eq!(snapshot.oldest_event_id, oldest);
            if let Some(field) = queue.reason_field() {
                let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
                for e in &entries {
                    let reason = match &e[field] {
                        Value::String(s) if !s.is_empty() => s.clone(),
                        _ => UNKNOWN_REASON.to_string(),
                    };
                    *reasons.entry(reason).or_insert(0) += 1;
                }
                assert_eq!(snapshot.reasons, reasons);
            } else {
                assert!(snapshot.reasons.is_empty());
            }
            match (&snapshot.text, keep) {
                (None, KeepText::All) => panic!("KeepText::All kept nothing"),
                (None, _) => {}
                (Some(text), _) => {
                    let kept: Vec<Value> =
                        serde_json::from_str(text).expect("the kept text is a JSON array");
                    let expected: Vec<Value> = entries.iter().map(strip_payload).collect();
                    assert_eq!(kept, expected);
                }
            }
        }
        Err(e) => {
            assert!(
                matches!(e.kind(), ErrorKind::BadResponse | ErrorKind::TooLarge),
                "{:?}: {}",
                e.kind(),
                e.message()
            );
            assert!(
                !e.message().chars().any(char::is_control),
                "{}",
                e.message()
            );
            if let Some(entries) = reference {
                let deep = entries.iter().map(depth).max().unwrap_or(0);
                assert!(
                    body.len() as u64 > max || deep > 100,
                    "refused an array of objects: {}",
                    e.message()
                );
            }
        }
    }
});
