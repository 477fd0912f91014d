#!/usr/bin/python3
"""Checks that an adapter directory written by lora4j loads the way PEFT would load it.

    /usr/bin/python3 check_lora4j_adapter.py ADAPTER_DIR [REFERENCE.safetensors]

Needs only torch (no peft, no safetensors package: neither is installable here). It reproduces
what PEFT's PeftModel.from_pretrained does with the two files:

  * adapter_config.json: the checks of PEFT's LoraConfig (peft_type, r, lora_alpha, target_modules,
    layers_to_transform/layers_pattern, init_lora_weights) and that every key is a LoraConfig field
    PEFT 0.14 knows, so older PEFT versions load it without "unexpected keyword" warnings;
  * adapter_model.safetensors: parsed with a strict reader (8-byte header length, JSON header padded
    to 8 bytes, offsets covering the buffer with no gaps), metadata format "pt" as transformers
    requires, keys renamed the way set_peft_model_state_dict inserts the adapter name, each module
    path matched against target_modules with PEFT's rule, shapes lora_A [r, in], lora_B [out, r].

With REFERENCE (written by PeftAdaptersTest next to the adapter: base.<module>.weight/.bias,
input.<module>, output.<module>), it recomputes each layer's forward the way PEFT's lora.Linear does,
base(x) + scaling * lora_B(lora_A(x)), and compares it with lora4j's output.
Exit status 0 when everything agrees.
"""
import json
import math
import os
import re
import struct
import sys

import torch

# The fields of PEFT 0.14's LoraConfig (and its PeftConfig bases) that save_pretrained writes.
PEFT_LORA_FIELDS = {
    "task_type", "peft_type", "auto_mapping", "base_model_name_or_path", "revision", "inference_mode",
    "r", "target_modules", "exclude_modules", "lora_alpha", "lora_dropout", "fan_in_fan_out", "bias",
    "use_rslora", "modules_to_save", "init_lora_weights", "layers_to_transform", "layers_pattern",
    "rank_pattern", "alpha_pattern", "megatron_config", "megatron_core", "loftq_config", "eva_config",
    "use_dora", "layer_replication", "lora_bias",
}
COMMON_LAYERS_PATTERN = ["layers", "h", "block", "blocks", "layer"]   # peft.utils.constants
DTYPES = {"F32": (torch.float32, 4), "F16": (torch.float16, 2), "BF16": (torch.bfloat16, 2), "F64": (torch.float64, 8)}


def fail(message):
    print("FAIL:", message)
    sys.exit(1)


def read_safetensors(path, strict_padding=True):
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        fail(f"{path}: shorter than 8 bytes")
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        fail(f"{path}: header length {n} past the end of the file")
    raw = blob[8:8 + n]
    if strict_padding and n % 8 != 0:
        fail(f"{path}: header length {n} is not a multiple of 8")
    text = raw.decode("utf-8")
    if not text.startswith("{"):
        fail(f"{path}: header does not start with '{{'")
    header = json.loads(text)
    metadata = header.pop("__metadata__", None) or {}
    data = blob[8 + n:]
    spans = sorted((info["data_offsets"][0], info["data_offsets"][1], name) for name, info in header.items())
    end = 0
    for begin, stop, name in spans:
        if begin != end:
            fail(f"{path}: key {name} starts at {begin}, expected {end}")
        end = stop
    if end != len(data):
        fail(f"{path}: offsets cover {end} of {len(data)} data bytes")
    tensors = {}
    for name, info in header.items():
        dtype, size = DTYPES[info["dtype"]]
        begin, stop = info["data_offsets"]
        count = math.prod(info["shape"])
        if stop - begin != count * size:
            fail(f"{path}: key {name} spans {stop - begin} bytes, needs {count * size}")
        t = torch.frombuffer(bytearray(data[begin:stop]), dtype=dtype) if count else torch.empty(0, dtype=dtype)
        tensors[name] = (info["dtype"], t.reshape(info["shape"]))
    return metadata, tensors


def check_config(config):
    unknown = sorted(set(config) - PEFT_LORA_FIELDS)
    if unknown:
        fail(f"adapter_config.json has keys PEFT 0.14's LoraConfig lacks: {unknown}")
    if config.get("peft_type") != "LORA":
        fail(f"peft_type is {config.get('peft_type')!r}, not 'LORA'")
    r = config["r"]
    if not isinstance(r, int) or isinstance(r, bool) or r <= 0:
        fail(f"r should be a positive integer, got {r!r}")
    if not isinstance(config["lora_alpha"], (int, float)) or config["lora_alpha"] <= 0:
        fail(f"lora_alpha should be a positive number, got {config['lora_alpha']!r}")
    targets = config["target_modules"]
    if not isinstance(targets, (list, str)) or not targets:
        fail(f"target_modules must be a non-empty list or a string, got {targets!r}")
    if config.get("layers_pattern") and not config.get("layers_to_transform"):
        fail("layers_pattern set without layers_to_transform (PEFT raises ValueError)")
    init = config.get("init_lora_weights", True)
    if not (isinstance(init, bool) or init in ("gaussian", "eva", "olora", "pissa", "corda", "loftq")
            or str(init).startswith("pissa_niter_")):
        fail(f"init_lora_weights {init!r} is not one PEFT accepts")
    for key, value in [("bias", "none"), ("use_dora", False), ("fan_in_fan_out", False)]:
        if config.get(key, value) != value:
            fail(f"{key} = {config[key]!r}: lora4j never writes that")


