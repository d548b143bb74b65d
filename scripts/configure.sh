#!/bin/bash
# configure.sh "<kernel make command>" <build dir> <fragment>...
#
# tinyconfig (or $BASE_CONFIG, a full configuration such as a distribution's),
# then the fragments merged with scripts/kconfig/merge_config.sh,
# then olddefconfig. Kconfig silently drops an option whose dependencies are
# unmet, so every option a fragment asks for is checked in the result, and
# a missing one (CONFIG_RUST and CONFIG_FLEXSC above all) fails the build.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

kmake=$1; kbuild=$2; shift 2
fragments=()
for f in "$@"; do fragments+=("$(cd "$(dirname "$f")" && pwd)/$(basename "$f")"); done

stamp=$kbuild/.flexsc-config
base=${BASE_CONFIG:-}
want=$( (cat "${fragments[@]}" "$TREE/.git/flexsc-series"; [ -z "$base" ] || cat "$base") | sha256sum | cut -d' ' -f1)
if [ -f "$kbuild/.config" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
	exit 0
fi

mkdir -p "$kbuild"
if [ -n "$base" ]; then
	say "configuring the kernel: $base + ${*}"
	case "$base" in
	*.xz) xz -dc "$base" >"$kbuild/.config" ;;
	*) cp "$base" "$kbuild/.config" ;;
	esac
	$kmake -s olddefconfig >/dev/null
else
	say "configuring the kernel: tinyconfig + ${*}"
	$kmake -s tinyconfig >/dev/null
fi
"$TREE/scripts/kconfig/merge_config.sh" -m -O "$kbuild" "$kbuild/.config" "${fragments[@]}" >/dev/null
$kmake -s olddefconfig >/dev/null

bad=0
while IFS= read -r line; do
	case "$line" in
	CONFIG_*=*)
		grep -qxF -- "$line" "$kbuild/.config" || {
			echo "error: Kconfig dropped '$line' (got: $(grep -E "^(# )?${line%%=*}[= ]" "$kbuild/.config" || echo unset))" >&2
			bad=1
		} ;;
	"# CONFIG_"*" is not set")
		opt=${line#\# }; opt=${opt%% *}
		if grep -q "^$opt=" "$kbuild/.config"; then
			echo "error: '$opt' is still set although a fragment disables it" >&2
			bad=1
		fi ;;
	esac
done < <(cat "${fragments[@]}" |
	# A later fragment overrides an earlier one: check each option's last word.
	awk '{ k = $0; if (k ~ /^# CONFIG_.* is not set$/) { k = $2 } else if (k ~ /^CONFIG_/) { sub(/=.*/, "", k) } else next
	       last[k] = $0; if (!(k in seen)) { seen[k] = 1; order[++n] = k } }
	     END { for (i = 1; i <= n; i++) print last[order[i]] }')
if [ "$bad" != 0 ]; then
	echo "hint: 'make -C linux O=$kbuild LLVM=1 menuconfig' and search for the option to see its unmet dependencies" >&2
	exit 1
fi
echo "$want" >"$stamp"
say "configured: CONFIG_RUST=y CONFIG_FLEXSC=y ($kbuild/.config)"
