#!/bin/sh
# vm-job.sh [check|bench|pytest=MOD+MOD...] — runs in the booted FlexSC kernel,
# under scripts/vm-run.sh (scripts/flexsc-run-check.sh starts it) with
# FXRUN_DIR=build/flexsc-run.
#
#   check   flexsc-run's tests natively and under flexsc-run (with and
#           without rewriting), real programs (ls, python3) compared with
#           their native output, and --stats showing calls through FlexSC.
#           TAP; each program's own TAP indented beneath.
#   bench   the cost of one call: fxt-bench natively, under --no-flexsc
#           (interception only) and through FlexSC, with and without
#           rewriting.
#   pytest  Python's regression tests named, natively and under flexsc-run,
#           compared case by case (lines "# cmp ..."); FXRUN_PYTESTS is a
#           directory whose test/ package has the test modules.
job=${1:-check}
n=0
fail=0
ok() { # ok COND-STATUS DESCRIPTION
	n=$((n + 1))
	if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fail=1; fi
}
indent() { sed 's/^/    /'; }
here=$(cd "$(dirname "$0")" && pwd)
fxdir=${FXRUN_DIR:-$(cd "$(dirname "$0")/../../build/flexsc-run" && pwd)}
fxrun=$fxdir/flexsc-run
tests=$fxdir/tests
tmp=$(mktemp -d)
cd "$tmp" || exit 1
abi=$(cat /sys/kernel/flexsc/abi_version 2>/dev/null || echo missing)
echo "# flexsc-run in kernel $(uname -r), $(nproc) CPUs, FlexSC ABI $abi"

# The total "through FlexSC" of a --stats file.
through() { sed -n 's/.* system calls, \([0-9]*\) through FlexSC.*/\1/p' "$1" | awk '{s += $1} END {print s + 0}'; }
direct() { sed -n 's/.* through FlexSC, \([0-9]*\) direct.*/\1/p' "$1" | awk '{s += $1} END {print s + 0}'; }

case "$job" in
check|"")
	[ "$abi" = 1 ]; ok $? "the kernel has FlexSC ABI v1"
	for t in fxt-basic fxt-threads fxt-fork fxt-signals; do
		"$tests/$t" >$tmp/native.out 2>&1
		ok $? "$t natively"
		for mode in rewrite no-rewrite; do
			opt=
			[ "$mode" = rewrite ] || opt=--no-rewrite
			rm -f $tmp/stats
			(FXT_INTERCEPTED=1 timeout 300 $fxrun $opt --stats=$tmp/stats "$tests/$t" 2>&1
			 echo $? >$tmp/rc) | indent
			ok "$(cat $tmp/rc)" "$t under flexsc-run ($mode)"
			f=$(through $tmp/stats) d=$(direct $tmp/stats)
			[ "$f" -gt 0 ]; ok $? "$t ($mode): $f calls through FlexSC, $d direct"
		done
	done
	# A real program: same output, calls through FlexSC.
	lsargs="-lR /etc/apt /usr/lib/x86_64-linux-gnu/gconv"
	/usr/bin/ls $lsargs >$tmp/ls.native 2>&1
	rm -f $tmp/stats
	$fxrun --stats=$tmp/stats /usr/bin/ls $lsargs >$tmp/ls.fx 2>&1
	ok $? "ls $lsargs under flexsc-run"
	cmp -s $tmp/ls.native $tmp/ls.fx; ok $? "ls prints the same as natively"
	f=$(through $tmp/stats) d=$(direct $tmp/stats)
	[ "$f" -gt 0 ]; ok $? "ls: $f calls through FlexSC, $d direct"
	sed 's/^/# /' $tmp/stats
	if [ -x /usr/bin/python3 ]; then
		prog='import os, subprocess, threading, tempfile, signal
d = tempfile.mkdtemp()
for i in range(50):
    with open(os.path.join(d, str(i)), "w") as f: f.write(str(i) * i)
