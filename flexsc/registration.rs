// SPDX-License-Identifier: GPL-2.0

//! A registered thread's state: registering, waiting, tearing down.
//!
//! Lifetime of a registration:
//!
//! ```text
//!  flexsc_register()                                   flexsc_exit(), do_exit(), execve()
//!  kernel.flexsc_disabled, copy + check params,        (always on the registered thread)
//!  CPUs within the cpuset, pin + vmap region           task->syspage = NULL, stop = true,
//!  (private anonymous memory only), hold the           out of the pool's list, interrupt
//!  owner's task, join (or make) the process's  -- live --> the workers running its calls,
//!  pool and its CPUs' slots,                           wait (killably) until none is in
//!  task->syspage = Arc                                 its entries, unpin + vunmap the
//!                                                      region; the last registration of
//!                                                      the process stops the pool
//! ```
//!
//! Teardown waits killably and off the load average (`TASK_KILLABLE |
//! TASK_NOLOAD`): ordinary signals do not end it, so `flexsc_exit()`
//! returns only when no call is in flight, yet a call stuck in a killable
//! sleep leaves no D-state, unkillable owner. If a fatal signal ends the
//! wait, the workers still in its entries finish on their own: each holds
//! the registration (and so the region and the owner's `task_struct`) and
//! runs no new call of it once `stop` is set; the last reference unpins
//! the region.
//!
//! Workers take entries of a registration only while they hold its token
//! ([`Registration::try_take`]): one scanner at a time reads its entries
//! (or its ring), so scanners of other CPUs do not race for its lines. A
//! worker whose call blocks gives the token up (from the scheduler hook),
//! so that the standby taking over its CPU can go on with the others.
//!
//! Only the registered thread sets or clears its `syspage`, and only it
//! calls `flexsc_wait()`, so neither can race with its own teardown.

use core::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, Ordering};
use kernel::{
    bindings,
    prelude::*,
    sync::{new_mutex, Arc, ArcBorrow, Mutex},
};

use crate::cpus;
use crate::dispatch::{self, Mode, Outcome, Owner};
use crate::entry::{region_len, Call, Entries, Index};
use crate::ffi;
use crate::owner::Follower;
use crate::pool::{Pool, Role};
use crate::region::PinnedRegion;
use crate::stats::{self, Stat};
use crate::thread;
use crate::trace;
use crate::user;
use crate::waitq::WaitQueue;

/// Most systhreads a registration may ask for (one per CPU is what it gets).
const MAX_SYSTHREADS: u32 = 256;
/// How long an idle systhread polls before it sleeps, if `idle_us` is 0.
const DEFAULT_IDLE_US: u32 = 100;
/// The longest an idle systhread polls: larger `idle_us` are capped, so
/// that a registration cannot keep CPUs busy for nothing (as io_uring's
/// default SQPOLL idle, one second).
const MAX_IDLE_US: u32 = 1_000_000;
/// Most entries a worker runs of one registration before it turns to the
/// next one of its process.
pub(crate) const PER_PASS: u32 = 64;

/// What the token holder writes: a cache line of its own.
#[repr(align(64))]
struct Hot {
    /// The token: a worker takes entries of this registration.
    busy: AtomicBool,
    /// The ring position the kernel takes next (its own copy of `sq_head`).
    sq_head: AtomicU32,
    /// The user's `sq_tail` as last read.
    sq_tail: AtomicU32,
    /// Where the next scan of the entries starts (without a ring).
    scan_pos: AtomicU32,
}

/// What `flexsc_wait()` writes: a cache line of its own.
#[repr(align(64))]
struct Waiting {
    /// Threads in `flexsc_wait()` (0 or 1: only the registered thread
    /// waits).
    waiters: AtomicU32,
    /// The completions it waits for.
    min: AtomicU32,
}

