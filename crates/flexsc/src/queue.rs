//! A queue of calls: batches in, completions with user data out, in
//! submission order.
//!
//! ```text
//!          push(call, user_data)                       systhread
//!  free ─────────────────────────▶ in flight ──────────────────────────┐
//!  (FIFO)   entry filled, published  (submission order)  runs it, DONE │
//!    ▲      submit(): one fence,                                        │
//!    │      flexsc_wait(0) if all sleep                                 │
//!    └──────── reused from DONE ◀── completion(): found in order ◀──────┘
//! ```
//!
//! `push` fills an entry and publishes it with one release store (ring:
//! its index in `sq[]` and `sq_tail`; ABI v1: the entry's status word, the
//! publication there), so a polling systhread may start on the first call
//! of a batch while the program writes the next. `submit` ends the batch:
//! one full fence and the NEED_WAKEUP check, `flexsc_wait(0)` only if every
//! systhread sleeps. Completions are found by scanning the calls in flight
//! oldest first for DONE; in ring mode only when the completion counter
//! says some are there, and only as many as it says. An entry is reused
//! straight from DONE (the kernel never touches a DONE entry), so taking a
//! result costs no store to the entry.

use crate::abi;
use crate::call::{Call, Owned, Yields};
use crate::completion::{Completion, Full};
use crate::error::{Error, Result};
use crate::fifo::Fifo;
use crate::raw;
use crate::region::{Mode, Region};
use std::marker::PhantomData;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Polls before sleeping in `flexsc_wait`, by default.
const SPINS: u32 = 2000;

/// What an entry in use holds besides the shared memory.
#[derive(Default)]
struct Slot {
    /// The order of submission.
    seq: u64,
    user_data: u64,
    /// The result, once the call is found DONE.
    ret: i64,
    owned: Owned,
    yields: Yields,
}

/// The calling thread's registration as a queue: [`Queue::push`] calls
/// with a `u64` of user data, [`Queue::submit`] them as one batch, and take
/// their [`Completion`]s with [`Queue::completion`] (or [`Queue::wait`] for
/// them). Completions available together come out in submission order; a
/// call that is still running holds up no younger one (it comes out after
/// the younger ones taken before it completed). Made by
/// [`crate::Builder::queue`]; unregisters when dropped, after every call in
/// flight has completed.
///
/// A queue belongs to the thread that made it, so it is neither `Send` nor
/// `Sync`.
pub struct Queue {
    region: Region,
    /// Entries not in use, oldest first.
    free: Fifo,
    /// Pushed since the last `submit`.
    pending: usize,
    /// Pushed, not yet found DONE, oldest first.
    in_flight: Fifo,
    slots: Vec<Slot>,
    /// Found DONE, not yet handed out, in submission order.
    /// The entries go back to `free` as their completions are taken.
    ready: Fifo,
    /// The next call's `Slot::seq`.
    seq: u64,
    /// Ring mode: our copies of `sq_tail` and `cq_head`.
    sq_tail: u32,
    cq_head: u32,
    /// ABI v1: entries not in flight whose status is still DONE, which
    /// the kernel's flexsc_wait counts; and which entries have been used.
    stale_done: u32,
    used: Vec<bool>,
    /// Polls before sleeping in `flexsc_wait`.
    spins: u32,
    _thread_bound: PhantomData<*mut ()>,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("nentries", &self.region.nentries())
            .field("mode", &self.region.mode())
            .field("free", &self.free.len())
            .field("pending", &self.pending)
            .field("in_flight", &self.in_flight.len())
            .field("ready", &self.ready.len())
            .finish()
    }
}

impl Queue {
    pub(crate) fn new(region: Region) -> Queue {
        let n = region.nentries();
        Queue {
            region,
            free: Fifo::sequence(n),
            pending: 0,
            in_flight: Fifo::with_capacity(n),
            slots: (0..n).map(|_| Slot::default()).collect(),
            ready: Fifo::with_capacity(n),
            seq: 0,
            sq_tail: 0,
            cq_head: 0,
            stale_done: 0,
            used: vec![false; n as usize],
            spins: SPINS,
            _thread_bound: PhantomData,
        }
    }

