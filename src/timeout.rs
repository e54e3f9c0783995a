//! Which timeout bounds a call: the one rule, its ranges, defaults and
//! margin. Three timeouts meet here, each named for where it comes from:
//!
//! - `agent_timeout`: the agent's `Timeout` option (zabbix_agentd hands it
//!   to the module with `zbx_module_item_timeout`, agent 2 with configure;
//!   a C caller sets it with `exalate_client_set_timeout`). 1 to 30 s, 3 by
//!   default.
//! - `config_timeout`: a node's `timeout` in the config file, 1 to 30 s.
//! - `item_timeout`: the item's own timeout, which a 7.0 agent passes with
//!   each call (1 to 600 s).
//!
//! A call is bounded by the smaller of the config and item timeouts, else by
//! whichever is given, else by the agent's ([`call_timeout`]); its requests
//! give up a little before that ([`Deadline::counted_from`]), counted
//! from when the item was asked ([`ItemTiming`]).

use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

/// The seconds an agent timeout or a config timeout may be: the agent's own
/// Timeout range; a longer request would block an agent process.
pub(crate) const TIMEOUT_RANGE_SECS: RangeInclusive<u64> = 1..=30;
/// What a timeout outside [`TIMEOUT_RANGE_SECS`] is told.
pub(crate) const OUT_OF_RANGE: &str = "timeout must be 1 to 30 seconds";
/// The agent timeout until the agent (or a C caller) gives one.
pub(crate) const DEFAULT_AGENT_TIMEOUT_SECS: u64 = 3;
/// The longest per-item timeout 7.0 accepts (`ZBX_ITEM_TIMEOUT_MAX`).
pub(crate) const MAX_ITEM_TIMEOUT_SECS: u64 = 600;
/// At most this much before a call's timeout its requests give up.
const ENFORCEMENT_MARGIN: Duration = Duration::from_millis(250);

/// An agent timeout in seconds, brought into [`TIMEOUT_RANGE_SECS`].
pub(crate) fn clamp_agent_timeout(seconds: u64) -> u64 {
    seconds.clamp(*TIMEOUT_RANGE_SECS.start(), *TIMEOUT_RANGE_SECS.end())
}

/// A raw per-item timeout (7.0's `AGENT_REQUEST.timeout`) as a duration,
/// when it is one 7.0 accepts (0 is 7.0's "undefined").
pub(crate) fn item_timeout_from_secs(raw: i64) -> Option<Duration> {
    (1..=MAX_ITEM_TIMEOUT_SECS as i64)
        .contains(&raw)
        .then(|| Duration::from_secs(raw as u64))
}

/// The item timeout an agent 2 export is answered within, so that the
/// answer arrives before the agent gives up: a 7.0 agent gives the item's
/// timeout and waits half a second more; a 6.0 agent gives none and waits
/// exactly its PluginTimeout (by default its Timeout, the only one the
/// plugin learns), so a second less. Whole seconds, as the monitor reports
/// them; `agent_timeout_secs` 0: not configured yet.
pub(crate) fn agent2_item_timeout(
    item_timeout_secs: Option<u64>,
    agent_timeout_secs: u64,
) -> Option<Duration> {
    match (item_timeout_secs, agent_timeout_secs) {
        (Some(seconds), _) => Some(Duration::from_secs(seconds)),
        (None, 0) => None,
        (None, seconds) => Some(Duration::from_secs(seconds.saturating_sub(1).max(1))),
    }
}

/// The timeout of one call: the smaller of the node's config timeout and
/// the item's own; else whichever is given; else the agent's.
pub(crate) fn call_timeout(
    config_timeout: Option<Duration>,
    item_timeout: Option<Duration>,
    agent_timeout: Duration,
) -> Duration {
    match (config_timeout, item_timeout) {
        (Some(config), Some(item)) => config.min(item),
        (config, item) => config.or(item).unwrap_or(agent_timeout),
    }
}

/// An item as its agent asked it: when, and the item timeout the agent gave
/// it (7.0), if any. Its time runs from when it was asked, not from when it
/// runs: an item may wait in agent 2's plugin queue first.
#[derive(Debug, Clone, Copy)]
pub struct ItemTiming {
    /// When the agent asked.
    pub asked: Instant,
    /// The item's own timeout, where the agent gives one.
    pub item_timeout: Option<Duration>,
}

