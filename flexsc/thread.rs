// SPDX-License-Identifier: GPL-2.0

//! Threads for the engine: io-threads, sleeping and waking, signals.
//!
//! The kernel crate of 6.12 has no abstraction for these; this file keeps
//! every `bindings::` call about threads behind a small safe function.
//!
//! Systhreads are io-threads (`create_io_thread()`, as io_uring's workers
//! and SQPOLL thread): threads of the registering process that share its
//! mm, files, fs, signal handlers and namespaces, never return to user
//! space, block every signal but SIGKILL and SIGSTOP, and leave with
//! `do_exit()`.

use core::ffi::{c_int, c_void};
use kernel::{bindings, error::from_err_ptr, prelude::*, task::Task, types::ARef};

/// A raw `task_struct` pointer of a thread that is alive for as long as
/// the holder uses it (its users say why).
pub(crate) type RawTask = *mut bindings::task_struct;

/// Returns current's `task_struct`.
pub(crate) fn current_raw() -> RawTask {
    // SAFETY: Always valid in process context.
    unsafe { bindings::get_current() }
}

/// The current thread's `task_struct::syspage` (its registration, or null).
pub(crate) fn current_syspage() -> *const c_void {
    // SAFETY: Current is valid; only current writes its own `syspage`.
    unsafe { bindings::flexsc_syspage(current_raw()).cast_const().cast() }
}

/// Sets the current thread's `syspage`.
pub(crate) fn set_current_syspage(reg: *const c_void) {
    // SAFETY: As in `current_syspage`.
    unsafe { bindings::flexsc_set_syspage(current_raw(), reg.cast_mut().cast()) };
}

/// Sets the current thread's `task_struct::flexsc_worker`, which the
/// scheduler hooks hand to the worker module.
///
/// # Safety
///
/// `worker` is null or stays valid until it is cleared by this thread.
pub(crate) unsafe fn set_current_worker(worker: *const c_void) {
    // SAFETY: Current is valid; per the function's contract.
    unsafe { bindings::flexsc_set_worker(current_raw(), worker.cast_mut().cast()) };
}

/// The `flexsc_worker` of `tsk`.
///
/// # Safety
///
/// `tsk` is a valid task.
pub(crate) unsafe fn worker_of(tsk: RawTask) -> *const c_void {
    // SAFETY: Per the function's contract.
    unsafe { bindings::flexsc_worker(tsk).cast_const().cast() }
}

/// The current thread's id, as its own pid namespace sees it.
pub(crate) fn current_tid() -> i32 {
    // SAFETY: Current is valid.
    unsafe { bindings::task_pid_vnr(current_raw()) }
}

/// A counted reference to the current thread's task.
pub(crate) fn current_task() -> ARef<Task> {
    // SAFETY: Current is valid; `ARef::from` takes a reference of its own.
    ARef::from(unsafe { &*current_raw().cast::<Task>() })
}

/// What a new io-thread runs: its data and the function to call with it.
struct Start<T> {
    data: KBox<T>,
    body: fn(KBox<T>),
}

/// An io-thread that is created but not started yet.
///
/// # Invariants
///
/// `task` is a task created by `create_io_thread()` and not yet woken up.
pub(crate) struct NewThread {
    task: ARef<Task>,
}

impl NewThread {
    /// Creates an io-thread of the current process that will run
    /// `body(data)` once [`NewThread::start`]ed, then exit.
    ///
    /// Fails like `clone()` would (`EAGAIN` past `RLIMIT_NPROC`, `ENOMEM`,
    /// `EINTR` for a dying creator).
    pub(crate) fn create<T: Send>(data: KBox<T>, body: fn(KBox<T>)) -> Result<Self> {
        let start = KBox::new(Start { data, body }, GFP_KERNEL)?;
        let arg = KBox::into_raw(start);
        // SAFETY: `trampoline::<T>` matches `arg`'s type; `create_io_thread`
        // either passes `arg` to it exactly once or fails without using it.
        let task = unsafe {
            bindings::create_io_thread(Some(trampoline::<T>), arg.cast(), bindings::NUMA_NO_NODE)
        };
        let task = match from_err_ptr(task) {
            Ok(task) => task,
            Err(e) => {
                // SAFETY: The thread was not created, so `arg` is still ours.
                drop(unsafe { KBox::from_raw(arg) });
                return Err(e);
            }
        };
        // SAFETY: `create_io_thread` returned a valid task; `Task` is a
        // transparent wrapper of `task_struct`, and `ARef::from` takes a
        // reference of its own.
        let task = ARef::from(unsafe { &*task.cast::<Task>() });
        // INVARIANT: created above and not woken up.
        Ok(Self { task })
    }

    /// The new thread's task, for callers that track their threads.
    pub(crate) fn task(&self) -> &ARef<Task> {
        &self.task
    }