def target_exists(config, module):
    """PEFT's check_target_module_exists for a list of targets (or a regex string)."""
    targets = config["target_modules"]
    if isinstance(targets, str):
        return re.fullmatch(targets, module) is not None
    if not (module in targets or any(module.endswith("." + t) for t in targets)):
        return False
    layers = config.get("layers_to_transform")
    if layers is None:
        return True
    if isinstance(layers, int):
        layers = [layers]
    patterns = config.get("layers_pattern") or COMMON_LAYERS_PATTERN
    patterns = [patterns] if isinstance(patterns, str) else patterns
    for pattern in patterns:
        m = re.match(rf".*\.{pattern}\.(\d+)\.", module)
        if m:
            return int(m.group(1)) in layers
    return False


def main():
    if len(sys.argv) not in (2, 3):
        print(__doc__)
        sys.exit(2)
    adapter_dir = sys.argv[1]
    with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
        config = json.load(f)
    check_config(config)
    r, alpha = config["r"], config["lora_alpha"]
    scaling = alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r   # LoraLayer.update_layer

    metadata, tensors = read_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"))
    if metadata.get("format") != "pt":
        fail(f"metadata format is {metadata.get('format')!r}; transformers requires 'pt'")

    # set_peft_model_state_dict: "x.lora_A.weight" -> "x.lora_A.default.weight" in the live model.
    adapter_name = "default"
    modules = {}
    for key, (dtype, t) in tensors.items():
        if "lora_" not in key or not key.startswith("base_model.model."):
            fail(f"unexpected key {key}")
        suffix = key.split("lora_")[1]
        live_key = key.replace(".".join(suffix.split(".")[1:]), f"{adapter_name}." + ".".join(suffix.split(".")[1:]))
        m = re.fullmatch(r"base_model\.model\.(.+)\.lora_([AB])\." + adapter_name + r"\.weight", live_key)
        if m is None:
            fail(f"key {key} does not become a LoRA parameter (got {live_key})")
        module, which = m.group(1), m.group(2)
        if not target_exists(config, module):
            fail(f"module {module} is not matched by target_modules {config['target_modules']}: PEFT would not load it")
        modules.setdefault(module, {})[which] = t.float()
        print(f"  {key}: {dtype} {list(t.shape)} -> {live_key}")
    for module, ab in sorted(modules.items()):
        if set(ab) != {"A", "B"}:
            fail(f"module {module} has only lora_{''.join(ab)}")
        if ab["A"].shape[0] != r or ab["B"].shape[1] != r:
            fail(f"module {module}: lora_A {list(ab['A'].shape)}, lora_B {list(ab['B'].shape)} disagree with r={r}")
    print(f"config OK: r={r} lora_alpha={alpha} use_rslora={config.get('use_rslora')} scaling={scaling:g} "
          f"target_modules={config['target_modules']} ({len(config)} keys)")
    print(f"weights OK: {len(modules)} modules, {len(tensors)} tensors, metadata {metadata}")

    if len(sys.argv) == 3:
        _, ref = read_safetensors(sys.argv[2], strict_padding=False)
        worst = 0.0
        for module, ab in sorted(modules.items()):
            w = ref[f"base.{module}.weight"][1].double()
            b = ref[f"base.{module}.bias"][1].double()
            x = ref[f"input.{module}"][1].double()
            java = ref[f"output.{module}"][1].double()
            a_, b_ = ab["A"].double(), ab["B"].double()
            # peft.tuners.lora.layer.Linear.forward (eval, no dropout, not merged)
            y = torch.nn.functional.linear(x, w, b) + scaling * torch.nn.functional.linear(
                torch.nn.functional.linear(x, a_), b_)
            delta = (scaling * (x @ a_.T) @ b_.T).norm().item()
            rel = ((y - java).norm() / y.norm()).item()
            worst = max(worst, rel)
            print(f"forward {module}: x {list(x.shape)} -> y {list(y.shape)}, |adapter term| {delta:.4g}, "
                  f"relative error vs lora4j {rel:.3g}")
        if worst >= 1e-5:
            fail(f"lora4j's forward differs from PEFT's by {worst:.3g} (limit 1e-5)")
        print(f"forward OK: worst relative error {worst:.3g} < 1e-5")
    print("OK: PEFT would load this adapter")


if __name__ == "__main__":
    main()
