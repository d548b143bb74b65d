#!/bin/bash
# vm-run.sh [--kernel BZIMAGE] [--log-dir DIR] [--timeout S] [--shell] [--] COMMAND...
#
# Boots the FlexSC kernel in QEMU with this machine's own userland, as
# virtme-ng does for kernel developers, and runs one shell command line in
# it (with --shell: an interactive bash instead).
#
#   - The host's root filesystem is the VM's root, shared read-only over 9p
#     (virtio); the repository is shared again, writable, at the same path.
#   - tmpfs on /tmp, /run, /root, /var/{tmp,log,cache,spool}, /dev/shm; proc,
#     sysfs, devtmpfs, devpts, tracefs; loopback up as 127.0.0.1.
#   - PATH: the project's guest binaries (target/.../release, its examples,
#     build/flexsc-run, build/c-example, build/kselftest), then the usual
#     /usr/local/sbin:...:/bin. The command runs as root, under bash, in the
#     directory vm-run was started from, with stdin from /dev/null.
#
# The command's output (stdout and stderr together) comes back over the
# second serial port and is printed as it arrives; its exit status is
# vm-run's. The kernel's console goes to DIR/console.log and is judged by
# check-vm-logs.sh: any BUG/WARNING/Oops/... line, a VM killed for time, or
# a command that never finished makes vm-run exit 125 instead (the reason
# on stderr). The boot and the command are timed (stderr).
#
# A tiny initramfs (busybox and an /init, built into DIR each run) mounts
# all this and chroots into the host's root; only the kernel comes from the
# project. The kernel needs VIRTIO_PCI, NET_9P_VIRTIO and 9P_FS.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

kernel=$BUILD/kernel/arch/x86/boot/bzImage
logdir=$BUILD/vmrun timeout=${FLEXSC_VM_TIMEOUT:-1200} mode=cmd
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel) kernel=$2; shift 2 ;;
	--log-dir) logdir=$2; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	--shell) mode=shell; shift ;;
	--) shift; break ;;
	-*) die "unknown argument $1" ;;
	*) break ;;
	esac
done
cmd="$*"
[ "$mode" = shell ] || [ -n "$cmd" ] || die "no command (usage: vm-run.sh [--kernel BZIMAGE] [--] COMMAND...)"
[ -f "$kernel" ] || die "no kernel at $kernel"
command -v busybox >/dev/null || die "no busybox (apt package busybox-static)"

# KVM only where it really works (as in run-vm.sh); FLEXSC_ACCEL overrides.
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

