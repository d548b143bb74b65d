// SPDX-License-Identifier: GPL-2.0

//! Systhreads: scanning the entries, running calls, idling, and handing
//! the CPU over when a call blocks.
//!
//! A process's pool has a *slot* per CPU ([`crate::pool`]). A slot's
//! *scanner* serves every registration of the process that may use its
//! CPU, round-robin, at most [`PER_PASS`] entries of each per pass: it
//! takes the registration's token, claims SUBMITTED entries (from the ring,
//! or scanning) and runs each in place (no hand-off between threads on the
//! fast path), then publishes the pass's completions once. Concurrency is
//! managed as the workqueue's worker pools (CMWQ) do it, per slot:
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
//! retires to standby (or leaves, if the slot has one); the blocked worker
//! gives up the registration's token and publishes its completions from
//! the hook, so the one taking over goes on with that registration too. A
//! pool has at most three workers per CPU and 64 for calls that block.
//!
//! Per entry the scanner pays one locked instruction (the claim), one call
//! into C (`flexsc_run_entry()`, which makes the call) and the DONE store;
//! per pass and registration, the token, the `active` count, one fence and
//! the completion count. Clocks are read only by an idle scanner.
//!
//! An idle scanner polls for `idle_us`, then sleeps; a registration all of
//! whose scanners sleep gets `FLEXSC_NEED_WAKEUP`, and its `flexsc_wait()`
//! wakes one of them.

use core::cell::{Cell, RefCell, UnsafeCell};
use core::ptr::null_mut;
use core::sync::atomic::{fence, Ordering};
use kernel::{bindings, prelude::*, sync::Arc, time::Ktime};

use crate::dispatch::{self, Mode, Outcome};
use crate::entry::Call;
use crate::ffi;
use crate::owner::Follower;
use crate::pool::{Pool, Role, Slot};
use crate::registration::{Registration, PER_PASS};
use crate::stats::{self, Stat};
use crate::thread::{self, current_raw, RawTask};

/// Calls counted by a worker before they are added to the global counters.
const FLUSH_EVERY: u64 = 64;

/// What serving one registration came to.
enum Served {
    /// Nothing to run (or its token was taken).
    Nothing,
    /// Calls ran.
    Work,
    /// Only calls that would block, given back (a rescuer).
    Bounced,
    /// This worker retired and must leave.
    Leave,
}

/// A worker: the state of one systhread of a pool.
///
/// Lives in the worker's own thread; `task_struct::flexsc_worker` points at
/// it while the thread runs its loop, for the scheduler hooks, which run on
/// the same thread (so `Cell`s suffice).
pub(crate) struct Worker {
    pool: Arc<Pool>,
    cpu: u32,
    role: Role,
    task: Cell<RawTask>,
    /// Its place in the pool's worker list.
    place: Cell<usize>,
    /// Inside a call: blocking hands the CPU over.
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
    /// The registration whose entries it is in, or null.
    serving: Cell<*const Registration>,
    /// Whether it holds `serving`'s token.
    holding: Cell<bool>,
    /// Completions of `serving` not published yet.
    unpublished: Cell<u32>,
    /// The registrations of the pool, as of `snap_gen`.
    snapshot: RefCell<KVec<Arc<Registration>>>,
    snap_gen: Cell<u32>,
    /// Scratch registers for `flexsc_run_entry()`: only the argument
    /// registers are ever written, so it is cleared once, here.
    regs: UnsafeCell<bindings::pt_regs>,
}

// SAFETY: A worker is created by one thread and then used only by the
// worker thread it is handed to.
unsafe impl Send for Worker {}

