//! 7.0's per-item timeout in `AGENT_REQUEST`: whether the host agent has
//! the field (told apart at run time) and reading it.
//!
//! Zabbix 7.0 appends the item's own timeout to `AGENT_REQUEST` (an `int` at
//! offset 48); 4.4 to 6.4 end the struct before it, so reading it there reads
//! past the agent's allocation. The module links nothing from the agent, so it
//! asks the process instead, as PCP's zbxpcp module tells agent generations
//! apart: `zabbix_agentd` exports its functions to modules (Debian's 5.0.8,
//! 6.0.14 and 7.0.22 builds export 800 to 1,300 symbols), and from 7.0 on
//! these include `zbx_validate_item_timeout`, the function that parses
//! per-item timeouts and came with them; 6.4 and every earlier agent lack it.
//! Symbol found: the request has the field. Not found (an older agent, a
//! build that exports nothing, any other host): the field is never touched
//! and the agent's global Timeout applies.

use super::AgentRequest;
use std::ffi::{c_char, c_int, CStr};
use std::sync::OnceLock;
use std::time::Duration;

/// The symbol whose presence in the host process says `AGENT_REQUEST` has `timeout`.
pub(crate) const ITEM_TIMEOUT_MARKER: &CStr = c"zbx_validate_item_timeout";

/// AGENT_REQUEST as 7.0 declares it: the common prefix, `types` (4.4.10+),
/// then `timeout`. Only ever read through a pointer the agent passed, and
/// only when [`host_has_item_timeouts`] says the agent has this layout.
#[repr(C)]
pub(crate) struct AgentRequestV7 {
    pub(crate) key: *mut c_char,
    pub(crate) nparam: c_int,
    pub(crate) params: *mut *mut c_char,
    pub(crate) lastlogsize: u64,
    pub(crate) mtime: c_int,
    pub(crate) types: *mut c_int,
    pub(crate) timeout: c_int,
}

/// Whether the host process passes per-item timeouts; looked up once per
/// process (the children inherit the answer when the parent asked first).
pub(crate) fn host_has_item_timeouts() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| exports_symbol(ITEM_TIMEOUT_MARKER))
}

/// Whether `name` is defined in the process's global scope: the main
/// program and the libraries loaded with it (our own module is loaded with
/// RTLD_LOCAL and is not searched). Nothing is called through the address.
#[allow(unsafe_code)]
pub(crate) fn exports_symbol(name: &CStr) -> bool {
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name has no
    // preconditions; a missing symbol gives NULL.
    !unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) }.is_null()
}

/// The item's own timeout, when the host has the field and it holds a
/// timeout 7.0 could have set (1 to 600 s, [`crate::timeout`]); else
/// `None`: the agent's Timeout applies.
///
/// # Safety
/// `request` is null or points to the agent's AGENT_REQUEST, and when
/// `has_field` is true that request has 7.0's layout.
#[allow(unsafe_code)]
pub(crate) unsafe fn item_timeout(
    request: *const AgentRequest,
    has_field: bool,
) -> Option<Duration> {
    if !has_field || request.is_null() {
        return None;
    }
    // SAFETY: caller's contract: a 7.0 request, valid for the call.
    let raw = unsafe { (*request.cast::<AgentRequestV7>()).timeout };
    crate::timeout::item_timeout_from_secs(raw.into())
}

#[cfg(test)]
#[allow(unsafe_code)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn layouts_match_the_agents() {
        // The prefix every version shares ends with mtime; 6.0's struct is 48 bytes.
        assert_eq!(offset_of!(AgentRequest, mtime), 32);
        assert_eq!(offset_of!(AgentRequestV7, types), 40);
        assert_eq!(offset_of!(AgentRequestV7, timeout), 48);
        assert_eq!(size_of::<AgentRequestV7>(), 56);
        assert!(
            size_of::<AgentRequest>() <= 48,
            "never reads past a 6.0 request"
        );
    }

    fn request_v7(timeout: c_int) -> AgentRequestV7 {
        AgentRequestV7 {
            key: std::ptr::null_mut(),
            nparam: 0,
            params: std::ptr::null_mut(),
            lastlogsize: 0,
            mtime: 0,
            types: std::ptr::null_mut(),
            timeout,
        }
    }

    #[test]
    fn the_field_is_read_only_when_the_host_has_it() {
        let request = request_v7(7);
        let ptr = std::ptr::addr_of!(request).cast::<AgentRequest>();
        // SAFETY: a full 7.0-shaped request.
        unsafe {
            assert_eq!(item_timeout(ptr, true), Some(Duration::from_secs(7)));
            assert_eq!(item_timeout(ptr, false), None);
            assert_eq!(item_timeout(std::ptr::null(), true), None);
        }
        let undefined = request_v7(0);
        let ptr = std::ptr::addr_of!(undefined).cast::<AgentRequest>();
        // SAFETY: as above.
        assert_eq!(unsafe { item_timeout(ptr, true) }, None);
    }

    #[test]
    fn detection_looks_in_the_process() {
        // libc is always there; this test binary is no 7.0 agent.
        assert!(exports_symbol(c"malloc"));
        assert!(!exports_symbol(ITEM_TIMEOUT_MARKER));
        assert!(!host_has_item_timeouts());
    }
}
