//! One node's cache of queue snapshots: what a fetch told (counts, reasons,
//! `queue.get` text, or the failure), reused for `cache_ttl` and bounded by
//! bytes. Entries past the TTL are dropped when found; the oldest go first
//! when a new one would pass the budget.

use crate::error::Result;
use crate::lock::lock;
use crate::queue::{Queue, QueueSnapshot};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What an entry costs beyond its strings: the map slot, the Arc, the key.
const ENTRY_OVERHEAD: usize = 160;

pub(crate) struct Cache {
    ttl: Duration,
    max_bytes: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<(String, Queue), Entry>,
    bytes: usize,
    /// Bumped by `clear`: a fetch that started before it does not store its
    /// (possibly stale) result after it.
    generation: u64,
}

struct Entry {
    fetched_at: Instant,
    outcome: Result<Arc<QueueSnapshot>>,
    bytes: usize,
}

impl Cache {
    pub(crate) fn new(ttl: Duration, max_bytes: u64) -> Cache {
        Cache {
            ttl,
            max_bytes: usize::try_from(max_bytes).unwrap_or(usize::MAX),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn enabled(&self) -> bool {
        !self.ttl.is_zero() && self.max_bytes > 0
    }

    /// The fresh outcome of a fetch of `queue`, when it has what is asked:
    /// `with_text` asks for the `queue.get` text, which a count may not keep.
    pub(crate) fn get(
        &self,
        relation: &str,
        queue: Queue,
        with_text: bool,
    ) -> Option<Result<Arc<QueueSnapshot>>> {
        if !self.enabled() {
            return None;
        }
        let mut inner = lock(&self.inner);
        let key = (relation.to_string(), queue);
        let entry = inner.entries.get(&key)?;
        if entry.fetched_at.elapsed() >= self.ttl {
            inner.remove(&key);
            return None;
        }
        match &entry.outcome {
            Ok(snapshot) if with_text && snapshot.text.is_none() => None,
            outcome => Some(outcome.clone()),
        }
    }

    /// What `insert` needs to know that no `clear` came in between.
    pub(crate) fn generation(&self) -> u64 {
        lock(&self.inner).generation
    }

    /// Keeps `outcome`, fetched since `generation`, within the byte budget.
    pub(crate) fn insert(
        &self,
        generation: u64,
        relation: &str,
        queue: Queue,
        outcome: &Result<Arc<QueueSnapshot>>,
    ) {
        if !self.enabled() {
            return;
        }
        let bytes = ENTRY_OVERHEAD
            + relation.len()
            + match outcome {
                Ok(snapshot) => snapshot.heap_bytes(),
                Err(e) => e.message().len(),
            };
        let mut inner = lock(&self.inner);
        if inner.generation != generation {
            return;
        }
        let key = (relation.to_string(), queue);
        inner.remove(&key);
        let ttl = self.ttl;
        inner.retain_fresh(ttl);
        if bytes > self.max_bytes {
            return;
        }
        while inner.bytes + bytes > self.max_bytes {
            let Some(oldest) = inner
                .entries
                .iter()
                .min_by_key(|(_, e)| e.fetched_at)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            inner.remove(&oldest);
        }
        inner.bytes += bytes;
        inner.entries.insert(
            key,
            Entry {
                fetched_at: Instant::now(),
                outcome: outcome.clone(),
                bytes,
            },
        );
    }

    /// Forgets everything, also what fetches under way would store.
    pub(crate) fn clear(&self) {
        let mut inner = lock(&self.inner);
        inner.entries.clear();
        inner.bytes = 0;
        inner.generation += 1;
    }

    /// The bytes the entries hold, as counted against `cache_max_bytes`.
    pub(crate) fn bytes(&self) -> usize {
        lock(&self.inner).bytes
    }
}

impl Inner {
    fn remove(&mut self, key: &(String, Queue)) {
        if let Some(entry) = self.entries.remove(key) {
            self.bytes -= entry.bytes;
        }
    }

    fn retain_fresh(&mut self, ttl: Duration) {
        let before = self.entries.len();
        self.entries.retain(|_, e| e.fetched_at.elapsed() < ttl);
        if self.entries.len() != before {
            self.bytes = self.entries.values().map(|e| e.bytes).sum();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, ErrorKind};

    fn snapshot(text_bytes: usize) -> Result<Arc<QueueSnapshot>> {
        Ok(Arc::new(QueueSnapshot {
            count: 1,
            text: Some(Arc::new("x".repeat(text_bytes))),
            ..QueueSnapshot::default()
        }))
    }

    #[test]
    fn stays_under_the_budget_dropping_the_oldest() {
        let cache = Cache::new(Duration::from_secs(600), 10_000);
        for i in 0..20 {
            let g = cache.generation();
            cache.insert(g, &format!("r{i}"), Queue::SyncRequests, &snapshot(3_000));
            assert!(cache.bytes() <= 10_000, "{}", cache.bytes());
        }
        assert!(cache.get("r19", Queue::SyncRequests, true).is_some());
        assert!(cache.get("r18", Queue::SyncRequests, true).is_some());
        assert!(cache.get("r0", Queue::SyncRequests, false).is_none());
        // Larger than the whole budget: served, not kept.
        cache.insert(
            cache.generation(),
            "big",
            Queue::SyncRequests,
            &snapshot(20_000),
        );
        assert!(cache.get("big", Queue::SyncRequests, false).is_none());
        assert!(cache.bytes() <= 10_000);
    }

    #[test]
    fn expired_entries_are_dropped_when_found() {
        let cache = Cache::new(Duration::from_millis(1), 1 << 20);
        cache.insert(
            cache.generation(),
            "r",
            Queue::BlobRequests,
            &snapshot(1000),
        );
        assert!(cache.bytes() > 1000);
        std::thread::sleep(Duration::from_millis(5));
        assert!(cache.get("r", Queue::BlobRequests, false).is_none());
        assert_eq!(cache.bytes(), 0);
    }

    #[test]
    fn a_fetch_from_before_a_clear_is_not_kept() {
        let cache = Cache::new(Duration::from_secs(600), 1 << 20);
        let before = cache.generation();
        cache.clear();
        cache.insert(before, "r", Queue::SyncRequests, &snapshot(10));
        assert!(cache.get("r", Queue::SyncRequests, false).is_none());
        let failure = Err(Error::new(ErrorKind::Timeout, "timed out"));
        cache.insert(cache.generation(), "r", Queue::SyncRequests, &failure);
        assert_eq!(
            cache
                .get("r", Queue::SyncRequests, true)
                .unwrap()
                .unwrap_err()
                .kind(),
            ErrorKind::Timeout
        );
    }

    #[test]
    fn a_count_without_text_does_not_serve_a_get() {
        let cache = Cache::new(Duration::from_secs(600), 1 << 20);
        let counted = Ok(Arc::new(QueueSnapshot {
            count: 7,
            ..QueueSnapshot::default()
        }));
        cache.insert(cache.generation(), "r", Queue::SyncRequests, &counted);
        assert!(cache.get("r", Queue::SyncRequests, true).is_none());
        assert_eq!(
            cache
                .get("r", Queue::SyncRequests, false)
                .unwrap()
                .unwrap()
                .count,
            7
        );
    }
}
