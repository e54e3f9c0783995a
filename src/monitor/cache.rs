//! One node's cache of queue snapshots: what a fetch told (counts, reasons,
//! `queue.get` text, or the failure), reused for `cache_ttl` and bounded by
//! bytes. Entries past the TTL are dropped when found; the oldest go first
//! when a new one would pass the budget.

use crate::error::Result;
use crate::lock::lock;
use crate::queue::{Queue, QueueSnapshot};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
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
    /// The fetches under way: who asks for a queue meanwhile waits for the
    /// fetch's outcome instead of asking the node again.
    flights: HashMap<(String, Queue), Arc<Flight>>,
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

/// A fetch under way, and its outcome once there.
pub struct Flight {
    /// Set by a `queue.get` that joined: the fetch keeps all the text.
    pub keep_all: AtomicBool,
    outcome: Mutex<Landing>,
    landed: Condvar,
}

enum Landing {
    InFlight,
    Done(Result<Arc<QueueSnapshot>>),
    /// The fetch ended without an outcome (it panicked).
    Abandoned,
}

/// What a waiter got from a fetch in flight.
pub enum Waited {
    Done(Result<Arc<QueueSnapshot>>),
    /// Its own deadline came first.
    TimedOut,
    /// The fetch ended without an outcome: ask again.
    Abandoned,
}

/// Whether this asker fetches (and then lands the outcome for the others)
/// or waits for the fetch under way.
pub enum Join<'a> {
    Lead(Lead<'a>),
    Wait(Arc<Flight>),
}

/// The asker who fetches; dropped without landing (a panic), it lets the
/// waiters go to ask again.
pub struct Lead<'a> {
    cache: &'a Cache,
    key: (String, Queue),
    pub flight: Arc<Flight>,
}

impl Flight {
    /// The outcome, or nothing by `until`.
    pub fn wait(&self, until: Instant) -> Waited {
        let mut landing = lock(&self.outcome);
        loop {
            match &*landing {
                Landing::Done(outcome) => return Waited::Done(outcome.clone()),
                Landing::Abandoned => return Waited::Abandoned,
                Landing::InFlight => {}
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Waited::TimedOut;
            }
            landing = self
                .landed
                .wait_timeout(landing, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn land(&self, landing: Landing) {
        *lock(&self.outcome) = landing;
        self.landed.notify_all();
    }
}

impl Lead<'_> {
    /// Gives the waiters `outcome` (kept in the cache before, by `insert`).
    /// Nobody joins once it lands: a waiter that asks again (a get that
    /// found no text) leads a fetch of its own.
    pub fn land(self, outcome: &Result<Arc<QueueSnapshot>>) {
        self.leave();
        self.flight.land(Landing::Done(outcome.clone()));
    }

    fn leave(&self) {
        let mut inner = lock(&self.cache.inner);
        if inner
            .flights
            .get(&self.key)
            .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
        {
            inner.flights.remove(&self.key);
        }
    }
}

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        self.leave();
        let mut landing = self
            .flight
            .outcome
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if matches!(*landing, Landing::InFlight) {
            *landing = Landing::Abandoned;
        }
        drop(landing);
        self.flight.landed.notify_all();
    }
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

    /// Joins the fetch of `queue` under way, or leads a new one; `None`
    /// when nothing is reused (`cache_ttl = 0`). A `queue.get` that joins a
    /// count's fetch asks it to keep all the text.
    pub fn join(&self, relation: &str, queue: Queue, need_text: bool) -> Option<Join<'_>> {
        if !self.enabled() {
            return None;
        }
        let key = (relation.to_string(), queue);
        let mut inner = lock(&self.inner);
        if let Some(flight) = inner.flights.get(&key) {
            if need_text {
                flight.keep_all.store(true, Ordering::Relaxed);
            }
            return Some(Join::Wait(flight.clone()));
        }
        let flight = Arc::new(Flight {
            keep_all: AtomicBool::new(need_text),
            outcome: Mutex::new(Landing::InFlight),
            landed: Condvar::new(),
        });
        inner.flights.insert(key.clone(), flight.clone());
        Some(Join::Lead(Lead {
            cache: self,
            key,
            flight,
        }))
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
        // Fetches under way serve their own waiters, nobody new.
        inner.flights.clear();
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
    fn a_fetch_in_flight_serves_its_waiters_each_within_its_deadline() {
        let cache = Cache::new(Duration::from_secs(600), 1 << 20);
        let Some(Join::Lead(lead)) = cache.join("r", Queue::SyncRequests, false) else {
            panic!("the first asker leads");
        };
        assert!(!lead.flight.keep_all.load(Ordering::Relaxed));
        let Some(Join::Wait(flight)) = cache.join("r", Queue::SyncRequests, true) else {
            panic!("the second one waits");
        };
        assert!(
            lead.flight.keep_all.load(Ordering::Relaxed),
            "a get asks for the text"
        );
        let soon = Instant::now() + Duration::from_millis(20);
        assert!(matches!(flight.wait(soon), Waited::TimedOut));
        std::thread::scope(|s| {
            let waiter = s.spawn(|| flight.wait(Instant::now() + Duration::from_secs(30)));
            lead.land(&snapshot(5));
            assert!(matches!(waiter.join().unwrap(), Waited::Done(Ok(s)) if s.count == 1));
        });
        // Landed: the next asker leads a fetch of its own; one dropped
        // without landing lets its waiters ask again.
        let Some(Join::Lead(lead)) = cache.join("r", Queue::SyncRequests, false) else {
            panic!("a new fetch");
        };
        let Some(Join::Wait(flight)) = cache.join("r", Queue::SyncRequests, false) else {
            panic!("waits");
        };
        drop(lead);
        assert!(matches!(
            flight.wait(Instant::now() + Duration::from_secs(30)),
            Waited::Abandoned
        ));
        assert!(Cache::new(Duration::ZERO, 1 << 20)
            .join("r", Queue::SyncRequests, false)
            .is_none());
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
