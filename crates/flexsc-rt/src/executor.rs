//! The executor: tasks, their wakers, the run queues, and the loop that
//! runs them between FlexSC completions and timers.
//!
//! A task's future is local to its runtime's thread (it need not be
//! `Send`) and lives in the runtime's task table. Its waker is an
//! `Arc<Task>` with `impl Wake`: the task's slot, a "queued" flag and the
//! runtime's [`Shared`] part, all `Send + Sync`, so a waker may be cloned,
//! sent and woken anywhere:
//!
//! - woken on the runtime's own thread (the common case: a completion
//!   reaped by the loop, a timer, another task), it goes on the local run
//!   queue, with no lock and no system call;
//! - woken on any other thread, it goes on the runtime's remote queue (a
//!   mutex), and if the runtime is asleep the waker rings its doorbell, an
//!   eventfd. A FlexSC runtime always has a `read` of that eventfd in
//!   flight as an entry, so the ring completes an entry and ends the
//!   `flexsc_wait` the loop sleeps in: the loop sleeps in one place, on
//!   its completions and its cross-thread wakes at once.

use crate::ops::Keep;
use crate::time::Timers;
use flexsc::{Builder, Registration, Ticket};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

type LocalFuture = Pin<Box<dyn Future<Output = ()>>>;

/// The slot of the future passed to [`Runtime::block_on`].
const MAIN: usize = usize::MAX;

/// The longest the loop sleeps in one `flexsc_wait`: a bound, not a poll
/// interval (cross-thread wakes ring the doorbell). It only matters if the
/// doorbell failed.
const MAX_WAIT: Duration = Duration::from_secs(1);
/// The same bound once the doorbell has failed: wakes from other threads
/// are then seen within this.
const MAX_WAIT_NO_DOORBELL: Duration = Duration::from_millis(5);

/// A task as its wakers see it.
pub(crate) struct Task {
    /// Its slot in the runtime's task table ([`MAIN`] for `block_on`'s).
    id: usize,
    /// On a run queue already: a second wake does nothing.
    queued: AtomicBool,
    shared: Arc<Shared>,
}

impl Wake for Task {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        // On the runtime's own thread: the local queue.
        let local = CORE
            .try_with(|c| match &*c.borrow() {
                Some(core) if Arc::ptr_eq(&core.shared, &self.shared) => {
                    core.ready.borrow_mut().push_back(self.clone());
                    true
                }
                _ => false,
            })
            .unwrap_or(false);
        if !local {
            self.shared.push_remote(self.clone());
        }
    }
}

/// The part of a runtime that other threads reach: the remote run queue
/// and the doorbell.
pub(crate) struct Shared {
    remote: Mutex<Remote>,
    /// The remote queue may be non-empty.
    has_remote: AtomicBool,
    /// The loop is about to sleep or sleeps: a remote wake must ring.
    sleeping: AtomicBool,
    /// The doorbell: an eventfd (blocking; counter semantics).
    doorbell: OwnedFd,
    rings: AtomicU64,
}

#[derive(Default)]
struct Remote {
    queue: Vec<Arc<Task>>,
    /// The runtime is gone: wakes are dropped.
    closed: bool,
}

