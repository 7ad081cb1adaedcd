#!/usr/bin/python3
"""Reference for tests/test_optim.c: torch.optim.AdamW + clip_grad_norm_ on a
tiny least-squares problem, W (3, 4) with weight decay, b (3) without.
Inputs are closed-form so the C test rebuilds them exactly:
  W0[i][j] = 0.1 * (i - j) + 0.05, b0[i] = 0.2 - 0.1 * i,
  X[n][j] = sin(n + 2 j), Y[n][i] = cos(n - i)  (n < 5).
Loss = mean((X W^T + b - Y)^2). Six steps, lr 0.05 * (s + 1) / 6 (step s,
0-based), betas (0.9, 0.99), eps 1e-6, weight_decay 0.1 on W only, clip to
max_norm 0.5 every step. Writes one line per step: grad norm before clipping,
then W (12 values) and b (3 values) after the step."""
import math
import torch

torch.set_default_dtype(torch.float32)
W = torch.tensor([[0.1 * (i - j) + 0.05 for j in range(4)] for i in range(3)], requires_grad=True)
b = torch.tensor([0.2 - 0.1 * i for i in range(3)], requires_grad=True)
X = torch.tensor([[math.sin(n + 2 * j) for j in range(4)] for n in range(5)])
Y = torch.tensor([[math.cos(n - i) for i in range(3)] for n in range(5)])
opt = torch.optim.AdamW([{"params": [W], "weight_decay": 0.1}, {"params": [b], "weight_decay": 0.0}],
                        lr=0.05, betas=(0.9, 0.99), eps=1e-6)
out = []
for s in range(6):
    for g in opt.param_groups:
        g["lr"] = 0.05 * (s + 1) / 6
    opt.zero_grad()
    loss = ((X @ W.t() + b - Y) ** 2).mean()
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_([W, b], 0.5)
    opt.step()
    vals = [float(norm)] + [float(v) for v in W.detach().flatten()] + [float(v) for v in b.detach()]
    out.append(" ".join("%.9g" % v for v in vals))
with open("tests/data/optim/adamw.txt", "w") as f:
    f.write("\n".join(out) + "\n")
