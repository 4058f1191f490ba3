#!/bin/sh
# tests/cli/inspect.sh: `mpoc inspect` — listings, JSON, extraction, errors.
. tests/cli/common.inc

run 2 "$CLI" inspect
has err "usage: mpoc inspect"
run 2 "$CLI" inspect "$HF" --bogus
run 2 "$CLI" inspect "$HF" --tensor x            # --tensor needs --npy
run 0 "$CLI" inspect --help
has out "usage: mpoc inspect"

run 0 "$CLI" inspect "$GG"
has out "format: gguf v3, alignment 32"
[ "$HAVE_FIXTURES" = 0 ] || has out "general.architecture (string) = \"llama\""
has out "totals:"
run 0 "$CLI" inspect "$HF"
has out "format: safetensors"
has out "format (string) = \"pt\""
if [ "$HAVE_FIXTURES" = 1 ]; then
    run 0 "$CLI" inspect "$GG"
    has out "tensors: 48"
    has out "tokenizer.ggml.tokens (array of 512 string) = [\"<unk>\", \"<s>\""
    has out "blk.0.attn_q.weight                              F32      [64, 64]"
    run 0 "$CLI" inspect "$HF" "$(dirname "$HF")"
    has out "totals: 47 tensors, 260032 parameters, 1040128 bytes, 32.0000 bits/weight"
fi

run 0 "$CLI" inspect --json "$HF" "$GG"
/usr/bin/python3 - "$TMP/out" <<'PY' || fails=$((fails + 1))
import json, sys
doc = json.load(open(sys.argv[1]))
f = doc["files"]
assert [x["format"] for x in f] == ["safetensors", "gguf"], f
for x in f:
    t = x["totals"]
    assert t["tensors"] == len(x["tensors"]) > 0
    assert t["parameters"] == sum(e["n_elems"] for e in x["tensors"])
    assert abs(t["bits_per_weight"] - 32.0) < 1e-9
assert f[1]["gguf_version"] == 3
PY

name=$(grep -m1 -o 'model.layers.0.mlp.down_proj.weight' "$TMP/out")
run 0 "$CLI" inspect "$HF" --tensor model.layers.0.mlp.down_proj.weight --npy "$TMP/t.npy"
has out "as float32"
[ -s "$TMP/t.npy" ] || { echo "FAIL: no npy written"; fails=$((fails + 1)); }
run 1 "$CLI" inspect "$HF" --tensor model.layers.0.mlp.down_proj.weight --npy "$TMP/t.npy"
has err "exists"
run 0 "$CLI" inspect "$HF" --tensor model.layers.0.mlp.down_proj.weight --npy "$TMP/t.npy" --force
run 1 "$CLI" inspect "$HF" --tensor no.such.tensor --npy "$TMP/u.npy"
has err "no tensor named 'no.such.tensor'"

# malformed and refused inputs: exit 1 with the reason
printf 'GGUF\003\000\000\000' >"$TMP/trunc.gguf"
run 1 "$CLI" inspect "$TMP/trunc.gguf"
has err "trunc.gguf"
has err "truncated"
printf '\200\002}q\000.' >"$TMP/pytorch_model.bin"
run 1 "$CLI" inspect "$TMP/pytorch_model.bin"
has err "pickle"
has err "Convert it to safetensors"
printf 'GGUF\000\000\000\003' >"$TMP/be.gguf"
printf '\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000' >>"$TMP/be.gguf"
run 1 "$CLI" inspect "$TMP/be.gguf"
has err "big-endian GGUF not supported"
run 1 "$CLI" inspect "$TMP/missing.safetensors"
has err "cannot open"

# names, keys and values from a file never reach the terminal raw: an ESC
# (title change), a C1 CSI (U+009B) and a stray 0xFF are printed escaped
/usr/bin/python3 - "$TMP/esc.gguf" <<'PY'
import struct, sys
def s(b): return struct.pack('<Q', len(b)) + b
name, key, val = b'w\x1b]0;pwned\x07', b'k\xc2\x9b2J', b'v\xff\x1b[2J'
h = b'GGUF' + struct.pack('<IQQ', 3, 1, 1) + s(key) + struct.pack('<I', 8) + s(val)
h += s(name) + struct.pack('<IQIQ', 1, 1, 0, 0)
h += b'\0' * (-len(h) % 32) + struct.pack('<f', 1.0) + b'\0' * 28
open(sys.argv[1], 'wb').write(h)
PY
run 0 "$CLI" inspect "$TMP/esc.gguf"
has out 'w\x1b]0;pwned\x07'
has out 'k\xc2\x9b2J (string) = "v\xff\x1b[2J"'
if LC_ALL=C grep -q "$(printf '\033')" "$TMP/out" || LC_ALL=C grep -q "$(printf '\302\233')" "$TMP/out"; then
    echo "FAIL: raw control bytes from the file reached stdout"; fails=$((fails + 1))
fi

# --npy never replaces a file of the model, shards included
run 0 "$CLI" convert "$HF" "$TMP/shards" --shard-size 40000
shard=$(ls "$TMP/shards" | grep -m1 'model-00001-of-')
cp "$TMP/shards/$shard" "$TMP/shard.copy"
tname=$(/usr/bin/python3 -c 'import json,sys; print(sorted(json.load(open(sys.argv[1]))["weight_map"])[0])' "$TMP/shards/model.safetensors.index.json")
run 1 "$CLI" inspect "$TMP/shards" --tensor "$tname" --npy "$TMP/shards/$shard" --force
has err "is the input"
cmp -s "$TMP/shards/$shard" "$TMP/shard.copy" || { echo "FAIL: a shard was replaced"; fails=$((fails + 1)); }
# Error messages quote names from the file: control bytes come out escaped.
/usr/bin/python3 - "$TMP/esc.gguf" <<'PY'
import struct, sys
name = b"a\x1b[2Jb\xc2\x9b"
out = b"GGUF" + struct.pack("<IQQ", 3, 1, 0) + struct.pack("<Q", len(name)) + name
out += struct.pack("<IQIQ", 1, 4, 0, 0)
out += b"\0" * ((32 - len(out) % 32) % 32)
open(sys.argv[1], "wb").write(out + b"\0" * 8)
PY
run 1 "$CLI" inspect "$TMP/esc.gguf"
has err "tensor 'a\x1b[2Jb\xc2\x9b'"
if grep -q "$(printf '\033')" "$TMP/err"; then echo "FAIL: raw ESC on stderr"; fails=$((fails + 1)); fi
finish
