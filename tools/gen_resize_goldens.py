#!/usr/bin/python3
"""Reference data for tests/test_resize.c and tests/test_image.c, made with
Pillow (run with Debian's /usr/bin/python3, Pillow 9.4):

  tests/data/images/src_*.png            deterministic source images (RGB)
  tests/data/images/resize/*.png         Pillow Image.resize results
  tests/data/images/resize.txt           "source filter width height result"
  tests/data/images/dec_*                one small picture in every format
  tests/data/images/dec_*.rgb            Pillow's open(...).convert("RGB") bytes
  tests/data/images/decode.txt           "file width height expected max_abs_diff"

The test compares resize results byte for byte; decodes of lossless formats
exactly, JPEG/lossy WebP within the stated tolerance (different IDCTs)."""
import io
import math
import os
import sys

import PIL
from PIL import Image, ImageDraw

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "images")

FILTERS = {
    "nearest": Image.NEAREST,
    "bilinear": Image.BILINEAR,
    "bicubic": Image.BICUBIC,
    "lanczos": Image.LANCZOS,
    "box": Image.BOX,
    "hamming": Image.HAMMING,
}


def lcg(seed):
    """Tiny deterministic generator, independent of numpy/random versions."""
    state = seed & 0xFFFFFFFF
    while True:
        state = (1664525 * state + 1013904223) & 0xFFFFFFFF
        yield state >> 24


def noisy_gradient(w, h, seed, amp):
    r = lcg(seed)
    img = Image.new("RGB", (w, h))
    px = img.load()
    for y in range(h):
        for x in range(w):
            base = (x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) * 127 // (w + h))
            px[x, y] = tuple(max(0, min(255, b + (next(r) % (2 * amp + 1)) - amp)) for b in base)
    return img


def shapes(w, h):
    """Hard edges and saturated colours: bicubic overshoots and must clip."""
    img = Image.new("RGB", (w, h), (250, 250, 245))
    d = ImageDraw.Draw(img)
    d.rectangle([8, 10, 40, 45], fill=(255, 0, 0))
    d.ellipse([45, 20, 90, 70], fill=(0, 0, 255))
    d.polygon([(10, 90), (40, 55), (70, 92)], fill=(0, 200, 0))
    d.line([(0, 0), (95, 95)], fill=(0, 0, 0), width=1)
    for i in range(0, w, 6):
        d.point((i, 2), fill=(0, 0, 0))
    return img


