//! The HTTP server on the FlexSC runtime, against the same server on
//! blocking threads and on epoll, and hyper on flexsc-rt, tokio and
//! tokio-uring: every response checked under concurrent load, after the
//! runtime's in-kernel checks (cross-thread wakes, cancelled calls, close
//! on drop), which `compare` runs first.

use crate::ensure;
use crate::harness::TestResult;

pub fn http_three_ways() -> TestResult {
    let out = std::process::Command::new("/bin/flexsc-httpd")
        .args(["compare", "--secs", "2", "--conns", "8", "--port", "8300"])
        .output()
        .map_err(|e| format!("/bin/flexsc-httpd: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in stdout.lines() {
        println!("# {line}");
    }
    ensure!(out.status.success(), "compare failed: {:?}", out.status);
    for mode in [
        "threads",
        "epoll",
        "flexsc",
        "hyper-flexsc",
        "hyper-tokio",
        "hyper-uring",
    ] {
        ensure!(
            stdout
                .lines()
                .any(|l| l.split_whitespace().next() == Some(mode)
                    && l.split_whitespace()
                        .nth(1)
                        .is_some_and(|n| n.parse::<u64>().is_ok_and(|n| n > 0))),
            "no requests served by {mode}"
        );
    }
    Ok(())
}
