//! The one boundary between C and Rust. Every function C calls (the C
//! API's exports, the agent's module hooks, the item callbacks) is defined
//! with [`ffi_fn!`], which gives it the C ABI and runs its body under
//! `catch_unwind`: a panic becomes the return type's failure value
//! ([`PanicOrDefault`]), never an unwind into C (undefined behaviour, an
//! aborted agent). `#![deny(unsafe_code)]` at the crate root refuses
//! `#[no_mangle]` anywhere else, so no export can be written without it.

use crate::panic::panic_message;
use std::ffi::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};

// With panic = "abort" no panic could be caught: every guard here would be
// a lie and a bug would kill the host (the Zabbix agent). Refuse the build.
// (The file is its own, included by lib.rs, so a test can compile it alone.)
include!("unwind_required.rs");

/// What an export returns when its body panicked: a value its caller
/// cannot mistake for success (as rustls-ffi's `PanicOrDefault`). Each
/// return type says it once; an export whose type has none does not compile.
pub(crate) trait PanicOrDefault {
    /// The failure value: a constant, so that nothing can fail in making it.
    fn on_panic() -> Self;
    /// Keeps `message` (what panicked, already redacted) where the caller
    /// can read it, if the type has such a place; by default nowhere.
    fn record_panic(_message: &str) {}
}

impl PanicOrDefault for () {
    fn on_panic() {}
}

/// A static string: the empty one (never NULL, which C callers may print).
impl PanicOrDefault for *const c_char {
    fn on_panic() -> Self {
        c"".as_ptr()
    }
}

/// A table or object the caller would own or walk: none.
impl<T> PanicOrDefault for *mut T {
    fn on_panic() -> Self {
        std::ptr::null_mut()
    }
}

/// Runs an export's body; a panic becomes `R::on_panic()`.
///
/// Everything done after a panic could panic again (a thread-local already
/// destroyed, when C calls from a pthread key destructor; a payload whose
/// drop panics): a panic leaving an `extern "C"` function aborts the host.
/// So the message is made and kept under `catch_unwind` as well, the
/// payload is dropped under it, and the value returned is a constant.
pub(crate) fn guard<R: PanicOrDefault>(body: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(panic) => {
            let _ = catch_unwind(AssertUnwindSafe(|| {
                R::record_panic(&panic_message(&*panic, &[]))
            }));
            if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(panic))) {
                // A payload whose drop panicked: its own payload is leaked
                // rather than risk a third panic here.
                std::mem::forget(again);
            }
            R::on_panic()
        }
    }
}

/// Defines a function C calls, with the C ABI and a panic boundary.
///
/// `pub` ones are exported by name (`#[no_mangle]`); the others are only
/// handed to C as pointers (the module's item functions, one instance of a
/// function generic over a `const` per item). The return type
/// is always written (`-> ()` for none) and must implement
/// [`PanicOrDefault`]. Parameters are simple `name: type` pairs.
macro_rules! ffi_fn {
    ($(#[$meta:meta])* pub unsafe fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty $body:block) => {
        $(#[$meta])*
        #[no_mangle]
        #[allow(unsafe_code, clippy::unused_unit)]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            $crate::boundary::guard(move || -> $ret { $body })
        }
    };
    ($(#[$meta:meta])* pub fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty $body:block) => {
        $(#[$meta])*
        #[no_mangle]
        #[allow(unsafe_code, clippy::unused_unit)]
        pub extern "C" fn $name($($arg: $ty),*) -> $ret {
            $crate::boundary::guard(move || -> $ret { $body })
        }
    };
    ($(#[$meta:meta])* unsafe fn $name:ident<const $n:ident: $nty:ty>($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty $body:block) => {
        $(#[$meta])*
        #[allow(unsafe_code, clippy::unused_unit)]
        unsafe extern "C" fn $name<const $n: $nty>($($arg: $ty),*) -> $ret {
            $crate::boundary::guard(move || -> $ret { $body })
        }
    };
    ($(#[$meta:meta])* unsafe fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty $body:block) => {
        $(#[$meta])*
        #[allow(unsafe_code, clippy::unused_unit)]
        unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            $crate::boundary::guard(move || -> $ret { $body })
        }
    };
}
pub(crate) use ffi_fn;

#[cfg(test)]
#[allow(unsafe_code)]
mod tests {
    use super::*;

    /// A type whose message keeping panics, as `set_last_error` did from
    /// a pthread key destructor (issue 25).
    struct Fragile(u8);

    impl PanicOrDefault for Fragile {
        fn on_panic() -> Self {
            Fragile(1)
        }
        fn record_panic(_: &str) {
            panic!("the place for the message is gone");
        }
    }

    /// A payload whose drop panics.
    struct PanicsOnDrop;

    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            panic!("drop");
        }
    }

    #[test]
    fn nothing_after_a_panic_can_panic_again() {
        let value = guard(|| -> Fragile { panic!("boom") });
        assert_eq!(value.0, 1);
        let value = guard(|| -> Fragile { std::panic::panic_any(PanicsOnDrop) });
        assert_eq!(value.0, 1);
    }

    #[test]
    fn a_panic_becomes_the_failure_value() {
        let text: *const c_char = guard(|| panic!("boom"));
        // SAFETY: on_panic gives a static NUL-terminated string.
        assert_eq!(unsafe { std::ffi::CStr::from_ptr(text) }, c"");
        let list: *mut u8 = guard(|| panic!("boom"));
        assert!(list.is_null());
        guard::<()>(|| panic!("boom"));
        assert_eq!(guard(|| c"ok".as_ptr()), c"ok".as_ptr());
    }

    /// The guard lib.rs includes, compiled alone with each panic strategy.
    #[test]
    fn panic_abort_cannot_build_the_library() {
        let source = concat!(env!("CARGO_MANIFEST_DIR"), "/src/unwind_required.rs");
        let out = std::env::temp_dir().join(format!("unwind-required-{}", std::process::id()));
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
        let build = |strategy: &str| {
            std::process::Command::new(&rustc)
                .args([
                    "--edition",
                    "2021",
                    "--crate-type",
                    "lib",
                    "--emit",
                    "metadata",
                ])
                .args(["-C", &format!("panic={strategy}"), "-o"])
                .arg(&out)
                .arg(source)
                .output()
                .expect("run rustc")
        };
        let abort = build("abort");
        assert!(!abort.status.success());
        assert!(String::from_utf8_lossy(&abort.stderr).contains("needs panic = \"unwind\""));
        assert!(build("unwind").status.success());
        let _ = std::fs::remove_file(&out);
    }
}
