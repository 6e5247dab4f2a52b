#!/usr/bin/env python3
"""Reference mAP values for tests/training/test_map.cpp.

Generates deterministic ground truth + detections (several cases: crowd/ignore regions, score
ties, classes without ground truth, a set whose ground truth is all crowd regions, more than 100 detections in one image, images without
ground truth), evaluates them with pycocotools' COCOeval (bbox) and with the Pascal VOC
reference (py-faster-rcnn's voc_eval / voc_ap), and writes inputs and expected values to a JSON
file that the C++ test reads:

    coco_reference.py OUT.json

Coordinates are multiples of 1/4 pixel and scores multiples of 1/1000, so that the float32
values read by the C++ side are exactly the double values pycocotools sees.
"""
import contextlib
import io
import json
import sys

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

W, H = 640, 480


def q4(v):
    return float(np.round(v * 4) / 4)


def jitter_box(rng, box, scale):
    x, y, w, h = box
    nx = x + rng.normal(0, scale) * w
    ny = y + rng.normal(0, scale) * h
    nw = max(1.0, w * np.exp(rng.normal(0, scale)))
    nh = max(1.0, h * np.exp(rng.normal(0, scale)))
    return [q4(nx), q4(ny), q4(nw), q4(nh)]


def random_box(rng):
    w = rng.uniform(8, 200)
    h = rng.uniform(8, 200)
    x = rng.uniform(0, W - w)
    y = rng.uniform(0, H - h)
    return [q4(x), q4(y), q4(w), q4(h)]


def make_case(seed, num_images, num_classes, crowd_p, tie_scores, empty_classes, big_image):
    rng = np.random.default_rng(seed)
    labels = ["class%d" % i for i in range(num_classes)]
    images = []
    for i in range(num_images):
        img_id = int(rng.integers(1, 10**6)) * 10 + i   # unique, not in insertion order
        gts, dets = [], []
        n_gt = int(rng.integers(0, 7)) if i % 7 != 3 else 0
        for _ in range(n_gt):
            label = int(rng.integers(0, num_classes))
            if label in empty_classes:
                continue
            box = random_box(rng)
            ignore = int(rng.random() < crowd_p)
            # COCO's "area" is the object's (a segment's) area: here a third of the ground truths
            # have one below their box's, which moves some across the size ranges' bounds.
            area = box[2] * box[3] * (float(rng.choice([0.5, 0.75])) if rng.random() < 1 / 3 else 1.0)
            gts.append(box + [label, ignore, area])
            # 0-3 detections per ground truth (duplicates become false positives)
            for _ in range(int(rng.integers(0, 4))):
                scale = rng.choice([0.02, 0.08, 0.2])
                dl = label if rng.random() > 0.1 else int(rng.integers(0, num_classes))
                dets.append(jitter_box(rng, box, scale) + [dl, rng.random()])
        for _ in range(int(rng.integers(0, 5))):
            dets.append(random_box(rng) + [int(rng.integers(0, num_classes)), rng.random() * 0.7])
        if big_image and i == 0:
            for _ in range(150):
                label = 0
                if gts and rng.random() < 0.5:
                    g = gts[int(rng.integers(0, len(gts)))]
                    label = g[4]
                    box = jitter_box(rng, g[:4], 0.1)
                else:
                    box = random_box(rng)
                dets.append(box + [label, rng.random()])
        for d in dets:
            d[5] = (np.round(d[5] * 20) / 20) if tie_scores else (np.round(d[5] * 1000) / 1000)
            d[5] = float(max(d[5], 0.001))
        images.append({"id": img_id, "gts": gts, "dets": dets})
    return labels, images


