//! The executor: local tasks, FlexSC completions, timers.

use crate::time::Timers;
use flexsc::{Builder, Registration, Ticket};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
use std::time::{Duration, Instant};

type LocalTask = Pin<Box<dyn Future<Output = ()>>>;

/// An operation in flight: its ticket, who to wake, where its result goes,
/// and the memory it owns until the kernel is done with it.
pub(crate) struct InFlight {
    pub(crate) ticket: Option<Ticket>,
    pub(crate) waker: Option<Waker>,
    pub(crate) result: Option<i64>,
    pub(crate) keep: Option<Box<dyn std::any::Any>>,
    /// Its future was dropped: free the slot (and the memory) once DONE.
    pub(crate) orphan: bool,
}

pub(crate) struct Core {
    pub(crate) reg: RefCell<Registration>,
    tasks: RefCell<Vec<Option<LocalTask>>>,
    free_tasks: RefCell<Vec<usize>>,
    ready: RefCell<VecDeque<usize>>,
    pub(crate) ops: RefCell<Vec<Option<InFlight>>>,
    pub(crate) free_ops: RefCell<Vec<usize>>,
    /// Tasks waiting for a free entry.
    pub(crate) entry_waiters: RefCell<VecDeque<Waker>>,
    pub(crate) timers: RefCell<Timers>,
    pub(crate) in_flight: Cell<usize>,
    pub(crate) stats: RefCell<Stats>,
}

/// Where a runtime's time goes: what its loop did since it started.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    /// Task polls.
    pub polls: u64,
    /// System calls submitted as FlexSC entries.
    pub entries: u64,
    /// Turns of the loop.
    pub loops: u64,
    /// Times the loop found nothing to run and spun on its calls.
    pub idles: u64,
    /// Times it then slept in `flexsc_wait`.
    pub waits: u64,
    /// Nanoseconds spent in `flexsc_wait`.
    pub wait_ns: u64,
    /// Nanoseconds since the runtime started.
    pub total_ns: u64,
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let per = |n: u64| n as f64 / self.entries.max(1) as f64;
        write!(
            f,
            "{} entries, {} polls ({:.2}/entry), {} loops ({:.2}/entry), {} idle spins, {} flexsc_wait ({:.2}/entry), {:.1}% of the time in flexsc_wait",
            self.entries,
            self.polls,
            per(self.polls),
            self.loops,
            per(self.loops),
            self.idles,
            self.waits,
            per(self.waits),
            100.0 * self.wait_ns as f64 / self.total_ns.max(1) as f64
        )
    }
}

thread_local! {
    static CORE: RefCell<Option<Rc<Core>>> = const { RefCell::new(None) };
}

/// The current thread's runtime core; panics outside [`Runtime::block_on`].
pub(crate) fn core() -> Rc<Core> {
    CORE.with(|c| c.borrow().clone())
        .expect("flexsc-rt: not inside Runtime::block_on")
}

/// The current thread's runtime core, if inside [`Runtime::block_on`].
pub(crate) fn try_core() -> Option<Rc<Core>> {
    CORE.with(|c| c.borrow().clone())
}

/// A runtime for the current thread: its FlexSC registration and its tasks.
/// Make one per core (thread-per-core), each on its own thread.
pub struct Runtime {
    core: Rc<Core>,
    started: Instant,
}

impl Runtime {
    /// Registers the current thread with 256 entries and one systhread per
    /// CPU.
    pub fn new() -> io::Result<Runtime> {
        Runtime::with_builder(Builder::new().entries(256))
    }

