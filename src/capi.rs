//! The C API: a thin layer over [`Monitor`] for C and C++ hosts that are
//! not Zabbix. In the style of rustls-ffi: an opaque handle, a result code
//! per failure kind, out-parameters written only on success, every pointer
//! checked for NULL, and one panic boundary around every function.
//! Strings handed out are freed with `exalate_string_free`, nothing else.
//!
//! Safety, for every function: each pointer is NULL or valid (a client from
//! `exalate_client_open`, a NUL-terminated string, a writable out-parameter).
//! Stated once here rather than on each function, where it would also fill
//! the generated header.
#![allow(
    non_camel_case_types,
    clippy::upper_case_acronyms,
    clippy::missing_safety_doc
)]

use crate::boundary::{ffi_fn, PanicOrDefault};
use crate::error::{Error, ErrorKind};
use crate::monitor::Monitor;
use crate::timeout;
use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::path::PathBuf;

/// A monitor of the Exalate nodes in one config file. Opaque.
///
/// Thread safety: one client may be used from many threads at once; every
/// function takes it as `const`. Free it once, after the last call.
pub struct exalate_client {
    monitor: Monitor,
}

// The header promises that one client serves many threads: the build
// fails if a change to the core ever makes that untrue.
const _: () = {
    const fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<exalate_client>()
};

