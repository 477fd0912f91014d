#!/usr/bin/env python3
"""Reference trajectories for lora4j's optimizer, schedules and clipping, from PyTorch.

Run with Debian's python3-torch: /usr/bin/python3 make_optim_fixture.py > optim_fixture.json
"""
import json
import math

import torch

torch.manual_seed(0)
p0 = torch.randn(3, 4, dtype=torch.float64)
grads = [torch.randn(3, 4, dtype=torch.float64) for _ in range(4)]
lrs = [1e-3, 2e-3, 5e-4, 1e-3]


def run(opt_cls, **kw):
    p = torch.nn.Parameter(p0.clone())
    opt = opt_cls([p], lr=lrs[0], **kw)
    out = []
    for g, lr in zip(grads, lrs):
        for group in opt.param_groups:
            group["lr"] = lr
        p.grad = g.clone()
        opt.step()
        out.append(p.detach().flatten().tolist())
    return out


adamw = run(torch.optim.AdamW, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
sgd = run(torch.optim.SGD, weight_decay=0.0)

# clip_grad_norm_ on two tensors
a = torch.nn.Parameter(torch.zeros(2, 3, dtype=torch.float64))
b = torch.nn.Parameter(torch.zeros(5, dtype=torch.float64))
a.grad = torch.arange(6, dtype=torch.float64).reshape(2, 3)
b.grad = -torch.arange(5, dtype=torch.float64)
norm = torch.nn.utils.clip_grad_norm_([a, b], 1.5)

# Hugging Face schedules (transformers' formulas, written out: transformers is not installable here)
def linear(step, warm, total):
    if step < warm:
        return step / max(1, warm)
    return max(0.0, (total - step) / max(1, total - warm))


def cosine(step, warm, total):
    if step < warm:
        return step / max(1, warm)
    progress = (step - warm) / max(1, total - warm)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress)))


print(json.dumps({
    "p0": p0.flatten().tolist(),
    "grads": [g.flatten().tolist() for g in grads],
    "lrs": lrs,
    "adamw_wd0.01": adamw,
    "sgd": sgd,
    "clip": {"grad_a": a.grad.flatten().tolist(), "grad_b": b.grad.flatten().tolist(), "norm": float(norm)},
    "linear_5_20": [linear(s, 5, 20) for s in range(22)],
    "cosine_5_20": [cosine(s, 5, 20) for s in range(22)],
}, indent=1))