    /// Entries in the region.
    pub fn capacity(&self) -> u32 {
        self.region.nentries()
    }

    /// The protocol this queue runs: the ring, or plain ABI v1.
    pub fn mode(&self) -> Mode {
        self.region.mode()
    }

    /// Entries free for [`Queue::push`] (a completion found but not yet
    /// taken keeps its entry).
    pub fn free_entries(&self) -> usize {
        self.free.len()
    }

    /// Calls pushed since the last [`Queue::submit`]: published, but the
    /// systhreads may sleep until `submit` checks.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Calls pushed whose completions have not been found yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Whether every systhread sleeps (the kernel set NEED_WAKEUP).
    pub fn need_wakeup(&self) -> bool {
        self.region.need_wakeup()
    }

    /// How many polls in a row that find nothing [`Queue::wait`],
    /// [`Queue::next_completion`] and [`Queue::call`] make before they
    /// sleep in `flexsc_wait` (default 2000; 0 sleeps at once).
    pub fn set_spins(&mut self, spins: u32) {
        self.spins = spins;
    }

    /// Writes `call` into the oldest free entry, with `user_data` for its
    /// completion, and publishes it (one release store). Call
    /// [`Queue::submit`] after the last call of a batch. Gives the call
    /// back if every entry is in use.
    pub fn push(&mut self, call: Call, user_data: u64) -> Result<(), Full> {
        let Some(index) = self.free.pop_front() else {
            return Err(Full(call));
        };
        let (nr, args, owned, yields) = call.into_parts();
        // SAFETY: A free entry: FREE or DONE, not in the ring; the kernel
        // does not touch it.
        unsafe { self.region.write_call(index, nr, args) };
        self.seq += 1;
        let slot = &mut self.slots[index as usize];
        (slot.seq, slot.user_data, slot.yields) = (self.seq, user_data, yields);
        std::mem::replace(&mut slot.owned, owned).release();
        let status = self.region.status(index);
        match self.region.mode() {
            Mode::Ring => {
                // Over DONE or FREE: the kernel looks at the entry only
                // once its index is published.
                status.store(abi::SUBMITTED, Ordering::Relaxed);
                self.region.sq(self.sq_tail).store(index, Ordering::Relaxed);
                self.sq_tail = self.sq_tail.wrapping_add(1);
                self.region.sq_tail().store(self.sq_tail, Ordering::Release);
            }
            Mode::V1 => {
                status.store(abi::SUBMITTED, Ordering::Release);
                if self.used[index as usize] {
                    self.stale_done -= 1;
                }
            }
        }
        self.in_flight.push_back(index);
        self.pending += 1;
        Ok(())
    }

    /// Ends a batch: one full fence, then `flexsc_wait(0)` only if every
    /// systhread sleeps. Returns how many calls were pushed since the last
    /// `submit` (with none, it does nothing).
    #[inline]
    pub fn submit(&mut self) -> usize {
        let n = std::mem::take(&mut self.pending);
        if n > 0 {
            self.region.kick();
        }
        n
    }

    /// Pushes every call of `calls` with its user data and submits them as
    /// one batch (with anything pushed before). If the queue fills up,
    /// what fits is submitted and the call that did not fit comes back in
    /// `Full`; the rest of the iterator is left alone (pass `iter.by_ref()`
    /// to keep it). Returns how many calls were submitted.
    pub fn submit_batch<I>(&mut self, calls: I) -> Result<usize, Full>
    where
        I: IntoIterator<Item = (Call, u64)>,
    {
        for (call, user_data) in calls {
            if let Err(full) = self.push(call, user_data) {
                self.submit();
                return Err(full);
            }
        }
        Ok(self.submit())
    }

