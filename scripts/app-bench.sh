#!/bin/bash
# app-bench.sh [--kernel BZIMAGE] [--secs N] [--conns N] [--log-dir DIR]
#
# A real, unmodified server in the FlexSC kernel: Debian's nginx, natively
# and under flexsc-run, under the same load from Debian's wrk, in one VM
# booted by vm-run.sh with this machine's own userland. nginx serves a 1 KiB
# static file on 127.0.0.1:8080 from a configuration generated into /tmp
# (one process: master_process off, worker_processes 1, access_log off);
# wrk runs one thread and N keep-alive connections for S seconds.
#
# Prints requests/s and latency percentiles side by side, and where the time
# goes: the VM's CPUs (user, system, irq+softirq, idle), nginx's CPU time
# (its FlexSC systhreads, io-threads of the process, included) and wrk's,
# and, from a second, traced run of 2 s, the system calls nginx
# entered by trap and the calls FlexSC dispatched (tracefs event counts).
# A column whose server did not run says why (e.g. "flexsc-run not built");
# only a native run that fails makes app-bench fail.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

port=8080

# ---------------------------------------------------------------------------
# Inside the VM: app-bench.sh --in-vm SECS CONNS FLEXSC_RUN
in_vm() {
	local secs=$1 conns=$2 flexsc_run=$3
	d=/tmp/app-bench
	mkdir -p $d/html $d/tmp
	head -c 1024 /dev/zero | tr '\0' x >$d/html/index.html
	cat >$d/nginx.conf <<CONF
worker_processes 1;
master_process off;
daemon off;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 1024; }
http {
	access_log off;
	sendfile on;
	keepalive_requests 100000000;
	client_body_temp_path $d/tmp/body;
	proxy_temp_path $d/tmp/proxy;
	fastcgi_temp_path $d/tmp/fastcgi;
	uwsgi_temp_path $d/tmp/uwsgi;
	scgi_temp_path $d/tmp/scgi;
	types { text/html html; }
	server { listen 127.0.0.1:$port; root $d/html; }
}
CONF
	# wrk's own report: exact percentiles (µs) and counts.
	cat >$d/report.lua <<'LUA'
done = function(summary, latency, requests)
	local e = summary.errors
	io.write(string.format("requests %d\nduration_us %d\nbytes %d\n",
		summary.requests, summary.duration, summary.bytes))
	io.write(string.format("errors %d\n", e.connect + e.read + e.write + e.status + e.timeout))
	for _, p in ipairs({50, 75, 90, 99, 99.9}) do
		io.write(string.format("p%s_us %d\n", p, latency:percentile(p)))
	end
	io.write(string.format("mean_us %.1f\nmax_us %d\n", latency.mean, latency.max))
end
LUA
	echo "# nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}'), kernel $(uname -r), FlexSC ABI $(cat /sys/kernel/flexsc/abi_version 2>/dev/null || echo missing), $(nproc) CPUs"
	echo "# load: wrk -t1 -c$conns -d${secs}s http://127.0.0.1:$port/index.html (1 KiB, keep-alive)"

	local rc=0
	run_server native "$secs" "$conns" || rc=1
	if [ -z "$flexsc_run" ]; then
		echo "skip flexsc-run not built" >$d/flexsc.res
	elif [ ! -r /sys/kernel/flexsc/abi_version ]; then
		echo "skip no FlexSC in this kernel" >$d/flexsc.res
	else
		run_server flexsc "$secs" "$conns" "$flexsc_run" -- || true
	fi
	table $d/native.res $d/flexsc.res
	return $rc
}

# CPU jiffies of the whole VM: user nice system idle iowait irq softirq.
cpu_now() { awk '/^cpu /{print $2, $3, $4, $5, $6, $7, $8}' /proc/stat; }
# A process's user and system CPU time (ticks), its threads included.
proc_cpu() { awk '{print $14, $15}' "/proc/$1/stat" 2>/dev/null || echo "0 0"; }

