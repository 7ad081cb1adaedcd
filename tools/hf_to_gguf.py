#!/usr/bin/python3
"""Writes a GGUF file (v3) from a Hub-layout Qwen2/Qwen3 folder, laid out as
llama.cpp's converter lays these architectures out, for tests and benchmarks.

    tools/hf_to_gguf.py MODEL_DIR OUT.gguf --type f32|f16|bf16|q8_0

Tensor names: token_embd / output_norm / output (absent when tied) /
blk.N.{attn_norm,attn_q,attn_k,attn_v,attn_output,attn_q_norm,attn_k_norm,
ffn_norm,ffn_gate,ffn_up,ffn_down}.{weight,bias}; weights as stored on the
Hub (Qwen uses NeoX RoPE: no q/k permutation). 1-D tensors stay F32, 2-D ones
take --type. Metadata: general.*, <arch>.* hyper-parameters and the gpt2-style
tokenizer.ggml.* keys from tokenizer.json. Q8_0 as ggml's reference:
d = max|x|/127 (stored f16), q = round-half-away(x / d).

Only numpy is needed (safetensors is parsed by hand)."""
import argparse
import json
import os
import struct
import sys

import numpy as np

ALIGN = 32
GGML = {"f32": 0, "f16": 1, "q8_0": 8, "bf16": 30}
FILE_TYPE = {"f32": 0, "f16": 1, "q8_0": 7, "bf16": 32}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        buf = raw[base + a : base + b]
        dt = info["dtype"]
        if dt == "F32":
            x = buf.view("<f4")
        elif dt == "F16":
            x = buf.view("<f2").astype(np.float32)
        elif dt == "BF16":
            x = (buf.view("<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            raise SystemExit(f"{path}: tensor {name}: dtype {dt} not supported")
        out[name] = x.reshape(info["shape"])
    return out


def read_checkpoint(d):
    idx = os.path.join(d, "model.safetensors.index.json")
    if os.path.exists(idx):
        files = sorted(set(json.load(open(idx))["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    t = {}
    for f in files:
        t.update(read_safetensors(os.path.join(d, f)))
    return t


def to_bf16(x):
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16  # round to nearest even
    return u.astype(np.uint16)


def roundf(v):
    """C roundf (half away from zero), exact in float32."""
    a = np.abs(v)
    fl = np.floor(a)
    return np.sign(v) * (fl + np.floor(2 * (a - fl)))


def to_q8_0(x):
    x = np.ascontiguousarray(x, dtype=np.float32)
    blocks = x.reshape(-1, 32)
    d = (np.abs(blocks).max(axis=1, keepdims=True) / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore"):
        idv = np.where(d == 0, np.float32(0), np.float32(1) / d).astype(np.float32)
    q = roundf((blocks * idv).astype(np.float32)).astype(np.int8)
    out = np.empty(blocks.shape[0], dtype=[("d", "<f2"), ("qs", "i1", (32,))])
    out["d"] = d[:, 0].astype(np.float16)
    out["qs"] = q
    return out


def encode(x, ty):
    if ty == "f32":
        return np.ascontiguousarray(x, dtype="<f4").tobytes()
    if ty == "f16":
        return np.ascontiguousarray(x, dtype="<f2").tobytes()
    if ty == "bf16":
        return to_bf16(x).astype("<u2").tobytes()
    return to_q8_0(x).tobytes()


class Writer:
    def __init__(self):
        self.kv = []
        self.tensors = []

    def add(self, key, vtype, value):
        self.kv.append((key, vtype, value))

    @staticmethod
    def s(b):
        b = b.encode("utf-8") if isinstance(b, str) else b
        return struct.pack("<Q", len(b)) + b

    def value(self, vtype, v):
        fmt = {"u32": ("<I", 4), "i32": ("<i", 5), "f32": ("<f", 6), "bool": ("<?", 7), "u64": ("<Q", 10)}
        if vtype in fmt:
            f, _ = fmt[vtype]
            return struct.pack(f, v)
        if vtype == "str":
            return self.s(v)
        raise ValueError(vtype)

    TYPE_ID = {"u32": 4, "i32": 5, "f32": 6, "bool": 7, "str": 8, "u64": 10}

    def kv_bytes(self, key, vtype, v):
        out = self.s(key)
        if vtype.startswith("arr:"):
            et = vtype[4:]
            out += struct.pack("<IIQ", 9, self.TYPE_ID[et], len(v))
            out += b"".join(self.value(et, e) for e in v)
        else:
            out += struct.pack("<I", self.TYPE_ID[vtype]) + self.value(vtype, v)
        return out

    def write(self, path):
        infos, data, off = [], [], 0
        for name, shape, ggml_type, blob in self.tensors:
            pad = (-off) % ALIGN
            data.append(b"\0" * pad)
            off += pad
            dims = list(reversed(shape))  # ggml order: fastest first
            infos.append(self.s(name) + struct.pack("<I", len(dims)) +
                         b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", ggml_type, off))
            data.append(blob)
            off += len(blob)
        head = b"GGUF" + struct.pack("<IQQ", 3, len(self.tensors), len(self.kv))
        head += b"".join(self.kv_bytes(*kv) for kv in self.kv) + b"".join(infos)
        head += b"\0" * ((-len(head)) % ALIGN)
        with open(path, "wb") as f:
            f.write(head)
            for b in data:
                f.write(b)


def tokenizer_kv(w, d, cfg, vocab_size):
    tj = json.load(open(os.path.join(d, "tokenizer.json"), encoding="utf-8"))
    tc_path = os.path.join(d, "tokenizer_config.json")
    tc = json.load(open(tc_path, encoding="utf-8")) if os.path.exists(tc_path) else {}
    model = tj["model"]
    id2tok = {i: t for t, i in model["vocab"].items()}
    types = {i: 1 for i in id2tok}  # normal
    for a in tj.get("added_tokens", []):
        id2tok[a["id"]] = a["content"]
        types[a["id"]] = 3 if a.get("special") else 4  # control / user-defined
    n = max(vocab_size, max(id2tok) + 1)
    tokens = [id2tok.get(i, f"[PAD{i}]") for i in range(n)]
    ttypes = [types.get(i, 5) for i in range(n)]  # 5: unused
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    w.add("tokenizer.ggml.model", "str", "gpt2")
    w.add("tokenizer.ggml.pre", "str", "qwen2")
    w.add("tokenizer.ggml.tokens", "arr:str", tokens)
    w.add("tokenizer.ggml.token_type", "arr:i32", ttypes)
    w.add("tokenizer.ggml.merges", "arr:str", merges)
    tok2id = {t: i for i, t in enumerate(tokens)}
    eos = cfg.get("eos_token_id")
    if isinstance(eos, list):
        eos = eos[0] if eos else None
    if tc.get("eos_token") in tok2id:
        eos = tok2id[tc["eos_token"]]
    if eos is not None:
        w.add("tokenizer.ggml.eos_token_id", "u32", int(eos))
    if cfg.get("bos_token_id") is not None:
        w.add("tokenizer.ggml.bos_token_id", "u32", int(cfg["bos_token_id"]))
    if tc.get("pad_token") in tok2id:
        w.add("tokenizer.ggml.padding_token_id", "u32", tok2id[tc["pad_token"]])
    w.add("tokenizer.ggml.add_bos_token", "bool", False)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("out")
    ap.add_argument("--type", choices=sorted(GGML), default="f32")
    ap.add_argument("--no-tokenizer", action="store_true")
    a = ap.parse_args()
    cfg = json.load(open(os.path.join(a.model_dir, "config.json")))
    arch = cfg["model_type"]
    if arch not in ("qwen2", "qwen3"):
        raise SystemExit(f"model_type {arch}: only qwen2 / qwen3")
    t = read_checkpoint(a.model_dir)
    L = cfg["num_hidden_layers"]
    H = cfg["num_attention_heads"]
    w = Writer()
    w.add("general.architecture", "str", arch)
    w.add("general.name", "str", os.path.basename(os.path.abspath(a.model_dir)))
    w.add("general.file_type", "u32", FILE_TYPE[a.type])
    w.add(f"{arch}.context_length", "u32", cfg.get("max_position_embeddings", 32768))
    w.add(f"{arch}.embedding_length", "u32", cfg["hidden_size"])
    w.add(f"{arch}.feed_forward_length", "u32", cfg["intermediate_size"])
    w.add(f"{arch}.block_count", "u32", L)
    w.add(f"{arch}.attention.head_count", "u32", H)
    w.add(f"{arch}.attention.head_count_kv", "u32", cfg.get("num_key_value_heads") or H)
    w.add(f"{arch}.rope.freq_base", "f32", float(cfg.get("rope_theta", 10000.0)))
    w.add(f"{arch}.attention.layer_norm_rms_epsilon", "f32", float(cfg.get("rms_norm_eps", 1e-6)))
    if cfg.get("head_dim"):
        w.add(f"{arch}.attention.key_length", "u32", cfg["head_dim"])
        w.add(f"{arch}.attention.value_length", "u32", cfg["head_dim"])
    if not a.no_tokenizer:
        tokenizer_kv(w, a.model_dir, cfg, cfg["vocab_size"])

    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    per_layer = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
                 "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
                 "self_attn.o_proj": "attn_output", "self_attn.q_norm": "attn_q_norm",
                 "self_attn.k_norm": "attn_k_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
                 "mlp.down_proj": "ffn_down"}
    for l in range(L):
        for hf, gg in per_layer.items():
            for sfx in ("weight", "bias"):
                names[f"model.layers.{l}.{hf}.{sfx}"] = f"blk.{l}.{gg}.{sfx}"
    tied = cfg.get("tie_word_embeddings", False)
    for hf, x in t.items():
        if hf not in names:
            print(f"skipping {hf}", file=sys.stderr)
            continue
        if hf == "lm_head.weight" and tied:
            continue
        ty = a.type if x.ndim == 2 else "f32"
        if ty == "q8_0" and x.shape[-1] % 32:
            ty = "f16"  # as llama.cpp: rows that do not split into blocks fall back
        w.tensors.append((names[hf], list(x.shape), GGML[ty], encode(x, ty)))
    w.write(a.out)


if __name__ == "__main__":
    main()
