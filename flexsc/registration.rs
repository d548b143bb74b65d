// SPDX-License-Identifier: GPL-2.0

//! A registered thread's state: registering, waiting, tearing down.
//!
//! Lifetime of a registration:
//!
//! ```text
//!  flexsc_register()                                   flexsc_exit(), do_exit(), execve()
//!  copy + check params, pin + vmap region,             (always on the registered thread)
//!  start systhreads, task->syspage = Arc  --- live --> task->syspage = NULL, stopping = true,
//!                                                      interrupt every systhread, wait until
//!                                                      none is left, unpin + vunmap region,
//!                                                      drop the Arc (systhreads held clones)
//! ```
//!
//! Only the registered thread sets or clears its `syspage`, and only it
//! calls `flexsc_wait()`, so neither can race with its own teardown.
//!
//! Lock order: `Registration::region` (mutex) is never held with
//! `Registration::inner` (spinlock); `inner` is the innermost lock.

use core::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, Ordering};
use kernel::{
    bindings,
    prelude::*,
    sync::{
        new_condvar, new_mutex, new_spinlock, Arc, ArcBorrow, CondVar, CondVarTimeoutResult, Mutex,
        SpinLock,
    },
    task::Task,
    time::Ktime,
    types::ARef,
};

use crate::cpus;
use crate::dispatch::Owner;
use crate::entry::{region_len, Entries};
use crate::region::PinnedRegion;
use crate::stats::{self, Stat};
use crate::thread::{self, current_raw, RawTask};
use crate::trace;
use crate::worker::{Role, Slot, Worker};

/// Most systhreads a registration may ask for.
const MAX_SYSTHREADS: u32 = 256;
/// Most extra workers a registration keeps for calls that block, on top of
/// one scanner and one standby per systhread.
const MAX_BLOCKING_WORKERS: u32 = 64;
/// How long an idle systhread polls before it sleeps, if `idle_us` is 0.
const DEFAULT_IDLE_US: u32 = 100;

/// State of a registration under its spinlock.
struct Inner {
    /// The live workers' tasks; `None` marks a free place.
    tasks: KVec<Option<ARef<Task>>>,
    /// Workers created and not yet gone (a reserved place counts).
    live: u32,
    /// Set once, at teardown: no new worker starts, every worker leaves.
    stopping: bool,
    /// Bumped by every wake-up of sleeping systhreads.
    wake_gen: u64,
}

/// A registration: one registered thread, its region and its systhreads.
#[pin_data]
pub(crate) struct Registration {
    /// For whom the calls are run.
    pub(crate) owner: Owner,
    /// The entries, through the kernel mapping of `region`.
    ///
    /// Valid while `region` is `Some`: until teardown, after every worker
    /// has left and while only the registered thread itself is left to use
    /// it (it is the one tearing down).
    pub(crate) entries: Entries,
    /// How long an idle systhread polls before it sleeps, in nanoseconds.
    pub(crate) idle_ns: i64,
    /// One per systhread: its CPU and its concurrency management.
    pub(crate) slots: KVec<Slot>,
    /// Most workers at once.
    max_workers: u32,
    /// Teardown started: every worker leaves (mirrors `Inner::stopping`,
    /// for the workers' fast path).
    pub(crate) stop: AtomicBool,
    /// Systhreads that sleep for want of work.
    pub(crate) nr_sleeping: AtomicU32,
    /// Threads in `flexsc_wait()` (0 or 1: only the registered thread
    /// waits).
    waiters: AtomicU32,
    /// Calls run so far (flushed by the workers in batches).
    pub(crate) calls: AtomicU64,
    #[pin]
    region: Mutex<Option<PinnedRegion>>,
    #[pin]
    inner: SpinLock<Inner>,
    /// Idle systhreads sleep here.
    #[pin]
    wake: CondVar,
    /// `flexsc_wait()` sleeps here.
    #[pin]
    completed: CondVar,
    /// Teardown waits here for the workers to leave.
    #[pin]
    exited: CondVar,
}

