#!/bin/bash
# flexsc-run-check.sh [--kernel BZIMAGE] [--log-dir DIR] [--job check|bench|pytest=MOD+MOD]
#
# flexsc-run in the booted FlexSC kernel, with this machine's userland
# (scripts/vm-run.sh): builds the tool into build/flexsc-run and runs
# tools/flexsc-run/vm-job.sh in the VM. Exits with its status (0: all ok;
# 125: the kernel log has a report or the VM did not finish).
#   check   the tool's tests natively and under flexsc-run (with and without
#           call-site rewriting), ls and a Python program compared with
#           their native output, calls seen going through FlexSC (default);
#   bench   the cost of one call, natively and under flexsc-run;
#   pytest=test_os+test_posix  Python's regression tests, case by case,
#           natively and under flexsc-run. The test modules come from
#           Debian's libpython3.X-testsuite, unpacked into build/flexsc-run
#           (`apt-get download` and `dpkg-deb -x`: nothing is installed).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

kernel=$BUILD/kernel/arch/x86/boot/bzImage logdir=$BUILD/flexsc-run/vm job=check
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel) kernel=$2; shift 2 ;;
	--log-dir) logdir=$2; shift 2 ;;
	--job) job=$2; shift 2 ;;
	*) die "unknown argument $1" ;;
	esac
done

fx=$BUILD/flexsc-run
make -s -C "$TOP/tools/flexsc-run" OUT="$fx"
env="FXRUN_DIR=$fx"
case "$job" in
pytest=*)
	py=$(basename "$(readlink -f /usr/bin/python3)")
	suite=$fx/testsuite pytests=$fx/pytests
	if [ ! -d "$pytests/test" ]; then
		mkdir -p "$suite"
		(cd "$suite" && apt-get download "lib$py-testsuite" >/dev/null 2>&1 &&
			dpkg-deb -x lib"$py"-testsuite_*.deb .)
		rm -rf "$pytests"
		mkdir -p "$pytests"
		cp -a "/usr/lib/$py/test" "$pytests/test"
		cp -a "$suite/usr/lib/$py/test/." "$pytests/test/"
	fi
	env="$env FXRUN_PYTESTS=$pytests"
	;;
esac
exec "$TOP/scripts/vm-run.sh" --kernel "$kernel" --log-dir "$logdir" \
	--timeout "${FLEXSC_VM_TIMEOUT:-3000}" -- "$env $TOP/tools/flexsc-run/vm-job.sh $job"
