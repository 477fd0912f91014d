#!/usr/bin/env python3
"""Writes the PyTorch parity fixtures that DecoderParityTest checks the Java model against.

A plain PyTorch implementation of the Hugging Face Llama / Qwen2 decoder (no `transformers`, no
`safetensors` package: neither is installable here), the same code paths as
modeling_llama.py / modeling_qwen2.py: RMSNorm in float32, rotate_half RoPE (with llama3
rope_scaling), grouped-query attention by repeat_kv, causal mask, SwiGLU MLP, lm_head or tied
embeddings, and the causal-LM loss with labels = -100 on masked tokens.

For each case it writes, under <case>/:
  config.json                      as transformers writes it
  model.safetensors                (or model-0000N-of-0000M.safetensors + model.safetensors.index.json)
  expected.safetensors             input_ids [B*T] I64, loss_mask [B*T] U8, logits [B*T, V] F32,
                                   loss [] F32, grad.<hf name> F32 for a few parameters

Run with Debian's torch:  /usr/bin/python3 make_parity.py   (deterministic: seeded, CPU, float32)
"""
import json
import math
import os
import struct

import torch

torch.manual_seed(0)
torch.set_num_threads(1)

HERE = os.path.dirname(os.path.abspath(__file__))


# ------------------------------------------------------------------------------------------
# safetensors, written by hand (format: 8-byte LE header length, JSON header, raw LE C-order data)

DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16", torch.int64: "I64", torch.uint8: "U8"}


def tensor_bytes(t):
    t = t.detach().contiguous().cpu()
    if t.dtype in (torch.bfloat16, torch.float16):
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def write_safetensors(path, tensors, metadata=None):
    header = {}
    if metadata:
        header["__metadata__"] = metadata
    offset = 0
    blobs = []
    for name in sorted(tensors):
        t = tensors[name]
        b = tensor_bytes(t)
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


# ------------------------------------------------------------------------------------------
# The model, as in transformers' modeling_llama.py / modeling_qwen2.py

def inv_freq_of(cfg):
    hd = cfg["head_dim"]
    inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    rs = cfg.get("rope_scaling")
    if rs and rs["rope_type"] == "llama3":
        factor, lo, hi, old = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"], rs["original_max_position_embeddings"]
        low_wavelen, high_wavelen = old / lo, old / hi
        wavelen = 2 * math.pi / inv
        inv_l = torch.where(wavelen > low_wavelen, inv / factor, inv)
        smooth = (old / wavelen - lo) / (hi - lo)
        smoothed = (1 - smooth) * inv_l / factor + smooth * inv_l
        medium = ~(wavelen < high_wavelen) * ~(wavelen > low_wavelen)
        inv = torch.where(medium, smoothed, inv_l)
    return inv


def rms_norm(x, w, eps):
    var = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def linear(x, p, name):
    y = x @ p[name + ".weight"].T
    if name + ".bias" in p:
        y = y + p[name + ".bias"]
    return y


