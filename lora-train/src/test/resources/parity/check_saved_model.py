#!/usr/bin/env python3
"""Loads a model directory that lora4j saved and checks that PyTorch computes the same logits.

Usage: /usr/bin/python3 check_saved_model.py MODEL_DIR INPUTS.safetensors
  MODEL_DIR           config.json + model.safetensors, as DecoderModel.save writes them
  INPUTS.safetensors  input_ids [B, T] (I64) and logits [B*T, V] (F32) computed by lora4j

Uses the plain PyTorch decoder of make_parity.py (transformers is not installable here) and a
minimal safetensors reader; exits 1 when the relative error exceeds 1e-4.
"""
import json
import os
import struct
import sys

import torch

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_parity as mp  # noqa: E402

DT = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64, "F64": torch.float64}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        t = torch.frombuffer(bytearray(data[a:b]), dtype=DT[v["dtype"]]).reshape(v["shape"])
        out[k] = t.float() if t.is_floating_point() else t
    return out


def main(model_dir, inputs):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    cfg.setdefault("head_dim", cfg["hidden_size"] // cfg["num_attention_heads"])
    cfg.setdefault("tie_word_embeddings", False)
    p = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    x = read_safetensors(inputs)
    ids = x["input_ids"]
    logits = mp.forward(cfg, p, ids).reshape(-1, cfg["vocab_size"])
    err = ((logits - x["logits"]).abs().max() / x["logits"].abs().max()).item()
    print(f"{cfg['architectures'][0]}: {len(p)} tensors, input {list(ids.shape)}, logits relative error {err:.3g}")
    if err > 1e-4:
        print("FAIL: PyTorch disagrees with lora4j on this saved model")
        return 1
    print("OK: the saved model loads in PyTorch and gives lora4j's logits")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
