#!/usr/bin/env python3
"""Where does each cross-attention head look for a caption word? A breakdown of
the `attention` pointing game on a Shapes World set.

    tools/pointing_by_head.py SET_DIR [-m MODEL] [--vlens build/rel/vlens] [--scenes N]

For every scene the model captions exactly, every colour and shape word is
explained (`vlens describe --method attention --layer all --heads --json`) and
its map scored as shared/spec/shapes-world.md scores it: a hit when the peak
cell's centre lies in the word's object box grown by 4 px. The table has one row
per word kind and one column per map: the method's own map (the last layer,
mean over heads), each decoder layer (mean over heads) and each head of the last
layer. A miss is also classified by where the peak went: on the next object in
caption order, on an earlier one, or on the background.

Plain Python 3; no third-party modules.
"""
import argparse
import json
import subprocess
from collections import defaultdict
from pathlib import Path

COLOURS = {"red", "green", "blue", "yellow"}
SHAPES = {"circle", "square", "triangle"}


def in_box(box, x, y, grow=4):
    return box[0] - grow <= x < box[2] + grow and box[1] - grow <= y < box[3] + grow


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("set_dir")
    ap.add_argument("-m", "--model", default=None)
    ap.add_argument("--vlens", default="build/rel/vlens")
    ap.add_argument("--scenes", type=int, default=300)
    args = ap.parse_args()

    scenes = [json.loads(line) for line in open(Path(args.set_dir) / "manifest.jsonl")][: args.scenes]
    hits = defaultdict(lambda: [0, 0])  # (kind, map) -> [hits, targets]
    misses = defaultdict(int)  # (kind, where) -> count, for the method's own map
    exact = 0
    for scene in scenes:
        cmd = [args.vlens, "describe", str(Path(args.set_dir) / scene["image"]), "--explain", "all",
               "--method", "attention", "--layer", "all", "--heads", "--json", "-t", "1"]
        if args.model:
            cmd += ["-m", args.model]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise SystemExit(f"vlens describe failed on {scene['image']}: {out.stderr.strip()}")
        doc = json.loads(out.stdout)
        if doc["text"] != scene["caption"]:
            continue
        exact += 1
        objects = scene["objects"]
        phrase = 0
        for word in doc["words"]:
            text = word["text"].strip(".,")
            if text == "and" or word["text"] == ",":
                phrase += 1
                continue
            kind = "colour" if text in COLOURS else "shape" if text in SHAPES else None
            if kind is None:
                continue
            box = objects[phrase]["box"]
            att = word["explanations"]["attention"]
            maps = {"method": att}
            for layer, m in enumerate(att.get("layers", [])):
                maps[f"layer {layer}"] = m
            for m in att.get("heads", []):
                maps[f"head {m['head']}"] = m
            for name, m in maps.items():
                x, y = m["peak"]  # centre of the highest cell, in pixels
                for k in (kind, "both"):
                    hits[(k, name)][0] += in_box(box, x, y)
                    hits[(k, name)][1] += 1
            x, y = att["peak"]
            if not in_box(box, x, y):
                other = [i for i, o in enumerate(objects) if i != phrase and in_box(o["box"], x, y)]
                where = "background" if not other else "next object" if other[0] == phrase + 1 else \
                    "a later object" if other[0] > phrase else "an earlier object"
                misses[(kind, where)] += 1

    names = sorted({name for _, name in hits}, key=lambda n: (n != "method", n))
    print(f"{exact} of {len(scenes)} scenes captioned exactly; pointing game of their colour and shape words")
    print(f"{'map':<12}" + "".join(f"{k:>16}" for k in ("colour", "shape", "both")))
    for name in names:
        row = ""
        for k in ("colour", "shape", "both"):
            h, n = hits[(k, name)]
            row += f"{h / n:>10.3f} ({n:>3})" if n else f"{'-':>16}"
        print(f"{name:<12}{row}")
    print("misses of the method's map (last layer, mean over heads), by where its peak went:")
    for (kind, where), n in sorted(misses.items()):
        print(f"  {kind:<7} {where:<18} {n}")


if __name__ == "__main__":
    main()
