#!/usr/bin/env python3
"""The PyTorch reference for one step of `lora4j sft --optimizer sgd` (issue 4).

One SGD step, constant rate, no warm-up, dropout, weight decay or clipping, with the whole data
file as one batch, must leave the adapter at  A0 - lr * dL/dA  and  B0 - lr * dL/dB,  where L is the
mean next-token loss over every scored token of the file. This script computes that in PyTorch,
independently of lora4j: its own byte-level ChatML tokenisation (ids 0-255 are bytes,
<|endoftext|> = 256, <|im_start|> = 257, <|im_end|> = 258; the assistant's content and its
<|im_end|> are targets; a data file holds one format, so this one is all chats), the plain
PyTorch decoder of lora-train's parity fixtures, and LoRA as PEFT computes it:
y = x W^T + (alpha / r) * (x A^T) B^T.

Writes, beside this script:
  model/config.json, model/model.safetensors   a random Llama-style model (vocab 259)
  data.jsonl                                   the training file
  init_adapter/adapter_config.json, adapter_model.safetensors   A0, B0 (B0 non-zero)
  expected.safetensors   ids/mask per line (to check the tokenisation), loss, and the adapter
                         after the step under PEFT's key names

Run with Debian's torch:  /usr/bin/python3 make_sgd_fixture.py   (deterministic)
"""
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "..", "..", "lora-train", "src", "test", "resources", "parity"))
import make_parity as mp  # noqa: E402  (the plain PyTorch decoder and safetensors writer)

torch.manual_seed(11)
LR = 0.5
R, ALPHA = 2, 4.0
TARGETS = ["q_proj", "v_proj", "down_proj"]
EOT, IM_START, IM_END = 256, 257, 258

CFG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama",
    "vocab_size": 259, "hidden_size": 16, "intermediate_size": 24, "num_hidden_layers": 2,
    "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 8, "hidden_act": "silu",
    "max_position_embeddings": 128, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
    "attention_bias": False, "mlp_bias": False, "tie_word_embeddings": False, "torch_dtype": "float32",
}

LINES = [
    {"messages": [{"role": "user", "content": "Is it safe to run with a fever?"},
                  {"role": "assistant", "content": "Rest first."}]},
    {"messages": [{"role": "system", "content": "Be brief."},
                  {"role": "user", "content": "Loan?"},
                  {"role": "assistant", "content": "Pay the costly one first."}]},
    {"messages": [{"role": "user", "content": "Before a run?"},
                  {"role": "assistant", "content": "Warm up before you start."}]},
    {"messages": [{"role": "user", "content": "Bread: café crème?"},
                  {"role": "assistant", "content": "Oui."},
                  {"role": "user", "content": "And?"},
                  {"role": "assistant", "content": "Knead."}]},
]


def encode(line):
    if "text" in line:
        ids = list(line["text"].encode("utf-8")) + [EOT]
        return ids, [True] * len(ids)
    ids, mask = [], []

    def add(piece, target):
        ids.extend(piece)
        mask.extend([target] * len(piece))

    for m in line["messages"]:
        t = m["role"] == "assistant"
        add([IM_START], False)
        add(list((m["role"] + "\n").encode("utf-8")), False)
        add(list(m["content"].encode("utf-8")), t)
        add([IM_END], t)
        add(list(b"\n"), False)
    return ids, mask


def main():
    p = mp.init_params(CFG, torch.float32)
    model_dir = os.path.join(HERE, "model")
    os.makedirs(model_dir, exist_ok=True)
    with open(os.path.join(model_dir, "config.json"), "w") as f:
        json.dump(CFG, f, indent=2)
    mp.write_safetensors(os.path.join(model_dir, "model.safetensors"), p, {"format": "pt"})

    with open(os.path.join(HERE, "data.jsonl"), "w", encoding="utf-8") as f:
        for line in LINES:
            f.write(json.dumps(line, ensure_ascii=False) + "\n")

    # The initial adapter: A and B both random, so every gradient is non-trivial.
    modules = []
    for i in range(CFG["num_hidden_layers"]):
        for t in TARGETS:
            part = "mlp" if t == "down_proj" else "self_attn"
            modules.append(f"model.layers.{i}.{part}.{t}")
    lora = {}
    for mod in modules:
        out_f, in_f = p[mod + ".weight"].shape
        lora[mod] = (torch.randn(R, in_f) * 0.3, torch.randn(out_f, R) * 0.3)
    init_dir = os.path.join(HERE, "init_adapter")
    os.makedirs(init_dir, exist_ok=True)
    cfg = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": R, "lora_alpha": ALPHA, "lora_dropout": 0.0,
           "target_modules": TARGETS, "layers_to_transform": None, "use_rslora": False, "bias": "none",
           "init_lora_weights": True, "fan_in_fan_out": False, "base_model_name_or_path": "sgd-fixture",
           "modules_to_save": None, "inference_mode": True}
    with open(os.path.join(init_dir, "adapter_config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
    tensors = {}
    for mod, (a, b) in lora.items():
        tensors[f"base_model.model.{mod}.lora_A.weight"] = a
        tensors[f"base_model.model.{mod}.lora_B.weight"] = b
    mp.write_safetensors(os.path.join(init_dir, "adapter_model.safetensors"), tensors, {"format": "pt"})

    # The whole file as one right-padded batch; padding is never a target.
    enc = [encode(l) for l in LINES]
    T = max(len(i) for i, _ in enc)
    ids = torch.full((len(enc), T), EOT, dtype=torch.int64)
    mask = torch.zeros((len(enc), T), dtype=torch.bool)
    for r, (i, m) in enumerate(enc):
        ids[r, :len(i)] = torch.tensor(i)
        mask[r, :len(m)] = torch.tensor(m)

    params = {mod: (a.clone().requires_grad_(True), b.clone().requires_grad_(True)) for mod, (a, b) in lora.items()}
    scaling = ALPHA / R
    base_linear = mp.linear

    def lora_linear(x, pp, name):
        y = base_linear(x, pp, name)
        if name in params:
            a, b = params[name]
            y = y + scaling * ((x @ a.T) @ b.T)
        return y

    mp.linear = lora_linear
    logits = mp.forward(CFG, p, ids)
    loss = mp.causal_lm_loss(logits, ids, mask)   # mean over every target of the file
    loss.backward()

    expected = {"loss": loss.detach().reshape(())}
    for mod, (a, b) in params.items():
        expected[f"base_model.model.{mod}.lora_A.weight"] = (a - LR * a.grad).detach()
        expected[f"base_model.model.{mod}.lora_B.weight"] = (b - LR * b.grad).detach()
    for r, (i, m) in enumerate(enc):
        expected[f"ids.{r}"] = torch.tensor(i, dtype=torch.int64)
        expected[f"mask.{r}"] = torch.tensor(m, dtype=torch.uint8)
    mp.write_safetensors(os.path.join(HERE, "expected.safetensors"), expected,
                         {"format": "pt", "lr": str(LR), "loss": repr(loss.item())})
    print("loss", loss.item(), "targets", int(mask[:, 1:].sum()))


if __name__ == "__main__":
    main()
