#!/bin/sh
# tests/cli/factor.sh: `mpoc factor` and `mpoc synth-matrix` — report, JSON,
# dense output, determinism, errors. Values are checked with Debian's numpy
# when it is there.
. tests/cli/common.inc

run 2 "$CLI" factor
has err "usage: mpoc factor"
run 0 "$CLI" factor --help
has out "--eps E"
run 0 "$CLI" synth-matrix "$TMP/w.npy" --rows 172 --cols 64 --spectrum llm --seed 3
run 1 "$CLI" synth-matrix "$TMP/w.npy" --rows 172 --cols 64
has err "file exists"
run 2 "$CLI" synth-matrix "$TMP/x.npy" --rows 0 --cols 4

run 0 "$CLI" factor "$TMP/w.npy" --eps 0.1
has out "relative error:"
has out "172 x 64"
run 0 "$CLI" factor "$TMP/w.npy" --chi 8 --json --save-dense "$TMP/d.npy"
has out '"rows":172'
has out '"ranks":[1,'
run 0 "$CLI" factor "$TMP/w.npy" --chi 8 --json --save-dense "$TMP/d2.npy"
cmp -s "$TMP/d.npy" "$TMP/d2.npy" || { echo "FAIL: same input and options gave different bytes"; fails=$((fails + 1)); }
run 1 "$CLI" factor "$TMP/w.npy" --chi 8 --save-dense "$TMP/d.npy"
has err "file exists"
run 1 "$CLI" factor "$TMP/w.npy" --save-dense "$TMP/w.npy" --force
has err "is the input"
run 0 "$CLI" factor "$TMP/w.npy" --shape 4x43:8x8 --svd exact --json
has out '"row_dims":[4,43]'
run 2 "$CLI" factor "$TMP/w.npy" --chi 0
run 2 "$CLI" factor "$TMP/w.npy" --eps 2
run 2 "$CLI" factor "$TMP/w.npy" --svd fastest
run 1 "$CLI" factor "$TMP/w.npy" --shape 2x2:8x8
has err "does not cover"
run 1 "$CLI" factor "$TMP/missing.npy"
has err "missing.npy"

if /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
    # The reported error is the error of the saved reconstruction, computed
    # independently in float64; a NaN input is refused.
    "$CLI" factor "$TMP/w.npy" --eps 0.05 --json --save-dense "$TMP/e.npy" >"$TMP/rep.json"
    /usr/bin/python3 - "$TMP" <<'PY' || fails=$((fails + 1))
import json, sys, numpy as np
d = sys.argv[1]
w = np.load(d + "/w.npy").astype(np.float64)
r = np.load(d + "/e.npy").astype(np.float64)
rep = json.load(open(d + "/rep.json"))
err = np.linalg.norm(w - r) / np.linalg.norm(w)
assert r.shape == w.shape, r.shape
assert err <= 0.05 * (1 + 1e-5), err
assert abs(err - rep["rel_error"]) <= 1e-5 * err, (err, rep["rel_error"])
p = sum(rep["ranks"][k] * rep["row_dims"][k] * rep["col_dims"][k] * rep["ranks"][k + 1] for k in range(rep["sites"]))
assert p == rep["params"], (p, rep["params"])
w[3, 5] = np.nan
np.save(d + "/nan.npy", w.astype(np.float32))
np.save(d + "/int.npy", np.arange(12, dtype=np.int32).reshape(3, 4))
np.save(d + "/f16.npy", np.ones((4, 4), dtype=np.float16))
PY
    run 1 "$CLI" factor "$TMP/nan.npy"
    has err "NaN"
    run 1 "$CLI" factor "$TMP/int.npy"
    has err "not supported"
    run 0 "$CLI" factor "$TMP/f16.npy" --json
    has out '"ranks":[1,1,1]'
else
    echo "note: Debian python3-numpy not found; skipping the independent value checks"
fi
finish
