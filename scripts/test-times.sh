#!/usr/bin/env bash
# Reads the output of scripts/run-tests.sh: the totals over every test binary, and (unless the
# second argument is `totals`) the 15 slowest tests with their times.
set -uo pipefail
output=$1
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "tests (%s): %d passed, %d failed, %d skipped\n", FILENAME, p, f, s }' "$output"
[ "${2:-}" = totals ] && exit 0
echo "slowest tests:"
sed -n 's/^test \(.*\) \.\.\. [a-zA-Z]* <\([0-9.]*\)s>$/\2 \1/p' "$output" | sort -rn | head -15 |
  awk '{ printf "  %7.1f s  %s\n", $1, $2 }'
