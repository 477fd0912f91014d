#!/usr/bin/env python3
"""Big safetensors files written and checked outside lora4j, for BigSafetensorsTest.

    big_safetensors.py write SPEC.json OUT.safetensors   -> prints a JSON report on stdout
    big_safetensors.py verify SPEC.json IN.safetensors   -> checks every element, prints a JSON report

SPEC.json is a list of {"name", "dtype", "shape", "seed"}; the tensors are written in that order.
Only numpy is needed: the file is laid out by hand from the format's specification (an 8-byte
little-endian header length, a JSON header padded with spaces to 8 bytes, then the tensors back to
back, little-endian, C order), because the `safetensors` Python package is not in Debian.

Element i of a tensor with seed s is a function of a 64-bit hash, the same one the Java test uses:
    x = ((i + 1) * 0x9E3779B97F4A7C15 + s * 0xBF58476D1CE4E5B9) mod 2^64;  h = x ^ (x >> 31)
    F64  (h >> 11) - 2^52      F32  (h >> 40) - 2^23     F16 (h >> 53) - 1024   BF16 (h >> 56) - 128
    I64  h (two's complement)  I32  h >> 32              I16 h >> 48            I8 / U8  h >> 56
    BOOL h >> 63
Every float value is an integer the type holds exactly, so "equal" means bit-equal. The pattern
never repeats with the 64 MB windows or 1 GiB mappings a reader might get wrong, so a byte read
from the wrong place shows.

The report gives, per tensor, a checksum (sum of value * (i % 65537 + 1), wrapping at 64 bits,
as a signed integer) and the values at some positions, including the first and last.
"""
import json
import sys

import numpy as np

MUL = np.uint64(0x9E3779B97F4A7C15)
SEED_MUL = 0xBF58476D1CE4E5B9
BLOCK = 1 << 20  # elements per step: small temporaries are reused instead of page-faulted in afresh
SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
STORED = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
          "I8": "i1", "U8": "u1", "BOOL": "u1"}
MASK = (1 << 64) - 1


def hashes(start, count, seed):
    i = np.arange(start + 1, start + count + 1, dtype=np.uint64)
    x = i * MUL + np.uint64((seed * SEED_MUL) & MASK)
    return x ^ (x >> np.uint64(31))


def values(dtype, h):
    """(stored array in the file's dtype, the same values as int64 for the checksum)."""
    if dtype == "F64":
        v = (h >> np.uint64(11)).astype(np.int64) - (1 << 52)
        return v.astype("<f8"), v
    if dtype == "F32":
        v = (h >> np.uint64(40)).astype(np.int64) - (1 << 23)
        return v.astype("<f4"), v
    if dtype == "F16":
        v = (h >> np.uint64(53)).astype(np.int64) - 1024
        return v.astype("<f2"), v
    if dtype == "BF16":
        v = (h >> np.uint64(56)).astype(np.int64) - 128
        # bfloat16 is the top half of float32; these small integers lose nothing.
        bits = (v.astype("<f4").view("<u4") >> np.uint32(16)).astype("<u2")
        return bits, v
    if dtype == "I64":
        v = h.view(np.int64)
        return v.astype("<i8"), v
    if dtype == "I32":
        v = (h >> np.uint64(32)).astype(np.uint32).view(np.int32)
        return v.astype("<i4"), v.astype(np.int64)
    if dtype == "I16":
        v = (h >> np.uint64(48)).astype(np.uint16).view(np.int16)
        return v.astype("<i2"), v.astype(np.int64)
    if dtype == "I8":
        v = (h >> np.uint64(56)).astype(np.uint8).view(np.int8)
        return v, v.astype(np.int64)
    if dtype == "U8":
        v = (h >> np.uint64(56)).astype(np.uint8)
        return v, v.astype(np.int64)
    if dtype == "BOOL":
        v = (h >> np.uint64(63)).astype(np.uint8)
        return v, v.astype(np.int64)
    raise ValueError("unknown dtype " + dtype)


def checksum_part(v, start):
    weights = (np.arange(start, start + len(v), dtype=np.int64) % 65537) + 1
    with np.errstate(over="ignore"):
        return int((v * weights).sum(dtype=np.int64)) & MASK


def signed(x):
    x &= MASK
    return x - (1 << 64) if x >= 1 << 63 else x


