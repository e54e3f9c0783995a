//! The threads that answer exports: grown on demand up to a bound, so a
//! node that hangs holds only the threads of its own items (no head-of-line
//! blocking) and a flood of requests waits in a bounded queue.
//!
//! A job works out its answer and hands back what is left (sending it):
//! the thread counts as free before that, so a request the answer prompts
//! finds it free instead of starting one more thread. The threads a load
//! needs are started once, and the process stays the same size under it.

use crate::lock::lock;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// What is left of a job once its thread is free again.
pub(crate) type Finish = Box<dyn FnOnce() + Send + 'static>;
type Job = Box<dyn FnOnce() -> Finish + Send + 'static>;

/// An idle thread ends after this long: a quiet plugin holds no threads.
const IDLE_EXIT: Duration = Duration::from_secs(60);

pub(crate) struct Pool {
    shared: Arc<Shared>,
    max_threads: usize,
    max_queued: usize,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    threads: usize,
    /// Threads inside a job (not in its finish).
    busy: usize,
}

impl Pool {
    pub(crate) fn new(max_threads: usize, max_queued: usize) -> Pool {
        Pool {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                wake: Condvar::new(),
            }),
            max_threads: max_threads.max(1),
            max_queued,
        }
    }

    /// Runs `job` on a pool thread; gives it back when the queue is full or
    /// no thread can be started, for the caller to answer at once.
    pub(crate) fn submit<F: FnOnce() -> Finish + Send + 'static>(&self, job: F) -> Result<(), F> {
        let mut state = lock(&self.shared.state);
        if state.jobs.len() >= self.max_queued {
            return Err(job);
        }
        // A thread per job while none is free, up to the bound.
        let free = state.threads - state.busy;
        if free <= state.jobs.len() && state.threads < self.max_threads {
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
        state.jobs.push_back(Box::new(job));
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
    fn work(&self) {
        let mut state = lock(&self.state);
        loop {
            if let Some(job) = state.jobs.pop_front() {
                state.busy += 1;
                drop(state);
                // Jobs catch their own panics; this keeps the count right regardless.
                let finish = catch_unwind(AssertUnwindSafe(job));
                lock(&self.state).busy -= 1;
                if let Ok(finish) = finish {
                    let _ = catch_unwind(AssertUnwindSafe(finish));
                }
                state = lock(&self.state);
                continue;
            }
            let (next, waited) = self
                .wake
                .wait_timeout(state, IDLE_EXIT)
                .unwrap_or_else(|p| p.into_inner());
            state = next;
            if waited.timed_out() && state.jobs.is_empty() {
                state.threads -= 1;
                return;
            }
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

    fn nothing() -> Finish {
        Box::new(|| {})
    }
}
