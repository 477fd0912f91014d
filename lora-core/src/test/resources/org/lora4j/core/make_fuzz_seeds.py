#!/usr/bin/env python3
"""Writes the seed corpus of ReadersFuzzTest (ReadersFuzzTestInputs/<target>/seed-*): valid files
and the edge cases a reader must refuse by name. Beside them: fuzz-<sha1>, the inputs real fuzzing
runs kept for coverage (copied from lora-core/.cifuzz-corpus), and any finding (crash-<sha1>).

Run from this directory:  /usr/bin/python3 make_fuzz_seeds.py
Only the standard library is needed; files are laid out by hand from the safetensors format.
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
INPUTS = os.path.join(HERE, "ReadersFuzzTestInputs")
PEFT = os.path.join(HERE, "..", "..", "..", "peft")


def safetensors(header, data=b"", pad=True, length=None):
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8") if not isinstance(header, bytes) else header
    if pad:
        raw += b" " * ((8 - len(raw) % 8) % 8)
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


def entry(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def every_dtype():
    sizes = [("F64", 8), ("I64", 8), ("U64", 8), ("C64", 8), ("F32", 4), ("I32", 4), ("U32", 4), ("BF16", 2),
             ("F16", 2), ("I16", 2), ("U16", 2), ("F8_E4M3", 1), ("F8_E5M2", 1), ("F8_E8M0", 1), ("I8", 1),
             ("U8", 1), ("BOOL", 1)]
    header = {"__metadata__": {"format": "pt"}}
    data = b""
    for name, size in sizes:
        header["t_" + name] = entry(name, [2, 1], len(data), len(data) + 2 * size)
        data += bytes(range(1, 2 * size + 1))
    header["scalar"] = entry("F32", [], len(data), len(data) + 4)
    data += struct.pack("<f", 3.25)
    header["empty"] = entry("F32", [0, 3], len(data), len(data))
    header["nan"] = entry("F32", [2], len(data), len(data) + 8)
    data += struct.pack("<ff", float("nan"), float("-inf"))
    return safetensors(header, data)


def write(target, name, content):
    os.makedirs(os.path.join(INPUTS, target), exist_ok=True)
    with open(os.path.join(INPUTS, target, "seed-" + name), "wb") as f:
        f.write(content)


def main():
    st = "safetensorsFile"
    write(st, "every-dtype", every_dtype())
    write(st, "empty-header", safetensors({}))
    write(st, "empty-file", b"")
    write(st, "header-length-2pow63", struct.pack("<Q", 1 << 63) + b"{}")
    write(st, "header-length-past-end", safetensors({}, length=4096))
    write(st, "shape-product-overflows",
          safetensors({"x": entry("F32", [4294967296, 4294967296, 16], 0, 0)}))
    write(st, "shape-huge-offsets-fit",
          safetensors({"x": entry("U8", [1 << 40], 0, 1 << 40)}))
    write(st, "zero-elements-huge-dimension", safetensors({"x": entry("F32", [0, 1 << 62], 0, 0)}))
    write(st, "rank-40", safetensors({"x": entry("F32", [1] * 40, 0, 4)}, bytes(4)))
    write(st, "rank-40-empty", safetensors({"x": entry("F16", [1] * 39 + [0], 0, 0)}))
    write(st, "offsets-past-end", safetensors({"x": entry("F32", [2], 0, 8)}, b"\0\0\0\0"))
    write(st, "offsets-overlap", safetensors({"a": entry("F32", [2], 0, 8), "b": entry("F32", [1], 4, 8)}, bytes(8)))
    write(st, "offsets-gap", safetensors({"a": entry("F32", [1], 4, 8)}, bytes(8)))
    write(st, "offsets-negative", safetensors({"a": entry("F32", [1], -4, 0)}, bytes(4)))
    write(st, "unknown-dtype", safetensors({"a": entry("F128", [1], 0, 16)}, bytes(16)))
    write(st, "not-utf8", struct.pack("<Q", 8) + b"{\"\xff\xfe\":1}")
    write(st, "duplicate-key", safetensors(b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
                                           b'"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"\0"))
    write(st, "deeply-nested", safetensors(b"{\"a\":" + b"[" * 5000 + b"]" * 5000 + b"}"))
    write(st, "metadata-not-strings", safetensors({"__metadata__": {"a": 1}}))
    # Not torch_dtypes.safetensors: at 300 KB of tensor bytes it slowed fuzzing tenfold for no coverage.
    for name in ("reference.safetensors", "adapter/adapter_model.safetensors",
                 "adapter_rslora/adapter_model.safetensors"):
        with open(os.path.join(PEFT, name), "rb") as f:
            write(st, "peft-" + name.replace("/", "-"), f.read())

    cfg = "peftAdapterConfig"
    for name in ("adapter", "adapter_rslora"):
        with open(os.path.join(PEFT, name, "adapter_config.json"), "rb") as f:
            write(cfg, name, f.read())
    with open(os.path.join(PEFT, "adapter", "adapter_config.json")) as f:
        base = json.load(f)
    for name, edit in (("r-huge", {"r": 1 << 40}), ("r-float", {"r": 2.0}), ("alpha-string", {"lora_alpha": "16"}),
                       ("targets-regex", {"target_modules": ".*(q|down)_proj"}),
                       ("layers-single", {"layers_to_transform": 1, "layers_pattern": "layers"}),
                       ("layers-negative", {"layers_to_transform": [-1]}),
                       ("init-pissa", {"init_lora_weights": "pissa"}), ("dropout-2", {"lora_dropout": 2}),
                       ("nan-alpha", None)):
        c = dict(base)
        if edit is None:
            text = json.dumps(c, indent=2).replace('"lora_alpha": 4', '"lora_alpha": NaN')
        else:
            c.update(edit)
            text = json.dumps(c, indent=2)
        write(cfg, name, text.encode("utf-8"))
    write(cfg, "empty-object", b"{}")
    write(cfg, "array", b"[1, 2]")
    write(cfg, "not-json", b"r = 8\n")

    wts = "peftAdapterWeights"
    for name in ("adapter", "adapter_rslora"):
        with open(os.path.join(PEFT, name, "adapter_model.safetensors"), "rb") as f:
            write(wts, name, f.read())
    q = "base_model.model.model.layers.1.self_attn.q_proj."
    d = "base_model.model.model.layers.0.mlp.down_proj."
    nan = struct.pack("<f", float("nan"))
    write(wts, "nan", safetensors({q + "lora_A.weight": entry("F32", [2, 6], 0, 48),
                                   q + "lora_B.weight": entry("F32", [6, 2], 48, 96)}, bytes(48) + nan * 12))
    write(wts, "a-without-b", safetensors({d + "lora_A.weight": entry("F32", [2, 8], 0, 64)}, bytes(64)))
    write(wts, "wrong-rank", safetensors({q + "lora_A.weight": entry("F32", [3, 6], 0, 72),
                                          q + "lora_B.weight": entry("F32", [6, 3], 72, 144)}, bytes(144)))
    write(wts, "int-weights", safetensors({q + "lora_A.weight": entry("I32", [2, 6], 0, 48),
                                           q + "lora_B.weight": entry("I32", [6, 2], 48, 96)}, bytes(96)))
    write(wts, "u16-weights", safetensors({q + "lora_A.weight": entry("U16", [2, 6], 0, 24),
                                           q + "lora_B.weight": entry("U16", [6, 2], 24, 48)}, bytes(48)))
    write(wts, "rank-1-shape", safetensors({q + "lora_A.weight": entry("F32", [2], 0, 8),
                                            q + "lora_B.weight": entry("F32", [6, 2], 8, 56)}, bytes(56)))
    write(wts, "blank-module", safetensors({"base_model.model. .lora_A.weight": entry("F32", [2, 6], 0, 48),
                                            "base_model.model. .lora_B.weight": entry("F32", [6, 2], 48, 96)}, bytes(96)))
    write(wts, "not-lora", safetensors({"lm_head.weight": entry("F32", [1], 0, 4)}, bytes(4)))
    write(wts, "empty", safetensors({}))


if __name__ == "__main__":
    main()
