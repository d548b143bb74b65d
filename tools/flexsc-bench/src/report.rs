//! The report: rows (a case with its rounds), the summary, the table, the
//! JSON file, and reading that file back for `--report`.
//!
//! Everything here works on [`Report`], which a live run and a
//! `results.json` both produce, so that `--report` prints and plots
//! exactly what the run itself would have.

use crate::cases::{CaseResult, Engine, Placement, Workload};
use crate::json::{self, Value};
use crate::Config;
use std::fmt::Write as _;

/// Where and when the run happened, and how it measured.
pub struct Provenance {
    /// The kernel release (`uname -r`).
    pub kernel: String,
    /// CPUs online in the VM.
    pub cpus: usize,
    /// `model name` of /proc/cpuinfo (under TCG: QEMU's model, not the host's).
    pub cpu_model: String,
    /// `FLEXSC_COMMIT`, else "unknown".
    pub commit: String,
    /// `FLEXSC_ACCEL` ("kvm" or "tcg"), else "unknown".
    pub accelerator: String,
    /// UTC, RFC 3339: `FLEXSC_DATE`, else the clock.
    pub date: String,
    /// The command line, for reproducing the run.
    pub command: String,
    pub warmup_ms: u64,
    pub duration_ms: u64,
    /// Rounds per case, interleaved.
    pub rounds: usize,
}

/// One round of one case, as the report uses it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Round {
    pub calls_per_sec: f64,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
}

/// One case with all its rounds; `rounds[k]` is round k (None: that round
/// failed), so round k of two cases ran within the same pass.
pub struct Row {
    pub workload: String,
    pub engine: String,
    pub batch: u32,
    pub placement: String,
    pub threads: usize,
    /// Part of the registered-thread sweep, not of the main suite.
    pub sweep: bool,
    /// The FlexSC protocol that ran: "ring", "v1" ("-": another engine).
    pub mode: String,
    /// FlexSC forced onto ABI v1 on a kernel with the ring: the ring's
    /// comparison, not the main suite.
    pub compare: bool,
    /// Totals over the rounds that ran.
    pub calls: u64,
    pub seconds: f64,
    pub rounds: Vec<Option<Round>>,
    /// Kernel threads (io-threads) of the process while the case ran:
    /// systhreads, SQPOLL threads, io-wq workers (most of any round).
    pub kernel_threads: Option<i64>,
    /// Growth of the engine's systhread counter (most of any round).
    pub flexsc_systhreads: Option<i64>,
}

pub struct Report {
    pub prov: Provenance,
    pub rows: Vec<Row>,
}

/// The median; the mean of the two middle values for an even count.
pub fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

impl Row {
    fn present(&self) -> impl Iterator<Item = &Round> {
        self.rounds.iter().flatten()
    }

    fn each(&self, f: impl Fn(&Round) -> f64) -> Vec<f64> {
        self.present().map(f).collect()
    }

    /// Median calls/s over the rounds: the row's throughput.
    pub fn cps(&self) -> f64 {
        median(&self.each(|r| r.calls_per_sec))
    }

    pub fn cps_min(&self) -> f64 {
        self.each(|r| r.calls_per_sec)
            .into_iter()
            .fold(f64::INFINITY, f64::min)
    }

    pub fn cps_max(&self) -> f64 {
        self.each(|r| r.calls_per_sec)
            .into_iter()
            .fold(0.0, f64::max)
    }

    /// (max - min) / median of calls/s: 0 for one round.
    pub fn spread(&self) -> f64 {
        (self.cps_max() - self.cps_min()) / self.cps()
    }

    /// Median over the rounds of one latency percentile, in ns.
    pub fn lat(&self, f: impl Fn(&Round) -> u64) -> u64 {
        median(&self.each(|r| f(r) as f64)).round() as u64
    }

    pub fn p50(&self) -> u64 {
        self.lat(|r| r.p50_ns)
    }

    /// Part of the main suite (neither the sweep nor the comparison).
    pub fn main_suite(&self) -> bool {
        !self.sweep && !self.compare
    }

    fn is(&self, w: &str, e: Engine, threads: usize) -> bool {
        self.main_suite()
            && self.workload == w
            && self.engine == e.name()
            && self.threads == threads
    }

