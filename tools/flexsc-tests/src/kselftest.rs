//! The series' own kselftest (tools/testing/selftests/flexsc in the kernel
//! tree, built static by the Makefile), run inside this suite so that its
//! results go through the same TAP judge.

use crate::ensure;
use crate::harness::TestResult;

/// Runs /bin/flexsc_test; passes only if every test passed (a skip, which
/// the kselftest reports when FlexSC is missing, fails here: the test
/// kernel has FlexSC).
pub fn flexsc() -> TestResult {
    let out = std::process::Command::new("/bin/flexsc_test")
        .output()
        .map_err(|e| format!("/bin/flexsc_test: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in stdout.lines() {
        println!("# kselftest: {line}");
    }
    ensure!(out.status.success(), "flexsc_test: {:?}", out.status);
    let totals = stdout
        .lines()
        .find(|l| l.starts_with("# Totals:"))
        .unwrap_or("");
    let count = |what: &str| -> Option<u32> {
        totals
            .split_whitespace()
            .find_map(|t| t.strip_prefix(what)?.parse().ok())
    };
    ensure!(
        count("pass:").unwrap_or(0) > 0 && count("fail:") == Some(0) && count("skip:") == Some(0),
        "flexsc_test: {totals}"
    );
    Ok(())
}
