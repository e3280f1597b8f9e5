#!/bin/sh
# http-bench.sh -- the http workload: wrk against examples/http-hello on each
# aloop backend and against the raw servers (bench/http-raw-{uv,ev,event}),
# alternating, on loopback, bounded in time (targets x runs x duration).
#
#   bench/http-bench.sh [BUILD_DIR [DURATION [RUNS]]]     (., 3s, 3)
#
# Prints each run's requests/s, the server's CPU time per request
# (/proc/PID/stat) and how busy the server and wrk were (% of one CPU over
# wrk's run), the medians, the ratios of the targets (API issue 8):
# http-hello on epoll / raw libuv, and each third-party backend / that
# library's own raw server; then the same pairs' CPU-per-request ratios.
# When wrk is the one at 100%, requests/s measure the client's batching as
# much as the server: the script says so.
# wrk: apt-get install wrk.
set -u
B=${1:-.}
DUR=${2:-3s}
RUNS=${3:-3}
PORT=${HTTP_BENCH_PORT:-18123}
# Pinning (taskset): unpinned runs on a small machine vary by 30 % from one
# run to the next.  HTTP_BENCH_PIN=shared (the default) runs the server and
# wrk on CPU 0 both: the CPU is never idle, so requests/s are one over the
# sum of the server's and wrk's costs per request, and a cheaper server
# serves more.  HTTP_BENCH_PIN=split gives each a CPU (server 0, wrk 1):
# wrk -t1 costs more per request than any of these servers, so it is the
# bottleneck at 100 % with the servers idle 15 %, and requests/s rank the
# servers by how well their replies batch for wrk -- on 2 CPUs here,
# aloop-poll came first by ~10 % while it spent ~6 % more CPU per request
# than aloop-epoll, and last when shared (BENCHMARKS.md, eighth session).
# HTTP_BENCH_PIN=0: no pinning.
SRV_PIN='' WRK_PIN=''
PIN=${HTTP_BENCH_PIN:-shared}
[ "$PIN" = 1 ] && PIN=split
if [ "$PIN" != 0 ] && command -v taskset >/dev/null; then
    if [ "$PIN" = split ] && [ "$(nproc)" -ge 2 ]; then
        SRV_PIN="taskset -c 0" WRK_PIN="taskset -c 1"
    else
        PIN=shared SRV_PIN="taskset -c 0" WRK_PIN="taskset -c 0"
    fi
fi
command -v wrk >/dev/null || { echo "http-bench: wrk not found" >&2; exit 77; }
export ALOOP_MODULE_PATH=${ALOOP_MODULE_PATH:-$B/.libs}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

targets=""
for be in epoll poll libuv libev libevent; do
    [ -x "$B/examples/http-hello" ] && targets="$targets aloop-$be"
done
for raw in uv ev event; do
    [ -x "$B/bench/http-raw-$raw" ] && targets="$targets raw-$raw"
done

HZ=$(getconf CLK_TCK 2>/dev/null || echo 100)
cpu_ticks() {   # pid -> utime + stime of the whole process, in clock ticks
    sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12 + $13}'
}

run_one() {     # target port -> "requests/s cpu-µs/request server-busy-% wrk-busy-%" (0s on failure); errors to stderr
    t=$1
    PORT=$2
    case $t in
    aloop-*) ALOOP_BACKEND=${t#aloop-} $SRV_PIN "$B/examples/http-hello" "$PORT" >"$TMP/srv.$PORT" 2>&1 & ;;
    raw-*) $SRV_PIN "$B/bench/http-raw-${t#raw-}" "$PORT" >"$TMP/srv.$PORT" 2>&1 & ;;
    esac
    pid=$!
    i=0
    while ! grep -q listening "$TMP/srv.$PORT" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    c0=$(cpu_ticks "$pid")
    # wrk runs under a shell of its own, which reaps it and prints its CPU
    # time (the shell's children's utime + stime): how busy the client was
    # shellcheck disable=SC2016
    w=$($WRK_PIN sh -c '"$@" >"$0" 2>&1; sed "s/.*) //" /proc/$$/stat | awk "{print \$14 + \$15}"' \
        "$TMP/wrk" wrk -t1 -c50 -d"$DUR" "http://127.0.0.1:$PORT/")
    c1=$(cpu_ticks "$pid")
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    grep -q "Requests/sec" "$TMP/wrk" || echo "http-bench: $t: $(cat "$TMP/srv.$PORT" "$TMP/wrk")" >&2
    if grep -qE "Socket errors|Non-2xx" "$TMP/wrk"; then
        echo "http-bench: $t: $(grep -E 'Socket errors|Non-2xx' "$TMP/wrk")" >&2
    fi
    # requests/s; the server's CPU time (user + system) per request in µs;
    # the share of a CPU the server and wrk were busy, in % of wrk's run
    awk -v dt=$((c1 - c0)) -v dw="${w:-0}" -v hz="$HZ" '
        /requests in/ {n = $1; el = $4; sub(/[^0-9.]+$/, "", el)}   # "3.00s," (wrk: "ms" below 1 s)
        /requests in/ && $4 ~ /ms,?$/ {el /= 1000}
        /Requests\/sec/ {r = int($2)}
        END {ok = n > 0 && hz > 0 && el > 0
             printf "%d %.2f %.0f %.0f\n", r, ok ? dt * 1e6 / hz / n : 0,
                    ok ? 100 * dt / hz / el : 0, ok ? 100 * dw / hz / el : 0}' "$TMP/wrk"
}

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# Each aloop server runs right beside the raw server it is compared with,
# and every other run goes the other way round (ABBA): the machine's drift
# over a run (large here: the same server varies by 10-20 % from one
# 3-second run to the next) falls on both sides of a ratio alike.
seq_fwd=""
for t in aloop-epoll raw-uv aloop-libuv aloop-libev raw-ev aloop-libevent raw-event aloop-poll; do
    case " $targets " in *" $t "*) seq_fwd="$seq_fwd $t" ;; esac
