#!/bin/sh
# tests/cli/compress.sh: mpoc compress / decompress end to end on the fixture
# model (or a generated one) in both formats: several settings, every
# tensor's error against the report, passthrough bit-identical, metadata
# restored, the Python reader against the C reconstruction, the GGUF opened
# by @huggingface/gguf; determinism over thread counts; error feedback
# against independent quantization.
. tests/cli/common.inc
PY=/usr/bin/python3
HAVE_NP=0
if $PY -c 'import numpy' 2>/dev/null; then HAVE_NP=1; else
    echo "skip: numeric checks need /usr/bin/python3 with numpy"; fi

# check_errors ORIG.safetensors DENSE.safetensors REPORT.jsonl: every compressed
# tensor's measured error equals the reported one; passthrough bit-identical.
cat >"$TMP/check.py" <<'PY'
import json, struct, sys
import numpy as np
def load(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n]); d = b[8 + n:]; out = {}
    for k, v in h.items():
        if k == "__metadata__": continue
        s, e = v["data_offsets"]
        out[k] = (v["dtype"], d[s:e], v["shape"])
    return out, h.get("__metadata__")
orig, om = load(sys.argv[1]); dense, dm = load(sys.argv[2])
assert om == dm, ("metadata not restored", om, dm)
assert sorted(orig) == sorted(dense), "tensor names differ"
recs = [json.loads(l) for l in open(sys.argv[3])]
summ = recs.pop()
assert summ["summary"] and summ["tensors"] == len(orig) == len(recs)
assert summ["bytes"] == sum(r["bytes"] for r in recs) and summ["original_bytes"] == sum(r["original_bytes"] for r in recs)
worst = 0.0
need = {"name", "shape", "sites", "ranks", "quant", "bytes", "original_bytes", "rel_error", "seconds", "passthrough"}
for r in recs:
    assert need <= set(r), ("report record lacks", need - set(r))
    dt, raw, shape = orig[r["name"]]; dt2, raw2, shape2 = dense[r["name"]]
    assert shape == shape2 == r["shape"], r["name"]
    if r["passthrough"]:
        assert raw == raw2 and dt == dt2, "passthrough changed: " + r["name"]
        continue
    a = np.frombuffer(raw, np.float32).astype(np.float64)
    b = np.frombuffer(raw2, np.float32).astype(np.float64)
    e = np.linalg.norm(a - b) / np.linalg.norm(a)
    worst = max(worst, abs(e - r["rel_error"]) / max(r["rel_error"], 1e-6))
    assert r["bytes"] < r["original_bytes"] * 2 and r["sites"] == len(r["ranks"]) - 1
assert worst < 1e-3, "reported errors differ from measured by %g (relative)" % worst
print("errors match the report (worst relative difference %.2g), %d tensors" % (worst, len(recs)))
PY
check_errors() {
    [ "$HAVE_NP" -eq 1 ] || return 0
    $PY "$TMP/check.py" "$@" >"$TMP/py" 2>&1 || { echo "FAIL: check $*"; cat "$TMP/py"; fails=$((fails + 1)); }
}
summary_field() { tail -1 "$1" | sed -n "s/.*\"$2\":\([0-9.e+-]*\).*/\1/p"; }

# ---- safetensors at several settings
n=0
for set in "--chi 16" "--eps 0.05 --quant q4_0" "--cutoff 0.05 --quant f16 --sites 3" \
           "--chi 24 --quant bf16 --center-quant f32"; do
    n=$((n + 1))
    run 0 "$CLI" compress "$HF" "$TMP/c$n.safetensors" $set --report "$TMP/r$n.jsonl" --quiet
    run 0 "$CLI" decompress "$TMP/c$n.safetensors" "$TMP/d$n.safetensors" --quiet
    check_errors "$HF" "$TMP/d$n.safetensors" "$TMP/r$n.jsonl"
done
# per-tensor lines and the summary on stderr
run 0 "$CLI" compress "$HF" "$TMP/lines.safetensors" --chi 8
has err "passthrough"
has err "ranks 1-"
has err "bits per weight"
has err "size-weighted error"
# the Python reader rebuilds the same matrices as the C code
if [ "$HAVE_NP" -eq 1 ]; then
    run 0 "$CLI" decompress "$TMP/c2.safetensors" "$TMP/f32.safetensors" --dtype f32 --quiet
    for name in $($PY docs/mpoc_read.py "$TMP/c2.safetensors" | cut -d' ' -f1); do
        $PY docs/mpoc_read.py "$TMP/c2.safetensors" "$name" --compare "$TMP/f32.safetensors" \
            >>"$TMP/reader" 2>&1 || { echo "FAIL: mpoc_read.py $name"; fails=$((fails + 1)); }
    done
    echo "mpoc_read.py: $(wc -l <"$TMP/reader") matrices match the C reconstruction"
fi

