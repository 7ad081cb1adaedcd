#!/usr/bin/env python3
"""Adds linear x and y ramps to a BLIP ViT position table (a training recipe step).

    tools/add_position_ramp.py SRC_DIR DST_DIR [--dims 4] [--amplitude 0.5]

Copies the model folder SRC_DIR to DST_DIR and, in model.safetensors, adds to
`vision_model.embeddings.position_embedding` (1, 1 + g*g, D) a ramp that grows
linearly with the patch column in the first `dims` channels and with the patch
row in the next `dims` channels, from -amplitude (first column / row) to
+amplitude (last); the class row is left alone.

Why: the shapes-blip model of 2026-11-22 (stage 2) captioned a scene and its
mirror image the same way in 39 of 40 two-object scenes, so it orders the
phrases without regard to x, at chance. Its position table is a sine-cosine
code (plus training), whose only monotonic components are the slowest ones,
of tiny amplitude; a ramp gives every patch token a coordinate the cross-
attention can compare directly. `vlens train --init-from DST_DIR` then
fine-tunes from it. Needs only numpy (the safetensors format is read and
written by hand: a JSON header and raw little-endian tensors).
"""
import argparse
import json
import shutil
import struct
from pathlib import Path

import numpy as np

NAME = "vision_model.embeddings.position_embedding"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--dims", type=int, default=4)
    ap.add_argument("--amplitude", type=float, default=0.5)
    a = ap.parse_args()
    src, dst = Path(a.src), Path(a.dst)
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.is_file() and f.name not in ("model.safetensors", "optimizer.safetensors"):
            shutil.copy(f, dst / f.name)
    raw = (src / "model.safetensors").read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    body = bytearray(raw[8 + n :])
    info = header[NAME]
    if info["dtype"] != "F32":
        raise SystemExit(f"{NAME}: expected F32, found {info['dtype']}")
    s, e = info["data_offsets"]
    shape = info["shape"]
    pe = np.frombuffer(bytes(body[s:e]), dtype="<f4").reshape(shape).copy()
    tokens, width = shape[1], shape[2]
    g = int(round((tokens - 1) ** 0.5))
    if g * g != tokens - 1 or 2 * a.dims > width:
        raise SystemExit(f"{NAME}: shape {shape} is not 1 + g*g tokens with >= {2 * a.dims} channels")
    ramp = np.linspace(-a.amplitude, a.amplitude, g, dtype=np.float32)
    grid = pe[0, 1:].reshape(g, g, width)  # (row, column, channel), row-major like the patches
    grid[:, :, : a.dims] += ramp[None, :, None]  # x: the column
    grid[:, :, a.dims : 2 * a.dims] += ramp[:, None, None]  # y: the row
    pe[0, 1:] = grid.reshape(g * g, width)
    body[s:e] = pe.astype("<f4").tobytes()
    (dst / "model.safetensors").write_bytes(raw[: 8 + n] + bytes(body))
    print(f"{dst}: ramps of +-{a.amplitude} over {g} columns / rows in channels "
          f"0-{a.dims - 1} (x) and {a.dims}-{2 * a.dims - 1} (y)")


if __name__ == "__main__":
    main()
