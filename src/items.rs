//! The item keys of the contract: the item table ([`Item`] and what each
//! key is, for every front end) and the mapping onto the monitor, shared
//! word for word by the agent front ends (`agentd`, the module ABI;
//! `agent2`, the plugin protocol), which hand over parameters as strings.

use crate::error::{Error, ErrorKind, Result};
use crate::monitor::Monitor;
pub use crate::timeout::ItemTiming;
use std::any::Any;
use std::ffi::CStr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// An item key of the contract; its entry in the item table says what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    /// `exalate.queue.count[<node>,<relation>,<queue>]`
    QueueCount,
    /// `exalate.queue.get[<node>,<relation>,<queue>]`
    QueueGet,
    /// `exalate.relation.stats[<node>,<relation>]`
    RelationStats,
    /// `exalate.discovery`
    Discovery,
    /// `exalate.node.ping[<node>]`
    NodePing,
    /// `exalate.node.errors[<node>]`
    NodeErrors,
    /// `exalate.node.queue[<node>,<direction>]`
    NodeQueue,
    /// `exalate.node.connections[<node>]`
    NodeConnections,
    /// `exalate.module.version`
    ModuleVersion,
}

/// What an item is, for every front end: one entry of [`ITEMS`].
#[derive(Debug)]
pub(crate) struct ItemSpec {
    /// The item, as the entry's place in the table.
    pub(crate) item: Item,
    /// The key, NUL-terminated for the module's item list.
    pub(crate) c_key: &'static CStr,
    /// The parameters as the key documents them.
    pub(crate) usage: &'static str,
    /// How many parameters the key takes (an empty `[]` counts as none).
    pub(crate) arity: usize,
    /// Agent 2's description (`zabbix_agent2 -R metrics`): a capital
    /// first, a full stop last.
    pub(crate) description: &'static str,
    /// The module's test parameters (`zabbix_agentd -p` and `-t`), for keys
    /// that take parameters.
    pub(crate) test_params: Option<&'static CStr>,
}

/// The item table: one entry per key, in [`Item`]'s order. Adding a key is
/// an entry here, its `Item`, its arm in [`get_value`] (a Monitor method)
/// and the template.
pub(crate) const ITEMS: &[ItemSpec] = &[
    ItemSpec {
        item: Item::QueueCount,
        c_key: c"exalate.queue.count",
        usage: "exalate.queue.count[<node>,<relation>,<queue>]",
        arity: 3,
        description: "Entries in one sync queue of an Exalate relation.",
        test_params: Some(c",AllContent,syncrequests"),
    },
    ItemSpec {
        item: Item::QueueGet,
        c_key: c"exalate.queue.get",
        usage: "exalate.queue.get[<node>,<relation>,<queue>]",
        arity: 3,
        description: "Entries of one sync queue of an Exalate relation, as JSON.",
        test_params: Some(c",AllContent,errorresponses"),
    },
    ItemSpec {
        item: Item::RelationStats,
        c_key: c"exalate.relation.stats",
        usage: "exalate.relation.stats[<node>,<relation>]",
        arity: 2,
        description: "Counts, error reasons and oldest event ids of the six sync queues of a relation, as JSON.",
        test_params: Some(c",AllContent"),
    },
    ItemSpec {
        item: Item::Discovery,
        c_key: c"exalate.discovery",
        usage: "exalate.discovery",
        arity: 0,
        description: "Discovery of the configured Exalate nodes and relations.",
        test_params: None,
    },
    ItemSpec {
        item: Item::NodePing,
        c_key: c"exalate.node.ping",
        usage: "exalate.node.ping[<node>]",
        arity: 1,
        description: "Whether an Exalate node answers and accepts the credentials (1 or 0).",
        test_params: Some(c""),
    },
    ItemSpec {
        item: Item::NodeErrors,
        c_key: c"exalate.node.errors",
        usage: "exalate.node.errors[<node>]",
        arity: 1,
        description: "Errors on an Exalate node (numErrors of its customer monitor endpoint, cmonitor_url).",
        test_params: Some(c""),
    },
    ItemSpec {
        item: Item::NodeQueue,
        c_key: c"exalate.node.queue",
        usage: "exalate.node.queue[<node>,<direction>]",
        arity: 2,
        description: "Sync transactions waiting on an Exalate node, outgoing or incoming (its issuehub 4.0 API).",
        test_params: Some(c",outgoing"),
    },
    ItemSpec {
        item: Item::NodeConnections,
        c_key: c"exalate.node.connections",
        usage: "exalate.node.connections[<node>]",
        arity: 1,
        description: "Connections of an Exalate node with their status, as JSON (its issuehub 4.0 API).",
        test_params: Some(c""),
    },
    ItemSpec {
        item: Item::ModuleVersion,
        c_key: c"exalate.module.version",
        usage: "exalate.module.version",
        arity: 0,
        description: "Version of the exalate-zabbix plugin.",
        test_params: None,
    },
];

