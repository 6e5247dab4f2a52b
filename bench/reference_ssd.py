#!/usr/bin/env python3
"""The SSD detector as a user would write it in eager PyTorch, loading OUR weights file.

Independent of the C++ code: the body is torchvision's ResNet (children()[:-2], or the "tiny"
ResNet-shaped body built from torchvision's BasicBlock), the head is the fastai 2018 lesson's
SSD_MultiHead (StdConv = conv3x3 -> ReLU -> BatchNorm -> Dropout; OutConv; flatten with
permute(0, 2, 3, 1)), anchors and activation decoding follow the lesson, and the output stage
uses torchvision.ops.batched_nms. The weights file is safetensors with the architecture as
JSON in the metadata key "ssd.config"; every tensor name must match (strict loading).

Commands:
  reference_ssd.py detect --model M --frames IN.safetensors --out OUT.safetensors
        [--threshold 0.3] [--nms-iou 0.45] [--max-detections 100] [--device cpu]
        [--candidates]
      IN holds frame_0, frame_1, ... (H, W, 3) uint8 RGB frames; OUT gets, per frame i,
      boxes_i (n, 4) float32 normalised x1, y1, x2, y2, scores_i (n) and labels_i (n) int64,
      sorted by decreasing score, as ssd::Detector::detect returns them. With --candidates
      also candidate_boxes_i, candidate_scores_i and candidate_labels_i: the (anchor, class)
      pairs above the threshold that went into NMS.
  reference_ssd.py bench --model M [--frame 640x480] [--batch 1] [--device cpu|cuda]
        [--precision fp32|fp16] [--seconds 5] [--threads N] [--repeats 5]
      Per-batch loop on raw RGBx frames in host memory: upload, RGB select, resize,
      normalise, forward, decode, NMS, download of the detections. Prints a JSON line with
      the median frames/s (also model-only: forward on a ready input tensor).
  reference_ssd.py random --out M [--body tiny] [--head-channels 128] [--input-size 224]
        [--grids 4,2,1] [--labels a,b,c,d] [--seed 0]
      Writes a random-weights model in our file format (for benchmarks before a trained
      model exists).
"""
import argparse
import collections
import json
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torchvision.models.resnet import BasicBlock, ResNet
from safetensors import safe_open
from safetensors.torch import load_file, save_file

CONFIG_KEY = "ssd.config"


# ------------------------------------------------------------------------------------------
# Model
# ------------------------------------------------------------------------------------------
def tiny_resnet():
    """ResNet-shaped: BasicBlocks, layers [1, 1, 1, 1], widths [16, 32, 64, 128], stem 16."""
    m = ResNet(BasicBlock, [1, 1, 1, 1])
    m.inplanes = 16
    m.conv1 = nn.Conv2d(3, 16, kernel_size=7, stride=2, padding=3, bias=False)
    m.bn1 = nn.BatchNorm2d(16)
    m.layer1 = m._make_layer(BasicBlock, 16, 1)
    m.layer2 = m._make_layer(BasicBlock, 32, 1, stride=2)
    m.layer3 = m._make_layer(BasicBlock, 64, 1, stride=2)
    m.layer4 = m._make_layer(BasicBlock, 128, 1, stride=2)
    return m, 128


def make_body(name):
    """torchvision ResNet without avgpool and fc; module names conv1, bn1, layer1..4. Returns
    the body and its layer4 (stride 32) and layer3 (stride 16) channels."""
    if name == "tiny":
        m, out = tiny_resnet()
    elif name in ("resnet18", "resnet34", "resnet50"):
        m = getattr(torchvision.models, name)()
        out = 2048 if name == "resnet50" else 512
    else:
        raise ValueError(f"unknown body {name}")
    return nn.Sequential(collections.OrderedDict(list(m.named_children())[:-2])), out, out // 2


class StdConv(nn.Module):
    def __init__(self, nin, nout, stride=2, drop=0.1):
        super().__init__()
        self.conv = nn.Conv2d(nin, nout, 3, stride=stride, padding=1)
        self.bn = nn.BatchNorm2d(nout)
        self.drop = nn.Dropout(drop)

    def forward(self, x):
        return self.drop(self.bn(F.relu(self.conv(x))))


