// SPDX-License-Identifier: GPL-2.0

//! What a call may do when a systhread runs it, and running it.
//!
//! A systhread is a thread of the registering process: it shares the
//! process's memory, file table, fs (cwd, root, umask), signal handlers and
//! namespaces, so most calls mean exactly what they mean when the
//! registered thread makes them. Before each call it follows the
//! registered thread (the owner): its seccomp verdict first, then its
//! credentials, and a refusal (`-EPERM`) if the owner left the file table,
//! fs or namespaces the systhread shares ([`crate::owner`]). What remains
//! are calls whose meaning is "this thread": the systhread is not the
//! owner, so they are emulated where that is exact and refused (`-ENOSYS`)
//! where it is not. `docs/semantics.md` carries the table, and
//! `scripts/check-semantics.py` checks it against [`policy`].
//!
//! The order for each entry:
//!
//! ```text
//!  owner's seccomp filter (ip 0) -> FlexSC's refusals -> follow the owner
//!  -> emulation -> audit entry -> x64_sys_call() -> signals back in order
//!  -> restart after a stop or the freezer, as a direct call -> audit exit
//! ```

use kernel::bindings;

use crate::entry::Call;
use crate::ffi;
use crate::owner::Follower;
use crate::thread::{self, RawTask};

/// What the engine does with a system call number.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Policy {
    /// Run it through the kernel's table.
    Run,
    /// Complete with the registered thread's tid.
    Gettid,
    /// Run it with the registered thread's tid in place of a 0 ("this
    /// thread") in argument `n`.
    SelfPid(usize),
    /// Run it with the registered thread's CPU clock in place of "this
    /// thread's" CPU clock in argument 0.
    ThreadClock,
    /// A key call: refused if it would install a keyring into "this
    /// thread's" credentials (`flexsc_key_call_refused()`), run otherwise.
    Keys,
    /// Complete with `-ENOSYS`, unrun.
    Refuse,
}

/// x86_64 numbers, from the kernel's own table (`<asm/unistd_64.h>`).
mod nr {
    use kernel::bindings;

    macro_rules! numbers {
        ($($name:ident = $nr:ident),* $(,)?) => {
            $(pub(super) const $name: u32 = bindings::$nr;)*
        };
    }

