#!/usr/bin/env python3
"""PyTorch twin of org.lora4j.bench.TrainingBenchmark: the same model, shapes, modes and step, and the
same one-line result format (TrainingResult), so lora-bench/train-vs-torch.sh compares like with like.

The model is make_parity.py's (lora-train/src/test/resources/parity/), the plain PyTorch Llama / Qwen2
decoder that the Java model's parity fixtures come from, imported rather than copied so the two cannot
drift apart. LoRA is added the usual PEFT way, y = x W^T + s (x A^T) B^T, by replacing make_parity's
`linear` (the one function every projection goes through) with one that adds the adapter term where the
layer has one. The step: zero_grad, forward, causal-LM loss over every target, backward,
clip_grad_norm_(1.0), AdamW (weight decay 0, as lora4j's command line), constant learning rate.

    OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 lora-bench/python/train_twin.py --size 256 --mode lora

Sizes 256, 512, 0.5b and modes full, lora (r 8, alpha 16, every linear layer), rank1 (rsLoRA r 1,
alpha 16, the middle layer's mlp.down_proj) as in the Java benchmark; 0.5b trains adapters only.
--phase forward times the forward alone (no autograd), --phase backward the loss and backward without
the optimizer, as the Java side's phases.
"""
import argparse
import math
import os
import statistics
import sys
import time

import torch

sys.dont_write_bytecode = True  # keep __pycache__ out of the fixture directory

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "lora-train", "src", "test", "resources", "parity"))
import make_parity as mp  # noqa: E402

# name -> (d, layers, heads, kv heads, d_ff, vocab, T, B, qwen)
SHAPES = {
    "256": (256, 4, 8, 4, 688, 256, 128, 8, False),
    "512": (512, 8, 8, 4, 1376, 256, 256, 4, False),
    "0.5b": (896, 24, 14, 2, 4864, 151936, 256, 1, True),
}
LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
LR, MAX_GRAD_NORM = 1e-4, 1.0


def config(size):
    d, layers, heads, kv, dff, vocab, _, _, qwen = SHAPES[size]
    return {"model_type": "qwen2" if qwen else "llama", "vocab_size": vocab, "hidden_size": d,
            "intermediate_size": dff, "num_hidden_layers": layers, "num_attention_heads": heads,
            "num_key_value_heads": kv, "head_dim": d // heads, "rms_norm_eps": 1e-6,
            "rope_theta": 1e6 if qwen else 10000.0, "tie_word_embeddings": qwen}


ADAPTERS = {}  # module name -> (A [r, in], B [out, r], scaling)
BASE_LINEAR = mp.linear


def lora_linear(x, p, name):
    y = BASE_LINEAR(x, p, name)
    adapter = ADAPTERS.get(name)
    if adapter is not None:
        a, b, s = adapter
        y = y + s * ((x @ a.T) @ b.T)
    return y


mp.linear = lora_linear  # make_parity.forward looks `linear` up in its module at call time


def attach(cfg, params, mode):
    """Adds adapters (PEFT's init: A Kaiming-uniform, B zero) and returns the trainable tensors."""
    if mode == "full":
        for t in params.values():
            t.requires_grad_(True)
        return list(params.values())
    if mode == "lora":
        rank, scaling, targets = 8, 16 / 8, [f"model.layers.{i}.{'self_attn' if n.endswith(('q_proj', 'k_proj', 'v_proj', 'o_proj')) else 'mlp'}.{n}"
                                              for i in range(cfg["num_hidden_layers"]) for n in LINEAR]
    elif mode == "rank1":
        rank, scaling, targets = 1, 16 / math.sqrt(1), [f"model.layers.{cfg['num_hidden_layers'] // 2}.mlp.down_proj"]
    else:
        sys.exit(f"--mode must be full, lora or rank1, got {mode!r}")
    trainable = []
    for name in targets:
        out_f, in_f = params[name + ".weight"].shape
        a = torch.empty(rank, in_f)
        torch.nn.init.kaiming_uniform_(a, a=math.sqrt(5))
        b = torch.zeros(out_f, rank)
        a.requires_grad_(True)
        b.requires_grad_(True)
        ADAPTERS[name] = (a, b, scaling)
        trainable += [a, b]
    return trainable


def vm_hwm_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return -1.0


def reference_product_ms(n, d, dff):
    """Median time of x W^T for x [B*T, d], W [d_ff, d]: the Java side's yardstick, for the record."""
    x, w, y = torch.rand(n, d), torch.rand(dff, d), torch.empty(n, dff)
    times = []
    for i in range(26):
        t0 = time.perf_counter()
        torch.matmul(x, w.T, out=y)
        if i >= 5:
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="256", choices=sorted(SHAPES))
    ap.add_argument("--mode", default="lora", choices=("full", "lora", "rank1"))
    ap.add_argument("--phase", default="step", choices=("step", "forward", "backward"))
    ap.add_argument("--steps", type=int, default=-1)
    ap.add_argument("--warmup", type=int, default=-1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(args.seed)
    d, _, _, _, dff, vocab, T, B, qwen = SHAPES[args.size]
    if qwen and args.mode == "full":
        sys.exit("--size 0.5b trains adapters only; use --mode lora or rank1")
    steps = args.steps if args.steps > 0 else (3 if qwen else 10)
    warmup = args.warmup if args.warmup >= 0 else (1 if qwen else 3)
    gemm_ms = reference_product_ms(B * T, d, dff)

    cfg = config(args.size)
    params = mp.init_params(cfg, torch.float32)
    trainable = attach(cfg, params, args.mode)
    opt = torch.optim.AdamW(trainable, lr=LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    batches = [torch.randint(0, vocab, (B, T)) for _ in range(4)]
    mask = torch.ones(B, T, dtype=torch.bool)
    ms = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        ids = batches[i % len(batches)]
        if args.phase == "forward":
            with torch.no_grad():
                mp.forward(cfg, params, ids)
            loss = torch.zeros(())
        else:
            opt.zero_grad(set_to_none=True)
            loss = mp.causal_lm_loss(mp.forward(cfg, params, ids), ids, mask)
            loss.backward()
            if args.phase == "step":
                torch.nn.utils.clip_grad_norm_(trainable, MAX_GRAD_NORM)
                opt.step()
        t = (time.perf_counter() - t0) * 1000
        if not math.isfinite(loss.item()):
            sys.exit(f"the loss diverged at step {i}: {loss.item()}")
        if i >= warmup:
            ms.append(t)
    med = statistics.median(ms)
    print(f"train-bench side=torch size={args.size} mode={args.mode} phase={args.phase} steps={steps} ms_per_step={med:.3f} "
          f"tokens_per_s={B * T / med * 1000:.2f} ms_min={min(ms):.3f} ms_max={max(ms):.3f} heap_mb=-1.0 "
          f"rss_mb={vm_hwm_mb():.1f} gemm_ms={gemm_ms:.4f} load={os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
