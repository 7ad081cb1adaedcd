#!/usr/bin/python3
"""PyTorch references for attention, RoPE, patch embedding and whole
transformer blocks, written under tests/data/blocks/ for tests/test_blocks.c
and tests/test_grad_rope.c.

Run with Debian's interpreter (torch 1.13):  /usr/bin/python3 tools/gen_block_goldens.py

File format (read by tests/goldens.c), a sequence of tensors, each:
    an ASCII header line  "name ndim d0 d1 ... d{ndim-1}\\n"
    followed by prod(d) little-endian float32 values.
Integer data (positions) is stored as float32 (exact for the small values
used here).

The RoPE variants are re-implemented here exactly as in Hugging Face
transformers (Qwen2VLRotaryEmbedding + apply_multimodal_rotary_pos_emb,
Qwen3VLTextRotaryEmbedding.apply_interleaved_mrope, Qwen2-VL
VisionRotaryEmbedding + rot_pos_emb); what is stored is the final cos/sin
tables the models multiply with, so the C side is checked end to end.
Gradients are of s = sum(out * R) for a fixed random R (also stored)."""
import os

import numpy as np
import torch
import torch.nn.functional as F

torch.manual_seed(1234)
torch.set_default_dtype(torch.float32)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "blocks")


class Writer:
    def __init__(self, name):
        self.path = os.path.join(OUT, name)
        self.f = open(self.path, "wb")

    def put(self, name, t):
        a = np.ascontiguousarray(t.detach().cpu().numpy() if torch.is_tensor(t) else t, dtype="<f4")
        hdr = "%s %d %s\n" % (name, a.ndim, " ".join(str(d) for d in a.shape))
        self.f.write(hdr.replace("  ", " ").encode())
        self.f.write(a.tobytes())

    def close(self):
        self.f.close()


def rand(*shape, scale=1.0):
    return (torch.rand(*shape) * 2 - 1) * scale


# ---- RoPE, as in transformers ------------------------------------------

def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def text_inv_freq(dim, base):
    return 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))


def qwen2vl_freqs(position_ids, dim, base):
    """Qwen2VLRotaryEmbedding.forward up to freqs: position_ids (3, B, T)."""
    inv_freq = text_inv_freq(dim, base)
    inv_freq_expanded = inv_freq[None, None, :, None].float().expand(3, position_ids.shape[1], -1, 1)
    position_ids_expanded = position_ids[:, :, None, :].float()
    return (inv_freq_expanded.float() @ position_ids_expanded.float()).transpose(2, 3)


def mrope_cos_sin(position_ids, dim, base, section):
    """Qwen2-VL: cos/sin, then apply_multimodal_rotary_pos_emb's selection."""
    freqs = qwen2vl_freqs(position_ids, dim, base)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    sec = list(section) * 2
    cos = torch.cat([m[i % 3] for i, m in enumerate(cos.split(sec, dim=-1))], dim=-1)
    sin = torch.cat([m[i % 3] for i, m in enumerate(sin.split(sec, dim=-1))], dim=-1)
    return cos, sin  # (B, T, dim)


def interleaved_cos_sin(position_ids, dim, base, section):
    """Qwen3-VL: apply_interleaved_mrope on the freqs, then cos/sin."""
    freqs = qwen2vl_freqs(position_ids, dim, base)
    freqs_t = freqs[0].clone()
    for d, offset in enumerate((1, 2), start=1):
        length = section[d] * 3
        idx = slice(offset, length, 3)
        freqs_t[..., idx] = freqs[d, ..., idx]
    emb = torch.cat((freqs_t, freqs_t), dim=-1)
    return emb.cos(), emb.sin()