/// The result codes, written once: the C enum (with its documentation),
/// each code's name and the core's error kind it stands for all come from
/// this list. build.rs expands it for cbindgen the same way.
macro_rules! result_codes {
    (
        $(#[$enum_meta:meta])*
        pub enum exalate_result {
            $(
                $(#[doc = $doc:literal])*
                $(#[kind($kind:ident)])?
                $name:ident = $value:literal,
            )*
        }
    ) => {
        $(#[$enum_meta])*
        #[repr(C)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum exalate_result {
            $( $(#[doc = $doc])* $name = $value, )*
        }

        impl exalate_result {
            /// Every code, in order.
            pub const ALL: &'static [exalate_result] = &[$(exalate_result::$name),*];

            /// The code's name as written in C, e.g. "EXALATE_TIMEOUT".
            pub fn name(self) -> &'static CStr {
                match self {
                    $(exalate_result::$name => {
                        CStr::from_bytes_with_nul(concat!(stringify!($name), "\0").as_bytes())
                            .unwrap_or(c"EXALATE_UNKNOWN_RESULT")
                    })*
                }
            }
        }

        impl From<ErrorKind> for exalate_result {
            fn from(kind: ErrorKind) -> Self {
                match kind {
                    $($(ErrorKind::$kind => exalate_result::$name,)?)*
                }
            }
        }
    };
}

result_codes! {
    /// What a call did: `EXALATE_OK`, or the kind of failure. The message for
    /// the failure is in `exalate_last_error()`.
    pub enum exalate_result {
        /// The call did what it was asked.
        EXALATE_OK = 0,
        /// A NULL pointer, a string that is not UTF-8, a bad parameter.
        #[kind(InvalidArgument)]
        EXALATE_INVALID_ARGUMENT = 1,
        /// The config file is missing or invalid, or a secret/token/CA file is unusable.
        #[kind(Config)]
        EXALATE_CONFIG_ERROR = 2,
        /// No node of that name in the config.
        #[kind(UnknownNode)]
        EXALATE_UNKNOWN_NODE = 3,
        /// Not one of the six queue names.
        #[kind(UnknownQueue)]
        EXALATE_UNKNOWN_QUEUE = 4,
        /// The node does not know the relation (HTTP 400).
        #[kind(RelationNotFound)]
        EXALATE_RELATION_NOT_FOUND = 5,
        /// The node rejected the credentials (HTTP 401).
        #[kind(AuthRejected)]
        EXALATE_AUTH_REJECTED = 6,
        /// The node saw no credentials (HTTP 403).
        #[kind(NotAuthenticated)]
        EXALATE_NOT_AUTHENTICATED = 7,
        /// The node failed (HTTP 5xx).
        #[kind(NodeError)]
        EXALATE_NODE_ERROR = 8,
        /// The node did not answer within the timeout.
        #[kind(Timeout)]
        EXALATE_TIMEOUT = 9,
        /// Connection refused, reset, or the host name does not resolve.
        #[kind(ConnectionFailed)]
        EXALATE_CONNECTION_FAILED = 10,
        /// The TLS handshake or certificate check failed.
        #[kind(Tls)]
        EXALATE_TLS_ERROR = 11,
        /// Malformed or unexpected JSON, an unexpected status or redirect.
        #[kind(BadResponse)]
        EXALATE_BAD_RESPONSE = 12,
        /// The answer is larger than max_response_bytes.
        #[kind(TooLarge)]
        EXALATE_RESPONSE_TOO_LARGE = 13,
        /// A bug in the library (a caught panic); the client stays usable.
        #[kind(Internal)]
        EXALATE_INTERNAL_ERROR = 14,
    }
}

/// Called by `exalate_for_each_relation` once per configured relation.
/// The callback must return normally: it must not unwind (a C++ exception)
/// or longjmp out of the call, which would skip the library's cleanup and
/// leave its state undefined.
pub type exalate_relation_callback = Option<
    unsafe extern "C" fn(userdata: *mut c_void, node: *const c_char, relation: *const c_char),
>;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Keeps `message` as this thread's last error. A thread whose
/// thread-locals are already destroyed (C calling from a pthread key
/// destructor) has no place for it: the message is dropped, the call
/// still returns its result code.
fn set_last_error(message: &str) {
    let text = CString::new(message.replace('\0', " ")).unwrap_or_default();
    let _ = LAST_ERROR.try_with(|e| {
        if let Ok(mut last) = e.try_borrow_mut() {
            *last = text;
        }
    });
}

fn fail(error: Error) -> exalate_result {
    set_last_error(error.message());
    error.kind().into()
}

/// A panic in an export: EXALATE_INTERNAL_ERROR, with a message.
impl PanicOrDefault for exalate_result {
    fn on_panic() -> Self {
        exalate_result::EXALATE_INTERNAL_ERROR
    }
    fn record_panic(message: &str) {
        set_last_error(&format!("internal error in libexalate_zabbix ({message})"));
    }
}

/// A required C string argument as &str, or return INVALID_ARGUMENT.
macro_rules! arg_str {
    ($ptr:expr, $name:literal) => {
        // SAFETY: the caller passes NULL or a NUL-terminated string.
        match unsafe { c_str($ptr) } {
            Some(Ok(s)) => s,
            Some(Err(())) => return invalid(concat!($name, " is not valid UTF-8")),
            None => return invalid(concat!($name, " is NULL")),
        }
    };
}

/// A required pointer argument, or return INVALID_ARGUMENT.
macro_rules! arg_ref {
    ($ptr:expr, $name:literal) => {
        // SAFETY: the caller passes NULL or a pointer from exalate_client_open.
        match unsafe { $ptr.as_ref() } {
            Some(r) => r,
            None => return invalid(concat!($name, " is NULL")),
        }
    };
}

/// A required out-parameter, or return INVALID_ARGUMENT.
macro_rules! arg_out {
    ($ptr:expr, $name:literal) => {
        if $ptr.is_null() {
            return invalid(concat!($name, " is NULL"));
        }
    };
}

fn invalid(message: &str) -> exalate_result {
    set_last_error(message);
    exalate_result::EXALATE_INVALID_ARGUMENT
}

/// # Safety
/// `ptr` is NULL or a NUL-terminated string.
#[allow(unsafe_code)]
unsafe fn c_str<'a>(ptr: *const c_char) -> Option<Result<&'a str, ()>> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    Some(unsafe { CStr::from_ptr(ptr) }.to_str().map_err(|_| ()))
}

/// Writes `value` as a fresh string to `*out`.
///
/// # Safety
/// `out` is non-NULL and writable.
#[allow(unsafe_code)]
unsafe fn give_string(out: *mut *mut c_char, value: String) -> exalate_result {
    let Ok(text) = CString::new(value) else {
        return fail(Error::new(
            ErrorKind::BadResponse,
            "the value holds a NUL character",
        ));
    };
    // SAFETY: caller's contract.
    unsafe { *out = text.into_raw() };
    exalate_result::EXALATE_OK
}

ffi_fn! {
    /// Opens a client for the config file at `config_path` (NULL: the path in
    /// `$EXALATE_ZABBIX_CONFIG`, else /etc/zabbix/exalate_zabbix.toml). The file
    /// is read and checked now; later changes to it are picked up by later
    /// calls. No network I/O happens here.
    ///
    /// On success `*out` is a client to free with `exalate_client_free`;
    /// on failure `*out` is untouched.
    pub unsafe fn exalate_client_open(
        config_path: *const c_char,
        out: *mut *mut exalate_client,
    ) -> exalate_result {
        arg_out!(out, "out");
        // SAFETY: NULL or a NUL-terminated string.
        let path = match unsafe { c_str(config_path) } {
            None => crate::config::default_path(),
            Some(Ok(p)) => PathBuf::from(p),
            Some(Err(())) => return invalid("config_path is not valid UTF-8"),
        };
        match Monitor::open(path) {
            Ok(monitor) => {
                let client = Box::new(exalate_client { monitor });
                // SAFETY: checked non-NULL above.
                unsafe { *out = Box::into_raw(client) };
                exalate_result::EXALATE_OK
            }
            Err(e) => fail(e),
        }
    }
}

ffi_fn! {
    /// Frees a client from `exalate_client_open`. NULL is ignored. No other
    /// thread may be using the client.
    pub unsafe fn exalate_client_free(client: *mut exalate_client) -> () {
        if !client.is_null() {
            // SAFETY: from Box::into_raw in exalate_client_open, freed once.
            drop(unsafe { Box::from_raw(client) });
        }
    }
}

ffi_fn! {
    /// Sets the timeout, in seconds (1 to 30), for nodes whose config has no
    /// `timeout`; the default is 3. It bounds each whole call.
    pub unsafe fn exalate_client_set_timeout(
        client: *const exalate_client,
        seconds: c_uint,
    ) -> exalate_result {
        let client = arg_ref!(client, "client");
        if !timeout::TIMEOUT_RANGE_SECS.contains(&u64::from(seconds)) {
            return invalid(timeout::OUT_OF_RANGE);
        }
        client.monitor.set_agent_timeout(u64::from(seconds));
        exalate_result::EXALATE_OK
    }
}

ffi_fn! {
    /// The number of entries in `queue` (one of syncrequests, blobrequests,
    /// syncresponses, blobresponses, errorresponses, bloberrorresponses) of
    /// `relation` on `node` (an empty node names the only configured one).
    /// On success writes `*out`.
    pub unsafe fn exalate_queue_count(
        client: *const exalate_client,
        node: *const c_char,
        relation: *const c_char,
        queue: *const c_char,
        out: *mut u64,
    ) -> exalate_result {
        let client = arg_ref!(client, "client");
        let node = arg_str!(node, "node");
        let relation = arg_str!(relation, "relation");
        let queue = arg_str!(queue, "queue");
        arg_out!(out, "out");
        match client.monitor.queue_count(node, relation, queue) {
            Ok(count) => {
                // SAFETY: checked non-NULL above.
                unsafe { *out = count };
                exalate_result::EXALATE_OK
            }
            Err(e) => fail(e),
        }
    }
}

ffi_fn! {
    /// The entries of a queue as a JSON array, each `encodedPayload` removed.
    /// On success `*out_json` is a string to free with `exalate_string_free`.
    pub unsafe fn exalate_queue_get(
        client: *const exalate_client,
        node: *const c_char,
        relation: *const c_char,
        queue: *const c_char,
        out_json: *mut *mut c_char,
    ) -> exalate_result {
        let client = arg_ref!(client, "client");
        let node = arg_str!(node, "node");
        let relation = arg_str!(relation, "relation");
        let queue = arg_str!(queue, "queue");
        arg_out!(out_json, "out_json");
        match client.monitor.queue_get(node, relation, queue) {
            // SAFETY: checked non-NULL above.
            Ok(json) => unsafe { give_string(out_json, json.to_string()) },
            Err(e) => fail(e),
        }
    }
}

ffi_fn! {
    /// The six queue counts, the pending error reasons and per queue the
    /// oldest event's id (the smallest `syncEventId` present, 0 when none) of
    /// a relation, as a JSON object: {"syncrequests":N, ...,
    /// "error_reasons":{"REASON":N}, "oldest_event_id":{"syncrequests":N, ...}}.
    /// On success `*out_json` is a string to free with `exalate_string_free`.
    pub unsafe fn exalate_relation_stats(
        client: *const exalate_client,
        node: *const c_char,
        relation: *const c_char,
        out_json: *mut *mut c_char,
    ) -> exalate_result {
        let client = arg_ref!(client, "client");
        let node = arg_str!(node, "node");
        let relation = arg_str!(relation, "relation");
        arg_out!(out_json, "out_json");
        match client.monitor.relation_stats(node, relation) {
            // SAFETY: checked non-NULL above.
            Ok(json) => unsafe { give_string(out_json, json) },
            Err(e) => fail(e),
        }
    }
}

ffi_fn! {
    /// Whether `node` answers and accepts the credentials: `*out_up` is 1 or 0.
    pub unsafe fn exalate_node_ping(
        client: *const exalate_client,
        node: *const c_char,
        out_up: *mut c_int,
    ) -> exalate_result {
        let client = arg_ref!(client, "client");
        let node = arg_str!(node, "node");
        arg_out!(out_up, "out_up");
        match client.monitor.node_ping(node) {
            Ok(up) => {
                // SAFETY: checked non-NULL above.
                unsafe { *out_up = c_int::from(up) };
                exalate_result::EXALATE_OK
            }
            Err(e) => fail(e),
        }
    }
}

ffi_fn! {
    /// The errors on `node` that its customer monitor endpoint counts
    /// (`numErrors` at the node's `cmonitor_url`, those above single
    /// relations included). On success writes `*out`. A node without
    /// `cmonitor_url` fails with EXALATE_CONFIG_ERROR and a message that
    /// says so.
    pub unsafe fn exalate_node_errors(
        client: *const exalate_client,
        node: *const c_char,
        out: *mut u64,
    ) -> exalate_result {
        let client = arg_ref!(client, "client");
        let node = arg_str!(node, "node");
        arg_out!(out, "out");
        match client.monitor.node_errors(node) {
            Ok(errors) => {
                // SAFETY: checked non-NULL above.
                unsafe { *out = errors };
                exalate_result::EXALATE_OK
            }
            Err(e) => fail(e),
        }
    }
}

ffi_fn! {
    /// The node's whole sync queue in `direction` ("outgoing" or
    /// "incoming"): the total of its issuehub 4.0 API (asked with
    /// `limit=0`), with the node's `api_*` credentials. On success writes
    /// `*out`. A node without them fails with EXALATE_CONFIG_ERROR and a
    /// message naming the keys to set.
    pub unsafe fn exalate_node_queue(
        client: *const exalate_client,
        node: *const c_char,
        direction: *const c_char,
        out: *mut u64,
    ) -> exalate_result {
        let client = arg_ref!(client, "client");
        let node = arg_str!(node, "node");
        let direction = arg_str!(direction, "direction");
        arg_out!(out, "out");
        match client.monitor.node_queue(node, direction) {
            Ok(total) => {
                // SAFETY: checked non-NULL above.
                unsafe { *out = total };
                exalate_result::EXALATE_OK
            }
            Err(e) => fail(e),
        }
    }
}

ffi_fn! {
    /// The node's connections with their status, as a JSON array:
    /// [{"name":"...","status":"ACTIVE","remote":"https://..."}, ...]
    /// (issuehub 4.0, the node's `api_*` credentials). On success
    /// `*out_json` is a string to free with `exalate_string_free`.
    pub unsafe fn exalate_node_connections(
        client: *const exalate_client,
        node: *const c_char,
        out_json: *mut *mut c_char,
    ) -> exalate_result {
        let client = arg_ref!(client, "client");
        let node = arg_str!(node, "node");
        arg_out!(out_json, "out_json");
        match client.monitor.node_connections(node) {
            // SAFETY: checked non-NULL above.
            Ok(json) => unsafe { give_string(out_json, json) },
            Err(e) => fail(e),
        }
    }
}

ffi_fn! {
    /// Calls `callback(userdata, node, relation)` for every relation in the
    /// config, in order. The strings are valid only during the callback.
    pub unsafe fn exalate_for_each_relation(
        client: *const exalate_client,
        callback: exalate_relation_callback,
        userdata: *mut c_void,
    ) -> exalate_result {
        let client = arg_ref!(client, "client");
        let Some(callback) = callback else {
            return invalid("callback is NULL");
        };
        let nodes = match client.monitor.relations() {
            Ok(nodes) => nodes,
            Err(e) => return fail(e),
        };
        for (node, relations) in nodes {
            let node = CString::new(node).unwrap_or_default();
            for relation in relations {
                let relation = CString::new(relation).unwrap_or_default();
                // SAFETY: the caller's callback, with strings alive for the call.
                unsafe { callback(userdata, node.as_ptr(), relation.as_ptr()) };
            }
        }
        exalate_result::EXALATE_OK
    }
}

ffi_fn! {
    /// This thread's message for its last failed call ("" if none). The string
    /// belongs to the library and stays valid until this thread's next failure.
    pub fn exalate_last_error() -> *const c_char {
        // Gone (a pthread key destructor, after the thread-locals): "".
        LAST_ERROR
            .try_with(|e| e.try_borrow().map_or(c"".as_ptr(), |m| m.as_ptr()))
            .unwrap_or(c"".as_ptr())
    }
}

ffi_fn! {
    /// Copies this thread's last error message, NUL-terminated, into `buf`
    /// (`len` bytes), so that it outlives the next call and the thread.
    /// `*needed` (when not NULL) is set to the size the whole message needs,
    /// NUL included. A `buf` too small (or NULL) gets as much as fits, cut
    /// at a character boundary and NUL-terminated when `len` > 0, and the
    /// result is EXALATE_INVALID_ARGUMENT. The last error itself is never
    /// changed by this call.
    pub unsafe fn exalate_last_error_copy(
        buf: *mut c_char,
        len: usize,
        needed: *mut usize,
    ) -> exalate_result {
        let copy = |bytes: &[u8]| {
            if !needed.is_null() {
                // SAFETY: a writable out-parameter, checked non-NULL.
                unsafe { *needed = bytes.len() + 1 };
            }
            if buf.is_null() || len == 0 {
                return exalate_result::EXALATE_INVALID_ARGUMENT;
            }
            let fits = bytes.len() < len;
            let mut n = bytes.len().min(len - 1);
            // The message is UTF-8: never cut inside a character.
            while n > 0 && n < bytes.len() && (bytes[n] & 0xC0) == 0x80 {
                n -= 1;
            }
            // SAFETY: `buf` has room for `len` > n bytes, by the caller's contract.
            unsafe {
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.cast::<u8>(), n);
                *buf.add(n) = 0;
            }
            if fits {
                exalate_result::EXALATE_OK
            } else {
                exalate_result::EXALATE_INVALID_ARGUMENT
            }
        };
        // Gone (a pthread key destructor, after the thread-locals): "".
        LAST_ERROR
            .try_with(|e| match e.try_borrow() {
                Ok(message) => copy(message.as_bytes()),
                Err(_) => copy(b""),
            })
            .unwrap_or_else(|_| copy(b""))
    }
}

ffi_fn! {
    /// The name of a result code, e.g. "EXALATE_TIMEOUT"; a static string.
    /// Takes an int so that any value is safe: unknown ones give
    /// "EXALATE_UNKNOWN_RESULT".
    pub fn exalate_result_name(result: c_int) -> *const c_char {
        exalate_result::ALL
            .iter()
            .find(|r| **r as c_int == result)
            .map_or(c"EXALATE_UNKNOWN_RESULT", |r| r.name())
            .as_ptr()
    }
}

ffi_fn! {
    /// Frees a string this library returned. NULL is ignored.
    pub unsafe fn exalate_string_free(s: *mut c_char) -> () {
        if !s.is_null() {
            // SAFETY: from CString::into_raw in give_string, freed once.
            drop(unsafe { CString::from_raw(s) });
        }
    }
}

ffi_fn! {
    /// The library's version, e.g. "0.1.0"; a static string.
    pub fn exalate_version() -> *const c_char {
        concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
    }
}
