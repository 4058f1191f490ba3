#!/bin/sh
# tests/cli/sweep.sh: `mpoc sweep` and `mpoc bench` — usage, record formats
# (JSON Lines and CSV parsed with Python), best-at-size bookkeeping, SVG
# plots that parse as XML with one <path> per series, sweep records equal to
# separate `mpoc compress` runs (bytes exactly, errors within the rounding
# tolerance of docs/sweep.md), determinism, and the quick bench suite at a
# small size. Checks needing Python are skipped when /usr/bin/python3 is absent.
. tests/cli/common.inc
PY=/usr/bin/python3
[ -x "$PY" ] || { echo "note: no $PY; format checks skipped"; PY=""; }

run 2 "$CLI" sweep
has err "usage: mpoc sweep"
run 0 "$CLI" sweep --help
has out "--plot-chi"
run 0 "$CLI" synth-matrix "$TMP/w.npy" --rows 96 --cols 160 --spectrum llm --seed 4
run 2 "$CLI" sweep "$TMP/w.npy" --chi 8:4
has err "bad range"
run 2 "$CLI" sweep "$TMP/w.npy" --chi 0,8
run 2 "$CLI" sweep "$TMP/w.npy" --eps 1.5
run 2 "$CLI" sweep "$TMP/w.npy" --quant q3_k
run 2 "$CLI" sweep "$TMP/w.npy" --format xml
run 1 "$CLI" sweep "$TMP/missing.npy"

# a .npy: 4 chi x 2 quant settings, 4 methods each, then the same as totals
run 0 "$CLI" sweep "$TMP/w.npy" --chi 4:32:x2 --quant q8_0,q4_0 --plot "$TMP/bpw.svg" --plot-chi "$TMP/chi.svg"
cp "$TMP/out" "$TMP/a.jsonl"
[ -s "$TMP/err" ] && { echo "FAIL: diagnostics on a clean run"; cat "$TMP/err"; fails=$((fails + 1)); }
[ "$(wc -l < "$TMP/a.jsonl")" -eq 64 ] || { echo "FAIL: want 64 records"; fails=$((fails + 1)); }
run 0 "$CLI" sweep "$TMP/w.npy" --chi 4:32:x2 --quant q8_0,q4_0 --format csv --out "$TMP/a.csv"
[ -s "$TMP/out" ] && { echo "FAIL: records on stdout with --out"; fails=$((fails + 1)); }
run 1 "$CLI" sweep "$TMP/w.npy" --chi 4 --out "$TMP/a.csv"
has err "exists"
run 1 "$CLI" sweep "$TMP/w.npy" --chi 4 --out "$TMP/w.npy" --force
# same input and options: the same records except the timings
run 0 "$CLI" sweep "$TMP/w.npy" --chi 4:32:x2 --quant q8_0,q4_0
cp "$TMP/out" "$TMP/b.jsonl"

if [ -n "$PY" ]; then
    "$PY" - "$TMP" <<'PYEOF' || fails=$((fails + 1))
import csv, json, sys, xml.etree.ElementTree as ET
d = sys.argv[1]
def load(p):
    return [json.loads(l) for l in open(p)]
a, b = load(d + "/a.jsonl"), load(d + "/b.jsonl")
keys = ["tensor", "method", "setting", "tensors", "rows", "cols", "sites", "chi", "eps", "quant",
        "ranks", "params", "bytes", "original_bytes", "elems", "bits_per_weight", "compression",
        "rel_error", "rel_error_trunc", "seconds", "seconds_factor", "best", "best_method",
        "kl_mean", "kl_max", "top1"]
bad = [r for r in a if list(r) != keys]
assert not bad, "field order: %s" % list(bad[0])
strip = lambda rs: [{k: v for k, v in r.items() if not k.startswith("seconds")} for r in rs]
assert strip(a) == strip(b), "not deterministic"
groups = {}
for r in a:
    groups.setdefault((r["tensor"], r["setting"]), []).append(r)
assert len(groups) == 16
for g in groups.values():
    assert [r["method"] for r in g] == ["mpo", "svd", "q8_0", "q4_0"]
    size = g[0]["bytes"]
    best = [r for r in g if r["best"]]
    assert len(best) == 1 and all(r["best_method"] == best[0]["method"] for r in g)
    ok = [r for r in g if r["bytes"] <= size]
    assert best[0]["rel_error"] == min(r["rel_error"] for r in ok)
    assert g[1]["bytes"] <= size
    if g[0]["tensor"] != "*":
        assert g[1]["bytes"] == 2 * g[1]["ranks"][0] * (96 + 160)
    assert g[2]["bytes"] == 96 * 5 * 34 and g[3]["bytes"] == 96 * 5 * 18
    for r in g:
        assert abs(r["bits_per_weight"] - 8 * r["bytes"] / r["elems"]) < 1e-6
        assert 0 <= r["rel_error"] <= 1.0001
rows = list(csv.reader(open(d + "/a.csv")))
assert rows[0] == keys and len(rows) == 65 and all(len(r) == len(keys) for r in rows)
for r, j in zip(rows[1:], a):
    assert r[0] == j["tensor"] and r[1] == j["method"] and int(r[12]) == j["bytes"]
    assert abs(float(r[17]) - j["rel_error"]) <= 1e-9 * max(1, j["rel_error"])
def paths(p):
    root = ET.parse(p).getroot()
    return [e for e in root.iter() if e.tag.endswith("path")]
