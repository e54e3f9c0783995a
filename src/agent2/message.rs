//! The JSON messages of agent 2's plugin protocol (reference §4-5): what the
//! agent sends, decoded leniently (unknown fields ignored, missing ones
//! empty, as Go's encoding/json does), and what the plugin answers.

use serde::Deserialize;
use serde_json::{json, Value};

/// Message types (`type`), reference §4.
pub mod kind {
    /// A log line for the agent's log (plugin to agent).
    pub const LOG: u32 = 1;
    /// The agent asks for the plugin's name and keys.
    pub const REGISTER_REQUEST: u32 = 2;
    /// The plugin's name, keys and interfaces.
    pub const REGISTER_RESPONSE: u32 = 3;
    /// The agent starts the plugin (operational run).
    pub const START_REQUEST: u32 = 4;
    /// The agent stops the plugin.
    pub const TERMINATE_REQUEST: u32 = 5;
    /// The agent asks for an item's value.
    pub const EXPORT_REQUEST: u32 = 6;
    /// An item's value or error.
    pub const EXPORT_RESPONSE: u32 = 7;
    /// The agent's global options and the plugin's own.
    pub const CONFIGURE_REQUEST: u32 = 8;
    /// The agent asks whether the plugin's options are valid.
    pub const VALIDATE_REQUEST: u32 = 9;
    /// The plugin's answer to validate.
    pub const VALIDATE_RESPONSE: u32 = 10;
}

/// Interface bits of the register response: answers exports, and gets its
/// `Plugins.Exalate.*` options (validate, configure) and the agent's Timeout.
pub(crate) const EXPORTER: u32 = 1;
pub(crate) const CONFIGURATOR: u32 = 2;

/// Log severities (reference §5.1); the protocol's whole set, not all sent.
#[allow(dead_code)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Severity {
    Info = 0,
    Crit = 1,
    Err = 2,
    Warning = 3,
    Debug = 4,
}

/// Every field any agent request carries; each message type reads its own.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Request {
    pub(crate) id: u32,
    #[serde(rename = "type")]
    pub(crate) kind: u32,
    /// Register: the agent's protocol version.
    pub(crate) version: String,
    /// Export: the bare item key.
    pub(crate) key: String,
    /// Export: the key's parameters; absent when the key has no `[...]`.
    pub(crate) parameters: Option<Vec<String>>,
    /// Export (7.0 and later): the item's timeout in seconds.
    pub(crate) timeout: Option<Value>,
    /// Configure: the agent's Timeout (and SourceIP).
    pub(crate) global_options: Option<GlobalOptions>,
    /// Validate, configure: the `Plugins.Exalate.*` subtree.
    pub(crate) private_options: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct GlobalOptions {
    #[serde(rename = "Timeout", alias = "timeout")]
    pub(crate) timeout: Option<Value>,
}

impl Request {
    pub(crate) fn parse(json: &[u8]) -> serde_json::Result<Request> {
        serde_json::from_slice(json)
    }

    /// The export's item timeout in whole seconds, when the agent gave one.
    pub(crate) fn item_timeout(&self) -> Option<u64> {
        self.timeout.as_ref().and_then(seconds)
    }
}

impl GlobalOptions {
    pub(crate) fn timeout(&self) -> Option<u64> {
        self.timeout.as_ref().and_then(seconds)
    }
}

