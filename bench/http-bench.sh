#!/bin/sh
# http-bench.sh -- the http workload: wrk against examples/http-hello on each
# aloop backend and against the raw servers (bench/http-raw-{uv,ev,event}),
# alternating, on loopback, bounded in time (targets x runs x duration).
#
#   bench/http-bench.sh [BUILD_DIR [DURATION [RUNS]]]     (., 3s, 3)
#
# Prints each run's requests/s and the server's CPU time per request
# (/proc/PID/stat), the medians, the ratios of the targets (API issue 8):
# http-hello on epoll / raw libuv, and each third-party backend / that
# library's own raw server; then the same pairs' CPU-per-request ratios.
# wrk: apt-get install wrk.
set -u
B=${1:-.}
DUR=${2:-3s}
RUNS=${3:-3}
PORT=${HTTP_BENCH_PORT:-18123}
# With 2+ CPUs and taskset, the server runs on CPU 0 and wrk on CPU 1
# (HTTP_BENCH_PIN=0 turns it off): unpinned runs on a small machine vary
# by 30 % from one run to the next.
SRV_PIN= WRK_PIN=
if [ "${HTTP_BENCH_PIN:-1}" = 1 ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    SRV_PIN="taskset -c 0" WRK_PIN="taskset -c 1"
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

run_one() {     # target port -> "requests/s cpu-µs/request" (0 0 on failure); errors to stderr
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
    $WRK_PIN wrk -t1 -c50 -d"$DUR" "http://127.0.0.1:$PORT/" >"$TMP/wrk" 2>&1
    c1=$(cpu_ticks "$pid")
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    grep -q "Requests/sec" "$TMP/wrk" || echo "http-bench: $t: $(cat "$TMP/srv.$PORT" "$TMP/wrk")" >&2
    if grep -qE "Socket errors|Non-2xx" "$TMP/wrk"; then
        echo "http-bench: $t: $(grep -E 'Socket errors|Non-2xx' "$TMP/wrk")" >&2
    fi
    # requests/s, and the server's CPU time (user + system) per request in µs
    awk -v dt=$((c1 - c0)) -v hz="$HZ" '/requests in/ {n = $1} /Requests\/sec/ {r = int($2)}
        END {printf "%d %.2f\n", r, (n > 0 && hz > 0) ? dt * 1e6 / hz / n : 0}' "$TMP/wrk"
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
        printf '%-16s run %d: %8d req/s  %6.2f us CPU/request\n' "$t" "$r" "$1" "$2"
    done
done

echo
printf '%-16s %10s %12s   %s\n' target median 'us CPU/req' runs
for t in $targets; do
    vals=$(awk -v t="$t" '$1 == t {printf "%s ", $2}' "$TMP/results")
    cpus=$(awk -v t="$t" '$1 == t {printf "%s ", $3}' "$TMP/results")
    m=$(echo "$vals" | median)
    mc=$(echo "$cpus" | tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    echo "$t $m" >>"$TMP/medians"
    printf '%-16s %10d %12s   %s\n' "$t" "$m" "$mc" "$vals"
done

# ratios: median over runs of (aloop run i / raw run i), runs alternate
ratio() {   # a b [column] -> median per-run ratio (column 2: requests/s, 3: CPU/request)
    awk -v a="$1" -v b="$2" -v k="${3:-2}" '$1 == a {x[++n] = $k} $1 == b {y[++m] = $k}
        END {for (i = 1; i <= n && i <= m; i++) if (y[i] > 0) printf "%.3f\n", x[i] / y[i]}' \
        "$TMP/results" | sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "-"}'
}
# the pairs compared: aloop target, raw target, the requests/s target
pairs="aloop-epoll:raw-uv:1.00 aloop-libuv:raw-uv:0.95 aloop-libev:raw-ev:0.95 aloop-libevent:raw-event:0.95"
ratios() {  # column [target-suffix] -> one line per pair whose raw server was built
    for p in $pairs; do
        a=${p%%:*} rest=${p#*:}
        b=${rest%%:*} goal=${rest#*:}
        case " $targets " in *" $b "*) ;; *) continue ;; esac
        printf '%-14s / %-10s %7s' "$a" "$b" "$(ratio "$a" "$b" "$1")"
        if [ -n "${2:-}" ]; then printf '     >= %s\n' "$goal"; else echo; fi
    done
}
echo
echo "ratio (median of per-run ratios)        target"
ratios 2 target
echo
echo "server CPU time per request, aloop / raw (median of per-run ratios; < 1: aloop"
echo "spends less): what the server itself costs, whatever wrk's share of the machine"
ratios 3
