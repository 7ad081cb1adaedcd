#!/usr/bin/python3
"""Reference values for tests/test_grad_*.c from PyTorch (run with Debian's
/usr/bin/python3, which has torch 1.13). Prints C initialisers to paste."""
import torch
import torch.nn.functional as F

torch.set_printoptions(precision=8)
x = torch.tensor([-3, -1, -0.5, 0, 0.5, 1, 3], dtype=torch.float64)
acts = {
    "relu": F.relu(x),
    "gelu": F.gelu(x),
    "gelu_tanh": F.gelu(x, approximate="tanh"),
    "quick_gelu": x * torch.sigmoid(1.702 * x),
    "silu": F.silu(x),
    "sigmoid": torch.sigmoid(x),
    "tanh": torch.tanh(x),
}
for k, v in acts.items():
    print(k, ", ".join("%.8ff" % f for f in v.tolist()))

# softmax / log_softmax / layernorm / rmsnorm / cross_entropy on a fixed row.
r = torch.tensor([[1.0, 2.0, 3.0, 4.0], [-1.0, 0.5, 0.0, 2.5]], dtype=torch.float64)
print("softmax", ", ".join("%.8ff" % f for f in F.softmax(r, -1).flatten().tolist()))
print("log_softmax", ", ".join("%.8ff" % f for f in F.log_softmax(r, -1).flatten().tolist()))
w = torch.tensor([0.5, -1.0, 2.0, 1.5], dtype=torch.float64)
b = torch.tensor([0.1, 0.2, -0.3, 0.0], dtype=torch.float64)
print("layernorm", ", ".join("%.8ff" % f for f in F.layer_norm(r, (4,), w, b, 1e-5).flatten().tolist()))
rms = r * torch.rsqrt(r.pow(2).mean(-1, keepdim=True) + 1e-6) * w
print("rmsnorm", ", ".join("%.8ff" % f for f in rms.flatten().tolist()))
t = torch.tensor([3, 1])
print("cross_entropy", "%.8ff" % F.cross_entropy(r, t).item())
print("cross_entropy_ignore", "%.8ff" % F.cross_entropy(r, torch.tensor([-100, 2]), ignore_index=-100).item())

# Gradients through layernorm -> gelu -> log_softmax -> cross_entropy with
# weights, for test_grad_norm.c's composed check against autograd.
xg = r.clone().requires_grad_(True)
wg = w.clone().requires_grad_(True)
bg = b.clone().requires_grad_(True)
h = F.layer_norm(xg, (4,), wg, bg, 1e-5)
h = F.gelu(h)
h = F.rms_norm(h, (4,), eps=1e-6) if hasattr(F, "rms_norm") else h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-6)
loss = F.cross_entropy(F.softmax(h, -1) * 3.0, torch.tensor([2, 0]))
loss.backward()
print("composed_loss", "%.8ff" % loss.item())
for name, g in (("composed_dx", xg.grad), ("composed_dw", wg.grad), ("composed_db", bg.grad)):
    print(name, ", ".join("%.8ff" % f for f in g.flatten().tolist()))
