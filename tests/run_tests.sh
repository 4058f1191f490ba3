#!/bin/sh
# Run every test suite: the cmocka binaries in $MPOC_BUILD/tests, then the
# scripted CLI tests in tests/cli/*.sh. Prints one closing line
# "tests: N passed, M failed" and exits non-zero when anything failed.
# Environment: MPOC_BUILD (build folder), MPOC_FIXTURES (../shared/fixtures).
set -u
build=${MPOC_BUILD:-build}
export MPOC_BUILD="$build" MPOC_CLI="$build/mpoc" MPOC_FIXTURES="${MPOC_FIXTURES:-../shared/fixtures}"
# Deterministic BLAS: a fixed thread count for every suite.
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-2}" OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
[ -d "$MPOC_FIXTURES" ] || echo "note: $MPOC_FIXTURES not found; fixture tests use generated data"
pass=0; fail=0; failed=""
for t in "$build"/tests/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    if "$t"; then pass=$((pass + 1)); else fail=$((fail + 1)); failed="$failed $name"; fi
done
for s in tests/cli/*.sh; do
    [ -f "$s" ] || continue
    name=$(basename "$s" .sh)
    echo "[ RUN      ] cli/$name"
    if sh "$s"; then echo "[       OK ] cli/$name"; pass=$((pass + 1));
    else echo "[  FAILED  ] cli/$name"; fail=$((fail + 1)); failed="$failed cli/$name"; fi
done
[ -z "$failed" ] || echo "failed suites:$failed"
echo "tests: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
