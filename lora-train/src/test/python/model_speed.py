#!/usr/bin/env python3
"""PyTorch twin of org.lora4j.train.ModelSpeed: the same Llama-style decoder (make_parity.py's
forward), d_model 256, 4 layers, 8 heads, 4 KV heads, d_ff 688, vocab 256, batch 8 x seq 128,
float32, 2 threads. Median of 10 after 3 warm-up steps.

    OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 lora-train/src/test/python/model_speed.py
"""
import os
import statistics
import sys
import time

import torch

sys.dont_write_bytecode = True  # keep __pycache__ out of the fixture directory

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "resources", "parity"))
import make_parity as mp  # noqa: E402

torch.set_num_threads(2)
torch.manual_seed(0)
CFG = {"model_type": "llama", "vocab_size": 256, "hidden_size": 256, "intermediate_size": 688,
       "num_hidden_layers": 4, "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 32,
       "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": False}
B, T, REPS = 8, 128, 10


def median(step):
    for _ in range(3):
        step()
    times = []
    for _ in range(REPS):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


params = mp.init_params(CFG, torch.float32)
ids = torch.randint(0, 256, (B, T))
mask = torch.ones(B, T, dtype=torch.bool)


def fwd():
    with torch.no_grad():
        mp.forward(CFG, params, ids)


def fwd_bwd():
    loss = mp.causal_lm_loss(mp.forward(CFG, params, ids), ids, mask)
    loss.backward()


for p in params.values():
    p.requires_grad_(True)
f = median(fwd)
fb = median(fwd_bwd)
n = B * T
print(f"torch {torch.__version__} threads {torch.get_num_threads()}")
print(f"torch forward: {f:.1f} ms/step, {f * 1000 / n:.1f} us/token")
print(f"torch forward+backward full: {fb:.1f} ms/step, {fb * 1000 / n:.1f} us/token")
