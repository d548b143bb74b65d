#!/bin/bash
# Make linux/ the pristine 6.12 tree from Debian's linux-source-6.12 with
# patches/series applied by `git am`, then place flexsc/ into it.
#
# linux/ is a git repository: tag flexsc-base is the pristine import, each
# patch of the series is one commit on top. The series is re-applied only
# when it changed; work in linux/ that is not yet exported to patches/
# (see scripts/export-patches.sh) is never thrown away silently.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ -f "$LINUX_SOURCE_TARBALL" ] || die "$LINUX_SOURCE_TARBALL is missing: run 'make deps'"

if ! git_k rev-parse -q --verify refs/tags/flexsc-base >/dev/null 2>&1; then
	say "unpacking $LINUX_SOURCE_TARBALL into $TREE"
	rm -rf "$TREE"
	mkdir -p "$TREE"
	tar -xJf "$LINUX_SOURCE_TARBALL" -C "$TREE" --strip-components=1
	version=$(make -s -C "$TREE" kernelversion)
	pkg=$(dpkg-query -W -f='${Version}' linux-source-6.12 2>/dev/null || echo unknown)
	say "importing Linux $version as the base commit (takes a minute)"
	# Debian's .gitignore ignores every top-level path ("/*", for its
	# packaging repository); without that rule git sees new files here.
	sed -i -e '/^\/\*$/d' -e '/^!\/debian\/$/d' "$TREE/.gitignore"
	git_k init -q
	git_k add -A -f .
	# A fixed date (and git_k's fixed identity) make the base commit the
	# same on every machine, so the cover letter can name it.
	GIT_AUTHOR_DATE="2025-01-01T00:00:00Z" GIT_COMMITTER_DATE="2025-01-01T00:00:00Z" \
	git_k commit -q -m "Linux $version (Debian linux-source-6.12 $pkg)" \
		-m "Imported from $LINUX_SOURCE_TARBALL, less the '/*' rule of .gitignore."
	git_k tag flexsc-base
fi

want=$(series_patches | xargs cat | sha256sum | cut -d' ' -f1)
have=$(cat "$TREE/.git/flexsc-series" 2>/dev/null || true)
if [ "$want" != "$have" ]; then
	applied_head=$(cat "$TREE/.git/flexsc-head" 2>/dev/null || git_k rev-parse flexsc-base)
	if [ "$(git_k rev-parse HEAD)" != "$applied_head" ]; then
		die "linux/ has commits that are not in patches/: run 'make patches' to export them, or 'git -C linux reset --hard $applied_head' to drop them"
	fi
	if [ -n "$(git_k status --porcelain --untracked-files=no -- . ':!flexsc')" ]; then
		die "linux/ has uncommitted changes outside flexsc/: commit them (git commit --fixup=<patch>) and run 'make patches', or discard them"
	fi
	say "applying patches/series to linux/"
	git_k am --abort >/dev/null 2>&1 || true
	git_k reset -q --hard flexsc-base
	git_k clean -q -fd -- flexsc
	mapfile -t patches < <(series_patches)
	[ ${#patches[@]} = 0 ] || git_k am -q --3way "${patches[@]}"
	git_k rev-parse HEAD >"$TREE/.git/flexsc-head"
	echo "$want" >"$TREE/.git/flexsc-series"
fi

# flexsc/ at the top of this repository is where the subsystem is edited;
# the tree gets the current sources (rsync keeps unchanged files' mtimes, so
# Kbuild rebuilds only what changed).
mkdir -p "$TREE/flexsc"
rsync -a --delete "$TOP/flexsc/" "$TREE/flexsc/"
