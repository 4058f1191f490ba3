#!/bin/sh
# tests/cli/eval.sh: `mpoc generate` and `mpoc eval` — the fixture's greedy
# reference ids in both layouts, eval of a model against itself and across
# layouts and dtypes, token files, and refused inputs.
. tests/cli/common.inc

REF_IDS="403 407 261 378 432 383 286 261 376 298 315 421 395 317 426 338 401 396 267 337 410 408 419 292 411 322 265 282 295 433 426 385 328 432 358 394 261 370 432 352 266 268 388 426 338 391 266 267"

# A tiny random LLaMA (GQA, hd 8, vocab 40) in both layouts, standard library
# only: $TMP/tiny/{model.safetensors,config.json} (Hugging Face names, q/k rows
# permuted) and $TMP/tiny_gg.safetensors (llama.cpp names, llama.* metadata).
/usr/bin/python3 - "$TMP" <<'PY' || { echo "FAIL: model generator"; exit 1; }
import json, os, random, struct, sys
out = sys.argv[1]
D, H, L, NH, NKV, V = 32, 48, 2, 4, 2, 40
HD = D // NH
rnd = random.Random(5)
def mat(r, c, s):
    return [[rnd.gauss(0, s) for _ in range(c)] for _ in range(r)]
def hf_perm(w, heads):  # HF row h*hd + a*hd/2 + i = interleaved row h*hd + 2i + a
    hd = len(w) // heads
    return [w[h * hd + 2 * i + a] for h in range(heads) for a in range(2) for i in range(hd // 2)]
def write(path, tensors, meta):
    header, blobs, off = {"__metadata__": meta}, [], 0
    for name, rows in tensors:
        flat = [x for r in rows for x in r] if isinstance(rows[0], list) else rows
        shape = [len(rows), len(rows[0])] if isinstance(rows[0], list) else [len(rows)]
        blob = struct.pack("<%df" % len(flat), *flat)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(blob)]}
        blobs.append(blob); off += len(blob)
    text = json.dumps(header).encode(); text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
hf, gg = [], []
emb = mat(V, D, 1.0)
hf.append(("model.embed_tokens.weight", emb)); gg.append(("token_embd.weight", emb))
nrm = [1 + rnd.gauss(0, 0.1) for _ in range(D)]
hf.append(("model.norm.weight", nrm)); gg.append(("output_norm.weight", nrm))
P = [("self_attn.q_proj", "attn_q", D, D, NH), ("self_attn.k_proj", "attn_k", NKV * HD, D, NKV),
     ("self_attn.v_proj", "attn_v", NKV * HD, D, 0), ("self_attn.o_proj", "attn_output", D, D, 0),
     ("mlp.gate_proj", "ffn_gate", H, D, 0), ("mlp.up_proj", "ffn_up", H, D, 0),
     ("mlp.down_proj", "ffn_down", D, H, 0)]
for l in range(L):
    for a, b, r, c, heads in P:
        w = mat(r, c, c ** -0.5)
        hf.append(("model.layers.%d.%s.weight" % (l, a), hf_perm(w, heads) if heads else w))
        gg.append(("blk.%d.%s.weight" % (l, b), w))
    for a, b in (("input_layernorm", "attn_norm"), ("post_attention_layernorm", "ffn_norm")):
        v = [1 + rnd.gauss(0, 0.1) for _ in range(D)]
        hf.append(("model.layers.%d.%s.weight" % (l, a), v)); gg.append(("blk.%d.%s.weight" % (l, b), v))
os.mkdir(out + "/tiny")
write(out + "/tiny/model.safetensors", hf, {"format": "pt"})
json.dump({"model_type": "llama", "hidden_size": D, "intermediate_size": H, "num_hidden_layers": L,
           "num_attention_heads": NH, "num_key_value_heads": NKV, "vocab_size": V,
           "max_position_embeddings": 128, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
           "tie_word_embeddings": True, "bos_token_id": 1}, open(out + "/tiny/config.json", "w"))