/// A value for the agent: an unsigned integer, a short string, or text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemValue {
    /// An unsigned integer (counts, 1 or 0).
    Uint(u64),
    /// A short string.
    Str(String),
    /// Shared with the cache where it came from it: not copied on the way.
    Text(Arc<String>),
}

impl Item {
    /// Every item, in the table's order.
    pub const ALL: [Item; ITEMS.len()] = {
        let mut all = [Item::QueueCount; ITEMS.len()];
        let mut i = 0;
        while i < ITEMS.len() {
            all[i] = ITEMS[i].item;
            i += 1;
        }
        all
    };

    /// The item's entry in [`ITEMS`].
    pub(crate) const fn spec(self) -> &'static ItemSpec {
        &ITEMS[self as usize]
    }

    /// The item with this key, if it is one.
    pub(crate) fn from_key(key: &str) -> Option<Item> {
        Item::ALL.into_iter().find(|i| i.key() == key)
    }

    /// The key.
    pub const fn key(self) -> &'static str {
        match self.spec().c_key.to_str() {
            Ok(key) => key,
            Err(_) => panic!("item keys are ASCII"),
        }
    }

    /// The parameters as the key documents them.
    pub(crate) const fn usage(self) -> &'static str {
        self.spec().usage
    }

    /// How many parameters the key takes (an empty `[]` counts as none).
    pub(crate) const fn arity(self) -> usize {
        self.spec().arity
    }
}

/// Answers `item` with `params` as the agent passed them, within
/// `item_timeout` when the agent gave one (else the node's config timeout
/// or the agent's Timeout).
pub fn get_value(
    monitor: &Monitor,
    item: Item,
    params: &[&str],
    timing: ItemTiming,
) -> Result<ItemValue> {
    // `key[]` arrives as one empty parameter; the node items may omit their node.
    let params = match params {
        [""] if item.arity() != 1 => &[][..],
        _ => params,
    };
    let given = params.len();
    let node_item = matches!(
        item,
        Item::NodePing | Item::NodeErrors | Item::NodeConnections
    );
    let fits = given == item.arity() || (node_item && given == 0);
    if !fits {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "wrong number of parameters: {} takes {}, got {given}: use {}",
                item.key(),
                item.arity(),
                item.usage()
            ),
        ));
    }
    let p = |i: usize| params.get(i).copied().unwrap_or("");
    Ok(match item {
        Item::QueueCount => {
            ItemValue::Uint(monitor.queue_count_within(p(0), p(1), p(2), timing)?)
        }
        Item::QueueGet => ItemValue::Text(monitor.queue_get_within(p(0), p(1), p(2), timing)?),
        Item::RelationStats => {
            ItemValue::Text(monitor.relation_stats_within(p(0), p(1), timing)?.into())
        }
        Item::Discovery => ItemValue::Text(monitor.discovery()?.into()),
        Item::NodePing => ItemValue::Uint(monitor.node_ping_within(p(0), timing)? as u64),
        Item::NodeErrors => ItemValue::Uint(monitor.node_errors_within(p(0), timing)?),
        Item::NodeQueue => ItemValue::Uint(monitor.node_queue_within(p(0), p(1), timing)?),
        Item::NodeConnections => {
            ItemValue::Text(monitor.node_connections_within(p(0), timing)?.into())
        }
        Item::ModuleVersion => ItemValue::Str(crate::VERSION.to_string()),
    })
}

