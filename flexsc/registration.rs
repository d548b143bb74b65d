// SPDX-License-Identifier: GPL-2.0

//! A registered thread's state: registering, waiting, tearing down.
//!
//! Lifetime of a registration:
//!
//! ```text
//!  flexsc_register()                                   flexsc_exit(), do_exit(), execve()
//!  kernel.flexsc_disabled, copy + check params,        (always on the registered thread)
//!  CPUs within the cpuset, pin + vmap region           task->syspage = NULL, stopping = true,
//!  (private anonymous memory only), hold the           interrupt every systhread, wait
//!  owner's task, start systhreads,         --- live --> (killably) until none is left,
//!  task->syspage = Arc                                 then unpin + vunmap the region; drop
//!                                                      the Arc (systhreads held clones)
//! ```
//!
//! Teardown waits killably and off the load average (`TASK_KILLABLE |
//! TASK_NOLOAD`): ordinary signals do not end it, so `flexsc_exit()`
//! returns only when no call is in flight, yet a call stuck in a killable
//! sleep leaves no D-state, unkillable owner. If a fatal signal ends the
//! wait, the systhreads still running finish on their own: each holds the
//! registration (and so the region and the owner's `task_struct`) and its
//! own reference on the owner's seccomp filter, and runs no new call once
//! `stop` is set; the last one to leave unpins the region.
//!
//! Only the registered thread sets or clears its `syspage`, and only it
//! calls `flexsc_wait()`, so neither can race with its own teardown.
//!
//! Lock order: `Registration::region` (mutex) is never held with
//! `Registration::inner` (spinlock); `inner` is the innermost lock.

use core::ffi::c_void;
use core::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, Ordering};
use kernel::{
    bindings,
    prelude::*,
    sync::{new_condvar, new_mutex, new_spinlock, Arc, ArcBorrow, CondVar, Mutex, SpinLock},
    task::Task,
    time::Ktime,
    types::{ARef, Opaque},
};