assert len(paths(d + "/bpw.svg")) == 5, len(paths(d + "/bpw.svg"))  # 2 MPO + 3 baselines
assert len(paths(d + "/chi.svg")) == 2
PYEOF
fi

# Sweep records equal separate `mpoc compress` runs at the same settings:
# bytes exactly (same ranks, same layout), errors equal for the largest chi
# (it IS the separate run) and within 3% for the rounded ones.
for fmt in st gguf; do
    [ $fmt = st ] && M=$HF || M=$GG
    ext=$([ $fmt = st ] && echo safetensors || echo gguf)
    run 0 "$CLI" sweep "$M" --chi 4,8,16 --quant q8_0,q4_0 --sites 3 --no-baselines --threads 2
    cp "$TMP/out" "$TMP/sw-$fmt.jsonl"
    for c in 4 8 16; do for q in q8_0 q4_0; do
        run 0 "$CLI" compress "$M" "$TMP/c-$fmt-$c-$q.$ext" --chi $c --quant $q --sites 3 \
            --report "$TMP/r-$fmt-$c-$q.jsonl" --quiet
    done; done
    if [ -n "$PY" ]; then
        "$PY" - "$TMP" $fmt <<'PYEOF' || fails=$((fails + 1))
import json, sys
d, fmt = sys.argv[1], sys.argv[2]
sw = [json.loads(l) for l in open("%s/sw-%s.jsonl" % (d, fmt))]
n = worst = 0
for c in (4, 8, 16):
    for q in ("q8_0", "q4_0"):
        rep = {}
        for l in open("%s/r-%s-%d-%s.jsonl" % (d, fmt, c, q)):
            o = json.loads(l)
            if o.get("name") and not o.get("passthrough"):
                rep[o["name"]] = o
        for r in sw:
            if r["tensor"] == "*" or r["chi"] != c or r["quant"] != q:
                continue
            o = rep[r["tensor"]]
            n += 1
            assert r["bytes"] == o["bytes"], (r["tensor"], c, q, r["bytes"], o["bytes"])
            assert r["ranks"] == o["ranks"], (r["tensor"], r["ranks"], o["ranks"])
            rel = abs(r["rel_error"] - o["rel_error"]) / o["rel_error"]
            assert rel <= (1e-6 if c == 16 else 0.03), (r["tensor"], c, q, r["rel_error"], o["rel_error"])
            worst = max(worst, rel)
assert n > 0
print("sweep vs compress (%s): %d records, largest relative error difference %.2g" % (fmt, n, worst))
PYEOF
    fi
done

# the same without error feedback (the gauge handed to the quantizer matters)
run 0 "$CLI" sweep "$HF" --chi 8,16 --quant q4_0 --sites 3 --no-baselines --no-feedback
cp "$TMP/out" "$TMP/sw-nofb.jsonl"
for c in 8 16; do
    run 0 "$CLI" compress "$HF" "$TMP/n-$c.safetensors" --chi $c --quant q4_0 --sites 3 --no-feedback \
        --report "$TMP/n-$c.jsonl" --quiet
done
if [ -n "$PY" ]; then
    "$PY" - "$TMP" <<'PYEOF' || fails=$((fails + 1))
import json, sys
d = sys.argv[1]
sw = [json.loads(l) for l in open(d + "/sw-nofb.jsonl")]
for c in (8, 16):
    rep = {o["name"]: o for o in map(json.loads, open("%s/n-%d.jsonl" % (d, c))) if o.get("name")}
    for r in sw:
        if r["tensor"] != "*" and r["chi"] == c:
            o = rep[r["tensor"]]
            assert r["bytes"] == o["bytes"], (r["tensor"], c)
            rel = abs(r["rel_error"] - o["rel_error"]) / o["rel_error"]
            assert rel <= (1e-6 if c == 16 else 0.03), (r["tensor"], c, r["rel_error"], o["rel_error"])
PYEOF
fi

# the quick bench suite at a small size
run 0 "$CLI" bench quick --out "$TMP/bench" --size-scale 0.25 --quiet
for f in records.jsonl records.csv cases.jsonl scaling.jsonl scaling.svg llm-256-bpw.svg llm-256-chi.svg; do
    [ -s "$TMP/bench/$f" ] || { echo "FAIL: bench output $f missing"; fails=$((fails + 1)); }
done
if [ -n "$PY" ]; then
    "$PY" - "$TMP/bench" <<'PYEOF' || fails=$((fails + 1))
import json, os, sys, xml.etree.ElementTree as ET
d = sys.argv[1]
cases = [json.loads(l) for l in open(d + "/cases.jsonl")]
assert "sgemm_peak_gflops" in cases[0]
llm = [c for c in cases if c.get("case") == "llm-256"][0]
for k in ("seconds_permute", "seconds_svd", "gflops", "fraction_of_sgemm_peak", "output_rel_error"):
    assert k in llm["factor"], k
assert llm["sweep_vs_separate"]["speedup"] > 0 and llm["peak_rss_mb"] > 0
sc = [json.loads(l) for l in open(d + "/scaling.jsonl")]
assert sorted(s["svd"] for s in sc if "exponent" in s) == ["exact", "randomized"]
for f in os.listdir(d):
    if f.endswith(".svg"):
        ET.parse(os.path.join(d, f))
PYEOF
fi
run 2 "$CLI" bench nosuch --out "$TMP/b2"
finish
