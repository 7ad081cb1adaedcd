#!/usr/bin/python3
"""ViT-B/16 at 224 px in PyTorch fp32, the peer of bench/bench_vit.c: same
config, random weights, forward under no_grad, and forward + backward to the
input image with weights not requiring grad. Best of --reps.

Run with Debian's Python (torch 1.13): /usr/bin/python3 bench/vit_torch.py --threads 1
"""
import argparse
import math
import time

import torch
import torch.nn.functional as F

D, H, HD, MLP, P, IMG, T = 768, 12, 64, 3072, 16, 224, 197


def make(nl):
    g = torch.Generator().manual_seed(0)

    def r(*s, scale=0.02, off=0.0):
        return off + scale * (torch.rand(*s, generator=g) * 2 - 1)

    w = dict(wp=r(D, 3 * P * P), bp=r(D), cls=r(1, 1, D), pos=r(1, T, D),
             lnw=r(D, scale=0.1, off=1.0), lnb=r(D))
    w["layers"] = [dict(ln1w=r(D, scale=0.1, off=1.0), ln1b=r(D), wq=r(D, D), bq=r(D),
                        wk=r(D, D), bk=r(D), wv=r(D, D), bv=r(D), wo=r(D, D), bo=r(D),
                        ln2w=r(D, scale=0.1, off=1.0), ln2b=r(D), w1=r(MLP, D), b1=r(MLP),
                        w2=r(D, MLP), b2=r(D)) for _ in range(nl)]
    return w


def block(x, L):
    h = F.layer_norm(x, (D,), L["ln1w"], L["ln1b"], 1e-6)
    q = F.linear(h, L["wq"], L["bq"]).view(1, T, H, HD).transpose(1, 2)
    k = F.linear(h, L["wk"], L["bk"]).view(1, T, H, HD).transpose(1, 2)
    v = F.linear(h, L["wv"], L["bv"]).view(1, T, H, HD).transpose(1, 2)
    a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(HD), dim=-1) @ v
    x = x + F.linear(a.transpose(1, 2).reshape(1, T, D), L["wo"], L["bo"])
    h = F.layer_norm(x, (D,), L["ln2w"], L["ln2b"], 1e-6)
    return x + F.linear(F.gelu(F.linear(h, L["w1"], L["b1"])), L["w2"], L["b2"])


def vit(img, w):
    x = F.conv2d(img, w["wp"].view(D, 3, P, P), w["bp"], stride=P).flatten(2).transpose(1, 2)
    x = torch.cat([w["cls"], x], dim=1) + w["pos"]
    for L in w["layers"]:
        x = block(x, L)
    return F.layer_norm(x, (D,), w["lnw"], w["lnb"], 1e-6)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--layers", type=int, default=12)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    w = make(a.layers)
    img = torch.rand(1, 3, IMG, IMG) * 2 - 1
    best_f = best_fb = cpu_f = cpu_fb = 1e30
    for _ in range(a.reps):
        with torch.no_grad():
            t0, u0 = time.perf_counter(), time.process_time()
            y = vit(img, w)
            best_f = min(best_f, time.perf_counter() - t0)
            cpu_f = min(cpu_f, time.process_time() - u0)
        x = img.clone().requires_grad_(True)
        t0, u0 = time.perf_counter(), time.process_time()
        y = vit(x, w)
        y.sum().backward()
        best_fb = min(best_fb, time.perf_counter() - t0)
        cpu_fb = min(cpu_fb, time.process_time() - u0)
    print(f"vit-b16 torch{torch.__version__} threads={a.threads} layers={a.layers} "
          f"fwd_s={best_f:.4f} fwdbwd_s={best_fb:.4f} fwd_cpu_s={cpu_f:.4f} fwdbwd_cpu_s={cpu_fb:.4f}")


if __name__ == "__main__":
    main()
