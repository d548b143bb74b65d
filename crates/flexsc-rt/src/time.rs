//! Timers in user space: no system call per tick. The loop's only wait,
//! `flexsc_wait`, takes the next deadline as its timeout. A timer is an
//! entry in a heap of deadlines; cancelling one (dropping its [`Sleep`])
//! removes its waker at once and its heap entry lazily.

use crate::executor::{core, Core};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

#[derive(Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    wakers: HashMap<u64, Waker>,
    next_id: u64,
}

impl Timers {
    fn add(&mut self, at: Instant, waker: Waker) -> u64 {
        self.next_id += 1;
        self.heap.push(Reverse((at, self.next_id)));
        self.wakers.insert(self.next_id, waker);
        self.next_id
    }

    fn cancel(&mut self, id: u64) {
        self.wakers.remove(&id);
        // Drop the dead heap entries once they are most of it.
        if self.heap.len() > 64 && self.heap.len() > 2 * self.wakers.len() {
            let wakers = &self.wakers;
            self.heap.retain(|Reverse((_, id))| wakers.contains_key(id));
        }
    }

    /// Takes the wakers of the timers due at `now` (to wake outside the
    /// borrow).
    pub(crate) fn fire(&mut self, now: Instant) -> Vec<Waker> {
        let mut due = Vec::new();
        while let Some(Reverse((at, id))) = self.heap.peek().copied() {
            if at > now {
                break;
            }
            self.heap.pop();
            if let Some(w) = self.wakers.remove(&id) {
                due.push(w);
            }
        }
        due
    }

    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        // Skip cancelled ones, so the loop does not wake for them.
        while let Some(Reverse((at, id))) = self.heap.peek().copied() {
            if self.wakers.contains_key(&id) {
                return Some(at);
            }
            self.heap.pop();
        }
        None
    }

    #[cfg(test)]
    pub(crate) fn live(&self) -> usize {
        self.wakers.len()
    }
}

/// Completes after `duration`.
pub fn sleep(duration: Duration) -> Sleep {
    sleep_until(Instant::now() + duration)
}

/// Completes at `deadline`.
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        at: deadline,
        timer: None,
    }
}

/// The future of [`sleep`]. Dropping it cancels the timer.
pub struct Sleep {
    at: Instant,
    /// Its timer, once polled: the runtime it is on, and its id there.
    timer: Option<(Rc<Core>, u64)>,
}

impl Sleep {
    /// When it completes.
    pub fn deadline(&self) -> Instant {
        self.at
    }

    fn cancel(&mut self) {
        if let Some((core, id)) = self.timer.take() {
            if let Ok(mut t) = core.timers.try_borrow_mut() {
                t.cancel(id);
            }
        }
    }
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.at {
            self.cancel();
            return Poll::Ready(());
        }
        match &self.timer {
            Some((core, id)) => {
                let mut timers = core.timers.borrow_mut();
                match timers.wakers.get_mut(id) {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    Some(w) => *w = cx.waker().clone(),
                    // Fired early? (Clock skew across threads: not here.)
                    None => {
                        let id = timers.add(self.at, cx.waker().clone());
                        drop(timers);
                        let core = core.clone();
                        self.timer = Some((core, id));
                    }
                }
            }
            None => {
                let core = core();
                let id = core.timers.borrow_mut().add(self.at, cx.waker().clone());
                self.timer = Some((core, id));
            }
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// `future` did not complete in time (see [`timeout`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

impl std::fmt::Display for Elapsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for std::io::Error {
    fn from(_: Elapsed) -> std::io::Error {
        std::io::ErrorKind::TimedOut.into()
    }
}

/// Runs `future` for at most `duration`: its output, or `Err(Elapsed)`,
/// and then `future` is dropped (cancelled). A system call it had in
/// flight keeps its memory until the call is DONE.
pub fn timeout<F: Future>(duration: Duration, future: F) -> Timeout<F> {
    Timeout {
        future,
        sleep: sleep(duration),
    }
}

/// The future of [`timeout`].
pub struct Timeout<F> {
    future: F,
    sleep: Sleep,
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `future` is pinned structurally: it is never moved out of
        // `self`, and `Timeout` has no `Drop` that could move it; `sleep`
        // is not pinned (it is `Unpin`).
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: As above.
        let future = unsafe { Pin::new_unchecked(&mut this.future) };
        if let Poll::Ready(v) = future.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        match Pin::new(&mut this.sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed)),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Runtime;

    #[test]
    fn timeout_fires_and_cancels() {
        let rt = Runtime::direct().unwrap();
        rt.block_on(async {
            let t0 = Instant::now();
            let r = timeout(Duration::from_millis(20), sleep(Duration::from_secs(30))).await;
            assert_eq!(r, Err(Elapsed));
            assert!(t0.elapsed() < Duration::from_secs(5));
            assert_eq!(timeout(Duration::from_secs(30), async { 7 }).await, Ok(7));
            // Both sleeps are gone: the loser's timer was cancelled.
            assert_eq!(core().timers.borrow().live(), 0);
        });
    }

    #[test]
    fn many_cancelled_timers_do_not_pile_up() {
        let rt = Runtime::direct().unwrap();
        rt.block_on(async {
            for _ in 0..1000 {
                let r = timeout(Duration::from_secs(60), async {}).await;
                assert!(r.is_ok());
                // Polled once, so registered, then dropped.
                let mut s = sleep(Duration::from_secs(60));
                std::future::poll_fn(|cx| {
                    let _ = Pin::new(&mut s).poll(cx);
                    Poll::Ready(())
                })
                .await;
            }
            let c = core();
            let t = c.timers.borrow();
            assert_eq!(t.live(), 0);
            assert!(t.heap.len() <= 130, "{} dead heap entries", t.heap.len());
        });
    }
}