def main():
    if not PIL.__version__.startswith("9.4"):
        print("warning: goldens were specified against Pillow 9.4, this is", PIL.__version__,
              file=sys.stderr)
    os.makedirs(os.path.join(OUT, "resize"), exist_ok=True)
    sources = {
        "grad37x23": noisy_gradient(37, 23, 1, 20),
        "shapes96": shapes(96, 96),
        "noise57": noisy_gradient(57, 57, 7, 127),
        "line1x9": noisy_gradient(1, 9, 3, 60),
    }
    main_sizes = [(16, 16), (32, 32), (64, 48), (100, 77), (13, 29), (1, 1), (37, 5)]
    extra_sizes = [(32, 32), (13, 29), (100, 77)]
    lines = []
    for name, img in sources.items():
        img.save(os.path.join(OUT, f"src_{name}.png"))
        for fname, f in FILTERS.items():
            sizes = main_sizes if fname in ("bilinear", "bicubic", "nearest") else extra_sizes
            if name == "line1x9":
                sizes = [(3, 4), (1, 20), (5, 9)]
            for w, h in sizes:
                res = img.resize((w, h), f)
                fn = f"{name}_{fname}_{w}x{h}.png"
                res.save(os.path.join(OUT, "resize", fn))
                lines.append(f"{name} {fname} {w} {h} {fn}")
    with open(os.path.join(OUT, "resize.txt"), "w") as fp:
        fp.write("# source filter width height result  (tools/gen_resize_goldens.py)\n")
        fp.write("\n".join(lines) + "\n")

    # ---- CLIP-style preprocessing: shortest-edge resize, centre crop (odd
    # sizes, and larger than the image: zero padding), rescale, normalise.
    # Transcribed from transformers' image_transforms (get_resize_output_image_size
    # with default_to_square=False, center_crop, rescale, normalize).
    import numpy as np
    mean = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
    std = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)
    pre = []
    for src, shortest, crop_w, crop_h in [("grad37x23", 16, 15, 15), ("grad37x23", 16, 30, 21),
                                          ("shapes96", 40, 33, 17), ("noise57", 20, 24, 9)]:
        img = sources[src]
        w, h = img.size
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = shortest, int(shortest * long / short)
        ow, oh = (new_short, new_long) if w <= h else (new_long, new_short)
        arr = np.asarray(img.resize((ow, oh), Image.BICUBIC)).transpose(2, 0, 1)  # CHW uint8
        top, left = (oh - crop_h) // 2, (ow - crop_w) // 2
        nh, nw = max(crop_h, oh), max(crop_w, ow)
        padded = np.zeros((3, nh, nw), dtype=arr.dtype)
        tp, lp = math.ceil((nh - oh) / 2), math.ceil((nw - ow) / 2)
        padded[:, tp:tp + oh, lp:lp + ow] = arr
        top, left = top + tp, left + lp
        crop = padded[:, max(0, top):min(nh, top + crop_h), max(0, left):min(nw, left + crop_w)]
        x = (crop.astype(np.float64) * (1 / 255)).astype(np.float32)
        x = (x - mean[:, None, None]) / std[:, None, None]
        assert x.shape == (3, crop_h, crop_w) and x.dtype == np.float32
        fn = f"pre_{src}_se{shortest}_crop{crop_w}x{crop_h}.f32"
        x.astype("<f4").tofile(os.path.join(OUT, "resize", fn))
        pre.append(f"{src} {shortest} {crop_w} {crop_h} {fn}")
    with open(os.path.join(OUT, "preprocess.txt"), "w") as fp:
        fp.write("# source shortest_edge crop_w crop_h result_chw_f32  (tools/gen_resize_goldens.py)\n")
        fp.write("\n".join(pre) + "\n")

    # ---- decoder fixtures: the same 13x9 picture in every format ----------
    pic = noisy_gradient(13, 9, 11, 40)
    rgba = pic.copy()
    rgba.putalpha(Image.linear_gradient("L").resize((13, 9)))
    # a GIF with a transparent index: Pillow shows that pixel's palette colour
    pal = pic.quantize(16)
    trans_idx = pal.getpixel((3, 2))
    cases = [
        ("dec_rgb.png", pic, {}, 0),
        ("dec_rgba.png", rgba, {}, 0),
        ("dec_grey.png", pic.convert("L"), {}, 0),
        ("dec_palette.png", pic.quantize(16), {}, 0),
        ("dec_rgb.bmp", pic, {}, 0),
        ("dec_palette.gif", pic.quantize(32), {}, 0),
        ("dec_transparent.gif", pal, {"transparency": trans_idx}, 0),
        ("dec_interlaced.gif", noisy_gradient(11, 23, 5, 30).quantize(64), {"interlace": True}, 0),
        ("dec_lossless.webp", pic, {"lossless": True}, 0),
        ("dec_rgba_lossless.webp", rgba, {"lossless": True}, 0),
        ("dec_lossy.webp", pic, {"quality": 90}, 1),
        ("dec_q90.jpg", pic, {"quality": 90}, 4),
        ("dec_grey.jpg", pic.convert("L"), {"quality": 90}, 4),
        ("dec_progressive.jpg", pic, {"quality": 90, "progressive": True}, 4),
    ]
    # 16-bit greyscale: Pillow opens it as mode "I"; convert("RGB") clips to 255
    vals = [(i * 37) % 300 if i % 2 else (i * 2654435761) % 65536 for i in range(13 * 9)]
    g16 = b"".join(v.to_bytes(2, "little") for v in vals)
    cases.append(("dec_grey16.png", Image.frombuffer("I;16", (13, 9), g16, "raw", "I;16", 0, 1),
                  {}, 0))
    dec = []
    for fn, img, opts, tol in cases:
        path = os.path.join(OUT, fn)
        img.save(path, **opts)
        ref = Image.open(path).convert("RGB")
        with open(path + ".rgb", "wb") as fp:
            fp.write(ref.tobytes())
        dec.append(f"{fn} {ref.width} {ref.height} {fn}.rgb {tol}")
    with open(os.path.join(OUT, "decode.txt"), "w") as fp:
        fp.write("# file width height expected_rgb max_abs_diff  (tools/gen_resize_goldens.py)\n")
        fp.write("\n".join(dec) + "\n")
    # A PNG whose chunks are intact but whose zlib stream stops half-way:
    # stb_image 2.27 inflates zeros past the end of such a stream (and may
    # allocate gigabytes); the decoder must refuse it. Pillow refuses it too.
    import struct
    import zlib
    raw = open(os.path.join(OUT, "dec_rgb.png"), "rb").read()
    pos, chunks = 8, []
    while pos < len(raw):
        n = struct.unpack(">I", raw[pos:pos + 4])[0]
        chunks.append((raw[pos + 4:pos + 8], raw[pos + 8:pos + 8 + n]))
        pos += 12 + n
    out = raw[:8]
    for t, d in chunks:
        if t == b"IDAT":
            d = d[:len(d) // 2]
        out += struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    with open(os.path.join(OUT, "bad_zlib_cut.png"), "wb") as fp:
        fp.write(out)

    print(f"wrote {len(lines)} resize goldens and {len(dec)} decode fixtures to {OUT}")


if __name__ == "__main__":
    main()
