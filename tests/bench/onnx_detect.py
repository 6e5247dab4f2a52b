#!/usr/bin/env python3
"""Detections of frames by the ONNX export of a model, run by onnxruntime (test helper of
tests/bench/test_reference_ssd.cpp), in the format of `reference_ssd.py detect`:

    onnx_detect.py --model M --frames IN.safetensors --out OUT.safetensors
        [--threshold 0.3] [--nms-iou 0.45] [--max-detections 100]

For each frame (H, W, 3) uint8 RGB in IN, scripts/export-onnx.py makes the graph for that
frame size (--frame WxH, RGB; --bgr for every second frame, which is then given reversed), and
onnxruntime runs it; OUT gets boxes_i (n, 4) normalised x1, y1, x2, y2 (from the export's
y1, x1, y2, x2), scores_i and labels_i (int64), as ssd::Detector::detect returns them.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnxruntime
from safetensors.numpy import load_file, save_file

EXPORT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts",
                      "export-onnx.py")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--frames", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threshold", type=float, default=0.3)
    ap.add_argument("--nms-iou", type=float, default=0.45)
    ap.add_argument("--max-detections", type=int, default=100)
    a = ap.parse_args()
    frames = load_file(a.frames)
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(len([k for k in frames if k.startswith("frame_")])):
            frame = frames[f"frame_{i}"]
            h, w = frame.shape[:2]
            bgr = i % 2 == 1
            path = os.path.join(tmp, f"frame{i}.onnx")
            cmd = [sys.executable, EXPORT, a.model, path, "--frame", f"{w}x{h}",
                   "--threshold", str(a.threshold), "--nms-iou", str(a.nms_iou),
                   "--max-detections", str(a.max_detections)] + (["--bgr"] if bgr else [])
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
            image = np.ascontiguousarray(frame[..., ::-1] if bgr else frame)[None]
            out = dict(zip([o.name for o in session.get_outputs()], session.run(None, {"image": image})))
            n = int(out["num_detections"][0])
            assert out["detection_scores"].shape == (1, n), out["detection_scores"].shape
            res[f"boxes_{i}"] = np.ascontiguousarray(out["detection_boxes"][0][:, [1, 0, 3, 2]])
            res[f"scores_{i}"] = out["detection_scores"][0]
            res[f"labels_{i}"] = out["detection_classes"][0].astype(np.int64)
    save_file(res, a.out)


if __name__ == "__main__":
    main()
