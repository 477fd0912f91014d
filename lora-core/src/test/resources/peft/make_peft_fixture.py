#!/usr/bin/python3
"""Makes the PEFT interop fixtures that lora4j's tests read (PeftAdaptersTest, SafetensorsTest).

Run with a Python that has torch (Debian: apt-get install python3-torch), from anywhere:

    /usr/bin/python3 lora-core/src/test/resources/peft/make_peft_fixture.py

It writes, next to this script:

  adapter/                  a PEFT LoRA adapter laid out as PEFT's save_pretrained writes it: two
                            modules, r=2, lora_alpha=4, F32 weights
  adapter_rslora/           rsLoRA, r=4, lora_alpha=8 (scaling 4, not 2), layers_to_transform [1],
                            BF16 weights (as PEFT saves an adapter trained in bfloat16)
  reference.safetensors     base weights and biases, inputs, and PyTorch's outputs of both adapters
  torch_dtypes.safetensors  float32 values and torch's own F16/BF16 conversions of them, plus every
                            F16 bit pattern widened by torch, to check lora4j's conversions bit for bit

The `safetensors` package is not installable here (no PyPI), so this file carries a small writer
that follows the reference implementation: __metadata__ first, tensors by descending dtype then
name, compact JSON padded with spaces to a multiple of 8 bytes, little-endian C-order data.
The output is deterministic (fixed seed), so re-running it reproduces the committed files.
"""
import json
import math
import os
import struct
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))

# The reference implementation's dtype order (increasing alignment); the writer sorts descending.
DTYPE_ORDER = ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16",
               "I32", "U32", "F32", "F64", "I64", "U64"]
TORCH_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
                torch.float64: "F64", torch.int64: "I64", torch.int32: "I32",
                torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}


