#!/usr/bin/python3
"""Clips of single shapes on plain backgrounds, with ground truth that `ssd-clip score` reads.

The shipped model's training images are shapes on textured backgrounds (and, since its last runs,
plain backgrounds too); these clips check what a camera facing a wall or a plain table shows:
one filled shape a frame, drawn with PIL (not the project's own drawing code), on a flat grey-ish
background or a blurred texture. Needs numpy and PIL (Debian's /usr/bin/python3 has both).

    /usr/bin/python3 scripts/plain-scenes.py OUT        # OUT/<set>/frames/%05d.png + truth.json
    gst-launch-1.0 multifilesrc location=OUT/rect_flat_mid/frames/%05d.png \\
        caps=image/png,framerate=10/1 ! pngdec ! videoconvert ! ssddetect ! \\
        ssdexport location=dets.jsonl ! fakesink
    build/gst-plugin/ssd-clip score --truth OUT/rect_flat_mid/truth.json --detections dets.jsonl

Sets (100 frames of 320x240 each; the fraction is the shape's width over the frame's):
  rect_flat_{small,mid,large}    axis-aligned rectangles, 10-20 / 25-50 / 60-80 %, flat background
  rect_rot{8,35}_flat_mid        rectangles turned by up to 8 / 35 degrees, 25-50 %, flat
  rect_texture_{mid,large}       axis-aligned rectangles on a blurred texture, 25-50 / 60-80 %
  shapes_flat_{small,mid,large}  the five classes in turn, 8-15 / 25-50 / 60-80 %, flat
The same seed gives the same clips.
"""
import json
import math
import os
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

W, H = 320, 240
LABELS = ["ellipse", "rectangle", "triangle", "star", "cross"]


def texture(rng):
    """A blurred 1/f colour texture around a random grey."""
    def pink(alpha=1.3):
        f = np.fft.fft2(rng.standard_normal((H, W)))
        r = np.sqrt(np.fft.fftfreq(W)[None, :] ** 2 + np.fft.fftfreq(H)[:, None] ** 2)
        r[0, 0] = 1
        x = np.real(np.fft.ifft2(f / r ** alpha))
        return (x - x.mean()) / x.std()
    base = rng.uniform(40, 215)
    img = np.clip(np.stack([pink() for _ in range(3)], -1) * 30 + base, 0, 255).astype(np.uint8)
    return Image.fromarray(img).filter(ImageFilter.GaussianBlur(3)), np.array([base] * 3)


def flat(rng):
    base = rng.uniform(40, 215)
    colour = np.array([base] * 3) + rng.uniform(-20, 20, 3)
    img = np.broadcast_to(colour, (H, W, 3))
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)), colour


def draw(d, label, pts_box, colour):
    x1, y1, x2, y2 = pts_box
    cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
    if label == "ellipse":
        d.ellipse([x1, y1, x2, y2], fill=colour)
    elif label == "rectangle":
        d.rectangle([x1, y1, x2, y2], fill=colour)
    elif label == "triangle":
        d.polygon([(cx, y1), (x2, y2), (x1, y2)], fill=colour)
    elif label == "star":
        pts = []
        for k in range(10):
            r = 0.5 if k % 2 == 0 else 0.2
            a = -math.pi / 2 + k * math.pi / 5
            pts.append((cx + r * w * math.cos(a), cy + r * h * math.sin(a)))
        d.polygon(pts, fill=colour)
    else:  # cross
        t = 0.33
        d.rectangle([x1, cy - h * t / 2, x2, cy + h * t / 2], fill=colour)
        d.rectangle([cx - w * t / 2, y1, cx + w * t / 2, y2], fill=colour)


def make_set(out, name, rng, lo, hi, background=flat, rotation=0.0, labels=("rectangle",), n=100):
    folder = os.path.join(out, name)
    os.makedirs(os.path.join(folder, "frames"), exist_ok=True)
    frames = []
    for i in range(n):
        im, bg = background(rng)
        label = labels[i % len(labels)]
        sign = rng.choice([-1, 1])
        colour = tuple(int(c) for c in np.clip(bg + sign * 90 * rng.uniform(0.8, 1.2, 3), 0, 255))
        f = rng.uniform(lo, hi)
        w, h = f * W, min(f * H * rng.uniform(0.8, 1.2), H * 0.95)
        a = math.radians(rotation * rng.choice([-1, 1]) * rng.uniform(0.5, 1)) if rotation else 0.0
        c, s = abs(math.cos(a)), abs(math.sin(a))
        bw, bh = w * c + h * s, w * s + h * c
        if bw > W - 2 or bh > H - 2:
            k = min((W - 2) / bw, (H - 2) / bh)
            w, h, bw, bh = w * k, h * k, bw * k, bh * k
        cx, cy = rng.uniform(bw / 2, W - bw / 2), rng.uniform(bh / 2, H - bh / 2)
        d = ImageDraw.Draw(im)
        if a:
            pts = [(cx + dx * math.cos(a) - dy * math.sin(a), cy + dx * math.sin(a) + dy * math.cos(a))
                   for dx, dy in [(-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)]]
            d.polygon(pts, fill=colour)
            box = (min(p[0] for p in pts), min(p[1] for p in pts), max(p[0] for p in pts), max(p[1] for p in pts))
        else:
            box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
            draw(d, label, box, colour)
        im.save(os.path.join(folder, "frames", "%05d.png" % i))
        frames.append({"boxes": [{"label": label, "label_id": LABELS.index(label), "x1": box[0], "y1": box[1],
                                  "x2": box[2], "y2": box[3]}],
                       "file": "frames/%05d.png" % i, "frame": i, "scene": i})
    with open(os.path.join(folder, "truth.json"), "w") as f:
        json.dump({"framerate": 10.0, "frames": frames, "height": H, "width": W, "labels": LABELS}, f)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    rng = np.random.default_rng(11)
    make_set(out, "rect_flat_small", rng, 0.10, 0.20)
    make_set(out, "rect_flat_mid", rng, 0.25, 0.50)
    make_set(out, "rect_flat_large", rng, 0.60, 0.80)
    make_set(out, "rect_rot8_flat_mid", rng, 0.25, 0.50, rotation=8)
    make_set(out, "rect_rot35_flat_mid", rng, 0.25, 0.50, rotation=35)
    make_set(out, "rect_texture_mid", rng, 0.25, 0.50, background=texture)
    make_set(out, "rect_texture_large", rng, 0.60, 0.80, background=texture)
    make_set(out, "shapes_flat_small", rng, 0.08, 0.15, labels=LABELS)
    make_set(out, "shapes_flat_mid", rng, 0.25, 0.50, labels=LABELS)
    make_set(out, "shapes_flat_large", rng, 0.60, 0.80, labels=LABELS)
    print("wrote", out)


if __name__ == "__main__":
    main()
