#!/bin/bash
# mkinitramfs.sh <output.cpio> <dir with the static guest binaries>
#
# A tiny initramfs: busybox, the guest programs, and an /init that mounts
# what they need, runs the job named on the kernel command line
# (flexsc.job=tests|bench|shell) and powers off. The job's output goes to
# the second serial port (ttyS1), the kernel's console to the first, so
# the host reads them apart.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

out=$1; bindir=$2
stage=$BUILD/initramfs
rm -rf "$stage"
mkdir -p "$stage"/{bin,sbin,proc,sys,dev,tmp,etc,root,out}
cp /bin/busybox "$stage/bin/busybox"
for applet in $(/bin/busybox --list); do
	[ -e "$stage/bin/$applet" ] || ln -s busybox "$stage/bin/$applet"
done
for prog in flexsc-tests flexsc-bench flexsc-httpd; do
	if [ -f "$bindir/$prog" ]; then
		install -s -m 0755 "$bindir/$prog" "$stage/bin/$prog"
	fi
done
# The crate's examples (its doc examples; the suite runs them), and the C
# example (built by the Makefile).
install -s -m 0755 "$bindir/examples/hello" "$stage/bin/flexsc-hello"
for ex in queue files echo; do
	install -s -m 0755 "$bindir/examples/$ex" "$stage/bin/flexsc-$ex"
done
if [ -f "$BUILD/c-example/flexsc-c-example" ]; then
	install -m 0755 "$BUILD/c-example/flexsc-c-example" "$stage/bin/flexsc-c-example"
fi
# The C benchmark, and libflexsc's test built against the installed library.
if [ -f "$BUILD/c-example/flexsc-c-bench" ]; then
	install -m 0755 "$BUILD/c-example/flexsc-c-bench" "$stage/bin/flexsc-c-bench"
fi
if [ -f "$BUILD/libflexsc/libflexsc-test" ]; then
	install -m 0755 "$BUILD/libflexsc/libflexsc-test" "$stage/bin/libflexsc-test"
fi
# The series' kselftest (tools/testing/selftests/flexsc), built by the Makefile.
if [ -f "$BUILD/kselftest/flexsc_test" ]; then
	install -m 0755 "$BUILD/kselftest/flexsc_test" "$stage/bin/flexsc_test"
fi

cat >"$stage/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
hostname flexsc
ifconfig lo 127.0.0.1 up
export PATH=/bin HOME=/root

job=tests benchargs= filter=
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	flexsc.job=*) job=${arg#flexsc.job=} ;;
	flexsc.benchargs=*) benchargs=$(echo "${arg#flexsc.benchargs=}" | tr , ' ') ;;
	flexsc.stress=*) stress_secs=${arg#flexsc.stress=} ;;
	flexsc.filter=*) filter=${arg#flexsc.filter=} ;;
	# Provenance for flexsc-bench's results.json, from the host.
	flexsc.commit=*) export FLEXSC_COMMIT=${arg#flexsc.commit=} ;;
	flexsc.accel=*) export FLEXSC_ACCEL=${arg#flexsc.accel=} ;;
	flexsc.date=*) export FLEXSC_DATE=${arg#flexsc.date=} ;;
	esac
done

out=/dev/ttyS1
case "$job" in
tests)
	echo "# kernel $(uname -r), $(nproc) CPUs, FlexSC ABI $(cat /sys/kernel/flexsc/abi_version 2>/dev/null || echo missing)" >$out
	/bin/flexsc-tests $filter >$out 2>&1
	echo "flexsc-job-exit $?" >$out
	;;
server)
	/bin/flexsc-httpd compare $benchargs >$out 2>&1
	echo "flexsc-job-exit $?" >$out
	;;
debug)
	echo "# kernel $(uname -r) (debug), $(nproc) CPUs" >$out
	/bin/flexsc-tests >$out 2>&1
	rc=$?
	# The long stress run, seeded from the clock (the seed is printed).
	seed=$(date +%s)
	/bin/flexsc-tests --stress "$seed" "${stress_secs:-300}" 1000000 >$out 2>&1 || rc=1
	mount -t debugfs debugfs /sys/kernel/debug
	# Two scans: a new object is reported only once it stays unreferenced.
	echo scan >/sys/kernel/debug/kmemleak
	sleep 6
	echo scan >/sys/kernel/debug/kmemleak
	leaks=$(grep -c "^unreferenced object" /sys/kernel/debug/kmemleak)
	echo "# kmemleak: $leaks unreferenced objects" >$out
	cat /sys/kernel/debug/kmemleak >$out
	[ "$leaks" = 0 ] || rc=1
	echo "flexsc-job-exit $rc" >$out
	;;
bench)
	if [ -x /bin/flexsc-bench ]; then
		/bin/flexsc-bench $benchargs --out /out >$out 2>&1
		rc=$?
		# The results travel to the host over the serial port.
		for f in /out/*; do
			echo "flexsc-file $(basename "$f")"
			base64 "$f"
			echo "flexsc-file-end"
		done >$out
		echo "flexsc-job-exit $rc" >$out
	else
		echo "flexsc-bench is not in this initramfs" >$out
		echo "flexsc-job-exit 1" >$out
	fi
	;;
shell)
	echo "FlexSC kernel $(uname -r): /bin/flexsc-tests runs the suite; exit or Ctrl-D powers off."
	setsid cttyhack sh -l
	;;
esac
sync
poweroff -f
INIT
chmod 0755 "$stage/init"

(cd "$stage" && find . -print0 | cpio --null -o -H newc --quiet) >"$out.tmp"
mv "$out.tmp" "$out"
say "initramfs: $out ($(du -h "$out" | cut -f1))"