/// A positive number of seconds, as a JSON number or numeric string.
fn seconds(value: &Value) -> Option<u64> {
    let n = match value {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    (n >= 1.0).then(|| n.min(3600.0) as u64)
}

/// The register response: the plugin's name and its keys with descriptions.
pub(crate) fn register_response(id: u32, name: &str, metrics: &[(&str, &str)]) -> Value {
    let flat: Vec<&str> = metrics.iter().flat_map(|(k, d)| [*k, *d]).collect();
    json!({
        "id": id,
        "type": kind::REGISTER_RESPONSE,
        "name": name,
        "metrics": flat,
        "interfaces": EXPORTER | CONFIGURATOR,
    })
}

/// The validate response: our options never stop the agent from starting.
pub(crate) fn validate_response(id: u32) -> Value {
    json!({"id": id, "type": kind::VALIDATE_RESPONSE})
}

/// An export's answer: always a JSON string value, or an error text.
pub(crate) fn export_response(id: u32, answer: Result<String, String>) -> Value {
    match answer {
        Ok(value) => json!({"id": id, "type": kind::EXPORT_RESPONSE, "value": value}),
        Err(error) => json!({"id": id, "type": kind::EXPORT_RESPONSE, "error": error}),
    }
}

/// A line for the agent's log; plugin-initiated messages carry id 0.
pub(crate) fn log(severity: Severity, message: &str) -> Value {
    json!({"id": 0, "type": kind::LOG, "severity": severity as u32, "message": message})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_request_of_each_agent() {
        for version in ["1.0", "6.0.13", "6.4.0"] {
            let text = format!(r#"{{"id":1,"type":2,"version":"{version}"}}"#);
            let r = Request::parse(text.as_bytes()).unwrap();
            assert_eq!((r.id, r.kind, r.version.as_str()), (1, 2, version));
        }
    }

    #[test]
    fn export_requests_of_6_0_and_7_0() {
        let r = Request::parse(
            br#"{"id":2,"type":6,"key":"exalate.queue.count","parameters":["a","b,c",""]}"#,
        )
        .unwrap();
        assert_eq!(
            (r.id, r.kind, r.key.as_str()),
            (2, 6, "exalate.queue.count")
        );
        assert_eq!(r.parameters.as_deref().unwrap(), ["a", "b,c", ""]);
        assert_eq!(r.item_timeout(), None);

        let r =
            Request::parse(br#"{"id":4,"type":6,"key":"exalate.discovery","timeout":4}"#).unwrap();
        assert_eq!(r.parameters, None, "no [...]: no parameters");
        assert_eq!(r.item_timeout(), Some(4));
    }

    #[test]
    fn configure_and_validate_requests() {
        let r = Request::parse(
            br#"{"id":1,"type":8,"global_options":{"Timeout":7,"SourceIP":""},"private_options":{"Name":"Exalate","Line":3}}"#,
        )
        .unwrap();
        assert_eq!(r.kind, kind::CONFIGURE_REQUEST);
        assert_eq!(r.global_options.unwrap().timeout(), Some(7));
        assert_eq!(r.private_options.unwrap()["Name"], "Exalate");

        let r = Request::parse(br#"{"id":2,"type":9}"#).unwrap();
        assert_eq!(r.kind, kind::VALIDATE_REQUEST);
        assert!(r.private_options.is_none(), "omitted when there are none");
    }

    #[test]
    fn start_and_terminate_requests() {
        let r = Request::parse(br#"{"id":2,"type":4}"#).unwrap();
        assert_eq!(r.kind, kind::START_REQUEST);
        for text in [&br#"{"id":0,"type":5}"#[..], br#"{"id":3,"type":5}"#] {
            assert_eq!(Request::parse(text).unwrap().kind, kind::TERMINATE_REQUEST);
        }
    }

    #[test]
    fn unknown_fields_and_odd_values_are_tolerated() {
        let r = Request::parse(
            br#"{"id":9,"type":6,"key":"k","timeout":"5","future":{"x":[1]},"parameters":null}"#,
        )
        .unwrap();
        assert_eq!(r.item_timeout(), Some(5));
        assert_eq!(r.parameters, None);
        let r = Request::parse(br#"{"id":9,"type":6,"timeout":0}"#).unwrap();
        assert_eq!(r.item_timeout(), None, "0 is no timeout");
        assert_eq!(Request::parse(b"{}").unwrap().kind, 0);
        assert!(Request::parse(b"\"text\"").is_err());
        assert!(Request::parse(b"{\"id\":1").is_err());
        assert!(Request::parse(b"{\"id\":-1}").is_err());
    }

    #[test]
    fn answers_carry_the_request_id_and_their_type() {
        let r = register_response(1, "Exalate", &[("a.b", "Does A."), ("c", "Does C.")]);
        assert_eq!(
            r,
            json!({"id":1,"type":3,"name":"Exalate","metrics":["a.b","Does A.","c","Does C."],"interfaces":3})
        );
        assert_eq!(validate_response(2), json!({"id":2,"type":10}));
        assert_eq!(
            export_response(5, Ok(String::new())),
            json!({"id":5,"type":7,"value":""}),
            "an empty value is still a value"
        );
        assert_eq!(
            export_response(6, Err("Bad.".into())),
            json!({"id":6,"type":7,"error":"Bad."})
        );
        assert_eq!(
            log(Severity::Warning, "w"),
            json!({"id":0,"type":1,"severity":3,"message":"w"})
        );
    }
}
