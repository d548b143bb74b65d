// SPDX-License-Identifier: GPL-2.0

//! Systhreads: scanning the entries, running calls, idling, and handing
//! the CPU over when a call blocks.
//!
//! Each systhread of a registration is a *slot*, bound to one CPU. The
//! entries are the work list; a slot's *scanner* walks them, claims
//! SUBMITTED ones and runs each in place (no hand-off between threads on
//! the fast path). Concurrency is managed as the workqueue's worker pools
//! (CMWQ) do it, per slot:
//!
//! ```text
//!          scanner runs a call ----- the call blocks (scheduler hook) -----+
//!               ^                    nr_running drops to 0:                 |
//!               |                    wake the slot's standby                v
//!   standby <---+--- retire: nr_running > 1        standby becomes the scanner and
//!   (or leave if     after the call                starts a new standby (bounded pool)
//!   one exists)
//! ```
//!
//! `nr_running` counts the slot's workers that are scanning or running a
//! call and not blocked in it. When it drops to zero because a call blocks,
//! the scheduler hook wakes the slot's standby, which becomes the scanner;
//! when the blocked call returns, its worker finds `nr_running > 1` and
//! retires to standby (or leaves, if the slot has one). A registration has
//! at most `2 * nslots + min(nentries, 64)` workers.
//!
//! An idle scanner polls for `idle_us`, then sleeps; when every slot's
//! scanner sleeps, `FLEXSC_NEED_WAKEUP` is set and `flexsc_wait()` wakes
//! them.

use core::cell::Cell;
use core::ptr::null_mut;
use core::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU32, Ordering};
use kernel::{bindings, prelude::*, sync::Arc, time::Ktime};

use crate::dispatch::{self, Outcome};
use crate::entry::Call;
use crate::ffi;
use crate::owner::Follower;
use crate::registration::Registration;
use crate::stats::{self, Stat};
use crate::thread::{self, current_raw, RawTask, RcuGuard};
use crate::trace;

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

/// One systhread's CPU and concurrency management.
pub(crate) struct Slot {
    /// The CPU the slot's workers are bound to.
    pub(crate) cpu: u32,
    /// Workers scanning or running a call, not blocked in it.
    nr_running: AtomicU32,
    /// Set once the slot's first scanner runs.
    started: AtomicBool,
    /// A worker waiting to take over, or null. Its task is valid while it is
    /// here, and for an RCU grace period after it is taken out.
    standby: AtomicPtr<bindings::task_struct>,
    /// The rescuer, while it waits; as `standby`.
    rescuer: AtomicPtr<bindings::task_struct>,
}

impl Slot {
    /// A slot on `cpu`.
    pub(crate) fn new(cpu: u32) -> Self {
        Self {
            cpu,
            nr_running: AtomicU32::new(0),
            started: AtomicBool::new(false),
            standby: AtomicPtr::new(null_mut()),
            rescuer: AtomicPtr::new(null_mut()),
        }
    }

    /// Where a worker of `role` waits to take over.
    fn place(&self, role: Role) -> &AtomicPtr<bindings::task_struct> {
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
    fn activate_standby(&self) -> bool {
        let _rcu = RcuGuard::new();
        let mut task = self.standby.swap(null_mut(), Ordering::SeqCst);
        if task.is_null() {
            task = self.rescuer.swap(null_mut(), Ordering::SeqCst);
        }
        if task.is_null() {
            return false;
        }
        // SAFETY: The task was the standby until the swap above; a task is
        // freed an RCU grace period after it exits at the earliest, and we
        // are inside a read-side section.
        unsafe { thread::wake_up(task) };
        true
    }
}

/// Calls counted by a worker before they are added to the global counters.
const FLUSH_EVERY: u64 = 64;

/// A worker: the state of one systhread of a registration.
///
/// Lives in the worker's own thread; `task_struct::flexsc_worker` points at
/// it while the thread runs its loop, for the scheduler hooks, which run on
/// the same thread (so `Cell`s suffice).
pub(crate) struct Worker {
    reg: Arc<Registration>,
    slot: usize,
    role: Role,
    task: Cell<RawTask>,
    /// Inside `x64_sys_call()`: blocking hands the CPU over.
    in_call: Cell<bool>,
    /// Blocked inside a call (not counted in `nr_running`).
    blocked: Cell<bool>,
    /// Blocked with no standby to take over: the slot counts as sleeping.
    parked: Cell<bool>,
    /// A fatal signal arrived: leave.
    dying: Cell<bool>,
    /// The slot's rescuer at work (no standby could be made): it runs
    /// calls without blocking and gives back those that would block, so
    /// that a pool full of blocked calls cannot stop the slot.
    rescuing: Cell<bool>,
    calls: Cell<u64>,
    refused: Cell<u64>,
}

// SAFETY: A worker is created by one thread and then used only by the
// worker thread it is handed to.
unsafe impl Send for Worker {}

impl Worker {
    /// A worker for `slot` of `reg`.
    pub(crate) fn new(reg: Arc<Registration>, slot: usize, role: Role) -> Self {
        Self {
            reg,
            slot,
            role,
            task: Cell::new(null_mut()),
            in_call: Cell::new(false),
            blocked: Cell::new(false),
            parked: Cell::new(false),
            dying: Cell::new(false),
            rescuing: Cell::new(false),
            calls: Cell::new(0),
            refused: Cell::new(0),
        }
    }

