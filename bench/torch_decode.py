#!/usr/bin/python3
"""PyTorch fp32 reference speed for a Qwen2/Qwen3 Hub folder (transformers
is not installed, so the forward is written here: RMSNorm, GQA attention
with NeoX RoPE and a KV cache, SwiGLU MLP, tied or separate lm_head).

    bench/torch_decode.py MODEL_DIR [--threads 2] [--prompt 512] [--gen 64] [--print-ids]

The prompt is ids 1000, 1001, ... (as bench/bench_decode.sh gives vlens).
Prints prefill and decode tokens/s (greedy, ids only, wall clock; weights
widened to fp32 once at load, not timed) and with --print-ids the generated
ids, to check the forward against `vlens generate --ids`."""
import argparse
import json
import os
import struct
import time

import numpy as np
import torch


def load(d):
    with open(os.path.join(d, "model.safetensors"), "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
    raw = np.memmap(os.path.join(d, "model.safetensors"), dtype=np.uint8, mode="r")
    out = {}
    for k, v in h.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        buf = raw[8 + n + a : 8 + n + b]
        if v["dtype"] == "BF16":
            x = (buf.view("<u2").astype(np.uint32) << 16).view(np.float32)
        elif v["dtype"] == "F16":
            x = buf.view("<f2").astype(np.float32)
        else:
            x = np.array(buf.view("<f4"))
        out[k] = torch.from_numpy(x.reshape(v["shape"]))
    return out


def rms(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope(x, cos, sin):  # x (H, T, D), NeoX halves
    h = x.shape[-1] // 2
    x1, x2 = x[..., :h], x[..., h:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)


class Model:
    def __init__(self, d):
        self.c = json.load(open(os.path.join(d, "config.json")))
        self.w = load(d)
        c = self.c
        self.H, self.KV = c["num_attention_heads"], c["num_key_value_heads"]
        self.D = c.get("head_dim") or c["hidden_size"] // self.H
        self.eps = c.get("rms_norm_eps", 1e-6)
        self.qk_norm = c["model_type"] == "qwen3"
        self.lm = self.w.get("lm_head.weight", self.w["model.embed_tokens.weight"])
        inv = 1.0 / (c.get("rope_theta", 10000.0) ** (torch.arange(0, self.D, 2).float() / self.D))
        self.inv = inv

    def forward(self, ids, cache, pos0):
        w, H, KV, D, eps = self.w, self.H, self.KV, self.D, self.eps
        T = len(ids)
        x = w["model.embed_tokens.weight"][ids]
        ang = torch.arange(pos0, pos0 + T).float()[:, None] * self.inv[None]
        cos, sin = ang.cos(), ang.sin()
        for l in range(self.c["num_hidden_layers"]):
            p = f"model.layers.{l}."
            h = rms(x, w[p + "input_layernorm.weight"], eps)
            q = torch.nn.functional.linear(h, w[p + "self_attn.q_proj.weight"], w.get(p + "self_attn.q_proj.bias"))
            k = torch.nn.functional.linear(h, w[p + "self_attn.k_proj.weight"], w.get(p + "self_attn.k_proj.bias"))
            v = torch.nn.functional.linear(h, w[p + "self_attn.v_proj.weight"], w.get(p + "self_attn.v_proj.bias"))
            q = q.view(T, H, D).transpose(0, 1)
            k = k.view(T, KV, D).transpose(0, 1)
            v = v.view(T, KV, D).transpose(0, 1)
            if self.qk_norm:
                q = rms(q, w[p + "self_attn.q_norm.weight"], eps)
                k = rms(k, w[p + "self_attn.k_norm.weight"], eps)
            q, k = rope(q, cos, sin), rope(k, cos, sin)
            if l in cache:
                k = torch.cat([cache[l][0], k], 1)
                v = torch.cat([cache[l][1], v], 1)
            cache[l] = (k, v)
            kk = k.repeat_interleave(H // KV, 0)
            vv = v.repeat_interleave(H // KV, 0)
            s = q @ kk.transpose(1, 2) / D ** 0.5
            Tk = kk.shape[1]
            mask = torch.ones(T, Tk).tril(Tk - T) == 0
            s = s.masked_fill(mask, float("-inf")).softmax(-1)
            a = (s @ vv).transpose(0, 1).reshape(T, H * D)
            x = x + torch.nn.functional.linear(a, w[p + "self_attn.o_proj.weight"])
            h = rms(x, w[p + "post_attention_layernorm.weight"], eps)
            g = torch.nn.functional.linear(h, w[p + "mlp.gate_proj.weight"])
            u = torch.nn.functional.linear(h, w[p + "mlp.up_proj.weight"])
            x = x + torch.nn.functional.linear(torch.nn.functional.silu(g) * u, w[p + "mlp.down_proj.weight"])
        x = rms(x[-1:], w["model.norm.weight"], eps)
        return torch.nn.functional.linear(x, self.lm)[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--gen", type=int, default=64)
    ap.add_argument("--print-ids", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    m = Model(a.model)
    ids = torch.arange(1000, 1000 + a.prompt)
    out = []
    with torch.no_grad():
        cache = {}
        t0 = time.perf_counter()
        tok = int(m.forward(ids, cache, 0).argmax())
        t1 = time.perf_counter()
        out.append(tok)
        for i in range(a.gen):
            tok = int(m.forward(torch.tensor([tok]), cache, a.prompt + i).argmax())
            out.append(tok)
        t2 = time.perf_counter()
    if a.print_ids:
        print("ids:", " ".join(map(str, out)))
    print(f"torch fp32: prefill {a.prompt / (t1 - t0):.1f} tok/s, decode {a.gen / (t2 - t1):.2f} tok/s")


if __name__ == "__main__":
    main()
