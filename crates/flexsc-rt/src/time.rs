//! Timers in user space: no system call per tick. The loop's only wait,
//! `flexsc_wait`, takes the next deadline as its timeout.

use crate::executor::core;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

#[derive(Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    wakers: std::collections::HashMap<u64, Waker>,
    next_id: u64,
}

impl Timers {
    fn add(&mut self, at: Instant, waker: Waker) -> u64 {
        self.next_id += 1;
        self.heap.push(Reverse((at, self.next_id)));
        self.wakers.insert(self.next_id, waker);
        self.next_id
    }

    /// Wakes the timers due at `now`; returns whether any fired.
    pub(crate) fn fire(&mut self, now: Instant) -> bool {
        let mut any = false;
        while let Some(Reverse((at, id))) = self.heap.peek().copied() {
            if at > now {
                break;
            }
            self.heap.pop();
            if let Some(w) = self.wakers.remove(&id) {
                w.wake();
                any = true;
            }
        }
        any
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }
}

/// Completes after `duration`.
pub fn sleep(duration: Duration) -> Sleep {
    Sleep {
        at: Instant::now() + duration,
        id: None,
    }
}

/// The future of [`sleep`].
pub struct Sleep {
    at: Instant,
    id: Option<u64>,
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.at {
            return Poll::Ready(());
        }
        let core = core();
        let mut timers = core.timers.borrow_mut();
        if let Some(id) = self.id {
            timers.wakers.insert(id, cx.waker().clone());
        } else {
            self.id = Some(timers.add(self.at, cx.waker().clone()));
        }
        Poll::Pending
    }
}