    fn is_flexsc(&self) -> bool {
        self.engine == Engine::FlexscPoll.name() || self.engine == Engine::FlexscWait.name()
    }

    /// "flexsc-poll b32 other-cpu", for the summary.
    fn config(&self) -> String {
        if self.placement == "-" {
            format!("{} b{}", self.engine, self.batch)
        } else {
            format!("{} b{} {}", self.engine, self.batch, self.placement)
        }
    }

    /// Builds a row from the rounds a live run measured.
    pub fn from_rounds(rounds: &[Option<CaseResult>]) -> Option<Row> {
        let first = rounds.iter().flatten().next()?;
        let case = first.case;
        let most = |f: fn(&CaseResult) -> Option<i64>| rounds.iter().flatten().filter_map(f).max();
        Some(Row {
            workload: case.workload.name().into(),
            engine: case.engine.name().into(),
            batch: case.batch,
            placement: case.placement_name().into(),
            threads: case.threads,
            sweep: case.sweep,
            mode: first.mode.map_or("-", flexsc::Mode::name).into(),
            compare: case.v1,
            calls: rounds.iter().flatten().map(|r| r.calls).sum(),
            seconds: rounds
                .iter()
                .flatten()
                .map(|r| r.elapsed.as_secs_f64())
                .sum(),
            rounds: rounds
                .iter()
                .map(|r| {
                    r.as_ref().map(|r| Round {
                        calls_per_sec: r.calls_per_sec(),
                        p50_ns: r.latency.value_at_quantile(0.5),
                        p99_ns: r.latency.value_at_quantile(0.99),
                        p999_ns: r.latency.value_at_quantile(0.999),
                    })
                })
                .collect(),
            kernel_threads: most(|r| r.kernel_threads),
            flexsc_systhreads: most(|r| r.flexsc_systhreads),
        })
    }
}

/// A ratio of two cases: the median of the per-round ratios and their
/// range. Round k of every case ran in the same pass (the rounds are
/// interleaved), so a per-round ratio compares two measurements that saw
/// the same noise; where the rounds cannot be paired (a failed round,
/// different round counts) the range is min(a)/max(b) .. max(a)/min(b),
/// which is wider, and `paired` is false.
pub struct Ratio {
    pub mid: f64,
    pub lo: f64,
    pub hi: f64,
    pub paired: bool,
}

impl Ratio {
    pub fn of(a: &Row, b: &Row, f: impl Fn(&Round) -> f64) -> Ratio {
        let pairs: Vec<f64> = a
            .rounds
            .iter()
            .zip(&b.rounds)
            .filter_map(|(x, y)| Some(f(x.as_ref()?) / f(y.as_ref()?)))
            .collect();
        let all = a.rounds.iter().chain(&b.rounds).all(Option::is_some);
        if all && a.rounds.len() == b.rounds.len() && !pairs.is_empty() {
            let lo = pairs.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = pairs.iter().copied().fold(0.0, f64::max);
            return Ratio {
                mid: median(&pairs),
                lo,
                hi,
                paired: true,
            };
        }
        let (av, bv) = (a.each(&f), b.each(&f));
        let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
        Ratio {
            mid: median(&av) / median(&bv),
            lo: min(&av) / max(&bv),
            hi: max(&av) / min(&bv),
            paired: false,
        }
    }
}

impl std::fmt::Display for Ratio {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        // One round (or rounds that agree exactly) has no range to show.
        let s = if self.hi - self.lo < 1e-12 {
            format!("{}x", num(self.mid))
        } else {
            format!(
                "{}x ({}-{}){}",
                num(self.mid),
                num(self.lo),
                num(self.hi),
                if self.paired { "" } else { "*" }
            )
        };
        f.pad(&s)
    }
}

/// Two decimals from 1 up, two significant digits below: plain numbers,
/// never an exponent, and 0.003 does not print as 0.00.
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    if v >= 1.0 || v == 0.0 {
        return format!("{v:.2}");
    }
    let digits = (1 - v.log10().floor() as i32).clamp(2, 9) as usize;
    format!("{v:.digits$}")
}

