#!/bin/sh
# tests/cli/compress_jobs.sh: the batch-job behaviour of mpoc compress:
# resume after a simulated kill gives identical bytes; NaN tensors stop the
# run with a message naming them unless --skip-bad; prune without the
# original; sharded checkpoints; mpoc synth; inspect of a container; the
# JSON Lines report.
. tests/cli/common.inc
PY=/usr/bin/python3

# ---- resume after a simulated kill (MPOC_TEST_STOP_AFTER stops after N tensors)
run 0 "$CLI" compress "$HF" "$TMP/full.safetensors" --eps 0.05 --quiet
MPOC_TEST_STOP_AFTER=3 run 1 "$CLI" compress "$HF" "$TMP/part.safetensors" --eps 0.05 --quiet --threads 2
has err "stopped after"
[ -e "$TMP/part.safetensors" ] && { echo "FAIL: output exists after an interrupted run"; fails=$((fails + 1)); }
[ -d "$TMP/part.safetensors.partial" ] || { echo "FAIL: no checkpoint folder"; fails=$((fails + 1)); }
run 0 "$CLI" compress "$HF" "$TMP/part.safetensors" --eps 0.05 --resume --threads 1
has err "(resumed)"
cmp -s "$TMP/full.safetensors" "$TMP/part.safetensors" || { echo "FAIL: resumed output differs"; fails=$((fails + 1)); }
[ -d "$TMP/part.safetensors.partial" ] && { echo "FAIL: checkpoint folder left behind"; fails=$((fails + 1)); }
# resuming with other options is refused
MPOC_TEST_STOP_AFTER=2 run 1 "$CLI" compress "$HF" "$TMP/p2.safetensors" --chi 8 --quiet
run 1 "$CLI" compress "$HF" "$TMP/p2.safetensors" --chi 9 --resume --quiet
has err "other options"
# GGUF too
run 0 "$CLI" compress "$GG" "$TMP/full.gguf" --chi 16 --quant q4_0 --quiet
MPOC_TEST_STOP_AFTER=2 run 1 "$CLI" compress "$GG" "$TMP/part.gguf" --chi 16 --quant q4_0 --quiet
run 0 "$CLI" compress "$GG" "$TMP/part.gguf" --chi 16 --quant q4_0 --quiet --resume
cmp -s "$TMP/full.gguf" "$TMP/part.gguf" || { echo "FAIL: resumed GGUF differs"; fails=$((fails + 1)); }

# ---- a NaN stops the run naming the tensor; --skip-bad passes it through
$PY - "$HF" "$TMP/nan.safetensors" <<'PY'
import json, struct, sys
b = bytearray(open(sys.argv[1], "rb").read()); n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
name = sorted(k for k in h if k.endswith("up_proj.weight"))[0]
s = 8 + n + h[name]["data_offsets"][0] + 4 * 5
b[s:s + 4] = struct.pack("<f", float("nan"))
open(sys.argv[2], "wb").write(b)

PY
bad=$($PY -c 'import json,struct,sys; b=open(sys.argv[1],"rb").read(); n=struct.unpack("<Q",b[:8])[0]; print(sorted(k for k in json.loads(b[8:8+n]) if k.endswith("up_proj.weight"))[0])' "$HF")
run 1 "$CLI" compress "$TMP/nan.safetensors" "$TMP/nan.out" --chi 8 --quiet
has err "$bad"
has err "NaN"
has err "--skip-bad"
run 0 "$CLI" compress "$TMP/nan.safetensors" "$TMP/nan.out" --chi 8 --skip-bad --report "$TMP/nan.jsonl"
has err "$bad"
has err "passthrough"
grep -q "\"name\":\"$bad\".*\"passthrough\":true" "$TMP/nan.jsonl" || { echo "FAIL: report lacks the passed-through NaN tensor"; fails=$((fails + 1)); }
run 0 "$CLI" decompress "$TMP/nan.out" "$TMP/nan.dense" --quiet

