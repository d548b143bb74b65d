// SPDX-License-Identifier: GPL-2.0

//! What a call may do when a systhread runs it, and running it.
//!
//! A systhread is a thread of the registering process: it shares the
//! process's memory, file table, fs (cwd, root, umask), signal handlers and
//! namespaces, so most calls mean exactly what they mean when the
//! registered thread makes them. Its credentials follow the registered
//! thread's at every call, and so does seccomp. What remains are calls whose
//! meaning is "this thread": the systhread is not the registered thread, so
//! they are emulated where that is exact and refused (`-ENOSYS`) where it is
//! not. The table is in `docs/semantics.md`.

use kernel::{bindings, prelude::*};

use crate::entry::Call;
use crate::thread::RawTask;

/// What the engine does with a system call number.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Policy {
    /// Run it through the kernel's table.
    Run,
    /// Complete with the registered thread's tid.
    Gettid,
    /// Run it with the registered thread's tid in place of a 0 ("this
    /// thread") in argument `n`.
    SelfPid(usize),
    /// Complete with `-ENOSYS`, unrun.
    Refuse,
}

/// x86_64 numbers, from `arch/x86/entry/syscalls/syscall_64.tbl`.
mod nr {
    pub(super) const RT_SIGPROCMASK: u32 = 14;
    pub(super) const RT_SIGRETURN: u32 = 15;
    pub(super) const PAUSE: u32 = 34;
    pub(super) const CLONE: u32 = 56;
    pub(super) const FORK: u32 = 57;
    pub(super) const VFORK: u32 = 58;
    pub(super) const EXECVE: u32 = 59;
    pub(super) const EXIT: u32 = 60;
    pub(super) const PTRACE: u32 = 101;
    pub(super) const SETUID: u32 = 105;
    pub(super) const SETGID: u32 = 106;
    pub(super) const SETREUID: u32 = 113;
    pub(super) const SETREGID: u32 = 114;
    pub(super) const SETGROUPS: u32 = 116;
    pub(super) const SETRESUID: u32 = 117;
    pub(super) const SETRESGID: u32 = 119;
    pub(super) const SETFSUID: u32 = 122;
    pub(super) const SETFSGID: u32 = 123;
    pub(super) const CAPSET: u32 = 126;
    pub(super) const RT_SIGPENDING: u32 = 127;
    pub(super) const RT_SIGTIMEDWAIT: u32 = 128;
    pub(super) const RT_SIGSUSPEND: u32 = 130;
    pub(super) const SIGALTSTACK: u32 = 131;
    pub(super) const PERSONALITY: u32 = 135;
    pub(super) const GETPRIORITY: u32 = 140;
    pub(super) const SETPRIORITY: u32 = 141;
    pub(super) const SCHED_SETPARAM: u32 = 142;
    pub(super) const SCHED_GETPARAM: u32 = 143;
    pub(super) const SCHED_SETSCHEDULER: u32 = 144;
    pub(super) const SCHED_GETSCHEDULER: u32 = 145;
    pub(super) const MODIFY_LDT: u32 = 154;
    pub(super) const PRCTL: u32 = 157;
    pub(super) const ARCH_PRCTL: u32 = 158;
    pub(super) const IOPL: u32 = 172;
    pub(super) const IOPERM: u32 = 173;
    pub(super) const GETTID: u32 = 186;
    pub(super) const SCHED_SETAFFINITY: u32 = 203;
    pub(super) const SCHED_GETAFFINITY: u32 = 204;
    pub(super) const SET_THREAD_AREA: u32 = 205;
    pub(super) const GET_THREAD_AREA: u32 = 211;
    pub(super) const SET_TID_ADDRESS: u32 = 218;
    pub(super) const RESTART_SYSCALL: u32 = 219;
    pub(super) const EXIT_GROUP: u32 = 231;
    pub(super) const IOPRIO_SET: u32 = 251;
    pub(super) const IOPRIO_GET: u32 = 252;
    pub(super) const UNSHARE: u32 = 272;
    pub(super) const SET_ROBUST_LIST: u32 = 273;
    pub(super) const SETNS: u32 = 308;
    pub(super) const SCHED_SETATTR: u32 = 314;
    pub(super) const SCHED_GETATTR: u32 = 315;
    pub(super) const SECCOMP: u32 = 317;
    pub(super) const EXECVEAT: u32 = 322;
    pub(super) const RSEQ: u32 = 334;
    pub(super) const URETPROBE: u32 = 335;
    pub(super) const IO_URING_SETUP: u32 = 425;
    pub(super) const IO_URING_ENTER: u32 = 426;
    pub(super) const IO_URING_REGISTER: u32 = 427;
    pub(super) const CLONE3: u32 = 435;
    pub(super) const LANDLOCK_RESTRICT_SELF: u32 = 446;
    pub(super) const MAP_SHADOW_STACK: u32 = 453;
    pub(super) const LSM_SET_SELF_ATTR: u32 = 460;
    pub(super) const FLEXSC_REGISTER: u32 = 463;
    pub(super) const FLEXSC_WAIT: u32 = 464;
    pub(super) const FLEXSC_EXIT: u32 = 465;
    /// The x32 numbers start here; nothing at or above it is x86_64.
    pub(super) const X32_START: u32 = 512;
}

