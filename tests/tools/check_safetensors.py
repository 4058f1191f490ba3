#!/usr/bin/python3
"""Independent safetensors checker (Debian python3 + numpy only).

usage: check_safetensors.py FILE [--against REF.safetensors] [--rtol R] [--atol A]
                                 [--npy NAME=REF.npy ...]

Applies every validation rule of formats.md 1.2 (and the writer rules of 1.4:
"format": "pt", header padded to 8, header < 25 MB), decodes every tensor with
numpy, and optionally compares values with another safetensors file (same
names; float32 comparison within rtol/atol) or with .npy references (exact).
Exit 0 when everything holds, 1 with a message otherwise."""
import json
import sys

import numpy as np

SIZES = {"BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8,
         "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8, "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
         "I32": 32, "U32": 32, "F32": 32, "F64": 64, "I64": 64, "U64": 64, "C64": 64,
         "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6}
NUMPY = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "U64": "<u8", "I32": "<i4",
         "U32": "<u4", "I16": "<i2", "U16": "<u2", "I8": "i1", "U8": "u1", "BOOL": "?"}


def fail(msg):
    print("check_safetensors: " + msg, file=sys.stderr)
    sys.exit(1)


def no_dups(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        fail("duplicate JSON key")
    return dict(pairs)


def is_uint(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def parse(path):
    raw = open(path, "rb").read()
    if len(raw) < 8:
        fail(f"{path}: rule 1: file shorter than 8 bytes")
    n = int.from_bytes(raw[:8], "little")
    if n > 100_000_000:
        fail(f"{path}: rule 2: header of {n} bytes")
    if 8 + n > len(raw):
        fail(f"{path}: rule 3: header length {n} past the end")
    try:
        text = raw[8:8 + n].decode("utf-8")
    except UnicodeDecodeError:
        fail(f"{path}: rule 4: header not UTF-8")
    header = json.loads(text, object_pairs_hook=no_dups)
    if not isinstance(header, dict):
        fail(f"{path}: rule 4: header not an object")
    meta = header.pop("__metadata__", None)
    if meta is not None and (not isinstance(meta, dict) or
                             not all(isinstance(v, str) for v in meta.values())):
        fail(f"{path}: rule 4: __metadata__ not a string map")
    for name, e in header.items():
        if e.get("dtype") not in SIZES:
            fail(f"{path}: rule 4: {name}: dtype {e.get('dtype')!r}")
        shape, offs = e.get("shape"), e.get("data_offsets")
        if not isinstance(shape, list) or not all(is_uint(d) for d in shape):
            fail(f"{path}: rule 4: {name}: shape {shape!r}")
        if not isinstance(offs, list) or len(offs) != 2 or not all(is_uint(o) for o in offs):
            fail(f"{path}: rule 4: {name}: data_offsets {offs!r}")
    start = 0
    for name, e in sorted(header.items(), key=lambda kv: tuple(kv[1]["data_offsets"])):
        b, end = e["data_offsets"]
        if b != start or end < b:
            fail(f"{path}: rule 5: {name}: offsets [{b}, {end}] at {start}")
        elems = int(np.prod(e["shape"], dtype=object)) if e["shape"] else 1
        bits = elems * SIZES[e["dtype"]]
        if bits >= 2 ** 64 or elems >= 2 ** 64:
            fail(f"{path}: rule 6: {name}: overflow")
        if bits % 8:
            fail(f"{path}: rule 6: {name}: misaligned")
        if bits // 8 != end - b:
            fail(f"{path}: rule 7: {name}: {bits // 8} bytes vs {end - b}")
        start = end
    if 8 + n + start != len(raw):
        fail(f"{path}: rule 8: buffer ends at {8 + n + start}, file has {len(raw)} bytes")
    return raw, n, meta, header


def check_writer_rules(path, n, meta, raw):
    if n % 8:
        fail(f"{path}: header length {n} not a multiple of 8")
    if n >= 25_000_000:
        fail(f"{path}: header of {n} bytes exceeds 25 MB")
    if not meta or meta.get("format") != "pt":
        fail(f"{path}: __metadata__ lacks \"format\": \"pt\"")
    if raw[8:8 + n].rstrip(b" ")[-1:] != b"}":
        fail(f"{path}: header not padded with spaces")


def values(raw, n, e):
    b, end = e["data_offsets"]
    buf = raw[8 + n + b:8 + n + end]
    dt = e["dtype"]
    if dt == "BF16":
        u = np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16
        return u.view("<f4").reshape(e["shape"])
    if dt not in NUMPY:
        return None
    return np.frombuffer(buf, dtype=NUMPY[dt]).reshape(e["shape"])


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    path, args = argv[1], argv[2:]
    against, rtol, atol, npys = None, 0.0, 0.0, []
    while args:
        opt, val, args = args[0], args[1], args[2:]
        if opt == "--against":
            against = val
        elif opt == "--rtol":
            rtol = float(val)
        elif opt == "--atol":
            atol = float(val)
        elif opt == "--npy":
            npys.append(val.split("=", 1))
        else:
            fail(f"unknown option {opt}")
    raw, n, meta, header = parse(path)
    check_writer_rules(path, n, meta, raw)
    if against:
        raw2, n2, _, header2 = parse(against)
        if set(header2) - set(header):
            fail(f"tensors missing: {sorted(set(header2) - set(header))[:5]}")
        for name, e2 in header2.items():
            a, b = values(raw, n, header[name]), values(raw2, n2, e2)
            if a is None or b is None:
                continue
            if a.shape != b.shape:
                fail(f"{name}: shape {a.shape} vs {b.shape}")
            if not np.allclose(a.astype(np.float32), b.astype(np.float32), rtol=rtol, atol=atol):
                err = np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))
                fail(f"{name}: values differ (max abs error {err})")
    for name, ref in npys:
        a = values(raw, n, header[name]).astype(np.float32)
        r = np.load(ref)
        if a.reshape(r.shape).tobytes() != r.astype(np.float32).tobytes():
            fail(f"{name}: values differ from {ref}")
    print(f"check_safetensors: {path}: {len(header)} tensors OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
