//! The customer monitor endpoint that Exalate support enables on request
//! (`cmonitor_url`, e.g. `<node>/rest/issuehub/4.0/cmonitor`): its own
//! credentials (HTTP Basic or a bearer token, each read from its file with
//! the rules of every secret file, never the node's JWT secret) and its
//! answer, `{"numErrors": N}`.

use crate::config::CmonitorAuth;
use crate::error::{Error, ErrorKind, Result};
use crate::fs::read_secret_file;
use crate::lock::lock;
use crate::secret::Secret;
use std::sync::Mutex;

/// The most the endpoint's answer may be: it is one small object.
pub(crate) const MAX_ANSWER_BYTES: u64 = 64 * 1024;

/// Secrets remembered for scrubbing (passwords, tokens and their Basic
/// encodings); the oldest go first.
const MAX_KNOWN: usize = 16;

/// The customer monitor's credentials of one node.
pub(crate) struct CmonitorCredentials {
    auth: CmonitorAuth,
    known_secrets: Mutex<Vec<Secret>>,
}

impl CmonitorCredentials {
    pub(crate) fn new(auth: CmonitorAuth) -> CmonitorCredentials {
        CmonitorCredentials {
            auth,
            known_secrets: Mutex::new(Vec::new()),
        }
    }

    /// The `Authorization` header's value, its file read now (a changed
    /// password or token takes effect at once). The secret, and for Basic
    /// its encoding as sent, are remembered for redaction first.
    pub(crate) fn authorization(&self) -> Result<Secret> {
        match &self.auth {
            CmonitorAuth::Basic {
                user,
                password_file,
            } => {
                let password = read_secret_file("cmonitor_password_file", password_file)?;
                self.remember(&password);
                let pair = Secret::new(format!("{user}:{}", password.as_str()));
                let encoded = Secret::new(base64(pair.as_str().as_bytes()));
                self.remember(&encoded);
                Ok(Secret::new(format!("Basic {}", encoded.as_str())))
            }
            CmonitorAuth::Bearer { token_file } => {
                let token = read_secret_file("cmonitor_token_file", token_file)?;
                self.remember(&token);
                Ok(Secret::new(format!("Bearer {}", token.as_str())))
            }
        }
    }

    /// What to check after a 401, naming files, never their content.
    pub(crate) fn rejection_hint(&self) -> String {
        match &self.auth {
            CmonitorAuth::Basic { password_file, .. } => format!(
                "check cmonitor_user and the password in cmonitor_password_file {}",
                password_file.display()
            ),
            CmonitorAuth::Bearer { token_file } => format!(
                "check the token in cmonitor_token_file {}",
                token_file.display()
            ),
        }
    }

    /// Every password and token this process sent, and their encodings.
    pub(crate) fn known_secrets(&self) -> Vec<Secret> {
        lock(&self.known_secrets).clone()
    }

    fn remember(&self, secret: &Secret) {
        let mut known = lock(&self.known_secrets);
        if !known.iter().any(|k| k == secret) {
            if known.len() >= MAX_KNOWN {
                known.remove(0);
            }
            known.push(secret.clone());
        }
    }
}

/// `numErrors` of the endpoint's answer: a JSON object whose `numErrors`
/// is a non-negative integer; anything else says what it is instead.
pub(crate) fn parse_num_errors(body: &[u8]) -> Result<u64> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        let what = if std::str::from_utf8(body).is_err() {
            "the response is not valid UTF-8".to_string()
        } else {
            e.to_string()
        };
        Error::new(ErrorKind::BadResponse, format!("malformed JSON: {what}"))
    })?;
    let unexpected = |what: &str| {
        Error::new(
            ErrorKind::BadResponse,
            format!("unexpected JSON: {what}, expected {{\"numErrors\": N}}"),
        )
    };
    let Some(object) = value.as_object() else {
        return Err(unexpected(kind_of(&value)));
    };
    match object.get("numErrors") {
        None => Err(unexpected("no numErrors")),
        Some(n) => n.as_u64().ok_or_else(|| {
            unexpected(&format!(
                "numErrors is {}, not a non-negative integer",
                kind_of(n)
            ))
        }),
    }
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

/// Standard base64 with padding, as HTTP Basic wants it.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::tests::temp_file;

    #[test]
    fn base64_as_rfc_4648() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
            ("Aladdin:open sesame", "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain}");
        }
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
    }

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

    #[test]
    fn basic_and_bearer_from_their_files_remembered_for_redaction() {
        let password_file = temp_file("pw", " open sesame\n", 0o640);
        let basic = CmonitorCredentials::new(CmonitorAuth::Basic {
            user: "Aladdin".into(),
            password_file,
        });
        assert_eq!(
            basic.authorization().unwrap().as_str(),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        let known = basic.known_secrets();
        let known = crate::secret::texts(&known);
        assert!(known.contains(&"open sesame"), "{known:?}");
        assert!(known.contains(&"QWxhZGRpbjpvcGVuIHNlc2FtZQ=="));
        let token_file = temp_file("token", "tok-123\n", 0o600);
        let bearer = CmonitorCredentials::new(CmonitorAuth::Bearer { token_file });
        assert_eq!(bearer.authorization().unwrap().as_str(), "Bearer tok-123");
        assert!(bearer
            .rejection_hint()
            .starts_with("check the token in cmonitor_token_file"));
        // The rules of every secret file: others must not read it.
        let open = temp_file("open", "x", 0o644);
        let e = CmonitorCredentials::new(CmonitorAuth::Bearer { token_file: open })
            .authorization()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().starts_with("cmonitor_token_file "), "{e}");
        assert!(
            e.message().contains("is readable by others (mode 0644)"),
            "{e}"
        );
    }
}
