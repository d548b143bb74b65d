//! The FlexSC test suite. Runs inside a kernel built with CONFIG_FLEXSC and
//! prints TAP (kselftest style); `scripts/run-vm.sh` boots the kernel, runs
//! it and fails the build on any `not ok`, a missing result or a kernel
//! report.
//!
//! Usage: `flexsc-tests [FILTER]` runs the tests whose names contain one of
//! FILTER's comma-separated terms and none of its terms that start with `-`.
//! Without FlexSC in the running kernel every test fails: nothing is
//! skipped silently.

mod api;
mod clib;
mod engine;
mod harness;
mod kselftest;
mod pool;
mod register;
mod ring;
mod security;
mod server;
mod stress;
mod util;

use harness::Test;
use std::time::Duration;

macro_rules! tests {
    ($($module:ident :: $name:ident $(($secs:expr))?),* $(,)?) => {
        &[$(Test {
            name: concat!(stringify!($module), "::", stringify!($name)),
            timeout: Duration::from_secs(tests!(@secs $($secs)?)),
            body: $module::$name,
        }),*]
    };
    (@secs) => { 30 };
    (@secs $secs:expr) => { $secs };
}

const TESTS: &[Test] = tests![
    register::abi_version,
    register::null_params,
    register::bad_params_pointer,
    register::bad_region_pointer,
    register::readonly_region,
    register::misaligned_region,
    register::bad_nentries,
    register::unknown_flags,
    register::size_rules,
    register::empty_cpu_mask,
    register::double_register,
    register::unregistered_exit_and_wait,
    register::register_exit_register,
    register::header_written,
    register::fork_child_unregistered,
    register::thread_exit_unpins,
    register::process_exit_unpins,
    register::wait_bad_timeout,
    register::memlock_limit,
    register::nproc_limit,
    engine::getpid_gettid,
    engine::table,
    engine::fd_interop,
    engine::blocked_read_does_not_block_others(60),
    engine::many_blocked_calls(60),
    engine::refused_and_unknown,
    engine::seccomp_after_register,
    engine::kill_with_blocked_call,
    engine::exit_with_blocked_call,
    engine::exec_with_blocked_call,
    engine::wait_semantics,
    engine::idle_sleep_and_wakeup,
    engine::many_threads(60),
    engine::many_processes(60),
    engine::scribble_while_busy,
    engine::seccomp_kill,
    engine::counters,
    engine::trace_events,
    engine::creds_follow_owner,
    engine::systhreads_on_their_cpu,
    pool::threads_share_systhreads(60),
    pool::exit_leaves_other_calls,
    pool::creds_per_registration(60),
    pool::inline_on_callers_cpu(60),
    pool::unshared_files_own_pool,
    pool::exit_completes_unclaimed,
    security::capget_sees_owner_creds,
    security::keyring_calls_after_cred_change,
    security::seccomp_errno_zero_skips,
    security::seccomp_judges_refused_numbers,
    security::seccomp_kill_on_refused_number,
    security::seccomp_sees_ip_zero,
    security::sigmask_stays_blocked,
    security::ppoll_mask_emulated,
    security::stop_restarts_call(60),
    security::cpuset_confines_systhreads,
    security::idle_polling_bounded,
    security::priority_who,
    security::thread_calls_refused,
    security::signals_raised_for_caller,
    security::thread_cputime_is_owner(60),
    security::unshare_files_followed,
    security::chroot_followed,
    security::namespaces_followed,
    security::pkeys_refused,
    security::region_must_be_private_anon,
    security::wait_more_than_nentries,
    security::wait_short_timeout,
    security::teardown_not_in_d_state,
    security::disabled_sysctl,
    security::full_pool_keeps_scanning(60),
    security::audit_records,
    api::batches_and_tickets,
    api::owned_buffers,
    api::drop_unregisters,
    api::crate_example,
    api::c_example,
    ring::nentries_power_of_two,
    ring::region_too_short,
    ring::getpid_batch,
    ring::wait_counts_completions,
    ring::bogus_indices_skipped,
    ring::v1_header_reserved_zero,
    ring::crate_uses_ring,
    ring::queue_batches_in_order(60),
    ring::registration_both_modes,
    ring::queue_drop_in_flight,
    ring::crate_examples(60),
    clib::installed_library,
    clib::c_bench(60),
    kselftest::flexsc,
    server::http_three_ways(60),
    stress::short(60),
];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--stress") {
        let num = |i: usize, default: u64| {
            args.get(i).map_or(default, |s| {
                let s = s.trim_start_matches("0x");
                u64::from_str_radix(s, if args[i].starts_with("0x") { 16 } else { 10 })
                    .unwrap_or(default)
            })
        };
        let (seed, secs, max) = (num(2, 1), num(3, 60), num(4, 1_000_000));
        match stress::run(seed, secs, max) {
            Ok(()) => {
                println!("stress: 1 passed, 0 failed");
                std::process::exit(0)
            }
            Err(e) => {
                println!("# stress: {e}");
                println!("stress: 0 passed, 1 failed");
                std::process::exit(1)
            }
        }
    }
    let filter = args.get(1).cloned().unwrap_or_default();
    if !flexsc::supported() {
        println!(
            "# FlexSC ABI {} not found at {}: every test will fail",
            flexsc::abi::ABI_VERSION,
            flexsc::ABI_VERSION_PATH
        );
    }
    let failed = harness::run(TESTS, &filter);
    std::process::exit(if failed == 0 { 0 } else { 1 });
}