    numbers! {
        IOCTL = __NR_ioctl, RT_SIGPROCMASK = __NR_rt_sigprocmask,
        RT_SIGRETURN = __NR_rt_sigreturn, PAUSE = __NR_pause, CLONE = __NR_clone,
        FORK = __NR_fork, VFORK = __NR_vfork, EXECVE = __NR_execve, EXIT = __NR_exit,
        GETRUSAGE = __NR_getrusage, PTRACE = __NR_ptrace, SETUID = __NR_setuid,
        SETGID = __NR_setgid, SETREUID = __NR_setreuid, SETREGID = __NR_setregid,
        SETGROUPS = __NR_setgroups, SETRESUID = __NR_setresuid,
        SETRESGID = __NR_setresgid, SETFSUID = __NR_setfsuid, SETFSGID = __NR_setfsgid,
        CAPSET = __NR_capset, RT_SIGPENDING = __NR_rt_sigpending,
        RT_SIGTIMEDWAIT = __NR_rt_sigtimedwait, RT_SIGSUSPEND = __NR_rt_sigsuspend,
        SIGALTSTACK = __NR_sigaltstack, PERSONALITY = __NR_personality,
        GETPRIORITY = __NR_getpriority, SETPRIORITY = __NR_setpriority,
        SCHED_SETPARAM = __NR_sched_setparam, SCHED_GETPARAM = __NR_sched_getparam,
        SCHED_SETSCHEDULER = __NR_sched_setscheduler,
        SCHED_GETSCHEDULER = __NR_sched_getscheduler,
        SCHED_RR_GET_INTERVAL = __NR_sched_rr_get_interval,
        MODIFY_LDT = __NR_modify_ldt, PRCTL = __NR_prctl, ARCH_PRCTL = __NR_arch_prctl,
        IOPL = __NR_iopl, IOPERM = __NR_ioperm, GETTID = __NR_gettid, FUTEX = __NR_futex,
        SCHED_SETAFFINITY = __NR_sched_setaffinity,
        SCHED_GETAFFINITY = __NR_sched_getaffinity,
        SET_THREAD_AREA = __NR_set_thread_area, GET_THREAD_AREA = __NR_get_thread_area,
        SET_TID_ADDRESS = __NR_set_tid_address, RESTART_SYSCALL = __NR_restart_syscall,
        TIMER_CREATE = __NR_timer_create, CLOCK_GETTIME = __NR_clock_gettime,
        CLOCK_GETRES = __NR_clock_getres, CLOCK_NANOSLEEP = __NR_clock_nanosleep,
        EXIT_GROUP = __NR_exit_group, SET_MEMPOLICY = __NR_set_mempolicy,
        GET_MEMPOLICY = __NR_get_mempolicy, ADD_KEY = __NR_add_key,
        REQUEST_KEY = __NR_request_key, KEYCTL = __NR_keyctl,
        IOPRIO_SET = __NR_ioprio_set, IOPRIO_GET = __NR_ioprio_get,
        UNSHARE = __NR_unshare, SET_ROBUST_LIST = __NR_set_robust_list,
        GET_ROBUST_LIST = __NR_get_robust_list, SIGNALFD = __NR_signalfd,
        SIGNALFD4 = __NR_signalfd4, PERF_EVENT_OPEN = __NR_perf_event_open,
        SETNS = __NR_setns, SCHED_SETATTR = __NR_sched_setattr,
        SCHED_GETATTR = __NR_sched_getattr, SECCOMP = __NR_seccomp,
        EXECVEAT = __NR_execveat, PKEY_MPROTECT = __NR_pkey_mprotect,
        PKEY_ALLOC = __NR_pkey_alloc, PKEY_FREE = __NR_pkey_free, RSEQ = __NR_rseq,
        URETPROBE = __NR_uretprobe, IO_URING_SETUP = __NR_io_uring_setup,
        IO_URING_ENTER = __NR_io_uring_enter, IO_URING_REGISTER = __NR_io_uring_register,
        CLONE3 = __NR_clone3, LANDLOCK_RESTRICT_SELF = __NR_landlock_restrict_self,
        MAP_SHADOW_STACK = __NR_map_shadow_stack, LSM_GET_SELF_ATTR = __NR_lsm_get_self_attr,
        LSM_SET_SELF_ATTR = __NR_lsm_set_self_attr, FLEXSC_REGISTER = __NR_flexsc_register,
        FLEXSC_WAIT = __NR_flexsc_wait, FLEXSC_EXIT = __NR_flexsc_exit,
        PPOLL = __NR_ppoll, PSELECT6 = __NR_pselect6, EPOLL_PWAIT = __NR_epoll_pwait,
        EPOLL_PWAIT2 = __NR_epoll_pwait2, IO_PGETEVENTS = __NR_io_pgetevents,
    }

    /// The x32 numbers start here; nothing at or above it is x86_64.
    pub(super) const X32_START: u32 = 512;
}

/// `PRIO_PROCESS`: "who" is a thread id, 0 for the calling thread.
const PRIO_PROCESS: u64 = bindings::PRIO_PROCESS as u64;
/// `IOPRIO_WHO_PROCESS`: the same for ioprio_get/ioprio_set.
const IOPRIO_WHO_PROCESS: u64 = bindings::IOPRIO_WHO_PROCESS as u64;
/// `RUSAGE_THREAD`: the calling thread's usage.
const RUSAGE_THREAD: u64 = bindings::RUSAGE_THREAD as u64;

/// Futex operations that write the caller's tid into the futex word (PI).
fn futex_op_is_pi(op: u64) -> bool {
    // FUTEX_LOCK_PI, UNLOCK_PI, TRYLOCK_PI, WAIT_REQUEUE_PI,
    // CMP_REQUEUE_PI, LOCK_PI2, with or without FUTEX_PRIVATE_FLAG and
    // FUTEX_CLOCK_REALTIME (FUTEX_CMD_MASK).
    matches!(op & 0x7f, 6 | 7 | 8 | 11 | 12 | 13)
}