impl Shared {
    fn new() -> io::Result<Arc<Shared>> {
        // SAFETY: Plain call; the descriptor is owned below.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Arc::new(Shared {
            remote: Mutex::new(Remote::default()),
            has_remote: AtomicBool::new(false),
            sleeping: AtomicBool::new(false),
            // SAFETY: A fresh descriptor that nothing else owns.
            doorbell: unsafe { OwnedFd::from_raw_fd(fd) },
            rings: AtomicU64::new(0),
        }))
    }

    fn push_remote(&self, task: Arc<Task>) {
        {
            let mut r = self.remote.lock().unwrap_or_else(|e| e.into_inner());
            if r.closed {
                return;
            }
            r.queue.push(task);
        }
        // Dekker with `Core::idle`: it stores `sleeping` and then loads
        // `has_remote`; we store `has_remote` and then load `sleeping`. With
        // both SeqCst, at least one side sees the other's store: either the
        // loop sees the task before it sleeps, or we see it asleep and ring.
        self.has_remote.store(true, Ordering::SeqCst);
        if self.sleeping.swap(false, Ordering::SeqCst) {
            self.ring();
        }
    }

    fn ring(&self) {
        self.rings.fetch_add(1, Ordering::Relaxed);
        let one: u64 = 1;
        // SAFETY: Writes 8 bytes from a local to our eventfd (open while
        // `self` lives). It cannot fail but by overflow after 2^64 rings.
        unsafe { libc::write(self.doorbell.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    fn take_remote(&self) -> Vec<Arc<Task>> {
        if !self.has_remote.swap(false, Ordering::SeqCst) {
            return Vec::new();
        }
        std::mem::take(&mut self.remote.lock().unwrap_or_else(|e| e.into_inner()).queue)
    }

    fn close(&self) {
        let queue = {
            let mut r = self.remote.lock().unwrap_or_else(|e| e.into_inner());
            r.closed = true;
            std::mem::take(&mut r.queue)
        };
        drop(queue);
    }
}

/// An operation in flight: its ticket, who to wake, where its result goes,
/// and the memory it owns until the kernel is done with it.
pub(crate) struct InFlight {
    pub(crate) ticket: Option<Ticket>,
    pub(crate) waker: Option<Waker>,
    pub(crate) result: Option<i64>,
    pub(crate) keep: Option<Keep>,
    /// Its future was dropped (or it never had one): free the slot, and
    /// the memory, once DONE.
    pub(crate) orphan: bool,
    /// The doorbell's read: resubmitted whenever it completes.
    doorbell: bool,
    /// It returns a new descriptor (accept, open): if orphaned, the
    /// runtime closes it.
    pub(crate) fd_result: bool,
}

/// How a runtime makes its system calls.
pub(crate) enum Driver {
    /// As FlexSC entries of this thread's registration.
    Flexsc(RefCell<Registration>),
    /// Directly, blocking the thread (tests, kernels without FlexSC).
    Direct,
}

struct Slot {
    task: Arc<Task>,
    waker: Waker,
    future: Option<LocalFuture>,
    abort: Rc<Cell<bool>>,
}

pub(crate) struct Core {
    /// First, so that it is dropped first: ending the registration waits
    /// for every call in flight, and only then do the buffers below go.
    pub(crate) driver: Driver,
    pub(crate) shared: Arc<Shared>,
    tasks: RefCell<Vec<Option<Slot>>>,
    free_tasks: RefCell<Vec<usize>>,
    ready: RefCell<VecDeque<Arc<Task>>>,
    pub(crate) ops: RefCell<Vec<Option<InFlight>>>,
    pub(crate) free_ops: RefCell<Vec<usize>>,
    /// Tasks waiting for a free entry.
    pub(crate) entry_waiters: RefCell<VecDeque<Waker>>,
    pub(crate) timers: RefCell<Timers>,
    pub(crate) in_flight: Cell<usize>,
    pub(crate) stats: RefCell<Stats>,
    /// The doorbell read failed: sleep in short slices instead.
    doorbell_broken: Cell<bool>,
    started: Instant,
}

/// Where a runtime's time goes: what its loop did since it started.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    /// Task polls.
    pub polls: u64,
    /// System calls made: FlexSC entries (direct calls on a
    /// [`Runtime::direct`] runtime). The doorbell's reads are not counted.
    pub entries: u64,
    /// Turns of the loop.
    pub loops: u64,
    /// Times the loop found nothing to run and spun on its calls.
    pub idles: u64,
    /// Times it then slept in `flexsc_wait`.
    pub waits: u64,
    /// Nanoseconds spent in `flexsc_wait`.
    pub wait_ns: u64,
    /// Tasks woken from other threads (through the remote queue).
    pub remote_wakes: u64,
    /// Doorbell rings that completed (the loop was asleep or about to be).
    pub doorbells: u64,
    /// Calls in flight now (not counting the doorbell's read): each owns
    /// its memory until DONE, whether or not its future is still there.
    pub in_flight: u64,
    /// Nanoseconds since the runtime started.
    pub total_ns: u64,
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let per = |n: u64| n as f64 / self.entries.max(1) as f64;
        write!(
            f,
            "{} entries, {} polls ({:.2}/entry), {} loops ({:.2}/entry), {} idle spins, {} flexsc_wait ({:.2}/entry), {:.1}% of the time in flexsc_wait, {} remote wakes, {} doorbells, {} in flight",
            self.entries,
            self.polls,
            per(self.polls),
            self.loops,
            per(self.loops),
            self.idles,
            self.waits,
            per(self.waits),
            100.0 * self.wait_ns as f64 / self.total_ns.max(1) as f64,
            self.remote_wakes,
            self.doorbells,
            self.in_flight,
        )
    }
}