    /// Lets the thread run.
    pub(crate) fn start(self) {
        // SAFETY: By the type invariant the task is new and not yet woken.
        unsafe { bindings::wake_up_new_task(raw(&self.task)) };
    }
}

/// Returns the raw pointer of `task`.
pub(crate) fn raw(task: &Task) -> RawTask {
    (task as *const Task).cast_mut().cast()
}

/// Entry point of every io-thread the engine creates.
///
/// # Safety
///
/// `arg` comes from `KBox::<Start<T>>::into_raw` and is used only here.
unsafe extern "C" fn trampoline<T>(arg: *mut c_void) -> c_int {
    // SAFETY: Per the function's contract.
    let start = unsafe { KBox::from_raw(arg.cast::<Start<T>>()) };
    let Start { data, body } = KBox::into_inner(start);
    body(data);
    // An io-thread must never return to the user-mode frame that
    // ret_from_fork() would go back to.
    // SAFETY: Every value of this thread was dropped by `body`.
    unsafe { bindings::do_exit(0) }
}

/// Binds the current thread to `cpu`; if that CPU went offline meanwhile,
/// the thread keeps the CPUs it inherited.
pub(crate) fn bind_current_to(cpu: u32) {
    // SAFETY: `cpumask_of` returns a static mask; current is valid.
    unsafe {
        bindings::set_cpus_allowed_ptr(current_raw(), bindings::cpumask_of(cpu));
    }
}

/// Marks current as about to sleep (`TASK_INTERRUPTIBLE`), with the full
/// barrier of `set_current_state()`: a wake-up after this is not lost.
pub(crate) fn prepare_to_sleep() {
    // SAFETY: Always valid for current.
    unsafe { bindings::set_current_state(bindings::TASK_INTERRUPTIBLE) }
}

/// Marks current runnable again after [`prepare_to_sleep`].
pub(crate) fn set_running() {
    // SAFETY: Always valid for current.
    unsafe { bindings::set_current_state(bindings::TASK_RUNNING) }
}

/// Sleeps until woken (after [`prepare_to_sleep`]).
pub(crate) fn schedule() {
    // SAFETY: Called in process context with no spinlock held.
    unsafe { bindings::schedule() };
}

/// Gives up the CPU if the scheduler wants it, while polling.
pub(crate) fn cond_resched() {
    // SAFETY: Called in process context with no spinlock held.
    unsafe { bindings::cond_resched() };
}

/// Wakes `task` if it sleeps.
///
/// # Safety
///
/// `task` must stay a valid `task_struct` during the call: a reference is
/// held, or the caller is inside an RCU read-side section and `task` was
/// read from a place it is removed from before the task is released.
pub(crate) unsafe fn wake_up(task: RawTask) {
    // SAFETY: Per the function's contract.
    unsafe { bindings::wake_up_process(task) };
}

/// Interrupts `task`: its interruptible sleeps end (its calls in flight see
/// a pending signal and fail with -EINTR or their own result), and it sees
/// [`signal_pending`] until it calls [`handle_signals`].
pub(crate) fn interrupt(task: &Task) {
    // SAFETY: `task` is a valid task by the type of the reference.
    unsafe {
        bindings::set_notify_signal(raw(task));
        bindings::wake_up_process(raw(task));
    }
}

/// Sleeps for about `ms` milliseconds, or until a signal.
pub(crate) fn sleep_ms(ms: u32) {
    // SAFETY: Process context, no lock held.
    unsafe { bindings::msleep_interruptible(ms) };
}

/// Whether a signal (or an interruption) is pending for current.
pub(crate) fn signal_pending() -> bool {
    // SAFETY: Always valid for current.
    unsafe { bindings::signal_pending(current_raw()) != 0 }
}

/// Handles current's pending signals as an io-thread does: runs task work,
/// clears an interruption, obeys SIGSTOP. Returns `true` if a fatal signal
/// is pending, in which case the thread must clean up and exit.
pub(crate) fn handle_signals() -> bool {
    if !signal_pending() {
        return false;
    }
    set_running();
    // SAFETY: Current is a PF_USER_WORKER: `get_signal()` returns true on a
    // fatal signal instead of exiting on its behalf.
    unsafe { bindings::flexsc_get_signal() }
}

/// An RCU read-side critical section, for as long as the guard lives.
pub(crate) struct RcuGuard(());

impl RcuGuard {
    /// Enters an RCU read-side critical section.
    pub(crate) fn new() -> Self {
        // SAFETY: Always allowed; left by `drop`.
        unsafe { bindings::rcu_read_lock() };
        Self(())
    }
}

impl Drop for RcuGuard {
    fn drop(&mut self) {
        // SAFETY: Entered by `new`.
        unsafe { bindings::rcu_read_unlock() };
    }
}
