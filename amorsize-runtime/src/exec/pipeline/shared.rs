//! What the caller and the helpers of a pipeline share: the queue of chunks, the
//! channel of results, and the helpers' waiting for chunks (see the parent module's
//! notes on why helpers wait).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread;

use crossbeam_channel::Sender;

/// A chunk waiting to run: its position, the index of its first item, its items.
pub(super) type Queued<T> = (u64, usize, Vec<T>);
/// A chunk's position and its result (or panic).
pub(super) type Outcome<A> = (u64, thread::Result<A>);

/// What the caller and its helpers share.
pub(super) struct Shared<T, A> {
    pub(super) queue: Mutex<VecDeque<Queued<T>>>,
    pub(super) results: Sender<Outcome<A>>,
    /// Helpers running.
    pub(super) helpers: AtomicUsize,
    /// Most helpers that may run at once (a re-plan changes it).
    pub(super) most: AtomicUsize,
    /// Chunks finished (by anyone), emitted or not.
    pub(super) finished: AtomicU64,
    /// Set when the job stops (a panic, or the consumer stopped early): chunks not yet
    /// started are skipped.
    pub(super) stop: AtomicBool,
    /// Set when the source has no more items: every chunk is queued or taken.
    pub(super) fed: AtomicBool,
    /// Helpers waiting for chunks, to wake when there is news, and how many.
    pub(super) waiting: Mutex<Vec<thread::Thread>>,
    pub(super) waiting_count: AtomicUsize,
}

/// The longest a waiting helper sleeps before it looks again.
const WAIT_SLICE: std::time::Duration = std::time::Duration::from_micros(200);
/// The longest a helper waits for its next chunk before it ends: it holds a thread of
/// the pool, which other rayon work may need (a user's nested rayon call), and rayon
/// may have run it on top of other work on a thread's stack (a thread waiting inside a
/// user's rayon call takes up whatever job is pending, our helpers too), which cannot
/// finish before the helper returns. The caller refills the queue a few times per
/// chunk it runs: a helper that waits this long is not missed.
const WAIT_MOST: std::time::Duration = std::time::Duration::from_millis(1);

impl<T, A> Shared<T, A> {
    pub(super) fn pop(&self) -> Option<Queued<T>> {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
    }

    /// Whether chunks wait in the queue.
    pub(super) fn queued(&self) -> bool {
        !self
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }

    /// The next chunk for a helper: one queued, or else one the caller queues within
    /// [`WAIT_MOST`] while the source has more. `None` when there is none, the job
    /// stopped, or a re-plan wants fewer helpers; the helper is then no longer counted
    /// as running.
    ///
    /// The wait runs nothing else: a helper that ran other rayon work meanwhile (with
    /// `rayon::yield_now`) carried it on its stack, and the job could not end before
    /// that work did (a user's `rayon::spawn` of a 5 s wait held `par_auto` for 5 s).
    /// Rayon work that needs this thread waits at most [`WAIT_MOST`].
    pub(super) fn next_for_helper(&self) -> Option<Queued<T>> {
        let mut since = std::time::Instant::now();
        loop {
            if self.retire() {
                return None;
            }
            let stop = self.stop.load(Ordering::Relaxed);
            if !stop && let Some(chunk) = self.pop() {
                return Some(chunk);
            }
            let fed = self.fed.load(Ordering::Acquire);
            if !stop && !fed && since.elapsed() < WAIT_MOST {
                self.wait();
                continue;
            }
            self.helpers.fetch_sub(1, Ordering::AcqRel);
            // The caller may have queued chunks after the pop (the last ones, just
            // before the source ended, say) and, counting this helper as running,
            // spawned none for them: take them up if there is room.
            if self.stop.load(Ordering::Relaxed) || !self.queued() || !self.join() {
                return None;
            }
            since = std::time::Instant::now();
        }
    }

    /// Stops counting one helper, if more run than a re-plan allows.
    pub(super) fn retire(&self) -> bool {
        let most = self.most.load(Ordering::Acquire);
        self.helpers
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n > most).then(|| n - 1)
            })
            .is_ok()
    }

    /// Sleeps until the caller has news ([`Shared::wake`]), for at most [`WAIT_SLICE`].
    pub(super) fn wait(&self) {
        let me = thread::current();
        {
            let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            waiting.push(me.clone());
            self.waiting_count.store(waiting.len(), Ordering::SeqCst);
        }
        // Looked at again after registering: news that came before are seen here, news
        // that come after find this helper registered.
        std::sync::atomic::fence(Ordering::SeqCst);
        let news = self.queued()
            || self.stop.load(Ordering::Relaxed)
            || self.fed.load(Ordering::Acquire)
            || self.helpers.load(Ordering::Acquire) > self.most.load(Ordering::Acquire);
        if !news {
            thread::park_timeout(WAIT_SLICE);
        }
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        waiting.retain(|t| t.id() != me.id());
        self.waiting_count.store(waiting.len(), Ordering::SeqCst);
    }

    /// Wakes the waiting helpers: chunks were queued, the source ended, the job stopped
    /// or its width changed.
    pub(super) fn wake(&self) {
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.waiting_count.load(Ordering::SeqCst) == 0 {
            return;
        }
        let waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        for t in waiting.iter() {
            t.unpark();
        }
    }

    /// Counts one more running helper, if fewer than the most allowed run.
    pub(super) fn join(&self) -> bool {
        let most = self.most.load(Ordering::Acquire);
        self.helpers
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < most).then_some(n + 1)
            })
            .is_ok()
    }
}
