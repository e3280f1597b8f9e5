#!/bin/sh
# chain-instructions.sh -- the call_soon chain target (API issue 4) by
# user-space instructions: valgrind's callgrind counts them to <1% from run
# to run on a machine whose wall time drifts, but it is blind to system
# calls (a link of the chain makes none on any of these loops).
#
#   bench/chain-instructions.sh [BUILD_DIR [N [LOOPS]]]
#       BUILD_DIR  the build directory (.)
#       N          links (1000000): each loop runs N and 2N links, and the
#                  difference over N is the cost of one link, set-up cancelled
#       LOOPS      aloop-bench --backends names (the native backends, each
#                  third-party backend built, raw-libev, plain)
#
# Prints instructions per link for each loop and the verdicts: a native
# backend's link cheaper than raw libev's ev_feed_event chain, and (by
# instructions, not the wall-clock rate the bench judges) what fraction of
# the plain function-pointer loop's rate that is.
set -u
B=${1:-.}
N=${2:-1000000}
# shellcheck source=bench/callgrind-common.sh
. "$(dirname "$0")/callgrind-common.sh"

if [ $# -ge 3 ]; then
    LOOPS=$(echo "$3" | tr ',' ' ')
else
    LOOPS="aloop-epoll aloop-poll aloop-select"
    for m in ev event uv; do
        [ -e "$B/.libs/libaloop-$m.so" ] && LOOPS="$LOOPS aloop-lib$m"
    done
    LOOPS="$LOOPS raw-libev plain"
fi

ir() {  # loop links
    cg_total "" --workload chain --backends "$1" --runs 1 --size "chain=$2"
}

out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "call_soon chain, user-space instructions per link (callgrind, (Ir(2N) - Ir(N)) / N, N=$N):"
for l in $LOOPS; do
    printf '  %-16s' "$l" >&2
    a=$(ir "$l" "$N")
    c=$(ir "$l" $((2 * N)))
    if [ -z "$a" ] || [ -z "$c" ]; then
        echo " (did not run)" >&2
        continue
    fi
    per=$(awk -v a="$a" -v c="$c" -v n="$N" 'BEGIN { printf "%.1f", (c - a) / n }')
    echo " $per" >&2
    echo "$l $per" >>"$out"
done

echo
awk '{ printf "  %-16s %6.1f instructions per link\n", $1, $2 }' "$out"
echo "targets:"
awk '
    { v[$1] = $2; order[n++] = $1 }
    END {
        ev = v["raw-libev"]; pl = v["plain"]
        for (i = 0; i < n; i++) {
            l = order[i]
            if (l !~ /^aloop-(epoll|poll|select)$/)
                continue
            if (ev != "")
                printf "  chain %-14s %6.1f vs raw-libev %.1f: %s\n", l, v[l], ev,
                       (v[l] < ev ? "cheaper, holds" : "MISSED")
            if (pl != "")
                printf "  chain %-14s %5.0f%% of plain'"'"'s rate by instructions (>= 50%%): %s\n", l,
                       100 * pl / v[l], (pl / v[l] >= 0.5 ? "holds" : "MISSED")
        }
    }' "$out"
