#!/bin/bash
# fresh-check.sh: the README's test command on a fresh Debian 12.
#
# Builds a clean bookworm minbase root with debootstrap (in $FRESH_ROOT,
# default build/fresh-root), adds only git and make, clones this
# repository's HEAD into it and runs `make test` there as root, with
# nothing of this machine's toolchains (no rustup, no cargo) in reach.
# Prints the time each stage took. Needs root (debootstrap, chroot).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

root=${FRESH_ROOT:-$BUILD/fresh-root}
mirror=${FRESH_MIRROR:-http://deb.debian.org/debian}
[ "$(id -u)" = 0 ] || die "fresh-check needs root (debootstrap and chroot)"
command -v debootstrap >/dev/null || {
	say "installing debootstrap"
	apt-get install -y -q --no-install-recommends debootstrap >/dev/null
}

mounts=()
cleanup() {
	for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -l "${mounts[$i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
bind() { mkdir -p "$root$1"; mount --bind "$1" "$root$1"; mounts+=("$root$1"); }

t0=$(date +%s)
if [ -e "$root" ]; then
	say "removing the old root $root"
	rm -rf --one-file-system "$root"
fi
say "debootstrap --variant=minbase bookworm $root"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$BUILD/fresh-debootstrap.log" 2>&1 ||
	die "debootstrap failed: see $BUILD/fresh-debootstrap.log"
cat >"$root/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb http://security.debian.org/debian-security bookworm-security main
SOURCES
cp /etc/resolv.conf "$root/etc/resolv.conf"
bind /proc
bind /sys
bind /dev
bind /dev/pts
t1=$(date +%s)

say "adding git and make"
chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
	/bin/sh -c 'apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends git make ca-certificates >/dev/null'
# This machine's own trust anchors (a TLS-inspecting proxy's CA, say), so
# that the root reaches crates.io as the host does; none on a plain host.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
	cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
	chroot "$root" /usr/sbin/update-ca-certificates >/dev/null
fi
git clone -q --no-hardlinks "$TOP" "$root/root/flexsc-rs"
t2=$(date +%s)

say "make test in the fresh root (installs, kernel, suite)"
set +e
chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb \
	/bin/bash -c 'cd /root/flexsc-rs && make test' 2>&1 | tee "$BUILD/fresh-check.log"
rc=${PIPESTATUS[0]}
set -e
t3=$(date +%s)

echo ">> fresh-check: debootstrap $((t1 - t0)) s, git and make $((t2 - t1)) s, make test $((t3 - t2)) s, total $((t3 - t0)) s (log: $BUILD/fresh-check.log)"
[ "$rc" = 0 ] || die "make test failed in the fresh root (exit $rc)"
echo ">> fresh-check: make test passed on a fresh Debian 12 root"
