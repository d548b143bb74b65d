//! flexsc-bench: system calls through FlexSC against direct calls and
//! io_uring, measured side by side in one run, inside the booted kernel.
//!
//! ```text
//! flexsc-bench [--quick] [--duration-ms N] [--warmup-ms N] [--rounds N]
//!              [--threads 1,2] [--sweep 1,2,4,8,16|none] [--out DIR] [--png]
//! flexsc-bench --report results.json [--out DIR] [--png]
//! ```
//!
//! Every case runs each user thread pinned to a CPU for a warm-up, then for
//! a fixed duration; throughput is calls per second over that duration and
//! latency is the round trip of one batch (one call for batch 1), from an
//! HDR histogram. Each case is measured in several rounds, interleaved
//! (round 1 of every case, then round 2 of every case, ...), so a noisy
//! stretch of time hits every engine alike; the report gives the median of
//! the rounds and their spread. Prints a summary (where FlexSC wins, and
//! against what), the table, and writes `results.json`, `report.txt` and
//! `throughput.svg` into DIR. `--report` redoes the printing and the files
//! (all but `results.json`) from an earlier run's `results.json`, without
//! running anything: on the host, for instance.

mod cases;
mod json;
mod plot;
mod report;

use cases::{Case, Engine, Placement, Workload};
use report::{Report, Row};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What the run measures, and for how long.
pub struct Config {
    pub warmup: Duration,
    pub duration: Duration,
    /// Rounds per case, interleaved.
    pub rounds: usize,
    pub threads: Vec<usize>,
    /// Registered-thread counts of the sweep (empty: no sweep).
    pub sweep: Vec<usize>,
    pub out: PathBuf,
    /// Render an earlier run's results.json instead of measuring.
    pub report: Option<PathBuf>,
    /// Also render throughput.png with rsvg-convert.
    pub png: bool,
}

fn number<T: std::str::FromStr>(v: &str, what: &str) -> T {
    v.parse()
        .unwrap_or_else(|_| usage(&format!("bad number for {what}: {v}")))
}

/// A list of counts, comma- or colon-separated: `make bench` turns the
/// commas of BENCH_ARGS into spaces, so there `--sweep,1:2:4` is the way.
fn list(v: &str, what: &str) -> Vec<usize> {
    if v == "none" || v.is_empty() {
        return Vec::new();
    }
    v.split([',', ':'])
        .map(|t| number::<usize>(t, what))
        .filter(|&n| n > 0)
        .collect()
}

