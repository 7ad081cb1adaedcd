#!/usr/bin/env python3
"""Does a captioner order its phrases by x? Two measurements on a Shapes World set.

    tools/order_probe.py SET_DIR [-m MODEL] [--vlens build/rel/vlens] [--probe-scenes 60]

1. Mirror test: every 2-object scene is captioned as it is and mirrored left to
   right (a mirrored scene is a valid scene: every shape is symmetric about its
   vertical axis). A model that orders by x reverses its phrases on the mirror;
   one that ignores x writes the same caption twice.
2. Linear probe: `vlens dump` writes vision_out (the tokens the text decoder
   cross-attends to); a least-squares fit on 2/3 of the patch tokens predicts
   each token's patch column (and row), and R^2 on the other 1/3 says how much
   of x (and y) is linearly there, over all tokens and over tokens mostly
   covered by an object. Relation hypotheses need both.

Needs numpy and PIL (Debian: python3-numpy, python3-pil).
"""
import argparse
import json
import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image


def run(vlens, *args):
    return subprocess.run([vlens, *args], capture_output=True, text=True, check=False).stdout


def vision_out(path):
    raw = Path(path).read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    info = json.loads(raw[8 : 8 + n])["vision_out"]
    s, e = info["data_offsets"]
    return np.frombuffer(raw[8 + n + s : 8 + n + e], dtype="<f4").reshape(info["shape"])


def r2(x, y):
    x, y = np.asarray(x), np.asarray(y, dtype=float)
    idx = np.random.RandomState(0).permutation(len(y))
    tr, te = idx[: len(y) * 2 // 3], idx[len(y) * 2 // 3 :]
    a = np.c_[x, np.ones(len(y))]
    w = np.linalg.lstsq(a[tr], y[tr], rcond=None)[0]
    return 1 - ((a[te] @ w - y[te]) ** 2).mean() / y[te].var()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("set")
    ap.add_argument("-m", "--model", default="models/shapes-blip")
    ap.add_argument("--vlens", default="build/rel/vlens")
    ap.add_argument("--probe-scenes", type=int, default=60)
    a = ap.parse_args()
    m = ["-m", a.model]
    rows = [json.loads(l) for l in open(Path(a.set) / "manifest.jsonl")]
    tmp = Path(tempfile.mkdtemp())
    same = reversed_ = other = 0
    for r in rows:
        if len(r["objects"]) != 2:
            continue
        img = Path(a.set) / r["image"]
        Image.open(img).transpose(Image.FLIP_LEFT_RIGHT).save(tmp / "mirror.png")
        cap = [run(a.vlens, "describe", str(p), *m, "--explain", "none", "-t", "1").strip()
               for p in (img, tmp / "mirror.png")]
        p0, p1 = (c.rstrip(".").split(" and ") for c in cap)
        same += p0 == p1
        reversed_ += p0 != p1 and p0 == p1[::-1]
        other += p0 != p1 and p0 != p1[::-1]
    print(f"mirror test, {same + reversed_ + other} two-object scenes: same caption {same}, "
          f"phrases reversed {reversed_}, other {other}")
    xs, ys, oxs, oys = [], [], [], []  # ys / oys: (column, row) of each token
    for r in rows[: a.probe_scenes]:
        run(a.vlens, "dump", *m, "--image", str(Path(a.set) / r["image"]), "--prompt", "a",
            "-o", str(tmp / "d.safetensors"))
        v = vision_out(tmp / "d.safetensors")[1:]
        g = int(round(len(v) ** 0.5))
        cell = 96 // g
        mask = np.array(Image.open(Path(a.set) / r["mask"]))
        for t in range(g * g):
            row, col = divmod(t, g)
            xs.append(v[t])
            ys.append((col, row))
            if (mask[row * cell : (row + 1) * cell, col * cell : (col + 1) * cell] > 0).mean() > 0.5:
                oxs.append(v[t])
                oys.append((col, row))
    ys, oys = np.array(ys), np.array(oys)
    for i, name in enumerate(("column", "row")):
        print(f"linear probe of the patch {name} from vision_out ({a.probe_scenes} scenes): "
              f"R^2 {r2(xs, ys[:, i]):.3f} over {len(ys)} tokens, {r2(oxs, oys[:, i]):.3f} over "
              f"{len(oys)} object tokens")


if __name__ == "__main__":
    main()
