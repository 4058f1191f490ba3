#!/bin/sh
# tests/cli/convert.sh: `mpoc convert` — formats, dtypes, sharding, the
# overwrite policy, determinism and usage errors.
. tests/cli/common.inc

run 2 "$CLI" convert "$HF"
run 2 "$CLI" convert "$HF" "$TMP/x.gguf" --dtype q5_k
has err "--dtype 'q5_k'"
run 2 "$CLI" convert "$HF" "$TMP/x.safetensors" --dtype q8_0
has err "needs a .gguf output"
run 2 "$CLI" convert "$HF" "$TMP/x.bin"
has err "cannot tell the output format"
run 2 "$CLI" convert "$HF" "$TMP/x.gguf" --shard-size 1000
run 0 "$CLI" convert --help

# safetensors -> GGUF Q8_0: odd rows stay F16, 1-D stays F32
run 0 "$CLI" convert "$HF" "$TMP/q8.gguf" --dtype q8_0
has out "wrote $TMP/q8.gguf: gguf"
has err "is not a multiple of 32; kept as F16 instead of Q8_0"
has err "1-D tensors (norms, biases) kept as F32"
run 0 "$CLI" inspect "$TMP/q8.gguf"
has out "Q8_0"
has out "general.quantization_version (u32) = 2"
has out "format (string) = \"pt\""

# the same conversion twice gives the same bytes
run 0 "$CLI" convert "$HF" "$TMP/q8b.gguf" --dtype q8_0
cmp -s "$TMP/q8.gguf" "$TMP/q8b.gguf" || { echo "FAIL: GGUF output not deterministic"; fails=$((fails + 1)); }

# overwrite policy
run 1 "$CLI" convert "$HF" "$TMP/q8.gguf" --dtype q4_0
has err "file exists (use --force to replace it)"
run 0 "$CLI" convert "$HF" "$TMP/q8.gguf" --dtype q4_0 --force
cp "$HF" "$TMP/in.safetensors"
run 1 "$CLI" convert "$TMP/in.safetensors" "$TMP/in.safetensors" --force
has err "is the input"
cmp -s "$HF" "$TMP/in.safetensors" || { echo "FAIL: input was modified"; fails=$((fails + 1)); }

# GGUF -> safetensors: arrays dropped with a note, scalars as text
run 0 "$CLI" convert "$GG" "$TMP/g.safetensors" --dtype bf16
run 0 "$CLI" inspect "$TMP/g.safetensors"
has out "BF16"
[ "$HAVE_FIXTURES" = 0 ] || has out "general.architecture (string) = \"llama\""
run 0 "$CLI" convert "$GG" "$TMP/g2.safetensors" --dtype bf16
cmp -s "$TMP/g.safetensors" "$TMP/g2.safetensors" || { echo "FAIL: safetensors output not deterministic"; fails=$((fails + 1)); }

# GGUF -> GGUF F32 keeps every key/value and tensor byte
run 0 "$CLI" convert "$GG" "$TMP/same.gguf"
"$CLI" inspect "$GG" | grep -v -e '^file:' -e 'general.alignment' -e '^metadata:' >"$TMP/a.txt"
"$CLI" inspect "$TMP/same.gguf" | grep -v -e '^file:' -e 'general.alignment' -e '^metadata:' >"$TMP/b.txt"
cmp -s "$TMP/a.txt" "$TMP/b.txt" || { echo "FAIL: GGUF -> GGUF listing differs"; diff "$TMP/a.txt" "$TMP/b.txt" | head; fails=$((fails + 1)); }

# sharded output, as a folder and as an index path
run 0 "$CLI" convert "$HF" "$TMP/sharded" --shard-size 40000
[ -f "$TMP/sharded/model.safetensors.index.json" ] || { echo "FAIL: no index"; fails=$((fails + 1)); }
ls "$TMP/sharded" | grep -q 'model-00001-of-000' || { echo "FAIL: no shard names"; fails=$((fails + 1)); }
run 0 "$CLI" inspect "$TMP/sharded"
has out "format: safetensors-sharded"
run 0 "$CLI" convert "$TMP/sharded" "$TMP/back.gguf"
run 0 "$CLI" convert "$HF" "$TMP/m.safetensors" --shard-size 40000
run 0 "$CLI" inspect "$TMP/m.safetensors.index.json"
has out "format: safetensors-sharded"
ls "$TMP"/.mpoc-spool-* "$TMP"/*.tmp.* >/dev/null 2>&1 && { echo "FAIL: temporary files left"; fails=$((fails + 1)); }

# malformed input: exit 1, nothing written
printf 'GGUF\003\000\000\000\377\377\377\377\377\377\377\377' >"$TMP/bad.gguf"
run 1 "$CLI" convert "$TMP/bad.gguf" "$TMP/never.safetensors"
[ ! -e "$TMP/never.safetensors" ] || { echo "FAIL: output written for a bad input"; fails=$((fails + 1)); }
finish
