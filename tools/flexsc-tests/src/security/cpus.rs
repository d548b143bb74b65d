//! 4. cpusets and idle polling.

use super::*;

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
