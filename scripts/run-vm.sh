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
#   debug  tests, then a kmemleak scan (for the debug kernel).
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

qemu=(qemu-system-x86_64 -accel "$accel" -cpu "$cpu" -smp "$smp" -m "${FLEXSC_VM_MEM:-1024}"
	-kernel "$kernel" -initrd "$initrd" -no-reboot -nodefaults -display none)
cmdline="console=ttyS0 panic=-1 oops=panic flexsc.job=$job"
[ -z "${FLEXSC_BENCH_ARGS:-}" ] || cmdline="$cmdline flexsc.benchargs=$FLEXSC_BENCH_ARGS"
# Provenance for the benchmark's results.json.
commit=$(git -C "$TOP" describe --always --dirty 2>/dev/null || echo unknown)
cmdline="$cmdline flexsc.commit=$commit flexsc.accel=$accel flexsc.date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
[ -z "${FLEXSC_TEST_FILTER:-}" ] || cmdline="$cmdline flexsc.filter=$FLEXSC_TEST_FILTER"
[ -z "${FLEXSC_STRESS_SECS:-}" ] || cmdline="$cmdline flexsc.stress=$FLEXSC_STRESS_SECS"

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
tail -n +1 -f --pid=$qpid "$tap" 2>/dev/null | sed -u '/^flexsc-file /,/^flexsc-file-end/d' &
tpid=$!
wait $qpid
qrc=$?
sleep 0.3
kill $tpid 2>/dev/null
wait $tpid 2>/dev/null
elapsed=$(( $(date +%s) - start ))

echo ">> the VM ran ${elapsed}s under $accel; logs in $logdir"
# Files the job sent back (base64 between markers).
rm -rf "$logdir/out"
mkdir -p "$logdir/out"
tr -d '\r' <"$tap" | awk -v dir="$logdir/out" '
	/^flexsc-file-end/ { if (name != "") close(cmd); name = ""; next }
	/^flexsc-file / { name = $2; cmd = "base64 -d > \"" dir "/" name "\""; next }
	name != "" { print | cmd }'
for f in "$logdir"/out/*; do [ -e "$f" ] && echo ">> $f"; done
exec "$(dirname "$0")/check-vm-logs.sh" --job "$job" --tap "$tap" --console "$console" \
	--qemu-rc "$qrc" --timeout "$timeout" --splats "$logdir/splats.txt"
