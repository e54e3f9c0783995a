//! Front end 1: the classic agent's (`zabbix_agentd`) loadable-module ABI
//! (api version 2), declared here so the module links nothing from the
//! agent and works across agent versions.
//! Only the fields common to every version (4.0 to 7.x) are read or written,
//! save 7.0's per-item `timeout`, read only where `item_timeout` finds a 7.0+ agent.
//!
//! The agent loads the module, calls `zbx_module_init` and `zbx_module_item_list`
//! in its parent process, then forks: item functions run in the children, so
//! every piece of state (config, HTTP agents, tokens, cache) is created on the
//! first item call, in the process that uses it.

mod item_timeout;

use crate::boundary::{ffi_fn, PanicOrDefault};
use crate::config;
use crate::items::{self, Item, ItemTiming, ItemValue, ITEMS};
use crate::lock::lock;
use crate::monitor::Monitor;
use crate::timeout;
use std::cell::UnsafeCell;
use std::ffi::{c_char, c_int, c_uint, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The module API version this module implements.
pub const ZBX_MODULE_API_VERSION: c_int = 2;
/// `zbx_module_init`/`uninit` succeeded.
pub const ZBX_MODULE_OK: c_int = 0;
/// `zbx_module_init`/`uninit` failed.
pub const ZBX_MODULE_FAIL: c_int = -1;
/// An item function gave a value.
pub const SYSINFO_RET_OK: c_int = 0;
/// An item function failed (its message, if any, in `AgentResult::msg`).
pub const SYSINFO_RET_FAIL: c_int = 1;
/// A `ZbxMetric` flag: the key takes parameters.
pub const CF_HAVEPARAMS: c_uint = 0x01;
/// `AgentResult::type_` bit: `ui64` is set.
pub const AR_UINT64: c_int = 0x01;
/// `AgentResult::type_` bit: `str_` is set.
pub const AR_STRING: c_int = 0x04;
/// `AgentResult::type_` bit: `text` is set.
pub const AR_TEXT: c_int = 0x08;
/// `AgentResult::type_` bit: `msg` is set.
pub const AR_MESSAGE: c_int = 0x20;

/// An item function, as the agent calls it.
pub type ItemFunction = unsafe extern "C" fn(*mut AgentRequest, *mut AgentResult) -> SysinfoRet;

/// What an item function returns (an int to the agent): SYSINFO_RET_OK or
/// SYSINFO_RET_FAIL, which is also what a panic gives.
#[repr(transparent)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SysinfoRet(pub c_int);

impl PanicOrDefault for SysinfoRet {
    fn on_panic() -> Self {
        SysinfoRet(SYSINFO_RET_FAIL)
    }
}

/// What `zbx_module_init`/`uninit` return (an int to the agent):
/// ZBX_MODULE_OK or ZBX_MODULE_FAIL, which is also what a panic gives.
#[repr(transparent)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModuleRet(pub c_int);

impl PanicOrDefault for ModuleRet {
    fn on_panic() -> Self {
        ModuleRet(ZBX_MODULE_FAIL)
    }
}

/// The module API version (an int to the agent); nothing in its function
/// can panic, and the version is the answer whatever happens.
#[repr(transparent)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiVersion(pub c_int);

impl PanicOrDefault for ApiVersion {
    fn on_panic() -> Self {
        ApiVersion(ZBX_MODULE_API_VERSION)
    }
}

/// ZBX_METRIC: 32 bytes in every version.
#[repr(C)]
pub struct ZbxMetric {
    /// The item key; NULL ends the list.
    pub key: *const c_char,
    /// `CF_HAVEPARAMS` or 0 (the agent adds its own bits).
    pub flags: c_uint,
    /// The item function.
    pub function: Option<ItemFunction>,
    /// Parameters for `zabbix_agentd -p`/`-t`, or NULL.
    pub test_param: *const c_char,
}

/// AGENT_REQUEST up to `mtime`: the prefix every version shares. Later
/// versions append fields (`types`, 7.0's `timeout`) that are not read here.
#[repr(C)]
pub struct AgentRequest {
    /// The item key, without parameters.
    pub key: *mut c_char,
    /// How many parameters `params` holds.
    pub nparam: c_int,
    /// The parameters, each a C string.
    pub params: *mut *mut c_char,
    /// For log items (not used here).
    pub lastlogsize: u64,
    /// For log items (not used here).
    pub mtime: c_int,
}

/// AGENT_RESULT as in 4.0 to 6.4 (7.0 appends `bin`, which is not touched).
#[repr(C)]
pub struct AgentResult {
    /// For log items (not used here).
    pub lastlogsize: u64,
    /// An unsigned value (`AR_UINT64`).
    pub ui64: u64,
    /// A float value (not used here).
    pub dbl: f64,
    /// A string value (`AR_STRING`), from malloc.
    pub str_: *mut c_char,
    /// A text value (`AR_TEXT`), from malloc.
    pub text: *mut c_char,
    /// The failure message (`AR_MESSAGE`), from malloc.
    pub msg: *mut c_char,
    /// For log items (not used here).
    pub log: *mut c_void,
    /// Which of the values are set (`AR_*` bits).
    pub type_: c_int,
    /// For log items (not used here).
    pub mtime: c_int,
}

/// The agent's Timeout, as given by `zbx_module_item_timeout`.
static AGENT_TIMEOUT_SECS: AtomicU64 = AtomicU64::new(timeout::DEFAULT_AGENT_TIMEOUT_SECS);

/// Created on the first item call, in the agent process that serves it;
/// dropped by `zbx_module_uninit`, so nothing is left when the agent unloads us.
static MONITOR: Mutex<Option<Arc<Monitor>>> = Mutex::new(None);

fn monitor() -> Arc<Monitor> {
    let mut slot = lock(&MONITOR);
    slot.get_or_insert_with(|| {
        let monitor = Monitor::new_lazy(config::default_path());
        monitor.set_agent_timeout(AGENT_TIMEOUT_SECS.load(Ordering::Relaxed));
        Arc::new(monitor)
    })
    .clone()
}

/// The most items the module's list can hold; [`ITEMS`] has fewer.
const MAX_ITEMS: usize = 16;
const _: () = assert!(ITEMS.len() <= MAX_ITEMS, "raise MAX_ITEMS");

ffi_fn! {
    /// The item function of the `N`th entry of [`ITEMS`], through the C
    /// boundary (one instance per item).
    unsafe fn item_function<const N: usize>(request: *mut AgentRequest, result: *mut AgentResult) -> SysinfoRet {
        let Some(spec) = ITEMS.get(N) else {
            return SysinfoRet(SYSINFO_RET_FAIL);
        };
        // SAFETY: the agent passes valid pointers for the call's duration.
        SysinfoRet(unsafe { serve_item(spec.item, request, result) })
    }
}

/// One instance of [`item_function`] per place in the list; the list takes
/// the first `ITEMS.len()`.
const ITEM_FUNCTIONS: [ItemFunction; MAX_ITEMS] = [
    item_function::<0>,
    item_function::<1>,
    item_function::<2>,
    item_function::<3>,
    item_function::<4>,
    item_function::<5>,
    item_function::<6>,
    item_function::<7>,
    item_function::<8>,
    item_function::<9>,
    item_function::<10>,
    item_function::<11>,
    item_function::<12>,
    item_function::<13>,
    item_function::<14>,
    item_function::<15>,
];

/// The module's entries, one per item of [`ITEMS`] and a NULL key to end.
const ITEM_LIST_LEN: usize = ITEMS.len() + 1;

/// The module's list, built from [`ITEMS`]: the key, `CF_HAVEPARAMS` for
/// keys that take parameters, the function and the test parameters.
const fn item_list() -> [ZbxMetric; ITEM_LIST_LEN] {
    const END: ZbxMetric = ZbxMetric {
        key: std::ptr::null(),
        flags: 0,
        function: None,
        test_param: std::ptr::null(),
    };
    let mut list = [END; ITEM_LIST_LEN];
    let mut i = 0;
    while i < ITEMS.len() {
        let spec = &ITEMS[i];
        list[i] = ZbxMetric {
            key: spec.c_key.as_ptr(),
            flags: if spec.arity > 0 { CF_HAVEPARAMS } else { 0 },
            function: Some(ITEM_FUNCTIONS[i]),
            test_param: match spec.test_params {
                Some(params) => params.as_ptr(),
                None => std::ptr::null(),
            },
        };
        i += 1;
    }
    list
}

/// The item table, handed to the agent as a pointer: the agent rewrites
/// each entry's flags in place, so it must be writable, and it lives as long
/// as the process. Rust never reads or writes it after the hand-over; the
/// wrapper is what lets a `static` hold raw pointers and interior mutability
/// without `static mut` (no references to a `static mut`, edition 2024).
struct ItemList(UnsafeCell<[ZbxMetric; ITEM_LIST_LEN]>);

// SAFETY: Rust code only takes the table's address; the agent's own
// threads and processes are what write it, under the agent's rules.
#[allow(unsafe_code)]
unsafe impl Sync for ItemList {}

static ITEM_LIST: ItemList = ItemList(UnsafeCell::new(item_list()));

ffi_fn! {
    /// The module API version the module implements (2).
    pub fn zbx_module_api_version() -> ApiVersion {
        ApiVersion(ZBX_MODULE_API_VERSION)
    }
}

ffi_fn! {
    /// Does nothing on purpose: it runs in the agent's parent before the fork,
    /// and a failure here would stop the whole agent. The config is read on the
    /// first item call instead, and its errors are reported by every item.
    pub fn zbx_module_init() -> ModuleRet {
        ModuleRet(ZBX_MODULE_OK)
    }
}

ffi_fn! {
    /// Releases what item calls built in this process (connections, cache).
    /// The monitor is dropped here, inside the boundary: a panic in a drop
    /// must not reach the agent. Another Arc (an item call in flight on a
    /// thread of a C host) keeps it alive until that call ends.
    pub fn zbx_module_uninit() -> ModuleRet {
        #[cfg(feature = "fault-injection")]
        crate::secret::UNINIT_STARTED.store(true, Ordering::SeqCst);
        let monitor = lock(&MONITOR).take();
        drop(monitor);
        crate::http::forget_shared_hosts();
        ModuleRet(ZBX_MODULE_OK)
    }
}

ffi_fn! {
    /// The module's items, ending with a NULL key: built from the item table.
    pub fn zbx_module_item_list() -> *mut ZbxMetric {
        ITEM_LIST.0.get().cast()
    }
}

ffi_fn! {
    /// The agent's Timeout option, clamped to 1 to 30 s (see `timeout.rs`).
    pub fn zbx_module_item_timeout(timeout: c_int) -> () {
        let seconds = timeout::clamp_agent_timeout(timeout.max(0) as u64);
        AGENT_TIMEOUT_SECS.store(seconds, Ordering::Relaxed);
    }
}

/// Runs one item call; nothing unwinds out of it, and a panic becomes the
/// item's message (redacted, like every message).
///
/// # Safety
/// `request` and `result` are null or valid for the call, as the agent passes them.
#[allow(unsafe_code)]
unsafe fn serve_item(item: Item, request: *mut AgentRequest, result: *mut AgentResult) -> c_int {
    if result.is_null() {
        return SYSINFO_RET_FAIL;
    }
    // The item layer gives the value or the failure sentence, as for agent 2;
    // this guard covers only reading the request.
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: see the function's contract.
        let params = unsafe { read_params(request) }.map_err(|m| format!("{m}."))?;
        let params: Vec<&str> = params.iter().map(String::as_str).collect();
        // SAFETY: as above; the layout is the one `item_timeout` detected.
        let timeout =
            unsafe { item_timeout::item_timeout(request, item_timeout::host_has_item_timeouts()) };
        items::value_or_failure(&monitor(), item, &params, ItemTiming::now(timeout))
    }));
    let outcome = outcome.unwrap_or_else(|panic| {
        // The monitor, if making it was not what panicked.
        let monitor = lock(&MONITOR).clone();
        Err(items::panic_failure(monitor.as_deref(), &*panic))
    });
    // SAFETY: `result` is the agent's, non-null (checked above).
    let result = unsafe { &mut *result };
    match outcome {
        Ok(ItemValue::Uint(v)) => {
            result.ui64 = v;
            result.type_ |= AR_UINT64;
            SYSINFO_RET_OK
        }
        Ok(ItemValue::Str(s)) => set_string(result, &s, AR_STRING),
        Ok(ItemValue::Text(s)) => set_string(result, &s, AR_TEXT),
        Err(message) => {
            let msg = malloc_cstring(&message);
            if !msg.is_null() {
                result.msg = msg;
                result.type_ |= AR_MESSAGE;
            }
            SYSINFO_RET_FAIL
        }
    }
}