done
seq_rev=$(echo $seq_fwd | tr ' ' '\n' | awk '{a[NR]=$0} END {for (i = NR; i > 0; i--) printf "%s ", a[i]}')

case $PIN in
shared) pin="server and wrk on CPU 0" ;;
split) pin="server on CPU 0, wrk on CPU 1" ;;
*) pin="none" ;;
esac
echo "http-bench: wrk -t1 -c50 -d$DUR, $RUNS alternating runs; pinned: $pin"

# A warm-up, not counted: the first server and wrk of a run otherwise meet
# a cold machine (seen: 20-30 % below the next runs), and the first target
# of the first run is always aloop-epoll.
n=1
DUR_RUN=$DUR DUR=1s
run_one "$(echo $seq_fwd | cut -d' ' -f1)" $((PORT + n)) >/dev/null
DUR=$DUR_RUN
for r in $(seq 1 "$RUNS"); do
    if [ $((r % 2)) = 1 ]; then order=$seq_fwd; else order=$seq_rev; fi
    for t in $order; do
        n=$((n + 1))    # a fresh port each run: no wait for the last one's sockets
        v=$(run_one "$t" $((PORT + n)))
        echo "$t $v" >>"$TMP/results"
        set -- $v
        printf '%-16s run %d: %8d req/s  %6.2f us CPU/request  server %3d%%  wrk %3d%% busy\n' \
            "$t" "$r" "$1" "$2" "$3" "$4"
    done
done

echo
col() {     # target column -> the values of that column over the runs
    awk -v t="$1" -v k="$2" '$1 == t {printf "%s ", $k}' "$TMP/results"
}
printf '%-16s %10s %12s %7s %5s   %s\n' target median 'us CPU/req' server wrk 'runs (req/s)'
for t in $targets; do
    vals=$(col "$t" 2)
    m=$(echo "$vals" | median)
    echo "$t $m" >>"$TMP/medians"
    printf '%-16s %10d %12s %6s%% %4s%%   %s\n' "$t" "$m" "$(col "$t" 3 | median)" \
        "$(col "$t" 4 | median)" "$(col "$t" 5 | median)" "$vals"
done
wrk_busy=$(awk '{print $5}' "$TMP/results" | median)

# ratios: median over runs of (aloop run i / raw run i), runs alternate
ratio() {   # a b [column] -> "median min max" of the per-run ratios (column 2: requests/s, 3: CPU/request)
    awk -v a="$1" -v b="$2" -v k="${3:-2}" '$1 == a {x[++n] = $k} $1 == b {y[++m] = $k}
        END {for (i = 1; i <= n && i <= m; i++) if (y[i] > 0) printf "%.3f\n", x[i] / y[i]}' \
        "$TMP/results" | sort -n |
        awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)], a[1], a[NR]; else print "- - -"}'
}
# the pairs compared: aloop target, raw target, the requests/s target
pairs="aloop-epoll:raw-uv:1.00 aloop-libuv:raw-uv:0.95 aloop-libev:raw-ev:0.95 aloop-libevent:raw-event:0.95"
ratios() {  # column [target-suffix] -> one line per pair whose raw server was built
    rcol=$1 rgoal=${2:-}
    for p in $pairs; do
        a=${p%%:*} rest=${p#*:}
        b=${rest%%:*} goal=${rest#*:}
        case " $targets " in *" $b "*) ;; *) continue ;; esac
        # shellcheck disable=SC2046
        set -- $(ratio "$a" "$b" "$rcol") "$rgoal"
        printf '%-14s / %-10s %7s   %5s-%-5s' "$a" "$b" "$1" "$2" "$3"
        [ -n "$4" ] || { echo; continue; }
        # the verdict on the median; "within the runs' spread" when the
        # per-run ratios fall on both sides of the target
        v=$(awk -v m="$1" -v lo="$2" -v hi="$3" -v g="$goal" 'BEGIN {
                if (m == "-") print "no runs"
                else { v = (m >= g) ? "holds" : "missed"
                       if (lo < g && hi >= g) v = v " (runs on both sides)"
                       print v } }')
        printf '  >= %s  %s\n' "$goal" "$v"
    done
}
echo "ratio (median of per-run ratios)   runs: min-max   target"
ratios 2 target
echo
echo "server CPU time per request, aloop / raw (median, min-max of per-run ratios; < 1: aloop"
echo "spends less): what the server itself costs, whatever wrk's share of the machine"
ratios 3
if [ "${wrk_busy:-0}" -ge 95 ] && [ "$PIN" = split ]; then
    echo
    echo "wrk was busy ${wrk_busy}% of its CPU (median over all runs) and the servers"
    echo "less: the client is the bottleneck, so requests/s and their ratios measure how"
    echo "well each server's replies batch for wrk as much as the server; the CPU time"
    echo "per request above is the server's own cost (HTTP_BENCH_PIN=shared, the default:"
    echo "both on one CPU, where it decides requests/s)"
fi