    /// Registers the current thread as `builder` says.
    pub fn with_builder(builder: Builder) -> io::Result<Runtime> {
        let reg = builder.register()?;
        Ok(Runtime {
            core: Rc::new(Core {
                reg: RefCell::new(reg),
                tasks: RefCell::new(Vec::new()),
                free_tasks: RefCell::new(Vec::new()),
                ready: RefCell::new(VecDeque::new()),
                ops: RefCell::new(Vec::new()),
                free_ops: RefCell::new(Vec::new()),
                entry_waiters: RefCell::new(VecDeque::new()),
                timers: RefCell::new(Timers::default()),
                in_flight: Cell::new(0),
                stats: RefCell::new(Stats::default()),
            }),
            started: Instant::now(),
        })
    }

    /// What the loop did so far.
    pub fn stats(&self) -> Stats {
        let mut s = *self.core.stats.borrow();
        s.total_ns = self.started.elapsed().as_nanos() as u64;
        s
    }

    /// Runs `future` and every task it spawns until `future` completes.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        CORE.with(|c| *c.borrow_mut() = Some(self.core.clone()));
        let out = self.run(future);
        CORE.with(|c| *c.borrow_mut() = None);
        out
    }

    fn run<F: Future>(&self, future: F) -> F::Output {
        let core = &self.core;
        let mut future = std::pin::pin!(future);
        let main_woken = Rc::new(Cell::new(true));
        let main_waker = flag_waker(main_woken.clone());
        loop {
            core.stats.borrow_mut().loops += 1;
            if main_woken.replace(false) {
                if let Poll::Ready(v) = future.as_mut().poll(&mut Context::from_waker(&main_waker))
                {
                    return v;
                }
            }
            // Run every ready task once.
            let n = core.ready.borrow().len();
            for _ in 0..n {
                let Some(id) = core.ready.borrow_mut().pop_front() else {
                    break;
                };
                let task = core.tasks.borrow_mut().get_mut(id).and_then(Option::take);
                let Some(mut task) = task else { continue };
                let waker = task_waker(id);
                core.stats.borrow_mut().polls += 1;
                if task
                    .as_mut()
                    .poll(&mut Context::from_waker(&waker))
                    .is_pending()
                {
                    core.tasks.borrow_mut()[id] = Some(task);
                } else {
                    core.free_tasks.borrow_mut().push(id);
                }
            }
            let reaped = core.reap();
            let fired = core.timers.borrow_mut().fire(Instant::now());
            if main_woken.get() || !core.ready.borrow().is_empty() || reaped || fired {
                continue;
            }
            // Nothing can run: sleep until an entry completes or a timer is due.
            core.idle(core.timers.borrow().next_deadline());
        }
    }
}

impl Core {
    /// Takes the results of DONE entries and wakes their tasks.
    fn reap(&self) -> bool {
        if self.in_flight.get() == 0 {
            return false;
        }
        let mut any = false;
        let mut ops = self.ops.borrow_mut();
        let mut reg = self.reg.borrow_mut();
        for (slot, entry) in ops.iter_mut().enumerate() {
            let Some(op) = entry.as_mut() else { continue };
            let Some(ticket) = op.ticket.take() else {
                continue;
            };
            match reg.try_complete(ticket) {
                Ok(c) => {
                    self.in_flight.set(self.in_flight.get() - 1);
                    any = true;
                    if op.orphan {
                        *entry = None;
                        self.free_ops.borrow_mut().push(slot);
                        continue;
                    }
                    op.result = Some(c.ret);
                    if let Some(w) = op.waker.take() {
                        w.wake();
                    }
                }
                Err(t) => op.ticket = Some(t),
            }
        }
        drop(reg);
        drop(ops);
        if any {
            // Entries came free: let tasks waiting for one retry.
            for w in self.entry_waiters.borrow_mut().drain(..) {
                w.wake();
            }
        }
        any
    }