def flatten_conv(x, k):
    bs, nf, gx, gy = x.size()
    x = x.permute(0, 2, 3, 1).contiguous()
    return x.view(bs, -1, nf // k)


class OutConv(nn.Module):
    def __init__(self, k, nin, num_classes, bias):
        super().__init__()
        self.k = k
        self.oconv1 = nn.Conv2d(nin, (num_classes + 1) * k, 3, padding=1)
        self.oconv2 = nn.Conv2d(nin, 4 * k, 3, padding=1)
        self.oconv1.bias.data.zero_().add_(bias)

    def forward(self, x):
        return [flatten_conv(self.oconv1(x), self.k), flatten_conv(self.oconv2(x), self.k)]


def stride2_out(side):
    return (side - 1) // 2 + 1


def fine_grid(cfg):
    """Side of the stride-16 map when the first grid is that map (served by layer3), else 0."""
    s16, s32 = (cfg["input_size"] + 15) // 16, (cfg["input_size"] + 31) // 32
    return s16 if s16 > s32 and cfg["grids"][0] == s16 else 0


class SsdHead(nn.Module):
    """The lesson's SSD_MultiHead, generalised to the config's grids. A first grid equal to the
    stride-16 side takes fine(layer3) + the upsampled (nearest) sconv0 output through its own
    OutConv fine_out, and comes first."""

    def __init__(self, cfg, nin, nin16):
        super().__init__()
        ch, drop = cfg["head_channels"], cfg.get("dropout", 0.1)
        k = len(cfg["zooms"]) * len(cfg["ratios_wh"])
        ncls = len(cfg["labels"])
        bias = cfg.get("class_bias", -4.0)
        self.drop = nn.Dropout(drop)
        self.sconv0 = StdConv(nin, ch, stride=1, drop=drop)
        self.sconvs = nn.ModuleList()
        self.outs = nn.ModuleList()
        self.out_after = []
        self.fine_side = fine_grid(cfg)
        side = (cfg["input_size"] + 31) // 32
        for g in cfg["grids"][1 if self.fine_side else 0:]:
            while side > g:
                self.sconvs.append(StdConv(ch, ch, stride=2, drop=drop))
                side = stride2_out(side)
            assert side == g, f"grid {g} unreachable"
            self.out_after.append(len(self.sconvs))
            self.outs.append(OutConv(k, ch, ncls, bias))
        if self.fine_side:
            self.fine = StdConv(nin16, ch, stride=1, drop=drop)
            self.fine_out = OutConv(k, ch, ncls, bias)

    def forward(self, c3, x):
        x = self.sconv0(self.drop(F.relu(x)))
        cls, box, done = [], [], 0
        if self.fine_side:
            up = F.interpolate(x, size=(self.fine_side, self.fine_side), mode="nearest")
            c, b = self.fine_out(self.fine(c3) + up)
            cls.append(c)
            box.append(b)
        for out, after in zip(self.outs, self.out_after):
            while done < after:
                x = self.sconvs[done](x)
                done += 1
            c, b = out(x)
            cls.append(c)
            box.append(b)
        return torch.cat(cls, 1), torch.cat(box, 1)


class Ssd(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.body, nout, nout16 = make_body(cfg["body"])
        self.head = SsdHead(cfg, nout, nout16)

    def forward(self, x):
        if not self.head.fine_side:
            return self.head(None, self.body(x))
        for name, layer in self.body.named_children():
            x = layer(x)
            if name == "layer3":
                c3 = x
        return self.head(c3, x)


def load_model(path, device="cpu"):
    with safe_open(path, "pt") as f:
        meta = f.metadata() or {}
    if CONFIG_KEY not in meta:
        sys.exit(f"{path}: no '{CONFIG_KEY}' metadata")
    cfg = json.loads(meta[CONFIG_KEY])
    if cfg.get("background", "last") != "last":
        sys.exit("only background = last is supported")
    model = Ssd(cfg)
    model.load_state_dict(load_file(path), strict=True)
    return model.eval().to(device), cfg


def save_model(model, path):
    sd = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(sd, path, metadata={CONFIG_KEY: json.dumps(model.cfg), "format": "gst-ssd/1"})


# ------------------------------------------------------------------------------------------
# Anchors, decoding, output stage
# ------------------------------------------------------------------------------------------
def make_anchors(cfg):
    """Grid, then cell (row-major), then zoom, then ratio: (A, 4) cx, cy, w, h and (A, 1) 1/g."""
    ctr, sizes, gs = [], [], []
    for g in cfg["grids"]:
        off = 1.0 / (2 * g)
        pos = np.array([off]) if g == 1 else np.linspace(off, 1 - off, g)
        for row in range(g):
            for col in range(g):
                for z in cfg["zooms"]:
                    for rw, rh in cfg["ratios_wh"]:
                        ctr.append((pos[col], pos[row]))
                        sizes.append((z * rw / g, z * rh / g))
                        gs.append(1.0 / g)
    centers = torch.tensor(np.concatenate([np.array(ctr), np.array(sizes)], 1), dtype=torch.float32)
    return centers, torch.tensor(gs, dtype=torch.float32).unsqueeze(1)


def hw2corners(ctr, hw):
    return torch.cat([ctr - hw / 2, ctr + hw / 2], dim=-1)


def actn_to_bb(actn, centers, grid_sizes):
    """The lesson's actn_to_bb, in (x, y) order."""
    t = torch.tanh(actn)
    ctr = t[..., :2] / 2 * grid_sizes + centers[:, :2]
    hw = (t[..., 2:] / 2 + 1) * centers[:, 2:]
    return hw2corners(ctr, hw)


def postprocess(cls_logits, box_act, centers, grid_sizes, threshold, nms_iou, max_det,
                candidates=None):
    """Per image: sigmoid scores of the C classes, the best max(400, 4*max_det) (anchor, class)
    pairs, those above the threshold, per-class NMS, the best max_det. A list given as
    candidates gets each image's (boxes, scores, labels) before NMS."""
    C = cls_logits.shape[-1] - 1
    boxes = actn_to_bb(box_act.float(), centers, grid_sizes).clamp(0, 1)
    scores = torch.sigmoid(cls_logits[..., :C].float())
    k = min(max(400, 4 * max_det), scores.shape[1] * C)
    out = []
    for b in range(scores.shape[0]):
        s, idx = scores[b].reshape(-1).topk(k)
        keep = s > threshold
        s, idx = s[keep], idx[keep]
        a, c = idx // C, idx % C
        bx = boxes[b][a]
        if candidates is not None:
            candidates.append((bx, s, c))
        kept = torchvision.ops.batched_nms(bx, s, c, nms_iou)[:max_det]
        out.append((bx[kept], s[kept], c[kept]))
    return out


# ------------------------------------------------------------------------------------------
# Preprocessing: raw frames -> normalised (B, 3, S, S)
# ------------------------------------------------------------------------------------------
def shrink_factor(n, size):
    """The whole factor the pooling shrinks n pixels by before the bilinear resize to size."""
    return max(1, n // size)


def resize_square(x, size):
    """Integer-factor average pooling (anti-aliasing), then bilinear (align_corners=False)."""
    fh, fw = shrink_factor(x.shape[2], size), shrink_factor(x.shape[3], size)
    if fh >= 2 or fw >= 2:
        x = F.avg_pool2d(x, (fh, fw))
    if x.shape[2] == size and x.shape[3] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def seen_scale(h, w, size):
    """(x, y, x, y) factors from the [0, 1] boxes of the network's picture to the frame's: the
    pooling leaves out the last w % fw columns and h % fh rows, so the picture spans
    (w // fw) * fw of the w columns (fw = shrink_factor(w, size); ssd::Detector's seen_fraction)."""
    def seen(n):
        f = shrink_factor(n, size)
        return n // f * f / n
    sx, sy = seen(w), seen(h)
    return torch.tensor([sx, sy, sx, sy], dtype=torch.float32)


class Preprocess:
    def __init__(self, cfg, device):
        self.size = cfg["input_size"]
        self.mean = torch.tensor(cfg["mean"], dtype=torch.float32, device=device).view(1, 3, 1, 1)
        self.inv_std = 1.0 / torch.tensor(cfg["std"], dtype=torch.float32, device=device).view(1, 3, 1, 1)

    def __call__(self, frames):
        """frames: list of (H, W, >=3) uint8 tensors, RGB first, on the model's device."""
        xs = [resize_square(f[..., :3].permute(2, 0, 1).unsqueeze(0).float(), self.size).div_(255.0)
              for f in frames]
        return (torch.cat(xs, 0) - self.mean) * self.inv_std


# ------------------------------------------------------------------------------------------
# Commands
# ------------------------------------------------------------------------------------------
def cmd_detect(a):
    device = torch.device(a.device)
    model, cfg = load_model(a.model, device)
    centers, gsz = (t.to(device) for t in make_anchors(cfg))
    pre = Preprocess(cfg, device)
    inp = load_file(a.frames)
    n = len([k for k in inp if k.startswith("frame_")])
    frames = [inp[f"frame_{i}"].to(device) for i in range(n)]
    res = {}
    cands = [] if a.candidates else None
    with torch.inference_mode():
        cls, box = model(pre(frames))
        dets = postprocess(cls, box, centers, gsz, a.threshold, a.nms_iou, a.max_detections,
                           cands)
        for prefix, lists in (("", dets), ("candidate_", cands or [])):
            for i, (b, s, l) in enumerate(lists):
                b = b * seen_scale(frames[i].shape[0], frames[i].shape[1], pre.size).to(b.device)
                res[f"{prefix}boxes_{i}"] = b.float().cpu().contiguous()
                res[f"{prefix}scores_{i}"] = s.float().cpu().contiguous()
                res[f"{prefix}labels_{i}"] = l.long().cpu().contiguous()
    save_file(res, a.out)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_rate(fn, device, seconds, repeats, per_call):
    """Median calls/s over `repeats` rounds of about seconds/repeats each, after warm-up."""
    for _ in range(3):
        fn()
    sync(device)
    rates = []
    for _ in range(repeats):
        n, t0 = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            sync(device)
            dt = time.perf_counter() - t0
            if dt >= seconds / repeats and n >= 2:
                break
        rates.append(n * per_call / dt)
    return statistics.median(rates), rates


def cmd_bench(a):
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    half = a.precision == "fp16"
    if half and device.type != "cuda":
        sys.exit("fp16 needs --device cuda")
    model, cfg = load_model(a.model, device)
    if half:
        model.half()
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    centers, gsz = (t.to(device) for t in make_anchors(cfg))
    pre = Preprocess(cfg, device)
    w, h = (int(v) for v in a.frame.split("x"))
    rng = np.random.default_rng(0)
    host = [torch.from_numpy(rng.integers(0, 256, (h, w, 4), dtype=np.uint8)) for _ in range(a.batch)]
    if device.type == "cuda":
        host = [t.pin_memory() for t in host]
    S = cfg["input_size"]
    scale = seen_scale(h, w, S).to(device)

    def prepare(x):
        if half:
            x = x.half()
        if device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def full():
        frames = [t.to(device, non_blocking=True) for t in host]
        cls, box = model(prepare(pre(frames)))
        dets = postprocess(cls, box, centers, gsz, a.threshold, 0.45, 100)
        return [((b * scale).cpu(), s.cpu(), l.cpu()) for b, s, l in dets]

    x = prepare(torch.randn(a.batch, 3, S, S, device=device))

    def model_only():
        model(x)

    with torch.inference_mode():
        fps_model, r_model = median_rate(model_only, device, a.seconds, a.repeats, a.batch)
        fps_full, r_full = median_rate(full, device, a.seconds, a.repeats, a.batch)
    print(json.dumps({
        "impl": "pytorch-eager", "torch": torch.__version__, "body": cfg["body"],
        "head_channels": cfg["head_channels"], "input_size": S, "frame": a.frame,
        "batch": a.batch, "device": str(device), "precision": a.precision,
        "threads": torch.get_num_threads(),
        "model_fps": round(fps_model, 2), "pipeline_fps": round(fps_full, 2),
        "pipeline_ms_per_frame": round(1000.0 / fps_full, 3),
        "model_fps_rounds": [round(r, 2) for r in r_model],
        "pipeline_fps_rounds": [round(r, 2) for r in r_full]}))


def cmd_random(a):
    torch.manual_seed(a.seed)
    cfg = {"body": a.body, "input_size": a.input_size,
           "grids": [int(g) for g in a.grids.split(",")], "zooms": [0.7, 1.0, 1.3],
           "ratios_wh": [[1.0, 1.0], [0.5, 1.0], [1.0, 0.5]], "labels": a.labels.split(","),
           "head_channels": a.head_channels, "dropout": 0.1, "class_bias": -4.0,
           "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "background": "last"}
    save_model(Ssd(cfg), a.out)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("detect")
    d.add_argument("--model", required=True)
    d.add_argument("--frames", required=True)
    d.add_argument("--out", required=True)
    d.add_argument("--threshold", type=float, default=0.3)
    d.add_argument("--nms-iou", type=float, default=0.45)
    d.add_argument("--max-detections", type=int, default=100)
    d.add_argument("--device", default="cpu")
    d.add_argument("--candidates", action="store_true")
    b = sub.add_parser("bench")
    b.add_argument("--model", required=True)
    b.add_argument("--frame", default="640x480")
    b.add_argument("--batch", type=int, default=1)
    b.add_argument("--device", default="cpu")
    b.add_argument("--precision", default="fp32", choices=["fp32", "fp16"])
    b.add_argument("--seconds", type=float, default=10)
    b.add_argument("--repeats", type=int, default=5)
    b.add_argument("--threads", type=int, default=0)
    b.add_argument("--threshold", type=float, default=0.3)
    r = sub.add_parser("random")
    r.add_argument("--out", required=True)
    r.add_argument("--body", default="tiny")
    r.add_argument("--head-channels", type=int, default=128)
    r.add_argument("--input-size", type=int, default=224)
    r.add_argument("--grids", default="4,2,1")
    r.add_argument("--labels", default="a,b,c,d")
    r.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    {"detect": cmd_detect, "bench": cmd_bench, "random": cmd_random}[a.cmd](a)


if __name__ == "__main__":
    main()