# run_server NAME SECS CONNS [LAUNCHER...]: start nginx (under LAUNCHER), load
# it, write NAME.res ("key value" lines, or "skip REASON").
run_server() {
	local name=$1 secs=$2 conns=$3
	shift 3
	local res=$d/$name.res url=http://127.0.0.1:$port/index.html
	rm -f $d/nginx.pid $d/error.log
	: >$res
	"$@" nginx -p $d -e $d/error.log -c $d/nginx.conf >$d/$name-server.log 2>&1 &
	local launcher=$! pid= i
	for i in $(seq 300); do
		if [ -s $d/nginx.pid ] && (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then
			pid=$(cat $d/nginx.pid)
			break
		fi
		kill -0 $launcher 2>/dev/null || break
		sleep 0.1
	done
	if [ -z "$pid" ]; then
		echo "skip nginx did not start" >$res
		echo "# $name: nginx did not start; its output and error log:"
		sed 's/^/#   /' $d/$name-server.log $d/error.log 2>/dev/null | tail -20
		kill $launcher 2>/dev/null || true
		wait $launcher 2>/dev/null || true
		return 1
	fi
	local code
	code=$(curl -s -o /dev/null -w '%{http_code}' $url || true)
	if [ "$code" != 200 ]; then
		echo "skip GET answered ${code:-nothing}" >$res
		kill "$pid" 2>/dev/null || true
		wait $launcher 2>/dev/null || true
		return 1
	fi

	# The measured run.
	local c0 c1 n0 n1 wt
	c0=$(cpu_now) n0=$(proc_cpu "$pid")
	wt=$( { wrk -t1 -c"$conns" -d"${secs}s" -s $d/report.lua $url >$d/$name-wrk.txt; times; } | tail -1)
	c1=$(cpu_now) n1=$(proc_cpu "$pid")
	cat $d/$name-wrk.txt >>$res
	# wrk's CPU from the shell's children times: "0m1.234s 0m0.567s".
	echo "$wt" | awk '{
		split($1, u, /[ms]/); split($2, s, /[ms]/);
		printf "wrk_user_s %.2f\nwrk_sys_s %.2f\n", u[1] * 60 + u[2], s[1] * 60 + s[2] }' >>$res
	local hz
	hz=$(getconf CLK_TCK)
	echo "$n0 $n1" | awk -v hz="$hz" '{ printf "nginx_user_s %.2f\nnginx_sys_s %.2f\n", ($3 - $1) / hz, ($4 - $2) / hz }' >>$res
	echo "$c0 $c1" | awk '{
		t = 0; for (i = 1; i <= 7; i++) { d[i] = $(i + 7) - $i; t += d[i] }
		if (t == 0) t = 1
		printf "vm_user_pct %.0f\nvm_sys_pct %.0f\nvm_irq_pct %.0f\nvm_idle_pct %.0f\n",
			100 * (d[1] + d[2]) / t, 100 * d[3] / t, 100 * (d[6] + d[7]) / t, 100 * (d[4] + d[5]) / t }' >>$res

	# The traced run: nginx's trapping system calls (raw_syscalls:sys_enter
	# on its threads) and FlexSC's dispatches, counted by the ring buffers.
	trace_run "$name" "$pid" "$conns" "$url" >>$res || echo "# $name: no trace counts (tracefs?)"

	kill -QUIT "$pid" 2>/dev/null
	for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null || true
	wait $launcher 2>/dev/null || true
	return 0
}

