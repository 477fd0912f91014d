#!/usr/bin/env python3
"""Writes the long-sequence parity fixture that DecoderLongParityTest checks the Java model against.

Why a second fixture: the cases of make_parity.py have 9 tokens, inside one 64 x 64 attention tile,
while training at sequence 128 runs the tiled FLOAT attention over several tiles. This case has
T = 150 (three tiles: 0-63, 64-127, 128-149), GQA, untied lm_head, LoRA adapters on q_proj,
v_proj and down_proj of every layer with non-zero A and B, and computes the reference in float64
from the float32 values stored in the files, so the Java FLOAT and DOUBLE models are both measured
against an exact-as-possible answer.

The model code is make_parity.py's (the Hugging Face Llama decoder written out in plain PyTorch),
repeated here in float64 with PEFT's LoRA term added to the adapted linears:
    y = x W^T + scaling * (x A^T) B^T,   scaling = lora_alpha / r     (no dropout: eval semantics)

Writes long/:
  config.json, model.safetensors       F32 weights, max_position_embeddings 256
  adapter.safetensors                  <module>.lora_A.weight [r, in], <module>.lora_B.weight [out, r], F32;
                                       metadata r, lora_alpha, target_modules
  expected.safetensors                 input_ids [B*T] I64, loss_mask [B*T] U8, logits [B*T, V] F64,
                                       loss [] F64, grad.<name> F64 for EVERY parameter (full fine-tuning
                                       names as in DecoderModel.trainableParameters, and
                                       <module>.lora_A.default.weight / lora_B) ; metadata B, T

Run with Debian's torch:  /usr/bin/python3 make_long_parity.py   (deterministic: seeded, CPU)
"""
import json
import math
import os

import torch

from make_parity import HERE, write_safetensors

torch.manual_seed(150)
torch.set_num_threads(1)

CFG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama",
    "vocab_size": 32, "hidden_size": 16, "intermediate_size": 24, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8, "hidden_act": "silu",
    "max_position_embeddings": 256, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
    "attention_bias": False, "mlp_bias": False, "tie_word_embeddings": False,
    "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float32",
}
RANK = 2
ALPHA = 4.0
TARGETS = ["q_proj", "v_proj", "down_proj"]
B, T = 2, 150


def rms_norm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def linear(x, p, lora, name):
    y = x @ p[name + ".weight"].T
    if name in lora:
        a, b = lora[name]
        y = y + (ALPHA / RANK) * ((x @ a.T) @ b.T)
    return y


