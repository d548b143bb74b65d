//! libflexsc, the C library, as a user gets it: `make libflexsc` installs
//! it (library, header, pkg-config file, man pages) and builds these
//! programs against the installation with `pkg-config --static --cflags
//! --libs libflexsc`; here they run in the booted kernel.

use crate::harness::TestResult;
use crate::util::{self, PAGE};
use crate::{ensure, ensure_eq};
use flexsc::abi::Params;
use std::process::Command;

/// `FLEXSC_REGISTER_RING` and `FLEXSC_RING_REGION_LEN(n)` of the uapi
/// header, written out so that this probe does not depend on the crate.
const REGISTER_RING: u64 = 1 << 0;
const fn ring_region_len(n: usize) -> usize {
    64 + 64 * n + 128 + 4 * n
}

/// Whether the running kernel takes `FLEXSC_REGISTER_RING`: registers a
/// ring of 4 entries (and unregisters), or sees `EINVAL` from a kernel
/// without the extension. The library must pick the same mode.
fn kernel_has_ring() -> Result<bool, String> {
    let len = ring_region_len(4).div_ceil(PAGE) * PAGE;
    // SAFETY: A fresh anonymous mapping, unmapped below.
    let region = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    ensure!(region != libc::MAP_FAILED, "mmap failed");
    let params = Params {
        region: region as u64,
        nentries: 4,
        flags: REGISTER_RING,
        ..Default::default()
    };
    let has_ring = match util::register(&params) {
        Ok(_) => {
            flexsc::raw::exit().map_err(|e| format!("flexsc_exit: {e}"))?;
            Ok(true)
        }
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(false),
        Err(e) => Err(format!("flexsc_register with the ring: {e}")),
    };
    // SAFETY: Our mapping; no registration uses it any more.
    unsafe { libc::munmap(region, len) };
    has_ring
}

fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    ensure!(
        out.status.success(),
        "{program}: {:?}\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(stdout)
}

/// libflexsc's own test against this kernel: detection, set-up in the mode
/// the kernel offers (and plain v1 on request), tags, batches, for_each,
/// timeouts, a blocked call, teardown rules; every check must pass.
pub fn installed_library() -> TestResult {
    let mode = if kernel_has_ring()? { "ring" } else { "v1" };
    let stdout = run("/bin/libflexsc-test", &["--expect", mode])?;
    ensure!(
        stdout.contains(&format!("# default queue: {mode}, 8 entries")),
        "{stdout}"
    );
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("libflexsc-test: "))
        .ok_or_else(|| format!("no summary: {stdout}"))?;
    ensure!(summary.ends_with(", 0 failed"), "{stdout}");
    let passed: u32 = summary
        .split(", ")
        .find_map(|p| p.strip_suffix(" passed"))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("bad summary: {summary}"))?;
    ensure!(passed >= 40, "only {passed} checks ran: {stdout}");
    Ok(())
}

/// The value of `"key":` in one of the benchmark's JSON lines.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = &line[start..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim_matches('"'))
}

/// The C benchmark: getpid directly and through libflexsc in batches of
/// 32, polled and waited, each result checked by the program.
pub fn c_bench() -> TestResult {
    let mode = if kernel_has_ring()? { "ring" } else { "v1" };
    let stdout = run("/bin/flexsc-c-bench", &["--ms", "100", "--json"])?;
    let lines: Vec<&str> = stdout.lines().collect();
    ensure_eq!(lines.len(), 3);
    for (line, engine) in lines
        .iter()
        .zip(["direct", "libflexsc-poll", "libflexsc-wait"])
    {
        ensure_eq!(field(line, "engine"), Some(engine));
        ensure_eq!(field(line, "workload"), Some("getpid"));
        if engine != "direct" {
            ensure_eq!(field(line, "mode"), Some(mode));
            ensure_eq!(field(line, "batch"), Some("32"));
        }
        let calls: u64 = field(line, "calls")
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let ns: f64 = field(line, "ns_per_call")
            .and_then(|c| c.parse().ok())
            .unwrap_or(0.0);
        ensure!(calls > 0 && ns > 0.0, "{line}");
        let how = if engine == "direct" { "" } else { mode };
        println!("# {engine} {how}: {ns:.0} ns/call");
    }
    Ok(())
}