# ---- prune without the original: smaller, still decodes, error reported
run 0 "$CLI" compress "$HF" "$TMP/hi.safetensors" --chi 48 --quiet --report "$TMP/hi.jsonl"
run 0 "$CLI" prune "$TMP/hi.safetensors" "$TMP/lo.safetensors" --chi 12 --report "$TMP/lo.jsonl"
has err "ranks 1-12-1"
b_hi=$(tail -1 "$TMP/hi.jsonl" | sed 's/.*"compressed_bytes":\([0-9]*\).*/\1/')
b_lo=$(tail -1 "$TMP/lo.jsonl" | sed 's/.*"compressed_bytes":\([0-9]*\).*/\1/')
[ "$b_lo" -lt "$b_hi" ] || { echo "FAIL: pruning did not shrink ($b_lo vs $b_hi)"; fails=$((fails + 1)); }
run 0 "$CLI" decompress "$TMP/lo.safetensors" "$TMP/lo.dense" --quiet
run 0 "$CLI" prune "$TMP/hi.safetensors" "$TMP/lo4.safetensors" --eps 0.2 --quant q4_0 --quiet
run 0 "$CLI" compress "$GG" "$TMP/hi.gguf" --chi 48 --quiet
run 0 "$CLI" prune "$TMP/hi.gguf" "$TMP/lo.gguf" --cutoff 0.1 --quiet
run 0 "$CLI" decompress "$TMP/lo.gguf" "$TMP/lo.dense.gguf" --quiet

# ---- sharded in, sharded out, same names
run 0 "$CLI" convert "$HF" "$TMP/sh" --shard-size 300000
run 0 "$CLI" compress "$TMP/sh" "$TMP/shc" --chi 16 --quiet
[ -f "$TMP/shc/model.safetensors.index.json" ] || { echo "FAIL: no index in the sharded container"; fails=$((fails + 1)); }
run 0 "$CLI" decompress "$TMP/shc" "$TMP/shd" --quiet
run 0 "$CLI" inspect "$TMP/sh"; grep -E '^  model\.' "$TMP/out" | awk '{print $1, $2, $3}' | sort >"$TMP/n0"
run 0 "$CLI" inspect "$TMP/shd"; grep -E '^  model\.' "$TMP/out" | awk '{print $1, $2, $3}' | sort >"$TMP/n1"
cmp -s "$TMP/sh/model.safetensors.index.json" "$TMP/shd/model.safetensors.index.json" ||
    { echo "FAIL: decompression changed the shard layout"; fails=$((fails + 1)); }
cmp -s "$TMP/n0" "$TMP/n1" || { echo "FAIL: sharded decompression changed names/dtypes/shapes"; diff "$TMP/n0" "$TMP/n1" | head; fails=$((fails + 1)); }

# ---- mpoc synth: deterministic, compresses, config.json beside it
run 0 "$CLI" synth "$TMP/syn1" --dim 64 --hidden 96 --layers 2 --vocab 128
run 0 "$CLI" synth "$TMP/syn2" --dim 64 --hidden 96 --layers 2 --vocab 128
cmp -s "$TMP/syn1/model.safetensors" "$TMP/syn2/model.safetensors" || { echo "FAIL: synth not deterministic"; fails=$((fails + 1)); }
grep -q '"intermediate_size": 96' "$TMP/syn1/config.json" || { echo "FAIL: config.json"; fails=$((fails + 1)); }
run 0 "$CLI" compress "$TMP/syn1/model.safetensors" "$TMP/syn.c" --eps 0.3 --report "$TMP/syn.jsonl"
has err "14 compressed"
run 1 "$CLI" synth "$TMP/syn1"
run 1 "$CLI" synth "$TMP/syn3" --dim 60 --heads 8
run 1 "$CLI" synth "$TMP/syn3" --dim 64 --heads 6

# ---- inspect shows a container's tensors
run 0 "$CLI" inspect "$TMP/hi.safetensors"
has out "mpo tensors"
has out "bits/weight"
run 0 "$CLI" inspect --json "$TMP/hi.gguf"
has out '"mpo": ['
run 0 "$CLI" inspect "$TMP/nan.safetensors"
lacks out "mpo tensors"
finish
