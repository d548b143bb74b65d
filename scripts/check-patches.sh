#!/bin/bash
# Fail when patches/ and flexsc/ disagree: applying the series to the
# pristine tree must give exactly the flexsc/ sources of this repository.
# (prepare-tree.sh has applied the series and copied flexsc/ over it, so
# any difference shows as a change against the last commit.)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

stale=$(git_k status --porcelain -- flexsc)
if [ -n "$stale" ]; then
	echo "error: patches/ is stale against flexsc/ (run 'make patches' and commit):" >&2
	echo "$stale" >&2
	exit 1
fi
n=$(git_k rev-list --count flexsc-base..HEAD)
echo "ok: the series ($n patches) applies to the pristine tree and matches flexsc/"
