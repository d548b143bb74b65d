//! 2. Seccomp: the owner's verdict, out of band, first, with ip 0.

use super::*;

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