/// The provenance of a live run: the system, the environment, the clock.
pub fn provenance(cpus: usize, cfg: &Config) -> Provenance {
    let env = |k: &str| {
        std::env::var(k)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(|v| v.trim().to_string())
    };
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    Provenance {
        kernel: kernel_release(),
        cpus,
        cpu_model,
        commit: env("FLEXSC_COMMIT").unwrap_or_else(|| "unknown".into()),
        accelerator: env("FLEXSC_ACCEL").unwrap_or_else(|| "unknown".into()),
        date: env("FLEXSC_DATE").unwrap_or_else(now_rfc3339),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        warmup_ms: cfg.warmup.as_millis() as u64,
        duration_ms: cfg.duration.as_millis() as u64,
        rounds: cfg.rounds,
    }
}

/// `uname -r`.
fn kernel_release() -> String {
    // SAFETY: uname fills the zeroed struct; its fields are NUL-terminated.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return String::new();
        }
        std::ffi::CStr::from_ptr(u.release.as_ptr())
            .to_string_lossy()
            .into_owned()
    }
}

/// The clock as RFC 3339 UTC, to the second. std formats no dates, so this
/// is the civil-from-days algorithm (H. Hinnant) on the Unix time.
fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rfc3339(secs)
}

pub fn rfc3339(secs: u64) -> String {
    let (days, rem) = ((secs / 86400) as i64, secs % 86400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

impl Report {
    /// Main-suite rows of one workload and thread count.
    fn of<'a>(&'a self, w: &'a str, threads: usize) -> impl Iterator<Item = &'a Row> + 'a {
        self.rows
            .iter()
            .filter(move |r| r.main_suite() && r.workload == w && r.threads == threads)
    }

    /// The highest median calls/s among `rows`.
    fn best<'a>(rows: impl Iterator<Item = &'a Row>) -> Option<&'a Row> {
        rows.max_by(|a, b| a.cps().total_cmp(&b.cps()))
    }

    /// The direct case with the same workload and threads.
    fn direct_of(&self, r: &Row) -> Option<&Row> {
        self.rows
            .iter()
            .find(|d| d.is(&r.workload, Engine::Direct, r.threads))
    }

    /// Workloads in the order the suite runs them.
    fn workloads(&self) -> Vec<String> {
        let mut ws: Vec<String> = Vec::new();
        for r in self.rows.iter().filter(|r| r.main_suite()) {
            if !ws.contains(&r.workload) {
                ws.push(r.workload.clone());
            }
        }
        ws
    }

    /// The first lines of the report: what ran where, when, and how.
    pub fn header(&self) -> String {
        let p = &self.prov;
        let rounds = match p.rounds {
            1 => "one round".to_string(),
            n => format!("{n} interleaved rounds"),
        };
        let mut modes: Vec<&str> = Vec::new();
        for r in self.rows.iter().filter(|r| r.is_flexsc() && !r.compare) {
            if !modes.contains(&r.mode.as_str()) {
                modes.push(&r.mode);
            }
        }
        let flexsc = match modes[..] {
            [] => String::new(),
            ["ring"] => "# FlexSC: the crate's queue on the ring (FLEXSC_REGISTER_RING)\n".into(),
            ["v1"] => {
                "# FlexSC: the crate's queue on plain ABI v1 (this kernel has no ring)\n".into()
            }
            _ => format!("# FlexSC: the crate's queue, modes {}\n", modes.join(", ")),
        };
        format!(
            "# kernel {} on {} CPUs ({}), accelerator {}, commit {}, date {}\n\
             # {rounds} of {} ms (after {} ms warm-up) per case\n{flexsc}",
            p.kernel,
            p.cpus,
            p.cpu_model,
            p.accelerator,
            p.commit,
            p.date,
            p.duration_ms,
            p.warmup_ms
        )
    }

    /// Where FlexSC wins and against what: per workload, the best FlexSC
    /// configuration against direct calls and the best io_uring, without
    /// and with SQPOLL; then batch-1 latency against SQPOLL.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let mut verdicts: [Vec<String>; 3] = Default::default();
        let mut unpaired = false;
        let _ = writeln!(
            s,
            "== Where FlexSC wins: its best configuration per workload (1 user thread) against the best of each baseline =="
        );
        let _ = writeln!(
            s,
            "{:<13} {:<26} {:>9}  {:<19} {:<24} x io_uring-sqpoll",
            "workload", "best FlexSC", "calls/s", "x direct", "x io_uring"
        );
        let baselines = [
            (Engine::Direct, 19),
            (Engine::Uring, 24),
            (Engine::UringSqpoll, 0),
        ];
        for w in self.workloads() {
            let Some(fx) = Self::best(self.of(&w, 1).filter(|r| r.is_flexsc())) else {
                continue;
            };
            let mut line = format!("{:<13} {:<26} {:>9.0} ", w, fx.config(), fx.cps());
            for (e, width) in baselines {
                let Some(b) = Self::best(self.of(&w, 1).filter(|r| r.engine == e.name())) else {
                    let _ = write!(line, " {:<width$}", "-");
                    continue;
                };
                let ratio = Ratio::of(fx, b, |r| r.calls_per_sec);
                unpaired |= !ratio.paired;
                let verdict = if ratio.lo > 1.0 {
                    0
                } else if ratio.hi < 1.0 {
                    2
                } else {
                    1
                };
                verdicts[verdict].push(format!("{w} vs {} ({}x)", e.name(), num(ratio.mid)));
                // Which batch (and placement) of the baseline was best.
                let cell = match e {
                    Engine::Direct => ratio.to_string(),
                    _ => format!("{ratio} {}", b.config()[e.name().len()..].trim()),
                };
                let _ = write!(line, " {cell:<width$}");
            }
            let _ = writeln!(s, "{}", line.trim_end());
        }
        if verdicts.iter().all(Vec::is_empty) {
            let _ = writeln!(s, "# no FlexSC case with a baseline to compare it to");
        }
        let [ahead, mixed, behind] = &verdicts;
        let _ = writeln!(
            s,
            "# FlexSC ahead in every round: {}",
            if ahead.is_empty() {
                "nowhere".into()
            } else {
                ahead.join(", ")
            }
        );
        if !mixed.is_empty() {
            let _ = writeln!(s, "# rounds disagree (within noise): {}", mixed.join(", "));
        }
        let _ = writeln!(
            s,
            "# FlexSC behind in every round: {} of the {} comparisons",
            behind.len(),
            verdicts.iter().map(Vec::len).sum::<usize>()
        );
        self.latency_summary(&mut s, &mut unpaired);
        // How the ranges are computed: from per-round ratios, because the
        // rounds are interleaved; from the extremes of each side otherwise.
        let _ = writeln!(
            s,
            "# Nx (lo-hi): median of the per-round ratios (round k of one case over round k of the other:\n\
             #   the rounds are interleaved, so both saw the same stretch of time), lo-hi their min and max{}",
            if unpaired {
                "\n# *: a round failed, rounds cannot be paired: lo-hi is min of one side over max of the other, and back"
            } else {
                ""
            }
        );
        s
    }

    /// Batch-1 p50: FlexSC with its systhread on the other CPU against
    /// SQPOLL on the other CPU, direct for scale.
    fn latency_summary(&self, s: &mut String, unpaired: &mut bool) {
        let _ = writeln!(
            s,
            "== Latency: p50 round trip of one call (batch 1), kernel-side thread on the other CPU =="
        );
        let _ = writeln!(
            s,
            "{:<13} {:>12} {:>12} {:>16}  {:<20} {:>9}",
            "workload",
            "flexsc-poll",
            "flexsc-wait",
            "io_uring-sqpoll",
            "best FlexSC/SQPOLL",
            "direct"
        );
        let other = Placement::OtherCpu;
        let cell =
            |r: Option<&Row>| r.map_or("-".to_string(), |r| format!("{:.2} us", us(r.p50())));
        for w in self.workloads() {
            let at = |e: Engine| {
                self.of(&w, 1).find(|r| {
                    r.engine == e.name() && r.batch == 1 && r.placement == place(e, other)
                })
            };
            let (poll, wait, sq) = (
                at(Engine::FlexscPoll),
                at(Engine::FlexscWait),
                at(Engine::UringSqpoll),
            );
            let best = [poll, wait].into_iter().flatten().min_by_key(|r| r.p50());
            let ratio = best.zip(sq).map_or("-".to_string(), |(f, q)| {
                let ratio = Ratio::of(f, q, |r| r.p50_ns as f64);
                *unpaired |= !ratio.paired;
                let short = f.engine.trim_start_matches("flexsc-");
                format!("{ratio} {short}")
            });
            let _ = writeln!(
                s,
                "{w:<13} {:>12} {:>12} {:>16}  {ratio:<20} {:>9}",
                cell(poll),
                cell(wait),
                cell(sq),
                cell(at(Engine::Direct))
            );
        }
    }

    /// The full table of the main suite, one line per case.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:<13} {:<16} {:<4} {:>5} {:<9} {:>3} {:>13} {:>6} {:>8} {:>10} {:>10} {:>10} {:>4}",
            "workload",
            "engine",
            "abi",
            "batch",
            "placement",
            "thr",
            "calls/s",
            "spread",
            "x direct",
            "p50 us",
            "p99 us",
            "p99.9 us",
            "kthr"
        );
        for r in self.rows.iter().filter(|r| r.main_suite()) {
            let ratio = self
                .direct_of(r)
                .map_or("-".to_string(), |d| format!("{:.2}", r.cps() / d.cps()));
            let _ = writeln!(
                s,
                "{:<13} {:<16} {:<4} {:>5} {:<9} {:>3} {:>13.0} {:>5.1}% {:>8} {:>10.2} {:>10.2} {:>10.2} {:>4}",
                r.workload,
                r.engine,
                r.mode,
                r.batch,
                r.placement,
                r.threads,
                r.cps(),
                100.0 * r.spread(),
                ratio,
                us(r.p50()),
                us(r.lat(|x| x.p99_ns)),
                us(r.lat(|x| x.p999_ns)),
                r.kernel_threads.map_or("-".into(), |k| k.to_string()),
            );
        }
        let _ = writeln!(
            s,
            "# calls/s and latency: median of the rounds; spread: (max - min) / median of calls/s;\n\
             # abi: the FlexSC protocol, the ring (FLEXSC_REGISTER_RING) or plain v1;\n\
             # latency: round trip of one batch (one call at batch 1);\n\
             # kthr: kernel threads of the process while the case ran (systhreads, SQPOLL threads, io-wq workers)"
        );
        s
    }

    /// The registered-thread sweep, if the run had one.
    pub fn sweep_table(&self) -> String {
        let rows: Vec<&Row> = self.rows.iter().filter(|r| r.sweep).collect();
        let Some(first) = rows.first() else {
            return String::new();
        };
        let mut s = String::new();
        let _ = writeln!(
            s,
            "== Sweep: {} batch {}, N user threads each with its own registration ({}: one systhread per CPU, on any CPU) ==",
            first.workload, first.batch, first.placement
        );
        let _ = writeln!(
            s,
            "{:<16} {:>7} {:>13} {:>6} {:>13} {:>10} {:>14} {:>18}",
            "engine",
            "threads",
            "calls/s",
            "spread",
            "per thread",
            "p50 us",
            "kernel threads",
            "flexsc systhreads"
        );
        for r in rows {
            let opt = |v: Option<i64>| v.map_or("-".into(), |k| k.to_string());
            let _ = writeln!(
                s,
                "{:<16} {:>7} {:>13.0} {:>5.1}% {:>13.0} {:>10.2} {:>14} {:>18}",
                r.engine,
                r.threads,
                r.cps(),
                100.0 * r.spread(),
                r.cps() / r.threads as f64,
                us(r.p50()),
                opt(r.kernel_threads),
                opt(r.flexsc_systhreads),
            );
        }
        let _ = writeln!(
            s,
            "# calls/s: all threads together; kernel threads: io-threads (PF_IO_WORKER) in /proc/self/task\n\
             # while every thread is registered; flexsc systhreads: growth of /sys/kernel/flexsc/systhreads then"
        );
        s
    }

    /// The ring against ABI v1, if the run compared them: each forced-v1
    /// case beside its twin of the main suite.
    pub fn compare_table(&self) -> String {
        let mut s = String::new();
        for v1 in self.rows.iter().filter(|r| r.compare) {
            let Some(ring) = self.rows.iter().find(|r| {
                r.main_suite()
                    && (&r.workload, &r.engine, r.batch, &r.placement, r.threads)
                        == (
                            &v1.workload,
                            &v1.engine,
                            v1.batch,
                            &v1.placement,
                            v1.threads,
                        )
            }) else {
                continue;
            };
            if s.is_empty() {
                let _ = writeln!(
                    s,
                    "== The ring against plain ABI v1: the same FlexSC case both ways =="
                );
                let _ = writeln!(
                    s,
                    "{:<13} {:<26} {:>13} {:>13}  {:<22} {:>10} {:>10}",
                    "workload", "case", "ring calls/s", "v1 calls/s", "x v1", "ring p50", "v1 p50"
                );
            }
            let ratio = Ratio::of(ring, v1, |r| r.calls_per_sec);
            let _ = writeln!(
                s,
                "{:<13} {:<26} {:>13.0} {:>13.0}  {:<22} {:>7.2} us {:>7.2} us",
                v1.workload,
                v1.config(),
                ring.cps(),
                v1.cps(),
                ratio.to_string(),
                us(ring.p50()),
                us(v1.p50()),
            );
        }
        s
    }

    /// Everything printed: the summary first, then the tables.
    pub fn text(&self) -> String {
        let then = |t: String| if t.is_empty() { t } else { format!("\n{t}") };
        format!(
            "{}{}\n{}{}{}",
            self.header(),
            self.summary(),
            self.table(),
            then(self.compare_table()),
            then(self.sweep_table()),
        )
    }

    pub fn json(&self) -> String {
        let p = &self.prov;
        let mut s = String::new();
        let _ = write!(
            s,
            "{{\n  \"kernel\": \"{}\",\n  \"cpus\": {},\n  \"cpu_model\": \"{}\",\n  \"commit\": \"{}\",\n  \"accelerator\": \"{}\",\n  \"date\": \"{}\",\n  \"command\": \"{}\",\n  \"warmup_ms\": {},\n  \"duration_ms\": {},\n  \"rounds\": {},\n  \"round_order\": \"interleaved\",\n  \"latency\": \"round trip of one batch, ns\",\n  \"statistic\": \"calls_per_sec and *_ns: median of the rounds; spread: (max - min) / median of calls_per_sec\",\n  \"results\": [\n",
            esc(&p.kernel),
            p.cpus,
            esc(&p.cpu_model),
            esc(&p.commit),
            esc(&p.accelerator),
            esc(&p.date),
            esc(&p.command),
            p.warmup_ms,
            p.duration_ms,
            p.rounds,
        );
        for (i, r) in self.rows.iter().enumerate() {
            let ratio = self
                .direct_of(r)
                .map_or("null".to_string(), |d| format!("{:.4}", r.cps() / d.cps()));
            let list = |f: &dyn Fn(&Round) -> String| {
                let v: Vec<String> = r
                    .rounds
                    .iter()
                    .map(|x| x.as_ref().map_or("null".into(), f))
                    .collect();
                format!("[{}]", v.join(", "))
            };
            let opt = |v: Option<i64>| v.map_or("null".into(), |k| k.to_string());
            let _ = writeln!(
                s,
                "    {{\"workload\": \"{}\", \"engine\": \"{}\", \"batch\": {}, \"placement\": \"{}\", \"threads\": {}, \"sweep\": {}, \"mode\": \"{}\", \"compare\": {}, \"calls\": {}, \"seconds\": {:.6}, \"calls_per_sec\": {:.1}, \"calls_per_sec_min\": {:.1}, \"calls_per_sec_max\": {:.1}, \"spread\": {:.4}, \"ratio_to_direct\": {}, \"p50_ns\": {}, \"p99_ns\": {}, \"p999_ns\": {}, \"rounds_calls_per_sec\": {}, \"rounds_p50_ns\": {}, \"rounds_p99_ns\": {}, \"rounds_p999_ns\": {}, \"kernel_threads\": {}, \"flexsc_systhreads\": {}}}{}",
                esc(&r.workload),
                esc(&r.engine),
                r.batch,
                esc(&r.placement),
                r.threads,
                r.sweep,
                esc(&r.mode),
                r.compare,
                r.calls,
                r.seconds,
                r.cps(),
                r.cps_min(),
                r.cps_max(),
                r.spread(),
                ratio,
                r.p50(),
                r.lat(|x| x.p99_ns),
                r.lat(|x| x.p999_ns),
                list(&|x| format!("{:.1}", x.calls_per_sec)),
                list(&|x| x.p50_ns.to_string()),
                list(&|x| x.p99_ns.to_string()),
                list(&|x| x.p999_ns.to_string()),
                opt(r.kernel_threads),
                opt(r.flexsc_systhreads),
                if i + 1 < self.rows.len() { "," } else { "" }
            );
        }
        s.push_str("  ]\n}\n");
        s
    }

    /// Reads a `results.json` back: this version's, or an older one with
    /// one round and no provenance (its values become round 1).
    pub fn from_json(text: &str) -> Result<Report, String> {
        let v = json::parse(text)?;
        let st = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_string()
        };
        let n = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64);
        let prov = Provenance {
            kernel: st("kernel"),
            cpus: n(&v, "cpus").unwrap_or(0.0) as usize,
            cpu_model: st("cpu_model"),
            commit: st("commit"),
            accelerator: st("accelerator"),
            date: st("date"),
            command: st("command"),
            warmup_ms: n(&v, "warmup_ms").unwrap_or(0.0) as u64,
            duration_ms: n(&v, "duration_ms").unwrap_or(0.0) as u64,
            rounds: n(&v, "rounds").unwrap_or(1.0) as usize,
        };
        let results = v
            .get("results")
            .and_then(Value::as_array)
            .ok_or("no \"results\" array")?;
        let rows = results
            .iter()
            .enumerate()
            .map(|(i, r)| row_from_json(r).ok_or(format!("results[{i}]: a field is missing")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Report { prov, rows })
    }
}

