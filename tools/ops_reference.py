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