    /// Blocks in flexsc_wait until an entry is DONE or `deadline`.
    fn idle(&self, deadline: Option<Instant>) {
        if self.in_flight.get() == 0 {
            match deadline {
                Some(d) => std::thread::sleep(d.saturating_duration_since(Instant::now())),
                None => panic!("flexsc-rt: deadlock: no task can run, no call in flight, no timer"),
            }
            return;
        }
        self.stats.borrow_mut().idles += 1;
        // Spin a little first, on this thread's own calls only: completions
        // from a busy systhread come fast.
        for _ in 0..64 {
            let reg = self.reg.borrow();
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
        let reg = self.reg.borrow();
        let timeout = deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_millis(100))
            .min(Duration::from_millis(100));
        let t0 = Instant::now();
        let _ = reg.wait(1, Some(timeout));
        let mut st = self.stats.borrow_mut();
        st.waits += 1;
        st.wait_ns += t0.elapsed().as_nanos() as u64;
    }

    /// Queues task `id` to run.
    fn schedule(&self, id: usize) {
        self.ready.borrow_mut().push_back(id);
    }
}

/// Spawns a task on the current thread's runtime.
pub fn spawn<F: Future + 'static>(future: F) -> JoinHandle<F::Output> {
    let core = core();
    let slot: Rc<RefCell<JoinState<F::Output>>> = Rc::new(RefCell::new(JoinState {
        value: None,
        waker: None,
    }));
    let s2 = slot.clone();
    let task: LocalTask = Box::pin(async move {
        let v = future.await;
        let mut st = s2.borrow_mut();
        st.value = Some(v);
        if let Some(w) = st.waker.take() {
            w.wake();
        }
    });
    let id = match core.free_tasks.borrow_mut().pop() {
        Some(id) => {
            core.tasks.borrow_mut()[id] = Some(task);
            id
        }
        None => {
            let mut tasks = core.tasks.borrow_mut();
            tasks.push(Some(task));
            tasks.len() - 1
        }
    };
    core.schedule(id);
    JoinHandle { slot }
}

struct JoinState<T> {
    value: Option<T>,
    waker: Option<Waker>,
}

/// Awaits a spawned task's output.
pub struct JoinHandle<T> {
    slot: Rc<RefCell<JoinState<T>>>,
}

impl<T> Future for JoinHandle<T> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut st = self.slot.borrow_mut();
        match st.value.take() {
            Some(v) => Poll::Ready(v),
            None => {
                st.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

// Wakers. Tasks are local to their thread: a waker carries the task id and
// schedules it on the current thread's core (waking from another thread is
// not supported: every event comes from this thread's loop).

fn task_waker(id: usize) -> Waker {
    fn clone(p: *const ()) -> RawWaker {
        RawWaker::new(p, &TASK_VTABLE)
    }
    fn wake(p: *const ()) {
        if let Some(core) = CORE.with(|c| c.borrow().clone()) {
            core.schedule(p as usize);
        }
    }
    fn drop(_: *const ()) {}
    static TASK_VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake, drop);
    // SAFETY: The vtable never dereferences the pointer: it is an id.
    unsafe { Waker::from_raw(RawWaker::new(id as *const (), &TASK_VTABLE)) }
}

fn flag_waker(flag: Rc<Cell<bool>>) -> Waker {
    fn clone(p: *const ()) -> RawWaker {
        // SAFETY: `p` came from `Rc::into_raw` of a `Cell<bool>`.
        unsafe { Rc::increment_strong_count(p as *const Cell<bool>) };
        RawWaker::new(p, &FLAG_VTABLE)
    }
    fn wake(p: *const ()) {
        wake_by_ref(p);
        drop(p);
    }
    fn wake_by_ref(p: *const ()) {
        // SAFETY: As in `clone`; the count keeps it alive.
        unsafe { (*(p as *const Cell<bool>)).set(true) };
    }
    fn drop(p: *const ()) {
        // SAFETY: As in `clone`.
        unsafe { Rc::decrement_strong_count(p as *const Cell<bool>) };
    }
    static FLAG_VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop);
    // SAFETY: The vtable manages the Rc count; the runtime is single-threaded.
    unsafe { Waker::from_raw(RawWaker::new(Rc::into_raw(flag) as *const (), &FLAG_VTABLE)) }
}
