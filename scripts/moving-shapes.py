#!/usr/bin/python3
"""A clip of shapes moving across a textured background, with ground truth for detection and
tracking: what `ssddetect ! ssdtrack` is scored on end to end (bench/tracking_pipeline.py).

    /usr/bin/python3 scripts/moving-shapes.py OUT [--objects 8] [--frames 300] [--speed 1,4]
        [--size 0.1,0.2] [--seed 1]

writes OUT/frames/%05d.png (320x240, 30 fps), OUT/truth.json (the format `ssd-clip render`
writes, which `ssd-clip score` reads; each box also names its `object`) and OUT/gt/gt.txt (the
same boxes in the MOTChallenge format, object ids from 1, frames from 1, which
bench/tracker_motmetrics.py reads). Objects of the five classes (drawn with PIL by
scripts/plain-scenes.py's `draw`, not by the project's own renderer) enter at a random edge at
a random frame (the first three at frame 0) and cross the frame in a straight line at --speed
pixels a frame, their longer side --size of the frame's width; later ones are drawn over earlier
ones. A box is in the ground truth while at least half of the shape is in the frame (clipped to
it), and not while another shape covers more than half of it. The same seed and options give
the same clip (--frames also spreads the objects' entries: a shorter clip is not the start of a
longer one). Frames of an earlier clip in OUT/frames are removed first.
Needs numpy and PIL (Debian's /usr/bin/python3 has both).
"""
import argparse
import importlib.util
import json
import math
import os

import numpy as np
from PIL import Image, ImageDraw

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("plain_scenes", os.path.join(HERE, "plain-scenes.py"))
plain_scenes = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(plain_scenes)
W, H, LABELS = plain_scenes.W, plain_scenes.H, plain_scenes.LABELS
FPS = 30.0


def pair(low, high):
    def parse(text):
        try:
            lo, hi = (float(v) for v in text.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError("MIN,MAX, not %s" % text)
        if not low < lo <= hi <= high:
            raise argparse.ArgumentTypeError("MIN,MAX with %g < MIN <= MAX <= %g, not %s" % (low, high, text))
        return lo, hi
    return parse


def at_least(low):
    def parse(text):
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError("at least %d, not %s" % (low, text))
        return value
    return parse


def objects(rng, count, frames, speed, size):
    out = []
    for i in range(count):
        label = LABELS[i % len(LABELS)]
        w = rng.uniform(*size) * W
        h = w * rng.uniform(0.7, 1.0)
        if rng.random() < 0.5:
            w, h = h, w
        s = rng.uniform(*speed)
        edge = rng.integers(4)
        angle = rng.uniform(-0.5, 0.5) + [0, math.pi, math.pi / 2, -math.pi / 2][edge]
        x, y = [(-w / 2 + 1, rng.uniform(h / 2, H - h / 2)), (W + w / 2 - 1, rng.uniform(h / 2, H - h / 2)),
                (rng.uniform(w / 2, W - w / 2), -h / 2 + 1), (rng.uniform(w / 2, W - w / 2), H + h / 2 - 1)][edge]
        out.append(dict(label=label, w=w, h=h, x=x, y=y, vx=s * math.cos(angle), vy=s * math.sin(angle),
                        t0=0 if i < 3 else int(rng.integers(0, max(1, frames * 2 // 3))),
                        colour=tuple(int(c) for c in rng.integers(0, 256, 3))))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out")
    parser.add_argument("--objects", type=at_least(0), default=8)
    parser.add_argument("--frames", type=at_least(1), default=300)
    parser.add_argument("--speed", type=pair(0, W), default=(1.0, 4.0), help="MIN,MAX pixels a frame")
    # (The longer side as tall as the frame at most: 0.75 of the width.)
    parser.add_argument("--size", type=pair(0, H / W), default=(0.1, 0.2), help="MIN,MAX longer side / width")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    background, _ = plain_scenes.texture(rng)
    objs = objects(rng, args.objects, args.frames, args.speed, args.size)
    os.makedirs(os.path.join(args.out, "frames"), exist_ok=True)
    for name in os.listdir(os.path.join(args.out, "frames")):   # an earlier clip's
        if len(name) == 9 and name.endswith(".png") and name[:5].isdigit():
            os.remove(os.path.join(args.out, "frames", name))
    os.makedirs(os.path.join(args.out, "gt"), exist_ok=True)
    frames, mot = [], []
    for f in range(args.frames):
        im = background.copy()
        d = ImageDraw.Draw(im)
        owner = np.full((H, W), -1, dtype=np.int32)   # which object each pixel shows
        drawn = []
        for k, o in enumerate(objs):
            if f < o["t0"]:
                continue
            t = f - o["t0"]
            cx, cy = o["x"] + o["vx"] * t, o["y"] + o["vy"] * t
            box = (cx - o["w"] / 2, cy - o["h"] / 2, cx + o["w"] / 2, cy + o["h"] / 2)
            clipped = (max(0.0, box[0]), max(0.0, box[1]), min(float(W), box[2]), min(float(H), box[3]))
            if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
                continue
            plain_scenes.draw(d, o["label"], box, o["colour"])
            mask = Image.new("L", (W, H), 0)
            plain_scenes.draw(ImageDraw.Draw(mask), o["label"], box, 255)
            pixels = np.asarray(mask) > 0
            full = o["w"] * o["h"]
            owner[pixels] = k
            drawn.append((k, o, clipped, pixels.sum(), full))
        boxes = []
        for k, o, clipped, area_in, full in drawn:
            in_frame = (clipped[2] - clipped[0]) * (clipped[3] - clipped[1]) / full
            shown = (owner == k).sum() / max(1, area_in)
            if in_frame < 0.5 or shown < 0.5:
                continue
            boxes.append({"label": o["label"], "label_id": LABELS.index(o["label"]), "object": k + 1,
                          "x1": clipped[0], "y1": clipped[1], "x2": clipped[2], "y2": clipped[3]})
            mot.append("%d,%d,%.3f,%.3f,%.3f,%.3f,1,-1,-1,-1" % (f + 1, k + 1, clipped[0], clipped[1],
                                                                  clipped[2] - clipped[0], clipped[3] - clipped[1]))
        im.save(os.path.join(args.out, "frames", "%05d.png" % f))
        frames.append({"boxes": boxes, "file": "frames/%05d.png" % f, "frame": f, "scene": 0})
    with open(os.path.join(args.out, "truth.json"), "w") as fp:
        json.dump({"framerate": FPS, "frames": frames, "height": H, "width": W, "labels": LABELS}, fp)
    with open(os.path.join(args.out, "gt", "gt.txt"), "w") as fp:
        fp.write("\n".join(mot) + ("\n" if mot else ""))
    print("wrote %d frames of %d objects to %s" % (args.frames, args.objects, args.out))


if __name__ == "__main__":
    main()
