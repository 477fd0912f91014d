#!/usr/bin/env python3
"""Writes hidden_states.safetensors, which HiddenStatesIndexTest checks lora4j's residual hooks against.

For the parity Llama fixture (../parity/llama: weights and input_ids), it runs make_parity.py's
reference forward (the code path of transformers' modeling_llama.py) and builds the
`output_hidden_states` tuple the way LlamaModel.forward does: the embeddings, then the stream
before each decoder layer, then, after the loop, `self.norm(hidden_states)`. So for L layers
hidden_states[l + 1] is the residual stream after block l for l < L - 1, and hidden_states[L] is
the final RMSNorm of the stream after the last block.

Writes hidden_states.<i> [B*T, d] F32 for i = 0..L, and residual.<l> [B*T, d] F32, the stream after
block l (what a residual hook after block l sees).

Run with Debian's torch:  /usr/bin/python3 make_hidden_states.py   (deterministic: CPU, float32)
"""
import json
import math
import os
import struct
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
PARITY = os.path.join(HERE, "..", "parity")
sys.path.insert(0, PARITY)
import make_parity as mp  # noqa: E402  (the reference model and the safetensors writer)

torch.set_num_threads(1)
DT = {"F32": torch.float32, "I64": torch.int64, "U8": torch.uint8}


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
        out[k] = torch.frombuffer(bytearray(data[a:b]), dtype=DT[v["dtype"]]).reshape(v["shape"])
    return out


def forward_with_states(cfg, p, ids):
    """make_parity.forward, keeping the stream after every block and the tuple transformers returns."""
    B, T = ids.shape
    H, KV, hd = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    eps = cfg["rms_norm_eps"]
    h = p["model.embed_tokens.weight"][ids]
    freqs = torch.arange(T).float()[:, None] * mp.inv_freq_of(cfg)[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    causal = torch.full((T, T), float("-inf")).triu(1)
    all_hidden_states = ()
    residuals = []
    for i in range(cfg["num_hidden_layers"]):
        all_hidden_states += (h,)           # as LlamaModel.forward: the input of layer i
        pre = f"model.layers.{i}."
        x = mp.rms_norm(h, p[pre + "input_layernorm.weight"], eps)
        q = mp.linear(x, p, pre + "self_attn.q_proj").view(B, T, H, hd).transpose(1, 2)
        k = mp.linear(x, p, pre + "self_attn.k_proj").view(B, T, KV, hd).transpose(1, 2)
        v = mp.linear(x, p, pre + "self_attn.v_proj").view(B, T, KV, hd).transpose(1, 2)
        q = q * cos + mp.rotate_half(q) * sin
        k = k * cos + mp.rotate_half(k) * sin
        k = k.repeat_interleave(H // KV, dim=1)
        v = v.repeat_interleave(H // KV, dim=1)
        s = q @ k.transpose(2, 3) / math.sqrt(hd) + causal
        a = torch.softmax(s, dim=-1, dtype=torch.float32) @ v
        a = a.transpose(1, 2).reshape(B, T, H * hd)
        h = h + mp.linear(a, p, pre + "self_attn.o_proj")
        x = mp.rms_norm(h, p[pre + "post_attention_layernorm.weight"], eps)
        m = torch.nn.functional.silu(mp.linear(x, p, pre + "mlp.gate_proj")) * mp.linear(x, p, pre + "mlp.up_proj")
        h = h + mp.linear(m, p, pre + "mlp.down_proj")
        residuals.append(h)
    h = mp.rms_norm(h, p["model.norm.weight"], eps)
    all_hidden_states += (h,)               # "add hidden states from the last decoder layer", after the norm
    return all_hidden_states, residuals


if __name__ == "__main__":
    case = os.path.join(PARITY, "llama")
    with open(os.path.join(case, "config.json")) as f:
        cfg = json.load(f)
    params = {}
    for name in sorted(os.listdir(case)):
        if name.startswith("model-") and name.endswith(".safetensors"):
            params.update({k: v.float() for k, v in read_safetensors(os.path.join(case, name)).items()})
    expected = read_safetensors(os.path.join(case, "expected.safetensors"))
    B, T = 2, 9
    ids = expected["input_ids"].reshape(B, T)
    states, residuals = forward_with_states(cfg, params, ids)
    out = {f"hidden_states.{i}": s.reshape(B * T, -1).contiguous() for i, s in enumerate(states)}
    out.update({f"residual.{l}": r.reshape(B * T, -1).contiguous() for l, r in enumerate(residuals)})
    mp.write_safetensors(os.path.join(HERE, "hidden_states.safetensors"), out, {"B": str(B), "T": str(T)})
    print("hidden_states", len(states), "residuals", len(residuals))
