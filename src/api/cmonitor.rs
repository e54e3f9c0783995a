//! The customer monitor endpoint that Exalate support enables on request
//! (`cmonitor_url`, e.g. `<node>/rest/issuehub/4.0/cmonitor`), with its own
//! credentials (Basic or Bearer, never the node's JWT secret): its answer,
//! `{"numErrors": N}`.

use super::{count_field, parse_json, read_within, Call};
use crate::auth::Credentials;
use crate::error::Result;

/// The most the endpoint's answer may be: it is one small object.
const MAX_ANSWER_BYTES: u64 = 64 * 1024;
/// The answer's shape, for messages.
const EXPECTED: &str = "{\"numErrors\": N}";

/// `numErrors` of the endpoint at `url`, asked now.
pub(crate) fn num_errors(
    call: &Call<'_>,
    url: &str,
    credentials: &Credentials,
    max_response_bytes: u64,
) -> Result<u64> {
    let (name, value) = credentials.header()?;
    let mut response = call
        .http
        .get(url, (name, value.as_str()), call.remaining()?)?;
    drop(value);
    if response.status != 200 {
        return Err(call.status_error(
            &mut response,
            (name, "cmonitor_url"),
            &credentials.rejection_hint(),
            (
                "no customer monitor endpoint at cmonitor_url",
                "check the URL Exalate support gave",
            ),
        ));
    }
    let max = MAX_ANSWER_BYTES.min(max_response_bytes);
    let body = read_within(&mut response, max, &format!("an answer {EXPECTED}"))?;
    parse_num_errors(&body)
}

/// `numErrors` of the endpoint's answer: a JSON object whose `numErrors`
/// is a non-negative integer; anything else says what it is instead.
fn parse_num_errors(body: &[u8]) -> Result<u64> {
    count_field(&parse_json(body)?, "numErrors", EXPECTED)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn num_errors_or_what_the_answer_is_instead() {
        assert_eq!(parse_num_errors(br#"{"numErrors": 0}"#).unwrap(), 0);
        assert_eq!(
            parse_num_errors(br#"{"other":"x","numErrors":17}"#).unwrap(),
            17
        );
        let e = |body: &[u8]| {
            let e = parse_num_errors(body).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::BadResponse);
            e.message().to_string()
        };
        assert!(e(b"{\"numErrors\": ").starts_with("malformed JSON: EOF"));
        assert!(e(b"<html>").starts_with("malformed JSON: expected value"));
        assert_eq!(
            e(b"{\"numErrors\":\"\xff\"}"),
            "malformed JSON: the response is not valid UTF-8"
        );
        assert_eq!(
            e(b"{}"),
            "unexpected JSON: no numErrors, expected {\"numErrors\": N}"
        );
        assert_eq!(
            e(br#"{"numErrors":"3"}"#),
            "unexpected JSON: numErrors is a string, not a non-negative integer, expected {\"numErrors\": N}"
        );
        assert!(e(br#"{"numErrors":-1}"#).contains("numErrors is a number, not a non-negative"));
        assert!(e(br#"{"numErrors":1.5}"#).contains("numErrors is a number, not a non-negative"));
        assert!(e(br#"{"numErrors":null}"#).contains("numErrors is null"));
        assert_eq!(
            e(b"[1]"),
            "unexpected JSON: an array, expected {\"numErrors\": N}"
        );
    }
}
