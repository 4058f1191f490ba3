#!/usr/bin/env python3
"""mpoc_read.py: rebuild dense matrices from an mpoc safetensors container
with nothing but Python 3 and numpy (docs/format.md is the specification).

usage:
  mpoc_read.py CONTAINER.safetensors                 list the compressed tensors
  mpoc_read.py CONTAINER.safetensors NAME [OUT.npy]  rebuild NAME (float32), print
                                                     its shape and norm, save it
  mpoc_read.py CONTAINER.safetensors NAME --compare DENSE.safetensors
                                                     max |difference| against the
                                                     tensor NAME of a dense file
As a module: read_container(path) -> (tensors, metadata);
             rebuild(tensors, metadata, name) -> numpy float32 array.
"""
import json
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "F16": np.float16, "I8": np.int8, "U8": np.uint8,
          "F64": np.float64, "I32": np.int32, "I64": np.int64, "U16": np.uint16}


def read_container(path):
    """All tensors of a single-file safetensors (as numpy arrays) and its
    __metadata__ dict."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    data = memoryview(blob)[8 + n:]
    meta = header.pop("__metadata__", {}) or {}
    tensors = {}
    for name, info in header.items():
        start, end = info["data_offsets"]
        raw = data[start:end]
        if info["dtype"] == "BF16":
            u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = u.view(np.float32)
        else:
            arr = np.frombuffer(raw, dtype=np.dtype(DTYPES[info["dtype"]]).newbyteorder("<"))
        tensors[name] = arr.reshape(info["shape"])
    return tensors, meta


def core_values(tensors, name, kind, shape):
    """Core `name` as float32 of `shape` = [r, m, n, r'] (format.md §3)."""
    count = int(np.prod(shape))
    t = tensors[name]
    if kind in ("f32", "f16", "bf16"):
        return t.astype(np.float32).reshape(shape)
    scale = tensors[name + ".scale"].astype(np.float32)
    per_elem = np.repeat(scale, 32)[:count]
    if kind == "q8_0":
        codes = t.reshape(-1).astype(np.float32)
    elif kind == "q4_0":
        packed = t.reshape(-1)
        nib = np.empty(packed.size * 2, dtype=np.uint8)
        nib[0::2] = packed & 0x0F          # element 2i: low nibble
        nib[1::2] = packed >> 4            # element 2i+1: high nibble
        codes = nib[:count].astype(np.float32) - 8.0
    else:
        raise ValueError("unknown core type " + kind)
    return (codes * per_elem).reshape(shape)


def rebuild(tensors, meta, name):
    d = json.loads(meta["mpo." + name])
    sites, ranks = d["sites"], d["ranks"]
    acc = np.ones((1, 1, 1), dtype=np.float64)          # [rows so far, cols so far, bond]
    for k in range(sites):
        shape = [ranks[k], d["out_dims"][k], d["in_dims"][k], ranks[k + 1]]
        g = core_values(tensors, "%s.%d" % (d["core_prefix"], k), d["core_dtype"][k], shape)
        rows, cols = acc.shape[0], acc.shape[1]
        acc = np.einsum("abr,rijs->aibjs", acc, g.astype(np.float64))
        acc = acc.reshape(rows * shape[1], cols * shape[2], shape[3])
    w = acc[:, :, 0]
    orig = d["orig_shape"]
    rows = int(np.prod(orig[:-1])) if len(orig) > 1 else 1
    return w[:rows, :orig[-1]].astype(np.float32).reshape(orig)


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip())
        return 2
    tensors, meta = read_container(argv[1])
    if meta.get("mpoc.format_version") != "1":
        print("%s: not an mpoc container (format version 1)" % argv[1], file=sys.stderr)
        return 1
    names = sorted(k[4:] for k in meta if k.startswith("mpo."))
    if len(argv) == 2:
        for n in names:
            d = json.loads(meta["mpo." + n])
            print("%s %s ranks %s %s" % (n, d["orig_shape"], d["ranks"], ",".join(d["core_dtype"])))
        return 0
    w = rebuild(tensors, meta, argv[2])
    if len(argv) == 5 and argv[3] == "--compare":
        ref, _ = read_container(argv[4])
        r = ref[argv[2]].astype(np.float32)
        diff = float(np.max(np.abs(r - w))) if r.shape == w.shape else float("inf")
        print("%s: max |difference| %.3g (max |value| %.3g)" % (argv[2], diff, float(np.max(np.abs(r)))))
        return 0 if diff <= 1e-5 * max(1.0, float(np.max(np.abs(r)))) else 1
    print("%s: shape %s, norm %.6g" % (argv[2], list(w.shape), float(np.linalg.norm(w))))
    if len(argv) > 3:
        np.save(argv[3], w)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
