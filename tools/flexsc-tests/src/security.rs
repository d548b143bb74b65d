//! The engine against a hostile or self-sandboxing process: every test here
//! reproduces a hole that was found in the booted kernel (docs/security.md
//! lists them) and checks that it is closed, with the exact errno and with
//! nothing lost or leaked.

use crate::harness::TestResult;
use crate::util::*;
use crate::{ensure, ensure_eq};
use flexsc::abi;
use flexsc::raw;
use std::ffi::CString;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const ENOSYS: i64 = -(libc::ENOSYS as i64);
const EPERM: i64 = -(libc::EPERM as i64);

fn registered_with(n: u32, f: impl FnOnce(&mut abi::Params)) -> Result<Region, String> {
    let region = Region::new(n);
    region
        .with_params(f)
        .map_err(|e| format!("register: {e}"))?;
    Ok(region)
}

fn registered(n: u32) -> Result<Region, String> {
    registered_with(n, |_| {})
}

fn cstr(s: &str) -> CString {
    CString::new(s).unwrap()
}

fn ts(secs: i64, nsecs: i64) -> libc::timespec {
    libc::timespec {
        tv_sec: secs,
        tv_nsec: nsecs,
    }
}

// ---------------------------------------------------------------------------
// 1. Credentials: both of a systhread's credentials follow the owner's.

const KEYCTL_GET_KEYRING_ID: u64 = 0;
const KEYCTL_JOIN_SESSION_KEYRING: u64 = 1;
const KEYCTL_SEARCH: u64 = 10;
const KEYCTL_SET_REQKEY_KEYRING: u64 = 14;
const KEYCTL_SESSION_TO_PARENT: u64 = 18;
const KEY_SPEC_THREAD_KEYRING: i32 = -1;
const KEY_SPEC_PROCESS_KEYRING: i32 = -2;
const KEY_SPEC_SESSION_KEYRING: i32 = -3;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_SYS_BOOT: u32 = 22;

/// A key serial as a syscall argument (sign-extended, as the C ABI does).
fn serial(id: i32) -> u64 {
    id as i64 as u64
}

/// Drops `cap` from this thread's effective and permitted sets (raw
/// capset: this thread only). Returns the new effective set's low word.
fn drop_cap(cap: u32) -> Result<u32, String> {
    let mut hdr = [0x2008_0522u32, 0]; // _LINUX_CAPABILITY_VERSION_3, pid 0
    let mut data = [0u32; 6]; // {effective, permitted, inheritable} x 2
    ensure_eq!(
        direct(
            libc::SYS_capget,
            [
                hdr.as_mut_ptr() as u64,
                data.as_mut_ptr() as u64,
                0,
                0,
                0,
                0
            ]
        ),
        0
    );
    data[0] &= !(1 << cap);
    data[1] &= !(1 << cap);
    ensure_eq!(
        direct(
            libc::SYS_capset,
            [hdr.as_mut_ptr() as u64, data.as_ptr() as u64, 0, 0, 0, 0]
        ),
        0
    );
    Ok(data[0])
}

/// capget(pid 0) through FlexSC reports the registered thread's
/// capabilities after it dropped one (the systhread's objective
/// credentials follow too, not only the subjective ones).
pub fn capget_sees_owner_creds() -> TestResult {
    let r = registered(8)?;
    let capget = |r: &Region| -> Result<u32, String> {
        let mut hdr = [0x2008_0522u32, 0];
        let mut data = [0u32; 6];
        let ret = r.call(
            libc::SYS_capget,
            [
                hdr.as_mut_ptr() as u64,
                data.as_mut_ptr() as u64,
                0,
                0,
                0,
                0,
            ],
        )?;
        ensure_eq!(ret, 0);
        Ok(data[0])
    };
    let before = capget(&r)?;
    ensure!(
        before & (1 << CAP_SYS_BOOT) != 0,
        "root lacks CAP_SYS_BOOT: {before:#x}"
    );
    let now = drop_cap(CAP_SYS_BOOT)?;
    ensure_eq!(capget(&r)?, now);
    Ok(())
}

/// Keyring calls that would install a keyring into "this thread's"
/// credentials (commit_creds() from a systhread) are refused; the others
/// act on the registered thread's keyrings. None reaches the BUG in
/// commit_creds() (task->cred != task->real_cred), which today kills the
/// systhread and leaves an unkillable process.
pub fn keyring_calls_after_cred_change() -> TestResult {
    let pins0 = pins();
    let r = registered(8)?;
    // The owner's credentials change under the systhread.
    ensure!(
        direct(
            libc::SYS_keyctl,
            [KEYCTL_JOIN_SESSION_KEYRING, 0, 0, 0, 0, 0]
        ) > 0,
        "direct keyctl(JOIN_SESSION_KEYRING) failed"
    );
    drop_cap(CAP_SYS_BOOT)?;
    for (what, args) in [
        ("join", [KEYCTL_JOIN_SESSION_KEYRING, 0, 0, 0, 0, 0]),
        ("set_reqkey", [KEYCTL_SET_REQKEY_KEYRING, 1, 0, 0, 0, 0]),
        (
            "session_to_parent",
            [KEYCTL_SESSION_TO_PARENT, 0, 0, 0, 0, 0],
        ),
        (
            "create thread keyring",
            [
                KEYCTL_GET_KEYRING_ID,
                serial(KEY_SPEC_THREAD_KEYRING),
                1,
                0,
                0,
                0,
            ],
        ),
        (
            "create process keyring",
            [
                KEYCTL_GET_KEYRING_ID,
                serial(KEY_SPEC_PROCESS_KEYRING),
                1,
                0,
                0,
                0,
            ],
        ),
    ] {
        ensure!(
            r.call(libc::SYS_keyctl, args)? == ENOSYS,
            "keyctl {what} was not refused"
        );
    }
    let ty = cstr("user");
    let desc = cstr("flexsc-key");
    let add_key = |ring: i32| {
        r.call(
            libc::SYS_add_key,
            [
                ty.as_ptr() as u64,
                desc.as_ptr() as u64,
                b"v".as_ptr() as u64,
                1,
                serial(ring),
                0,
            ],
        )
    };
    ensure_eq!(add_key(KEY_SPEC_THREAD_KEYRING)?, ENOSYS);
    ensure_eq!(add_key(KEY_SPEC_PROCESS_KEYRING)?, ENOSYS);
    // The owner has a session keyring now: the key lands in it.
    let key = add_key(KEY_SPEC_SESSION_KEYRING)?;
    ensure!(key > 0, "add_key to the session keyring: {key}");
    let search = |ring: i32| {
        direct(
            libc::SYS_keyctl,
            [
                KEYCTL_SEARCH,
                serial(ring),
                ty.as_ptr() as u64,
                desc.as_ptr() as u64,
                0,
                0,
            ],
        )
    };
    ensure_eq!(search(KEY_SPEC_SESSION_KEYRING), key);
    // Once the owner has a thread keyring, FlexSC uses it.
    ensure!(
        direct(
            libc::SYS_keyctl,
            [
                KEYCTL_GET_KEYRING_ID,
                serial(KEY_SPEC_THREAD_KEYRING),
                1,
                0,
                0,
                0
            ]
        ) > 0,
        "direct thread keyring"
    );
    let key2 = add_key(KEY_SPEC_THREAD_KEYRING)?;
    ensure!(key2 > 0, "add_key to the thread keyring: {key2}");
    ensure_eq!(search(KEY_SPEC_THREAD_KEYRING), key2);
    // SAFETY: Plain call.
    ensure_eq!(r.call(libc::SYS_getpid, [0; 6])?, unsafe { libc::getpid() }
        as i64);
    ensure_eq!(raw::exit().ok(), Some(0));
    ensure_eq!(pins(), pins0);
    Ok(())
}

