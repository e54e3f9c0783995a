//! The threads that answer exports: grown on demand up to a bound, so a
//! node that hangs holds only the threads of its own items (no head-of-line
//! blocking) and a flood of requests waits in a bounded queue.
//!
//! A job works out its answer and hands back what is left (sending it):
//! the thread counts as free before that, so a request the answer prompts
//! finds it free instead of starting one more thread. The threads a load
//! needs are started once, and the process stays the same size under it.

use crate::lock::lock;
use std::collections::{HashMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What is left of a job once its thread is free again.
pub(crate) type Finish = Box<dyn FnOnce() + Send + 'static>;
type Job = Box<dyn FnOnce() -> Finish + Send + 'static>;

/// An idle thread ends after this long: a quiet plugin holds no threads.
const IDLE_EXIT: Duration = Duration::from_secs(60);

/// Whom a job asks: the jobs of one node share that node's threads, so a
/// node that hangs holds at most its own share; jobs without network
/// (module.version, discovery) have threads of their own.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Lane {
    Local,
    Node(String),
}

/// How many jobs run at once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Jobs that ask a node, all nodes together.
    pub network: usize,
    /// Jobs that ask one node.
    pub per_node: usize,
    /// Jobs without network, beside the network ones.
    pub local: usize,
}

pub(crate) struct Pool {
    shared: Arc<Shared>,
    max_threads: usize,
    max_queued: usize,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    limits: Limits,
}

struct Queued {
    lane: Lane,
    /// When the agent gives up on the job's answer (stamped on arrival).
    expires: Option<Instant>,
    job: Job,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Queued>,
    threads: usize,
    /// Threads inside a job (not in its finish).
    busy: usize,
    /// Jobs running per lane, and those of all node lanes.
    running: HashMap<Lane, usize>,
    network_running: usize,
}

impl Pool {
    #[cfg(test)]
    pub(crate) fn new(max_threads: usize, max_queued: usize) -> Pool {
        let max = max_threads.max(1);
        let limits = Limits {
            network: max,
            per_node: max,
            local: max,
        };
        Pool {
            max_threads: max,
            ..Pool::with_limits(limits, max_queued)
        }
    }

