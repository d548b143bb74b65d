#!/bin/bash
# check-vm-logs.sh --job tests|bench --tap FILE --console FILE --qemu-rc N
#                  [--timeout S] [--splats FILE]
#
# Judges a VM run from its logs; exit 0 only if all of these hold:
#   - QEMU was not killed for running past its time (rc 124/137);
#   - the kernel log has no BUG/WARNING/Oops/lockdep/KASAN/UBSAN/"Call Trace"/
#     panic/hung-task/stall/kmemleak report;
#   - the job printed its exit line, with status 0;
#   - (tests) the TAP output has a plan, as many results as planned, and
#     no `not ok`.
# Prints the closing line "flexsc-vm: N passed, N failed".
# scripts/test-check-vm-logs.sh checks that each rule can fail.
set -uo pipefail

job=tests tap= console= qrc=0 timeout=? splats=/dev/null
while [ $# -gt 0 ]; do
	case "$1" in
	--job) job=$2 ;;
	--tap) tap=$2 ;;
	--console) console=$2 ;;
	--qemu-rc) qrc=$2 ;;
	--timeout) timeout=$2 ;;
	--splats) splats=$2 ;;
	*) echo "check-vm-logs: unknown argument $1" >&2; exit 2 ;;
	esac
	shift 2
done

# The serial port ends lines with \r\n.
clean() { tr -d '\r' <"$1"; }
fail=0

if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
	echo "FAIL: the VM ran past ${timeout}s and was killed" >&2
	fail=1
fi

# (lockdep's reports are WARNINGs or name their kind; its boot banner
# "RCU lockdep checking is enabled" is not a report.)
splat='BUG:|WARNING:|Oops|Call Trace|possible circular|possible recursive|inconsistent lock state|suspicious RCU usage|bad unlock balance|lockdep is turned off|DEBUG_LOCKS_WARN_ON|KASAN|UBSAN|suspected memory leak|general protection fault|Kernel panic|kernel BUG|INFO: task .* blocked|soft lockup|hard LOCKUP|RCU stall|rcu_.*detected stall'
if clean "$console" | grep -nE "$splat" >"$splats"; then
	echo "FAIL: the kernel log has reports ($console):" >&2
	head -40 "$splats" >&2
	fail=1
fi

job_rc=$(clean "$tap" | sed -n 's/^flexsc-job-exit \([0-9]*\).*/\1/p' | tail -1)
if [ -z "$job_rc" ]; then
	echo "FAIL: the job did not finish (no exit line); last console lines:" >&2
	clean "$console" | tail -20 >&2
	fail=1
elif [ "$job_rc" != 0 ]; then
	echo "FAIL: the job exited with status $job_rc" >&2
	fail=1
fi

passed=0 failed=0
if [ "$job" = tests ] || [ "$job" = debug ]; then
	plan=$(clean "$tap" | grep -m1 -E '^1\.\.[0-9]+$' | cut -d. -f3)
	passed=$(clean "$tap" | grep -cE '^ok [0-9]+')
	failed=$(clean "$tap" | grep -cE '^not ok [0-9]+')
	if [ -z "$plan" ]; then
		echo "FAIL: no TAP plan in $tap" >&2
		fail=1
	else
		if [ "$failed" != 0 ]; then
			echo "FAIL: $failed test(s) not ok:" >&2
			clean "$tap" | grep -E '^not ok' >&2
			fail=1
		fi
		if [ $((passed + failed)) != "$plan" ]; then
			echo "FAIL: planned $plan tests, saw $((passed + failed)) results" >&2
			fail=1
		fi
	fi
	# A run judged failed for a reason outside TAP counts as one failure.
	[ "$fail" = 0 ] || [ "$failed" != 0 ] || failed=1
	echo "flexsc-vm: $passed passed, $failed failed"
fi
exit $fail