    /// Takes entry `at` of `in_flight`, DONE, into `ready`.
    fn take(&mut self, at: usize) {
        let index = if at == 0 {
            self.in_flight.pop_front()
        } else {
            self.in_flight.remove(at)
        }
        .expect("in flight");
        let slot = &mut self.slots[index as usize];
        slot.ret = self.region.ret(index);
        let seq = slot.seq;
        // Behind the completions of older calls, ahead of younger ones
        // found in an earlier scan (rarely: a call that blocked).
        let seq_of = |i: u32| self.slots[i as usize].seq;
        if self.ready.back().map_or(true, |b| seq_of(b) < seq) {
            self.ready.push_back(index);
        } else {
            let at = self.ready.iter().position(|i| seq_of(i) > seq);
            self.ready.insert(at.unwrap_or(self.ready.len()), index);
        }
        if self.region.mode() == Mode::V1 {
            // Left DONE, out of flight: the kernel counts it.
            self.stale_done += 1;
            self.used[index as usize] = true;
        }
    }

    /// Hands out the completion of entry `index` (taken from `ready`) and
    /// frees the entry, as it is: DONE, with no store to it.
    #[inline]
    fn hand_out(&mut self, index: u32) -> Completion {
        let slot = &mut self.slots[index as usize];
        let owned = std::mem::take(&mut slot.owned);
        let c = Completion::new(slot.ret, slot.user_data, owned, slot.yields);
        self.free.push_back(index);
        c
    }

    /// Finds completed calls, oldest first, and moves them to `ready`.
    /// Returns how many it found.
    fn reap(&mut self) -> usize {
        let mut found = 0;
        match self.region.mode() {
            Mode::Ring => {
                let tail = self.region.cq_tail().load(Ordering::Acquire);
                let counted = tail.wrapping_sub(self.cq_head) as usize;
                // At least `counted` entries in flight are DONE: each was
                // DONE before the kernel counted it.
                let mut at = 0;
                while found < counted {
                    let Some(i) = self.in_flight.get(at) else {
                        break;
                    };
                    if self.region.status(i).load(Ordering::Acquire) == abi::DONE {
                        self.take(at);
                        found += 1;
                    } else {
                        at += 1;
                    }
                }
                if found > 0 {
                    self.cq_head = self.cq_head.wrapping_add(found as u32);
                    self.region.cq_head().store(self.cq_head, Ordering::Release);
                }
            }
            Mode::V1 => found = self.reap_v1(u64::MAX),
        }
        found
    }

    /// ABI v1: finds the completed calls older than `before` (`Slot::seq`).
    fn reap_v1(&mut self, before: u64) -> usize {
        let (mut found, mut at) = (0, 0);
        while let Some(i) = self.in_flight.get(at) {
            if self.slots[i as usize].seq >= before {
                break;
            }
            if self.region.status(i).load(Ordering::Acquire) == abi::DONE {
                self.take(at);
                found += 1;
            } else {
                at += 1;
            }
        }
        found
    }

    /// The completion of the oldest call that has completed and not been
    /// taken, or `None` if there is none. Never blocks.
    pub fn completion(&mut self) -> Option<Completion> {
        if self.may_find_older() {
            match (self.region.mode(), self.ready.front()) {
                (Mode::V1, Some(first)) => self.reap_v1(self.slots[first as usize].seq),
                _ => self.reap(),
            };
        }
        let index = self.ready.pop_front()?;
        Some(self.hand_out(index))
    }

