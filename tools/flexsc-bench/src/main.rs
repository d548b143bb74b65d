//! flexsc-bench: system calls through FlexSC against direct calls and
//! io_uring, measured side by side in one run, inside the booted kernel.
//!
//! ```text
//! flexsc-bench [--quick] [--duration-ms N] [--warmup-ms N] [--threads 1,2] [--out DIR]
//! ```
//!
//! Every case runs each user thread pinned to a CPU for a warm-up, then for
//! a fixed duration; throughput is calls per second over that duration and
//! latency is the round trip of one batch (one call for batch 1), from an
//! HDR histogram. Prints a table with ratios to direct calls, and writes
//! `results.json` and `throughput.svg` into DIR.

mod cases;
mod report;

use cases::{Case, Engine, Placement, Workload};
use std::time::Duration;

/// What the run measures, and for how long.
pub struct Config {
    pub warmup: Duration,
    pub duration: Duration,
    pub threads: Vec<usize>,
    pub out: std::path::PathBuf,
}

fn parse_args() -> Config {
    let mut cfg = Config {
        warmup: Duration::from_millis(200),
        duration: Duration::from_millis(1000),
        threads: vec![1, 2],
        out: ".".into(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--quick" => {
                cfg.warmup = Duration::from_millis(50);
                cfg.duration = Duration::from_millis(250);
            }
            "--duration-ms" => {
                cfg.duration =
                    Duration::from_millis(value().parse().unwrap_or_else(|_| usage("bad number")))
            }
            "--warmup-ms" => {
                cfg.warmup =
                    Duration::from_millis(value().parse().unwrap_or_else(|_| usage("bad number")))
            }
            "--threads" => {
                cfg.threads = value()
                    .split(',')
                    .map(|t| t.parse().unwrap_or_else(|_| usage("bad --threads")))
                    .collect()
            }
            "--out" => cfg.out = value().into(),
            "-h" | "--help" => usage(""),
            _ => usage(&format!("unknown argument {a}")),
        }
    }
    cfg
}

fn usage(why: &str) -> ! {
    if !why.is_empty() {
        eprintln!("flexsc-bench: {why}");
    }
    eprintln!("usage: flexsc-bench [--quick] [--duration-ms N] [--warmup-ms N] [--threads 1,2] [--out DIR]");
    std::process::exit(2);
}

/// The standard suite: every workload, direct, FlexSC (batch sizes,
/// systhreads on the same and on another CPU, polling and flexsc_wait) and
/// io_uring (with and without SQPOLL, same batch sizes).
fn suite(cfg: &Config, ncpus: usize) -> Vec<Case> {
    let placements: &[Placement] = if ncpus > 1 {
        &[Placement::SameCpu, Placement::OtherCpu]
    } else {
        &[Placement::SameCpu]
    };
    let mut cases = Vec::new();
    for &threads in &cfg.threads {
        for workload in [Workload::Getpid, Workload::WriteNull, Workload::Pipe] {
            cases.push(Case {
                workload,
                engine: Engine::Direct,
                batch: 1,
                threads,
                placement: Placement::SameCpu,
            });
            for &batch in &[1, 8, 32, 64] {
                // Multi-threaded runs keep to the cases that matter for scaling.
                if threads > 1 && batch != 32 {
                    continue;
                }
                for &placement in placements {
                    for engine in [Engine::FlexscPoll, Engine::FlexscWait] {
                        if threads > 1 && engine == Engine::FlexscWait {
                            continue;
                        }
                        cases.push(Case {
                            workload,
                            engine,
                            batch,
                            threads,
                            placement,
                        });
                    }
                }
                cases.push(Case {
                    workload,
                    engine: Engine::Uring,
                    batch,
                    threads,
                    placement: Placement::SameCpu,
                });
                for &placement in placements {
                    cases.push(Case {
                        workload,
                        engine: Engine::UringSqpoll,
                        batch,
                        threads,
                        placement,
                    });
                }
            }
        }
    }
    cases
}

fn main() {
    let cfg = parse_args();
    if !flexsc::supported() {
        eprintln!(
            "flexsc-bench: this kernel has no FlexSC ABI {}",
            flexsc::abi::ABI_VERSION
        );
        std::process::exit(1);
    }
    // SAFETY: Plain call.
    let ncpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize;
    let cases = suite(&cfg, ncpus);
    let tty = unsafe { libc::isatty(2) } == 1;
    let mut results = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let label = case.label();
        if tty {
            eprint!("\r\x1b[K[{}/{}] {label}", i + 1, cases.len());
        } else {
            eprintln!("# [{}/{}] {label}", i + 1, cases.len());
        }
        match cases::run(case, &cfg, ncpus) {
            Ok(r) => results.push(r),
            Err(e) => eprintln!("\n# {label}: {e}"),
        }
    }
    if tty {
        eprintln!();
    }
    let system = report::system(ncpus);
    report::table(&results, &system);
    if let Err(e) = std::fs::create_dir_all(&cfg.out)
        .and_then(|()| {
            std::fs::write(
                cfg.out.join("results.json"),
                report::json(&results, &system, &cfg),
            )
        })
        .and_then(|()| std::fs::write(cfg.out.join("throughput.svg"), report::svg(&results)))
    {
        eprintln!(
            "flexsc-bench: writing results to {}: {e}",
            cfg.out.display()
        );
        std::process::exit(1);
    }
    println!(
        "# wrote {}/results.json and {}/throughput.svg",
        cfg.out.display(),
        cfg.out.display()
    );
}