trace_run() {
	local name=$1 pid=$2 conns=$3 url=$4 t=/sys/kernel/tracing
	[ -d $t/events/raw_syscalls ] || return 1
	local sc=$t/instances/appbench-sc fx=$t/instances/appbench-fx tid filter=
	rmdir $sc $fx 2>/dev/null || true
	mkdir $sc $fx
	echo 4096 >$sc/buffer_size_kb
	echo 1024 >$fx/buffer_size_kb
	for tid in $(ls /proc/"$pid"/task); do
		filter="${filter:+$filter || }common_pid == $tid"
	done
	echo "$filter" >$sc/events/raw_syscalls/sys_enter/filter
	echo 1 >$sc/events/raw_syscalls/sys_enter/enable
	if [ -d $fx/events/flexsc/dispatch ]; then echo 1 >$fx/events/flexsc/dispatch/enable; fi
	wrk -t1 -c"$conns" -d2s -s $d/report.lua "$url" >$d/$name-traced.txt
	echo 0 >$sc/events/raw_syscalls/sys_enter/enable
	[ ! -d $fx/events/flexsc/dispatch ] || echo 0 >$fx/events/flexsc/dispatch/enable
	count() { cat "$1"/per_cpu/cpu*/stats | awk '/^(entries|overrun):/ { n += $2 } END { print n + 0 }'; }
	echo "threads $(ls /proc/"$pid"/task | wc -l)"
	local reqs traps
	reqs=$(awk '/^requests /{print $2}' $d/$name-traced.txt) traps=$(count $sc)
	echo "traced_requests $reqs"
	echo "traced_trap_calls $traps"
	echo "traced_flexsc_calls $(count $fx)"
	# Which calls, by name, per request (the mix of those the buffer kept).
	local unistd=/usr/include/x86_64-linux-gnu/asm/unistd_64.h
	awk -v traps="$traps" -v reqs="$reqs" '
		FILENAME != "-" { if ($1 == "#define" && $2 ~ /^__NR_/) name[$3] = substr($2, 6); next }
		match($0, /sys_enter: NR [0-9]+/) { n = substr($0, RSTART + 14, RLENGTH - 14); c[n]++; seen++ }
		END {
			if (!seen || !reqs) exit
			line = ""
			for (n in c) line = line sprintf("%s %.2f\n", (n in name) ? name[n] : "nr" n, c[n] / seen * traps / reqs)
			printf "%s", line
		}' $unistd - <$sc/trace | sort -k2 -rn | head -8 |
		awk '$2 >= 0.01 { printf "%s%s=%s", (k++ ? ", " : "mix "), $1, $2 } END { if (k) print "" }'
	rmdir $sc $fx 2>/dev/null || true
}