def coco_eval(labels, images):
    # "info" as in a COCO file: pycocotools >= 2.0.9's loadRes copies it (numpy 2 needs 2.0.10).
    gt = {"info": {}, "images": [], "annotations": [], "categories": []}
    for k, name in enumerate(labels):
        gt["categories"].append({"id": k + 1, "name": name})
    ann_id = 1
    for im in images:
        gt["images"].append({"id": im["id"], "width": W, "height": H})
        for x, y, w, h, label, ignore, area in im["gts"]:
            gt["annotations"].append({"id": ann_id, "image_id": im["id"], "category_id": label + 1,
                                      "bbox": [x, y, w, h], "area": area, "iscrowd": ignore})
            ann_id += 1
    dets = []
    for im in images:
        for x, y, w, h, label, score in im["dets"]:
            dets.append({"image_id": im["id"], "category_id": label + 1, "bbox": [x, y, w, h],
                         "score": score})
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        res = coco.loadRes(dets)
        ev = COCOeval(coco, res, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    prec = ev.eval["precision"][:, :, :, 0, 2]   # T, R, K (area all, maxDets 100)
    rec = ev.eval["recall"][:, :, 0, 2]           # T, K
    per_class = []
    for k in range(len(labels)):
        p = prec[:, :, k]
        valid = bool((p > -1).all())
        per_class.append({
            "valid": valid,
            "ap": float(p.mean()) if valid else -1.0,
            "ap50": float(p[0].mean()) if valid else -1.0,
            "ap75": float(p[5].mean()) if valid else -1.0,
            "recall50": float(rec[0, k]) if valid else -1.0,
        })
    # COCOeval.stats: AP, AP50, AP75, AP small/medium/large, AR@1, AR@10, AR@100, AR
    # small/medium/large (-1 where no class has ground truth of that size).
    return per_class, {"map": float(ev.stats[0]), "map50": float(ev.stats[1]),
                       "map75": float(ev.stats[2]), "stats": [float(v) for v in ev.stats]}


def voc_ap(rec, prec, use_07_metric):
    # py-faster-rcnn lib/datasets/voc_eval.py
    if use_07_metric:
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):
            p = 0 if np.sum(rec >= t) == 0 else np.max(prec[rec >= t])
            ap = ap + p / 11.0
        return ap
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def voc_eval(labels, images):
    out = []
    ordered = sorted(images, key=lambda im: im["id"])
    for k in range(len(labels)):
        recs = []
        npos = 0
        for im in ordered:
            g = [b for b in im["gts"] if b[4] == k]
            bb = np.array([[b[0], b[1], b[0] + b[2], b[1] + b[3]] for b in g]).reshape(-1, 4)
            diff = np.array([bool(b[5]) for b in g], dtype=bool)
            npos += int((~diff).sum())
            recs.append({"bbox": bb, "difficult": diff, "det": [False] * len(g)})
        dets = [(ii, d) for ii, im in enumerate(ordered) for d in im["dets"] if d[4] == k]
        conf = np.array([d[5] for _, d in dets])
        order = np.argsort(-conf, kind="mergesort")
        nd = len(dets)
        tp = np.zeros(nd)
        fp = np.zeros(nd)
        for n, j in enumerate(order):
            ii, d = dets[j]
            r = recs[ii]
            bb = np.array([d[0], d[1], d[0] + d[2], d[1] + d[3]], dtype=float)
            ovmax = -np.inf
            BBGT = r["bbox"].astype(float)
            if BBGT.size > 0:
                ixmin = np.maximum(BBGT[:, 0], bb[0])
                iymin = np.maximum(BBGT[:, 1], bb[1])
                ixmax = np.minimum(BBGT[:, 2], bb[2])
                iymax = np.minimum(BBGT[:, 3], bb[3])
                iw = np.maximum(ixmax - ixmin, 0.0)
                ih = np.maximum(iymax - iymin, 0.0)
                inters = iw * ih
                uni = ((bb[2] - bb[0]) * (bb[3] - bb[1]) +
                       (BBGT[:, 2] - BBGT[:, 0]) * (BBGT[:, 3] - BBGT[:, 1]) - inters)
                overlaps = inters / uni
                ovmax = np.max(overlaps)
                jmax = np.argmax(overlaps)
            if ovmax > 0.5:
                if not r["difficult"][jmax]:
                    if not r["det"][jmax]:
                        tp[n] = 1.0
                        r["det"][jmax] = True
                    else:
                        fp[n] = 1.0
            else:
                fp[n] = 1.0
        if npos == 0:
            out.append({"valid": False, "ap07": -1.0, "ap": -1.0})
            continue
        fp = np.cumsum(fp)
        tp = np.cumsum(tp)
        rec = tp / float(npos)
        prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        out.append({"valid": True, "ap07": float(voc_ap(rec, prec, True)),
                    "ap": float(voc_ap(rec, prec, False))})
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: coco_reference.py OUT.json")
    cases = []
    specs = [
        dict(seed=1, num_images=40, num_classes=3, crowd_p=0.0, tie_scores=False,
             empty_classes=(), big_image=False),
        dict(seed=2, num_images=60, num_classes=5, crowd_p=0.15, tie_scores=False,
             empty_classes=(3,), big_image=True),
        dict(seed=3, num_images=30, num_classes=4, crowd_p=0.25, tie_scores=True,
             empty_classes=(), big_image=True),
        dict(seed=4, num_images=25, num_classes=2, crowd_p=0.1, tie_scores=True,
             empty_classes=(), big_image=False),
        # Every ground truth a crowd region: no class has any to find (every mean is -1).
        dict(seed=5, num_images=12, num_classes=2, crowd_p=1.0, tie_scores=False,
             empty_classes=(), big_image=False),
    ]
    for spec in specs:
        labels, images = make_case(**spec)
        per_class, means = coco_eval(labels, images)
        voc = voc_eval(labels, images)
        cases.append({"spec": {k: (list(v) if isinstance(v, tuple) else v)
                               for k, v in spec.items()},
                      "labels": labels, "images": images,
                      "coco": {"per_class": per_class, **means}, "voc": voc})
    with open(sys.argv[1], "w") as f:
        json.dump({"cases": cases}, f)


if __name__ == "__main__":
    main()