def forward(p, lora, ids):
    cfg = CFG
    Bn, Tn = ids.shape
    H, KV, hd = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    eps = cfg["rms_norm_eps"]
    h = p["model.embed_tokens.weight"][ids]
    # RoPE angles in float64 too (transformers computes inv_freq and the angles in float32, whose
    # rounding at position 149 alone is ~1e-5 of an angle; the Java model computes them in double).
    inv_freq = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    freqs = torch.arange(Tn, dtype=torch.float64)[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    causal = torch.full((Tn, Tn), float("-inf"), dtype=torch.float64).triu(1)
    for i in range(cfg["num_hidden_layers"]):
        pre = f"model.layers.{i}."
        x = rms_norm(h, p[pre + "input_layernorm.weight"], eps)
        q = linear(x, p, lora, pre + "self_attn.q_proj").view(Bn, Tn, H, hd).transpose(1, 2)
        k = linear(x, p, lora, pre + "self_attn.k_proj").view(Bn, Tn, KV, hd).transpose(1, 2)
        v = linear(x, p, lora, pre + "self_attn.v_proj").view(Bn, Tn, KV, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(H // KV, dim=1)
        v = v.repeat_interleave(H // KV, dim=1)
        s = q @ k.transpose(2, 3) / math.sqrt(hd) + causal
        a = torch.softmax(s, dim=-1) @ v
        a = a.transpose(1, 2).reshape(Bn, Tn, H * hd)
        h = h + linear(a, p, lora, pre + "self_attn.o_proj")
        x = rms_norm(h, p[pre + "post_attention_layernorm.weight"], eps)
        m = torch.nn.functional.silu(linear(x, p, lora, pre + "mlp.gate_proj")) * linear(x, p, lora, pre + "mlp.up_proj")
        h = h + linear(m, p, lora, pre + "mlp.down_proj")
    h = rms_norm(h, p["model.norm.weight"], eps)
    return h @ p["lm_head.weight"].T


def main():
    cfg = CFG
    d, ff, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    H, KV, hd = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    shapes = {"model.embed_tokens.weight": (V, d)}
    modules = {}
    for i in range(cfg["num_hidden_layers"]):
        pre = f"model.layers.{i}."
        shapes[pre + "input_layernorm.weight"] = (d,)
        for n, s in {"q_proj": (H * hd, d), "k_proj": (KV * hd, d), "v_proj": (KV * hd, d), "o_proj": (d, H * hd)}.items():
            shapes[pre + "self_attn." + n + ".weight"] = s
            modules[pre + "self_attn." + n] = s
        shapes[pre + "post_attention_layernorm.weight"] = (d,)
        for n, s in {"gate_proj": (ff, d), "up_proj": (ff, d), "down_proj": (d, ff)}.items():
            shapes[pre + "mlp." + n + ".weight"] = s
            modules[pre + "mlp." + n] = s
    shapes["model.norm.weight"] = (d,)
    shapes["lm_head.weight"] = (V, d)
    p = {}
    for name, shape in shapes.items():
        if name.endswith("norm.weight"):
            t = 1.0 + 0.2 * torch.randn(shape)
        else:
            # Larger than Hugging Face's 0.02 init, so attention is sharp enough that a wrong tile
            # boundary or a wrong mask changes the logits visibly.
            t = 1.5 * torch.randn(shape) / math.sqrt(shape[1])
        p[name] = t.float().double()  # float32 values, computed in float64
    lora = {}
    for mod, (out, inn) in modules.items():
        if mod.split(".")[-1] in TARGETS:
            a = (torch.randn(RANK, inn) / math.sqrt(inn)).float().double()
            b = (0.5 * torch.randn(out, RANK) / math.sqrt(RANK)).float().double()
            lora[mod] = (a, b)

    out_dir = os.path.join(HERE, "long")
    os.makedirs(out_dir, exist_ok=True)
    for f in os.listdir(out_dir):
        os.remove(os.path.join(out_dir, f))
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    write_safetensors(os.path.join(out_dir, "model.safetensors"), {k: v.float() for k, v in p.items()}, {"format": "pt"})
    ad = {}
    for mod, (a, b) in lora.items():
        ad[mod + ".lora_A.weight"] = a.float()
        ad[mod + ".lora_B.weight"] = b.float()
    write_safetensors(os.path.join(out_dir, "adapter.safetensors"), ad,
                      {"r": str(RANK), "lora_alpha": str(ALPHA), "target_modules": ",".join(TARGETS)})

    ids = torch.randint(0, V, (B, T))
    mask = torch.rand(B, T) < 0.7
    mask[:, 1] = True
    for t in p.values():
        t.requires_grad_(True)
    for a, b in lora.values():
        a.requires_grad_(True)
        b.requires_grad_(True)
    logits = forward(p, lora, ids)
    labels = ids.masked_fill(~mask, -100)
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1), ignore_index=-100)
    loss.backward()
    expected = {
        "input_ids": ids.reshape(-1).to(torch.int64),
        "loss_mask": mask.reshape(-1).to(torch.uint8),
        "logits": logits.detach().reshape(B * T, V),
        "loss": loss.detach().reshape(()),
    }
    for name, t in p.items():
        expected["grad." + name] = t.grad.detach()
    for mod, (a, b) in lora.items():
        expected["grad." + mod + ".lora_A.default.weight"] = a.grad.detach()
        expected["grad." + mod + ".lora_B.default.weight"] = b.grad.detach()
    write_safetensors(os.path.join(out_dir, "expected.safetensors"), expected, {"B": str(B), "T": str(T)})
    print("long loss", loss.item(), "logits", tuple(logits.shape), "gradients", len(expected) - 4)


if __name__ == "__main__":
    main()
