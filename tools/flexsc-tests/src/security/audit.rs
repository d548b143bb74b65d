//! Audit: an entry makes the records of a system call.

use super::*;

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