/// ioctls that assume a task returning to user mode (KVM: a user worker
/// skips FPU save and restore) or act on the caller's terminal job control.
fn ioctl_refused(cmd: u64) -> bool {
    const KVMIO: u64 = 0xae;
    const TIOCSCTTY: u64 = 0x540e;
    const TIOCSPGRP: u64 = 0x5410;
    const TIOCNOTTY: u64 = 0x5422;
    let cmd = cmd & 0xffff_ffff;
    (cmd >> 8) & 0xff == KVMIO || matches!(cmd, TIOCSCTTY | TIOCSPGRP | TIOCNOTTY)
}

pub(crate) fn policy(nr: u32, args: &[u64; 6]) -> Policy {
    use nr::*;
    match nr {
        // Thread creation and program replacement act on the calling
        // thread's registers and identity.
        EXIT | EXIT_GROUP | FORK | VFORK | CLONE | CLONE3 | EXECVE | EXECVEAT => Policy::Refuse,
        // Signal state of the calling thread (a systhread blocks all
        // signals and returns to no user frame); a signalfd reads the
        // reading thread's signals.
        RT_SIGRETURN | RT_SIGPROCMASK | RT_SIGSUSPEND | RT_SIGPENDING | RT_SIGTIMEDWAIT
        | SIGALTSTACK | PAUSE | RESTART_SYSCALL | SIGNALFD | SIGNALFD4 => Policy::Refuse,
        // Per-thread identity, credentials, memory policy, protection keys
        // and sandboxing: they would change or report the systhread, not
        // the registered thread.
        SET_TID_ADDRESS
        | SET_ROBUST_LIST
        | RSEQ
        | ARCH_PRCTL
        | SET_THREAD_AREA
        | GET_THREAD_AREA
        | MODIFY_LDT
        | IOPL
        | IOPERM
        | PRCTL
        | PERSONALITY
        | SECCOMP
        | UNSHARE
        | SETNS
        | LANDLOCK_RESTRICT_SELF
        | LSM_GET_SELF_ATTR
        | LSM_SET_SELF_ATTR
        | MAP_SHADOW_STACK
        | URETPROBE
        | PTRACE
        | CAPSET
        | SETUID
        | SETGID
        | SETREUID
        | SETREGID
        | SETRESUID
        | SETRESGID
        | SETFSUID
        | SETFSGID
        | SETGROUPS
        | SET_MEMPOLICY
        | GET_MEMPOLICY
        | PKEY_ALLOC
        | PKEY_FREE
        | PKEY_MPROTECT => Policy::Refuse,
        // io_uring ties its rings and task work to the submitting thread.
        IO_URING_SETUP | IO_URING_ENTER | IO_URING_REGISTER => Policy::Refuse,
        // No FlexSC from FlexSC.
        FLEXSC_REGISTER | FLEXSC_WAIT | FLEXSC_EXIT => Policy::Refuse,
        // PI futexes write the caller's tid into the futex word.
        FUTEX if futex_op_is_pi(args[1]) => Policy::Refuse,
        GETRUSAGE if args[0] == RUSAGE_THREAD => Policy::Refuse,
        IOCTL if ioctl_refused(args[1]) => Policy::Refuse,
        KEYCTL | ADD_KEY | REQUEST_KEY => Policy::Keys,
        GETTID => Policy::Gettid,
        // "pid 0" means the calling thread.
        SCHED_SETAFFINITY
        | SCHED_GETAFFINITY
        | SCHED_SETSCHEDULER
        | SCHED_GETSCHEDULER
        | SCHED_SETPARAM
        | SCHED_GETPARAM
        | SCHED_SETATTR
        | SCHED_GETATTR
        | SCHED_RR_GET_INTERVAL
        | GET_ROBUST_LIST => Policy::SelfPid(0),
        PERF_EVENT_OPEN => Policy::SelfPid(1),
        GETPRIORITY | SETPRIORITY if args[0] == PRIO_PROCESS => Policy::SelfPid(1),
        IOPRIO_SET | IOPRIO_GET if args[0] == IOPRIO_WHO_PROCESS => Policy::SelfPid(1),
        CLOCK_GETTIME | CLOCK_GETRES | CLOCK_NANOSLEEP | TIMER_CREATE => Policy::ThreadClock,
        n if n >= X32_START => Policy::Refuse,
        _ => Policy::Run,
    }
}

