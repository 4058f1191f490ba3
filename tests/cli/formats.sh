#!/bin/sh
# tests/cli/formats.sh: independent readers open what mpoc writes.
#  - tests/tools/check_safetensors.py (Debian python3 + numpy): every rule of
#    formats.md 1.2 and the values against the input model and .npy output;
#  - tests/tools/check_gguf.mjs (npm @huggingface/gguf, installed by .ci/run
#    into tests/tools/node_modules): tensor names, types and shapes.
# Each part is skipped with a message when its tool is absent.
. tests/cli/common.inc

if /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
    for dt in f32 f16 bf16; do
        run 0 "$CLI" convert "$GG" "$TMP/$dt.safetensors" --dtype "$dt"
    done
    run 0 "$CLI" convert "$GG" "$TMP/ref.safetensors"
    py() { /usr/bin/python3 tests/tools/check_safetensors.py "$@" >"$TMP/py" 2>&1 || {
        echo "FAIL: check_safetensors.py $*"; cat "$TMP/py"; fails=$((fails + 1)); }; }
    py "$TMP/f32.safetensors" --against "$TMP/ref.safetensors"
    py "$TMP/f16.safetensors" --against "$TMP/ref.safetensors" --rtol 1e-3 --atol 1e-4
    py "$TMP/bf16.safetensors" --against "$TMP/ref.safetensors" --rtol 8e-3 --atol 1e-6
    py "$HF"
    run 0 "$CLI" convert "$HF" "$TMP/round.gguf"
    run 0 "$CLI" convert "$TMP/round.gguf" "$TMP/round.safetensors"
    py "$TMP/round.safetensors" --against "$HF"
    name=model.layers.0.mlp.down_proj.weight
    run 0 "$CLI" convert "$HF" "$TMP/h16.safetensors" --dtype f16
    run 0 "$CLI" inspect "$TMP/h16.safetensors" --tensor $name --npy "$TMP/ref.npy"
    py "$TMP/h16.safetensors" --npy "$name=$TMP/ref.npy"
    run 0 "$CLI" convert "$HF" "$TMP/sh" --shard-size 40000
    for s in "$TMP"/sh/*.safetensors; do py "$s"; done
    echo "check_safetensors: all files pass"
else
    echo "skip: /usr/bin/python3 with numpy not found (apt-get install python3-numpy)"
fi

if command -v node >/dev/null 2>&1 && [ -d tests/tools/node_modules/@huggingface/gguf ]; then
    gg() { run 0 "$CLI" inspect --json "$1"; cp "$TMP/out" "$TMP/expect.json"
        node tests/tools/check_gguf.mjs "$1" "$TMP/expect.json" >"$TMP/js" 2>&1 || {
            echo "FAIL: check_gguf.mjs $1"; cat "$TMP/js"; fails=$((fails + 1)); }; }
    for dt in f32 f16 bf16 q8_0 q4_0; do
        run 0 "$CLI" convert "$HF" "$TMP/$dt.gguf" --dtype "$dt"
        gg "$TMP/$dt.gguf"
    done
    run 0 "$CLI" convert "$GG" "$TMP/copy.gguf"
    gg "$TMP/copy.gguf"
    # the independent reader agrees with the types we meant to write
    run 0 "$CLI" inspect --json "$TMP/q8_0.gguf"
    /usr/bin/python3 - "$TMP/out" <<'PY' || fails=$((fails + 1))
import json, sys
for t in json.load(open(sys.argv[1]))["files"][0]["tensors"]:
    want = "F32" if len(t["shape"]) == 1 else ("Q8_0" if t["shape"][-1] % 32 == 0 else "F16")
    assert t["dtype"] == want, (t["name"], t["dtype"], want)
PY
    echo "check_gguf: all files pass"
else
    echo "skip: node or tests/tools/node_modules/@huggingface/gguf absent (.ci/run installs it: npm ci --prefix tests/tools)"
fi
finish