    /// Whether a scan could find a completion to hand out before the
    /// first of `ready`, cheaply: in ring mode, whether the counter moved;
    /// in ABI v1 mode, whether a call older than that is in flight.
    #[inline]
    fn may_find_older(&self) -> bool {
        match self.region.mode() {
            Mode::Ring => self.region.cq_tail().load(Ordering::Acquire) != self.cq_head,
            Mode::V1 => match (self.in_flight.front(), self.ready.front()) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(f), Some(r)) => self.slots[f as usize].seq < self.slots[r as usize].seq,
            },
        }
    }

    /// An iterator over the completions available now, oldest first
    /// ([`Queue::completion`] until it gives `None`).
    pub fn completions(&mut self) -> Completions<'_> {
        Completions { queue: self }
    }

    /// Submits what was pushed, then waits until at least `min` completions
    /// are available (found and not yet taken), or `timeout` passes
    /// (`Error::Os(ETIMEDOUT)`): polls until [`Queue::set_spins`] polls in
    /// a row found nothing, then sleeps in `flexsc_wait` (the timeout runs
    /// from then). Returns how many are available. `min` is capped at what
    /// could complete: the completions available plus the calls in flight.
    pub fn wait(&mut self, min: usize, timeout: Option<Duration>) -> Result<usize> {
        self.submit();
        let min = min.min(self.ready.len() + self.in_flight.len());
        let mut deadline = None;
        let mut spins = 0u32;
        loop {
            if self.ready.len() < min && self.poll(spins) > 0 {
                // Progress: poll on before sleeping.
                spins = 0;
            }
            if self.ready.len() >= min {
                return Ok(self.ready.len());
            }
            if spins < self.spins {
                spins += 1;
                std::hint::spin_loop();
                continue;
            }
            deadline = deadline.or_else(|| timeout.map(|t| Instant::now() + t));
            self.sleep(min - self.ready.len(), deadline)?;
        }
    }

    /// One poll for completions, cheap enough to repeat while spinning:
    /// in ring mode a scan that starts with the counter; in ABI v1 mode the
    /// completed calls at the head of the calls in flight, and a scan of
    /// all of them only every 16th poll and after spinning (a younger call
    /// may be done behind one that blocks).
    /// Returns how many completions it found.
    fn poll(&mut self, spins: u32) -> usize {
        match self.region.mode() {
            Mode::Ring => self.reap(),
            Mode::V1 => {
                let mut found = 0;
                while let Some(i) = self.in_flight.front() {
                    if self.region.status(i).load(Ordering::Acquire) != abi::DONE {
                        break;
                    }
                    self.take(0);
                    found += 1;
                }
                if found == 0 && (spins % 16 == 0 || spins >= self.spins) {
                    found = self.reap();
                }
                found
            }
        }
    }

    /// Sleeps in `flexsc_wait` until `more` calls in flight have completed
    /// or `deadline` passes.
    fn sleep(&mut self, more: usize, deadline: Option<Instant>) -> Result<()> {
        let more = more.clamp(1, self.in_flight.len().max(1)) as u32;
        let min = match self.region.mode() {
            // cq_tail - cq_head, and cq_head is up to date.
            Mode::Ring => more,
            // The kernel counts every DONE entry, also those we left DONE.
            Mode::V1 => self.stale_done + more,
        };
        let ts = match deadline {
            None => None,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Error::Os(libc::ETIMEDOUT));
                }
                Some(libc::timespec {
                    tv_sec: left.as_secs() as libc::time_t,
                    tv_nsec: left.subsec_nanos() as libc::c_long,
                })
            }
        };
        match raw::wait(min, ts.as_ref()) {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Waits for the oldest completion and takes it. Fails with
    /// `Error::InvalidInput` if no call is in flight.
    pub fn next_completion(&mut self) -> Result<Completion> {
        if self.ready.is_empty() && self.in_flight.is_empty() {
            return Err(Error::InvalidInput("no call in flight"));
        }
        self.wait(1, None)?;
        let index = self.ready.pop_front().expect("a completion");
        Ok(self.hand_out(index))
    }

    /// Runs `call` and waits for it: a whole system call through FlexSC.
    /// Other calls' completions found meanwhile stay queued, in order.
    pub fn call(&mut self, call: Call) -> Result<Completion> {
        self.push(call, 0)?;
        let index = self.in_flight.back().expect("just pushed");
        self.submit();
        let mut spins = 0u32;
        loop {
            if self.poll(spins) > 0 {
                spins = 0;
            }
            let found = self.ready.iter().position(|i| i == index);
            if let Some(at) = found {
                self.ready.remove(at);
                return Ok(self.hand_out(index));
            }
            if spins < self.spins {
                spins += 1;
                std::hint::spin_loop();
                continue;
            }
            self.sleep(1, None)?;
        }
    }
}

