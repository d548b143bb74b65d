#!/bin/bash
# run-vm.sh --kernel BZIMAGE --initrd CPIO --job tests|bench|shell [--log-dir DIR] [--timeout S]
#
# Boots the FlexSC kernel in QEMU (KVM where /dev/kvm really works, TCG
# otherwise) and runs a job of the initramfs's /init.
#
#   tests  The job's TAP goes to DIR/tap.log (and to the terminal), the
#          kernel's console to DIR/console.log. Fails (exit 1) on a missing
#          plan, any `not ok`, fewer results than planned, a job that did not
#          finish, a timeout, or any BUG/WARNING/Oops/lockdep/KASAN/UBSAN/
#          "Call Trace" line in the kernel log.
#   bench  Like tests, for flexsc-bench; its files come back in DIR/out/.
#   shell  An interactive shell on the console.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

kernel= initrd= job=tests logdir=$BUILD/vm timeout=${FLEXSC_VM_TIMEOUT:-1200}
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel) kernel=$2; shift 2 ;;
	--initrd) initrd=$2; shift 2 ;;
	--job) job=$2; shift 2 ;;
	--log-dir) logdir=$2; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	*) die "unknown argument $1" ;;
	esac
done
[ -f "$kernel" ] || die "no kernel at $kernel"
[ -f "$initrd" ] || die "no initramfs at $initrd"

# KVM only where it really works: /dev/kvm usable, the CPU has VMX/SVM, and
# QEMU can open it. FLEXSC_ACCEL=tcg|kvm overrides.
accel=${FLEXSC_ACCEL:-}
if [ -z "$accel" ]; then
	accel=tcg
	if [ -r /dev/kvm ] && [ -w /dev/kvm ] && grep -qE '\b(vmx|svm)\b' /proc/cpuinfo &&
		echo quit | timeout 20 qemu-system-x86_64 -accel kvm -machine q35 -nodefaults \
			-display none -monitor stdio >/dev/null 2>&1; then
		accel=kvm
	fi
fi
if [ "$accel" = kvm ]; then cpu=host; else cpu=max; fi
smp=${FLEXSC_VM_CPUS:-2}
say "booting $(basename "$kernel") under QEMU ($accel, $smp CPUs), job: $job"

qemu=(qemu-system-x86_64 -accel "$accel" -cpu "$cpu" -smp "$smp" -m 1024
	-kernel "$kernel" -initrd "$initrd" -no-reboot -nodefaults -display none)
cmdline="console=ttyS0 panic=-1 oops=panic flexsc.job=$job"

if [ "$job" = shell ]; then
	exec "${qemu[@]}" -serial stdio -append "$cmdline"
fi

mkdir -p "$logdir"
console=$logdir/console.log tap=$logdir/tap.log
rm -f "$console" "$tap"
: >"$tap"
start=$(date +%s)
set +e
timeout --kill-after=10 "$timeout" "${qemu[@]}" \
	-serial "file:$console" -serial "file:$tap" -append "$cmdline" &
qpid=$!
tail -n +1 -f --pid=$qpid "$tap" 2>/dev/null &
tpid=$!
wait $qpid
qrc=$?
sleep 0.3
kill $tpid 2>/dev/null
wait $tpid 2>/dev/null
set -e
elapsed=$(( $(date +%s) - start ))

fail=0
if [ $qrc = 124 ] || [ $qrc = 137 ]; then
	echo "FAIL: the VM ran past ${timeout}s and was killed" >&2
	fail=1
fi

# Any kernel report fails the run, whatever the job printed.
splat='BUG:|WARNING:|Oops|Call Trace|lockdep|possible circular|possible recursive|KASAN|UBSAN|suspected memory leak|general protection fault|Kernel panic|kernel BUG|INFO: task .* blocked|soft lockup|hard LOCKUP|RCU stall|rcu_.*detected stall'
if grep -nE "$splat" "$console" >"$logdir/splats.txt"; then
	echo "FAIL: the kernel log has reports ($console):" >&2
	head -40 "$logdir/splats.txt" >&2
	fail=1
fi

# The serial port ends lines with \r\n.
tr -d '\r' <"$tap" >"$tap.tmp" && mv "$tap.tmp" "$tap"
tr -d '\r' <"$console" >"$console.tmp" && mv "$console.tmp" "$console"

job_rc=$(sed -n 's/^flexsc-job-exit \([0-9]*\).*/\1/p' "$tap" | tail -1)
if [ -z "$job_rc" ]; then
	echo "FAIL: the job did not finish (no exit line); last console lines:" >&2
	tail -20 "$console" >&2
	fail=1
elif [ "$job_rc" != 0 ]; then
	echo "FAIL: the job exited with status $job_rc" >&2
	fail=1
fi

if [ "$job" = tests ]; then
	plan=$(grep -m1 -E '^1\.\.[0-9]+$' "$tap" | cut -d. -f3 || true)
	passed=$(grep -cE '^ok [0-9]+' "$tap" || true)
	failed=$(grep -cE '^not ok [0-9]+' "$tap" || true)
	if [ -z "$plan" ]; then
		echo "FAIL: no TAP plan in $tap" >&2
		fail=1
	else
		[ "$failed" = 0 ] || { echo "FAIL: $failed test(s) not ok:" >&2; grep -E '^not ok' "$tap" >&2; fail=1; }
		if [ $((passed + failed)) != "$plan" ]; then
			echo "FAIL: planned $plan tests, saw $((passed + failed)) results" >&2
			fail=1
		fi
	fi
	echo "in-VM suite: plan ${plan:-missing}, ${elapsed}s under $accel (logs: $logdir)"
	echo "flexsc-vm: $passed passed, $failed failed"
fi
exit $fail
