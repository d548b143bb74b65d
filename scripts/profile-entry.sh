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
#   FlexSC, per entry: flexsc_run_entry (C: seccomp, follow, trace, the
#                      call, signal state), and in it x64_sys_call
#   io_uring, per SQE: io_issue_sqe, and in it io_nop or io_write
# (the Rust around them, the claim and the DONE store, is inlined into
# the worker's loop and not traced).
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
echo funcgraph-tail > \$T/trace_options
echo 1 > \$T/tracing_on
$bench --quick --rounds 1 --duration-ms 100 --warmup-ms 20 --sweep 1 --out /tmp/bench >/dev/null
echo 0 > \$T/tracing_on
cat \$T/set_graph_function > $out/functions.txt
cp \$T/trace $out/trace.txt
"
# Per entry (FlexSC: flexsc_run_entry; io_uring: io_issue_sqe), the time
# of the call itself (x64_sys_call; io_nop or io_write) and around it,
# per workload, medians.
python3 - "$out/trace.txt" <<'PY' | tee "$out/profile.txt"
import re, sys, statistics
line_re = re.compile(r'^\s*(\d+)\)\s+\S+\s+\|\s+(?:[+!#*@$]\s*)?([0-9.]+)?\s*(?:us)?\s*\|\s+(.*)$')
stacks = {}
res = {}   # (outer, workload) -> list of (total, inner)
INNER = {'flexsc_run_entry': ('x64_sys_call',), 'io_issue_sqe': ('io_nop', 'io_write')}
WL = {'__x64_sys_getpid': 'getpid', '__x64_sys_write': 'write', 'io_nop': 'getpid(nop)', 'io_write': 'write'}
for line in open(sys.argv[1], errors='replace'):
    m = line_re.match(line)
    if not m:
        continue
    cpu, dur, body = m.group(1), m.group(2), m.group(3).strip()
    st = stacks.setdefault(cpu, [])
    if body.endswith('{'):
        st.append({'name': body[:-4].strip() if body.endswith('() {') else body, 'inner': None, 'wl': None})
    elif body.startswith('}'):
        name = re.search(r'/\* (\S+) \*/', body)
        if not st:
            continue
        fr = st.pop()
        d = float(dur) if dur else None
        if st and d is not None:
            parent = st[-1]
            if fr['name'] in INNER.get(parent['name'], ()):
                parent['inner'] = d
            if fr['name'] in WL: parent['wl'] = WL[fr['name']]
            if fr['wl'] and not parent['wl']: parent['wl'] = fr['wl']
        if fr['name'] in INNER and d is not None and fr['inner'] is not None:
            res.setdefault((fr['name'], fr['wl']), []).append((d, fr['inner']))
    elif body.endswith('();') and dur:
        name = body[:-3]
        if st:
            parent = st[-1]
            if name in INNER.get(parent['name'], ()):
                parent['inner'] = float(dur)
            if name in WL: parent['wl'] = WL[name]
print(f"{'path':<18} {'workload':<12} {'n':>7} {'total us':>9} {'the call us':>12} {'around it us':>13}")
for (outer, wl), v in sorted(res.items(), key=lambda kv: (kv[0][1] or '', kv[0][0])):
    if len(v) < 50: continue
    tot = statistics.median([a for a, b in v]); inn = statistics.median([b for a, b in v])
    over = statistics.median([a - b for a, b in v])
    print(f"{outer:<18} {str(wl):<12} {len(v):>7} {tot:>9.3f} {inn:>12.3f} {over:>13.3f}")
PY