/// The completions available now, oldest first: see [`Queue::completions`].
#[derive(Debug)]
pub struct Completions<'a> {
    queue: &'a mut Queue,
}

impl Iterator for Completions<'_> {
    type Item = Completion;

    fn next(&mut self) -> Option<Completion> {
        self.queue.completion()
    }
}

#[cfg(test)]
mod tests {
    //! The queue's bookkeeping against a kernel played by the test: an
    //! unregistered mapping, entries run by [`run`].

    use super::*;

    fn queue(n: u32, mode: Mode) -> Queue {
        Queue::new(Region::map(n, mode).unwrap())
    }

    /// The kernel's side: claims entry `i` if SUBMITTED, "runs" it (the
    /// result is `nr * 100 + args[0]`), stores DONE, counts it.
    fn run(q: &Queue, i: u32) -> bool {
        let r = &q.region;
        if r.status(i)
            .compare_exchange(
                abi::SUBMITTED,
                abi::BUSY,
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_err()
        {
            return false;
        }
        set_ret(q, i, |nr, a0| nr as i64 * 100 + a0 as i64);
        r.status(i).store(abi::DONE, Ordering::Release);
        if r.mode() == Mode::Ring {
            r.cq_tail().fetch_add(1, Ordering::Release);
        }
        true
    }

    /// The kernel takes every index from the ring (skipping bad ones) and
    /// returns them, in ring order.
    fn take_ring(q: &Queue) -> Vec<u32> {
        let r = &q.region;
        let (mut head, tail) = (
            r.sq_head().load(Ordering::Relaxed),
            r.sq_tail().load(Ordering::Acquire),
        );
        let mut got = Vec::new();
        while head != tail {
            got.push(r.sq(head).load(Ordering::Relaxed));
            head = head.wrapping_add(1);
        }
        r.sq_head().store(head, Ordering::Release);
        got
    }

    /// Entry `i`, as the kernel sees it: it starts at its status word.
    fn entry(q: &Queue, i: u32) -> *mut abi::SysEntry {
        q.region.status(i).as_ptr().cast()
    }

    /// The kernel's side of a call: reads `nr` and `args[0]`, writes `ret`.
    fn set_ret(q: &Queue, i: u32, f: impl FnOnce(u32, u64) -> i64) {
        let e = entry(q, i);
        // SAFETY: In the mapping; the test touches the entry only between
        // the protocol's acquire (BUSY) and release (DONE).
        unsafe {
            let ret = f((*e).nr, (*e).args[0]);
            std::ptr::addr_of_mut!((*e).ret).write_volatile(ret);
        }
    }

    fn nop(k: u64) -> Call {
        // SAFETY: Never run by a kernel: the test plays it.
        unsafe { Call::raw(7, [k, 0, 0, 0, 0, 0]) }
    }

    #[test]
    fn ring_batches_fifo_reuse_and_ordered_completions() {
        let mut q = queue(4, Mode::Ring);
        let n = q.submit_batch((0..3).map(|k| (nop(k), 10 + k))).unwrap();
        assert_eq!(n, 3);
        assert_eq!(q.region.sq_tail().load(Ordering::Relaxed), 3);
        assert_eq!(take_ring(&q), vec![0, 1, 2]);
        // Nothing counted yet: nothing reaped, even where an entry is DONE.
        assert!(q.completion().is_none());
        // Entries 2 and 0 complete, 2 first: found oldest first.
        assert!(run(&q, 2) && run(&q, 0));
        let got: Vec<_> = q.completions().map(|c| (c.user_data(), c.ret)).collect();
        assert_eq!(got, vec![(10, 700), (12, 702)]);
        assert_eq!(q.region.cq_head().load(Ordering::Relaxed), 2);
        // Reaped entries stay DONE (no FREE store) and are reused last:
        // 3 was never used, then 0 and 2, in the order they came back.
        assert_eq!(q.region.status(0).load(Ordering::Relaxed), abi::DONE);
        let e = q.submit_batch((3..6).map(|k| (nop(k), 10 + k)));
        assert!(e.is_ok());
        assert_eq!(take_ring(&q), vec![3, 0, 2]);
        assert_eq!(q.region.status(0).load(Ordering::Relaxed), abi::SUBMITTED);
        // Full: the call comes back.
        assert!(matches!(q.push(nop(9), 0), Err(Full(_))));
        for i in [1, 3, 0, 2] {
            assert!(run(&q, i));
        }
        let got: Vec<_> = q.completions().map(|c| c.user_data()).collect();
        assert_eq!(got, vec![11, 13, 14, 15]);
        assert_eq!((q.free_entries(), q.in_flight()), (4, 0));
        assert_eq!(q.region.cq_head().load(Ordering::Relaxed), 6);
    }

    #[test]
    fn ring_counter_bounds_the_scan() {
        let mut q = queue(2, Mode::Ring);
        q.submit_batch([(nop(1), 1), (nop(2), 2)]).unwrap();
        take_ring(&q);
        // Entry 1 DONE but not yet counted, entry 0 not done: nothing.
        let r = &q.region;
        r.status(1).store(abi::DONE, Ordering::Release);
        assert!(q.completion().is_none());
        // Counted now (as if entry 1's count): entry 1 is found.
        q.region.cq_tail().fetch_add(1, Ordering::Release);
        assert_eq!(q.completion().map(|c| c.user_data()), Some(2));
        assert!(q.completion().is_none());
    }

    #[test]
    fn v1_reuses_done_entries_and_counts_them_for_flexsc_wait() {
        let mut q = queue(3, Mode::V1);
        q.push(nop(1), 1).unwrap();
        // Published at once; `submit` ends the batch.
        assert_eq!(q.region.status(0).load(Ordering::Relaxed), abi::SUBMITTED);
        q.push(nop(2), 2).unwrap();
        assert_eq!((q.pending(), q.submit(), q.pending()), (2, 2, 0));
        assert_eq!(q.submit(), 0);
        assert!(run(&q, 1));
        assert_eq!(q.completion().map(|c| c.user_data()), Some(2));
        assert_eq!(q.stale_done, 1);
        assert!(run(&q, 0));
        assert_eq!(q.completion().map(|c| c.user_data()), Some(1));
        assert_eq!(q.stale_done, 2);
        // FIFO: 2 (never used), then 1, then 0.
        q.push(nop(3), 3).unwrap();
        assert_eq!(q.stale_done, 2);
        q.push(nop(4), 4).unwrap();
        assert_eq!(q.stale_done, 1);
        q.push(nop(5), 5).unwrap();
        assert_eq!(q.stale_done, 0);
        assert_eq!(q.in_flight.iter().collect::<Vec<_>>(), vec![2, 1, 0]);
        q.submit();
        for i in 0..3 {
            assert!(run(&q, i));
        }
        let got: Vec<_> = q.completions().map(|c| (c.user_data(), c.ret)).collect();
        assert_eq!(got, vec![(3, 703), (4, 704), (5, 705)]);
        assert_eq!(q.stale_done, 3);
    }

    #[test]
    fn completions_found_apart_come_out_in_submission_order() {
        for mode in [Mode::Ring, Mode::V1] {
            let mut q = queue(4, mode);
            q.submit_batch((0..3).map(|k| (nop(k), k))).unwrap();
            if mode == Mode::Ring {
                take_ring(&q);
            }
            assert!(run(&q, 2));
            assert_eq!(q.reap(), 1);
            assert!(run(&q, 0));
            assert_eq!(q.reap(), 1);
            assert!(run(&q, 1));
            let got: Vec<_> = q.completions().map(|c| c.user_data()).collect();
            assert_eq!(got, vec![0, 1, 2], "{mode}");
        }
    }

    #[test]
    fn an_older_call_found_later_comes_out_first() {
        for mode in [Mode::Ring, Mode::V1] {
            let mut q = queue(4, mode);
            q.submit_batch((0..3).map(|k| (nop(k), k))).unwrap();
            if mode == Mode::Ring {
                take_ring(&q);
            }
            assert!(run(&q, 1));
            assert_eq!(q.reap(), 1);
            // 0 completes while 1 waits in `ready`: 0 comes out first.
            assert!(run(&q, 0));
            assert_eq!(q.completion().map(|c| c.user_data()), Some(0), "{mode}");
            assert_eq!(q.completion().map(|c| c.user_data()), Some(1), "{mode}");
            assert!(q.completion().is_none());
        }
    }

    #[test]
    fn completions_give_back_owned_memory() {
        let mut q = queue(2, Mode::Ring);
        let (r, w) = std::os::unix::net::UnixStream::pair().unwrap();
        q.push(Call::read(&r, 8), 1).unwrap();
        q.push(Call::write(&w, b"abc".to_vec()), 2).unwrap();
        q.submit();
        take_ring(&q);
        // Played by the test: write 3 of 3 bytes, read 3.
        for (i, ret) in [(1, 3), (0, 3)] {
            set_ret(&q, i, |_, _| ret);
            q.region.status(i).store(abi::DONE, Ordering::Release);
            q.region.cq_tail().fetch_add(1, Ordering::Release);
        }
        let read = q.completion().unwrap();
        assert_eq!(read.user_data(), 1);
        assert_eq!(read.into_buf().unwrap().len(), 3);
        let write = q.completion().unwrap();
        assert_eq!(write.check(), Ok(3));
        assert_eq!(write.into_buf().unwrap(), b"abc");
    }
}

#[cfg(test)]
mod overhead {
    //! The user side's cost of a round trip, the queue against tickets,
    //! with the kernel played inline (no systhread, no system call):
    //! `cargo test --release -p flexsc --lib overhead -- --ignored --nocapture`.

