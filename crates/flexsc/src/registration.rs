//! A registration with one ticket per call: the crate's first API, kept
//! for programs that follow their calls one by one (flexsc-rt does). New
//! code that submits batches wants [`crate::Queue`].

use crate::abi;
use crate::call::{Call, Owned, Yields};
use crate::completion::{Completion, Full};
use crate::raw;
use crate::region::{Mode, Region};
use std::cell::Cell;
use std::collections::VecDeque;
use std::io;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// An entry handed out by [`Registration::submit`]: give it back to
/// [`Registration::complete`] (or [`Registration::try_complete`]) to take
/// its result, exactly once.
///
/// A ticket that is dropped instead leaves its entry in use until the
/// registration ends (and its buffer with it): nothing unsafe, only a leak.
#[must_use = "a ticket's entry stays in use until the ticket is completed"]
#[derive(Debug)]
pub struct Ticket {
    registration: u64,
    index: u32,
}

impl Ticket {
    /// The entry's index in the region.
    pub fn index(&self) -> u32 {
        self.index
    }
}

/// The calling thread's registration: it owns the shared region, hands out
/// its entries as [`Ticket`]s, and unregisters when dropped.
///
/// Each submission is published at once (in [`Mode::Ring`], one release
/// store of `sq_tail` per call); [`Registration::submit_batch`] leaves out
/// only the wake-up check. Entries are reused oldest first.
///
/// A registration belongs to the thread that made it, so it is neither
/// `Send` nor `Sync`.
pub struct Registration {
    region: Region,
    id: u64,
    free: VecDeque<u32>,
    /// What entries in flight own.
    owned: Vec<(Owned, Yields)>,
    /// Ring mode: our copy of `sq_tail`.
    sq_tail: u32,
    /// Ring mode: completions taken (free-running) and what `cq_head`
    /// says; `cq_head` follows `taken` but never passes `cq_tail`.
    taken: Cell<u32>,
    cq_head: Cell<u32>,
    _thread_bound: PhantomData<*mut ()>,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("nentries", &self.region.nentries())
            .field("mode", &self.region.mode())
            .field("free", &self.free.len())
            .finish()
    }
}

impl Registration {
    pub(crate) fn new(region: Region) -> Registration {
        let n = region.nentries();
        Registration {
            region,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            free: (0..n).collect(),
            owned: (0..n).map(|_| (Owned::None, Yields::Value)).collect(),
            sq_tail: 0,
            taken: Cell::new(0),
            cq_head: Cell::new(0),
            _thread_bound: PhantomData,
        }
    }

    /// Entries in the region.
    pub fn capacity(&self) -> u32 {
        self.region.nentries()
    }

    /// Entries not in use.
    pub fn free_entries(&self) -> usize {
        self.free.len()
    }

    /// The protocol this registration runs: the ring, or plain ABI v1
    /// (see [`crate::Builder::ring`]).
    pub fn mode(&self) -> Mode {
        self.region.mode()
    }

    /// Whether every systhread sleeps (the kernel set NEED_WAKEUP).
    pub fn need_wakeup(&self) -> bool {
        self.region.need_wakeup()
    }

    /// Wakes the systhreads if, and only if, they asked for it. Call after
    /// a batch of submissions ([`Registration::submit`] does it for you
    /// unless you use [`Registration::submit_batch`]).
    pub fn wake_if_needed(&self) {
        self.region.kick();
    }

    fn fill(&mut self, nr: i64, args: [u64; 6], owned: Owned, yields: Yields) -> Option<Ticket> {
        let index = self.free.pop_front()?;
        // SAFETY: A free entry (FREE, or DONE in ring mode), not in the
        // ring: the kernel does not touch it.
        unsafe { self.region.write_call(index, nr, args) };
        self.owned[index as usize] = (owned, yields);
        let status = self.region.status(index);
        match self.region.mode() {
            Mode::V1 => status.store(abi::SUBMITTED, Ordering::Release),
            Mode::Ring => {
                status.store(abi::SUBMITTED, Ordering::Relaxed);
                self.region.sq(self.sq_tail).store(index, Ordering::Relaxed);
                self.sq_tail = self.sq_tail.wrapping_add(1);
                // Publishes the entry and its index.
                self.region.sq_tail().store(self.sq_tail, Ordering::Release);
            }
        }
        Some(Ticket {
            registration: self.id,
            index,
        })
    }

    /// Submits `call` and wakes the systhreads if they sleep.
    pub fn submit(&mut self, call: Call) -> Result<Ticket, Full> {
        let t = self.submit_batch(call)?;
        self.wake_if_needed();
        Ok(t)
    }

    /// Submits `call` without the wake-up check: submit a batch this way,
    /// then call [`Registration::wake_if_needed`] once.
    pub fn submit_batch(&mut self, call: Call) -> Result<Ticket, Full> {
        if self.free.is_empty() {
            return Err(Full(call));
        }
        let (nr, args, owned, yields) = call.into_parts();
        Ok(self.fill(nr, args, owned, yields).expect("a free entry"))
    }

