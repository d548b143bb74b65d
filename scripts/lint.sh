#!/bin/bash
# lint.sh "<kernel make command>": the checks a maintainer runs on the
# series, failing on any finding:
#   - scripts/checkpatch.pl on every patch of patches/ (no ERROR or WARNING;
#     its "does MAINTAINERS need updating?" is answered instead by checking
#     that get_maintainer.pl gives every file the series adds an entry);
#   - make rustfmtcheck (the tree's Rust, flexsc/ included, as rustfmt and
#     the tree's .rustfmt.toml want it);
#   - make CLIPPY=1 flexsc/ (Debian's clippy-driver; no warning).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
kmake=$1
bad=0

say "checkpatch.pl on patches/"
for p in $(series_patches); do
	# Debian's python3 for spdxcheck.py (python3-ply, python3-git).
	out=$(PATH=/usr/bin:$PATH perl "$TREE/scripts/checkpatch.pl" --terse --no-summary \
		--ignore FILE_PATH_CHANGES "$p" 2>&1 || true)
	if [ -n "$out" ]; then
		echo "$out"
		bad=1
	fi
	# Files the patch adds: "--- /dev/null" then "+++ b/<file>".
	for f in $(awk '/^--- \/dev\/null/ { getline; sub(/^\+\+\+ b\//, ""); print }' "$p"); do
		if ! (cd "$TREE" && perl scripts/get_maintainer.pl --no-git --no-git-fallback \
			--no-rolestats -f "$f" 2>/dev/null) | grep -q 'flexsc-rs@'; then
			echo "$p: $f has no MAINTAINERS entry"
			bad=1
		fi
	done
done

say "rustfmtcheck"
$kmake -s RUSTFMT=/usr/bin/rustfmt rustfmtcheck || bad=1

say "clippy on flexsc/"
out=$($kmake CLIPPY=1 CLIPPY_DRIVER=/usr/bin/clippy-driver flexsc/ 2>&1) || bad=1
if echo "$out" | grep -E '^(warning|error)' >/dev/null; then
	echo "$out" | grep -vE '^  [A-Z]+ ' >&2
	bad=1
fi

[ "$bad" = 0 ] || die "lint: findings above"
echo "ok: checkpatch, rustfmtcheck and clippy are clean"
