//! The table, the JSON file and the plot.

use crate::cases::{CaseResult, Engine, Workload};
use crate::Config;
use std::fmt::Write as _;

/// Where the run happened.
pub struct System {
    pub kernel: String,
    pub cpus: usize,
    pub cpu_model: String,
}

pub fn system(cpus: usize) -> System {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    System {
        kernel,
        cpus,
        cpu_model,
    }
}

/// Throughput of the direct case with the same workload and threads.
fn direct_of(results: &[CaseResult], r: &CaseResult) -> Option<f64> {
    results
        .iter()
        .find(|d| {
            d.case.engine == Engine::Direct
                && d.case.workload == r.case.workload
                && d.case.threads == r.case.threads
        })
        .map(|d| d.calls_per_sec())
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

pub fn table(results: &[CaseResult], sys: &System) {
    println!(
        "# kernel {} on {} CPUs ({})",
        sys.kernel, sys.cpus, sys.cpu_model
    );
    println!(
        "{:<13} {:<16} {:>5} {:<9} {:>3} {:>13} {:>8} {:>10} {:>10} {:>10}",
        "workload",
        "engine",
        "batch",
        "placement",
        "thr",
        "calls/s",
        "x direct",
        "p50 us",
        "p99 us",
        "p99.9 us"
    );
    for r in results {
        let ratio = direct_of(results, r)
            .map_or("-".to_string(), |d| format!("{:.2}", r.calls_per_sec() / d));
        println!(
            "{:<13} {:<16} {:>5} {:<9} {:>3} {:>13.0} {:>8} {:>10.2} {:>10.2} {:>10.2}",
            r.case.workload.name(),
            r.case.engine.name(),
            r.case.batch,
            r.case.placement_name(),
            r.case.threads,
            r.calls_per_sec(),
            ratio,
            us(r.latency.value_at_quantile(0.5)),
            us(r.latency.value_at_quantile(0.99)),
            us(r.latency.value_at_quantile(0.999)),
        );
    }
    println!("# latency: round trip of one batch (one call at batch 1)");
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

pub fn json(results: &[CaseResult], sys: &System, cfg: &Config) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "{{\n  \"kernel\": \"{}\",\n  \"cpus\": {},\n  \"cpu_model\": \"{}\",\n  \"warmup_ms\": {},\n  \"duration_ms\": {},\n  \"latency\": \"round trip of one batch, ns\",\n  \"results\": [\n",
        esc(&sys.kernel),
        sys.cpus,
        esc(&sys.cpu_model),
        cfg.warmup.as_millis(),
        cfg.duration.as_millis()
    );
    for (i, r) in results.iter().enumerate() {
        let ratio = direct_of(results, r).map_or("null".to_string(), |d| {
            format!("{:.4}", r.calls_per_sec() / d)
        });
        let _ = write!(
            s,
            "    {{\"workload\": \"{}\", \"engine\": \"{}\", \"batch\": {}, \"placement\": \"{}\", \"threads\": {}, \"calls\": {}, \"seconds\": {:.6}, \"calls_per_sec\": {:.1}, \"ratio_to_direct\": {}, \"p50_ns\": {}, \"p99_ns\": {}, \"p999_ns\": {}}}{}\n",
            r.case.workload.name(),
            r.case.engine.name(),
            r.case.batch,
            r.case.placement_name(),
            r.case.threads,
            r.calls,
            r.elapsed.as_secs_f64(),
            r.calls_per_sec(),
            ratio,
            r.latency.value_at_quantile(0.5),
            r.latency.value_at_quantile(0.99),
            r.latency.value_at_quantile(0.999),
            if i + 1 < results.len() { "," } else { "" }
        );
    }
    s.push_str("  ]\n}\n");
    s
}

/// Throughput against batch size, one panel per workload, one line per
/// engine and placement (single-threaded cases), direct as a flat line.
pub fn svg(results: &[CaseResult]) -> String {
    let workloads = [Workload::Getpid, Workload::WriteNull, Workload::Pipe];
    let batches = [1u32, 8, 32, 64];
    let (pw, ph, margin) = (420.0, 300.0, 60.0);
    let width = margin + workloads.len() as f64 * (pw + margin);
    let height = ph + 2.0 * margin + 120.0;
    let colors = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    ];
    let mut s = String::new();
    let _ = writeln!(s, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">");
    let _ = writeln!(s, "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
    let mut legend: Vec<(String, &str)> = Vec::new();
    for (wi, w) in workloads.iter().enumerate() {
        let x0 = margin + wi as f64 * (pw + margin);
        let y0 = margin;
        let series: Vec<&CaseResult> = results
            .iter()
            .filter(|r| r.case.workload == *w && r.case.threads == 1)
            .collect();
        let max = series.iter().map(|r| r.calls_per_sec()).fold(1.0, f64::max) * 1.1;
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" font-weight=\"bold\">{} (calls/s, 1 thread)</text>",
            x0,
            y0 - 10.0,
            w.name()
        );
        let _ = writeln!(s, "<rect x=\"{x0}\" y=\"{y0}\" width=\"{pw}\" height=\"{ph}\" fill=\"none\" stroke=\"black\"/>");
        for (bi, b) in batches.iter().enumerate() {
            let x = x0 + (bi as f64 + 0.5) * pw / batches.len() as f64;
            let _ = writeln!(
                s,
                "<text x=\"{x}\" y=\"{}\" text-anchor=\"middle\">{b}</text>",
                y0 + ph + 16.0
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">batch size</text>",
            x0 + pw / 2.0,
            y0 + ph + 32.0
        );
        for k in 0..=4 {
            let v = max * k as f64 / 4.0;
            let y = y0 + ph - ph * k as f64 / 4.0;
            let _ = writeln!(
                s,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"10\">{:.2e}</text>",
                x0 - 4.0,
                y + 3.0,
                v
            );
        }
        let mut keys: Vec<String> = Vec::new();
        for r in &series {
            let key = format!("{} {}", r.case.engine.name(), r.case.placement_name());
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        for (ki, key) in keys.iter().enumerate() {
            let color = colors[ki % colors.len()];
            let pts: Vec<(f64, f64)> = batches
                .iter()
                .enumerate()
                .filter_map(|(bi, b)| {
                    let r = series.iter().find(|r| {
                        format!("{} {}", r.case.engine.name(), r.case.placement_name()) == *key
                            && (r.case.batch == *b || r.case.engine == Engine::Direct)
                    })?;
                    let x = x0 + (bi as f64 + 0.5) * pw / batches.len() as f64;
                    Some((x, y0 + ph - ph * r.calls_per_sec() / max))
                })
                .collect();
            let path: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
            let dash = if key.starts_with("direct") {
                " stroke-dasharray=\"6,4\""
            } else {
                ""
            };
            let _ = writeln!(s, "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"{dash}/>", path.join(" "));
            for (x, y) in &pts {
                let _ = writeln!(
                    s,
                    "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3\" fill=\"{color}\"/>"
                );
            }
            if wi == 0 {
                legend.push((key.clone(), color));
            }
        }
    }
    for (i, (key, color)) in legend.iter().enumerate() {
        let x = margin + (i % 4) as f64 * 260.0;
        let y = margin + ph + 60.0 + (i / 4) as f64 * 18.0;
        let _ = writeln!(
            s,
            "<rect x=\"{x}\" y=\"{}\" width=\"14\" height=\"4\" fill=\"{color}\"/>",
            y - 4.0
        );
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{y}\">{}</text>",
            x + 20.0,
            key.replace("  ", " ")
        );
    }
    s.push_str("</svg>\n");
    s
}