fn set_string(result: &mut AgentResult, value: &str, kind: c_int) -> c_int {
    let ptr = malloc_cstring(value);
    if ptr.is_null() {
        return SYSINFO_RET_FAIL;
    }
    if kind == AR_STRING {
        result.str_ = ptr;
    } else {
        result.text = ptr;
    }
    result.type_ |= kind;
    SYSINFO_RET_OK
}

/// The request's parameters as UTF-8 strings.
///
/// # Safety
/// `request` is null or points to a valid AGENT_REQUEST.
#[allow(unsafe_code)]
unsafe fn read_params(request: *const AgentRequest) -> Result<Vec<String>, String> {
    // SAFETY: caller's contract.
    let Some(request) = (unsafe { request.as_ref() }) else {
        return Ok(Vec::new());
    };
    if request.nparam <= 0 || request.params.is_null() {
        return Ok(Vec::new());
    }
    (0..request.nparam as usize)
        .map(|i| {
            // SAFETY: the agent's params array holds nparam entries.
            let p = unsafe { *request.params.add(i) };
            if p.is_null() {
                return Ok(String::new());
            }
            // SAFETY: each parameter is a NUL-terminated string.
            let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
            String::from_utf8(bytes.to_vec())
                .map_err(|_| format!("parameter {} is not valid UTF-8", i + 1))
        })
        .collect()
}

