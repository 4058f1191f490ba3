#!/usr/bin/python3
"""Write a small LLaMA-shaped F32 safetensors model (standard library only),
used by tests/cli/*.sh when the shared fixtures are absent.

usage: make_model.py OUT.safetensors"""
import json
import math
import struct
import sys

SHAPES = [("model.embed_tokens.weight", [64, 32]), ("model.norm.weight", [32]),
          ("model.layers.0.input_layernorm.weight", [32]),
          ("model.layers.0.self_attn.q_proj.weight", [32, 32]),
          ("model.layers.0.mlp.down_proj.weight", [32, 44]),
          ("model.layers.0.mlp.up_proj.weight", [44, 32])]


def main(out):
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for k, (name, shape) in enumerate(SHAPES):
        n = math.prod(shape)
        vals = [math.sin(0.37 * i + k) * (1.0 + (i % 7)) / 4.0 for i in range(n)]
        blob = struct.pack(f"<{n}f", *vals)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(blob)]}
        blobs.append(blob)
        off += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


if __name__ == "__main__":
    main(sys.argv[1])