def tensor_bytes(t):
    # .view(torch.uint8) reinterprets the memory; reshape(-1) handles 0-d tensors.
    return t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def save_file(tensors, path, metadata=None):
    assert sys.byteorder == "little"
    items = sorted(tensors.items(),
                   key=lambda kv: (-DTYPE_ORDER.index(TORCH_DTYPES[kv[1].dtype]), kv[0].encode("utf-8")))
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    offset = 0
    blobs = []
    for name, t in items:
        data = tensor_bytes(t)
        header[name] = {"dtype": TORCH_DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    h = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for blob in blobs:
            f.write(blob)


def peft_config(r, alpha, target_modules, use_rslora=False, layers_to_transform=None, dropout=0.05):
    """adapter_config.json as PEFT 0.14+ writes it for a LoRA adapter with these settings."""
    return {
        "alpha_pattern": {},
        "auto_mapping": None,
        "base_model_name_or_path": "lora4j-test/tiny-llama",
        "bias": "none",
        "eva_config": None,
        "exclude_modules": None,
        "fan_in_fan_out": False,
        "inference_mode": True,
        "init_lora_weights": True,
        "layer_replication": None,
        "layers_pattern": None,
        "layers_to_transform": layers_to_transform,
        "loftq_config": {},
        "lora_alpha": alpha,
        "lora_bias": False,
        "lora_dropout": dropout,
        "megatron_config": None,
        "megatron_core": "megatron.core",
        "modules_to_save": None,
        "peft_type": "LORA",
        "r": r,
        "rank_pattern": {},
        "revision": None,
        "target_modules": target_modules,
        "task_type": "CAUSAL_LM",
        "use_dora": False,
        "use_rslora": use_rslora,
    }


def save_adapter(directory, config, weights, dtype):
    """weights: module path -> (A [r, in], B [out, r]); keys as PEFT's get_peft_model_state_dict gives them."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "adapter_config.json"), "w") as f:
        f.write(json.dumps(config, indent=2, sort_keys=True))   # PEFT's PeftConfigMixin.save_pretrained
    state = {}
    for module, (a, b) in weights.items():
        state[f"base_model.model.{module}.lora_A.weight"] = a.to(dtype)
        state[f"base_model.model.{module}.lora_B.weight"] = b.to(dtype)
    save_file(state, os.path.join(directory, "adapter_model.safetensors"), metadata={"format": "pt"})


def lora_forward(x, w, bias, a, b, scaling):
    """PEFT's LoRA Linear forward in eval mode: base(x) + scaling * lora_B(lora_A(x)), in float64."""
    x, w, bias, a, b = (t.double() for t in (x, w, bias, a, b))
    return torch.nn.functional.linear(x, w, bias) + scaling * ((x @ a.T) @ b.T)


def main():
    torch.manual_seed(20240611)
    n = 5
    # Module path -> (in, out): Llama names, small sizes.
    modules = {"model.layers.0.mlp.down_proj": (8, 6), "model.layers.1.self_attn.q_proj": (6, 6),
               "model.layers.1.mlp.up_proj": (6, 8)}
    reference = {}
    for module, (fan_in, fan_out) in modules.items():
        reference[f"base.{module}.weight"] = torch.randn(fan_out, fan_in)
        reference[f"base.{module}.bias"] = torch.randn(fan_out)
        reference[f"input.{module}"] = torch.randn(n, fan_in)

    def lora_pair(module, r):
        fan_in, fan_out = modules[module]
        # B is non-zero (as after training), or the adapter term would vanish and prove nothing.
        return torch.randn(r, fan_in) / math.sqrt(fan_in), torch.randn(fan_out, r)

    # 1. Plain LoRA, r=2, alpha=4 -> scaling 2, F32.
    plain = {m: lora_pair(m, 2) for m in ["model.layers.0.mlp.down_proj", "model.layers.1.self_attn.q_proj"]}
    save_adapter(os.path.join(HERE, "adapter"), peft_config(2, 4, ["q_proj", "down_proj"]), plain, torch.float32)
    for module, (a, b) in plain.items():
        reference[f"output.{module}"] = lora_forward(
            reference[f"input.{module}"], reference[f"base.{module}.weight"], reference[f"base.{module}.bias"],
            a, b, 4 / 2).float()

    # 2. rsLoRA, r=4, alpha=8 -> scaling 8/sqrt(4) = 4 (plain LoRA would give 2), BF16 weights.
    rs = {m: lora_pair(m, 4) for m in ["model.layers.1.mlp.up_proj"]}
    save_adapter(os.path.join(HERE, "adapter_rslora"),
                 peft_config(4, 8, ["up_proj"], use_rslora=True, layers_to_transform=[1], dropout=0.0),
                 rs, torch.bfloat16)
    for module, (a, b) in rs.items():
        # PEFT upcasts nothing here: the stored bf16 values are what the layer multiplies with.
        reference[f"output_rslora.{module}"] = lora_forward(
            reference[f"input.{module}"], reference[f"base.{module}.weight"], reference[f"base.{module}.bias"],
            a.bfloat16().float(), b.bfloat16().float(), 8 / math.sqrt(4)).float()
    save_file(reference, os.path.join(HERE, "reference.safetensors"), metadata={"made_by": "make_peft_fixture.py"})

    # 3. Conversions, as torch does them.
    def f32(bits):
        return struct.unpack("<f", struct.pack("<I", bits))[0]
    edge = [0.0, -0.0, 1.0, -1.0, 1 / 3, math.pi, -math.e, 65504.0, 65519.99, 65520.0, 65536.0, -65520.0,
            f32(0x7F7FFFFF), -f32(0x7F7FFFFF), f32(0x00000001), f32(0x00800000), f32(0x007FFFFF),
            2.0 ** -24, -(2.0 ** -24), 2.0 ** -25, f32(0x33000001), 1.5 * 2.0 ** -24, 2.5 * 2.0 ** -24,
            2.0 ** -14, f32(0x387FFFFF), f32(0x387FF000), 1 + 2.0 ** -11, 1 + 3 * 2.0 ** -11,
            1 + 2.0 ** -8, 1 + 3 * 2.0 ** -8, f32(0x3F808000), f32(0x3F818000), f32(0x3F808001),
            float("inf"), float("-inf"), float("nan"), f32(0x7F800001), f32(0xFFC00000)]
    scales = torch.tensor([10.0 ** k for k in range(-9, 6)]).repeat_interleave(100)
    source = torch.cat([torch.tensor(edge, dtype=torch.float32),
                        torch.randn(scales.numel()) * scales,
                        torch.randint(-2 ** 31, 2 ** 31 - 1, (1000,), dtype=torch.int32).view(torch.float32)])
    # Every F16 bit pattern in order (0x0000 .. 0xFFFF; the Java side regenerates the bits), widened by torch.
    all_f16 = torch.arange(0, 65536, dtype=torch.int32).to(torch.int16).view(torch.float16)
    dtypes = {
        "source": source,
        "source_as_f16": source.half(),
        "source_as_bf16": source.bfloat16(),
        "source_as_f16_as_f32": source.half().float(),
        "source_as_bf16_as_f32": source.bfloat16().float(),
        "all_f16_as_f32": all_f16.float(),
    }
    save_file(dtypes, os.path.join(HERE, "torch_dtypes.safetensors"), metadata={"torch": torch.__version__})
    print("fixtures written to", HERE, "with torch", torch.__version__)


if __name__ == "__main__":
    main()