/// "This thread's" CPU clock (`CLOCK_THREAD_CPUTIME_ID`, or a per-thread
/// CPU clock with pid 0) made the registered thread's: the clock id with
/// `tid` in its pid field (`MAKE_THREAD_CPUCLOCK()`).
fn owner_clock(clock: u64, tid: i32) -> u64 {
    const CPUCLOCK_PERTHREAD: i32 = 4;
    const CPUCLOCK_SCHED: i32 = 2;
    let clock = clock as i32;
    let make = |kind: i32| ((!tid) << 3 | CPUCLOCK_PERTHREAD | kind) as i64 as u64;
    if clock == bindings::CLOCK_THREAD_CPUTIME_ID as i32 {
        make(CPUCLOCK_SCHED)
    } else if clock < 0 && clock & CPUCLOCK_PERTHREAD != 0 && clock >> 3 == -1 {
        make(clock & 3)
    } else {
        clock as i64 as u64
    }
}

/// Whether `ret` asks for the call to be restarted (`-ERESTART*`).
fn is_restart(ret: i64) -> bool {
    (-(bindings::ERESTART_RESTARTBLOCK as i64)..=-(bindings::ERESTARTSYS as i64)).contains(&ret)
}

/// Calls that run with a signal mask of their own for their duration,
/// which a task restores on its way back to user mode.
fn sets_sigmask(nr: u32) -> bool {
    use nr::*;
    matches!(
        nr,
        PPOLL | PSELECT6 | EPOLL_PWAIT | EPOLL_PWAIT2 | IO_PGETEVENTS
    )
}

/// Whom a call is run for.
pub(crate) struct Owner {
    /// The registered thread; a reference is held for as long as the
    /// registration lives, so its `task_struct` (and the credentials it
    /// points to) outlive every systhread, even one that finishes a call
    /// after the owner exited.
    pub(crate) task: kernel::types::ARef<kernel::task::Task>,
    /// Its thread id, as its own pid namespace sees it.
    pub(crate) tid: i32,
}

impl Owner {
    /// The owner's `task_struct`.
    pub(crate) fn raw(&self) -> RawTask {
        thread::raw(&self.task)
    }
}

/// The result of [`run`].
pub(crate) enum Outcome {
    /// The call ran (or was emulated) with this result.
    Ran(i64),
    /// The call was refused, unrun, with this result.
    Refused(i64),
    /// Run without blocking, the call would have slept interruptibly: it
    /// did nothing and may be run again (by a systhread).
    WouldBlock,
}

/// The result of a call `flexsc_run_entry()` refused: `LONG_MIN` there
/// (`FLEXSC_REFUSED_UNKNOWN`) means as an unknown number, `-ENOSYS`.
fn unrun(ret: i64) -> i64 {
    if ret == i64::MIN {
        -(bindings::ENOSYS as i64)
    } else {
        ret
    }
}

/// Where and how [`run`] runs a call.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A systhread, to the end: a call may sleep as long as it needs.
    Systhread,
    /// A systhread that must not block (a rescuer with a full pool): the
    /// call runs with an interruption pending, so that an interruptible
    /// sleep returns at once, and is then [`Outcome::WouldBlock`].
    Probe,
    /// The owner itself, in `flexsc_wait()`, as [`Mode::Probe`]: what
    /// would block is left to the systhreads.
    Inline,
}