    pub(crate) fn with_limits(limits: Limits, max_queued: usize) -> Pool {
        let limits = Limits {
            network: limits.network.max(1),
            per_node: limits.per_node.max(1),
            local: limits.local.max(1),
        };
        Pool {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                wake: Condvar::new(),
                limits,
            }),
            max_threads: limits.network + limits.local,
            max_queued,
        }
    }

    /// Runs `job` on a pool thread; gives it back when the queue is full or
    /// no thread can be started, for the caller to answer at once.
    #[cfg(test)]
    pub(crate) fn submit<F: FnOnce() -> Finish + Send + 'static>(&self, job: F) -> Result<(), F> {
        self.submit_to(Lane::Local, None, job)
    }

    /// As [`Pool::submit`], in `lane`. A job whose `expires` has passed
    /// runs at once whatever its lane's limit: its answer is the quick
    /// failure of an item whose time is up (nothing is asked any more).
    pub(crate) fn submit_to<F: FnOnce() -> Finish + Send + 'static>(
        &self,
        lane: Lane,
        expires: Option<Instant>,
        job: F,
    ) -> Result<(), F> {
        let mut state = self.shared.lock();
        if state.jobs.len() >= self.max_queued {
            return Err(job);
        }
        // A thread per runnable job while none is free, up to the bound.
        let free = state.threads - state.busy;
        let runnable = self.shared.runnable(&state, &lane);
        if runnable && free <= state.jobs.len() && state.threads < self.max_threads {
            let shared = self.shared.clone();
            let started = std::thread::Builder::new()
                .name("exalate-export".into())
                .spawn(move || shared.work());
            match started {
                Ok(_) => state.threads += 1,
                Err(_) if state.threads == 0 => return Err(job),
                Err(_) => {}
            }
        }
        state.jobs.push_back(Queued {
            lane,
            expires,
            job: Box::new(job),
        });
        drop(state);
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Threads alive now.
    #[cfg(test)]
    pub(crate) fn threads(&self) -> usize {
        lock(&self.shared.state).threads
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Whether a job of `lane` may start now within the limits.
    fn runnable(&self, state: &State, lane: &Lane) -> bool {
        let running = state.running.get(lane).copied().unwrap_or(0);
        match lane {
            Lane::Local => running < self.limits.local,
            Lane::Node(_) => {
                running < self.limits.per_node && state.network_running < self.limits.network
            }
        }
    }

    /// The first queued job that may start now (an expired one always may).
    fn next_job(&self, state: &mut State, now: Instant) -> Option<Queued> {
        let at = state
            .jobs
            .iter()
            .position(|q| q.expires.is_some_and(|e| e <= now) || self.runnable(state, &q.lane))?;
        let queued = state.jobs.remove(at)?;
        *state.running.entry(queued.lane.clone()).or_insert(0) += 1;
        if matches!(queued.lane, Lane::Node(_)) {
            state.network_running += 1;
        }
        Some(queued)
    }

    fn done(&self, state: &mut State, lane: &Lane) {
        if let Some(n) = state.running.get_mut(lane) {
            *n -= 1;
            if *n == 0 {
                state.running.remove(lane);
            }
        }
        if matches!(lane, Lane::Node(_)) {
            state.network_running -= 1;
        }
    }

    fn work(&self) {
        let mut state = self.lock();
        let mut idle_since = Instant::now();
        loop {
            let now = Instant::now();
            if let Some(queued) = self.next_job(&mut state, now) {
                state.busy += 1;
                drop(state);
                // Jobs catch their own panics; this keeps the count right regardless.
                let finish = catch_unwind(AssertUnwindSafe(queued.job));
                {
                    let mut state = self.lock();
                    state.busy -= 1;
                    self.done(&mut state, &queued.lane);
                }
                // A lane's slot is free: a waiting job of it may start.
                self.wake.notify_one();
                if let Ok(finish) = finish {
                    let _ = catch_unwind(AssertUnwindSafe(finish));
                }
                state = self.lock();
                idle_since = Instant::now();
                continue;
            }
            if state.jobs.is_empty() && idle_since.elapsed() >= IDLE_EXIT {
                state.threads -= 1;
                return;
            }
            // Jobs held back by their lane's limit become runnable when they
            // expire: wake up then.
            let wait = state
                .jobs
                .iter()
                .filter_map(|q| q.expires)
                .min()
                .map_or(IDLE_EXIT, |e| {
                    e.saturating_duration_since(now).min(IDLE_EXIT)
                });
            let (next, _) = self
                .wake
                .wait_timeout(state, wait.max(Duration::from_millis(1)))
                .unwrap_or_else(|p| p.into_inner());
            state = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn a_blocked_job_does_not_delay_the_next() {
        let pool = Pool::new(4, 100);
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel();
        pool.submit(move || {
            let _ = release_rx.recv();
            nothing()
        })
        .ok()
        .unwrap();
        for i in 0..3 {
            let done = done_tx.clone();
            pool.submit(move || {
                done.send(i).unwrap();
                nothing()
            })
            .ok()
            .unwrap();
        }
        let mut finished: Vec<i32> = (0..3)
            .map(|_| done_rx.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        finished.sort();
        assert_eq!(finished, [0, 1, 2]);
        release_tx.send(()).unwrap();
        assert!(pool.threads() <= 4);
    }

    #[test]
    fn bounded_threads_and_queue() {
        let pool = Pool::new(2, 3);
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = Arc::new(Mutex::new(release_rx));
        let mut accepted = 0;
        let mut refused = 0;
        for _ in 0..8 {
            let rx = release_rx.clone();
            match pool.submit(move || {
                let _ = rx.lock().unwrap().recv();
                nothing()
            }) {
                Ok(()) => accepted += 1,
                Err(_) => refused += 1,
            }
        }
        assert_eq!(pool.threads(), 2);
        // Two running (once they pick their jobs) and three queued at most.
        assert!((3..=5).contains(&accepted), "{accepted}");
        assert_eq!(accepted + refused, 8);
        for _ in 0..accepted {
            release_tx.send(()).unwrap();
        }
    }

    #[test]
    fn a_panicking_job_leaves_the_pool_working() {
        let pool = Pool::new(1, 10);
        pool.submit(|| panic!("job panics")).ok().unwrap();
        pool.submit(|| Box::new(|| panic!("finish panics")) as Finish)
            .ok()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        pool.submit(move || {
            tx.send(42).unwrap();
            nothing()
        })
        .ok()
        .unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), 42);
        assert_eq!(pool.threads(), 1);
    }

    /// A steady request-answer loop keeps to one thread: the next request
    /// comes from the answer, sent once the thread counts as free.
    #[test]
    fn a_request_prompted_by_an_answer_finds_the_thread_free() {
        let pool = Arc::new(Pool::new(8, 100));
        let (tx, rx) = mpsc::channel::<u32>();
        fn ask(pool: &Arc<Pool>, tx: mpsc::Sender<u32>, left: u32) {
            let again = pool.clone();
            pool.submit(move || {
                Box::new(move || {
                    // The "agent" sends the next request as soon as it has the answer.
                    if left == 0 {
                        tx.send(again.threads() as u32).unwrap();
                    } else {
                        ask(&again, tx, left - 1);
                    }
                }) as Finish
            })
            .ok()
            .unwrap();
        }
        ask(&pool, tx, 2000);
        assert_eq!(rx.recv_timeout(Duration::from_secs(20)).unwrap(), 1);
    }

    /// A node whose jobs all block holds only its lane's share: jobs of
    /// another node and local jobs start at once, and a queued job of the
    /// blocked node runs when it expires.
    #[test]
    fn a_blocked_lane_holds_only_its_share() {
        let limits = Limits {
            network: 4,
            per_node: 2,
            local: 1,
        };
        let pool = Pool::with_limits(limits, 100);
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = Arc::new(Mutex::new(release_rx));
        let (done_tx, done_rx) = mpsc::channel();
        let hung = || Lane::Node("hung".into());
        for _ in 0..2 {
            let rx = release_rx.clone();
            pool.submit_to(hung(), None, move || {
                let _ = rx.lock().unwrap().recv();
                nothing()
            })
            .ok()
            .unwrap();
        }
        let expires = Instant::now() + Duration::from_millis(300);
        let done = done_tx.clone();
        pool.submit_to(hung(), Some(expires), move || {
            done.send(("expired", Instant::now() >= expires)).unwrap();
            nothing()
        })
        .ok()
        .unwrap();
        for lane in [Lane::Node("healthy".into()), Lane::Local] {
            let done = done_tx.clone();
            pool.submit_to(lane, None, move || {
                done.send(("other", true)).unwrap();
                nothing()
            })
            .ok()
            .unwrap();
        }
        let got: Vec<_> = (0..3)
            .map(|_| done_rx.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        assert_eq!(got, [("other", true), ("other", true), ("expired", true)]);
        for _ in 0..2 {
            release_tx.send(()).unwrap();
        }
    }

    fn nothing() -> Finish {
        Box::new(|| {})
    }
}
