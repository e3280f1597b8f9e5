#!/bin/sh
# tests/fuzz/build.sh [BUILD_DIR] -- build the libFuzzer binary of the
# differential fuzzer (fuzz_loop.c + prog.c).  BUILD_DIR (default
# _build-fuzz) is configured with clang and -fsanitize=fuzzer-no-link,
# address,undefined; libaloop (static, instrumented) and the backend modules
# are built there with the project's own source lists; fuzz_loop is linked
# with -rdynamic so that a dlopen'ed module binds to the instrumented core.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
b=${1:-$top/_build-fuzz}
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
mkdir -p "$b"
cd "$b"
[ -f Makefile ] || "$top/configure" -q CC=clang CFLAGS="-g -O1 -fsanitize=fuzzer-no-link $san" \
    LDFLAGS="$san" >/dev/null
make -j"$(nproc)" libaloop.la >/dev/null
for m in libaloop-ev.la libaloop-event.la libaloop-uv.la; do
    if grep -q "^$m:" Makefile; then make -j"$(nproc)" "$m" >/dev/null || echo "build.sh: $m failed to build" >&2; fi
done
clang -g -O1 -std=gnu11 -D_GNU_SOURCE -fsanitize=fuzzer $san -rdynamic -I"$top/include" \
    "$top/tests/fuzz/fuzz_loop.c" "$top/tests/fuzz/prog.c" .libs/libaloop.a -ldl -lpthread \
    -o fuzz_loop
echo "$b/fuzz_loop"
