//! 1. Credentials: both of a systhread's credentials follow the owner's.

use super::*;

const KEYCTL_GET_KEYRING_ID: u64 = 0;
const KEYCTL_JOIN_SESSION_KEYRING: u64 = 1;
const KEYCTL_SEARCH: u64 = 10;
const KEYCTL_SET_REQKEY_KEYRING: u64 = 14;
const KEYCTL_SESSION_TO_PARENT: u64 = 18;
const KEY_SPEC_THREAD_KEYRING: i32 = -1;
const KEY_SPEC_PROCESS_KEYRING: i32 = -2;
const KEY_SPEC_SESSION_KEYRING: i32 = -3;

/// A key serial as a syscall argument (sign-extended, as the C ABI does).
fn serial(id: i32) -> u64 {
    id as i64 as u64
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
