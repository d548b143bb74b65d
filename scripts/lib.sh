# Shared settings for the scripts in this directory. Sourced, not run.
# shellcheck shell=bash

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TREE=${TREE:-$TOP/linux}
BUILD=${BUILD:-$TOP/build}

# The Debian package the patch series is written against. The Makefile pins
# the same version; this is only used to name the base commit.
LINUX_SOURCE_TARBALL=${LINUX_SOURCE_TARBALL:-/usr/src/linux-source-6.12.tar.xz}

die() { echo "error: $*" >&2; exit 1; }
say() { echo ">> $*" >&2; }

# git inside the kernel tree, with an identity for the commits the build makes.
git_k() {
	git -C "$TREE" -c user.name="FlexSC build" -c user.email="flexsc-build@localhost" \
		-c core.autocrlf=false -c gc.auto=0 -c maintenance.auto=false -c advice.detachedHead=false "$@"
}

# The patches named in patches/series, in order, as absolute paths.
series_patches() {
	{ grep -v -e '^#' -e '^[[:space:]]*$' "$TOP/patches/series" || true; } | sed "s|^|$TOP/patches/|"
}