meta = {"general.architecture": "llama", "llama.context_length": "128", "llama.embedding_length": str(D),
        "llama.feed_forward_length": str(H), "llama.block_count": str(L),
        "llama.attention.head_count": str(NH), "llama.attention.head_count_kv": str(NKV),
        "llama.attention.layer_norm_rms_epsilon": "1e-05", "llama.rope.freq_base": "10000"}
write(out + "/tiny_gg.safetensors", gg, meta)
PY
"$CLI" convert "$TMP/tiny_gg.safetensors" "$TMP/tiny.gguf" >/dev/null 2>&1 ||
    { echo "FAIL: convert of the tiny model"; fails=$((fails + 1)); }

if [ "$HAVE_FIXTURES" = 1 ]; then
    MH=$(dirname "$HF") MG=$GG OTHER=$TMP/tiny
else
    MH=$TMP/tiny MG=$TMP/tiny.gguf OTHER=$FIX/none
fi

# usage
run 2 "$CLI" generate
has err "usage: mpoc generate"
run 0 "$CLI" generate --help
has out "usage: mpoc generate"
run 2 "$CLI" eval "$MH"
has err "usage: mpoc eval"
run 0 "$CLI" eval --help
has out "kl_mean, kl_max, top1"
run 2 "$CLI" eval "$MH" "$MG" --tokens x --sample 3
has err "exclusive"
run 2 "$CLI" eval "$MH" "$MG" --length 1

# greedy decoding: the fixture's reference ids in both layouts
if [ "$HAVE_FIXTURES" = 1 ]; then
    for m in "$MH" "$MH/model.safetensors" "$MG"; do
        run 0 "$CLI" generate "$m"
        [ "$(cat "$TMP/out")" = "$REF_IDS" ] || { echo "FAIL: generate $m: $(cat "$TMP/out")"; fails=$((fails + 1)); }
    done
    run 0 "$CLI" generate "$MG" --tokens 5 --json
    has out '"tokens":[403,407,261,378,432]'
    has out '"layout":"gguf"'
fi
run 0 "$CLI" generate "$MH" --tokens 12
a=$(cat "$TMP/out")
run 0 "$CLI" generate "$MG" --tokens 12
[ "$a" = "$(cat "$TMP/out")" ] || { echo "FAIL: layouts decode differently: $a / $(cat "$TMP/out")"; fails=$((fails + 1)); }

# a sharded checkpoint folder with config.json beside the index decodes alike
run 0 "$CLI" convert "$MH/model.safetensors" "$TMP/sharded" --shard-size 100000
cp "$MH/config.json" "$TMP/sharded/"
run 0 "$CLI" generate "$TMP/sharded" --tokens 12
[ "$a" = "$(cat "$TMP/out")" ] || { echo "FAIL: sharded decodes differently: $(cat "$TMP/out")"; fails=$((fails + 1)); }
# a Hugging Face checkpoint converted to GGUF keeps its names (and rotary
# convention); its hyper-parameters come from the config.json beside it
mkdir "$TMP/hfgguf" && cp "$MH/config.json" "$TMP/hfgguf/"
run 0 "$CLI" convert "$MH/model.safetensors" "$TMP/hfgguf/model.gguf"
run 0 "$CLI" generate "$TMP/hfgguf/model.gguf" --tokens 12
[ "$a" = "$(cat "$TMP/out")" ] || { echo "FAIL: HF-named GGUF decodes differently: $(cat "$TMP/out")"; fails=$((fails + 1)); }
has err "hf layout"