print(sorted(os.listdir(d), key=int)[-3:], sum(os.path.getsize(os.path.join(d, x)) for x in os.listdir(d)))
out = []
ts = [threading.Thread(target=lambda i=i: out.append(len(open(os.path.join(d, str(i))).read()))) for i in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
print(sorted(out))
print(subprocess.run(["ls", d], capture_output=True, text=True).stdout.split()[:5])
def timeout(*a): raise TimeoutError
signal.signal(signal.SIGALRM, timeout)
signal.setitimer(signal.ITIMER_REAL, 0.2)
r, w = os.pipe()
try: os.read(r, 1)
except TimeoutError: print("timed out")
signal.setitimer(signal.ITIMER_REAL, 0.2)
signal.signal(signal.SIGALRM, lambda *a: os.write(w, b"x"))
print(os.read(r, 1))'
		python3 -c "$prog" >$tmp/py.native 2>&1
		ok $? "python3 natively"
		rm -f $tmp/stats
		timeout 300 $fxrun --stats=$tmp/stats python3 -c "$prog" >$tmp/py.fx 2>&1
		ok $? "python3 under flexsc-run"
		indent <$tmp/py.fx
		cmp -s $tmp/py.native $tmp/py.fx; ok $? "python3 prints the same as natively"
		f=$(through $tmp/stats) d=$(direct $tmp/stats)
		[ "$f" -gt 0 ]; ok $? "python3: $f calls through FlexSC, $d direct"
		sed 's/^/# /' $tmp/stats
	fi
	echo "1..$n"
	exit $fail
	;;
bench)
	N=${FXBENCH_N:-20000}
	echo "# fxt-bench $N: one getppid() and one pread() of 64 bytes, ns per call;"
	echo "# three runs each (TCG on a shared host: the systhread's vCPU may not run)"
	run() { # run LABEL CMD...
		label=$1
		shift
		for i in 1 2 3; do
			echo "# $label: $("$@" "$tests/fxt-bench" "$N")"
		done
	}
	run "native" env
	run "intercepted, direct, SIGSYS" $fxrun --no-flexsc --no-rewrite
	run "intercepted, direct, rewritten" $fxrun --no-flexsc
	run "FlexSC, SIGSYS" $fxrun --no-rewrite
	run "FlexSC, rewritten" $fxrun
	run "FlexSC, rewritten, spin=0" $fxrun --spin=0
	run "FlexSC, rewritten, caller CPU 0, systhread CPU 1" taskset -c 0 $fxrun --cpus=1
	run "FlexSC, rewritten, caller and systhread CPU 0" taskset -c 0 $fxrun --cpus=0
	ok 0 "bench ran"
	echo "1..$n"
	;;
pytest=*)
	mods=$(echo "${job#pytest=}" | tr '+' ' ')
	[ -z "${FXRUN_PYTESTS:-}" ] || export PYTHONPATH=$FXRUN_PYTESTS
	for m in $mods; do
		timeout 1500 python3 -m test -v "$m" >"$tmp/$m.native" 2>&1
		nrc=$?
		timeout 1500 $fxrun --stats=$tmp/$m.stats python3 -m test -v "$m" >"$tmp/$m.fx" 2>&1
		frc=$?
		for side in native fx; do
			awk -f "$here/pycases.awk" "$tmp/$m.$side" | sort >"$tmp/$m.$side.cases"
		done
		total=$(wc -l <"$tmp/$m.native.cases")
		same=$(grep -cFxf "$tmp/$m.native.cases" "$tmp/$m.fx.cases")
		echo "# cmp $m: native rc $nrc, flexsc-run rc $frc, $total cases natively, $same with the same outcome"
		for side in native fx; do
			for r in ok skipped expected-failure FAIL ERROR '?'; do
				printf '# cmp %s %s %s %s\n' "$m" "$side" "$r" \
					"$(grep -c " $r\$" "$tmp/$m.$side.cases")"
			done
		done
		grep -vFxf "$tmp/$m.fx.cases" "$tmp/$m.native.cases" | sed 's/^/# diff native: /'
		grep -vFxf "$tmp/$m.native.cases" "$tmp/$m.fx.cases" | sed 's/^/# diff flexsc-run: /'
		f=$(through "$tmp/$m.stats") d=$(direct "$tmp/$m.stats")
		echo "# cmp $m: $f calls through FlexSC, $d direct"
		grep -B2 -A30 "^\(FAIL\|ERROR\):" "$tmp/$m.fx" | head -80 | sed 's/^/# fx: /'
		[ "$total" -gt 0 ] && [ "$same" = "$total" ]
		ok $? "$m: every case has the same outcome under flexsc-run"
	done
	echo "1..$n"
	exit $fail
	;;
*)
	echo "vm-job.sh: unknown job $job"
	exit 2
	;;
esac
