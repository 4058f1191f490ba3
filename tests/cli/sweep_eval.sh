#!/bin/sh
# tests/cli/sweep_eval.sh: `mpoc sweep --eval REF` — model-level KL on every
# setting's totals, for the MPO and the same-bytes baselines: ~0 for an exact
# (untruncated, f32) setting, growing as chi shrinks, small but non-zero for
# q8_0, larger for q4_0; token files equal to sampling with the same seed;
# refused combinations. On the stories260K fixture when present, else on a
# model written by `mpoc synth`.
. tests/cli/common.inc
PY=/usr/bin/python3
[ -x "$PY" ] || { echo "note: no $PY; sweep --eval checks skipped"; finish; }

if [ "$HAVE_FIXTURES" = 1 ]; then
    M=$(dirname "$HF") REF=$GG # the HF folder swept, the GGUF as reference: same model
else
    run 0 "$CLI" synth "$TMP/syn" --seed 3
    M=$TMP/syn REF=$TMP/syn
fi

# usage
run 2 "$CLI" sweep "$M" --eval-sample 4
has err "need --eval REF"
run 2 "$CLI" sweep "$M" --eval "$REF" --eval-sample 2 --eval-tokens "$TMP/none.bin"
has err "exclusive"
run 2 "$CLI" sweep "$M" --eval "$REF" --eval-length 1
run 0 "$CLI" synth-matrix "$TMP/w.npy" --rows 64 --cols 64 --seed 1
run 2 "$CLI" sweep "$TMP/w.npy" --eval "$REF"
has err "needs a model"
run 1 "$CLI" sweep "$M" --chi 4 --eval "$REF" --eval-length 100000
has err "exceeds the context"

# 2 sites: chi 256 keeps every bond whole (exact); f32 cores and centre
run 0 "$CLI" sweep "$M" --sites 2 --chi 256,16,4 --quant f32 --centre-quant f32 \
    --eval "$REF" --eval-sample 4 --eval-length 48 --eval-seed 3
cp "$TMP/out" "$TMP/e.jsonl"
[ -s "$TMP/err" ] && { echo "FAIL: diagnostics on a clean run"; cat "$TMP/err"; fails=$((fails + 1)); }
run 0 "$CLI" sweep "$M" --sites 2 --chi 256,16,4 --quant f32 --centre-quant f32 \
    --eval "$REF" --eval-sample 4 --eval-length 48 --eval-seed 3 --format csv
cp "$TMP/out" "$TMP/e.csv"
# the same tokens from a file (mpoc eval --save-tokens samples them alike)
run 0 "$CLI" eval "$REF" "$REF" --sample 4 --length 48 --seed 3 --save-tokens "$TMP/tok.bin"
run 0 "$CLI" sweep "$M" --sites 2 --chi 256,16,4 --quant f32 --centre-quant f32 \
    --eval "$REF" --eval-tokens "$TMP/tok.bin" --eval-length 48
cp "$TMP/out" "$TMP/f.jsonl"
run 0 "$CLI" sweep "$M" --sites 2 --chi 16 --quant f32
cp "$TMP/out" "$TMP/plain.jsonl"

"$PY" - "$TMP" <<'PYEOF' || fails=$((fails + 1))
import csv, json, sys
d = sys.argv[1]
load = lambda p: [json.loads(l) for l in open(p)]
e, f, plain = load(d + "/e.jsonl"), load(d + "/f.jsonl"), load(d + "/plain.jsonl")
for r in e + plain:
    assert list(r)[-3:] == ["kl_mean", "kl_max", "top1"], list(r)
    if r["tensor"] != "*" or r is plain[-1] or r in plain:
        assert r["kl_mean"] is None and r["kl_max"] is None and r["top1"] is None, r
tot = {(r["chi"], r["method"]): r for r in e if r["tensor"] == "*"}
assert len(tot) == 12, sorted(tot)
for r in tot.values():
    assert r["kl_mean"] is not None and 0 <= r["kl_mean"] <= r["kl_max"] and 0 <= r["top1"] <= 1, r
mpo = {c: tot[(c, "mpo")] for c in (256, 16, 4)}
# exact setting: the compressed model is the original up to float round-off
assert mpo[256]["rel_error"] < 1e-5, mpo[256]
assert mpo[256]["kl_mean"] < 1e-8 and mpo[256]["kl_max"] < 1e-6 and mpo[256]["top1"] >= 0.99, mpo[256]
# less bond, more divergence
assert mpo[256]["kl_mean"] < mpo[16]["kl_mean"] < mpo[4]["kl_mean"], [mpo[c]["kl_mean"] for c in mpo]
assert mpo[4]["top1"] < 0.9
# block baselines: q8_0 small but not zero, q4_0 larger; the same at every setting
q8, q4 = tot[(16, "q8_0")], tot[(16, "q4_0")]
assert 0 < q8["kl_mean"] < 0.01 and q8["top1"] > 0.9, q8
assert q8["kl_mean"] < q4["kl_mean"] < 1, (q8["kl_mean"], q4["kl_mean"])
for c in (256, 4):
    for m in ("q8_0", "q4_0"):
        assert tot[(c, m)]["kl_mean"] == tot[(16, m)]["kl_mean"]
# the svd baseline at the same bytes: evaluated, and worse with fewer bytes
assert tot[(4, "svd")]["kl_mean"] > tot[(16, "svd")]["kl_mean"]
# a token file holding the same sequences gives the same figures
for a, b in zip(e, f):
    assert (a["kl_mean"], a["kl_max"], a["top1"]) == (b["kl_mean"], b["kl_max"], b["top1"]), (a, b)
# without --eval, the totals carry nulls
assert all(r["kl_mean"] is None for r in plain)
# CSV: the same figures in the last three columns
rows = list(csv.reader(open(d + "/e.csv")))
assert rows[0][-3:] == ["kl_mean", "kl_max", "top1"]
for r, j in zip(rows[1:], e):
    if j["kl_mean"] is None:
        assert r[-3:] == ["", "", ""], r
    else:
        assert abs(float(r[-3]) - j["kl_mean"]) <= 1e-9 * max(1e-12, j["kl_mean"]) + 1e-300, (r, j)
print("sweep --eval: exact kl %.2g, chi 16 %.3g, chi 4 %.3g; q8_0 %.3g, q4_0 %.3g" % (
    mpo[256]["kl_mean"], mpo[16]["kl_mean"], mpo[4]["kl_mean"], q8["kl_mean"], q4["kl_mean"]))
PYEOF

# a reference of another model is refused with the difference named
run 0 "$CLI" synth "$TMP/other" --vocab 40 --seed 2
run 1 "$CLI" sweep "$M" --chi 4 --eval "$TMP/other" --eval-sample 1 --eval-length 8
has err "models differ"
finish