/// Reads the current thread's `syspage`.
fn current_syspage() -> *const Registration {
    // SAFETY: Current is valid; only current writes its own `syspage`.
    unsafe {
        bindings::flexsc_syspage(current_raw())
            .cast::<Registration>()
            .cast_const()
    }
}

/// Sets the current thread's `syspage`.
fn set_current_syspage(reg: *const Registration) {
    // SAFETY: As in `current_syspage`.
    unsafe { bindings::flexsc_set_syspage(current_raw(), reg.cast_mut().cast()) };
}

impl Registration {
    /// `flexsc_register(params, size)` for the current thread.
    pub(crate) fn register(uparams: usize, size: usize) -> Result {
        let p = read_params(uparams, size)?;
        if p.flags != 0
            || p.nentries == 0
            || p.nentries > bindings::FLEXSC_MAX_ENTRIES
            || p.region % bindings::PAGE_SIZE as u64 != 0
            || p.nsysthreads > MAX_SYSTHREADS
        {
            return Err(EINVAL);
        }
        let cpus = cpus::allowed_cpus(p.cpu_mask as usize, p.cpu_mask_size as usize)?;
        if !current_syspage().is_null() {
            return Err(EBUSY);
        }

        let region = PinnedRegion::pin(p.region as usize, region_len(p.nentries))?;
        // SAFETY: The mapping covers `region_len(nentries)` bytes (rounded up
        // to pages) and outlives every use of `entries` (see `Registration::entries`).
        let entries = unsafe { Entries::new(region.base(), p.nentries) };
        entries.init_header();

        let nslots = if p.nsysthreads == 0 {
            cpus.len() as u32
        } else {
            p.nsysthreads
        };
        let mut slots = KVec::with_capacity(nslots as usize, GFP_KERNEL)?;
        for i in 0..nslots {
            slots.push(Slot::new(cpus[(i as usize) % cpus.len()]), GFP_KERNEL)?;
        }
        let max_workers = 2 * nslots + p.nentries.min(MAX_BLOCKING_WORKERS);
        let mut tasks = KVec::with_capacity(max_workers as usize, GFP_KERNEL)?;
        for _ in 0..max_workers {
            tasks.push(None, GFP_KERNEL)?;
        }
        let idle_us = if p.idle_us == 0 {
            DEFAULT_IDLE_US
        } else {
            p.idle_us
        };
        let task = current_raw();
        // SAFETY: Current is valid.
        let tid = unsafe { bindings::task_pid_vnr(task) };

        let reg = Arc::pin_init(
            pin_init!(Registration {
                owner: Owner { task, tid },
                entries,
                idle_ns: idle_us as i64 * 1000,
                slots,
                max_workers,
                stop: AtomicBool::new(false),
                nr_sleeping: AtomicU32::new(0),
                waiters: AtomicU32::new(0),
                calls: AtomicU64::new(0),
                region <- new_mutex!(Some(region), "flexsc_registration_region"),
                inner <- new_spinlock!(
                    Inner { tasks, live: 0, stopping: false, wake_gen: 0 },
                    "flexsc_registration_inner"
                ),
                wake <- new_condvar!("flexsc_registration_wake"),
                completed <- new_condvar!("flexsc_registration_completed"),
                exited <- new_condvar!("flexsc_registration_exited"),
            }),
            GFP_KERNEL,
        )?;

        // Every systhread: a scanner, and a standby that takes over its CPU
        // when a call blocks.
        for slot in 0..nslots as usize {
            let started = Self::spawn_worker(&reg, slot, Role::Scanner)
                .and_then(|()| Self::spawn_worker(&reg, slot, Role::Standby));
            if let Err(e) = started {
                reg.teardown();
                return Err(e);
            }
        }

        set_current_syspage(Arc::into_raw(reg));
        stats::add(Stat::Registrations, 1);
        trace::register(tid, p.nentries, nslots);
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

    /// Starts a worker for `slot`, unless the pool is full or stopping
    /// (`EAGAIN`).
    pub(crate) fn spawn_worker(arc: &Arc<Registration>, slot: usize, role: Role) -> Result {
        {
            let mut inner = arc.inner.lock();
            if inner.stopping || inner.live >= arc.max_workers {
                return Err(EAGAIN);
            }
            inner.live += 1;
        }
        let worker = KBox::new(Worker::new(arc.clone(), slot, role), GFP_KERNEL);
        let new = worker
            .map_err(Error::from)
            .and_then(|w| thread::NewThread::create(w, Worker::main));
        let new = match new {
            Ok(new) => new,
            Err(e) => {
                arc.forget_worker(None);
                return Err(e);
            }
        };
        {
            let mut inner = arc.inner.lock();
            let place = inner.tasks.as_mut_slice().iter_mut().find(|t| t.is_none());
            // A place is free: `live` counts the places in use, plus ours.
            if let Some(place) = place {
                *place = Some(new.task().clone());
            }
            if inner.stopping {
                thread::interrupt(new.task());
            }
        }
        if let Role::Standby = role {
            // Published before it runs, so that a call blocking right after
            // this finds it. Losing a race to another standby only makes
            // this one an extra scanner, which retires after a call.
            arc.slots[slot].publish_standby(thread::raw(new.task()));
        }
        stats::add(Stat::Systhreads, 1);
        new.start();
        Ok(())
    }

    /// A worker of this registration leaves (or never started): frees its
    /// place and wakes teardown when it was the last.
    pub(crate) fn forget_worker(&self, task: Option<RawTask>) {
        let gone = {
            let mut inner = self.inner.lock();
            if let Some(task) = task {
                for place in inner.tasks.as_mut_slice() {
                    if place.as_ref().is_some_and(|t| thread::raw(t) == task) {
                        // Drops our reference; the thread holds its own.
                        *place = None;
                        break;
                    }
                }
            }
            inner.live -= 1;
            if inner.live == 0 {
                self.exited.notify_all();
            }
            task.is_some()
        };
        if gone {
            stats::sub(Stat::Systhreads, 1);
        }
    }

    /// The generation of wake-ups, read before a systhread decides to sleep.
    pub(crate) fn wake_gen(&self) -> u64 {
        self.inner.lock().wake_gen
    }

    /// Sleeps until a wake-up newer than `gen`, teardown, or a signal.
    /// Returns `true` if a signal is pending.
    pub(crate) fn sleep_idle(&self, gen: u64) -> bool {
        let mut inner = self.inner.lock();
        while inner.wake_gen == gen && !inner.stopping {
            if self.wake.wait_interruptible(&mut inner) {
                return true;
            }
        }
        false
    }

    /// A slot stops scanning (its scanner sleeps, or blocks with nobody to
    /// take over). When no slot scans, NEED_WAKEUP tells the user so. Never
    /// sleeps (called from the scheduler hook too).
    pub(crate) fn slot_sleeps(&self) {
        if self.nr_sleeping.fetch_add(1, Ordering::SeqCst) + 1 >= self.slots.len() as u32 {
            self.entries.set_need_wakeup();
        }
    }

    /// A slot scans again.
    pub(crate) fn slot_wakes(&self) {
        self.nr_sleeping.fetch_sub(1, Ordering::SeqCst);
        self.entries.clear_need_wakeup();
    }

    /// Wakes every systhread that sleeps for want of work.
    fn wake_idle(&self) {
        self.entries.clear_need_wakeup();
        if self.nr_sleeping.load(Ordering::SeqCst) != 0 {
            let mut inner = self.inner.lock();
            inner.wake_gen += 1;
            self.wake.notify_all();
        }
    }

    /// Tells a waiter in `flexsc_wait()`, if any, that an entry is DONE.
    pub(crate) fn notify_completion(&self) {
        // Orders the DONE store before reading `waiters`; the waiter orders
        // its `waiters` increment before counting DONE entries.
        fence(Ordering::SeqCst);
        if self.waiters.load(Ordering::Relaxed) != 0 {
            let _inner = self.inner.lock();
            self.completed.notify_all();
        }
    }

    /// `flexsc_wait(min_complete, timeout)` for the current thread.
    pub(crate) fn wait(min_complete: u32, utimeout: usize) -> Result<i64> {
        let reg = Self::current().ok_or(EINVAL)?;
        let deadline = if utimeout == 0 {
            None
        } else {
            // SAFETY: `timespec64` is plain data.
            let mut ts: bindings::timespec64 = unsafe { core::mem::zeroed() };
            // SAFETY: `utimeout` is a user pointer, checked by the callee.
            let err = unsafe { bindings::get_timespec64(&mut ts, utimeout as _) };
            if err != 0 {
                return Err(EFAULT);
            }
            if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&(ts.tv_nsec as i64)) {
                return Err(EINVAL);
            }
            let ns = (ts.tv_sec as i64)
                .saturating_mul(1_000_000_000)
                .saturating_add(ts.tv_nsec as i64);
            Some(Ktime::ktime_get().to_ns().saturating_add(ns))
        };

        reg.wake_idle();
        let done = reg.entries.count_done();
        if min_complete == 0 || done >= min_complete {
            return Ok(done as i64);
        }

        let mut inner = reg.inner.lock();
        reg.waiters.fetch_add(1, Ordering::SeqCst);
        let result = loop {
            let done = reg.entries.count_done();
            if done >= min_complete {
                break Ok(done as i64);
            }
            let Some(deadline) = deadline else {
                if reg.completed.wait_interruptible(&mut inner) {
                    break Err(EINTR);
                }
                continue;
            };
            let left = deadline - Ktime::ktime_get().to_ns();
            if left <= 0 {
                break Err(Error::from_errno(-(bindings::ETIMEDOUT as i32)));
            }
            // SAFETY: Plain arithmetic.
            let jiffies = unsafe { bindings::nsecs_to_jiffies(left as u64) }.max(1);
            if let CondVarTimeoutResult::Signal { .. } = reg
                .completed
                .wait_interruptible_timeout(&mut inner, jiffies as _)
            {
                break Err(EINTR);
            }
        };
        reg.waiters.fetch_sub(1, Ordering::SeqCst);
        drop(inner);
        result
    }