# eval: a model against itself is exactly 0; across layouts ~0
check_json() { # FILE: python assertions on the JSON in $TMP/out
    /usr/bin/python3 - "$TMP/out" "$@" <<'PY' || fails=$((fails + 1))
import json, sys
d = json.load(open(sys.argv[1]))
keys = ["kl_mean", "kl_max", "top1", "ppl_ref", "ppl_cand", "n_tokens", "ref_tokens_per_s", "cand_tokens_per_s"]
assert list(d) == keys, list(d)
mode = sys.argv[2]
if mode == "self":
    assert d["kl_mean"] == 0 and d["kl_max"] == 0 and d["top1"] == 1 and d["ppl_ref"] == d["ppl_cand"], d
elif mode == "layouts":
    assert d["kl_mean"] < 1e-9 and d["kl_max"] < 1e-7 and d["top1"] == 1, d
    assert abs(d["ppl_ref"] - d["ppl_cand"]) < 1e-5 * d["ppl_ref"], d
elif mode == "lossy":
    assert 0 < d["kl_mean"] < 1 and d["ppl_ref"] != d["ppl_cand"], d
elif mode == "quant":
    assert 0 < d["kl_mean"] < 0.02 and d["top1"] > 0.9, d
assert d["n_tokens"] == int(sys.argv[3]), d
assert d["ref_tokens_per_s"] > 0 and d["cand_tokens_per_s"] > 0 and d["ppl_ref"] > 1
PY
}
run 0 "$CLI" eval "$MH" "$MH" --sample 3 --length 40 --seed 2 --json
check_json self 117
run 0 "$CLI" eval "$MG" "$MG" --sample 2 --length 30 --json
check_json self 58
run 0 "$CLI" eval "$MG" "$MH" --sample 3 --length 40 --seed 2 --json --save-tokens "$TMP/tok.bin"
check_json layouts 117
[ "$(wc -c <"$TMP/tok.bin")" -eq $((3 * 40 * 4)) ] || { echo "FAIL: token file size"; fails=$((fails + 1)); }
cp "$TMP/out" "$TMP/sampled.json"
run 1 "$CLI" eval "$MG" "$MH" --sample 3 --length 40 --save-tokens "$TMP/tok.bin"
has err "exists"
# the saved tokens give the same figures
run 0 "$CLI" eval "$MG" "$MH" --tokens "$TMP/tok.bin" --length 40 --json
/usr/bin/python3 - "$TMP/sampled.json" "$TMP/out" <<'PY' || fails=$((fails + 1))
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
for k in ("kl_mean", "kl_max", "top1", "ppl_ref", "ppl_cand", "n_tokens"):
    assert a[k] == b[k], (k, a[k], b[k])
PY
# a raw stream (no BOS) is cut into chunks of length-1 ids, each after BOS
/usr/bin/python3 -c "
import struct, sys; sys.stdout.buffer.write(struct.pack('<25i', *[(7 * i + 3) % 30 + 2 for i in range(25)]))" >"$TMP/raw.bin"
run 0 "$CLI" eval "$MH" "$MG" --tokens "$TMP/raw.bin" --length 9 --json
check_json layouts 24
has err "the last 1 ids"
run 0 "$CLI" eval "$MH" "$MG" --tokens "$TMP/raw.bin" --length 9
has out "KL(P_ref || P_cand): mean"
has out "top-1 agreement:     100.0000%"

# same model, another format and dtype: a GGUF converted to safetensors keeps
# llama.cpp names and its llama.* keys as text; q8_0 gives a small, non-zero KL
"$CLI" convert "$MG" "$TMP/gg_names.safetensors" >/dev/null 2>&1
run 0 "$CLI" eval "$MG" "$TMP/gg_names.safetensors" --sample 2 --length 24 --json
check_json self 46
"$CLI" convert "$MG" "$TMP/q8.gguf" --dtype q8_0 >/dev/null 2>&1
run 0 "$CLI" eval "$MG" "$TMP/q8.gguf" --sample 4 --length 64 --json
check_json quant 252