thread_local! {
    static CORE: RefCell<Option<Rc<Core>>> = const { RefCell::new(None) };
}

/// The current thread's runtime core; panics outside [`Runtime::block_on`].
pub(crate) fn core() -> Rc<Core> {
    try_core().expect("flexsc-rt: not inside Runtime::block_on")
}

/// The current thread's runtime core, if inside [`Runtime::block_on`].
pub(crate) fn try_core() -> Option<Rc<Core>> {
    CORE.try_with(|c| c.borrow().clone()).ok().flatten()
}

/// A runtime for the current thread: its FlexSC registration and its tasks.
/// Make one per core (thread-per-core), each on its own thread, or let a
/// [`Launcher`](crate::Launcher) do it.
pub struct Runtime {
    core: Rc<Core>,
}

impl Runtime {
    /// Registers the current thread with 256 entries and one systhread per
    /// CPU.
    pub fn new() -> io::Result<Runtime> {
        Runtime::with_builder(Builder::new().entries(256))
    }

    /// Registers the current thread as `builder` says. One entry is the
    /// runtime's own for good, unless the region has fewer than 4: its
    /// doorbell, a `read` of an eventfd that wakes from other threads
    /// complete, so that they end the loop's `flexsc_wait`.
    pub fn with_builder(builder: Builder) -> io::Result<Runtime> {
        let reg = builder.register()?;
        // The doorbell's read holds one entry for good: not in a region
        // too small to spare it (the loop then sleeps in short slices).
        let spare = reg.capacity() >= 4;
        let rt = Runtime::with_driver(Driver::Flexsc(RefCell::new(reg)))?;
        if spare {
            rt.core.ring_doorbell();
        } else {
            rt.core.doorbell_broken.set(true);
        }
        Ok(rt)
    }

    /// A runtime without FlexSC: every system call future runs its call
    /// directly, on this thread, when first polled, and a call that blocks
    /// blocks the whole runtime. Tasks, wakers (from any thread), timers,
    /// cancellation and the I/O types behave as on a FlexSC runtime. For
    /// tests, and for kernels without FlexSC.
    pub fn direct() -> io::Result<Runtime> {
        Runtime::with_driver(Driver::Direct)
    }

    fn with_driver(driver: Driver) -> io::Result<Runtime> {
        Ok(Runtime {
            core: Rc::new(Core {
                driver,
                shared: Shared::new()?,
                tasks: RefCell::new(Vec::new()),
                free_tasks: RefCell::new(Vec::new()),
                ready: RefCell::new(VecDeque::new()),
                ops: RefCell::new(Vec::new()),
                free_ops: RefCell::new(Vec::new()),
                entry_waiters: RefCell::new(VecDeque::new()),
                timers: RefCell::new(Timers::default()),
                in_flight: Cell::new(0),
                stats: RefCell::new(Stats::default()),
                doorbell_broken: Cell::new(false),
                started: Instant::now(),
            }),
        })
    }