    fn slot(&self) -> &Slot {
        &self.reg.slots[self.slot]
    }

    /// The body of a systhread.
    pub(crate) fn main(this: KBox<Self>) {
        let me = current_raw();
        this.task.set(me);
        thread::bind_current_to(this.slot().cpu);
        // SAFETY: Current is this worker's thread; the pointer is cleared
        // below, before `this` is dropped.
        unsafe { bindings::flexsc_set_worker(me, (&*this as *const Worker).cast_mut().cast()) };
        let follower = Follower::new();

        this.work(&follower);

        // SAFETY: As above.
        unsafe { bindings::flexsc_set_worker(me, null_mut()) };
        drop(follower);
        this.flush_stats();
        // After this the registration may unmap the region: nothing below
        // touches it.
        this.reg.forget_worker(Some(me));
    }

    /// Whether to stop working: teardown, or a fatal signal.
    fn should_leave(&self) -> bool {
        if !self.dying.get() && thread::signal_pending() && thread::handle_signals() {
            self.dying.set(true);
        }
        self.dying.get() || self.reg.stop.load(Ordering::Relaxed)
    }

    fn work(&self, follower: &Follower) {
        if let Role::Scanner = self.role {
            self.slot().nr_running.fetch_add(1, Ordering::SeqCst);
            self.slot().started.store(true, Ordering::SeqCst);
        } else if !self.wait_as_standby(self.role) {
            // Published by the thread that created this one.
            return;
        }

        let reg = &*self.reg;
        let n = reg.entries.len();
        let start = (self.slot as u64 * n as u64 / reg.slots.len() as u64) as u32;
        let mut last_work = Ktime::ktime_get().to_ns();
        'scan: loop {
            if self.should_leave() {
                break;
            }
            let mut found = false;
            let mut bounced = false;
            for k in 0..n {
                let index = if start + k >= n {
                    start + k - n
                } else {
                    start + k
                };
                if !reg.entries.is_submitted(index) {
                    continue;
                }
                let Some(call) = reg.entries.claim(index) else {
                    continue;
                };
                if !self.execute(&call, follower) {
                    bounced = true;
                    continue;
                }
                found = true;
                if !self.after_call() {
                    // Retired, and the slot needs no other standby.
                    return;
                }
                if self.should_leave() {
                    break 'scan;
                }
            }
            // What a task does on its way back to user mode, which a
            // systhread never takes: memcg and blkcg throttling.
            // SAFETY: Current is a systhread between calls.
            unsafe { ffi::flexsc_pass_done() };
            let now = Ktime::ktime_get().to_ns();
            if found {
                last_work = now;
            } else if bounced {
                // Only calls that would block, for a rescuer: wait for a
                // blocked one to return, or for something else to run.
                thread::sleep_ms(1);
            } else if now - last_work < reg.idle_ns {
                core::hint::spin_loop();
                thread::cond_resched();
            } else {
                self.flush_stats();
                self.sleep_idle();
                last_work = Ktime::ktime_get().to_ns();
            }
        }
        self.slot().nr_running.fetch_sub(1, Ordering::SeqCst);
    }

    /// Runs one claimed call and completes its entry. Returns `false` if
    /// the call would have blocked a rescuer and its entry was given back.
    fn execute(&self, call: &Call, follower: &Follower) -> bool {
        let reg = &*self.reg;
        trace::dispatch(reg.owner.tid, call.index, call.nr, self.slot().cpu);
        let outcome = dispatch::run(
            &reg.owner,
            follower,
            call,
            self.rescuing.get() && reg.pool_full(),
            || self.in_call.set(true),
            || self.in_call.set(false),
            || self.should_leave(),
        );
        let ret = match outcome {
            Outcome::WouldBlock => {
                reg.entries.unclaim(call.index);
                return false;
            }
            Outcome::Ran(ret) => {
                self.calls.set(self.calls.get() + 1);
                ret
            }
            Outcome::Refused(ret) => {
                self.refused.set(self.refused.get() + 1);
                ret
            }
        };
        // Deferred work of the call (the last fput() of a closed file...)
        // is done before the caller can see the result.
        thread::run_task_work();
        reg.entries.complete(call.index, ret);
        trace::complete(reg.owner.tid, call.index, call.nr, ret);
        reg.notify_completion();
        if self.calls.get() + self.refused.get() >= FLUSH_EVERY {
            self.flush_stats();
        }
        true
    }