/// A registration: one registered thread and its region, served by the
/// pool of its process.
#[pin_data]
pub(crate) struct Registration {
    hot: Hot,
    waiting: Waiting,
    /// For whom the calls are run.
    pub(crate) owner: Owner,
    /// The entries, through the kernel mapping of `region`.
    ///
    /// Valid while `region` is `Some`: until teardown, after every worker
    /// has left its entries and while only the registered thread itself is
    /// left to use it (it is the one tearing down).
    pub(crate) entries: Entries,
    /// The systhreads of the process.
    pub(crate) pool: Arc<Pool>,
    /// How long an idle systhread polls before it sleeps, in nanoseconds.
    pub(crate) idle_ns: i64,
    /// The CPUs whose scanners serve it.
    cpus: KVec<u32>,
    /// The same, as a bitmap.
    cpu_bits: KVec<u64>,
    /// Workers inside its entries ([`Registration::enter`]).
    active: AtomicU32,
    /// Teardown started: no worker takes its entries any more.
    pub(crate) stop: AtomicBool,
    /// Entries given back, unrun, to be taken again (a ring does not hold
    /// them any more): one bit per entry.
    retry: KVec<AtomicU64>,
    /// Some bit of `retry` may be set.
    retry_pending: AtomicBool,
    /// Calls run so far (flushed by the workers in batches).
    pub(crate) calls: AtomicU64,
    #[pin]
    region: Mutex<Option<PinnedRegion>>,
    /// `flexsc_wait()` sleeps here.
    #[pin]
    completed: WaitQueue,
    /// Teardown waits here for the workers to leave its entries.
    #[pin]
    exited: WaitQueue,
}

/// Reads the current thread's `syspage`.
fn current_syspage() -> *const Registration {
    thread::current_syspage().cast()
}

/// Sets the current thread's `syspage`.
fn set_current_syspage(reg: *const Registration) {
    thread::set_current_syspage(reg.cast());
}

impl Registration {
    /// `flexsc_register(params, size)` for the current thread; `spawn`
    /// starts a worker of a pool (the worker module's).
    pub(crate) fn register(
        uparams: usize,
        size: usize,
        spawn: fn(&Arc<Pool>, u32, Role) -> Result,
    ) -> Result {
        // SAFETY: Reads a sysctl and current's ABI.
        let err = unsafe { ffi::flexsc_may_register() };
        if err != 0 {
            return Err(Error::from_errno(err));
        }
        let p = user::read_params(uparams, size)?;
        let ring = p.flags & bindings::FLEXSC_REGISTER_RING as u64 != 0;
        if p.flags & !(bindings::FLEXSC_REGISTER_RING as u64) != 0
            || p.nentries == 0
            || p.nentries > bindings::FLEXSC_MAX_ENTRIES
            || (ring && !p.nentries.is_power_of_two())
            || p.region % bindings::PAGE_SIZE as u64 != 0
            || p.nsysthreads > MAX_SYSTHREADS
        {
            return Err(EINVAL);
        }
        let mut cpus = cpus::allowed_cpus(p.cpu_mask as usize, p.cpu_mask_size as usize)?;
        if !current_syspage().is_null() {
            return Err(EBUSY);
        }
        // At most one scanner per CPU and process: `nsysthreads` picks the
        // first CPUs of the mask.
        if p.nsysthreads != 0 && (p.nsysthreads as usize) < cpus.len() {
            let mut fewer = KVec::with_capacity(p.nsysthreads as usize, GFP_KERNEL)?;
            for &cpu in &cpus[..p.nsysthreads as usize] {
                fewer.push(cpu, GFP_KERNEL)?;
            }
            cpus = fewer;
        }
        let mut cpu_bits =
            KVec::from_elem(0u64, bindings::NR_CPUS.div_ceil(64) as usize, GFP_KERNEL)?;
        for &cpu in cpus.iter() {
            cpu_bits[(cpu / 64) as usize] |= 1 << (cpu % 64);
        }
        let mut retry = KVec::with_capacity(p.nentries.div_ceil(64) as usize, GFP_KERNEL)?;
        for _ in 0..p.nentries.div_ceil(64) {
            retry.push(AtomicU64::new(0), GFP_KERNEL)?;
        }

        let region = PinnedRegion::pin(p.region as usize, region_len(p.nentries, ring))?;
        // SAFETY: The mapping covers `region_len(nentries, ring)` bytes
        // (rounded up to pages) and outlives every use of `entries` (see
        // `Registration::entries`); `nentries` was checked for a ring.
        let entries = unsafe { Entries::new(region.base(), p.nentries, ring) };
        entries.init_header();

        let idle_us = if p.idle_us == 0 {
            DEFAULT_IDLE_US
        } else {
            p.idle_us.min(MAX_IDLE_US)
        };
        let tid = thread::current_tid();
        let task = thread::current_task();
        let pool = Pool::get_or_make()?;
        let ncpus = cpus.len() as u32;
        let pool_ref = pool.clone();

        let reg = Arc::pin_init(
            pin_init!(Registration {
                hot: Hot {
                    busy: AtomicBool::new(false),
                    sq_head: AtomicU32::new(0),
                    sq_tail: AtomicU32::new(0),
                    scan_pos: AtomicU32::new(0),
                },
                waiting: Waiting {
                    waiters: AtomicU32::new(0),
                    min: AtomicU32::new(0),
                },
                owner: Owner { task, tid },
                entries,
                pool: pool_ref,
                idle_ns: idle_us as i64 * 1000,
                cpus,
                cpu_bits,
                active: AtomicU32::new(0),
                stop: AtomicBool::new(false),
                retry,
                retry_pending: AtomicBool::new(false),
                calls: AtomicU64::new(0),
                region <- new_mutex!(Some(region), "flexsc_registration_region"),
                completed <- WaitQueue::new(),
                exited <- WaitQueue::new(),
            }),
            GFP_KERNEL,
        );
        let reg = match reg {
            Ok(reg) => reg,
            Err(e) => {
                pool.release();
                return Err(e);
            }
        };
        if let Err(e) = pool.add(&reg, &reg.cpus, spawn) {
            reg.teardown();
            return Err(e);
        }
        // A scanner asleep with an old list of registrations: it looks again.
        pool.wake_one(&reg);

        set_current_syspage(Arc::into_raw(reg));
        stats::add(Stat::Registrations, 1);
        trace::register(tid, p.nentries, ncpus);
        Ok(())
    }

