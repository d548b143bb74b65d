//! The plot, `throughput.svg`: per workload, throughput (top) and p50
//! round trip (bottom) against batch size, single-threaded cases, on log
//! axes; the thread sweep, when the run had one, as a last column.
//!
//! FlexSC is drawn in blues, io_uring in oranges and reds, direct calls in
//! black dashes, so which family leads reads at a glance; a dotted line is
//! a kernel-side thread on the caller's own CPU. Points are medians of the
//! rounds, bars the min-max of the rounds.

use crate::report::{Report, Row};
use std::fmt::Write as _;

/// How one series (engine and placement) is drawn.
struct Style {
    engine: &'static str,
    placement: &'static str,
    label: &'static str,
    color: &'static str,
    dash: &'static str,
    marker: Marker,
    width: f64,
}

#[derive(Clone, Copy)]
enum Marker {
    Circle,
    Square,
    Triangle,
    Diamond,
    None,
}

const FLEXSC_POLL: &str = "#08306b";
const FLEXSC_WAIT: &str = "#4a98d3";
const URING: &str = "#f07818";
const SQPOLL: &str = "#b2182b";
/// The sweep's own series: teal, still a cool colour like the FlexSC
/// blues, but never mistaken for the main suite's in the legend.
const SWEEP_POLL: &str = "#0f7f7a";
const SWEEP_WAIT: &str = "#5cc1a8";

/// Every series, legend order: FlexSC, io_uring, direct.
const STYLES: &[Style] = &[
    Style {
        engine: "flexsc-poll",
        placement: "other-cpu",
        label: "FlexSC poll, systhread on other CPU",
        color: FLEXSC_POLL,
        dash: "",
        marker: Marker::Circle,
        width: 2.5,
    },
    Style {
        engine: "flexsc-wait",
        placement: "other-cpu",
        label: "FlexSC flexsc_wait, other CPU",
        color: FLEXSC_WAIT,
        dash: "",
        marker: Marker::Square,
        width: 2.5,
    },
    Style {
        engine: "flexsc-poll",
        placement: "same-cpu",
        label: "FlexSC poll, same CPU",
        color: FLEXSC_POLL,
        dash: "2,3",
        marker: Marker::Circle,
        width: 1.5,
    },
    Style {
        engine: "flexsc-wait",
        placement: "same-cpu",
        label: "FlexSC flexsc_wait, same CPU",
        color: FLEXSC_WAIT,
        dash: "2,3",
        marker: Marker::Square,
        width: 1.5,
    },
    Style {
        engine: "flexsc-poll",
        placement: "all-cpus",
        label: "FlexSC poll, N registrations, systhreads on all CPUs",
        color: SWEEP_POLL,
        dash: "",
        marker: Marker::Circle,
        width: 2.5,
    },
    Style {
        engine: "flexsc-wait",
        placement: "all-cpus",
        label: "FlexSC flexsc_wait, N registrations, all CPUs",
        color: SWEEP_WAIT,
        dash: "",
        marker: Marker::Square,
        width: 2.5,
    },
    Style {
        engine: "io_uring",
        placement: "-",
        label: "io_uring (io_uring_enter)",
        color: URING,
        dash: "",
        marker: Marker::Triangle,
        width: 2.0,
    },
    Style {
        engine: "io_uring-sqpoll",
        placement: "other-cpu",
        label: "io_uring SQPOLL, other CPU",
        color: SQPOLL,
        dash: "",
        marker: Marker::Diamond,
        width: 2.0,
    },
    Style {
        engine: "io_uring-sqpoll",
        placement: "same-cpu",
        label: "io_uring SQPOLL, same CPU",
        color: SQPOLL,
        dash: "2,3",
        marker: Marker::Diamond,
        width: 1.5,
    },
    Style {
        engine: "direct",
        placement: "-",
        label: "direct (latency: batch x one call's p50)",
        color: "#000000",
        dash: "7,4",
        marker: Marker::None,
        width: 1.5,
    },
];

fn style_of(r: &Row) -> Option<&'static Style> {
    STYLES
        .iter()
        .find(|s| s.engine == r.engine && s.placement == r.placement)
}