impl Worker {
    /// Starts a worker of `role` on `cpu` for `pool`, unless the pool is
    /// full or stopping (`EAGAIN`).
    pub(crate) fn spawn(pool: &Arc<Pool>, cpu: u32, role: Role) -> Result {
        pool.reserve_worker()?;
        let worker = KBox::new(Worker::new(pool.clone(), cpu, role), GFP_KERNEL);
        let new = worker
            .map_err(Error::from)
            .and_then(|w| thread::NewThread::create(w, Worker::main));
        let new = match new {
            Ok(new) => new,
            Err(e) => {
                pool.forget_worker(None);
                return Err(e);
            }
        };
        pool.add_worker(new.task());
        if !matches!(role, Role::Scanner) {
            // Published before it runs, so that a call blocking right after
            // this finds it. Losing a race to another standby only makes
            // this one an extra scanner, which retires after a call.
            pool.slots[cpu as usize].publish(role, thread::raw(new.task()));
        }
        new.start();
        Ok(())
    }

    fn new(pool: Arc<Pool>, cpu: u32, role: Role) -> Self {
        Self {
            pool,
            cpu,
            role,
            task: Cell::new(null_mut()),
            place: Cell::new(usize::MAX),
            in_call: Cell::new(false),
            blocked: Cell::new(false),
            parked: Cell::new(false),
            dying: Cell::new(false),
            rescuing: Cell::new(false),
            calls: Cell::new(0),
            refused: Cell::new(0),
            serving: Cell::new(core::ptr::null()),
            holding: Cell::new(false),
            unpublished: Cell::new(0),
            snapshot: RefCell::new(KVec::new()),
            snap_gen: Cell::new(u32::MAX),
            // SAFETY: `pt_regs` is plain data.
            regs: UnsafeCell::new(unsafe { core::mem::zeroed() }),
        }
    }

    fn slot(&self) -> &Slot {
        &self.pool.slots[self.cpu as usize]
    }

    /// The body of a systhread.
    fn main(this: KBox<Self>) {
        let me = current_raw();
        this.task.set(me);
        this.place.set(this.pool.place_of(me));
        thread::bind_current_to(this.cpu);
        // SAFETY: The pointer is cleared below, before `this` is dropped.
        unsafe { thread::set_current_worker((&*this as *const Worker).cast()) };
        let follower = Follower::new();

        this.work(&follower);

        // SAFETY: Clearing it.
        unsafe { thread::set_current_worker(core::ptr::null()) };
        drop(follower);
        this.flush_stats();
        drop(this.snapshot.replace(KVec::new()));
        this.pool.forget_worker(Some(me));
    }

    /// Whether to stop working: the pool stops, or a fatal signal.
    fn should_leave(&self) -> bool {
        if !self.dying.get() && thread::signal_pending() && thread::handle_signals() {
            self.dying.set(true);
        }
        self.dying.get() || self.pool.stop.load(Ordering::Relaxed)
    }

    /// Takes a new snapshot of the pool's registrations if they changed.
    fn refresh(&self) {
        let gen = self.pool.regs_gen.load(Ordering::SeqCst);
        if gen == self.snap_gen.get() {
            return;
        }
        if let Ok(snap) = self.pool.snapshot() {
            self.snap_gen.set(gen);
            let old = self.snapshot.replace(snap);
            drop(old);
        }
    }