// ---------------------------------------------------------------------------
// 2. Seccomp: the owner's verdict, out of band, first, with ip 0.

const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_ALLOW: u32 = 0x7fff_0000;

fn bpf(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// A filter that returns `action` for `nr` and allows everything else.
fn filter_for(nr: i64, action: u32) -> [libc::sock_filter; 4] {
    [
        bpf(0x20, 0, 0, 0),         // ld [nr]
        bpf(0x15, 0, 1, nr as u32), // jeq nr
        bpf(0x06, 0, 0, action),    // ret action
        bpf(0x06, 0, 0, RET_ALLOW), // ret ALLOW
    ]
}

/// Installs `prog` as a seccomp filter of this thread.
fn install_filter(prog: &[libc::sock_filter]) -> Result<(), String> {
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut _,
    };
    // SAFETY: Plain calls with valid pointers.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(format!("no_new_privs: {}", std::io::Error::last_os_error()));
        }
        if libc::syscall(libc::SYS_seccomp, 1, 0, &fprog) != 0 {
            return Err(format!("seccomp: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// SECCOMP_RET_ERRNO with data 0 ("pretend it worked") completes the entry
/// with 0 and does not run the call.
pub fn seccomp_errno_zero_skips() -> TestResult {
    let r = registered(8)?;
    let mut p = [0i32; 2];
    // SAFETY: Plain call.
    ensure_eq!(unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_NONBLOCK) }, 0);
    install_filter(&filter_for(libc::SYS_write, RET_ERRNO))?;
    let write = [p[1] as u64, b"leak".as_ptr() as u64, 4, 0, 0, 0];
    ensure_eq!(direct(libc::SYS_write, write), 0);
    ensure_eq!(r.call(libc::SYS_write, write)?, 0);
    let mut buf = [0u8; 8];
    // SAFETY: Valid buffer.
    let n = unsafe { libc::read(p[0], buf.as_mut_ptr().cast(), 8) };
    ensure!(n < 0, "the filtered write ran: {n} bytes in the pipe");
    Ok(())
}

/// The owner's filter comes before FlexSC's own refusals, for every
/// number: ERRNO gives its errno for a call FlexSC refuses and for a
/// number outside the table.
pub fn seccomp_judges_refused_numbers() -> TestResult {
    let r = registered(8)?;
    install_filter(&filter_for(libc::SYS_fork, RET_ERRNO | libc::EPERM as u32))?;
    install_filter(&filter_for(1000, RET_ERRNO | libc::EACCES as u32))?;
    ensure_eq!(r.call(libc::SYS_fork, [0; 6])?, EPERM);
    ensure_eq!(r.call(1000, [0; 6])?, -(libc::EACCES as i64));
    ensure_eq!(r.call(libc::SYS_vfork, [0; 6])?, ENOSYS);
    Ok(())
}

/// KILL_PROCESS on a number FlexSC refuses kills, as a direct call would.
pub fn seccomp_kill_on_refused_number() -> TestResult {
    let regs0 = stat("registrations");
    let pid = fork_child(|| {
        let Ok(r) = registered(8) else { return 1 };
        if install_filter(&filter_for(libc::SYS_clone, RET_KILL_PROCESS)).is_err() {
            return 2;
        }
        let _ = r.call(libc::SYS_clone, [0; 6]);
        3
    });
    let status = wait_child(pid);
    ensure!(
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSYS,
        "want death by SIGSYS, got status {status:#x}"
    );
    ensure!(
        eventually(Duration::from_secs(5), || stat("registrations") == regs0),
        "registration leaked"
    );
    Ok(())
}

/// Filters see instruction_pointer 0 for entries: a filter that allows
/// getppid only from ip 0 allows it through FlexSC, not directly.
pub fn seccomp_sees_ip_zero() -> TestResult {
    let r = registered(8)?;
    let prog = [
        bpf(0x20, 0, 0, 0),                              // 0: ld [nr]
        bpf(0x15, 0, 5, libc::SYS_getppid as u32),       // 1: jeq getppid ? 2 : 7
        bpf(0x20, 0, 0, 8),                              // 2: ld [ip lo]
        bpf(0x15, 0, 2, 0),                              // 3: jeq 0 ? 4 : 6
        bpf(0x20, 0, 0, 12),                             // 4: ld [ip hi]
        bpf(0x15, 1, 0, 0),                              // 5: jeq 0 ? 7 : 6
        bpf(0x06, 0, 0, RET_ERRNO | libc::EPERM as u32), // 6
        bpf(0x06, 0, 0, RET_ALLOW),                      // 7
    ];
    let ppid = direct(libc::SYS_getppid, [0; 6]);
    install_filter(&prog)?;
    ensure_eq!(direct(libc::SYS_getppid, [0; 6]), EPERM);
    ensure_eq!(r.call(libc::SYS_getppid, [0; 6])?, ppid);
    Ok(())
}

// ---------------------------------------------------------------------------
// 3. Signals: a systhread's mask is invariant, signals are not stolen.

static SIGNALS: AtomicU32 = AtomicU32::new(0);

extern "C" fn count_signal(_: libc::c_int) {
    SIGNALS.fetch_add(1, Ordering::SeqCst);
}

fn catch(sig: i32) {
    // SAFETY: A handler that only bumps an atomic; SA_RESTART off.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = count_signal as extern "C" fn(libc::c_int) as usize;
        libc::sigaction(sig, &sa, std::ptr::null_mut());
    }
}