    /// After a call: if another worker took over this slot while the call
    /// blocked, retire. Returns `false` if this worker must leave.
    fn after_call(&self) -> bool {
        let running = &self.slot().nr_running;
        let mut n = running.load(Ordering::SeqCst);
        loop {
            if n <= 1 {
                return true;
            }
            match running.compare_exchange(n, n - 1, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => break,
                Err(now) => n = now,
            }
        }
        self.stand_by()
    }

    /// Waits as the slot's standby (or else its rescuer) until the
    /// scheduler hook hands it the CPU (`true`: now a scanner, counted in
    /// `nr_running`), or until it must leave (`false`, not counted), also
    /// when the slot has both.
    fn stand_by(&self) -> bool {
        let me = self.task.get();
        self.rescuing.set(false);
        for role in [Role::Standby, Role::Rescuer] {
            if self.slot().publish(role, me) {
                return self.wait_as_standby(role);
            }
        }
        false
    }

    /// The wait of [`Worker::stand_by`], for a worker already published in
    /// `role`'s place (or one that lost the race to be: it counts as taken
    /// over at once).
    ///
    /// A worker in waiting also takes over by itself when every worker of a
    /// started slot is blocked: it may have been published after the last
    /// runner blocked and found nobody to wake.
    fn wait_as_standby(&self, role: Role) -> bool {
        let slot = self.slot();
        let place = slot.place(role);
        let me = self.task.get();
        loop {
            thread::prepare_to_sleep();
            if place.load(Ordering::SeqCst) != me {
                break;
            }
            let orphaned =
                slot.started.load(Ordering::SeqCst) && slot.nr_running.load(Ordering::SeqCst) == 0;
            if orphaned || self.dying.get() || self.reg.stop.load(Ordering::SeqCst) {
                thread::set_running();
                if place
                    .compare_exchange(me, null_mut(), Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
                    && !orphaned
                {
                    return false;
                }
                // Taken meanwhile, or taking over: count as running; the
                // scan loop sees `stop`.
                break;
            }
            if thread::signal_pending() {
                thread::set_running();
                if thread::handle_signals() {
                    self.dying.set(true);
                }
                continue;
            }
            thread::schedule();
        }
        thread::set_running();
        slot.nr_running.fetch_add(1, Ordering::SeqCst);
        self.rescuing.set(matches!(role, Role::Rescuer));
        // Keep a standby behind this one, if the pool allows.
        if !slot.has_standby() && !self.reg.stop.load(Ordering::SeqCst) {
            let _ = Registration::spawn_worker(&self.reg, self.slot, Role::Standby);
        }
        true
    }

    /// Sleeps for want of work, until `flexsc_wait()` or teardown wakes it.
    fn sleep_idle(&self) {
        let reg = &*self.reg;
        let gen = reg.wake_gen();
        reg.slot_sleeps();
        // A submission the user made before it could see NEED_WAKEUP is
        // seen by this rescan; one made after is followed by flexsc_wait().
        fence(Ordering::SeqCst);
        if !reg.entries.any_submitted() && !reg.stop.load(Ordering::SeqCst) && reg.sleep_idle(gen) {
            let _ = self.should_leave();
        }
        reg.slot_wakes();
    }

    fn flush_stats(&self) {
        let calls = self.calls.replace(0);
        let refused = self.refused.replace(0);
        stats::add(Stat::Calls, calls);
        stats::add(Stat::Refused, refused);
        self.reg.calls.fetch_add(calls + refused, Ordering::Relaxed);
    }

    /// The scheduler hook for a worker that goes to sleep.
    ///
    /// # Safety
    ///
    /// `tsk` is current, a worker whose `flexsc_worker` points at its live
    /// `Worker`. Must not sleep.
    pub(crate) unsafe fn sched_sleeping(tsk: RawTask) {
        // SAFETY: Per the function's contract; the worker is used by its own
        // thread only, which is here.
        let w = unsafe { &*bindings::flexsc_worker(tsk).cast::<Worker>() };
        if !w.in_call.get() || w.blocked.get() {
            return;
        }
        w.blocked.set(true);
        let slot = w.slot();
        if slot.nr_running.fetch_sub(1, Ordering::SeqCst) == 1
            && !w.reg.stop.load(Ordering::Relaxed)
            && !slot.activate_standby()
        {
            // Nobody scans for this slot until the call returns: count it as
            // sleeping, so that NEED_WAKEUP tells the user when no slot scans.
            w.parked.set(true);
            w.reg.slot_sleeps();
        }
    }

    /// The scheduler hook for a worker that runs again.
    ///
    /// # Safety
    ///
    /// As for [`Worker::sched_sleeping`].
    pub(crate) unsafe fn sched_running(tsk: RawTask) {
        // SAFETY: As in `sched_sleeping`.
        let w = unsafe { &*bindings::flexsc_worker(tsk).cast::<Worker>() };
        if w.blocked.get() {
            w.blocked.set(false);
            w.slot().nr_running.fetch_add(1, Ordering::SeqCst);
            if w.parked.replace(false) {
                w.reg.slot_wakes();
            }
        }
    }
}
