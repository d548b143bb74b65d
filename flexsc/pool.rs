// SPDX-License-Identifier: GPL-2.0

//! Systhreads per process: one pool per process, one slot per CPU.
//!
//! As in the paper, a process has at most one scanning systhread per CPU,
//! whatever the number of its registered threads: the pool's scanner on a
//! CPU serves every registration of the process that may use that CPU,
//! round-robin, a bounded number of entries of each per pass. Each slot
//! also keeps a standby (which takes over the CPU when a call blocks) and a
//! rescuer (when no standby can be made), and the pool shares one bounded
//! set of workers for calls that block. Kernel threads at rest therefore
//! grow with the CPUs used, not with the threads registered.
//!
//! ```text
//!   registry (key: thread group, mm, files, fs, nsproxy)
//!      |
//!      +-- Pool ---- slots[cpu]: nr_running, standby, rescuer, idle scanner
//!            |
//!            +-- regs: every Registration of the process (one per thread)
//!            +-- tasks: every worker (place i: its task, the registration
//!                       whose entries it is running, for teardown)
//! ```
//!
//! Threads share a pool only if they share what a systhread carries with
//! it (memory, file table, fs, namespaces): a systhread refuses entries of
//! an owner that left those (`flexsc_follow_owner()`), so a thread that
//! unshared them before registering gets a pool of its own.
//!
//! Life: the first registration of a process makes the pool, each one adds
//! the slots of its CPUs; the pool stops, and every worker leaves, when its
//! last registration ends. This module knows workers only as tasks: the
//! worker loop is in [`crate::worker`], which uses this one.
//!
//! Lock order: the registry's mutex, then `setup`, then `regs` or `inner`
//! (spinlocks, innermost, never both).

use core::cell::UnsafeCell;
use core::ffi::c_ulong;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, AtomicU32, Ordering};
use kernel::{
    bindings,
    prelude::*,
    sync::{new_mutex, new_spinlock, Arc, Mutex, SpinLock},
    task::Task,
    types::ARef,
};

use crate::ffi;
use crate::registration::Registration;
use crate::stats::{self, Stat};
use crate::thread::{self, RawTask, RcuGuard};
use crate::waitq::WaitQueue;

/// Most workers a pool keeps for calls that block, on top of a scanner, a
/// standby and a rescuer per CPU.
pub(crate) const MAX_BLOCKING_WORKERS: u32 = 64;

/// How a worker starts.
#[derive(Clone, Copy)]
pub(crate) enum Role {
    /// Scanning at once.
    Scanner,
    /// Waiting to take over its slot's CPU.
    Standby,
    /// The slot's reserve: takes over when a call blocks and no standby
    /// could be made (the pool is full, or creating a thread failed), so
    /// that non-blocking entries keep completing.
    Rescuer,
}

/// One CPU of a pool: its concurrency management.
pub(crate) struct Slot {
    /// Workers scanning or running a call, not blocked in it.
    pub(crate) nr_running: AtomicU32,
    /// Set once the slot's first scanner runs.
    pub(crate) started: AtomicBool,
    /// Set once the slot's workers were made.
    made: AtomicBool,
    /// No worker of the slot scans (its scanner sleeps, or blocked with
    /// nobody to take over).
    pub(crate) sleeping: AtomicBool,
    /// A worker waiting to take over, or null. Its task is valid while it is
    /// here, and for an RCU grace period after it is taken out.
    standby: AtomicPtr<bindings::task_struct>,
    /// The rescuer, while it waits; as `standby`.
    rescuer: AtomicPtr<bindings::task_struct>,
    /// The scanner, while it sleeps for want of work; as `standby`.
    pub(crate) idle: AtomicPtr<bindings::task_struct>,
}

impl Slot {
    fn new() -> Self {
        Self {
            nr_running: AtomicU32::new(0),
            started: AtomicBool::new(false),
            made: AtomicBool::new(false),
            sleeping: AtomicBool::new(false),
            standby: AtomicPtr::new(null_mut()),
            rescuer: AtomicPtr::new(null_mut()),
            idle: AtomicPtr::new(null_mut()),
        }
    }

