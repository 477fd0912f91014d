#!/usr/bin/env python3
"""Writes the KL fixture that KlDivergenceTest checks org.lora4j.train.elasticity.KlDivergence against.

The reference model is the `long` fixture's (long/config.json, long/model.safetensors, written by
make_long_parity.py); the model is a perturbed copy of it (every weight plus Gaussian noise of a
quarter of its own scale), so the two next-token distributions differ clearly but not wildly.
Both are computed in float64 from the float32 values stored in the files, with make_long_parity.py's
float64 forward (the Hugging Face Llama decoder in plain PyTorch), without adapters.

Token-level KL at position t of a sequence, scored when the token at t + 1 is a target (the causal-LM
loss's selection: labels = -100 elsewhere, and never the first position):
    KL_t = sum_v p_model(v | <=t) * (log p_model(v | <=t) - log p_ref(v | <=t))
and the file's figure is the mean of KL_t over the scored positions.

Writes kl/:
  config.json, model.safetensors   the perturbed model (F32)
  expected.safetensors             input_ids [B*T] I64, loss_mask [B*T] U8, kl [B*T] F64 (0 where not
                                   scored; position t's value at index b*T + t), kl_mean [] F64,
                                   tokens [] I64; metadata B, T

Run with Debian's torch:  /usr/bin/python3 make_kl_fixture.py   (deterministic: seeded, CPU)
"""
import json
import os
import struct

import numpy as np
import torch

from make_long_parity import CFG, forward
from make_parity import HERE, write_safetensors

torch.manual_seed(9)
torch.set_num_threads(1)
B, T = 3, 21


def read_safetensors(path):
    """Only F32 tensors, which is all the long fixture's model holds."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        assert h["dtype"] == "F32", name
        lo, hi = h["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[lo:hi], dtype="<f4").copy()).reshape(h["shape"])
    return out


def main():
    with open(os.path.join(HERE, "long", "config.json")) as f:
        assert json.load(f) == CFG
    ref = {k: v.double() for k, v in read_safetensors(os.path.join(HERE, "long", "model.safetensors")).items()}
    model = {}
    for k, v in ref.items():
        scale = v.std().item() if v.numel() > 1 else 1.0
        model[k] = (v + 0.25 * scale * torch.randn(v.shape, dtype=torch.float64)).float().double()

    ids = torch.randint(0, CFG["vocab_size"], (B, T))
    mask = torch.rand(B, T) < 0.6
    mask[:, 1] = True
    mask[2, 15:] = False  # a row that ends in unscored positions, as padding does
    with torch.no_grad():
        lp = torch.log_softmax(forward(model, {}, ids), dim=-1)
        lq = torch.log_softmax(forward(ref, {}, ids), dim=-1)
        kl_all = (lp.exp() * (lp - lq)).sum(-1)  # [B, T]
    scored = torch.zeros(B, T, dtype=torch.bool)
    scored[:, :-1] = mask[:, 1:]
    kl = torch.where(scored, kl_all, torch.zeros_like(kl_all))
    tokens = int(scored.sum())
    kl_mean = kl.sum() / tokens

    out_dir = os.path.join(HERE, "kl")
    os.makedirs(out_dir, exist_ok=True)
    for f in os.listdir(out_dir):
        os.remove(os.path.join(out_dir, f))
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(CFG, f, indent=2)
    write_safetensors(os.path.join(out_dir, "model.safetensors"), {k: v.float() for k, v in model.items()},
                      {"format": "pt"})
    write_safetensors(os.path.join(out_dir, "expected.safetensors"), {
        "input_ids": ids.reshape(-1).to(torch.int64),
        "loss_mask": mask.reshape(-1).to(torch.uint8),
        "kl": kl.reshape(-1),
        "kl_mean": kl_mean.reshape(()),
        "tokens": torch.tensor(tokens, dtype=torch.int64),
    }, {"B": str(B), "T": str(T)})
    print("kl mean", kl_mean.item(), "over", tokens, "tokens; per position min", kl[scored].min().item(),
          "max", kl[scored].max().item())


if __name__ == "__main__":
    main()
