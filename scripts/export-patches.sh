#!/bin/bash
# Export the commits in linux/ (flexsc-base..HEAD) to patches/ as a
# `git format-patch` series, after folding the current flexsc/ sources into
# the commit that adds the subsystem.
#
# Editing workflow:
#   - Rust engine: edit flexsc/ at the top of this repo; `make kernel` copies
#     it into linux/flexsc/.
#   - C side: edit in linux/, then `git -C linux commit --fixup=<commit>`
#     (or a new commit), then `make patches`.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

if [ -n "$(git_k status --porcelain --untracked-files=no -- . ':!flexsc')" ]; then
	die "linux/ has uncommitted changes outside flexsc/: commit them first (git -C linux commit --fixup=<commit>)"
fi

if [ -n "$(git_k status --porcelain -- flexsc)" ]; then
	target=$(git_k log --format=%H -1 flexsc-base..HEAD -- flexsc)
	[ -n "$target" ] || die "no commit in linux/ adds flexsc/ yet"
	git_k add -A flexsc
	git_k commit -q --fixup="$target"
fi
# (Not `git log | grep -q`: under pipefail, grep's early exit can fail git
# log with SIGPIPE and skip the squash.)
subjects=$(git_k log --format=%s flexsc-base..HEAD)
if grep -q '^\(fixup\|squash\|amend\)! ' <<<"$subjects"; then
	GIT_SEQUENCE_EDITOR=: git_k rebase -q -i --autosquash flexsc-base
fi

rm -f "$TOP"/patches/*.patch
git_k format-patch -q --zero-commit --no-signature --abbrev=12 \
	-o "$TOP/patches" flexsc-base..HEAD
{
	echo "# FlexSC for Linux 6.12: apply in this order with 'git am' (or quilt)."
	echo "# Base: Debian linux-source-6.12, see LINUX_SOURCE_VERSION in ../Makefile."
	(cd "$TOP/patches" && ls -1 [0-9]*.patch)
} >"$TOP/patches/series"

# The series now describes linux/ exactly: record it as applied.
git_k rev-parse HEAD >"$TREE/.git/flexsc-head"
series_patches | xargs cat | sha256sum | cut -d' ' -f1 >"$TREE/.git/flexsc-series"
say "exported $(git_k rev-list --count flexsc-base..HEAD) patches to patches/"