mkdir -p "$logdir"
stage=$(mktemp -d "$logdir/initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT
console=$logdir/console.log out=$logdir/output.log status=$logdir/status.log
rm -f "$console" "$out" "$status"
: >"$out"
: >"$status"

# --- The initramfs: busybox, /init, and this run's command and settings.
mkdir -p "$stage"/root/{bin,proc,sys,dev,newroot,vmrun}
cp "$(command -v busybox)" "$stage/root/bin/busybox"
for applet in sh mount mkdir cp chroot ifconfig hostname stty cat cut poweroff sync setsid; do
	ln -s busybox "$stage/root/bin/$applet"
done
guest_path=$TOP/target/x86_64-unknown-linux-gnu/release
guest_path=$guest_path:$guest_path/examples:$BUILD/flexsc-run:$BUILD/c-example:$BUILD/kselftest
guest_path=$guest_path:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
rows= cols=
if [ "$mode" = shell ] && [ -t 0 ]; then
	read -r rows cols < <(stty size 2>/dev/null) || true
fi
q() { printf '%q' "$1"; }
cat >"$stage/root/vmrun/env" <<ENV
mode=$(q "$mode")
repo=$(q "$TOP")
cwd=$(q "$PWD")
guest_path=$(q "$guest_path")
term=$(q "${TERM:-dumb}")
rows=$(q "$rows") cols=$(q "$cols")
ENV
printf '%s\n' "$cmd" >"$stage/root/vmrun/cmd"
# Run by the host's bash inside the chroot: the command, or the shell.
cat >"$stage/root/vmrun/stage2" <<'STAGE2'
cd -- "$VMRUN_CWD" 2>/dev/null || {
	echo "vm-run: $VMRUN_CWD is not in the VM (under a tmpfs?); running in /" >&2
	cd /
}
if [ "$VMRUN_MODE" = shell ]; then
	echo "FlexSC kernel $(uname -r), ABI $(cat /sys/kernel/flexsc/abi_version 2>/dev/null || echo missing): the host's userland (root read-only, /tmp /run /root /var/tmp writable, the repository writable). exit or Ctrl-D powers off; Ctrl-A x kills the VM."
	exec /bin/bash --rcfile /run/vmrun/bashrc -i
fi
exec /bin/bash -c "$(cat /run/vmrun/cmd)"
STAGE2
cat >"$stage/root/vmrun/bashrc" <<'BASHRC'
[ -f /etc/bash.bashrc ] && . /etc/bash.bashrc
PS1='flexsc-vm:\w\$ '
PATH=$VMRUN_PATH
BASHRC
cat >"$stage/root/init" <<'INIT'
#!/bin/sh
# PID 1: mount the host's root and the rest, chroot into it, run the
# command, report its status on ttyS2, power off.
export PATH=/bin
. /vmrun/env
st=/dev/ttyS2
fail() {
	echo "vm-run: $*" >/dev/ttyS1
	echo "flexsc-job-exit 125" >$st
	sync
	poweroff -f
}
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
# Only the command's bytes on ttyS1: no \r\n translation, no echo.
stty -F /dev/ttyS1 raw -echo 2>/dev/null
[ "$mode" = shell ] && stty -F /dev/ttyS1 sane 2>/dev/null
[ -n "$rows" ] && stty -F /dev/ttyS1 rows "$rows" cols "$cols" 2>/dev/null
n=/newroot
o=trans=virtio,version=9p2000.L,msize=262144
mount -t 9p -o $o,ro,cache=loose hostroot $n || fail "cannot mount the host's root over 9p (CONFIG_NET_9P_VIRTIO, CONFIG_9P_FS?)"
mount -t 9p -o $o repo "$n$repo" || fail "cannot mount the repository over 9p at $repo"
mount -t proc proc $n/proc || fail "no /proc in the host's root"
mount -t sysfs sysfs $n/sys
mount -t tracefs tracefs $n/sys/kernel/tracing 2>/dev/null
mount -t devtmpfs devtmpfs $n/dev
mkdir -p $n/dev/pts $n/dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts $n/dev/pts
mount -t tmpfs -o mode=1777 tmpfs $n/dev/shm
for d in /tmp /var/tmp; do
	[ -d $n$d ] && mount -t tmpfs -o mode=1777 tmpfs $n$d
done
for d in /run /root /var/log /var/cache /var/spool; do
	[ -d $n$d ] && mount -t tmpfs -o mode=0755 tmpfs $n$d
done
mkdir -p $n/run/vmrun $n/run/lock
cp /vmrun/cmd /vmrun/stage2 /vmrun/bashrc $n/run/vmrun/
hostname flexsc
ifconfig lo 127.0.0.1 up
echo "flexsc-vmrun-start $(cut -d' ' -f1 /proc/uptime)" >$st
if [ "$mode" = shell ]; then
	setsid -c chroot $n /usr/bin/env -i HOME=/root USER=root LOGNAME=root TERM="$term" \
		PATH="$guest_path" SHELL=/bin/bash VMRUN_MODE="$mode" VMRUN_CWD="$cwd" VMRUN_PATH="$guest_path" \
		/bin/bash /run/vmrun/stage2 </dev/ttyS1 >/dev/ttyS1 2>&1
else
	chroot $n /usr/bin/env -i HOME=/root USER=root LOGNAME=root TERM="$term" LANG=C.UTF-8 \
		PATH="$guest_path" SHELL=/bin/bash VMRUN_MODE="$mode" VMRUN_CWD="$cwd" \
		/bin/bash /run/vmrun/stage2 </dev/null >/dev/ttyS1 2>&1
fi
rc=$?
echo "flexsc-vmrun-end $(cut -d' ' -f1 /proc/uptime)" >$st
echo "flexsc-job-exit $rc" >$st
sync
poweroff -f
INIT
chmod 0755 "$stage/root/init"
(cd "$stage/root" && find . -print0 | cpio --null -o -H newc --quiet) >"$stage/initramfs.cpio"

# --- QEMU: the console to a file, the command's output and status to two more.
cmdline="console=ttyS0 panic=-1 oops=panic"
fs=(-fsdev "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap"
	-device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot
	-fsdev "local,id=repo,path=$TOP,security_model=none,multidevs=remap"
	-device virtio-9p-pci,fsdev=repo,mount_tag=repo)
qemu=(qemu-system-x86_64 -accel "$accel" -cpu "$cpu" -smp "$smp" -m "${FLEXSC_VM_MEM:-1024}"
	-kernel "$kernel" -initrd "$stage/initramfs.cpio" -no-reboot -nodefaults -display none
	"${fs[@]}" -append "$cmdline" -serial "file:$console")
say "booting $(basename "$kernel") under QEMU ($accel, $smp CPUs) with the host's userland"
start=$(date +%s.%N)
set +e
if [ "$mode" = shell ]; then
	# ttyS1 is the terminal (Ctrl-A x quits QEMU, Ctrl-A c its monitor).
	"${qemu[@]}" -chardev stdio,id=term,mux=on,signal=off -serial chardev:term \
		-mon chardev=term,mode=readline -serial "file:$status"
	qrc=$?
else
	timeout --kill-after=10 "$timeout" "${qemu[@]}" -serial "file:$out" -serial "file:$status" &
	qpid=$!
	tail -c +1 -s 0.1 -f --pid=$qpid "$out" 2>/dev/null &
	tpid=$!
	wait $qpid
	qrc=$?
	sleep 0.3
	kill $tpid 2>/dev/null
	wait $tpid 2>/dev/null
fi
set -e
total=$(echo "$(date +%s.%N) - $start" | bc)

st() { tr -d '\r' <"$status" | sed -n "s/^$1 \([0-9.]*\).*/\1/p" | tail -1; }
booted=$(st flexsc-vmrun-start) ended=$(st flexsc-vmrun-end) rc=$(st flexsc-job-exit)
if [ -n "$booted" ] && [ -n "$ended" ]; then
	printf '>> vm-run: booted in %.1fs (guest clock), command %.1fs, QEMU %.1fs in all (%s)\n' \
		"$booted" "$(echo "$ended - $booted" | bc)" "$total" "$accel" >&2
else
	printf '>> vm-run: QEMU %.1fs in all (%s); logs in %s\n' "$total" "$accel" "$logdir" >&2
fi
# The judge sees the command's status as 0: a failing command is the
# caller's business; a kernel report, a timeout or no status is vm-run's.
judged=$logdir/judged-status.log
tr -d '\r' <"$status" | sed 's/^flexsc-job-exit [0-9]*/flexsc-job-exit 0/' >"$judged"
if ! "$(dirname "$0")/check-vm-logs.sh" --job vmrun --tap "$judged" --console "$console" \
	--qemu-rc "$qrc" --timeout "$timeout" --splats "$logdir/splats.txt"; then
	echo ">> vm-run: the run is judged failed (exit 125); console: $console" >&2
	exit 125
fi
exit "${rc:-125}"