    /// Submits any system call, and wakes the systhreads if they sleep.
    ///
    /// # Safety
    ///
    /// The call runs in this process with these arguments, as if this
    /// thread made it: every pointer in `args` must stay valid for what the
    /// call does with it until the ticket completes (or the registration is
    /// dropped), and memory the kernel writes must not be used meanwhile.
    pub unsafe fn submit_raw(&mut self, nr: i64, args: [u64; 6]) -> Option<Ticket> {
        let t = self.fill(nr, args, Owned::None, Yields::Value)?;
        self.wake_if_needed();
        Some(t)
    }

    fn check(&self, t: &Ticket) {
        assert_eq!(t.registration, self.id, "a ticket of another registration");
    }

    /// Whether `ticket`'s call is done.
    pub fn is_done(&self, ticket: &Ticket) -> bool {
        self.check(ticket);
        self.region.status(ticket.index).load(Ordering::Acquire) == abi::DONE
    }

    /// Ring mode: moves `cq_head` up to the completions taken, but never
    /// past `cq_tail` (an entry can be seen DONE just before the kernel
    /// counts it).
    fn acknowledge(&self) {
        let head = self.cq_head.get();
        let owed = self.taken.get().wrapping_sub(head);
        if owed == 0 {
            return;
        }
        let ready = self
            .region
            .cq_tail()
            .load(Ordering::Acquire)
            .wrapping_sub(head);
        let head = head.wrapping_add(owed.min(ready));
        self.cq_head.set(head);
        self.region.cq_head().store(head, Ordering::Release);
    }

    /// Takes `ticket`'s result if its call is done, or gives the ticket back.
    pub fn try_complete(&mut self, ticket: Ticket) -> Result<Completion, Ticket> {
        if !self.is_done(&ticket) {
            return Err(ticket);
        }
        let index = ticket.index;
        let ret = self.region.ret(index);
        match self.region.mode() {
            // The kernel counts DONE entries in flexsc_wait: free it.
            Mode::V1 => self
                .region
                .status(index)
                .store(abi::FREE, Ordering::Release),
            // Reused from DONE: the kernel never touches a DONE entry.
            Mode::Ring => {
                self.taken.set(self.taken.get().wrapping_add(1));
                self.acknowledge();
            }
        }
        self.free.push_back(index);
        let (owned, yields) = std::mem::take(&mut self.owned[index as usize]);
        Ok(Completion::new(ret, 0, owned, yields))
    }

    /// Waits for `ticket`'s call and takes its result: spins briefly, then
    /// sleeps in `flexsc_wait`.
    pub fn complete(&mut self, ticket: Ticket) -> Completion {
        let mut ticket = ticket;
        let mut spins = 0u32;
        loop {
            match self.try_complete(ticket) {
                Ok(c) => return c,
                Err(t) => ticket = t,
            }
            spins += 1;
            if spins < 2000 {
                std::hint::spin_loop();
                continue;
            }
            self.wake_if_needed();
            let done = self.done_entries();
            let timeout = libc::timespec {
                tv_sec: 0,
                tv_nsec: 1_000_000,
            };
            let _ = raw::wait(done + 1, Some(&timeout));
        }
    }

    /// Entries that are done now and not yet taken (in [`Mode::Ring`], as
    /// the completion counter says).
    pub fn done_entries(&self) -> u32 {
        match self.region.mode() {
            Mode::V1 => (0..self.region.nentries())
                .filter(|&i| self.region.status(i).load(Ordering::Relaxed) == abi::DONE)
                .count() as u32,
            Mode::Ring => {
                self.acknowledge();
                let tail = self.region.cq_tail().load(Ordering::Acquire);
                tail.wrapping_sub(self.cq_head.get())
            }
        }
    }

    /// `flexsc_wait`: wakes the systhreads, then blocks until at least
    /// `min_complete` entries are done and not yet taken, or `timeout`
    /// passes. Returns that number.
    pub fn wait(&self, min_complete: u32, timeout: Option<Duration>) -> io::Result<u32> {
        if self.region.mode() == Mode::Ring {
            self.acknowledge();
        }
        let ts = timeout.map(|d| libc::timespec {
            tv_sec: d.as_secs() as libc::time_t,
            tv_nsec: d.subsec_nanos() as libc::c_long,
        });
        raw::wait(min_complete, ts.as_ref()).map(|n| n as u32)
    }

    /// Runs `call` and waits for it: a whole system call through FlexSC.
    pub fn call(&mut self, call: Call) -> Result<Completion, Full> {
        let t = self.submit(call)?;
        Ok(self.complete(t))
    }

    /// Polls until every entry is free again or `limit` passes (for tests
    /// and teardown of well-behaved programs).
    pub fn drain(&mut self, limit: Duration) -> bool {
        let start = Instant::now();
        let n = self.region.nentries() as usize;
        while self.free.len() < n && start.elapsed() < limit {
            std::thread::yield_now();
        }
        self.free.len() == n
    }
}

#[cfg(test)]
impl Registration {
    /// The region, for a test that plays the kernel.
    pub(crate) fn region_for_tests(&self) -> &Region {
        &self.region
    }
}
