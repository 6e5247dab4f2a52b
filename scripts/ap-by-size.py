#!/usr/bin/env python3
"""AP@0.5, AP@0.75 and recall@0.5 by object size, with pycocotools, for the COCO results file
that `ssd-train eval --detections` writes:

    ssd-train eval --weights M --synth 500 --synth-seed 777 --synth-dir heldout \\
        --detections dets.json
    .venv/bin/python scripts/ap-by-size.py heldout/annotations.json dets.json [--edges 32,64]

Sizes are box areas in pixels of the data set's images (not the annotations' `area` field, so
that VOC-style data without segment areas buckets the same way): [0, e1^2), [e1^2, e2^2), ...
"""
import argparse
import contextlib
import io

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("annotations")
    ap.add_argument("detections")
    ap.add_argument("--edges", default="32,64", help="size edges in pixels (sqrt of area)")
    a = ap.parse_args()
    edges = [float(e) for e in a.edges.split(",")]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(a.annotations)
        # pycocotools >= 2.0.9's loadRes copies "info", which files such as fastai's
        # pascal_train2007.json lack.
        gt.dataset.setdefault("info", {})
        for ann in gt.dataset["annotations"]:
            ann["area"] = ann["bbox"][2] * ann["bbox"][3]
        gt.createIndex()
        dt = gt.loadRes(a.detections)
    bounds = [0.0] + [e * e for e in edges] + [1e10]
    ranges = [[0, 1e10]] + [[bounds[i], bounds[i + 1]] for i in range(len(bounds) - 1)]
    labels = ["all"] + [f"[{bounds[i] ** 0.5:g}, {bounds[i + 1] ** 0.5:g}) px" if i + 2 < len(bounds)
                        else f">= {bounds[i] ** 0.5:g} px" for i in range(len(bounds) - 1)]
    e = COCOeval(gt, dt, "bbox")
    e.params.areaRng = ranges
    e.params.areaRngLbl = labels
    with contextlib.redirect_stdout(io.StringIO()):
        e.evaluate()
        e.accumulate()
    prec, rec = e.eval["precision"], e.eval["recall"]   # T x R x K x A x M, T x K x A x M
    m = len(e.params.maxDets) - 1                        # maxDets 100

    def mean(x):
        v = x[x > -1]
        return v.mean() if v.size else float("nan")

    print(f"{'size':16s} {'#gt':>6s} {'AP50':>7s} {'AP75':>7s} {'rec50':>7s}")
    anns = gt.dataset["annotations"]
    for i, (lo_hi, label) in enumerate(zip(ranges, labels)):
        n = sum(1 for x in anns if lo_hi[0] <= x["area"] < lo_hi[1] and not x.get("iscrowd", 0)
                and not x.get("ignore", 0))
        print(f"{label:16s} {n:6d} {mean(prec[0, :, :, i, m]):7.4f} {mean(prec[5, :, :, i, m]):7.4f} "
              f"{mean(rec[0, :, i, m]):7.4f}")


if __name__ == "__main__":
    main()