/// One row of `results`; None when a field the report needs is missing.
fn row_from_json(r: &Value) -> Option<Row> {
    let n = |k: &str| r.get(k).and_then(Value::as_f64);
    let s = |k: &str| r.get(k).and_then(Value::as_str).map(str::to_string);
    let arr = |k: &str| r.get(k).and_then(Value::as_array);
    let rounds = match arr("rounds_calls_per_sec") {
        Some(cps) => {
            let at = |k: &str, i: usize| arr(k).and_then(|a| a.get(i)?.as_f64());
            cps.iter()
                .enumerate()
                .map(|(i, c)| {
                    Some(Round {
                        calls_per_sec: c.as_f64()?,
                        p50_ns: at("rounds_p50_ns", i)? as u64,
                        p99_ns: at("rounds_p99_ns", i)? as u64,
                        p999_ns: at("rounds_p999_ns", i)? as u64,
                    })
                })
                .collect()
        }
        None => vec![Some(Round {
            calls_per_sec: n("calls_per_sec")?,
            p50_ns: n("p50_ns")? as u64,
            p99_ns: n("p99_ns")? as u64,
            p999_ns: n("p999_ns")? as u64,
        })],
    };
    let engine = s("engine")?;
    // Files from before the ring: FlexSC ran ABI v1.
    let mode = s("mode").unwrap_or_else(|| {
        if engine.starts_with("flexsc") {
            "v1"
        } else {
            "-"
        }
        .into()
    });
    Some(Row {
        workload: s("workload")?,
        engine,
        mode,
        compare: r.get("compare").and_then(Value::as_bool).unwrap_or(false),
        batch: n("batch")? as u32,
        placement: s("placement")?,
        threads: n("threads")? as usize,
        sweep: r.get("sweep").and_then(Value::as_bool).unwrap_or(false),
        calls: n("calls").unwrap_or(0.0) as u64,
        seconds: n("seconds").unwrap_or(0.0),
        rounds,
        kernel_threads: n("kernel_threads").map(|k| k as i64),
        flexsc_systhreads: n("flexsc_systhreads").map(|k| k as i64),
    })
}