def vision_rot_pos(grid_thw, merge):
    """Qwen2VisionTransformer.rot_pos_emb position ids: (N, 2) of (h, w)."""
    pos_ids = []
    for t, h, w in grid_thw:
        hpos = torch.arange(h).unsqueeze(1).expand(-1, w)
        hpos = hpos.reshape(h // merge, merge, w // merge, merge).permute(0, 2, 1, 3).flatten()
        wpos = torch.arange(w).unsqueeze(0).expand(h, -1)
        wpos = wpos.reshape(h // merge, merge, w // merge, merge).permute(0, 2, 1, 3).flatten()
        pos_ids.append(torch.stack([hpos, wpos], dim=-1).repeat(t, 1))
    return torch.cat(pos_ids, dim=0)


def vision_cos_sin(pos_ids, head_dim, theta):
    dim = head_dim // 2  # VisionRotaryEmbedding(head_dim // 2)
    inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float) / dim))
    max_grid = int(pos_ids.max()) + 1
    seq = torch.arange(max_grid, dtype=inv_freq.dtype)
    full = torch.outer(seq, inv_freq)
    rot = full[pos_ids].flatten(1)
    emb = torch.cat((rot, rot), dim=-1)
    return emb.cos(), emb.sin()


def mrope_positions():
    """3 text tokens, a 1x2x3 image grid, 2 text tokens (get_rope_index style)."""
    t, h, w = [], [], []
    for i in range(3):
        t.append(i); h.append(i); w.append(i)
    for hh in range(2):
        for ww in range(3):
            t.append(3); h.append(3 + hh); w.append(3 + ww)
    nxt = max(max(t), max(h), max(w)) + 1
    for i in range(2):
        t.append(nxt + i); h.append(nxt + i); w.append(nxt + i)
    return torch.tensor([t, h, w], dtype=torch.int64)  # (3, T)


def gen_ops():
    w = Writer("ops.bin")
    # 1-D
    pos1 = torch.tensor([0, 1, 2, 5, 9, 100, 4095], dtype=torch.int64)
    freqs = pos1[:, None].float() * text_inv_freq(16, 10000.0)[None, :]
    emb = torch.cat((freqs, freqs), -1)
    w.put("rope1d.pos", pos1.float())
    w.put("rope1d.cos", emb.cos())
    w.put("rope1d.sin", emb.sin())
    # M-RoPE, Qwen2-VL sections, head_dim 16
    pos3 = mrope_positions()
    T = pos3.shape[1]
    cos, sin = mrope_cos_sin(pos3[:, None, :], 16, 1000000.0, [2, 3, 3])
    w.put("mrope.pos3", pos3.float())
    w.put("mrope.cos", cos[0])
    w.put("mrope.sin", sin[0])
    # Interleaved (Qwen3-VL), head_dim 32, sections [6, 5, 5]
    cos, sin = interleaved_cos_sin(pos3[:, None, :], 32, 5000000.0, [6, 5, 5])
    w.put("imrope.cos", cos[0])
    w.put("imrope.sin", sin[0])
    # 2-D vision, grid 1 x 4 x 6, merge 2, head_dim 16
    pid = vision_rot_pos([(1, 4, 6)], 2)
    cos, sin = vision_cos_sin(pid, 16, 10000.0)
    w.put("vis.row", pid[:, 0].float())
    w.put("vis.col", pid[:, 1].float())
    w.put("vis.cos", cos)
    w.put("vis.sin", sin)
    # rope application with partial rotary: x (B=2, T, H=3, D=20), R = 16,
    # using the M-RoPE cos/sin (batch-shared), as q * cos + rotate_half(q) * sin
    cos, sin = mrope_cos_sin(pos3[:, None, :], 16, 1000000.0, [2, 3, 3])
    x = rand(2, T, 3, 20)
    xr, xp = x[..., :16], x[..., 16:]
    y = torch.cat((xr * cos[:, :, None, :] + rotate_half(xr) * sin[:, :, None, :], xp), -1)
    w.put("ropeapply.x", x)
    w.put("ropeapply.y", y)
    # patch embedding: conv2d and conv3d with stride == kernel
    x2 = rand(2, 3, 8, 12)
    w2 = rand(5, 3, 4, 4)
    y2 = F.conv2d(x2, w2, stride=4)  # (2, 5, 2, 3)
    w.put("patch2d.x", x2)
    w.put("patch2d.w", w2)
    w.put("patch2d.y", y2.flatten(2).transpose(1, 2))  # (B, patches, out)
    x3 = rand(1, 3, 4, 8, 8)
    w3 = rand(5, 3, 2, 4, 4)
    y3 = F.conv3d(x3, w3, stride=(2, 4, 4))  # (1, 5, 2, 2, 2)
    w.put("patch3d.x", x3)
    w.put("patch3d.w", w3)
    w.put("patch3d.y", y3.flatten(2).transpose(1, 2))
    # cross-attention with GQA and an additive mask: q (2, 3, 4, 8), k/v
    # (2, 5, 2, 8), mask (2, 1, 1, 5) with -inf on some keys
    q = rand(2, 3, 4, 8)
    k = rand(2, 5, 2, 8)
    v = rand(2, 5, 2, 8)
    mask = torch.zeros(2, 1, 1, 5)
    mask[0, 0, 0, 4] = float("-inf")
    mask[1, 0, 0, 0] = float("-inf")
    mask[1, 0, 0, 2] = -1.5
    qh = q.transpose(1, 2)
    kh = k.repeat_interleave(2, dim=2).transpose(1, 2)
    vh = v.repeat_interleave(2, dim=2).transpose(1, 2)
    scores = qh @ kh.transpose(-1, -2) * 0.35 + mask
    p = torch.softmax(scores, -1)
    w.put("xattn.q", q)
    w.put("xattn.k", k)
    w.put("xattn.v", v)
    w.put("xattn.mask", mask)
    w.put("xattn.probs", p)
    w.put("xattn.out", (p @ vh).transpose(1, 2))
    w.close()