use crate::cpus;
use crate::dispatch::Owner;
use crate::entry::{region_len, Entries};
use crate::ffi;
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
/// The longest an idle systhread polls: larger `idle_us` are capped, so
/// that a registration cannot keep CPUs busy for nothing (as io_uring's
/// default SQPOLL idle, one second).
const MAX_IDLE_US: u32 = 1_000_000;

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
    /// `flexsc_wait()` sleeps here (`flexsc_wait_event()` in `glue.c`).
    #[pin]
    completed: Opaque<bindings::wait_queue_head>,
    /// Teardown waits here for the workers to leave
    /// (`flexsc_wait_teardown()` in `glue.c`).
    #[pin]
    exited: Opaque<bindings::wait_queue_head>,
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
        // SAFETY: Reads a sysctl and current's ABI.
        let err = unsafe { ffi::flexsc_may_register() };
        if err != 0 {
            return Err(Error::from_errno(err));
        }
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
        // A standby, a rescuer and a scanner per slot, and the calls that block.
        let max_workers = 3 * nslots + p.nentries.min(MAX_BLOCKING_WORKERS);
        let mut tasks = KVec::with_capacity(max_workers as usize, GFP_KERNEL)?;
        for _ in 0..max_workers {
            tasks.push(None, GFP_KERNEL)?;
        }
        let idle_us = if p.idle_us == 0 {
            DEFAULT_IDLE_US
        } else {
            p.idle_us.min(MAX_IDLE_US)
        };
        let task = current_raw();
        // SAFETY: Current is valid.
        let tid = unsafe { bindings::task_pid_vnr(task) };
        // SAFETY: Current is valid; `ARef::from` takes a reference of its
        // own, held as long as the registration.
        let task: ARef<Task> = ARef::from(unsafe { &*task.cast::<Task>() });

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
                // SAFETY: `slot` is valid while the closure runs.
                completed <- Opaque::ffi_init(|slot| unsafe { ffi::flexsc_init_waitqueue(slot) }),
                // SAFETY: `slot` is valid while the closure runs.
                exited <- Opaque::ffi_init(|slot| unsafe { ffi::flexsc_init_waitqueue(slot) }),
            }),
            GFP_KERNEL,
        )?;

        // Every systhread: a standby that takes over its CPU when a call
        // blocks, a rescuer for when no standby can be made, and the
        // scanner, started last so that a first call that blocks finds both.
        for slot in 0..nslots as usize {
            let started = Self::spawn_worker(&reg, slot, Role::Standby)
                .and_then(|()| Self::spawn_worker(&reg, slot, Role::Rescuer))
                .and_then(|()| Self::spawn_worker(&reg, slot, Role::Scanner));
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
        if !matches!(role, Role::Scanner) {
            // Published before it runs, so that a call blocking right after
            // this finds it. Losing a race to another standby only makes
            // this one an extra scanner, which retires after a call.
            arc.slots[slot].publish(role, thread::raw(new.task()));
        }
        stats::add(Stat::Systhreads, 1);
        new.start();
        Ok(())
    }

    /// Whether no further worker may start.
    pub(crate) fn pool_full(&self) -> bool {
        self.inner.lock().live >= self.max_workers
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
                // SAFETY: The wait queue was initialised in `register`
                // and lives as long as `self`.
                unsafe {
                    bindings::__wake_up(
                        self.exited.get(),
                        bindings::TASK_NORMAL,
                        0,
                        core::ptr::null_mut(),
                    )
                };
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
            // SAFETY: The wait queue was initialised in `register` and lives
            // as long as `self`.
            unsafe {
                bindings::__wake_up(
                    self.completed.get(),
                    bindings::TASK_NORMAL,
                    1,
                    core::ptr::null_mut(),
                )
            };
        }
    }

    /// `flexsc_wait(min_complete, timeout)` for the current thread.
    pub(crate) fn wait(min_complete: u32, utimeout: usize) -> Result<i64> {
        let reg = Self::current().ok_or(EINVAL)?;
        if min_complete > reg.entries.len() {
            return Err(EINVAL);
        }
        let deadline = if utimeout == 0 {
            -1
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
            Ktime::ktime_get().to_ns().saturating_add(ns)
        };

        reg.wake_idle();
        let done = reg.entries.count_done();
        if min_complete == 0 || done >= min_complete {
            return Ok(done as i64);
        }

        /// What the wait waits for.
        struct Target<'a> {
            reg: &'a Registration,
            min: u32,
        }
        /// # Safety
        ///
        /// `arg` points at a live `Target`.
        unsafe extern "C" fn reached(arg: *const c_void) -> bool {
            // SAFETY: Per the function's contract.
            let t = unsafe { &*arg.cast::<Target<'_>>() };
            t.reg.entries.count_done() >= t.min
        }
        let target = Target {
            reg: &reg,
            min: min_complete,
        };
        reg.waiters.fetch_add(1, Ordering::SeqCst);
        // SAFETY: The wait queue lives as long as `reg`; `target` outlives
        // the call, which passes it only to `reached`.
        let err = unsafe {
            ffi::flexsc_wait_event(
                reg.completed.get(),
                reached,
                (&target as *const Target<'_>).cast(),
                deadline,
            )
        };
        reg.waiters.fetch_sub(1, Ordering::SeqCst);
        if err != 0 {
            return Err(Error::from_errno(err));
        }
        Ok(reg.entries.count_done() as i64)
    }

    /// Stops every worker and waits until all have left, then unpins the
    /// region. The wait ends early only on a fatal signal (the process is
    /// dying); then the last worker to leave unpins the region (see the
    /// module documentation).
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
        /// # Safety
        ///
        /// `arg` points at a live `Registration`.
        unsafe extern "C" fn all_left(arg: *const c_void) -> bool {
            // SAFETY: Per the function's contract.
            let reg = unsafe { &*arg.cast::<Registration>() };
            reg.inner.lock().live == 0
        }
        // SAFETY: The wait queue lives as long as `self`, which outlives
        // the call and is all `all_left` is given.
        let err = unsafe {
            ffi::flexsc_wait_teardown(
                self.exited.get(),
                all_left,
                (self as *const Registration).cast(),
            )
        };
        if err != 0 {
            return;
        }
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