fn block(sig: i32, how: i32) {
    // SAFETY: A zeroed set, plain calls.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::sigprocmask(how, &set, std::ptr::null_mut());
    }
}

/// A ppoll with a signal mask through FlexSC leaves the systhread's mask
/// as it was: a process-directed signal that the registered thread blocks
/// stays pending for it (today the systhread, left unblocked, takes the
/// signal, drops it, and leaves: the registration is dead).
pub fn sigmask_stays_blocked() -> TestResult {
    SIGNALS.store(0, Ordering::SeqCst);
    catch(libc::SIGUSR1);
    let r = registered_with(8, |p| p.nsysthreads = 1)?;
    let empty = [0u64; 1];
    let t = ts(0, 1_000_000);
    ensure_eq!(
        r.call(
            libc::SYS_ppoll,
            [0, 0, &t as *const _ as u64, empty.as_ptr() as u64, 8, 0]
        )?,
        0
    );
    block(libc::SIGUSR1, libc::SIG_BLOCK);
    // SAFETY: Signal this process.
    ensure_eq!(unsafe { libc::kill(libc::getpid(), libc::SIGUSR1) }, 0);
    std::thread::sleep(Duration::from_millis(200));
    ensure_eq!(SIGNALS.load(Ordering::SeqCst), 0);
    block(libc::SIGUSR1, libc::SIG_UNBLOCK);
    ensure!(
        eventually(Duration::from_secs(2), || SIGNALS.load(Ordering::SeqCst)
            == 1),
        "the signal was lost"
    );
    r.submit(0, libc::SYS_getpid, [0; 6]);
    // SAFETY: Plain call.
    ensure_eq!(
        r.wait_done(0, Duration::from_secs(3))?,
        unsafe { libc::getpid() } as i64
    );
    Ok(())
}

/// The call's own mask holds for its duration: a signal it lets through
/// interrupts the ppoll with -EINTR, and is still delivered to the process.
pub fn ppoll_mask_emulated() -> TestResult {
    SIGNALS.store(0, Ordering::SeqCst);
    catch(libc::SIGUSR1);
    block(libc::SIGUSR1, libc::SIG_BLOCK);
    let r = registered_with(8, |p| p.nsysthreads = 1)?;
    let empty = [0u64; 1];
    let t = ts(5, 0);
    r.submit(
        0,
        libc::SYS_ppoll,
        [0, 0, &t as *const _ as u64, empty.as_ptr() as u64, 8, 0],
    );
    ensure!(
        eventually(Duration::from_secs(2), || r
            .status(0)
            .load(Ordering::SeqCst)
            == abi::BUSY),
        "ppoll not running"
    );
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    // SAFETY: Signal this process.
    ensure_eq!(unsafe { libc::kill(libc::getpid(), libc::SIGUSR1) }, 0);
    ensure_eq!(
        r.wait_done(0, Duration::from_secs(3))?,
        -(libc::EINTR as i64)
    );
    ensure!(start.elapsed() < Duration::from_secs(2), "not interrupted");
    ensure_eq!(SIGNALS.load(Ordering::SeqCst), 0);
    block(libc::SIGUSR1, libc::SIG_UNBLOCK);
    ensure!(
        eventually(Duration::from_secs(2), || SIGNALS.load(Ordering::SeqCst)
            == 1),
        "the signal was lost"
    );
    // SAFETY: Plain call.
    ensure_eq!(r.call(libc::SYS_getpid, [0; 6])?, unsafe { libc::getpid() }
        as i64);
    Ok(())
}