    /// Whether this runtime's calls are FlexSC entries (not [`Runtime::direct`]).
    pub fn is_flexsc(&self) -> bool {
        matches!(self.core.driver, Driver::Flexsc(_))
    }

    /// What the loop did so far.
    pub fn stats(&self) -> Stats {
        self.core.stats()
    }

    /// Runs `future` and the tasks spawned on this runtime until `future`
    /// completes. Tasks still pending then stay, and run again in the next
    /// `block_on`; dropping the runtime cancels them.
    ///
    /// # Panics
    ///
    /// Inside another `block_on` on this thread.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        struct Leave;
        impl Drop for Leave {
            fn drop(&mut self) {
                let _ = CORE.try_with(|c| c.borrow_mut().take());
            }
        }
        CORE.with(|c| {
            let mut c = c.borrow_mut();
            assert!(c.is_none(), "flexsc-rt: block_on inside block_on");
            *c = Some(self.core.clone());
        });
        let _leave = Leave;
        self.core.run(future)
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // Cancel the tasks: their futures may hold this core (an op in
        // flight), so they go now, not with the core. Wakes from now on
        // are dropped.
        self.core.shared.close();
        let slots: Vec<_> = self.core.tasks.borrow_mut().drain(..).collect();
        drop(slots);
        self.core.ready.borrow_mut().clear();
        self.core.entry_waiters.borrow_mut().clear();
        let timers = std::mem::take(&mut *self.core.timers.borrow_mut());
        drop(timers);
    }
}

impl Core {
    fn stats(&self) -> Stats {
        let mut s = *self.stats.borrow();
        s.total_ns = self.started.elapsed().as_nanos() as u64;
        let doorbell = self
            .ops
            .borrow()
            .iter()
            .flatten()
            .filter(|op| op.doorbell)
            .count();
        s.in_flight = (self.in_flight.get() - doorbell) as u64;
        s
    }

    fn run<F: Future>(&self, future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        let main = Arc::new(Task {
            id: MAIN,
            queued: AtomicBool::new(false),
            shared: self.shared.clone(),
        });
        let main_waker = Waker::from(main.clone());
        let mut main_woken = true;
        loop {
            self.stats.borrow_mut().loops += 1;
            if main_woken {
                main_woken = false;
                main.queued.swap(false, Ordering::AcqRel);
                if let Poll::Ready(v) = future.as_mut().poll(&mut Context::from_waker(&main_waker))
                {
                    return v;
                }
            }
            let remote = self.shared.take_remote();
            if !remote.is_empty() {
                self.stats.borrow_mut().remote_wakes += remote.len() as u64;
                self.ready.borrow_mut().extend(remote);
            }
            // Run every ready task once.
            let n = self.ready.borrow().len();
            for _ in 0..n {
                let Some(task) = self.ready.borrow_mut().pop_front() else {
                    break;
                };
                if task.id == MAIN {
                    main_woken = true;
                    continue;
                }
                self.run_task(task);
            }
            let reaped = self.reap();
            let fired = self.fire_timers();
            if main_woken
                || !self.ready.borrow().is_empty()
                || reaped
                || fired
                || self.shared.has_remote.load(Ordering::Relaxed)
            {
                continue;
            }
            // Nothing can run: sleep until an entry completes, a timer is
            // due or another thread wakes a task.
            let deadline = self.timers.borrow_mut().next_deadline();
            self.idle(deadline);
        }
    }