# mpoc containers run as they are (MPO operators, never densified): against
# themselves exactly 0, against their decompressed dense copy float round-off,
# against the original small but not zero; a container in a folder beside
# config.json is a model too
run 0 "$CLI" compress "$MG" "$TMP/c.gguf" --eps 0.02 --quiet
run 0 "$CLI" decompress "$TMP/c.gguf" "$TMP/d.gguf"
run 0 "$CLI" eval "$TMP/c.gguf" "$TMP/c.gguf" --sample 2 --length 24 --json
check_json self 46
run 0 "$CLI" eval "$TMP/c.gguf" "$TMP/d.gguf" --sample 2 --length 24 --json
check_json layouts 46
run 0 "$CLI" eval "$MG" "$TMP/c.gguf" --sample 4 --length 64 --json
check_json lossy 252
mkdir "$TMP/chf" && cp "$MH/config.json" "$TMP/chf/"
run 0 "$CLI" compress "$MH/model.safetensors" "$TMP/chf/model.safetensors" --eps 0.02 --quiet
run 0 "$CLI" eval "$MH" "$TMP/chf" --sample 4 --length 64
has out "candidate: $TMP/chf (hf layout"
grep '^candidate:' "$TMP/out" | grep -q ' 0 MPO operators' && { echo "FAIL: container ran dense"; fails=$((fails + 1)); }
[ "$HAVE_FIXTURES" = 1 ] && has out "35 MPO operators"

# refused inputs: exit 1 with the reason
/usr/bin/python3 -c "
import struct, sys; sys.stdout.buffer.write(struct.pack('<6i', 1, 5, 9, 1, 100000, 4))" >"$TMP/bad.bin"
run 1 "$CLI" eval "$MH" "$MG" --tokens "$TMP/bad.bin" --length 3
has err "token id 100000"
has err "outside the vocabulary"
/usr/bin/python3 -c "
import struct, sys; sys.stdout.buffer.write(struct.pack('<6i', 1, 5, 9, 7, 3, 4))" >"$TMP/unframed.bin"
run 1 "$CLI" eval "$MH" "$MG" --tokens "$TMP/unframed.bin" --length 3
has err "not BOS"
printf 'abc' >"$TMP/odd.bin"
run 1 "$CLI" eval "$MH" "$MG" --tokens "$TMP/odd.bin" --length 8
has err "not a non-empty list of int32"
run 1 "$CLI" eval "$MH" "$MG" --length 100000 --sample 1
has err "exceeds the models' context"
if [ "$HAVE_FIXTURES" = 1 ]; then
    run 1 "$CLI" eval "$MH" "$OTHER" --sample 1 --length 8
    has err "models differ: vocabulary size 512 vs 40"
fi
cp "$MH/model.safetensors" "$TMP/lone.safetensors" 2>/dev/null || cp "$MH" "$TMP/lone.safetensors"
run 1 "$CLI" generate "$TMP/lone.safetensors"
has err "no config.json"
/usr/bin/python3 -c "
import json, struct, sys; h = json.dumps({'encoder.w': {'dtype': 'F32', 'shape': [2, 2], 'data_offsets': [0, 16]}}).encode()
h += b' ' * (-len(h) % 8); sys.stdout.buffer.write(struct.pack('<Q', len(h)) + h + bytes(16))" >"$TMP/other.safetensors"
run 1 "$CLI" generate "$TMP/other.safetensors"
has err "not a LLaMA model"
/usr/bin/python3 -c "
import struct, sys; h = b\"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }\"; h += b' ' * (-(len(h) + 11) % 64) + b'\n'
sys.stdout.buffer.write(b'\x93NUMPY\x01\x00' + struct.pack('<H', len(h)) + h + bytes(16))" >"$TMP/m.npy"
run 1 "$CLI" eval "$TMP/m.npy" "$MG" --sample 1 --length 4
has err "m.npy: a .npy array, not a model"
run 1 "$CLI" generate "$TMP/nothing.gguf"
has err "nothing.gguf"
finish