/// What `flexsc_run_entry()` does with a call (`enum flexsc_action` in
/// `glue.c`).
const ACT_RUN: i32 = 0;
const ACT_REFUSE: i32 = 1;
const ACT_VALUE: i32 = 2;
const ACT_KEYS: i32 = 3;

/// Runs `call` for `owner` in the current thread (a systhread, or the owner
/// itself in [`Mode::Inline`]); `regs` is the thread's scratch `pt_regs`.
/// Around the run it calls `enter`/`leave` (the concurrency management
/// tracks blocking only inside them). A call interrupted for a group stop
/// or the freezer is restarted as a direct call would be, unless
/// `give_up()` (which handles the systhread's signals) says the systhread
/// must stop: then, and when the call's own signal mask let a signal in,
/// it completes with `-EINTR`.
///
/// Everything from the seccomp verdict to the audit exit record happens in
/// one call into C, `flexsc_run_entry()`; the policy and the emulations are
/// computed here, inline.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run(
    owner: &Owner,
    follower: &Follower,
    regs: *mut bindings::pt_regs,
    call: &Call,
    mode: Mode,
    enter: impl FnOnce(),
    leave: impl FnOnce(),
    mut give_up: impl FnMut() -> bool,
) -> Outcome {
    let mut run = Call {
        nr: call.nr,
        index: call.index,
        args: call.args,
    };
    let (action, value) = match policy(run.nr, &run.args) {
        Policy::Run => (ACT_RUN, 0),
        Policy::Refuse => (ACT_REFUSE, 0),
        Policy::Gettid => (ACT_VALUE, owner.tid as i64),
        Policy::Keys => (ACT_KEYS, 0),
        Policy::SelfPid(n) => {
            if run.args[n] == 0 {
                run.args[n] = owner.tid as u64;
            }
            (ACT_RUN, 0)
        }
        Policy::ThreadClock => {
            run.args[0] = owner_clock(run.args[0], owner.tid);
            (ACT_RUN, 0)
        }
    };
    if mode == Mode::Inline && sets_sigmask(run.nr) {
        return Outcome::WouldBlock;
    }
    let flags = match mode {
        Mode::Systhread => 0,
        Mode::Probe => ffi::RUN_NONBLOCK,
        Mode::Inline => ffi::RUN_NONBLOCK | ffi::RUN_INLINE,
    };
    let task = owner.raw();
    let mut refused = false;
    let once = |run: &Call, refused: &mut bool| -> i64 {
        // SAFETY: `task` is valid (see `Owner::task`); the cache is the
        // follower's (or null for the owner itself); `regs` is current's
        // scratch; `run` is a call in kernel memory. The calls that would
        // look at the systhread's own registers or identity are refused by
        // the policy; an unknown number runs `sys_ni_syscall`.
        unsafe {
            ffi::flexsc_run_entry(
                task,
                owner.tid,
                follower.cache(),
                regs,
                run,
                action,
                value as _,
                flags,
                refused,
            ) as i64
        }
    };

    enter();
    if mode != Mode::Systhread {
        let ret = once(&run, &mut refused);
        leave();
        if refused {
            return Outcome::Refused(unrun(ret));
        }
        if is_restart(ret) || ret == -(bindings::EINTR as i64) {
            return Outcome::WouldBlock;
        }
        return Outcome::Ran(ret);
    }
    let ret = loop {
        let ret = once(&run, &mut refused);
        if refused || !is_restart(ret) {
            break ret;
        }
        let own_mask = !thread::signal_pending();
        if own_mask && ret != -(bindings::ERESTARTNOINTR as i64) {
            // Nothing of the systhread's is pending: a signal the call's
            // own mask let in interrupted it, and went on to the process.
            break -(bindings::EINTR as i64);
        }
        if give_up() {
            break -(bindings::EINTR as i64);
        }
        if ret == -(bindings::ERESTART_RESTARTBLOCK as i64) {
            run.nr = nr::RESTART_SYSCALL;
        }
    };
    leave();
    if refused {
        Outcome::Refused(unrun(ret))
    } else {
        Outcome::Ran(ret)
    }
}