/// What an agent shows for `item`: its value, or why it failed as one
/// sentence (the message and a full stop, as the module reports it). Bound
/// by the item's timeout where the agent gives one (see `timeout.rs`),
/// counted from when it was asked; a panic becomes a failure.
pub(crate) fn value_or_failure(
    monitor: &Monitor,
    item: Item,
    params: &[&str],
    timing: ItemTiming,
) -> std::result::Result<ItemValue, String> {
    catch_unwind(AssertUnwindSafe(|| {
        get_value(monitor, item, params, timing).map_err(|e| format!("{}.", e.message()))
    }))
    .unwrap_or_else(|panic| Err(panic_failure(Some(monitor), &*panic)))
}

/// The failure sentence for a panic in an item, its message scrubbed of
/// the secrets `monitor` (if there is one yet) knows.
pub(crate) fn panic_failure(monitor: Option<&Monitor>, panic: &(dyn Any + Send)) -> String {
    let secrets = monitor.map(Monitor::known_secrets).unwrap_or_default();
    let secrets = crate::secret::texts(&secrets);
    format!(
        "internal error in the exalate module ({}); the agent goes on.",
        crate::panic::panic_message(panic, &secrets)
    )
}

impl ItemValue {
    /// The value as text, for hosts that take every value as a string.
    pub(crate) fn to_text(&self) -> String {
        match self {
            ItemValue::Uint(v) => v.to_string(),
            ItemValue::Str(s) => s.clone(),
            ItemValue::Text(s) => s.as_ref().clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn monitor() -> Monitor {
        Monitor::new_lazy("/nonexistent/exalate_zabbix.toml".into())
    }

    #[test]
    fn the_table_is_in_the_enums_order() {
        for (i, spec) in ITEMS.iter().enumerate() {
            assert_eq!(spec.item as usize, i, "{}", spec.usage);
            assert!(spec.usage.starts_with(spec.item.key()));
            assert_eq!(spec.test_params.is_some(), spec.arity > 0);
        }
        assert_eq!(Item::from_key("exalate.node.ping"), Some(Item::NodePing));
        assert_eq!(Item::from_key("exalate.node"), None);
    }

    #[test]
    fn version_needs_no_config() {
        assert_eq!(
            get_value(&monitor(), Item::ModuleVersion, &[], ItemTiming::now(None)).unwrap(),
            ItemValue::Str(crate::VERSION.into())
        );
        assert!(get_value(
            &monitor(),
            Item::ModuleVersion,
            &[""],
            ItemTiming::now(None)
        )
        .is_ok());
    }

    #[test]
    fn value_or_failure_is_a_value_or_one_sentence() {
        assert_eq!(
            value_or_failure(&monitor(), Item::ModuleVersion, &[], ItemTiming::now(None)),
            Ok(ItemValue::Str(crate::VERSION.into()))
        );
        assert_eq!(
            value_or_failure(&monitor(), Item::NodePing, &["a", "b"], ItemTiming::now(None)),
            Err("wrong number of parameters: exalate.node.ping takes 1, got 2: use exalate.node.ping[<node>].".into())
        );
        assert_eq!(ItemValue::Uint(7).to_text(), "7");
    }

    #[test]
    fn parameter_count_is_checked_first() {
        let e = get_value(
            &monitor(),
            Item::QueueCount,
            &["a", "b"],
            ItemTiming::now(None),
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert_eq!(
            e.message(),
            "wrong number of parameters: exalate.queue.count takes 3, got 2: use exalate.queue.count[<node>,<relation>,<queue>]"
        );
        assert!(get_value(&monitor(), Item::Discovery, &["x"], ItemTiming::now(None)).is_err());
        assert!(get_value(
            &monitor(),
            Item::NodePing,
            &["a", "b"],
            ItemTiming::now(None)
        )
        .is_err());
    }

    #[test]
    fn config_error_reaches_every_item() {
        let e = get_value(
            &monitor(),
            Item::QueueCount,
            &["", "AllContent", "syncrequests"],
            ItemTiming::now(None),
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(
            e.message().contains("/nonexistent/exalate_zabbix.toml"),
            "{e}"
        );
        assert_eq!(
            get_value(&monitor(), Item::Discovery, &[], ItemTiming::now(None))
                .unwrap_err()
                .kind(),
            ErrorKind::Config
        );
    }
}