/// A log axis from `lo` to `hi` mapped onto `y0 + h` .. `y0` (pixels).
struct LogAxis {
    lo: f64,
    hi: f64,
    y0: f64,
    h: f64,
}

impl LogAxis {
    /// Fits the values with a little room above and below.
    fn fit(values: impl Iterator<Item = f64>, y0: f64, h: f64) -> LogAxis {
        let (mut lo, mut hi) = (f64::INFINITY, 0.0f64);
        for v in values.filter(|v| v.is_finite() && *v > 0.0) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if hi == 0.0 {
            (lo, hi) = (1.0, 10.0);
        }
        // At least half a decade, so a flat series does not fill the panel.
        let room = ((hi / lo).log10() * 0.06).max(0.08);
        let (mut lo, mut hi) = (lo.log10() - room, hi.log10() + room);
        if hi - lo < 0.5 {
            let mid = (hi + lo) / 2.0;
            (lo, hi) = (mid - 0.25, mid + 0.25);
        }
        LogAxis { lo, hi, y0, h }
    }

    fn y(&self, v: f64) -> f64 {
        let l = v.max(1e-300).log10().clamp(self.lo, self.hi);
        self.y0 + self.h - self.h * (l - self.lo) / (self.hi - self.lo)
    }

    /// The ticks at 1, 2 and 5 of each decade (more within one decade),
    /// and whether each is labelled: all of them over a short axis, only
    /// the powers of ten over a long one.
    fn ticks(&self) -> Vec<(f64, bool)> {
        let span = self.hi - self.lo;
        let long = span > 3.3;
        let mantissas: &[f64] = if span < 1.0 {
            &[1.0, 1.5, 2.0, 3.0, 5.0, 7.0]
        } else {
            &[1.0, 2.0, 5.0]
        };
        let mut t = Vec::new();
        for e in (self.lo.floor() as i32)..=(self.hi.ceil() as i32) {
            for &m in mantissas {
                let v = m * 10f64.powi(e);
                let l = v.log10();
                if l >= self.lo - 1e-9 && l <= self.hi + 1e-9 {
                    t.push((v, !long || m == 1.0));
                }
            }
        }
        t
    }
}

/// A plain number with k and M for thousands and millions: 500, 2k, 1.5M.
fn count(v: f64) -> String {
    let (x, unit) = if v >= 1e6 {
        (v / 1e6, "M")
    } else if v >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    format!("{}{unit}", plain(x))
}

