# shellcheck shell=sh
# callgrind-common.sh -- sourced by chain-instructions.sh and
# pipes-instructions.sh: finds aloop-bench in the build directory $B, checks
# for valgrind, points the loader at the build's libraries and modules, and
# defines cg_total.

bench=$B/bench/.libs/aloop-bench
[ -x "$bench" ] || bench=$B/bench/aloop-bench
[ -x "$bench" ] || { echo "no aloop-bench in $B/bench" >&2; exit 2; }
command -v valgrind >/dev/null 2>&1 || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
LD_LIBRARY_PATH=$B/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
ALOOP_MODULE_PATH=${ALOOP_MODULE_PATH:-$B/.libs}
export LD_LIBRARY_PATH ALOOP_MODULE_PATH

# cg_total "VALGRIND_OPTIONS" AloopBenchArgs...: the user-space instructions
# of one aloop-bench sample.  The bench measures in a forked child, whose
# profile is the largest of those written.
cg_total() {
    cg_opts=$1
    shift
    cg_dir=$(mktemp -d)
    # shellcheck disable=SC2086
    valgrind --tool=callgrind --callgrind-out-file="$cg_dir/cg.%p" $cg_opts "$bench" "$@" >/dev/null 2>&1
    for cg_f in "$cg_dir"/cg.*; do
        callgrind_annotate "$cg_f" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
    done | sort -n | tail -1
    rm -rf "$cg_dir"
}
