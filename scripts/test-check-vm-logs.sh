#!/bin/bash
# Tests of check-vm-logs.sh: a good run passes, and each way a run can go
# wrong fails it.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

good_tap=$'TAP version 13\r\n1..2\r\nok 1 a\r\nok 2 b\r\n# 2 passed, 0 failed\r\nflexsc-job-exit 0\r\n'
good_console=$'[    0.1] Linux version 6.12.117\r\n[    0.2] flexsc: exception-less system calls, ABI 1\r\n'

n=0 bad=0
check() { # name, want rc, tap, console, qemu rc
	printf '%s' "$3" >"$dir/tap"
	printf '%s' "$4" >"$dir/console"
	"$here/check-vm-logs.sh" --job tests --tap "$dir/tap" --console "$dir/console" \
		--qemu-rc "$5" >"$dir/out" 2>&1
	local rc=$?
	n=$((n + 1))
	if [ "$rc" = "$2" ]; then
		echo "ok $n $1"
	else
		echo "not ok $n $1 (rc $rc, want $2)"; sed 's/^/# /' "$dir/out"; bad=$((bad + 1))
	fi
}

check "good run passes" 0 "$good_tap" "$good_console" 0
check "not ok fails" 1 "${good_tap/ok 2 b/not ok 2 b}" "$good_console" 0
check "missing plan fails" 1 "${good_tap/1..2/}" "$good_console" 0
check "missing result fails" 1 "${good_tap/ok 2 b/}" "$good_console" 0
check "no job exit line fails" 1 "${good_tap/flexsc-job-exit 0/}" "$good_console" 0
check "job exit status fails" 1 "${good_tap/flexsc-job-exit 0/flexsc-job-exit 3}" "$good_console" 0
check "timeout fails" 1 "$good_tap" "$good_console" 124
check "lockdep's boot banner is no report" 0 "$good_tap" "$good_console[    0.0] rcu: 	RCU lockdep checking is enabled."$'\r\n' 0
for report in "WARNING: CPU: 0 PID: 1 at kernel/x.c:1" "BUG: kernel NULL pointer dereference" \
	"Oops: 0000 [#1] SMP" "Call Trace:" "WARNING: possible circular locking dependency detected" \
	"BUG: KASAN: slab-use-after-free in f+0x1" "UBSAN: shift-out-of-bounds in x.c" \
	"kmemleak: 1 new suspected memory leaks" "INFO: task a:1 blocked for more than 120 seconds." \
	"INFO: lockdep is turned off." "WARNING: suspicious RCU usage"; do
	check "kernel report fails: $report" 1 "$good_tap" "$good_console[    1.0] $report"$'\r\n' 0
done
echo "check-vm-logs: $((n - bad)) passed, $bad failed"
[ "$bad" = 0 ]