    fn run_task(&self, task: Arc<Task>) {
        // Acquire pairs with the waker's release: the poll sees what was
        // done before the wake. Cleared before the poll, so a wake during
        // the poll queues the task again.
        task.queued.swap(false, Ordering::AcqRel);
        let (future, waker, aborted) = {
            let mut tasks = self.tasks.borrow_mut();
            let Some(Some(slot)) = tasks.get_mut(task.id) else {
                return;
            };
            // A stale wake: the task finished, its slot went to another.
            if !Arc::ptr_eq(&slot.task, &task) {
                return;
            }
            let Some(future) = slot.future.take() else {
                return;
            };
            (future, slot.waker.clone(), slot.abort.get())
        };
        if aborted {
            self.free_task(task.id);
            drop(future);
            return;
        }
        let mut future = future;
        self.stats.borrow_mut().polls += 1;
        if future
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
        {
            let mut tasks = self.tasks.borrow_mut();
            if let Some(Some(slot)) = tasks.get_mut(task.id) {
                slot.future = Some(future);
                return;
            }
        } else {
            self.free_task(task.id);
        }
    }

    fn free_task(&self, id: usize) {
        let slot = self.tasks.borrow_mut().get_mut(id).and_then(Option::take);
        if slot.is_some() {
            self.free_tasks.borrow_mut().push(id);
        }
        drop(slot);
    }

    fn spawn_local(&self, future: LocalFuture, abort: Rc<Cell<bool>>) -> Arc<Task> {
        let mut tasks = self.tasks.borrow_mut();
        let id = self.free_tasks.borrow_mut().pop().unwrap_or(tasks.len());
        let task = Arc::new(Task {
            id,
            queued: AtomicBool::new(true),
            shared: self.shared.clone(),
        });
        let slot = Slot {
            task: task.clone(),
            waker: Waker::from(task.clone()),
            future: Some(future),
            abort,
        };
        if id == tasks.len() {
            tasks.push(Some(slot));
        } else {
            tasks[id] = Some(slot);
        }
        self.ready.borrow_mut().push_back(task.clone());
        task
    }

    fn fire_timers(&self) -> bool {
        let due = self.timers.borrow_mut().fire(Instant::now());
        let any = !due.is_empty();
        for w in due {
            w.wake();
        }
        any
    }

    /// Submits a call; `None` if every entry is in use. The entry owns
    /// `keep` until DONE.
    ///
    /// # Safety
    ///
    /// Every pointer in `args` points into `keep`, or at memory that
    /// outlives the runtime, for what the call does with it.
    pub(crate) unsafe fn submit(
        &self,
        nr: i64,
        args: [u64; 6],
        keep: &mut Option<Keep>,
        waker: Option<Waker>,
        fd_result: bool,
    ) -> Option<usize> {
        // SAFETY: The caller's contract.
        let slot = unsafe { self.submit_inner(nr, args, keep, waker, false) }?;
        self.ops.borrow_mut()[slot]
            .as_mut()
            .expect("the op just submitted")
            .fd_result = fd_result;
        self.stats.borrow_mut().entries += 1;
        Some(slot)
    }

    /// # Safety
    ///
    /// As [`Core::submit`].
    unsafe fn submit_inner(
        &self,
        nr: i64,
        args: [u64; 6],
        keep: &mut Option<Keep>,
        waker: Option<Waker>,
        doorbell: bool,
    ) -> Option<usize> {
        let Driver::Flexsc(reg) = &self.driver else {
            unreachable!("flexsc-rt: an entry on a direct runtime");
        };
        // SAFETY: The caller's contract: the pointers stay valid while
        // `keep` lives, and `keep` moves into the table until DONE.
        let ticket = unsafe { reg.borrow_mut().submit_raw(nr, args) }?;
        let op = InFlight {
            ticket: Some(ticket),
            orphan: waker.is_none(),
            waker,
            result: None,
            keep: keep.take(),
            doorbell,
            fd_result: false,
        };
        let mut ops = self.ops.borrow_mut();
        let slot = match self.free_ops.borrow_mut().pop() {
            Some(i) => {
                ops[i] = Some(op);
                i
            }
            None => {
                ops.push(Some(op));
                ops.len() - 1
            }
        };
        self.in_flight.set(self.in_flight.get() + 1);
        Some(slot)
    }

