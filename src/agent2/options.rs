//! The plugin's private options, `Plugins.Exalate.*` from the agent's
//! config: a Go `conf.Node` tree serialised as JSON, each value base64
//! (reference §5.8). Only `Config` is ours; 6.0 also sends `System`.

use serde::Deserialize;
use serde_json::Value;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

/// `Plugins.Exalate.Config`: the path of exalate_zabbix.toml.
pub(crate) const CONFIG: &str = "Config";
/// `Plugins.Exalate.System.*`: the agent's own (Path, Capacity, ...).
const SYSTEM: &str = "System";

#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct PrivateOptions {
    pub(crate) config: Option<PathBuf>,
    /// Options we do not know (a typo), to be logged: never an error, since
    /// the agent must start whatever the plugin's options say.
    pub(crate) unknown: Vec<String>,
}

/// A node or a value of the tree: `{"Name","Nodes","Line"}` or `{"Value","Line"}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Node {
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "Nodes")]
    nodes: Vec<Node>,
    #[serde(rename = "Value")]
    value: Option<String>,
}

impl PrivateOptions {
    /// Reads the tree; anything malformed counts as an unknown option.
    pub(crate) fn from_tree(tree: Option<&Value>) -> PrivateOptions {
        let mut options = PrivateOptions::default();
        let Some(tree) = tree else {
            return options;
        };
        let Ok(root) = Node::deserialize(tree) else {
            options.unknown.push("(unreadable option tree)".into());
            return options;
        };
        for node in &root.nodes {
            match node.name.as_str() {
                SYSTEM => {}
                CONFIG => match node.nodes.iter().rev().find_map(|v| v.value.as_deref()) {
                    Some(encoded) => match decode_base64(encoded) {
                        Some(raw) if !raw.is_empty() => {
                            options.config = Some(PathBuf::from(OsString::from_vec(raw)));
                        }
                        _ => options
                            .unknown
                            .push(format!("{CONFIG} (empty or unreadable)")),
                    },
                    None => options.unknown.push(format!("{CONFIG} (no value)")),
                },
                other => options.unknown.push(other.to_string()),
            }
        }
        options
    }
}

/// Standard base64 with padding (Go's encoding of `[]byte`).
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    fn sextet(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let bytes = text.trim_end_matches('=').as_bytes();
    if text.len() % 4 != 0 || text.len() - bytes.len() > 2 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for &c in chunk {
            acc = (acc << 6) | sextet(c)?;
        }
        acc <<= 6 * (4 - chunk.len() as u32);
        let decoded = acc.to_be_bytes();
        let n = chunk.len() * 3 / 4;
        if n == 0 {
            return None;
        }
        out.extend_from_slice(&decoded[1..=n]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn base64_as_go_writes_it() {
        assert_eq!(
            decode_base64("L3Zhci9saWIvZXhhbGF0ZS9xdWV1ZS5kYg==").unwrap(),
            b"/var/lib/exalate/queue.db"
        );
        assert_eq!(decode_base64("YQ==").unwrap(), b"a");
        assert_eq!(decode_base64("YWI=").unwrap(), b"ab");
        assert_eq!(decode_base64("YWJj").unwrap(), b"abc");
        assert_eq!(decode_base64("").unwrap(), b"");
        for bad in ["YQ", "Y===", "a*==", "YWJj="] {
            assert_eq!(decode_base64(bad), None, "{bad}");
        }
    }

    #[test]
    fn config_from_the_6_0_tree_with_system() {
        let tree = json!({"Name":"Exalate","Line":15,"Nodes":[
            {"Name":"System","Line":15,"Nodes":[{"Name":"Path","Line":15,"Nodes":[
                {"Value":"L3Vzci9zYmlu","Line":15}]}]},
            {"Name":"Config","Line":16,"Nodes":[{"Value":"L2V0Yy96YWJiaXgvZS50b21s","Line":16}]}]});
        assert_eq!(
            PrivateOptions::from_tree(Some(&tree)),
            PrivateOptions {
                config: Some("/etc/zabbix/e.toml".into()),
                unknown: vec![]
            }
        );
    }

    #[test]
    fn typos_and_odd_trees_are_reported_not_fatal() {
        let tree = json!({"Name":"Exalate","Nodes":[
            {"Name":"Confg","Nodes":[{"Value":"eA=="}]},
            {"Name":"Config","Nodes":[{"Value":"!!"}]}]});
        let options = PrivateOptions::from_tree(Some(&tree));
        assert_eq!(options.config, None);
        assert_eq!(options.unknown, ["Confg", "Config (empty or unreadable)"]);
        assert_eq!(
            PrivateOptions::from_tree(Some(&json!([1]))).unknown,
            ["(unreadable option tree)"]
        );
        assert_eq!(PrivateOptions::from_tree(None), PrivateOptions::default());
    }
}