# ---- blocks -------------------------------------------------------------

def gen_vit():
    B, T, d, H, mlp = 2, 9, 32, 4, 64
    hd = d // H
    P = {
        "ln1.w": 1 + rand(d, scale=0.2), "ln1.b": rand(d, scale=0.1),
        "q.w": rand(d, d, scale=0.3), "q.b": rand(d, scale=0.1),
        "k.w": rand(d, d, scale=0.3), "k.b": rand(d, scale=0.1),
        "v.w": rand(d, d, scale=0.3), "v.b": rand(d, scale=0.1),
        "o.w": rand(d, d, scale=0.3), "o.b": rand(d, scale=0.1),
        "ln2.w": 1 + rand(d, scale=0.2), "ln2.b": rand(d, scale=0.1),
        "fc1.w": rand(mlp, d, scale=0.3), "fc1.b": rand(mlp, scale=0.1),
        "fc2.w": rand(d, mlp, scale=0.2), "fc2.b": rand(d, scale=0.1),
    }
    for t in P.values():
        t.requires_grad_(True)
    x = rand(B, T, d).requires_grad_(True)
    h = F.layer_norm(x, (d,), P["ln1.w"], P["ln1.b"], 1e-6)
    q = F.linear(h, P["q.w"], P["q.b"]).view(B, T, H, hd).transpose(1, 2)
    k = F.linear(h, P["k.w"], P["k.b"]).view(B, T, H, hd).transpose(1, 2)
    v = F.linear(h, P["v.w"], P["v.b"]).view(B, T, H, hd).transpose(1, 2)
    probs = torch.softmax(q @ k.transpose(-1, -2) * hd ** -0.5, dim=-1)
    a = (probs @ v).transpose(1, 2).reshape(B, T, d)
    x1 = x + F.linear(a, P["o.w"], P["o.b"])
    h2 = F.layer_norm(x1, (d,), P["ln2.w"], P["ln2.b"], 1e-6)
    y = x1 + F.linear(F.gelu(F.linear(h2, P["fc1.w"], P["fc1.b"])), P["fc2.w"], P["fc2.b"])
    R = rand(B, T, d)
    (y * R).sum().backward()
    w = Writer("vit_block.bin")
    w.put("x", x)
    for n, t in P.items():
        w.put(n, t)
    w.put("R", R)
    w.put("y", y)
    w.put("probs", probs)
    w.put("grad.x", x.grad)
    for n, t in P.items():
        w.put("grad." + n, t.grad)
    w.close()