/// A plain number without trailing zeros: 0.5, 2, 1.5, 100.
fn plain(x: f64) -> String {
    let s = format!("{x:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

const PW: f64 = 330.0;
const PH: f64 = 220.0;
const LEFT: f64 = 70.0;
const GAP: f64 = 80.0;
const ROW1: f64 = 112.0;
const ROW2: f64 = ROW1 + PH + 86.0;

/// One panel being drawn: its frame, x categories and y axis.
struct Panel<'a> {
    s: &'a mut String,
    x0: f64,
    xs: Vec<u32>,
    axis: LogAxis,
}

impl Panel<'_> {
    fn x(&self, v: u32) -> f64 {
        let i = self.xs.iter().position(|&b| b == v).unwrap_or(0);
        self.x0 + (i as f64 + 0.5) * PW / self.xs.len() as f64
    }

    /// Frame, grid, ticks, the title above and the axis titles.
    fn frame(&mut self, title: &str, xtitle: &str, ytitle: &str, fmt: fn(f64) -> String) {
        let (x0, y0) = (self.x0, self.axis.y0);
        let s = &mut *self.s;
        let _ = writeln!(
            s,
            "<text x=\"{x0}\" y=\"{}\" font-weight=\"bold\" font-size=\"13\">{}</text>",
            y0 - 10.0,
            xml(title)
        );
        for (v, labelled) in self.axis.ticks() {
            let y = self.axis.y(v);
            let grid = if labelled { "#d0d0d0" } else { "#ececec" };
            let _ = writeln!(
                s,
                "<line x1=\"{x0}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"{grid}\"/>",
                x0 + PW
            );
            if labelled {
                let _ = writeln!(
                    s,
                    "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"11\">{}</text>",
                    x0 - 5.0,
                    y + 4.0,
                    fmt(v)
                );
            }
        }
        let _ = writeln!(s, "<rect x=\"{x0}\" y=\"{y0}\" width=\"{PW}\" height=\"{PH}\" fill=\"none\" stroke=\"#444\"/>");
        for &b in &self.xs {
            let i = self.xs.iter().position(|&c| c == b).unwrap_or(0);
            let x = x0 + (i as f64 + 0.5) * PW / self.xs.len() as f64;
            let _ = writeln!(
                s,
                "<text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\" font-size=\"11\">{b}</text>",
                y0 + PH + 15.0
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"11\" fill=\"#333\">{}</text>",
            x0 + PW / 2.0,
            y0 + PH + 30.0,
            xml(xtitle)
        );
        let (cx, cy) = (x0 - 52.0, y0 + PH / 2.0);
        let _ = writeln!(
            s,
            "<text x=\"{cx}\" y=\"{cy}\" text-anchor=\"middle\" font-size=\"11\" fill=\"#333\" transform=\"rotate(-90 {cx} {cy})\">{}</text>",
            xml(ytitle)
        );
    }

    /// A series: its line, the min-max bar and marker of each point.
    /// `pts` are (x category, median, min, max).
    fn series(&mut self, st: &Style, dodge: f64, pts: &[(u32, f64, f64, f64)]) {
        let xy: Vec<(f64, f64, f64, f64)> = pts
            .iter()
            .map(|&(b, m, lo, hi)| {
                (
                    self.x(b) + dodge,
                    self.axis.y(m),
                    self.axis.y(lo),
                    self.axis.y(hi),
                )
            })
            .collect();
        let s = &mut *self.s;
        let dash = if st.dash.is_empty() {
            String::new()
        } else {
            format!(" stroke-dasharray=\"{}\"", st.dash)
        };
        let path: Vec<String> = xy
            .iter()
            .map(|(x, y, ..)| format!("{x:.1},{y:.1}"))
            .collect();
        let _ = writeln!(
            s,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{}\"{dash}/>",
            path.join(" "),
            st.color,
            st.width
        );
        for &(x, y, lo, hi) in &xy {
            if (lo - hi).abs() > 1.0 {
                let _ = writeln!(
                    s,
                    "<path d=\"M{x:.1},{lo:.1}V{hi:.1}M{:.1},{lo:.1}h6M{:.1},{hi:.1}h6\" stroke=\"{}\" stroke-width=\"1.2\" opacity=\"0.8\"/>",
                    x - 3.0,
                    x - 3.0,
                    st.color
                );
            }
            marker(s, st.marker, x, y, st.color);
        }
    }
}

fn marker(s: &mut String, m: Marker, x: f64, y: f64, color: &str) {
    let _ = match m {
        Marker::Circle => writeln!(
            s,
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3.5\" fill=\"{color}\" stroke=\"white\" stroke-width=\"0.8\"/>"
        ),
        Marker::Square => writeln!(
            s,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"7\" height=\"7\" fill=\"{color}\" stroke=\"white\" stroke-width=\"0.8\"/>",
            x - 3.5,
            y - 3.5
        ),
        Marker::Triangle => writeln!(
            s,
            "<path d=\"M{x:.1},{:.1}l4.5,8h-9z\" fill=\"{color}\" stroke=\"white\" stroke-width=\"0.8\"/>",
            y - 5.0
        ),
        Marker::Diamond => writeln!(
            s,
            "<path d=\"M{x:.1},{:.1}l4.5,4.5l-4.5,4.5l-4.5,-4.5z\" fill=\"{color}\" stroke=\"white\" stroke-width=\"0.8\"/>",
            y - 4.5
        ),
        Marker::None => Ok(()),
    };
}

/// Per-round values of a row, as (median, min, max).
fn stat(r: &Row, f: impl Fn(&crate::report::Round) -> f64) -> (f64, f64, f64) {
    let v: Vec<f64> = r.rounds.iter().flatten().map(f).collect();
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(0.0, f64::max);
    (crate::report::median(&v), min, max)
}

/// Whether the same-CPU series are left out: when there is another CPU.
/// A kernel-side thread on the caller's CPU is slower by one to three
/// orders of magnitude; on a log axis it would squeeze the cases worth
/// comparing into the top of the panel. The table keeps them.
fn other_cpu_only(rep: &Report) -> bool {
    rep.rows.iter().any(|r| r.placement == "other-cpu")
}

/// Single-threaded main-suite rows of one workload, by series.
fn series_of<'a>(rep: &'a Report, w: &str) -> Vec<(&'static Style, Vec<&'a Row>)> {
    let mut out: Vec<(&'static Style, Vec<&Row>)> = Vec::new();
    let skip_same = other_cpu_only(rep);
    for st in STYLES
        .iter()
        .filter(|st| !(skip_same && st.placement == "same-cpu"))
    {
        let rows: Vec<&Row> = rep
            .rows
            .iter()
            .filter(|r| r.main_suite() && r.threads == 1 && r.workload == w)
            .filter(|r| style_of(r).is_some_and(|s| std::ptr::eq(s, st)))
            .collect();
        if !rows.is_empty() {
            out.push((st, rows));
        }
    }
    out
}

/// The throughput and latency panels of one workload.
fn workload_panels(s: &mut String, rep: &Report, w: &str, x0: f64) -> Vec<&'static str> {
    let series = series_of(rep, w);
    let mut xs: Vec<u32> = series
        .iter()
        .flat_map(|(_, rows)| rows.iter().map(|r| r.batch))
        .collect();
    xs.sort_unstable();
    xs.dedup();
    let n = series.len() as f64;
    let dodge = |i: usize| (i as f64 - (n - 1.0) / 2.0) * 2.0;
    let is_direct = |st: &Style| st.engine == "direct";
    // Direct has one point (batch 1); it spans the panel: on top as its
    // flat throughput, below as what a batch of direct calls would take.
    let spread =
        |st: &Style, rows: &[&Row], f: &dyn Fn(&crate::report::Round) -> f64, scale: bool| {
            if is_direct(st) {
                let (m, lo, hi) = stat(rows[0], f);
                xs.iter()
                    .map(|&b| {
                        let k = if scale { b as f64 } else { 1.0 };
                        (b, m * k, lo * k, hi * k)
                    })
                    .collect::<Vec<_>>()
            } else {
                rows.iter()
                    .map(|r| {
                        let (m, lo, hi) = stat(r, f);
                        (r.batch, m, lo, hi)
                    })
                    .collect()
            }
        };
    let cps = |r: &crate::report::Round| r.calls_per_sec;
    let p50 = |r: &crate::report::Round| r.p50_ns as f64 / 1000.0;
    let top: Vec<_> = series
        .iter()
        .map(|(st, rows)| spread(st, rows, &cps, false))
        .collect();
    let bottom: Vec<_> = series
        .iter()
        .map(|(st, rows)| spread(st, rows, &p50, true))
        .collect();
    let all = |v: &Vec<Vec<(u32, f64, f64, f64)>>| {
        v.iter()
            .flatten()
            .flat_map(|&(_, m, lo, hi)| [m, lo, hi])
            .collect::<Vec<_>>()
    };
    let mut p = Panel {
        s: &mut *s,
        x0,
        xs: xs.clone(),
        axis: LogAxis::fit(all(&top).into_iter(), ROW1, PH),
    };
    p.frame(
        &format!("{w}: calls/s, higher is better"),
        "batch size (calls per submission)",
        "calls/s (log)",
        count,
    );
    for (i, ((st, _), pts)) in series.iter().zip(&top).enumerate() {
        p.series(st, if is_direct(st) { 0.0 } else { dodge(i) }, pts);
    }
    let mut p = Panel {
        s: &mut *s,
        x0,
        xs,
        axis: LogAxis::fit(all(&bottom).into_iter(), ROW2, PH),
    };
    p.frame(
        &format!("{w}: p50 per batch, lower is better"),
        "batch size (calls per submission)",
        "microseconds (log)",
        plain,
    );
    for (i, ((st, _), pts)) in series.iter().zip(&bottom).enumerate() {
        p.series(st, if is_direct(st) { 0.0 } else { dodge(i) }, pts);
    }
    series.iter().map(|(st, _)| st.label).collect()
}