    /// Runs a call nobody waits for (a close on drop): as an entry whose
    /// slot frees itself when DONE, or directly on a direct runtime or if
    /// every entry is in use.
    ///
    /// # Safety
    ///
    /// As [`Core::submit`]; and the call must be one that does not block.
    pub(crate) unsafe fn detach(&self, nr: i64, args: [u64; 6], keep: Option<Keep>) {
        let mut keep = keep;
        if matches!(self.driver, Driver::Flexsc(_))
            && self.ops.try_borrow_mut().is_ok()
            && self.free_ops.try_borrow_mut().is_ok()
        {
            // SAFETY: The caller's contract.
            if unsafe { self.submit_inner(nr, args, &mut keep, None, false) }.is_some() {
                self.stats.borrow_mut().entries += 1;
                return;
            }
        }
        // SAFETY: The caller's contract; the call does not block.
        unsafe { crate::ops::direct(nr, args) };
        drop(keep);
    }

    /// Takes back the slot of a dropped operation: frees it if DONE,
    /// else leaves the memory to the table until it is.
    pub(crate) fn abandon(&self, slot: usize) {
        let (keep, new_fd) = {
            let mut ops = self.ops.borrow_mut();
            let Some(op) = ops[slot].as_mut() else { return };
            if let Some(ret) = op.result {
                let keep = op.keep.take();
                let new_fd = (op.fd_result && ret >= 0).then_some(ret as i32);
                ops[slot] = None;
                self.free_ops.borrow_mut().push(slot);
                (keep, new_fd)
            } else {
                op.orphan = true;
                op.waker = None;
                (None, None)
            }
        };
        // Outside the borrow: these may close descriptors (entries).
        drop(keep);
        if let Some(fd) = new_fd {
            crate::stream::close_later(fd);
        }
    }

    /// The doorbell: a `read` of the eventfd, in flight as an entry, so
    /// that a ring from another thread completes an entry.
    fn ring_doorbell(&self) {
        let mut keep: Option<Keep> = Some(Box::new(0u64));
        let ptr = keep
            .as_mut()
            .and_then(|k| k.downcast_mut::<u64>())
            .map(|v| v as *mut u64)
            .expect("the doorbell's buffer");
        let args = [
            self.shared.doorbell.as_raw_fd() as u64,
            ptr as u64,
            8,
            0,
            0,
            0,
        ];
        // SAFETY: The pointer is into the box, owned by the entry; the
        // eventfd lives in `shared`, which outlives the registration (the
        // core holds it, and drops the registration first).
        let slot = unsafe { self.submit_inner(libc::SYS_read, args, &mut keep, None, true) };
        if slot.is_none() {
            self.doorbell_broken.set(true);
        }
    }

    /// Takes the results of DONE entries and wakes their tasks.
    fn reap(&self) -> bool {
        if self.in_flight.get() == 0 {
            return false;
        }
        let Driver::Flexsc(reg) = &self.driver else {
            return false;
        };
        let mut any = false;
        let mut wakers = Vec::new();
        let mut freed: Vec<Keep> = Vec::new();
        let mut new_fds = Vec::new();
        let mut doorbell = None;
        {
            let mut ops = self.ops.borrow_mut();
            let mut reg = reg.borrow_mut();
            let mut free_ops = self.free_ops.borrow_mut();
            for (slot, entry) in ops.iter_mut().enumerate() {
                let Some(op) = entry.as_mut() else { continue };
                let Some(ticket) = op.ticket.take() else {
                    continue;
                };
                match reg.try_complete(ticket) {
                    Ok(c) => {
                        self.in_flight.set(self.in_flight.get() - 1);
                        any = true;
                        if op.doorbell || op.orphan {
                            if op.doorbell {
                                doorbell = Some(c.ret);
                            }
                            if op.fd_result && c.ret >= 0 {
                                new_fds.push(c.ret as i32);
                            }
                            freed.extend(op.keep.take());
                            *entry = None;
                            free_ops.push(slot);
                            continue;
                        }
                        op.result = Some(c.ret);
                        wakers.extend(op.waker.take());
                    }
                    Err(t) => op.ticket = Some(t),
                }
            }
        }
        if let Some(ret) = doorbell {
            // 8 (a ring), or -EINTR (a signal): ring again. Anything else is
            // a broken doorbell: the loop then sleeps in short slices.
            if ret == 8 || ret == -(libc::EINTR as i64) {
                self.stats.borrow_mut().doorbells += u64::from(ret == 8);
                self.ring_doorbell();
            } else {
                self.doorbell_broken.set(true);
            }
        }
        // Outside the borrows: freeing may close descriptors (entries).
        drop(freed);
        for fd in new_fds {
            crate::stream::close_later(fd);
        }
        for w in wakers {
            w.wake();
        }
        if any {
            // Entries came free: let tasks waiting for one retry.
            let waiters: Vec<Waker> = self.entry_waiters.borrow_mut().drain(..).collect();
            for w in waiters {
                w.wake();
            }
        }
        any
    }