    use super::*;
    use crate::registration::Registration;

    fn play(r: &Region, i: u32) {
        r.status(i).store(abi::DONE, Ordering::Release);
        if r.mode() == Mode::Ring {
            r.cq_tail().fetch_add(1, Ordering::Release);
        }
    }

    #[test]
    #[ignore]
    fn round_trip_cost() {
        for mode in [Mode::V1, Mode::Ring] {
            for batch in [1u32, 32] {
                let iters = 2_000_000 / batch;
                let mut q = Queue::new(Region::map(64, mode).unwrap());
                let t = Instant::now();
                for _ in 0..iters {
                    for k in 0..batch {
                        // SAFETY: Never run: the test plays the kernel.
                        let c = unsafe { Call::raw(39, [0; 6]) };
                        q.push(c, k.into()).unwrap();
                    }
                    q.submit();
                    for i in q.in_flight.iter() {
                        play(&q.region, i);
                    }
                    q.wait(batch as usize, None).unwrap();
                    assert_eq!(
                        q.completions().filter(|c| c.ret >= 0).count(),
                        batch as usize
                    );
                }
                let queue = t.elapsed().as_nanos() as f64 / (iters * batch) as f64;
                let mut reg = Registration::new(Region::map(64, mode).unwrap());
                let mut tickets = Vec::new();
                let t = Instant::now();
                for _ in 0..iters {
                    for _ in 0..batch {
                        // SAFETY: As above.
                        tickets.push(unsafe { reg.submit_raw(39, [0; 6]) }.unwrap());
                    }
                    reg.wake_if_needed();
                    for t in &tickets {
                        play(reg.region_for_tests(), t.index());
                    }
                    for t in tickets.drain(..) {
                        assert!(reg.complete(t).ret >= 0);
                    }
                }
                let ticket = t.elapsed().as_nanos() as f64 / (iters * batch) as f64;
                eprintln!(
                    "{mode} batch {batch}: queue {queue:.1} ns/call, tickets {ticket:.1} ns/call"
                );
            }
        }
    }
}