/// A blocking read through FlexSC survives a group stop (SIGSTOP, then
/// SIGCONT) as a direct read does: it is restarted, not failed with EINTR.
pub fn stop_restarts_call() -> TestResult {
    let mut p = [0i32; 2];
    let mut ready = [0i32; 2];
    // SAFETY: Plain calls.
    unsafe {
        ensure_eq!(libc::pipe(p.as_mut_ptr()), 0);
        ensure_eq!(libc::pipe(ready.as_mut_ptr()), 0);
    }
    let pid = fork_child(|| {
        let Ok(r) = registered(8) else { return 1 };
        let mut buf = [0u8; 4];
        r.submit(
            0,
            libc::SYS_read,
            [p[0] as u64, buf.as_mut_ptr() as u64, 4, 0, 0, 0],
        );
        // SAFETY: Plain call.
        unsafe { libc::write(ready[1], b"r".as_ptr().cast(), 1) };
        match r.wait_done(0, Duration::from_secs(20)) {
            Ok(1) if buf[0] == b'x' => 0,
            Ok(ret) if ret < 0 => (10 - ret) as i32,
            _ => 2,
        }
    });
    let mut b = [0u8; 1];
    // SAFETY: Plain calls on our pipes and child.
    unsafe {
        ensure_eq!(libc::read(ready[0], b.as_mut_ptr().cast(), 1), 1);
        std::thread::sleep(Duration::from_millis(200));
        ensure_eq!(libc::kill(pid, libc::SIGSTOP), 0);
        let mut status = 0;
        ensure_eq!(libc::waitpid(pid, &mut status, libc::WUNTRACED), pid);
        ensure!(libc::WIFSTOPPED(status), "child not stopped: {status:#x}");
        std::thread::sleep(Duration::from_millis(100));
        ensure_eq!(libc::kill(pid, libc::SIGCONT), 0);
        std::thread::sleep(Duration::from_millis(200));
        ensure_eq!(libc::write(p[1], b"x".as_ptr().cast(), 1), 1);
    }
    let status = wait_child(pid);
    ensure!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child: status {status:#x} (exit 10+errno: the read failed with that errno)"
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// 4. cpusets and idle polling.

const CGROOT: &str = "/sys/fs/cgroup";

fn mount_cgroup2() -> Result<(), String> {
    if std::path::Path::new(&format!("{CGROOT}/cgroup.procs")).exists() {
        return Ok(());
    }
    std::fs::create_dir_all(CGROOT).map_err(|e| format!("{CGROOT}: {e}"))?;
    let (src, dir, ty) = (cstr("cgroup2"), cstr(CGROOT), cstr("cgroup2"));
    // SAFETY: Valid strings.
    let r = unsafe { libc::mount(src.as_ptr(), dir.as_ptr(), ty.as_ptr(), 0, std::ptr::null()) };
    ensure!(r == 0, "mount cgroup2: {}", std::io::Error::last_os_error());
    Ok(())
}

fn write_file(path: &str, v: &str) -> Result<(), String> {
    std::fs::write(path, v).map_err(|e| format!("{path} <- {v}: {e}"))
}

/// A process confined to CPU 0 by its cpuset cannot put systhreads on CPU 1
/// (-EINVAL: the mask is empty once intersected with the cpuset), and by
/// default its systhreads stay inside the cpuset.
pub fn cpuset_confines_systhreads() -> TestResult {
    mount_cgroup2()?;
    write_file(&format!("{CGROOT}/cgroup.subtree_control"), "+cpuset")?;
    // SAFETY: Plain call.
    let me = unsafe { libc::getpid() };
    let cg = format!("{CGROOT}/flexsc-cpuset-{me}");
    std::fs::create_dir_all(&cg).map_err(|e| format!("{cg}: {e}"))?;
    write_file(&format!("{cg}/cpuset.cpus"), "0")?;
    write_file(&format!("{cg}/cgroup.procs"), &me.to_string())?;
    let result = (|| -> TestResult {
        let region = Region::new(8);
        let mask = [1u64 << 1];
        let r = region.with_params(|p| {
            p.cpu_mask = mask.as_ptr() as u64;
            p.cpu_mask_size = 8;
        });
        ensure_eq!(errno_of(r), Some(libc::EINVAL));
        ensure_eq!(region.register().ok(), Some(0));
        for _ in 0..50 {
            let mut cpu = u32::MAX;
            ensure_eq!(
                region.call(
                    libc::SYS_getcpu,
                    [&mut cpu as *mut u32 as u64, 0, 0, 0, 0, 0]
                )?,
                0
            );
            ensure_eq!(cpu, 0);
        }
        ensure_eq!(raw::exit().ok(), Some(0));
        Ok(())
    })();
    write_file(&format!("{CGROOT}/cgroup.procs"), &me.to_string())?;
    let _ = std::fs::remove_dir(&cg);
    result
}

/// idle_us is capped: even asked to poll for over an hour, an idle
/// systhread goes to sleep within about a second (and says so).
pub fn idle_polling_bounded() -> TestResult {
    let r = registered_with(8, |p| {
        p.idle_us = u32::MAX;
        p.nsysthreads = 1;
    })?;
    // SAFETY: Plain call.
    ensure_eq!(r.call(libc::SYS_getpid, [0; 6])?, unsafe { libc::getpid() }
        as i64);
    ensure!(
        eventually(Duration::from_secs(3), || r.hdr_flags() & abi::NEED_WAKEUP
            != 0),
        "a systhread still polls 3 s after its last call"
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// 5. Per-thread state a systhread stands in for.

/// setpriority/getpriority: PRIO_PROCESS (0) with who 0 is the registered
/// thread; PRIO_PGRP (1) with who 0 is the caller's process group.
pub fn priority_who() -> TestResult {
    let r = registered(8)?;
    ensure_eq!(r.call(libc::SYS_setpriority, [0, 0, 3, 0, 0, 0])?, 0);
    // The raw call returns 20 - nice.
    ensure_eq!(direct(libc::SYS_getpriority, [0, 0, 0, 0, 0, 0]), 17);
    ensure_eq!(r.call(libc::SYS_getpriority, [0, 0, 0, 0, 0, 0])?, 17);
    let pgrp = direct(libc::SYS_getpriority, [1, 0, 0, 0, 0, 0]);
    ensure!(pgrp > 0, "direct getpriority(PRIO_PGRP): {pgrp}");
    ensure_eq!(r.call(libc::SYS_getpriority, [1, 0, 0, 0, 0, 0])?, pgrp);
    Ok(())
}

/// Calls whose meaning is "this thread" and that cannot be emulated are
/// refused: PI futexes (they would write the systhread's tid into the
/// futex word), signalfd, protection keys, memory policy, LSM self
/// attributes, RUSAGE_THREAD, and ioctls that assume a task returning to
/// user mode (KVM) or act on the caller's terminal job control.
pub fn thread_calls_refused() -> TestResult {
    let r = registered(8)?;
    let word = AtomicU32::new(0);
    let w = word.as_ptr() as u64;
    for op in [6u64, 7, 8, 11, 12, 13, 6 | 128, 13 | 128] {
        ensure!(
            r.call(libc::SYS_futex, [w, op, 0, 0, 0, 0])? == ENOSYS,
            "futex op {op} was not refused"
        );
        ensure_eq!(word.load(Ordering::SeqCst), 0);
    }
    // A plain futex wake still runs.
    ensure_eq!(r.call(libc::SYS_futex, [w, 1, 1, 0, 0, 0])?, 0);
    let mask = [0u64; 1];
    let null = cstr("/dev/null");
    let fd = direct(
        libc::SYS_openat,
        [
            libc::AT_FDCWD as u64,
            null.as_ptr() as u64,
            libc::O_RDONLY as u64,
            0,
            0,
            0,
        ],
    );
    ensure!(fd >= 0, "open /dev/null: {fd}");
    let fd = fd as u64;
    for (what, nr, args) in [
        (
            "signalfd",
            libc::SYS_signalfd,
            [u64::MAX, mask.as_ptr() as u64, 8, 0, 0, 0],
        ),
        (
            "signalfd4",
            libc::SYS_signalfd4,
            [u64::MAX, mask.as_ptr() as u64, 8, 0, 0, 0],
        ),
        ("pkey_alloc", libc::SYS_pkey_alloc, [0; 6]),
        ("pkey_free", libc::SYS_pkey_free, [1, 0, 0, 0, 0, 0]),
        ("pkey_mprotect", libc::SYS_pkey_mprotect, [0, 0, 0, 0, 0, 0]),
        ("set_mempolicy", libc::SYS_set_mempolicy, [0; 6]),
        ("get_mempolicy", libc::SYS_get_mempolicy, [0; 6]),
        ("lsm_get_self_attr", 459, [0; 6]),
        (
            "getrusage(RUSAGE_THREAD)",
            libc::SYS_getrusage,
            [1, 0, 0, 0, 0, 0],
        ),
        ("KVM_RUN", libc::SYS_ioctl, [fd, 0xae80, 0, 0, 0, 0]),
        ("KVM_CREATE_VM", libc::SYS_ioctl, [fd, 0xae01, 0, 0, 0, 0]),
        ("TIOCSPGRP", libc::SYS_ioctl, [fd, 0x5410, 0, 0, 0, 0]),
        ("TIOCSCTTY", libc::SYS_ioctl, [fd, 0x540e, 0, 0, 0, 0]),
        ("TIOCNOTTY", libc::SYS_ioctl, [fd, 0x5422, 0, 0, 0, 0]),
    ] {
        let got = r.call(nr, args)?;
        ensure!(got == ENOSYS, "{what} was not refused: {got}");
    }
    // What stays: other ioctls, and RUSAGE_SELF.
    ensure_eq!(
        r.call(libc::SYS_ioctl, [fd, 0x5401, 0, 0, 0, 0])?,
        -(libc::ENOTTY as i64)
    );
    let mut ru = [0u8; 256];
    ensure_eq!(
        r.call(libc::SYS_getrusage, [0, ru.as_mut_ptr() as u64, 0, 0, 0, 0])?,
        0
    );
    Ok(())
}

/// A signal a call raises for its caller goes to the registered thread:
/// a write to a broken pipe through FlexSC kills the process with SIGPIPE,
/// and a write past RLIMIT_FSIZE with SIGXFSZ, as direct calls would.
pub fn signals_raised_for_caller() -> TestResult {
    let pid = fork_child(|| {
        let Ok(r) = registered(8) else { return 1 };
        let mut p = [0i32; 2];
        // SAFETY: Plain calls. (Rust's runtime ignores SIGPIPE: restore the
        // default action, under which a direct write would kill.)
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            libc::pipe(p.as_mut_ptr());
            libc::close(p[0]);
        }
        let ret = r.call(
            libc::SYS_write,
            [p[1] as u64, b"x".as_ptr() as u64, 1, 0, 0, 0],
        );
        std::thread::sleep(Duration::from_millis(500));
        if ret != Ok(-(libc::EPIPE as i64)) {
            return 2;
        }
        3
    });
    let status = wait_child(pid);
    ensure!(
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGPIPE,
        "want death by SIGPIPE, got status {status:#x}"
    );
    let pid = fork_child(|| {
        let Ok(r) = registered(8) else { return 1 };
        let path = cstr("/tmp/flexsc-fsize");
        let lim = libc::rlimit {
            rlim_cur: 1,
            rlim_max: 1,
        };
        // SAFETY: Plain calls.
        let fd = unsafe {
            libc::setrlimit(libc::RLIMIT_FSIZE, &lim);
            libc::open(
                path.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
                0o600,
            )
        };
        let w = [fd as u64, b"xy".as_ptr() as u64, 1, 0, 0, 0];
        if r.call(libc::SYS_write, w) != Ok(1) {
            return 2;
        }
        let ret = r.call(libc::SYS_write, w);
        std::thread::sleep(Duration::from_millis(500));
        if ret != Ok(-(libc::EFBIG as i64)) {
            return 4;
        }
        3
    });
    let status = wait_child(pid);
    ensure!(
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGXFSZ,
        "want death by SIGXFSZ, got status {status:#x}"
    );
    Ok(())
}

fn thread_cputime_ns(clock: u64, via: Option<&Region>) -> Result<i64, String> {
    let mut t = ts(0, 0);
    let args = [clock, &mut t as *mut _ as u64, 0, 0, 0, 0];
    let ret = match via {
        Some(r) => r.call(libc::SYS_clock_gettime, args)?,
        None => direct(libc::SYS_clock_gettime, args),
    };
    ensure_eq!(ret, 0);
    Ok(t.tv_sec * 1_000_000_000 + t.tv_nsec)
}

/// CLOCK_THREAD_CPUTIME_ID (and the per-thread CPU clock of "this thread",
/// pid 0) through FlexSC measure the registered thread, not the systhread.
pub fn thread_cputime_is_owner() -> TestResult {
    let start = Instant::now();
    while thread_cputime_ns(libc::CLOCK_THREAD_CPUTIME_ID as u64, None)? < 300_000_000 {
        ensure!(start.elapsed() < Duration::from_secs(20), "no CPU time");
    }
    let r = registered(8)?;
    // MAKE_THREAD_CPUCLOCK(0, CPUCLOCK_SCHED): this thread's scheduler clock.
    let self_sched = (!0i64 << 3 | 4 | 2) as u64;
    for clock in [libc::CLOCK_THREAD_CPUTIME_ID as u64, self_sched] {
        let before = thread_cputime_ns(clock, None)?;
        let via = thread_cputime_ns(clock, Some(&r))?;
        ensure!(
            via >= before && via - before < 1_000_000_000,
            "clock {clock:#x}: direct {before} ns, through FlexSC {via} ns"
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// 6. Sandboxes the owner builds after registering.

/// After unshare(CLONE_FILES) and closing a secret, entries can no longer
/// reach the old file table: they fail with -EPERM until the thread
/// registers again, which follows its new table.
pub fn unshare_files_followed() -> TestResult {
    let r = registered(8)?;
    let secret = cstr("/tmp/flexsc-secret");
    std::fs::write("/tmp/flexsc-secret", b"secret").map_err(|e| e.to_string())?;
    // SAFETY: Valid string.
    let fd = unsafe { libc::open(secret.as_ptr(), libc::O_RDONLY) };
    ensure!(fd >= 0, "open");
    let getfd = [fd as u64, libc::F_GETFD as u64, 0, 0, 0, 0];
    ensure_eq!(r.call(libc::SYS_fcntl, getfd)?, 0);
    ensure_eq!(
        direct(libc::SYS_unshare, [libc::CLONE_FILES as u64, 0, 0, 0, 0, 0]),
        0
    );
    ensure_eq!(direct(libc::SYS_close, [fd as u64, 0, 0, 0, 0, 0]), 0);
    ensure_eq!(r.call(libc::SYS_fcntl, getfd)?, EPERM);
    ensure_eq!(r.call(libc::SYS_getpid, [0; 6])?, EPERM);
    // close_range(CLOSE_RANGE_UNSHARE) is the same unsharing.
    ensure_eq!(raw::exit().ok(), Some(0));
    ensure_eq!(r.register().ok(), Some(0));
    ensure_eq!(r.call(libc::SYS_fcntl, getfd)?, -(libc::EBADF as i64));
    // SAFETY: Valid string.
    let fd2 = unsafe { libc::open(secret.as_ptr(), libc::O_RDONLY) };
    ensure!(fd2 >= 0, "open");
    ensure_eq!(
        direct(libc::SYS_close_range, [0, u32::MAX as u64, 2, 0, 0, 0]), // CLOSE_RANGE_UNSHARE
        0
    );
    ensure_eq!(
        r.call(
            libc::SYS_fcntl,
            [fd2 as u64, libc::F_GETFD as u64, 0, 0, 0, 0]
        )?,
        EPERM
    );
    Ok(())
}

/// After unshare(CLONE_FS) and chroot, entries cannot open what lies
/// outside the new root.
pub fn chroot_followed() -> TestResult {
    std::fs::create_dir_all("/tmp/flexsc-jail").map_err(|e| e.to_string())?;
    std::fs::write("/tmp/flexsc-outside", b"x").map_err(|e| e.to_string())?;
    let r = registered(8)?;
    let outside = cstr("/tmp/flexsc-outside");
    let open = [
        libc::AT_FDCWD as u64,
        outside.as_ptr() as u64,
        libc::O_RDONLY as u64,
        0,
        0,
        0,
    ];
    let fd = r.call(libc::SYS_openat, open)?;
    ensure!(fd >= 0, "open before the chroot: {fd}");
    ensure_eq!(
        direct(libc::SYS_unshare, [libc::CLONE_FS as u64, 0, 0, 0, 0, 0]),
        0
    );
    let jail = cstr("/tmp/flexsc-jail");
    // SAFETY: Valid strings.
    unsafe {
        ensure_eq!(libc::chroot(jail.as_ptr()), 0);
        ensure_eq!(libc::chdir(c"/".as_ptr()), 0);
    }
    ensure_eq!(direct(libc::SYS_openat, open), -(libc::ENOENT as i64));
    ensure_eq!(r.call(libc::SYS_openat, open)?, EPERM);
    Ok(())
}

/// After unshare of the UTS and network namespaces, entries fail with
/// -EPERM until the thread registers again, which follows them.
pub fn namespaces_followed() -> TestResult {
    let r = registered(8)?;
    let mut uts = [0u8; 390];
    let uname = [uts.as_mut_ptr() as u64, 0, 0, 0, 0, 0];
    ensure_eq!(r.call(libc::SYS_uname, uname)?, 0);
    let flags = (libc::CLONE_NEWUTS | libc::CLONE_NEWNET) as u64;
    ensure_eq!(direct(libc::SYS_unshare, [flags, 0, 0, 0, 0, 0]), 0);
    // SAFETY: Valid buffer.
    ensure_eq!(
        unsafe { libc::sethostname(b"sandbox".as_ptr().cast(), 7) },
        0
    );
    ensure_eq!(r.call(libc::SYS_uname, uname)?, EPERM);
    ensure_eq!(
        r.call(
            libc::SYS_socket,
            [libc::AF_INET as u64, libc::SOCK_STREAM as u64, 0, 0, 0, 0]
        )?,
        EPERM
    );
    ensure_eq!(raw::exit().ok(), Some(0));
    ensure_eq!(r.register().ok(), Some(0));
    ensure_eq!(r.call(libc::SYS_uname, uname)?, 0);
    ensure!(
        &uts[65..72] == b"sandbox",
        "nodename after re-registering: {:?}",
        &uts[65..80]
    );
    Ok(())
}

/// Once the process uses protection keys, entries fail with -EPERM: a
/// systhread's PKRU is not the thread's, and kernel accesses to user memory
/// obey PKRU.
pub fn pkeys_refused() -> TestResult {
    let r = registered(8)?;
    // SAFETY: Plain call.
    ensure_eq!(r.call(libc::SYS_getpid, [0; 6])?, unsafe { libc::getpid() }
        as i64);
    let key = direct(libc::SYS_pkey_alloc, [0, 0, 0, 0, 0, 0]);
    ensure!(
        key > 0,
        "pkey_alloc: {key} (the test kernel and CPU must have PKU)"
    );
    ensure_eq!(r.call(libc::SYS_getpid, [0; 6])?, EPERM);
    ensure_eq!(direct(libc::SYS_pkey_free, [key as u64, 0, 0, 0, 0, 0]), 0);
    // SAFETY: Plain call.
    ensure_eq!(r.call(libc::SYS_getpid, [0; 6])?, unsafe { libc::getpid() }
        as i64);
    Ok(())
}

// ---------------------------------------------------------------------------
// 7. Smaller holes.

fn map(len: usize, flags: i32, fd: i32) -> *mut libc::c_void {
    // SAFETY: A fresh mapping.
    unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            flags,
            fd,
            0,
        )
    }
}

/// The region must be private anonymous memory: shared memory (anonymous,
/// memfd) or a file mapping would let another process submit with the
/// owner's rights. -EINVAL, and nothing pinned.
pub fn region_must_be_private_anon() -> TestResult {
    let pins0 = pins();
    let pages0 = stat("pinned_pages");
    let regs0 = stat("registrations");
    let name = cstr("flexsc");
    // SAFETY: Plain calls.
    let memfd = unsafe { libc::memfd_create(name.as_ptr(), 0) };
    ensure!(memfd >= 0, "memfd_create");
    // SAFETY: Plain call.
    ensure_eq!(unsafe { libc::ftruncate(memfd, 2 * PAGE as i64) }, 0);
    let both = map(
        2 * PAGE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
        -1,
    );
    // The second page of `both` replaced by a shared one.
    // SAFETY: Inside our own mapping.
    let second = unsafe {
        libc::mmap(
            both.cast::<u8>().add(PAGE).cast(),
            PAGE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
            -1,
            0,
        )
    };
    ensure!(second != libc::MAP_FAILED, "mmap fixed");
    for (what, addr) in [
        (
            "shared anonymous",
            map(PAGE, libc::MAP_SHARED | libc::MAP_ANONYMOUS, -1),
        ),
        ("shared memfd", map(PAGE, libc::MAP_SHARED, memfd)),
        ("private memfd", map(PAGE, libc::MAP_PRIVATE, memfd)),
        ("private, then shared", both),
    ] {
        ensure!(addr != libc::MAP_FAILED, "mmap {what}");
        let nentries = if addr == both { 100 } else { 8 };
        let p = abi::Params {
            region: addr as u64,
            nentries,
            ..Default::default()
        };
        ensure!(
            errno_of(register(&p)) == Some(libc::EINVAL),
            "{what} region: {:?}",
            register(&p)
        );
    }
    ensure_eq!(pins(), pins0);
    ensure_eq!(stat("pinned_pages"), pages0);
    ensure_eq!(stat("registrations"), regs0);
    // The private anonymous page alone is fine.
    let p = abi::Params {
        region: both as u64,
        nentries: 8,
        ..Default::default()
    };
    ensure_eq!(register(&p).ok(), Some(0));
    ensure_eq!(raw::exit().ok(), Some(0));
    Ok(())
}

/// flexsc_wait(min_complete > nentries) can never be satisfied: -EINVAL.
pub fn wait_more_than_nentries() -> TestResult {
    let _r = registered(8)?;
    let t = ts(0, 10_000_000);
    ensure_eq!(errno_of(raw::wait(9, Some(&t))), Some(libc::EINVAL));
    ensure_eq!(errno_of(raw::wait(u32::MAX, None)), Some(libc::EINVAL));
    ensure_eq!(errno_of(raw::wait(8, Some(&t))), Some(libc::ETIMEDOUT));
    Ok(())
}

/// flexsc_wait honours sub-millisecond timeouts (hrtimer, not jiffies):
/// the median of 21 waits of 200 us is well under one jiffy (4 ms at
/// HZ=250; a busy TCG host makes single waits noisy, hence the median).
pub fn wait_short_timeout() -> TestResult {
    let _r = registered(8)?;
    let t = ts(0, 200_000);
    let mut took = Vec::new();
    for _ in 0..21 {
        let start = Instant::now();
        ensure_eq!(errno_of(raw::wait(1, Some(&t))), Some(libc::ETIMEDOUT));
        took.push(start.elapsed());
    }
    took.sort();
    ensure!(
        took[0] >= Duration::from_micros(200),
        "too early: {:?}",
        took[0]
    );
    ensure!(
        took[10] < Duration::from_millis(2),
        "200 us timeouts took {:?} (median)",
        took[10]
    );
    Ok(())
}

/// The state letter of /proc/<pid>/stat.
fn proc_state(pid: i32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit(')')
        .next()
        .and_then(|s| s.trim().chars().next())
        .unwrap_or('?')
}

/// A call stuck in a killable sleep (an unanswered fanotify permission
/// event) does not leave its owner in D state at flexsc_exit(), and
/// signals the owner gets meanwhile do not cut the wait short: when
/// flexsc_exit() returns, no call is in flight (the caller may free its
/// buffers). Teardown waits killably but off the load average (state I),
/// and holds what the systhread needs by reference.
pub fn teardown_not_in_d_state() -> TestResult {
    let path = "/tmp/flexsc-perm";
    std::fs::write(path, b"x").map_err(|e| e.to_string())?;
    let cpath = cstr(path);
    // SAFETY: Plain calls.
    let fan = unsafe { libc::fanotify_init(libc::FAN_CLASS_CONTENT, libc::O_RDONLY as u32) };
    ensure!(
        fan >= 0,
        "fanotify_init: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: Valid string.
    let m = unsafe {
        libc::fanotify_mark(
            fan,
            libc::FAN_MARK_ADD,
            libc::FAN_OPEN_PERM,
            libc::AT_FDCWD,
            cpath.as_ptr(),
        )
    };
    ensure!(m == 0, "fanotify_mark: {}", std::io::Error::last_os_error());
    let regs0 = stat("registrations");
    let pid = fork_child(|| {
        let Ok(r) = registered(8) else { return 1 };
        r.submit(
            0,
            libc::SYS_openat,
            [
                libc::AT_FDCWD as u64,
                cpath.as_ptr() as u64,
                libc::O_RDONLY as u64,
                0,
                0,
                0,
            ],
        );
        while r.status(0).load(Ordering::SeqCst) != abi::BUSY {
            std::thread::yield_now();
        }
        std::thread::sleep(Duration::from_millis(100));
        // Signals keep arriving while flexsc_exit() waits.
        catch(libc::SIGUSR1);
        // SAFETY: Plain calls.
        let (pid, tid) = unsafe { (libc::getpid(), libc::gettid()) };
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        let pest = std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                // SAFETY: Signal the registered thread.
                unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, libc::SIGUSR1) };
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let exited = raw::exit();
        let status = r.status(0).load(Ordering::SeqCst);
        stop.store(true, Ordering::SeqCst);
        let _ = pest.join();
        if exited.is_err() {
            return 2;
        }
        if status != abi::DONE {
            return 3; // flexsc_exit() returned with the call in flight
        }
        0
    });
    std::thread::sleep(Duration::from_millis(1000));
    let state = proc_state(pid);
    // Answer the permission event: the call completes, the child ends.
    let mut ev = [0u8; 4096];
    // SAFETY: Valid buffer.
    let n = unsafe { libc::read(fan, ev.as_mut_ptr().cast(), ev.len()) };
    ensure!(n >= 24, "no fanotify event: {n}");
    let fd = i32::from_ne_bytes(ev[16..20].try_into().unwrap());
    let resp = [fd as u32, libc::FAN_ALLOW];
    // SAFETY: Valid buffer.
    ensure_eq!(unsafe { libc::write(fan, resp.as_ptr().cast(), 8) }, 8);
    let status = wait_child(pid);
    ensure!(state != 'D', "the owner sat in D state in flexsc_exit");
    ensure!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child status {status:#x} (exit 3: flexsc_exit returned with a call in flight)"
    );
    ensure!(
        eventually(Duration::from_secs(5), || stat("registrations") == regs0),
        "registration leaked"
    );
    Ok(())
}

/// kernel.flexsc_disabled: 0 allows, 1 allows only CAP_SYS_ADMIN, 2 forbids
/// (-EPERM), as io_uring_disabled does.
pub fn disabled_sysctl() -> TestResult {
    let path = "/proc/sys/kernel/flexsc_disabled";
    let set = |v: &str| write_file(path, v);
    let result = (|| -> TestResult {
        let now = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        ensure_eq!(now.trim(), "0");
        ensure!(set("3").is_err(), "3 accepted");
        let region = Region::new(8);
        set("2")?;
        ensure_eq!(errno_of(region.register()), Some(libc::EPERM));
        set("1")?;
        ensure_eq!(region.register().ok(), Some(0));
        ensure_eq!(raw::exit().ok(), Some(0));
        let pid = fork_child(|| {
            if drop_cap(CAP_SYS_ADMIN).is_err() {
                return 1;
            }
            match errno_of(Region::new(8).register()) {
                Some(libc::EPERM) => 0,
                _ => 2,
            }
        });
        let status = wait_child(pid);
        ensure!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "without CAP_SYS_ADMIN: {status:#x}"
        );
        set("0")?;
        ensure_eq!(region.register().ok(), Some(0));
        Ok(())
    })();
    set("0")?;
    result
}

/// With every worker of the pool blocked in a read, the registration keeps
/// going: the slot's rescuer runs calls without blocking, gives back the
/// ones that would block, and runs the writes that unblock the reads.
pub fn full_pool_keeps_scanning() -> TestResult {
    const N: u32 = 100;
    let r = registered_with(2 * N, |p| p.nsysthreads = 1)?;
    let mut pipes = Vec::new();
    for _ in 0..N {
        let mut p = [0i32; 2];
        // SAFETY: Plain call.
        ensure_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0);
        pipes.push(p);
    }
    let mut bufs = vec![[0u8; 1]; N as usize];
    for i in 0..N {
        let b = bufs[i as usize].as_mut_ptr() as u64;
        r.submit(
            i,
            libc::SYS_read,
            [pipes[i as usize][0] as u64, b, 1, 0, 0, 0],
        );
    }
    std::thread::sleep(Duration::from_secs(2));
    for i in 0..N {
        let w = [
            pipes[i as usize][1] as u64,
            b"x".as_ptr() as u64,
            1,
            0,
            0,
            0,
        ];
        r.submit(N + i, libc::SYS_write, w);
    }
    for i in 0..N {
        ensure_eq!(r.wait_done(N + i, Duration::from_secs(20))?, 1);
    }
    for i in 0..N {
        ensure_eq!(r.wait_done(i, Duration::from_secs(20))?, 1);
        ensure_eq!(bufs[i as usize][0], b'x');
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Audit: an entry makes the records of a system call.

/// A minimal audit daemon on a netlink socket.
struct Audit {
    fd: i32,
    seq: u32,
}

const AUDIT_SET: u16 = 1001;
const AUDIT_ADD_RULE: u16 = 1011;
const AUDIT_DEL_RULE: u16 = 1012;
const AUDIT_SYSCALL: u16 = 1300;

impl Audit {
    fn open() -> Result<Audit, String> {
        // SAFETY: Plain call.
        let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_AUDIT) };
        ensure!(
            fd >= 0,
            "netlink audit socket: {}",
            std::io::Error::last_os_error()
        );
        Ok(Audit { fd, seq: 0 })
    }

    fn send(&mut self, ty: u16, payload: &[u8]) -> Result<(), String> {
        self.seq += 1;
        let mut msg = Vec::new();
        msg.extend_from_slice(&(16 + payload.len() as u32).to_ne_bytes());
        msg.extend_from_slice(&ty.to_ne_bytes());
        msg.extend_from_slice(&(1u16 | 4).to_ne_bytes()); // NLM_F_REQUEST | NLM_F_ACK
        msg.extend_from_slice(&self.seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(payload);
        // SAFETY: A zeroed sockaddr_nl is the kernel's address.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: Valid buffers.
        let n = unsafe {
            libc::sendto(
                self.fd,
                msg.as_ptr().cast(),
                msg.len(),
                0,
                (&addr as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        ensure!(
            n == msg.len() as isize,
            "audit send: {}",
            std::io::Error::last_os_error()
        );
        Ok(())
    }

    /// Becomes the audit daemon (`on`) or stops being it.
    fn set(&mut self, on: bool) -> Result<(), String> {
        // struct audit_status: mask, enabled, failure, pid, ...
        let mut st = [0u32; 10];
        st[0] = 1 | 4; // AUDIT_STATUS_ENABLED | AUDIT_STATUS_PID
        st[1] = on as u32;
        // SAFETY: Plain call.
        st[3] = if on {
            (unsafe { libc::getpid() }) as u32
        } else {
            0
        };
        let bytes: Vec<u8> = st.iter().flat_map(|w| w.to_ne_bytes()).collect();
        self.send(AUDIT_SET, &bytes)
    }

    /// An exit rule for syscall `nr` on x86_64.
    fn rule(&mut self, nr: i64, add: bool) -> Result<(), String> {
        // struct audit_rule_data: flags, action, field_count, mask[64],
        // fields[64], values[64], fieldflags[64], buflen.
        let mut r = vec![0u32; 3 + 4 * 64 + 1];
        r[0] = 4; // AUDIT_FILTER_EXIT
        r[1] = 2; // AUDIT_ALWAYS
        r[2] = 1;
        r[3 + (nr / 32) as usize] |= 1 << (nr % 32);
        r[3 + 64] = 11; // AUDIT_ARCH
        r[3 + 128] = 0xc000_003e; // AUDIT_ARCH_X86_64
        r[3 + 192] = 0x4000_0000; // Audit_equal
        let bytes: Vec<u8> = r.iter().flat_map(|w| w.to_ne_bytes()).collect();
        self.send(if add { AUDIT_ADD_RULE } else { AUDIT_DEL_RULE }, &bytes)
    }

    /// The AUDIT_SYSCALL records received within `limit` that contain
    /// both `needle` and `and`.
    fn syscall_records(&self, needle: &str, and: &str, limit: Duration) -> usize {
        let start = Instant::now();
        let mut found = 0;
        let mut buf = vec![0u8; 65536];
        while start.elapsed() < limit {
            // SAFETY: Valid buffer.
            let n = unsafe {
                libc::recv(
                    self.fd,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n <= 0 {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            let mut off = 0usize;
            while off + 16 <= n as usize {
                let len = u32::from_ne_bytes(buf[off..off + 4].try_into().unwrap()) as usize;
                let ty = u16::from_ne_bytes(buf[off + 4..off + 6].try_into().unwrap());
                if len < 16 || off + len > n as usize {
                    break;
                }
                let text = String::from_utf8_lossy(&buf[off + 16..off + len]);
                if ty == AUDIT_SYSCALL && text.contains(needle) && text.contains(and) {
                    found += 1;
                }
                off += (len + 3) & !3;
            }
        }
        found
    }
}

impl Drop for Audit {
    fn drop(&mut self) {
        // SAFETY: Our socket.
        unsafe { libc::close(self.fd) };
    }
}

/// Each entry makes the audit records a direct system call makes: with
/// an exit rule for getppid, a process that calls getppid once directly
/// and once through FlexSC is recorded twice. (The process starts after
/// auditing is on: a task gets its audit context when it is created.)
pub fn audit_records() -> TestResult {
    let mut audit = Audit::open()?;
    audit.set(true)?;
    audit.rule(libc::SYS_getppid, true)?;
    let result = (|| -> TestResult {
        let pid = fork_child(|| {
            direct(libc::SYS_getppid, [0; 6]);
            let Ok(r) = registered(8) else { return 1 };
            match r.call(libc::SYS_getppid, [0; 6]) {
                Ok(ppid) if ppid > 0 => 0,
                _ => 2,
            }
        });
        let status = wait_child(pid);
        ensure!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "child: {status:#x}"
        );
        let needle = format!("syscall={} ", libc::SYS_getppid);
        let mine = format!(" pid={pid} ");
        let records = audit.syscall_records(&needle, &mine, Duration::from_millis(1000));
        ensure_eq!(records, 2);
        Ok(())
    })();
    audit.rule(libc::SYS_getppid, false)?;
    audit.set(false)?;
    result
}
