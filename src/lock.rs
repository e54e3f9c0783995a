//! Locking that survives a panic: a thread that panicked while holding a
//! lock leaves plain data behind (counts, caches, a socket), and the agent's
//! process must keep serving, so a poisoned lock is taken as it is.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, poisoned or not.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