/// The placement name a case of engine `e` shows for placement `p`.
fn place(e: Engine, p: Placement) -> &'static str {
    crate::cases::Case {
        workload: Workload::Getpid,
        engine: e,
        batch: 1,
        threads: 1,
        placement: p,
        sweep: false,
        v1: false,
    }
    .placement_name()
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(engine: &str, cps: &[f64]) -> Row {
        Row {
            workload: "getpid".into(),
            engine: engine.into(),
            batch: 1,
            placement: "-".into(),
            threads: 1,
            sweep: false,
            mode: if engine.starts_with("flexsc") {
                "ring"
            } else {
                "-"
            }
            .into(),
            compare: false,
            calls: 0,
            seconds: 0.0,
            rounds: cps
                .iter()
                .map(|&c| {
                    Some(Round {
                        calls_per_sec: c,
                        p50_ns: 1000,
                        p99_ns: 2000,
                        p999_ns: 3000,
                    })
                })
                .collect(),
            kernel_threads: None,
            flexsc_systhreads: None,
        }
    }

    #[test]
    fn medians_and_ratios() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        let (a, b) = (
            row("flexsc-poll", &[10.0, 20.0, 12.0]),
            row("direct", &[5.0, 10.0, 4.0]),
        );
        assert_eq!(a.cps(), 12.0);
        assert!((a.spread() - 10.0 / 12.0).abs() < 1e-12);
        let r = Ratio::of(&a, &b, |x| x.calls_per_sec);
        assert!(r.paired);
        assert_eq!((r.mid, r.lo, r.hi), (2.0, 2.0, 3.0));
        let mut c = row("direct", &[5.0, 10.0, 4.0]);
        c.rounds[1] = None;
        let r = Ratio::of(&a, &c, |x| x.calls_per_sec);
        assert!(!r.paired);
        assert_eq!((r.lo, r.hi), (10.0 / 5.0, 20.0 / 4.0));
        assert_eq!(num(0.003), "0.0030");
        assert_eq!(num(0.89), "0.89");
        assert_eq!(num(12.345), "12.35");
    }

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_434_305), "2026-11-23T11:45:05Z");
    }

    #[test]
    fn json_round_trip() {
        let rep = Report {
            prov: Provenance {
                kernel: "6.12.117+".into(),
                cpus: 2,
                cpu_model: "QEMU \"TCG\"".into(),
                commit: "abc".into(),
                accelerator: "tcg".into(),
                date: "2026-11-23T09:05:05Z".into(),
                command: "flexsc-bench".into(),
                warmup_ms: 200,
                duration_ms: 1000,
                rounds: 3,
            },
            rows: vec![row("direct", &[5.0, 10.0, 4.0]), {
                let mut r = row("flexsc-poll", &[10.0, 20.0, 12.0]);
                r.rounds[2] = None;
                r.kernel_threads = Some(1);
                r
            }],
        };
        let back = Report::from_json(&rep.json()).unwrap();
        assert_eq!(back.rows[1].mode, "ring");
        assert_eq!(back.prov.cpu_model, "QEMU \"TCG\"");
        assert_eq!(back.prov.rounds, 3);
        assert_eq!(back.rows.len(), 2);
        assert_eq!(back.rows[1].rounds, rep.rows[1].rounds);
        assert_eq!(back.rows[1].kernel_threads, Some(1));
        assert_eq!(back.json(), rep.json());
        // A file from before the ring: FlexSC rows ran ABI v1.
        let old = rep.json().replace("\"mode\": \"ring\", ", "");
        let back = Report::from_json(&old).unwrap();
        assert_eq!(
            (back.rows[0].mode.as_str(), back.rows[1].mode.as_str()),
            ("-", "v1")
        );
    }

    #[test]
    fn ring_against_v1() {
        let ring = row("flexsc-poll", &[20.0, 30.0, 24.0]);
        let mut v1 = row("flexsc-poll", &[10.0, 10.0, 12.0]);
        (v1.mode, v1.compare) = ("v1".into(), true);
        let rep = Report {
            prov: Report::from_json("{\"results\": []}").unwrap().prov,
            rows: vec![row("direct", &[5.0, 5.0, 5.0]), ring, v1],
        };
        let text = rep.text();
        assert!(
            text.contains("# FlexSC: the crate's queue on the ring"),
            "{text}"
        );
        assert!(text.contains("== The ring against plain ABI v1"), "{text}");
        assert!(text.contains("2.00x (2.00-3.00)"), "{text}");
        // The comparison row stays out of the main table and the summary.
        assert_eq!(
            rep.table()
                .lines()
                .filter(|l| l.contains("flexsc-poll"))
                .count(),
            1
        );
    }
}