impl ItemTiming {
    /// An item asked now.
    pub fn now(item_timeout: Option<Duration>) -> ItemTiming {
        ItemTiming {
            asked: Instant::now(),
            item_timeout,
        }
    }
}

/// When a call's time is up, for every request it makes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    /// When the requests give up.
    pub at: Instant,
    /// The call's timeout, as its failure reports it.
    pub timeout: Duration,
}

impl Deadline {
    /// The deadline of a call with `timeout`, from now.
    #[cfg(test)]
    pub fn after(timeout: Duration) -> Deadline {
        Deadline::counted_from(Instant::now(), timeout)
    }

    /// The deadline of a call with `timeout` asked at `start`. Requests give
    /// up a little before the timeout, so that even a late wake-up answers
    /// within it (agent 2 drops an answer past it).
    pub fn counted_from(start: Instant, timeout: Duration) -> Deadline {
        let margin = (timeout / 10).min(ENFORCEMENT_MARGIN);
        Deadline {
            at: start + timeout - margin,
            timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// The monitor's cases, once with its thread-local call timeout: the
    /// node's (config) timeout, then the item's, then the agent's.
    #[test]
    fn config_timeout_then_item_timeout_then_agent_timeout() {
        let picked = |config: Option<u64>, item: Option<u64>, agent: u64| {
            call_timeout(config.map(secs), item.map(secs), secs(agent)).as_secs()
        };
        let (plain, own) = (None, Some(5));
        assert_eq!(picked(plain, None, 3), 3);
        assert_eq!(picked(own, None, 3), 5);
        assert_eq!(picked(plain, Some(9), 3), 9);
        assert_eq!(picked(own, Some(9), 3), 5, "the smaller wins");
        assert_eq!(picked(own, Some(2), 3), 2, "the smaller wins");
        assert_eq!(picked(plain, None, 3), 3);
        assert_eq!(picked(plain, Some(9), 3), 9);
        assert_eq!(picked(plain, None, 3), 3, "scoped to the call");
        assert_eq!(picked(plain, None, 4), 4);
    }

    #[test]
    fn requests_give_up_a_little_before_the_timeout() {
        let before = Instant::now();
        let d = Deadline::after(secs(3));
        assert_eq!(d.timeout, secs(3));
        assert!(d.at >= before + secs(3) - ENFORCEMENT_MARGIN);
        assert!(d.at <= Instant::now() + secs(3) - ENFORCEMENT_MARGIN);
        let short = Deadline::after(secs(1));
        assert!(short.at <= Instant::now() + Duration::from_millis(900));
    }

    #[test]
    fn agent_timeouts_are_clamped_to_1_to_30() {
        assert_eq!(clamp_agent_timeout(0), 1);
        assert_eq!(clamp_agent_timeout(3), 3);
        assert_eq!(clamp_agent_timeout(31), 30);
        assert_eq!(clamp_agent_timeout(u64::MAX), 30);
    }

    #[test]
    fn only_timeouts_7_0_accepts_are_used() {
        assert_eq!(item_timeout_from_secs(1), Some(Duration::from_secs(1)));
        assert_eq!(item_timeout_from_secs(45), Some(Duration::from_secs(45)));
        assert_eq!(item_timeout_from_secs(600), Some(Duration::from_secs(600)));
        for raw in [0, -1, 601, i32::MAX, i32::MIN] {
            assert_eq!(item_timeout_from_secs(raw.into()), None, "{raw}");
        }
    }

    #[test]
    fn answers_come_before_the_agent_gives_up() {
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(
            agent2_item_timeout(Some(4), 3),
            secs(4),
            "7.0: the item's own"
        );
        assert_eq!(
            agent2_item_timeout(None, 3),
            secs(2),
            "6.0: inside its Timeout"
        );
        assert_eq!(agent2_item_timeout(None, 1), secs(1));
        assert_eq!(agent2_item_timeout(None, 0), None, "no configure yet");
    }
}
