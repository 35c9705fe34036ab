#!/usr/bin/env python3
"""Varied images and their PDQ hashes by Meta's reference (the `pdqhash` package), for
Custos's own PDQ to be checked against (Tests/CustosCoreTests/PDQTests.swift).

usage: reference.py OUT_DIR COUNT SEED

Writes OUT_DIR/NNN.png or .jpg (the image as encoded), OUT_DIR/NNN.rgb (its pixels as Pillow
decodes them, 8-bit RGB row by row) and OUT_DIR/reference.jsonl: one line per image with its
file, width, height, kind, the 256 bits as '0'/'1' (bit k = coefficient (k // 16, k % 16)) and
the quality."""
import json
import math
import random
import sys

import numpy as np
import pdqhash
from PIL import Image, ImageDraw, ImageFilter

out, count, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
nrng = np.random.RandomState(seed)


def size():
    r = rng.random()
    if r < 0.015:
        return rng.randint(2500, 4000), rng.randint(2500, 4000)
    if r < 0.15:
        return rng.randint(32, 64), rng.randint(32, 64)
    return rng.randint(32, 1200), rng.randint(32, 1200)


def noise(w, h):
    return Image.fromarray((nrng.rand(h, w, 3) * 255).astype(np.uint8), "RGB")


def shapes(w, h):
    im = Image.new("RGB", (w, h), tuple(rng.randrange(256) for _ in range(3)))
    d = ImageDraw.Draw(im)
    for _ in range(rng.randint(1, 12)):
        x0, y0 = rng.randrange(w), rng.randrange(h)
        x1, y1 = min(w, x0 + rng.randint(3, w)), min(h, y0 + rng.randint(3, h))
        fill = tuple(rng.randrange(256) for _ in range(3))
        (d.rectangle if rng.random() < 0.5 else d.ellipse)([x0, y0, x1, y1], fill=fill)
    return im


def text(w, h):
    im = Image.new("RGB", (w, h), (255, 255, 255))
    d = ImageDraw.Draw(im)
    words = ["meet", "secret", "photo", "alone", "tonight", "hello", "custos", "0123456789"]
    y = 0
    while y < h:
        d.text((rng.randint(0, 10), y), " ".join(rng.choice(words) for _ in range(8)), fill=(0, 0, 0))
        y += 12
    return im


def gradient(w, h):
    x = np.linspace(0, 1, w)[None, :, None]
    y = np.linspace(0, 1, h)[:, None, None]
    a, b = nrng.rand(3) * 255, nrng.rand(3) * 255
    t = (x * rng.random() + y * rng.random()) / 2 if rng.random() < 0.5 else np.sqrt((x - 0.5) ** 2 + (y - 0.5) ** 2)
    return Image.fromarray(np.clip(a + (b - a) * t, 0, 255).astype(np.uint8), "RGB")


def texture(w, h):
    x = np.arange(w)[None, :]
    y = np.arange(h)[:, None]
    channels = []
    for _ in range(3):
        fx, fy, ph = rng.uniform(0.005, 0.2), rng.uniform(0.005, 0.2), rng.uniform(0, 6.28)
        c = 128 + 60 * np.sin(x * fx + ph) * np.cos(y * fy) + nrng.randn(h, w) * rng.uniform(0, 25)
        channels.append(np.clip(c, 0, 255))
    im = Image.fromarray(np.stack(channels, axis=2).astype(np.uint8), "RGB")
    return im.filter(ImageFilter.GaussianBlur(rng.uniform(0, 2)))


kinds = [("noise", noise), ("shapes", shapes), ("text", text), ("gradient", gradient), ("texture", texture)]
with open(f"{out}/reference.jsonl", "w") as index:
    for n in range(count):
        w, h = size()
        kind, make = kinds[n % len(kinds)]
        im = make(w, h)
        mode = rng.choice(["RGB", "RGB", "L", "RGBA"])
        if mode == "L":
            im = im.convert("L")
        elif mode == "RGBA":
            alpha = Image.fromarray((nrng.rand(h, w) * 255).astype(np.uint8), "L")
            im = im.convert("RGBA")
            im.putalpha(alpha)
        fmt = "jpg" if (mode != "RGBA" and rng.random() < 0.5) else "png"
        name = f"{n:03d}.{fmt}"
        if fmt == "jpg":
            im.save(f"{out}/{name}", quality=rng.randint(40, 95))
        else:
            im.save(f"{out}/{name}")
        decoded = np.asarray(Image.open(f"{out}/{name}").convert("RGB"), dtype=np.uint8)
        bits, quality = pdqhash.compute(decoded)
        with open(f"{out}/{n:03d}.rgb", "wb") as raw:
            raw.write(decoded.tobytes())
        index.write(json.dumps({"file": name, "width": decoded.shape[1], "height": decoded.shape[0], "kind": f"{kind}/{mode}",
                                "bits": "".join(str(int(b)) for b in bits), "quality": int(quality)}) + "\n")