    /// Stops every worker, waits until all have left, unpins the region.
    fn teardown(&self) {
        {
            let mut inner = self.inner.lock();
            inner.stopping = true;
            self.stop.store(true, Ordering::SeqCst);
            inner.wake_gen += 1;
            for task in inner.tasks.as_slice().iter().flatten() {
                thread::interrupt(task);
            }
            self.wake.notify_all();
        }
        let mut inner = self.inner.lock();
        while inner.live != 0 {
            self.exited.wait(&mut inner);
        }
        drop(inner);
        // No worker is left: nobody uses `entries` any more.
        let region = self.region.lock().take();
        drop(region);
    }
}

/// Copies `struct flexsc_params` from user space by the size rules of
/// `copy_struct_from_user()`, as clone3() and openat2() do.
fn read_params(uparams: usize, size: usize) -> Result<bindings::flexsc_params> {
    if size < bindings::FLEXSC_PARAMS_SIZE_VER0 as usize {
        return Err(EINVAL);
    }
    if size > bindings::PAGE_SIZE {
        return Err(E2BIG);
    }
    // SAFETY: `flexsc_params` is plain data.
    let mut p: bindings::flexsc_params = unsafe { core::mem::zeroed() };
    // SAFETY: `p` is valid for `size_of::<flexsc_params>()` bytes; the user
    // pointer is checked by the callee.
    let err = unsafe {
        bindings::copy_struct_from_user(
            (&mut p as *mut bindings::flexsc_params).cast(),
            core::mem::size_of::<bindings::flexsc_params>(),
            uparams as _,
            size,
        )
    };
    if err != 0 {
        return Err(Error::from_errno(err));
    }
    Ok(p)
}