def rms_norm(x, w, eps):
    var = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


def gen_decoder():
    pos3 = mrope_positions()
    B, T, d, Hq, Hkv, hd, inter = 2, pos3.shape[1], 32, 4, 2, 16, 64
    eps, theta, section = 1e-6, 1000000.0, [2, 3, 3]
    P = {
        "ln1.w": 1 + rand(d, scale=0.2),
        "q.w": rand(Hq * hd, d, scale=0.3), "q.b": rand(Hq * hd, scale=0.1),
        "k.w": rand(Hkv * hd, d, scale=0.3), "k.b": rand(Hkv * hd, scale=0.1),
        "v.w": rand(Hkv * hd, d, scale=0.3), "v.b": rand(Hkv * hd, scale=0.1),
        "qn.w": 1 + rand(hd, scale=0.2), "kn.w": 1 + rand(hd, scale=0.2),
        "o.w": rand(d, Hq * hd, scale=0.2),
        "ln2.w": 1 + rand(d, scale=0.2),
        "gate.w": rand(inter, d, scale=0.3), "up.w": rand(inter, d, scale=0.3),
        "down.w": rand(d, inter, scale=0.2),
    }
    for t in P.values():
        t.requires_grad_(True)
    x = rand(B, T, d).requires_grad_(True)
    cos, sin = mrope_cos_sin(pos3[:, None, :].expand(3, B, T), hd, theta, section)
    cos, sin = cos[:, None], sin[:, None]  # (B, 1, T, hd)
    h = rms_norm(x, P["ln1.w"], eps)
    q = rms_norm(F.linear(h, P["q.w"], P["q.b"]).view(B, T, Hq, hd), P["qn.w"], eps).transpose(1, 2)
    k = rms_norm(F.linear(h, P["k.w"], P["k.b"]).view(B, T, Hkv, hd), P["kn.w"], eps).transpose(1, 2)
    v = F.linear(h, P["v.w"], P["v.b"]).view(B, T, Hkv, hd).transpose(1, 2)
    q = q * cos + rotate_half(q) * sin
    k = k * cos + rotate_half(k) * sin
    k = k.repeat_interleave(Hq // Hkv, dim=1)  # repeat_kv
    v = v.repeat_interleave(Hq // Hkv, dim=1)
    causal = torch.full((T, T), float("-inf")).triu(1)
    probs = torch.softmax(q @ k.transpose(-1, -2) * hd ** -0.5 + causal, dim=-1)
    a = (probs @ v).transpose(1, 2).reshape(B, T, Hq * hd)
    x1 = x + F.linear(a, P["o.w"])
    h2 = rms_norm(x1, P["ln2.w"], eps)
    y = x1 + F.linear(F.silu(F.linear(h2, P["gate.w"])) * F.linear(h2, P["up.w"]), P["down.w"])
    R = rand(B, T, d)
    (y * R).sum().backward()
    w = Writer("decoder_block.bin")
    w.put("pos3", pos3.float())
    w.put("x", x)
    for n, t in P.items():
        w.put(n, t)
    w.put("R", R)
    w.put("y", y)
    w.put("probs", probs)
    w.put("grad.x", x.grad)
    for n, t in P.items():
        w.put("grad." + n, t.grad)
    w.close()


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    gen_ops()
    gen_vit()
    gen_decoder()
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print("wrote %s (%d bytes)" % (OUT, total))