    /// `flexsc_exit()` for the current thread.
    pub(crate) fn unregister_current() -> Result {
        if current_syspage().is_null() {
            return Err(EINVAL);
        }
        Self::teardown_current();
        Ok(())
    }

    /// Ends the current thread's registration, which must exist.
    pub(crate) fn teardown_current() {
        let ptr = current_syspage();
        set_current_syspage(core::ptr::null());
        // SAFETY: `syspage` held the reference from `Arc::into_raw` in
        // `register`, and it was just cleared: the reference is ours.
        let reg = unsafe { Arc::from_raw(ptr) };
        reg.teardown();
        stats::sub(Stat::Registrations, 1);
        trace::exit(reg.owner.tid, reg.calls.load(Ordering::Relaxed));
    }

    /// Borrows the current thread's registration, if any.
    fn current<'a>() -> Option<ArcBorrow<'a, Registration>> {
        let ptr = current_syspage();
        if ptr.is_null() {
            return None;
        }
        // SAFETY: `syspage` holds a reference, and only the current thread
        // drops it, which it does not do while the borrow lives (the borrow
        // stays inside a syscall of that thread).
        Some(unsafe { ArcBorrow::from_raw(ptr) })
    }

    /// The CPUs whose scanners serve this registration.
    pub(crate) fn cpus(&self) -> impl Iterator<Item = u32> + '_ {
        self.cpus.iter().copied()
    }

    /// Whether the scanner of `cpu` serves this registration.
    pub(crate) fn serves(&self, cpu: u32) -> bool {
        self.cpu_bits
            .get((cpu / 64) as usize)
            .is_some_and(|w| w & (1 << (cpu % 64)) != 0)
    }

    /// Takes the token, if nobody holds it (a load first, so that scanners
    /// that find it taken do not bounce its line).
    pub(crate) fn try_take(&self) -> bool {
        !self.hot.busy.load(Ordering::Relaxed)
            && self
                .hot
                .busy
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
    }

    /// Gives the token back, publishing the ring position reached. Never
    /// sleeps (called from the scheduler hook too).
    pub(crate) fn give_up_token(&self) {
        if self.entries.has_ring() {
            self.entries
                .set_sq_head(self.hot.sq_head.load(Ordering::Relaxed));
        }
        self.hot.busy.store(false, Ordering::Release);
    }

    /// A worker enters its entries; `false` (not entered) once teardown
    /// started.
    pub(crate) fn enter(&self) -> bool {
        self.active.fetch_add(1, Ordering::SeqCst);
        if self.stop.load(Ordering::SeqCst) {
            self.leave();
            return false;
        }
        true
    }

    /// A worker leaves its entries: wakes teardown when it was the last.
    pub(crate) fn leave(&self) {
        if self.active.fetch_sub(1, Ordering::SeqCst) == 1 && self.stop.load(Ordering::SeqCst) {
            self.exited.wake(true);
        }
    }

    /// The next call to run, claimed, for the token holder: entries given
    /// back first (with `retry`), then the ring's next indices or, without
    /// a ring, the next SUBMITTED entry from where the last scan stopped.
    /// `None` when a full look finds nothing.
    pub(crate) fn next_call(&self, retry: bool) -> Option<Call> {
        let entries = &self.entries;
        if retry && self.retry_pending.load(Ordering::Relaxed) {
            if let Some(call) = self.take_given_back() {
                return Some(call);
            }
        }
        if entries.has_ring() {
            loop {
                let head = self.hot.sq_head.load(Ordering::Relaxed);
                let mut tail = self.hot.sq_tail.load(Ordering::Relaxed);
                if head == tail {
                    tail = entries.sq_tail();
                    // A user's tail more than a ring ahead is cut to one
                    // ring: the slots past it repeat.
                    if tail.wrapping_sub(head) > entries.len() {
                        tail = head.wrapping_add(entries.len());
                    }
                    self.hot.sq_tail.store(tail, Ordering::Relaxed);
                    if head == tail {
                        return None;
                    }
                }
                self.hot
                    .sq_head
                    .store(head.wrapping_add(1), Ordering::Relaxed);
                if let Some(call) = entries.sq_at(head).and_then(|i| entries.claim(i)) {
                    return Some(call);
                }
            }
        }
        let start = self.hot.scan_pos.load(Ordering::Relaxed);
        for index in entries.indices_from(start) {
            if entries.is_submitted(index) {
                if let Some(call) = entries.claim(index) {
                    self.hot.scan_pos.store(index.get() + 1, Ordering::Relaxed);
                    return Some(call);
                }
            }
        }
        None
    }

    /// Whether entries wait to be taken (a hint, for a scanner about to
    /// sleep).
    pub(crate) fn has_work(&self) -> bool {
        self.retry_pending.load(Ordering::Relaxed)
            || self
                .entries
                .any_submitted(self.hot.sq_head.load(Ordering::Relaxed))
    }

    /// Gives a claimed entry back, unrun, to be taken again.
    pub(crate) fn give_back(&self, index: Index) {
        self.entries.unclaim(index);
        if self.entries.has_ring() {
            let i = index.get();
            self.retry[(i / 64) as usize].fetch_or(1 << (i % 64), Ordering::Release);
            self.retry_pending.store(true, Ordering::SeqCst);
        }
    }

    /// Claims an entry that was given back, if any.
    fn take_given_back(&self) -> Option<Call> {
        for (w, word) in self.retry.iter().enumerate() {
            let mut bits = word.load(Ordering::Acquire);
            while bits != 0 {
                let b = bits.trailing_zeros();
                let was = word.fetch_and(!(1 << b), Ordering::Acquire);
                bits = was & !(1 << b);
                if was & (1 << b) == 0 {
                    continue;
                }
                let index = self.entries.index(w as u32 * 64 + b)?;
                if let Some(call) = self.entries.claim(index) {
                    return Some(call);
                }
            }
        }
        self.retry_pending.store(false, Ordering::SeqCst);
        // A bit set meanwhile sets the flag again after its own store.
        None
    }

    /// Publishes `n` completions (their DONE stores made) and tells a
    /// waiter in `flexsc_wait()` when it has what it waits for. Called
    /// once per pass over the entries, not per entry; never sleeps (the
    /// scheduler hook calls it too).
    pub(crate) fn publish(&self, n: u32) {
        if n == 0 {
            return;
        }
        if self.entries.has_ring() {
            self.entries.add_completions(n);
        }
        // Orders the DONE stores before reading `waiters`; the waiter
        // orders its `waiters` increment before counting completions.
        fence(Ordering::SeqCst);
        if self.waiting.waiters.load(Ordering::Relaxed) != 0
            && (!self.entries.has_ring()
                || self.entries.count_done() >= self.waiting.min.load(Ordering::Relaxed))
        {
            self.completed.wake(false);
        }
    }

    /// Clears NEED_WAKEUP and wakes one sleeping scanner that serves this
    /// registration.
    fn wake_idle(&self) {
        self.entries.clear_need_wakeup();
        self.pool.wake_one(self);
    }

    /// Runs the current thread's own entries in its own context, in
    /// `flexsc_wait()`: no systhread polls on another CPU, so a mode switch
    /// per batch beats a context switch per batch. Calls that would block
    /// are given back to the systhreads. Returns how many were given back.
    fn run_inline(&self) -> u32 {
        if !self.try_take() {
            return 0;
        }
        let follower = Follower::new();
        // SAFETY: `pt_regs` is plain data; one per batch.
        let mut regs: bindings::pt_regs = unsafe { core::mem::zeroed() };
        let (mut done, mut calls, mut refused, mut given) = (0u32, 0u64, 0u64, 0u32);
        let n = self.entries.len();
        let mut scanned = 0;
        loop {
            // Without a ring, one sweep: a given-back entry is SUBMITTED
            // again and must not be found twice.
            if !self.entries.has_ring() && scanned >= n {
                break;
            }
            let call = if self.entries.has_ring() {
                self.next_call(false)
            } else {
                let index = self.entries.index(scanned);
                scanned += 1;
                match index {
                    Some(i) if self.entries.is_submitted(i) => self.entries.claim(i),
                    _ => continue,
                }
            };
            let Some(call) = call else { break };
            let outcome = dispatch::run(
                &self.owner,
                &follower,
                &mut regs,
                &call,
                Mode::Inline,
                || {},
                || {},
                || false,
            );
            let ret = match outcome {
                Outcome::WouldBlock => {
                    self.give_back(call.index());
                    given += 1;
                    continue;
                }
                Outcome::Ran(ret) => {
                    calls += 1;
                    ret
                }
                Outcome::Refused(ret) => {
                    refused += 1;
                    ret
                }
            };
            self.entries.complete(call.index(), ret);
            done += 1;
            if thread::signal_pending() {
                break;
            }
        }
        self.give_up_token();
        if self.entries.has_ring() && done != 0 {
            self.entries.add_completions(done);
        }
        stats::add(Stat::Calls, calls);
        stats::add(Stat::Refused, refused);
        self.calls.fetch_add(calls + refused, Ordering::Relaxed);
        given
    }

    /// `flexsc_wait(min_complete, timeout)` for the current thread.
    pub(crate) fn wait(min_complete: u32, utimeout: usize) -> Result<i64> {
        let reg = Self::current().ok_or(EINVAL)?;
        if min_complete > reg.entries.len() {
            return Err(EINVAL);
        }
        let deadline = user::read_deadline(utimeout)?;

        // SAFETY: Plain reads of current's state.
        let cpu = unsafe { ffi::flexsc_this_cpu() };
        // SAFETY: As above.
        let allowed = unsafe { ffi::flexsc_inline_allowed() };
        if min_complete > 0 && allowed && !reg.pool.polling_elsewhere(&reg, cpu) {
            if reg.run_inline() != 0 {
                reg.wake_idle();
            }
        } else {
            reg.wake_idle();
        }
        let done = reg.entries.count_done();
        if min_complete == 0 || done >= min_complete {
            return Ok(done as i64);
        }

        // Entries left to the systhreads: make sure one is awake.
        reg.wake_idle();
        reg.waiting.min.store(min_complete, Ordering::Relaxed);
        reg.waiting.waiters.fetch_add(1, Ordering::SeqCst);
        let waited = reg
            .completed
            .wait_until(&|| reg.entries.count_done() >= min_complete, deadline);
        reg.waiting.waiters.fetch_sub(1, Ordering::SeqCst);
        waited?;
        Ok(reg.entries.count_done() as i64)
    }

    /// Stops the workers from taking its entries, interrupts those running
    /// its calls and waits until none is left in them, then unpins the
    /// region, and lets the pool go. The wait ends early only on a fatal
    /// signal (the process is dying); then the last reference unpins the
    /// region (see the module documentation).
    fn teardown(self: &Arc<Self>) {
        self.stop.store(true, Ordering::SeqCst);
        self.pool.remove(self);
        self.pool.interrupt_serving(self);
        let left = self
            .exited
            .wait_killable(&|| self.active.load(Ordering::SeqCst) == 0);
        if left.is_ok() {
            // Entries submitted and never claimed (the systhreads slept, or
            // a call was given back) complete too: after flexsc_exit() no
            // entry is SUBMITTED or BUSY.
            let cancelled = self.entries.cancel_submitted(-(bindings::EINTR as i64));
            if self.entries.has_ring() && cancelled != 0 {
                self.entries.add_completions(cancelled);
            }
            // No worker is in its entries: nobody uses `entries` any more.
            let region = self.region.lock().take();
            drop(region);
        }
        self.pool.release();
    }
}
