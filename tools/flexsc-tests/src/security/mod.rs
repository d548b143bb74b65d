//! The engine against a hostile or self-sandboxing process: every test here
//! reproduces a hole that was found in the booted kernel (docs/security.md
//! lists them) and checks that it is closed, with the exact errno and with
//! nothing lost or leaked. One module per kind of hole; the tests are
//! re-exported here, so their names are `security::<test>`.

use crate::harness::TestResult;
use crate::util::*;
use crate::{ensure, ensure_eq};
use flexsc::abi;
use flexsc::raw;
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

fn ts(secs: i64, nsecs: i64) -> libc::timespec {
    libc::timespec {
        tv_sec: secs,
        tv_nsec: nsecs,
    }
}

mod audit;
mod cpus;
mod creds;
mod limits;
mod sandbox;
mod seccomp;
mod signals;
mod thread_state;

pub use audit::*;
pub use cpus::*;
pub use creds::*;
pub use limits::*;
pub use sandbox::*;
pub use seccomp::*;
pub use signals::*;
pub use thread_state::*;

// Shared by several kinds of test.

const CAP_SYS_ADMIN: u32 = 21;
const CAP_SYS_BOOT: u32 = 22;

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

fn write_file(path: &str, v: &str) -> Result<(), String> {
    std::fs::write(path, v).map_err(|e| format!("{path} <- {v}: {e}"))
}