/// The sweep column: total calls/s and kernel threads against the number
/// of registered threads.
fn sweep_panels(s: &mut String, rep: &Report, x0: f64) -> Vec<&'static str> {
    let rows: Vec<&Row> = rep.rows.iter().filter(|r| r.sweep).collect();
    let mut xs: Vec<u32> = rows.iter().map(|r| r.threads as u32).collect();
    xs.sort_unstable();
    xs.dedup();
    let mut labels = Vec::new();
    let cps = |r: &crate::report::Round| r.calls_per_sec;
    let mut p = Panel {
        s: &mut *s,
        x0,
        xs: xs.clone(),
        axis: LogAxis::fit(
            rows.iter().flat_map(|r| {
                let (m, lo, hi) = stat(r, cps);
                [m, lo, hi]
            }),
            ROW1,
            PH,
        ),
    };
    let what = rows
        .first()
        .map_or(String::new(), |r| format!("{} b{}", r.workload, r.batch));
    p.frame(
        &format!("sweep {what}: calls/s, all threads"),
        "registered threads",
        "calls/s (log)",
        count,
    );
    let mut kthreads: Vec<(&'static Style, Vec<(u32, f64)>)> = Vec::new();
    for (i, st) in STYLES.iter().enumerate() {
        let mine: Vec<&&Row> = rows
            .iter()
            .filter(|r| style_of(r).is_some_and(|s| std::ptr::eq(s, st)))
            .collect();
        if mine.is_empty() {
            continue;
        }
        let pts: Vec<_> = mine
            .iter()
            .map(|r| {
                let (m, lo, hi) = stat(r, cps);
                (r.threads as u32, m, lo, hi)
            })
            .collect();
        p.series(st, (i % 2) as f64 * 4.0 - 2.0, &pts);
        labels.push(st.label);
        let k: Vec<(u32, f64)> = mine
            .iter()
            .filter_map(|r| Some((r.threads as u32, r.kernel_threads? as f64)))
            .collect();
        if !k.is_empty() {
            kthreads.push((st, k));
        }
    }
    // Kernel threads on a log axis too: they grow with the threads.
    let mut p = Panel {
        s: &mut *s,
        x0,
        xs,
        axis: LogAxis::fit(
            kthreads
                .iter()
                .flat_map(|(_, k)| k.iter().map(|&(_, v)| v.max(1.0))),
            ROW2,
            PH,
        ),
    };
    p.frame(
        "sweep: kernel threads it added",
        "registered threads",
        "threads (log)",
        plain,
    );
    for (i, (st, k)) in kthreads.iter().enumerate() {
        let pts: Vec<_> = k.iter().map(|&(t, v)| (t, v.max(1.0), v, v)).collect();
        let dodge = (i % 2) as f64 * 4.0 - 2.0;
        p.series(st, dodge, &pts);
        for &(t, v) in k {
            let (x, y) = (p.x(t) + dodge, p.axis.y(v.max(1.0)));
            let _ = writeln!(
                p.s,
                "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"10\" fill=\"{}\">{v}</text>",
                if i % 2 == 0 { y - 8.0 } else { y + 16.0 },
                st.color
            );
        }
    }
    labels
}