# table NATIVE.res FLEXSC.res: the two columns side by side.
table() {
	awk '
	FNR == 1 { col++ }
	/^skip / { sub(/^skip /, ""); skip[col] = $0; next }
	/^mix / { mix[col] = substr($0, 5); next }
	{ v[col, $1] = $2 }
	function ms(c, k) { return (c, k) in v ? sprintf("%.2f", v[c, k] / 1000) : "-" }
	function per(c, a, b) { return ((c, a) in v && v[c, b] > 0) ? sprintf("%.1f", v[c, a] / v[c, b]) : "-" }
	function row(label, a, b) { printf "%-32s %22s %22s\n", label, a, b }
	function cell(c, what) {
		if (c in skip) return "(" skip[c] ")"
		if (what == "rps") return sprintf("%.0f", v[c, "requests"] / (v[c, "duration_us"] / 1e6))
		if (what == "cpu") return sprintf("%s/%s/%s/%s", v[c, "vm_user_pct"], v[c, "vm_sys_pct"], v[c, "vm_irq_pct"], v[c, "vm_idle_pct"])
		if (what == "nginx") return sprintf("%.2f/%.2f", v[c, "nginx_user_s"], v[c, "nginx_sys_s"])
		if (what == "nginx_us") return sprintf("%.0f", 1e6 * (v[c, "nginx_user_s"] + v[c, "nginx_sys_s"]) / v[c, "requests"])
		if (what == "wrk") return sprintf("%.2f/%.2f", v[c, "wrk_user_s"], v[c, "wrk_sys_s"])
		if (what == "trap") return per(c, "traced_trap_calls", "traced_requests")
		if (what == "flexsc") return per(c, "traced_flexsc_calls", "traced_requests")
		if (what ~ /^p/ || what == "mean_us") return ms(c, what)
		return (c, what) in v ? v[c, what] : "-"
	}
	END {
		row("", "native", "flexsc-run")
		if (1 in skip && 2 in skip) { row("", cell(1, ""), cell(2, "")); exit }
		row("requests/s", cell(1, "rps"), cell(2, "rps"))
		row("requests", cell(1, "requests"), cell(2, "requests"))
		row("errors (socket, non-2xx)", cell(1, "errors"), cell(2, "errors"))
		row("latency mean (ms)", cell(1, "mean_us"), cell(2, "mean_us"))
		row("latency p50 (ms)", cell(1, "p50_us"), cell(2, "p50_us"))
		row("latency p75 (ms)", cell(1, "p75_us"), cell(2, "p75_us"))
		row("latency p90 (ms)", cell(1, "p90_us"), cell(2, "p90_us"))
		row("latency p99 (ms)", cell(1, "p99_us"), cell(2, "p99_us"))
		row("latency p99.9 (ms)", cell(1, "p99.9_us"), cell(2, "p99.9_us"))
		row("VM CPUs user/sys/irq/idle %", cell(1, "cpu"), cell(2, "cpu"))
		row("nginx CPU user/sys (s)", cell(1, "nginx"), cell(2, "nginx"))
		row("nginx CPU per request (us)", cell(1, "nginx_us"), cell(2, "nginx_us"))
		row("nginx threads (systhreads incl.)", cell(1, "threads"), cell(2, "threads"))
		row("wrk CPU user/sys (s)", cell(1, "wrk"), cell(2, "wrk"))
		row("nginx trapping syscalls/request", cell(1, "trap"), cell(2, "trap"))
		row("FlexSC-dispatched calls/request", cell(1, "flexsc"), cell(2, "flexsc"))
		for (c = 1; c <= 2; c++)
			if (c in mix) printf "# %s, trapping calls per request: %s\n", (c == 1 ? "native" : "flexsc-run"), mix[c]
	}' "$1" "$2"
}

if [ "${1:-}" = --in-vm ]; then
	shift
	in_vm "$@"
	exit
fi

# ---------------------------------------------------------------------------
# On the host.
kernel=$BUILD/kernel/arch/x86/boot/bzImage secs=10 conns=4 logdir=$BUILD/vmrun/app-bench
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel) kernel=$2 ;;
	--secs) secs=$2 ;;
	--conns) conns=$2 ;;
	--log-dir) logdir=$2 ;;
	*) die "unknown argument $1" ;;
	esac
	shift 2
done
for prog in nginx wrk curl; do
	command -v $prog >/dev/null || die "no $prog on this machine (make deps installs nginx and wrk)"
done
# FLEXSC_RUN=PATH names the launcher; otherwise the first one built.
flexsc_run=${FLEXSC_RUN:-}
[ -z "$flexsc_run" ] || [ -x "$flexsc_run" ] || die "FLEXSC_RUN=$flexsc_run is not an executable"
[ -n "$flexsc_run" ] || for f in "$TOP/target/x86_64-unknown-linux-gnu/release/flexsc-run" "$TOP/target/release/flexsc-run" \
	"$BUILD/flexsc-run/flexsc-run" "$BUILD/flexsc-run/bin/flexsc-run"; do
	if [ -x "$f" ]; then flexsc_run=$f; break; fi
done
echo "# app-bench $(date -u +%Y-%m-%dT%H:%MZ), commit $(git -C "$TOP" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$TOP" diff --quiet HEAD 2>/dev/null || echo ' (dirty)')"
echo "# host: $(uname -srm), $(nproc) CPUs, $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)"
echo "# flexsc-run: ${flexsc_run:-not built}"
exec "$(dirname "$0")/vm-run.sh" --kernel "$kernel" --log-dir "$logdir" -- \
	"$(printf '%q ' "$TOP/scripts/app-bench.sh" --in-vm "$secs" "$conns" "$flexsc_run")"