/// `PRIO_PROCESS` and `IOPRIO_WHO_PROCESS`: "who" is a thread id, 0 for
/// the calling thread.
const WHO_PROCESS: u64 = 1;

fn policy(nr: u32, args: &[u64; 6]) -> Policy {
    use nr::*;
    match nr {
        // Thread creation and program replacement act on the calling
        // thread's registers and identity.
        EXIT | EXIT_GROUP | FORK | VFORK | CLONE | CLONE3 | EXECVE | EXECVEAT => Policy::Refuse,
        // Signal state of the calling thread (a systhread blocks all
        // signals and returns to no user frame).
        RT_SIGRETURN | RT_SIGPROCMASK | RT_SIGSUSPEND | RT_SIGPENDING | RT_SIGTIMEDWAIT
        | SIGALTSTACK | PAUSE | RESTART_SYSCALL => Policy::Refuse,
        // Per-thread identity, credentials and sandboxing: they would change
        // the systhread, not the registered thread.
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
        | SETGROUPS => Policy::Refuse,
        // io_uring ties its rings and task work to the submitting thread.
        IO_URING_SETUP | IO_URING_ENTER | IO_URING_REGISTER => Policy::Refuse,
        // No FlexSC from FlexSC.
        FLEXSC_REGISTER | FLEXSC_WAIT | FLEXSC_EXIT => Policy::Refuse,
        GETTID => Policy::Gettid,
        // "pid 0" means the calling thread.
        SCHED_SETAFFINITY | SCHED_GETAFFINITY | SCHED_SETSCHEDULER | SCHED_GETSCHEDULER
        | SCHED_SETPARAM | SCHED_GETPARAM | SCHED_SETATTR | SCHED_GETATTR => Policy::SelfPid(0),
        GETPRIORITY | SETPRIORITY | IOPRIO_SET | IOPRIO_GET if args[0] == WHO_PROCESS => {
            Policy::SelfPid(1)
        }
        n if n >= X32_START => Policy::Refuse,
        _ => Policy::Run,
    }
}

/// `-ERESTART*` codes never reach user space: a call a systhread runs is
/// not restarted, so they become `-EINTR`.
fn user_visible(ret: i64) -> i64 {
    const ERESTARTSYS: i64 = 512;
    const ERESTART_RESTARTBLOCK: i64 = 516;
    if (-ERESTART_RESTARTBLOCK..=-ERESTARTSYS).contains(&ret) {
        EINTR.to_errno() as i64
    } else {
        ret
    }
}

/// Whom a call is run for.
pub(crate) struct Owner {
    /// The registered thread.
    ///
    /// Valid while its registration lives: the thread tears the
    /// registration down, and waits for every systhread, before it exits.
    pub(crate) task: RawTask,
    /// Its thread id, as its own pid namespace sees it.
    pub(crate) tid: i32,
}

/// The result of [`run`].
pub(crate) enum Outcome {
    /// The call ran (or was emulated) with this result.
    Ran(i64),
    /// The call was refused, unrun, with this result.
    Refused(i64),
}

/// Runs `call` for `owner` in the current systhread, around `x64_sys_call`
/// calls `enter`/`leave` (the concurrency management tracks blocking only
/// inside them).
pub(crate) fn run(
    owner: &Owner,
    call: &Call,
    enter: impl FnOnce(),
    leave: impl FnOnce(),
) -> Outcome {
    let mut args = call.args;
    let policy = policy(call.nr, &args);
    if policy == Policy::Refuse {
        return Outcome::Refused(-(bindings::ENOSYS as i64));
    }
    // SAFETY: `owner.task` is valid (see `Owner::task`); `args` has six
    // elements.
    let verdict = unsafe { bindings::seccomp_flexsc_verdict(owner.task, call.nr, args.as_ptr()) };
    if verdict != 0 {
        return Outcome::Refused(verdict as i64);
    }
    match policy {
        Policy::Gettid => return Outcome::Ran(owner.tid as i64),
        Policy::SelfPid(n) if args[n] == 0 => args[n] = owner.tid as u64,
        _ => {}
    }

    // SAFETY: `pt_regs` is plain data.
    let mut regs: bindings::pt_regs = unsafe { core::mem::zeroed() };
    regs.di = args[0] as _;
    regs.si = args[1] as _;
    regs.dx = args[2] as _;
    regs.r10 = args[3] as _;
    regs.r8 = args[4] as _;
    regs.r9 = args[5] as _;
    regs.orig_ax = call.nr as _;
    regs.ax = (-(bindings::ENOSYS as i64)) as _;
    enter();
    // SAFETY: `regs` is a valid `pt_regs` built from the entry's copy; the
    // calls that would look at the systhread's own registers or identity
    // are refused above; an unknown number runs `sys_ni_syscall`.
    let ret = unsafe { bindings::x64_sys_call(&regs, call.nr) };
    leave();
    Outcome::Ran(user_visible(ret as i64))
}