def forward(cfg, p, ids):
    B, T = ids.shape
    H, KV, hd = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    eps = cfg["rms_norm_eps"]
    h = p["model.embed_tokens.weight"][ids]
    freqs = torch.arange(T).float()[:, None] * inv_freq_of(cfg)[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    causal = torch.full((T, T), float("-inf")).triu(1)
    for i in range(cfg["num_hidden_layers"]):
        pre = f"model.layers.{i}."
        x = rms_norm(h, p[pre + "input_layernorm.weight"], eps)
        q = linear(x, p, pre + "self_attn.q_proj").view(B, T, H, hd).transpose(1, 2)
        k = linear(x, p, pre + "self_attn.k_proj").view(B, T, KV, hd).transpose(1, 2)
        v = linear(x, p, pre + "self_attn.v_proj").view(B, T, KV, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(H // KV, dim=1)
        v = v.repeat_interleave(H // KV, dim=1)
        s = q @ k.transpose(2, 3) / math.sqrt(hd) + causal
        a = torch.softmax(s, dim=-1, dtype=torch.float32) @ v
        a = a.transpose(1, 2).reshape(B, T, H * hd)
        h = h + linear(a, p, pre + "self_attn.o_proj")
        x = rms_norm(h, p[pre + "post_attention_layernorm.weight"], eps)
        m = torch.nn.functional.silu(linear(x, p, pre + "mlp.gate_proj")) * linear(x, p, pre + "mlp.up_proj")
        h = h + linear(m, p, pre + "mlp.down_proj")
    h = rms_norm(h, p["model.norm.weight"], eps)
    head = p["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else p["lm_head.weight"]
    return h @ head.T


def causal_lm_loss(logits, ids, mask):
    labels = ids.masked_fill(~mask, -100)
    V = logits.shape[-1]
    return torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1), ignore_index=-100)


def init_params(cfg, storage_dtype):
    d, ff, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    H, KV, hd = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    qkv_bias = cfg["model_type"] == "qwen2" or cfg.get("attention_bias", False)
    shapes = {"model.embed_tokens.weight": (V, d), "model.norm.weight": (d,)}
    for i in range(cfg["num_hidden_layers"]):
        pre = f"model.layers.{i}."
        shapes[pre + "input_layernorm.weight"] = (d,)
        shapes[pre + "post_attention_layernorm.weight"] = (d,)
        for n, (o, inn) in {"q_proj": (H * hd, d), "k_proj": (KV * hd, d), "v_proj": (KV * hd, d), "o_proj": (d, H * hd)}.items():
            shapes[pre + "self_attn." + n + ".weight"] = (o, inn)
            if qkv_bias and n != "o_proj":
                shapes[pre + "self_attn." + n + ".bias"] = (o,)
        for n, (o, inn) in {"gate_proj": (ff, d), "up_proj": (ff, d), "down_proj": (d, ff)}.items():
            shapes[pre + "mlp." + n + ".weight"] = (o, inn)
    if not cfg["tie_word_embeddings"]:
        shapes["lm_head.weight"] = (V, d)
    p = {}
    for name, shape in shapes.items():
        if name.endswith("norm.weight"):
            t = 1.0 + 0.2 * torch.randn(shape)
        elif name.endswith(".bias"):
            t = 0.2 * torch.randn(shape)
        else:
            t = torch.randn(shape) / math.sqrt(shape[1])
        # Round to the stored type, then compute in float32 from exactly the stored values.
        p[name] = t.to(storage_dtype).float()
    return p


def write_case(name, cfg, storage_dtype, shards, B, T):
    out = os.path.join(HERE, name)
    os.makedirs(out, exist_ok=True)
    for f in os.listdir(out):
        os.remove(os.path.join(out, f))
    params = init_params(cfg, storage_dtype)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    stored = {k: v.to(storage_dtype) for k, v in params.items()}
    if shards == 1:
        write_safetensors(os.path.join(out, "model.safetensors"), stored, {"format": "pt"})
    else:
        names = sorted(stored)
        weight_map = {}
        per = (len(names) + shards - 1) // shards
        for s in range(shards):
            fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
            part = {k: stored[k] for k in names[s * per:(s + 1) * per]}
            write_safetensors(os.path.join(out, fname), part, {"format": "pt"})
            weight_map.update({k: fname for k in part})
        total = sum(t.numel() * t.element_size() for t in stored.values())
        with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)

    ids = torch.randint(0, cfg["vocab_size"], (B, T))
    mask = torch.rand(B, T) < 0.7
    mask[:, 1] = True
    for t in params.values():
        t.requires_grad_(True)
    logits = forward(cfg, params, ids)
    loss = causal_lm_loss(logits, ids, mask)
    loss.backward()
    expected = {
        "input_ids": ids.reshape(-1).to(torch.int64),
        "loss_mask": mask.reshape(-1).to(torch.uint8),
        "logits": logits.detach().reshape(B * T, -1),
        "loss": loss.detach().reshape(()),
    }
    grad_names = ["model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
                  "model.layers.0.self_attn.k_proj.weight", "model.layers.0.input_layernorm.weight",
                  f"model.layers.{cfg['num_hidden_layers'] - 1}.mlp.down_proj.weight", "model.norm.weight"]
    if "model.layers.0.self_attn.q_proj.bias" in params:
        grad_names.append("model.layers.0.self_attn.q_proj.bias")
    if "lm_head.weight" in params:
        grad_names.append("lm_head.weight")
    for g in grad_names:
        expected["grad." + g] = params[g].grad.detach()
    write_safetensors(os.path.join(out, "expected.safetensors"), expected, {"B": str(B), "T": str(T)})
    print(name, "loss", loss.item(), "logits", tuple(logits.shape))


LLAMA = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama",
    "vocab_size": 48, "hidden_size": 16, "intermediate_size": 24, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8, "hidden_act": "silu",
    "max_position_embeddings": 64, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
    "rope_scaling": {"rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 64},
    "attention_bias": False, "mlp_bias": False, "tie_word_embeddings": False,
    "bos_token_id": 1, "eos_token_id": [2, 3], "torch_dtype": "float32",
    "unknown_future_key": {"ignored": True},
}

QWEN2 = {
    "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
    "vocab_size": 40, "hidden_size": 16, "intermediate_size": 24, "num_hidden_layers": 2,
    "num_attention_heads": 2, "num_key_value_heads": 1, "hidden_act": "silu",
    "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
    "use_sliding_window": False, "sliding_window": 64, "max_window_layers": 2,
    "tie_word_embeddings": True, "bos_token_id": 0, "eos_token_id": 1, "torch_dtype": "bfloat16",
}

if __name__ == "__main__":
    write_case("llama", LLAMA, torch.float32, 2, 2, 9)
    q = dict(QWEN2)
    q["head_dim"] = q["hidden_size"] // q["num_attention_heads"]  # used by this script only
    write_case("qwen2", q, torch.bfloat16, 1, 2, 9)
    # transformers' Qwen2Config has no head_dim key: drop the helper so the Java side derives it.
    path = os.path.join(HERE, "qwen2", "config.json")
    with open(path) as f:
        c = json.load(f)
    del c["head_dim"]
    with open(path, "w") as f:
        json.dump(c, f, indent=2)