fn parse_args() -> Config {
    let mut cfg = Config {
        warmup: Duration::from_millis(200),
        duration: Duration::from_millis(1000),
        rounds: 3,
        threads: vec![1, 2],
        sweep: vec![1, 2, 4, 8, 16],
        out: ".".into(),
        report: None,
        png: false,
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
            "--duration-ms" => cfg.duration = Duration::from_millis(number(&value(), &a)),
            "--warmup-ms" => cfg.warmup = Duration::from_millis(number(&value(), &a)),
            "--rounds" => cfg.rounds = number::<usize>(&value(), &a).max(1),
            "--threads" => cfg.threads = list(&value(), &a),
            "--sweep" => cfg.sweep = list(&value(), &a),
            "--out" => cfg.out = value().into(),
            "--report" => cfg.report = Some(value().into()),
            "--png" => cfg.png = true,
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
    eprintln!(
        "usage: flexsc-bench [--quick] [--duration-ms N] [--warmup-ms N] [--rounds N]
                    [--threads 1,2] [--sweep 1,2,4,8,16|none] [--out DIR] [--png]
       flexsc-bench --report results.json [--out DIR] [--png]

  --quick         50 ms warm-up and 250 ms per round instead of 200 and 1000
  --rounds N      rounds per case (default 3), interleaved: round 1 of every case,
                  then round 2 of every case, ...; the report shows the median and
                  the spread of the rounds
  --threads LIST  user threads of the main suite (default 1,2)
  --sweep LIST    registered-thread sweep: FlexSC getpid batch 32 (flexsc-poll),
                  N threads each with its own registration, systhreads on all CPUs;
                  reports total calls/s and the kernel threads used. In the default
                  run (1,2,4,8,16: about 5% of its time); 'none' leaves it out
  --out DIR       where results.json, report.txt and throughput.svg go (default .)
  --png           also render throughput.png from the SVG with rsvg-convert
                  (Debian: librsvg2-bin)
  --report FILE   measure nothing: print the summary and table of an earlier
                  run's results.json and write report.txt and throughput.svg
  LIST            comma- or colon-separated; through make bench, which turns commas
                  into spaces, use colons: BENCH_ARGS=--sweep,1:2:4"
    );
    std::process::exit(2);
}

/// The standard suite: every workload, direct, FlexSC (batch sizes,
/// systhreads on the same and on another CPU, polling and flexsc_wait) and
/// io_uring (with and without SQPOLL, same batch sizes); then the sweep,
/// and, on a kernel with the ring, a few FlexSC cases on ABI v1.
fn suite(cfg: &Config, ncpus: usize, ring: bool) -> Vec<Case> {
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
                sweep: false,
                v1: false,
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
                            sweep: false,
                            v1: false,
                        });
                    }
                }
                cases.push(Case {
                    workload,
                    engine: Engine::Uring,
                    batch,
                    threads,
                    placement: Placement::SameCpu,
                    sweep: false,
                    v1: false,
                });
                for &placement in placements {
                    cases.push(Case {
                        workload,
                        engine: Engine::UringSqpoll,
                        batch,
                        threads,
                        placement,
                        sweep: false,
                        v1: false,
                    });
                }
            }
        }
    }
    for &threads in &cfg.sweep {
        cases.push(Case {
            workload: Workload::Getpid,
            engine: Engine::FlexscPoll,
            batch: 32,
            threads,
            placement: Placement::AllCpus,
            sweep: true,
            v1: false,
        });
    }
    // Where the FlexSC cases run the ring: the same calls on plain ABI v1,
    // one thread, the systhread on the other CPU (on the same one with a
    // single CPU), polling, batch 1 and 32.
    if ring {
        let placement = *placements.last().unwrap();
        for workload in [Workload::Getpid, Workload::WriteNull] {
            for batch in [1, 32] {
                cases.push(Case {
                    workload,
                    engine: Engine::FlexscPoll,
                    batch,
                    threads: 1,
                    placement,
                    sweep: false,
                    v1: true,
                });
            }
        }
    }
    cases
}

fn main() {
    let cfg = parse_args();
    let report = match &cfg.report {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| Report::from_json(&t))
            .unwrap_or_else(|e| {
                eprintln!("flexsc-bench: {}: {e}", path.display());
                std::process::exit(1);
            }),
        None => measure(&cfg),
    };
    let mut text = report.text();
    if cfg.report.is_none() {
        text.push_str(&c_bench());
    }
    print!("{text}");
    if let Err(e) = write_files(&cfg, &report, &text) {
        eprintln!(
            "flexsc-bench: writing results to {}: {e}",
            cfg.out.display()
        );
        std::process::exit(1);
    }
}

