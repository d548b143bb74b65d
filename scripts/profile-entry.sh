#!/bin/bash
# profile-entry.sh [--kernel BZIMAGE]
#
# Where an entry's time goes, against io_uring's path: boots the profiling
# kernel (configs/profile.config: function_graph) with the host's userland
# (scripts/vm-run.sh), runs a short flexsc-bench under ftrace's
# function_graph tracer restricted to the functions of both paths, and
# prints the mean and median time of each (build/profile/: the trace and
# the table). The tracer's own cost inflates every traced call: compare
# the paths with each other, not with the benchmark's numbers.
#
#   FlexSC, per pass:  Worker::serve (one registration, up to 64 entries)
#   FlexSC, per entry: flexsc_run_entry (C: seccomp, follow, the call)
#                      x64_sys_call (the system call itself)
#   inline:            Registration::run_inline (flexsc_wait() on the
#                      caller's CPU, per batch)
#   io_uring:          io_submit_sqes (per batch), io_issue_sqe (per SQE)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

kernel=$BUILD/kernel-profile/arch/x86/boot/bzImage
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel) kernel=$2; shift 2 ;;
	*) die "unknown argument $1" ;;
	esac
done
[ -f "$kernel" ] || die "no kernel at $kernel (make profile-kernel)"
out=$BUILD/profile
mkdir -p "$out"
bench=$TOP/target/x86_64-unknown-linux-gnu/release/flexsc-bench
[ -x "$bench" ] || die "no $bench (make userspace)"

"$TOP/scripts/vm-run.sh" --kernel "$kernel" --log-dir "$out/vm" -- "
set -e
T=/sys/kernel/tracing
echo 0 > \$T/tracing_on
echo function_graph > \$T/current_tracer
echo 3 > \$T/max_graph_depth
echo 65536 > \$T/buffer_size_kb
: > \$T/set_graph_function
for f in flexsc_run_entry io_submit_sqes io_issue_sqe '*Worker5serve*' '*run_inline*'; do
	echo \"\$f\" >> \$T/set_graph_function 2>/dev/null || true
done
echo funcgraph-proc > \$T/trace_options
echo 1 > \$T/tracing_on
$bench --quick --rounds 1 --duration-ms 100 --warmup-ms 20 --sweep 1 --out /tmp/bench >/dev/null
echo 0 > \$T/tracing_on
cat \$T/set_graph_function > $out/functions.txt
cp \$T/trace $out/trace.txt
"
python3 - "$out/trace.txt" <<'PY' | tee "$out/profile.txt"
import re, sys, statistics
# function_graph lines: " 1)  flexsc-b-93   |   0.812 us    |      x64_sys_call();"
# or a closing "} /* name */" with its duration.
dur = {}
pat = re.compile(r'\|\s+([0-9.]+) us\s+[|!#*@$+ ]*\|\s+(?:\} /\* (\S+) \*/|(\S+)\(\);)')
for line in open(sys.argv[1], errors='replace'):
    m = pat.search(line)
    if not m:
        continue
    name = m.group(2) or m.group(3)
    name = re.sub(r'^_R.*?(Worker5serve|run_inline).*$', r'\1', name)
    dur.setdefault(name, []).append(float(m.group(1)))
print(f"{'function':<34} {'calls':>8} {'mean us':>9} {'median us':>10}")
for name in sorted(dur, key=lambda n: -len(dur[n])):
    v = dur[name]
    if len(v) < 20:
        continue
    print(f"{name[:34]:<34} {len(v):>8} {statistics.mean(v):>9.3f} {statistics.median(v):>10.3f}")
PY