    fn work(&self, follower: &Follower) {
        if let Role::Scanner = self.role {
            self.slot().nr_running.fetch_add(1, Ordering::SeqCst);
            self.slot().started.store(true, Ordering::SeqCst);
        } else if !self.wait_as_standby(self.role) {
            // Published by the thread that created this one.
            return;
        }

        let mut idle_since: Option<i64> = None;
        let mut turn = 0usize;
        'scan: loop {
            if self.should_leave() {
                break;
            }
            self.refresh();
            let mut found = false;
            let mut bounced = false;
            let snap = self.snapshot.borrow();
            let n = snap.len();
            for k in 0..n {
                let reg = &snap[(turn + k) % n];
                if !reg.serves(self.cpu) {
                    continue;
                }
                match self.serve(reg, follower) {
                    Served::Nothing => {}
                    Served::Work => found = true,
                    Served::Bounced => bounced = true,
                    Served::Leave => return,
                }
                if self.should_leave() {
                    break 'scan;
                }
            }
            drop(snap);
            turn = turn.wrapping_add(1);
            // What a task does on its way back to user mode, which a
            // systhread never takes: memcg and blkcg throttling.
            // SAFETY: Current is a systhread between calls.
            unsafe { ffi::flexsc_pass_done() };
            if found {
                idle_since = None;
                continue;
            }
            if bounced {
                // Only calls that would block, for a rescuer: wait for a
                // blocked one to return, or for something else to run.
                thread::sleep_ms(1);
                continue;
            }
            let now = Ktime::ktime_get().to_ns();
            let since = *idle_since.get_or_insert(now);
            if now - since < self.pool.idle_ns.load(Ordering::Relaxed) {
                core::hint::spin_loop();
                thread::cond_resched();
            } else {
                if !self.sleep_idle() {
                    // Another scanner of this CPU sleeps already: one too
                    // many (a blocked call came back); retire.
                    self.slot().nr_running.fetch_sub(1, Ordering::SeqCst);
                    if !self.stand_by() {
                        return;
                    }
                }
                idle_since = None;
            }
        }
        self.slot().nr_running.fetch_sub(1, Ordering::SeqCst);
    }

    /// Runs up to [`PER_PASS`] entries of `reg`, if its token is free.
    fn serve(&self, reg: &Registration, follower: &Follower) -> Served {
        if !reg.try_take() {
            return Served::Nothing;
        }
        self.pool.set_serving(self.place.get(), reg);
        if !reg.enter() {
            reg.give_up_token();
            self.pool.set_serving(self.place.get(), core::ptr::null());
            return Served::Nothing;
        }
        self.serving.set(reg);
        self.holding.set(true);
        let mut served = Served::Nothing;
        let mut ran = 0;
        for _ in 0..PER_PASS {
            let Some(call) = reg.next_call(true) else {
                break;
            };
            if !self.execute(reg, &call, follower) {
                served = Served::Bounced;
                continue;
            }
            served = Served::Work;
            ran += 1;
            if !self.holding.get() || self.slot().nr_running.load(Ordering::SeqCst) > 1 {
                // The call blocked and another worker took over this CPU
                // (and the token): retire.
                self.end_serving(reg, ran);
                return if self.after_call() {
                    Served::Work
                } else {
                    Served::Leave
                };
            }
            if self.pool.stop.load(Ordering::Relaxed)
                || reg.stop.load(Ordering::Relaxed)
                || thread::signal_pending()
            {
                break;
            }
        }
        self.end_serving(reg, ran);
        served
    }

    /// Publishes what is left of serving `reg` (`ran` calls), gives its
    /// token back if still held, and leaves its entries.
    fn end_serving(&self, reg: &Registration, ran: u64) {
        reg.publish(self.unpublished.replace(0));
        reg.calls.fetch_add(ran, Ordering::Relaxed);
        if self.holding.replace(false) {
            reg.give_up_token();
        }
        self.serving.set(core::ptr::null());
        self.pool.set_serving(self.place.get(), core::ptr::null());
        reg.leave();
    }

    /// Runs one claimed call and completes its entry. Returns `false` if
    /// the call would have blocked a rescuer and its entry was given back.
    fn execute(&self, reg: &Registration, call: &Call, follower: &Follower) -> bool {
        let mode = if self.rescuing.get() && self.pool.full() {
            Mode::Probe
        } else {
            Mode::Systhread
        };
        let outcome = dispatch::run(
            &reg.owner,
            follower,
            self.regs.get(),
            call,
            mode,
            || self.in_call.set(true),
            || self.in_call.set(false),
            || self.should_leave() || reg.stop.load(Ordering::Relaxed),
        );
        let ret = match outcome {
            Outcome::WouldBlock => {
                reg.give_back(call.index());
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
        reg.entries.complete(call.index(), ret);
        self.unpublished.set(self.unpublished.get() + 1);
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
            if orphaned || self.dying.get() || self.pool.stop.load(Ordering::SeqCst) {
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
        if !slot.has_standby() && !self.pool.stop.load(Ordering::SeqCst) {
            let _ = Self::spawn(&self.pool, self.cpu, Role::Standby);
        }
        true
    }

    /// Sleeps for want of work, until a `flexsc_wait()` or the pool's
    /// stop wakes it. Registrations none of whose scanners is awake get
    /// NEED_WAKEUP first. Returns `false`, without sleeping, if another
    /// scanner of the slot sleeps already.
    fn sleep_idle(&self) -> bool {
        self.flush_stats();
        let slot = self.slot();
        let me = self.task.get();
        let cpu = self.cpu;
        if slot
            .idle
            .compare_exchange(null_mut(), me, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return false;
        }
        slot.sleeping.store(true, Ordering::SeqCst);
        // Under the pool's list lock a listed registration is mapped: its
        // teardown unlists it before unmapping.
        self.pool.for_each_reg(|r| {
            if r.serves(cpu) && self.pool.all_asleep(r) {
                r.entries.set_need_wakeup();
            }
        });
        // A submission the user made before it could see NEED_WAKEUP is
        // seen by this look; one made after is followed by flexsc_wait().
        fence(Ordering::SeqCst);
        thread::prepare_to_sleep();
        let work = self.snapshot.borrow().iter().any(|r| {
            r.serves(cpu) && r.enter() && {
                let w = r.has_work();
                r.leave();
                w
            }
        });
        if !work
            && slot.idle.load(Ordering::SeqCst) == me
            && !self.pool.stop.load(Ordering::SeqCst)
            && self.pool.regs_gen.load(Ordering::SeqCst) == self.snap_gen.get()
            && !thread::signal_pending()
        {
            thread::schedule();
        }
        thread::set_running();
        let _ = slot
            .idle
            .compare_exchange(me, null_mut(), Ordering::SeqCst, Ordering::SeqCst);
        slot.sleeping.store(false, Ordering::SeqCst);
        self.pool.for_each_reg(|r| {
            if r.serves(cpu) {
                r.entries.clear_need_wakeup();
            }
        });
        true
    }

    fn flush_stats(&self) {
        let calls = self.calls.replace(0);
        let refused = self.refused.replace(0);
        stats::add(Stat::Calls, calls);
        stats::add(Stat::Refused, refused);
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
        let w = unsafe { &*thread::worker_of(tsk).cast::<Worker>() };
        if !w.in_call.get() || w.blocked.get() {
            return;
        }
        w.blocked.set(true);
        let serving = w.serving.get();
        // SAFETY: While `serving` is set the worker is inside that
        // registration's entries (`enter`), and its snapshot holds it.
        let reg = (!serving.is_null()).then(|| unsafe { &*serving });
        if let Some(reg) = reg {
            // What this call may wait for must not wait behind it.
            reg.publish(w.unpublished.replace(0));
            if w.holding.replace(false) {
                reg.give_up_token();
            }
        }
        let slot = w.slot();
        if slot.nr_running.fetch_sub(1, Ordering::SeqCst) == 1
            && !w.pool.stop.load(Ordering::Relaxed)
            && !slot.activate_standby()
        {
            // Nobody scans this CPU until the call returns: count it as
            // sleeping, so that NEED_WAKEUP tells this registration's user
            // when no scanner of it is awake.
            w.parked.set(true);
            slot.sleeping.store(true, Ordering::SeqCst);
            if let Some(reg) = reg {
                if w.pool.all_asleep(reg) {
                    reg.entries.set_need_wakeup();
                }
            }
        }
    }

    /// The scheduler hook for a worker that runs again.
    ///
    /// # Safety
    ///
    /// As for [`Worker::sched_sleeping`].
    pub(crate) unsafe fn sched_running(tsk: RawTask) {
        // SAFETY: As in `sched_sleeping`.
        let w = unsafe { &*thread::worker_of(tsk).cast::<Worker>() };
        if w.blocked.get() {
            w.blocked.set(false);
            w.slot().nr_running.fetch_add(1, Ordering::SeqCst);
            if w.parked.replace(false) {
                w.slot().sleeping.store(false, Ordering::SeqCst);
                let serving = w.serving.get();
                if !serving.is_null() {
                    // SAFETY: As in `sched_sleeping`.
                    unsafe { &*serving }.entries.clear_need_wakeup();
                }
            }
        }
    }
}