    /// Where a worker of `role` waits to take over.
    pub(crate) fn place(&self, role: Role) -> &AtomicPtr<bindings::task_struct> {
        match role {
            Role::Rescuer => &self.rescuer,
            _ => &self.standby,
        }
    }

    /// Whether the slot has a standby.
    pub(crate) fn has_standby(&self) -> bool {
        !self.standby.load(Ordering::SeqCst).is_null()
    }

    /// Makes `task` the slot's worker in waiting for `role` if the slot has
    /// none. Returns `false` if it has one.
    pub(crate) fn publish(&self, role: Role, task: RawTask) -> bool {
        self.place(role)
            .compare_exchange(null_mut(), task, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    /// Wakes the standby, or else the rescuer, to take over. Returns
    /// `false` if there was neither. Called from the scheduler: never
    /// sleeps.
    pub(crate) fn activate_standby(&self) -> bool {
        self.wake(&self.standby) || self.wake(&self.rescuer)
    }

    /// Wakes the scanner if it sleeps for want of work.
    pub(crate) fn wake_idle(&self) -> bool {
        self.wake(&self.idle)
    }

    fn wake(&self, place: &AtomicPtr<bindings::task_struct>) -> bool {
        let _rcu = RcuGuard::new();
        let task = place.swap(null_mut(), Ordering::SeqCst);
        if task.is_null() {
            return false;
        }
        // SAFETY: The task was in `place` until the swap above; a task is
        // freed an RCU grace period after it exits at the earliest, and we
        // are inside a read-side section.
        unsafe { thread::wake_up(task) };
        true
    }
}

/// The workers of a pool, under its spinlock.
struct Inner {
    /// The live workers' tasks; `None` marks a free place.
    tasks: KVec<Option<ARef<Task>>>,
    /// Workers created and not yet gone (a reserved place counts).
    live: u32,
    /// Set once: no new worker starts, every worker leaves.
    stopping: bool,
}

/// The systhreads of one process.
#[pin_data]
pub(crate) struct Pool {
    /// What threads sharing this pool share (`flexsc_process_key()`).
    key: [c_ulong; 5],
    /// One per possible CPU, indexed by CPU number.
    pub(crate) slots: KVec<Slot>,
    /// Per worker place (as `Inner::tasks`): the registration whose entries
    /// it serves now, or null. Read by teardown to interrupt only those.
    serving: KVec<AtomicPtr<Registration>>,
    /// Most workers at once.
    max_workers: AtomicU32,
    /// Registrations counted in (under the registry's mutex).
    users: AtomicU32,
    /// The pool stops: every worker leaves (mirrors `Inner::stopping`, for
    /// the workers' fast path).
    pub(crate) stop: AtomicBool,
    /// Bumped whenever `regs` changes: workers then take a new snapshot.
    pub(crate) regs_gen: AtomicU32,
    /// How long an idle scanner polls before it sleeps, in nanoseconds: the
    /// longest any registration asked for.
    pub(crate) idle_ns: AtomicI64,
    /// Serialises adding and removing registrations and making slots.
    #[pin]
    setup: Mutex<()>,
    /// The registrations of the process.
    #[pin]
    regs: SpinLock<KVec<Option<Arc<Registration>>>>,
    #[pin]
    inner: SpinLock<Inner>,
    /// Pool teardown waits here for the workers to leave.
    #[pin]
    exited: WaitQueue,
}

/// The registry of pools, under `flexsc_pools_lock()` of `glue.c`.
struct Registry(UnsafeCell<KVec<Option<Arc<Pool>>>>);

// SAFETY: The vector is only reached under the registry's mutex
// (`RegistryGuard`).
unsafe impl Sync for Registry {}

static REGISTRY: Registry = Registry(UnsafeCell::new(KVec::new()));

/// The registry's mutex, held.
struct RegistryGuard(());

impl RegistryGuard {
    fn lock() -> Self {
        // SAFETY: Process context; released by `drop`.
        unsafe { ffi::flexsc_pools_lock() };
        Self(())
    }

    fn pools(&mut self) -> &mut KVec<Option<Arc<Pool>>> {
        // SAFETY: The mutex is held while `self` lives, and `&mut self`
        // makes the borrow unique.
        unsafe { &mut *REGISTRY.0.get() }
    }
}

impl Drop for RegistryGuard {
    fn drop(&mut self) {
        // SAFETY: Taken by `lock`.
        unsafe { ffi::flexsc_pools_unlock() };
    }
}

/// The key of the current thread (see [`Pool::key`]).
fn current_key() -> [c_ulong; 5] {
    let mut key = [0; 5];
    // SAFETY: `key` has room for five words.
    unsafe { ffi::flexsc_process_key(key.as_mut_ptr()) };
    key
}

impl Pool {
    /// The pool of the current thread's process, made if it has none, with
    /// one more registration counted in (see [`Pool::release`]).
    pub(crate) fn get_or_make() -> Result<Arc<Pool>> {
        let key = current_key();
        let mut registry = RegistryGuard::lock();
        for pool in registry.pools().as_slice().iter().flatten() {
            if pool.key == key && !pool.stop.load(Ordering::SeqCst) {
                pool.nregs_add();
                return Ok(pool.clone());
            }
        }
        // SAFETY: `nr_cpu_ids` is set once during boot.
        let ncpus = unsafe { bindings::nr_cpu_ids }.min(bindings::NR_CPUS);
        let mut slots = KVec::with_capacity(ncpus as usize, GFP_KERNEL)?;
        for _ in 0..ncpus {
            slots.push(Slot::new(), GFP_KERNEL)?;
        }
        let places = (3 * ncpus + MAX_BLOCKING_WORKERS) as usize;
        let mut tasks = KVec::with_capacity(places, GFP_KERNEL)?;
        let mut serving = KVec::with_capacity(places, GFP_KERNEL)?;
        for _ in 0..places {
            tasks.push(None, GFP_KERNEL)?;
            serving.push(AtomicPtr::new(null_mut()), GFP_KERNEL)?;
        }
        let pool = Arc::pin_init(
            pin_init!(Pool {
                key,
                slots,
                serving,
                max_workers: AtomicU32::new(MAX_BLOCKING_WORKERS),
                users: AtomicU32::new(0),
                stop: AtomicBool::new(false),
                regs_gen: AtomicU32::new(0),
                idle_ns: AtomicI64::new(0),
                setup <- new_mutex!((), "flexsc_pool_setup"),
                regs <- new_spinlock!(KVec::new(), "flexsc_pool_regs"),
                inner <- new_spinlock!(
                    Inner { tasks, live: 0, stopping: false },
                    "flexsc_pool_inner"
                ),
                exited <- WaitQueue::new(),
            }),
            GFP_KERNEL,
        )?;
        pool.nregs_add();
        let pools = registry.pools();
        match pools.as_mut_slice().iter_mut().find(|p| p.is_none()) {
            Some(place) => *place = Some(pool.clone()),
            None => pools.push(Some(pool.clone()), GFP_KERNEL)?,
        }
        Ok(pool)
    }

    /// Counts one more registration in, under the registry's mutex.
    fn nregs_add(&self) {
        self.users.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a registration out (one counted in by [`Pool::get_or_make`],
    /// whether it was added or not); the last one stops the pool and waits
    /// (killably) until every worker has left.
    pub(crate) fn release(&self) {
        {
            let mut registry = RegistryGuard::lock();
            if self.users.fetch_sub(1, Ordering::Relaxed) != 1 {
                return;
            }
            // Out of the registry before it stops: a new registration of
            // the process makes a new pool.
            self.stop.store(true, Ordering::SeqCst);
            for place in registry.pools().as_mut_slice() {
                if place.as_ref().is_some_and(|p| core::ptr::eq(&**p, self)) {
                    *place = None;
                }
            }
        }
        {
            let mut inner = self.inner.lock();
            inner.stopping = true;
            for task in inner.tasks.as_slice().iter().flatten() {
                thread::interrupt(task);
            }
        }
        // A fatal signal ends the wait early: the workers still leave on
        // their own (each holds the pool).
        let _ = self.exited.wait_killable(&|| self.inner.lock().live == 0);
    }

    /// Makes the slots of `cpus` that have no workers yet, with `spawn`
    /// (the worker module's), and adds `reg` to the registrations served.
    pub(crate) fn add(
        self: &Arc<Self>,
        reg: &Arc<Registration>,
        cpus: &[u32],
        spawn: fn(&Arc<Pool>, u32, Role) -> Result,
    ) -> Result {
        let _setup = self.setup.lock();
        for &cpu in cpus {
            let slot = &self.slots[cpu as usize];
            if slot.made.load(Ordering::Relaxed) {
                continue;
            }
            self.max_workers.fetch_add(3, Ordering::SeqCst);
            // A standby that takes over the CPU when a call blocks, a
            // rescuer for when no standby can be made, and the scanner,
            // started last so that a first call that blocks finds both.
            spawn(self, cpu, Role::Standby)?;
            spawn(self, cpu, Role::Rescuer)?;
            spawn(self, cpu, Role::Scanner)?;
            slot.made.store(true, Ordering::Relaxed);
        }
        let idle = reg.idle_ns;
        self.idle_ns.fetch_max(idle, Ordering::Relaxed);

        // `setup` keeps the vector's length fixed but for our pushes, so
        // a larger one made outside the spinlock is large enough.
        loop {
            {
                let mut regs = self.regs.lock();
                if let Some(place) = regs.as_mut_slice().iter_mut().find(|r| r.is_none()) {
                    *place = Some(reg.clone());
                    break;
                }
                if regs.len() < regs.capacity() {
                    // Within capacity: no allocation.
                    let _ = regs.push(Some(reg.clone()), GFP_ATOMIC);
                    break;
                }
            }
            let len = self.regs.lock().len();
            let mut larger = KVec::with_capacity(2 * len + 4, GFP_KERNEL)?;
            let old = {
                let mut regs = self.regs.lock();
                for r in regs.as_mut_slice() {
                    // Within capacity: no allocation.
                    let _ = larger.push(r.take(), GFP_ATOMIC);
                }
                core::mem::replace(&mut *regs, larger)
            };
            drop(old);
        }
        self.regs_gen.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Stops serving `reg` (its workers take new snapshots).
    pub(crate) fn remove(&self, reg: &Registration) {
        let _setup = self.setup.lock();
        let gone = {
            let mut regs = self.regs.lock();
            let mut gone = None;
            for place in regs.as_mut_slice() {
                if place.as_ref().is_some_and(|r| core::ptr::eq(&**r, reg)) {
                    gone = place.take();
                }
            }
            gone
        };
        self.regs_gen.fetch_add(1, Ordering::SeqCst);
        drop(gone);
    }

    /// A new snapshot of the registrations, for a worker.
    pub(crate) fn snapshot(&self) -> Result<KVec<Arc<Registration>>> {
        let mut want = 4;
        loop {
            let mut snap = KVec::with_capacity(want, GFP_KERNEL)?;
            let regs = self.regs.lock();
            let n = regs.as_slice().iter().flatten().count();
            if n <= snap.capacity() {
                for r in regs.as_slice().iter().flatten() {
                    // Capacity was checked: no allocation here.
                    let _ = snap.push(r.clone(), GFP_ATOMIC);
                }
                return Ok(snap);
            }
            want = n + 4;
        }
    }

    /// Calls `f` on every registration, under the spinlock (`f` must not
    /// sleep).
    pub(crate) fn for_each_reg(&self, mut f: impl FnMut(&Registration)) {
        let regs = self.regs.lock();
        for r in regs.as_slice().iter().flatten() {
            f(r);
        }
    }

    /// Reserves a worker's place, unless the pool is full or stopping
    /// (`EAGAIN`).
    pub(crate) fn reserve_worker(&self) -> Result {
        let mut inner = self.inner.lock();
        if inner.stopping || inner.live >= self.max_workers.load(Ordering::SeqCst) {
            return Err(EAGAIN);
        }
        inner.live += 1;
        Ok(())
    }

    /// Records the task of a worker whose place was reserved; returns its
    /// place number, for [`Pool::set_serving`].
    pub(crate) fn add_worker(&self, task: &ARef<Task>) -> usize {
        let mut inner = self.inner.lock();
        let mut at = usize::MAX;
        for (i, place) in inner.tasks.as_mut_slice().iter_mut().enumerate() {
            if place.is_none() {
                *place = Some(task.clone());
                at = i;
                break;
            }
        }
        if inner.stopping {
            thread::interrupt(task);
        }
        stats::add(Stat::Systhreads, 1);
        at
    }

    /// The place of worker `task` in the list.
    pub(crate) fn place_of(&self, task: RawTask) -> usize {
        let inner = self.inner.lock();
        inner
            .tasks
            .iter()
            .position(|t| t.as_ref().is_some_and(|t| thread::raw(t) == task))
            .unwrap_or(usize::MAX)
    }

    /// Whether no further worker may start.
    pub(crate) fn full(&self) -> bool {
        self.inner.lock().live >= self.max_workers.load(Ordering::SeqCst)
    }

    /// A worker leaves (or never started, `task` None): frees its place
    /// and wakes pool teardown when it was the last.
    pub(crate) fn forget_worker(&self, task: Option<RawTask>) {
        let mut inner = self.inner.lock();
        if let Some(task) = task {
            for place in inner.tasks.as_mut_slice() {
                if place.as_ref().is_some_and(|t| thread::raw(t) == task) {
                    // Drops our reference; the thread holds its own.
                    *place = None;
                    break;
                }
            }
            stats::sub(Stat::Systhreads, 1);
        }
        inner.live -= 1;
        if inner.live == 0 {
            self.exited.wake(true);
        }
    }

    /// Worker place `at` now serves `reg` (null: none).
    pub(crate) fn set_serving(&self, at: usize, reg: *const Registration) {
        if let Some(s) = self.serving.get(at) {
            s.store(reg.cast_mut(), Ordering::SeqCst);
        }
    }

    /// Interrupts the workers serving `reg`: their calls in flight end
    /// (with `-EINTR` or their own result).
    pub(crate) fn interrupt_serving(&self, reg: &Registration) {
        let inner = self.inner.lock();
        for (i, task) in inner.tasks.as_slice().iter().enumerate() {
            if let Some(task) = task {
                if core::ptr::eq(self.serving[i].load(Ordering::SeqCst), reg) {
                    thread::interrupt(task);
                }
            }
        }
    }

    /// Wakes one sleeping scanner that serves `reg`. Returns `false` if none
    /// sleeps.
    pub(crate) fn wake_one(&self, reg: &Registration) -> bool {
        reg.cpus().any(|cpu| self.slots[cpu as usize].wake_idle())
    }

    /// Whether a scanner that serves `reg` polls on a CPU other than `cpu`.
    pub(crate) fn polling_elsewhere(&self, reg: &Registration, cpu: u32) -> bool {
        reg.cpus().any(|c| {
            let slot = &self.slots[c as usize];
            c != cpu
                && slot.started.load(Ordering::Relaxed)
                && !slot.sleeping.load(Ordering::Relaxed)
        })
    }

    /// Whether every slot serving `reg` sleeps.
    pub(crate) fn all_asleep(&self, reg: &Registration) -> bool {
        reg.cpus()
            .all(|c| self.slots[c as usize].sleeping.load(Ordering::SeqCst))
    }
}
