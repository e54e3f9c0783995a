//! The Zabbix loadable-module ABI (api version 2), declared here so the
//! module links nothing from the agent and works across agent versions.
//! Only the fields common to every version (4.0 to 7.x) are read or written,
//! save 7.0's per-item `timeout`, read only where `compat` finds a 7.0+ agent.
//!
//! The agent loads the module, calls `zbx_module_init` and `zbx_module_item_list`
//! in its parent process, then forks: item functions run in the children, so
//! every piece of state (config, HTTP agents, tokens, cache) is created on the
//! first item call, in the process that uses it.

pub mod compat;

use crate::boundary::{ffi_fn, PanicOrDefault};
use crate::config;
use crate::items::{self, Item, ItemValue};
use crate::monitor::Monitor;
use std::cell::UnsafeCell;
use std::ffi::{c_char, c_int, c_uint, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub const ZBX_MODULE_API_VERSION: c_int = 2;
pub const ZBX_MODULE_OK: c_int = 0;
pub const ZBX_MODULE_FAIL: c_int = -1;
pub const SYSINFO_RET_OK: c_int = 0;
pub const SYSINFO_RET_FAIL: c_int = 1;
pub const CF_HAVEPARAMS: c_uint = 0x01;
pub const AR_UINT64: c_int = 0x01;
pub const AR_STRING: c_int = 0x04;
pub const AR_TEXT: c_int = 0x08;
pub const AR_MESSAGE: c_int = 0x20;

pub type ItemFunction = unsafe extern "C" fn(*mut AgentRequest, *mut AgentResult) -> SysinfoRet;

/// What an item function returns (an int to the agent): SYSINFO_RET_OK or
/// SYSINFO_RET_FAIL, which is also what a panic gives.
#[repr(transparent)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SysinfoRet(pub c_int);

impl PanicOrDefault for SysinfoRet {
    fn on_panic(_: &str) -> Self {
        SysinfoRet(SYSINFO_RET_FAIL)
    }
}

/// What `zbx_module_init`/`uninit` return (an int to the agent):
/// ZBX_MODULE_OK or ZBX_MODULE_FAIL, which is also what a panic gives.
#[repr(transparent)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModuleRet(pub c_int);

impl PanicOrDefault for ModuleRet {
    fn on_panic(_: &str) -> Self {
        ModuleRet(ZBX_MODULE_FAIL)
    }
}

/// The module API version (an int to the agent); nothing in its function
/// can panic, and the version is the answer whatever happens.
#[repr(transparent)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiVersion(pub c_int);

impl PanicOrDefault for ApiVersion {
    fn on_panic(_: &str) -> Self {
        ApiVersion(ZBX_MODULE_API_VERSION)
    }
}

/// ZBX_METRIC: 32 bytes in every version.
#[repr(C)]
pub struct ZbxMetric {
    pub key: *const c_char,
    pub flags: c_uint,
    pub function: Option<ItemFunction>,
    pub test_param: *const c_char,
}

/// AGENT_REQUEST up to `mtime`: the prefix every version shares. Later
/// versions append fields (`types`, 7.0's `timeout`) that are not read here.
#[repr(C)]
pub struct AgentRequest {
    pub key: *mut c_char,
    pub nparam: c_int,
    pub params: *mut *mut c_char,
    pub lastlogsize: u64,
    pub mtime: c_int,
}

/// AGENT_RESULT as in 4.0 to 6.4 (7.0 appends `bin`, which is not touched).
#[repr(C)]
pub struct AgentResult {
    pub lastlogsize: u64,
    pub ui64: u64,
    pub dbl: f64,
    pub str_: *mut c_char,
    pub text: *mut c_char,
    pub msg: *mut c_char,
    pub log: *mut c_void,
    pub type_: c_int,
    pub mtime: c_int,
}

/// The agent's Timeout, as given by `zbx_module_item_timeout`.
static AGENT_TIMEOUT_SECS: AtomicU64 = AtomicU64::new(3);

/// Created on the first item call, in the agent process that serves it;
/// dropped by `zbx_module_uninit`, so nothing is left when the agent unloads us.
static MONITOR: Mutex<Option<Arc<Monitor>>> = Mutex::new(None);

fn monitor() -> Arc<Monitor> {
    let mut slot = MONITOR.lock().unwrap_or_else(|p| p.into_inner());
    slot.get_or_insert_with(|| {
        let monitor = Monitor::new_lazy(config::default_path());
        monitor.set_host_timeout(AGENT_TIMEOUT_SECS.load(Ordering::Relaxed));
        Arc::new(monitor)
    })
    .clone()
}

/// The item functions, one per key, each through the C boundary.
macro_rules! item_functions {
    ($($name:ident => $item:expr),* $(,)?) => {$(
        ffi_fn! {
            unsafe fn $name(request: *mut AgentRequest, result: *mut AgentResult) -> SysinfoRet {
                // SAFETY: the agent passes valid pointers for the call's duration.
                SysinfoRet(unsafe { serve_item($item, request, result) })
            }
        }
    )*};
}

item_functions! {
    item_queue_count => Item::QueueCount,
    item_queue_get => Item::QueueGet,
    item_relation_stats => Item::RelationStats,
    item_discovery => Item::Discovery,
    item_node_ping => Item::NodePing,
    item_module_version => Item::ModuleVersion,
}

/// The item table, handed to the agent as a pointer: the agent rewrites
/// each entry's flags in place, so it must be writable, and it lives as long
/// as the process. Rust never reads or writes it after the hand-over; the
/// wrapper is what lets a `static` hold raw pointers and interior mutability
/// without `static mut` (no references to a `static mut`, edition 2024).
struct ItemList(UnsafeCell<[ZbxMetric; 7]>);

// SAFETY: Rust code only takes the table's address; the agent's own
// threads and processes are what write it, under the agent's rules.
#[allow(unsafe_code)]
unsafe impl Sync for ItemList {}

static ITEM_LIST: ItemList = ItemList(UnsafeCell::new([
    ZbxMetric {
        key: c"exalate.queue.count".as_ptr(),
        flags: CF_HAVEPARAMS,
        function: Some(item_queue_count),
        test_param: c",AllContent,syncrequests".as_ptr(),
    },
    ZbxMetric {
        key: c"exalate.queue.get".as_ptr(),
        flags: CF_HAVEPARAMS,
        function: Some(item_queue_get),
        test_param: c",AllContent,errorresponses".as_ptr(),
    },
    ZbxMetric {
        key: c"exalate.relation.stats".as_ptr(),
        flags: CF_HAVEPARAMS,
        function: Some(item_relation_stats),
        test_param: c",AllContent".as_ptr(),
    },
    ZbxMetric {
        key: c"exalate.discovery".as_ptr(),
        flags: 0,
        function: Some(item_discovery),
        test_param: std::ptr::null(),
    },
    ZbxMetric {
        key: c"exalate.node.ping".as_ptr(),
        flags: CF_HAVEPARAMS,
        function: Some(item_node_ping),
        test_param: c"".as_ptr(),
    },
    ZbxMetric {
        key: c"exalate.module.version".as_ptr(),
        flags: 0,
        function: Some(item_module_version),
        test_param: std::ptr::null(),
    },
    ZbxMetric {
        key: std::ptr::null(),
        flags: 0,
        function: None,
        test_param: std::ptr::null(),
    },
]));

ffi_fn! {
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
        let monitor = MONITOR.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(monitor);
        crate::http::forget_shared_hosts();
        ModuleRet(ZBX_MODULE_OK)
    }
}

ffi_fn! {
    pub fn zbx_module_item_list() -> *mut ZbxMetric {
        ITEM_LIST.0.get().cast()
    }
}

ffi_fn! {
    pub fn zbx_module_item_timeout(timeout: c_int) -> () {
        AGENT_TIMEOUT_SECS.store(timeout.clamp(1, 30) as u64, Ordering::Relaxed);
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
        // SAFETY: as above; the layout is the one `compat` detected.
        let timeout = unsafe { compat::item_timeout(request, compat::host_has_item_timeouts()) };
        items::answer(&monitor(), item, &params, timeout)
    }));
    let outcome = outcome.unwrap_or_else(|panic| {
        // The monitor, if making it was not what panicked.
        let monitor = MONITOR.lock().unwrap_or_else(|p| p.into_inner()).clone();
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
pub fn malloc_cstring(s: &str) -> *mut c_char {
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