    /// Sleeps until an entry is DONE, `deadline`, or a wake from another
    /// thread.
    fn idle(&self, deadline: Option<Instant>) {
        self.stats.borrow_mut().idles += 1;
        match &self.driver {
            Driver::Flexsc(reg) => {
                // Spin a little first, on this thread's own calls only:
                // completions from a busy systhread come fast.
                for _ in 0..64 {
                    if self.shared.has_remote.load(Ordering::Relaxed) {
                        return;
                    }
                    let reg = reg.borrow();
                    let ops = self.ops.borrow();
                    if ops
                        .iter()
                        .flatten()
                        .any(|op| op.ticket.as_ref().is_some_and(|t| reg.is_done(t)))
                    {
                        return;
                    }
                    drop((ops, reg));
                    std::hint::spin_loop();
                }
                if !self.announce_sleep() {
                    return;
                }
                let cap = if self.doorbell_broken.get() {
                    MAX_WAIT_NO_DOORBELL
                } else {
                    MAX_WAIT
                };
                let timeout = deadline
                    .map(|d| d.saturating_duration_since(Instant::now()))
                    .unwrap_or(cap)
                    .min(cap);
                let t0 = Instant::now();
                let _ = reg.borrow().wait(1, Some(timeout));
                self.shared.sleeping.store(false, Ordering::SeqCst);
                let mut st = self.stats.borrow_mut();
                st.waits += 1;
                st.wait_ns += t0.elapsed().as_nanos() as u64;
            }
            Driver::Direct => {
                if !self.announce_sleep() {
                    return;
                }
                let ms = deadline.map_or(-1, |d| {
                    let left = d.saturating_duration_since(Instant::now());
                    left.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32
                });
                let mut pfd = libc::pollfd {
                    fd: self.shared.doorbell.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                let t0 = Instant::now();
                // SAFETY: One pollfd, on the stack.
                let n = unsafe { libc::poll(&mut pfd, 1, ms) };
                if n > 0 && pfd.revents & libc::POLLIN != 0 {
                    let mut v = 0u64;
                    // SAFETY: Readable: reads the counter into a local
                    // without blocking.
                    unsafe {
                        libc::read(
                            self.shared.doorbell.as_raw_fd(),
                            (&mut v as *mut u64).cast(),
                            8,
                        )
                    };
                    self.stats.borrow_mut().doorbells += 1;
                }
                self.shared.sleeping.store(false, Ordering::SeqCst);
                let mut st = self.stats.borrow_mut();
                st.waits += 1;
                st.wait_ns += t0.elapsed().as_nanos() as u64;
            }
        }
    }

    /// Tells wakers on other threads that the loop is going to sleep;
    /// `false` if a remote wake came in meanwhile (then it must not sleep).
    fn announce_sleep(&self) -> bool {
        self.shared.sleeping.store(true, Ordering::SeqCst);
        if self.shared.has_remote.load(Ordering::SeqCst) {
            self.shared.sleeping.store(false, Ordering::SeqCst);
            return false;
        }
        true
    }
}

/// What the current thread's runtime did so far (see [`Runtime::stats`]).
///
/// # Panics
///
/// Outside [`Runtime::block_on`].
pub fn stats() -> Stats {
    core().stats()
}

/// Spawns a task on the current thread's runtime. The future need not be
/// `Send`: it stays on this thread. Its wakers may be woken from any
/// thread.
///
/// # Panics
///
/// Outside [`Runtime::block_on`].
pub fn spawn<F: Future + 'static>(future: F) -> JoinHandle<F::Output> {
    let core = core();
    let state = Rc::new(RefCell::new(JoinState {
        value: None,
        finished: false,
        waker: None,
    }));
    let guard = JoinGuard(state.clone());
    let task: LocalFuture = Box::pin(async move {
        let guard = guard;
        let v = future.await;
        guard.0.borrow_mut().value = Some(v);
    });
    let abort = Rc::new(Cell::new(false));
    let task = core.spawn_local(task, abort.clone());
    JoinHandle { state, abort, task }
}