# ---- GGUF in, GGUF out, metadata kept
run 0 "$CLI" compress "$GG" "$TMP/c.gguf" --eps 0.05 --report "$TMP/rg.jsonl" --quiet
run 0 "$CLI" decompress "$TMP/c.gguf" "$TMP/d.gguf" --quiet
run 0 "$CLI" inspect "$GG"; sed -n '/^metadata/,/^tensors/p' "$TMP/out" | grep -v 'alignment\|^metadata:' >"$TMP/m0"
run 0 "$CLI" inspect "$TMP/d.gguf"; sed -n '/^metadata/,/^tensors/p' "$TMP/out" | grep -v 'alignment\|^metadata:' >"$TMP/m1"
cmp -s "$TMP/m0" "$TMP/m1" || { echo "FAIL: GGUF metadata not restored"; diff "$TMP/m0" "$TMP/m1" | head; fails=$((fails + 1)); }
run 0 "$CLI" convert "$GG" "$TMP/g0.safetensors"
run 0 "$CLI" convert "$TMP/d.gguf" "$TMP/g1.safetensors"
check_errors "$TMP/g0.safetensors" "$TMP/g1.safetensors" "$TMP/rg.jsonl"
if command -v node >/dev/null 2>&1 && [ -d tests/tools/node_modules/@huggingface/gguf ]; then
    for f in "$TMP/d.gguf" "$TMP/c.gguf"; do
        run 0 "$CLI" inspect --json "$f"; cp "$TMP/out" "$TMP/expect.json"
        node tests/tools/check_gguf.mjs "$f" "$TMP/expect.json" >"$TMP/js" 2>&1 || {
            echo "FAIL: check_gguf.mjs $f"; cat "$TMP/js"; fails=$((fails + 1)); }
    done
    echo "check_gguf: compressed and decompressed GGUF open"
else
    echo "skip: node or tests/tools/node_modules/@huggingface/gguf absent"
fi
# q4_0 GGUF cores (native blocks or flat) round-trip too
run 0 "$CLI" compress "$GG" "$TMP/q4.gguf" --chi 32 --quant q4_0 --center-quant q8_0 --quiet
run 0 "$CLI" decompress "$TMP/q4.gguf" "$TMP/q4d.gguf" --quiet

# ---- determinism: 1 and 2 threads give the same bytes; repeat runs too
run 0 "$CLI" compress "$HF" "$TMP/t1.safetensors" --eps 0.05 --threads 1 --quiet
run 0 "$CLI" compress "$HF" "$TMP/t2.safetensors" --eps 0.05 --threads 2 --quiet
cmp -s "$TMP/t1.safetensors" "$TMP/t2.safetensors" || { echo "FAIL: 1 vs 2 threads differ"; fails=$((fails + 1)); }
run 0 "$CLI" compress "$GG" "$TMP/t1.gguf" --chi 16 --threads 1 --quiet
run 0 "$CLI" compress "$GG" "$TMP/t2.gguf" --chi 16 --threads 2 --quiet
cmp -s "$TMP/t1.gguf" "$TMP/t2.gguf" || { echo "FAIL: GGUF 1 vs 2 threads differ"; fails=$((fails + 1)); }

# ---- error feedback beats independent quantization at the same bytes
for set in "--eps 0.05 --quant q4_0" "--chi 32 --sites 3 --quant q4_0" "--eps 0.05 --quant q8_0"; do
    run 0 "$CLI" compress "$HF" "$TMP/fb.st" $set --report "$TMP/fb.jsonl" --quiet --force
    run 0 "$CLI" compress "$HF" "$TMP/nf.st" $set --report "$TMP/nf.jsonl" --quiet --force --no-feedback
    e1=$(summary_field "$TMP/fb.jsonl" rel_error); e2=$(summary_field "$TMP/nf.jsonl" rel_error)
    b1=$(summary_field "$TMP/fb.jsonl" compressed_bytes); b2=$(summary_field "$TMP/nf.jsonl" compressed_bytes)
    echo "fixture $set: error feedback $e1, independent $e2 (bytes $b1 / $b2)"
    [ "$b1" = "$b2" ] || { echo "FAIL: bytes differ ($b1 vs $b2)"; fails=$((fails + 1)); }
    awk -v a="$e1" -v b="$e2" 'BEGIN { exit !(a < b) }' || { echo "FAIL: feedback $e1 not below $e2"; fails=$((fails + 1)); }
done

# ---- refusals
run 1 "$CLI" compress "$HF" "$TMP/c1.safetensors" --chi 4
has err "exists"
run 1 "$CLI" compress "$TMP/c1.safetensors" "$TMP/again.safetensors"
has err "already an mpoc container"
run 2 "$CLI" compress "$HF" "$TMP/x.safetensors" --quant q5_k
run 2 "$CLI" prune "$TMP/c1.safetensors" "$TMP/p.safetensors"
run 1 "$CLI" decompress "$HF" "$TMP/x.safetensors"
has err "not an mpoc container"
finish
