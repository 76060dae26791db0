#!/usr/bin/env python3
"""gguf_check.py - an independent GGUF reader that checks ech-inspect.

    gguf_check.py FILE.gguf INSPECT.json

Reads FILE.gguf with Python's struct module (no code shared with libech) and
compares it with `ech-inspect --json --full FILE.gguf` output: tensor count,
every tensor's name/type/shape/offset/bytes, metadata count, every key with
its type, and the value of every scalar and every array (in full).
Prints one line per mismatch and exits 1 if there is any.
"""
import json
import math
import struct
import sys

# ggml type id -> (name, block size, bytes per block)
GGML_TYPES = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22), 7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 36),
    10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210), 15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66), 17: ("IQ2_XS", 256, 74), 18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50), 20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82), 23: ("IQ4_XS", 256, 136), 24: ("I8", 1, 1), 25: ("I16", 1, 2),
    26: ("I32", 1, 4), 27: ("I64", 1, 8), 28: ("F64", 1, 8), 29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2), 34: ("TQ1_0", 256, 54), 35: ("TQ2_0", 256, 66), 39: ("MXFP4", 32, 17),
}
VTYPES = ["u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "str", "arr", "u64", "i64", "f64"]
FMT = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


class Reader:
    def __init__(self, data):
        self.d, self.p = data, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.d, self.p)[0]
        self.p += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.take("<Q")
        s = self.d[self.p:self.p + n]
        self.p += n
        return s.decode("utf-8", errors="replace")

    def value(self, t):
        if t == 8:
            return self.string()
        if t == 9:
            et, n = self.take("<I"), self.take("<Q")
            return {"element_type": VTYPES[et], "items": [self.value(et) for _ in range(n)]}
        return self.take(FMT[t])


def read_gguf(path):
    data = open(path, "rb").read()
    r = Reader(data)
    assert data[:4] == b"GGUF", "bad magic"
    r.p = 4
    version = r.take("<I")
    n_tensors, n_kv = r.take("<Q"), r.take("<Q")
    kvs = []
    for _ in range(n_kv):
        key = r.string()
        t = r.take("<I")
        kvs.append((key, VTYPES[t], r.value(t)))
    align = 32
    for key, t, v in kvs:
        if key == "general.alignment":
            align = v
    tensors = []
    for _ in range(n_tensors):
        name = r.string()
        nd = r.take("<I")
        shape = [r.take("<Q") for _ in range(nd)]
        ttype, off = r.take("<I"), r.take("<Q")
        tensors.append((name, ttype, shape, off))
    data_off = (r.p + align - 1) // align * align
    return version, kvs, tensors, data_off, align, len(data)


def same_number(a, b, t):
    if t == "f32":
        if isinstance(a, float) and math.isnan(a):
            return b is None
        if b is None:
            return math.isinf(a)
        return struct.pack("<f", a) == struct.pack("<f", float(b))
    if t == "f64":
        if math.isnan(a) or math.isinf(a):
            return b is None
        return a == b
    return a == b


def same_value(py, js, t):
    if t == "arr":
        items, et = py["items"], py["element_type"]
        return isinstance(js, list) and len(items) == len(js) and all(
            same_value(x, y, et) for x, y in zip(items, js))
    if t == "str":
        return py == js
    if t == "bool":
        return py is js
    return same_number(py, js, t)


def main():
    path, jpath = sys.argv[1], sys.argv[2]
    version, kvs, tensors, data_off, align, size = read_gguf(path)
    doc = json.load(open(jpath, encoding="utf-8"))
    errs = []

    def check(cond, msg):
        if not cond:
            errs.append(msg)

    check(doc["version"] == version, f"version {doc['version']} != {version}")
    check(doc["size"] == size, f"size {doc['size']} != {size}")
    check(doc["alignment"] == align, f"alignment {doc['alignment']} != {align}")
    check(doc["data_offset"] == data_off, f"data_offset {doc['data_offset']} != {data_off}")
    check(doc["metadata_count"] == len(kvs), "metadata count")
    check(doc["tensor_count"] == len(tensors), "tensor count")
    md = doc["metadata"]
    check(len(md) == len(kvs), "metadata list length")
    for (key, t, v), j in zip(kvs, md):
        check(j["key"] == key, f"key {j['key']!r} != {key!r}")
        check(j["type"] == t, f"{key}: type {j['type']} != {t}")
        if t == "arr":
            check(j["element_type"] == v["element_type"], f"{key}: element type")
            check(j["count"] == len(v["items"]), f"{key}: count")
        check(same_value(v, j["value"], t), f"{key}: value differs")
    check(len(doc["tensors"]) == len(tensors), "tensor list length")
    for (name, ttype, shape, off), j in zip(tensors, doc["tensors"]):
        tname, bs, ts = GGML_TYPES[ttype]
        n = 1
        for d in shape:
            n *= d
        check(j["name"] == name, f"tensor name {j['name']} != {name}")
        check(j["type"] == tname, f"{name}: type {j['type']} != {tname}")
        check(j["shape"] == shape, f"{name}: shape {j['shape']} != {shape}")
        check(j["offset"] == data_off + off, f"{name}: offset {j['offset']} != {data_off + off}")
        check(j["bytes"] == n // bs * ts, f"{name}: bytes {j['bytes']} != {n // bs * ts}")
    summ = doc["summary"]
    kvd = {k: v for k, _, v in kvs}
    arch = kvd.get("general.architecture")
    check(summ.get("architecture") == arch, "summary architecture")
    check(summ["parameters"] == sum(math.prod(s) for _, _, s, _ in tensors), "summary parameters")
    for field, suffix in (("context_length", "context_length"), ("layers", "block_count"),
                          ("heads", "attention.head_count"), ("embedding_length", "embedding_length")):
        want = kvd.get(f"{arch}.{suffix}")
        if isinstance(want, int):
            check(summ.get(field) == (want or None), f"summary {field}")
    for e in errs:
        print(f"{path}: {e}")
    sys.exit(1 if errs else 0)


if __name__ == "__main__":
    main()