struct JoinState<T> {
    value: Option<T>,
    /// The task's future is gone: completed, aborted or its runtime dropped.
    finished: bool,
    waker: Option<Waker>,
}

/// Lives in the task's future: its drop says the future is gone, whether
/// it completed or was cancelled.
struct JoinGuard<T>(Rc<RefCell<JoinState<T>>>);

impl<T> Drop for JoinGuard<T> {
    fn drop(&mut self) {
        let waker = {
            let mut st = self.0.borrow_mut();
            st.finished = true;
            st.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// The task was cancelled ([`JoinHandle::abort`], or its runtime dropped)
/// before it completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled;

impl std::fmt::Display for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("task cancelled")
    }
}

impl std::error::Error for Cancelled {}

/// Awaits a spawned task's output. Dropping it detaches the task.
pub struct JoinHandle<T> {
    state: Rc<RefCell<JoinState<T>>>,
    abort: Rc<Cell<bool>>,
    task: Arc<Task>,
}

impl<T> JoinHandle<T> {
    /// Cancels the task: its future is dropped at the loop's next turn
    /// (calls it has in flight keep their memory until DONE), and awaiting
    /// this handle then gives `Err(Cancelled)` unless it had completed.
    pub fn abort(&self) {
        self.abort.set(true);
        Waker::from(self.task.clone()).wake();
    }

    /// Whether the task's future is gone (completed or cancelled).
    pub fn is_finished(&self) -> bool {
        self.state.borrow().finished
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, Cancelled>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut st = self.state.borrow_mut();
        if let Some(v) = st.value.take() {
            return Poll::Ready(Ok(v));
        }
        if st.finished {
            return Poll::Ready(Err(Cancelled));
        }
        st.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wakers_are_send_and_sync_data() {
        fn is_send_sync<T: Send + Sync>() {}
        is_send_sync::<Task>();
        is_send_sync::<Shared>();
    }

    #[test]
    fn a_stale_wake_does_not_run_a_new_task() {
        let rt = Runtime::direct().unwrap();
        let polls = Rc::new(Cell::new(0));
        rt.block_on(async {
            let first = spawn(async {});
            let stale = first.task.clone();
            first.await.unwrap();
            // The slot is free; the next task takes it.
            let p = polls.clone();
            let second = spawn(std::future::poll_fn(move |_| {
                p.set(p.get() + 1);
                Poll::<()>::Pending
            }));
            assert_eq!(second.task.id, stale.id);
            crate::sleep(Duration::from_millis(1)).await;
            let before = polls.get();
            Waker::from(stale).wake();
            crate::sleep(Duration::from_millis(1)).await;
            assert_eq!(polls.get(), before, "a stale waker polled another task");
            second.abort();
            assert_eq!(second.await, Err(Cancelled));
        });
    }
}
