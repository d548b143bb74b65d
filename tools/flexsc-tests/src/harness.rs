//! A small kselftest-style harness: every test runs in a forked child with a
//! time limit, so a crash, a hang or a leak in one cannot hide another's
//! result; the parent prints TAP.

use std::io::Write;
use std::time::Duration;

/// What a test returns: `Err` with a reason on failure.
pub type TestResult = Result<(), String>;

/// A test: its name, its time limit, and its body.
pub struct Test {
    pub name: &'static str,
    pub timeout: Duration,
    pub body: fn() -> TestResult,
}

/// Fails the test with a formatted reason unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!("{}:{}: {}", file!(), line!(), format!($($fmt)+)));
        }
    };
}

/// Fails the test unless `left == right`, printing both.
#[macro_export]
macro_rules! ensure_eq {
    ($left:expr, $right:expr) => {{
        let (l, r) = (&$left, &$right);
        if l != r {
            return Err(format!(
                "{}:{}: {} == {} failed: {:?} != {:?}",
                file!(),
                line!(),
                stringify!($left),
                stringify!($right),
                l,
                r
            ));
        }
    }};
}

fn flush() {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
}

/// Runs `body` in a child process; returns its verdict.
fn run_one(test: &Test) -> TestResult {
    flush();
    // SAFETY: The suite is single-threaded when it forks.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: Plain libc calls in the child.
        unsafe { libc::alarm(test.timeout.as_secs().max(1) as u32) };
        let code = match (test.body)() {
            Ok(()) => 0,
            Err(why) => {
                for line in why.lines() {
                    println!("# {line}");
                }
                1
            }
        };
        flush();
        // SAFETY: Leave without running the parent's atexit handlers.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: `pid` is our child.
    if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
        return Err(format!("waitpid: {}", std::io::Error::last_os_error()));
    }
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Ok(())
    } else if libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGALRM {
        Err(format!("timed out after {:?}", test.timeout))
    } else if libc::WIFSIGNALED(status) {
        Err(format!("killed by signal {}", libc::WTERMSIG(status)))
    } else {
        Err(format!("exit status {}", libc::WEXITSTATUS(status)))
    }
}

/// Whether `name` is selected by `filter`: comma-separated terms, a test
/// is selected when its name contains a plain term (or there is none) and
/// no term that starts with `-`.
fn selected(name: &str, filter: &str) -> bool {
    let terms: Vec<&str> = filter.split(',').filter(|t| !t.is_empty()).collect();
    let (out, inc): (Vec<&str>, Vec<&str>) = terms.iter().partition(|t| t.starts_with('-'));
    (inc.is_empty() || inc.iter().any(|t| name.contains(t)))
        && !out.iter().any(|t| name.contains(&t[1..]))
}

/// Runs `tests` selected by `filter` (see [`selected`]; all if empty) and
/// prints TAP. Returns the number of failures.
pub fn run(tests: &[Test], filter: &str) -> usize {
    let selected: Vec<&Test> = tests.iter().filter(|t| selected(t.name, filter)).collect();
    println!("TAP version 13");
    println!("1..{}", selected.len());
    let mut failed = 0;
    for (i, test) in selected.iter().enumerate() {
        match run_one(test) {
            Ok(()) => println!("ok {} {}", i + 1, test.name),
            Err(why) => {
                failed += 1;
                println!("# {}: {}", test.name, why);
                println!("not ok {} {}", i + 1, test.name);
            }
        }
        flush();
    }
    println!("# {} passed, {} failed", selected.len() - failed, failed);
    failed
}
