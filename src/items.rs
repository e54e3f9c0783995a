//! The item keys of the contract, mapped onto the monitor: shared word for
//! word by every agent front end (`zabbix`, the module ABI; `agent2`, the
//! plugin protocol), which hand over parameters as strings.

use crate::error::{Error, ErrorKind, Result};
use crate::monitor::Monitor;
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    QueueCount,
    QueueGet,
    RelationStats,
    Discovery,
    NodePing,
    ModuleVersion,
}

/// A value for the agent: an unsigned integer, a short string, or text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemValue {
    Uint(u64),
    Str(String),
    /// Shared with the cache where it came from it: not copied on the way.
    Text(Arc<String>),
}

impl Item {
    pub const ALL: [Item; 6] = [
        Item::QueueCount,
        Item::QueueGet,
        Item::RelationStats,
        Item::Discovery,
        Item::NodePing,
        Item::ModuleVersion,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Item::QueueCount => "exalate.queue.count",
            Item::QueueGet => "exalate.queue.get",
            Item::RelationStats => "exalate.relation.stats",
            Item::Discovery => "exalate.discovery",
            Item::NodePing => "exalate.node.ping",
            Item::ModuleVersion => "exalate.module.version",
        }
    }

    /// The parameters as the key documents them.
    pub fn usage(self) -> &'static str {
        match self {
            Item::QueueCount => "exalate.queue.count[<node>,<relation>,<queue>]",
            Item::QueueGet => "exalate.queue.get[<node>,<relation>,<queue>]",
            Item::RelationStats => "exalate.relation.stats[<node>,<relation>]",
            Item::Discovery => "exalate.discovery",
            Item::NodePing => "exalate.node.ping[<node>]",
            Item::ModuleVersion => "exalate.module.version",
        }
    }

    /// How many parameters the key takes (an empty `[]` counts as none).
    pub fn arity(self) -> usize {
        match self {
            Item::QueueCount | Item::QueueGet => 3,
            Item::RelationStats => 2,
            Item::NodePing => 1,
            Item::Discovery | Item::ModuleVersion => 0,
        }
    }
}

/// Answers `item` with `params` as the agent passed them.
pub fn serve(monitor: &Monitor, item: Item, params: &[&str]) -> Result<ItemValue> {
    // `key[]` arrives as one empty parameter; `node.ping` may omit its node.
    let params = match params {
        [""] if item.arity() != 1 => &[][..],
        _ => params,
    };
    let given = params.len();
    let fits = given == item.arity() || (item == Item::NodePing && given == 0);
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
        Item::QueueCount => ItemValue::Uint(monitor.queue_count(p(0), p(1), p(2))?),
        Item::QueueGet => ItemValue::Text(monitor.queue_get(p(0), p(1), p(2))?),
        Item::RelationStats => ItemValue::Text(monitor.relation_stats(p(0), p(1))?.into()),
        Item::Discovery => ItemValue::Text(monitor.discovery()?.into()),
        Item::NodePing => ItemValue::Uint(monitor.node_ping(p(0))? as u64),
        Item::ModuleVersion => ItemValue::Str(crate::VERSION.to_string()),
    })
}

/// What an agent shows for `item`: its value, or why it failed as one
/// sentence (the message and a full stop, as the module reports it). Bound
/// by `call_timeout` where the agent gives one; a panic becomes a failure.
pub fn answer(
    monitor: &Monitor,
    item: Item,
    params: &[&str],
    call_timeout: Option<Duration>,
) -> std::result::Result<ItemValue, String> {
    answer_since(monitor, item, params, call_timeout, Instant::now())
}

/// As [`answer`], for an item asked at `asked` (it may have waited in a
/// queue since): its deadline counts from then.
pub fn answer_since(
    monitor: &Monitor,
    item: Item,
    params: &[&str],
    call_timeout: Option<Duration>,
    asked: Instant,
) -> std::result::Result<ItemValue, String> {
    catch_unwind(AssertUnwindSafe(|| {
        monitor
            .with_call_timeout_since(call_timeout, asked, || serve(monitor, item, params))
            .map_err(|e| format!("{}.", e.message()))
    }))
    .unwrap_or_else(|panic| Err(panic_failure(Some(monitor), &*panic)))
}

/// The failure sentence for a panic in an item, its message scrubbed of
/// the secrets `monitor` (if there is one yet) knows.
pub(crate) fn panic_failure(monitor: Option<&Monitor>, panic: &(dyn Any + Send)) -> String {
    let secrets = monitor.map(Monitor::known_secrets).unwrap_or_default();
    let secrets: Vec<&str> = secrets.iter().map(|s| s.as_str()).collect();
    format!(
        "internal error in the exalate module ({}); the agent goes on.",
        crate::boundary::panic_message(panic, &secrets)
    )
}

impl ItemValue {
    /// The value as text, for hosts that take every value as a string.
    pub fn to_text(&self) -> String {
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
    fn version_needs_no_config() {
        assert_eq!(
            serve(&monitor(), Item::ModuleVersion, &[]).unwrap(),
            ItemValue::Str(crate::VERSION.into())
        );
        assert!(serve(&monitor(), Item::ModuleVersion, &[""]).is_ok());
    }

    #[test]
    fn answer_is_a_value_or_one_sentence() {
        assert_eq!(
            answer(&monitor(), Item::ModuleVersion, &[], None),
            Ok(ItemValue::Str(crate::VERSION.into()))
        );
        assert_eq!(
            answer(&monitor(), Item::NodePing, &["a", "b"], None),
            Err("wrong number of parameters: exalate.node.ping takes 1, got 2: use exalate.node.ping[<node>].".into())
        );
        assert_eq!(ItemValue::Uint(7).to_text(), "7");
    }

    #[test]
    fn parameter_count_is_checked_first() {
        let e = serve(&monitor(), Item::QueueCount, &["a", "b"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert_eq!(
            e.message(),
            "wrong number of parameters: exalate.queue.count takes 3, got 2: use exalate.queue.count[<node>,<relation>,<queue>]"
        );
        assert!(serve(&monitor(), Item::Discovery, &["x"]).is_err());
        assert!(serve(&monitor(), Item::NodePing, &["a", "b"]).is_err());
    }

    #[test]
    fn config_error_reaches_every_item() {
        let e = serve(
            &monitor(),
            Item::QueueCount,
            &["", "AllContent", "syncrequests"],
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(
            e.message().contains("/nonexistent/exalate_zabbix.toml"),
            "{e}"
        );
        assert_eq!(
            serve(&monitor(), Item::Discovery, &[]).unwrap_err().kind(),
            ErrorKind::Config
        );
    }
}