/// Runs the suite, round after round, and gathers each case's rounds.
fn measure(cfg: &Config) -> Report {
    if !flexsc::supported() {
        eprintln!(
            "flexsc-bench: this kernel has no FlexSC ABI {}",
            flexsc::abi::ABI_VERSION
        );
        std::process::exit(1);
    }
    // SAFETY: Plain call.
    let ncpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize;
    // Whether this kernel gives the crate the ring (FLEXSC_REGISTER_RING).
    let ring = flexsc::Builder::new()
        .entries(8)
        .systhreads(1)
        .queue()
        .map(|q| q.mode() == flexsc::Mode::Ring)
        .unwrap_or_else(|e| {
            eprintln!("flexsc-bench: flexsc register: {e}");
            std::process::exit(1);
        });
    eprintln!(
        "# FlexSC cases run {}",
        if ring {
            "the ring (FLEXSC_REGISTER_RING), and a few on ABI v1 to compare"
        } else {
            "plain ABI v1 (this kernel has no ring)"
        }
    );
    let cases = suite(cfg, ncpus, ring);
    // SAFETY: Plain call.
    let tty = unsafe { libc::isatty(2) } == 1;
    // rounds[i][k]: round k of case i, None where it failed.
    let mut rounds: Vec<Vec<Option<cases::CaseResult>>> = cases
        .iter()
        .map(|_| Vec::with_capacity(cfg.rounds))
        .collect();
    for round in 1..=cfg.rounds {
        for (i, case) in cases.iter().enumerate() {
            let label = case.label();
            let at = format!(
                "[round {round}/{} case {}/{}]",
                cfg.rounds,
                i + 1,
                cases.len()
            );
            if tty {
                eprint!("\r\x1b[K{at} {label}");
            } else {
                eprintln!("# {at} {label}");
            }
            let r = cases::run(case, cfg, ncpus);
            if let Err(e) = &r {
                eprintln!("\n# {label}, round {round}: {e}");
            }
            rounds[i].push(r.ok());
        }
    }
    if tty {
        eprintln!();
    }
    Report {
        prov: report::provenance(ncpus, cfg),
        rows: rounds.iter().filter_map(|r| Row::from_rounds(r)).collect(),
    }
}

/// The C case: getpid through libflexsc (examples/c/flexsc-c-bench, built
/// against the installed library), direct and in batches of 1 and 32, in
/// the same run; its section of the report ("" where it is not installed).
fn c_bench() -> String {
    let prog = ["/bin/flexsc-c-bench", "build/c-example/flexsc-c-bench"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(prog) = prog else {
        return String::new();
    };
    let mut out = String::from(
        "\n== C through libflexsc (examples/c/flexsc-c-bench, getpid, 500 ms a case) ==\n",
    );
    for batch in ["1", "32"] {
        match std::process::Command::new(prog)
            .args(["--batch", batch])
            .output()
        {
            Ok(o) if o.status.success() => {
                for line in String::from_utf8_lossy(&o.stdout).lines() {
                    if batch == "32" && line.contains("direct") {
                        continue;
                    }
                    out.push_str(line);
                    out.push('\n');
                }
            }
            Ok(o) => out.push_str(&format!(
                "# {prog} --batch {batch}: {} {}\n",
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => out.push_str(&format!("# {prog}: {e}\n")),
        }
    }
    out
}

/// results.json (only for a run: `--report` leaves it alone), report.txt,
/// throughput.svg and, with `--png`, throughput.png.
fn write_files(cfg: &Config, rep: &Report, text: &str) -> std::io::Result<()> {
    let out = &cfg.out;
    std::fs::create_dir_all(out)?;
    let mut wrote = Vec::new();
    if cfg.report.is_none() {
        std::fs::write(out.join("results.json"), rep.json())?;
        wrote.push("results.json");
    }
    std::fs::write(out.join("report.txt"), text)?;
    let svg = out.join("throughput.svg");
    std::fs::write(&svg, plot::svg(rep))?;
    wrote.extend(["report.txt", "throughput.svg"]);
    if cfg.png {
        png(&svg, &out.join("throughput.png"))?;
        wrote.push("throughput.png");
    }
    println!("# wrote {} in {}", wrote.join(", "), out.display());
    Ok(())
}

/// Renders the SVG to PNG with rsvg-convert, at twice its size so that it
/// stays sharp on a high-density screen.
fn png(svg: &Path, png: &Path) -> std::io::Result<()> {
    let status = std::process::Command::new("rsvg-convert")
        .args(["--zoom", "2", "--background-color", "white", "-o"])
        .arg(png)
        .arg(svg)
        .status()
        .map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("rsvg-convert (Debian: apt-get install librsvg2-bin): {e}"),
            )
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("rsvg-convert: {status}")))
    }
}