def elements(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def spot_positions(n):
    if n == 0:
        return []
    picks = {0, n - 1, n // 2}
    for k in range(1, 37):
        picks.add(n * k // 37)
    for window in (1 << 26, 1 << 30):  # bytes at which a reader's windows or mappings change
        for b in range(window, n * 8 + 1, window):
            for p in (b // 8 - 1, b // 4 - 1, b // 2 - 1, b - 1, b // 8, b // 4, b // 2, b):
                if 0 <= p < n:
                    picks.add(p)
    return sorted(picks)


def tensor_report(t, read_block):
    """Walks the tensor in blocks; read_block(start, count, expected_stored) may compare."""
    n = elements(t["shape"])
    spots = spot_positions(n)
    spot_values = {}
    total = 0
    for start in range(0, n, BLOCK):
        count = min(BLOCK, n - start)
        stored, v = values(t["dtype"], hashes(start, count, t["seed"]))
        read_block(start, count, stored)
        total = (total + checksum_part(v, start)) & MASK
        for p in spots:
            if start <= p < start + count:
                spot_values[str(p)] = int(v[p - start])
    return {"checksum": signed(total), "spots": spot_values}


def header_bytes(spec):
    header = {"__metadata__": {"made_by": "big_safetensors.py"}}
    offset = 0
    for t in spec:
        size = elements(t["shape"]) * SIZES[t["dtype"]]
        header[t["name"]] = {"dtype": t["dtype"], "shape": t["shape"], "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * ((8 - len(raw) % 8) % 8)
    return raw, offset


def write(spec, path):
    raw, _ = header_bytes(spec)
    report = {}
    with open(path, "wb") as f:
        f.write(len(raw).to_bytes(8, "little"))
        f.write(raw)
        for t in spec:
            report[t["name"]] = tensor_report(t, lambda start, count, stored: f.write(stored.data))
    return report


def fail(message):
    print("FAIL: " + message, file=sys.stderr)
    sys.exit(1)


def verify(spec, path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        if n % 8 != 0:
            fail("header length %d is not a multiple of 8" % n)
        header = json.loads(f.read(n).decode("utf-8"))
    data_start = 8 + n
    header.pop("__metadata__", None)
    names = sorted(t["name"] for t in spec)
    if sorted(header) != names:
        fail("keys %s, expected %s" % (sorted(header), names))
    ends = {}
    for name, entry in header.items():
        ends[entry["data_offsets"][0]] = entry["data_offsets"][1]
    position = 0  # the format: tensors back to back from 0, no gaps, no overlaps
    while position in ends:
        position = ends.pop(position)
    if ends:
        fail("data_offsets leave gaps or overlap: %s" % ends)
    report = {}
    for t in spec:
        entry = header[t["name"]]
        if entry["dtype"] != t["dtype"] or entry["shape"] != t["shape"]:
            fail("%s: %s %s, expected %s %s" % (t["name"], entry["dtype"], entry["shape"], t["dtype"], t["shape"]))
        begin, end = entry["data_offsets"]
        count = elements(t["shape"])
        if end - begin != count * SIZES[t["dtype"]]:
            fail("%s: data_offsets %s do not fit %s %s" % (t["name"], entry["data_offsets"], t["dtype"], t["shape"]))
        if begin % SIZES[t["dtype"]] != 0:
            fail("%s: begins at %d, not aligned to its element size" % (t["name"], begin))
        data = np.memmap(path, dtype=STORED[t["dtype"]], mode="r", offset=data_start + begin, shape=(count,))

        def compare(start, n_elements, expected, data=data, name=t["name"]):
            got = np.asarray(data[start:start + n_elements])
            if not np.array_equal(got.view(expected.dtype), expected):
                bad = int(np.nonzero(got.view(expected.dtype) != expected)[0][0])
                fail("%s: element %d is %r, expected %r" % (name, start + bad, got[bad], expected[bad]))

        report[t["name"]] = tensor_report(t, compare)
        del data
    return report


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("write", "verify"):
        fail("usage: big_safetensors.py write|verify SPEC.json FILE")
    with open(sys.argv[2]) as f:
        spec = json.load(f)
    report = write(spec, sys.argv[3]) if sys.argv[1] == "write" else verify(spec, sys.argv[3])
    print(json.dumps(report))


if __name__ == "__main__":
    main()
