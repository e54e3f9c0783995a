//! Secret text (a shared secret, a token read or minted) that is zeroed
//! when dropped, so it does not linger in freed heap memory of the agent
//! process (core dumps, a later allocation's garbage).

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(String);

impl Secret {
    pub(crate) fn new(text: String) -> Secret {
        Secret(text)
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// The secrets' texts, as the redaction functions take them.
pub(crate) fn texts(secrets: &[Secret]) -> Vec<&str> {
    secrets.iter().map(Secret::as_str).collect()
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Test builds: a secret with this text panics when dropped once
/// `zbx_module_uninit` has begun, to prove that the monitor is dropped
/// inside the module's panic boundary.
#[cfg(feature = "fault-injection")]
pub(crate) const PANIC_ON_DROP_IN_UNINIT: &str = "exalate-test-panic-on-drop";
#[cfg(feature = "fault-injection")]
pub(crate) static UNINIT_STARTED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

impl Drop for Secret {
    fn drop(&mut self) {
        #[cfg(feature = "fault-injection")]
        let injected = self.0 == PANIC_ON_DROP_IN_UNINIT
            && UNINIT_STARTED.load(std::sync::atomic::Ordering::SeqCst);
        zero(&mut std::mem::take(&mut self.0).into_bytes());
        #[cfg(feature = "fault-injection")]
        if injected {
            panic!("injected panic in a drop during zbx_module_uninit");
        }
    }
}

/// Overwrites the whole allocation of `bytes` (length and spare capacity)
/// with zeros, for a buffer about to be freed. `black_box` keeps the
/// compiler from dropping the writes as dead stores.
pub(crate) fn zero(bytes: &mut Vec<u8>) {
    bytes.resize(bytes.capacity(), 0);
    bytes.iter_mut().for_each(|b| *b = 0);
    std::hint::black_box(&*bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let s = Secret::new("hunter2-value".into());
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(s.as_str(), "hunter2-value");
    }

    #[test]
    fn zero_clears_the_whole_allocation() {
        let mut bytes = Vec::with_capacity(64);
        bytes.extend_from_slice(b"topsecret");
        zero(&mut bytes);
        assert_eq!(bytes.len(), bytes.capacity());
        assert!(bytes.iter().all(|&b| b == 0));
    }
}