/// A copy of `s` in libc's heap: the agent frees results with free().
/// Interior NULs, which C would cut the value at, become spaces.
#[allow(unsafe_code)]
pub(crate) fn malloc_cstring(s: &str) -> *mut c_char {
    let bytes = s.as_bytes();
    // SAFETY: malloc of len + 1; checked for NULL before writing.
    unsafe {
        let ptr = libc::malloc(bytes.len() + 1).cast::<u8>();
        if ptr.is_null() {
            return std::ptr::null_mut();
        }
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr, bytes.len());
        for i in 0..bytes.len() {
            if *ptr.add(i) == 0 {
                *ptr.add(i) = b' ';
            }
        }
        *ptr.add(bytes.len()) = 0;
        ptr.cast()
    }
}

#[cfg(test)]
#[allow(unsafe_code)]
mod tests {
    use super::*;

    /// The list the table gives is the one the module always handed over.
    #[test]
    fn item_list_comes_from_the_table() {
        let expected: [(&CStr, c_uint, Option<&CStr>); 9] = [
            (
                c"exalate.queue.count",
                CF_HAVEPARAMS,
                Some(c",AllContent,syncrequests"),
            ),
            (
                c"exalate.queue.get",
                CF_HAVEPARAMS,
                Some(c",AllContent,errorresponses"),
            ),
            (
                c"exalate.relation.stats",
                CF_HAVEPARAMS,
                Some(c",AllContent"),
            ),
            (c"exalate.discovery", 0, None),
            (c"exalate.node.ping", CF_HAVEPARAMS, Some(c"")),
            (c"exalate.node.errors", CF_HAVEPARAMS, Some(c"")),
            (c"exalate.node.queue", CF_HAVEPARAMS, Some(c",outgoing")),
            (c"exalate.node.connections", CF_HAVEPARAMS, Some(c"")),
            (c"exalate.module.version", 0, None),
        ];
        let list = item_list();
        assert_eq!(list.len(), expected.len() + 1);
        for (metric, (key, flags, test_param)) in list.iter().zip(expected) {
            // SAFETY: the table's keys and test parameters are static C strings.
            unsafe {
                assert_eq!(CStr::from_ptr(metric.key), key);
                assert_eq!(
                    (!metric.test_param.is_null()).then(|| CStr::from_ptr(metric.test_param)),
                    test_param
                );
            }
            assert_eq!(metric.flags, flags);
            assert!(metric.function.is_some());
        }
        let end = &list[expected.len()];
        assert!(end.key.is_null() && end.function.is_none() && end.test_param.is_null());
    }
}