/// The whole figure.
pub fn svg(rep: &Report) -> String {
    let workloads: Vec<String> = {
        let mut ws: Vec<String> = Vec::new();
        for r in rep.rows.iter().filter(|r| r.main_suite() && r.threads == 1) {
            if !ws.contains(&r.workload) {
                ws.push(r.workload.clone());
            }
        }
        ws
    };
    let sweep = rep.rows.iter().any(|r| r.sweep);
    let cols = workloads.len() + usize::from(sweep);
    let width = LEFT + cols.max(2) as f64 * (PW + GAP) - GAP + 30.0;
    let legend_y = ROW2 + PH + 62.0;
    let mut body = String::new();
    title(&mut body, rep);
    let mut used: Vec<&str> = Vec::new();
    for (i, w) in workloads.iter().enumerate() {
        let x0 = LEFT + i as f64 * (PW + GAP);
        used.extend(workload_panels(&mut body, rep, w, x0));
    }
    if sweep {
        let x0 = LEFT + workloads.len() as f64 * (PW + GAP);
        used.extend(sweep_panels(&mut body, rep, x0));
    }
    let lines = legend(&mut body, &used, legend_y);
    let height = legend_y + 18.0 * lines as f64 + 16.0;
    let mut s = String::new();
    let _ = writeln!(s, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"12\">");
    let _ = writeln!(s, "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
    s.push_str(&body);
    s.push_str("</svg>\n");
    s
}

fn title(s: &mut String, rep: &Report) {
    let p = &rep.prov;
    let accel = match p.accelerator.as_str() {
        "kvm" => "KVM".to_string(),
        "tcg" => "QEMU TCG (emulated CPU)".to_string(),
        a => format!("accelerator {a}"),
    };
    let date = match p.date.as_str() {
        "unknown" => "date unknown".to_string(),
        d => d.replacen('T', " ", 1).replace('Z', " UTC"),
    };
    let rounds = match p.rounds {
        1 => "one round per case".to_string(),
        n => format!("median of {n} interleaved rounds per case, bars: min-max of the rounds"),
    };
    let same = if other_cpu_only(rep) {
        "; same-CPU placements (far slower) are in the table only"
    } else {
        ""
    };
    let _ = writeln!(
        s,
        "<text x=\"{LEFT}\" y=\"30\" font-size=\"17\" font-weight=\"bold\">{}</text>",
        xml(&format!(
            "FlexSC against direct calls and io_uring: {accel}, {date}"
        ))
    );
    let _ = writeln!(
        s,
        "<text x=\"{LEFT}\" y=\"52\" font-size=\"12\" fill=\"#333\">{}</text>",
        xml(&format!(
            "kernel {}, {} CPUs ({}), commit {}",
            p.kernel, p.cpus, p.cpu_model, p.commit
        ))
    );
    let _ = writeln!(
        s,
        "<text x=\"{LEFT}\" y=\"68\" font-size=\"12\" fill=\"#333\">{}</text>",
        xml(&format!(
            "1 user thread; {rounds} ({} ms each){same}",
            p.duration_ms
        ))
    );
}

/// The legend, one column per family, only the series drawn; returns its
/// height in lines.
fn legend(s: &mut String, used: &[&str], y0: f64) -> usize {
    let mut lines = 0;
    type Member = fn(&Style) -> bool;
    let families: [(&str, Member); 3] = [
        ("FlexSC", |st| st.engine.starts_with("flexsc")),
        ("io_uring", |st| st.engine.starts_with("io_uring")),
        ("direct calls", |st| st.engine == "direct"),
    ];
    let mut column = 0;
    for (name, member) in &families {
        let shown: Vec<&Style> = STYLES
            .iter()
            .filter(|st| member(st) && used.contains(&st.label))
            .collect();
        if shown.is_empty() {
            continue;
        }
        let x = LEFT + column as f64 * 330.0;
        column += 1;
        let _ = writeln!(
            s,
            "<text x=\"{x}\" y=\"{y0}\" font-weight=\"bold\">{name}</text>"
        );
        for (i, st) in shown.into_iter().enumerate() {
            lines = lines.max(i + 1);
            let y = y0 + 18.0 * (i as f64 + 1.0);
            let dash = if st.dash.is_empty() {
                String::new()
            } else {
                format!(" stroke-dasharray=\"{}\"", st.dash)
            };
            let _ = writeln!(
                s,
                "<line x1=\"{x}\" x2=\"{}\" y1=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"{}\"{dash}/>",
                x + 30.0,
                y - 4.0,
                y - 4.0,
                st.color,
                st.width
            );
            marker(s, st.marker, x + 15.0, y - 4.0, st.color);
            let _ = writeln!(
                s,
                "<text x=\"{}\" y=\"{y}\">{}</text>",
                x + 38.0,
                xml(st.label)
            );
        }
    }
    lines
}
